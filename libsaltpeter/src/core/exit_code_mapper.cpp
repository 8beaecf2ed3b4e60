#include <algorithm>
#include "saltpeter/exit_code_mapper.hpp"

#include <sys/wait.h>

#include <csignal>
#include <cstring>

namespace saltpeter {

namespace {

// The single source of truth; docs/exit-codes.md is checked against it by a unit test.
const std::vector<ExitCodeInfo> k_table = {
    {0, 0, "success", "command"},
    {1, 123, "the command's own failure", "command"},
    {124, 124, "timeout: the job exceeded its timeout", "sp_wrapper, or spd when no completion arrived by timeout + grace"},
    {126, 126, "permission denied: wrapper or command not executable", "Salt's retcode for the launch, or the shell"},
    {127, 127, "not found: wrapper or command missing", "Salt's retcode for the launch, or the shell"},
    {143, 143, "killed on request", "sp_wrapper after a kill, or spd when the kill grace expires"},
    {252, 252, "skipped: not launched because the run stopped first (max_failures, canary, kill, maintenance)", "spd"},
    {253, 253, "heartbeat lost: no frame from the wrapper for heartbeat_timeout", "spd"},
    {254, 254, "wrapper never started, or the host lock was held", "spd / sp_wrapper"},
    {255, 255, "target did not respond, unknown error, or wrapper error", "spd"},
};

}  // namespace

int ExitCodeMapper::code(Outcome outcome) noexcept {
    switch (outcome) {
        case Outcome::success: return 0;
        case Outcome::command_failed: return 1;
        case Outcome::timeout: return 124;
        case Outcome::permission_denied: return 126;
        case Outcome::not_found: return 127;
        case Outcome::killed: return 143;
        case Outcome::skipped: return 252;
        case Outcome::heartbeat_lost: return 253;
        case Outcome::never_started: return 254;
        case Outcome::lock_held: return 254;
        case Outcome::no_response: return 255;
        case Outcome::wrapper_error: return 255;
        case Outcome::unknown_error: return 255;
        case Outcome::signaled: return -1;
    }
    return 255;
}

int ExitCodeMapper::process_status(const std::vector<std::optional<int>>& codes) noexcept {
    bool all_ok = !codes.empty();
    int status = 1;
    for (const auto& code : codes) {
        if (!code || *code != 0) all_ok = false;
        if (code && *code > 0) status = std::max(status, std::min(*code, 255));
    }
    return all_ok ? 0 : status;
}

Outcome ExitCodeMapper::outcome(int code) noexcept {
    if (code < 0) return Outcome::signaled;
    switch (code) {
        case 0: return Outcome::success;
        case 124: return Outcome::timeout;
        case 126: return Outcome::permission_denied;
        case 127: return Outcome::not_found;
        case 143: return Outcome::killed;
        case 252: return Outcome::skipped;
        case 253: return Outcome::heartbeat_lost;
        case 254: return Outcome::never_started;
        case 255: return Outcome::no_response;
        default: return code <= 255 ? Outcome::command_failed : Outcome::unknown_error;
    }
}

std::string signal_name(int signal_number) {
    // sigabbrev_np needs glibc 2.32; Debian 12 has 2.36.
    if (const char* abbrev = sigabbrev_np(signal_number)) return std::string("SIG") + abbrev;
    return "signal " + std::to_string(signal_number);
}

std::string ExitCodeMapper::meaning(int code) {
    if (code < 0) return "killed by signal " + std::to_string(-code) + " (" + signal_name(-code) + ")";
    for (const auto& row : k_table) {
        if (row.first == row.last && row.first == code) return std::string(row.meaning);
    }
    if (code >= 1 && code <= 123) return "the command's own failure (exit " + std::to_string(code) + ")";
    if (code > 128 && code < 128 + 65) {
        return "the command's own failure (exit " + std::to_string(code) + ", usually death by " +
               signal_name(code - 128) + ")";
    }
    if (code <= 255) return "the command's own failure (exit " + std::to_string(code) + ")";
    return "unknown exit code " + std::to_string(code);
}

const std::vector<ExitCodeInfo>& ExitCodeMapper::table() { return k_table; }

int ExitCodeMapper::from_wait_status(int wait_status, Verdict verdict) noexcept {
    if (verdict == Verdict::killed) return code(Outcome::killed);
    if (verdict == Verdict::timed_out) return code(Outcome::timeout);
    if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
    if (WIFSIGNALED(wait_status)) return -WTERMSIG(wait_status);
    return code(Outcome::unknown_error);
}

}  // namespace saltpeter
