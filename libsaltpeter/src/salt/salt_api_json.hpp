#pragma once
// Parsers for salt-api (rest_cherrypy) response bodies, as recorded in salt/TRANSCRIPTS.md item 7,
// and the request side that must match them (lowstate chunks; the command line comes from
// shell_words.hpp). Pure functions: no I/O, never throw; a body that does not have the recorded
// shape is an Error.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "saltpeter/result.hpp"
#include "saltpeter/salt_transport.hpp"

namespace saltpeter::detail {

/// POST /login: `{"return": [{"token": ..., "expire": <epoch seconds>, ...}]}`.
struct LoginReply {
    std::string token;
    double expire = 0;  ///< Unix time (fractional seconds) the token stops working; 0 = not given
};
Result<LoginReply> parse_login(std::string_view body);

/// POST / client=local test.ping: `{"return": [{id: true|false|"text"}]}`. Only a literal true
/// responds; `false` (stopped minion) and strings ("Minion did not return. ...") go to
/// not_responding with a text. `{"return": [{}]}` (no match) is an empty reply. Both lists sorted.
Result<PingReply> parse_ping(std::string_view body);

/// One minion's cmd.run_all value as it appears in a return map: {pid,retcode,stdout,stderr};
/// the full_return wrapper {ret, retcode, jid}; a string (Salt's error text, or "Minion did not
/// return" → returned=false); `false` (a stopped minion, client=local) → returned=false.
MinionReturn minion_return_from_json_text(const std::string& minion, std::string_view value_json);

/// POST / client=local cmd.run_all: `{"return": [{id: value, ...}]}` → one MinionReturn per id,
/// sorted by id. `{"return": [{}]}` → empty.
Result<std::vector<MinionReturn>> parse_run_all(std::string_view body);

/// POST / client=local_async: `{"return": [{"jid": ..., "minions": [...]}]}`; no match is
/// `{"return": [{}]}` → empty jid and no minions.
struct AsyncJob {
    std::string jid;
    std::vector<std::string> minions;
};
Result<AsyncJob> parse_local_async(std::string_view body);

/// GET /jobs/<jid>: `info[0].Minions` is the expected list; `return[0]` holds the returns so far
/// (`{}` right after submission). Returns sorted by minion.
struct JobLookup {
    std::vector<std::string> expected;
    std::vector<MinionReturn> returns;
};
Result<JobLookup> parse_job_lookup(std::string_view body);

/// The JSON lowstate body for test.ping on `target` with Salt's `timeout`.
std::string ping_lowstate(const SaltTarget& target, std::chrono::seconds timeout);

/// The JSON lowstate body for cmd.run_all of `request` on one minion (tgt_type list): env is the
/// common env overlaid with that minion's minion_env; cwd/runas only when set.
std::string run_all_lowstate(const RunAllRequest& request, const std::string& minion, std::string_view client);

/// The JSON lowstate body for `client` (local_async) cmd.run_all of `request.command` on all
/// of `request.minions` at once (tgt_type list), kwarg env, and cwd/runas/timeout when set.
std::string command_lowstate(const CommandRequest& request, std::string_view client);

/// The JSON lowstate body for `fun` (saltutil.term_job or saltutil.kill_job) of `jid` on `minions`.
std::string signal_job_lowstate(const std::vector<std::string>& minions, const std::string& jid, std::string_view fun);

/// The JSON body of POST /login. The result contains the password: never log it.
std::string login_body(const std::string& username, const std::string& password, const std::string& eauth);

}  // namespace saltpeter::detail
