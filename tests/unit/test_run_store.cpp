// The RunStore contract, run against both implementations, plus what only the SQLite one can do
// (reopen, corrupt and unwritable files, file modes). Completions are awaited by running the
// io_context with a bounded wait, never by sleeping.

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <sqlite3.h>

#include "saltpeter/run_store.hpp"

using namespace saltpeter;
namespace fs = std::filesystem;

namespace {

const SysMicros k_t0{std::chrono::microseconds{1795840727740601LL}};  // 2026-11-28 04:38:47.740601 UTC

SysMicros at(int seconds_after) { return k_t0 + std::chrono::seconds(seconds_after); }

class TempDir {
public:
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "sp_store_XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        m_path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        fs::permissions(m_path, fs::perms::owner_all, fs::perm_options::add, ec);
        fs::remove_all(m_path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::string file(const std::string& name) const { return (m_path / name).string(); }
    const fs::path& path() const { return m_path; }

private:
    fs::path m_path;
};

/// Runs `io` until `done()` holds; fails (instead of hanging) after 20 s without progress.
template <typename Pred>
void run_until(boost::asio::io_context& io, Pred done) {
    auto guard = boost::asio::make_work_guard(io);
    io.restart();
    while (!done()) {
        if (io.run_one_for(std::chrono::seconds(20)) == 0) {
            FAIL("timed out waiting for the store");
        }
    }
}

/// One store of either kind with helpers that wait for completions.
struct Harness {
    explicit Harness(std::string kind_, RunStoreOptions options_ = {}) : kind(std::move(kind_)), options(options_) {
        open();
    }

    void open() {
        if (kind == "memory") {
            store = make_memory_run_store(io, options);
        } else {
            auto s = make_sqlite_run_store(io, dir.file("state.db"), options);
            REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message));
            store = std::move(*s);
        }
    }

    /// Closes and reopens (SQLite: a new process would see the same).
    void reopen() {
        store.reset();
        drain();
        open();
    }

    /// Runs whatever completions are already posted.
    void drain() {
        io.restart();
        io.poll();
    }

    template <typename Op>
    Status sync(Op op) {
        std::optional<Status> result;
        op([&](const Status& s) { result = s; });
        run_until(io, [&] { return result.has_value(); });
        return *result;
    }

    Status put_run(const StoredRun& r) {
        return sync([&](RunStore::Completion c) { store->put_run(r, std::move(c)); });
    }
    Status put_target(const StoredTarget& t) {
        return sync([&](RunStore::Completion c) { store->put_target(t, std::move(c)); });
    }
    Status append(const std::string& instance, const std::string& machine, std::optional<std::int64_t> seq,
                  std::string data) {
        return sync([&](RunStore::Completion c) {
            REQUIRE(store->try_append_output(instance, machine, seq, std::move(data), std::move(c)));
        });
    }
    Status finish(const std::string& instance, SysMicros ended, RunStatus status) {
        return sync([&](RunStore::Completion c) { store->finish_run(instance, ended, status, std::move(c)); });
    }

    std::string kind;
    RunStoreOptions options;
    TempDir dir;
    boost::asio::io_context io;
    std::unique_ptr<RunStore> store;
};

StoredRun make_run(const std::string& instance, const std::string& job, SysMicros started) {
    StoredRun r;
    r.instance = instance;
    r.job = job;
    r.group = "ops";
    r.trigger = Trigger::schedule;
    r.scheduled = std::chrono::time_point_cast<std::chrono::seconds>(started);
    r.started = started;
    return r;
}

StoredTarget make_target(const std::string& instance, const std::string& machine) {
    StoredTarget t;
    t.instance = instance;
    t.machine = machine;
    t.state = TargetState::launched;
    return t;
}

const std::vector<std::string> k_kinds = {"memory", "sqlite"};

/// What the store must return for `full` output under `max` (0 = unlimited).
std::string expected_output(const std::string& full, std::uint64_t max) {
    if (max == 0 || full.size() <= max) return full;
    const std::size_t head = max / 2;
    const std::size_t tail = max - max / 2;
    return full.substr(0, head) + output_cut_marker(full.size() - head - tail) + full.substr(full.size() - tail);
}

}  // namespace

TEST_CASE("run_store: trigger, status and decision names round-trip") {
    for (Trigger t : {Trigger::schedule, Trigger::run_now, Trigger::catch_up, Trigger::retry}) {
        CHECK(trigger_from_string(to_string(t)) == t);
    }
    CHECK(trigger_from_string("run-now") == Trigger::run_now);
    CHECK_FALSE(trigger_from_string("run_now").has_value());
    for (RunStatus s : {RunStatus::running, RunStatus::success, RunStatus::failure, RunStatus::killed}) {
        CHECK(run_status_from_string(to_string(s)) == s);
    }
    for (DecisionKind k : {DecisionKind::skipped_overlap, DecisionKind::skipped_maintenance, DecisionKind::misfire}) {
        CHECK(decision_kind_from_string(to_string(k)) == k);
    }
    CHECK(target_state_from_string("started") == TargetState::started);
    CHECK_FALSE(target_state_from_string("bogus").has_value());
    CHECK(output_cut_marker(123456) == "\n[... 123456 bytes cut by saltpeter (output_max_bytes) ...]\n");
}

TEST_CASE("run_store: runs, targets, decisions and fire times round-trip") {
    for (const std::string& kind : k_kinds) {
        CAPTURE(kind);
        Harness h(kind);
        StoredRun r = make_run("backup_1", "backup", at(0));
        r.trigger = Trigger::catch_up;
        REQUIRE(h.put_run(r).ok());

        StoredTarget t = make_target("backup_1", "web1");
        t.state = TargetState::finished;
        t.started = at(1);
        t.ended = at(9);
        t.retcode = -15;
        t.wrapper_version = "0.1.0";
        t.last_heartbeat = at(8);
        t.notes = {"heartbeat lost 40 s, recovered", "caf\xc3\xa9 \"quoted\""};
        t.spd_verdict = true;
        REQUIRE(h.put_target(t).ok());
        REQUIRE(h.put_target(make_target("backup_1", "db1")).ok());
        REQUIRE(h.finish(r.instance, at(10), RunStatus::failure).ok());

        REQUIRE(h.sync([&](RunStore::Completion c) {
                     h.store->record_decision({"backup", DecisionKind::skipped_overlap, at(60), SysSeconds{}, "backup_1 still running"},
                                              std::move(c));
                 }).ok());
        REQUIRE(h.sync([&](RunStore::Completion c) {
                     h.store->record_decision({"backup", DecisionKind::misfire, at(120), std::nullopt, "missed by 300 s"},
                                              std::move(c));
                 }).ok());
        REQUIRE(h.sync([&](RunStore::Completion c) {
                     h.store->set_last_fire("backup", SysSeconds{std::chrono::seconds{100}}, std::move(c));
                 }).ok());
        REQUIRE(h.sync([&](RunStore::Completion c) {
                     h.store->set_last_fire("backup", SysSeconds{std::chrono::seconds{200}}, std::move(c));
                 }).ok());

        auto got = h.store->run("backup_1");
        REQUIRE(got.ok());
        REQUIRE(got->has_value());
        const StoredRun& g = **got;
        CHECK(g.job == "backup");
        CHECK(g.group == "ops");
        CHECK(g.trigger == Trigger::catch_up);
        CHECK(g.scheduled == r.scheduled);
        CHECK(g.started == at(0));
        CHECK(g.ended == at(10));
        CHECK(g.status == RunStatus::failure);
        REQUIRE(g.targets.size() == 2);
        CHECK(g.targets[0].machine == "db1");  // by machine name
        CHECK(g.targets[0].state == TargetState::launched);
        CHECK_FALSE(g.targets[0].started.has_value());
        CHECK_FALSE(g.targets[0].retcode.has_value());
        const StoredTarget& w = g.targets[1];
        CHECK(w.machine == "web1");
        CHECK(w.state == TargetState::finished);
        CHECK(w.started == at(1));
        CHECK(w.ended == at(9));
        CHECK(w.retcode == -15);
        CHECK(w.wrapper_version == "0.1.0");
        CHECK(w.last_heartbeat == at(8));
        CHECK(w.notes == t.notes);
        CHECK(w.spd_verdict);
        CHECK_FALSE(w.last_seq.has_value());
        CHECK(w.output_bytes == 0);

        auto decisions = h.store->decisions("backup", 10);
        REQUIRE(decisions.ok());
        REQUIRE(decisions->size() == 2);
        CHECK((*decisions)[0].kind == DecisionKind::misfire);  // newest first
        CHECK_FALSE((*decisions)[0].scheduled.has_value());
        CHECK((*decisions)[0].detail == "missed by 300 s");
        CHECK((*decisions)[1].kind == DecisionKind::skipped_overlap);
        CHECK((*decisions)[1].at == at(60));
        CHECK((*decisions)[1].scheduled == SysSeconds{});
        CHECK(h.store->decisions("backup", 1)->size() == 1);
        CHECK(h.store->decisions("other", 10)->empty());

        auto fires = h.store->last_fire_times();
        REQUIRE(fires.ok());
        CHECK(fires->size() == 1);
        CHECK(fires->at("backup") == SysSeconds{std::chrono::seconds{200}});

        auto missing = h.store->run("nope");
        REQUIRE(missing.ok());
        CHECK_FALSE(missing->has_value());
    }
}

TEST_CASE("run_store: history lists a job's runs newest first and unfinished runs oldest first") {
    for (const std::string& kind : k_kinds) {
        CAPTURE(kind);
        Harness h(kind);
        REQUIRE(h.put_run(make_run("a_2", "a", at(20))).ok());
        REQUIRE(h.put_run(make_run("a_1", "a", at(10))).ok());
        REQUIRE(h.put_run(make_run("b_1", "b", at(15))).ok());
        REQUIRE(h.put_run(make_run("a_3", "a", at(30))).ok());
        REQUIRE(h.finish("a_2", at(25), RunStatus::success).ok());

        auto runs = h.store->runs("a", 10);
        REQUIRE(runs.ok());
        REQUIRE(runs->size() == 3);
        CHECK((*runs)[0].instance == "a_3");
        CHECK((*runs)[1].instance == "a_2");
        CHECK((*runs)[2].instance == "a_1");
        CHECK(h.store->runs("a", 2)->size() == 2);

        auto open = h.store->unfinished_runs();
        REQUIRE(open.ok());
        REQUIRE(open->size() == 3);
        CHECK((*open)[0].instance == "a_1");
        CHECK((*open)[1].instance == "b_1");
        CHECK((*open)[2].instance == "a_3");
        CHECK((*open)[0].status == RunStatus::running);
    }
}

TEST_CASE("run_store: completions run on the io thread, in submission order") {
    for (const std::string& kind : k_kinds) {
        CAPTURE(kind);
        Harness h(kind);
        const auto io_thread = std::this_thread::get_id();
        std::vector<int> order;
        bool wrong_thread = false;
        auto note = [&](int i) {
            return [&, i](const Status& s) {
                CHECK(s.ok());
                if (std::this_thread::get_id() != io_thread) wrong_thread = true;
                order.push_back(i);
            };
        };
        // Submitted from another thread: the completions still come to the io thread.
        bool refused = false;
        std::thread producer([&] {
            h.store->put_run(make_run("r_1", "r", at(0)), note(0));
            h.store->put_target(make_target("r_1", "m"), note(1));
            for (int i = 0; i < 50; ++i) {
                if (!h.store->try_append_output("r_1", "m", i, "line " + std::to_string(i) + "\n", note(2 + i))) {
                    refused = true;
                }
            }
            h.store->finish_run("r_1", at(5), RunStatus::success, note(52));
        });
        producer.join();
        REQUIRE_FALSE(refused);
        run_until(h.io, [&] { return order.size() == 53; });
        CHECK_FALSE(wrong_thread);
        for (int i = 0; i < 53; ++i) CHECK(order[static_cast<std::size_t>(i)] == i);
        std::string expected;
        for (int i = 0; i < 50; ++i) expected += "line " + std::to_string(i) + "\n";
        CHECK(h.store->output("r_1", "m").value() == expected);
    }
}

TEST_CASE("run_store: writes about unknown runs and targets fail with a message naming them") {
    for (const std::string& kind : k_kinds) {
        CAPTURE(kind);
        Harness h(kind);
        Status s = h.put_target(make_target("ghost_1", "web1"));
        REQUIRE_FALSE(s.ok());
        CHECK(s.error().message.find("ghost_1") != std::string::npos);
        CHECK(s.error().message.find("web1") != std::string::npos);

        s = h.finish("ghost_1", at(1), RunStatus::success);
        REQUIRE_FALSE(s.ok());
        CHECK(s.error().message.find("ghost_1") != std::string::npos);

        REQUIRE(h.put_run(make_run("real_1", "real", at(0))).ok());
        s = h.append("real_1", "web9", 0, "data");
        REQUIRE_FALSE(s.ok());
        CHECK(s.error().message.find("real_1") != std::string::npos);
        CHECK(s.error().message.find("web9") != std::string::npos);

        auto out = h.store->output("real_1", "web9");
        REQUIRE_FALSE(out.ok());
        CHECK(out.error().message.find("web9") != std::string::npos);

        // A failed op in a batch does not spoil its neighbours.
        std::vector<bool> oks;
        h.store->put_target(make_target("real_1", "web1"), [&](const Status& st) { oks.push_back(st.ok()); });
        h.store->put_target(make_target("ghost_2", "web1"), [&](const Status& st) { oks.push_back(st.ok()); });
        h.store->put_target(make_target("real_1", "web2"), [&](const Status& st) { oks.push_back(st.ok()); });
        run_until(h.io, [&] { return oks.size() == 3; });
        CHECK(oks == std::vector<bool>{true, false, true});
        CHECK(h.store->run("real_1").value()->targets.size() == 2);
    }
}

TEST_CASE("run_store: output keeps its order, skips resends by seq and tracks the last seq") {
    for (const std::string& kind : k_kinds) {
        CAPTURE(kind);
        Harness h(kind);
        REQUIRE(h.put_run(make_run("o_1", "o", at(0))).ok());
        REQUIRE(h.put_target(make_target("o_1", "web1")).ok());
        REQUIRE(h.append("o_1", "web1", 0, "zero\n").ok());
        REQUIRE(h.append("o_1", "web1", 1, "one\n").ok());
        REQUIRE(h.append("o_1", "web1", 1, "one again\n").ok());   // resend: ok, not stored
        REQUIRE(h.append("o_1", "web1", 0, "zero again\n").ok());  // older resend
        REQUIRE(h.append("o_1", "web1", 2, std::string("bin\0ary\n", 8)).ok());
        REQUIRE(h.append("o_1", "web1", std::nullopt, "no seq\n").ok());  // legacy: always stored
        REQUIRE(h.append("o_1", "web1", 3, "").ok());

        CHECK(h.store->output("o_1", "web1").value() == std::string("zero\none\nbin\0ary\nno seq\n", 24));
        const auto t = h.store->run("o_1").value()->targets.at(0);
        CHECK(t.last_seq == 3);
        CHECK(t.output_bytes == 24);
        CHECK(t.cut_bytes == 0);

        // put_target updates metadata but keeps what the output appends maintain.
        StoredTarget meta = make_target("o_1", "web1");
        meta.state = TargetState::finished;
        meta.retcode = 0;
        REQUIRE(h.put_target(meta).ok());
        const auto t2 = h.store->run("o_1").value()->targets.at(0);
        CHECK(t2.retcode == 0);
        CHECK(t2.last_seq == 3);
        CHECK(t2.output_bytes == 24);
        CHECK(h.store->output("o_1", "web1").value().size() == 24);
    }
}

TEST_CASE("run_store: output over output_max_bytes keeps head and tail around a visible marker") {
    for (const std::string& kind : k_kinds) {
        CAPTURE(kind);
        RunStoreOptions options;
        options.output_max_bytes = 1000;
        Harness h(kind, options);
        REQUIRE(h.put_run(make_run("c_1", "c", at(0))).ok());
        for (const char* machine : {"small", "steady", "mixed", "huge"}) {
            REQUIRE(h.put_target(make_target("c_1", machine)).ok());
        }

        // Exactly the limit: nothing cut.
        const std::string exact(1000, 'x');
        REQUIRE(h.append("c_1", "small", 0, exact).ok());
        CHECK(h.store->output("c_1", "small").value() == exact);

        // Many small chunks, then a check after every step for a prefix of them.
        std::string full;
        for (int i = 0; i < 300; ++i) {
            std::string chunk = "<" + std::to_string(i) + ">";
            full += chunk;
            REQUIRE(h.append("c_1", "steady", i, chunk).ok());
            if (i % 37 == 0 || i == 299) {
                CAPTURE(i);
                CHECK(h.store->output("c_1", "steady").value() == expected_output(full, 1000));
            }
        }
        const auto steady = h.store->run("c_1").value()->targets;
        const auto& st = *std::find_if(steady.begin(), steady.end(), [](const StoredTarget& t) { return t.machine == "steady"; });
        CHECK(st.output_bytes == full.size());
        CHECK(st.cut_bytes == full.size() - 1000);

        // Chunks of irregular sizes, some larger than the whole limit.
        std::string mixed;
        unsigned seed = 7;
        for (int i = 0; i < 60; ++i) {
            seed = seed * 1103515245u + 12345u;
            const std::size_t size = (seed >> 16) % 1700;
            std::string chunk;
            for (std::size_t k = 0; k < size; ++k) chunk += static_cast<char>('a' + (i + k) % 26);
            mixed += chunk;
            REQUIRE(h.append("c_1", "mixed", i, chunk).ok());
        }
        CHECK(h.store->output("c_1", "mixed").value() == expected_output(mixed, 1000));

        // One chunk far over the limit.
        std::string huge;
        for (int i = 0; i < 5000; ++i) huge += std::to_string(i) + ",";
        REQUIRE(h.append("c_1", "huge", 0, huge).ok());
        const std::string got = h.store->output("c_1", "huge").value();
        CHECK(got == expected_output(huge, 1000));
        CHECK(got.find("bytes cut by saltpeter (output_max_bytes)") != std::string::npos);
        CHECK(got.substr(0, 4) == "0,1,");
    }
}

TEST_CASE("run_store: prune applies history_max_runs and history_max_days, never to unfinished runs") {
    for (const std::string& kind : k_kinds) {
        CAPTURE(kind);
        RunStoreOptions options;
        options.history_max_runs = 3;
        options.history_max_days = 10;
        Harness h(kind, options);
        const auto day = std::chrono::hours(24);
        // Job a: 6 finished runs within the last days, one old unfinished run.
        for (int i = 0; i < 6; ++i) {
            const std::string inst = "a_" + std::to_string(i);
            REQUIRE(h.put_run(make_run(inst, "a", k_t0 + day * i)).ok());
            REQUIRE(h.put_target(make_target(inst, "m")).ok());
            REQUIRE(h.append(inst, "m", 0, "out " + inst).ok());
            REQUIRE(h.finish(inst, k_t0 + day * i + std::chrono::minutes(1), RunStatus::success).ok());
        }
        REQUIRE(h.put_run(make_run("a_stuck", "a", k_t0 - day * 100)).ok());
        // Job b: one run 20 days old, one recent.
        REQUIRE(h.put_run(make_run("b_old", "b", k_t0 - day * 15)).ok());
        REQUIRE(h.finish("b_old", k_t0 - day * 15, RunStatus::failure).ok());
        REQUIRE(h.put_run(make_run("b_new", "b", k_t0 + day * 5)).ok());
        REQUIRE(h.finish("b_new", k_t0 + day * 5, RunStatus::success).ok());
        for (int i = 0; i < 5; ++i) {
            REQUIRE(h.sync([&](RunStore::Completion c) {
                         h.store->record_decision({"a", DecisionKind::skipped_overlap, k_t0 + day * i, std::nullopt,
                                                   "d" + std::to_string(i)},
                                                  std::move(c));
                     }).ok());
        }
        REQUIRE(h.sync([&](RunStore::Completion c) {
                     h.store->record_decision({"b", DecisionKind::misfire, k_t0 - day * 30, std::nullopt, "ancient"},
                                              std::move(c));
                 }).ok());

        REQUIRE(h.sync([&](RunStore::Completion c) { h.store->prune(k_t0 + day * 6, std::move(c)); }).ok());

        auto a = h.store->runs("a", 100).value();
        std::vector<std::string> names;
        for (const auto& r : a) names.push_back(r.instance);
        CHECK(names == std::vector<std::string>{"a_5", "a_4", "a_3", "a_stuck"});
        auto b = h.store->runs("b", 100).value();
        REQUIRE(b.size() == 1);
        CHECK(b[0].instance == "b_new");
        CHECK_FALSE(h.store->output("c", "m").ok());
        CHECK_FALSE(h.store->output("a_0", "m").ok());  // its output went with it
        CHECK(h.store->output("a_5", "m").value() == "out a_5");

        auto da = h.store->decisions("a", 100).value();
        REQUIRE(da.size() == 3);
        CHECK(da[0].detail == "d4");
        CHECK(da[2].detail == "d2");
        CHECK(h.store->decisions("b", 100)->empty());
    }
}

TEST_CASE("run_store: a full queue refuses output until completions drain it") {
    for (const std::string& kind : k_kinds) {
        CAPTURE(kind);
        RunStoreOptions options;
        options.queue_max_bytes = 256 * 1024;
        Harness h(kind, options);
        REQUIRE(h.put_run(make_run("q_1", "q", at(0))).ok());
        REQUIRE(h.put_target(make_target("q_1", "m")).ok());

        const std::string chunk(64 * 1024, 'q');
        int accepted = 0;
        int completed = 0;
        std::int64_t seq = 0;
        // The io thread does not run: nothing completes, so the gate must close.
        while (h.store->try_append_output("q_1", "m", seq, chunk, [&](const Status& s) {
            CHECK(s.ok());
            ++completed;
        })) {
            ++accepted;
            ++seq;
            REQUIRE(accepted < 100);
        }
        CHECK(accepted == 4);
        CHECK(h.store->queued_bytes() == 4 * chunk.size());
        CHECK_FALSE(h.store->try_append_output("q_1", "m", seq, chunk, {}));

        bool writable = false;
        h.store->when_writable([&] { writable = true; });
        CHECK_FALSE(writable);
        // Writable once half drained (SQLite may commit the four chunks in two batches).
        run_until(h.io, [&] { return writable; });
        CHECK(h.store->queued_bytes() <= options.queue_max_bytes / 2);
        run_until(h.io, [&] { return completed == 4; });
        CHECK(h.store->queued_bytes() == 0);
        CHECK(h.append("q_1", "m", seq, chunk).ok());
        CHECK(h.store->output("q_1", "m").value() == std::string(5 * chunk.size(), 'q'));

        // Writable now: the callback comes at once (on the io thread).
        bool again = false;
        h.store->when_writable([&] { again = true; });
        run_until(h.io, [&] { return again; });
    }
}

TEST_CASE("run_store: a throwing completion does not stop the others") {
    for (const std::string& kind : k_kinds) {
        CAPTURE(kind);
        Harness h(kind);
        bool second = false;
        h.store->put_run(make_run("x_1", "x", at(0)), [](const Status&) { throw std::runtime_error("boom"); });
        h.store->flush([&](const Status& s) { second = s.ok(); });
        run_until(h.io, [&] { return second; });
        CHECK(h.store->run("x_1").value().has_value());
    }
}

// ---- SQLite only ----

TEST_CASE("run_store: sqlite reopen finds unfinished runs, their last seqs and the last fire times") {
    Harness h("sqlite");
    REQUIRE(h.put_run(make_run("s_1", "s", at(0))).ok());
    REQUIRE(h.put_run(make_run("s_2", "s", at(5))).ok());
    StoredTarget t = make_target("s_1", "web1");
    t.state = TargetState::started;
    t.started = at(1);
    t.wrapper_version = "0.1.0";
    REQUIRE(h.put_target(t).ok());
    REQUIRE(h.put_target(make_target("s_1", "web2")).ok());
    REQUIRE(h.put_target(make_target("s_2", "web1")).ok());
    for (int i = 0; i < 7; ++i) REQUIRE(h.append("s_1", "web1", i, "chunk " + std::to_string(i) + "\n").ok());
    REQUIRE(h.finish("s_2", at(9), RunStatus::success).ok());
    REQUIRE(h.sync([&](RunStore::Completion c) {
                 h.store->set_last_fire("s", SysSeconds{std::chrono::seconds{1795840800}}, std::move(c));
             }).ok());
    // Queued but not waited for: the destructor still commits it.
    h.store->try_append_output("s_1", "web2", 0, "late\n", {});

    h.reopen();
    auto open = h.store->unfinished_runs();
    REQUIRE(open.ok());
    REQUIRE(open->size() == 1);
    const StoredRun& r = open->front();
    CHECK(r.instance == "s_1");
    REQUIRE(r.targets.size() == 2);
    CHECK(r.targets[0].machine == "web1");
    CHECK(r.targets[0].state == TargetState::started);
    CHECK(r.targets[0].started == at(1));
    CHECK(r.targets[0].wrapper_version == "0.1.0");
    CHECK(r.targets[0].last_seq == 6);
    CHECK(r.targets[1].last_seq == 0);
    CHECK(h.store->output("s_1", "web2").value() == "late\n");
    std::string expected;
    for (int i = 0; i < 7; ++i) expected += "chunk " + std::to_string(i) + "\n";
    CHECK(h.store->output("s_1", "web1").value() == expected);
    CHECK(h.store->last_fire_times().value().at("s") == SysSeconds{std::chrono::seconds{1795840800}});
    // A resend after the restart is recognised from the stored seq.
    REQUIRE(h.append("s_1", "web1", 6, "chunk 6\n").ok());
    CHECK(h.store->output("s_1", "web1").value() == expected);
}

TEST_CASE("run_store: sqlite file is created 0600, WAL files too") {
    TempDir dir;
    boost::asio::io_context io;
    const mode_t old = ::umask(0);  // even with a permissive umask
    auto store = make_sqlite_run_store(io, dir.file("state.db"));
    ::umask(old);
    REQUIRE(store.ok());
    struct stat st {};
    REQUIRE(::stat(dir.file("state.db").c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    std::optional<Status> done;
    (*store)->flush([&](const Status& s) { done = s; });
    run_until(io, [&] { return done.has_value(); });
    for (const char* suffix : {"-wal", "-shm"}) {
        CAPTURE(suffix);
        REQUIRE(::stat(dir.file(std::string("state.db") + suffix).c_str(), &st) == 0);
        CHECK((st.st_mode & 0777) == 0600);
    }
}

TEST_CASE("run_store: sqlite garbage file is refused with the path and SQLite's message") {
    TempDir dir;
    const std::string path = dir.file("state.db");
    {
        std::ofstream f(path, std::ios::binary);
        for (int i = 0; i < 1000; ++i) f << "this is not a database, just text " << i << "\n";
    }
    boost::asio::io_context io;
    auto store = make_sqlite_run_store(io, path);
    REQUIRE_FALSE(store.ok());
    CHECK(store.error().message.find(path) != std::string::npos);
    CHECK(store.error().message.find("not a database") != std::string::npos);
    CHECK(store.error().field == "state_db");
}

TEST_CASE("run_store: sqlite damaged pages are found by quick_check at open") {
    TempDir dir;
    const std::string path = dir.file("state.db");
    {
        Harness h("sqlite");
        REQUIRE(h.put_run(make_run("d_1", "d", at(0))).ok());
        REQUIRE(h.put_target(make_target("d_1", "m")).ok());
        for (int i = 0; i < 40; ++i) REQUIRE(h.append("d_1", "m", i, std::string(4000, static_cast<char>('a' + i % 26))).ok());
        h.store.reset();
        fs::copy_file(h.dir.file("state.db"), path);
    }
    REQUIRE(fs::file_size(path) > 20 * 4096);
    {
        // Scribble over a few b-tree pages past the header page.
        const int fd = ::open(path.c_str(), O_WRONLY);
        REQUIRE(fd >= 0);
        const std::string junk(4096 * 3, '\xA5');
        REQUIRE(::pwrite(fd, junk.data(), junk.size(), 4096) == static_cast<ssize_t>(junk.size()));
        ::close(fd);
    }
    boost::asio::io_context io;
    auto store = make_sqlite_run_store(io, path);
    REQUIRE_FALSE(store.ok());
    const std::string& msg = store.error().message;
    CAPTURE(msg);
    CHECK(msg.find(path) != std::string::npos);
    CHECK((msg.find("corrupt") != std::string::npos || msg.find("malformed") != std::string::npos));
}

TEST_CASE("run_store: sqlite unusable locations are refused clearly") {
    TempDir dir;
    boost::asio::io_context io;

    SUBCASE("missing directory") {
        const std::string path = dir.file("missing/state.db");
        auto store = make_sqlite_run_store(io, path);
        REQUIRE_FALSE(store.ok());
        CHECK(store.error().message.find(dir.file("missing")) != std::string::npos);
        CHECK(store.error().message.find("No such file or directory") != std::string::npos);
    }
    SUBCASE("parent is a file") {
        { std::ofstream(dir.file("plain")) << "x"; }
        auto store = make_sqlite_run_store(io, dir.file("plain/state.db"));
        REQUIRE_FALSE(store.ok());
        CHECK(store.error().message.find("is not a directory") != std::string::npos);
    }
    SUBCASE("the path is a directory") {
        fs::create_directory(dir.file("state.db"));
        auto store = make_sqlite_run_store(io, dir.file("state.db"));
        REQUIRE_FALSE(store.ok());
        CHECK(store.error().message.find(dir.file("state.db")) != std::string::npos);
    }
    SUBCASE("the path is a symlink") {
        { std::ofstream(dir.file("elsewhere.db")) << ""; }
        fs::create_symlink(dir.file("elsewhere.db"), dir.file("state.db"));
        auto store = make_sqlite_run_store(io, dir.file("state.db"));
        REQUIRE_FALSE(store.ok());
        CHECK(store.error().message.find("symbolic link") != std::string::npos);
    }
    SUBCASE("unwritable directory") {
        fs::create_directory(dir.file("ro"));
        fs::permissions(dir.file("ro"), fs::perms::owner_read | fs::perms::owner_exec);
        auto store = make_sqlite_run_store(io, dir.file("ro/state.db"));
        if (::geteuid() == 0) {
            // root writes anyway; the store must then simply work.
            CHECK(store.ok());
        } else {
            REQUIRE_FALSE(store.ok());
            CHECK(store.error().message.find(dir.file("ro/state.db")) != std::string::npos);
            CHECK(store.error().message.find("Permission denied") != std::string::npos);
        }
    }
    SUBCASE("another program's SQLite database") {
        sqlite3* db = nullptr;
        REQUIRE(sqlite3_open(dir.file("other.db").c_str(), &db) == SQLITE_OK);
        REQUIRE(sqlite3_exec(db, "CREATE TABLE t(x); INSERT INTO t VALUES(1)", nullptr, nullptr, nullptr) == SQLITE_OK);
        sqlite3_close(db);
        auto store = make_sqlite_run_store(io, dir.file("other.db"));
        REQUIRE_FALSE(store.ok());
        CHECK(store.error().message.find("not saltpeter's") != std::string::npos);
    }
    SUBCASE("a newer schema") {
        { auto store = make_sqlite_run_store(io, dir.file("state.db")); REQUIRE(store.ok()); }
        sqlite3* db = nullptr;
        REQUIRE(sqlite3_open(dir.file("state.db").c_str(), &db) == SQLITE_OK);
        REQUIRE(sqlite3_exec(db, "UPDATE schema_version SET version = 99", nullptr, nullptr, nullptr) == SQLITE_OK);
        sqlite3_close(db);
        auto store = make_sqlite_run_store(io, dir.file("state.db"));
        REQUIRE_FALSE(store.ok());
        CHECK(store.error().message.find("schema version 99") != std::string::npos);
    }
}

TEST_CASE("run_store: sqlite retention bounds what is on disk while a large stream is appended") {
    RunStoreOptions options;
    options.output_max_bytes = 64 * 1024;
    Harness h("sqlite", options);
    REQUIRE(h.put_run(make_run("big_1", "big", at(0))).ok());
    REQUIRE(h.put_target(make_target("big_1", "m")).ok());
    std::string last;
    const std::string chunk(16 * 1024, 'z');
    std::vector<bool> oks;
    for (int i = 0; i < 640; ++i) {  // 10 MiB
        std::string c = chunk;
        c.replace(0, std::to_string(i).size(), std::to_string(i));
        while (!h.store->try_append_output("big_1", "m", i, c, [&](const Status& s) { oks.push_back(s.ok()); })) {
            bool ready = false;
            h.store->when_writable([&] { ready = true; });
            run_until(h.io, [&] { return ready; });
        }
    }
    run_until(h.io, [&] { return oks.size() == 640; });
    CHECK(std::count(oks.begin(), oks.end(), true) == 640);
    const auto t = h.store->run("big_1").value()->targets.at(0);
    CHECK(t.output_bytes == 640u * chunk.size());
    CHECK(t.cut_bytes == 640u * chunk.size() - 64 * 1024);
    // The database holds about the kept 64 KiB, not the 10 MiB streamed through it.
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2(h.dir.file("state.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, "SELECT sum(length(data)) FROM output", -1, &st, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    CHECK(sqlite3_column_int64(st, 0) == 64 * 1024);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

TEST_CASE("run_store: runs_between finds the runs whose span overlaps the range, newest first, with targets") {
    for (const std::string& kind : k_kinds) {
        CAPTURE(kind);
        Harness h(kind);
        // before [100, 200]: ended at 90
        REQUIRE(h.put_run(make_run("x_before", "x", at(10))).ok());
        REQUIRE(h.finish("x_before", at(90), RunStatus::success).ok());
        // straddles the start: 50 .. 150
        REQUIRE(h.put_run(make_run("x_straddle", "x", at(50))).ok());
        REQUIRE(h.finish("x_straddle", at(150), RunStatus::failure).ok());
        // inside, other job, with a target
        REQUIRE(h.put_run(make_run("y_inside", "y", at(120))).ok());
        StoredTarget t = make_target("y_inside", "m1");
        t.state = TargetState::finished;
        t.started = at(121);
        t.ended = at(130);
        t.retcode = 3;
        REQUIRE(h.put_target(t).ok());
        REQUIRE(h.append("y_inside", "m1", 1, "some output").ok());
        REQUIRE(h.finish("y_inside", at(130), RunStatus::failure).ok());
        // unfinished, started before the range: still running through it
        REQUIRE(h.put_run(make_run("x_open", "x", at(30))).ok());
        // starts after the range
        REQUIRE(h.put_run(make_run("x_after", "x", at(201))).ok());
        // the range's bounds are inclusive
        REQUIRE(h.put_run(make_run("x_at_end", "x", at(200))).ok());
        REQUIRE(h.finish("x_at_end", at(210), RunStatus::success).ok());
        REQUIRE(h.put_run(make_run("x_ends_at_start", "x", at(60))).ok());
        REQUIRE(h.finish("x_ends_at_start", at(100), RunStatus::success).ok());

        auto runs = h.store->runs_between(at(100), at(200), 100);
        REQUIRE(runs.ok());
        std::vector<std::string> names;
        for (const StoredRun& r : *runs) names.push_back(r.instance);
        CHECK(names == std::vector<std::string>{"x_at_end", "y_inside", "x_ends_at_start", "x_straddle", "x_open"});
        const StoredRun& inside = (*runs)[1];
        REQUIRE(inside.targets.size() == 1);
        CHECK(inside.targets[0].machine == "m1");
        CHECK(inside.targets[0].retcode == 3);
        CHECK(inside.targets[0].started == at(121));
        CHECK(inside.targets[0].ended == at(130));
        CHECK(inside.targets[0].output_bytes == 11);
        CHECK(inside.status == RunStatus::failure);
        CHECK(inside.job == "y");

        // The limit keeps the newest.
        auto two = h.store->runs_between(at(100), at(200), 2);
        REQUIRE(two.ok());
        REQUIRE(two->size() == 2);
        CHECK((*two)[0].instance == "x_at_end");
        CHECK((*two)[1].instance == "y_inside");

        // Later on only the unfinished runs still overlap; an inverted range matches nothing.
        auto late = h.store->runs_between(at(300), at(400), 100);
        REQUIRE(late.ok());
        REQUIRE(late->size() == 2);
        CHECK((*late)[0].instance == "x_after");
        CHECK((*late)[1].instance == "x_open");
        auto inverted = h.store->runs_between(at(200), at(100), 100);
        REQUIRE(inverted.ok());
        CHECK(inverted->empty());
    }
}

TEST_CASE("run_store: sqlite schema 1 databases gain the runs_between indexes when reopened") {
    TempDir dir;
    boost::asio::io_context io;
    const std::string path = dir.file("state.db");
    {
        auto store = make_sqlite_run_store(io, path);
        REQUIRE(store.ok());
        StoredRun r = make_run("old_1", "old", at(5));
        std::optional<Status> done;
        (*store)->put_run(r, [&](const Status& s) { done = s; });
        run_until(io, [&] { return done.has_value(); });
        REQUIRE(done->ok());
    }
    auto index_count = [&] {
        sqlite3* db = nullptr;
        REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
        sqlite3_stmt* st = nullptr;
        REQUIRE(sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name IN "
                                       "('runs_started', 'runs_ended')", -1, &st, nullptr) == SQLITE_OK);
        REQUIRE(sqlite3_step(st) == SQLITE_ROW);
        const int n = sqlite3_column_int(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
        return n;
    };
    CHECK(index_count() == 2);
    {
        // Back to what the first release wrote: schema 1 without the indexes.
        sqlite3* db = nullptr;
        REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
        REQUIRE(sqlite3_exec(db, "DROP INDEX runs_started; DROP INDEX runs_ended; UPDATE schema_version SET version = 1",
                             nullptr, nullptr, nullptr) == SQLITE_OK);
        sqlite3_close(db);
    }
    CHECK(index_count() == 0);
    auto store = make_sqlite_run_store(io, path);
    REQUIRE_MESSAGE(store.ok(), (store.ok() ? "" : store.error().message));
    CHECK(index_count() == 2);
    auto runs = (*store)->runs_between(at(0), at(10), 10);
    REQUIRE(runs.ok());
    REQUIRE(runs->size() == 1);
    CHECK((*runs)[0].instance == "old_1");
}

TEST_CASE("run_store: a stored run converts to the API's RunRecord; verdict texts follow the output") {
    StoredRun s = make_run("j_1", "j", at(0));
    s.ended = at(20);
    s.status = RunStatus::failure;
    StoredTarget a = make_target("j_1", "a");
    a.state = TargetState::finished;
    a.started = at(1);
    a.ended = at(20);
    a.retcode = 253;
    a.spd_verdict = true;
    a.wrapper_version = "1.2.3";
    a.notes = {"heartbeat lost", "[SALTPETER ERROR: Job lost connection - no heartbeat for 15 seconds]"};
    a.output_bytes = 42;
    StoredTarget b = make_target("j_1", "b");  // never started: no start time stored
    s.targets = {a, b};

    const RunRecord r = to_run_record(s);
    CHECK(r.instance == "j_1");
    CHECK(r.job == "j");
    CHECK(r.group == "ops");
    CHECK(r.started == at(0));
    CHECK(r.ended == at(20));
    CHECK(r.finished());
    CHECK(r.launching_done);
    CHECK_FALSE(r.kill_requested);
    REQUIRE(r.targets.size() == 2);
    const TargetResult& ta = r.targets.at("a");
    CHECK(ta.machine == "a");
    CHECK(ta.state == TargetState::finished);
    CHECK(ta.starttime == at(1));
    CHECK(ta.endtime == at(20));
    CHECK(ta.retcode == 253);
    CHECK(ta.spd_verdict);
    CHECK(ta.wrapper_version == "1.2.3");
    CHECK(ta.notes == a.notes);
    CHECK(ta.output_bytes == 42);
    CHECK(ta.output.empty());
    CHECK(r.targets.at("b").starttime == at(0));  // the run's start stands in
    CHECK_FALSE(r.targets.at("b").retcode.has_value());
    CHECK_FALSE(r.success());

    const std::string verdict = "[SALTPETER ERROR: Job lost connection - no heartbeat for 15 seconds]";
    CHECK(stored_output_display("partial", a) == "partial\n" + verdict + "\n");
    CHECK(stored_output_display("line\n", a) == "line\n" + verdict + "\n");
    CHECK(stored_output_display("", a) == verdict + "\n");
    StoredTarget padded = a;
    padded.notes.back() = "\n" + verdict + "\n";
    CHECK(stored_output_display("x", padded) == "x\n" + verdict + "\n");
    StoredTarget real = a;  // the wrapper's own result: the output stands alone
    real.spd_verdict = false;
    CHECK(stored_output_display("partial", real) == "partial");
    StoredTarget no_notes = a;
    no_notes.notes.clear();
    CHECK(stored_output_display("partial", no_notes) == "partial");

    s.status = RunStatus::killed;
    s.ended.reset();
    const RunRecord killed = to_run_record(s);
    CHECK(killed.kill_requested);
    CHECK_FALSE(killed.finished());
    CHECK_FALSE(killed.launching_done);
}
