#pragma once
// RunHistory: the read side of run history, for the API. Either the runs RunTracker keeps in
// memory, or those merged with the durable RunStore. Io thread only (it reads the tracker).

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "saltpeter/runs.hpp"

namespace saltpeter {

class RunStore;
class RunTracker;

class RunHistory {
public:
    virtual ~RunHistory() = default;
    /// Runs of `job`, newest first, at most `limit`.
    virtual std::vector<RunRecord> runs_of(const std::string& job, std::size_t limit) const = 0;
    /// One run by instance id with every target's output, or nullopt.
    virtual std::optional<RunRecord> find(const std::string& instance) const = 0;
    /// The newest `limit` runs whose span [started, ended or forever] overlaps [start, end], by
    /// instance, without output (the timeline).
    virtual std::map<std::string, RunRecord> runs_between(SysMicros start, SysMicros end, std::size_t limit) const = 0;
};

/// History from the runs RunTracker keeps in memory (finished_runs_kept per job).
std::unique_ptr<RunHistory> make_memory_history(const RunTracker& tracker);

/// History from `store` merged with the tracker's runs: for an instance the tracker holds, its
/// live record wins; all others come from the store (older runs, runs from before a restart), a
/// stored output shown with its verdict text (stored_output_display). A failed store read is
/// logged and answers with the tracker's runs only. Both must outlive the history.
std::unique_ptr<RunHistory> make_store_history(RunStore& store, const RunTracker& tracker);

}  // namespace saltpeter
