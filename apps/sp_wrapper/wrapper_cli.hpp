#pragma once

namespace sp_wrapper {
/// Parses flags (mirroring the SP_* variables, which they override), checks the settings,
/// prints the launch lines, detaches unless --foreground, and runs the wrapper.
/// Returns the process exit code. Thread: main.
int run_cli(int argc, char** argv);
}  // namespace sp_wrapper
