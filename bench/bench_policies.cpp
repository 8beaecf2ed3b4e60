// bench_policies: what the dispatch policies cost and how splay spreads a midnight crowd. Prints
// the median time of subset selection and batch planning for a large fleet, and the per-second
// start counts of 500 jobs sharing one fire time with splay 300.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "core/dispatch_policy.hpp"

using namespace saltpeter;
using Clock = std::chrono::steady_clock;

namespace {

template <typename F>
double median_us(F&& f, int rounds = 9) {
    std::vector<double> us;
    for (int i = 0; i < rounds; ++i) {
        const auto t0 = Clock::now();
        f(i);
        us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    }
    std::sort(us.begin(), us.end());
    return us[us.size() / 2];
}

}  // namespace

int main() {
    std::vector<std::string> fleet;
    for (int i = 0; i < 10000; ++i) fleet.push_back("web" + std::to_string(100000 + i));
    std::size_t sink = 0;
    const double subset = median_us([&](int i) {
        sink += policy::choose_subset(fleet, 500, policy::fnv1a("job_" + std::to_string(i))).size();
    });
    const double plan = median_us([&](int) { sink += policy::plan_batches(fleet, 10, Amount{5, true}).size(); });
    std::printf("choose_subset 500 of 10000 minions: median %.0f us\n", subset);
    std::printf("plan_batches 10000 minions (canary 10, 5%%): median %.0f us\n", plan);

    std::map<long, int> per_second;
    for (int i = 0; i < 500; ++i) {
        ++per_second[static_cast<long>(policy::splay_offset("job_" + std::to_string(i), std::chrono::seconds(300)).count())];
    }
    int busiest = 0;
    for (const auto& [second, n] : per_second) busiest = std::max(busiest, n);
    std::printf("500 jobs at one fire time, splay 300: %zu distinct start seconds, at most %d jobs in one second "
                "(without splay: 500)\n",
                per_second.size(), busiest);
    return sink == 0 ? 1 : 0;
}
