#include "saltpeter/time_zone.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/posix_tz.hpp"

namespace saltpeter {

namespace {

constexpr std::int64_t k_min_seconds = std::numeric_limits<std::int64_t>::min();
constexpr std::int64_t k_max_seconds = std::numeric_limits<std::int64_t>::max();
// Cron years stop at 2099; a century of margin costs a few hundred vector entries per zone.
constexpr int k_last_expanded_year = 2200;
// Pure POSIX zones have no history; 1900 predates anything a scheduler looks at.
constexpr int k_first_posix_year = 1900;
// RFC 8536 says utoff SHOULD lie in [-25:59:59, 25:59:59]; enforcing it keeps offset arithmetic
// far from overflow.
constexpr std::int64_t k_max_abs_utoff = 26 * 3600 - 1;
// Real TZif files are a few KiB; the cap only guards against reading something absurd.
constexpr std::uintmax_t k_max_tzif_file_size = 16u * 1024u * 1024u;

std::int64_t sat_add(std::int64_t a, std::int64_t b) noexcept {
    std::int64_t r = 0;
    if (__builtin_add_overflow(a, b, &r)) return b > 0 ? k_max_seconds : k_min_seconds;
    return r;
}

std::int64_t sat_sub(std::int64_t a, std::int64_t b) noexcept {
    std::int64_t r = 0;
    if (__builtin_sub_overflow(a, b, &r)) return b < 0 ? k_max_seconds : k_min_seconds;
    return r;
}

struct LocalType {
    std::int32_t offset = 0;
    bool is_dst = false;
    std::string abbreviation;
};

// Per span, what span_at needs, inline so the hot path touches one array after the search.
struct SpanInfo {
    std::int32_t offset = 0;
    std::uint16_t type = 0;
    bool is_dst = false;
};

struct ZoneTable {
    std::string name;
    std::vector<std::int64_t> times;  // transition instants, strictly ascending
    std::vector<SpanInfo> spans;      // spans[i] runs from times[i-1] to times[i]; one more than times
    std::vector<LocalType> types;
    std::int32_t min_offset = 0;
    std::int32_t max_offset = 0;
    bool utc = false;
};

class ZoneBuilder {
public:
    ZoneBuilder(std::string name, const LocalType& initial) {
        m_table.name = std::move(name);
        m_table.spans.push_back(info(add_type(initial)));
    }

    std::uint16_t add_type(const LocalType& t) {
        for (std::size_t i = 0; i < m_table.types.size(); ++i) {
            const LocalType& o = m_table.types[i];
            if (o.offset == t.offset && o.is_dst == t.is_dst && o.abbreviation == t.abbreviation) {
                return static_cast<std::uint16_t>(i);
            }
        }
        m_table.types.push_back(t);
        return static_cast<std::uint16_t>(m_table.types.size() - 1);
    }

    void set_initial(std::uint16_t type) { m_table.spans.front() = info(type); }
    bool has_transitions() const noexcept { return !m_table.times.empty(); }
    std::int64_t last_transition() const noexcept { return m_table.times.back(); }
    std::uint16_t current_type() const noexcept { return m_table.spans.back().type; }

    // Appends a transition at t (never earlier than the last one). Transitions that change nothing
    // are dropped so that every span boundary is a real change; at equal instants the later call
    // wins, which is what makes an "all year DST" rule (end of one year == start of the next)
    // collapse into no transition at all.
    void push(std::int64_t t, std::uint16_t type) {
        auto& times = m_table.times;
        auto& spans = m_table.spans;
        if (!times.empty() && t <= times.back()) {
            spans.back() = info(type);
            if (spans[spans.size() - 2].type == type) {
                times.pop_back();
                spans.pop_back();
            }
            return;
        }
        if (spans.back().type == type) return;
        times.push_back(t);
        spans.push_back(info(type));
    }

    ZoneTable finish() && {
        m_table.min_offset = m_table.spans.front().offset;
        m_table.max_offset = m_table.spans.front().offset;
        for (const SpanInfo& s : m_table.spans) {
            m_table.min_offset = std::min(m_table.min_offset, s.offset);
            m_table.max_offset = std::max(m_table.max_offset, s.offset);
        }
        m_table.utc = m_table.times.empty() && m_table.spans.front().offset == 0;
        return std::move(m_table);
    }

private:
    SpanInfo info(std::uint16_t type) const {
        const LocalType& t = m_table.types[type];
        return SpanInfo{t.offset, type, t.is_dst};
    }
    ZoneTable m_table;
};

LocalType std_type(const detail::PosixTz& tz) { return LocalType{tz.std_offset, false, tz.std_name}; }
LocalType dst_type(const detail::PosixTz& tz) { return LocalType{tz.dst_offset, true, tz.dst_name}; }

// Turns the DST rule into explicit transitions from first_year through k_last_expanded_year, keeping
// only those after `after` (the TZif file's last transition) when given.
void expand_rule(ZoneBuilder& builder, const detail::PosixTz& tz, int first_year, std::optional<std::int64_t> after,
                 bool initial_from_rule) {
    if (!tz.has_dst) return;
    const std::uint16_t standard = builder.add_type(std_type(tz));
    const std::uint16_t daylight = builder.add_type(dst_type(tz));
    struct Event {
        std::int64_t t;
        std::uint16_t type;
    };
    std::vector<Event> events;
    events.reserve(static_cast<std::size_t>(k_last_expanded_year + 2 - first_year) * 2);
    // One extra year so a southern-hemisphere zone's last change of 2200 is preceded by its
    // partner; events from 2201 on are cut below.
    for (int year = first_year; year <= k_last_expanded_year + 1; ++year) {
        // The start time is given in standard time and the end time in daylight time.
        events.push_back(Event{detail::rule_local_seconds(tz.start, year) - tz.std_offset, daylight});
        events.push_back(Event{detail::rule_local_seconds(tz.end, year) - tz.dst_offset, standard});
    }
    if (events.empty()) return;
    std::stable_sort(events.begin(), events.end(), [](const Event& a, const Event& b) { return a.t < b.t; });
    const std::int64_t limit = detail::year_start_seconds(k_last_expanded_year + 1);
    if (initial_from_rule) builder.set_initial(events.front().type == daylight ? standard : daylight);
    for (const Event& e : events) {
        if (e.t >= limit) break;
        if (after && e.t <= *after) continue;
        builder.push(e.t, e.type);
    }
}

class ByteReader {
public:
    explicit ByteReader(std::string_view bytes) : m_bytes(bytes) {}
    std::size_t remaining() const noexcept { return m_bytes.size() - m_pos; }
    std::size_t position() const noexcept { return m_pos; }
    std::string_view take(std::size_t n) {
        const std::string_view out = m_bytes.substr(m_pos, n);
        m_pos += n;
        return out;
    }

private:
    std::string_view m_bytes;
    std::size_t m_pos = 0;
};

std::uint32_t be32(std::string_view b, std::size_t at) {
    return static_cast<std::uint32_t>(static_cast<unsigned char>(b[at])) << 24 |
           static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 1])) << 16 |
           static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 2])) << 8 |
           static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 3]));
}

std::uint64_t be64(std::string_view b, std::size_t at) {
    return static_cast<std::uint64_t>(be32(b, at)) << 32 | be32(b, at + 4);
}

struct TzifHeader {
    char version = 0;
    std::uint32_t isutcnt = 0;
    std::uint32_t isstdcnt = 0;
    std::uint32_t leapcnt = 0;
    std::uint32_t timecnt = 0;
    std::uint32_t typecnt = 0;
    std::uint32_t charcnt = 0;

    std::uint64_t block_size(std::uint64_t time_size) const {
        return timecnt * time_size + timecnt + typecnt * std::uint64_t{6} + charcnt + leapcnt * (time_size + 4) +
               isstdcnt + isutcnt;
    }
};

constexpr std::size_t k_tzif_header_size = 44;

std::optional<std::string> read_header(ByteReader& in, TzifHeader& h, const char* which) {
    if (in.remaining() < k_tzif_header_size) {
        return std::string("truncated TZif data: the ") + which + " header needs 44 bytes, " +
               std::to_string(in.remaining()) + " left";
    }
    const std::string_view b = in.take(k_tzif_header_size);
    if (b.substr(0, 4) != "TZif") return std::string("not a TZif file (bad magic in the ") + which + " header)";
    h.version = b[4];
    h.isutcnt = be32(b, 20);
    h.isstdcnt = be32(b, 24);
    h.leapcnt = be32(b, 28);
    h.timecnt = be32(b, 32);
    h.typecnt = be32(b, 36);
    h.charcnt = be32(b, 40);
    return std::nullopt;
}

struct TzifBlock {
    std::vector<std::int64_t> times;
    std::vector<std::uint8_t> indices;
    std::vector<LocalType> types;
};

std::optional<std::string> read_block(ByteReader& in, const TzifHeader& h, std::size_t time_size, TzifBlock& out) {
    if (h.typecnt == 0) return std::string("no local time types");
    if (h.typecnt > 256) return "too many local time types (" + std::to_string(h.typecnt) + ")";
    if (h.charcnt == 0) return std::string("no time zone designations");
    if (h.isutcnt != 0 && h.isutcnt != h.typecnt) return std::string("UT/local indicator count differs from type count");
    if (h.isstdcnt != 0 && h.isstdcnt != h.typecnt) return std::string("standard/wall indicator count differs from type count");
    const std::uint64_t need = h.block_size(time_size);
    if (need > in.remaining()) {
        return "truncated TZif data: the data block needs " + std::to_string(need) + " bytes, " +
               std::to_string(in.remaining()) + " left";
    }
    const std::string_view times = in.take(std::size_t{h.timecnt} * time_size);
    const std::string_view indices = in.take(h.timecnt);
    const std::string_view types = in.take(std::size_t{h.typecnt} * 6);
    const std::string_view chars = in.take(h.charcnt);
    in.take(std::size_t{h.leapcnt} * (time_size + 4) + h.isstdcnt + h.isutcnt);  // leap seconds: not "right/" zones

    out.times.resize(h.timecnt);
    out.indices.resize(h.timecnt);
    for (std::size_t i = 0; i < h.timecnt; ++i) {
        out.times[i] = time_size == 8 ? static_cast<std::int64_t>(be64(times, i * 8))
                                      : static_cast<std::int32_t>(be32(times, i * 4));
        if (i > 0 && out.times[i] <= out.times[i - 1]) {
            return "transition times are not in ascending order (transition " + std::to_string(i) + ")";
        }
        out.indices[i] = static_cast<std::uint8_t>(indices[i]);
        if (out.indices[i] >= h.typecnt) {
            return "transition " + std::to_string(i) + " refers to local time type " +
                   std::to_string(out.indices[i]) + " of " + std::to_string(h.typecnt);
        }
    }
    out.types.resize(h.typecnt);
    for (std::size_t i = 0; i < h.typecnt; ++i) {
        const auto utoff = static_cast<std::int32_t>(be32(types, i * 6));
        const auto isdst = static_cast<unsigned char>(types[i * 6 + 4]);
        const auto desigidx = static_cast<unsigned char>(types[i * 6 + 5]);
        if (utoff < -k_max_abs_utoff || utoff > k_max_abs_utoff) {
            return "local time type " + std::to_string(i) + " has an out-of-range UTC offset " + std::to_string(utoff);
        }
        if (isdst > 1) return "local time type " + std::to_string(i) + " has an invalid DST flag";
        if (desigidx >= h.charcnt) return "local time type " + std::to_string(i) + " has a designation index out of range";
        const std::size_t nul = chars.find('\0', desigidx);
        if (nul == std::string_view::npos) return "local time type " + std::to_string(i) + " has an unterminated designation";
        out.types[i] = LocalType{utoff, isdst == 1, std::string(chars.substr(desigidx, nul - desigidx))};
    }
    return std::nullopt;
}

Error zone_error(const std::string& name, const std::string& why) {
    return Error{"time zone '" + name + "': " + why, ""};
}

Result<ZoneTable> parse_tzif(std::string name, std::string_view bytes) {
    ByteReader in(bytes);
    TzifHeader h;
    if (auto err = read_header(in, h, "first")) return zone_error(name, *err);
    const bool v2 = h.version >= '2';
    if (h.version != 0 && !v2) {
        return zone_error(name, "unsupported TZif version byte " + std::to_string(static_cast<unsigned char>(h.version)));
    }
    TzifBlock block;
    if (v2) {
        // The v1 block is only skipped: "slim" files leave it minimal and the v2 block is authoritative.
        const std::uint64_t skip = h.block_size(4);
        if (skip > in.remaining()) return zone_error(name, "truncated TZif data in the version 1 data block");
        in.take(static_cast<std::size_t>(skip));
        if (auto err = read_header(in, h, "second")) return zone_error(name, *err);
        if (auto err = read_block(in, h, 8, block)) return zone_error(name, *err);
    } else if (auto err = read_block(in, h, 4, block)) {
        return zone_error(name, *err);
    }

    std::optional<detail::PosixTz> footer;
    if (v2) {
        const std::string_view rest = in.take(in.remaining());
        if (rest.empty() || rest.front() != '\n') return zone_error(name, "missing TZ string footer");
        const std::size_t end = rest.find('\n', 1);
        if (end == std::string_view::npos) return zone_error(name, "unterminated TZ string footer");
        const std::string_view tz = rest.substr(1, end - 1);
        if (!tz.empty()) {
            auto parsed = detail::parse_posix_tz(tz);
            if (!parsed) return zone_error(name, "invalid TZ string footer: " + parsed.error().message);
            footer = std::move(parsed.value());
        }
    }

    ZoneBuilder builder(std::move(name), block.types[0]);
    std::vector<std::uint16_t> type_map;
    type_map.reserve(block.types.size());
    for (const LocalType& t : block.types) type_map.push_back(builder.add_type(t));
    for (std::size_t i = 0; i < block.times.size(); ++i) builder.push(block.times[i], type_map[block.indices[i]]);
    if (footer) {
        if (block.times.empty()) {
            expand_rule(builder, *footer, k_first_posix_year, std::nullopt, false);
        } else if (const std::int64_t last = block.times.back();
                   last < detail::year_start_seconds(k_last_expanded_year + 1)) {
            // Start a year early: the last listed transition may be the first of a rule year.
            const int year = last < detail::year_start_seconds(k_first_posix_year)
                                 ? k_first_posix_year
                                 : to_civil(LocalSeconds{std::chrono::seconds{last}}).year - 1;
            expand_rule(builder, *footer, year, last, false);
        }
    }
    return std::move(builder).finish();
}

}  // namespace

struct TimeZone::Data : ZoneTable {
    explicit Data(ZoneTable table) : ZoneTable(std::move(table)) {}
};

TimeZone::TimeZone(std::shared_ptr<const Data> data) : m_data(std::move(data)) {}

namespace {
ZoneTable make_utc_table(std::string name, std::string abbreviation) {
    return ZoneBuilder(std::move(name), LocalType{0, false, std::move(abbreviation)}).finish();
}
}  // namespace

TimeZone TimeZone::utc() {
    static const auto k_utc = std::make_shared<const Data>(make_utc_table("UTC", "UTC"));
    return TimeZone(k_utc);
}

Result<TimeZone> TimeZone::from_tzif(std::string name, std::string_view bytes) {
    auto table = parse_tzif(std::move(name), bytes);
    if (!table) return table.error();
    return TimeZone(std::make_shared<const Data>(std::move(table.value())));
}

Result<TimeZone> TimeZone::from_posix(std::string name, std::string_view tz) {
    auto parsed = detail::parse_posix_tz(tz);
    if (!parsed) return zone_error(name, parsed.error().message);
    const detail::PosixTz& rule = parsed.value();
    ZoneBuilder builder(std::move(name), std_type(rule));
    expand_rule(builder, rule, k_first_posix_year, std::nullopt, true);
    return TimeZone(std::make_shared<const Data>(std::move(builder).finish()));
}

Result<TimeZone> TimeZone::locate(std::string_view name) {
    if (name == "UTC") return utc();
    const std::string name_str(name);
    if (name == "Etc/UTC" || name == "GMT") {
        static const auto k_etc_utc = std::make_shared<const Data>(make_utc_table("Etc/UTC", "UTC"));
        static const auto k_gmt = std::make_shared<const Data>(make_utc_table("GMT", "GMT"));
        return TimeZone(name == "GMT" ? k_gmt : k_etc_utc);
    }
    const Error unknown{"unknown time zone '" + name_str + "'", ""};
    if (name.empty() || name.front() == '/' || name.find("..") != std::string_view::npos ||
        name.find('\0') != std::string_view::npos) {
        return unknown;
    }
    const char* tzdir = std::getenv("TZDIR");
    const std::string path =
        std::string(tzdir != nullptr && *tzdir != '\0' ? tzdir : "/usr/share/zoneinfo") + "/" + name_str;

    static std::mutex s_mutex;
    static std::unordered_map<std::string, std::shared_ptr<const Data>> s_cache;
    // Keyed by path so a changed $TZDIR never returns a zone from the old directory.
    const std::lock_guard<std::mutex> lock(s_mutex);
    if (const auto it = s_cache.find(path); it != s_cache.end()) return TimeZone(it->second);

    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) return unknown;
    const std::uintmax_t size = std::filesystem::file_size(path, ec);
    if (ec) return zone_error(name_str, "cannot read " + path + ": " + ec.message());
    if (size > k_max_tzif_file_size) return zone_error(name_str, path + " is too large to be a TZif file");
    std::ifstream file(path, std::ios::binary);
    if (!file) return zone_error(name_str, "cannot open " + path + ": " + std::strerror(errno));
    std::string bytes(static_cast<std::size_t>(size), '\0');
    file.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (file.gcount() != static_cast<std::streamsize>(bytes.size())) return zone_error(name_str, "cannot read " + path);

    auto table = parse_tzif(name_str, bytes);
    if (!table) return table.error();
    auto data = std::make_shared<const Data>(std::move(table.value()));
    s_cache.emplace(path, data);
    return TimeZone(std::move(data));
}

const std::string& TimeZone::name() const noexcept { return m_data->name; }

bool TimeZone::is_utc() const noexcept { return m_data->utc; }

namespace {
ZoneSpan make_span(const ZoneTable& d, std::size_t i) noexcept {
    const SpanInfo& s = d.spans[i];
    return ZoneSpan{SysSeconds{std::chrono::seconds{i == 0 ? k_min_seconds : d.times[i - 1]}},
                    SysSeconds{std::chrono::seconds{i == d.times.size() ? k_max_seconds : d.times[i]}},
                    std::chrono::seconds{s.offset}, s.is_dst};
}

std::size_t span_index(const ZoneTable& d, std::int64_t t) noexcept {
    return static_cast<std::size_t>(std::upper_bound(d.times.begin(), d.times.end(), t) - d.times.begin());
}
}  // namespace

ZoneSpan TimeZone::span_at(SysSeconds t) const noexcept {
    return make_span(*m_data, span_index(*m_data, t.time_since_epoch().count()));
}

LocalSeconds TimeZone::to_local(SysSeconds t) const noexcept {
    const ZoneTable& d = *m_data;
    const std::int64_t s = t.time_since_epoch().count();
    return LocalSeconds{std::chrono::seconds{sat_add(s, d.spans[span_index(d, s)].offset)}};
}

LocalInfo TimeZone::local_info(LocalSeconds t) const noexcept {
    const ZoneTable& d = *m_data;
    const std::int64_t local = t.time_since_epoch().count();
    // Only spans that begin before local - min_offset and end after local - max_offset can show
    // this wall-clock time; that window is at most ~2 days wide, so it holds a handful of spans.
    const std::int64_t latest = sat_sub(local, d.min_offset);
    const std::size_t n = d.times.size();
    std::size_t i = span_index(d, sat_sub(local, d.max_offset));
    std::size_t matches = 0;
    std::size_t first = 0;
    std::size_t last = 0;
    std::optional<std::size_t> gap_before;
    for (;; ++i) {
        const std::int64_t utc = sat_sub(local, d.spans[i].offset);
        const std::int64_t begin = i == 0 ? k_min_seconds : d.times[i - 1];
        const std::int64_t end = i == n ? k_max_seconds : d.times[i];
        if (begin <= utc && utc < end) {
            if (matches == 0) first = i;
            last = i;
            ++matches;
        }
        if (i == n || d.times[i] > latest) break;
        // A wall-clock time the clocks jump over lies in [T + old offset, T + new offset).
        const std::int64_t t_before = sat_add(d.times[i], d.spans[i].offset);
        const std::int64_t t_after = sat_add(d.times[i], d.spans[i + 1].offset);
        if (t_before <= local && local < t_after) gap_before = i;
    }
    LocalInfo info;
    if (matches == 0) {
        if (gap_before) {
            info.kind = LocalInfo::Kind::nonexistent;
            info.first = make_span(d, *gap_before);
            info.second = make_span(d, *gap_before + 1);
            return info;
        }
        // Only reachable at the edges of the representable range, where saturation hides the match.
        first = last = span_index(d, local);
        matches = 1;
    }
    info.kind = matches == 1 ? LocalInfo::Kind::unique : LocalInfo::Kind::ambiguous;
    info.first = make_span(d, first);
    info.second = make_span(d, last);
    return info;
}

std::string TimeZone::abbreviation_at(SysSeconds t) const {
    const ZoneTable& d = *m_data;
    return d.types[d.spans[span_index(d, t.time_since_epoch().count())].type].abbreviation;
}

std::string format_iso8601(SysSeconds t, const TimeZone& zone) {
    const ZoneSpan span = zone.span_at(t);
    const std::int64_t offset = span.offset.count();
    const CivilTime c = to_civil(LocalSeconds{std::chrono::seconds{sat_add(t.time_since_epoch().count(), offset)}});
    const std::int64_t abs_offset = offset < 0 ? -offset : offset;
    const int oh = static_cast<int>(abs_offset / 3600);
    const int om = static_cast<int>(abs_offset / 60 % 60);
    const int os = static_cast<int>(abs_offset % 60);
    char buf[96];
    int len = std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02u:%02u:%02u%c%02d:%02d", c.year, c.month, c.day,
                            c.hour, c.minute, c.second, offset < 0 ? '-' : '+', oh, om);
    if (os != 0 && len > 0 && static_cast<std::size_t>(len) < sizeof buf) {
        len += std::snprintf(buf + len, sizeof buf - static_cast<std::size_t>(len), ":%02d", os);
    }
    return std::string(buf);
}

namespace {

class IsoParser {
public:
    explicit IsoParser(std::string_view text) : m_text(text) {}

    bool at_end() const noexcept { return m_pos == m_text.size(); }
    char peek() const noexcept { return at_end() ? '\0' : m_text[m_pos]; }
    std::size_t position() const noexcept { return m_pos; }
    void skip() noexcept { ++m_pos; }

    bool digits(std::size_t count, unsigned& value) noexcept {
        if (m_text.size() - m_pos < count) return false;
        value = 0;
        for (std::size_t i = 0; i < count; ++i) {
            const char ch = m_text[m_pos + i];
            if (ch < '0' || ch > '9') return false;
            value = value * 10 + static_cast<unsigned>(ch - '0');
        }
        m_pos += count;
        return true;
    }

    bool expect(char ch) noexcept {
        if (peek() != ch) return false;
        ++m_pos;
        return true;
    }

private:
    std::string_view m_text;
    std::size_t m_pos = 0;
};

}  // namespace

Result<SysSeconds> parse_iso8601(std::string_view text, const TimeZone& zone_for_local) {
    IsoParser p(text);
    const auto fail = [&](const std::string& why) {
        return Error{"invalid ISO 8601 time '" + std::string(text) + "': " + why + " at position " +
                         std::to_string(p.position() + 1),
                     ""};
    };
    unsigned year = 0;
    CivilTime c;
    if (!p.digits(4, year)) return fail("expected a 4-digit year");
    c.year = static_cast<int>(year);
    if (!p.expect('-')) return fail("expected '-' after the year");
    if (!p.digits(2, c.month)) return fail("expected a 2-digit month");
    if (c.month < 1 || c.month > 12) return fail("month " + std::to_string(c.month) + " is out of range 1-12");
    if (!p.expect('-')) return fail("expected '-' after the month");
    if (!p.digits(2, c.day)) return fail("expected a 2-digit day");
    if (c.day < 1 || c.day > days_in_month(c.year, c.month)) {
        return fail("day " + std::to_string(c.day) + " does not exist in " + std::to_string(c.year) + "-" +
                    (c.month < 10 ? "0" : "") + std::to_string(c.month));
    }
    std::optional<std::int64_t> offset;
    if (!p.at_end()) {
        if (!p.expect('T') && !p.expect(' ')) return fail("expected 'T' or a space after the date");
        if (!p.digits(2, c.hour)) return fail("expected a 2-digit hour");
        if (c.hour > 23) return fail("hour " + std::to_string(c.hour) + " is out of range 0-23");
        if (!p.expect(':')) return fail("expected ':' after the hour");
        if (!p.digits(2, c.minute)) return fail("expected 2-digit minutes");
        if (c.minute > 59) return fail("minute " + std::to_string(c.minute) + " is out of range 0-59");
        if (!p.expect(':')) return fail("expected ':' after the minutes");
        if (!p.digits(2, c.second)) return fail("expected 2-digit seconds");
        if (c.second > 59) return fail("second " + std::to_string(c.second) + " is out of range 0-59");
        if (p.expect('.') || p.expect(',')) {
            const std::size_t start = p.position();
            while (p.peek() >= '0' && p.peek() <= '9') p.skip();
            if (p.position() == start) return fail("expected digits after the decimal point");
        }
        if (p.expect('Z')) {
            offset = 0;
        } else if (p.peek() == '+' || p.peek() == '-') {
            const bool negative = p.peek() == '-';
            p.skip();
            unsigned oh = 0;
            unsigned om = 0;
            if (!p.digits(2, oh)) return fail("expected a 2-digit offset hour");
            if (oh > 23) return fail("offset hour " + std::to_string(oh) + " is out of range 0-23");
            p.expect(':');
            if (!p.digits(2, om)) return fail("expected 2-digit offset minutes");
            if (om > 59) return fail("offset minute " + std::to_string(om) + " is out of range 0-59");
            const std::int64_t value = static_cast<std::int64_t>(oh) * 3600 + static_cast<std::int64_t>(om) * 60;
            offset = negative ? -value : value;
        }
        if (!p.at_end()) return fail("unexpected text after the time (expected an offset like +02:00 or Z)");
    }
    const LocalSeconds local = from_civil(c);
    const std::int64_t l = local.time_since_epoch().count();
    if (offset) return SysSeconds{std::chrono::seconds{l - *offset}};
    const LocalInfo info = zone_for_local.local_info(local);
    if (info.kind == LocalInfo::Kind::nonexistent) return info.second.begin;
    return SysSeconds{std::chrono::seconds{l - info.first.offset.count()}};
}

}  // namespace saltpeter
