#include <doctest/doctest.h>

#include "saltpeter/heartbeat_monitor.hpp"

using namespace saltpeter;
using namespace std::chrono_literals;

namespace {
const HeartbeatMonitor::TimePoint t0{std::chrono::seconds{1000}};
}

TEST_CASE("a silent key expires once its silence exceeds the limit, not before") {
    HeartbeatMonitor m;
    m.track("run_1:web1", t0, 15s);
    CHECK(m.next_deadline() == t0 + 15s);
    CHECK(m.expire(t0 + 15s).empty());  // exactly the limit is still alive
    auto expired = m.expire(t0 + 15s + 1ms);
    REQUIRE(expired.size() == 1);
    CHECK(expired[0].key == "run_1:web1");
    CHECK(expired[0].last_seen == t0);
    CHECK(expired[0].silence == 15s + 1ms);
    CHECK_FALSE(m.tracking("run_1:web1"));
    CHECK(m.expire(t0 + 1h).empty());  // reported once
    CHECK_FALSE(m.next_deadline().has_value());
}

TEST_CASE("beats push the deadline; late beats never pull it back") {
    HeartbeatMonitor m;
    m.track("a", t0, 15s);
    CHECK(m.beat("a", t0 + 10s));
    CHECK(m.next_deadline() == t0 + 25s);
    CHECK(m.beat("a", t0 + 5s));  // out of order: ignored
    CHECK(m.last_seen("a") == t0 + 10s);
    CHECK(m.expire(t0 + 20s).empty());
    CHECK(m.expire(t0 + 26s).size() == 1);
    CHECK_FALSE(m.beat("a", t0 + 30s));  // no longer tracked
    CHECK_FALSE(m.beat("unknown", t0));
}

TEST_CASE("keys with different limits expire in deadline order") {
    HeartbeatMonitor m;
    m.track("slow", t0, 60s);
    m.track("fast", t0, 5s);
    m.track("mid", t0 + 1s, 15s);
    CHECK(m.size() == 3);
    CHECK(m.next_deadline() == t0 + 5s);
    auto first = m.expire(t0 + 17s);
    REQUIRE(first.size() == 2);
    CHECK(first[0].key == "fast");
    CHECK(first[1].key == "mid");
    CHECK(m.next_deadline() == t0 + 60s);
    m.forget("slow");
    CHECK(m.size() == 0);
    CHECK(m.expire(t0 + 1h).empty());
}

TEST_CASE("track again restarts the watch with the new limit") {
    HeartbeatMonitor m;
    m.track("k", t0, 5s);
    m.track("k", t0 + 3s, 30s);
    CHECK(m.size() == 1);
    CHECK(m.expire(t0 + 10s).empty());
    CHECK(m.next_deadline() == t0 + 33s);
    m.forget("k");
    m.forget("k");  // twice is harmless
    CHECK_FALSE(m.next_deadline());
}
