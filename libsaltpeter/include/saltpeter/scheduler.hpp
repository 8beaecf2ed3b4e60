#pragma once
// Scheduler: when jobs fire. One timer around the pure Schedule wakes at the next fire time (and
// at least every minute, so clock steps and suspends are noticed); the fire-time policy lives
// here too: the misfire rule for late wake-ups, splay, catch-up of fire times that passed while
// spd was down, and the last fire time of every job in a FireTimeStore. It is the only writer of
// a job's next fire time (next_run). Io thread only.
//
//   timer --due--> misfire rule --run--> [splay timer] --> fire callback (the dispatcher's path)
//                       \--skip / missed--> missed callback (webhooks), fire-time store

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "saltpeter/config.hpp"
#include "saltpeter/result.hpp"
#include "saltpeter/runs.hpp"
#include "saltpeter/time.hpp"

namespace saltpeter {

class FireTimeStore;
class Metrics;

/// Fire times that got no run of their own, as the misfire policy decided.
struct MissedFires {
    SysSeconds latest{};       ///< the latest of them
    std::uint32_t count = 0;   ///< how many
    bool catch_up = false;     ///< a catch-up run was started for the latest one
    std::string reason;        ///< the policy's line, as logged
};

class Scheduler {
public:
    /// Starts a run of `job` (its policies are the dispatcher's): the instance, or why not.
    using FireCallback =
        std::function<Result<std::string>(const std::string& job, Trigger trigger, std::optional<SysSeconds> scheduled)>;
    /// Fire times of `job` were missed (a late wake-up, or while spd was down).
    using MissedCallback = std::function<void(const Job& job, const MissedFires& missed)>;

    Scheduler(boost::asio::io_context& io, FireCallback fire);
    ~Scheduler();
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    /// Where last fire times are kept across restarts (null: nowhere, no catch-up). Set before
    /// catch_up() and set_jobs(); the store must outlive the scheduler's use.
    void set_fire_times(FireTimeStore* store) noexcept;
    void set_on_missed(MissedCallback callback);
    /// Where the lag between a fire time and its firing is observed (may be null).
    void set_metrics(Metrics* metrics) noexcept;

    /// At start-up: per job, the fire times that passed since its last one are judged by its
    /// misfire policy (a catch-up run of the latest, or skipped); each is recorded and reported.
    void catch_up(const std::vector<Job>& jobs);
    /// Replaces the jobs (config load and reload) and re-arms the timer. A job whose schedule
    /// and zone are unchanged keeps its pending fire time; a job new to the fire-time store
    /// counts missed fire times from now; removed jobs are forgotten.
    void set_jobs(const std::vector<Job>& jobs);
    /// The pending fire time of a job; nullopt when unknown or never again.
    std::optional<SysSeconds> next_run(const std::string& job) const;
    /// Cancels the timers (splay delays included) and writes the fire times; no callback
    /// afterwards. Idempotent.
    void stop();

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

}  // namespace saltpeter
