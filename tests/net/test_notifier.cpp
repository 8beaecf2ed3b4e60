// notifier.hpp's worker: retries with backoff, no retry on 4xx, the bounded queue, the bounded
// drain at stop, `recovered` across runs and the /metrics counters. A scripted poster stands in
// for HTTP (the real one is exercised by tests/e2e/test_notify.py).
#include <doctest/doctest.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "outlets/notifier.hpp"
#include "watchdog.hpp"

using namespace saltpeter;
using namespace std::chrono_literals;

namespace {

// The string value of "key" in a compact JSON body ("" when absent); the payloads' full shape
// has its unit tests (tests/unit/test_notifier.cpp).
std::string field(const std::string& body, const std::string& key) {
    const std::string marker = "\"" + key + "\":\"";
    const auto at = body.find(marker);
    if (at == std::string::npos) return "";
    const auto start = at + marker.size();
    return body.substr(start, body.find('"', start) - start);
}

// Answers each POST with the next scripted reply (the last one repeats); records what it got.
class ScriptedPoster {
public:
    explicit ScriptedPoster(std::deque<Result<int>> replies) : m_replies(std::move(replies)) {}

    WebhookPoster poster() {
        return [this](const WebhookRequest& request) -> Result<int> {
            std::unique_lock lock(m_mutex);
            m_requests.push_back(request);
            m_times.push_back(std::chrono::steady_clock::now());
            m_cv.notify_all();
            m_cv.wait(lock, [&] { return !m_hold; });
            Result<int> reply = m_replies.front();
            if (m_replies.size() > 1) m_replies.pop_front();
            return reply;
        };
    }
    void hold(bool on) {
        std::lock_guard lock(m_mutex);
        m_hold = on;
        m_cv.notify_all();
    }
    void wait_requests(std::size_t n) {
        std::unique_lock lock(m_mutex);
        m_cv.wait(lock, [&] { return m_requests.size() >= n; });
    }
    std::vector<WebhookRequest> requests() {
        std::lock_guard lock(m_mutex);
        return m_requests;
    }
    std::vector<std::chrono::steady_clock::time_point> times() {
        std::lock_guard lock(m_mutex);
        return m_times;
    }

private:
    std::mutex m_mutex;
    std::condition_variable m_cv;
    std::deque<Result<int>> m_replies;
    std::vector<WebhookRequest> m_requests;
    std::vector<std::chrono::steady_clock::time_point> m_times;
    bool m_hold = false;
};

NotifierOptions options_for(ScriptedPoster& poster) {
    NotifierOptions o;
    o.poster = poster.poster();
    o.backoff_initial = 50ms;
    o.backoff_max = 1000ms;
    o.max_attempts = 4;
    o.payload.host = "test-host";
    return o;
}

RunRecord run_of(const std::string& job, int retcode, const std::string& instance) {
    RunRecord run;
    run.instance = instance;
    run.job = job;
    run.group = "g";
    run.started = SysMicros{std::chrono::microseconds{1795840727000000}};
    run.ended = run.started + std::chrono::seconds{1};
    TargetResult t;
    t.machine = "m1";
    t.state = TargetState::finished;
    t.retcode = retcode;
    run.targets["m1"] = t;
    run.launching_done = true;
    return run;
}

const Notify k_all{{"failure", "success", "recovered", "missed"}, "http://127.0.0.1:9/hook"};

}  // namespace

TEST_CASE("a webhook answering 500 twice then 200 gets the payload on the third attempt, backing off") {
    test::Watchdog dog(30s);
    ScriptedPoster poster({Result<int>(500), Result<int>(503), Result<int>(200)});
    Notifier n(options_for(poster));
    n.run_finished(run_of("j", 2, "j_1"), Notify{{"failure"}, "http://127.0.0.1:9/hook?token=x"});
    poster.wait_requests(3);
    n.stop();
    const auto requests = poster.requests();
    REQUIRE(requests.size() == 3);
    CHECK(requests[0].body == requests[2].body);
    CHECK(requests[0].url == "http://127.0.0.1:9/hook?token=x");
    CHECK(field(requests[2].body, "event") == "failure");
    CHECK(field(requests[2].body, "instance") == "j_1");
    const auto times = poster.times();
    CHECK(times[1] - times[0] >= 50ms);
    CHECK(times[2] - times[1] >= 100ms);  // doubled
    const auto c = n.counters().at(NotifyEvent::failure);
    CHECK(c.sent == 1);
    CHECK(c.retries == 2);
    CHECK(c.failed == 0);
}

TEST_CASE("a 4xx is not retried; an unreachable webhook is given up after max_attempts") {
    test::Watchdog dog(30s);
    ScriptedPoster rejecting({Result<int>(404)});
    Notifier a(options_for(rejecting));
    a.run_finished(run_of("j", 1, "j_1"), k_all);
    rejecting.wait_requests(1);
    a.stop();
    CHECK(rejecting.requests().size() == 1);
    CHECK(a.counters().at(NotifyEvent::failure).failed == 1);
    CHECK(a.counters().at(NotifyEvent::failure).retries == 0);

    ScriptedPoster down({Result<int>(Error{"cannot reach webhook http://127.0.0.1:9/hook (connect: refused)", "unreachable"})});
    Notifier b(options_for(down));
    b.run_finished(run_of("j", 1, "j_1"), k_all);
    down.wait_requests(4);
    // The fourth attempt is the last one: give the worker time to count it, then drain.
    for (int i = 0; i < 200 && b.counters().at(NotifyEvent::failure).failed == 0; ++i) std::this_thread::sleep_for(10ms);
    b.stop();
    CHECK(down.requests().size() == 4);
    CHECK(b.counters().at(NotifyEvent::failure).failed == 1);
    CHECK(b.counters().at(NotifyEvent::failure).retries == 3);
    CHECK(b.counters().at(NotifyEvent::failure).sent == 0);
}

TEST_CASE("recovered follows a failure, also one seeded from the store; unsubscribed events post nothing") {
    test::Watchdog dog(30s);
    ScriptedPoster poster({Result<int>(200)});
    Notifier n(options_for(poster));
    const Notify on{{"failure", "recovered"}, "http://127.0.0.1:9/hook"};
    n.run_finished(run_of("j", 0, "j_1"), on);  // success, nothing before: no POST
    n.run_finished(run_of("j", 7, "j_2"), on);  // failure
    n.run_finished(run_of("j", 0, "j_3"), on);  // recovered (success is not subscribed)
    n.run_finished(run_of("j", 0, "j_4"), on);  // success again: nothing
    n.run_finished(run_of("k", 3, "k_1"), std::nullopt);  // outcome recorded, nothing sent
    n.run_finished(run_of("k", 0, "k_2"), on);  // recovered: k's failure counted without a webhook
    n.seed_outcome("s", false);
    n.run_finished(run_of("s", 0, "s_1"), Notify{{"success", "recovered"}, "http://127.0.0.1:9/hook"});
    n.missed(MissedFire{"j", "g", SysSeconds{std::chrono::seconds{1795840727}}, 2, false, "skip"}, on);  // not subscribed
    n.missed(MissedFire{"j", "g", SysSeconds{std::chrono::seconds{1795840727}}, 2, false, "skip"}, k_all);
    n.stop();
    std::vector<std::string> seen;
    for (const auto& r : poster.requests()) {
        const std::string instance = field(r.body, "instance");
        seen.push_back(field(r.body, "event") + ":" + (instance.empty() ? field(r.body, "job") : instance));
    }
    CHECK(seen == std::vector<std::string>{"failure:j_2", "recovered:j_3", "recovered:k_2", "success:s_1",
                                           "recovered:s_1", "missed:j"});
    CHECK(n.counters().at(NotifyEvent::recovered).sent == 3);
    CHECK(n.counters().at(NotifyEvent::missed).sent == 1);
}

TEST_CASE("a full queue drops and counts without blocking; stop drains within drain_timeout") {
    test::Watchdog dog(30s);
    ScriptedPoster poster({Result<int>(200)});
    auto o = options_for(poster);
    o.queue_max = 2;
    Notifier n(o);
    poster.hold(true);
    n.run_finished(run_of("j", 1, "j_1"), k_all);
    poster.wait_requests(1);  // the worker holds j_1; the queue is empty
    const auto before = std::chrono::steady_clock::now();
    for (int i = 2; i <= 5; ++i) n.run_finished(run_of("j", 1, "j_" + std::to_string(i)), k_all);
    CHECK(std::chrono::steady_clock::now() - before < 1s);  // never waits for the worker
    CHECK(n.counters().at(NotifyEvent::failure).dropped == 2);
    Metrics m;
    n.export_metrics(m);
    CHECK(m.value("saltpeter_notifications_queued") == 2);
    poster.hold(false);
    n.stop();
    CHECK(n.counters().at(NotifyEvent::failure).sent == 3);
    n.export_metrics(m);
    CHECK(m.value("saltpeter_notifications_sent_total", {{"event", "failure"}}) == 3);
    CHECK(m.value("saltpeter_notifications_dropped_total", {{"event", "failure"}}) == 2);
    CHECK(m.value("saltpeter_notifications_queued") == 0);
    const std::string text = m.render();
    CHECK(text.find("# TYPE saltpeter_notifications_sent_total counter") != std::string::npos);
    CHECK(text.find("saltpeter_notifications_failed_total{event=\"missed\"} 0") != std::string::npos);
    // After stop nothing is queued any more.
    n.run_finished(run_of("j", 1, "j_6"), k_all);
    CHECK(n.counters().at(NotifyEvent::failure).dropped == 3);
}

TEST_CASE("the queue is also bounded in bytes") {
    test::Watchdog dog(30s);
    ScriptedPoster poster({Result<int>(200)});
    auto o = options_for(poster);
    const std::size_t size = run_payload(NotifyEvent::failure, run_of("j", 1, "j_2"), o.payload).size();
    o.queue_max_bytes = size * 5 / 2;  // two documents fit, not three
    Notifier n(o);
    poster.hold(true);
    n.run_finished(run_of("j", 1, "j_1"), k_all);
    poster.wait_requests(1);
    for (int i = 2; i <= 4; ++i) n.run_finished(run_of("j", 1, "j_" + std::to_string(i)), k_all);
    CHECK(n.counters().at(NotifyEvent::failure).dropped == 1);
    poster.hold(false);
    n.stop();
    CHECK(n.counters().at(NotifyEvent::failure).sent == 3);
    const auto requests = poster.requests();
    REQUIRE(requests.size() == 3);
    CHECK(requests[1].body.size() == size);
}

TEST_CASE("stop gives up a webhook that keeps failing once drain_timeout has passed") {
    test::Watchdog dog(30s);
    ScriptedPoster poster({Result<int>(500)});
    auto o = options_for(poster);
    o.backoff_initial = 10s;
    o.max_attempts = 10;
    o.drain_timeout = 300ms;
    Notifier n(o);
    n.run_finished(run_of("j", 1, "j_1"), k_all);
    n.run_finished(run_of("j", 1, "j_2"), k_all);
    poster.wait_requests(1);
    const auto before = std::chrono::steady_clock::now();
    n.stop();
    CHECK(std::chrono::steady_clock::now() - before < 3s);
    const auto c = n.counters().at(NotifyEvent::failure);
    CHECK(c.sent == 0);
    CHECK(c.dropped == 2);  // the one in backoff and the one still queued
}
