#pragma once
// ApiBackend: everything the API reads and commands, as one narrow interface. spd implements it
// over its parts (spd/api_backend.cpp); the API never sees the Daemon. Io thread only.
//
//   read model: the configuration in force, runs in memory, job summaries (with the scheduler's
//               next fire time), run history, the metrics registry
//   commands:   run now, kill a job or one run (all machines or one)

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "saltpeter/config.hpp"
#include "saltpeter/result.hpp"
#include "saltpeter/runs.hpp"

namespace saltpeter {

class Metrics;
class RunHistory;

class ApiBackend {
public:
    virtual ~ApiBackend() = default;

    // ---- read model ----
    /// The configuration in force.
    virtual const Config& config() const = 0;
    /// Changes whenever the configuration is (re)loaded: the load time in Unix seconds (the UI's serial).
    virtual double config_serial() const = 0;
    /// Every run kept in memory, by instance (in flight and the newest finished ones).
    virtual const std::map<std::string, RunRecord>& runs() const = 0;
    /// Instances of `job` that have not ended, oldest first.
    virtual std::vector<const RunRecord*> running(const std::string& job) const = 0;
    /// A run kept in memory, or null.
    virtual const RunRecord* find_run(const std::string& instance) const = 0;
    /// Per-job summaries; next_run is the scheduler's pending fire time.
    virtual std::map<std::string, JobStatus> job_status() const = 0;
    /// The summary of one job (empty for a job never run).
    virtual JobStatus job_status(const std::string& job) const = 0;
    /// Runs from memory and the durable store.
    virtual const RunHistory& history() const = 0;
    /// The registry behind /metrics (its collectors refresh what others own).
    virtual Metrics& metrics() = 0;
    /// Adds an observer of every run event (the API's push mode); kept alive by the backend.
    virtual void add_observer(std::shared_ptr<RunObserver> observer) = 0;

    // ---- commands ----
    /// Starts a run of `job` now (same policies as a scheduled firing). The instance id, or an
    /// Error: unknown job (field "job"), overlap (field "overlap"; `force` starts it anyway),
    /// global maintenance (field "queued": the request waits until maintenance ends).
    virtual Result<std::string> run_now(const std::string& job, bool force) = 0;
    /// Kills the running instance(s) of `job`, or only `machine`. False when nothing runs.
    virtual bool kill_job(const std::string& job, const std::optional<std::string>& machine) = 0;
    /// Kills one run (every unfinished target, or only `machine`). False when it is not running.
    virtual bool kill_run(const std::string& instance, const std::optional<std::string>& machine) = 0;
};

}  // namespace saltpeter
