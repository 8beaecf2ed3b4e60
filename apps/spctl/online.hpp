#pragma once
// Shared by spctl's online commands: where spd is and with which token (flags, environment,
// ~/.config/saltpeter/spctl.yaml), how failures become messages and exit codes, tables, colour.

#include <optional>
#include <string>
#include <vector>

#include "saltpeter/api_client.hpp"
#include "spctl.hpp"

namespace spctl {

/// The resolved connection: options for ApiClient plus where the token came from (for 401/403).
struct Connection {
    saltpeter::ApiClientOptions options;
    std::string token_source;  ///< "--token", "$SALTPETER_TOKEN", the config file, or "no token"
};

/// Flags win over SALTPETER_URL/SALTPETER_TOKEN, which win over the config file
/// ($XDG_CONFIG_HOME or ~/.config)/saltpeter/spctl.yaml. Error for a broken config file.
saltpeter::Result<Connection> resolve_connection(const Context& ctx);

/// Prints "spctl CMD: message" (plus a hint naming the URL or the token source) on stderr and
/// returns the exit code for the error's kind.
int report(const std::string& command, const saltpeter::Error& error, const Connection& conn);

/// True when stdout is a terminal and NO_COLOR is unset.
bool use_colour();
/// Wraps text in an ANSI colour (31 red, 32 green, 33 yellow) when use_colour().
std::string colour(const std::string& text, int code);

/// Prints rows as left-aligned columns (two spaces apart); the first row is the header.
void print_table(const std::vector<std::vector<std::string>>& rows);

/// The exit status for a finished run: 0 when every target succeeded, else the highest target
/// code (negative and missing codes count as 1), at most 255.
int run_exit_status(const saltpeter::RunInfo& run);

/// Splits streamed output into lines prefixed with "machine | " (partial lines wait).
class LinePrefixer {
public:
    void add(const std::string& machine, std::string_view text);
    /// Prints what is left of partial lines.
    void flush();

private:
    std::vector<std::pair<std::string, std::string>> m_pending;
};

/// Follows run `instance` of `job` until it ends (live progress on a tty, the output as
/// "machine | line" when `follow`), prints the per-target results and returns run_exit_status().
int wait_for_run(saltpeter::ApiClient& client, const Connection& conn, const Context& ctx, const std::string& command,
                 const std::string& job, const std::string& instance, bool follow);

/// A compact time: "2026-11-28 04:43:53" from an ISO text ("-" when empty).
std::string short_time(const std::string& iso);

}  // namespace spctl
