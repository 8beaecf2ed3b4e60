// ui_protocol.hpp: every /ws message of PROTOCOL.md 3.2-3.4, parsed and built without a socket.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "api/ui_protocol.hpp"

using namespace saltpeter;
using nlohmann::json;
using Kind = ui::Command::Kind;

namespace {

SysMicros at(std::int64_t us) { return SysMicros{std::chrono::microseconds{us}}; }

RunRecord demo_run(bool finished) {
    RunRecord run;
    run.instance = "demo_1764300000";
    run.job = "demo";
    run.group = "jobs";
    run.started = at(1764304233123456);  // 2025-11-28T04:30:33.123456
    TargetResult m1;
    m1.machine = "m1";
    m1.state = TargetState::started;
    m1.starttime = run.started;
    m1.output = "line 1\n";
    m1.wrapper_version = "0.9.31";
    m1.last_heartbeat = run.started;
    TargetResult m2;
    m2.machine = "m2";
    m2.state = TargetState::finished;
    m2.starttime = run.started;
    m2.endtime = at(1764304240000000);
    m2.retcode = 255;
    m2.output = "Target did not respond";
    run.targets["m1"] = m1;
    run.targets["m2"] = m2;
    if (finished) run.ended = at(1764304250000000);
    return run;
}

}  // namespace

TEST_CASE("parse_command: every client frame of the original UI") {
    auto sub = ui::parse_command(R"({"subscribe": ["a", "b"]})");
    REQUIRE(sub);
    CHECK(sub->kind == Kind::subscribe);
    CHECK(sub->jobs == std::vector<std::string>{"a", "b"});
    auto bare = ui::parse_command(R"({"subscribe": "a"})");
    CHECK(bare->kind == Kind::subscribe);
    CHECK(bare->jobs == std::vector<std::string>{"a"});
    auto unsub = ui::parse_command(R"({"unsubscribe": "a"})");
    CHECK(unsub->kind == Kind::unsubscribe);
    CHECK(unsub->jobs == std::vector<std::string>{"a"});
    auto ack = ui::parse_command(R"({"ack": {"cron": "a", "machine": "m1", "position": 42}})");
    CHECK(ack->kind == Kind::ack);
    CHECK(ack->job == "a");
    CHECK(ack->machine == "m1");
    CHECK(ack->position == 42);
    auto run = ui::parse_command(R"({"run": "a"})");
    CHECK(run->kind == Kind::run);
    CHECK(run->job == "a");
    auto kc = ui::parse_command(R"({"killCron": "a"})");
    CHECK(kc->kind == Kind::kill_cron);
    CHECK(kc->job == "a");
    auto km = ui::parse_command(R"({"killMachine": {"cron": "a", "machine": "m1", "job_instance": "a_1"}})");
    CHECK(km->kind == Kind::kill_machine);
    CHECK(km->machine == "m1");
    REQUIRE(km->instance);
    CHECK(*km->instance == "a_1");
    auto km2 = ui::parse_command(R"({"killMachine": {"cron": "a", "machine": "m1"}})");
    CHECK(km2->kind == Kind::kill_machine);
    CHECK_FALSE(km2->instance);
    auto tl = ui::parse_command(R"({"getTimeline": {"start_date": "now-1h", "end_date": "2026-11-28T04:00:00.000Z", "id": "17"}})");
    CHECK(tl->kind == Kind::get_timeline);
    CHECK(tl->start_date == "now-1h");
    CHECK(tl->id == "17");
    auto push = ui::parse_command(R"({"push": true})");
    CHECK(push->kind == Kind::push);
    CHECK(push->push);
}

TEST_CASE("parse_command: the original's key precedence, junk and bad JSON") {
    auto both = ui::parse_command(R"({"run": "x", "subscribe": ["y"]})");
    CHECK(both->kind == Kind::subscribe);
    CHECK(ui::parse_command(R"({"hello": 1})")->kind == Kind::none);
    CHECK(ui::parse_command(R"([1, 2])")->kind == Kind::none);
    CHECK(ui::parse_command(R"({"run": 5})")->kind == Kind::none);
    CHECK(ui::parse_command(R"({"killMachine": {"cron": "a"}})")->kind == Kind::none);
    CHECK_FALSE(ui::parse_command("{not json"));
}

TEST_CASE("UTF-16 positions: BMP, non-BMP and invalid bytes") {
    CHECK(ui::utf16_length("abc") == 3);
    CHECK(ui::utf16_length("caf\xc3\xa9") == 4);
    CHECK(ui::utf16_length("\xe2\x82\xac") == 1);           // euro sign
    CHECK(ui::utf16_length("a\xf0\x9f\x98\x80" "b") == 4);  // emoji = surrogate pair
    CHECK(ui::utf16_length("\xff") == 1);
    const std::string s = "a\xf0\x9f\x98\x80" "b";
    CHECK(ui::byte_offset_of_utf16(s, 1) == 1);
    CHECK(ui::byte_offset_of_utf16(s, 2) == 1);  // never inside the pair
    CHECK(ui::byte_offset_of_utf16(s, 3) == 5);
    CHECK(ui::byte_offset_of_utf16(s, 99) == s.size());
}

TEST_CASE("iso_datetime uses T, python str uses a space") {
    CHECK(ui::iso_datetime(at(1764304233123456)) == "2025-11-28T04:30:33.123456+00:00");
    CHECK(python_datetime(at(1764304233123456)) == "2025-11-28 04:30:33.123456+00:00");
    CHECK(ui::iso_datetime(at(1764304233000000)) == "2025-11-28T04:30:33+00:00");
}

TEST_CASE("status frame: running, last_state, result_ok true while running") {
    std::map<std::string, RunRecord> runs{{"demo_1764300000", demo_run(false)}};
    std::map<std::string, JobStatus> status;
    status["demo"].last_run = at(1764304233123456);
    status["demo"].last_success = false;
    status["idle"];  // no last_run: left out
    const json j = json::parse(ui::status_frame(runs, status));
    CHECK(j["type"] == "status");
    CHECK(j["sp_version"].is_string());
    const auto& r = j["running"]["demo_1764300000"];
    CHECK(r["name"] == "demo");
    CHECK(r["started"] == "2025-11-28T04:30:33.123456+00:00");
    CHECK(r["machines"] == json::array({"m1", "m2"}));
    CHECK(r["stop_signal"] == false);
    CHECK(j["last_state"]["demo"]["result_ok"] == true);
    CHECK_FALSE(j["last_state"].contains("idle"));
    runs.clear();
    const json idle = json::parse(ui::status_frame(runs, status));
    CHECK(idle["last_state"]["demo"]["result_ok"] == false);
    CHECK(idle["running"].empty());
}

TEST_CASE("status frame starts with type (ordered like the original)") {
    std::map<std::string, RunRecord> runs;
    std::map<std::string, JobStatus> status;
    CHECK(ui::status_frame(runs, status).rfind(R"({"type":"status")", 0) == 0);
}

TEST_CASE("details frame: empty strings, never null; ret always empty; UTF-16 output_length") {
    RunRecord run = demo_run(false);
    run.targets["m1"].output = "a\xf0\x9f\x98\x80";
    JobStatus st;
    st.last_run = run.started;
    st.next_run = SysSeconds{std::chrono::seconds{1764304293}};
    const json j = json::parse(ui::details_frame("demo", "jobs", &st, &run));
    CHECK(j["type"] == "details");
    CHECK(j["cron"] == "demo");
    const auto& d = j["data"];
    CHECK(d["next_run"] == "2025-11-28T04:31:33+00:00");
    CHECK(d["last_run"] == "2025-11-28T04:30:33.123456+00:00");
    CHECK(d["group"] == "jobs");
    CHECK(d["overlap"] == false);
    CHECK(d["targets"] == json::array({"m1", "m2"}));
    const auto& m1 = d["results"]["m1"];
    CHECK(m1["ret"] == "");
    CHECK(m1["retcode"] == "");
    CHECK(m1["endtime"] == "");
    CHECK(m1["starttime"] == "2025-11-28 04:30:33.123456+00:00");
    CHECK(m1["wrapper_version"] == "0.9.31");
    CHECK(m1["output_length"] == 3);
    const auto& m2 = d["results"]["m2"];
    CHECK(m2["retcode"] == 255);
    CHECK(m2["endtime"] == "2025-11-28 04:30:40+00:00");
    CHECK(d["last_success"] == "");
    CHECK_FALSE(d.contains("job_instance"));
    for (const auto& [k, v] : d.items()) CHECK_MESSAGE(!v.is_null(), k);
    for (const auto& [k, v] : m1.items()) CHECK_MESSAGE(!v.is_null(), k);
    const json pushed = json::parse(ui::details_frame("demo", "jobs", &st, &run, true));
    CHECK(pushed["data"]["job_instance"] == "demo_1764300000");
    CHECK(pushed["data"]["finished"] == false);
}

TEST_CASE("details frame of a job that never ran") {
    const json j = json::parse(ui::details_frame("idle", "jobs", nullptr, nullptr));
    CHECK(j["data"]["next_run"] == "");
    CHECK(j["data"]["last_run"] == "");
    CHECK(j["data"]["targets"].empty());
    CHECK(j["data"]["results"].is_object());
}

TEST_CASE("output_chunk frame and non-ASCII escaping") {
    ui::OutputChunk c;
    c.cron = "demo";
    c.machine = "m1";
    c.chunk = "caf\xc3\xa9\n";
    c.position = 7;
    c.total_length = 12;
    const std::string text = ui::output_chunk_frame(c);
    CHECK(text.find("\\u00e9") != std::string::npos);  // escaped as Python's json.dumps does
    const json j = json::parse(text);
    CHECK(j["type"] == "output_chunk");
    CHECK(j["chunk"] == "caf\xc3\xa9\n");
    CHECK(j["position"] == 7);
    CHECK(j["total_length"] == 12);
    CHECK(j["is_complete"] == false);
    CHECK_FALSE(j.contains("job_instance"));
    c.instance = "demo_1";
    CHECK(json::parse(ui::output_chunk_frame(c))["job_instance"] == "demo_1");
}

TEST_CASE("timeline frame has no type") {
    const json j = json::parse(ui::timeline_frame());
    CHECK_FALSE(j.contains("type"));
    CHECK(j["timeline"].is_object());
}

TEST_CASE("config frame: crons with the keys the UI reads, no secrets") {
    auto loaded = merge_configs({parse_config(R"(
saltpeter_config:
  api_tokens:
    - {name: ops, token: supersecret123, role: operate}
backup:
  command: "echo hi"
  targets: "web*"
  target_type: glob
  sec: 0
  min: 5
  hour: 3
  dom: '*'
  mon: '*'
  dow: '*'
  year: '*'
  timeout: 60
  batch_size: 2
)", "jobs.yaml")});
    REQUIRE(loaded.error_count() == 0);
    const std::string text = ui::config_frame(loaded.config, 17.5);
    CHECK(text.find("supersecret123") == std::string::npos);
    const json j = json::parse(text);
    CHECK(j["type"] == "config");
    CHECK(j["sp_version"].is_string());
    const auto& c = j["config"];
    CHECK(c["serial"] == 17.5);
    CHECK(c["maintenance"]["global"] == false);
    CHECK(c["maintenance"]["machines"].is_array());
    const auto& b = c["crons"]["backup"];
    CHECK(b["command"] == "echo hi");
    CHECK(b["targets"] == "web*");
    CHECK(b["target_type"] == "glob");
    CHECK(b["min"] == "5");
    CHECK(b["hour"] == "3");
    CHECK(b["sec"] == "0");
    CHECK(b["year"] == "*");
    CHECK(b["timeout"] == 60);
    CHECK(b["group"] == "jobs");
    CHECK(b["batch_size"] == 2);
    CHECK(b["utc"] == true);
}

TEST_CASE("latest_run picks the newest start of that job") {
    std::map<std::string, RunRecord> runs;
    RunRecord a = demo_run(true);
    RunRecord b = demo_run(false);
    b.instance = "demo_1764300100";
    b.started = a.started + std::chrono::seconds(100);
    RunRecord other = demo_run(false);
    other.instance = "x_1";
    other.job = "x";
    other.started = b.started + std::chrono::seconds(5);
    runs[a.instance] = a;
    runs[b.instance] = b;
    runs[other.instance] = other;
    REQUIRE(ui::latest_run(runs, "demo") != nullptr);
    CHECK(ui::latest_run(runs, "demo")->instance == "demo_1764300100");
    CHECK(ui::latest_run(runs, "none") == nullptr);
}

TEST_CASE("run_json: targets with retcode null while unknown, durations, output on request") {
    const RunRecord run = demo_run(true);
    const json j = json::parse(ui::run_json(run, false));
    CHECK(j["instance"] == "demo_1764300000");
    CHECK(j["finished"] == true);
    CHECK(j["success"] == false);
    CHECK(j["targets"]["m1"]["retcode"].is_null());
    CHECK(j["targets"]["m2"]["retcode"] == 255);
    CHECK(j["targets"]["m2"]["duration"].get<double>() == doctest::Approx(6.876544));
    CHECK_FALSE(j["targets"]["m2"].contains("output"));
    CHECK(json::parse(ui::run_json(run, true))["targets"]["m2"]["output"] == "Target did not respond");
    CHECK(json::parse(ui::error_json("bad \"x\""))["error"] == "bad \"x\"");
}

TEST_CASE("timeline bounds: ISO 8601 with Z or offset, and now-relative date math") {
    const SysMicros now = at(1764304800000000);  // 2025-11-28T04:40:00Z
    CHECK(*ui::parse_timeline_bound("now", now) == now);
    CHECK(*ui::parse_timeline_bound("now-1h", now) == at(1764304800000000 - 3600000000LL));
    CHECK(*ui::parse_timeline_bound("now-30m", now) == at(1764304800000000 - 1800000000LL));
    CHECK(*ui::parse_timeline_bound("now+2d", now) == at(1764304800000000 + 2LL * 86400000000LL));
    CHECK(*ui::parse_timeline_bound("2025-11-28T04:30:00.000Z", now) == at(1764304200000000));
    CHECK(*ui::parse_timeline_bound("2025-11-28T05:30:00+01:00", now) == at(1764304200000000));
    auto bad_unit = ui::parse_timeline_bound("now-3y", now);
    REQUIRE_FALSE(bad_unit);
    CHECK(bad_unit.error().message.find("unknown unit 'y'") != std::string::npos);
    CHECK_FALSE(ui::parse_timeline_bound("now-", now));
    CHECK_FALSE(ui::parse_timeline_bound("yesterday", now));
}

TEST_CASE("timeline from kept runs: machine_start and machine_result in the window, sorted, untyped") {
    std::map<std::string, RunRecord> runs{{"demo_1764300000", demo_run(false)}};
    const json all = json::parse(ui::timeline_frame(runs, at(0), at(1764400000000000), "req-7", 12.5));
    CHECK_FALSE(all.contains("type"));
    CHECK(all["timeline"]["id"] == "req-7");
    CHECK(all["timeline"]["serial"] == 12.5);
    const json& content = all["timeline"]["content"];
    REQUIRE(content.size() == 3);  // m1 start, m2 start, m2 result (m1 has not finished)
    CHECK(content[0]["msg_type"] == "machine_start");
    CHECK(content[0]["ret_code"] == 0);
    CHECK(content[0]["timestamp"] == "2025-11-28T04:30:33.123456+00:00");
    CHECK(content[0]["cron"] == "demo");
    CHECK(content[0]["job_instance"] == "demo_1764300000");
    CHECK(content[2]["msg_type"] == "machine_result");
    CHECK(content[2]["ret_code"] == 255);
    CHECK(content[2]["timestamp"] == "2025-11-28T04:30:40+00:00");
    // A window after the starts holds only the result.
    const json late = json::parse(ui::timeline_frame(runs, at(1764304235000000), at(1764400000000000), "x", 0));
    REQUIRE(late["timeline"]["content"].size() == 1);
    CHECK(late["timeline"]["content"][0]["msg_type"] == "machine_result");
}
