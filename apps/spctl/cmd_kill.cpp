// spctl kill JOB [--machine M] [--instance I] [--wait]: ask spd to kill a job's running run(s).
#include <iostream>

#include "online.hpp"

namespace spctl {

namespace {

struct KillOptions {
    std::string job;
    std::string machine;
    std::string instance;
    bool wait = false;
};

int run_kill(const KillOptions& opts, const Context& ctx) {
    auto conn = resolve_connection(ctx);
    if (!conn) return report("kill", conn.error(), Connection{});
    saltpeter::ApiClient client(conn->options);
    std::vector<std::string> instances;
    if (!opts.instance.empty()) {
        instances.push_back(opts.instance);
    } else if (opts.wait) {
        auto job = client.job(opts.job);
        if (!job) return report("kill", job.error(), *conn);
        instances = job->running;
    }
    auto machine = opts.machine.empty() ? std::nullopt : std::optional<std::string>(opts.machine);
    auto instance = opts.instance.empty() ? std::nullopt : std::optional<std::string>(opts.instance);
    auto killed = client.kill(opts.job, machine, instance);
    if (!killed) return report("kill", killed.error(), *conn);
    if (!ctx.json) std::cout << "kill sent to " << opts.job << (instance ? " " + *instance : std::string())
                             << (machine ? " on " + *machine : std::string()) << "\n";
    if (!opts.wait) {
        if (ctx.json) std::cout << "{\"job\": \"" << opts.job << "\", \"killed\": true}\n";
        return k_exit_ok;
    }
    for (const auto& i : instances) {
        const int status = wait_for_run(client, *conn, ctx, "kill", opts.job, i, false);
        if (status == k_exit_unreachable || status == k_exit_auth) return status;
    }
    return k_exit_ok;
}

}  // namespace

void register_kill(CLI::App& app, Context& ctx) {
    auto opts = std::make_shared<KillOptions>();
    auto* cmd = app.add_subcommand("kill", "Kill the running run(s) of a job (exit 0 once spd accepted it)");
    cmd->add_option("job", opts->job, "Job name")->required();
    cmd->add_option("--machine", opts->machine, "Only this target");
    cmd->add_option("--instance", opts->instance, "Only this run");
    cmd->add_flag("--wait", opts->wait, "Wait until the killed targets have reported (143)");
    cmd->add_flag("--json", ctx.json, "Print JSON");
    cmd->footer("Exit status: 0 accepted, 3 spd unreachable, 4 token refused, 5 unknown job or run, 6 nothing running.");
    cmd->callback([opts, &ctx] { ctx.exit_code = run_kill(*opts, ctx); });
}

}  // namespace spctl
