#pragma once
// SaltTransport: how spd reaches minions. Implementations: `local` (this host only, no Salt; the
// embedded default and the test transport), the salt CLI and salt-api. Every callback runs on the
// io_context thread the transport was made with; a transport never blocks that thread.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "saltpeter/config.hpp"
#include "saltpeter/result.hpp"

namespace saltpeter {

/// A Salt target: expression and type (glob, list, compound, ...).
struct SaltTarget {
    std::string expression;
    TargetType type = TargetType::glob;
};

/// The answer to test.ping.
struct PingReply {
    std::vector<std::string> responding;  ///< minions that answered exactly `true`, sorted
    /// minions that matched but did not answer true, with what they said ("Minion did not return").
    std::vector<std::pair<std::string, std::string>> not_responding;
};

/// cmd.run_all of one program on listed minions (Salt's tgt_type list).
struct RunAllRequest {
    std::vector<std::string> minions;
    std::vector<std::string> argv;  ///< program and arguments; never interpreted by a shell
    std::vector<std::pair<std::string, std::string>> env;  ///< the same for every minion
    /// Extra variables for one minion (per-target SP_TOKEN and SP_MACHINE_ID).
    std::map<std::string, std::vector<std::pair<std::string, std::string>>> minion_env;
    std::string cwd;    ///< empty = the minion's default
    std::string runas;  ///< empty = the minion's user
    std::chrono::seconds timeout{30};  ///< how long to wait for returns (Salt's -t)
};

/// One minion's return of cmd.run_all.
struct MinionReturn {
    std::string minion;
    bool returned = true;  ///< false: no return (timeout, minion down); `error` says why
    int retcode = 0;
    std::string stdout_text;
    std::string stderr_text;
    std::string error;     ///< Salt's own error text (a string reply such as "ERROR: User 'x' ...")
};

/// A shell command published asynchronously to listed minions and followed until it returns
/// (legacy mode, PROTOCOL.md 2.4): cmd.run_all with cwd=, runas=, timeout= and env=.
struct CommandRequest {
    std::vector<std::string> minions;
    std::string command;  ///< one shell command line, run by the minion's shell as it is
    std::vector<std::pair<std::string, std::string>> env;
    std::string cwd;    ///< empty = the minion's default
    std::string runas;  ///< empty = the minion's user
    /// Salt's timeout= (0 = none): the command is killed and returns retcode 1 with stdout
    /// "<command> : Timed out after N seconds" (salt/TRANSCRIPTS.md item 3).
    std::chrono::seconds timeout{0};
    /// How long returns are waited for; minions without a return by then are reported with
    /// returned=false. 0 = until every minion returned or was terminated.
    std::chrono::seconds follow_for{0};
};

using TransportJob = std::uint64_t;

/// The run_all request that runs `request.command` through `/bin/sh -c` on its minions, with its
/// env, cwd and runas (the legacy mode's command on a transport without a shell of its own).
RunAllRequest shell_request(const CommandRequest& request);

class SaltTransport {
public:
    virtual ~SaltTransport() = default;
    /// "local", "salt-cli", "salt-api".
    virtual std::string name() const = 0;
    /// test.ping on `target`. `done` gets the reply, or an Error naming the failure (master down,
    /// binary missing, bad target) — never both, always exactly once.
    virtual void ping(const SaltTarget& target, std::chrono::seconds timeout,
                      std::function<void(Result<PingReply>)> done) = 0;
    /// cmd.run_all; `on_return` once per minion (a no-return too), then `done` once.
    virtual TransportJob run_all(const RunAllRequest& request, std::function<void(MinionReturn)> on_return,
                                 std::function<void()> done) = 0;
    /// Publishes `request` asynchronously (salt --async / local_async: one publication for all
    /// minions) and follows the job id until every minion returned, was terminated, or
    /// `follow_for` passed. `on_return` once per minion (returned=false for a minion that never
    /// returned or was terminated), then `done` once; never inside run_async() itself.
    /// The default, for transports without an asynchronous publication (embedders' own), is
    /// run_all of `/bin/sh -c <command>` waiting `follow_for` (or a day) for the returns; the
    /// built-in transports override it.
    virtual TransportJob run_async(const CommandRequest& request, std::function<void(MinionReturn)> on_return,
                                   std::function<void()> done);
    /// Stops a run_all or run_async job on the given minions (saltutil.term_job, then
    /// saltutil.kill_job after `grace`; locally SIGTERM to the process group, SIGKILL after
    /// `grace`). A terminated run_async minion never returns (TRANSCRIPTS item 5): it is reported
    /// returned=false once its process is gone or kill_job was sent. Unknown jobs are ignored.
    virtual void terminate(TransportJob job, const std::vector<std::string>& minions, std::chrono::seconds grace) = 0;
    /// Stops everything in flight (no callbacks afterwards). Idempotent.
    virtual void stop() = 0;
};

struct LocalTransportOptions {
    std::vector<std::string> minions;  ///< the ids this host answers for; empty = this host's name
    std::map<std::string, std::map<std::string, std::string>> grains;  ///< per minion, optional
};

/// The `local` transport: every listed minion is this host. ping matches the ids with Salt's
/// targeting rules (glob, pcre, list, grain, compound); run_all starts the program once per
/// minion through ProcessRunner with the request's env, cwd and user. Each minion gets its own
/// default wrapper lock file (/tmp/sp_wrapper_<job>.<minion>.lock), as separate hosts would.
std::unique_ptr<SaltTransport> make_local_transport(boost::asio::io_context& io, LocalTransportOptions options);

/// The salt CLI transport: runs `salt` / `salt-run` with argv arrays (never a shell string),
/// `--out=json --out-indent=-1`, never `--static` (salt/TRANSCRIPTS.md).
struct SaltCliOptions {
    std::string salt_binary = "salt";
    std::string salt_run_binary = "salt-run";
    std::string config_dir;  ///< passed as -c when not empty
};
std::unique_ptr<SaltTransport> make_salt_cli_transport(boost::asio::io_context& io, SaltCliOptions options);

/// The salt-api (rest_cherrypy) transport over HTTP(S).
struct SaltApiOptions {
    std::string url;          ///< e.g. https://salt-master:8000
    std::string username;
    std::string password;     ///< read by the caller from salt_api_password_file
    std::string eauth = "pam";
    std::string ca_file;      ///< PEM bundle to verify the server; empty = system default
    std::chrono::seconds connect_timeout{10};
    std::chrono::seconds request_timeout{60};
};
std::unique_ptr<SaltTransport> make_salt_api_transport(boost::asio::io_context& io, SaltApiOptions options);

/// This host's name (uname nodename).
std::string host_name();

}  // namespace saltpeter
