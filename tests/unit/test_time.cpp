#include <doctest/doctest.h>

#include "saltpeter/time.hpp"

using namespace saltpeter;

TEST_CASE("civil date round trips over four centuries") {
    std::int64_t expected = days_from_civil(1900, 1, 1);
    unsigned weekday = weekday_from_days(expected);
    CHECK(weekday == 1);  // 1900-01-01 was a Monday
    for (int y = 1900; y <= 2300; ++y) {
        for (unsigned m = 1; m <= 12; ++m) {
            for (unsigned d = 1; d <= days_in_month(y, m); ++d) {
                const std::int64_t days = days_from_civil(y, m, d);
                REQUIRE(days == expected);
                const CivilTime c = civil_from_days(days);
                REQUIRE(c.year == y);
                REQUIRE(c.month == m);
                REQUIRE(c.day == d);
                REQUIRE(weekday_from_days(days) == weekday);
                ++expected;
                weekday = (weekday + 1) % 7;
            }
        }
    }
}

TEST_CASE("leap years follow the Gregorian rule") {
    CHECK(is_leap_year(2000));
    CHECK(is_leap_year(2024));
    CHECK_FALSE(is_leap_year(1900));
    CHECK_FALSE(is_leap_year(2100));
    CHECK(days_in_month(2024, 2) == 29);
    CHECK(days_in_month(2100, 2) == 28);
    CHECK(days_in_month(2027, 4) == 30);
}

TEST_CASE("wall-clock seconds convert to civil time and back, before and after 1970") {
    const CivilTime c{2027, 3, 28, 2, 30, 15};
    const LocalSeconds t = from_civil(c);
    CHECK(t.time_since_epoch().count() == 1806201015);
    CHECK(to_civil(t) == c);
    const CivilTime before{1969, 12, 31, 23, 59, 59};
    CHECK(from_civil(before).time_since_epoch().count() == -1);
    CHECK(to_civil(LocalSeconds{std::chrono::seconds{-1}}) == before);
}
