// Embedding example (a): evaluate a schedule. Prints the next fire times of a cron expression in
// an IANA time zone, as `spctl next --expr` does.
//
//   schedule_next EXPRESSION ZONE FROM [COUNT]
//   schedule_next "0 30 2 * * * *" Europe/Berlin 2027-03-27T12:00:00+01:00 2
#include <cstdlib>
#include <iostream>

#include <saltpeter/cron_expression.hpp>
#include <saltpeter/time_zone.hpp>

int main(int argc, char** argv) {
    if (argc < 4) {
        std::cerr << "usage: schedule_next EXPRESSION ZONE FROM [COUNT]\n";
        return 2;
    }
    auto expr = saltpeter::CronExpression::parse(argv[1]);
    if (!expr) {
        std::cerr << "schedule_next: " << expr.error().message << "\n";
        return 1;
    }
    auto zone = saltpeter::TimeZone::locate(argv[2]);
    if (!zone) {
        std::cerr << "schedule_next: " << zone.error().message << "\n";
        return 1;
    }
    auto from = saltpeter::parse_iso8601(argv[3], *zone);
    if (!from) {
        std::cerr << "schedule_next: " << from.error().message << "\n";
        return 1;
    }
    const int count = argc > 4 ? std::atoi(argv[4]) : 5;
    saltpeter::SysSeconds t = *from;
    for (int i = 0; i < count; ++i) {
        auto next = expr->next_after(t, *zone);
        if (!next) {
            std::cout << "never fires again\n";
            break;
        }
        std::cout << saltpeter::format_iso8601(*next, *zone) << "\n";
        t = *next;
    }
    return 0;
}
