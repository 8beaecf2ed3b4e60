// The Daemon embedded in the test process, with the local transport and the real sp_wrapper:
// kills, reconnect-free streaming and the job log, over real WebSockets on 127.0.0.1.
#include <doctest/doctest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "saltpeter/daemon.hpp"
#include "runs/run_tracker.hpp"
#include "test_files.hpp"
#include "watchdog.hpp"

using namespace saltpeter;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

struct TempDir : sp_test::TempDir {
    TempDir() : sp_test::TempDir("sp-daemon") {}
};

using sp_test::read_file;
using sp_test::pid_alive;

// A config dir with one job and fast timers; the daemon runs only what run_now() starts.
struct Fixture {
    explicit Fixture(const std::string& job_yaml) {
        fs::create_directories(dir.path / "config");
        std::ofstream(dir.path / "config" / "jobs.yaml") << "saltpeter_config:\n"
                                                         << "  logdir: " << (dir.path / "log").string() << "\n"
                                                         << "  machines_ws_bind_addr: 127.0.0.1\n"
                                                         << "  machines_ws_port: 0\n"
                                                         << "  default_wrapper_path: " << SP_WRAPPER_PATH << "\n"
                                                         << "  default_wrapper_logdir: " << (dir.path / "wlog").string() << "\n"
                                                         << "  local_minions: [m1, m2]\n"
                                                         << "  kill_grace: 10\n"
                                                         << job_yaml;
        DaemonOptions options;
        options.config_dir = (dir.path / "config").string();
        options.schedule = false;
        daemon = std::make_unique<Daemon>(io, options);
        auto started = daemon->start();
        REQUIRE_MESSAGE(started.ok(), (started.ok() ? "" : started.error().message));
        daemon->set_on_run_finished([this](const RunRecord& run) { finished = run; });
    }

    template <typename Predicate>
    bool run_until(Predicate done, std::chrono::seconds limit) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (!done() && std::chrono::steady_clock::now() < deadline) {
            io.run_for(20ms);
            if (io.stopped()) io.restart();
        }
        return done();
    }

    TempDir dir;
    sp_test::ScopedTmpdir tmpdir{dir.path / "tmp"};  // the wrapper host locks
    boost::asio::io_context io;
    std::unique_ptr<Daemon> daemon;
    std::optional<RunRecord> finished;
};

}  // namespace

TEST_CASE("kill: every target reports 143 and the job's process trees are gone") {
    saltpeter::test::Watchdog dog(90s);
    Fixture f(R"(
sleeper:
  command: "echo $$ >> $PIDS; sleep 300 & echo $! >> $PIDS; echo ready; wait"
  targets: 'm*'
  schedule: '@yearly'
  env:
    SP_OUTPUT_INTERVAL_MS: '50'
)");
    const std::string pids = (f.dir.path / "pids").string();
    setenv("PIDS", pids.c_str(), 1);  // inherited by the wrappers through the local transport
    auto instance = f.daemon->run_now("sleeper");
    REQUIRE(instance.ok());
    REQUIRE(f.run_until(
        [&] {
            const RunRecord* run = f.daemon->tracker().find(*instance);
            if (run == nullptr || run->targets.size() != 2) return false;
            for (const auto& [m, t] : run->targets) {
                if (t.output.find("ready") == std::string::npos) return false;
            }
            return true;
        },
        20s));
    CHECK(f.daemon->kill_job("sleeper"));
    REQUIRE(f.run_until([&] { return f.finished.has_value(); }, 30s));
    REQUIRE(f.finished->targets.size() == 2);
    for (const auto& [machine, target] : f.finished->targets) {
        INFO(machine << ": " << target.output);
        CHECK(target.retcode == 143);
        CHECK(target.output.find("[Job terminated by user request]") != std::string::npos);
        CHECK_FALSE(target.spd_verdict);
    }
    std::istringstream ids(read_file(pids));
    int count = 0;
    for (pid_t pid; ids >> pid; ++count) CHECK_MESSAGE(!pid_alive(pid), "pid " << pid << " survived the kill");
    CHECK(count == 4);
    CHECK_FALSE(f.daemon->kill_job("sleeper"));  // nothing left to kill
    const std::string log = read_file(f.dir.path / "log" / "sleeper.log");
    CHECK(log.find("**** Exit Code 143 ******") != std::string::npos);
    unsetenv("PIDS");
}

TEST_CASE("kill one machine: only that target is killed") {
    saltpeter::test::Watchdog dog(90s);
    Fixture f(R"(
pair:
  command: "echo up; sleep 3; echo finished"
  targets: 'm1,m2'
  target_type: list
  schedule: '@yearly'
  env:
    SP_OUTPUT_INTERVAL_MS: '50'
)");
    auto instance = f.daemon->run_now("pair");
    REQUIRE(instance.ok());
    REQUIRE(f.run_until(
        [&] {
            const RunRecord* run = f.daemon->tracker().find(*instance);
            return run != nullptr && run->targets.count("m1") && run->targets.at("m1").output.find("up") != std::string::npos;
        },
        20s));
    CHECK(f.daemon->kill_job("pair", std::string("m1")));
    REQUIRE(f.run_until([&] { return f.finished.has_value(); }, 30s));
    CHECK(f.finished->targets.at("m1").retcode == 143);
    CHECK(f.finished->targets.at("m2").retcode == 0);
    CHECK(f.finished->targets.at("m2").output == "up\nfinished\n");
    CHECK_FALSE(f.finished->success());
}

TEST_CASE("forbid: a second run-now while one runs is refused and logged as overlap") {
    saltpeter::test::Watchdog dog(90s);
    // The job name carries the pid: the host lock (/tmp/sp_wrapper_<job>.<minion>.lock) is shared
    // with every other checkout running this test at the same time.
    const std::string single = "single_" + std::to_string(getpid());
    Fixture f("\n" + single + R"(:
  command: "sleep 2"
  targets: m1
  schedule: '@yearly'
)");
    auto first = f.daemon->run_now(single);
    REQUIRE(first.ok());
    auto second = f.daemon->run_now(single);
    REQUIRE_FALSE(second.ok());
    CHECK(second.error().message.find("still running") != std::string::npos);
    CHECK(f.daemon->run_now("no_such_job").error().message == "unknown job 'no_such_job'");
    REQUIRE(f.run_until([&] { return f.finished.has_value(); }, 30s));
    CHECK(f.finished->success());
    const std::string log = read_file(f.dir.path / "log" / (single + ".log"));
    CHECK(log.find("###### Overlap detected on " + *first) != std::string::npos);
}

TEST_CASE("a target that does not match any minion gives no_machines and a failed run") {
    saltpeter::test::Watchdog dog(90s);
    Fixture f(R"(
nobody:
  command: "true"
  targets: 'zz*'
  schedule: '@yearly'
)");
    REQUIRE(f.daemon->run_now("nobody").ok());
    REQUIRE(f.run_until([&] { return f.finished.has_value(); }, 10s));
    CHECK(f.finished->targets.empty());
    CHECK_FALSE(f.finished->success());
    CHECK(read_file(f.dir.path / "log" / "nobody.log").find("!!!!!! No targets matched for nobody_") != std::string::npos);
}
