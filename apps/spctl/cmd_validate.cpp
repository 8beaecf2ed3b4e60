// spctl validate [-c DIR]: every problem of the config directory, one per line, then a summary.
#include <chrono>
#include <iostream>

#include "saltpeter/config.hpp"
#include "spctl.hpp"

namespace spctl {

namespace {

struct ValidateOptions {
    std::string dir = "/etc/saltpeter";
};

int run_validate(const ValidateOptions& opts) {
    auto loaded = saltpeter::load_config_dir(opts.dir);
    if (!loaded) {
        std::cerr << "spctl validate: " << loaded.error().message << "\n";
        return k_exit_usage;
    }
    const auto now = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
    auto problems = loaded->problems;
    for (auto& p : saltpeter::validate_schedules(loaded->config, now)) problems.push_back(std::move(p));

    std::size_t errors = 0;
    std::size_t warnings = 0;
    for (const auto& p : problems) {
        std::cout << p.to_string() << "\n";
        (p.is_error() ? errors : warnings) += 1;
    }
    const std::size_t jobs = loaded->config.jobs.size();
    std::cout << jobs << (jobs == 1 ? " job, " : " jobs, ") << errors << (errors == 1 ? " problem" : " problems");
    if (warnings > 0) std::cout << ", " << warnings << (warnings == 1 ? " warning" : " warnings");
    std::cout << "\n";
    return errors == 0 ? k_exit_ok : k_exit_failure;
}

}  // namespace

void register_validate(CLI::App& app, Context& ctx) {
    auto opts = std::make_shared<ValidateOptions>();
    auto* cmd = app.add_subcommand("validate", "Check every job file of a config directory (offline)");
    cmd->add_option("-c,--configdir", opts->dir, "Config directory")->capture_default_str();
    cmd->footer("Exit status: 0 no problem (warnings allowed), 1 problems found, 2 directory unreadable.");
    cmd->callback([opts, &ctx] { ctx.exit_code = run_validate(*opts); });
}

}  // namespace spctl
