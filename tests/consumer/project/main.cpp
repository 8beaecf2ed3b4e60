#include <iostream>

#include <saltpeter/cron_expression.hpp>
#include <saltpeter/exit_code_mapper.hpp>
#include <saltpeter/time_zone.hpp>
#include <saltpeter/version.hpp>

int main() {
    auto expr = saltpeter::CronExpression::parse("0 30 2 * * * *");
    auto zone = saltpeter::TimeZone::locate("Europe/Berlin");
    auto from = saltpeter::parse_iso8601("2027-03-27T12:00:00+01:00", *zone);
    if (!expr || !zone || !from) return 1;
    auto next = expr->next_after(*from, *zone);
    std::cout << "saltpeter " << saltpeter::version() << "\n"
              << "next " << saltpeter::format_iso8601(*next, *zone) << "\n"
              << "253 " << saltpeter::ExitCodeMapper::meaning(253) << "\n";
    return 0;
}
