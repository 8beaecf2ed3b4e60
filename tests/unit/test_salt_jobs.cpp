// `salt --async` and `salt-run jobs.list_job` output, copied verbatim from salt/TRANSCRIPTS.md
// items 3 and 5, and the legacy-mode mapping of a return to a target result.
#include <doctest/doctest.h>

#include <string>

#include "salt/legacy_result.hpp"
#include "salt/salt_cli_output.hpp"

using namespace saltpeter;
using namespace saltpeter::detail;

namespace {
const std::string k_async = "salt --async";
const std::string k_list = "salt-run jobs.list_job";

// Item 5: list_job of an --async job that returned on m1 and m2 (dict returns).
const char* k_list_job_dict = R"({
    "jid": "20261128045411954509",
    "Function": "cmd.run_all",
    "Arguments": [
        "echo hi; echo err >&2; exit 3"
    ],
    "Target": [
        "m1",
        "m2"
    ],
    "Target-type": "list",
    "User": "root",
    "Minions": [
        "m1",
        "m2"
    ],
    "StartTime": "2026, Nov 28 04:54:11.954509",
    "Result": {
        "m2": {
            "return": {
                "pid": 24523,
                "retcode": 3,
                "stdout": "hi",
                "stderr": "err"
            },
            "retcode": 3,
            "success": false
        },
        "m1": {
            "return": {
                "pid": 24520,
                "retcode": 3,
                "stdout": "hi",
                "stderr": "err"
            },
            "retcode": 3,
            "success": false
        }
    }
}
)";

// Item 3: a string return (bad cwd).
const char* k_list_job_string = R"({
    "jid": "20261128045558247973",
    "Function": "cmd.run_all",
    "Arguments": [
        "pwd",
        {
            "__kwarg__": true,
            "cwd": "/nonexistent"
        }
    ],
    "Target": "m1",
    "Target-type": "glob",
    "User": "root",
    "Minions": [
        "m1"
    ],
    "StartTime": "2026, Nov 28 04:55:58.247973",
    "Result": {
        "m1": {
            "return": "ERROR: Specified cwd '/nonexistent' either not absolute or does not exist",
            "retcode": 1,
            "success": false,
            "out": "nested"
        }
    }
}
)";

// Item 3: Salt's timeout= return.
const char* k_list_job_timeout = R"({
    "jid": "20261128045551450588",
    "Function": "cmd.run_all",
    "Arguments": [
        "sleep 10",
        {
            "__kwarg__": true,
            "timeout": 2
        }
    ],
    "Target": "m1",
    "Target-type": "glob",
    "User": "root",
    "Minions": [
        "m1"
    ],
    "StartTime": "2026, Nov 28 04:55:51.450588",
    "Result": {
        "m1": {
            "return": {
                "stdout": "sleep 10 : Timed out after 2 seconds",
                "stderr": "",
                "retcode": 1,
                "pid": 26004
            },
            "retcode": 0,
            "success": true
        }
    }
}
)";
}  // namespace

TEST_CASE("salt jobs: the --async job ID line (item 5)") {
    auto p = parse_async_output("Executed command with job ID: 20261128045411954509\n", 0, k_async);
    REQUIRE(p.ok());
    CHECK(p->jid == "20261128045411954509");
    CHECK_FALSE(p->no_minions_matched);
}

TEST_CASE("salt jobs: --async on a target with no match is job ID 0 (item 5)") {
    auto p = parse_async_output(
        "No minions matched the target. No command was sent, no jid was assigned.\n"
        "Executed command with job ID: 0\n",
        0, k_async);
    REQUIRE(p.ok());
    CHECK(p->jid.empty());
    CHECK(p->no_minions_matched);
}

TEST_CASE("salt jobs: --async that fails or prints no job ID is an error quoting the text") {
    auto down = parse_async_output("Salt request timed out. The master is not responding.\n", 1, k_async);
    REQUIRE_FALSE(down.ok());
    CHECK(down.error().message.find("salt --async failed (exit code 1") == 0);
    CHECK(down.error().message.find("The master is not responding") != std::string::npos);
    auto nothing = parse_async_output("", 0, k_async);
    REQUIRE_FALSE(nothing.ok());
    CHECK(nothing.error().message.find("no output") != std::string::npos);
    // A jid cut short or with junk is no jid.
    CHECK_FALSE(parse_async_output("Executed command with job ID: 2026x\n", 0, k_async).ok());
}

TEST_CASE("salt jobs: list_job with dict returns (item 5)") {
    auto job = parse_list_job_output(k_list_job_dict, k_list);
    REQUIRE(job.ok());
    CHECK(job->jid == "20261128045411954509");
    CHECK(job->error.empty());
    CHECK(job->minions == std::vector<std::string>{"m1", "m2"});
    REQUIRE(job->returns.size() == 2);
    CHECK(job->returns[0].minion == "m1");
    CHECK(job->returns[0].returned);
    CHECK(job->returns[0].retcode == 3);
    CHECK(job->returns[0].stdout_text == "hi");
    CHECK(job->returns[0].stderr_text == "err");
    CHECK(job->returns[1].minion == "m2");
}

TEST_CASE("salt jobs: list_job with a string return (item 3)") {
    auto job = parse_list_job_output(k_list_job_string, k_list);
    REQUIRE(job.ok());
    REQUIRE(job->returns.size() == 1);
    CHECK(job->returns[0].returned);
    CHECK(job->returns[0].error == "ERROR: Specified cwd '/nonexistent' either not absolute or does not exist");
}

TEST_CASE("salt jobs: list_job of a terminated job lists only what returned (item 5)") {
    auto job = parse_list_job_output(R"({
    "jid": "20261128045422758134",
    "Function": "cmd.run_all",
    "Arguments": [
        "sleep 60"
    ],
    "Target": "*",
    "Target-type": "glob",
    "User": "root",
    "Minions": [
        "m1",
        "m2",
        "m3"
    ],
    "StartTime": "2026, Nov 28 04:54:22.758134",
    "Result": {
        "m3": {
            "return": {
                "pid": 24779,
                "retcode": 0,
                "stdout": "",
                "stderr": ""
            },
            "retcode": 0,
            "success": true
        }
    }
}
)",
                                     k_list);
    REQUIRE(job.ok());
    CHECK(job->minions == std::vector<std::string>{"m1", "m2", "m3"});
    REQUIRE(job->returns.size() == 1);
    CHECK(job->returns[0].minion == "m3");
    CHECK(job->returns[0].retcode == 0);
}

TEST_CASE("salt jobs: list_job of an unknown jid has Error and no returns (item 5)") {
    auto job = parse_list_job_output(R"({
    "jid": "20200101000000000000",
    "Error": "Cannot contact returner or no job with this jid",
    "StartTime": "2020, Jan 01 00:00:00.000000",
    "Result": {}
}
)",
                                     k_list);
    REQUIRE(job.ok());
    CHECK(job->error == "Cannot contact returner or no job with this jid");
    CHECK(job->returns.empty());
    CHECK(job->minions.empty());
}

TEST_CASE("salt jobs: list_job output that is not a job document is an error") {
    auto usage = parse_list_job_output("Usage: salt-run [options] <function> [arguments]\n", k_list);
    REQUIRE_FALSE(usage.ok());
    CHECK(usage.error().message.find("salt-run jobs.list_job: output is not one JSON object") == 0);
    CHECK_FALSE(parse_list_job_output("{\"jid\": \"1\"}\n", k_list).ok());
    // Text before the document is skipped.
    auto noisy = parse_list_job_output(std::string("[WARNING ] something\n") + k_list_job_timeout, k_list);
    REQUIRE(noisy.ok());
    CHECK(noisy->returns.size() == 1);
}

TEST_CASE("legacy result: Salt's timeout= return is 124 with Salt's text (item 3)") {
    auto job = parse_list_job_output(k_list_job_timeout, k_list);
    REQUIRE(job.ok());
    REQUIRE(job->returns.size() == 1);
    CHECK(is_salt_timeout(job->returns[0], "sleep 10"));
    auto r = legacy_result(job->returns[0], "sleep 10", false);
    CHECK(r.code == 124);
    CHECK(r.output == "sleep 10 : Timed out after 2 seconds");
    // The same text printed by another command, or with stderr, is the command's own exit 1.
    CHECK_FALSE(is_salt_timeout(job->returns[0], "sleep 11"));
    MinionReturn own{"m1", true, 1, "sleep 10 : Timed out after 2 seconds", "x", ""};
    CHECK(legacy_result(own, "sleep 10", false).code == 1);
    MinionReturn words{"m1", true, 1, "sleep 10 : Timed out after two seconds", "", ""};
    CHECK(legacy_result(words, "sleep 10", false).code == 1);
}

TEST_CASE("legacy result: string reply is 255 with its text, no return is 255, kill is 143") {
    auto job = parse_list_job_output(k_list_job_string, k_list);
    REQUIRE(job.ok());
    auto bad_cwd = legacy_result(job->returns[0], "pwd", false);
    CHECK(bad_cwd.code == 255);
    CHECK(bad_cwd.output == "ERROR: Specified cwd '/nonexistent' either not absolute or does not exist");
    MinionReturn user{"m1", true, 1, "", "", "ERROR: User 'x' is not available"};
    CHECK(legacy_result(user, "id", false).code == 255);
    CHECK(legacy_result(user, "id", false).output == "ERROR: User 'x' is not available");
    MinionReturn none{"m1", false, 0, "", "", "no return within 35 s (jid 1)"};
    auto silent = legacy_result(none, "id", false);
    CHECK(silent.code == 255);
    CHECK(silent.output == "Target did not return anything\nno return within 35 s (jid 1)");
    MinionReturn terminated{"m1", false, 0, "", "", "terminated"};
    auto killed = legacy_result(terminated, "sleep 60", true);
    CHECK(killed.code == 143);
    CHECK(killed.output == "[Job terminated by user request]\n");
}

TEST_CASE("legacy result: the command's retcode with stdout then stderr (item 2)") {
    auto job = parse_list_job_output(k_list_job_dict, k_list);
    REQUIRE(job.ok());
    auto r = legacy_result(job->returns[0], "echo hi; echo err >&2; exit 3", false);
    CHECK(r.code == 3);
    CHECK(r.output == "hi\nerr");
    MinionReturn ok{"m1", true, 0, "", "", ""};
    CHECK(legacy_result(ok, "true", false).code == 0);
    CHECK(legacy_result(ok, "true", false).output.empty());
}
