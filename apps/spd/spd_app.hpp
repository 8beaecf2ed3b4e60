#pragma once

namespace spd {
/// Parses the command line, runs the daemon until SIGTERM/SIGINT (or the --run-once job ends)
/// and returns the exit code: 0 clean stop, 1 start-up failure, 2 bad arguments.
int run(int argc, char** argv);
}  // namespace spd
