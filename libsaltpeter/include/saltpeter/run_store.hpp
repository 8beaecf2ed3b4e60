#pragma once
// RunStore: where runs, per-target results, output, scheduler decisions and last fire times
// outlive spd. Writes are queued and committed by the store (SQLite: one writer thread with group
// commit); each write's completion runs on the owner's io_context thread once the write is
// COMMITTED, so callers acknowledge wrappers from there. Reads are synchronous and see committed
// data only. Two implementations: make_sqlite_run_store (the daemon) and make_memory_run_store
// (tests); tests/unit/test_run_store.cpp holds both to the same contract.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "saltpeter/job_log.hpp"
#include "saltpeter/result.hpp"
#include "saltpeter/runs.hpp"
#include "saltpeter/time.hpp"

namespace saltpeter {

/// The inverse of to_string(Trigger): "schedule", "run-now", "catch-up", "retry"; nullopt otherwise.
std::optional<Trigger> trigger_from_string(std::string_view text) noexcept;
/// The inverse of to_string(TargetState); nullopt for an unknown name.
std::optional<TargetState> target_state_from_string(std::string_view text) noexcept;

/// How a run ended; `running` until finish_run.
enum class RunStatus { running, success, failure, killed };
std::string_view to_string(RunStatus status) noexcept;
/// The inverse of to_string(RunStatus); nullopt for an unknown name.
std::optional<RunStatus> run_status_from_string(std::string_view text) noexcept;

/// A scheduler decision worth keeping: a fire that did not start a run.
enum class DecisionKind { skipped_overlap, skipped_maintenance, misfire };
std::string_view to_string(DecisionKind kind) noexcept;
/// The inverse of to_string(DecisionKind); nullopt for an unknown name.
std::optional<DecisionKind> decision_kind_from_string(std::string_view text) noexcept;

/// One target (machine) of a run as stored. put_target writes the metadata fields; the output
/// fields (`last_seq`, `output_bytes`, `cut_bytes`) are maintained by append_output and ignored
/// by put_target.
struct StoredTarget {
    std::string instance;
    std::string machine;
    TargetState state = TargetState::pending;
    std::optional<SysMicros> started;
    std::optional<SysMicros> ended;
    std::optional<int> retcode;
    std::string wrapper_version;
    std::optional<SysMicros> last_heartbeat;  ///< spd's clock: when the wrapper was last heard
    std::vector<std::string> notes;           ///< e.g. "heartbeat lost 40 s, recovered"
    bool spd_verdict = false;                 ///< retcode set by spd (253/124/143/254), not the wrapper
    std::optional<std::int64_t> last_seq;     ///< highest output seq stored; nullopt before any
    std::uint64_t output_bytes = 0;           ///< every byte appended, including the cut ones
    std::uint64_t cut_bytes = 0;              ///< bytes dropped by output_max_bytes
};

/// One run (job instance) as stored. `targets` is filled by the reads that say so.
struct StoredRun {
    std::string instance;
    std::string job;
    std::string group;
    Trigger trigger = Trigger::schedule;
    std::optional<SysSeconds> scheduled;  ///< the fire time, when the run came from the schedule
    SysMicros started{};
    std::optional<SysMicros> ended;
    RunStatus status = RunStatus::running;
    std::vector<StoredTarget> targets;  ///< by machine name, ascending
};

/// A fire that did not become a run (overlap, maintenance) or was missed (misfire).
struct SchedulerDecision {
    std::string job;
    DecisionKind kind = DecisionKind::skipped_overlap;
    SysMicros at{};                       ///< when the scheduler decided
    std::optional<SysSeconds> scheduled;  ///< the fire time concerned
    std::string detail;                   ///< e.g. "demo_1795840727 still running"
};

/// Limits of a store. Zero means "no limit" for the retention settings and the queue.
struct RunStoreOptions {
    unsigned history_max_runs = 1000;                       ///< finished runs kept per job
    unsigned history_max_days = 90;                         ///< finished runs/decisions kept
    std::uint64_t output_max_bytes = 16u * 1024u * 1024u;   ///< per target: head and tail kept
    std::uint64_t queue_max_bytes = 64u * 1024u * 1024u;    ///< output bytes awaiting completion
    /// SQLite only: fsync every group commit (synchronous=FULL). Off (NORMAL) survives a crash of
    /// spd but may lose the last commits on power loss, after the wrapper was told they were safe.
    bool sync_full = true;
};

/// The visible marker put between the kept head and tail of a cut output.
std::string output_cut_marker(std::uint64_t cut_bytes);

/// What every store does. All methods may be called from any thread; completions and
/// `when_writable` callbacks run on the io_context given to the factory. The store must be
/// destroyed before that io_context; destruction commits everything queued (completions are
/// still posted, and run if the io_context runs again).
class RunStore {
public:
    /// Runs on the io thread once the write is committed (ok) or failed (the error says why).
    using Completion = std::function<void(const Status&)>;

    virtual ~RunStore() = default;

    /// Inserts or replaces a run's own row (not its targets). `targets` is ignored.
    virtual void put_run(const StoredRun& run, Completion done = {}) = 0;
    /// Sets the end time and final status of a run; error if the instance is unknown.
    virtual void finish_run(const std::string& instance, SysMicros ended, RunStatus status,
                            Completion done = {}) = 0;
    /// Inserts or updates a target's metadata; error if its run is unknown. Output fields are kept.
    virtual void put_target(const StoredTarget& target, Completion done = {}) = 0;
    /// Queues a chunk of output for a target. Returns false, queuing nothing and never calling
    /// `done`, when the queue already holds queue_max_bytes of uncompleted output (back-pressure:
    /// stop reading the producer and retry from when_writable). A chunk whose seq is not above the
    /// target's last stored seq is a resend: it completes ok without being stored again. Without a
    /// seq the chunk is always stored. Error (in `done`) if the target is unknown.
    virtual bool try_append_output(const std::string& instance, const std::string& machine,
                                   std::optional<std::int64_t> seq, std::string data,
                                   Completion done = {}) = 0;
    /// Calls `ready` once on the io thread when output can be queued again (at once if it can now).
    virtual void when_writable(std::function<void()> ready) = 0;
    /// Records a scheduler decision.
    virtual void record_decision(const SchedulerDecision& decision, Completion done = {}) = 0;
    /// Stores the last fire time of a job (replacing the previous one).
    virtual void set_last_fire(const std::string& job, SysSeconds fire, Completion done = {}) = 0;
    /// Applies history_max_runs and history_max_days to finished runs and decisions, as of `now`.
    /// Unfinished runs are never pruned. Runs on the writer, never on the caller's thread.
    virtual void prune(SysMicros now, Completion done = {}) = 0;
    /// Completes once everything queued before it is committed.
    virtual void flush(Completion done) = 0;
    /// After a write for a target failed (disk full, I/O error), every later put_target and
    /// try_append_output for that target fails too, without touching the database, so that nothing
    /// after a lost chunk is committed and the stored output never has a hole. The caller clears the
    /// condition with this once its earlier writes have all completed, then writes them again in order.
    virtual void clear_target_error(const std::string& instance, const std::string& machine, Completion done = {}) = 0;
    /// Bytes of output queued whose completion has not run yet.
    virtual std::uint64_t queued_bytes() const = 0;

    /// Runs without an end, oldest first, with their targets (recovery at start-up).
    virtual Result<std::vector<StoredRun>> unfinished_runs() = 0;
    /// The last fire time of every job that has one.
    virtual Result<std::map<std::string, SysSeconds>> last_fire_times() = 0;
    /// One run with its targets; nullopt if unknown.
    virtual Result<std::optional<StoredRun>> run(const std::string& instance) = 0;
    /// The newest `limit` runs of a job (newest first), with their targets.
    virtual Result<std::vector<StoredRun>> runs(const std::string& job, std::size_t limit) = 0;
    /// Runs whose span [started, ended] overlaps [start, end] (an unfinished run's span reaches
    /// forever), newest first (started, then instance, descending), at most `limit`, with their
    /// targets but no output. A run that started before `start` and ended within it is included;
    /// nothing when `start` is after `end`.
    virtual Result<std::vector<StoredRun>> runs_between(SysMicros start, SysMicros end, std::size_t limit) = 0;
    /// A target's stored output; a cut output has output_cut_marker between head and tail.
    /// Error if the target is unknown.
    virtual Result<std::string> output(const std::string& instance, const std::string& machine) = 0;
    /// The newest `limit` decisions of a job, newest first.
    virtual Result<std::vector<SchedulerDecision>> decisions(const std::string& job, std::size_t limit) = 0;
};

/// How a run in memory ended so far: running until it has an end, then killed (a kill was
/// requested), success or failure.
RunStatus run_status(const RunRecord& run);
/// A run's own row as stored (no targets).
StoredRun to_stored_run(const RunRecord& run);
/// A target's metadata as stored (the output fields stay at their defaults).
StoredTarget to_stored_target(const RunRecord& run, const TargetResult& target);

/// A stored run as the API shows it: state, times, retcodes, notes and verdicts of every target,
/// without output (`output` stays empty; load it with RunStore::output and stored_output_display).
/// A run is finished once it has an end; its launching is then done too.
RunRecord to_run_record(const StoredRun& run);

/// The output of a stored target as the live view shows it: `output` followed, for a target with
/// an spd verdict, by the verdict text (the last note) on a line of its own ("\n" before it unless
/// `output` is empty or already ends with one, "\n" after it).
std::string stored_output_display(std::string output, const StoredTarget& target);

/// Opens (creating it 0600 if missing) the SQLite database at `path` in WAL mode, checks it
/// (PRAGMA quick_check), migrates its schema and starts the writer thread. Errors name the path
/// and SQLite's or the system's message: unwritable or missing directory, not a database,
/// corruption, a newer schema.
Result<std::unique_ptr<RunStore>> make_sqlite_run_store(boost::asio::io_context& io, const std::string& path,
                                                         const RunStoreOptions& options = {});

/// A store in memory with the same contract (completions are still posted to `io`).
std::unique_ptr<RunStore> make_memory_run_store(boost::asio::io_context& io, const RunStoreOptions& options = {});

}  // namespace saltpeter
