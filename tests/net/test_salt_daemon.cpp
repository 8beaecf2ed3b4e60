// The Daemon embedded in the test process with the salt CLI transport (fake salt/salt-run of
// tests/support/fake_salt) and the salt-api transport (tests/support/fake_salt_api.py): kills
// through Daemon::kill_job in legacy mode (saltutil.term_job / kill_job ⇒ 143) and wrapper mode
// (the wrapper's kill ⇒ 143), with every process of the job really gone.
#include <doctest/doctest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "saltpeter/daemon.hpp"
#include "test_files.hpp"
#include "watchdog.hpp"

using namespace saltpeter;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

struct TempDir : sp_test::TempDir {
    TempDir() : sp_test::TempDir("sp-saltd") {}
};

using sp_test::read_file;
using sp_test::pid_alive;

int count_lines(const fs::path& p) {
    std::istringstream in(read_file(p));
    int n = 0;
    for (std::string line; std::getline(in, line);) n += line.empty() ? 0 : 1;
    return n;
}

// The fake salt-api as a child process; its first stdout line is its port.
class FakeSaltApi {
public:
    FakeSaltApi() {
        int out[2];
        REQUIRE(pipe(out) == 0);
        m_pid = fork();
        REQUIRE(m_pid >= 0);
        if (m_pid == 0) {
            dup2(out[1], STDOUT_FILENO);
            close(out[0]);
            close(out[1]);
            const std::string script = std::string(SALTPETER_SOURCE_DIR) + "/tests/support/fake_salt_api.py";
            execlp("python3", "python3", script.c_str(), static_cast<char*>(nullptr));
            _exit(127);
        }
        close(out[1]);
        m_out = fdopen(out[0], "r");
        REQUIRE(m_out != nullptr);
        char buf[64] = {};
        REQUIRE(fgets(buf, sizeof buf, m_out) != nullptr);
        m_port = std::atoi(buf);
        REQUIRE(m_port > 0);
    }
    ~FakeSaltApi() {
        kill(m_pid, SIGTERM);
        waitpid(m_pid, nullptr, 0);
        if (m_out != nullptr) fclose(m_out);
    }
    FakeSaltApi(const FakeSaltApi&) = delete;
    FakeSaltApi& operator=(const FakeSaltApi&) = delete;
    int port() const { return m_port; }

private:
    pid_t m_pid = -1;
    FILE* m_out = nullptr;
    int m_port = 0;
};

// The environment the fakes and so the jobs inherit: minions m1, m2 and the file where the
// jobs write their pids. Set before any fake starts.
struct FakeEnv {
    FakeEnv() {
        fs::create_directories(dir.path / "state");
        ::setenv("FAKE_SALT_MINIONS", "m1,m2", 1);
        ::setenv("FAKE_SALT_STATE", (dir.path / "state").c_str(), 1);
        ::setenv("PIDS", pids().c_str(), 1);
    }
    ~FakeEnv() {
        for (const char* v : {"FAKE_SALT_MINIONS", "FAKE_SALT_STATE", "PIDS"}) ::unsetenv(v);
    }
    fs::path pids() const { return dir.path / "pids"; }
    TempDir dir;
};

struct Fixture {
    Fixture(const FakeEnv& fake, const std::string& transport, const std::string& settings, const std::string& job_yaml)
        : m_pids(fake.pids()) {
        fs::create_directories(dir.path / "config");
        std::ofstream(dir.path / "config" / "jobs.yaml")
            << "saltpeter_config:\n"
            << "  logdir: " << (dir.path / "log").string() << "\n"
            << "  machines_ws_bind_addr: 127.0.0.1\n"
            << "  machines_ws_port: 0\n"
            << "  default_wrapper_path: " << SP_WRAPPER_PATH << "\n"
            << "  default_wrapper_logdir: " << (dir.path / "wlog").string() << "\n"
            << "  salt_binary: " << FAKE_SALT_DIR << "/salt\n"
            << "  salt_run_binary: " << FAKE_SALT_DIR << "/salt-run\n"
            << "  kill_grace: 2\n"
            << settings << job_yaml;
        DaemonOptions options;
        options.config_dir = (dir.path / "config").string();
        options.schedule = false;
        options.transport = transport;
        daemon = std::make_unique<Daemon>(io, options);
        auto started = daemon->start();
        REQUIRE_MESSAGE(started.ok(), (started.ok() ? "" : started.error().message));
        daemon->set_on_run_finished([this](const RunRecord& run) { finished = run; });
    }
    ~Fixture() {
        daemon->stop();
        daemon.reset();
    }

    fs::path pids() const { return m_pids; }

    template <typename Predicate>
    bool run_until(Predicate done, std::chrono::seconds limit) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (!done() && std::chrono::steady_clock::now() < deadline) {
            io.run_for(20ms);
            if (io.stopped()) io.restart();
        }
        return done();
    }

    // Kills `job` once `ready` holds, then checks 143 on both targets and no process left.
    void kill_and_check(const std::string& job, int expected_pids) {
        auto instance = daemon->run_now(job);
        REQUIRE(instance.ok());
        REQUIRE(run_until([&] { return count_lines(pids()) >= expected_pids; }, 60s));
        REQUIRE(daemon->kill_job(job));
        REQUIRE(run_until([&] { return finished.has_value(); }, 60s));
        REQUIRE(finished->targets.size() == 2);
        for (const auto& [machine, target] : finished->targets) {
            INFO(machine << ": " << target.output);
            CHECK(target.retcode == 143);
            CHECK(target.output.find("[Job terminated by user request") != std::string::npos);
        }
        // Salt signals the whole tree; allow the fake's SIGKILL a moment to land.
        std::istringstream ids(read_file(pids()));
        for (pid_t pid; ids >> pid;) {
            bool gone = false;
            for (int i = 0; i < 50 && !gone; ++i) {
                gone = !pid_alive(pid);
                if (!gone) run_until([] { return false; }, 1s);
            }
            CHECK_MESSAGE(gone, "pid " << pid << " survived the kill");
        }
        CHECK_FALSE(daemon->kill_job(job));
    }

    fs::path m_pids;
    TempDir dir;
    sp_test::ScopedTmpdir tmpdir{dir.path / "tmp"};  // the wrapper host locks
    boost::asio::io_context io;
    std::unique_ptr<Daemon> daemon;
    std::optional<RunRecord> finished;
};

// Ignores SIGTERM in the shell and in sleep: only saltutil.kill_job (SIGKILL) ends it.
const char* k_legacy_job = R"(
legacy_sleeper:
  command: "trap '' TERM; sleep 300 & echo $! >> $PIDS; echo $$ >> $PIDS; wait"
  use_wrapper: false
  targets: 'm*'
  schedule: '@yearly'
)";

// Each test its own job name: the wrapper's host lock file is per job name.
std::string wrapper_job(const std::string& name) {
    return "\n" + name + R"(:
  command: "echo $$ >> $PIDS; sleep 300 & echo $! >> $PIDS; wait"
  targets: 'm*'
  schedule: '@yearly'
  env:
    SP_OUTPUT_INTERVAL_MS: '50'
)";
}

std::string salt_api_settings(const TempDir& dir, int port) {
    const auto secret = dir.path / "salt-api.password";
    std::ofstream(secret) << "saltpeter-secret\n";
    fs::permissions(secret, fs::perms::owner_read | fs::perms::owner_write);
    return "  salt_api_url: http://127.0.0.1:" + std::to_string(port) + "\n" +
           "  salt_api_username: saltpeter\n  salt_api_eauth: sharedsecret\n  salt_api_password_file: " +
           secret.string() + "\n";
}

}  // namespace

TEST_CASE("salt-cli daemon: legacy kill is term_job + kill_job, 143, processes gone") {
    saltpeter::test::Watchdog dog(115s);
    FakeEnv fake;
    Fixture f(fake, "salt-cli", "", k_legacy_job);
    f.kill_and_check("legacy_sleeper", 4);
    const std::string log = read_file(f.dir.path / "log" / "legacy_sleeper.log");
    CHECK(log.find("**** Exit Code 143 ******") != std::string::npos);
}

TEST_CASE("salt-cli daemon: wrapper-mode kill is 143, processes gone") {
    saltpeter::test::Watchdog dog(115s);
    FakeEnv fake;
    Fixture f(fake, "salt-cli", "", wrapper_job("saltcli_kill_sleeper"));
    f.kill_and_check("saltcli_kill_sleeper", 4);
}

TEST_CASE("salt-api daemon: legacy kill is term_job + kill_job, 143, processes gone") {
    saltpeter::test::Watchdog dog(115s);
    FakeEnv fake;
    FakeSaltApi api;
    Fixture f(fake, "salt-api", salt_api_settings(fake.dir, api.port()), k_legacy_job);
    f.kill_and_check("legacy_sleeper", 4);
}

TEST_CASE("salt-api daemon: wrapper-mode kill is 143, processes gone") {
    saltpeter::test::Watchdog dog(115s);
    FakeEnv fake;
    FakeSaltApi api;
    Fixture f(fake, "salt-api", salt_api_settings(fake.dir, api.port()), wrapper_job("saltapi_kill_sleeper"));
    f.kill_and_check("saltapi_kill_sleeper", 4);
}
