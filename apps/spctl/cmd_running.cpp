// spctl running: the runs that have not ended, with targets done/total.
#include <iostream>

#include "online.hpp"

namespace spctl {

namespace {

int run_running(const Context& ctx) {
    auto conn = resolve_connection(ctx);
    if (!conn) return report("running", conn.error(), Connection{});
    saltpeter::ApiClient client(conn->options);
    if (ctx.json) {
        auto body = client.get("/running");
        if (!body) return report("running", body.error(), *conn);
        std::cout << *body << "\n";
        return k_exit_ok;
    }
    auto jobs = client.jobs();
    if (!jobs) return report("running", jobs.error(), *conn);
    std::vector<std::vector<std::string>> rows{{"INSTANCE", "JOB", "STARTED", "TARGETS DONE", "MACHINES"}};
    for (const auto& j : *jobs) {
        for (const auto& instance : j.running) {
            auto run = client.run(instance);
            if (!run) continue;  // ended in between
            std::size_t done = 0;
            std::string machines;
            for (const auto& t : run->targets) {
                done += t.state == "finished" ? 1 : 0;
                machines += (machines.empty() ? "" : ",") + t.machine;
            }
            rows.push_back({instance, j.name, short_time(run->started),
                            std::to_string(done) + "/" + std::to_string(run->targets.size()), machines});
        }
    }
    if (rows.size() == 1) {
        std::cout << "nothing is running\n";
        return k_exit_ok;
    }
    print_table(rows);
    return k_exit_ok;
}

}  // namespace

void register_running(CLI::App& app, Context& ctx) {
    auto* cmd = app.add_subcommand("running", "List the runs that have not ended");
    cmd->add_flag("--json", ctx.json, "Print the API's JSON (GET /running)");
    cmd->callback([&ctx] { ctx.exit_code = run_running(ctx); });
}

}  // namespace spctl
