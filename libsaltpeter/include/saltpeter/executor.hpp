#pragma once
// Executor: launches one batch of a run on the minions the Dispatcher chose and stops it on
// request. WrapperExecutor launches sp_wrapper through Salt and follows it over the MachineHub;
// LegacyExecutor runs the command through Salt alone. Both report into the RunTracker. Io
// thread only.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "saltpeter/config.hpp"
#include "saltpeter/runs.hpp"
#include "saltpeter/salt_transport.hpp"

namespace saltpeter {

class RunTracker;

class Executor {
public:
    virtual ~Executor() = default;
    /// Launches `job` on `minions`: one batch of the run `spec`, which the Dispatcher has opened
    /// in the tracker and pinged. The executor adds each minion as a target and reports its
    /// result into the tracker; `launched` runs once (on the io thread) when the launch step of
    /// this batch is over: Salt answered for the wrapper launch, or every legacy return is in.
    /// Never throws for target or Salt trouble: that becomes per-target results.
    virtual void launch(const Job& job, const RunSpec& spec, std::vector<std::string> minions,
                        std::function<void()> launched) = 0;
    /// Kills the whole run or one machine. False when there is nothing to kill.
    virtual bool kill(const std::string& instance, const std::optional<std::string>& machine) = 0;
};

/// What the executors need from the daemon's settings, resolved once per (re)load.
struct LaunchContext {
    std::string websocket_url;       ///< ws://host:port the wrappers connect back to (wrapper mode)
    std::string wrapper_path;        ///< default when the job has none
    std::string wrapper_loglevel = "normal";
    std::string wrapper_logdir = "/var/log/sp_wrapper";
    std::string secret;              ///< HMAC key for per-target tokens; empty = no SP_TOKEN
    Maintenance maintenance;
    std::chrono::seconds ping_timeout{20};
    std::chrono::seconds launch_timeout{30};
    /// Legacy mode: returns are awaited until the job's timeout + timeout_grace; a kill sends
    /// saltutil.kill_job kill_grace after saltutil.term_job.
    std::chrono::seconds timeout_grace{30};
    std::chrono::seconds kill_grace{30};
    /// heartbeat_timeout of jobs that set none.
    std::chrono::seconds heartbeat_timeout{15};
    /// For jobs with their own saltpeter_server_host: ws or wss, and the machines port.
    std::string websocket_scheme = "ws";
    std::uint16_t machines_port = 8889;
};

std::unique_ptr<Executor> make_wrapper_executor(SaltTransport& transport, RunTracker& tracker,
                                                std::function<const LaunchContext&()> context);
std::unique_ptr<Executor> make_legacy_executor(SaltTransport& transport, RunTracker& tracker,
                                               std::function<const LaunchContext&()> context);

/// The SP_* environment of a wrapper launch in the original's order (PROTOCOL.md 2.3), then the
/// job's env. The per-target SP_TOKEN and SP_MACHINE_ID are not included.
std::vector<std::pair<std::string, std::string>> wrapper_environment(const Job& job, const RunSpec& spec,
                                                                     const LaunchContext& context);

/// True when `minion` is in maintenance at `now` (an id or a target expression entry).
bool in_maintenance(const Maintenance& maintenance, const std::string& minion, SysSeconds now);

}  // namespace saltpeter
