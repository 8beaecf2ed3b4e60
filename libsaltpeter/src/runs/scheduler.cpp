#include "saltpeter/scheduler.hpp"

#include <spdlog/spdlog.h>

#include <list>
#include <map>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core/metrics.hpp"
#include "core/dispatch_policy.hpp"
#include "runs/fire_time_store.hpp"
#include "saltpeter/schedule.hpp"

namespace saltpeter {

namespace {
// A steady timer cannot see wall-clock steps; waking at least this often bounds how late a
// firing can be after the clock jumps.
constexpr std::chrono::seconds k_max_sleep{60};

SysSeconds wall_now() { return std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now()); }
}  // namespace

struct Scheduler::Impl {
    Impl(boost::asio::io_context& context, FireCallback cb) : io(context), timer(context), fire(std::move(cb)) {}

    boost::asio::io_context& io;
    boost::asio::steady_timer timer;
    FireCallback fire;
    MissedCallback on_missed;
    FireTimeStore* fire_times = nullptr;
    Metrics* metrics = nullptr;
    Schedule schedule;
    std::map<std::string, Job> jobs;
    std::list<boost::asio::steady_timer> splay_timers;
    bool flush_pending = false;
    bool stopped = false;

    void arm() {
        if (stopped) return;
        auto next = schedule.next_wake();
        if (!next) {
            timer.cancel();
            return;
        }
        auto wait = std::chrono::duration_cast<std::chrono::steady_clock::duration>(*next - std::chrono::system_clock::now());
        if (wait < std::chrono::steady_clock::duration::zero()) wait = std::chrono::steady_clock::duration::zero();
        if (wait > k_max_sleep) wait = k_max_sleep;
        timer.expires_after(wait);
        timer.async_wait([this](const boost::system::error_code& ec) {
            if (!ec) on_timer();
        });
    }

    void on_timer() {
        if (stopped) return;
        for (const auto& due : schedule.take_due(wall_now())) {
            try {
                on_due(due);
            } catch (const std::exception& e) {
                spdlog::error("{}: firing failed: {}", due.job, e.what());
            }
        }
        arm();
    }

    // A fire time came due: the misfire policy judges late wake-ups (suspend, clock step), then
    // the splay offset delays the firing.
    void on_due(const Schedule::Due& due) {
        auto found = jobs.find(due.job);
        if (found == jobs.end()) return;
        const Job& job = found->second;
        const SysSeconds now = wall_now();
        const auto decision = policy::decide_misfire(job.misfire, job.misfire_grace, due.scheduled, due.missed, now);
        if (fire_times) {
            fire_times->record_fire(due.job, due.scheduled);
            if (!decision.reason.empty()) fire_times->record_misfire(due.job, now, decision.missed, decision.reason);
            schedule_flush();
        }
        if (!decision.reason.empty()) spdlog::warn("{}: {}", due.job, decision.reason);
        report_missed(job, decision, decision.reason);
        if (!decision.run) return;
        const Trigger trigger = decision.catch_up ? Trigger::catch_up : Trigger::schedule;
        const auto offset = policy::splay_offset(job.name, job.splay);
        if (offset.count() == 0) {
            start(due.job, trigger, due.scheduled);
            return;
        }
        spdlog::debug("{}: splay {} s", due.job, offset.count());
        auto it = splay_timers.emplace(splay_timers.end(), io);
        it->expires_after(offset);
        it->async_wait([this, it, name = due.job, trigger, scheduled = due.scheduled](const boost::system::error_code& ec) {
            if (ec) return;  // stop() cancelled it; the list goes with the scheduler
            splay_timers.erase(it);
            start(name, trigger, scheduled);
        });
    }

    Result<std::string> start(const std::string& job, Trigger trigger, SysSeconds scheduled) {
        if (metrics != nullptr)
            metrics->observe("saltpeter_scheduler_lag_seconds",
                             unix_seconds(std::chrono::system_clock::now()) - static_cast<double>(scheduled.time_since_epoch().count()),
                             {0.01, 0.05, 0.1, 0.5, 1, 5, 30});
        return fire(job, trigger, scheduled);
    }

    void report_missed(const Job& job, const policy::MisfireDecision& decision, const std::string& reason) {
        if (!on_missed || decision.missed == 0 || !decision.latest) return;
        on_missed(job, MissedFires{*decision.latest, decision.missed, decision.catch_up, reason});
    }

    void schedule_flush() {
        if (flush_pending) return;
        flush_pending = true;
        // One write per burst of firings (500 jobs at midnight write once).
        boost::asio::post(io, [this] {
            flush_pending = false;
            flush();
        });
    }

    void flush() {
        if (!fire_times) return;
        auto written = fire_times->flush();
        if (!written) spdlog::error("{}", written.error().message);
    }
};

Scheduler::Scheduler(boost::asio::io_context& io, FireCallback fire) : m_impl(std::make_unique<Impl>(io, std::move(fire))) {}

Scheduler::~Scheduler() { stop(); }

void Scheduler::set_fire_times(FireTimeStore* store) noexcept { m_impl->fire_times = store; }
void Scheduler::set_on_missed(MissedCallback callback) { m_impl->on_missed = std::move(callback); }
void Scheduler::set_metrics(Metrics* metrics) noexcept { m_impl->metrics = metrics; }

void Scheduler::catch_up(const std::vector<Job>& jobs) {
    Impl& s = *m_impl;
    if (!s.fire_times) return;
    const SysSeconds now = wall_now();
    for (const Job& job : jobs) {
        const auto last = s.fire_times->last_fire(job.name);
        if (!last) {
            s.fire_times->record_fire(job.name, now);  // from now on its fire times count
            continue;
        }
        const auto missed = policy::missed_fire_times(job.schedule, job.zone, *last, now);
        if (missed.count == 0 || !missed.latest) continue;
        auto decision = policy::decide_misfire(job.misfire, job.misfire_grace, *missed.latest, missed.count - 1, now,
                                               std::chrono::seconds{0});
        if (decision.reason.empty()) decision.reason = "1 fire time passed while spd was down";
        const std::string line = "spd was down: " + decision.reason;
        spdlog::warn("{}: {}", job.name, line);
        s.fire_times->record_fire(job.name, *missed.latest);
        s.fire_times->record_misfire(job.name, now, decision.missed, line);
        s.report_missed(job, decision, line);
        if (decision.run) {
            auto started = s.start(job.name, decision.catch_up ? Trigger::catch_up : Trigger::schedule, *missed.latest);
            if (!started) spdlog::warn("{}: catch-up run not started: {}", job.name, started.error().message);
        }
    }
    std::vector<std::string> names;
    for (const Job& job : jobs) names.push_back(job.name);
    s.fire_times->retain(names);
    s.flush();
}

void Scheduler::set_jobs(const std::vector<Job>& jobs) {
    Impl& s = *m_impl;
    std::vector<Schedule::Entry> entries;
    s.jobs.clear();
    for (const Job& job : jobs) {
        entries.push_back({job.name, job.schedule, job.zone});
        s.jobs.emplace(job.name, job);
    }
    const SysSeconds now = wall_now();
    s.schedule.set_jobs(std::move(entries), now);
    if (s.fire_times) {
        // A job new to the state starts counting missed fire times from now.
        std::vector<std::string> names;
        for (const Job& job : jobs) {
            names.push_back(job.name);
            if (!s.fire_times->last_fire(job.name)) s.fire_times->record_fire(job.name, now);
        }
        s.fire_times->retain(names);  // a removed job that comes back starts afresh
        s.schedule_flush();
    }
    s.arm();
}

std::optional<SysSeconds> Scheduler::next_run(const std::string& job) const { return m_impl->schedule.next_run(job); }

void Scheduler::stop() {
    Impl& s = *m_impl;
    if (s.stopped) return;
    s.stopped = true;
    s.timer.cancel();
    for (auto& timer : s.splay_timers) timer.cancel();
    s.flush();
}

}  // namespace saltpeter
