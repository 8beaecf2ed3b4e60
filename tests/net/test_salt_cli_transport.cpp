// The salt CLI transport against the fake salt of tests/support/fake_salt, which replays the
// output shapes of salt/TRANSCRIPTS.md and really runs cmd.run_all commands on this host.
#include <doctest/doctest.h>
#include <stdlib.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "saltpeter/salt_transport.hpp"
#include "watchdog.hpp"

using namespace std::chrono_literals;
using namespace saltpeter;

namespace {

const std::string k_fake_dir = FAKE_SALT_DIR;

// Sets the fake's environment for one test case and restores a clean state afterwards.
struct FakeSaltEnv {
    explicit FakeSaltEnv(const std::string& minions, const std::string& down = "") {
        state_dir = std::filesystem::temp_directory_path() /
                    ("fake_salt_state_" + std::to_string(::getpid()) + "_" + std::to_string(++s_counter));
        std::filesystem::create_directories(state_dir);
        ::setenv("FAKE_SALT_MINIONS", minions.c_str(), 1);
        ::setenv("FAKE_SALT_DOWN", down.c_str(), 1);
        ::setenv("FAKE_SALT_STATE", state_dir.c_str(), 1);
        ::unsetenv("FAKE_SALT_MASTER_DOWN");
    }
    ~FakeSaltEnv() {
        for (const char* v : {"FAKE_SALT_MINIONS", "FAKE_SALT_DOWN", "FAKE_SALT_STATE", "FAKE_SALT_MASTER_DOWN",
                              "FAKE_SALT_HANG", "FAKE_SALT_ARGV_LOG"})
            ::unsetenv(v);
        std::error_code ec;
        std::filesystem::remove_all(state_dir, ec);
    }
    std::filesystem::path state_dir;
    static inline int s_counter = 0;
};

SaltCliOptions fake_options() {
    SaltCliOptions o;
    o.salt_binary = k_fake_dir + "/salt";
    o.salt_run_binary = k_fake_dir + "/salt-run";
    o.config_dir = "/etc/salt";
    return o;
}

Result<PingReply> ping(const SaltTarget& target, SaltCliOptions options = fake_options()) {
    boost::asio::io_context io;
    auto transport = make_salt_cli_transport(io, std::move(options));
    std::optional<Result<PingReply>> out;
    int calls = 0;
    transport->ping(target, 5s, [&](Result<PingReply> r) {
        ++calls;
        out.emplace(std::move(r));
    });
    io.run();
    REQUIRE(calls == 1);
    return std::move(*out);
}

struct RunAllOutcome {
    std::map<std::string, MinionReturn> returns;
    int return_calls = 0;
    int done_calls = 0;
};

RunAllOutcome run_all(const RunAllRequest& request) {
    boost::asio::io_context io;
    auto transport = make_salt_cli_transport(io, fake_options());
    RunAllOutcome out;
    transport->run_all(
        request,
        [&](MinionReturn r) {
            ++out.return_calls;
            CHECK(out.done_calls == 0);
            out.returns[r.minion] = std::move(r);
        },
        [&] { ++out.done_calls; });
    io.run();
    return out;
}

}  // namespace

TEST_CASE("salt cli: ping with matches, a stopped minion and target types") {
    test::Watchdog dog(60s);
    FakeSaltEnv env("m1,m2,m3", "m3");
    auto all = ping(SaltTarget{"*", TargetType::glob});
    REQUIRE(all.ok());
    CHECK(all->responding == std::vector<std::string>{"m1", "m2"});
    REQUIRE(all->not_responding.size() == 1);
    CHECK(all->not_responding[0].first == "m3");
    CHECK(all->not_responding[0].second.rfind("Minion did not return. [No response]", 0) == 0);

    auto pcre = ping(SaltTarget{"m[12]", TargetType::pcre});
    REQUIRE(pcre.ok());
    CHECK(pcre->responding == std::vector<std::string>{"m1", "m2"});
    CHECK(pcre->not_responding.empty());

    auto list = ping(SaltTarget{"m2,nosuchminion", TargetType::list});
    REQUIRE(list.ok());
    CHECK(list->responding == std::vector<std::string>{"m2"});
    REQUIRE(list->not_responding.size() == 1);
    CHECK(list->not_responding[0].first == "nosuchminion");

    auto grain = ping(SaltTarget{"id:m1", TargetType::grain});
    REQUIRE(grain.ok());
    CHECK(grain->responding == std::vector<std::string>{"m1"});
}

TEST_CASE("salt cli: ping matching nothing is an empty reply, not an error") {
    test::Watchdog dog(60s);
    FakeSaltEnv env("m1,m2,m3");
    auto none = ping(SaltTarget{"zz*", TargetType::glob});
    REQUIRE(none.ok());
    CHECK(none->responding.empty());
    CHECK(none->not_responding.empty());
}

TEST_CASE("salt cli: a missing binary and a master that is down are errors naming the command") {
    test::Watchdog dog(60s);
    FakeSaltEnv env("m1");
    auto options = fake_options();
    options.salt_binary = "/nonexistent/salt";
    auto missing = ping(SaltTarget{"*", TargetType::glob}, options);
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().message.find("/nonexistent/salt") != std::string::npos);

    ::setenv("FAKE_SALT_MASTER_DOWN", "1", 1);
    auto down = ping(SaltTarget{"*", TargetType::glob});
    REQUIRE_FALSE(down.ok());
    CHECK(down.error().message.find("test.ping") != std::string::npos);
    CHECK(down.error().message.find("The master is not responding") != std::string::npos);
}

TEST_CASE("salt cli: run_all of a real command on 3 minions with their retcodes and env") {
    test::Watchdog dog(60s);
    FakeSaltEnv env("m1,m2,m3");
    RunAllRequest request;
    request.minions = {"m1", "m2", "m3"};
    // An argument with a quote and a dollar sign must reach the program unchanged.
    request.argv = {"/bin/sh", "-c",
                    "printf '%s|%s|%s\\n' \"$1\" \"$FOO\" \"$SP_TOKENS\"; echo err >&2; "
                    "case \"$SP_MACHINE_ID\" in m1) exit 0;; m2) exit 3;; *) exit 7;; esac",
                    "sh", "it's $HOME"};
    request.env = {{"FOO", "bar baz"}};
    request.minion_env["m1"] = {{"SP_TOKEN", "t1"}, {"SP_MACHINE_ID", "m1"}};
    request.minion_env["m2"] = {{"SP_TOKEN", "t2"}, {"SP_MACHINE_ID", "m2"}};
    auto out = run_all(request);
    CHECK(out.done_calls == 1);
    CHECK(out.return_calls == 3);
    REQUIRE(out.returns.size() == 3);
    const auto& m1 = out.returns["m1"];
    CHECK(m1.returned);
    CHECK(m1.retcode == 0);
    CHECK(m1.stdout_text == R"(it's $HOME|bar baz|{"m1":"t1","m2":"t2"})");
    CHECK(m1.stderr_text == "err");
    CHECK(out.returns["m2"].retcode == 3);
    CHECK(out.returns["m3"].retcode == 7);
    CHECK(out.returns["m3"].returned);
}

TEST_CASE("salt cli: run_all of a missing program is 127 with the shell's message") {
    test::Watchdog dog(60s);
    FakeSaltEnv env("m1,m2");
    RunAllRequest request;
    request.minions = {"m1", "m2"};
    request.argv = {"/nonexistent/sp_wrapper"};
    auto out = run_all(request);
    CHECK(out.done_calls == 1);
    REQUIRE(out.returns.size() == 2);
    CHECK(out.returns["m1"].returned);
    CHECK(out.returns["m1"].retcode == 127);
    CHECK(out.returns["m1"].stderr_text ==
          "/bin/bash: line 1: /nonexistent/sp_wrapper: No such file or directory");
}

TEST_CASE("salt cli: run_all with a stopped minion, an unknown minion and a bad cwd") {
    test::Watchdog dog(60s);
    FakeSaltEnv env("m1,m2,m3", "m3");
    RunAllRequest request;
    request.minions = {"m1", "m3", "ghost"};
    request.argv = {"/bin/true"};
    auto out = run_all(request);
    CHECK(out.done_calls == 1);
    REQUIRE(out.returns.size() == 3);
    CHECK(out.returns["m1"].returned);
    CHECK(out.returns["m1"].retcode == 0);
    CHECK_FALSE(out.returns["m3"].returned);
    CHECK(out.returns["m3"].error.rfind("Minion did not return", 0) == 0);
    CHECK_FALSE(out.returns["ghost"].returned);

    request.minions = {"m1"};
    request.cwd = "/nonexistent";
    out = run_all(request);
    REQUIRE(out.returns.size() == 1);
    CHECK(out.returns["m1"].returned);
    CHECK(out.returns["m1"].retcode == 1);
    CHECK(out.returns["m1"].error == "ERROR: Specified cwd '/nonexistent' either not absolute or does not exist");
}

TEST_CASE("salt cli: run_all when salt cannot run reports every minion as not returned") {
    test::Watchdog dog(60s);
    FakeSaltEnv env("m1,m2");
    ::setenv("FAKE_SALT_MASTER_DOWN", "1", 1);
    RunAllRequest request;
    request.minions = {"m1", "m2"};
    request.argv = {"/bin/true"};
    auto out = run_all(request);
    CHECK(out.done_calls == 1);
    REQUIRE(out.returns.size() == 2);
    CHECK_FALSE(out.returns["m1"].returned);
    CHECK(out.returns["m1"].error.find("The master is not responding") != std::string::npos);
}

TEST_CASE("salt cli: terminate stops a long job through saltutil.term_job") {
    test::Watchdog dog(60s);
    FakeSaltEnv env("m1");
    boost::asio::io_context io;
    auto transport = make_salt_cli_transport(io, fake_options());
    RunAllRequest request;
    request.minions = {"m1"};
    request.argv = {"/bin/sleep", "30"};
    std::optional<MinionReturn> ret;
    bool done = false;
    const auto started = std::chrono::steady_clock::now();
    const auto job = transport->run_all(request, [&](MinionReturn r) { ret = std::move(r); }, [&] { done = true; });
    // Before the jid is known the termination waits for it; either way it is delivered.
    boost::asio::steady_timer timer(io, 1500ms);
    timer.async_wait([&](const boost::system::error_code&) { transport->terminate(job, {"m1"}, 2s); });
    io.run();
    CHECK(done);
    REQUIRE(ret.has_value());
    CHECK_FALSE(ret->returned);
    CHECK(std::chrono::steady_clock::now() - started < 20s);
}

TEST_CASE("salt cli: stop kills the call and no callback follows") {
    test::Watchdog dog(60s);
    FakeSaltEnv env("m1");
    boost::asio::io_context io;
    auto transport = make_salt_cli_transport(io, fake_options());
    RunAllRequest request;
    request.minions = {"m1"};
    request.argv = {"/bin/sleep", "30"};
    int callbacks = 0;
    transport->run_all(request, [&](MinionReturn) { ++callbacks; }, [&] { ++callbacks; });
    boost::asio::steady_timer timer(io, 500ms);
    timer.async_wait([&](const boost::system::error_code&) { transport->stop(); });
    const auto started = std::chrono::steady_clock::now();
    io.run();
    CHECK(callbacks == 0);
    CHECK(std::chrono::steady_clock::now() - started < 10s);
}

TEST_CASE("salt cli: the argv given to salt (flags, list target, quoting, env, never --static)") {
    test::Watchdog dog(60s);
    FakeSaltEnv env("m1,m2");
    const auto log = env.state_dir / "argv.log";
    ::setenv("FAKE_SALT_ARGV_LOG", log.c_str(), 1);
    auto reply = ping(SaltTarget{"G@id:m1 or m2", TargetType::compound});
    REQUIRE(reply.ok());
    CHECK(reply->responding == std::vector<std::string>{"m1", "m2"});
    RunAllRequest request;
    request.minions = {"m1", "m2"};
    request.argv = {"/bin/echo", "a b", "it's"};
    request.env = {{"SP_JOB_NAME", "backup"}};
    request.minion_env["m1"] = {{"SP_TOKEN", "t1"}, {"SP_MACHINE_ID", "m1"}};
    request.minion_env["m2"] = {{"SP_TOKEN", "t2"}, {"SP_MACHINE_ID", "m2"}};
    request.cwd = "/tmp";
    request.timeout = 7s;
    auto out = run_all(request);
    CHECK(out.returns["m1"].stdout_text == "a b it's");
    ::unsetenv("FAKE_SALT_ARGV_LOG");

    std::ifstream in(log);
    std::string ping_line, run_line;
    std::getline(in, ping_line);
    std::getline(in, run_line);
    CHECK(ping_line == R"(["-c", "/etc/salt", "--out=json", "--out-indent=-1", "-t", "5", "-C", "G@id:m1 or m2", "test.ping"])");
    CHECK(run_line ==
          R"(["-c", "/etc/salt", "--out=json", "--out-indent=-1", "-t", "7", "--show-jid", "-L", "m1,m2", "cmd.run_all", )"
          R"("/bin/echo 'a b' 'it'\\''s'", "env={\"SP_JOB_NAME\":\"backup\",\"SP_TOKENS\":\"{\\\"m1\\\":\\\"t1\\\",\\\"m2\\\":\\\"t2\\\"}\"}", "cwd=/tmp"])");
}

TEST_CASE("salt cli: a salt call that hangs is killed at its deadline (timeout + 15 s)") {
    test::Watchdog dog(60s);
    FakeSaltEnv env("m1");
    ::setenv("FAKE_SALT_HANG", "1", 1);
    boost::asio::io_context io;
    auto transport = make_salt_cli_transport(io, fake_options());
    std::optional<Result<PingReply>> reply;
    const auto started = std::chrono::steady_clock::now();
    transport->ping(SaltTarget{"*", TargetType::glob}, 1s, [&](Result<PingReply> r) { reply.emplace(std::move(r)); });
    io.run();
    ::unsetenv("FAKE_SALT_HANG");
    const auto elapsed = std::chrono::steady_clock::now() - started;
    REQUIRE(reply.has_value());
    REQUIRE_FALSE(reply->ok());
    CHECK(reply->error().message.find("deadline") != std::string::npos);
    CHECK(elapsed >= 15s);
    CHECK(elapsed < 30s);
}
