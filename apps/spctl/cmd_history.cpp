// spctl history JOB [--limit N]: past runs with per-target exit codes and durations.
#include <cstdio>
#include <iostream>

#include "online.hpp"

namespace spctl {

namespace {

struct HistoryOptions {
    std::string job;
    std::size_t limit = 20;
};

int run_history(const HistoryOptions& opts, const Context& ctx) {
    auto conn = resolve_connection(ctx);
    if (!conn) return report("history", conn.error(), Connection{});
    saltpeter::ApiClient client(conn->options);
    if (ctx.json) {
        auto body = client.get("/jobs/" + opts.job + "/runs?limit=" + std::to_string(opts.limit));
        if (!body) return report("history", body.error(), *conn);
        std::cout << *body << "\n";
        return k_exit_ok;
    }
    auto runs = client.history(opts.job, opts.limit);
    if (!runs) return report("history", runs.error(), *conn);
    std::vector<std::vector<std::string>> rows{{"INSTANCE", "STARTED", "TRIGGER", "RESULT", "TARGETS (exit, duration)"}};
    for (const auto& r : *runs) {
        std::string targets;
        for (const auto& t : r.targets) {
            char duration[32] = "-";
            if (t.duration) std::snprintf(duration, sizeof duration, "%.1fs", *t.duration);
            targets += (targets.empty() ? "" : " ") + t.machine + "=" +
                       (t.retcode ? std::to_string(*t.retcode) : std::string("?")) + "(" + duration + ")";
        }
        const std::string result = !r.finished ? colour("running", 33) : r.success ? colour("ok", 32) : colour("failed", 31);
        rows.push_back({r.instance, short_time(r.started), r.trigger, result, targets});
    }
    if (rows.size() == 1) {
        std::cout << "no runs of " << opts.job << " in spd's history\n";
        return k_exit_ok;
    }
    print_table(rows);
    return k_exit_ok;
}

}  // namespace

void register_history(CLI::App& app, Context& ctx) {
    auto opts = std::make_shared<HistoryOptions>();
    auto* cmd = app.add_subcommand("history", "Past runs of a job with per-target exit codes and durations");
    cmd->add_option("job", opts->job, "Job name")->required();
    cmd->add_option("--limit", opts->limit, "At most this many runs, newest first")->capture_default_str();
    cmd->add_flag("--json", ctx.json, "Print the API's JSON (GET /jobs/{name}/runs)");
    cmd->callback([opts, &ctx] { ctx.exit_code = run_history(*opts, ctx); });
}

}  // namespace spctl
