#include <doctest/doctest.h>

#include "saltpeter/schedule.hpp"

using namespace saltpeter;
using namespace std::chrono_literals;

namespace {

SysSeconds at(const char* iso) { return *parse_iso8601(iso, TimeZone::utc()); }

Schedule::Entry entry(const std::string& job, const char* expr, const char* zone = "UTC") {
    return {job, *CronExpression::parse(expr), *TimeZone::locate(zone)};
}

}  // namespace

TEST_CASE("jobs fire at their times, each once, in fire-time order") {
    Schedule s;
    const SysSeconds now = at("2027-01-01T00:00:00Z");
    s.set_jobs({entry("every10", "*/10 * * * * * *"), entry("minute", "0 * * * * * *"),
                entry("berlin", "0 0 1 * * * *", "Europe/Berlin")},
               now);
    CHECK(s.size() == 3);
    CHECK(s.next_wake() == at("2027-01-01T00:00:10Z"));
    CHECK(s.next_run("minute") == at("2027-01-01T00:01:00Z"));
    CHECK(s.next_run("berlin") == at("2027-01-02T00:00:00Z"));  // 01:00 CET = 00:00 UTC
    CHECK(s.take_due(at("2027-01-01T00:00:09Z")).empty());

    auto due = s.take_due(at("2027-01-01T00:00:10Z"));
    REQUIRE(due.size() == 1);
    CHECK(due[0].job == "every10");
    CHECK(due[0].scheduled == at("2027-01-01T00:00:10Z"));
    CHECK(due[0].missed == 0);
    CHECK(s.next_run("every10") == at("2027-01-01T00:00:20Z"));

    for (int i = 2; i <= 5; ++i) CHECK(s.take_due(at("2027-01-01T00:00:00Z") + std::chrono::seconds(10 * i)).size() == 1);
    due = s.take_due(at("2027-01-01T00:01:00Z"));
    REQUIRE(due.size() == 2);
    CHECK(due[0].job == "every10");  // same time: name order
    CHECK(due[1].job == "minute");
}

TEST_CASE("a late wake-up gives one run per job and counts what it missed") {
    Schedule s;
    s.set_jobs({entry("every10", "*/10 * * * * * *")}, at("2027-01-01T00:00:00Z"));
    auto due = s.take_due(at("2027-01-01T00:01:05Z"));  // e.g. the host was suspended
    REQUIRE(due.size() == 1);
    CHECK(due[0].scheduled == at("2027-01-01T00:01:00Z"));
    CHECK(due[0].missed == 5);  // 00:10 .. 00:50 were not run
    CHECK(s.next_run("every10") == at("2027-01-01T00:01:10Z"));
}

TEST_CASE("set_jobs keeps unchanged jobs, reschedules changed ones, drops removed ones") {
    Schedule s;
    const SysSeconds t0 = at("2027-01-01T00:00:00Z");
    s.set_jobs({entry("a", "0 0 * * * * *"), entry("b", "0 30 * * * * *")}, t0);
    CHECK(s.next_run("a") == at("2027-01-01T01:00:00Z"));
    // At 00:59 a reload changes b and removes nothing: a keeps its pending 01:00 firing.
    s.set_jobs({entry("a", "0 0 * * * * *"), entry("b", "0 0 12 * * * *"), entry("c", "@daily")},
               at("2027-01-01T00:59:00Z"));
    CHECK(s.next_run("a") == at("2027-01-01T01:00:00Z"));
    CHECK(s.next_run("b") == at("2027-01-01T12:00:00Z"));
    CHECK(s.next_run("c") == at("2027-01-02T00:00:00Z"));
    s.set_jobs({entry("c", "@daily")}, at("2027-01-01T01:00:00Z"));
    CHECK_FALSE(s.next_run("a"));
    CHECK(s.size() == 1);
    CHECK(s.take_due(at("2027-01-01T23:59:59Z")).empty());
    CHECK(s.next_wake() == at("2027-01-02T00:00:00Z"));
}

TEST_CASE("a job that never fires again stays known but never wakes the scheduler") {
    Schedule s;
    s.set_jobs({entry("past", "0 0 0 1 1 * 2020"), entry("soon", "0 0 0 1 1 * 2027")}, at("2026-06-01T00:00:00Z"));
    CHECK(s.size() == 2);
    CHECK_FALSE(s.next_run("past"));
    CHECK(s.next_wake() == at("2027-01-01T00:00:00Z"));
    CHECK(s.take_due(at("2027-01-01T00:00:00Z")).size() == 1);
    CHECK_FALSE(s.next_wake());
}
