#pragma once
// ExitCodeMapper: the one place where run outcomes become exit codes and codes get their meaning
// (PROTOCOL.md 5.1). docs/exit-codes.md mirrors table(); a unit test keeps the two in step.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace saltpeter {

/// Why a target's run ended.
enum class Outcome {
    success,            ///< 0
    command_failed,     ///< the command's own non-zero exit
    timeout,            ///< 124: exceeded `timeout`
    permission_denied,  ///< 126: wrapper or command not executable
    not_found,          ///< 127: wrapper or command missing
    killed,             ///< 143: killed on request
    skipped,            ///< 252: not launched: the run stopped first (max_failures, canary, kill)
    heartbeat_lost,     ///< 253: no frame for heartbeat_timeout
    never_started,      ///< 254: no `start` in the startup window, Salt refused the launch
    lock_held,          ///< 254: the host lock was held (overlap refused on the host)
    no_response,        ///< 255: target did not respond / returned nothing
    wrapper_error,      ///< 255: the wrapper sent an `error` frame
    unknown_error,      ///< 255: anything else that went wrong
    signaled,           ///< negative: the shell died from signal -code (original wrappers)
};

/// One row of the exit-code table.
struct ExitCodeInfo {
    int first;                 ///< first code of the row
    int last;                  ///< last code of the row (== first for a single code)
    std::string_view meaning;  ///< short operator-facing meaning
    std::string_view set_by;   ///< who sets it
};

/// What the wrapper did to the job before it ended, for from_wait_status().
enum class Verdict { none, killed, timed_out };

class ExitCodeMapper {
public:
    /// The code recorded for an outcome. command_failed and signaled have no single code: 1 and -1.
    static int code(Outcome outcome) noexcept;
    /// Best reading of a recorded code (254 reads as never_started; 1..255 not in the table as
    /// command_failed; negative as signaled).
    static Outcome outcome(int code) noexcept;
    /// One line for operators: "success", "timeout: the job exceeded its timeout",
    /// "the command's own failure (exit 3)", "killed by signal 15 (SIGTERM)".
    static std::string meaning(int code);
    /// The table of PROTOCOL.md 5.1, in code order.
    static const std::vector<ExitCodeInfo>& table();
    /// The code a wrapper reports for a waitpid() status: 124/143 after its own timeout/kill
    /// whether the shell exited or died from the signal; otherwise the exit status, or -N when
    /// the shell died from signal N.
    static int from_wait_status(int wait_status, Verdict verdict) noexcept;
    /// The exit status of a program that reports one whole run (spd --run-once, spctl run-now
    /// --wait): 0 when there is at least one target and every one ended with 0; otherwise the
    /// highest positive target code (at most 255), and at least 1 (a missing or negative code
    /// counts as a failure).
    static int process_status(const std::vector<std::optional<int>>& codes) noexcept;
    /// A target succeeded only with code 0.
    static bool is_success(int code) noexcept { return code == 0; }
};

/// "SIGTERM" for 15 and so on; "signal N" for numbers without a name.
std::string signal_name(int signal_number);

}  // namespace saltpeter
