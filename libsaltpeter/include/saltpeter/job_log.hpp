#pragma once
// Per-job log records in the exact text format of the original Saltpeter (PROTOCOL.md 4.1), so
// existing log readers keep working. Pure formatting; the file writer lives in spd.

#include <chrono>
#include <string>
#include <string_view>

namespace saltpeter {

/// Microsecond instants, as the original prints them.
using SysMicros = std::chrono::time_point<std::chrono::system_clock, std::chrono::microseconds>;

/// The msg_type of a record (also the `msg_type` of search documents, PROTOCOL.md 4.3).
enum class LogRecordType {
    start,
    machine_start,
    no_machines,
    test_ping_failed,
    wrapper_failed,
    end,
    overlap,
    machine_result,
    maintenance,
};
std::string_view to_string(LogRecordType type) noexcept;

struct LogRecord {
    LogRecordType type = LogRecordType::machine_result;
    std::string instance;  ///< job instance (for overlap: the running one)
    std::string machine;   ///< empty when not about one machine
    int code = 0;          ///< exit code (machine_result, maintenance); end: 0 all ok, 1 otherwise
    std::string out;       ///< raw output; carriage returns are processed when formatting
    SysMicros time{};
};

/// Python's str(datetime) of an aware UTC time: "2026-11-28 04:38:47.740601+00:00", the fraction
/// left out when it is zero.
std::string python_datetime(SysMicros t);

/// ISO 8601 with the zone offset: python_datetime with "T" between date and time.
std::string iso_datetime(SysMicros t);

/// Each line holding '\r' becomes its last non-empty '\r'-separated segment (PROTOCOL.md 4.2).
std::string process_carriage_returns(std::string_view text);

/// The record's text for `<logdir>/<job>.log`, newline-terminated (PROTOCOL.md 4.1).
std::string format_log_record(const LogRecord& record);

}  // namespace saltpeter
