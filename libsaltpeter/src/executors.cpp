// WrapperExecutor and LegacyExecutor: test.ping, the maintenance filter, then the launch.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>

#include "saltpeter/exit_code_mapper.hpp"
#include "saltpeter/executor.hpp"
#include "saltpeter/machine_hub.hpp"
#include "saltpeter/targeting.hpp"

namespace saltpeter {

namespace {

SysSeconds now_seconds() {
    return std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
}

}  // namespace

bool in_maintenance(const Maintenance& maintenance, const std::string& minion, SysSeconds now) {
    for (const auto& entry : maintenance.machines) {
        if (entry.until && *entry.until <= now) continue;
        if (entry.target == minion) return true;
        // An entry that is not a plain id is a target expression (glob or compound).
        const bool compound = entry.target.find('@') != std::string::npos || entry.target.find(' ') != std::string::npos;
        auto matcher = TargetMatcher::compile(entry.target, compound ? TargetType::compound : TargetType::glob);
        if (matcher && matcher->matches(minion)) return true;
    }
    return false;
}

std::vector<std::pair<std::string, std::string>> wrapper_environment(const Job& job, const RunSpec& spec,
                                                                     const LaunchContext& context) {
    std::vector<std::pair<std::string, std::string>> env = {
        {"SP_WEBSOCKET_URL", job.saltpeter_server_host
                                 ? context.websocket_scheme + "://" + *job.saltpeter_server_host + ":" +
                                       std::to_string(context.machines_port)
                                 : context.websocket_url},
        {"SP_JOB_NAME", job.name},
        {"SP_JOB_INSTANCE_NAME", spec.instance},
        {"SP_JOB_INSTANCE", spec.instance},
        {"SP_COMMAND", job.command},
        {"SP_WRAPPER_LOGLEVEL", job.wrapper_loglevel.value_or(context.wrapper_loglevel)},
        {"SP_WRAPPER_LOGDIR", job.wrapper_logdir.value_or(context.wrapper_logdir)},
        {"SP_ALLOW_OVERLAP", job.concurrency == Concurrency::forbid ? "false" : "true"},
        {"PYTHONUNBUFFERED", "1"},
    };
    if (job.lockfile) env.emplace_back("SP_LOCKFILE", *job.lockfile);
    if (job.cwd) env.emplace_back("SP_CWD", *job.cwd);
    if (job.user) env.emplace_back("SP_USER", *job.user);
    env.emplace_back("SP_TIMEOUT", std::to_string(job.timeout.count()));
    for (const auto& kv : job.env) env.push_back(kv);
    return env;
}

namespace {

// The common first half of a run: open it, test.ping, sort out non-responders and machines in
// maintenance; then hand the remaining minions to `launch`.
class PingingExecutor : public Executor {
public:
    PingingExecutor(SaltTransport& transport, RunTracker& tracker, std::function<const LaunchContext&()> context)
        : m_transport(transport), m_tracker(tracker), m_context(std::move(context)) {}

    void start(const Job& job, const RunSpec& spec) override {
        m_tracker.open(spec);
        auto job_copy = std::make_shared<Job>(job);
        m_transport.ping({job.targets, job.target_type}, m_context().ping_timeout,
                         [this, job_copy, spec](Result<PingReply> reply) { on_ping(*job_copy, spec, std::move(reply)); });
    }

protected:
    virtual void launch(const Job& job, const RunSpec& spec, std::vector<std::string> minions) = 0;

    SaltTransport& m_transport;
    RunTracker& m_tracker;
    std::function<const LaunchContext&()> m_context;

private:
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
        launch(job, spec, std::move(minions));
    }

    void no_machines(const Job& job, const RunSpec& spec) {
        spdlog::warn("[{}] no targets matched '{}'", spec.instance, job.targets);
        LogRecord record;
        record.type = LogRecordType::no_machines;
        record.instance = spec.instance;
        m_tracker.log(job.name, record);
        m_tracker.launching_done(spec.instance);
    }
};

class WrapperExecutor final : public PingingExecutor {
public:
    using PingingExecutor::PingingExecutor;

    bool kill(const std::string& instance, const std::optional<std::string>& machine) override {
        return m_tracker.kill(instance, machine);
    }

private:
    void launch(const Job& job, const RunSpec& spec, std::vector<std::string> minions) override {
        const LaunchContext& ctx = m_context();
        RunAllRequest request;
        request.argv = {job.wrapper_path.value_or(ctx.wrapper_path)};
        request.env = wrapper_environment(job, spec, ctx);
        request.timeout = ctx.launch_timeout;
        for (const auto& minion : minions) {
            m_tracker.add_target(spec.instance, minion, true);
            auto& extra = request.minion_env[minion];
            extra.emplace_back("SP_MACHINE_ID", minion);
            if (!ctx.secret.empty()) extra.emplace_back("SP_TOKEN", wrapper_token(ctx.secret, spec.instance, minion));
        }
        request.minions = std::move(minions);
        const std::string instance = spec.instance;
        spdlog::info("[{}] launching {} on {} target(s) through {}", instance, request.argv.front(),
                     request.minions.size(), m_transport.name());
        m_transport.run_all(
            request,
            [this, instance](MinionReturn ret) {
                // Immediate failure detection (PROTOCOL.md 5.1): Salt's own retcode for the launch
                // is the target's result at once; no need to wait for the startup window.
                if (!ret.returned || !ret.error.empty()) {
                    m_tracker.set_result(instance, ret.minion, ExitCodeMapper::code(Outcome::never_started),
                                         "Salt execution error:\n" + ret.error, true);
                } else if (ret.retcode != 0) {
                    std::string text = ret.stderr_text;
                    if (!ret.stdout_text.empty()) text += (text.empty() ? "" : "\n") + ret.stdout_text;
                    m_tracker.set_result(instance, ret.minion, ret.retcode, "Salt execution error:\n" + text, true);
                } else {
                    m_tracker.mark_launched(instance, ret.minion);
                }
            },
            [this, instance] { m_tracker.launching_done(instance); });
    }
};

class LegacyExecutor final : public PingingExecutor {
public:
    using PingingExecutor::PingingExecutor;

    bool kill(const std::string& instance, const std::optional<std::string>& machine) override {
        const RunRecord* run = m_tracker.find(instance);
        auto it = m_jobs.find(instance);
        if (run == nullptr || run->finished() || it == m_jobs.end()) return false;
        std::vector<std::string> minions;
        for (const auto& [m, t] : run->targets) {
            if (t.state != TargetState::finished && (!machine || *machine == m)) minions.push_back(m);
        }
        if (minions.empty()) return false;
        for (const auto& m : minions) m_killed[instance].push_back(m);
        m_transport.terminate(it->second, minions, std::chrono::seconds(5));
        return true;
    }

private:
    void launch(const Job& job, const RunSpec& spec, std::vector<std::string> minions) override {
        RunAllRequest request;
        request.argv = {"/bin/sh", "-c", job.command};
        request.cwd = job.cwd.value_or("");
        request.runas = job.user.value_or("");
        request.timeout = job.timeout.count() > 0 ? job.timeout : std::chrono::seconds(0);
        for (const auto& minion : minions) m_tracker.add_target(spec.instance, minion, false);
        request.minions = std::move(minions);
        const std::string instance = spec.instance;
        m_jobs[instance] = m_transport.run_all(
            request,
            [this, instance](MinionReturn ret) {
                auto& killed = m_killed[instance];
                const bool was_killed = std::find(killed.begin(), killed.end(), ret.minion) != killed.end();
                if (was_killed) {
                    m_tracker.set_result(instance, ret.minion, ExitCodeMapper::code(Outcome::killed),
                                         ret.stdout_text + "\n[Job terminated by user request]\n", false);
                } else if (!ret.returned) {
                    m_tracker.set_result(instance, ret.minion, ExitCodeMapper::code(Outcome::no_response),
                                         "Target did not return anything", false);
                } else if (!ret.error.empty()) {
                    m_tracker.set_result(instance, ret.minion, ExitCodeMapper::code(Outcome::unknown_error), ret.error,
                                         false);
                } else {
                    std::string text = ret.stdout_text;
                    if (!ret.stderr_text.empty()) text += (text.empty() ? "" : "\n") + ret.stderr_text;
                    m_tracker.set_result(instance, ret.minion, ret.retcode, text, false);
                }
            },
            [this, instance] {
                m_jobs.erase(instance);
                m_killed.erase(instance);
                m_tracker.launching_done(instance);
            });
    }

    std::map<std::string, TransportJob> m_jobs;
    std::map<std::string, std::vector<std::string>> m_killed;
};

}  // namespace

std::unique_ptr<Executor> make_wrapper_executor(SaltTransport& transport, RunTracker& tracker,
                                                std::function<const LaunchContext&()> context) {
    return std::make_unique<WrapperExecutor>(transport, tracker, std::move(context));
}

std::unique_ptr<Executor> make_legacy_executor(SaltTransport& transport, RunTracker& tracker,
                                               std::function<const LaunchContext&()> context) {
    return std::make_unique<LegacyExecutor>(transport, tracker, std::move(context));
}

}  // namespace saltpeter
