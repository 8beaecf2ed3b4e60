// RunHistory (run_history.hpp). make_store_history: the API's run history from the durable RunStore merged with
// RunTracker's runs in memory. The tracker holds the in-flight runs (with live output) and the
// newest finished ones; the store holds everything, including runs from before a restart. Per
// instance the tracker's record wins, so a run being written is never shown half-stored.

#include <algorithm>

#include <spdlog/spdlog.h>

#include "runs/run_history.hpp"

#include "saltpeter/run_store.hpp"
#include "runs/run_tracker.hpp"

namespace saltpeter {

namespace {

bool newer_first(const RunRecord* a, const RunRecord* b) {
    return a->started != b->started ? a->started > b->started : a->instance > b->instance;
}

bool overlaps(const RunRecord& run, SysMicros start, SysMicros end) {
    return run.started <= end && (!run.ended || *run.ended >= start);
}

class MemoryHistory final : public RunHistory {
public:
    explicit MemoryHistory(const RunTracker& tracker) : m_tracker(tracker) {}
    std::vector<RunRecord> runs_of(const std::string& job, std::size_t limit) const override {
        std::vector<const RunRecord*> found;
        for (const auto& [instance, run] : m_tracker.runs()) {
            if (run.job == job) found.push_back(&run);
        }
        std::sort(found.begin(), found.end(), [](const RunRecord* a, const RunRecord* b) {
            return a->started != b->started ? a->started > b->started : a->instance > b->instance;
        });
        std::vector<RunRecord> out;
        for (const RunRecord* r : found) {
            if (out.size() >= limit) break;
            out.push_back(*r);
        }
        return out;
    }
    std::optional<RunRecord> find(const std::string& instance) const override {
        const RunRecord* r = m_tracker.find(instance);
        if (r == nullptr) return std::nullopt;
        return *r;
    }
    std::map<std::string, RunRecord> runs_between(SysMicros start, SysMicros end, std::size_t limit) const override {
        std::vector<const RunRecord*> found;
        for (const auto& [instance, run] : m_tracker.runs()) {
            if (run.started <= end && (!run.ended || *run.ended >= start)) found.push_back(&run);
        }
        std::sort(found.begin(), found.end(), [](const RunRecord* a, const RunRecord* b) {
            return a->started != b->started ? a->started > b->started : a->instance > b->instance;
        });
        std::map<std::string, RunRecord> out;
        for (std::size_t i = 0; i < found.size() && i < limit; ++i) out.emplace(found[i]->instance, *found[i]);
        return out;
    }

private:
    const RunTracker& m_tracker;
};

class StoreHistory final : public RunHistory {
public:
    StoreHistory(RunStore& store, const RunTracker& tracker) : m_store(store), m_tracker(tracker) {}

    std::vector<RunRecord> runs_of(const std::string& job, std::size_t limit) const override {
        std::vector<RunRecord> stored;
        auto from_store = m_store.runs(job, limit);
        if (from_store) {
            for (const StoredRun& s : *from_store) {
                if (m_tracker.find(s.instance) == nullptr) stored.push_back(to_run_record(s));
            }
        } else {
            spdlog::warn("API: history of job {}: {}; showing the runs in memory only", job, from_store.error().message);
        }
        std::vector<const RunRecord*> all;
        for (const auto& [instance, run] : m_tracker.runs()) {
            if (run.job == job) all.push_back(&run);
        }
        for (const RunRecord& r : stored) all.push_back(&r);
        std::sort(all.begin(), all.end(), newer_first);
        std::vector<RunRecord> out;
        for (std::size_t i = 0; i < all.size() && i < limit; ++i) out.push_back(*all[i]);
        return out;
    }

    std::optional<RunRecord> find(const std::string& instance) const override {
        if (const RunRecord* live = m_tracker.find(instance)) return *live;
        auto stored = m_store.run(instance);
        if (!stored) {
            spdlog::warn("API: run {}: {}", instance, stored.error().message);
            return std::nullopt;
        }
        if (!stored->has_value()) return std::nullopt;
        const StoredRun& s = **stored;
        RunRecord r = to_run_record(s);
        for (const StoredTarget& t : s.targets) {
            auto output = m_store.output(s.instance, t.machine);
            if (!output) {
                spdlog::warn("API: output of run {} on {}: {}", s.instance, t.machine, output.error().message);
                continue;
            }
            r.targets[t.machine].output = stored_output_display(std::move(*output), t);
        }
        return r;
    }

    std::map<std::string, RunRecord> runs_between(SysMicros start, SysMicros end, std::size_t limit) const override {
        std::vector<RunRecord> candidates;
        auto from_store = m_store.runs_between(start, end, limit);
        if (from_store) {
            for (const StoredRun& s : *from_store) {
                if (m_tracker.find(s.instance) == nullptr) candidates.push_back(to_run_record(s));
            }
        } else {
            spdlog::warn("API: timeline: {}; showing the runs in memory only", from_store.error().message);
        }
        for (const auto& [instance, run] : m_tracker.runs()) {
            if (overlaps(run, start, end)) candidates.push_back(run.without_output());
        }
        std::sort(candidates.begin(), candidates.end(),
                  [](const RunRecord& a, const RunRecord& b) { return newer_first(&a, &b); });
        std::map<std::string, RunRecord> out;
        for (std::size_t i = 0; i < candidates.size() && i < limit; ++i) {
            std::string instance = candidates[i].instance;
            out.emplace(std::move(instance), std::move(candidates[i]));
        }
        return out;
    }

private:
    RunStore& m_store;
    const RunTracker& m_tracker;
};

}  // namespace

std::unique_ptr<RunHistory> make_store_history(RunStore& store, const RunTracker& tracker) {
    return std::make_unique<StoreHistory>(store, tracker);
}

std::unique_ptr<RunHistory> make_memory_history(const RunTracker& tracker) {
    return std::make_unique<MemoryHistory>(tracker);
}

}  // namespace saltpeter
