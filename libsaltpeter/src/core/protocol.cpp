#include "core/protocol.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "saltpeter/time.hpp"
#include "core/utf8_decoder.hpp"

namespace saltpeter::protocol {
namespace {

using Json = nlohmann::json;
// ordered_json keeps the key order of PROTOCOL.md 1.3, which makes frames easy to read in logs.
using OJson = nlohmann::ordered_json;

template <typename... F>
struct Overloaded : F... {
    using F::operator()...;
};
template <typename... F>
Overloaded(F...) -> Overloaded<F...>;

Error field_error(std::string_view type, std::string_view field, std::string_view what) {
    return Error{std::string(type) + ": field '" + std::string(field) + "' " + std::string(what),
                 std::string(field)};
}

// Field readers: they return an Error naming the message type and field instead of throwing.
class Reader {
public:
    Reader(const Json& object, std::string_view type) : m_object(object), m_type(type) {}

    bool string(const char* key, std::string& out, bool required = true) {
        const auto it = m_object.find(key);
        if (it == m_object.end() || it->is_null()) {
            if (required) fail(key, "is missing");
            return !required;
        }
        if (!it->is_string()) return fail(key, "must be a string");
        out = it->get<std::string>();
        return true;
    }
    bool integer(const char* key, std::int64_t& out) {
        const auto it = m_object.find(key);
        if (it == m_object.end()) return fail(key, "is missing");
        return read_int(key, *it, out);
    }
    bool optional_integer(const char* key, std::optional<std::int64_t>& out) {
        const auto it = m_object.find(key);
        if (it == m_object.end() || it->is_null()) return true;
        std::int64_t v = 0;
        if (!read_int(key, *it, v)) return false;
        out = v;
        return true;
    }
    bool envelope(Envelope& e) {
        return string("job_name", e.job_name) && string("job_instance", e.job_instance) &&
               string("machine", e.machine) && string("timestamp", e.timestamp, false);
    }
    const std::optional<Error>& error() const { return m_error; }

private:
    bool read_int(const char* key, const Json& v, std::int64_t& out) {
        if (v.is_number_unsigned()) {
            if (v.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) return fail(key, "is out of range");
            out = static_cast<std::int64_t>(v.get<std::uint64_t>());
            return true;
        }
        if (v.is_number_integer()) {
            out = v.get<std::int64_t>();
            return true;
        }
        if (v.is_number_float()) {
            const double d = v.get<double>();
            // Range check first: converting a double outside int64 is undefined (found by fuzz_wrapper_frame).
            if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) return fail(key, "is out of range");
            if (d == static_cast<double>(static_cast<std::int64_t>(d))) {
                out = static_cast<std::int64_t>(d);
                return true;
            }
        }
        return fail(key, "must be an integer");
    }
    bool fail(const char* key, std::string_view what) {
        if (!m_error) m_error = field_error(m_type, key, what);
        return false;
    }
    const Json& m_object;
    std::string_view m_type;
    std::optional<Error> m_error;
};

Result<Json> parse_object(std::string_view text) {
    Json j = Json::parse(text.begin(), text.end(), nullptr, false);
    if (j.is_discarded()) return Error{"frame is not valid JSON", ""};
    if (!j.is_object()) return Error{"frame is not a JSON object", ""};
    const auto it = j.find("type");
    if (it == j.end()) return Error{"frame has no 'type'", "type"};
    if (!it->is_string()) return Error{"frame field 'type' must be a string", "type"};
    return j;
}

template <typename T>
Result<T> finish(Reader& r, T value) {
    if (r.error()) return *r.error();
    return value;
}

void put_envelope(OJson& j, std::string_view type, const Envelope& e) {
    j["type"] = type;
    j["job_name"] = e.job_name;
    j["job_instance"] = e.job_instance;
    j["machine"] = e.machine;
}

std::string dump(const OJson& j) {
    return j.dump(-1, ' ', false, nlohmann::detail::error_handler_t::replace);
}

constexpr std::uint64_t k_ones = 0x0101010101010101ULL;
constexpr std::uint64_t k_highs = 0x8080808080808080ULL;

// True when one of the 8 bytes of w needs escaping in JSON or is not ASCII: < 0x20, '"', '\\'
// or >= 0x80 (the SWAR "has less than" / "has byte" tricks).
constexpr bool needs_care(std::uint64_t w) {
    const std::uint64_t less_than_space = (w - k_ones * 0x20) & ~w;
    const std::uint64_t quote = w ^ (k_ones * 0x22);
    const std::uint64_t backslash = w ^ (k_ones * 0x5C);
    const std::uint64_t has_quote = (quote - k_ones) & ~quote;
    const std::uint64_t has_backslash = (backslash - k_ones) & ~backslash;
    return ((less_than_space | has_quote | has_backslash) & k_highs) != 0 || (w & k_highs) != 0;
}

bool is_valid_utf8(std::string_view s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const std::size_t n = s.size();
    std::size_t i = 0;
    while (i < n) {
        if (i + 8 <= n) {
            std::uint64_t w;
            std::memcpy(&w, p + i, 8);
            if ((w & k_highs) == 0) {
                i += 8;
                continue;
            }
        }
        const unsigned char b = p[i];
        if (b < 0x80) {
            ++i;
            continue;
        }
        const Utf8Lead lead = utf8_lead(b);
        const std::size_t len = lead.length;
        if (len == 0) return false;
        if (i + len > n || p[i + 1] < lead.lower || p[i + 1] > lead.upper) return false;
        for (std::size_t k = 2; k < len; ++k)
            if (p[i + k] < 0x80 || p[i + k] > 0xBF) return false;
        i += len;
    }
    return true;
}

// Appends s as a JSON string literal, escaped exactly like nlohmann's dump(ensure_ascii=false):
// \" \\ \b \f \n \r \t, other control characters as \u00xx, everything else raw. Output frames
// carry up to 64 KiB and this is the wrapper's hot path, hence the word-at-a-time scan.
void append_json_string(std::string& out, std::string_view in) {
    std::string sanitized;
    if (!is_valid_utf8(in)) {
        sanitized = sanitize_utf8(in);
        in = sanitized;
    }
    out.push_back('"');
    const char* p = in.data();
    const std::size_t n = in.size();
    std::size_t i = 0, run = 0;
    while (i < n) {
        if (i + 8 <= n) {
            std::uint64_t w;
            std::memcpy(&w, p + i, 8);
            if (!needs_care(w)) {
                i += 8;
                continue;
            }
        }
        const auto c = static_cast<unsigned char>(p[i]);
        const char* esc = nullptr;
        char buf[8];
        switch (c) {
            case '"': esc = "\\\""; break;
            case '\\': esc = "\\\\"; break;
            case '\b': esc = "\\b"; break;
            case '\f': esc = "\\f"; break;
            case '\n': esc = "\\n"; break;
            case '\r': esc = "\\r"; break;
            case '\t': esc = "\\t"; break;
            default:
                if (c < 0x20) {
                    std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
                    esc = buf;
                }
        }
        if (esc) {
            out.append(p + run, i - run);
            out.append(esc);
            run = i + 1;
        }
        ++i;
    }
    out.append(p + run, n - run);
    out.push_back('"');
}

std::string serialize_output(const Output& m) {
    std::string out;
    out.reserve(m.data.size() + m.data.size() / 8 + 256);
    out += "{\"type\":\"output\",\"job_name\":";
    append_json_string(out, m.envelope.job_name);
    out += ",\"job_instance\":";
    append_json_string(out, m.envelope.job_instance);
    out += ",\"machine\":";
    append_json_string(out, m.envelope.machine);
    out += ",\"stream\":";
    append_json_string(out, m.stream);
    out += ",\"data\":";
    append_json_string(out, m.data);
    if (m.seq) {
        out += ",\"seq\":";
        out += std::to_string(*m.seq);
    }
    out += ",\"timestamp\":";
    append_json_string(out, m.envelope.timestamp);
    out += '}';
    return out;
}

}  // namespace

Result<WrapperMessage> parse_wrapper_frame(std::string_view text) {
    auto parsed = parse_object(text);
    if (!parsed) return parsed.error();
    const Json& j = *parsed;
    const std::string type = j["type"].get<std::string>();
    Reader r(j, type);
    if (type == "connect") {
        Connect m;
        r.envelope(m.envelope);
        std::optional<std::int64_t> proto;
        r.optional_integer("proto", proto);
        if (proto) m.proto = static_cast<int>(*proto);
        r.optional_integer("next_seq", m.next_seq);
        std::string token;
        if (j.contains("token") && r.string("token", token)) m.token = token;
        return finish<WrapperMessage>(r, m);
    }
    if (type == "start") {
        Start m;
        r.envelope(m.envelope);
        r.integer("pid", m.pid);
        r.string("version", m.version, false);
        if (m.version.empty()) m.version = "unknown";
        return finish<WrapperMessage>(r, m);
    }
    if (type == "output") {
        Output m;
        r.envelope(m.envelope);
        r.string("stream", m.stream, false);
        r.string("data", m.data);
        r.optional_integer("seq", m.seq);
        return finish<WrapperMessage>(r, m);
    }
    if (type == "heartbeat") {
        Heartbeat m;
        r.envelope(m.envelope);
        return finish<WrapperMessage>(r, m);
    }
    if (type == "sync_request") {
        SyncRequest m;
        r.envelope(m.envelope);
        r.integer("last_acked_seq", m.last_acked_seq);
        r.integer("next_seq", m.next_seq);
        return finish<WrapperMessage>(r, m);
    }
    if (type == "complete") {
        Complete m;
        r.envelope(m.envelope);
        std::optional<std::int64_t> rc;
        r.optional_integer("retcode", rc);
        if (rc) m.retcode = static_cast<int>(*rc);
        r.optional_integer("seq", m.seq);
        return finish<WrapperMessage>(r, m);
    }
    if (type == "killed") {
        Killed m;
        r.envelope(m.envelope);
        return finish<WrapperMessage>(r, m);
    }
    if (type == "error") {
        WrapperError m;
        r.envelope(m.envelope);
        r.string("error", m.error, false);
        return finish<WrapperMessage>(r, m);
    }
    return Error{"unknown wrapper message type '" + type + "'", "type"};
}

Result<ServerMessage> parse_server_frame(std::string_view text) {
    auto parsed = parse_object(text);
    if (!parsed) return parsed.error();
    const Json& j = *parsed;
    const std::string type = j["type"].get<std::string>();
    Reader r(j, type);
    if (type == "ack") {
        Ack m;
        std::string ack_type;
        if (!r.string("ack_type", ack_type)) return *r.error();
        if (ack_type == "connect") m.ack_type = AckType::connect;
        else if (ack_type == "start") m.ack_type = AckType::start;
        else if (ack_type == "output") m.ack_type = AckType::output;
        else if (ack_type == "complete") m.ack_type = AckType::complete;
        else return field_error(type, "ack_type", "has unknown value '" + ack_type + "'");
        r.string("timestamp", m.timestamp, false);
        r.optional_integer("seq", m.seq);
        std::optional<std::int64_t> proto;
        r.optional_integer("proto", proto);
        if (proto) m.proto = static_cast<int>(*proto);
        r.optional_integer("last_seq", m.last_seq);
        return finish<ServerMessage>(r, m);
    }
    if (type == "nack") {
        Nack m;
        r.string("nack_type", m.nack_type, false);
        r.integer("expected_seq", m.expected_seq);
        r.integer("received_seq", m.received_seq);
        r.string("timestamp", m.timestamp, false);
        return finish<ServerMessage>(r, m);
    }
    if (type == "sync_response") {
        SyncResponse m;
        r.integer("last_seq", m.last_seq);
        r.string("timestamp", m.timestamp, false);
        return finish<ServerMessage>(r, m);
    }
    if (type == "kill") {
        Kill m;
        r.envelope(m.envelope);
        return finish<ServerMessage>(r, m);
    }
    if (type == "error") {
        ServerError m;
        r.string("code", m.code);
        r.string("message", m.message, false);
        return finish<ServerMessage>(r, m);
    }
    return Error{"unknown server message type '" + type + "'", "type"};
}

std::string serialize(const WrapperMessage& message) {
    if (const auto* output = std::get_if<Output>(&message)) return serialize_output(*output);
    OJson j;
    std::visit(Overloaded{
                   [&](const Connect& m) {
                       put_envelope(j, "connect", m.envelope);
                       if (m.proto) j["proto"] = *m.proto;
                       if (m.next_seq) j["next_seq"] = *m.next_seq;
                       if (m.token) j["token"] = *m.token;
                   },
                   [&](const Start& m) {
                       put_envelope(j, "start", m.envelope);
                       j["pid"] = m.pid;
                       j["version"] = m.version;
                   },
                   [&](const Output& m) {
                       put_envelope(j, "output", m.envelope);
                       j["stream"] = m.stream;
                       j["data"] = m.data;
                       if (m.seq) j["seq"] = *m.seq;
                   },
                   [&](const Heartbeat& m) { put_envelope(j, "heartbeat", m.envelope); },
                   [&](const SyncRequest& m) {
                       put_envelope(j, "sync_request", m.envelope);
                       j["last_acked_seq"] = m.last_acked_seq;
                       j["next_seq"] = m.next_seq;
                   },
                   [&](const Complete& m) {
                       put_envelope(j, "complete", m.envelope);
                       j["retcode"] = m.retcode;
                       if (m.seq) j["seq"] = *m.seq;
                   },
                   [&](const Killed& m) { put_envelope(j, "killed", m.envelope); },
                   [&](const WrapperError& m) {
                       put_envelope(j, "error", m.envelope);
                       j["error"] = m.error;
                   },
               },
               message);
    std::visit([&](const auto& m) { j["timestamp"] = m.envelope.timestamp; }, message);
    return dump(j);
}

std::string serialize(const ServerMessage& message) {
    OJson j;
    std::visit(Overloaded{
                   [&](const Ack& m) {
                       j["type"] = "ack";
                       j["ack_type"] = to_string(m.ack_type);
                       j["timestamp"] = m.timestamp;
                       if (m.seq) j["seq"] = *m.seq;
                       if (m.proto) j["proto"] = *m.proto;
                       if (m.last_seq) j["last_seq"] = *m.last_seq;
                   },
                   [&](const Nack& m) {
                       j["type"] = "nack";
                       j["nack_type"] = m.nack_type;
                       j["expected_seq"] = m.expected_seq;
                       j["received_seq"] = m.received_seq;
                       j["timestamp"] = m.timestamp;
                   },
                   [&](const SyncResponse& m) {
                       j["type"] = "sync_response";
                       j["last_seq"] = m.last_seq;
                       j["timestamp"] = m.timestamp;
                   },
                   [&](const Kill& m) {
                       put_envelope(j, "kill", m.envelope);
                       j["timestamp"] = m.envelope.timestamp;
                   },
                   [&](const ServerError& m) {
                       j["type"] = "error";
                       j["code"] = m.code;
                       j["message"] = m.message;
                   },
               },
               message);
    return dump(j);
}

std::string_view type_name(const WrapperMessage& message) noexcept {
    static constexpr std::string_view k_names[] = {"connect", "start", "output", "heartbeat",
                                                    "sync_request", "complete", "killed", "error"};
    return k_names[message.index()];
}

std::string_view type_name(const ServerMessage& message) noexcept {
    static constexpr std::string_view k_names[] = {"ack", "nack", "sync_response", "kill", "error"};
    return k_names[message.index()];
}

std::string_view to_string(AckType type) noexcept {
    switch (type) {
        case AckType::connect: return "connect";
        case AckType::start: return "start";
        case AckType::output: return "output";
        case AckType::complete: return "complete";
    }
    return "connect";
}

std::string format_timestamp(std::chrono::system_clock::time_point t) {
    using namespace std::chrono;
    const auto us = duration_cast<microseconds>(t.time_since_epoch()).count();
    std::int64_t secs = us / 1000000;
    std::int64_t frac = us % 1000000;
    if (frac < 0) {
        frac += 1000000;
        --secs;
    }
    std::int64_t days = secs / 86400;
    std::int64_t rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        --days;
    }
    const CivilTime c = civil_from_days(days);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%06d+00:00", c.year, c.month, c.day,
                  static_cast<int>(rem / 3600), static_cast<int>(rem / 60 % 60), static_cast<int>(rem % 60),
                  static_cast<int>(frac));
    return buf;
}

Result<std::chrono::system_clock::time_point> parse_timestamp(std::string_view s) {
    const Error bad{"invalid timestamp '" + std::string(s) + "'", "timestamp"};
    auto digits = [&](std::size_t pos, std::size_t n, int& out) {
        if (pos + n > s.size()) return false;
        out = 0;
        for (std::size_t i = pos; i < pos + n; ++i) {
            if (s[i] < '0' || s[i] > '9') return false;
            out = out * 10 + (s[i] - '0');
        }
        return true;
    };
    int y, mo, d, h, mi, se;
    if (!digits(0, 4, y) || s.size() < 19 || s[4] != '-' || !digits(5, 2, mo) || s[7] != '-' ||
        !digits(8, 2, d) || (s[10] != 'T' && s[10] != ' ') || !digits(11, 2, h) || s[13] != ':' ||
        !digits(14, 2, mi) || s[16] != ':' || !digits(17, 2, se))
        return bad;
    if (mo < 1 || mo > 12 || d < 1 || d > static_cast<int>(days_in_month(y, static_cast<unsigned>(mo))) || h > 23 ||
        mi > 59 || se > 60)
        return bad;
    std::size_t pos = 19;
    std::int64_t nanos = 0;
    if (pos < s.size() && s[pos] == '.') {
        ++pos;
        std::size_t n = 0;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
            if (n < 9) nanos = nanos * 10 + (s[pos] - '0');
            ++n;
            ++pos;
        }
        if (n == 0) return bad;
        for (std::size_t k = n; k < 9; ++k) nanos *= 10;
    }
    std::int64_t offset = 0;
    if (pos < s.size() && s[pos] == 'Z' && pos + 1 == s.size()) {
        pos += 1;
    } else if (pos + 6 == s.size() && (s[pos] == '+' || s[pos] == '-') && s[pos + 3] == ':') {
        int oh, om;
        if (!digits(pos + 1, 2, oh) || !digits(pos + 4, 2, om) || oh > 23 || om > 59) return bad;
        offset = (oh * 3600 + om * 60) * (s[pos] == '-' ? -1 : 1);
        pos += 6;
    } else {
        return bad;
    }
    const std::int64_t secs = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86400 +
                              h * 3600 + mi * 60 + se - offset;
    using namespace std::chrono;
    return system_clock::time_point(duration_cast<system_clock::duration>(seconds(secs) + nanoseconds(nanos)));
}

std::string sanitize_utf8(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    Utf8Decoder decoder;
    decoder.decode(text, out);
    decoder.finish(out);
    return out;
}

}  // namespace saltpeter::protocol
