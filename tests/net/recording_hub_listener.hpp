#pragma once
// RecordingHubListener: a HubListener test double. It records every call, answers admit() from a
// table (accept by default) and either stores at once or keeps the `stored` callbacks so that a
// test decides when the hub may ack.

#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "runs/machine_hub.hpp"

namespace saltpeter::test {

class RecordingHubListener : public HubListener {
public:
    /// Verdicts by instance; instances not listed get `fallback`.
    std::map<std::string, Admission> admissions;
    Admission fallback{Admission::Verdict::accept, "demo", -1, false};
    /// true: call `stored` inside on_output/on_complete; false: queue it (store_next_*()).
    bool store_at_once = true;

    std::vector<TargetKey> admitted;    ///< every admit() call
    std::vector<std::string> events;    ///< "start", "output <seq> <data>", "complete <rc>", "error <text>"
    std::string output;                 ///< data of every on_output, in order
    int activity = 0;
    int starts = 0;
    int completes = 0;
    std::deque<std::function<void()>> pending_outputs;
    std::deque<std::function<void()>> pending_completes;

    Admission admit(const TargetKey& key) override {
        admitted.push_back(key);
        auto it = admissions.find(key.instance);
        return it == admissions.end() ? fallback : it->second;
    }
    void on_activity(const TargetKey&) override { ++activity; }
    void on_start(const TargetKey&, const protocol::Start&) override {
        ++starts;
        events.push_back("start");
    }
    void on_output(const TargetKey&, const protocol::Output& o, std::function<void()> stored) override {
        events.push_back("output " + (o.seq ? std::to_string(*o.seq) : std::string("-")) + " " + o.data);
        output += o.data;
        if (store_at_once) stored();
        else pending_outputs.push_back(std::move(stored));
    }
    void on_complete(const TargetKey&, const protocol::Complete& c, std::function<void()> stored) override {
        ++completes;
        events.push_back("complete " + std::to_string(c.retcode));
        if (store_at_once) stored();
        else pending_completes.push_back(std::move(stored));
    }
    void on_wrapper_error(const TargetKey&, const protocol::WrapperError& e) override {
        events.push_back("error " + e.error);
    }

    /// Commits the oldest queued output; false when none is queued.
    bool store_next_output() { return pop(pending_outputs); }
    bool store_next_complete() { return pop(pending_completes); }

private:
    static bool pop(std::deque<std::function<void()>>& q) {
        if (q.empty()) return false;
        auto f = std::move(q.front());
        q.pop_front();
        f();
        return true;
    }
};

}  // namespace saltpeter::test
