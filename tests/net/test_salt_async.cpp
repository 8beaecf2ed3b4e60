// SaltTransport::run_async (legacy mode) on the local transport and the salt CLI transport
// against the fake salt/salt-run of tests/support/fake_salt: one publication for the batch,
// returns followed, Salt's timeout= shape, terminate (the process really gone) and giving up.
#include <doctest/doctest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>

#include "saltpeter/salt_transport.hpp"
#include "test_files.hpp"
#include "watchdog.hpp"

using namespace std::chrono_literals;
using namespace saltpeter;
namespace fs = std::filesystem;

namespace {

struct TempDir : sp_test::TempDir {
    TempDir() : sp_test::TempDir("sp-async") {}
};

using sp_test::read_file;
using sp_test::pid_alive;

// Every pid written (one per line) to `file` by the commands, and whether any is alive.
int alive_pids(const fs::path& file, int* count = nullptr) {
    std::istringstream ids(read_file(file));
    int alive = 0, n = 0;
    for (pid_t pid; ids >> pid; ++n) alive += pid_alive(pid) ? 1 : 0;
    if (count != nullptr) *count = n;
    return alive;
}

// Killed processes take a moment to be gone (exit and reparenting), more so on a loaded machine.
int alive_after_wait(const fs::path& file, int* count) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    int alive = alive_pids(file, count);
    while (alive != 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(50ms);
        alive = alive_pids(file, count);
    }
    return alive;
}

struct AsyncOutcome {
    std::map<std::string, MinionReturn> returns;
    int return_calls = 0;
    int done_calls = 0;
};

template <typename Pred>
void run_until(boost::asio::io_context& io, Pred done, std::chrono::seconds limit = 60s) {
    io.restart();
    auto guard = boost::asio::make_work_guard(io);
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < deadline) io.run_one_for(50ms);
}

TransportJob start(SaltTransport& t, const CommandRequest& request, AsyncOutcome& out) {
    return t.run_async(
        request,
        [&out](MinionReturn r) {
            ++out.return_calls;
            CHECK(out.done_calls == 0);
            out.returns[r.minion] = std::move(r);
        },
        [&out] { ++out.done_calls; });
}

struct FakeSaltEnv {
    explicit FakeSaltEnv(const std::string& minions, const std::string& down = "") {
        ::setenv("FAKE_SALT_MINIONS", minions.c_str(), 1);
        ::setenv("FAKE_SALT_DOWN", down.c_str(), 1);
        ::setenv("FAKE_SALT_STATE", (dir.path / "state").c_str(), 1);
        ::unsetenv("FAKE_SALT_MASTER_DOWN");
    }
    ~FakeSaltEnv() {
        for (const char* v : {"FAKE_SALT_MINIONS", "FAKE_SALT_DOWN", "FAKE_SALT_STATE", "FAKE_SALT_MASTER_DOWN",
                              "FAKE_SALT_ARGV_LOG", "PIDS"})
            ::unsetenv(v);
    }
    TempDir dir;
};

SaltCliOptions fake_cli() {
    SaltCliOptions o;
    o.salt_binary = std::string(FAKE_SALT_DIR) + "/salt";
    o.salt_run_binary = std::string(FAKE_SALT_DIR) + "/salt-run";
    return o;
}

// The argv lines the fake salt/salt-run logged, one JSON array per call.
std::vector<std::string> logged_calls(const fs::path& log) {
    std::vector<std::string> lines;
    std::istringstream in(read_file(log));
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

}  // namespace

TEST_CASE("local run_async: three minions with env, cwd and their own exit codes") {
    test::Watchdog dog(60s);
    boost::asio::io_context io;
    auto t = make_local_transport(io, LocalTransportOptions{{"m1", "m2", "m3"}, {}});
    CommandRequest req;
    req.minions = {"m1", "m2", "m3"};
    req.command = "echo \"$SP_JOB_NAME $(pwd)\"; echo err >&2; exit 3";
    req.env = {{"SP_JOB_NAME", "legacy job"}};
    req.cwd = "/tmp";
    req.timeout = 20s;
    AsyncOutcome out;
    start(*t, req, out);
    CHECK(out.return_calls == 0);  // never inside run_async()
    run_until(io, [&] { return out.done_calls == 1; });
    REQUIRE(out.done_calls == 1);
    CHECK(out.return_calls == 3);
    for (const auto& m : req.minions) {
        CAPTURE(m);
        CHECK(out.returns[m].returned);
        CHECK(out.returns[m].retcode == 3);
        CHECK(out.returns[m].stdout_text.find("legacy job /tmp") == 0);
        CHECK(out.returns[m].stdout_text.find("err") != std::string::npos);
    }
}

TEST_CASE("local run_async: timeout= kills the process group with Salt's Timed out shape") {
    test::Watchdog dog(60s);
    TempDir dir;
    const auto pids = dir.path / "pids";
    ::setenv("PIDS", pids.c_str(), 1);
    boost::asio::io_context io;
    auto t = make_local_transport(io, LocalTransportOptions{{"m1"}, {}});
    CommandRequest req;
    req.minions = {"m1"};
    req.command = "sleep 60 & echo $! >> $PIDS; echo $$ >> $PIDS; wait";
    req.timeout = 1s;
    AsyncOutcome out;
    const auto started = std::chrono::steady_clock::now();
    start(*t, req, out);
    run_until(io, [&] { return out.done_calls == 1; });
    ::unsetenv("PIDS");
    REQUIRE(out.done_calls == 1);
    const auto& r = out.returns["m1"];
    CHECK(r.returned);
    CHECK(r.retcode == 1);
    CHECK(r.stdout_text == req.command + " : Timed out after 1 seconds");
    CHECK(r.stderr_text.empty());
    CHECK(std::chrono::steady_clock::now() - started < 10s);
    int count = 0;
    CHECK(alive_after_wait(pids, &count) == 0);
    CHECK(count == 2);
}

TEST_CASE("local run_async: terminate stops the group and the minion never returns") {
    test::Watchdog dog(60s);
    TempDir dir;
    const auto pids = dir.path / "pids";
    ::setenv("PIDS", pids.c_str(), 1);
    boost::asio::io_context io;
    auto t = make_local_transport(io, LocalTransportOptions{{"m1", "m2"}, {}});
    CommandRequest req;
    req.minions = {"m1", "m2"};
    req.command = "trap '' TERM; sleep 60 & echo $! >> $PIDS; echo $$ >> $PIDS; wait";  // ignores SIGTERM
    AsyncOutcome out;
    auto id = start(*t, req, out);
    run_until(io, [&] {
        const std::string text = read_file(pids);
        return std::count(text.begin(), text.end(), '\n') >= 4;
    }, 20s);
    t->terminate(id, {"m1"}, 1s);
    run_until(io, [&] { return out.return_calls == 1; }, 20s);
    REQUIRE(out.return_calls == 1);
    CHECK_FALSE(out.returns["m1"].returned);
    CHECK(out.done_calls == 0);  // m2 still runs
    t->terminate(id, {"m2"}, 1s);
    run_until(io, [&] { return out.done_calls == 1; }, 20s);
    ::unsetenv("PIDS");
    CHECK_FALSE(out.returns["m2"].returned);
    int count = 0;
    CHECK(alive_after_wait(pids, &count) == 0);
    CHECK(count == 4);
}

TEST_CASE("local run_async: follow_for gives up on a minion that does not return") {
    test::Watchdog dog(60s);
    boost::asio::io_context io;
    auto t = make_local_transport(io, LocalTransportOptions{{"m1"}, {}});
    CommandRequest req;
    req.minions = {"m1"};
    req.command = "sleep 3";
    req.follow_for = 1s;
    AsyncOutcome out;
    start(*t, req, out);
    run_until(io, [&] { return out.done_calls == 1; }, 20s);
    REQUIRE(out.done_calls == 1);
    CHECK_FALSE(out.returns["m1"].returned);
    CHECK(out.returns["m1"].error.find("no return within 1 s") == 0);
    // The process is still reaped later; no second report.
    run_until(io, [&] { return false; }, 4s);
    CHECK(out.return_calls == 1);
}

TEST_CASE("salt cli run_async: one --async publication, list_job follows, stopped minion gives up") {
    test::Watchdog dog(110s);
    FakeSaltEnv env("m1,m2,m3", "m3");
    const auto log = env.dir.path / "argv.log";
    ::setenv("FAKE_SALT_ARGV_LOG", log.c_str(), 1);
    boost::asio::io_context io;
    auto t = make_salt_cli_transport(io, fake_cli());
    CommandRequest req;
    req.minions = {"m1", "m2", "m3"};
    req.command = "echo \"$SP_JOB_NAME:$SP_MACHINE_ID\" in $(pwd); echo oops >&2; exit 7";
    req.env = {{"SP_JOB_NAME", "it's legacy"}, {"SP_JOB_INSTANCE_NAME", "legacy_1"}};
    req.cwd = "/tmp";
    req.timeout = 30s;
    req.follow_for = 12s;
    AsyncOutcome out;
    start(*t, req, out);
    run_until(io, [&] { return out.done_calls == 1; }, 90s);
    REQUIRE(out.done_calls == 1);
    CHECK(out.return_calls == 3);
    for (const std::string m : {"m1", "m2"}) {
        CAPTURE(m);
        CHECK(out.returns[m].returned);
        CHECK(out.returns[m].retcode == 7);
        CHECK(out.returns[m].stdout_text == "it's legacy:" + m + " in /tmp");
        CHECK(out.returns[m].stderr_text == "oops");
    }
    CHECK_FALSE(out.returns["m3"].returned);
    CHECK(out.returns["m3"].error.find("no return within 12 s (jid ") == 0);
    const auto calls = logged_calls(log);
    REQUIRE(calls.size() >= 2);
    // The batch is one salt call; everything after it is salt-run jobs.list_job <jid>.
    CHECK(calls[0] ==
          R"(["--async", "-L", "m1,m2,m3", "cmd.run_all", "echo \"$SP_JOB_NAME:$SP_MACHINE_ID\" in $(pwd); echo oops >&2; exit 7", )"
          R"("env={\"SP_JOB_INSTANCE_NAME\":\"legacy_1\",\"SP_JOB_NAME\":\"it's legacy\"}", "cwd=/tmp", "timeout=30"])");
    for (std::size_t i = 1; i < calls.size(); ++i) {
        CHECK(calls[i].find(R"(["salt-run", "--out=json", "jobs.list_job", ")") == 0);
    }
    // Polls grow from 1 s towards 10 s: about 12 s of following is far fewer than 12 polls.
    CHECK(calls.size() <= 9);
}

TEST_CASE("salt cli run_async: timeout= comes back in Salt's shape") {
    test::Watchdog dog(110s);
    FakeSaltEnv env("m1,m2");
    boost::asio::io_context io;
    auto t = make_salt_cli_transport(io, fake_cli());
    CommandRequest req;
    req.minions = {"m1", "m2"};
    req.command = "sleep 30";
    req.timeout = 2s;
    AsyncOutcome out;
    start(*t, req, out);
    run_until(io, [&] { return out.done_calls == 1; }, 90s);
    REQUIRE(out.done_calls == 1);
    for (const std::string m : {"m1", "m2"}) {
        CAPTURE(m);
        CHECK(out.returns[m].returned);
        CHECK(out.returns[m].retcode == 1);
        CHECK(out.returns[m].stdout_text == "sleep 30 : Timed out after 2 seconds");
    }
}

TEST_CASE("salt cli run_async: terminate sends term_job then kill_job, the process is gone") {
    test::Watchdog dog(110s);
    FakeSaltEnv env("m1,m2");
    const auto pids = env.dir.path / "pids";
    ::setenv("PIDS", pids.c_str(), 1);
    const auto log = env.dir.path / "argv.log";
    ::setenv("FAKE_SALT_ARGV_LOG", log.c_str(), 1);
    boost::asio::io_context io;
    auto t = make_salt_cli_transport(io, fake_cli());
    CommandRequest req;
    req.minions = {"m1", "m2"};
    req.command = "trap '' TERM; sleep 120 & echo $! >> $PIDS; echo $$ >> $PIDS; wait";
    AsyncOutcome out;
    auto id = start(*t, req, out);
    // Asked before the jid is known: it is sent once the --async line arrives.
    t->terminate(id, {"m1", "m2"}, 2s);
    run_until(io, [&] { return out.done_calls == 1; }, 90s);
    REQUIRE(out.done_calls == 1);
    CHECK_FALSE(out.returns["m1"].returned);
    CHECK(out.returns["m1"].error.find("terminated") == 0);
    CHECK_FALSE(out.returns["m2"].returned);
    run_until(io, [&] { return alive_pids(pids) == 0; }, 10s);
    int count = 0;
    CHECK(alive_after_wait(pids, &count) == 0);
    CHECK(count == 4);
    bool term = false, kill = false;
    for (const auto& c : logged_calls(log)) {
        term = term || c.find(R"("-L", "m1,m2", "saltutil.term_job", ")") != std::string::npos;
        kill = kill || c.find(R"("-L", "m1,m2", "saltutil.kill_job", ")") != std::string::npos;
    }
    CHECK(term);
    CHECK(kill);
}

TEST_CASE("salt cli run_async: no match and a master that is down end every minion with the reason") {
    test::Watchdog dog(110s);
    FakeSaltEnv env("m1");
    boost::asio::io_context io;
    auto t = make_salt_cli_transport(io, fake_cli());
    CommandRequest req;
    req.minions = {"nosuchminion"};
    req.command = "true";
    // -L keeps an unknown id in the fake (as Salt's list targeting does), so use a master that is down.
    ::setenv("FAKE_SALT_MASTER_DOWN", "1", 1);
    AsyncOutcome out;
    start(*t, req, out);
    run_until(io, [&] { return out.done_calls == 1; }, 60s);
    REQUIRE(out.done_calls == 1);
    CHECK_FALSE(out.returns["nosuchminion"].returned);
    CHECK(out.returns["nosuchminion"].error.find("The master is not responding") != std::string::npos);
    CHECK(out.returns["nosuchminion"].error.find("--async") != std::string::npos);
}
