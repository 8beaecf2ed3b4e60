#pragma once
// ProcessRunner: runs one child process in its own process group with stdout and stderr merged
// on one pipe, reports its output and exit asynchronously on a caller's io_context. Shared by
// sp_wrapper, the salt CLI transport and the local transport.

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "saltpeter/result.hpp"

namespace saltpeter {

/// What to run. argv is passed to execve as is (no shell interpolation by the runner).
struct ProcessSpec {
    std::vector<std::string> argv;  ///< argv[0] is the program path (absolute, or found in PATH)
    std::vector<std::string> env;   ///< the complete environment, "KEY=VALUE" each
    std::string cwd;                ///< working directory; empty = inherit
    std::string user;               ///< run as this user (needs root); empty = current user
};

/// Callbacks, all on the io_context thread.
struct ProcessCallbacks {
    std::function<void(std::string_view bytes)> on_output;  ///< a piece of the merged output
    std::function<void()> on_output_end;                    ///< EOF on the pipe (every writer gone)
    std::function<void(int wait_status)> on_exit;           ///< the child was reaped (waitpid status)
};

class ProcessRunner {
public:
    virtual ~ProcessRunner() = default;
    /// Forks and execs. Returns the child's pid (also its process group id). Errors before exec
    /// (unknown user, bad cwd, exec failure, no permission to switch user) come back as an Error
    /// with a clear message and no callback fires. Call once per runner.
    virtual Result<int> start(const ProcessSpec& spec, ProcessCallbacks callbacks) = 0;
    /// Sends `signal` to the child's whole process group. Returns false when the group is gone.
    virtual bool kill_group(int signal) = 0;
    /// True while any process of the child's group is alive (the leader may already be reaped).
    virtual bool group_alive() const = 0;
    /// Stops reading and closes the pipe (later writers get EPIPE/SIGPIPE). No on_output_end.
    virtual void close_output() = 0;
};

/// The POSIX implementation (fork + execve, SIGCHLD via asio::signal_set, pipe via
/// asio::posix::stream_descriptor). Resolves users in the parent, so the child only makes
/// async-signal-safe calls. Thread: construct and use on the io_context thread.
std::unique_ptr<ProcessRunner> make_process_runner(boost::asio::io_context& io);

/// Looks `user` up in the password database: HOME, USER, LOGNAME and SHELL for the child.
/// Errors: unknown user.
Result<std::vector<std::string>> user_environment(const std::string& user);

}  // namespace saltpeter
