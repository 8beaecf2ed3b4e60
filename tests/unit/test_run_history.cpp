// make_store_history (api_server.hpp): the API's history merges the RunStore with the tracker's
// runs in memory. A memory store and a RunTracker with a silent observer; no timers run.
#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "runs/run_history.hpp"
#include "saltpeter/run_store.hpp"
#include "runs/run_tracker.hpp"
#include "api/ui_protocol.hpp"

using namespace saltpeter;

namespace {

SysMicros now_micros() { return std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now()); }

/// A memory store and a tracker, with helpers that write to the store and wait for the write.
struct Fixture {
    Fixture() : store(make_memory_run_store(io)), tracker(io, TrackerOptions{}, observer) {}

    template <typename Op>
    void sync(Op op) {
        std::optional<Status> result;
        op([&](const Status& s) { result = s; });
        io.restart();
        while (!result && io.run_one_for(std::chrono::seconds(20)) > 0) {
        }
        REQUIRE(result.has_value());
        REQUIRE_MESSAGE(result->ok(), (result->ok() ? "" : result->error().message));
    }

    /// A finished run of `job` on one machine, stored only (as if from before a restart).
    void stored_run(const std::string& instance, const std::string& job, SysMicros started, int retcode,
                    const std::string& output, const std::vector<std::string>& notes = {}, bool verdict = false) {
        StoredRun r;
        r.instance = instance;
        r.job = job;
        r.group = "ops";
        r.started = started;
        sync([&](RunStore::Completion c) { store->put_run(r, std::move(c)); });
        StoredTarget t;
        t.instance = instance;
        t.machine = "m1";
        t.state = TargetState::finished;
        t.started = started + std::chrono::milliseconds(10);
        t.ended = started + std::chrono::seconds(5);
        t.retcode = retcode;
        t.notes = notes;
        t.spd_verdict = verdict;
        sync([&](RunStore::Completion c) { store->put_target(t, std::move(c)); });
        if (!output.empty()) {
            sync([&](RunStore::Completion c) { REQUIRE(store->try_append_output(instance, "m1", 1, output, std::move(c))); });
        }
        sync([&](RunStore::Completion c) {
            store->finish_run(instance, started + std::chrono::seconds(5), retcode == 0 ? RunStatus::success : RunStatus::failure,
                              std::move(c));
        });
    }

    /// A run the tracker holds, finished with `retcode` and `output` on m1.
    void live_run(const std::string& instance, const std::string& job, int retcode, const std::string& output,
                  bool finish = true) {
        RunSpec spec;
        spec.instance = instance;
        spec.job = job;
        spec.group = "ops";
        spec.timeout = std::chrono::seconds(0);
        tracker.open(spec);
        tracker.add_target(instance, "m1", false);
        tracker.append_output(instance, "m1", output);
        if (finish) {
            tracker.set_result(instance, "m1", retcode, "", false);
            tracker.launching_done(instance);
        }
    }

    boost::asio::io_context io;
    RunObserver observer;
    std::unique_ptr<RunStore> store;
    RunTracker tracker;
};

std::vector<std::string> instances(const std::vector<RunRecord>& runs) {
    std::vector<std::string> out;
    for (const RunRecord& r : runs) out.push_back(r.instance);
    return out;
}

}  // namespace

TEST_CASE("store history: runs_of merges stored and in-memory runs, newest first, the tracker winning") {
    Fixture f;
    const SysMicros now = now_micros();
    f.stored_run("j_1", "j", now - std::chrono::hours(3), 0, "one\n");
    f.stored_run("j_2", "j", now - std::chrono::hours(2), 1, "two\n");
    f.stored_run("j_3", "j", now - std::chrono::hours(1), 0, "three\n");
    f.stored_run("other_1", "other", now - std::chrono::minutes(30), 0, "x\n");
    f.live_run("j_live", "j", 7, "live output\n", false);
    // The store's copy of the live run is behind: the tracker's record must be the one shown.
    StoredRun stale;
    stale.instance = "j_live";
    stale.job = "j";
    stale.started = f.tracker.find("j_live")->started;
    f.sync([&](RunStore::Completion c) { f.store->put_run(stale, std::move(c)); });

    auto history = make_store_history(*f.store, f.tracker);
    const auto all = history->runs_of("j", 10);
    CHECK(instances(all) == std::vector<std::string>{"j_live", "j_3", "j_2", "j_1"});
    REQUIRE(all.size() == 4);
    CHECK(all[0].targets.at("m1").output == "live output\n");  // from the tracker, not the store
    CHECK_FALSE(all[0].finished());
    CHECK(all[2].targets.at("m1").retcode == 1);
    CHECK(all[2].finished());
    CHECK(all[2].targets.at("m1").output_bytes == 4);

    CHECK(instances(history->runs_of("j", 2)) == std::vector<std::string>{"j_live", "j_3"});
    CHECK(instances(history->runs_of("other", 10)) == std::vector<std::string>{"other_1"});
    CHECK(history->runs_of("nobody", 10).empty());

    // The memory history sees only the tracker's run.
    CHECK(instances(make_memory_history(f.tracker)->runs_of("j", 10)) == std::vector<std::string>{"j_live"});

    // The API's JSON of a stored run listed without output still says how long its output is.
    const auto json = nlohmann::json::parse(ui::run_json(all[1], false));
    CHECK(json["targets"]["m1"]["output_length"] == 6);
    CHECK(json["finished"] == true);
    CHECK(json["success"] == true);
}

TEST_CASE("store history: find returns a stored run with its output and verdict text, a live run from memory") {
    Fixture f;
    const SysMicros now = now_micros();
    const std::string verdict = "[SALTPETER ERROR: Job lost connection - no heartbeat for 15 seconds]";
    f.stored_run("j_1", "j", now - std::chrono::hours(1), 253, "partial line", {"heartbeat lost", verdict}, true);
    f.stored_run("j_2", "j", now - std::chrono::minutes(50), 0, "all fine\n");
    f.live_run("j_live", "j", 0, "live\n");
    auto history = make_store_history(*f.store, f.tracker);

    auto lost = history->find("j_1");
    REQUIRE(lost.has_value());
    CHECK(lost->job == "j");
    CHECK(lost->finished());
    const TargetResult& t = lost->targets.at("m1");
    CHECK(t.retcode == 253);
    CHECK(t.spd_verdict);
    CHECK(t.output == "partial line\n" + verdict + "\n");

    auto fine = history->find("j_2");
    REQUIRE(fine.has_value());
    CHECK(fine->targets.at("m1").output == "all fine\n");
    CHECK(fine->targets.at("m1").retcode == 0);

    auto live = history->find("j_live");
    REQUIRE(live.has_value());
    CHECK(live->targets.at("m1").output == "live\n");
    CHECK(live->finished());

    CHECK_FALSE(history->find("nope").has_value());
}

TEST_CASE("store history: runs_between feeds the timeline from the store and the tracker") {
    Fixture f;
    const SysMicros now = now_micros();
    f.stored_run("j_old", "j", now - std::chrono::hours(30), 0, "old\n");   // outside the last day
    f.stored_run("j_1", "j", now - std::chrono::hours(2), 4, "one\n");
    f.stored_run("k_1", "k", now - std::chrono::hours(1), 0, "k\n");
    f.live_run("j_live", "j", 0, "live\n", false);
    auto history = make_store_history(*f.store, f.tracker);

    const auto runs = history->runs_between(now - std::chrono::hours(24), now + std::chrono::minutes(1), 100);
    REQUIRE(runs.size() == 3);
    CHECK(runs.count("j_1") == 1);
    CHECK(runs.count("k_1") == 1);
    CHECK(runs.count("j_live") == 1);
    CHECK(runs.at("j_live").targets.at("m1").output.empty());  // the timeline needs no output
    CHECK(runs.at("j_1").targets.at("m1").retcode == 4);

    const auto limited = history->runs_between(now - std::chrono::hours(24), now + std::chrono::minutes(1), 2);
    REQUIRE(limited.size() == 2);
    CHECK(limited.count("j_live") == 1);
    CHECK(limited.count("k_1") == 1);

    const auto frame = nlohmann::json::parse(
        ui::timeline_frame(runs, now - std::chrono::hours(24), now + std::chrono::minutes(1), "req", 1.0));
    const auto& content = frame["timeline"]["content"];
    int starts = 0;
    bool j1_result = false;
    for (const auto& e : content) {
        if (e["msg_type"] == "machine_start") ++starts;
        if (e["msg_type"] == "machine_result" && e["job_instance"] == "j_1") j1_result = e["ret_code"] == 4;
        CHECK(e["job_instance"] != "j_old");
    }
    CHECK(starts == 3);
    CHECK(j1_result);

    // The memory history: only what the tracker holds.
    const auto mem = make_memory_history(f.tracker)->runs_between(now - std::chrono::hours(24), now + std::chrono::minutes(1), 100);
    REQUIRE(mem.size() == 1);
    CHECK(mem.count("j_live") == 1);
}

namespace {

/// A store whose writes go to a memory store and whose reads fail, as a damaged disk would.
class FailingReads final : public RunStore {
public:
    explicit FailingReads(RunStore& inner) : m_inner(inner) {}
    void put_run(const StoredRun& run, Completion done) override { m_inner.put_run(run, std::move(done)); }
    void finish_run(const std::string& instance, SysMicros ended, RunStatus status, Completion done) override {
        m_inner.finish_run(instance, ended, status, std::move(done));
    }
    void put_target(const StoredTarget& target, Completion done) override { m_inner.put_target(target, std::move(done)); }
    bool try_append_output(const std::string& instance, const std::string& machine, std::optional<std::int64_t> seq,
                           std::string data, Completion done) override {
        return m_inner.try_append_output(instance, machine, seq, std::move(data), std::move(done));
    }
    void when_writable(std::function<void()> ready) override { m_inner.when_writable(std::move(ready)); }
    void record_decision(const SchedulerDecision& d, Completion done) override { m_inner.record_decision(d, std::move(done)); }
    void set_last_fire(const std::string& job, SysSeconds fire, Completion done) override {
        m_inner.set_last_fire(job, fire, std::move(done));
    }
    void prune(SysMicros now, Completion done) override { m_inner.prune(now, std::move(done)); }
    void flush(Completion done) override { m_inner.flush(std::move(done)); }
    void clear_target_error(const std::string& instance, const std::string& machine, Completion done) override {
        m_inner.clear_target_error(instance, machine, std::move(done));
    }
    std::uint64_t queued_bytes() const override { return m_inner.queued_bytes(); }
    Result<std::vector<StoredRun>> unfinished_runs() override { return fail(); }
    Result<std::map<std::string, SysSeconds>> last_fire_times() override { return fail(); }
    Result<std::optional<StoredRun>> run(const std::string&) override { return fail(); }
    Result<std::vector<StoredRun>> runs(const std::string&, std::size_t) override { return fail(); }
    Result<std::vector<StoredRun>> runs_between(SysMicros, SysMicros, std::size_t) override { return fail(); }
    Result<std::string> output(const std::string&, const std::string&) override { return fail(); }
    Result<std::vector<SchedulerDecision>> decisions(const std::string&, std::size_t) override { return fail(); }

private:
    static Error fail() { return Error{"state database /x/state.db: read failed: disk I/O error", "state_db"}; }
    RunStore& m_inner;
};

}  // namespace

TEST_CASE("store history: a failing store read leaves the runs in memory") {
    Fixture f;
    f.stored_run("j_1", "j", now_micros() - std::chrono::hours(1), 0, "one\n");
    f.live_run("j_live", "j", 0, "live\n");
    FailingReads failing(*f.store);
    auto history = make_store_history(failing, f.tracker);
    CHECK(instances(history->runs_of("j", 10)) == std::vector<std::string>{"j_live"});
    CHECK_FALSE(history->find("j_1").has_value());
    REQUIRE(history->find("j_live").has_value());
    const auto runs = history->runs_between(now_micros() - std::chrono::hours(2), now_micros(), 10);
    REQUIRE(runs.size() == 1);
    CHECK(runs.count("j_live") == 1);
    // With reads working again the stored run is back (the failure was not cached).
    auto working = make_store_history(*f.store, f.tracker);
    CHECK(instances(working->runs_of("j", 10)) == std::vector<std::string>{"j_live", "j_1"});
}
