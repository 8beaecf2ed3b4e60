#pragma once
// Wiring of spctl: one register_* function per subcommand (cmd_<name>.cpp). A subcommand's
// callback stores its exit code in Context::exit_code.

#include <CLI/CLI.hpp>

namespace spctl {

/// Exit codes shared by every command.
constexpr int k_exit_ok = 0;
constexpr int k_exit_failure = 1;  ///< the command ran and found a problem
constexpr int k_exit_usage = 2;    ///< bad arguments, unreadable input
constexpr int k_exit_unreachable = 3;  ///< spd cannot be reached (online commands)
constexpr int k_exit_auth = 4;         ///< 401/403: the token is missing, wrong or read-only
constexpr int k_exit_not_found = 5;    ///< unknown job or run
constexpr int k_exit_conflict = 6;     ///< spd refused: already running, nothing to kill, maintenance

struct Context {
    int exit_code = k_exit_ok;
    // Global options of the online commands (spctl --url URL --token TOKEN --json COMMAND).
    std::string url;
    std::string token;
    bool json = false;
};

void register_validate(CLI::App& app, Context& ctx);
void register_next(CLI::App& app, Context& ctx);
void register_import_crontab(CLI::App& app, Context& ctx);
void register_status(CLI::App& app, Context& ctx);
void register_jobs(CLI::App& app, Context& ctx);
void register_running(CLI::App& app, Context& ctx);
void register_run_now(CLI::App& app, Context& ctx);
void register_kill(CLI::App& app, Context& ctx);
void register_logs(CLI::App& app, Context& ctx);
void register_history(CLI::App& app, Context& ctx);
void register_completion(CLI::App& app, Context& ctx);

/// Parses argv, runs the chosen command and returns the process exit code.
int run(int argc, char** argv);

}  // namespace spctl
