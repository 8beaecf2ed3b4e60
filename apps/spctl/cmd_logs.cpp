// spctl logs JOB [--instance I] [--machine M] [--follow]: the output of the last (or given) run.
#include <iostream>

#include "online.hpp"

namespace spctl {

namespace {

struct LogsOptions {
    std::string job;
    std::string instance;
    std::string machine;
    bool follow = false;
};

int run_logs(const LogsOptions& opts, const Context& ctx) {
    auto conn = resolve_connection(ctx);
    if (!conn) return report("logs", conn.error(), Connection{});
    saltpeter::ApiClient client(conn->options);
    std::string instance = opts.instance;
    if (instance.empty()) {
        auto job = client.job(opts.job);
        if (!job) return report("logs", job.error(), *conn);
        if (job->last_instance.empty()) {
            std::cerr << "spctl logs: job '" << opts.job << "' has no run that spd remembers\n";
            return k_exit_not_found;
        }
        instance = job->last_instance;
    }
    const auto machine = opts.machine.empty() ? std::nullopt : std::optional<std::string>(opts.machine);
    if (ctx.json && !opts.follow) {
        std::string path = "/runs/" + instance + "/output";
        if (machine) path += "?machine=" + *machine;
        auto body = client.get(path);
        if (!body) return report("logs", body.error(), *conn);
        std::cout << *body << "\n";
        return k_exit_ok;
    }
    if (opts.follow) {
        LinePrefixer lines;
        auto run = client.follow(opts.job, instance, [&](const std::string& m, std::string_view text) {
            if (!machine || *machine == m) lines.add(m, text);
        });
        lines.flush();
        if (!run) return report("logs", run.error(), *conn);
        return k_exit_ok;
    }
    auto outputs = client.output(instance, machine);
    if (!outputs) return report("logs", outputs.error(), *conn);
    LinePrefixer lines;
    for (const auto& [m, text] : *outputs) lines.add(m, text);
    lines.flush();
    return k_exit_ok;
}

}  // namespace

void register_logs(CLI::App& app, Context& ctx) {
    auto opts = std::make_shared<LogsOptions>();
    auto* cmd = app.add_subcommand("logs", "Output of a job's last (or given) run, as 'machine | line'");
    cmd->add_option("job", opts->job, "Job name")->required();
    cmd->add_option("--instance", opts->instance, "This run instead of the last one");
    cmd->add_option("--machine", opts->machine, "Only this target");
    cmd->add_flag("-f,--follow", opts->follow, "Keep streaming until the run ends");
    cmd->add_flag("--json", ctx.json, "Print the API's JSON (GET /runs/{instance}/output)");
    cmd->callback([opts, &ctx] { ctx.exit_code = run_logs(*opts, ctx); });
}

}  // namespace spctl
