#pragma once
// How a legacy-mode Salt return becomes a target result (PROTOCOL.md 2.4 and 2.5). Pure.

#include <string>

#include "saltpeter/salt_transport.hpp"

namespace saltpeter::detail {

/// A target's exit code and output.
struct LegacyResult {
    int code = 0;
    std::string output;
};

/// True for Salt's timeout= return: retcode 1, empty stderr and stdout exactly
/// "<command> : Timed out after N seconds" (salt/TRANSCRIPTS.md item 3).
bool is_salt_timeout(const MinionReturn& ret, const std::string& command);

/// The result of one legacy return: killed on request ⇒ 143 (with any output and the kill
/// notice); no return ⇒ 255 "Target did not return anything" (plus why, on a second line); Salt's
/// timeout ⇒ 124 with Salt's text; a string reply ("ERROR: User 'x' is not available") ⇒ 255 with
/// that text; otherwise the command's retcode with stdout, then stderr on the following lines.
LegacyResult legacy_result(const MinionReturn& ret, const std::string& command, bool killed);

}  // namespace saltpeter::detail
