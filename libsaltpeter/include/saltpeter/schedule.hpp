#pragma once
// Schedule: the pure heart of the Scheduler. Given the jobs and `now`, it says which runs are due
// and when to wake next. No clock reads and no timers (the async Scheduler owns one timer armed
// at next_wake()).

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "saltpeter/cron_expression.hpp"
#include "saltpeter/time.hpp"
#include "saltpeter/time_zone.hpp"

namespace saltpeter {

class Schedule {
public:
    /// One scheduled job.
    struct Entry {
        std::string job;
        CronExpression expression;
        TimeZone zone;
    };

    /// A firing that is due.
    struct Due {
        std::string job;
        SysSeconds scheduled;        ///< the fire time (the latest one when several were missed)
        std::uint32_t missed = 0;    ///< earlier fire times that passed without a firing
    };

    /// Replaces the job set. A job whose expression and zone are unchanged keeps its pending fire
    /// time; a new or changed job gets its first fire time after `now`; a removed job stops.
    void set_jobs(std::vector<Entry> entries, SysSeconds now);

    /// Every job whose fire time is <= now, each once (fire times missed in between are counted,
    /// not fired), after which each gets its next fire time after `now`. In fire-time order.
    std::vector<Due> take_due(SysSeconds now);

    /// The earliest pending fire time; nullopt when no job will ever fire again.
    std::optional<SysSeconds> next_wake() const;
    /// The pending fire time of one job; nullopt when unknown or never again.
    std::optional<SysSeconds> next_run(const std::string& job) const;
    std::size_t size() const noexcept { return m_jobs.size(); }

private:
    struct State {
        Entry entry;
        std::optional<SysSeconds> next;
    };
    void arm(State& state, const std::string& name);

    std::map<std::string, State> m_jobs;
    std::set<std::pair<SysSeconds, std::string>> m_queue;  // pending fire times, earliest first
};

}  // namespace saltpeter
