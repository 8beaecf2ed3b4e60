#include "core/posix_tz.hpp"

#include <optional>

#include "saltpeter/time.hpp"

namespace saltpeter::detail {

namespace {

bool is_alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

class PosixParser {
public:
    explicit PosixParser(std::string_view text) : m_text(text) {}

    Result<PosixTz> parse() {
        PosixTz tz;
        if (!name(tz.std_name, "standard time")) return error();
        if (at_end() || !(is_digit(peek()) || peek() == '+' || peek() == '-')) {
            return fail("expected the UTC offset after '" + tz.std_name + "'");
        }
        std::int32_t std_west = 0;
        if (!hms(24, "UTC offset", std_west)) return error();
        tz.std_offset = -std_west;
        if (at_end()) return tz;

        tz.has_dst = true;
        if (!name(tz.dst_name, "daylight saving time")) return error();
        tz.dst_offset = tz.std_offset + 3600;
        if (!at_end() && (is_digit(peek()) || peek() == '+' || peek() == '-')) {
            std::int32_t dst_west = 0;
            if (!hms(24, "DST offset", dst_west)) return error();
            tz.dst_offset = -dst_west;
        }
        if (at_end()) {
            tz.start = PosixRule{PosixRule::Kind::month_week_day, 0, 3, 2, 0, 7200};
            tz.end = PosixRule{PosixRule::Kind::month_week_day, 0, 11, 1, 0, 7200};
            return tz;
        }
        if (!expect(',')) return fail("expected ',' before the DST start rule");
        if (!rule(tz.start, "start")) return error();
        if (!expect(',')) return fail("expected ',' before the DST end rule");
        if (!rule(tz.end, "end")) return error();
        if (!at_end()) return fail("unexpected text after the DST end rule");
        return tz;
    }

private:
    bool at_end() const noexcept { return m_pos >= m_text.size(); }
    char peek() const noexcept { return at_end() ? '\0' : m_text[m_pos]; }
    bool expect(char c) noexcept {
        if (peek() != c) return false;
        ++m_pos;
        return true;
    }

    Error fail(const std::string& why) {
        m_error = "invalid POSIX TZ string '" + std::string(m_text) + "': " + why + " at position " +
                  std::to_string(m_pos + 1);
        return Error{*m_error, ""};
    }
    bool failed(const std::string& why) {
        fail(why);
        return false;
    }
    Error error() const { return Error{m_error.value_or("invalid POSIX TZ string"), ""}; }

    bool name(std::string& out, const char* what) {
        const std::size_t start = m_pos;
        if (expect('<')) {
            while (!at_end() && peek() != '>') {
                const char c = peek();
                if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-') {
                    return failed(std::string("invalid character in the quoted ") + what + " name");
                }
                ++m_pos;
            }
            if (at_end()) return failed(std::string("unterminated '<' in the ") + what + " name");
            out.assign(m_text.substr(start + 1, m_pos - start - 1));
            ++m_pos;
        } else {
            while (is_alpha(peek())) ++m_pos;
            out.assign(m_text.substr(start, m_pos - start));
        }
        if (out.empty()) {
            m_pos = start;
            return failed(std::string("expected the ") + what + " name");
        }
        if (out.size() < 3) {
            m_pos = start;
            return failed(std::string("the ") + what + " name '" + out + "' is shorter than 3 characters");
        }
        return true;
    }

    bool number(int max_value, const char* what, int& value) {
        if (!is_digit(peek())) return failed(std::string("expected a number for the ") + what);
        const std::size_t start = m_pos;
        long v = 0;
        while (is_digit(peek())) {
            v = v * 10 + (peek() - '0');
            ++m_pos;
            if (v > max_value) {
                m_pos = start;
                return failed(std::string("the ") + what + " is larger than " + std::to_string(max_value));
            }
        }
        value = static_cast<int>(v);
        return true;
    }

    // [+-]hh[:mm[:ss]]; the sign is the caller's business for offsets (POSIX counts west as positive).
    bool hms(int max_hours, const char* what, std::int32_t& seconds) {
        bool negative = false;
        if (peek() == '+' || peek() == '-') {
            negative = peek() == '-';
            ++m_pos;
        }
        int h = 0;
        int m = 0;
        int s = 0;
        if (!number(max_hours, (std::string(what) + " hours").c_str(), h)) return false;
        if (expect(':')) {
            if (!number(59, (std::string(what) + " minutes").c_str(), m)) return false;
            if (expect(':') && !number(59, (std::string(what) + " seconds").c_str(), s)) return false;
        }
        seconds = (negative ? -1 : 1) * (h * 3600 + m * 60 + s);
        return true;
    }

    bool rule(PosixRule& out, const char* which) {
        const std::string what = std::string("DST ") + which;
        if (expect('J')) {
            out.kind = PosixRule::Kind::julian_no_leap;
            if (!number(365, (what + " day").c_str(), out.day)) return false;
            if (out.day < 1) return failed(what + " day J0 does not exist (Jn counts from 1)");
        } else if (expect('M')) {
            out.kind = PosixRule::Kind::month_week_day;
            if (!number(12, (what + " month").c_str(), out.month)) return false;
            if (out.month < 1) return failed(what + " month must be 1-12");
            if (!expect('.')) return failed("expected '.' after the " + what + " month");
            if (!number(5, (what + " week").c_str(), out.week)) return false;
            if (out.week < 1) return failed(what + " week must be 1-5");
            if (!expect('.')) return failed("expected '.' after the " + what + " week");
            if (!number(6, (what + " weekday").c_str(), out.weekday)) return false;
        } else if (is_digit(peek())) {
            out.kind = PosixRule::Kind::zero_based;
            if (!number(365, (what + " day").c_str(), out.day)) return false;
        } else {
            return failed("expected the " + what + " rule (Jn, n or Mm.w.d)");
        }
        out.time = 7200;
        if (expect('/')) return hms(167, (what + " time").c_str(), out.time);
        return true;
    }

    std::string_view m_text;
    std::size_t m_pos = 0;
    std::optional<std::string> m_error;
};

}  // namespace

Result<PosixTz> parse_posix_tz(std::string_view text) { return PosixParser(text).parse(); }

std::int64_t year_start_seconds(int year) noexcept { return days_from_civil(year, 1, 1) * 86400; }

std::int64_t rule_local_seconds(const PosixRule& rule, int year) noexcept {
    const std::int64_t jan1 = days_from_civil(year, 1, 1);
    std::int64_t days = jan1;
    switch (rule.kind) {
        case PosixRule::Kind::julian_no_leap:
            days = jan1 + rule.day - 1 + (is_leap_year(year) && rule.day >= 60 ? 1 : 0);
            break;
        case PosixRule::Kind::zero_based:
            days = jan1 + rule.day;
            break;
        case PosixRule::Kind::month_week_day: {
            const auto month = static_cast<unsigned>(rule.month);
            const std::int64_t first = days_from_civil(year, month, 1);
            const int first_weekday = static_cast<int>(weekday_from_days(first));
            int mday = 1 + (rule.weekday - first_weekday + 7) % 7 + (rule.week - 1) * 7;
            while (mday > static_cast<int>(days_in_month(year, month))) mday -= 7;
            days = first + mday - 1;
            break;
        }
    }
    return days * 86400 + rule.time;
}

}  // namespace saltpeter::detail
