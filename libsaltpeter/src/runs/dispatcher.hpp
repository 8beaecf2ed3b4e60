#pragma once
// Dispatcher: between the Scheduler and the Executors (DESIGN.md). For each firing it applies the
// job policies (dispatch_policy.hpp): global maintenance and concurrency decide whether a run
// starts; then it opens the record in the RunTracker, pings the targets, sorts out the minions
// that did not answer and those in maintenance, picks number_of_targets of them and launches the
// batches (canary first, batch_size, batch_wait) through the job's Executor, stopping on
// max_failures or a failed canary, and retries failed targets as runs with Trigger::retry.
// Io thread only.
//
//   firing --admit--> start --ping--> plan --launch batch--> batch done --more?--> [batch_wait] --+
//                                                   ^              |  \--failed & retries left--> |
//                                                   |              |      [retry_backoff] retry run
//                                                   +--------------+--stop (max_failures/canary/kill):
//                                                                        the rest recorded as 252

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "saltpeter/config.hpp"
#include "saltpeter/executor.hpp"
#include "saltpeter/result.hpp"
#include "runs/run_tracker.hpp"
#include "saltpeter/salt_transport.hpp"

namespace saltpeter {

/// Error::field values of Dispatcher::submit() refusals, so callers can tell them apart.
inline constexpr const char* k_refused_overlap = "overlap";
inline constexpr const char* k_refused_maintenance = "maintenance";
inline constexpr const char* k_queued_maintenance = "queued";

/// The spec of a run of `job` (null: a job no longer in the configuration, no timeout) with
/// `default_heartbeat` when the job sets no heartbeat_timeout. Instance, trigger and times stay empty.
RunSpec run_spec_for(const std::string& job_name, const Job* job, std::chrono::seconds default_heartbeat);

class Dispatcher final : public RunObserver {
public:
    Dispatcher(boost::asio::io_context& io, SaltTransport& transport, RunTracker& tracker, Executor& wrapper_executor,
               Executor& legacy_executor, std::function<const LaunchContext&()> context);
    ~Dispatcher() override;
    Dispatcher(const Dispatcher&) = delete;
    Dispatcher& operator=(const Dispatcher&) = delete;

    /// Where queued run-now requests find their job when global maintenance ends (null = gone).
    void set_job_lookup(std::function<const Job*(const std::string&)> lookup);

    /// A firing of `job` (scheduled, catch-up or run-now per spec.trigger; spec.instance is
    /// filled in when empty). Returns the new instance, or an Error whose field is
    /// k_refused_overlap (forbid and an instance runs; an `overlap` record is written),
    /// k_refused_maintenance (global maintenance, scheduled firing dropped) or
    /// k_queued_maintenance (global maintenance, run-now queued until it ends). `force` lets a
    /// run-now start next to a running instance of a forbid job.
    Result<std::string> submit(const Job& job, RunSpec spec, bool force = false);
    /// A firing by name, the path of the Scheduler and of run-now: the job from the lookup, its
    /// spec from run_spec_for (the context's heartbeat_timeout by default), then submit(). Error
    /// "unknown job '<name>'" (field "job") when the lookup does not know it.
    Result<std::string> fire(const std::string& job, Trigger trigger, std::optional<SysSeconds> scheduled,
                             bool force = false);
    /// Kills the running instances of `job` (all machines, or one) and, without a machine, stops
    /// its pending batches and retries (their targets are recorded as skipped). False when
    /// nothing was running or pending.
    bool kill_job(const Job& job, const std::optional<std::string>& machine);
    /// Kills one instance (all its machines, or one). False when nothing runs.
    bool kill(const Job& job, const std::string& instance, const std::optional<std::string>& machine);
    /// The maintenance in the context may have changed (reload): queued run-now requests start
    /// when global maintenance is over; a global `until` is watched by a timer.
    void maintenance_changed();
    /// Run-now requests waiting for global maintenance to end.
    std::size_t queued() const noexcept;
    /// Cancels timers and queued requests; no launch afterwards. Idempotent.
    void stop();

    // RunObserver: finished targets drive the next batch or retry.
    void on_target_finished(const RunRecord& run, const TargetResult& target) override;
    void on_run_finished(const RunRecord& run) override;

private:
    class Impl;
    std::unique_ptr<Impl> m_impl;
};

}  // namespace saltpeter
