#pragma once
// CronExpression: a seven-field schedule "sec min hour dom mon dow year" (the original
// Saltpeter's parse-crontab order) or a macro (@daily ...), evaluated in any time zone.
// Pure: no clock reads; callers pass the instant to search from.

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

    std::string m_text;
    Fields m_fields;
    std::bitset<60> m_seconds;
    std::bitset<60> m_minutes;
    std::bitset<24> m_hours;
    std::bitset<32> m_dom;          // bit d = day d (1..31)
    std::bitset<13> m_months;       // bit m = month m (1..12)
    std::bitset<7> m_dow;           // bit w = weekday w (0 = Sunday)
    std::bitset<130> m_years;       // bit y-1970, years 1970..2099
    bool m_dom_star = true;         // dom is '*' or '?'
    bool m_dow_star = true;         // dow is '*' or '?'
    bool m_hour_star = true;        // hour field is '*' or '*/N'
    std::uint32_t m_dom_last_offsets = 0;   // bit k: 'L-k' (k = 0 is plain 'L'), k < 31
    std::uint32_t m_dom_nearest_weekday = 0; // bit d: 'dW'; bit 0: 'LW'
    std::uint8_t m_dow_last = 0;            // bit w: 'wL' (last weekday w of the month)
    std::uint64_t m_dow_nth = 0;            // bit w*8+n: 'w#n' (n = 1..5)
};

}  // namespace saltpeter
