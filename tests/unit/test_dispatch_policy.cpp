// The job policies as pure logic (dispatch_policy.hpp): no clock, no sleeps.
#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <set>

#include "core/dispatch_policy.hpp"
#include "saltpeter/exit_code_mapper.hpp"

using namespace saltpeter;
using namespace saltpeter::policy;
using namespace std::chrono_literals;

namespace {

SysSeconds at(const char* iso) { return *parse_iso8601(iso, TimeZone::utc()); }

std::vector<std::string> hosts(int n) {
    std::vector<std::string> out;
    for (int i = 1; i <= n; ++i) out.push_back((i < 10 ? "h0" : "h") + std::to_string(i));
    return out;
}

Amount count(unsigned v) { return Amount{v, false}; }
Amount percent(unsigned v) { return Amount{v, true}; }

}  // namespace

TEST_CASE("admission: concurrency forbid/allow/replace, force, and global maintenance") {
    CHECK(admit(Concurrency::forbid, 0, false, false, false) == Admission::start);
    CHECK(admit(Concurrency::forbid, 1, false, false, false) == Admission::skip_overlap);
    CHECK(admit(Concurrency::forbid, 1, false, true, false) == Admission::skip_overlap);  // run-now, not forced
    CHECK(admit(Concurrency::forbid, 1, false, true, true) == Admission::start);          // run-now --force
    CHECK(admit(Concurrency::forbid, 1, false, false, true) == Admission::skip_overlap);  // force is run-now only
    CHECK(admit(Concurrency::allow, 3, false, false, false) == Admission::start);
    CHECK(admit(Concurrency::replace, 1, false, false, false) == Admission::replace);
    CHECK(admit(Concurrency::replace, 0, false, false, false) == Admission::start);
    // Global maintenance wins over everything, force included: firings drop, run-now waits.
    CHECK(admit(Concurrency::allow, 0, true, false, false) == Admission::skip_maintenance);
    CHECK(admit(Concurrency::forbid, 1, true, true, true) == Admission::queue_maintenance);
    CHECK(to_string(Admission::queue_maintenance) == "queue_maintenance");
}

TEST_CASE("subset: n of the minions, deterministic per seed, input order kept") {
    const auto all = hosts(20);
    const auto a = choose_subset(all, 5, 42);
    CHECK(a.size() == 5);
    CHECK(a == choose_subset(all, 5, 42));
    CHECK(std::is_sorted(a.begin(), a.end()));  // hosts(20) is sorted, the subset keeps the order
    CHECK(std::set<std::string>(a.begin(), a.end()).size() == 5);
    for (const auto& m : a) CHECK(std::find(all.begin(), all.end(), m) != all.end());
    // Different seeds pick different subsets (not always the first n).
    std::set<std::vector<std::string>> seen;
    for (std::uint64_t seed = 0; seed < 20; ++seed) seen.insert(choose_subset(all, 5, seed));
    CHECK(seen.size() > 10);
    CHECK(choose_subset(all, 0, 1) == all);
    CHECK(choose_subset(all, 20, 1) == all);
    CHECK(choose_subset(all, 99, 1) == all);
    CHECK(choose_subset({}, 3, 1).empty());
    // Every minion gets picked sometimes: roughly uniform.
    std::map<std::string, int> picks;
    for (std::uint64_t seed = 0; seed < 2000; ++seed) {
        for (const auto& m : choose_subset(all, 1, seed)) ++picks[m];
    }
    CHECK(picks.size() == 20);
    for (const auto& [m, n] : picks) CHECK_MESSAGE((n > 40 && n < 170), m << " picked " << n << " times of 2000");
}

TEST_CASE("batch plan: canary first, then batch_size (count or percent), no empty batch") {
    const auto all = hosts(10);
    auto plan = plan_batches(all, 0, Amount{});
    REQUIRE(plan.size() == 1);
    CHECK(plan[0] == all);

    plan = plan_batches(all, 0, count(3));
    REQUIRE(plan.size() == 4);
    CHECK(plan[0].size() == 3);
    CHECK(plan[3].size() == 1);
    CHECK(plan[3][0] == all[9]);

    plan = plan_batches(all, 0, percent(25));  // 25% of 10 rounds up to 3
    REQUIRE(plan.size() == 4);
    CHECK(plan[0].size() == 3);

    plan = plan_batches(all, 2, count(4));  // canary of 2, then 4 + 4
    REQUIRE(plan.size() == 3);
    CHECK(plan[0] == std::vector<std::string>{all[0], all[1]});
    CHECK(plan[1].size() == 4);
    CHECK(plan[2].size() == 4);

    plan = plan_batches(all, 1, Amount{});  // canary, then the rest at once
    REQUIRE(plan.size() == 2);
    CHECK(plan[1].size() == 9);

    plan = plan_batches(all, 50, count(2));  // canary larger than the fleet: one batch
    REQUIRE(plan.size() == 1);
    CHECK(plan[0].size() == 10);

    CHECK(plan_batches({}, 2, count(2)).empty());
    plan = plan_batches(all, 0, count(100));
    REQUIRE(plan.size() == 1);

    // Every minion exactly once, in order.
    plan = plan_batches(hosts(37), 3, percent(10));
    std::vector<std::string> flat;
    for (const auto& b : plan) {
        CHECK_FALSE(b.empty());
        flat.insert(flat.end(), b.begin(), b.end());
    }
    CHECK(flat == hosts(37));
}

TEST_CASE("stop decision: canary stops on any failure, max_failures as count or percent") {
    CHECK_FALSE(should_stop(0, 10, Amount{}, true, 0));
    CHECK(should_stop(1, 10, Amount{}, true, 1));
    CHECK(stop_reason(1, 10, Amount{}, true, 1) == "canary failed (1 of the canary target(s))");
    CHECK_FALSE(should_stop(5, 10, Amount{}, false, 5));  // no limit
    CHECK_FALSE(should_stop(1, 10, count(2), false, 1));
    CHECK(should_stop(2, 10, count(2), false, 1));
    CHECK(stop_reason(2, 10, count(2), false, 1) == "max_failures reached (2 failed, limit 2)");
    // 5% of 100 = 5; 5% of 10 rounds up to 1.
    CHECK_FALSE(should_stop(4, 100, percent(5), false, 4));
    CHECK(should_stop(5, 100, percent(5), false, 1));
    CHECK(should_stop(1, 10, percent(5), false, 1));
    CHECK(stop_reason(1, 10, percent(5), false, 1) == "max_failures reached (1 failed, limit 1 = 5% of 10)");
    CHECK(stop_reason(0, 10, count(2), false, 0).empty());
}

TEST_CASE("retry: which codes, and the exponential delay capped by retry_backoff_max") {
    CHECK_FALSE(retryable(0));
    CHECK(retryable(1));
    CHECK(retryable(124));
    CHECK(retryable(253));
    CHECK(retryable(255));
    CHECK(retryable(-9));
    CHECK_FALSE(retryable(143));                                        // killed on request: never
    CHECK_FALSE(retryable(ExitCodeMapper::code(Outcome::skipped)));      // never launched
    CHECK(retry_delay(1, 10s, 300s) == 10s);
    CHECK(retry_delay(2, 10s, 300s) == 20s);
    CHECK(retry_delay(3, 10s, 300s) == 40s);
    CHECK(retry_delay(6, 10s, 300s) == 300s);   // 320 capped
    CHECK(retry_delay(60, 10s, 300s) == 300s);  // no overflow
    CHECK(retry_delay(1, 10s, 5s) == 5s);       // max below backoff: max wins
    CHECK(retry_delay(4, 0s, 300s) == 0s);
}

TEST_CASE("splay: FNV-1a of the name, stable, inside the window, spread out") {
    CHECK(fnv1a("") == 0xcbf29ce484222325ULL);
    CHECK(fnv1a("a") == 0xaf63dc4c8601ec8cULL);  // reference FNV-1a 64 vectors
    CHECK(fnv1a("foobar") == 0x85944171f73967e8ULL);
    CHECK(splay_offset("backup", 0s) == 0s);
    CHECK(splay_offset("backup", 600s) == splay_offset("backup", 600s));
    CHECK(splay_offset("backup", 600s) == std::chrono::seconds(static_cast<long>(mix64(fnv1a("backup")) % 601)));
    CHECK(mix64(0) == 0);
    CHECK(mix64(1) == 0xb456bcfc34c2cb2cULL);  // MurmurHash3 fmix64 reference value
    // 500 jobs at 0 0 * * * with splay 300: inside [0, 300] and spread over many seconds.
    // A uniform spread of 500 over 301 seconds fills ~244 of them, at most ~7 in one second.
    std::map<long, int> seconds;
    for (int i = 0; i < 500; ++i) {
        const auto off = splay_offset("job" + std::to_string(i), 300s);
        CHECK(off >= 0s);
        CHECK(off <= 300s);
        ++seconds[static_cast<long>(off.count())];
    }
    CHECK(seconds.size() > 220);
    for (const auto& [second, n] : seconds) CHECK_MESSAGE(n <= 9, n << " jobs at second " << second);
}

TEST_CASE("misfire: on time runs; late skip drops; late run_once runs once within the grace") {
    const SysSeconds t = at("2027-03-01T00:00:00Z");
    auto d = decide_misfire(Misfire::skip, 300s, t, 0, t + 2s);
    CHECK(d.run);
    CHECK_FALSE(d.catch_up);
    CHECK(d.missed == 0);
    CHECK(d.reason.empty());

    d = decide_misfire(Misfire::skip, 300s, t, 4, t + 1s);  // woke on a fire time after missing 4
    CHECK(d.run);
    CHECK(d.missed == 4);
    CHECK(d.reason.find("4 earlier fire time(s)") != std::string::npos);

    d = decide_misfire(Misfire::skip, 300s, t, 2, t + 120s);
    CHECK_FALSE(d.run);
    CHECK(d.missed == 3);
    CHECK(d.reason == "3 fire time(s) missed, the latest 120 s ago; misfire: skip, no catch-up run");

    d = decide_misfire(Misfire::run_once, 300s, t, 99, t + 120s);
    CHECK(d.run);
    CHECK(d.catch_up);
    CHECK(d.missed == 100);
    CHECK(d.latest == t);

    // At start-up nothing is on time: 10 s after a fire time spd was down for it.
    d = decide_misfire(Misfire::skip, 300s, t, 0, t + 10s, 0s);
    CHECK_FALSE(d.run);
    CHECK(d.missed == 1);
    d = decide_misfire(Misfire::run_once, 300s, t, 0, t + 10s, 0s);
    CHECK(d.run);
    CHECK(d.catch_up);

    d = decide_misfire(Misfire::run_once, 300s, t, 0, t + 301s);
    CHECK_FALSE(d.run);
    CHECK(d.reason.find("beyond misfire_grace 300 s") != std::string::npos);
}

TEST_CASE("missed fire times since the last recorded one: counted, latest kept, bounded") {
    const auto every_minute = *CronExpression::parse("0 * * * * * *");
    const SysSeconds last = at("2027-03-01T00:00:00Z");
    auto m = missed_fire_times(every_minute, TimeZone::utc(), last, at("2027-03-01T01:00:30Z"));
    CHECK(m.count == 60);
    CHECK(m.latest == at("2027-03-01T01:00:00Z"));
    m = missed_fire_times(every_minute, TimeZone::utc(), last, at("2027-03-01T00:00:59Z"));
    CHECK(m.count == 0);
    CHECK_FALSE(m.latest.has_value());
    m = missed_fire_times(every_minute, TimeZone::utc(), last, at("2027-04-01T00:00:00Z"), 100);
    CHECK(m.count == 100);  // no "100 missed schedules" cliff: the count stops, nothing bursts
}
