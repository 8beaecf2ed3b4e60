#pragma once
// The job policies as pure functions (issue 6): admission (concurrency, global maintenance,
// force), subset selection, the batch plan, the stop decision after failures, the retry delay,
// the splay offset and the misfire decision. Everything they need (now, seeds, counts) is an
// argument, so the unit tests never sleep; the Dispatcher and the Daemon drive them.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "saltpeter/config.hpp"
#include "saltpeter/cron_expression.hpp"
#include "saltpeter/time.hpp"
#include "saltpeter/time_zone.hpp"

namespace saltpeter {
namespace policy {

/// What to do with a firing or a run-now request.
enum class Admission {
    start,             ///< start a new run
    replace,           ///< kill the running instance(s) (143), then start
    skip_overlap,      ///< forbid: an instance runs; record an `overlap` event
    skip_maintenance,  ///< global maintenance: a scheduled firing is dropped
    queue_maintenance  ///< global maintenance: a run-now request waits until it ends
};
std::string_view to_string(Admission a) noexcept;

/// The admission of a firing. `running` counts the job's unfinished runs; `run_now` marks an
/// operator request (queued under global maintenance instead of dropped); `force` lets a run-now
/// start next to a running instance of a forbid job (it never overrides maintenance).
Admission admit(Concurrency concurrency, std::size_t running, bool global_maintenance, bool run_now,
                bool force) noexcept;

/// A deterministic pseudo-random subset of `n` minions (all of them when n is 0 or >= their
/// count), in the input order. The same seed and input give the same subset.
std::vector<std::string> choose_subset(const std::vector<std::string>& minions, unsigned n, std::uint64_t seed);

/// The batches of a run, in launch order: the first `canary` minions alone (when canary > 0),
/// then consecutive batches of `batch_size` (resolved against the minions after the canary;
/// unset = one batch). Never empty batches; no minion twice; empty input gives no batch.
std::vector<std::vector<std::string>> plan_batches(const std::vector<std::string>& minions, unsigned canary,
                                                   const Amount& batch_size);

/// After a batch: true when no further batch may start. `failed` counts the targets of the run
/// that failed so far (after their retries), `total` the targets of the plan; a canary batch
/// stops on any failure; max_failures (count or percentage of total, unset = no limit) stops once
/// `failed` reaches it.
bool should_stop(unsigned failed, unsigned total, const Amount& max_failures, bool canary_batch,
                 unsigned failed_in_batch) noexcept;

/// The reason should_stop() gives, for the skipped targets' records.
std::string stop_reason(unsigned failed, unsigned total, const Amount& max_failures, bool canary_batch,
                        unsigned failed_in_batch);

/// True when a target that ended with `code` may be retried: any failure except 143 (killed on
/// request) and the skipped code.
bool retryable(int code) noexcept;

/// Delay before retry `attempt` (1 = the first retry): backoff * 2^(attempt-1), at most
/// backoff_max (and at least 0).
std::chrono::seconds retry_delay(unsigned attempt, std::chrono::seconds backoff,
                                 std::chrono::seconds backoff_max) noexcept;

/// 64-bit FNV-1a of `text` (stable across builds and platforms, unlike std::hash).
std::uint64_t fnv1a(std::string_view text) noexcept;

/// MurmurHash3's 64-bit finalizer: spreads the bits of a hash (fixed by its definition).
std::uint64_t mix64(std::uint64_t h) noexcept;

/// The job's splay offset in [0, splay]: mix64(FNV-1a of the name) modulo splay + 1; 0 when
/// splay is 0. The same on every start, build and host.
std::chrono::seconds splay_offset(std::string_view job, std::chrono::seconds splay) noexcept;

/// How late a firing may be and still count as on time (the scheduler re-checks the clock at
/// least every minute).
constexpr std::chrono::seconds k_on_time{60};

/// What to do about fire times that passed without a firing (spd down or suspended).
struct MisfireDecision {
    bool run = false;                 ///< start a run now
    bool catch_up = false;            ///< the run is a catch-up (Trigger::catch_up), not on time
    std::uint32_t missed = 0;         ///< fire times that passed without a run
    std::optional<SysSeconds> latest; ///< the latest of them
    std::string reason;               ///< one line for the log; empty when nothing was missed
};

/// The decision for a firing due at `latest` (`missed` earlier fire times also passed) seen at
/// `now`: on time (now - latest <= on_time) runs; later, `skip` drops it and `run_once` runs it
/// once as a catch-up when now - latest <= grace. `missed` in the result counts every fire time
/// that gets no run of its own. At start-up spd passes on_time 0: a fire time that passed while
/// it was down is always a misfire.
MisfireDecision decide_misfire(Misfire misfire, std::chrono::seconds grace, SysSeconds latest, std::uint32_t missed,
                               SysSeconds now, std::chrono::seconds on_time = k_on_time);

/// Fire times of `expr` in (last, now], counted up to `limit`: the count and the latest one.
/// Used at start-up with the last fire time from the state file.
struct Missed {
    std::uint32_t count = 0;
    std::optional<SysSeconds> latest;
};
Missed missed_fire_times(const CronExpression& expr, const TimeZone& zone, SysSeconds last, SysSeconds now,
                         std::uint32_t limit = 100000);

}  // namespace policy
}  // namespace saltpeter
