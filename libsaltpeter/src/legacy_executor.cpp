// LegacyExecutor: runs the command through Salt alone (use_wrapper: false, PROTOCOL.md 2.4).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <memory>

#include "saltpeter/exit_code_mapper.hpp"
#include "saltpeter/executor.hpp"
#include "saltpeter/machine_hub.hpp"

namespace saltpeter {

namespace {

class LegacyExecutor final : public Executor {
public:
    LegacyExecutor(SaltTransport& transport, RunTracker& tracker, std::function<const LaunchContext&()> context)
        : m_transport(transport), m_tracker(tracker), m_context(std::move(context)) {}

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

    void launch(const Job& job, const RunSpec& spec, std::vector<std::string> minions,
                std::function<void()> launched) override {
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
            [this, instance, launched = std::move(launched)] {
                m_jobs.erase(instance);
                m_killed.erase(instance);
                launched();
            });
    }

private:
    SaltTransport& m_transport;
    RunTracker& m_tracker;
    std::function<const LaunchContext&()> m_context;
    std::map<std::string, TransportJob> m_jobs;
    std::map<std::string, std::vector<std::string>> m_killed;
};

}  // namespace

std::unique_ptr<Executor> make_legacy_executor(SaltTransport& transport, RunTracker& tracker,
                                               std::function<const LaunchContext&()> context) {
    return std::make_unique<LegacyExecutor>(transport, tracker, std::move(context));
}

}  // namespace saltpeter
