#include "saltpeter/cron_expression.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <string>
#include <vector>

namespace saltpeter {

namespace {

using std::chrono::seconds;

constexpr int k_min_year = 1970;
constexpr int k_max_year = 2099;

enum FieldIndex { k_sec, k_min, k_hour, k_dom, k_mon, k_dow, k_year, k_field_count };

struct FieldSpec {
    const char* name;
    int lo;
    int hi;
};

constexpr std::array<FieldSpec, k_field_count> k_specs{{
    {"sec", 0, 59},
    {"min", 0, 59},
    {"hour", 0, 23},
    {"dom", 1, 31},
    {"mon", 1, 12},
    {"dow", 0, 7},
    {"year", k_min_year, k_max_year},
}};

constexpr std::array<const char*, 12> k_month_names{
    {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"}};
constexpr std::array<const char*, 7> k_day_names{{"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"}};

struct Macro {
    const char* name;
    const char* expansion;
};
constexpr std::array<Macro, 7> k_macros{{
    {"@yearly", "0 0 0 1 1 * *"},
    {"@annually", "0 0 0 1 1 * *"},
    {"@monthly", "0 0 0 1 * * *"},
    {"@weekly", "0 0 0 * * 0 *"},
    {"@daily", "0 0 0 * * * *"},
    {"@midnight", "0 0 0 * * * *"},
    {"@hourly", "0 0 * * * * *"},
}};

constexpr const char* k_whitespace = " \t\n\r\v\f";

// The instants outside which nothing can fire: wall years are 1970..2099 and no zone is more
// than a day away from UTC, so clamping keeps the arithmetic far from SysSeconds::min()/max().
// Literals rather than days_from_civil() calls so they are usable during static initialisation.
constexpr SysSeconds k_search_begin{seconds{-259'200}};       // 1969-12-29 00:00:00 UTC
constexpr SysSeconds k_search_end{seconds{4'102'617'600}};     // 2100-01-03 00:00:00 UTC

std::string_view trim(std::string_view s) {
    const auto b = s.find_first_not_of(k_whitespace);
    if (b == std::string_view::npos) return {};
    const auto e = s.find_last_not_of(k_whitespace);
    return s.substr(b, e - b + 1);
}

std::string upper(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return out;
}

bool all_digits(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Numbers longer than nine digits cannot be in any range; saturating keeps the message about
// the range instead of about overflow.
int to_int(std::string_view digits) {
    if (digits.size() > 9) return 1'000'000'000;
    int v = 0;
    for (char c : digits) v = v * 10 + (c - '0');
    return v;
}

// Position of the first set bit at or above `from`, or 64 when there is none.
inline unsigned next_bit(std::uint64_t mask, unsigned from) noexcept {
    if (from >= 64) return 64;
    const std::uint64_t rest = mask >> from;
    return rest ? from + static_cast<unsigned>(__builtin_ctzll(rest)) : 64;
}

}  // namespace

// Builds a CronExpression field by field; a friend so it can fill the private bitmasks.
struct CronParser {
    CronExpression expr;
    int field = 0;

    Error error(std::string_view token, const std::string& why) const {
        const std::string name = k_specs[static_cast<std::size_t>(field)].name;
        return Error{"field '" + name + "': '" + std::string(token) + "' " + why, name};
    }

    const FieldSpec& spec() const { return k_specs[static_cast<std::size_t>(field)]; }

    // A number or (mon/dow) a name; `was_name` tells a dow range "FRI-SUN" apart from "5-0".
    Result<int> value(std::string_view text, bool* was_name = nullptr) const {
        if (was_name) *was_name = false;
        if (all_digits(text)) {
            const int v = to_int(text);
            if (v < spec().lo || v > spec().hi)
                return error(text, "is out of range " + std::to_string(spec().lo) + "-" + std::to_string(spec().hi));
            return v;
        }
        const std::string up = upper(text);
        if (field == k_mon) {
            for (std::size_t i = 0; i < k_month_names.size(); ++i)
                if (up == k_month_names[i]) return static_cast<int>(i + 1);
            return error(text, "is not a number or a month name");
        }
        if (field == k_dow) {
            for (std::size_t i = 0; i < k_day_names.size(); ++i) {
                if (up == k_day_names[i]) {
                    if (was_name) *was_name = true;
                    return static_cast<int>(i);
                }
            }
            return error(text, "is not a number or a weekday name");
        }
        return error(text, "is not a number");
    }

    Result<int> step(std::string_view text) const {
        const std::string name = spec().name;
        if (!all_digits(text)) return Error{"field '" + name + "': step '" + std::string(text) + "' is not a number", name};
        const int v = to_int(text);
        if (v < 1) return Error{"field '" + name + "': step '" + std::string(text) + "' must be at least 1", name};
        return v;
    }

    // Explains tokens that use L, W or # where they do not belong; nullopt if the token does not.
    std::optional<Error> misplaced_special(std::string_view token) const {
        const std::string up = upper(token);
        const bool has_hash = up.find('#') != std::string::npos;
        const bool has_w = !up.empty() && up.back() == 'W';
        // In mon a trailing L is just "JUL".
        const bool has_l = up == "L" || up.rfind("L-", 0) == 0 || (field != k_mon && up.size() > 1 && up.back() == 'L');
        if (field != k_dom && field != k_dow) {
            if (has_hash) return error(token, "is not valid here: '#' is only allowed in dow");
            if (has_w) return error(token, "is not valid here: 'W' is only allowed in dom");
            if (has_l) return error(token, "is not valid here: 'L' is only allowed in dom and dow");
        } else if (field == k_dom) {
            if (has_hash) return error(token, "is not valid here: '#' (nth weekday) is only allowed in dow");
            if (has_l && up.back() == 'L' && up != "L")
                return error(token, "is not valid here: 'L' after a weekday (last weekday) is only allowed in dow");
        } else {
            if (up == "L") return error(token, "is not valid here: 'L' alone is only allowed in dom; in dow put a weekday before it (e.g. '5L')");
            if (up == "LW" || has_w) return error(token, "is not valid here: 'W' is only allowed in dom");
            if (up.rfind("L-", 0) == 0) return error(token, "is not valid here: 'L-n' is only allowed in dom");
        }
        return std::nullopt;
    }

    // dom: L, L-k, LW, dW. Returns true when the token was one of them.
    Result<bool> dom_special(std::string_view token) {
        const std::string up = upper(token);
        if (up == "L") {
            expr.m_dom_last_offsets |= 1u;
            return true;
        }
        if (up == "LW") {
            expr.m_dom_nearest_weekday |= 1u;
            return true;
        }
        if (up.rfind("L-", 0) == 0) {
            const std::string_view k = token.substr(2);
            if (!all_digits(k)) return error(token, "is not valid: 'L-n' needs a number of days n");
            const int v = to_int(k);
            if (v > 30) return error(token, "is out of range: the offset in 'L-n' must be 0-30");
            expr.m_dom_last_offsets |= 1u << v;
            return true;
        }
        if (up.size() > 1 && up.back() == 'W') {
            const std::string_view d = token.substr(0, token.size() - 1);
            if (!all_digits(d)) return error(token, "is not valid: 'W' needs a day number before it (e.g. '15W')");
            auto v = value(d);
            if (!v) return v.error();
            expr.m_dom_nearest_weekday |= 1u << *v;
            return true;
        }
        if (up == "W") return error(token, "is not valid: 'W' needs a day number before it (e.g. '15W')");
        return false;
    }

    // dow: wL, w#n. Returns true when the token was one of them.
    Result<bool> dow_special(std::string_view token) {
        const auto hash = token.find('#');
        if (hash != std::string_view::npos) {
            const std::string_view w = token.substr(0, hash);
            const std::string_view n = token.substr(hash + 1);
            if (w.empty()) return error(token, "is not valid: '#' needs a weekday before it (e.g. '1#2')");
            auto wv = value(w);
            if (!wv) return wv.error();
            if (!all_digits(n) || to_int(n) < 1 || to_int(n) > 5)
                return error(token, "is out of range: the occurrence after '#' must be 1-5");
            expr.m_dow_nth |= std::uint64_t{1} << ((*wv % 7) * 8 + to_int(n));
            return true;
        }
        if (token.size() > 1 && (token.back() == 'L' || token.back() == 'l')) {
            const std::string_view w = token.substr(0, token.size() - 1);
            auto wv = value(w);
            if (!wv) return wv.error();
            expr.m_dow_last = static_cast<std::uint8_t>(expr.m_dow_last | (1u << (*wv % 7)));
            return true;
        }
        return false;
    }

    // Parses one field's text into `bits` (bit i = value lo + i).
    Status parse_field(std::string_view text, std::bitset<131>& bits) {
        if (text.empty()) return Error{"field '" + std::string(spec().name) + "': the field is empty", spec().name};
        if (text == "?") {
            if (field != k_dom && field != k_dow) return error(text, "is only allowed in dom and dow");
            for (int v = spec().lo; v <= std::min(spec().hi, field == k_dow ? 6 : spec().hi); ++v)
                bits.set(static_cast<std::size_t>(v - spec().lo));
            return Ok{};
        }
        std::size_t pos = 0;
        for (;;) {
            const auto comma = text.find(',', pos);
            const std::string_view token = text.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
            if (token.empty()) return error(text, "has an empty list element");
            auto st = parse_token(token, bits);
            if (!st) return st;
            if (comma == std::string_view::npos) break;
            pos = comma + 1;
        }
        return Ok{};
    }

    Status parse_token(std::string_view token, std::bitset<131>& bits) {
        if (token == "?") {
            if (field != k_dom && field != k_dow) return error(token, "is only allowed in dom and dow");
            return error(token, "must be the whole field, not part of a list");
        }
        if (field == k_dom) {
            auto special = dom_special(token);
            if (!special) return special.error();
            if (*special) return Ok{};
        } else if (field == k_dow) {
            auto special = dow_special(token);
            if (!special) return special.error();
            if (*special) return Ok{};
        }
        auto st = parse_plain(token, bits);
        // A token that fails as a plain value may be an L/W/# form in the wrong field; saying so
        // helps more than "is not a number".
        if (!st) {
            if (auto e = misplaced_special(token)) return *e;
        }
        return st;
    }

    // '*', 'a', 'a-b', each optionally with '/step'.
    Status parse_plain(std::string_view token, std::bitset<131>& bits) {
        std::string_view range = token;
        int step_by = 1;
        bool has_step = false;
        const auto slash = token.find('/');
        if (slash != std::string_view::npos) {
            auto s = step(token.substr(slash + 1));
            if (!s) return s.error();
            step_by = *s;
            has_step = true;
            range = token.substr(0, slash);
        }
        // '*' in dow means Sunday..Saturday once; 7 is only an alias.
        const int top = field == k_dow ? 6 : spec().hi;
        int first = 0;
        int last = 0;
        if (range == "*") {
            first = spec().lo;
            last = top;
        } else if (range.empty()) {
            return error(token, "is not valid: a step needs '*', a value or a range before '/'");
        } else {
            const auto dash = range.find('-');
            if (dash == std::string_view::npos) {
                auto v = value(range);
                if (!v) return v.error();
                first = *v;
                last = has_step ? std::max(*v, top) : *v;
            } else {
                const std::string_view a = range.substr(0, dash);
                const std::string_view b = range.substr(dash + 1);
                if (a.empty() || b.empty()) return error(range, "is not a valid range (expected 'a-b')");
                auto av = value(a);
                if (!av) return av.error();
                bool b_is_name = false;
                auto bv = value(b, &b_is_name);
                if (!bv) return bv.error();
                first = *av;
                last = *bv;
                // "FRI-SUN" reads naturally as Friday to Sunday: SUN at the end of a range is 7.
                if (field == k_dow && b_is_name && last == 0 && first > 0) last = 7;
                if (first > last) return error(range, "is a backwards range");
            }
        }
        for (int v = first; v <= last; v += step_by) {
            const int stored = field == k_dow && v == 7 ? 0 : v;
            bits.set(static_cast<std::size_t>(stored - spec().lo));
        }
        return Ok{};
    }

    static std::uint64_t to_mask(const std::bitset<131>& bits, int lo, int count) {
        std::uint64_t mask = 0;
        for (int i = 0; i < count; ++i)
            if (bits.test(static_cast<std::size_t>(i))) mask |= std::uint64_t{1} << (i + lo);
        return mask;
    }

    static Result<CronExpression> build(const std::array<std::string_view, k_field_count>& texts, std::string text,
                                        const CronExpression::Fields& fields) {
        CronParser p;
        std::array<std::bitset<131>, k_field_count> bits;
        for (int f = 0; f < k_field_count; ++f) {
            p.field = f;
            auto st = p.parse_field(texts[static_cast<std::size_t>(f)], bits[static_cast<std::size_t>(f)]);
            if (!st) return st.error();
        }
        CronExpression& e = p.expr;
        e.m_text = std::move(text);
        e.m_fields = fields;
        e.m_seconds = to_mask(bits[k_sec], 0, 60);
        e.m_minutes = to_mask(bits[k_min], 0, 60);
        e.m_hours = to_mask(bits[k_hour], 0, 24);
        e.m_dom = to_mask(bits[k_dom], 1, 31);
        e.m_months = to_mask(bits[k_mon], 1, 12);
        const std::uint64_t dow = to_mask(bits[k_dow], 0, 7);
        for (int y = 0; y < 130; ++y) e.m_years[static_cast<std::size_t>(y)] = bits[k_year].test(static_cast<std::size_t>(y));
        for (unsigned first = 0; first < 7; ++first) {
            std::uint64_t days = 0;
            for (unsigned d = 1; d <= 31; ++d)
                if (dow & (std::uint64_t{1} << ((first + d - 1) % 7))) days |= std::uint64_t{1} << d;
            e.m_dow_days[first] = days;
        }
        e.m_dom_star = texts[k_dom] == "*" || texts[k_dom] == "?";
        e.m_dow_star = texts[k_dow] == "*" || texts[k_dow] == "?";
        e.m_hour_star = texts[k_hour] == "*" || texts[k_hour].rfind("*/", 0) == 0;
        return std::move(p.expr);
    }
};

Result<CronExpression> CronExpression::parse(std::string_view text) {
    const std::string_view trimmed = trim(text);
    if (!trimmed.empty() && trimmed.front() == '@') {
        const std::string lower = [&] {
            std::string s(trimmed);
            for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            return s;
        }();
        if (lower == "@reboot")
            return Error{"'@reboot' is not supported: saltpeter schedules jobs by time only", ""};
        for (const Macro& m : k_macros) {
            if (lower == m.name) {
                auto r = parse(m.expansion);
                if (r) r->m_text = std::string(trimmed);
                return r;
            }
        }
        return Error{"unknown macro '" + std::string(trimmed) +
                         "' (expected @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly)",
                     ""};
    }
    std::vector<std::string_view> parts;
    std::size_t pos = 0;
    while (true) {
        const auto b = trimmed.find_first_not_of(k_whitespace, pos);
        if (b == std::string_view::npos) break;
        const auto e = trimmed.find_first_of(k_whitespace, b);
        parts.push_back(trimmed.substr(b, e == std::string_view::npos ? std::string_view::npos : e - b));
        if (e == std::string_view::npos) break;
        pos = e;
    }
    if (parts.size() != k_field_count)
        return Error{"expected 7 fields (sec min hour dom mon dow year), got " + std::to_string(parts.size()), ""};
    std::array<std::string_view, k_field_count> texts{};
    std::copy(parts.begin(), parts.end(), texts.begin());
    Fields fields;
    fields.sec = std::string(texts[k_sec]);
    fields.min = std::string(texts[k_min]);
    fields.hour = std::string(texts[k_hour]);
    fields.dom = std::string(texts[k_dom]);
    fields.mon = std::string(texts[k_mon]);
    fields.dow = std::string(texts[k_dow]);
    fields.year = std::string(texts[k_year]);
    return CronParser::build(texts, std::string(trimmed), fields);
}

Result<CronExpression> CronExpression::from_fields(const Fields& given) {
    Fields fields;
    fields.sec = std::string(trim(given.sec));
    fields.min = std::string(trim(given.min));
    fields.hour = std::string(trim(given.hour));
    fields.dom = std::string(trim(given.dom));
    fields.mon = std::string(trim(given.mon));
    fields.dow = std::string(trim(given.dow));
    fields.year = std::string(trim(given.year));
    const std::array<std::string_view, k_field_count> texts{
        {fields.sec, fields.min, fields.hour, fields.dom, fields.mon, fields.dow, fields.year}};
    std::string text;
    for (const auto& t : texts) {
        if (!text.empty()) text += ' ';
        text += t;
    }
    return CronParser::build(texts, std::move(text), fields);
}

std::uint64_t CronExpression::day_mask(int year, unsigned month) const noexcept {
    const unsigned dim = days_in_month(year, month);
    const std::uint64_t valid = ((std::uint64_t{1} << (dim + 1)) - 1) & ~std::uint64_t{1};
    if (m_dom_star && m_dow_star) return valid;
    const std::int64_t first_day = days_from_civil(year, month, 1);
    const unsigned first_wd = weekday_from_days(first_day);

    std::uint64_t dom = 0;
    if (!m_dom_star) {
        dom = m_dom;
        for (std::uint32_t k = m_dom_last_offsets; k != 0; k &= k - 1) {
            const unsigned off = static_cast<unsigned>(__builtin_ctz(k));
            if (off < dim) dom |= std::uint64_t{1} << (dim - off);
        }
        for (std::uint32_t w = m_dom_nearest_weekday; w != 0; w &= w - 1) {
            const unsigned bit = static_cast<unsigned>(__builtin_ctz(w));
            // Bit 0 is 'LW'. A 'dW' past the month's end does not fire, like a plain 'd'.
            unsigned d = bit == 0 ? dim : bit;
            if (d > dim) continue;
            const unsigned wd = (first_wd + d - 1) % 7;
            // Nearest weekday, never leaving the month: 1W on a Saturday is Monday the 3rd and
            // the last day on a Sunday moves back to Friday.
            if (wd == 6) d = d == 1 ? 3 : d - 1;
            else if (wd == 0) d = d == dim ? d - 2 : d + 1;
            dom |= std::uint64_t{1} << d;
        }
    }
    std::uint64_t dow = 0;
    if (!m_dow_star) {
        dow = m_dow_days[first_wd];
        const unsigned last_wd = (first_wd + dim - 1) % 7;
        for (unsigned w = m_dow_last; w != 0; w &= w - 1) {
            const unsigned wd = static_cast<unsigned>(__builtin_ctz(w));
            dow |= std::uint64_t{1} << (dim - (last_wd + 7 - wd) % 7);
        }
        for (std::uint64_t n = m_dow_nth; n != 0; n &= n - 1) {
            const unsigned bit = static_cast<unsigned>(__builtin_ctzll(n));
            const unsigned wd = bit / 8;
            const unsigned nth = bit % 8;
            const unsigned d = 1 + (wd + 7 - first_wd) % 7 + 7 * (nth - 1);
            if (d <= dim) dow |= std::uint64_t{1} << d;
        }
    }
    // Vixie cron: when both are restricted a day matching either fires.
    if (m_dom_star) return dow & valid;
    if (m_dow_star) return dom & valid;
    return (dom | dow) & valid;
}

bool CronExpression::matches(const CivilTime& wall) const noexcept {
    if (wall.year < k_min_year || wall.year > k_max_year) return false;
    if (!m_years.test(static_cast<std::size_t>(wall.year - k_min_year))) return false;
    if (wall.month < 1 || wall.month > 12 || !(m_months >> wall.month & 1)) return false;
    if (wall.hour > 23 || !(m_hours >> wall.hour & 1)) return false;
    if (wall.minute > 59 || !(m_minutes >> wall.minute & 1)) return false;
    if (wall.second > 59 || !(m_seconds >> wall.second & 1)) return false;
    if (wall.day < 1 || wall.day > 31) return false;
    return (day_mask(wall.year, wall.month) >> wall.day & 1) != 0;
}

bool CronExpression::follows_real_time() const noexcept { return m_hour_star; }

std::optional<LocalSeconds> CronExpression::next_match(LocalSeconds from) const noexcept {
    CivilTime c = to_civil(from);
    if (c.year < k_min_year) c = CivilTime{k_min_year, 1, 1, 0, 0, 0};
    // Field by field: a field with no match from here carries into the next larger field and
    // resets the smaller ones, so each step skips whole hours/days/months instead of seconds.
    int mask_year = 0;
    unsigned mask_month = 0;
    std::uint64_t days = 0;
    for (;;) {
        if (c.year > k_max_year) return std::nullopt;
        if (!m_years.test(static_cast<std::size_t>(c.year - k_min_year))) {
            int y = c.year + 1;
            while (y <= k_max_year && !m_years.test(static_cast<std::size_t>(y - k_min_year))) ++y;
            if (y > k_max_year) return std::nullopt;
            c = CivilTime{y, 1, 1, 0, 0, 0};
        }
        const unsigned mon = next_bit(m_months, c.month);
        if (mon > 12) {
            c = CivilTime{c.year + 1, 1, 1, 0, 0, 0};
            continue;
        }
        if (mon != c.month) c = CivilTime{c.year, mon, 1, 0, 0, 0};
        if (mask_year != c.year || mask_month != c.month) {
            days = day_mask(c.year, c.month);
            mask_year = c.year;
            mask_month = c.month;
        }
        const unsigned day = next_bit(days, c.day);
        if (day > 31) {
            c = CivilTime{c.year, c.month + 1, 1, 0, 0, 0};
            continue;
        }
        if (day != c.day) c = CivilTime{c.year, c.month, day, 0, 0, 0};
        const unsigned hour = next_bit(m_hours, c.hour);
        if (hour > 23) {
            c = CivilTime{c.year, c.month, c.day + 1, 0, 0, 0};
            continue;
        }
        if (hour != c.hour) {
            c.hour = hour;
            c.minute = 0;
            c.second = 0;
        }
        const unsigned minute = next_bit(m_minutes, c.minute);
        if (minute > 59) {
            c = CivilTime{c.year, c.month, c.day, c.hour + 1, 0, 0};
            continue;
        }
        if (minute != c.minute) {
            c.minute = minute;
            c.second = 0;
        }
        const unsigned second = next_bit(m_seconds, c.second);
        if (second > 59) {
            c = CivilTime{c.year, c.month, c.day, c.hour, c.minute + 1, 0};
            continue;
        }
        c.second = second;
        return from_civil(c);
    }
}

std::optional<SysSeconds> CronExpression::next_real_time(SysSeconds t, const TimeZone& zone) const {
    // Every instant whose wall time matches fires, so search each span's wall-clock range with
    // that span's offset; a match beyond the span belongs to a later span's offset.
    SysSeconds u = t + seconds{1};
    for (;;) {
        const ZoneSpan span = zone.span_at(u);
        const LocalSeconds from{u.time_since_epoch() + span.offset};
        const auto match = next_match(from);
        const bool last_span = span.end >= k_search_end;
        if (!match) {
            if (last_span) return std::nullopt;
            // No wall time >= from matches; only an overlap (the next span starting at an
            // earlier wall time) can still hold one.
            const ZoneSpan next = zone.span_at(span.end);
            if (span.end.time_since_epoch() + next.offset >= from.time_since_epoch()) return std::nullopt;
            u = span.end;
            continue;
        }
        const SysSeconds fire{match->time_since_epoch() - span.offset};
        if (last_span || fire < span.end) return fire;
        u = span.end;
    }
}

std::optional<SysSeconds> CronExpression::next_fixed_hour(SysSeconds t, const TimeZone& zone) const {
    // Each matching wall time maps to one instant (unique; first occurrence; gap end), and that
    // map never decreases as wall time grows, so the answer comes from the first matching wall
    // time whose instant is after t: the wall time after W(t), or, when t is in the second
    // occurrence of an overlap, the first wall time after the overlap (everything in it already
    // fired at its first occurrence).
    const LocalSeconds wall = zone.to_local(t);
    LocalSeconds from = wall + seconds{1};
    const LocalInfo here = zone.local_info(wall);
    if (here.kind == LocalInfo::Kind::ambiguous && t >= here.second.begin)
        from = LocalSeconds{here.second.begin.time_since_epoch() + here.first.offset};
    const auto match = next_match(from);
    if (!match) return std::nullopt;
    const LocalInfo info = zone.local_info(*match);
    if (info.kind == LocalInfo::Kind::nonexistent) return info.second.begin;
    return SysSeconds{match->time_since_epoch() - info.first.offset};
}

std::optional<SysSeconds> CronExpression::next_after(SysSeconds t, const TimeZone& zone) const {
    if (t >= k_search_end) return std::nullopt;
    // Nothing fires before 1970 wall time, so an earlier t behaves like k_search_begin.
    if (t < k_search_begin) t = k_search_begin;
    if (zone.is_utc()) {
        const auto match = next_match(LocalSeconds{t.time_since_epoch() + seconds{1}});
        if (!match) return std::nullopt;
        return SysSeconds{match->time_since_epoch()};
    }
    return m_hour_star ? next_real_time(t, zone) : next_fixed_hour(t, zone);
}

}  // namespace saltpeter
