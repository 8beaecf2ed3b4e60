// Dispatcher: admission (maintenance, concurrency), test.ping, non-responders, the maintenance
// filter, the subset, then the batches and retries through the executor (dispatcher.hpp).
#include "runs/dispatcher.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <map>
#include <memory>

#include "core/dispatch_policy.hpp"
#include "saltpeter/exit_code_mapper.hpp"

namespace saltpeter {

namespace {

SysSeconds now_seconds() {
    return std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
}

// One firing on its way through its batches and retries. The main run (spec.instance) holds the
// batches; each retry is a run of its own (Trigger::retry) holding only the retried targets.
struct Dispatch {
    std::shared_ptr<const Job> job;
    RunSpec spec;
    std::vector<std::vector<std::string>> batches;
    std::size_t next = 0;          // the next batch to launch
    unsigned total = 0;            // targets in the plan
    unsigned failed = 0;           // targets whose last attempt failed, so far
    unsigned failed_in_batch = 0;  // of them, in the current batch
    std::string attempt_instance;  // the run holding the current attempt of the current batch
    std::vector<std::string> attempt_minions;
    unsigned attempt = 0;          // 0 = first try, n = n-th retry
    bool launching = false;        // the executor's launch step is not over yet
    bool waiting = false;          // batch_wait or retry_backoff timer armed
    bool done = false;
    std::unique_ptr<boost::asio::steady_timer> timer;
};

struct Queued {
    std::string job;
    RunSpec spec;
    bool force = false;
};

}  // namespace

class Dispatcher::Impl {
public:
    Impl(boost::asio::io_context& io, SaltTransport& transport, RunTracker& tracker, Executor& wrapper_executor,
         Executor& legacy_executor, std::function<const LaunchContext&()> context)
        : m_io(io),
          m_transport(transport),
          m_tracker(tracker),
          m_wrapper(wrapper_executor),
          m_legacy(legacy_executor),
          m_context(std::move(context)),
          m_maintenance_timer(io) {}

    std::function<const Job*(const std::string&)> m_lookup;

    bool stopped() const noexcept { return m_stopped; }
    const LaunchContext& context() const { return m_context(); }

    Result<std::string> submit(const Job& job, RunSpec spec, bool force) {
        if (m_stopped) return Error{"spd is stopping", ""};
        const SysSeconds now = now_seconds();
        const Maintenance& maintenance = m_context().maintenance;
        const auto active = active_instances(job.name);
        const bool run_now = spec.trigger == Trigger::run_now;
        const auto admission = policy::admit(job.concurrency, active.size(), maintenance.global_active(now), run_now, force);
        switch (admission) {
            case policy::Admission::skip_maintenance: {
                LogRecord record;
                record.type = LogRecordType::maintenance;
                record.instance = job.name;
                record.out = "Global maintenance mode active";
                m_tracker.log(job.name, record);
                spdlog::info("{}: not started, global maintenance is active", job.name);
                return Error{"global maintenance is active; '" + job.name + "' was not started", k_refused_maintenance};
            }
            case policy::Admission::queue_maintenance: {
                m_queue.push_back(Queued{job.name, spec, force});
                LogRecord record;
                record.type = LogRecordType::maintenance;
                record.instance = job.name;
                record.out = "Global maintenance mode active; run-now request queued until it ends";
                m_tracker.log(job.name, record);
                spdlog::warn("{}: run-now queued: global maintenance is active ({} request(s) waiting)", job.name,
                             m_queue.size());
                arm_maintenance_timer();
                return Error{"global maintenance is active; the run-now request for '" + job.name +
                                 "' is queued and starts when maintenance ends",
                             k_queued_maintenance};
            }
            case policy::Admission::skip_overlap: {
                LogRecord record;
                record.type = LogRecordType::overlap;
                record.instance = active.front();
                m_tracker.log(job.name, record);
                m_tracker.status_of(job.name).overlap = true;
                spdlog::warn("{}: {} is still running; this {} is skipped (concurrency: forbid)", job.name, active.front(),
                             run_now ? "run-now" : "firing");
                return Error{"job '" + job.name + "' is still running (" + active.front() + ")" +
                                 (run_now ? "; force starts it anyway" : std::string()),
                             k_refused_overlap};
            }
            case policy::Admission::replace: {
                for (const auto& instance : active) spdlog::info("{}: replacing {} (concurrency: replace)", job.name, instance);
                kill_job(job, std::nullopt, "replaced by a new run (concurrency: replace)");
                if (spec.instance.empty()) spec.instance = new_instance(job.name);
                if (m_tracker.running(job.name).empty()) break;
                // The new run starts once the killed one has ended: on each host the wrapper's
                // lock is still held until the old instance is gone.
                m_replacing[job.name] = {std::make_shared<const Job>(job), spec};
                return spec.instance;
            }
            case policy::Admission::start:
                if (!active.empty() && force && job.concurrency == Concurrency::forbid) {
                    spdlog::warn("{}: forced run-now next to {}", job.name, active.front());
                }
                break;
        }
        if (spec.instance.empty()) spec.instance = new_instance(job.name);
        start(job, spec);
        return spec.instance;
    }

    bool kill_job(const Job& job, const std::optional<std::string>& machine,
                  const std::string& reason = "run killed on request") {
        bool any = false;
        if (!machine) {
            std::vector<std::shared_ptr<Dispatch>> mine;
            for (const auto& [instance, d] : m_dispatches) {
                if (d->job->name == job.name) mine.push_back(d);
            }
            for (const auto& d : mine) {
                if (d->waiting || d->next < d->batches.size()) any = true;
                halt(*d, reason);
            }
            if (m_replacing.erase(job.name) > 0) {
                spdlog::info("{}: the pending replacement run is cancelled ({})", job.name, reason);
                any = true;
            }
        }
        for (const RunRecord* run : m_tracker.running(job.name)) any = kill(job, run->instance, machine) || any;
        return any;
    }

    bool kill(const Job& job, const std::string& instance, const std::optional<std::string>& machine) {
        return executor_for(job).kill(instance, machine);
    }

    void maintenance_changed() {
        if (m_queue.empty() || m_stopped) {
            m_maintenance_timer.cancel();
            return;
        }
        if (m_context().maintenance.global_active(now_seconds())) {
            arm_maintenance_timer();
            return;
        }
        auto queue = std::move(m_queue);
        m_queue.clear();
        for (auto& q : queue) {
            const Job* job = m_lookup ? m_lookup(q.job) : nullptr;
            if (job == nullptr) {
                spdlog::warn("{}: queued run-now dropped: the job is no longer configured", q.job);
                continue;
            }
            spdlog::info("{}: global maintenance is over; starting the queued run-now", q.job);
            auto started = submit(*job, q.spec, q.force);
            if (!started) spdlog::warn("{}: queued run-now not started: {}", q.job, started.error().message);
        }
    }

    std::size_t queued() const noexcept { return m_queue.size(); }

    void stop() {
        m_stopped = true;
        m_queue.clear();
        m_replacing.clear();
        m_maintenance_timer.cancel();
        for (auto& [instance, d] : m_dispatches) {
            if (d->timer) d->timer->cancel();
        }
    }

    // A killed run ended: the replacement waiting for it may start now.
    void on_run_finished(const RunRecord& run) {
        auto it = m_replacing.find(run.job);
        if (it == m_replacing.end()) return;
        boost::asio::post(m_io, [this, name = run.job, life = std::weak_ptr<int>(m_life)] {
            if (life.expired() || m_stopped) return;
            auto pending = m_replacing.find(name);
            if (pending == m_replacing.end() || !m_tracker.running(name).empty()) return;
            auto [job, spec] = std::move(pending->second);
            m_replacing.erase(pending);
            spdlog::info("{}: the replaced run ended; starting {}", name, spec.instance);
            start(*job, spec);
        });
    }

    void on_target_finished(const RunRecord& run) {
        auto d = dispatch_of(run.instance);
        if (!d) return;
        // Posted: the tracker is in the middle of its own bookkeeping when it tells us.
        std::weak_ptr<Dispatch> weak = d;
        boost::asio::post(m_io, [this, weak, life = std::weak_ptr<int>(m_life)] {
            if (life.expired()) return;
            if (auto dispatch = weak.lock()) check(*dispatch);
        });
    }

private:
    Executor& executor_for(const Job& job) { return job.use_wrapper ? m_wrapper : m_legacy; }

    std::shared_ptr<Dispatch> dispatch_of(const std::string& instance) {
        auto it = m_dispatches.find(instance);
        if (it != m_dispatches.end()) return it->second;
        auto a = m_attempt_of.find(instance);
        if (a == m_attempt_of.end()) return nullptr;
        it = m_dispatches.find(a->second);
        return it == m_dispatches.end() ? nullptr : it->second;
    }

    // Unfinished runs of the job plus firings still between batches or waiting for a retry.
    std::vector<std::string> active_instances(const std::string& job) const {
        std::vector<std::string> out;
        for (const RunRecord* run : m_tracker.running(job)) out.push_back(run->instance);
        for (const auto& [instance, d] : m_dispatches) {
            if (d->job->name == job && std::find(out.begin(), out.end(), instance) == out.end()) out.push_back(instance);
        }
        auto pending = m_replacing.find(job);
        if (pending != m_replacing.end()) out.push_back(pending->second.second.instance);
        return out;
    }

    std::string new_instance(const std::string& job) {
        const auto secs = now_seconds().time_since_epoch().count();
        std::string id = job + "_" + std::to_string(secs);
        // Two runs in one second (run-now next to a firing) still get distinct ids.
        auto taken = [&](const std::string& candidate) {
            if (m_tracker.instance_taken(candidate)) return true;  // also runs of an earlier spd
            for (const auto& [name, pending] : m_replacing) {
                if (pending.second.instance == candidate) return true;
            }
            return false;
        };
        for (int n = 2; taken(id); ++n) id = job + "_" + std::to_string(secs) + "_" + std::to_string(n);
        return id;
    }

    void arm_maintenance_timer() {
        const Maintenance& m = m_context().maintenance;
        auto wait = std::chrono::steady_clock::duration(std::chrono::seconds(60));
        if (m.global_until) {
            const auto left = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                *m.global_until - std::chrono::system_clock::now());
            wait = std::max(std::chrono::steady_clock::duration::zero(), std::min(wait, left + std::chrono::milliseconds(1)));
        }
        m_maintenance_timer.expires_after(wait);
        m_maintenance_timer.async_wait([this, life = std::weak_ptr<int>(m_life)](const boost::system::error_code& ec) {
            if (ec || life.expired()) return;
            maintenance_changed();
        });
    }

    void start(const Job& job, const RunSpec& spec) {
        m_tracker.open(spec);
        auto job_copy = std::make_shared<const Job>(job);
        m_transport.ping({job.targets, job.target_type}, m_context().ping_timeout,
                         [this, job_copy, spec, life = std::weak_ptr<int>(m_life)](Result<PingReply> reply) {
                             if (life.expired()) return;
                             on_ping(job_copy, spec, std::move(reply));
                         });
    }

    void on_ping(const std::shared_ptr<const Job>& job_ptr, const RunSpec& spec, Result<PingReply> reply) {
        const Job& job = *job_ptr;
        if (m_tracker.find(spec.instance) == nullptr) return;
        if (!reply) {
            spdlog::error("[{}] test.ping failed: {}", spec.instance, reply.error().message);
            LogRecord record;
            record.type = LogRecordType::test_ping_failed;
            record.instance = spec.instance;
            record.out = "SALT-MASTER ERROR during test.ping: " + reply.error().message;
            m_tracker.log(job.name, record);
            no_machines(job, spec);
            return;
        }
        for (const auto& [minion, why] : reply->not_responding) {
            m_tracker.add_target(spec.instance, minion, false);
            m_tracker.set_result(spec.instance, minion, ExitCodeMapper::code(Outcome::no_response),
                                 "Target did not respond" + (why.empty() ? std::string() : ": " + why), false);
        }
        std::vector<std::string> minions;
        const SysSeconds now = now_seconds();
        for (const auto& minion : reply->responding) {
            if (in_maintenance(m_context().maintenance, minion, now)) {
                log_maintenance(job, spec.instance, minion);
                continue;
            }
            minions.push_back(minion);
        }
        if (minions.empty() || m_stopped) {
            if (reply->not_responding.empty()) no_machines(job, spec);
            m_tracker.launching_done(spec.instance);
            return;
        }
        // number_of_targets: the seed is the instance, so each run picks afresh but a run is
        // reproducible from its id.
        auto chosen = policy::choose_subset(minions, job.number_of_targets, policy::fnv1a(spec.instance));
        if (chosen.size() < minions.size()) {
            spdlog::info("[{}] number_of_targets: {} of {} responding target(s) chosen", spec.instance, chosen.size(),
                         minions.size());
        }
        auto d = std::make_shared<Dispatch>();
        d->job = job_ptr;
        d->spec = spec;
        d->total = static_cast<unsigned>(chosen.size());
        d->batches = policy::plan_batches(chosen, job.canary, job.batch_size);
        d->timer = std::make_unique<boost::asio::steady_timer>(m_io);
        m_dispatches[spec.instance] = d;
        if (d->batches.size() > 1) {
            spdlog::info("[{}] {} target(s) in {} batch(es){}", spec.instance, d->total, d->batches.size(),
                         job.canary > 0 ? " (canary first)" : "");
        }
        launch_next_batch(d);
    }

    void log_maintenance(const Job& job, const std::string& instance, const std::string& minion) {
        LogRecord record;
        record.type = LogRecordType::maintenance;
        record.instance = instance;
        record.machine = minion;
        record.out = "Target under maintenance";
        m_tracker.log(job.name, record);
    }

    void launch_next_batch(const std::shared_ptr<Dispatch>& d) {
        if (d->done || m_stopped) return;
        if (d->next >= d->batches.size()) {
            finish(*d);
            return;
        }
        const SysSeconds now = now_seconds();
        const Maintenance& maintenance = m_context().maintenance;
        if (d->next > 0 && maintenance.global_active(now)) {
            halt(*d, "global maintenance began");
            return;
        }
        const std::size_t index = d->next++;
        std::vector<std::string> batch;
        for (const auto& minion : d->batches[index]) {
            // The first batch was filtered right after the ping; later ones see maintenance
            // that arrived mid-run.
            if (index > 0 && in_maintenance(maintenance, minion, now)) {
                log_maintenance(*d->job, d->spec.instance, minion);
                continue;
            }
            batch.push_back(minion);
        }
        d->attempt = 0;
        d->failed_in_batch = 0;
        d->attempt_instance = d->spec.instance;
        d->attempt_minions = batch;
        const bool last = d->next >= d->batches.size();
        if (d->batches.size() > 1) {
            spdlog::info("[{}] batch {}/{}: {} target(s){}", d->spec.instance, index + 1, d->batches.size(), batch.size(),
                         index == 0 && d->job->canary > 0 ? " (canary)" : "");
        }
        if (batch.empty()) {
            if (last) m_tracker.launching_done(d->spec.instance);
            post_check(d);
            return;
        }
        d->launching = true;
        executor_for(*d->job).launch(*d->job, d->spec, std::move(batch),
                                     [this, d, last, life = std::weak_ptr<int>(m_life)] {
                                         if (life.expired()) return;
                                         d->launching = false;
                                         if (last) m_tracker.launching_done(d->spec.instance);
                                         check(*d);
                                     });
    }

    void post_check(const std::shared_ptr<Dispatch>& d) {
        boost::asio::post(m_io, [this, d, life = std::weak_ptr<int>(m_life)] {
            if (!life.expired()) check(*d);
        });
    }

    // The current attempt of the current batch: once every target has a result, retry the
    // failed ones (if any retries are left) or close the batch.
    void check(Dispatch& d) {
        if (d.done || d.launching || d.waiting || m_stopped) return;
        const RunRecord* run = m_tracker.find(d.attempt_instance);
        if (run == nullptr) {
            finish(d);
            return;
        }
        std::vector<std::string> retry;
        unsigned final_failures = 0;
        for (const auto& minion : d.attempt_minions) {
            auto it = run->targets.find(minion);
            if (it == run->targets.end() || it->second.state != TargetState::finished || !it->second.retcode) return;
            const int code = *it->second.retcode;
            if (code == 0) continue;
            if (policy::retryable(code)) {
                retry.push_back(minion);
            } else {
                ++final_failures;
            }
        }
        const RunRecord* main = m_tracker.find(d.spec.instance);
        const bool killed = run->kill_requested || (main != nullptr && main->kill_requested);
        d.failed += final_failures;
        d.failed_in_batch += final_failures;
        if (!retry.empty() && d.attempt < d.job->retries && !killed) {
            ++d.attempt;
            const auto delay = policy::retry_delay(d.attempt, d.job->retry_backoff, d.job->retry_backoff_max);
            std::string list;
            for (const auto& m : retry) list += (list.empty() ? "" : ", ") + m;
            spdlog::warn("[{}] {} target(s) failed ({}); retry {}/{} in {} s", d.spec.instance, retry.size(), list,
                         d.attempt, d.job->retries, delay.count());
            d.waiting = true;
            d.timer->expires_after(delay);
            std::weak_ptr<Dispatch> weak = m_dispatches[d.spec.instance];
            d.timer->async_wait([this, weak, retry, life = std::weak_ptr<int>(m_life)](const boost::system::error_code& ec) {
                if (ec || life.expired()) return;
                auto dispatch = weak.lock();
                if (!dispatch) return;
                dispatch->waiting = false;
                launch_retry(*dispatch, retry);
            });
            return;
        }
        d.failed += static_cast<unsigned>(retry.size());
        d.failed_in_batch += static_cast<unsigned>(retry.size());
        batch_done(d);
    }

    void launch_retry(Dispatch& d, const std::vector<std::string>& minions) {
        if (d.done || m_stopped) return;
        RunSpec spec = d.spec;
        spec.trigger = Trigger::retry;
        const std::string base = d.spec.instance + (d.batches.size() > 1 ? "_b" + std::to_string(d.next) : std::string()) +
                                 "_retry" + std::to_string(d.attempt);
        spec.instance = base;
        for (int n = 2; m_tracker.instance_taken(spec.instance); ++n) spec.instance = base + "_" + std::to_string(n);
        m_tracker.open(spec);
        m_attempt_of[spec.instance] = d.spec.instance;
        d.attempt_instance = spec.instance;
        d.attempt_minions = minions;
        d.launching = true;
        spdlog::info("[{}] retry {}/{} as {} on {} target(s)", d.spec.instance, d.attempt, d.job->retries,
                     spec.instance, minions.size());
        std::weak_ptr<Dispatch> weak = m_dispatches[d.spec.instance];
        const std::string instance = spec.instance;
        executor_for(*d.job).launch(*d.job, spec, minions, [this, weak, instance, life = std::weak_ptr<int>(m_life)] {
            if (life.expired()) return;
            m_tracker.launching_done(instance);
            if (auto dispatch = weak.lock()) {
                dispatch->launching = false;
                check(*dispatch);
            }
        });
    }

    void batch_done(Dispatch& d) {
        if (d.next >= d.batches.size()) {
            finish(d);
            return;
        }
        const Job& job = *d.job;
        const bool canary_batch = job.canary > 0 && d.next == 1;
        if (policy::should_stop(d.failed, d.total, job.max_failures, canary_batch, d.failed_in_batch)) {
            halt(d, policy::stop_reason(d.failed, d.total, job.max_failures, canary_batch, d.failed_in_batch));
            return;
        }
        auto self = m_dispatches[d.spec.instance];
        if (job.batch_wait.count() > 0) {
            d.waiting = true;
            d.timer->expires_after(job.batch_wait);
            std::weak_ptr<Dispatch> weak = self;
            d.timer->async_wait([this, weak, life = std::weak_ptr<int>(m_life)](const boost::system::error_code& ec) {
                if (ec || life.expired()) return;
                auto dispatch = weak.lock();
                if (!dispatch) return;
                dispatch->waiting = false;
                launch_next_batch(dispatch);
            });
            return;
        }
        boost::asio::post(m_io, [this, self, life = std::weak_ptr<int>(m_life)] {
            if (!life.expired()) launch_next_batch(self);
        });
    }

    // No further batch: the targets of the batches not launched get a skipped (252) result.
    void halt(Dispatch& d, const std::string& reason) {
        if (d.done) return;
        unsigned skipped = 0;
        for (std::size_t i = d.next; i < d.batches.size(); ++i) {
            for (const auto& minion : d.batches[i]) {
                m_tracker.add_target(d.spec.instance, minion, false);
                m_tracker.set_result(d.spec.instance, minion, ExitCodeMapper::code(Outcome::skipped),
                                     "Skipped: " + reason, false);
                ++skipped;
            }
        }
        const bool had_more = d.next < d.batches.size();
        d.next = d.batches.size();
        if (skipped > 0) {
            spdlog::warn("[{}] {}: {} target(s) not launched (recorded as skipped)", d.spec.instance, reason, skipped);
        }
        if (had_more) m_tracker.launching_done(d.spec.instance);
        finish(d);
    }

    void finish(Dispatch& d) {
        if (d.done) return;
        d.done = true;
        d.waiting = false;
        if (d.timer) d.timer->cancel();
        const std::string main = d.spec.instance;
        for (auto it = m_attempt_of.begin(); it != m_attempt_of.end();) {
            it = it->second == main ? m_attempt_of.erase(it) : std::next(it);
        }
        m_dispatches.erase(main);  // may destroy d: nothing after this line
    }

    void no_machines(const Job& job, const RunSpec& spec) {
        spdlog::warn("[{}] no targets matched '{}'", spec.instance, job.targets);
        LogRecord record;
        record.type = LogRecordType::no_machines;
        record.instance = spec.instance;
        m_tracker.log(job.name, record);
        m_tracker.launching_done(spec.instance);
    }

    boost::asio::io_context& m_io;
    SaltTransport& m_transport;
    RunTracker& m_tracker;
    Executor& m_wrapper;
    Executor& m_legacy;
    std::function<const LaunchContext&()> m_context;
    boost::asio::steady_timer m_maintenance_timer;
    std::map<std::string, std::shared_ptr<Dispatch>> m_dispatches;  // by main instance
    std::map<std::string, std::string> m_attempt_of;                 // retry instance -> main instance
    std::vector<Queued> m_queue;
    // Per job: the run that replaces a killed one, started when the killed one has ended.
    std::map<std::string, std::pair<std::shared_ptr<const Job>, RunSpec>> m_replacing;
    std::shared_ptr<int> m_life = std::make_shared<int>(0);  // callbacks check it: the Impl may be gone
    bool m_stopped = false;
};

Dispatcher::Dispatcher(boost::asio::io_context& io, SaltTransport& transport, RunTracker& tracker,
                       Executor& wrapper_executor, Executor& legacy_executor,
                       std::function<const LaunchContext&()> context)
    : m_impl(std::make_unique<Impl>(io, transport, tracker, wrapper_executor, legacy_executor, std::move(context))) {}
Dispatcher::~Dispatcher() = default;
void Dispatcher::set_job_lookup(std::function<const Job*(const std::string&)> lookup) {
    m_impl->m_lookup = std::move(lookup);
}
RunSpec run_spec_for(const std::string& job_name, const Job* job, std::chrono::seconds default_heartbeat) {
    RunSpec spec;
    spec.job = job_name;
    spec.heartbeat_timeout = default_heartbeat;
    spec.timeout = std::chrono::seconds{0};
    if (job != nullptr) {
        spec.group = job->group;
        spec.timeout = job->timeout;
        spec.heartbeat_timeout = job->heartbeat_timeout.value_or(default_heartbeat);
    }
    return spec;
}

Result<std::string> Dispatcher::fire(const std::string& name, Trigger trigger, std::optional<SysSeconds> scheduled,
                                     bool force) {
    if (m_impl->stopped()) return Error{"spd is stopping", ""};
    const Job* job = m_impl->m_lookup ? m_impl->m_lookup(name) : nullptr;
    if (job == nullptr) return Error{"unknown job '" + name + "'", "job"};
    RunSpec spec = run_spec_for(name, job, m_impl->context().heartbeat_timeout);
    spec.trigger = trigger;
    spec.scheduled = scheduled;
    return submit(*job, spec, force);
}

Result<std::string> Dispatcher::submit(const Job& job, RunSpec spec, bool force) {
    return m_impl->submit(job, std::move(spec), force);
}
bool Dispatcher::kill_job(const Job& job, const std::optional<std::string>& machine) {
    return m_impl->kill_job(job, machine);
}
bool Dispatcher::kill(const Job& job, const std::string& instance, const std::optional<std::string>& machine) {
    return m_impl->kill(job, instance, machine);
}
void Dispatcher::maintenance_changed() { m_impl->maintenance_changed(); }
std::size_t Dispatcher::queued() const noexcept { return m_impl->queued(); }
void Dispatcher::stop() { m_impl->stop(); }
void Dispatcher::on_target_finished(const RunRecord& run, const TargetResult& /*target*/) {
    m_impl->on_target_finished(run);
}
void Dispatcher::on_run_finished(const RunRecord& run) {
    m_impl->on_target_finished(run);
    m_impl->on_run_finished(run);
}

}  // namespace saltpeter
