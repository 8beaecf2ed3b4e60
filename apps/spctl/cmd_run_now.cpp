// spctl run-now JOB [--wait] [--follow]: start a run; optionally wait for it (progress, exit
// status = the highest target exit code) and stream its output as "machine | line".
#include <unistd.h>

#include <iostream>

#include "online.hpp"

namespace spctl {

namespace {

struct RunNowOptions {
    std::string job;
    bool wait = false;
    bool follow = false;
    bool force = false;
};

void print_results(const saltpeter::RunInfo& run) {
    for (const auto& t : run.targets) {
        const int code = t.retcode.value_or(-1);
        std::string text = t.machine + ": exit " + (t.retcode ? std::to_string(code) : std::string("?"));
        std::cerr << (code == 0 ? colour(text, 32) : colour(text, 31)) << "\n";
    }
}

}  // namespace

int wait_for_run(saltpeter::ApiClient& client, const Connection& conn, const Context& ctx, const std::string& command,
                 const std::string& job, const std::string& instance, bool follow) {
    LinePrefixer lines;
    const bool live = ::isatty(STDERR_FILENO) == 1 && !ctx.json;
    auto on_output = [&](const std::string& machine, std::string_view text) {
        if (follow && !ctx.json) lines.add(machine, text);
    };
    auto on_update = [&](const saltpeter::RunInfo& run) {
        if (!live) return;
        std::size_t done = 0;
        for (const auto& t : run.targets) done += t.state == "finished" ? 1 : 0;
        std::cerr << "\r" << instance << ": " << done << "/" << run.targets.size() << " targets done" << std::flush;
    };
    auto run = client.follow(job, instance, on_output, on_update);
    if (live) std::cerr << "\r\033[K" << std::flush;
    lines.flush();
    if (!run) return report(command, run.error(), conn);
    if (ctx.json) {
        auto body = client.get("/runs/" + instance);
        if (body) std::cout << *body << "\n";
    } else {
        print_results(*run);
    }
    return run_exit_status(*run);
}

namespace {

int run_run_now(const RunNowOptions& opts, const Context& ctx) {
    auto conn = resolve_connection(ctx);
    if (!conn) return report("run-now", conn.error(), Connection{});
    saltpeter::ApiClient client(conn->options);
    auto instance = client.run_now(opts.job, opts.force);
    if (!instance && instance.error().field == "queued") {
        // Not an error: spd starts it when global maintenance ends.
        if (ctx.json) std::cout << "{\"job\": \"" << opts.job << "\", \"queued\": true}\n";
        else std::cout << opts.job << ": queued: " << instance.error().message << "\n";
        return k_exit_ok;
    }
    if (!instance) return report("run-now", instance.error(), *conn);
    if (!opts.wait && !opts.follow) {
        if (ctx.json) std::cout << "{\"instance\": \"" << *instance << "\", \"job\": \"" << opts.job << "\"}\n";
        else std::cout << *instance << "\n";
        return k_exit_ok;
    }
    if (!ctx.json) (opts.follow ? std::cerr : std::cout) << *instance << std::endl;
    return wait_for_run(client, *conn, ctx, "run-now", opts.job, *instance, opts.follow);
}

}  // namespace

void register_run_now(CLI::App& app, Context& ctx) {
    auto opts = std::make_shared<RunNowOptions>();
    auto* cmd = app.add_subcommand("run-now", "Start a job now and print its instance id");
    cmd->add_option("job", opts->job, "Job name")->required();
    cmd->add_flag("--wait", opts->wait, "Wait for the end: progress on a tty, exit 0 when every target succeeded, "
                                        "else the highest target exit code");
    cmd->add_flag("--follow", opts->follow, "Stream the output as 'machine | line' until the run ends (implies --wait)");
    cmd->add_flag("--force", opts->force, "Start even if the job (concurrency: forbid) is still running; the host lock "
                                          "of sp_wrapper still applies");
    cmd->add_flag("--json", ctx.json, "Print JSON (the instance, or the finished run with --wait)");
    cmd->footer("Exit status: 0 started (or succeeded with --wait), the highest target code with --wait, "
                "3 spd unreachable, 4 token refused, 5 unknown job, 6 refused (running, maintenance).");
    cmd->callback([opts, &ctx] { ctx.exit_code = run_run_now(*opts, ctx); });
}

}  // namespace spctl
