#pragma once
// The wrapper <-> daemon wire protocol (PROTOCOL.md 1.3 plus the 5.3 extensions): one plain struct
// per message, parse functions that never throw, and serialize() producing one JSON object text per
// frame. Used by sp_wrapper and by spd's machine hub. Pure: no clock reads, no I/O.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "saltpeter/result.hpp"

namespace saltpeter::protocol {

/// The fields every wrapper->server frame carries besides `type`.
struct Envelope {
    std::string job_name;
    std::string job_instance;
    std::string machine;
    std::string timestamp;  ///< ISO 8601, `+00:00` on the wire (see format_timestamp)
};

// ---- wrapper -> server ----------------------------------------------------------------------

/// `connect`. proto/next_seq/token are the 5.3/5.5 extensions; absent from original wrappers.
struct Connect {
    Envelope envelope;
    std::optional<int> proto;
    std::optional<std::int64_t> next_seq;
    std::optional<std::string> token;
};
/// `start`: pid of the `/bin/sh -c` child and the wrapper version ("unknown" when missing).
struct Start {
    Envelope envelope;
    std::int64_t pid = 0;
    std::string version = "unknown";
};
/// `output`: a piece of the merged output. `data` is UTF-8 text; `seq` is absent only from
/// peers that do not number their output.
struct Output {
    Envelope envelope;
    std::string stream = "stdout";  ///< "stdout", or "stderr" for kill/timeout notices
    std::string data;
    std::optional<std::int64_t> seq;
};
struct Heartbeat {
    Envelope envelope;
};
struct SyncRequest {
    Envelope envelope;
    std::int64_t last_acked_seq = -1;
    std::int64_t next_seq = 0;
};
/// `complete`: retcode may be negative (original wrappers); seq = next unused output seq.
/// A frame without retcode parses as -1 (what the original server records).
struct Complete {
    Envelope envelope;
    int retcode = -1;
    std::optional<std::int64_t> seq;
};
struct Killed {
    Envelope envelope;
};
/// `error` from a wrapper (the server records 255).
struct WrapperError {
    Envelope envelope;
    std::string error;
};

using WrapperMessage =
    std::variant<Connect, Start, Output, Heartbeat, SyncRequest, Complete, Killed, WrapperError>;

// ---- server -> wrapper ----------------------------------------------------------------------

enum class AckType { connect, start, output, complete };

/// `ack`. seq for output/complete acks; proto/last_seq only on a connect ack from our spd (5.3).
struct Ack {
    AckType ack_type = AckType::connect;
    std::string timestamp;
    std::optional<std::int64_t> seq;
    std::optional<int> proto;
    std::optional<std::int64_t> last_seq;
};
/// `nack` (nack_type "out_of_order").
struct Nack {
    std::string nack_type = "out_of_order";
    std::int64_t expected_seq = 0;
    std::int64_t received_seq = 0;
    std::string timestamp;
};
/// `sync_response`: last_seq = last stored/acked output seq, -1 for none.
struct SyncResponse {
    std::int64_t last_seq = -1;
    std::string timestamp;
};
/// `kill`, addressed to one instance on one machine.
struct Kill {
    Envelope envelope;
};
/// `error` from the server, e.g. code "JOB_NOT_FOUND". Has no timestamp.
struct ServerError {
    std::string code;
    std::string message;
};

using ServerMessage = std::variant<Ack, Nack, SyncResponse, Kill, ServerError>;

// ---- parsing and serialising ----------------------------------------------------------------

/// Parses one wrapper->server frame. Never throws; errors name the type or field at fault
/// (e.g. "output: field 'seq' must be an integer"). Unknown fields are ignored.
Result<WrapperMessage> parse_wrapper_frame(std::string_view text);
/// Parses one server->wrapper frame. Never throws; same error style.
Result<ServerMessage> parse_server_frame(std::string_view text);

/// One compact JSON object, keys in the order of PROTOCOL.md 1.3. Invalid UTF-8 in any string
/// is replaced by U+FFFD rather than throwing.
std::string serialize(const WrapperMessage& message);
std::string serialize(const ServerMessage& message);

/// "ack", "output", ...: the wire name of a message's type.
std::string_view type_name(const WrapperMessage& message) noexcept;
std::string_view type_name(const ServerMessage& message) noexcept;
std::string_view to_string(AckType type) noexcept;

/// `YYYY-MM-DDTHH:MM:SS.ffffff+00:00` (always six fraction digits; Python accepts that).
std::string format_timestamp(std::chrono::system_clock::time_point t);
/// Accepts `YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|+HH:MM|-HH:MM)` and returns the UTC instant.
Result<std::chrono::system_clock::time_point> parse_timestamp(std::string_view text);

/// Replaces every invalid UTF-8 sequence of `text` by U+FFFD (one per maximal invalid subpart).
std::string sanitize_utf8(std::string_view text);

}  // namespace saltpeter::protocol
