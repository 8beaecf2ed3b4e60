#pragma once
// CronExpression: a seven-field schedule "sec min hour dom mon dow year" (the original
// Saltpeter's parse-crontab order) or a macro (@daily ...), evaluated in any time zone.
// Pure: no clock reads; callers pass the instant to search from.

#include <array>
#include <bitset>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "saltpeter/result.hpp"
#include "saltpeter/time.hpp"
#include "saltpeter/time_zone.hpp"

namespace saltpeter {

class CronExpression {
public:
    /// The seven fields as separate texts (what the job YAML has as sec/min/hour/... keys).
    struct Fields {
        std::string sec = "0";
        std::string min;
        std::string hour;
        std::string dom;
        std::string mon;
        std::string dow;
        std::string year = "*";
    };

    /// Parses seven space-separated fields or one of @yearly @annually @monthly @weekly @daily
    /// @midnight @hourly. Errors name the field, the token and why, e.g.
    /// "field 'dow': '8' is out of range 0-7"; Error::field holds the field name ("dow").
    ///
    /// Each field takes '*', 'a', 'a-b', '*/n', 'a-b/n', 'a/n' (a up to the field's maximum) and
    /// comma lists; mon takes JAN..DEC and dow SUN..SAT in any case. dow is 0-7 with 0 and 7 both
    /// Sunday ('5-7' and 'FRI-SUN' are Friday to Sunday; '*' and '*/n' cover 0-6). dom also takes
    /// '?', 'L', 'L-n' (n = 0..30 days before the last), 'dW' (nearest weekday to day d inside the
    /// month; a 'dW' past the month's end, like a plain 'd', does not fire) and 'LW'; dow also takes
    /// '?', 'wL'/'FRIL' (last weekday w of the month) and 'w#n'/'MON#n' (n = 1..5). year is 1970-2099.
    /// When the dom and dow texts are both something other than exactly '*' or '?', a day matches
    /// if either matches (Vixie cron); otherwise the restricted one alone decides.
    static Result<CronExpression> parse(std::string_view text);
    /// The same from separate field texts.
    static Result<CronExpression> from_fields(const Fields& fields);

    /// The first instant strictly after t at which the expression fires in `zone`, or nullopt
    /// when it never fires again (e.g. a past year). DST follows ISC cron (docs/configuration.md):
    /// a fixed-hour job fires once for a skipped wall time (at the end of the gap) and once for a
    /// repeated one (its first occurrence); an hour field of '*' or '*/N' follows real time.
    std::optional<SysSeconds> next_after(SysSeconds t, const TimeZone& zone) const;

    /// True when the wall-clock time matches every field.
    bool matches(const CivilTime& wall) const noexcept;

    /// True when the hour field is '*' or '*/N' (the job follows real time across DST changes).
    bool follows_real_time() const noexcept;

    /// The expression as written (trimmed), e.g. "0 */5 * * * * *" or "@daily".
    const std::string& text() const noexcept { return m_text; }
    /// The seven fields as they were given (a macro's expansion for a macro).
    const Fields& fields() const noexcept { return m_fields; }

private:
    CronExpression() = default;
    friend struct CronParser;

    /// Bits 1..days_in_month of the days of (year, month) that match dom/dow (with L, W, #).
    std::uint64_t day_mask(int year, unsigned month) const noexcept;
    /// The first wall-clock time >= from that matches every field, or nullopt after year 2099.
    std::optional<LocalSeconds> next_match(LocalSeconds from) const noexcept;
    std::optional<SysSeconds> next_real_time(SysSeconds t, const TimeZone& zone) const;
    std::optional<SysSeconds> next_fixed_hour(SysSeconds t, const TimeZone& zone) const;

    std::string m_text;
    Fields m_fields;
    std::uint64_t m_seconds = 0;    // bit s = second s
    std::uint64_t m_minutes = 0;    // bit m = minute m
    std::uint64_t m_hours = 0;      // bit h = hour h
    std::uint64_t m_dom = 0;        // bit d = day d (1..31)
    std::uint64_t m_months = 0;     // bit m = month m (1..12)
    std::bitset<130> m_years;       // bit y-1970, years 1970..2099
    /// Index: weekday of the 1st of a month; bit d set when day d falls on a listed weekday.
    std::array<std::uint64_t, 7> m_dow_days{};
    bool m_dom_star = true;         // dom is '*' or '?'
    bool m_dow_star = true;         // dow is '*' or '?'
    bool m_hour_star = true;        // hour field is '*' or '*/N'
    std::uint32_t m_dom_last_offsets = 0;    // bit k: 'L-k' (k = 0 is plain 'L'), k < 31
    std::uint32_t m_dom_nearest_weekday = 0; // bit d: 'dW'; bit 0: 'LW'
    std::uint8_t m_dow_last = 0;             // bit w: 'wL' (last weekday w of the month)
    std::uint64_t m_dow_nth = 0;             // bit w*8+n: 'w#n' (n = 1..5)
};

}  // namespace saltpeter
