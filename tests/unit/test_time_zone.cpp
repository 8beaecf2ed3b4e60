#include <doctest/doctest.h>

#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "saltpeter/time_zone.hpp"

using namespace saltpeter;
using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

namespace {

SysSeconds utc_at(int y, unsigned mo, unsigned d, unsigned h = 0, unsigned mi = 0, unsigned s = 0) {
    return SysSeconds{from_civil(CivilTime{y, mo, d, h, mi, s}).time_since_epoch()};
}

LocalSeconds wall(int y, unsigned mo, unsigned d, unsigned h = 0, unsigned mi = 0, unsigned s = 0) {
    return from_civil(CivilTime{y, mo, d, h, mi, s});
}

TimeZone zone(const char* name) {
    auto z = TimeZone::locate(name);
    REQUIRE_MESSAGE(z.ok(), (z.ok() ? std::string() : z.error().message));
    return z.value();
}

std::string read_zone_file(const std::string& name) {
    const std::string path = "/usr/share/zoneinfo/" + name;
    std::ifstream in(path, std::ios::binary);
    REQUIRE(in);
    std::string bytes(static_cast<std::size_t>(std::filesystem::file_size(path)), '\0');
    in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(in.gcount() == static_cast<std::streamsize>(bytes.size()));
    return bytes;
}

// The transition that follows t, found through span_at.
SysSeconds next_transition(const TimeZone& z, SysSeconds t) { return z.span_at(t).end; }

// Sets TZ for the duration of a scope and restores it afterwards, so glibc can be asked.
class ScopedTz {
public:
    explicit ScopedTz(const std::string& tz) {
        if (const char* old = std::getenv("TZ")) m_old = old;
        setenv("TZ", tz.c_str(), 1);
        tzset();
    }
    ~ScopedTz() {
        if (m_old) {
            setenv("TZ", m_old->c_str(), 1);
        } else {
            unsetenv("TZ");
        }
        tzset();
    }
    ScopedTz(const ScopedTz&) = delete;
    ScopedTz& operator=(const ScopedTz&) = delete;

private:
    std::optional<std::string> m_old;
};

struct GlibcInfo {
    long offset;
    bool is_dst;
    std::string abbreviation;
};

GlibcInfo glibc_at(SysSeconds t) {
    const std::time_t tt = static_cast<std::time_t>(t.time_since_epoch().count());
    std::tm tm{};
    REQUIRE(localtime_r(&tt, &tm) != nullptr);
    return GlibcInfo{tm.tm_gmtoff, tm.tm_isdst > 0, tm.tm_zone};
}

void check_against_glibc(const TimeZone& z, SysSeconds t) {
    const GlibcInfo g = glibc_at(t);
    const ZoneSpan span = z.span_at(t);
    INFO(z.name() << " at " << format_iso8601(t, TimeZone::utc()));
    REQUIRE(span.offset.count() == g.offset);
    REQUIRE(span.is_dst == g.is_dst);
    REQUIRE(z.abbreviation_at(t) == g.abbreviation);
    REQUIRE(span.begin <= t);
    REQUIRE(t < span.end);
}

// A minimal TZif writer for hand-made files.
struct TzifType {
    std::int32_t utoff;
    std::uint8_t isdst;
    std::uint8_t desigidx;
};

void put32(std::string& out, std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}
void put64(std::string& out, std::uint64_t v) {
    put32(out, static_cast<std::uint32_t>(v >> 32));
    put32(out, static_cast<std::uint32_t>(v));
}

void put_block(std::string& out, char version, int time_size, const std::vector<std::int64_t>& times,
               const std::vector<std::uint8_t>& indices, const std::vector<TzifType>& types, const std::string& chars) {
    out += "TZif";
    out.push_back(version);
    out.append(15, '\0');
    put32(out, 0);  // isutcnt
    put32(out, 0);  // isstdcnt
    put32(out, 0);  // leapcnt
    put32(out, static_cast<std::uint32_t>(times.size()));
    put32(out, static_cast<std::uint32_t>(types.size()));
    put32(out, static_cast<std::uint32_t>(chars.size()));
    for (const std::int64_t t : times) {
        if (time_size == 8) {
            put64(out, static_cast<std::uint64_t>(t));
        } else {
            put32(out, static_cast<std::uint32_t>(static_cast<std::int32_t>(t)));
        }
    }
    for (const std::uint8_t i : indices) out.push_back(static_cast<char>(i));
    for (const TzifType& t : types) {
        put32(out, static_cast<std::uint32_t>(t.utoff));
        out.push_back(static_cast<char>(t.isdst));
        out.push_back(static_cast<char>(t.desigidx));
    }
    out += chars;
}

std::string make_tzif_v1(const std::vector<std::int64_t>& times, const std::vector<std::uint8_t>& indices,
                         const std::vector<TzifType>& types, const std::string& chars) {
    std::string out;
    put_block(out, '\0', 4, times, indices, types, chars);
    return out;
}

std::string make_tzif_v2(char version, const std::vector<std::int64_t>& times,
                         const std::vector<std::uint8_t>& indices, const std::vector<TzifType>& types,
                         const std::string& chars, const std::string& footer) {
    std::string out;
    // A "slim" v1 block: one type, one designation byte.
    put_block(out, version, 4, {}, {}, {TzifType{0, 0, 0}}, std::string(1, '\0'));
    put_block(out, version, 8, times, indices, types, chars);
    out += "\n" + footer + "\n";
    return out;
}

}  // namespace

TEST_CASE("Europe/Berlin changes on the last Sundays of March and October at 01:00 UTC, also in 2095") {
    const TimeZone berlin = zone("Europe/Berlin");
    CHECK(berlin.name() == "Europe/Berlin");
    CHECK_FALSE(berlin.is_utc());

    const ZoneSpan winter = berlin.span_at(utc_at(2026, 1, 15));
    CHECK(winter.offset == hours(1));
    CHECK_FALSE(winter.is_dst);
    CHECK(winter.end == utc_at(2026, 3, 29, 1));
    CHECK(berlin.abbreviation_at(utc_at(2026, 1, 15)) == "CET");

    const ZoneSpan summer = berlin.span_at(utc_at(2026, 3, 29, 1));
    CHECK(summer.begin == utc_at(2026, 3, 29, 1));
    CHECK(summer.end == utc_at(2026, 10, 25, 1));
    CHECK(summer.offset == hours(2));
    CHECK(summer.is_dst);
    CHECK(berlin.abbreviation_at(utc_at(2026, 7, 1)) == "CEST");
    CHECK(berlin.span_at(utc_at(2026, 3, 29, 1) - seconds(1)).offset == hours(1));

    // Far beyond the file's explicit transitions: only the footer rule knows these.
    CHECK(next_transition(berlin, utc_at(2095, 1, 1)) == utc_at(2095, 3, 27, 1));
    CHECK(next_transition(berlin, utc_at(2095, 4, 1)) == utc_at(2095, 10, 30, 1));
    CHECK(berlin.span_at(utc_at(2095, 7, 1)).offset == hours(2));
    CHECK(berlin.span_at(utc_at(2095, 7, 1)).is_dst);
    CHECK(berlin.span_at(utc_at(2099, 12, 31)).offset == hours(1));
    CHECK(berlin.to_local(utc_at(2095, 7, 1, 12)) == wall(2095, 7, 1, 14));
}

TEST_CASE("America/New_York 2027: second Sunday of March 07:00 UTC, first Sunday of November 06:00 UTC") {
    const TimeZone ny = zone("America/New_York");
    CHECK(next_transition(ny, utc_at(2027, 1, 1)) == utc_at(2027, 3, 14, 7));
    const ZoneSpan edt = ny.span_at(utc_at(2027, 3, 14, 7));
    CHECK(edt.offset == hours(-4));
    CHECK(edt.is_dst);
    CHECK(edt.end == utc_at(2027, 11, 7, 6));
    CHECK(ny.span_at(utc_at(2027, 11, 7, 6)).offset == hours(-5));
    CHECK(ny.abbreviation_at(utc_at(2027, 12, 1)) == "EST");
    CHECK(ny.abbreviation_at(utc_at(2027, 6, 1)) == "EDT");
}

TEST_CASE("Australia/Lord_Howe shifts by 30 minutes between +10:30 and +11:00") {
    const TimeZone lh = zone("Australia/Lord_Howe");
    // DST ends on the first Sunday of April at 02:00 daylight time, starts on the first Sunday of
    // October at 02:00 standard time.
    const ZoneSpan autumn = lh.span_at(utc_at(2026, 3, 1));
    CHECK(autumn.offset == minutes(11 * 60));
    CHECK(autumn.is_dst);
    CHECK(autumn.end == SysSeconds{wall(2026, 4, 5, 2).time_since_epoch() - hours(11)});
    const ZoneSpan winter = lh.span_at(autumn.end);
    CHECK(winter.offset == minutes(10 * 60 + 30));
    CHECK_FALSE(winter.is_dst);
    CHECK(winter.end == SysSeconds{wall(2026, 10, 4, 2).time_since_epoch() - minutes(10 * 60 + 30)});
    // And in the footer years.
    CHECK(next_transition(lh, utc_at(2090, 6, 1)) ==
          SysSeconds{wall(2090, 10, 1, 2).time_since_epoch() - minutes(10 * 60 + 30)});
}

TEST_CASE("Australia/Sydney has summer time across the new year") {
    const TimeZone syd = zone("Australia/Sydney");
    const ZoneSpan summer = syd.span_at(utc_at(2030, 1, 1));
    CHECK(summer.offset == hours(11));
    CHECK(summer.is_dst);
    CHECK(summer.begin.time_since_epoch() < utc_at(2030, 1, 1).time_since_epoch());
    CHECK(summer.begin.time_since_epoch() > utc_at(2029, 9, 30).time_since_epoch());
    CHECK(syd.span_at(utc_at(2030, 7, 1)).offset == hours(10));
    CHECK(syd.span_at(utc_at(2098, 12, 25)).offset == hours(11));
    CHECK(syd.span_at(utc_at(2098, 6, 25)).offset == hours(10));
}

TEST_CASE("Asia/Kolkata has one offset, +05:30, for all recent and future times") {
    const TimeZone kol = zone("Asia/Kolkata");
    const ZoneSpan span = kol.span_at(utc_at(2026, 6, 1));
    CHECK(span.offset == minutes(5 * 60 + 30));
    CHECK_FALSE(span.is_dst);
    CHECK(span.end == SysSeconds::max());
    CHECK(span.begin < utc_at(1950, 1, 1));
    CHECK(kol.span_at(utc_at(2099, 1, 1)).begin == span.begin);
    CHECK_FALSE(kol.is_utc());
    CHECK(format_iso8601(utc_at(2026, 6, 1, 12), kol) == "2026-06-01T17:30:00+05:30");
}

TEST_CASE("America/Nuuk's footer has negative rule times") {
    // <-02>2<-01>,M3.5.0/-1,M10.5.0/0: at -1:00 on the last Sunday of March (standard time) and at
    // 0:00 on the last Sunday of October (daylight time), both 01:00 UTC.
    for (const char* name : {"America/Nuuk", "America/Godthab"}) {
        const TimeZone nuuk = zone(name);
        CHECK(next_transition(nuuk, utc_at(2040, 1, 1)) == utc_at(2040, 3, 25, 1));
        CHECK(next_transition(nuuk, utc_at(2040, 4, 1)) == utc_at(2040, 10, 28, 1));
        CHECK(nuuk.span_at(utc_at(2040, 7, 1)).offset == hours(-1));
        CHECK(nuuk.span_at(utc_at(2040, 12, 1)).offset == hours(-2));
        CHECK(nuuk.abbreviation_at(utc_at(2040, 12, 1)) == "-02");
    }
    auto posix = TimeZone::from_posix("nuuk", "<-02>2<-01>,M3.5.0/-1,M10.5.0/0");
    REQUIRE(posix.ok());
    CHECK(next_transition(posix.value(), utc_at(2040, 1, 1)) == utc_at(2040, 3, 25, 1));
    CHECK(next_transition(posix.value(), utc_at(2040, 4, 1)) == utc_at(2040, 10, 28, 1));
}

TEST_CASE("Pacific/Apia skipped 2011-12-30 and dropped DST in 2021") {
    const TimeZone apia = zone("Pacific/Apia");
    const ZoneSpan last = apia.span_at(utc_at(2030, 1, 1));
    CHECK(last.offset == hours(13));
    CHECK_FALSE(last.is_dst);
    CHECK(last.begin == utc_at(2021, 4, 3, 14));
    CHECK(last.end == SysSeconds::max());
    CHECK(apia.span_at(utc_at(2098, 7, 1)).begin == last.begin);

    const LocalInfo skipped = apia.local_info(wall(2011, 12, 30, 12));
    CHECK(skipped.kind == LocalInfo::Kind::nonexistent);
    CHECK(skipped.first.offset == hours(-10));
    CHECK(skipped.second.offset == hours(14));
    CHECK(skipped.second.begin == utc_at(2011, 12, 30, 10));
}

TEST_CASE("UTC zones") {
    for (const char* name : {"UTC", "Etc/UTC", "GMT"}) {
        const TimeZone z = zone(name);
        CHECK(z.is_utc());
        CHECK(z.name() == name);
        const ZoneSpan span = z.span_at(utc_at(2026, 5, 5));
        CHECK(span.offset == seconds(0));
        CHECK(span.begin == SysSeconds::min());
        CHECK(span.end == SysSeconds::max());
    }
    CHECK(TimeZone::utc().is_utc());
    CHECK(TimeZone::utc().name() == "UTC");
    CHECK(TimeZone::utc().abbreviation_at(utc_at(2000, 1, 1)) == "UTC");
    CHECK(format_iso8601(utc_at(2026, 5, 5, 7, 8, 9), TimeZone::utc()) == "2026-05-05T07:08:09+00:00");

    // The real Etc/UTC file qualifies too, a zone with history does not.
    auto file_utc = TimeZone::from_tzif("Etc/UTC", read_zone_file("Etc/UTC"));
    REQUIRE(file_utc.ok());
    CHECK(file_utc.value().is_utc());
    CHECK(file_utc.value().abbreviation_at(utc_at(2000, 1, 1)) == "UTC");
    CHECK_FALSE(zone("Africa/Abidjan").is_utc());
    CHECK(zone("Africa/Abidjan").span_at(utc_at(2026, 1, 1)).offset == seconds(0));
}

TEST_CASE("span_at agrees with glibc's localtime_r at random instants and at every transition") {
    const std::vector<const char*> zones = {
        "Europe/Berlin",       "America/New_York", "Australia/Lord_Howe", "Australia/Sydney",
        "Asia/Kolkata",        "America/Nuuk",     "Pacific/Apia",        "Europe/Dublin",
        "America/Sao_Paulo",   "Africa/Casablanca", "Asia/Tehran",        "Pacific/Chatham",
        "America/Santiago",    "Europe/London",    "America/St_Johns",    "Antarctica/Troll",
        "Asia/Gaza",           "America/Havana",   "Pacific/Auckland",    "Europe/Moscow"};
    std::mt19937_64 rng(20260101);
    const std::int64_t t1970 = utc_at(1970, 1, 1).time_since_epoch().count();
    const std::int64_t t2037 = utc_at(2037, 12, 31).time_since_epoch().count();
    const std::int64_t t2100 = utc_at(2100, 12, 31).time_since_epoch().count();
    std::uniform_int_distribution<std::int64_t> past(t1970, t2037);
    std::uniform_int_distribution<std::int64_t> future(t2037, t2100);
    std::size_t transitions = 0;
    for (const char* name : zones) {
        const TimeZone z = zone(name);
        const ScopedTz tz(name);
        for (int i = 0; i < 1500; ++i) {
            check_against_glibc(z, SysSeconds{seconds{past(rng)}});
            check_against_glibc(z, SysSeconds{seconds{future(rng)}});
        }
        // Walk every span boundary from 1970 to 2100 and check both sides of it.
        SysSeconds t = utc_at(1970, 1, 1);
        while (t < SysSeconds{seconds{t2100}}) {
            const ZoneSpan span = z.span_at(t);
            if (span.end == SysSeconds::max()) break;
            check_against_glibc(z, span.end - seconds(1));
            check_against_glibc(z, span.end);
            t = span.end;
            ++transitions;
        }
    }
    // Twenty zones, most with DST for decades: there must be thousands of boundaries.
    CHECK(transitions > 3000);
}

TEST_CASE("local_info: gaps, overlaps and unique times") {
    SUBCASE("Europe/Berlin") {
        const TimeZone berlin = zone("Europe/Berlin");
        const LocalInfo gap = berlin.local_info(wall(2026, 3, 29, 2, 30));
        CHECK(gap.kind == LocalInfo::Kind::nonexistent);
        CHECK(gap.first.offset == hours(1));
        CHECK(gap.second.offset == hours(2));
        CHECK(gap.first.end == utc_at(2026, 3, 29, 1));
        CHECK(gap.second.begin == utc_at(2026, 3, 29, 1));
        // The edges of the gap: 02:00 is skipped, 01:59:59 and 03:00 exist.
        CHECK(berlin.local_info(wall(2026, 3, 29, 2)).kind == LocalInfo::Kind::nonexistent);
        CHECK(berlin.local_info(wall(2026, 3, 29, 1, 59, 59)).kind == LocalInfo::Kind::unique);
        CHECK(berlin.local_info(wall(2026, 3, 29, 3)).kind == LocalInfo::Kind::unique);
        CHECK(berlin.local_info(wall(2026, 3, 29, 3)).first.offset == hours(2));

        const LocalInfo overlap = berlin.local_info(wall(2026, 10, 25, 2, 30));
        CHECK(overlap.kind == LocalInfo::Kind::ambiguous);
        CHECK(overlap.first.offset == hours(2));
        CHECK(overlap.second.offset == hours(1));
        CHECK(overlap.second.begin == utc_at(2026, 10, 25, 1));
        CHECK(berlin.local_info(wall(2026, 10, 25, 2)).kind == LocalInfo::Kind::ambiguous);
        CHECK(berlin.local_info(wall(2026, 10, 25, 3)).kind == LocalInfo::Kind::unique);
        CHECK(berlin.local_info(wall(2026, 10, 25, 1, 59, 59)).kind == LocalInfo::Kind::unique);

        const LocalInfo unique = berlin.local_info(wall(2026, 6, 1, 12));
        CHECK(unique.kind == LocalInfo::Kind::unique);
        CHECK(unique.first.offset == hours(2));
        CHECK(unique.second.begin == unique.first.begin);
        CHECK(unique.second.offset == unique.first.offset);

        // Footer years behave the same.
        CHECK(berlin.local_info(wall(2095, 3, 27, 2, 15)).kind == LocalInfo::Kind::nonexistent);
        CHECK(berlin.local_info(wall(2095, 10, 30, 2, 15)).kind == LocalInfo::Kind::ambiguous);
    }
    SUBCASE("America/New_York") {
        const TimeZone ny = zone("America/New_York");
        const LocalInfo gap = ny.local_info(wall(2027, 3, 14, 2, 30));
        CHECK(gap.kind == LocalInfo::Kind::nonexistent);
        CHECK(gap.second.begin == utc_at(2027, 3, 14, 7));
        const LocalInfo overlap = ny.local_info(wall(2027, 11, 7, 1, 30));
        CHECK(overlap.kind == LocalInfo::Kind::ambiguous);
        CHECK(overlap.first.offset == hours(-4));
        CHECK(overlap.second.offset == hours(-5));
        const LocalInfo unique = ny.local_info(wall(2027, 11, 7, 2, 30));
        CHECK(unique.kind == LocalInfo::Kind::unique);
        CHECK(unique.first.offset == hours(-5));
    }
    SUBCASE("Australia/Lord_Howe") {
        const TimeZone lh = zone("Australia/Lord_Howe");
        // Spring: 02:00 standard becomes 02:30 daylight.
        CHECK(lh.local_info(wall(2026, 10, 4, 1, 59, 59)).kind == LocalInfo::Kind::unique);
        const LocalInfo gap = lh.local_info(wall(2026, 10, 4, 2, 15));
        CHECK(gap.kind == LocalInfo::Kind::nonexistent);
        CHECK(gap.second.offset - gap.first.offset == minutes(30));
        CHECK(lh.local_info(wall(2026, 10, 4, 2, 30)).kind == LocalInfo::Kind::unique);
        // Autumn: 02:00 daylight becomes 01:30 standard.
        CHECK(lh.local_info(wall(2026, 4, 5, 1, 29, 59)).kind == LocalInfo::Kind::unique);
        const LocalInfo overlap = lh.local_info(wall(2026, 4, 5, 1, 45));
        CHECK(overlap.kind == LocalInfo::Kind::ambiguous);
        CHECK(overlap.first.offset == minutes(11 * 60));
        CHECK(overlap.second.offset == minutes(10 * 60 + 30));
        CHECK(lh.local_info(wall(2026, 4, 5, 2)).kind == LocalInfo::Kind::unique);
    }
    SUBCASE("Asia/Pyongyang moved its standard offset without DST") {
        const TimeZone py = zone("Asia/Pyongyang");
        // 2015-08-15 00:00 +09:00 became 2015-08-14 23:30 +08:30: a half-hour overlap.
        const LocalInfo overlap = py.local_info(wall(2015, 8, 14, 23, 45));
        CHECK(overlap.kind == LocalInfo::Kind::ambiguous);
        CHECK_FALSE(overlap.first.is_dst);
        CHECK_FALSE(overlap.second.is_dst);
        CHECK(overlap.first.offset == hours(9));
        CHECK(overlap.second.offset == minutes(8 * 60 + 30));
        // 2018-05-04 23:30 +08:30 became 2018-05-05 00:00 +09:00: a half-hour gap.
        const LocalInfo gap = py.local_info(wall(2018, 5, 4, 23, 45));
        CHECK(gap.kind == LocalInfo::Kind::nonexistent);
        CHECK(gap.second.begin == utc_at(2018, 5, 4, 15));
    }
}

TEST_CASE("local_info is consistent with span_at for random wall-clock times") {
    std::mt19937_64 rng(7);
    const std::int64_t lo = wall(1971, 1, 1).time_since_epoch().count();
    const std::int64_t hi = wall(2099, 12, 31).time_since_epoch().count();
    std::uniform_int_distribution<std::int64_t> dist(lo, hi);
    std::size_t kinds[3] = {0, 0, 0};
    for (const char* name : {"Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Pacific/Apia",
                             "America/Nuuk", "Europe/Dublin", "Pacific/Chatham"}) {
        const TimeZone z = zone(name);
        for (int i = 0; i < 20000; ++i) {
            // Half the probes land within an hour of a transition so that gaps and overlaps are hit.
            std::int64_t l = dist(rng);
            if (i % 2 == 0) {
                const ZoneSpan s = z.span_at(SysSeconds{seconds{l}});
                if (s.end != SysSeconds::max()) {
                    l = s.end.time_since_epoch().count() + s.offset.count() + static_cast<std::int64_t>(rng() % 7200) -
                        3600;
                }
            }
            const LocalSeconds local{seconds{l}};
            const LocalInfo info = z.local_info(local);
            INFO(name << " " << l);
            ++kinds[static_cast<int>(info.kind)];
            if (info.kind == LocalInfo::Kind::nonexistent) {
                REQUIRE(info.first.end == info.second.begin);
                REQUIRE(info.second.offset > info.first.offset);
                // Neither side's offset maps the wall time into its own span.
                REQUIRE(info.first.end <= SysSeconds{seconds{l}} - info.first.offset);
                REQUIRE(SysSeconds{seconds{l}} - info.second.offset < info.second.begin);
            } else {
                for (const ZoneSpan& s : {info.first, info.second}) {
                    const SysSeconds u = SysSeconds{seconds{l}} - s.offset;
                    REQUIRE(z.span_at(u).begin == s.begin);
                    REQUIRE(z.to_local(u) == local);
                }
                if (info.kind == LocalInfo::Kind::ambiguous) {
                    REQUIRE(info.first.begin < info.second.begin);
                    REQUIRE(info.first.offset > info.second.offset);
                }
            }
        }
    }
    CHECK(kinds[0] > 1000);
    CHECK(kinds[1] > 1000);
    CHECK(kinds[2] > 1000);
}

TEST_CASE("from_posix builds zones from TZ strings") {
    SUBCASE("CET matches Europe/Berlin's future transitions") {
        auto cet = TimeZone::from_posix("cet", "CET-1CEST,M3.5.0,M10.5.0/3");
        REQUIRE(cet.ok());
        const TimeZone berlin = zone("Europe/Berlin");
        CHECK(cet.value().name() == "cet");
        SysSeconds a = utc_at(2030, 1, 1);
        SysSeconds b = a;
        for (int i = 0; i < 100; ++i) {
            a = next_transition(cet.value(), a);
            b = next_transition(berlin, b);
            REQUIRE(a == b);
            REQUIRE(cet.value().span_at(a).offset == berlin.span_at(b).offset);
        }
        CHECK(cet.value().abbreviation_at(utc_at(2030, 7, 1)) == "CEST");
    }
    SUBCASE("a DST name without rules gets the US rules") {
        auto est = TimeZone::from_posix("est", "EST5EDT");
        REQUIRE(est.ok());
        CHECK(next_transition(est.value(), utc_at(2027, 1, 1)) == utc_at(2027, 3, 14, 7));
        CHECK(next_transition(est.value(), utc_at(2027, 4, 1)) == utc_at(2027, 11, 7, 6));
    }
    SUBCASE("explicit DST offset, Jn and n rules with times") {
        // J60 is always March 1; 59 is February 29 in leap years and March 1 otherwise.
        auto z = TimeZone::from_posix("x", "AAA-3BBB-4:30,J60/1:30:15,300/-2");
        REQUIRE(z.ok());
        CHECK(next_transition(z.value(), utc_at(2028, 1, 1)) == utc_at(2028, 2, 29, 22, 30, 15));
        CHECK(z.value().span_at(utc_at(2028, 6, 1)).offset == minutes(4 * 60 + 30));
        // Day 300 (zero-based) of 2028 is October 27; -2:00 daylight time (+04:30) is 17:30 UTC on the 26th.
        CHECK(next_transition(z.value(), utc_at(2028, 6, 1)) == utc_at(2028, 10, 26, 17, 30));
        auto n = TimeZone::from_posix("n", "AAA-3BBB,59/0,200");
        REQUIRE(n.ok());
        CHECK(next_transition(n.value(), utc_at(2028, 1, 1)) == utc_at(2028, 2, 28, 21));
        CHECK(next_transition(n.value(), utc_at(2027, 1, 1)) == utc_at(2027, 2, 28, 21));
    }
    SUBCASE("no DST") {
        auto plus7 = TimeZone::from_posix("plus7", "<+07>-7");
        REQUIRE(plus7.ok());
        const ZoneSpan span = plus7.value().span_at(utc_at(2050, 1, 1));
        CHECK(span.offset == hours(7));
        CHECK(span.begin == SysSeconds::min());
        CHECK(span.end == SysSeconds::max());
        CHECK(plus7.value().abbreviation_at(utc_at(2050, 1, 1)) == "+07");
        CHECK_FALSE(plus7.value().is_utc());
        auto utc0 = TimeZone::from_posix("u", "UTC0");
        REQUIRE(utc0.ok());
        CHECK(utc0.value().is_utc());
        auto minus = TimeZone::from_posix("m", "<-0330>3:30");
        REQUIRE(minus.ok());
        CHECK(minus.value().span_at(utc_at(2050, 1, 1)).offset == -minutes(3 * 60 + 30));
    }
    SUBCASE("all-year DST") {
        // RFC 8536's example: DST from January 1 00:00 to December 31 25:00, i.e. always.
        auto z = TimeZone::from_posix("allyear", "EST5EDT,0/0,J365/25");
        REQUIRE(z.ok());
        for (int year : {1990, 2024, 2027, 2099, 2150}) {
            for (unsigned month : {1u, 6u, 12u}) {
                const ZoneSpan span = z.value().span_at(utc_at(year, month, month == 12 ? 31 : 1, 23));
                INFO(year << "-" << month);
                CHECK(span.offset == hours(-4));
                CHECK(span.is_dst);
            }
        }
        CHECK(z.value().span_at(utc_at(2024, 6, 1)).end == SysSeconds::max());
        CHECK(z.value().local_info(wall(2027, 1, 1, 0, 30)).kind == LocalInfo::Kind::unique);
    }
    SUBCASE("bad strings give clear errors") {
        struct Bad {
            const char* tz;
            const char* why;
        };
        const Bad bad[] = {
            {"", "expected the standard time name"},
            {"C-1", "shorter than 3 characters"},
            {"CET", "expected the UTC offset after 'CET'"},
            {"CET-", "expected a number for the UTC offset hours"},
            {"CET-25", "UTC offset hours is larger than 24"},
            {"CET-1:60", "UTC offset minutes is larger than 59"},
            {"<+03", "unterminated '<'"},
            {"<+0 3>-3", "invalid character in the quoted"},
            {"CET-1CEST,M3.5.0", "expected ',' before the DST end rule"},
            {"CET-1CEST;M3.5.0,M10.5.0", "expected ',' before the DST start rule"},
            {"CET-1CEST,M13.5.0,M10.5.0", "DST start month is larger than 12"},
            {"CET-1CEST,M0.5.0,M10.5.0", "DST start month must be 1-12"},
            {"CET-1CEST,M3.6.0,M10.5.0", "DST start week is larger than 5"},
            {"CET-1CEST,M3.5.7,M10.5.0", "DST start weekday is larger than 6"},
            {"CET-1CEST,M3.5,M10.5.0", "expected '.' after the DST start week"},
            {"CET-1CEST,M3.5.0/168,M10.5.0", "DST start time hours is larger than 167"},
            {"CET-1CEST,J0,J100", "J0 does not exist"},
            {"CET-1CEST,J366,J100", "DST start day is larger than 365"},
            {"CET-1CEST,X1,J100", "expected the DST start rule"},
            {"CET-1CEST,M3.5.0,M10.5.0/3 ", "unexpected text after the DST end rule"},
            {"CET-1 CEST", "expected the daylight saving time name"},
            {"CET-99999999999999999999", "UTC offset hours is larger than 24"},
        };
        for (const Bad& b : bad) {
            INFO(b.tz);
            auto z = TimeZone::from_posix("Test/Zone", b.tz);
            REQUIRE_FALSE(z.ok());
            const std::string& msg = z.error().message;
            INFO(msg);
            CHECK(msg.find("time zone 'Test/Zone'") == 0);
            CHECK(msg.find("invalid POSIX TZ string '" + std::string(b.tz) + "'") != std::string::npos);
            CHECK(msg.find(b.why) != std::string::npos);
        }
    }
}

TEST_CASE("from_tzif reads hand-made v1 and v2+ files") {
    SUBCASE("v1 uses the 32-bit block") {
        const std::string bytes =
            make_tzif_v1({0, 1000000}, {1, 0}, {TzifType{3600, 0, 0}, TzifType{7200, 1, 4}}, std::string("AAA\0BBB\0", 8));
        auto z = TimeZone::from_tzif("v1", bytes);
        REQUIRE_MESSAGE(z.ok(), (z.ok() ? "" : z.error().message));
        CHECK(z.value().span_at(SysSeconds{seconds{-5}}).offset == hours(1));
        CHECK(z.value().span_at(SysSeconds{seconds{-5}}).end == SysSeconds{seconds{0}});
        CHECK(z.value().span_at(SysSeconds{seconds{5}}).offset == hours(2));
        CHECK(z.value().span_at(SysSeconds{seconds{5}}).is_dst);
        CHECK(z.value().abbreviation_at(SysSeconds{seconds{5}}) == "BBB");
        CHECK(z.value().span_at(utc_at(2090, 1, 1)).offset == hours(1));
        CHECK(z.value().span_at(utc_at(2090, 1, 1)).begin == SysSeconds{seconds{1000000}});
    }
    for (const char version : {'2', '3', '4'}) {
        SUBCASE("v2+ uses the 64-bit block and expands the footer") {
            // A transition before 1901 needs the 64-bit block; the footer takes over after 2000.
            const std::int64_t t2000 = utc_at(2000, 1, 1).time_since_epoch().count();
            const std::string bytes = make_tzif_v2(
                version, {-3000000000LL, t2000}, {1, 1},
                {TzifType{1800, 0, 0}, TzifType{3600, 0, 4}, TzifType{7200, 1, 8}},
                std::string("LMT\0CET\0CEST\0", 13), "CET-1CEST,M3.5.0,M10.5.0/3");
            auto z = TimeZone::from_tzif("v2", bytes);
            REQUIRE_MESSAGE(z.ok(), (z.ok() ? "" : z.error().message));
            // The second transition changes nothing and disappears.
            CHECK(z.value().span_at(SysSeconds{seconds{-3000000001LL}}).offset == minutes(30));
            CHECK(z.value().span_at(SysSeconds{seconds{-3000000000LL}}).offset == hours(1));
            CHECK(next_transition(z.value(), SysSeconds{seconds{-3000000000LL}}) == utc_at(2000, 3, 26, 1));
            CHECK(next_transition(z.value(), utc_at(2095, 1, 1)) == utc_at(2095, 3, 27, 1));
            CHECK(z.value().abbreviation_at(utc_at(2095, 7, 1)) == "CEST");
        }
    }
    SUBCASE("a v2 file with no transitions and only a footer") {
        const std::string bytes =
            make_tzif_v2('2', {}, {}, {TzifType{-18000, 0, 0}}, std::string("EST\0", 4), "EST5EDT,M3.2.0,M11.1.0");
        auto z = TimeZone::from_tzif("footer-only", bytes);
        REQUIRE(z.ok());
        CHECK(next_transition(z.value(), utc_at(2027, 1, 1)) == utc_at(2027, 3, 14, 7));
        CHECK_FALSE(z.value().is_utc());
    }
}

TEST_CASE("from_tzif rejects truncated and garbage bytes with clear errors") {
    const std::string berlin = read_zone_file("Europe/Berlin");
    REQUIRE(TimeZone::from_tzif("Europe/Berlin", berlin).ok());
    // Every proper prefix is invalid: the footer's closing newline is the last byte.
    for (std::size_t len = 0; len < berlin.size(); ++len) {
        auto z = TimeZone::from_tzif("Europe/Berlin", std::string_view(berlin).substr(0, len));
        REQUIRE_FALSE(z.ok());
        REQUIRE(z.error().message.find("time zone 'Europe/Berlin': ") == 0);
    }
    CHECK(TimeZone::from_tzif("x", "").error().message ==
          "time zone 'x': truncated TZif data: the first header needs 44 bytes, 0 left");
    CHECK(TimeZone::from_tzif("x", std::string(60, 'z')).error().message ==
          "time zone 'x': not a TZif file (bad magic in the first header)");
    CHECK(TimeZone::from_tzif("x", berlin.substr(0, 100)).error().message.find("truncated TZif data") !=
          std::string::npos);

    const std::vector<TzifType> types = {TzifType{3600, 0, 0}};
    const std::string chars("CET\0", 4);
    CHECK(TimeZone::from_tzif("x", make_tzif_v1({5, 3}, {0, 0}, types, chars)).error().message.find("ascending") !=
          std::string::npos);
    CHECK(TimeZone::from_tzif("x", make_tzif_v1({5}, {3}, types, chars)).error().message.find("local time type 3") !=
          std::string::npos);
    CHECK(TimeZone::from_tzif("x", make_tzif_v1({}, {}, {TzifType{3600, 0, 9}}, chars))
              .error()
              .message.find("designation index out of range") != std::string::npos);
    CHECK(TimeZone::from_tzif("x", make_tzif_v1({}, {}, types, "CET")).error().message.find("unterminated designation") !=
          std::string::npos);
    CHECK(TimeZone::from_tzif("x", make_tzif_v1({}, {}, {}, chars)).error().message.find("no local time types") !=
          std::string::npos);
    CHECK(TimeZone::from_tzif("x", make_tzif_v1({}, {}, {TzifType{400000, 0, 0}}, chars))
              .error()
              .message.find("out-of-range UTC offset") != std::string::npos);
    CHECK(TimeZone::from_tzif("x", make_tzif_v2('2', {}, {}, types, chars, "CET-1CEST,M3.5.0"))
              .error()
              .message.find("invalid TZ string footer") != std::string::npos);
    std::string no_footer = make_tzif_v2('2', {}, {}, types, chars, "CET-1");
    no_footer.resize(no_footer.size() - 7);
    CHECK(TimeZone::from_tzif("x", no_footer).error().message == "time zone 'x': missing TZ string footer");
    std::string bad_version = make_tzif_v1({}, {}, types, chars);
    bad_version[4] = '1';
    CHECK(TimeZone::from_tzif("x", bad_version).error().message.find("unsupported TZif version") != std::string::npos);

    // Random corruption: every outcome is either a zone or an error, never a crash (see the
    // sanitizer build); valid results must still answer queries.
    std::mt19937 rng(42);
    std::size_t rejected = 0;
    for (int i = 0; i < 3000; ++i) {
        std::string bytes = berlin;
        const int flips = 1 + static_cast<int>(rng() % 4);
        for (int f = 0; f < flips; ++f) bytes[rng() % bytes.size()] = static_cast<char>(rng());
        auto z = TimeZone::from_tzif("fuzz", bytes);
        if (z.ok()) {
            (void)z.value().span_at(utc_at(2026, 1, 1));
            (void)z.value().local_info(wall(2026, 3, 29, 2, 30));
        } else {
            ++rejected;
            REQUIRE(z.error().message.find("time zone 'fuzz': ") == 0);
        }
    }
    CHECK(rejected > 0);
    std::size_t garbage_rejected = 0;
    for (int i = 0; i < 2000; ++i) {
        std::string bytes = "TZif2";
        bytes.resize(5 + rng() % 200);
        for (std::size_t j = 5; j < bytes.size(); ++j) bytes[j] = static_cast<char>(rng() % 4 == 0 ? rng() : 0);
        if (!TimeZone::from_tzif("garbage", bytes).ok()) ++garbage_rejected;
    }
    CHECK(garbage_rejected > 1900);
}

TEST_CASE("locate validates names, reads $TZDIR and caches zones") {
    for (const char* name : {"", "/etc/localtime", "../zoneinfo/Europe/Berlin", "Europe/../Europe/Berlin",
                             "No/Such_Zone", "Europe"}) {
        auto z = TimeZone::locate(name);
        REQUIRE_FALSE(z.ok());
        CHECK(z.error().message == "unknown time zone '" + std::string(name) + "'");
    }
    const TimeZone a = zone("Europe/Berlin");
    const TimeZone b = zone("Europe/Berlin");
    CHECK(&a.name() == &b.name());  // one shared instance

    std::vector<std::thread> threads;
    std::vector<const std::string*> names(8, nullptr);
    for (std::size_t i = 0; i < names.size(); ++i) {
        threads.emplace_back([&names, i] {
            auto z = TimeZone::locate("Asia/Tokyo");
            if (z.ok()) names[i] = &z.value().name();
        });
    }
    for (std::thread& t : threads) t.join();
    for (const std::string* n : names) {
        REQUIRE(n != nullptr);
        CHECK(n == names[0]);
    }

    const std::filesystem::path dir = std::filesystem::temp_directory_path() / "saltpeter_tzdir_test";
    std::filesystem::create_directories(dir / "Test");
    { std::ofstream(dir / "Test" / "Broken", std::ios::binary) << "definitely not TZif, but long enough for a header"; }
    std::filesystem::copy_file("/usr/share/zoneinfo/Asia/Kolkata", dir / "Test" / "Mine",
                               std::filesystem::copy_options::overwrite_existing);
    const char* old = std::getenv("TZDIR");
    const std::optional<std::string> saved = old ? std::optional<std::string>(old) : std::nullopt;
    setenv("TZDIR", dir.c_str(), 1);
    auto broken = TimeZone::locate("Test/Broken");
    auto mine = TimeZone::locate("Test/Mine");
    auto berlin_missing = TimeZone::locate("Europe/Berlin");
    if (saved) {
        setenv("TZDIR", saved->c_str(), 1);
    } else {
        unsetenv("TZDIR");
    }
    std::filesystem::remove_all(dir);
    REQUIRE_FALSE(broken.ok());
    CHECK(broken.error().message == "time zone 'Test/Broken': not a TZif file (bad magic in the first header)");
    REQUIRE(mine.ok());
    CHECK(mine.value().span_at(utc_at(2026, 1, 1)).offset == minutes(330));
    REQUIRE_FALSE(berlin_missing.ok());
    CHECK(berlin_missing.error().message == "unknown time zone 'Europe/Berlin'");
}

TEST_CASE("format_iso8601 prints the offset in force, with seconds only when needed") {
    const TimeZone berlin = zone("Europe/Berlin");
    CHECK(format_iso8601(utc_at(2027, 3, 28, 1), berlin) == "2027-03-28T03:00:00+02:00");
    CHECK(format_iso8601(utc_at(2027, 3, 28, 0, 59, 59), berlin) == "2027-03-28T01:59:59+01:00");
    CHECK(format_iso8601(utc_at(1890, 1, 1), berlin) == "1890-01-01T00:53:28+00:53:28");
    CHECK(format_iso8601(utc_at(2027, 1, 1), zone("America/St_Johns")) == "2026-12-31T20:30:00-03:30");
    CHECK(format_iso8601(utc_at(2027, 1, 1), zone("America/New_York")) == "2026-12-31T19:00:00-05:00");
}

TEST_CASE("parse_iso8601 reads offsets, local times and dates") {
    const TimeZone berlin = zone("Europe/Berlin");
    const TimeZone utc = TimeZone::utc();
    CHECK(parse_iso8601("2027-03-28T03:00:00+02:00", utc).value() == utc_at(2027, 3, 28, 1));
    CHECK(parse_iso8601("2027-03-28 03:00:00+0200", utc).value() == utc_at(2027, 3, 28, 1));
    CHECK(parse_iso8601("2027-03-28T03:00:00Z", berlin).value() == utc_at(2027, 3, 28, 3));
    CHECK(parse_iso8601("2027-03-28T03:00:00.999Z", berlin).value() == utc_at(2027, 3, 28, 3));
    CHECK(parse_iso8601("2027-03-28T03:00:00,5-05:30", berlin).value() == utc_at(2027, 3, 28, 8, 30));
    CHECK(parse_iso8601("2027-03-28", utc).value() == utc_at(2027, 3, 28));
    CHECK(parse_iso8601("2027-03-28", berlin).value() == utc_at(2027, 3, 27, 23));
    CHECK(parse_iso8601("2027-07-01T12:00:00", berlin).value() == utc_at(2027, 7, 1, 10));
    // A skipped wall time takes the end of the gap, a repeated one its first occurrence.
    CHECK(parse_iso8601("2026-03-29T02:30:00", berlin).value() == utc_at(2026, 3, 29, 1));
    CHECK(parse_iso8601("2026-10-25T02:30:00", berlin).value() == utc_at(2026, 10, 25, 0, 30));
    CHECK(parse_iso8601("2024-02-29T00:00:00Z", utc).value() == utc_at(2024, 2, 29));

    // Round trips through format_iso8601 in zones with odd offsets.
    std::mt19937_64 rng(99);
    std::uniform_int_distribution<std::int64_t> dist(utc_at(1900, 1, 1).time_since_epoch().count(),
                                                     utc_at(2099, 12, 31).time_since_epoch().count());
    for (const char* name : {"Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata", "America/St_Johns", "UTC"}) {
        const TimeZone z = zone(name);
        for (int i = 0; i < 2000; ++i) {
            const SysSeconds t{seconds{dist(rng)}};
            const std::string text = format_iso8601(t, z);
            const auto back = parse_iso8601(text, utc);
            INFO(name << " " << text);
            if (z.span_at(t).offset.count() % 60 != 0) {
                // ±HH:MM:SS (LMT) is printed but is not an accepted input offset.
                REQUIRE_FALSE(back.ok());
                continue;
            }
            REQUIRE(back.ok());
            REQUIRE(back.value() == t);
            REQUIRE(format_iso8601(back.value(), z) == text);
        }
    }
}

TEST_CASE("parse_iso8601 errors name the text and the problem") {
    const TimeZone utc = TimeZone::utc();
    struct Bad {
        const char* text;
        const char* why;
    };
    const Bad bad[] = {
        {"", "expected a 4-digit year at position 1"},
        {"27-03-28", "expected a 4-digit year"},
        {"2027/03/28", "expected '-' after the year"},
        {"2027-13-01", "month 13 is out of range 1-12"},
        {"2027-00-01", "month 0 is out of range 1-12"},
        {"2027-02-29", "day 29 does not exist in 2027-02"},
        {"2027-04-31", "day 31 does not exist in 2027-04"},
        {"2027-03-28X10:00:00", "expected 'T' or a space after the date"},
        {"2027-03-28T24:00:00", "hour 24 is out of range 0-23"},
        {"2027-03-28T10:60:00", "minute 60 is out of range 0-59"},
        {"2027-03-28T10:00:60", "second 60 is out of range 0-59"},
        {"2027-03-28T10:00", "expected ':' after the minutes"},
        {"2027-03-28T10:00:00.", "expected digits after the decimal point"},
        {"2027-03-28T10:00:00+2", "expected a 2-digit offset hour"},
        {"2027-03-28T10:00:00+02", "expected 2-digit offset minutes"},
        {"2027-03-28T10:00:00+24:00", "offset hour 24 is out of range 0-23"},
        {"2027-03-28T10:00:00+02:60", "offset minute 60 is out of range 0-59"},
        {"2027-03-28T10:00:00Q", "unexpected text after the time"},
        {"2027-03-28T10:00:00Z ", "unexpected text after the time"},
    };
    for (const Bad& b : bad) {
        INFO(b.text);
        auto r = parse_iso8601(b.text, utc);
        REQUIRE_FALSE(r.ok());
        INFO(r.error().message);
        CHECK(r.error().message.find("invalid ISO 8601 time '" + std::string(b.text) + "': ") == 0);
        CHECK(r.error().message.find(b.why) != std::string::npos);
    }
}
