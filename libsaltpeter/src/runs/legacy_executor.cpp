// LegacyExecutor: runs the command through Salt alone (use_wrapper: false, PROTOCOL.md 2.4):
// cmd.run_all published asynchronously to the batch, returns followed by the transport until
// every target answered or the job's timeout + timeout_grace passed. Kill: saltutil.term_job,
// saltutil.kill_job after kill_grace, result 143.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>

#include "salt/legacy_result.hpp"
#include "saltpeter/executor.hpp"
#include "runs/run_tracker.hpp"

namespace saltpeter {

namespace {

// The tracker gives its own 124 verdict at timeout + timeout_grace; the transport's last poll is
// placed a little before that, so that a target that never returned gets Salt's answer (255).
constexpr std::chrono::seconds k_follow_margin{5};

class LegacyExecutor final : public Executor {
public:
    LegacyExecutor(SaltTransport& transport, RunTracker& tracker, std::function<const LaunchContext&()> context)
        : m_transport(transport), m_tracker(tracker), m_context(std::move(context)) {}

    bool kill(const std::string& instance, const std::optional<std::string>& machine) override {
        const RunRecord* run = m_tracker.find(instance);
        if (run == nullptr || run->finished()) return false;
        bool any = false;
        const auto grace = m_context().kill_grace;
        for (auto& [job_id, batch] : m_batches) {
            if (batch.instance != instance) continue;
            std::vector<std::string> minions;
            for (const auto& m : batch.minions) {
                auto t = run->targets.find(m);
                if (t == run->targets.end() || t->second.state == TargetState::finished) continue;
                if (machine && *machine != m) continue;
                if (batch.killed.insert(m).second) minions.push_back(m);
            }
            if (minions.empty()) continue;
            spdlog::info("[{}] kill requested: saltutil.term_job on {} target(s)", instance, minions.size());
            m_transport.terminate(job_id, minions, grace);
            any = true;
        }
        return any;
    }

    void launch(const Job& job, const RunSpec& spec, std::vector<std::string> minions,
                std::function<void()> launched) override {
        const LaunchContext& ctx = m_context();
        CommandRequest request;
        request.command = job.command;
        request.cwd = job.cwd.value_or("");
        request.runas = job.user.value_or("");
        // The YAML env is not passed in legacy mode (PROTOCOL.md 2.4).
        request.env = {{"SP_JOB_NAME", job.name}, {"SP_JOB_INSTANCE_NAME", spec.instance}};
        if (job.timeout.count() > 0) {
            request.timeout = job.timeout;
            const auto margin = std::min(k_follow_margin, ctx.timeout_grace / 2);
            request.follow_for = job.timeout + ctx.timeout_grace - margin;
        }
        for (const auto& minion : minions) m_tracker.add_target(spec.instance, minion, false);
        request.minions = std::move(minions);
        const std::string instance = spec.instance;
        spdlog::info("[{}] legacy: cmd.run_all on {} target(s) through {}", instance, request.minions.size(),
                     m_transport.name());
        auto id = std::make_shared<TransportJob>(0);
        *id = m_transport.run_async(
            request,
            [this, instance, id, command = job.command](MinionReturn ret) {
                auto it = m_batches.find(*id);
                const bool killed = it != m_batches.end() && it->second.killed.count(ret.minion) != 0;
                auto result = detail::legacy_result(ret, command, killed);
                m_tracker.set_result(instance, ret.minion, result.code, result.output, false);
            },
            [this, id, launched = std::move(launched)] {
                m_batches.erase(*id);
                launched();
            });
        Batch& batch = m_batches[*id];
        batch.instance = instance;
        batch.minions = request.minions;
    }

private:
    struct Batch {
        std::string instance;
        std::vector<std::string> minions;
        std::set<std::string> killed;
    };

    SaltTransport& m_transport;
    RunTracker& m_tracker;
    std::function<const LaunchContext&()> m_context;
    std::map<TransportJob, Batch> m_batches;  ///< batches whose returns are still followed
};

}  // namespace

std::unique_ptr<Executor> make_legacy_executor(SaltTransport& transport, RunTracker& tracker,
                                               std::function<const LaunchContext&()> context) {
    return std::make_unique<LegacyExecutor>(transport, tracker, std::move(context));
}

}  // namespace saltpeter
