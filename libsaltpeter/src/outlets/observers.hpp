#pragma once
// The RunObservers that carry run events out of spd's memory: the per-job log files of the
// original Saltpeter, the terminal (spd --echo-output), the scheduler decisions in the store,
// webhooks, and a hook for finished runs once they are committed. Io thread only.

#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include "saltpeter/config.hpp"
#include "saltpeter/runs.hpp"

namespace saltpeter {

class Notifier;
class RunStore;
class RunTracker;

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

/// Hands every finished run to the webhooks (the job's effective notify settings). Both must
/// outlive it.
class NotifyObserver final : public RunObserver {
public:
    NotifyObserver(Notifier& notifier, const Config& config) : m_notifier(notifier), m_config(config) {}
    void on_run_finished(const RunRecord& run) override;

private:
    Notifier& m_notifier;
    const Config& m_config;
};

/// Calls `callback` (when set) with each finished run once its result is committed to the store,
/// and so acknowledged to the wrappers (spd --run-once exits from there: earlier, its wrapper
/// would lose the ack and retry against a stopped spd). The run is read back from the tracker.
/// Store, tracker and callback must outlive it; a completion after its destruction does nothing.
class FinishedRunHook final : public RunObserver {
public:
    FinishedRunHook(RunStore& store, const RunTracker& tracker, const std::function<void(const RunRecord&)>& callback)
        : m_store(store), m_tracker(tracker), m_callback(callback) {}
    void on_run_finished(const RunRecord& run) override;

private:
    RunStore& m_store;
    const RunTracker& m_tracker;
    const std::function<void(const RunRecord&)>& m_callback;
    std::shared_ptr<char> m_alive = std::make_shared<char>(0);
};

}  // namespace saltpeter
