// spctl jobs: the configured jobs with schedule, targets and command.
#include <iostream>

#include "online.hpp"

namespace spctl {

namespace {

int run_jobs(const Context& ctx) {
    auto conn = resolve_connection(ctx);
    if (!conn) return report("jobs", conn.error(), Connection{});
    saltpeter::ApiClient client(conn->options);
    if (ctx.json) {
        auto body = client.get("/jobs");
        if (!body) return report("jobs", body.error(), *conn);
        std::cout << *body << "\n";
        return k_exit_ok;
    }
    auto jobs = client.jobs();
    if (!jobs) return report("jobs", jobs.error(), *conn);
    std::vector<std::vector<std::string>> rows{{"NAME", "GROUP", "SCHEDULE", "TZ", "TARGETS", "COMMAND"}};
    for (const auto& j : *jobs) rows.push_back({j.name, j.group, j.schedule, j.timezone, j.targets, j.command});
    print_table(rows);
    return k_exit_ok;
}

}  // namespace

void register_jobs(CLI::App& app, Context& ctx) {
    auto* cmd = app.add_subcommand("jobs", "List the jobs spd has loaded");
    cmd->add_flag("--json", ctx.json, "Print the API's JSON (GET /jobs)");
    cmd->callback([&ctx] { ctx.exit_code = run_jobs(ctx); });
}

}  // namespace spctl
