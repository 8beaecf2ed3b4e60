// The salt-api parsers against the bodies recorded in salt/TRANSCRIPTS.md item 7, verbatim.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "salt/salt_api_json.hpp"

using namespace saltpeter;
using namespace saltpeter::detail;

TEST_CASE("salt api json: login token and expire") {
    const char* body =
        R"({"return": [{"token": "bf0f542ad9518ba0b234322d2075cbf49db779b5", "expire": 1795884991.5207007, "start": 1795841791.5207007, "user": "saltpeter", "eauth": "sharedsecret", "perms": [".*", "@jobs", "@runner", "@wheel"]}]})";
    auto r = parse_login(body);
    REQUIRE(r.ok());
    CHECK(r->token == "bf0f542ad9518ba0b234322d2075cbf49db779b5");
    CHECK(r->expire == doctest::Approx(1795884991.5207007));
}

TEST_CASE("salt api json: login errors never throw") {
    CHECK_FALSE(parse_login("<!DOCTYPE html PUBLIC\n<html><title>401 Unauthorized</title></html>").ok());
    CHECK_FALSE(parse_login("").ok());
    CHECK_FALSE(parse_login(R"({"return": []})").ok());
    CHECK_FALSE(parse_login(R"({"return": [{"expire": 1}]})").ok());
    CHECK_FALSE(parse_login(R"([1,2])").ok());
}

TEST_CASE("salt api json: test.ping all true, list with unknown id, stopped minion, no match") {
    auto all = parse_ping(R"({"return": [{"m1": true, "m3": true, "m2": true}]})");
    REQUIRE(all.ok());
    CHECK(all->responding == std::vector<std::string>{"m1", "m2", "m3"});
    CHECK(all->not_responding.empty());

    auto unknown = parse_ping(
        R"({"return": [{"m1": true, "nosuchminion": "Minion did not return. [No response]\nThe minions may not have all finished running and any remaining minions will return upon completion. To look up the return data for this job later, run the following command:\n\nsalt-run jobs.lookup_jid 20261128045652121329"}]})");
    REQUIRE(unknown.ok());
    CHECK(unknown->responding == std::vector<std::string>{"m1"});
    REQUIRE(unknown->not_responding.size() == 1);
    CHECK(unknown->not_responding[0].first == "nosuchminion");
    CHECK(unknown->not_responding[0].second.rfind("Minion did not return. [No response]", 0) == 0);

    auto stopped = parse_ping(R"({"return": [{"m2": true, "m1": true, "m3": false}]})");
    REQUIRE(stopped.ok());
    CHECK(stopped->responding == std::vector<std::string>{"m1", "m2"});
    REQUIRE(stopped->not_responding.size() == 1);
    CHECK(stopped->not_responding[0].first == "m3");
    CHECK_FALSE(stopped->not_responding[0].second.empty());

    auto none = parse_ping(R"({"return": [{}]})");
    REQUIRE(none.ok());
    CHECK(none->responding.empty());
    CHECK(none->not_responding.empty());
}

TEST_CASE("salt api json: test.ping with full_return is not a literal true") {
    auto r = parse_ping(
        R"({"return": [{"m1": {"ret": true, "retcode": 0, "jid": "20261128045713984941"}, "m2": {"ret": true, "retcode": 0, "jid": "20261128045713984941"}, "m3": false}]})");
    REQUIRE(r.ok());
    CHECK(r->responding.empty());
    CHECK(r->not_responding.size() == 3);
}

TEST_CASE("salt api json: HTML 400 page is an error") {
    auto r = parse_ping("<!DOCTYPE html PUBLIC\n\"-//W3C//DTD XHTML 1.0 Transitional//EN\"\n<html>\n<head>\n    <title>400 Bad Request</title>");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("not JSON") != std::string::npos);
}

TEST_CASE("salt api json: cmd.run_all normal returns") {
    auto r = parse_run_all(
        R"({"return": [{"m2": {"pid": 26574, "retcode": 3, "stdout": "FOO=bar\n/tmp\nnobody", "stderr": "err"}, "m1": {"pid": 26575, "retcode": 3, "stdout": "FOO=bar\n/tmp\nnobody", "stderr": "err"}}]})");
    REQUIRE(r.ok());
    REQUIRE(r->size() == 2);
    CHECK((*r)[0].minion == "m1");
    CHECK((*r)[0].returned);
    CHECK((*r)[0].retcode == 3);
    CHECK((*r)[0].stdout_text == "FOO=bar\n/tmp\nnobody");
    CHECK((*r)[0].stderr_text == "err");
    CHECK((*r)[0].error.empty());
    CHECK((*r)[1].minion == "m2");
}

TEST_CASE("salt api json: cmd.run_all full_return") {
    auto r = parse_run_all(
        R"({"return": [{"m1": {"ret": {"pid": 26599, "retcode": 3, "stdout": "hi", "stderr": ""}, "retcode": 3, "jid": "20261128045632131107"}, "m2": {"ret": {"pid": 26602, "retcode": 3, "stdout": "hi", "stderr": ""}, "retcode": 3, "jid": "20261128045632131107"}}]})");
    REQUIRE(r.ok());
    REQUIRE(r->size() == 2);
    CHECK((*r)[1].retcode == 3);
    CHECK((*r)[1].stdout_text == "hi");
    CHECK((*r)[1].error.empty());
}

TEST_CASE("salt api json: cmd.run_all string error, no return, stopped minion, no match") {
    auto r = parse_run_all(
        R"({"return": [{"m1": "ERROR: User 'x' is not available", "m2": "Minion did not return. [No response]\nThe minions may not have all finished running", "m3": false}]})");
    REQUIRE(r.ok());
    REQUIRE(r->size() == 3);
    CHECK((*r)[0].returned);
    CHECK((*r)[0].error == "ERROR: User 'x' is not available");
    CHECK_FALSE((*r)[1].returned);
    CHECK((*r)[1].error.rfind("Minion did not return", 0) == 0);
    CHECK_FALSE((*r)[2].returned);
    CHECK_FALSE((*r)[2].error.empty());

    auto none = parse_run_all(R"({"return": [{}]})");
    REQUIRE(none.ok());
    CHECK(none->empty());
}

TEST_CASE("salt api json: local_async jid and minions; no match") {
    auto r = parse_local_async(R"({"return": [{"jid": "20261128045635349902", "minions": ["m1", "m2", "m3"]}]})");
    REQUIRE(r.ok());
    CHECK(r->jid == "20261128045635349902");
    CHECK(r->minions == std::vector<std::string>{"m1", "m2", "m3"});
    auto none = parse_local_async(R"({"return": [{}]})");
    REQUIRE(none.ok());
    CHECK(none->jid.empty());
    CHECK(none->minions.empty());
}

TEST_CASE("salt api json: jobs lookup before and after completion") {
    auto before = parse_job_lookup(
        R"({"info": [{"jid": "20261128045635349902", "Function": "cmd.run_all", "Arguments": ["echo hi; sleep 3; exit 3"], "Target": "*", "Target-type": "glob", "User": "saltpeter", "Minions": ["m1", "m2", "m3"], "StartTime": "2026, Nov 28 04:56:35.349902", "Result": {}}], "return": [{}]})");
    REQUIRE(before.ok());
    CHECK(before->expected == std::vector<std::string>{"m1", "m2", "m3"});
    CHECK(before->returns.empty());

    auto after = parse_job_lookup(
        R"({"info": [{"jid": "20261128045635349902", "Function": "cmd.run_all", "Arguments": ["echo hi; sleep 3; exit 3"], "Target": "*", "Target-type": "glob", "User": "saltpeter", "Minions": ["m1", "m2", "m3"], "StartTime": "2026, Nov 28 04:56:35.349902", "Result": {"m2": {"return": {"pid": 26648, "retcode": 3, "stdout": "hi", "stderr": ""}, "retcode": 3, "success": false}, "m1": {"return": {"pid": 26650, "retcode": 3, "stdout": "hi", "stderr": ""}, "retcode": 3, "success": false}, "m3": {"return": {"pid": 26646, "retcode": 3, "stdout": "hi", "stderr": ""}, "retcode": 3, "success": false}}}], "return": [{"m2": {"pid": 26648, "retcode": 3, "stdout": "hi", "stderr": ""}, "m1": {"pid": 26650, "retcode": 3, "stdout": "hi", "stderr": ""}, "m3": {"pid": 26646, "retcode": 3, "stdout": "hi", "stderr": ""}}]})");
    REQUIRE(after.ok());
    CHECK(after->expected == std::vector<std::string>{"m1", "m2", "m3"});
    REQUIRE(after->returns.size() == 3);
    CHECK(after->returns[2].minion == "m3");
    CHECK(after->returns[2].retcode == 3);
    CHECK(after->returns[2].stdout_text == "hi");
}

TEST_CASE("salt api json: run_all lowstate merges env per minion") {
    RunAllRequest req;
    req.minions = {"m1", "m2"};
    req.argv = {"echo", "hi there"};
    req.env = {{"A", "1"}, {"B", "2"}};
    req.minion_env["m2"] = {{"B", "m2"}, {"SP_TOKEN", "t2"}};
    req.cwd = "/tmp";
    req.timeout = std::chrono::seconds(7);
    auto j = nlohmann::json::parse(run_all_lowstate(req, "m2", "local"));
    REQUIRE(j.is_array());
    REQUIRE(j.size() == 1);
    CHECK(j[0]["client"] == "local");
    CHECK(j[0]["tgt"] == "m2");
    CHECK(j[0]["tgt_type"] == "list");
    CHECK(j[0]["fun"] == "cmd.run_all");
    CHECK(j[0]["arg"][0] == "echo 'hi there'");
    CHECK(j[0]["kwarg"]["env"]["A"] == "1");
    CHECK(j[0]["kwarg"]["env"]["B"] == "m2");
    CHECK(j[0]["kwarg"]["env"]["SP_TOKEN"] == "t2");
    CHECK(j[0]["kwarg"]["cwd"] == "/tmp");
    CHECK_FALSE(j[0]["kwarg"].contains("runas"));
    CHECK(j[0]["timeout"] == 7);
    auto p = nlohmann::json::parse(ping_lowstate(SaltTarget{"web*", TargetType::glob}, std::chrono::seconds(5)));
    CHECK(p[0]["tgt_type"] == "glob");
    CHECK(p[0]["fun"] == "test.ping");
    CHECK(p[0]["timeout"] == 5);
}
