// RunTracker's in-memory output bound (output_max_bytes): pure bookkeeping, no timers run.
#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>
#include <string>

#include "runs/run_tracker.hpp"

using namespace saltpeter;

namespace {

struct CountingObserver final : RunObserver {
    std::string seen;
    std::string logged;
    void on_output(const RunRecord&, const TargetResult&, std::string_view data) override { seen.append(data); }
    void on_log(const std::string&, const LogRecord& record) override {
        if (record.type == LogRecordType::machine_result) logged = record.out;
    }
};

RunSpec spec_of(const std::string& instance) {
    RunSpec spec;
    spec.instance = instance;
    spec.job = "big";
    spec.group = "jobs";
    spec.timeout = std::chrono::seconds(0);
    return spec;
}

}  // namespace

TEST_CASE("run tracker: output over output_max_bytes keeps the head, a notice, the cut count and the tail") {
    boost::asio::io_context io;
    CountingObserver observer;
    TrackerOptions options;
    options.output_max_bytes = 100;
    RunTracker tracker(io, options, observer);
    tracker.open(spec_of("big_1"));
    tracker.add_target("big_1", "m1", false);
    std::string printed;
    for (int i = 0; i < 1000; ++i) {
        const std::string line = "line " + std::to_string(i) + "\n";
        printed += line;
        tracker.append_output("big_1", "m1", line);
    }
    // Every byte still reaches the observers (log sinks, the store, the API push).
    CHECK(observer.seen == printed);
    const TargetResult& running = tracker.find("big_1")->targets.at("m1");
    CHECK(running.output_bytes == printed.size());
    CHECK(running.output.size() < 300);  // the head, the notice; the tail is held back
    CHECK(running.output.rfind(printed.substr(0, 100), 0) == 0);

    tracker.set_result("big_1", "m1", 0, "", false);
    const TargetResult& done = tracker.find("big_1")->targets.at("m1");
    const std::string& out = done.output;
    CHECK(out.rfind(printed.substr(0, 100), 0) == 0);
    CHECK(out.find("output_max_bytes (100) reached") != std::string::npos);
    const std::string tail = printed.substr(printed.size() - 50);
    CHECK(out.size() >= tail.size());
    CHECK(out.compare(out.size() - tail.size(), tail.size(), tail) == 0);
    const std::size_t cut = printed.size() - 100 - 50;
    CHECK(out.find("[... " + std::to_string(cut) + " bytes cut by saltpeter (output_max_bytes) ...]") != std::string::npos);
    REQUIRE_FALSE(done.notes.empty());
    CHECK(done.notes.back() == std::to_string(cut) + " bytes of output cut (output_max_bytes 100)");
    CHECK(observer.logged == out);  // the job log's machine_result holds the bounded output
}

TEST_CASE("run tracker: output within output_max_bytes, or with no limit, is kept whole") {
    for (std::uint64_t limit : {std::uint64_t{0}, std::uint64_t{1u << 20}}) {
        boost::asio::io_context io;
        CountingObserver observer;
        TrackerOptions options;
        options.output_max_bytes = limit;
        RunTracker tracker(io, options, observer);
        tracker.open(spec_of("small_1"));
        tracker.add_target("small_1", "m1", false);
        std::string printed;
        for (int i = 0; i < 5000; ++i) {
            const std::string line = "l" + std::to_string(i) + "\n";
            printed += line;
            tracker.append_output("small_1", "m1", line);
        }
        tracker.set_result("small_1", "m1", 3, "", false);
        const TargetResult& done = tracker.find("small_1")->targets.at("m1");
        CHECK(done.output == printed);
        CHECK(done.notes.empty());
        CHECK(done.retcode == 3);
    }
}

TEST_CASE("run tracker: the cut never splits a UTF-8 character") {
    boost::asio::io_context io;
    CountingObserver observer;
    TrackerOptions options;
    options.output_max_bytes = 11;  // the 11th byte is inside the 2nd 'é' of the second chunk
    RunTracker tracker(io, options, observer);
    tracker.open(spec_of("utf_1"));
    tracker.add_target("utf_1", "m1", false);
    tracker.append_output("utf_1", "m1", "abcdefgh");               // 8 bytes
    tracker.append_output("utf_1", "m1", "\xc3\xa9\xc3\xa9xyz");     // é é x y z
    const std::string& out = tracker.find("utf_1")->targets.at("m1").output;
    CHECK(out.rfind("abcdefgh\xc3\xa9\n[...", 0) == 0);
}

namespace {

protocol::Output output_frame(std::int64_t seq, std::string data) {
    protocol::Output o;
    o.seq = seq;
    o.data = std::move(data);
    return o;
}

}  // namespace

TEST_CASE("run tracker with a store: output and complete are acknowledged only once committed") {
    boost::asio::io_context io;
    CountingObserver observer;
    auto store = make_memory_run_store(io);
    RunTracker tracker(io, TrackerOptions{}, observer);
    tracker.set_store(store.get());
    tracker.open(spec_of("big_2"));
    tracker.add_target("big_2", "m1");
    const TargetKey key{"big_2", "m1"};
    REQUIRE(tracker.admit(key).verdict == Admission::Verdict::accept);
    CHECK(tracker.admit(key).last_seq == -1);
    protocol::Start start;
    start.version = "test";
    tracker.on_start(key, start);

    std::vector<std::int64_t> acked;
    tracker.on_output(key, output_frame(0, "one\n"), [&] { acked.push_back(0); });
    tracker.on_output(key, output_frame(1, "two\n"), [&] { acked.push_back(1); });
    CHECK(acked.empty());  // nothing is committed before the store's completions run
    io.poll();
    CHECK(acked == std::vector<std::int64_t>{0, 1});
    CHECK(store->output("big_2", "m1").value() == "one\ntwo\n");

    bool complete_acked = false;
    protocol::Complete complete;
    complete.retcode = 3;
    tracker.on_complete(key, complete, [&] { complete_acked = true; });
    CHECK_FALSE(complete_acked);
    tracker.launching_done("big_2");
    CHECK(tracker.find("big_2")->finished());
    io.poll();
    CHECK(complete_acked);
    auto stored = store->run("big_2").value();
    REQUIRE(stored);
    CHECK(stored->status == RunStatus::failure);
    REQUIRE(stored->ended);
    REQUIRE(stored->targets.size() == 1);
    CHECK(stored->targets[0].retcode == 3);
    CHECK(stored->targets[0].wrapper_version == "test");
    CHECK(stored->targets[0].last_seq == 1);
    CHECK_FALSE(stored->targets[0].spd_verdict);
}

TEST_CASE("run tracker: a run re-opened from the store continues from its last stored seq") {
    boost::asio::io_context io;
    CountingObserver observer;
    auto store = make_memory_run_store(io);
    {
        // What an spd that died mid-run left behind: two chunks stored, no result.
        RunTracker before(io, TrackerOptions{}, observer);
        before.set_store(store.get());
        before.open(spec_of("big_3"));
        before.add_target("big_3", "m1");
        before.add_target("big_3", "m2");
        before.launching_done("big_3");
        protocol::Start start;
        before.on_start({"big_3", "m1"}, start);
        before.on_output({"big_3", "m1"}, output_frame(0, "a\n"), [] {});
        before.on_output({"big_3", "m1"}, output_frame(1, "b\n"), [] {});
        before.set_result("big_3", "m2", 0, "", false);  // m2 had ended
        io.poll();
    }
    auto unfinished = store->unfinished_runs().value();
    REQUIRE(unfinished.size() == 1);
    RunTracker after(io, TrackerOptions{}, observer);
    after.set_store(store.get());
    RunSpec spec = spec_of("big_3");
    spec.heartbeat_timeout = std::chrono::seconds(15);
    after.restore(unfinished[0], spec);
    const RunRecord* run = after.find("big_3");
    REQUIRE(run != nullptr);
    CHECK_FALSE(run->finished());
    CHECK(run->targets.at("m1").output == "a\nb\n");
    CHECK(run->targets.at("m2").state == TargetState::finished);
    // The hub resumes the wrapper after the last stored seq: nothing doubled, nothing lost.
    const Admission a = after.admit({"big_3", "m1"});
    CHECK(a.verdict == Admission::Verdict::accept);
    CHECK(a.last_seq == 1);
    after.on_activity({"big_3", "m1"});
    after.on_output({"big_3", "m1"}, output_frame(2, "c\n"), [] {});
    protocol::Complete complete;
    complete.retcode = 0;
    bool acked = false;
    after.on_complete({"big_3", "m1"}, complete, [&] { acked = true; });
    io.poll();
    CHECK(acked);
    CHECK(after.find("big_3")->finished());
    CHECK(store->output("big_3", "m1").value() == "a\nb\nc\n");
    auto stored = store->run("big_3").value();
    REQUIRE(stored);
    CHECK(stored->status == RunStatus::success);
    CHECK(stored->targets[0].notes == std::vector<std::string>{"re-adopted after an spd restart"});
    CHECK(store->unfinished_runs().value().empty());
}
