#include "spd/api_backend.hpp"

#include "runs/dispatcher.hpp"
#include "runs/observer_list.hpp"
#include "runs/run_history.hpp"
#include "runs/run_tracker.hpp"
#include "saltpeter/scheduler.hpp"

namespace saltpeter {

namespace {

class SpdBackend final : public ApiBackend {
public:
    explicit SpdBackend(SpdParts parts)
        : m_parts(std::move(parts)),
          m_history(m_parts.store != nullptr ? make_store_history(*m_parts.store, m_parts.tracker)
                                             : make_memory_history(m_parts.tracker)) {}

    const Config& config() const override { return m_parts.config; }
    double config_serial() const override { return m_parts.config_serial; }
    const std::map<std::string, RunRecord>& runs() const override { return m_parts.tracker.runs(); }
    std::vector<const RunRecord*> running(const std::string& job) const override { return m_parts.tracker.running(job); }
    const RunRecord* find_run(const std::string& instance) const override { return m_parts.tracker.find(instance); }

    // The tracker's summaries with the scheduler's pending fire time: next_run has one writer.
    std::map<std::string, JobStatus> job_status() const override {
        std::map<std::string, JobStatus> all = m_parts.tracker.job_status();
        for (const Job& job : m_parts.config.jobs) {
            if (auto next = m_parts.scheduler.next_run(job.name)) all[job.name].next_run = next;
        }
        return all;
    }
    JobStatus job_status(const std::string& job) const override {
        const auto& all = m_parts.tracker.job_status();
        auto it = all.find(job);
        JobStatus st = it != all.end() ? it->second : JobStatus{};
        if (auto next = m_parts.scheduler.next_run(job)) st.next_run = next;
        return st;
    }
    const RunHistory& history() const override { return *m_history; }
    Metrics& metrics() override { return m_parts.metrics; }
    void add_observer(std::shared_ptr<RunObserver> observer) override { m_parts.observers.add(std::move(observer)); }

    Result<std::string> run_now(const std::string& job, bool force) override { return m_parts.run_now(job, force); }

    bool kill_job(const std::string& job, const std::optional<std::string>& machine) override {
        if (const Job* cfg = m_parts.config.find(job)) return m_parts.dispatcher.kill_job(*cfg, machine);
        // A job removed from the config: its running instances can still be killed.
        bool any = false;
        for (const RunRecord* run : m_parts.tracker.running(job)) any = m_parts.tracker.kill(run->instance, machine) || any;
        return any;
    }
    bool kill_run(const std::string& instance, const std::optional<std::string>& machine) override {
        const RunRecord* run = m_parts.tracker.find(instance);
        if (run == nullptr || run->finished()) return false;
        const Job* cfg = m_parts.config.find(run->job);
        return cfg != nullptr ? m_parts.dispatcher.kill(*cfg, instance, machine) : m_parts.tracker.kill(instance, machine);
    }

private:
    SpdParts m_parts;
    std::unique_ptr<RunHistory> m_history;
};

}  // namespace

std::unique_ptr<ApiBackend> make_spd_backend(SpdParts parts) { return std::make_unique<SpdBackend>(std::move(parts)); }

}  // namespace saltpeter
