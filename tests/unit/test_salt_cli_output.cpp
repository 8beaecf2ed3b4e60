// The salt CLI output parser, fed with outputs copied verbatim from salt/TRANSCRIPTS.md.
#include <doctest/doctest.h>

#include "salt/salt_cli_output.hpp"

using saltpeter::detail::parse_ping_output;
using saltpeter::detail::parse_run_all_output;
using saltpeter::detail::split_salt_cli_output;

namespace {
const std::string k_cmd = "salt test.ping";
}

TEST_CASE("salt cli output: test.ping, all true (item 1)") {
    const char* out = R"({"m3": true}
{"m1": true}
{"m2": true}
)";
    auto reply = parse_ping_output(out, 0, k_cmd);
    REQUIRE(reply.ok());
    CHECK(reply->responding == std::vector<std::string>{"m1", "m2", "m3"});
    CHECK(reply->not_responding.empty());
}

TEST_CASE("salt cli output: test.ping, static single object also parses") {
    auto reply = parse_ping_output(R"({"m3": true, "m2": true, "m1": true})" "\n", 0, k_cmd);
    REQUIRE(reply.ok());
    CHECK(reply->responding.size() == 3);
}

TEST_CASE("salt cli output: no minions matched (item 4.1) is an empty reply") {
    // stdout and stderr merged, as ProcessRunner delivers them.
    const char* out = "No minions matched the target. No command was sent, no jid was assigned.\n"
                      "{}\n"
                      "ERROR: No return received\n";
    auto reply = parse_ping_output(out, 2, k_cmd);
    REQUIRE(reply.ok());
    CHECK(reply->responding.empty());
    CHECK(reply->not_responding.empty());
    auto lines = split_salt_cli_output(out);
    CHECK(lines.no_minions_matched);
    CHECK(lines.documents.empty());
    CHECK(lines.text_lines.size() == 2);
}

TEST_CASE("salt cli output: -L with an unknown id (item 4.2)") {
    const char* out = R"({"m1": true}
{"nosuchminion": "Minion did not return. [No response]\nThe minions may not have all finished running and any remaining minions will return upon completion. To look up the return data for this job later, run the following command:\n\nsalt-run jobs.lookup_jid 20261128044944282604"}
ERROR: Minions returned with non-zero exit code
)";
    auto reply = parse_ping_output(out, 1, k_cmd);
    REQUIRE(reply.ok());
    CHECK(reply->responding == std::vector<std::string>{"m1"});
    REQUIRE(reply->not_responding.size() == 1);
    CHECK(reply->not_responding[0].first == "nosuchminion");
    CHECK(reply->not_responding[0].second.rfind("Minion did not return. [No response]\nThe minions", 0) == 0);
}

TEST_CASE("salt cli output: a stopped minion (item 4.3)") {
    const char* out = R"({"m1": true}
{"m2": true}
{"m3": "Minion did not return. [No response]\nThe minions may not have all finished running and any remaining minions will return upon completion. To look up the return data for this job later, run the following command:\n\nsalt-run jobs.lookup_jid 20261128045214866440"}
)";
    auto reply = parse_ping_output(out, 1, k_cmd);
    REQUIRE(reply.ok());
    CHECK(reply->responding == std::vector<std::string>{"m1", "m2"});
    REQUIRE(reply->not_responding.size() == 1);
    CHECK(reply->not_responding[0].first == "m3");
}

TEST_CASE("salt cli output: only non-true values are not responding") {
    auto reply = parse_ping_output("{\"m1\": false}\n{\"m2\": \"true\"}\n{\"m3\": 1}\n", 1, k_cmd);
    REQUIRE(reply.ok());
    CHECK(reply->responding.empty());
    REQUIRE(reply->not_responding.size() == 3);
    CHECK(reply->not_responding[0].second == "false");
    CHECK(reply->not_responding[1].second == "true");
    CHECK(reply->not_responding[2].second == "1");
}

TEST_CASE("salt cli output: failures without JSON are errors naming the command and the text") {
    auto usage = parse_ping_output("Usage: salt-run [options] <function> [arguments]\n"
                                   "salt-run: error: no such option: --static\n",
                                   64, k_cmd);
    REQUIRE_FALSE(usage.ok());
    CHECK(usage.error().message.find("salt test.ping") != std::string::npos);
    CHECK(usage.error().message.find("exit code 64") != std::string::npos);
    CHECK(usage.error().message.find("no such option: --static") != std::string::npos);
    auto down = parse_ping_output("Salt request timed out. The master is not responding.\n", 1, k_cmd);
    REQUIRE_FALSE(down.ok());
    CHECK(down.error().message.find("master is not responding") != std::string::npos);
    auto empty = parse_ping_output("", 1, k_cmd);
    REQUIRE_FALSE(empty.ok());
    CHECK(empty.error().message.find("no output") != std::string::npos);
    // exit 2 with `{}` but no "No minions matched" text: all targeted minions silent (static).
    auto silent = parse_ping_output("{}\nERROR: No return received\n", 2, k_cmd);
    CHECK_FALSE(silent.ok());
    // A CLI killed by SIGTERM exits 0 with empty output (TRANSCRIPTS 4.2): not an empty reply.
    auto killed = parse_ping_output("", 0, k_cmd);
    CHECK_FALSE(killed.ok());
}

TEST_CASE("salt cli output: garbage never throws") {
    for (const char* s : {"{", "{\"m1\":", "}}}{{{", "\xff\xfe{\"a\":1}", "[1,2]", "null", "{\"m1\": tru}"}) {
        CHECK_NOTHROW(split_salt_cli_output(s));
        CHECK_NOTHROW(parse_ping_output(s, 0, k_cmd));
        CHECK_NOTHROW(parse_run_all_output(split_salt_cli_output(s)));
    }
}

TEST_CASE("salt cli output: cmd.run_all returns (item 1, item 2)") {
    const char* out = R"({"m3": {"pid": 27340, "retcode": 0, "stdout": "hi", "stderr": ""}}
{"m2": {"pid": 27337, "retcode": 0, "stdout": "hi", "stderr": ""}}
{"m1": {"pid": 27343, "retcode": 0, "stdout": "hi", "stderr": ""}}
)";
    auto rets = parse_run_all_output(split_salt_cli_output(out));
    REQUIRE(rets.size() == 3);
    CHECK(rets[0].minion == "m3");
    CHECK(rets[0].returned);
    CHECK(rets[0].retcode == 0);
    CHECK(rets[0].stdout_text == "hi");
    CHECK(rets[0].error.empty());
}

TEST_CASE("salt cli output: cmd.run_all static object with two minions") {
    const char* out =
        R"({"m2": {"pid": 19009, "retcode": 0, "stdout": "hi", "stderr": ""}, "m1": {"pid": 19012, "retcode": 0, "stdout": "hi", "stderr": ""}})"
        "\n";
    auto rets = parse_run_all_output(split_salt_cli_output(out));
    REQUIRE(rets.size() == 2);
}

TEST_CASE("salt cli output: wrapper missing / not executable / fine (Launching a wrapper)") {
    const char* missing = R"({"m1": {"pid": 2308, "retcode": 127, "stdout": "", "stderr": "/bin/bash: line 1: /nonexistent/sp_wrapper: No such file or directory"}}
{"m2": {"pid": 2311, "retcode": 127, "stdout": "", "stderr": "/bin/bash: line 1: /nonexistent/sp_wrapper: No such file or directory"}}
ERROR: Minions returned with non-zero exit code
)";
    auto rets = parse_run_all_output(split_salt_cli_output(missing));
    REQUIRE(rets.size() == 2);
    CHECK(rets[1].minion == "m2");
    CHECK(rets[1].retcode == 127);
    CHECK(rets[1].stderr_text == "/bin/bash: line 1: /nonexistent/sp_wrapper: No such file or directory");
    const char* noexec = R"({"m1": {"pid": 2324, "retcode": 126, "stdout": "", "stderr": "/bin/bash: line 1: /tmp/noexec.sh: Permission denied"}})"
                         "\nERROR: Minions returned with non-zero exit code\n";
    rets = parse_run_all_output(split_salt_cli_output(noexec));
    REQUIRE(rets.size() == 1);
    CHECK(rets[0].retcode == 126);
    const char* fine = R"({"m1": {"pid": 2335, "retcode": 0, "stdout": "Saltpeter Wrapper version 0.9.31\nWrapper started successfully", "stderr": ""}})";
    rets = parse_run_all_output(split_salt_cli_output(fine));
    REQUIRE(rets.size() == 1);
    CHECK(rets[0].stdout_text == "Saltpeter Wrapper version 0.9.31\nWrapper started successfully");
}

TEST_CASE("salt cli output: timed-out command is a normal dict (item 3)") {
    auto rets = parse_run_all_output(split_salt_cli_output(
        R"({"m1": {"stdout": "sleep 10 : Timed out after 2 seconds", "stderr": "", "retcode": 1, "pid": 19422}})"));
    REQUIRE(rets.size() == 1);
    CHECK(rets[0].returned);
    CHECK(rets[0].retcode == 1);
    CHECK(rets[0].stdout_text == "sleep 10 : Timed out after 2 seconds");
}

TEST_CASE("salt cli output: cwd / runas errors are string values (item 3)") {
    auto rets = parse_run_all_output(split_salt_cli_output(
        R"({"m1": "ERROR: Specified cwd '/nonexistent' either not absolute or does not exist"})"
        "\nERROR: Minions returned with non-zero exit code\n"));
    REQUIRE(rets.size() == 1);
    CHECK(rets[0].returned);
    CHECK(rets[0].retcode == 1);
    CHECK(rets[0].error == "ERROR: Specified cwd '/nonexistent' either not absolute or does not exist");
    rets = parse_run_all_output(split_salt_cli_output(R"({"m1": "ERROR: User 'nosuchuser' is not available"})"));
    REQUIRE(rets.size() == 1);
    CHECK(rets[0].error == "ERROR: User 'nosuchuser' is not available");
}

TEST_CASE("salt cli output: --show-jid line and a job that did not return (item 5)") {
    const char* out = R"(jid: 20261128045529972202
{"m1": "Minion did not return. [No response]\nThe minions may not have all finished running and any remaining minions will return upon completion. To look up the return data for this job later, run the following command:\n\nsalt-run jobs.lookup_jid 20261128045529972202"}
ERROR: Minions returned with non-zero exit code
)";
    auto lines = split_salt_cli_output(out);
    REQUIRE(lines.jid.has_value());
    CHECK(*lines.jid == "20261128045529972202");
    auto rets = parse_run_all_output(lines);
    REQUIRE(rets.size() == 1);
    CHECK_FALSE(rets[0].returned);
    CHECK(rets[0].error.rfind("Minion did not return", 0) == 0);
}
