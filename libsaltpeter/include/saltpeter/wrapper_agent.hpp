#pragma once
// The sp_wrapper agent: settings from the SP_* environment (PROTOCOL.md 1.10), the checks that
// must fail before the wrapper detaches, and the session that runs one job and streams it to
// spd (or to the original Python daemon) over the machines WebSocket (PROTOCOL.md 1 and 5).

#include <chrono>
#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "saltpeter/result.hpp"

namespace saltpeter {

enum class WrapperLogLevel { normal, debug, off };

/// Everything one wrapper run needs. Built by wrapper_settings_from_environment().
struct WrapperSettings {
    std::string websocket_url;   ///< SP_WEBSOCKET_URL (required)
    std::string job_name;        ///< SP_JOB_NAME (required)
    std::string job_instance;    ///< SP_JOB_INSTANCE (required)
    std::string command;         ///< SP_COMMAND (required), run as /bin/sh -c
    std::string machine_id;      ///< SP_MACHINE_ID, else /etc/salt/minion_id, else the FQDN
    std::string cwd;             ///< SP_CWD, empty = inherit
    std::string user;            ///< SP_USER, applied only when running as root
    int timeout_seconds = 0;     ///< SP_TIMEOUT, 0 = unlimited
    std::chrono::milliseconds output_interval{1000};  ///< SP_OUTPUT_INTERVAL_MS
    WrapperLogLevel log_level = WrapperLogLevel::normal;  ///< SP_WRAPPER_LOGLEVEL
    std::string log_dir = "/var/log/sp_wrapper";       ///< SP_WRAPPER_LOGDIR
    bool allow_overlap = true;   ///< SP_ALLOW_OVERLAP (true|1|yes, any case)
    std::string lockfile;        ///< SP_LOCKFILE, default /tmp/sp_wrapper_<job>.lock
    std::string token;           ///< SP_TOKEN, else this machine id's entry of SP_TOKENS (JSON); never passed on to the job
    std::vector<std::string> job_environment;  ///< the environment minus SP_TOKEN and SP_TOKENS, "K=V" each

    // Tuning knobs with the protocol's defaults; the tests shorten them (docs/sp_wrapper.md).
    std::chrono::milliseconds heartbeat_interval{5000};   ///< SP_HEARTBEAT_INTERVAL_MS
    std::chrono::milliseconds reconnect_interval{2000};   ///< SP_RECONNECT_INTERVAL_MS
    std::chrono::milliseconds kill_grace{5000};           ///< SP_KILL_GRACE_MS
    std::chrono::milliseconds completion_retry{60000};    ///< SP_COMPLETION_RETRY_MS
    std::size_t memory_limit = 64u * 1024 * 1024;         ///< SP_WRAPPER_MEMORY_LIMIT (bytes)
};

/// Reads the settings from `env` (name -> value). Errors: a missing required variable gives
/// "Error: SP_X environment variable not set" with field "SP_X"; an unparsable number names
/// its variable. The machine id falls back to default_machine_id(). Pure apart from that lookup.
Result<WrapperSettings> wrapper_settings_from_environment(const std::map<std::string, std::string>& env);
/// The process environment as a map.
std::map<std::string, std::string> current_environment();
/// /etc/salt/minion_id when readable and non-empty, else the host's FQDN (Python getfqdn()).
std::string default_machine_id();

/// The checks that must fail before detaching so that Salt reports them: cwd is a directory,
/// the user exists (when root), the log directory can be created and written (when logging is
/// on). Errors name the setting.
Status check_wrapper_settings(const WrapperSettings& settings);

/// Runs the job and the protocol session to the end on one io_context in the calling thread.
/// Returns 0 when `complete` was acknowledged, 1 when the result had to be kept in
/// <log_dir>/<job>.<instance>.result.json instead. Blocks; throws only on start-up failures.
int run_wrapper(const WrapperSettings& settings);

/// Delivers a result file written by run_wrapper (the URL and token are taken from the file
/// unless `settings` gives them). Returns 0 when delivered (the file is then removed), else 1
/// with the reason on stderr and in the log.
int replay_result(const std::string& path, const WrapperSettings& overrides);

}  // namespace saltpeter
