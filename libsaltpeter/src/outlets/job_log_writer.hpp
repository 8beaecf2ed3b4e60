#pragma once
// Outlets that hear every run event and write it somewhere outside spd's memory: the per-job log
// files of the original Saltpeter, the terminal (spd --echo-output) and the scheduler decisions
// in the store. Io thread only.

#include <map>
#include <set>
#include <string>
#include <string_view>

#include "saltpeter/runs.hpp"

namespace saltpeter {

class RunStore;

/// Appends each record to <dir>/<job>.log (format_log_record), opening the file per record as the
/// original does, so that logrotate needs no signal. A failing path is logged once until a record
/// gets through again. No directory: nothing is written.
class JobLogWriter final : public RunObserver {
public:
    explicit JobLogWriter(std::string dir = {}) : m_dir(std::move(dir)) {}
    void on_log(const std::string& job, const LogRecord& record) override;

private:
    std::string m_dir;
    std::set<std::string> m_failed_paths;
};

/// Prints output as it streams, one "instance machine | line" per line, and each target's exit
/// code with its meaning. A partial last line waits for its newline or the end of the target.
class OutputEcho final : public RunObserver {
public:
    void on_output(const RunRecord& run, const TargetResult& target, std::string_view data) override;
    void on_target_finished(const RunRecord& run, const TargetResult& target) override;

private:
    std::map<std::string, std::string> m_pending;
};

/// Keeps the scheduler decisions that did not start a run (overlap, global maintenance) in the
/// store, so that history shows why a fire time has no run. Misfires come through the
/// FireTimeStore. The store must outlive it.
class DecisionRecorder final : public RunObserver {
public:
    explicit DecisionRecorder(RunStore& store) : m_store(store) {}
    void on_log(const std::string& job, const LogRecord& record) override;

private:
    RunStore& m_store;
};

}  // namespace saltpeter
