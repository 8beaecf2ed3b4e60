// spctl status: one line per job (name, group, schedule, next run, last run, result, running targets).
#include <iostream>

#include "online.hpp"

namespace spctl {

namespace {

int run_status(const Context& ctx) {
    auto conn = resolve_connection(ctx);
    if (!conn) return report("status", conn.error(), Connection{});
    saltpeter::ApiClient client(conn->options);
    if (ctx.json) {
        auto body = client.get("/jobs");
        if (!body) return report("status", body.error(), *conn);
        std::cout << *body << "\n";
        return k_exit_ok;
    }
    auto jobs = client.jobs();
    if (!jobs) return report("status", jobs.error(), *conn);
    std::vector<std::vector<std::string>> rows{{"NAME", "GROUP", "SCHEDULE", "NEXT RUN", "LAST RUN", "RESULT", "RUNNING"}};
    for (const auto& j : *jobs) {
        std::string result = "-";
        if (!j.running.empty()) result = colour("running", 33);
        else if (j.last_success) result = *j.last_success ? colour("ok", 32) : colour("failed", 31);
        rows.push_back({j.name, j.group, j.schedule, short_time(j.next_run), short_time(j.last_run), result,
                        j.targets_running ? std::to_string(j.targets_running) : "-"});
    }
    print_table(rows);
    return k_exit_ok;
}

}  // namespace

void register_status(CLI::App& app, Context& ctx) {
    auto* cmd = app.add_subcommand("status", "Table of jobs: schedule, next and last run, result, running targets");
    cmd->add_flag("--json", ctx.json, "Print the API's JSON (GET /jobs)");
    cmd->callback([&ctx] { ctx.exit_code = run_status(ctx); });
}

}  // namespace spctl
