#pragma once
// POSIX TZ strings ("CET-1CEST,M3.5.0,M10.5.0/3") as used in TZif footers, with the RFC 8536
// extensions (rule times from -167 to 167 hours). Private to the library; TimeZone uses it.

#include <cstdint>
#include <string>
#include <string_view>

#include "saltpeter/result.hpp"

namespace saltpeter::detail {

/// The day and time of one DST change: Jn (1-365, February 29 never counted), n (0-365, counting
/// February 29) or Mm.w.d (weekday d of week w of month m; w = 5 means the last), plus the wall
/// time in seconds (default 02:00:00, may be negative or exceed a day).
struct PosixRule {
    enum class Kind { julian_no_leap, zero_based, month_week_day };
    Kind kind = Kind::month_week_day;
    int day = 0;
    int month = 1;
    int week = 1;
    int weekday = 0;
    std::int32_t time = 7200;
};

/// A parsed TZ string. Offsets are in the usual direction (wall clock = UTC + offset), i.e. the
/// negation of what the string says.
struct PosixTz {
    std::string std_name;
    std::int32_t std_offset = 0;
    bool has_dst = false;
    std::string dst_name;
    std::int32_t dst_offset = 0;
    PosixRule start;  ///< given in standard (wall) time
    PosixRule end;    ///< given in daylight (wall) time
};

/// Parses a TZ string. A DST name without rules gets the US rules M3.2.0,M11.1.0 (what glibc
/// does). Errors: "invalid POSIX TZ string '<text>': <why> at position N".
Result<PosixTz> parse_posix_tz(std::string_view text);

/// Seconds from 1970-01-01 00:00 of the wall clock to the moment `rule` names in `year`.
std::int64_t rule_local_seconds(const PosixRule& rule, int year) noexcept;

/// Seconds from the epoch to January 1 00:00 of `year`.
std::int64_t year_start_seconds(int year) noexcept;

}  // namespace saltpeter::detail
