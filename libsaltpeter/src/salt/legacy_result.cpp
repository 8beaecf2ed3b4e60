// See legacy_result.hpp.
#include "salt/legacy_result.hpp"

#include <algorithm>

#include "saltpeter/exit_code_mapper.hpp"

namespace saltpeter::detail {

bool is_salt_timeout(const MinionReturn& ret, const std::string& command) {
    if (!ret.returned || !ret.error.empty() || ret.retcode != 1 || !ret.stderr_text.empty()) return false;
    const std::string prefix = command + " : Timed out after ";
    const std::string& out = ret.stdout_text;
    if (out.size() <= prefix.size() + std::string(" seconds").size() || out.compare(0, prefix.size(), prefix) != 0) {
        return false;
    }
    const std::string rest = out.substr(prefix.size());
    const auto space = rest.find(' ');
    if (space == 0 || space == std::string::npos || rest.substr(space) != " seconds") return false;
    return std::all_of(rest.begin(), rest.begin() + static_cast<std::ptrdiff_t>(space),
                       [](char c) { return c >= '0' && c <= '9'; });
}

LegacyResult legacy_result(const MinionReturn& ret, const std::string& command, bool killed) {
    std::string text = ret.stdout_text;
    if (!ret.stderr_text.empty()) text += (text.empty() ? "" : "\n") + ret.stderr_text;
    if (killed) {
        if (!text.empty()) text += "\n";
        return {ExitCodeMapper::code(Outcome::killed), text + "[Job terminated by user request]\n"};
    }
    if (!ret.returned) {
        std::string out = "Target did not return anything";
        if (!ret.error.empty()) out += "\n" + ret.error;
        return {ExitCodeMapper::code(Outcome::no_response), out};
    }
    if (!ret.error.empty()) return {ExitCodeMapper::code(Outcome::unknown_error), ret.error};
    if (is_salt_timeout(ret, command)) return {ExitCodeMapper::code(Outcome::timeout), ret.stdout_text};
    return {ret.retcode, text};
}

}  // namespace saltpeter::detail
