#pragma once
// RunTracker: the single owner of run state in spd. Executors open runs and add targets; the
// MachineHub feeds it wrapper frames (it is the hub's listener); its timers give spd's verdicts:
// no start within the startup window (254), silence past heartbeat_timeout (253), no completion
// by timeout + grace (124), no completion within the kill grace (143). Every verdict is
// replaced by real data if the wrapper reports later (PROTOCOL.md 5.2). One io thread.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "runs/machine_hub.hpp"
#include "saltpeter/run_store.hpp"
#include "saltpeter/runs.hpp"

namespace saltpeter {

struct TrackerOptions {
    std::chrono::milliseconds startup_timeout{30000};
    std::chrono::milliseconds timeout_grace{30000};
    std::chrono::milliseconds kill_grace{30000};
    std::chrono::milliseconds kill_resend{1000};
    std::size_t finished_runs_kept = 20;  ///< per job, in memory
    /// Output kept in memory per target (saltpeter_config output_max_bytes; 0 = no limit). Beyond
    /// it the output is cut in the middle: the first output_max_bytes stay, a notice says so, and
    /// the last output_max_bytes/2 follow when the target ends with a marker naming the bytes cut.
    /// Observers still see every byte as it arrives.
    std::uint64_t output_max_bytes = 16u * 1024u * 1024u;
};

class RunTracker final : public HubListener {
public:
    RunTracker(boost::asio::io_context& io, TrackerOptions options, RunObserver& observer);
    ~RunTracker() override;
    RunTracker(const RunTracker&) = delete;
    RunTracker& operator=(const RunTracker&) = delete;

    /// Where kills go and pair state is dropped; may be null (no wrappers, e.g. legacy only).
    void set_hub(MachineHub* hub) noexcept { m_hub = hub; }
    /// Where every run, target change and chunk of output is written (may be null: memory only).
    /// With a store, a wrapper's output and `complete` are acknowledged only once committed; a
    /// failed write is not acknowledged, is logged, and is written again with backoff (1 s to
    /// 30 s) in order, so the wrapper keeps what spd could not store. Set before the first run.
    void set_store(RunStore* store);
    /// Re-opens a run the store holds as unfinished (spd restarted): its targets' output comes from
    /// the store, wrappers that reconnect are re-adopted from their last stored seq, and every
    /// unfinished target that is not heard from within spec.heartbeat_timeout from now ends with
    /// 253 and a note. The deadline (timeout + grace) still counts from the target's start.
    void restore(const StoredRun& run, const RunSpec& spec);
    /// Store writes that failed (each is retried until it succeeds); for /metrics.
    std::uint64_t store_write_errors() const noexcept;

    /// Opens a run and writes its `start` record. The instance must be new.
    const RunRecord& open(const RunSpec& spec);
    /// Adds a target in state pending (writes `machine_start`); the startup window starts now
    /// when `wrapper` is true (wrapper mode), else the target waits for a result.
    void add_target(const std::string& instance, const std::string& machine, bool wrapper = true);
    /// The launch through Salt succeeded for this target.
    void mark_launched(const std::string& instance, const std::string& machine);
    /// Records a final result that did not come from a wrapper (Salt said no, not responding,
    /// legacy returns, maintenance). `spd_verdict` results can be replaced by late wrapper data.
    void set_result(const std::string& instance, const std::string& machine, int code, const std::string& output,
                    bool spd_verdict);
    /// Appends output that did not come through the hub (legacy mode).
    void append_output(const std::string& instance, const std::string& machine, const std::string& data);
    /// No further targets will be added; the run ends once every target has a result.
    void launching_done(const std::string& instance);
    /// Writes a log record for the job of `instance` (no_machines, maintenance, test_ping_failed...).
    void log(const std::string& job, LogRecord record);

    /// Kill request: every unfinished target of the run, or only `machine`. Returns false when
    /// the instance is unknown or already finished.
    bool kill(const std::string& instance, const std::optional<std::string>& machine = std::nullopt);

    const RunRecord* find(const std::string& instance) const;
    /// The instance is in memory or in the store (an earlier spd's run): a new run needs another id.
    bool instance_taken(const std::string& instance) const;
    /// Instances of `job` that have not ended, oldest first.
    std::vector<const RunRecord*> running(const std::string& job) const;
    /// Every run kept in memory, by instance.
    const std::map<std::string, RunRecord>& runs() const noexcept { return m_runs; }
    const std::map<std::string, JobStatus>& job_status() const noexcept { return m_status; }
    JobStatus& status_of(const std::string& job) { return m_status[job]; }

    // HubListener
    Admission admit(const TargetKey& key) override;
    void on_activity(const TargetKey& key) override;
    void on_start(const TargetKey& key, const protocol::Start& start) override;
    void on_output(const TargetKey& key, const protocol::Output& output, std::function<void()> stored) override;
    void on_complete(const TargetKey& key, const protocol::Complete& complete, std::function<void()> stored) override;
    void on_wrapper_error(const TargetKey& key, const protocol::WrapperError& error) override;

private:
    RunRecord* run_of(const std::string& instance);
    TargetResult* target_of(const TargetKey& key, RunRecord** run = nullptr);
    void verdict(RunRecord& run, TargetResult& target, int code, const std::string& note);
    void add_output(const RunRecord& run, TargetResult& target, std::string_view data);
    void flush_held_output(const RunRecord& run, TargetResult& target);
    void finish_target(RunRecord& run, TargetResult& target, std::function<void()> stored = {});
    void store_run(const RunRecord& run);
    void store_target(const RunRecord& run, const TargetResult& target, std::function<void()> stored = {});
    void store_output(const TargetKey& key, std::optional<std::int64_t> seq, std::string_view data,
                      std::function<void()> stored);
    void recover(RunRecord& run, TargetResult& target);
    void maybe_finish_run(RunRecord& run);
    void arm_deadline(const TargetKey& key, std::chrono::steady_clock::duration after);
    void arm_heartbeat_timer();
    void on_heartbeat_timer();
    void send_kill(const TargetKey& key);
    void evict_old_runs(const std::string& job);

    boost::asio::io_context& m_io;
    TrackerOptions m_options;
    RunObserver& m_observer;
    MachineHub* m_hub = nullptr;
    std::map<std::string, RunRecord> m_runs;
    std::map<std::string, RunSpec> m_specs;
    std::map<std::string, JobStatus> m_status;
    struct Impl;
    std::unique_ptr<Impl> m_impl;  // timers and the heartbeat monitor (asio types stay out of here)
};

}  // namespace saltpeter
