// bench_cron: next_after throughput for ordinary expressions in UTC and Europe/Berlin. Each call
// feeds its result back as the next start, the way spd walks a schedule; prints the median
// calls/second over several rounds per expression and for the whole mix.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "saltpeter/cron_expression.hpp"
#include "saltpeter/time_zone.hpp"

using namespace saltpeter;

namespace {

constexpr int k_rounds = 7;
constexpr int k_calls_per_round = 200'000;

const char* const k_expressions[] = {
    "0 */5 * * * * *",
    "0 30 2 * * MON-FRI *",
    "0 0 0 L * * *",
    "* * * * * * *",
    "0 0 */2 * * * *",
    "0 15,45 9-17 ? * MON-FRI *",
    "0 0 0 1 * * *",
    "@hourly",
    "@daily",
    "0 0 12 ? * 5L *",
    "0 0 9 15W * * *",
    "0 0 8 ? * MON#2 *",
};

struct Job {
    std::string label;
    std::string zone_name;
    CronExpression expr;
    TimeZone zone;
    std::vector<double> rates;
};

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

int main() {
    const SysSeconds start{std::chrono::seconds{days_from_civil(2025, 1, 1) * 86400}};
    // Restart before the year field runs out so every call does ordinary work.
    const SysSeconds restart_after{std::chrono::seconds{days_from_civil(2090, 1, 1) * 86400}};

    std::vector<Job> jobs;
    for (const char* zone_name : {"UTC", "Europe/Berlin"}) {
        auto zone = TimeZone::locate(zone_name);
        if (!zone) {
            std::fprintf(stderr, "bench_cron: %s\n", zone.error().message.c_str());
            return 1;
        }
        for (const char* text : k_expressions) {
            auto expr = CronExpression::parse(text);
            if (!expr) {
                std::fprintf(stderr, "bench_cron: %s\n", expr.error().message.c_str());
                return 1;
            }
            jobs.push_back(Job{text, zone_name, *expr, *zone, {}});
        }
    }

    std::vector<double> overall;
    std::int64_t sink = 0;
    for (int round = 0; round < k_rounds; ++round) {
        double round_seconds = 0;
        for (Job& job : jobs) {
            SysSeconds t = start;
            const auto begin = std::chrono::steady_clock::now();
            for (int i = 0; i < k_calls_per_round; ++i) {
                const auto next = job.expr.next_after(t, job.zone);
                t = next && *next < restart_after ? *next : start;
                sink += t.time_since_epoch().count();
            }
            const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
            round_seconds += elapsed;
            job.rates.push_back(k_calls_per_round / elapsed);
        }
        overall.push_back(static_cast<double>(k_calls_per_round) * static_cast<double>(jobs.size()) / round_seconds);
    }

    std::printf("%-28s %-14s %16s\n", "expression", "zone", "calls/s (median)");
    for (const Job& job : jobs)
        std::printf("%-28s %-14s %16.0f\n", job.label.c_str(), job.zone_name.c_str(), median(job.rates));
    std::printf("%-28s %-14s %16.0f\n", "overall", "", median(overall));
    std::printf("(%d rounds x %d calls per expression; checksum %lld)\n", k_rounds, k_calls_per_round,
                static_cast<long long>(sink % 1000003));
    return 0;
}
