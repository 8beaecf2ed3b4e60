#include <doctest/doctest.h>

#include <algorithm>

#include "saltpeter/wrapper_agent.hpp"

using namespace saltpeter;

namespace {
std::map<std::string, std::string> required() {
    return {{"SP_WEBSOCKET_URL", "ws://spd:8889"},
            {"SP_JOB_NAME", "backup"},
            {"SP_JOB_INSTANCE", "backup_1700000000"},
            {"SP_COMMAND", "echo hi"},
            {"SP_MACHINE_ID", "web1"}};
}
}  // namespace

TEST_CASE("defaults of PROTOCOL.md 1.10") {
    auto s = wrapper_settings_from_environment(required());
    REQUIRE(s.ok());
    CHECK(s->machine_id == "web1");
    CHECK(s->timeout_seconds == 0);
    CHECK(s->output_interval == std::chrono::milliseconds(1000));
    CHECK(s->heartbeat_interval == std::chrono::milliseconds(5000));
    CHECK(s->reconnect_interval == std::chrono::milliseconds(2000));
    CHECK(s->kill_grace == std::chrono::milliseconds(5000));
    CHECK(s->completion_retry == std::chrono::milliseconds(60000));
    CHECK(s->memory_limit == 64u * 1024 * 1024);
    CHECK(s->log_level == WrapperLogLevel::normal);
    CHECK(s->log_dir == "/var/log/sp_wrapper");
    CHECK(s->allow_overlap);
    CHECK(s->lockfile == "/tmp/sp_wrapper_backup.lock");
}

TEST_CASE("each missing required variable is named") {
    for (const char* name : {"SP_WEBSOCKET_URL", "SP_JOB_NAME", "SP_JOB_INSTANCE", "SP_COMMAND"}) {
        auto env = required();
        env.erase(name);
        auto s = wrapper_settings_from_environment(env);
        REQUIRE_FALSE(s.ok());
        CHECK(s.error().message == std::string("Error: ") + name + " environment variable not set");
        CHECK(s.error().field == name);
    }
}

TEST_CASE("values are parsed and bad numbers are errors naming the variable") {
    auto env = required();
    env["SP_TIMEOUT"] = "90";
    env["SP_OUTPUT_INTERVAL_MS"] = "250";
    env["SP_WRAPPER_LOGLEVEL"] = "DEBUG";
    env["SP_WRAPPER_LOGDIR"] = "/tmp/x";
    env["SP_ALLOW_OVERLAP"] = "No";
    env["SP_LOCKFILE"] = "/run/lock/b.lock";
    env["SP_USER"] = "app";
    env["SP_CWD"] = "/srv";
    auto s = wrapper_settings_from_environment(env);
    REQUIRE(s.ok());
    CHECK(s->timeout_seconds == 90);
    CHECK(s->output_interval == std::chrono::milliseconds(250));
    CHECK(s->log_level == WrapperLogLevel::debug);
    CHECK(s->log_dir == "/tmp/x");
    CHECK_FALSE(s->allow_overlap);
    CHECK(s->lockfile == "/run/lock/b.lock");
    CHECK(s->user == "app");
    CHECK(s->cwd == "/srv");
    for (const char* v : {"abc", "-1", "1.5"}) {
        env["SP_TIMEOUT"] = v;
        auto bad = wrapper_settings_from_environment(env);
        REQUIRE_FALSE(bad.ok());
        CHECK(bad.error().field == "SP_TIMEOUT");
    }
    env["SP_TIMEOUT"] = "";
    CHECK(wrapper_settings_from_environment(env)->timeout_seconds == 0);
    env["SP_OUTPUT_INTERVAL_MS"] = "0";
    CHECK(wrapper_settings_from_environment(env).error().field == "SP_OUTPUT_INTERVAL_MS");
}

TEST_CASE("overlap and log level spellings") {
    auto env = required();
    for (const char* yes : {"true", "TRUE", "1", "yes", "Yes"}) {
        env["SP_ALLOW_OVERLAP"] = yes;
        CHECK(wrapper_settings_from_environment(env)->allow_overlap);
    }
    env["SP_ALLOW_OVERLAP"] = "false";
    CHECK_FALSE(wrapper_settings_from_environment(env)->allow_overlap);
    env["SP_WRAPPER_LOGLEVEL"] = "off";
    CHECK(wrapper_settings_from_environment(env)->log_level == WrapperLogLevel::off);
    env["SP_WRAPPER_LOGLEVEL"] = "verbose";  // anything else behaves like off (1.10)
    CHECK(wrapper_settings_from_environment(env)->log_level == WrapperLogLevel::off);
}

TEST_CASE("the job's environment is the wrapper's minus SP_TOKEN") {
    auto env = required();
    env["SP_TOKEN"] = "secret";
    env["MY_VAR"] = "1";
    auto s = wrapper_settings_from_environment(env);
    REQUIRE(s.ok());
    CHECK(s->token == "secret");
    const auto& e = s->job_environment;
    CHECK(std::find(e.begin(), e.end(), "MY_VAR=1") != e.end());
    CHECK(std::find(e.begin(), e.end(), "SP_COMMAND=echo hi") != e.end());
    CHECK(std::none_of(e.begin(), e.end(), [](const std::string& kv) { return kv.rfind("SP_TOKEN=", 0) == 0; }));
}

TEST_CASE("machine id falls back to minion id or FQDN") {
    auto env = required();
    env.erase("SP_MACHINE_ID");
    auto s = wrapper_settings_from_environment(env);
    REQUIRE(s.ok());
    CHECK_FALSE(s->machine_id.empty());
    CHECK(s->machine_id == default_machine_id());
}

TEST_CASE("pre-detach checks name the setting") {
    auto s = wrapper_settings_from_environment(required()).value();
    s.log_level = WrapperLogLevel::off;
    CHECK(check_wrapper_settings(s).ok());
    s.cwd = "/nonexistent/sp";
    CHECK(check_wrapper_settings(s).error().field == "SP_CWD");
    s.cwd = "/etc/passwd";
    CHECK(check_wrapper_settings(s).error().message.find("not a directory") != std::string::npos);
    s.cwd.clear();
    s.log_level = WrapperLogLevel::normal;
    s.log_dir = "/proc/sp_wrapper_cannot";
    CHECK(check_wrapper_settings(s).error().field == "SP_WRAPPER_LOGDIR");
}

TEST_CASE("SP_TOKENS gives the token of this machine id and is not passed on") {
    auto env = required();  // SP_MACHINE_ID=web1
    env["SP_TOKENS"] = R"({"web1": "tok-web1", "web2": "tok-web2"})";
    auto s = wrapper_settings_from_environment(env);
    REQUIRE(s.ok());
    CHECK(s->token == "tok-web1");
    const auto& e = s->job_environment;
    CHECK(std::none_of(e.begin(), e.end(), [](const std::string& kv) { return kv.rfind("SP_TOKENS=", 0) == 0; }));
    CHECK(std::none_of(e.begin(), e.end(), [](const std::string& kv) { return kv.rfind("SP_TOKEN=", 0) == 0; }));
}

TEST_CASE("SP_TOKEN wins over SP_TOKENS") {
    auto env = required();
    env["SP_TOKEN"] = "direct";
    env["SP_TOKENS"] = R"({"web1": "from-map"})";
    auto s = wrapper_settings_from_environment(env);
    REQUIRE(s.ok());
    CHECK(s->token == "direct");
    CHECK(std::none_of(s->job_environment.begin(), s->job_environment.end(),
                       [](const std::string& kv) { return kv.rfind("SP_TOKENS=", 0) == 0; }));
}

TEST_CASE("SP_TOKENS uses the fallback machine id when SP_MACHINE_ID is unset") {
    auto env = required();
    env.erase("SP_MACHINE_ID");
    env["SP_TOKENS"] = "{\"" + default_machine_id() + "\": \"mine\", \"other\": \"theirs\"}";
    auto s = wrapper_settings_from_environment(env);
    REQUIRE(s.ok());
    CHECK(s->token == "mine");
}

TEST_CASE("bad SP_TOKENS is an error naming it") {
    auto env = required();
    for (const char* bad : {"not json", "[1]", R"({"other": "x"})", R"({"web1": 5})"}) {
        env["SP_TOKENS"] = bad;
        auto s = wrapper_settings_from_environment(env);
        REQUIRE_FALSE(s.ok());
        CHECK(s.error().field == "SP_TOKENS");
    }
}
