// What both executors share: the maintenance test and the wrapper environment.
#include <algorithm>
#include <memory>

#include "saltpeter/executor.hpp"
#include "saltpeter/targeting.hpp"

namespace saltpeter {

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

}  // namespace saltpeter
