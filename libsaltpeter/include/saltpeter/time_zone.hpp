#pragma once
// TimeZone: IANA time zones read from the system's TZif files (RFC 8536), including the POSIX TZ
// footer, so DST rules hold for every year up to 2099 and beyond (unlike readers that stop at the
// last listed transition in 2037). The footer rule is expanded into explicit transitions through
// the end of 2200; later instants keep the offset in force at that point. A TimeZone is an
// immutable, cheap-to-copy handle.

#include <memory>
#include <string>
#include <string_view>

#include "saltpeter/result.hpp"
#include "saltpeter/time.hpp"

namespace saltpeter {

/// A stretch of time with one UTC offset: [begin, end) in UTC. The first span begins at the
/// earliest representable instant and the last ends at the latest (SysSeconds::min()/max()).
struct ZoneSpan {
    SysSeconds begin;
    SysSeconds end;
    std::chrono::seconds offset{0};  ///< wall clock = UTC + offset
    bool is_dst = false;
};

/// How a wall-clock reading maps onto instants.
struct LocalInfo {
    enum class Kind { unique, nonexistent, ambiguous };
    Kind kind = Kind::unique;
    /// unique: the span holding it. nonexistent: the span before the gap. ambiguous: the earlier span.
    ZoneSpan first;
    /// nonexistent: the span after the gap (the gap ends at second.begin). ambiguous: the later span.
    /// unique: equal to first.
    ZoneSpan second;
};

class TimeZone {
public:
    /// Coordinated Universal Time: offset 0, no transitions.
    static TimeZone utc();

    /// Loads an IANA zone ("Europe/Berlin") from $TZDIR or /usr/share/zoneinfo; "UTC", "Etc/UTC" and
    /// "GMT" need no file and give a zone that is_utc(). Loaded zones are cached for the life of the
    /// process (keyed by file path); thread-safe.
    /// Errors: "unknown time zone 'X'" (no such file, or a name with '..'/a leading '/'),
    /// "time zone 'X': <why the file is not valid TZif>".
    static Result<TimeZone> locate(std::string_view name);

    /// Builds a zone from the bytes of a TZif file (v1, v2, v3 or v4); `name` is only for messages.
    static Result<TimeZone> from_tzif(std::string name, std::string_view bytes);

    /// Builds a zone from a POSIX TZ string such as "CET-1CEST,M3.5.0,M10.5.0/3" (RFC 8536 rule times
    /// from -167 to 167 hours allowed; a DST name without rules gets the US rules, as in glibc).
    /// DST rules are applied from 1900 through 2200. Errors name the string, the reason and position.
    static Result<TimeZone> from_posix(std::string name, std::string_view tz);

    const std::string& name() const noexcept;
    /// True when the offset is 0 at all times (UTC fast paths).
    bool is_utc() const noexcept;

    /// The span that holds instant t. O(log n); never allocates.
    ZoneSpan span_at(SysSeconds t) const noexcept;
    /// Wall-clock time of instant t in this zone.
    LocalSeconds to_local(SysSeconds t) const noexcept;
    /// Classifies a wall-clock time: a unique instant, a gap (spring forward) or an overlap.
    /// O(log n); never allocates.
    LocalInfo local_info(LocalSeconds t) const noexcept;
    /// The time-zone abbreviation in force at t ("CEST"), for display.
    std::string abbreviation_at(SysSeconds t) const;

private:
    struct Data;
    explicit TimeZone(std::shared_ptr<const Data> data);
    std::shared_ptr<const Data> m_data;
};

/// Formats t as ISO 8601 with its offset in `zone`: "2027-03-28T03:00:00+02:00" (UTC gives "+00:00").
/// An offset with seconds (local mean time) prints as "+00:53:28".
std::string format_iso8601(SysSeconds t, const TimeZone& zone);

/// Parses "YYYY-MM-DDTHH:MM:SS" with an optional fraction (dropped) and an offset "+HH:MM", "+HHMM"
/// or "Z"; a space may stand for the 'T'. Without an offset the time is read as a wall-clock time
/// in `zone_for_local` (an ambiguous one takes the earlier instant, a skipped one the gap's end).
/// "YYYY-MM-DD" alone means midnight. Errors name the text and what is wrong with it.
Result<SysSeconds> parse_iso8601(std::string_view text, const TimeZone& zone_for_local);

}  // namespace saltpeter
