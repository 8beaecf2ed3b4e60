#pragma once
// The web UI's `/ws` protocol (PROTOCOL.md 3.2-3.4) as pure functions: parse what a client sends,
// build each frame the server sends, and the JSON bodies of the HTTP API. No sockets here, so the
// unit tests check every message without a server. Strings never come out as null ("" instead);
// output positions count UTF-16 code units (3.4).

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "saltpeter/config.hpp"
#include "saltpeter/result.hpp"
#include "saltpeter/runs.hpp"

namespace saltpeter::ui {

/// One client frame, after the original's key precedence: subscribe, unsubscribe, ack, run,
/// killCron, killMachine, getTimeline, then our extension `push`.
struct Command {
    enum class Kind { none, subscribe, unsubscribe, ack, run, kill_cron, kill_machine, get_timeline, push };
    Kind kind = Kind::none;
    std::vector<std::string> jobs;        ///< subscribe / unsubscribe
    std::string job;                      ///< run, killCron, ack.cron, killMachine.cron
    std::string machine;                  ///< ack, killMachine
    std::optional<std::string> instance;  ///< killMachine.job_instance
    std::int64_t position = 0;            ///< ack
    std::string start_date, end_date, id; ///< getTimeline
    bool push = true;                     ///< push: turn push mode on or off
};

/// Parses one text frame. Error (with the parser's message) for invalid JSON; Kind::none for
/// valid JSON that holds no known key or a known key with a value of the wrong type.
Result<Command> parse_command(std::string_view text);

/// UTF-16 code units of a UTF-8 text (a 4-byte sequence counts 2; an invalid byte counts 1, as
/// U+FFFD would).
std::size_t utf16_length(std::string_view utf8) noexcept;
/// The byte offset in `utf8` after `units` UTF-16 units (clamped to the text's end; never in the
/// middle of a character).
std::size_t byte_offset_of_utf16(std::string_view utf8, std::size_t units) noexcept;

using saltpeter::iso_datetime;  // job_log.hpp

/// The run of `job` that started last (the one the UI's state[job] describes), or null.
const RunRecord* latest_run(const std::map<std::string, RunRecord>& runs, const std::string& job);

/// `{"crons": {...}, "maintenance": {...}, "serial": s, "saltpeter_config": {...}}` (GET /config).
/// Secrets (API tokens, passwords, the wrapper secret path) are left out.
std::string config_json(const Config& config, double serial);
/// The `config` frame: the config above plus `sp_version`.
std::string config_frame(const Config& config, double serial);

/// `{instance: {"started", "name", "machines", "stop_signal"}}` for the runs that have not ended
/// (GET /running; valid JSON unlike the original).
std::string running_json(const std::map<std::string, RunRecord>& runs);
/// The `status` frame: running plus last_state (jobs with a last_run; result_ok true while running).
std::string status_frame(const std::map<std::string, RunRecord>& runs, const std::map<std::string, JobStatus>& status);

/// One `output_chunk` frame. `instance` is only sent when set (push mode extension).
struct OutputChunk {
    std::string cron;
    std::string machine;
    std::string chunk;
    std::size_t position = 0;      ///< UTF-16 units before the chunk
    std::size_t total_length = 0;  ///< UTF-16 units of the whole output so far
    bool is_complete = false;      ///< the target had ended when the chunk was made
    std::string instance;          ///< empty = not sent (the original UI frame)
};
std::string output_chunk_frame(const OutputChunk& chunk);

/// The `details` frame of `job`: state[job] with the latest run's targets and results (`ret` is
/// always "", times "" while unset). With `push_fields`, data also has job_instance and finished.
std::string details_frame(const std::string& job, const std::string& group, const JobStatus* status,
                          const RunRecord* latest, bool push_fields = false);

/// `{"timeline": {}}`: untyped, as the original sends it (no search backend is queried).
std::string timeline_frame();

/// A bound of a getTimeline request: ISO 8601 ("2026-11-28T04:00:00.000Z") or Elasticsearch date
/// math relative to `now` ("now", "now-1h", "now-30m", "now-2d", "now-45s"). Error names the text.
Result<SysMicros> parse_timeline_bound(std::string_view text, SysMicros now);

/// The answer to getTimeline / GET /timeline from the runs spd keeps: one `machine_start` and
/// (when finished) one `machine_result` entry per target whose time lies in [start, end],
/// `{cron, timestamp, ret_code, msg_type, job_instance}` sorted by timestamp (PROTOCOL.md 4.3),
/// wrapped as the untyped `{"timeline": {content, id, serial}}` frame.
std::string timeline_frame(const std::map<std::string, RunRecord>& runs, SysMicros start, SysMicros end,
                           const std::string& id, double serial);

/// `{"error": message}`, the body of every failed HTTP request.
std::string error_json(std::string_view message);

/// A run as the API returns it (GET /runs/{instance}, history): instance, job, trigger, times,
/// finished, success and per target state, retcode (null while unknown), times, output_length;
/// `with_output` adds each target's output.
std::string run_json(const RunRecord& run, bool with_output);

}  // namespace saltpeter::ui
