#pragma once
// Time types shared by the whole library: instants are whole seconds on the system clock (UTC),
// wall-clock times are whole seconds on a "local" clock that has no zone attached.

#include <chrono>
#include <cstdint>

namespace saltpeter {

/// An instant, whole seconds since the Unix epoch (UTC).
using SysSeconds = std::chrono::time_point<std::chrono::system_clock, std::chrono::seconds>;

/// A wall-clock reading with no zone: seconds since 1970-01-01 00:00:00 of that wall clock.
struct LocalClock {
    using rep = std::int64_t;
    using period = std::ratio<1>;
    using duration = std::chrono::seconds;
    using time_point = std::chrono::time_point<LocalClock, duration>;
    static constexpr bool is_steady = false;
};
using LocalSeconds = LocalClock::time_point;

/// A broken-down wall-clock time. Months and days are 1-based; weekday 0 = Sunday.
struct CivilTime {
    int year = 1970;
    unsigned month = 1;
    unsigned day = 1;
    unsigned hour = 0;
    unsigned minute = 0;
    unsigned second = 0;

    friend bool operator==(const CivilTime& a, const CivilTime& b) {
        return a.year == b.year && a.month == b.month && a.day == b.day && a.hour == b.hour &&
               a.minute == b.minute && a.second == b.second;
    }
};

/// Days since 1970-01-01 for a proleptic Gregorian date (any year).
std::int64_t days_from_civil(int year, unsigned month, unsigned day) noexcept;
/// The calendar date of a day count since 1970-01-01.
CivilTime civil_from_days(std::int64_t days) noexcept;
/// 0 = Sunday .. 6 = Saturday.
unsigned weekday_from_days(std::int64_t days) noexcept;
bool is_leap_year(int year) noexcept;
unsigned days_in_month(int year, unsigned month) noexcept;

CivilTime to_civil(LocalSeconds t) noexcept;
/// Seconds since the Unix epoch as a float (the UI's serials, lag figures, token expiry).
double unix_seconds(std::chrono::system_clock::time_point t) noexcept;
LocalSeconds from_civil(const CivilTime& c) noexcept;

}  // namespace saltpeter
