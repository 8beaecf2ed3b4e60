// RunTracker's in-memory output bound (output_max_bytes): pure bookkeeping, no timers run.
#include <doctest/doctest.h>

#include <boost/asio/io_context.hpp>
#include <string>

#include "saltpeter/run_tracker.hpp"

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
