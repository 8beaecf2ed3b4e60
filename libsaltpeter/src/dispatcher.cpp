// Dispatcher: test.ping, non-responders, the maintenance filter, then the executor's launch.
#include "saltpeter/dispatcher.hpp"

#include <spdlog/spdlog.h>

#include <memory>

#include "saltpeter/exit_code_mapper.hpp"

namespace saltpeter {

namespace {

SysSeconds now_seconds() {
    return std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
}

}  // namespace

class Dispatcher::Impl {
public:
    Impl(SaltTransport& transport, RunTracker& tracker, Executor& wrapper_executor, Executor& legacy_executor,
         std::function<const LaunchContext&()> context)
        : m_transport(transport),
          m_tracker(tracker),
          m_wrapper(wrapper_executor),
          m_legacy(legacy_executor),
          m_context(std::move(context)) {}

    void start(const Job& job, const RunSpec& spec) {
        m_tracker.open(spec);
        auto job_copy = std::make_shared<Job>(job);
        m_transport.ping({job.targets, job.target_type}, m_context().ping_timeout,
                         [this, job_copy, spec](Result<PingReply> reply) { on_ping(*job_copy, spec, std::move(reply)); });
    }

    bool kill(const Job& job, const std::string& instance, const std::optional<std::string>& machine) {
        return executor_for(job).kill(instance, machine);
    }

private:
    Executor& executor_for(const Job& job) { return job.use_wrapper ? m_wrapper : m_legacy; }

    void on_ping(const Job& job, const RunSpec& spec, Result<PingReply> reply) {
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
                LogRecord record;
                record.type = LogRecordType::maintenance;
                record.instance = spec.instance;
                record.machine = minion;
                record.out = "Target under maintenance";
                m_tracker.log(job.name, record);
                continue;
            }
            minions.push_back(minion);
        }
        if (minions.empty()) {
            if (reply->not_responding.empty()) no_machines(job, spec);
            m_tracker.launching_done(spec.instance);
            return;
        }
        const std::string instance = spec.instance;
        executor_for(job).launch(job, spec, std::move(minions), [this, instance] { m_tracker.launching_done(instance); });
    }

    void no_machines(const Job& job, const RunSpec& spec) {
        spdlog::warn("[{}] no targets matched '{}'", spec.instance, job.targets);
        LogRecord record;
        record.type = LogRecordType::no_machines;
        record.instance = spec.instance;
        m_tracker.log(job.name, record);
        m_tracker.launching_done(spec.instance);
    }

    SaltTransport& m_transport;
    RunTracker& m_tracker;
    Executor& m_wrapper;
    Executor& m_legacy;
    std::function<const LaunchContext&()> m_context;
};

Dispatcher::Dispatcher(SaltTransport& transport, RunTracker& tracker, Executor& wrapper_executor,
                       Executor& legacy_executor, std::function<const LaunchContext&()> context)
    : m_impl(std::make_unique<Impl>(transport, tracker, wrapper_executor, legacy_executor, std::move(context))) {}
Dispatcher::~Dispatcher() = default;
void Dispatcher::start(const Job& job, const RunSpec& spec) { m_impl->start(job, spec); }
bool Dispatcher::kill(const Job& job, const std::string& instance, const std::optional<std::string>& machine) {
    return m_impl->kill(job, instance, machine);
}

}  // namespace saltpeter
