// WrapperExecutor: launches sp_wrapper through Salt; the MachineHub and RunTracker follow it.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <memory>

#include "saltpeter/exit_code_mapper.hpp"
#include "saltpeter/executor.hpp"
#include "runs/run_tracker.hpp"
#include "runs/machine_hub.hpp"

namespace saltpeter {

namespace {

class WrapperExecutor final : public Executor {
public:
    WrapperExecutor(SaltTransport& transport, RunTracker& tracker, std::function<const LaunchContext&()> context)
        : m_transport(transport), m_tracker(tracker), m_context(std::move(context)) {}

    bool kill(const std::string& instance, const std::optional<std::string>& machine) override {
        return m_tracker.kill(instance, machine);
    }

    void launch(const Job& job, const RunSpec& spec, std::vector<std::string> minions,
                std::function<void()> launched) override {
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
            [launched = std::move(launched)] { launched(); });
    }

private:
    SaltTransport& m_transport;
    RunTracker& m_tracker;
    std::function<const LaunchContext&()> m_context;
};

}  // namespace

std::unique_ptr<Executor> make_wrapper_executor(SaltTransport& transport, RunTracker& tracker,
                                                std::function<const LaunchContext&()> context) {
    return std::make_unique<WrapperExecutor>(transport, tracker, std::move(context));
}

}  // namespace saltpeter
