// The job policies end to end inside one process: the Daemon with the local transport, several
// local minions and the real sp_wrapper over 127.0.0.1 (issue 6). Commands read $SP_MACHINE_ID
// to fail on chosen minions.
#include <doctest/doctest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "saltpeter/daemon.hpp"
#include "runs/run_tracker.hpp"
#include "saltpeter/run_store.hpp"
#include "core/dispatch_policy.hpp"
#include "saltpeter/exit_code_mapper.hpp"
#include "test_files.hpp"
#include "watchdog.hpp"

using namespace saltpeter;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

struct TempDir : sp_test::TempDir {
    TempDir() : sp_test::TempDir("sp-policies") {}
};

using sp_test::read_file;
std::string iso_in(std::chrono::seconds from_now) {
    const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() + from_now);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::size_t count_of(const std::string& text, const std::string& needle) {
    std::size_t n = 0;
    for (std::size_t pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) ++n;
    return n;
}

// A config dir with minions m1..m<n>, fast timers, and the given jobs (and maintenance).
struct Fixture {
    explicit Fixture(const std::string& jobs_yaml, int minions = 6, bool schedule = false) {
        fs::create_directories(dir.path / "config");
        fs::create_directories(dir.path / "log");
        std::string list;
        for (int i = 1; i <= minions; ++i) list += (i > 1 ? ", m" : "m") + std::to_string(i);
        settings = "saltpeter_config:\n  logdir: " + (dir.path / "log").string() +
                   "\n  machines_ws_bind_addr: 127.0.0.1\n  machines_ws_port: 0\n  default_wrapper_path: " +
                   SP_WRAPPER_PATH + "\n  default_wrapper_logdir: " + (dir.path / "wlog").string() +
                   "\n  local_minions: [" + list + "]\n  kill_grace: 10\n";
        write(jobs_yaml);
        options.config_dir = (dir.path / "config").string();
        options.schedule = schedule;
        options.watch_config = false;  // reload() is called explicitly here; inotify has its e2e test
    }

    void write(const std::string& jobs_yaml) {
        const fs::path tmp = dir.path / "config" / ".jobs.tmp";
        std::ofstream(tmp) << settings << jobs_yaml;
        fs::rename(tmp, dir.path / "config" / "jobs.yaml");
    }

    void start() {
        daemon = std::make_unique<Daemon>(io, options);
        auto started = daemon->start();
        REQUIRE_MESSAGE(started.ok(), (started.ok() ? "" : started.error().message));
        daemon->set_on_run_finished([this](const RunRecord& run) { finished.push_back(run); });
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

    const RunRecord* run(const std::string& instance) const { return daemon->tracker().find(instance); }
    bool ended(const std::string& instance) const {
        const RunRecord* r = run(instance);
        return r != nullptr && r->finished();
    }
    std::string log(const std::string& job) const { return read_file(dir.path / "log" / (job + ".log")); }

    TempDir dir;
    sp_test::ScopedTmpdir tmpdir{dir.path / "tmp"};  // the wrapper host locks
    std::string settings;
    DaemonOptions options;
    boost::asio::io_context io;
    std::unique_ptr<Daemon> daemon;
    std::vector<RunRecord> finished;
};

int code_of(const RunRecord& run, const std::string& machine) {
    auto it = run.targets.find(machine);
    REQUIRE_MESSAGE(it != run.targets.end(), "no target " << machine << " in " << run.instance);
    REQUIRE_MESSAGE(it->second.retcode.has_value(), machine << " has no result in " << run.instance);
    return *it->second.retcode;
}

constexpr int k_skipped = 252;

}  // namespace

TEST_CASE("batches: batch_size 2 launches consecutive batches, each after the previous finished") {
    saltpeter::test::Watchdog dog(90s);
    Fixture f(R"(
rollout:
  command: "sleep 0.4; echo done $SP_MACHINE_ID"
  targets: 'm*'
  schedule: '@yearly'
  batch_size: 2
)",
              5);
    f.start();
    auto instance = f.daemon->run_now("rollout");
    REQUIRE(instance.ok());
    REQUIRE(f.run_until([&] { return f.ended(*instance); }, 60s));
    const RunRecord& run = *f.run(*instance);
    REQUIRE(run.targets.size() == 5);
    CHECK(run.success());
    // Batches in name order: {m1,m2} {m3,m4} {m5}. Each starts after the previous ended.
    auto end_of = [&](std::initializer_list<const char*> ms) {
        SysMicros latest{};
        for (const char* m : ms) latest = std::max(latest, *run.targets.at(m).endtime);
        return latest;
    };
    auto start_of = [&](std::initializer_list<const char*> ms) {
        SysMicros earliest = SysMicros::max();
        for (const char* m : ms) earliest = std::min(earliest, run.targets.at(m).starttime);
        return earliest;
    };
    CHECK(start_of({"m3", "m4"}) >= end_of({"m1", "m2"}));
    CHECK(start_of({"m5"}) >= end_of({"m3", "m4"}));
    CHECK(count_of(f.log("rollout"), "###### Starting " + *instance + " at") == 1);  // one run, three batches
}

TEST_CASE("batch_wait: the next batch waits the given seconds after the previous one") {
    saltpeter::test::Watchdog dog(90s);
    Fixture f(R"(
paced:
  command: "true"
  targets: 'm1,m2'
  target_type: list
  schedule: '@yearly'
  batch_size: 1
  batch_wait: 2
)",
              2);
    f.start();
    auto instance = f.daemon->run_now("paced");
    REQUIRE(instance.ok());
    REQUIRE(f.run_until([&] { return f.ended(*instance); }, 60s));
    const RunRecord& run = *f.run(*instance);
    REQUIRE(run.targets.size() == 2);
    CHECK(run.success());
    CHECK(run.targets.at("m2").starttime - *run.targets.at("m1").endtime >= 2s);
}

TEST_CASE("max_failures: once reached, the untouched targets are recorded as skipped (252) with the reason") {
    saltpeter::test::Watchdog dog(90s);
    Fixture f(R"(
careful:
  command: "case $SP_MACHINE_ID in m1|m2) exit 3;; esac; echo fine"
  targets: 'm*'
  schedule: '@yearly'
  batch_size: 2
  max_failures: 2
)");
    f.start();
    auto instance = f.daemon->run_now("careful");
    REQUIRE(instance.ok());
    REQUIRE(f.run_until([&] { return f.ended(*instance); }, 60s));
    const RunRecord& run = *f.run(*instance);
    REQUIRE(run.targets.size() == 6);
    CHECK(code_of(run, "m1") == 3);
    CHECK(code_of(run, "m2") == 3);
    for (const char* m : {"m3", "m4", "m5", "m6"}) {
        INFO(m);
        CHECK(code_of(run, m) == k_skipped);
        CHECK(run.targets.at(m).output == "Skipped: max_failures reached (2 failed, limit 2)");
        CHECK(run.targets.at(m).state == TargetState::finished);
    }
    CHECK_FALSE(run.success());
    const std::string log = f.log("careful");
    CHECK(count_of(log, "**** Exit Code 252 ******") == 4);
    CHECK(log.find("Skipped: max_failures reached") != std::string::npos);
    CHECK(ExitCodeMapper::outcome(k_skipped) == Outcome::skipped);
}

TEST_CASE("max_failures as a percentage below the limit lets every batch run") {
    saltpeter::test::Watchdog dog(90s);
    Fixture f(R"(
tolerant:
  command: "case $SP_MACHINE_ID in m1) exit 3;; esac; true"
  targets: 'm*'
  schedule: '@yearly'
  batch_size: 2
  max_failures: 40%
)");
    f.start();
    auto instance = f.daemon->run_now("tolerant");
    REQUIRE(instance.ok());
    REQUIRE(f.run_until([&] { return f.ended(*instance); }, 60s));
    const RunRecord& run = *f.run(*instance);
    REQUIRE(run.targets.size() == 6);
    CHECK(code_of(run, "m1") == 3);
    for (const char* m : {"m2", "m3", "m4", "m5", "m6"}) CHECK(code_of(run, m) == 0);
}

TEST_CASE("canary: a failed canary stops the run; a good one lets the rest follow") {
    saltpeter::test::Watchdog dog(90s);
    Fixture f(R"(
bad_canary:
  command: "case $SP_MACHINE_ID in m1) exit 9;; esac; true"
  targets: 'm*'
  schedule: '@yearly'
  canary: 1
good_canary:
  command: "true"
  targets: 'm*'
  schedule: '@yearly'
  canary: 2
  batch_size: 2
)");
    f.start();
    auto bad = f.daemon->run_now("bad_canary");
    auto good = f.daemon->run_now("good_canary");
    REQUIRE(bad.ok());
    REQUIRE(good.ok());
    REQUIRE(f.run_until([&] { return f.ended(*bad) && f.ended(*good); }, 60s));
    const RunRecord& b = *f.run(*bad);
    REQUIRE(b.targets.size() == 6);
    CHECK(code_of(b, "m1") == 9);
    for (const char* m : {"m2", "m3", "m4", "m5", "m6"}) {
        CHECK(code_of(b, m) == k_skipped);
        CHECK(b.targets.at(m).output == "Skipped: canary failed (1 of the canary target(s))");
    }
    const RunRecord& g = *f.run(*good);
    CHECK(g.targets.size() == 6);
    CHECK(g.success());
    // The canary pair ran before the others started.
    const SysMicros canary_end = std::max(*g.targets.at("m1").endtime, *g.targets.at("m2").endtime);
    for (const char* m : {"m3", "m4", "m5", "m6"}) CHECK(g.targets.at(m).starttime >= canary_end);
}

TEST_CASE("number_of_targets: a random subset of N responding targets") {
    saltpeter::test::Watchdog dog(90s);
    Fixture f(R"(
sample:
  command: "true"
  targets: 'm*'
  schedule: '@yearly'
  number_of_targets: 2
)");
    f.start();
    auto instance = f.daemon->run_now("sample");
    REQUIRE(instance.ok());
    REQUIRE(f.run_until([&] { return f.ended(*instance); }, 60s));
    const RunRecord& run = *f.run(*instance);
    CHECK(run.targets.size() == 2);
    CHECK(run.success());
    // The subset is the one the pure policy picks for this instance.
    const auto expected = policy::choose_subset({"m1", "m2", "m3", "m4", "m5", "m6"}, 2, policy::fnv1a(*instance));
    for (const auto& m : expected) CHECK(run.targets.count(m) == 1);
}

TEST_CASE("retries: only the failed target is retried, as a retry run, after the backoff") {
    saltpeter::test::Watchdog dog(90s);
    Fixture f(R"(
flaky:
  command: "if [ $SP_MACHINE_ID = m2 ] && [ ! -e $FLAKY_DIR/m2.once ]; then touch $FLAKY_DIR/m2.once; exit 5; fi; echo ok"
  targets: 'm1,m2'
  target_type: list
  schedule: '@yearly'
  retries: 3
  retry_backoff: 1
)",
              2);
    setenv("FLAKY_DIR", f.dir.path.c_str(), 1);
    f.start();
    auto instance = f.daemon->run_now("flaky");
    REQUIRE(instance.ok());
    const std::string retry = *instance + "_retry1";
    REQUIRE(f.run_until([&] { return f.ended(*instance) && f.ended(retry); }, 60s));
    f.run_until([] { return false; }, 2s);  // no second retry may follow
    const RunRecord& main = *f.run(*instance);
    CHECK(code_of(main, "m1") == 0);
    CHECK(code_of(main, "m2") == 5);
    const RunRecord& again = *f.run(retry);
    CHECK(again.trigger == Trigger::retry);
    REQUIRE(again.targets.size() == 1);
    CHECK(code_of(again, "m2") == 0);
    CHECK(again.started - *main.targets.at("m2").endtime >= 1s);
    CHECK(f.run(*instance + "_retry2") == nullptr);
    const std::string log = f.log("flaky");
    CHECK(log.find("###### Starting " + retry + " at") != std::string::npos);
    CHECK(log.find("########## m2 from " + retry) != std::string::npos);
    unsetenv("FLAKY_DIR");
}

TEST_CASE("retries: a target that keeps failing gets retries + 1 attempts with growing delays") {
    saltpeter::test::Watchdog dog(90s);
    Fixture f(R"(
broken:
  command: "exit 7"
  targets: m1
  schedule: '@yearly'
  retries: 2
  retry_backoff: 1
  retry_backoff_max: 5
)",
              1);
    f.start();
    auto instance = f.daemon->run_now("broken");
    REQUIRE(instance.ok());
    const std::string r1 = *instance + "_retry1", r2 = *instance + "_retry2";
    REQUIRE(f.run_until([&] { return f.ended(r2); }, 60s));
    f.run_until([] { return false; }, 3s);
    CHECK(f.run(*instance + "_retry3") == nullptr);
    CHECK(code_of(*f.run(r1), "m1") == 7);
    CHECK(code_of(*f.run(r2), "m1") == 7);
    CHECK(f.run(r2)->started - *f.run(r1)->ended >= 2s);  // 1 s, then 2 s
    CHECK(count_of(f.log("broken"), "**** Exit Code 7 ******") == 3);
}

TEST_CASE("retries never follow a kill (143)") {
    saltpeter::test::Watchdog dog(90s);
    Fixture f(R"(
victim:
  command: "echo up; sleep 30"
  targets: m1
  schedule: '@yearly'
  retries: 3
  retry_backoff: 1
  env:
    SP_OUTPUT_INTERVAL_MS: '50'
)",
              1);
    f.start();
    auto instance = f.daemon->run_now("victim");
    REQUIRE(instance.ok());
    REQUIRE(f.run_until(
        [&] {
            const RunRecord* r = f.run(*instance);
            return r && r->targets.count("m1") && r->targets.at("m1").output.find("up") != std::string::npos;
        },
        20s));
    CHECK(f.daemon->kill_job("victim"));
    REQUIRE(f.run_until([&] { return f.ended(*instance); }, 30s));
    f.run_until([] { return false; }, 2s);
    CHECK(code_of(*f.run(*instance), "m1") == 143);
    CHECK(f.run(*instance + "_retry1") == nullptr);
}

TEST_CASE("retries inside batches: the batch's retry finishes before the next batch starts") {
    saltpeter::test::Watchdog dog(90s);
    Fixture f(R"(
flaky_batches:
  command: "if [ $SP_MACHINE_ID = m1 ] && [ ! -e $FLAKY_DIR/m1.once ]; then touch $FLAKY_DIR/m1.once; exit 5; fi; true"
  targets: 'm*'
  schedule: '@yearly'
  batch_size: 2
  retries: 1
  retry_backoff: 1
  max_failures: 1
)",
              4);
    setenv("FLAKY_DIR", f.dir.path.c_str(), 1);
    f.start();
    auto instance = f.daemon->run_now("flaky_batches");
    REQUIRE(instance.ok());
    const std::string retry = *instance + "_b1_retry1";
    REQUIRE(f.run_until([&] { return f.ended(*instance); }, 60s));
    const RunRecord& main = *f.run(*instance);
    REQUIRE(f.run(retry) != nullptr);
    CHECK(code_of(*f.run(retry), "m1") == 0);
    // The retry succeeded, so max_failures 1 was not reached and batch 2 ran after it.
    CHECK(code_of(main, "m3") == 0);
    CHECK(code_of(main, "m4") == 0);
    CHECK(main.targets.at("m3").starttime >= *f.run(retry)->targets.at("m1").endtime);
    unsetenv("FLAKY_DIR");
}

TEST_CASE("concurrency replace: the running instance is killed (143) and the new one runs") {
    saltpeter::test::Watchdog dog(90s);
    Fixture f(R"(
latest:
  command: "echo up; sleep 30"
  targets: 'm1,m2'
  target_type: list
  schedule: '@yearly'
  concurrency: replace
  timeout: 60
  env:
    SP_OUTPUT_INTERVAL_MS: '50'
)",
              2);
    f.start();
    auto first = f.daemon->run_now("latest");
    REQUIRE(first.ok());
    auto up = [&](const std::string& instance) {
        const RunRecord* r = f.run(instance);
        if (!r || r->targets.size() != 2) return false;
        for (const auto& [m, t] : r->targets) {
            if (t.output.find("up") == std::string::npos) return false;
        }
        return true;
    };
    REQUIRE(f.run_until([&] { return up(*first); }, 20s));
    auto second = f.daemon->run_now("latest");
    REQUIRE(second.ok());
    CHECK(*second != *first);
    REQUIRE(f.run_until([&] { return f.ended(*first) && up(*second); }, 30s));
    for (const char* m : {"m1", "m2"}) CHECK(code_of(*f.run(*first), m) == 143);
    CHECK_FALSE(f.ended(*second));
    CHECK(f.daemon->kill_job("latest"));
    REQUIRE(f.run_until([&] { return f.ended(*second); }, 30s));
}

TEST_CASE("replace + batches: the replaced run's unlaunched batches are skipped, not launched later") {
    saltpeter::test::Watchdog dog(90s);
    Fixture f(R"(
rolling:
  command: "echo up; sleep 30"
  targets: 'm*'
  schedule: '@yearly'
  concurrency: replace
  batch_size: 1
  env:
    SP_OUTPUT_INTERVAL_MS: '50'
)",
              3);
    f.start();
    auto first = f.daemon->run_now("rolling");
    REQUIRE(first.ok());
    REQUIRE(f.run_until(
        [&] {
            const RunRecord* r = f.run(*first);
            return r && r->targets.count("m1") && r->targets.at("m1").output.find("up") != std::string::npos;
        },
        20s));
    auto second = f.daemon->run_now("rolling");
    REQUIRE(second.ok());
    REQUIRE(f.run_until([&] { return f.ended(*first); }, 30s));
    const RunRecord& old = *f.run(*first);
    CHECK(code_of(old, "m1") == 143);
    CHECK(code_of(old, "m2") == k_skipped);
    CHECK(code_of(old, "m3") == k_skipped);
    CHECK(old.targets.at("m2").output == "Skipped: replaced by a new run (concurrency: replace)");
    f.run_until([] { return false; }, 1s);
    CHECK(f.run(*second)->targets.size() == 1);  // the new run is on its first batch
    CHECK(f.daemon->kill_job("rolling"));
    REQUIRE(f.run_until([&] { return f.ended(*second); }, 30s));
    CHECK(code_of(*f.run(*second), "m2") == k_skipped);
}

TEST_CASE("forbid: run-now of a running job is refused with a reason unless forced (then the host lock decides)") {
    saltpeter::test::Watchdog dog(90s);
    Fixture f(R"(
policy_forbid:
  command: "echo up; sleep 1"
  targets: m1
  schedule: '@yearly'
  env:
    SP_OUTPUT_INTERVAL_MS: '50'
)",
              1);
    f.start();
    auto first = f.daemon->run_now("policy_forbid");
    REQUIRE(first.ok());
    auto refused = f.daemon->run_now("policy_forbid");
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().field == "overlap");
    CHECK(refused.error().message == "job 'policy_forbid' is still running (" + *first + "); force starts it anyway");
    // Once the first wrapper holds the host lock, a forced run-now gets through spd but not the lock.
    REQUIRE(f.run_until(
        [&] {
            const RunRecord* r = f.run(*first);
            return r && r->targets.count("m1") && r->targets.at("m1").output.find("up") != std::string::npos;
        },
        20s));
    auto forced = f.daemon->run_now("policy_forbid", true);
    REQUIRE(forced.ok());
    REQUIRE(f.run_until([&] { return f.ended(*first) && f.ended(*forced); }, 30s));
    CHECK(f.run(*first)->success());
    CHECK(code_of(*f.run(*forced), "m1") == 254);
    CHECK(f.run(*forced)->targets.at("m1").output.find("LOCKFILE ERROR: Job policy_forbid already running") !=
          std::string::npos);
    CHECK(f.log("policy_forbid").find("###### Overlap detected on " + *first) != std::string::npos);
    // The host lock was this test's own ($TMPDIR = <dir>/tmp), not one in /tmp shared with other checkouts.
    CHECK(fs::exists(f.dir.path / "tmp" / "sp_wrapper_policy_forbid.m1.lock"));
}

TEST_CASE("concurrency allow (and allow_overlap): a second instance runs next to the first") {
    saltpeter::test::Watchdog dog(90s);
    Fixture f(R"(
parallel:
  command: "sleep 1"
  targets: m1
  schedule: '@yearly'
  allow_overlap: "i know what i am doing!"
)",
              1);
    f.start();
    auto a = f.daemon->run_now("parallel");
    auto b = f.daemon->run_now("parallel");
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    REQUIRE(f.run_until([&] { return f.ended(*a) && f.ended(*b); }, 30s));
    CHECK(f.run(*a)->success());
    CHECK(f.run(*b)->success());
}

TEST_CASE("global maintenance: run-now is queued, says so, and starts when maintenance ends (reload)") {
    saltpeter::test::Watchdog dog(90s);
    const std::string job = R"(
nightly:
  command: "true"
  targets: m1
  schedule: '@yearly'
)";
    Fixture f(job + "saltpeter_maintenance:\n  global: true\n", 1);
    f.start();
    auto queued = f.daemon->run_now("nightly");
    REQUIRE_FALSE(queued.ok());
    CHECK(queued.error().field == "queued");
    CHECK(queued.error().message.find("is queued and starts when maintenance ends") != std::string::npos);
    CHECK(f.daemon->queued_run_now() == 1);
    f.run_until([] { return false; }, 1s);
    CHECK(f.finished.empty());
    CHECK(f.log("nightly").find("run-now request queued") != std::string::npos);
    f.write(job);
    f.daemon->reload();
    REQUIRE(f.run_until([&] { return !f.finished.empty(); }, 30s));
    CHECK(f.finished[0].trigger == Trigger::run_now);
    CHECK(f.finished[0].success());
    CHECK(f.daemon->queued_run_now() == 0);
}

TEST_CASE("global maintenance with until: the queued run-now starts by itself when it lapses") {
    saltpeter::test::Watchdog dog(90s);
    Fixture f("nightly:\n  command: 'true'\n  targets: m1\n  schedule: '@yearly'\nsaltpeter_maintenance:\n  global:\n"
              "    until: '" + iso_in(3s) + "'\n",
              1);
    f.start();
    auto queued = f.daemon->run_now("nightly");
    REQUIRE_FALSE(queued.ok());
    CHECK(queued.error().field == "queued");
    REQUIRE(f.run_until([&] { return !f.finished.empty(); }, 30s));
    CHECK(f.finished[0].success());
}

TEST_CASE("maintenance arriving mid-run: later batches leave out machines now in maintenance") {
    saltpeter::test::Watchdog dog(90s);
    const std::string job = R"(
slow_rollout:
  command: "true"
  targets: 'm*'
  schedule: '@yearly'
  batch_size: 1
  batch_wait: 2
)";
    Fixture f(job, 3);
    f.start();
    auto instance = f.daemon->run_now("slow_rollout");
    REQUIRE(instance.ok());
    REQUIRE(f.run_until(
        [&] {
            const RunRecord* r = f.run(*instance);
            return r && r->targets.count("m1") && r->targets.at("m1").retcode.has_value();
        },
        20s));
    f.write(job + "saltpeter_maintenance:\n  machines:\n    - m3\n");
    f.daemon->reload();
    REQUIRE(f.run_until([&] { return f.ended(*instance); }, 30s));
    const RunRecord& run = *f.run(*instance);
    CHECK(run.targets.size() == 2);
    CHECK(code_of(run, "m2") == 0);
    CHECK(run.targets.count("m3") == 0);
    CHECK(f.log("slow_rollout").find("########## m3 from " + *instance + " ################\n**** Exit Code 0 ******\n"
                                     "Target under maintenance") != std::string::npos);
}

TEST_CASE("global maintenance arriving mid-run: running targets finish, later batches are skipped") {
    saltpeter::test::Watchdog dog(90s);
    const std::string job = R"(
slow_rollout:
  command: "true"
  targets: 'm*'
  schedule: '@yearly'
  batch_size: 1
  batch_wait: 2
)";
    Fixture f(job, 3);
    f.start();
    auto instance = f.daemon->run_now("slow_rollout");
    REQUIRE(instance.ok());
    REQUIRE(f.run_until(
        [&] {
            const RunRecord* r = f.run(*instance);
            return r && r->targets.count("m1") && r->targets.at("m1").retcode.has_value();
        },
        20s));
    f.write(job + "saltpeter_maintenance:\n  global: true\n");
    f.daemon->reload();
    REQUIRE(f.run_until([&] { return f.ended(*instance); }, 30s));
    const RunRecord& run = *f.run(*instance);
    CHECK(code_of(run, "m1") == 0);
    CHECK(code_of(run, "m2") == k_skipped);
    CHECK(run.targets.at("m3").output == "Skipped: global maintenance began");
}

TEST_CASE("splay: a scheduled firing starts its job's FNV-1a offset after the fire time") {
    saltpeter::test::Watchdog dog(90s);
    // A job name whose offset in a 3 s window is 2 s (found with the pure policy).
    std::string name;
    for (int i = 0; name.empty(); ++i) {
        const std::string candidate = "splayed" + std::to_string(i);
        if (policy::splay_offset(candidate, 3s) == 2s) name = candidate;
    }
    Fixture f(name + ":\n  command: 'true'\n  targets: m1\n  schedule: '* * * * * * *'\n  splay: 3\n", 1, true);
    f.start();
    REQUIRE(f.run_until([&] { return !f.finished.empty(); }, 30s));
    const RunRecord& run = f.finished[0];
    REQUIRE(run.scheduled.has_value());
    CHECK(run.trigger == Trigger::schedule);
    CHECK(run.started - *run.scheduled >= 2s);
    CHECK(run.started - *run.scheduled < 4s);
    f.daemon->stop();
}

TEST_CASE("misfire across a restart: run_once starts one catch-up run, skip records the decision only") {
    saltpeter::test::Watchdog dog(90s);
    // Hourly jobs whose latest fire time was two minutes ago (the next one is ~58 min away);
    // spd last fired them three hours before that, then was down.
    const auto now = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
    const auto latest = SysSeconds(std::chrono::seconds((now - 120s).time_since_epoch().count() / 60 * 60));
    const long minute = (latest.time_since_epoch().count() / 60) % 60;
    const std::string schedule = "'0 " + std::to_string(minute) + " * * * * *'";
    Fixture f("catchup:\n  command: 'true'\n  targets: m1\n  schedule: " + schedule +
                  "\n  misfire: run_once\n  misfire_grace: 3600\n"
                  "dropper:\n  command: 'true'\n  targets: m1\n  schedule: " + schedule + "\n",
              1, true);
    const auto last = (latest - 3h).time_since_epoch().count();
    std::ofstream(f.dir.path / "log" / "schedule-state.json")
        << R"({"version": 1, "jobs": {"catchup": {"last_fire": )" << last << R"(}, "dropper": {"last_fire": )" << last
        << "}}}\n";
    f.start();
    REQUIRE(f.run_until([&] { return !f.finished.empty(); }, 30s));
    const RunRecord& run = f.finished[0];
    CHECK(run.job == "catchup");
    CHECK(run.trigger == Trigger::catch_up);
    CHECK(run.scheduled == latest);
    f.run_until([] { return false; }, 1s);
    CHECK(f.finished.size() == 1);  // one catch-up run, not three; nothing for dropper
    // The fire times of the old JSON state file were imported; the decisions and the new last fire
    // times are in the state database.
    RunStore& store = *f.daemon->store();
    bool flushed = false;
    store.flush([&](const Status&) { flushed = true; });
    REQUIRE(f.run_until([&] { return flushed; }, 10s));
    auto decisions_of = [&](const std::string& job) {
        std::string all;
        auto decisions = store.decisions(job, 10);
        REQUIRE(decisions.ok());
        for (const auto& d : *decisions) {
            CHECK(d.kind == DecisionKind::misfire);
            all += d.detail + "\n";
        }
        return all;
    };
    const std::string catchup = decisions_of("catchup");
    const std::string dropper = decisions_of("dropper");
    CHECK(catchup.find("4 fire time(s) missed") == std::string::npos);
    CHECK(catchup.find("3 fire time(s) missed") != std::string::npos);
    CHECK(catchup.find("misfire: run_once, one catch-up run") != std::string::npos);
    CHECK(dropper.find("misfire: skip, no catch-up run") != std::string::npos);
    const auto fires = store.last_fire_times().value();
    CHECK(fires.at("catchup") == latest);
    CHECK(fires.at("dropper") == latest);
    f.daemon->stop();
}
