#pragma once
// Wiring of spctl: one register_* function per subcommand (cmd_<name>.cpp). A subcommand's
// callback stores its exit code in Context::exit_code.

#include <CLI/CLI.hpp>

namespace spctl {

/// Exit codes shared by every command.
constexpr int k_exit_ok = 0;
constexpr int k_exit_failure = 1;  ///< the command ran and found a problem
constexpr int k_exit_usage = 2;    ///< bad arguments, unreadable input

struct Context {
    int exit_code = k_exit_ok;
};

void register_validate(CLI::App& app, Context& ctx);
void register_next(CLI::App& app, Context& ctx);
void register_import_crontab(CLI::App& app, Context& ctx);

/// Parses argv, runs the chosen command and returns the process exit code.
int run(int argc, char** argv);

}  // namespace spctl
