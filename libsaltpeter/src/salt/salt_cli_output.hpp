#pragma once
// Parsing of `salt ... --out=json --out-indent=-1` output (salt/TRANSCRIPTS.md): one JSON document
// per minion per line on stdout, mixed with plain-text lines ("No minions matched the target...",
// "jid: <jid>", "ERROR: ..." when stderr shares the pipe). Pure functions; never throw.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "saltpeter/salt_transport.hpp"

namespace saltpeter::detail {

/// The line-level split of one salt CLI call's output.
struct SaltCliLines {
    /// One entry per minion key of every JSON object line, in output order: the minion id and the
    /// value as compact JSON text (e.g. "true", "{\"pid\":1,...}", "\"Minion did not return...\"").
    std::vector<std::pair<std::string, std::string>> documents;
    std::vector<std::string> text_lines;  ///< non-JSON, non-empty lines, without the newline
    std::optional<std::string> jid;       ///< from a "jid: <jid>" line (--show-jid)
    bool no_minions_matched = false;      ///< "No minions matched the target..." was printed
};

/// Splits `output` into lines; a line that parses as a JSON object contributes its members to
/// `documents` (an empty `{}` contributes nothing), every other non-empty line goes to
/// `text_lines`. A final line without a newline is parsed too.
SaltCliLines split_salt_cli_output(std::string_view output);

/// test.ping: the reply built from `salt ... test.ping` output and its exit code. A minion counts
/// as responding only when its value is the literal `true`; any other value goes to
/// not_responding with its text (a JSON string is unquoted). Exit 2 with "No minions matched" is an
/// empty reply. No minion in the output otherwise, or an exit code other than 0/1, is an Error
/// quoting the text lines (`command` names the call in the message).
Result<PingReply> parse_ping_output(std::string_view output, int exit_code, const std::string& command);

/// cmd.run_all: one MinionReturn per minion found in the output, in output order. A dict value
/// gives retcode/stdout/stderr; a string value is Salt's error text: "Minion did not return..."
/// gives returned=false, anything else ("ERROR: User 'x' is not available") gives returned=true,
/// retcode 1 and `error` set. Other values become returned=true, retcode 1, an error naming them.
std::vector<MinionReturn> parse_run_all_output(const SaltCliLines& lines);

/// `salt --async ...` (TRANSCRIPTS item 5): the jid of "Executed command with job ID: <jid>".
/// "No minions matched the target..." with job ID 0 gives an empty jid and no_minions_matched.
struct AsyncPublish {
    std::string jid;
    bool no_minions_matched = false;
};
/// The jid from `salt --async` output, or an Error quoting the text when the exit code is not 0
/// or no job-ID line was printed (master down, bad arguments).
Result<AsyncPublish> parse_async_output(std::string_view output, int exit_code, const std::string& command);

/// `salt-run jobs.list_job <jid> --out=json` (TRANSCRIPTS items 3, 5): the job's expected
/// `Minions` and the returns in `Result` so far, each `Result.<id>.return` mapped as in
/// parse_run_all_output (dict, or string reply). An unknown jid has `Error` set and no returns.
struct ListJob {
    std::string jid;
    std::string error;                 ///< "Cannot contact returner or no job with this jid"
    std::vector<std::string> minions;  ///< sorted
    std::vector<MinionReturn> returns; ///< sorted by minion
};
/// Parses one list_job document (text lines before it are skipped); an Error when there is no
/// JSON object with a `Result` object.
Result<ListJob> parse_list_job_output(std::string_view output, const std::string& command);

/// The text lines joined by "; " for error messages, or "no output" when there are none.
std::string describe_text(const SaltCliLines& lines);

}  // namespace saltpeter::detail
