#include <doctest/doctest.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "saltpeter/cron_expression.hpp"
#include "saltpeter/time_zone.hpp"

using namespace saltpeter;
using std::chrono::seconds;

namespace {

// "YYYY-MM-DD HH:MM:SS" read as UTC.
SysSeconds utc(const std::string& text) {
    CivilTime c;
    unsigned y = 0;
    REQUIRE(std::sscanf(text.c_str(), "%u-%u-%u %u:%u:%u", &y, &c.month, &c.day, &c.hour, &c.minute, &c.second) == 6);
    c.year = static_cast<int>(y);
    return SysSeconds{from_civil(c).time_since_epoch()};
}

std::string show(std::optional<SysSeconds> t) {
    if (!t) return "none";
    const CivilTime c = to_civil(LocalSeconds{t->time_since_epoch()});
    char buf[32];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02u %02u:%02u:%02u", c.year, c.month, c.day, c.hour, c.minute, c.second);
    return buf;
}

CronExpression must_parse(const std::string& text) {
    auto r = CronExpression::parse(text);
    INFO(std::string(text));
    if (!r) FAIL(r.error().message);
    return *r;
}

std::string next_utc(const std::string& expr, const std::string& start) {
    return show(must_parse(expr).next_after(utc(start), TimeZone::utc()));
}

TimeZone zone(const char* name) {
    auto z = TimeZone::locate(name);
    INFO(std::string(name));
    if (!z) FAIL(z.error().message);
    return *z;
}

struct NextCase {
    const char* expr;
    const char* start;
    const char* expected;  // UTC, or "none"
};

}  // namespace

TEST_CASE("cron next_after in UTC") {
    const NextCase cases[] = {
        // plain fields, steps, ranges, lists
        {"0 */5 * * * * *", "2025-01-01 00:00:00", "2025-01-01 00:05:00"},
        {"0 */5 * * * * *", "2025-01-01 00:04:59", "2025-01-01 00:05:00"},
        {"0 */5 * * * * *", "2025-01-01 00:05:00", "2025-01-01 00:10:00"},
        {"0 */5 * * * * *", "2025-12-31 23:55:00", "2026-01-01 00:00:00"},
        {"* * * * * * *", "2025-01-01 00:00:00", "2025-01-01 00:00:01"},
        {"* * * * * * *", "2025-12-31 23:59:59", "2026-01-01 00:00:00"},
        {"30 * * * * * *", "2025-01-01 00:00:30", "2025-01-01 00:01:30"},
        {"*/20 * * * * * *", "2025-01-01 00:00:41", "2025-01-01 00:01:00"},
        {"0 5/15 * * * * *", "2025-01-01 00:21:00", "2025-01-01 00:35:00"},
        {"0 5/15 * * * * *", "2025-01-01 00:50:00", "2025-01-01 01:05:00"},
        {"0 10-20/5 * * * * *", "2025-01-01 00:20:00", "2025-01-01 01:10:00"},
        {"0 1,2,59 * * * * *", "2025-01-01 00:02:00", "2025-01-01 00:59:00"},
        {"0 0 22-23 * * * *", "2025-01-01 23:00:00", "2025-01-02 22:00:00"},
        {"0 0 */6 * * * *", "2025-01-01 19:00:00", "2025-01-02 00:00:00"},
        {"0 30 2 * * MON-FRI *", "2025-01-03 03:00:00", "2025-01-06 02:30:00"},
        {"0 30 2 * * MON-FRI *", "2025-01-06 02:29:59", "2025-01-06 02:30:00"},
        {"0 30 2 * * mon-fri *", "2025-01-04 00:00:00", "2025-01-06 02:30:00"},
        {"0 0 12 ? * sat,SUN *", "2025-01-01 00:00:00", "2025-01-04 12:00:00"},
        {"0 0 12 ? * sat,SUN *", "2025-01-04 12:00:00", "2025-01-05 12:00:00"},
        {"59 59 23 31 12 * *", "2025-12-31 23:59:59", "2026-12-31 23:59:59"},
        {"59 59 23 31 12 * *", "2025-12-31 23:59:58", "2025-12-31 23:59:59"},
        {"0 0 0 31 * * *", "2025-04-01 00:00:00", "2025-05-31 00:00:00"},
        {"0 0 0 31 * * *", "2025-07-31 00:00:00", "2025-08-31 00:00:00"},
        {"0 0 0 30 * * *", "2025-01-30 00:00:00", "2025-03-30 00:00:00"},
        // months
        {"0 0 0 1 JAN-MAR/2 * *", "2025-01-01 00:00:00", "2025-03-01 00:00:00"},
        {"0 0 0 1 jan,jul * *", "2025-02-01 00:00:00", "2025-07-01 00:00:00"},
        {"0 0 0 1 Dec * *", "2025-12-01 00:00:00", "2026-12-01 00:00:00"},
        {"0 0 0 1 11/2 * *", "2025-01-01 00:00:00", "2025-11-01 00:00:00"},
        {"0 0 0 1 11/2 * *", "2025-11-01 00:00:00", "2026-11-01 00:00:00"},
        // years
        {"0 0 0 1 1 * 2030", "2025-06-01 00:00:00", "2030-01-01 00:00:00"},
        {"0 0 0 1 1 * 2030", "2030-01-01 00:00:00", "none"},
        {"0 0 0 1 * * 2025/2", "2025-12-01 00:00:00", "2027-01-01 00:00:00"},
        {"0 0 0 1 1 * */10", "2025-01-01 00:00:00", "2030-01-01 00:00:00"},
        {"0 0 0 1 1 * 2030-2032,2040", "2032-01-01 00:00:00", "2040-01-01 00:00:00"},
        {"0 0 0 * * * 2099", "2099-12-30 12:00:00", "2099-12-31 00:00:00"},
        {"0 0 0 * * * 2099", "2099-12-31 00:00:00", "none"},
        {"0 0 0 * * * *", "2099-12-31 00:00:00", "none"},
        {"* * * * * * *", "2099-12-31 23:59:58", "2099-12-31 23:59:59"},
        {"* * * * * * *", "2099-12-31 23:59:59", "none"},
        {"0 0 0 1 1 * 1970", "1969-06-01 00:00:00", "1970-01-01 00:00:00"},
        {"0 0 0 1 1 * *", "1900-01-01 00:00:00", "1970-01-01 00:00:00"},
        {"0 0 0 1 1 * *", "2200-01-01 00:00:00", "none"},
        // impossible dates
        {"0 0 0 30 2 * *", "2025-01-01 00:00:00", "none"},
        {"0 0 0 31 4 * *", "1970-01-01 00:00:00", "none"},
        {"0 0 0 31 2,4,6,9,11 * *", "1970-01-01 00:00:00", "none"},
        {"0 0 0 L-30 2 * *", "1970-01-01 00:00:00", "none"},
        {"0 0 0 ? 2 1#5 2026", "2025-01-01 00:00:00", "none"},
        // leap years
        {"0 0 0 29 2 ? *", "2025-01-01 00:00:00", "2028-02-29 00:00:00"},
        {"0 0 0 29 2 * *", "2025-01-01 00:00:00", "2028-02-29 00:00:00"},
        {"0 0 0 29 2 ? *", "2028-02-29 00:00:00", "2032-02-29 00:00:00"},
        {"0 0 0 29 2 ? *", "2096-03-01 00:00:00", "none"},
        {"0 0 0 29 2 MON *", "2025-01-01 00:00:00", "2025-02-03 00:00:00"},  // either matches
        {"0 0 0 29 2 SUN *", "2028-02-27 00:00:00", "2028-02-29 00:00:00"},
        {"0 0 0 29 2 SUN *", "2028-02-29 00:00:00", "2029-02-04 00:00:00"},
        {"0 0 0 L 2 ? *", "2024-01-01 00:00:00", "2024-02-29 00:00:00"},
        {"0 0 0 L 2 ? *", "2024-02-29 00:00:00", "2025-02-28 00:00:00"},
        {"0 0 0 L 2 ? *", "2099-03-01 00:00:00", "none"},
        {"0 0 0 ? 2 5L *", "2036-01-01 00:00:00", "2036-02-29 00:00:00"},
        // dom/dow either-or (Vixie cron)
        {"0 0 0 13 * FRI *", "2025-01-01 00:00:00", "2025-01-03 00:00:00"},
        {"0 0 0 13 * FRI *", "2025-01-10 00:00:00", "2025-01-13 00:00:00"},
        {"0 0 0 13 * ? *", "2025-01-01 00:00:00", "2025-01-13 00:00:00"},
        {"0 0 0 ? * FRI *", "2025-01-03 00:00:00", "2025-01-10 00:00:00"},
        {"0 0 0 1-7 * MON *", "2025-01-07 00:00:00", "2025-01-13 00:00:00"},
        {"0 0 0 15 * 1#1 *", "2025-01-15 00:00:00", "2025-02-03 00:00:00"},
        {"0 0 0 L * MON *", "2025-01-28 00:00:00", "2025-01-31 00:00:00"},
        // dow numbering: 0 and 7 are Sunday, ranges through 7
        {"0 0 0 ? * 7 *", "2025-01-01 00:00:00", "2025-01-05 00:00:00"},
        {"0 0 0 ? * 0 *", "2025-01-01 00:00:00", "2025-01-05 00:00:00"},
        {"0 0 0 ? * 5-7 *", "2025-01-06 00:00:00", "2025-01-10 00:00:00"},
        {"0 0 0 ? * 5-7 *", "2025-01-11 00:00:00", "2025-01-12 00:00:00"},
        {"0 0 0 ? * 5-7 *", "2025-01-12 00:00:00", "2025-01-17 00:00:00"},
        {"0 0 0 ? * FRI-SUN *", "2025-01-11 00:00:00", "2025-01-12 00:00:00"},
        {"0 0 0 ? * FRI-SUN *", "2025-01-12 00:00:00", "2025-01-17 00:00:00"},
        {"0 0 0 ? * */2 *", "2025-01-05 00:00:00", "2025-01-07 00:00:00"},  // Sun Tue Thu Sat
        {"0 0 0 ? * 1/2 *", "2025-01-10 00:00:00", "2025-01-13 00:00:00"},  // Mon Wed Fri
        // L and L-n
        {"0 0 0 L * * *", "2025-01-31 00:00:00", "2025-02-28 00:00:00"},
        {"0 0 0 L * * *", "2024-01-31 00:00:00", "2024-02-29 00:00:00"},
        {"0 0 0 L * * *", "2025-04-15 00:00:00", "2025-04-30 00:00:00"},
        {"0 0 0 L * * *", "2025-12-31 00:00:00", "2026-01-31 00:00:00"},
        {"0 0 0 L-3 * * *", "2025-02-01 00:00:00", "2025-02-25 00:00:00"},
        {"0 0 0 L-3 * * *", "2024-02-26 00:00:00", "2024-03-28 00:00:00"},
        {"0 0 0 L-0 * * *", "2025-02-01 00:00:00", "2025-02-28 00:00:00"},
        {"0 0 0 L-30 * * *", "2025-01-02 00:00:00", "2025-03-01 00:00:00"},
        {"0 0 0 L,15 * * *", "2025-01-16 00:00:00", "2025-01-31 00:00:00"},
        {"0 0 0 l * * *", "2025-01-16 00:00:00", "2025-01-31 00:00:00"},
        // W: nearest weekday, never leaving the month
        {"0 0 0 1W * * *", "2025-01-31 00:00:00", "2025-02-03 00:00:00"},  // Sat 1st -> Mon 3rd
        {"0 0 0 1W * * *", "2025-05-31 00:00:00", "2025-06-02 00:00:00"},  // Sun 1st -> Mon 2nd
        {"0 0 0 1W * * *", "2025-09-01 00:00:00", "2025-10-01 00:00:00"},  // Mon 1st stays
        {"0 0 0 15W * * *", "2025-03-01 00:00:00", "2025-03-14 00:00:00"},  // Sat -> Fri
        {"0 0 0 15W * * *", "2025-06-01 00:00:00", "2025-06-16 00:00:00"},  // Sun -> Mon
        {"0 0 0 15W * * *", "2025-01-01 00:00:00", "2025-01-15 00:00:00"},  // Wed stays
        {"0 0 0 31W * * *", "2025-08-01 00:00:00", "2025-08-29 00:00:00"},  // Sun 31st -> Fri 29th
        {"0 0 0 31W * * *", "2025-09-01 00:00:00", "2025-10-31 00:00:00"},  // no 31st in September
        {"0 0 0 31W * * *", "2026-01-01 00:00:00", "2026-01-30 00:00:00"},  // Sat 31st -> Fri 30th
        {"0 0 0 30W * * *", "2025-11-01 00:00:00", "2025-11-28 00:00:00"},  // Sun 30th (last) -> Fri
        {"0 0 0 30W * * *", "2025-06-01 00:00:00", "2025-06-30 00:00:00"},  // Mon 30th stays
        {"0 0 0 29W 2 * *", "2025-01-01 00:00:00", "2028-02-29 00:00:00"},
        {"0 0 0 LW * * *", "2025-08-01 00:00:00", "2025-08-29 00:00:00"},  // Sun last -> Fri
        {"0 0 0 LW * * *", "2025-11-01 00:00:00", "2025-11-28 00:00:00"},
        {"0 0 0 LW * * *", "2026-01-01 00:00:00", "2026-01-30 00:00:00"},  // Sat last -> Fri
        {"0 0 0 LW * * *", "2025-03-01 00:00:00", "2025-03-31 00:00:00"},  // Mon last stays
        {"0 0 0 lw * * *", "2025-03-01 00:00:00", "2025-03-31 00:00:00"},
        {"0 0 0 1W,LW * * *", "2025-02-04 00:00:00", "2025-02-28 00:00:00"},
        // last weekday and nth weekday
        {"0 0 0 ? * 5L *", "2025-01-01 00:00:00", "2025-01-31 00:00:00"},
        {"0 0 0 ? * FRIL *", "2025-01-01 00:00:00", "2025-01-31 00:00:00"},
        {"0 0 0 ? * fril *", "2025-01-31 00:00:00", "2025-02-28 00:00:00"},
        {"0 0 0 ? * 0L *", "2025-01-01 00:00:00", "2025-01-26 00:00:00"},
        {"0 0 0 ? * 7L *", "2025-01-01 00:00:00", "2025-01-26 00:00:00"},
        {"0 0 0 ? * 1L *", "2025-03-01 00:00:00", "2025-03-31 00:00:00"},
        {"0 0 0 ? * 1#2 *", "2025-01-01 00:00:00", "2025-01-13 00:00:00"},
        {"0 0 0 ? * MON#2 *", "2025-01-01 00:00:00", "2025-01-13 00:00:00"},
        {"0 0 0 ? * 1#1 *", "2025-09-01 00:00:00", "2025-10-06 00:00:00"},
        {"0 0 0 ? * 1#5 *", "2025-01-01 00:00:00", "2025-03-31 00:00:00"},  // Jan, Feb have 4 Mondays
        {"0 0 0 ? * 6#5 *", "2025-02-01 00:00:00", "2025-03-29 00:00:00"},
        {"0 0 0 ? * 0#1,6#1 *", "2025-06-01 00:00:00", "2025-06-07 00:00:00"},
        {"0 0 0 ? * 7#1 *", "2025-06-02 00:00:00", "2025-07-06 00:00:00"},
        {"0 0 0 ? * sun#5 *", "2025-01-01 00:00:00", "2025-03-30 00:00:00"},
        // macros
        {"@yearly", "2025-06-01 00:00:00", "2026-01-01 00:00:00"},
        {"@annually", "2025-06-01 00:00:00", "2026-01-01 00:00:00"},
        {"@monthly", "2025-06-01 00:00:00", "2025-07-01 00:00:00"},
        {"@weekly", "2025-01-01 00:00:00", "2025-01-05 00:00:00"},
        {"@daily", "2025-01-01 10:00:00", "2025-01-02 00:00:00"},
        {"@midnight", "2025-01-01 10:00:00", "2025-01-02 00:00:00"},
        {"@hourly", "2025-01-01 10:00:00", "2025-01-01 11:00:00"},
        {"  @HOURLY ", "2025-01-01 10:59:59", "2025-01-01 11:00:00"},
        // whitespace between fields
        {" 0\t*/5  *  * * *\t* ", "2025-01-01 00:00:00", "2025-01-01 00:05:00"},
    };
    for (const NextCase& c : cases) {
        INFO(std::string(c.expr), " from ", std::string(c.start));
        CHECK(next_utc(c.expr, c.start) == std::string(c.expected));
    }
}

TEST_CASE("cron next_after walks every firing of a month") {
    // Feeding results back must visit every matching second, in order.
    const auto e = must_parse("0 0 9,17 ? * MON-FRI *");
    std::optional<SysSeconds> t = utc("2025-01-31 23:00:00");
    std::vector<std::string> seen;
    while (true) {
        t = e.next_after(*t, TimeZone::utc());
        REQUIRE(t);
        if (*t >= utc("2025-03-01 00:00:00")) break;
        seen.push_back(show(t));
    }
    REQUIRE(seen.size() == 40);  // 20 weekdays in February 2025, twice a day
    CHECK(seen.front() == "2025-02-03 09:00:00");
    CHECK(seen.back() == "2025-02-28 17:00:00");
}

struct ErrorCase {
    const char* expr;
    const char* message;
    const char* field;
};

TEST_CASE("cron parse errors name the field, the token and why") {
    const ErrorCase cases[] = {
        {"0 0 0 * * 8 *", "field 'dow': '8' is out of range 0-7", "dow"},
        {"0 5-2 * * * * *", "field 'min': '5-2' is a backwards range", "min"},
        {"0 0 */0 * * * *", "field 'hour': step '0' must be at least 1", "hour"},
        {"0 0 0 * FOO * *", "field 'mon': 'FOO' is not a number or a month name", "mon"},
        {"0 0 * * *", "expected 7 fields (sec min hour dom mon dow year), got 5", ""},
        {"0 0 0 * * * * *", "expected 7 fields (sec min hour dom mon dow year), got 8", ""},
        {"", "expected 7 fields (sec min hour dom mon dow year), got 0", ""},
        {"   ", "expected 7 fields (sec min hour dom mon dow year), got 0", ""},
        {"60 * * * * * *", "field 'sec': '60' is out of range 0-59", "sec"},
        {"0 60 * * * * *", "field 'min': '60' is out of range 0-59", "min"},
        {"0 0 24 * * * *", "field 'hour': '24' is out of range 0-23", "hour"},
        {"0 0 0 0 * * *", "field 'dom': '0' is out of range 1-31", "dom"},
        {"0 0 0 32 * * *", "field 'dom': '32' is out of range 1-31", "dom"},
        {"0 0 0 * 0 * *", "field 'mon': '0' is out of range 1-12", "mon"},
        {"0 0 0 * 13 * *", "field 'mon': '13' is out of range 1-12", "mon"},
        {"0 0 0 * * * 1969", "field 'year': '1969' is out of range 1970-2099", "year"},
        {"0 0 0 * * * 2100", "field 'year': '2100' is out of range 1970-2099", "year"},
        {"0 0 0 * * * 99999999999", "field 'year': '99999999999' is out of range 1970-2099", "year"},
        {"0 0 0 * * 1-9 *", "field 'dow': '9' is out of range 0-7", "dow"},
        {"0 0 0 * * FUN *", "field 'dow': 'FUN' is not a number or a weekday name", "dow"},
        {"0 0 0 * * MON-FUN *", "field 'dow': 'FUN' is not a number or a weekday name", "dow"},
        {"0 0 0 * JAN-FOO * *", "field 'mon': 'FOO' is not a number or a month name", "mon"},
        {"0 0 0 * * JAN *", "field 'dow': 'JAN' is not a number or a weekday name", "dow"},
        {"0 0 0 * MON * *", "field 'mon': 'MON' is not a number or a month name", "mon"},
        {"0 x * * * * *", "field 'min': 'x' is not a number", "min"},
        {"0 1.5 * * * * *", "field 'min': '1.5' is not a number", "min"},
        {"0 0 0 * * SAT-MON *", "field 'dow': 'SAT-MON' is a backwards range", "dow"},
        {"0 0 0 * DEC-JAN * *", "field 'mon': 'DEC-JAN' is a backwards range", "mon"},
        {"0 0 0 * * * 2030-2020", "field 'year': '2030-2020' is a backwards range", "year"},
        {"0 10-5/2 * * * * *", "field 'min': '10-5' is a backwards range", "min"},
        {"0 */x * * * * *", "field 'min': step 'x' is not a number", "min"},
        {"0 1-5/ * * * * *", "field 'min': step '' is not a number", "min"},
        {"*/0 * * * * * *", "field 'sec': step '0' must be at least 1", "sec"},
        {"0 0 0 * * * */0", "field 'year': step '0' must be at least 1", "year"},
        {"0 -5 * * * * *", "field 'min': '-5' is not a valid range (expected 'a-b')", "min"},
        {"0 5- * * * * *", "field 'min': '5-' is not a valid range (expected 'a-b')", "min"},
        {"0 /5 * * * * *", "field 'min': '/5' is not valid: a step needs '*', a value or a range before '/'", "min"},
        {"0 1,,2 * * * * *", "field 'min': '1,,2' has an empty list element", "min"},
        {"0 1, * * * * *", "field 'min': '1,' has an empty list element", "min"},
        {"0 0 ? * * * *", "field 'hour': '?' is only allowed in dom and dow", "hour"},
        {"0 0 0 * ? * *", "field 'mon': '?' is only allowed in dom and dow", "mon"},
        {"0 0 0 1,? * * *", "field 'dom': '?' must be the whole field, not part of a list", "dom"},
        {"0 0 L * * * *", "field 'hour': 'L' is not valid here: 'L' is only allowed in dom and dow", "hour"},
        {"0 0 0 * L * *", "field 'mon': 'L' is not valid here: 'L' is only allowed in dom and dow", "mon"},
        {"0 0 0 * * * L", "field 'year': 'L' is not valid here: 'L' is only allowed in dom and dow", "year"},
        {"0 5W * * * * *", "field 'min': '5W' is not valid here: 'W' is only allowed in dom", "min"},
        {"0 0 1#2 * * * *", "field 'hour': '1#2' is not valid here: '#' is only allowed in dow", "hour"},
        {"0 0 0 5L * * *", "field 'dom': '5L' is not valid here: 'L' after a weekday (last weekday) is only allowed in dow", "dom"},
        {"0 0 0 1#2 * * *", "field 'dom': '1#2' is not valid here: '#' (nth weekday) is only allowed in dow", "dom"},
        {"0 0 0 * * L *",
         "field 'dow': 'L' is not valid here: 'L' alone is only allowed in dom; in dow put a weekday before it (e.g. '5L')", "dow"},
        {"0 0 0 ? * 15W *", "field 'dow': '15W' is not valid here: 'W' is only allowed in dom", "dow"},
        {"0 0 0 ? * LW *", "field 'dow': 'LW' is not valid here: 'W' is only allowed in dom", "dow"},
        {"0 0 0 ? * L-2 *", "field 'dow': 'L-2' is not valid here: 'L-n' is only allowed in dom", "dow"},
        {"0 0 0 * * 1#6 *", "field 'dow': '1#6' is out of range: the occurrence after '#' must be 1-5", "dow"},
        {"0 0 0 * * 1#0 *", "field 'dow': '1#0' is out of range: the occurrence after '#' must be 1-5", "dow"},
        {"0 0 0 * * 1# *", "field 'dow': '1#' is out of range: the occurrence after '#' must be 1-5", "dow"},
        {"0 0 0 * * #2 *", "field 'dow': '#2' is not valid: '#' needs a weekday before it (e.g. '1#2')", "dow"},
        {"0 0 0 * * 8#2 *", "field 'dow': '8' is out of range 0-7", "dow"},
        {"0 0 0 * * FOO#2 *", "field 'dow': 'FOO' is not a number or a weekday name", "dow"},
        {"0 0 0 * * 9L *", "field 'dow': '9' is out of range 0-7", "dow"},
        {"0 0 0 * * FOOL *", "field 'dow': 'FOO' is not a number or a weekday name", "dow"},
        {"0 0 0 L-31 * * *", "field 'dom': 'L-31' is out of range: the offset in 'L-n' must be 0-30", "dom"},
        {"0 0 0 L-x * * *", "field 'dom': 'L-x' is not valid: 'L-n' needs a number of days n", "dom"},
        {"0 0 0 32W * * *", "field 'dom': '32' is out of range 1-31", "dom"},
        {"0 0 0 0W * * *", "field 'dom': '0' is out of range 1-31", "dom"},
        {"0 0 0 W * * *", "field 'dom': 'W' is not valid: 'W' needs a day number before it (e.g. '15W')", "dom"},
        {"0 0 0 xW * * *", "field 'dom': 'xW' is not valid: 'W' needs a day number before it (e.g. '15W')", "dom"},
        {"@reboot", "'@reboot' is not supported: saltpeter schedules jobs by time only", ""},
        {"@every5m",
         "unknown macro '@every5m' (expected @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly)", ""},
        {"@daily 0", "unknown macro '@daily 0' (expected @yearly, @annually, @monthly, @weekly, @daily, @midnight or @hourly)",
         ""},
    };
    for (const ErrorCase& c : cases) {
        INFO(std::string(c.expr));
        const auto r = CronExpression::parse(c.expr);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().message == c.message);
        CHECK(r.error().field == c.field);
    }
}

TEST_CASE("cron from_fields takes the fields separately") {
    CronExpression::Fields f;
    f.min = "*/15";
    f.hour = " 2 ";
    f.dom = "?";
    f.mon = "*";
    f.dow = "MON-FRI";
    auto r = CronExpression::from_fields(f);
    REQUIRE(r.ok());
    CHECK(r->text() == "0 */15 2 ? * MON-FRI *");
    CHECK(r->fields().hour == "2");
    CHECK(r->fields().sec == "0");
    CHECK(r->fields().year == "*");
    CHECK(show(r->next_after(utc("2025-01-03 02:45:00"), TimeZone::utc())) == "2025-01-06 02:00:00");

    CronExpression::Fields empty;
    empty.min = "0";
    empty.hour = "";
    empty.dom = "*";
    empty.mon = "*";
    empty.dow = "*";
    auto e = CronExpression::from_fields(empty);
    REQUIRE_FALSE(e.ok());
    CHECK(e.error().message == "field 'hour': the field is empty");
    CHECK(e.error().field == "hour");

    CronExpression::Fields bad = f;
    bad.dow = "MON-XYZ";
    auto b = CronExpression::from_fields(bad);
    REQUIRE_FALSE(b.ok());
    CHECK(b.error().message == "field 'dow': 'XYZ' is not a number or a weekday name");

    CronExpression::Fields spaced = f;
    spaced.min = "1, 2";
    auto s = CronExpression::from_fields(spaced);
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().message == "field 'min': ' 2' is not a number");
}

TEST_CASE("cron text, fields and macros") {
    const auto e = must_parse("  0 30 2 * * MON-FRI *  ");
    CHECK(e.text() == "0 30 2 * * MON-FRI *");
    CHECK(e.fields().dow == "MON-FRI");
    const auto d = must_parse("@daily");
    CHECK(d.text() == "@daily");
    CHECK(d.fields().hour == "0");
    CHECK(d.fields().dow == "*");
    const auto w = must_parse("@weekly");
    CHECK(w.fields().dow == "0");
    CHECK(must_parse("@yearly").fields().mon == "1");
    CHECK(must_parse("@hourly").fields().hour == "*");
}

TEST_CASE("cron follows_real_time is about the hour field only") {
    CHECK(must_parse("0 30 * * * * *").follows_real_time());
    CHECK(must_parse("0 30 */2 * * * *").follows_real_time());
    CHECK(must_parse("0 30 */1 * * * *").follows_real_time());
    CHECK(must_parse("@hourly").follows_real_time());
    CHECK_FALSE(must_parse("0 30 0-23 * * * *").follows_real_time());
    CHECK_FALSE(must_parse("0 30 2 * * * *").follows_real_time());
    CHECK_FALSE(must_parse("0 30 1-5/2 * * * *").follows_real_time());
    CHECK_FALSE(must_parse("* * 2,3 * * * *").follows_real_time());
    CHECK_FALSE(must_parse("@daily").follows_real_time());
}

TEST_CASE("cron search bounds are the calendar dates they claim") {
    // next_after clamps to these instants; a wrong literal would show up here.
    CHECK(show(must_parse("0 0 0 * * * *").next_after(utc("1969-12-28 00:00:00"), TimeZone::utc())) == "1970-01-01 00:00:00");
    CHECK(show(must_parse("59 59 23 31 12 * 2099").next_after(utc("2099-12-31 23:59:58"), TimeZone::utc())) ==
          "2099-12-31 23:59:59");
    CHECK(show(must_parse("0 0 0 * * * *").next_after(SysSeconds::min(), TimeZone::utc())) == "1970-01-01 00:00:00");
    CHECK(show(must_parse("0 0 0 * * * *").next_after(SysSeconds::max(), TimeZone::utc())) == "none");
    const TimeZone berlin = zone("Europe/Berlin");
    CHECK(show(must_parse("0 0 0 * * * *").next_after(SysSeconds::min(), berlin)) == "1969-12-31 23:00:00");
    CHECK(show(must_parse("0 0 * * * * *").next_after(SysSeconds::min(), berlin)) == "1969-12-31 23:00:00");
    CHECK(show(must_parse("0 0 * * * * *").next_after(SysSeconds::max(), berlin)) == "none");
    CHECK(days_from_civil(1969, 12, 29) * 86400 == -259'200);
    CHECK(days_from_civil(2100, 1, 3) * 86400 == 4'102'617'600);
}

TEST_CASE("cron matches checks every field") {
    const auto e = must_parse("15 30 2 L-1 * * 2025");
    CHECK(e.matches(CivilTime{2025, 2, 27, 2, 30, 15}));
    CHECK_FALSE(e.matches(CivilTime{2025, 2, 28, 2, 30, 15}));
    CHECK_FALSE(e.matches(CivilTime{2025, 2, 27, 2, 30, 16}));
    CHECK_FALSE(e.matches(CivilTime{2025, 2, 27, 3, 30, 15}));
    CHECK_FALSE(e.matches(CivilTime{2026, 2, 27, 2, 30, 15}));
    CHECK_FALSE(e.matches(CivilTime{1960, 2, 27, 2, 30, 15}));
    const auto either = must_parse("0 0 0 13 * FRI *");
    CHECK(either.matches(CivilTime{2025, 1, 3, 0, 0, 0}));   // Friday
    CHECK(either.matches(CivilTime{2025, 1, 13, 0, 0, 0}));  // the 13th, a Monday
    CHECK_FALSE(either.matches(CivilTime{2025, 1, 14, 0, 0, 0}));
    const auto both_star = must_parse("0 0 0 ? * ? *");
    CHECK(both_star.matches(CivilTime{2025, 1, 14, 0, 0, 0}));
}

// ---------------------------------------------------------------------------------------------
// Time zones. Expected instants are UTC; the comments give the wall clock.

struct ZoneCase {
    const char* zone;
    const char* expr;
    const char* start;  // UTC
    const char* expected;
};

TEST_CASE("cron next_after across DST changes") {
    const ZoneCase cases[] = {
        // Europe/Berlin, spring forward 2025-03-30 02:00 CET -> 03:00 CEST (01:00 UTC).
        {"Europe/Berlin", "0 30 2 * * * *", "2025-03-29 12:00:00", "2025-03-30 01:00:00"},  // 02:30 skipped -> 03:00 CEST
        {"Europe/Berlin", "0 30 2 * * * *", "2025-03-30 01:00:00", "2025-03-31 00:30:00"},  // once only
        {"Europe/Berlin", "0 30 2 * * * *", "2025-03-29 01:30:00", "2025-03-30 01:00:00"},  // t = 02:30 CET the day before
        {"Europe/Berlin", "0 0 2 * * * *", "2025-03-29 12:00:00", "2025-03-30 01:00:00"},
        {"Europe/Berlin", "0 0 3 * * * *", "2025-03-29 12:00:00", "2025-03-30 01:00:00"},  // 03:00 CEST exists
        {"Europe/Berlin", "0 0 3 * * * *", "2025-03-30 01:00:00", "2025-03-31 01:00:00"},
        {"Europe/Berlin", "0 0,15,30,45 2 * * * *", "2025-03-29 12:00:00", "2025-03-30 01:00:00"},  // all collapse
        {"Europe/Berlin", "0 0,15,30,45 2 * * * *", "2025-03-30 01:00:00", "2025-03-31 00:00:00"},
        {"Europe/Berlin", "0 59 1 * * * *", "2025-03-29 12:00:00", "2025-03-30 00:59:00"},  // 01:59 CET exists
        {"Europe/Berlin", "0 30 2 * * * *", "2025-03-30 00:59:59", "2025-03-30 01:00:00"},
        // Berlin fall back 2025-10-26 03:00 CEST -> 02:00 CET (01:00 UTC); 02:00-02:59 twice.
        {"Europe/Berlin", "0 30 2 * * * *", "2025-10-25 12:00:00", "2025-10-26 00:30:00"},  // first 02:30 (CEST)
        {"Europe/Berlin", "0 30 2 * * * *", "2025-10-26 00:30:00", "2025-10-27 01:30:00"},  // not again at 02:30 CET
        {"Europe/Berlin", "0 30 2 * * * *", "2025-10-26 01:15:00", "2025-10-27 01:30:00"},  // t in the second 02:15
        {"Europe/Berlin", "0 30 2 * * * *", "2025-10-26 00:45:00", "2025-10-27 01:30:00"},
        {"Europe/Berlin", "0 0,50 2 * * * *", "2025-10-26 01:40:00", "2025-10-27 01:00:00"},  // second 02:40
        {"Europe/Berlin", "0 0 3 * * * *", "2025-10-26 01:15:00", "2025-10-26 02:00:00"},  // 03:00 CET after overlap
        {"Europe/Berlin", "0 0 3 * * * *", "2025-10-26 00:30:00", "2025-10-26 02:00:00"},
        {"Europe/Berlin", "0 0 1 * * * *", "2025-10-25 12:00:00", "2025-10-25 23:00:00"},
        // Berlin real-time jobs.
        {"Europe/Berlin", "0 30 * * * * *", "2025-03-30 00:00:00", "2025-03-30 00:30:00"},  // 01:30 CET
        {"Europe/Berlin", "0 30 * * * * *", "2025-03-30 00:30:00", "2025-03-30 01:30:00"},  // 03:30 CEST, no 02:30
        {"Europe/Berlin", "0 30 * * * * *", "2025-10-25 23:45:00", "2025-10-26 00:30:00"},  // 02:30 CEST
        {"Europe/Berlin", "0 30 * * * * *", "2025-10-26 00:30:00", "2025-10-26 01:30:00"},  // 02:30 CET again
        {"Europe/Berlin", "0 30 * * * * *", "2025-10-26 01:30:00", "2025-10-26 02:30:00"},  // 03:30 CET
        {"Europe/Berlin", "0 0 */2 * * * *", "2025-03-30 00:00:00", "2025-03-30 02:00:00"},  // 04:00 CEST
        {"Europe/Berlin", "0 0 */2 * * * *", "2025-10-25 23:30:00", "2025-10-26 00:00:00"},  // 02:00 CEST
        {"Europe/Berlin", "0 0 */2 * * * *", "2025-10-26 00:00:00", "2025-10-26 01:00:00"},  // 02:00 CET
        {"Europe/Berlin", "0 0 */2 * * * *", "2025-10-26 01:00:00", "2025-10-26 03:00:00"},  // 04:00 CET
        {"Europe/Berlin", "0 */20 * * * * *", "2025-03-30 00:40:00", "2025-03-30 01:00:00"},  // 03:00 CEST
        // Ordinary days and far years (TZ footer rules).
        {"Europe/Berlin", "0 0 0 1 1 * *", "2025-06-01 00:00:00", "2025-12-31 23:00:00"},
        {"Europe/Berlin", "0 30 2 * * * *", "2099-03-28 12:00:00", "2099-03-29 01:00:00"},
        {"Europe/Berlin", "0 0 0 * * * *", "2099-12-30 23:00:00", "none"},
        {"Europe/Berlin", "0 0 0 30 2 * *", "2025-01-01 00:00:00", "none"},
        {"Europe/Berlin", "0 0 * 30 2 * *", "2025-01-01 00:00:00", "none"},
        // America/New_York, spring 2025-03-09 02:00 EST -> 03:00 EDT (07:00 UTC).
        {"America/New_York", "0 30 2 * * * *", "2025-03-08 12:00:00", "2025-03-09 07:00:00"},
        {"America/New_York", "0 30 2 * * * *", "2025-03-09 07:00:00", "2025-03-10 06:30:00"},
        {"America/New_York", "0 30 * * * * *", "2025-03-09 06:30:00", "2025-03-09 07:30:00"},  // 03:30 EDT
        // NY fall back 2025-11-02 02:00 EDT -> 01:00 EST (06:00 UTC); 01:00-01:59 twice.
        {"America/New_York", "0 30 1 * * * *", "2025-11-01 12:00:00", "2025-11-02 05:30:00"},  // 01:30 EDT
        {"America/New_York", "0 30 1 * * * *", "2025-11-02 05:30:00", "2025-11-03 06:30:00"},
        {"America/New_York", "0 30 1 * * * *", "2025-11-02 06:10:00", "2025-11-03 06:30:00"},  // t in second 01:10
        {"America/New_York", "0 30 2 * * * *", "2025-11-01 12:00:00", "2025-11-02 07:30:00"},  // 02:30 EST once
        {"America/New_York", "0 30 * * * * *", "2025-11-02 05:00:00", "2025-11-02 05:30:00"},
        {"America/New_York", "0 30 * * * * *", "2025-11-02 05:30:00", "2025-11-02 06:30:00"},  // 01:30 EST
        {"America/New_York", "0 30 * * * * *", "2025-11-02 06:30:00", "2025-11-02 07:30:00"},
        {"America/New_York", "0 0 0 * * * *", "2025-11-02 03:00:00", "2025-11-02 04:00:00"},  // 00:00 EDT
        {"America/New_York", "0 0 0 * * * *", "2025-11-02 04:00:00", "2025-11-03 05:00:00"},  // 00:00 EST
        // Australia/Lord_Howe: +10:30 standard, +11 DST; the clocks move by 30 minutes.
        // Spring 2025-10-05 02:00 -> 02:30 (2025-10-04 15:30 UTC).
        {"Australia/Lord_Howe", "0 15 2 * * * *", "2025-10-04 00:00:00", "2025-10-04 15:30:00"},  // skipped -> 02:30
        {"Australia/Lord_Howe", "0 15 2 * * * *", "2025-10-04 15:30:00", "2025-10-05 15:15:00"},
        {"Australia/Lord_Howe", "0 45 2 * * * *", "2025-10-04 00:00:00", "2025-10-04 15:45:00"},  // 02:45 exists
        {"Australia/Lord_Howe", "0 15 * * * * *", "2025-10-04 14:50:00", "2025-10-04 16:15:00"},  // 03:15, no 02:15
        // Fall 2025-04-06 02:00 (+11) -> 01:30 (+10:30) (2025-04-05 15:00 UTC); 01:30-01:59 twice.
        {"Australia/Lord_Howe", "0 45 1 * * * *", "2025-04-05 00:00:00", "2025-04-05 14:45:00"},  // first 01:45
        {"Australia/Lord_Howe", "0 45 1 * * * *", "2025-04-05 14:45:00", "2025-04-06 15:15:00"},
        {"Australia/Lord_Howe", "0 45 1 * * * *", "2025-04-05 15:05:00", "2025-04-06 15:15:00"},  // t in second 01:35
        {"Australia/Lord_Howe", "0 45 * * * * *", "2025-04-05 14:45:00", "2025-04-05 15:15:00"},  // 01:45 again
        {"Australia/Lord_Howe", "0 45 * * * * *", "2025-04-05 15:15:00", "2025-04-05 16:15:00"},
        {"Australia/Lord_Howe", "0 15 1 * * * *", "2025-04-05 00:00:00", "2025-04-05 14:15:00"},
    };
    for (const ZoneCase& c : cases) {
        INFO(std::string(c.zone), " ", std::string(c.expr), " from ", std::string(c.start));
        const TimeZone z = zone(c.zone);
        CHECK(show(must_parse(c.expr).next_after(utc(c.start), z)) == std::string(c.expected));
    }
}

// ---------------------------------------------------------------------------------------------
// Property test: next_after against a direct reading of the rules, second by second over the
// seconds the sec field allows (every zone used here has whole-minute offsets since 1970).

namespace {

struct RandomExpr {
    std::string text;
    std::vector<int> secs;
};

RandomExpr random_expr(std::mt19937_64& rng) {
    auto pick = [&](const std::vector<const char*>& v) {
        return std::string(v[std::uniform_int_distribution<std::size_t>(0, v.size() - 1)(rng)]);
    };
    struct Sec {
        const char* text;
        std::vector<int> values;
    };
    static const std::vector<Sec> secs = {{"0", {0}}, {"30", {30}}, {"*/20", {0, 20, 40}}, {"15,45", {15, 45}}, {"59", {59}}};
    const Sec& s = secs[std::uniform_int_distribution<std::size_t>(0, secs.size() - 1)(rng)];
    const std::string min = pick({"*", "*/5", "0", "30", "15,45", "0-10/5", "59", "7", "*/7", "20-40"});
    const std::string hour = pick({"*", "*/2", "*/3", "2", "1-3", "0", "2,3", "3", "23", "1", "22-23", "*", "1/4"});
    const std::string dom = pick({"*", "*", "*", "?", "1", "L", "15W", "1W", "LW", "L-2", "1-10", "*/2", "31", "31W", "29", "30W"});
    const std::string mon = pick({"*", "*", "*", "*", "3,10", "2", "4,11", "JAN-JUN", "*/3"});
    const std::string dow =
        pick({"*", "*", "*", "?", "MON-FRI", "0", "5L", "1#2", "SAT,SUN", "FRIL", "6#5", "7", "0#1", "5-7"});
    const std::string year = pick({"*", "*", "*", "*", "*", "2030-2040", "*/3"});
    return RandomExpr{std::string(s.text) + " " + min + " " + hour + " " + dom + " " + mon + " " + dow + " " + year,
                      s.values};
}

std::optional<SysSeconds> reference_next(const CronExpression& e, const std::vector<int>& secs, SysSeconds t,
                                         const TimeZone& z, SysSeconds window_end) {
    std::optional<SysSeconds> best;
    const bool real_time = e.follows_real_time();
    const std::int64_t t0 = t.time_since_epoch().count();
    std::int64_t minute = (t0 + 1) / 60 * 60 - ((t0 + 1) % 60 < 0 ? 60 : 0);
    for (; !best && SysSeconds{seconds{minute}} <= window_end; minute += 60) {
        for (int s : secs) {
            const SysSeconds u{seconds{minute + s}};
            if (u <= t || u > window_end) continue;
            const LocalSeconds w = z.to_local(u);
            if (!e.matches(to_civil(w))) continue;
            if (!real_time) {
                // A repeated wall time fires at its first occurrence only.
                const LocalInfo info = z.local_info(w);
                if (info.kind == LocalInfo::Kind::ambiguous && u != SysSeconds{w.time_since_epoch() - info.first.offset})
                    continue;
            }
            best = u;
            break;
        }
    }
    if (real_time) return best;
    // A fixed-hour job whose wall time is skipped fires once when the gap ends.
    ZoneSpan span = z.span_at(t + seconds{1});
    while (span.end <= window_end && (!best || span.end < *best)) {
        const ZoneSpan next = z.span_at(span.end);
        if (next.offset > span.offset && span.end > t) {
            const std::int64_t gap_begin = (span.end.time_since_epoch() + span.offset).count();
            const std::int64_t gap_end = (span.end.time_since_epoch() + next.offset).count();
            bool hit = false;
            for (std::int64_t m = gap_begin / 60 * 60; m < gap_end && !hit; m += 60) {
                for (int s : secs) {
                    const std::int64_t w = m + s;
                    if (w >= gap_begin && w < gap_end && e.matches(to_civil(LocalSeconds{seconds{w}}))) hit = true;
                }
            }
            if (hit) return span.end;
        }
        span = next;
    }
    return best;
}

}  // namespace

TEST_CASE("cron next_after agrees with a brute-force reference") {
    const std::uint64_t seed = 20251026;
    std::mt19937_64 rng(seed);
    const char* zones[] = {"UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"};
    const seconds window{3 * 86400};
    int compared = 0;
    int total = 0;
    for (const char* zone_name : zones) {
        const TimeZone z = zone(zone_name);
        for (int i = 0; i < 250; ++i) {
            const RandomExpr re = random_expr(rng);
            const CronExpression e = must_parse(re.text);
            // Start near a zone transition, near a month end, or anywhere.
            const int kind = std::uniform_int_distribution<int>(0, 3)(rng);
            const int year = std::uniform_int_distribution<int>(1971, 2098)(rng);
            const std::int64_t day_in_year = std::uniform_int_distribution<std::int64_t>(0, 364)(rng);
            const std::int64_t back = std::uniform_int_distribution<std::int64_t>(0, 2 * 86400)(rng);
            SysSeconds t{seconds{(days_from_civil(year, 1, 1) + day_in_year) * 86400 +
                                 std::uniform_int_distribution<std::int64_t>(0, 86399)(rng)}};
            if (kind == 0 || kind == 3) {
                // kind 3 starts just after a change, inside the repeated hour of a fall-back.
                const ZoneSpan s = z.span_at(t);
                if (s.end < SysSeconds{seconds{days_from_civil(2099, 1, 1) * 86400}})
                    t = kind == 0 ? s.end - seconds{back} : s.end + seconds{back % 5400};
            } else if (kind == 1) {
                const unsigned month = std::uniform_int_distribution<unsigned>(1, 12)(rng);
                t = SysSeconds{seconds{days_from_civil(year, month, days_in_month(year, month)) * 86400 + 86400 - back}};
            }
            // Follow a few firings in a row so each expression is checked several times.
            for (int step = 0; step < 3; ++step) {
                ++total;
                const SysSeconds window_end = t + window;
                const auto expected = reference_next(e, re.secs, t, z, window_end);
                const auto actual = e.next_after(t, z);
                INFO("seed ", seed, " zone ", std::string(zone_name), " expr '", re.text, "' from ", show(t), " (", t.time_since_epoch().count(),
                     ")");
                if (expected) {
                    ++compared;
                    REQUIRE(show(actual) == show(expected));
                    t = *expected;
                } else {
                    REQUIRE((!actual || *actual > window_end));
                    break;
                }
            }
        }
    }
    MESSAGE("compared ", compared, " of ", total, " next_after calls with the reference");
    CHECK(compared > total / 3);
}
