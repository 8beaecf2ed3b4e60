// notifier.hpp: event selection (failure/success/recovered/missed, per-job vs default) and the
// payload documents. The worker thread has its loopback tests in tests/net/test_notifier.cpp.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "saltpeter/cron_expression.hpp"
#include "saltpeter/exit_code_mapper.hpp"
#include "outlets/notifier.hpp"
#include "saltpeter/version.hpp"

using namespace saltpeter;
using Json = nlohmann::json;

namespace {

Job make_job(const std::string& name, std::optional<Notify> notify) {
    Job job(CronExpression::parse("0 * * * * * *").value());
    job.name = name;
    job.group = "jobs";
    job.notify = std::move(notify);
    return job;
}

TargetResult target(const std::string& machine, std::optional<int> retcode, std::string output = "") {
    TargetResult t;
    t.machine = machine;
    t.state = TargetState::finished;
    t.retcode = retcode;
    t.output = std::move(output);
    t.output_bytes = t.output.size();
    return t;
}

RunRecord run_with(std::vector<TargetResult> targets) {
    RunRecord run;
    run.instance = "backup_1795840727";
    run.job = "backup";
    run.group = "nightly";
    run.trigger = Trigger::schedule;
    run.scheduled = SysSeconds{std::chrono::seconds{1795840727}};
    run.started = SysMicros{std::chrono::microseconds{1795840727500000}};
    run.ended = SysMicros{std::chrono::microseconds{1795840737000000}};
    for (auto& t : targets) run.targets[t.machine] = std::move(t);
    run.launching_done = true;
    return run;
}

}  // namespace

TEST_CASE("run events: failure, success, and recovered only after a failed run") {
    const RunRecord ok = run_with({target("a", 0), target("b", 0)});
    const RunRecord bad = run_with({target("a", 0), target("b", 3)});
    const RunRecord empty = run_with({});
    const RunRecord unfinished_target = run_with({target("a", 0), target("b", std::nullopt)});

    CHECK(run_events(bad, std::nullopt) == std::vector<NotifyEvent>{NotifyEvent::failure});
    CHECK(run_events(bad, false) == std::vector<NotifyEvent>{NotifyEvent::failure});
    CHECK(run_events(empty, true) == std::vector<NotifyEvent>{NotifyEvent::failure});  // no targets is a failure
    CHECK(run_events(unfinished_target, true) == std::vector<NotifyEvent>{NotifyEvent::failure});
    CHECK(run_events(ok, std::nullopt) == std::vector<NotifyEvent>{NotifyEvent::success});
    CHECK(run_events(ok, true) == std::vector<NotifyEvent>{NotifyEvent::success});
    CHECK(run_events(ok, false) == std::vector<NotifyEvent>{NotifyEvent::success, NotifyEvent::recovered});
}

TEST_CASE("subscribed events keep only what notify.on lists") {
    const Notify n{{"failure", "recovered"}, "http://127.0.0.1:9/hook"};
    CHECK(subscribed_events({NotifyEvent::success, NotifyEvent::recovered}, n) ==
          std::vector<NotifyEvent>{NotifyEvent::recovered});
    CHECK(subscribed_events({NotifyEvent::success}, n).empty());
    CHECK(subscribed_events({NotifyEvent::failure}, n) == std::vector<NotifyEvent>{NotifyEvent::failure});
    for (auto e : {NotifyEvent::failure, NotifyEvent::success, NotifyEvent::recovered, NotifyEvent::missed}) {
        CHECK(notify_event_from_string(to_string(e)) == e);
    }
    CHECK_FALSE(notify_event_from_string("exploded").has_value());
}

TEST_CASE("effective notify: the job's own, else the default; missing keys come from the default") {
    Settings none;
    Settings with_default;
    with_default.notify = Notify{{"failure", "missed"}, "https://hooks.example.com/default"};

    const Job plain = make_job("plain", std::nullopt);
    CHECK_FALSE(effective_notify(&plain, none).has_value());
    REQUIRE(effective_notify(&plain, with_default).has_value());
    CHECK(effective_notify(&plain, with_default)->webhook == "https://hooks.example.com/default");
    CHECK(effective_notify(&plain, with_default)->on == std::vector<std::string>{"failure", "missed"});
    // A job gone from the config uses the default.
    CHECK(effective_notify(nullptr, with_default)->webhook == "https://hooks.example.com/default");
    CHECK_FALSE(effective_notify(nullptr, none).has_value());

    const Job own = make_job("own", Notify{{"success"}, "http://127.0.0.1:1/own"});
    CHECK(effective_notify(&own, with_default)->webhook == "http://127.0.0.1:1/own");
    CHECK(effective_notify(&own, with_default)->on == std::vector<std::string>{"success"});
    CHECK(effective_notify(&own, none)->on == std::vector<std::string>{"success"});

    const Job events_only = make_job("events_only", Notify{{"recovered"}, ""});
    CHECK(effective_notify(&events_only, with_default)->webhook == "https://hooks.example.com/default");
    CHECK(effective_notify(&events_only, with_default)->on == std::vector<std::string>{"recovered"});
    CHECK_FALSE(effective_notify(&events_only, none).has_value());  // nowhere to post

    const Job hook_only = make_job("hook_only", Notify{{}, "http://127.0.0.1:1/x"});
    CHECK(effective_notify(&hook_only, with_default)->on == std::vector<std::string>{"failure", "missed"});
    CHECK(effective_notify(&hook_only, none)->on == std::vector<std::string>{"failure"});

    Settings no_hook;
    no_hook.notify = Notify{{"failure"}, ""};
    CHECK_FALSE(effective_notify(&plain, no_hook).has_value());
}

TEST_CASE("run payload: fields, failed targets first, meanings and a bounded UTF-8 output tail") {
    std::string long_output(3000, 'x');
    long_output += "\xc3\xa9" "end\n";  // a two-byte character just before the tail
    RunRecord run = run_with({target("alpha", 0, "fine\n"), target("beta", 3, long_output), target("gamma", 124)});
    PayloadContext ctx;
    ctx.host = "spd-host";
    ctx.output_tail_bytes = 5;
    const Json j = Json::parse(run_payload(NotifyEvent::failure, run, ctx));
    CHECK(j["event"] == "failure");
    CHECK(j["job"] == "backup");
    CHECK(j["group"] == "nightly");
    CHECK(j["instance"] == "backup_1795840727");
    CHECK(j["trigger"] == "schedule");
    CHECK(j["scheduled"] == "2026-11-28T04:38:47+00:00");
    CHECK(j["started"] == "2026-11-28T04:38:47.500000+00:00");
    CHECK(j["ended"] == "2026-11-28T04:38:57+00:00");
    CHECK(j["status"] == "failure");
    CHECK(j["success"] == false);
    CHECK(j["targets_total"] == 3);
    CHECK(j["targets_failed"] == 2);
    CHECK(j["targets_omitted"] == 0);
    REQUIRE(j["targets"].size() == 3);
    CHECK(j["targets"][0]["machine"] == "beta");
    CHECK(j["targets"][0]["retcode"] == 3);
    CHECK(j["targets"][0]["meaning"] == ExitCodeMapper::meaning(3));
    CHECK(j["targets"][0]["output_tail"] == "end\n");  // 5 bytes back is inside the é: the tail starts after it
    CHECK(j["targets"][0]["output_truncated"] == true);
    CHECK(j["targets"][1]["machine"] == "gamma");
    CHECK(j["targets"][1]["retcode"] == 124);
    CHECK(j["targets"][1]["meaning"] == ExitCodeMapper::meaning(124));
    CHECK(j["targets"][2]["machine"] == "alpha");
    CHECK(j["targets"][2]["retcode"] == 0);
    CHECK(j["targets"][2]["output_tail"] == "fine\n");
    CHECK(j["targets"][2]["output_truncated"] == false);
    CHECK(j["saltpeter"]["version"] == std::string(version()));
    CHECK(j["saltpeter"]["host"] == "spd-host");

    // A success, a target without a result, and the target list bound.
    RunRecord many = run_with({target("m1", 0), target("m2", 0), target("m3", std::nullopt)});
    many.trigger = Trigger::run_now;
    many.scheduled.reset();
    ctx.max_targets = 2;
    const Json k = Json::parse(run_payload(NotifyEvent::failure, many, ctx));
    CHECK(k["trigger"] == "run-now");
    CHECK(k["scheduled"].is_null());
    REQUIRE(k["targets"].size() == 2);
    CHECK(k["targets"][0]["machine"] == "m3");
    CHECK(k["targets"][0]["retcode"].is_null());
    CHECK(k["targets"][0]["meaning"] == "no result");
    CHECK(k["targets_omitted"] == 1);
    CHECK(k["targets_failed"] == 1);

    RunRecord good = run_with({target("a", 0)});
    const Json g = Json::parse(run_payload(NotifyEvent::recovered, good, ctx));
    CHECK(g["event"] == "recovered");
    CHECK(g["status"] == "success");
    ctx.output_tail_bytes = 6;
    CHECK(Json::parse(run_payload(NotifyEvent::failure, run, ctx))["targets"][0]["output_tail"] == "\xc3\xa9" "end\n");
    CHECK(g["success"] == true);

    RunRecord killed = run_with({target("a", 143)});
    killed.kill_requested = true;
    CHECK(Json::parse(run_payload(NotifyEvent::failure, killed, ctx))["status"] == "killed");
}

TEST_CASE("missed payload names the job, the latest fire time, the count and the policy's reason") {
    MissedFire m;
    m.job = "report";
    m.group = "daily";
    m.scheduled = SysSeconds{std::chrono::seconds{1795840727}};
    m.count = 3;
    m.catch_up = false;
    m.reason = "3 fire time(s) missed, the latest 400 s ago; misfire: skip, no catch-up run";
    PayloadContext ctx;
    ctx.host = "h";
    const Json j = Json::parse(missed_payload(m, ctx));
    CHECK(j["event"] == "missed");
    CHECK(j["job"] == "report");
    CHECK(j["group"] == "daily");
    CHECK(j["scheduled"] == "2026-11-28T04:38:47+00:00");
    CHECK(j["missed"] == 3);
    CHECK(j["catch_up"] == false);
    CHECK(j["reason"] == m.reason);
    CHECK(j["saltpeter"]["host"] == "h");
}

TEST_CASE("redacted URLs drop user info, query and fragment") {
    CHECK(redact_url("https://user:secret@hooks.example.com:8443/path/x?token=abc#f") ==
          "https://hooks.example.com:8443/path/x");
    CHECK(redact_url("http://127.0.0.1:9/hook") == "http://127.0.0.1:9/hook");
    CHECK(redact_url("http://h?token=abc") == "http://h");
    CHECK(redact_url("http://h/a@b") == "http://h/a@b");  // an @ in the path is not user info
}

TEST_CASE("which answers are retried") {
    CHECK(webhook_retryable(std::nullopt));  // no answer: connect error, timeout
    CHECK(webhook_retryable(500));
    CHECK(webhook_retryable(503));
    CHECK(webhook_retryable(429));
    CHECK(webhook_retryable(408));
    CHECK_FALSE(webhook_retryable(400));
    CHECK_FALSE(webhook_retryable(404));
    CHECK_FALSE(webhook_retryable(301));
}
