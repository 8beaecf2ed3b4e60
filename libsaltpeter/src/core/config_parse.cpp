// parse_config(): one YAML file to jobs, settings, maintenance and problems (PROTOCOL.md 2.6, 5.6,
// 5.7). yaml-cpp stays in this file. Every value is checked for its type; a bad job is reported
// and skipped, a bad saltpeter_config/saltpeter_maintenance value is reported and its default kept.

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <climits>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <set>

#include "core/config_detail.hpp"
#include "saltpeter/config.hpp"

namespace saltpeter {
namespace {

constexpr std::string_view k_allow_overlap_phrase = "i know what i am doing!";
constexpr std::string_view k_settings_section = "saltpeter_config";
constexpr std::string_view k_maintenance_section = "saltpeter_maintenance";

const std::vector<std::string_view> k_job_keys = {
    "sec", "min", "hour", "dom", "mon", "dow", "year", "schedule", "timezone", "utc", "command", "targets",
    "target_type", "cwd", "user", "env", "use_wrapper", "wrapper_path", "saltpeter_server_host",
    "wrapper_loglevel", "wrapper_logdir", "allow_overlap", "concurrency", "lockfile", "number_of_targets",
    "batch_size", "batch_wait", "max_failures", "canary", "misfire", "misfire_grace", "retries",
    "retry_backoff", "retry_backoff_max", "splay", "notify", "timeout", "hard_timeout", "soft_timeout",
    "heartbeat_timeout", "group"};

const std::vector<std::string_view> k_loglevels = {"normal", "debug", "off"};
const std::vector<std::string_view> k_notify_events = {"failure", "success", "missed", "recovered"};

struct Where {
    int line = 0;
    int column = 0;
};

Where where(const YAML::Node& node) {
    const YAML::Mark m = node.Mark();
    if (m.is_null() || m.line < 0) return {};
    return {m.line + 1, m.column + 1};
}

std::string join(const std::vector<std::string_view>& items, std::string_view sep) {
    std::string out;
    for (const auto& item : items) {
        if (!out.empty()) out += sep;
        out += item;
    }
    return out;
}

// Names what a node holds, for "expected X, got Y" messages.
std::string describe(const YAML::Node& node) {
    switch (node.Type()) {
        case YAML::NodeType::Sequence: return "a list";
        case YAML::NodeType::Map: return "a mapping";
        case YAML::NodeType::Null:
        case YAML::NodeType::Undefined: return "nothing";
        case YAML::NodeType::Scalar: break;
    }
    return "'" + node.Scalar() + "'";
}

bool is_quoted(const YAML::Node& node) { return node.Tag() == "!"; }

// Collects problems for one job or section; `failed` records that an error made it unusable.
class Ctx {
public:
    Ctx(FileConfig& out, std::string job) : m_out(out), m_job(std::move(job)) {}

    void error(Where at, std::string field, std::string message) {
        add(Problem::Severity::error, at, std::move(field), std::move(message));
        m_failed = true;
    }
    void error(const YAML::Node& at, std::string field, std::string message) {
        error(where(at), std::move(field), std::move(message));
    }
    void warning(Where at, std::string field, std::string message) {
        add(Problem::Severity::warning, at, std::move(field), std::move(message));
    }
    void warning(const YAML::Node& at, std::string field, std::string message) {
        warning(where(at), std::move(field), std::move(message));
    }
    bool failed() const noexcept { return m_failed; }

private:
    void add(Problem::Severity severity, Where at, std::string field, std::string message) {
        Problem p;
        p.severity = severity;
        p.file = m_out.origin;
        p.line = at.line;
        p.column = at.column;
        p.job = m_job;
        p.field = std::move(field);
        p.message = std::move(message);
        m_out.problems.push_back(std::move(p));
    }

    FileConfig& m_out;
    std::string m_job;
    bool m_failed = false;
};

// ---- value readers: each reports its own error and returns nullopt on a bad value ----

std::optional<std::string> read_string(const YAML::Node& v, const std::string& field, Ctx& c) {
    if (!v.IsScalar()) {
        c.error(v, field, "expected a string, got " + describe(v));
        return std::nullopt;
    }
    return v.Scalar();
}

std::optional<std::string> read_nonempty_string(const YAML::Node& v, const std::string& field, Ctx& c) {
    auto s = read_string(v, field, c);
    if (s && s->empty()) {
        c.error(v, field, "must not be empty");
        return std::nullopt;
    }
    return s;
}

std::optional<std::int64_t> read_int(const YAML::Node& v, const std::string& field, Ctx& c, std::string_view what) {
    if (!v.IsScalar()) {
        c.error(v, field, "expected " + std::string(what) + ", got " + describe(v));
        return std::nullopt;
    }
    const std::string& text = v.Scalar();
    if (is_quoted(v)) {
        c.error(v, field, "expected " + std::string(what) + ", got the string '" + text + "' (write it without quotes)");
        return std::nullopt;
    }
    std::int64_t value = 0;
    const char* begin = text.data();
    const char* end = text.data() + text.size();
    if (begin != end && *begin == '+') ++begin;
    const auto [ptr, ec] = std::from_chars(begin, end, value);
    if (text.empty() || ec != std::errc() || ptr != end) {
        c.error(v, field, "expected " + std::string(what) + ", got '" + text + "'");
        return std::nullopt;
    }
    return value;
}

std::optional<std::uint64_t> read_count(const YAML::Node& v, const std::string& field, Ctx& c,
                                        std::uint64_t min = 0, std::uint64_t max = UINT_MAX) {
    const auto n = read_int(v, field, c, "a whole number");
    if (!n) return std::nullopt;
    if (*n < 0) {
        c.error(v, field, "must not be negative, got " + std::to_string(*n));
        return std::nullopt;
    }
    const auto u = static_cast<std::uint64_t>(*n);
    if (u < min || u > max) {
        c.error(v, field, "must be between " + std::to_string(min) + " and " + std::to_string(max) + ", got " +
                              std::to_string(u));
        return std::nullopt;
    }
    return u;
}

std::optional<unsigned> read_unsigned(const YAML::Node& v, const std::string& field, Ctx& c) {
    const auto n = read_count(v, field, c);
    if (!n) return std::nullopt;
    return static_cast<unsigned>(*n);
}

std::optional<std::chrono::seconds> read_seconds(const YAML::Node& v, const std::string& field, Ctx& c,
                                                 bool positive) {
    const auto n = read_int(v, field, c, "a whole number of seconds");
    if (!n) return std::nullopt;
    if (*n < 0 || (positive && *n == 0)) {
        c.error(v, field, std::string(positive ? "must be a positive" : "must not be a negative") +
                              " number of seconds, got " + std::to_string(*n));
        return std::nullopt;
    }
    return std::chrono::seconds{*n};
}

std::optional<bool> read_bool(const YAML::Node& v, const std::string& field, Ctx& c) {
    bool b = false;
    if (!v.IsScalar() || !YAML::convert<bool>::decode(v, b)) {
        c.error(v, field, "expected true or false, got " + describe(v));
        return std::nullopt;
    }
    if (is_quoted(v)) {
        // The original Saltpeter (Python) took any non-empty string as true, so a quoted "false"
        // meant true there; we take the word's meaning and say so.
        c.warning(v, field, "the string '" + v.Scalar() + "' is read as " + (b ? "true" : "false") +
                                "; write it without quotes (the original Saltpeter took any non-empty string as true)");
    }
    return b;
}

std::optional<std::string> read_choice(const YAML::Node& v, const std::string& field, Ctx& c,
                                       const std::vector<std::string_view>& choices) {
    if (!v.IsScalar()) {
        c.error(v, field, "expected one of " + join(choices, ", ") + ", got " + describe(v));
        return std::nullopt;
    }
    const std::string& s = v.Scalar();
    if (std::find(choices.begin(), choices.end(), s) == choices.end()) {
        c.error(v, field, "'" + s + "' is not one of " + join(choices, ", "));
        return std::nullopt;
    }
    return s;
}

// A count or a percentage: 5 or "25%".
std::optional<Amount> read_amount(const YAML::Node& v, const std::string& field, Ctx& c) {
    if (v.IsScalar() && !v.Scalar().empty() && v.Scalar().back() == '%') {
        const std::string digits = v.Scalar().substr(0, v.Scalar().size() - 1);
        unsigned value = 0;
        const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
        if (digits.empty() || ec != std::errc() || ptr != digits.data() + digits.size() || value > 100) {
            c.error(v, field, "expected a whole number or a percentage from 0% to 100%, got '" + v.Scalar() + "'");
            return std::nullopt;
        }
        return Amount{value, true};
    }
    const auto n = read_unsigned(v, field, c);
    if (!n) return std::nullopt;
    return Amount{*n, false};
}

std::optional<std::vector<std::string>> read_string_list(const YAML::Node& v, const std::string& field, Ctx& c) {
    if (v.IsScalar()) return std::vector<std::string>{v.Scalar()};
    if (!v.IsSequence()) {
        c.error(v, field, "expected a list of strings, got " + describe(v));
        return std::nullopt;
    }
    std::vector<std::string> out;
    for (const auto& item : v) {
        if (!item.IsScalar()) {
            c.error(item, field, "expected a list of strings, but an item is " + describe(item));
            return std::nullopt;
        }
        out.push_back(item.Scalar());
    }
    return out;
}

std::optional<SysSeconds> read_time(const YAML::Node& v, const std::string& field, Ctx& c) {
    const auto s = read_string(v, field, c);
    if (!s) return std::nullopt;
    auto t = parse_iso8601(*s, TimeZone::utc());
    if (!t) {
        c.error(v, field, t.error().message);
        return std::nullopt;
    }
    return *t;
}

// A mapping's entries in file order; a repeated key is reported and the later value wins (as in
// PyYAML, which the original used).
struct Entry {
    std::string key;
    YAML::Node key_node;
    YAML::Node value;
};

class Entries {
public:
    Entries(const YAML::Node& map, Ctx& c) {
        for (auto it = map.begin(); it != map.end(); ++it) {
            const YAML::Node key = it->first;
            if (!key.IsScalar()) {
                c.error(key, "", "expected a key name, got " + describe(key));
                continue;
            }
            const auto found = m_index.find(key.Scalar());
            if (found != m_index.end()) {
                c.warning(key, key.Scalar(),
                          "key given twice (first on line " + std::to_string(where(m_items[found->second].key_node).line) +
                              "); the later value is used");
                // Re-point the index instead of assigning: YAML::Node::operator= would rewrite the
                // document's own nodes.
                found->second = m_items.size();
                m_items.push_back(Entry{key.Scalar(), key, it->second});
                continue;
            }
            m_index.emplace(key.Scalar(), m_items.size());
            m_items.push_back(Entry{key.Scalar(), key, it->second});
        }
    }
    const std::vector<Entry>& items() const noexcept { return m_items; }
    // The entry for `key`, or nullptr; a key whose value is null counts as absent.
    const Entry* get(std::string_view key) const {
        const auto it = m_index.find(std::string(key));
        if (it == m_index.end() || m_items[it->second].value.IsNull()) return nullptr;
        return &m_items[it->second];
    }
    bool has_key(std::string_view key) const { return m_index.count(std::string(key)) != 0; }

private:
    std::vector<Entry> m_items;
    std::map<std::string, std::size_t> m_index;
};

void warn_unknown_keys(const Entries& entries, const std::vector<std::string_view>& known, Ctx& c,
                       std::string_view where_text) {
    for (const auto& e : entries.items()) {
        if (std::find(known.begin(), known.end(), e.key) != known.end()) continue;
        std::string message = "unknown key '" + e.key + "'" + std::string(where_text) + ", ignored";
        const std::string suggestion = config_detail::closest_key(e.key, known);
        if (!suggestion.empty()) message += "; did you mean '" + suggestion + "'?";
        c.warning(e.key_node, e.key, std::move(message));
    }
}

std::optional<Notify> read_notify(const YAML::Node& v, const std::string& field, Ctx& c) {
    if (!v.IsMap()) {
        c.error(v, field, "expected a mapping {on: [...], webhook: URL}, got " + describe(v));
        return std::nullopt;
    }
    Entries entries(v, c);
    warn_unknown_keys(entries, {"on", "webhook"}, c, " in 'notify'");
    Notify n;
    bool ok = true;
    if (const Entry* on = entries.get("on")) {
        if (auto events = read_string_list(on->value, field, c)) {
            for (const auto& ev : *events) {
                if (std::find(k_notify_events.begin(), k_notify_events.end(), ev) == k_notify_events.end()) {
                    c.error(on->value, field, "notify event '" + ev + "' is not one of " + join(k_notify_events, ", "));
                    ok = false;
                }
            }
            n.on = std::move(*events);
        } else {
            ok = false;
        }
    }
    if (const Entry* hook = entries.get("webhook")) {
        if (auto url = read_nonempty_string(hook->value, field, c)) {
            n.webhook = std::move(*url);
        } else {
            ok = false;
        }
    }
    if (!ok) return std::nullopt;
    return n;
}

// ---- jobs ----

std::string group_of(std::string_view origin) {
    const auto slash = origin.find_last_of('/');
    std::string_view base = slash == std::string_view::npos ? origin : origin.substr(slash + 1);
    for (std::string_view ext : {".yaml", ".yml"}) {
        if (base.size() > ext.size() && base.substr(base.size() - ext.size()) == ext) {
            base.remove_suffix(ext.size());
            break;
        }
    }
    return std::string(base);
}

// Strips the "field 'x': " the cron parser puts in front; Problem::to_string() adds it again.
std::string without_field_prefix(const std::string& message, const std::string& field) {
    const std::string prefix = "field '" + field + "': ";
    return message.rfind(prefix, 0) == 0 ? message.substr(prefix.size()) : message;
}

// The expression of a job, from `schedule:` or from sec..year; nullopt after reporting an error.
std::optional<CronExpression> read_schedule(const Entries& entries, Where job_at, Ctx& c) {
    static const std::vector<std::pair<std::string_view, std::string CronExpression::Fields::*>> fields = {
        {"sec", &CronExpression::Fields::sec},   {"min", &CronExpression::Fields::min},
        {"hour", &CronExpression::Fields::hour}, {"dom", &CronExpression::Fields::dom},
        {"mon", &CronExpression::Fields::mon},   {"dow", &CronExpression::Fields::dow},
        {"year", &CronExpression::Fields::year}};
    if (const Entry* schedule = entries.get("schedule")) {
        bool ok = true;
        for (const auto& field : fields) {
            const std::string_view name = field.first;
            if (entries.has_key(name)) {
                for (const auto& item : entries.items()) {
                    if (item.key == name) {
                        c.error(item.key_node, std::string(name),
                                "cannot be combined with 'schedule'; give either 'schedule' or the separate fields");
                    }
                }
                ok = false;
            }
        }
        const auto text = read_nonempty_string(schedule->value, "schedule", c);
        if (!text || !ok) return std::nullopt;
        auto expr = CronExpression::parse(*text);
        if (!expr) {
            c.error(schedule->value, "schedule", expr.error().message);
            return std::nullopt;
        }
        return std::move(expr).value();
    }

    CronExpression::Fields f;
    bool ok = true;
    for (const auto& [name, member] : fields) {
        const std::string key(name);
        const Entry* e = entries.get(name);
        if (!e) {
            if (name != "sec" && name != "year") {
                c.error(job_at, key, "missing required key '" + key + "'");
                ok = false;
            }
            continue;
        }
        if (!e->value.IsScalar()) {
            c.error(e->value, key, "expected a cron field (a string or a number), got " + describe(e->value));
            ok = false;
            continue;
        }
        f.*member = e->value.Scalar();
    }
    if (!ok) return std::nullopt;
    auto expr = CronExpression::from_fields(f);
    if (!expr) {
        const Error& err = expr.error();
        const Entry* e = err.field.empty() ? nullptr : entries.get(err.field);
        if (e) {
            c.error(e->value, err.field, without_field_prefix(err.message, err.field));
        } else {
            c.error(job_at, err.field, without_field_prefix(err.message, err.field));
        }
        return std::nullopt;
    }
    return std::move(expr).value();
}

bool is_utc_name(std::string_view name) { return name == "UTC" || name == "Etc/UTC"; }

std::optional<Job> parse_job(const std::string& name, const YAML::Node& key, const YAML::Node& body,
                             FileConfig& out) {
    Ctx c(out, name);
    const Where job_at = where(key);
    if (!body.IsMap()) {
        c.error(body.IsNull() ? job_at : where(body), "",
                "expected a mapping of job keys, got " + describe(body));
        return std::nullopt;
    }
    const Entries entries(body, c);
    warn_unknown_keys(entries, k_job_keys, c, "");

    auto expr = read_schedule(entries, job_at, c);
    // A placeholder keeps the other keys checked (and reported) when the schedule is bad.
    Job job(expr ? *expr : CronExpression::parse("@daily").value());
    job.name = name;
    job.group = group_of(out.origin);
    job.file = out.origin;
    job.line = job_at.line;

    auto str = [&](std::string_view k, std::optional<std::string>& target) {
        if (const Entry* e = entries.get(k)) {
            if (auto s = read_nonempty_string(e->value, e->key, c)) target = std::move(*s);
        }
    };
    auto secs = [&](std::string_view k, std::chrono::seconds& target, bool positive) {
        if (const Entry* e = entries.get(k)) {
            if (auto s = read_seconds(e->value, e->key, c, positive)) target = *s;
        }
    };
    auto count = [&](std::string_view k, unsigned& target) {
        if (const Entry* e = entries.get(k)) {
            if (auto n = read_unsigned(e->value, e->key, c)) target = *n;
        }
    };
    auto amount = [&](std::string_view k, Amount& target) {
        if (const Entry* e = entries.get(k)) {
            if (auto a = read_amount(e->value, e->key, c)) target = *a;
        }
    };

    // command and targets: required (the original failed at run time without them).
    if (const Entry* e = entries.get("command")) {
        if (auto s = read_nonempty_string(e->value, "command", c)) job.command = std::move(*s);
    } else {
        c.error(job_at, "command", "missing required key 'command'");
    }
    if (const Entry* e = entries.get("target_type")) {
        static const std::vector<std::string_view> names = {"glob", "pcre", "list", "grain", "grain_pcre", "pillar",
                                                            "pillar_pcre", "nodegroup", "compound", "ipcidr", "range"};
        if (!e->value.IsScalar() || !target_type_from_string(e->value.Scalar())) {
            c.error(e->value, "target_type",
                    "unknown target type " + describe(e->value) + "; valid: " + join(names, ", "));
        } else {
            job.target_type = *target_type_from_string(e->value.Scalar());
        }
    }
    if (const Entry* e = entries.get("targets")) {
        if (e->value.IsSequence()) {
            if (auto list = read_string_list(e->value, "targets", c)) {
                for (const auto& t : *list) job.targets += (job.targets.empty() ? "" : ",") + t;
                if (job.targets.empty()) c.error(e->value, "targets", "must not be empty");
                if (job.target_type != TargetType::list) {
                    c.warning(e->value, "targets",
                              "a list of targets is joined with ',' ('" + job.targets +
                                  "'), which only makes sense with target_type 'list'");
                }
            }
        } else if (auto s = read_nonempty_string(e->value, "targets", c)) {
            job.targets = std::move(*s);
        }
    } else {
        c.error(job_at, "targets", "missing required key 'targets'");
    }

    // Time zone: utc: true means UTC and conflicts with another zone.
    bool utc = false;
    if (const Entry* e = entries.get("utc")) utc = read_bool(e->value, "utc", c).value_or(false);
    if (const Entry* e = entries.get("timezone")) {
        if (auto tz = read_nonempty_string(e->value, "timezone", c)) {
            if (auto zone = TimeZone::locate(*tz); !zone) {
                c.error(e->value, "timezone", zone.error().message);
            } else if (utc && !is_utc_name(*tz)) {
                c.error(e->value, "timezone", "'utc: true' conflicts with timezone '" + *tz + "'; remove one of them");
            } else {
                job.timezone = std::move(*tz);
            }
        }
    }
    if (utc) job.timezone = "UTC";

    str("cwd", job.cwd);
    str("user", job.user);
    if (const Entry* e = entries.get("env")) {
        if (!e->value.IsMap()) {
            c.error(e->value, "env", "expected a mapping of variable names to values, got " + describe(e->value));
        } else {
            for (auto it = e->value.begin(); it != e->value.end(); ++it) {
                const YAML::Node k = it->first;
                const YAML::Node v = it->second;
                if (!k.IsScalar() || k.Scalar().empty()) {
                    c.error(k, "env", "expected a variable name, got " + describe(k));
                } else if (v.IsNull()) {
                    job.env.emplace_back(k.Scalar(), std::string());
                } else if (!v.IsScalar()) {
                    c.error(v, "env", "env '" + k.Scalar() + "': expected a string or number, got " + describe(v));
                } else {
                    // As written: `true` stays "true", 5 stays "5".
                    job.env.emplace_back(k.Scalar(), v.Scalar());
                }
            }
        }
    }
    if (const Entry* e = entries.get("use_wrapper")) {
        if (auto b = read_bool(e->value, "use_wrapper", c)) job.use_wrapper = *b;
    }
    str("wrapper_path", job.wrapper_path);
    str("saltpeter_server_host", job.saltpeter_server_host);
    if (const Entry* e = entries.get("wrapper_loglevel")) {
        if (auto s = read_choice(e->value, "wrapper_loglevel", c, k_loglevels)) job.wrapper_loglevel = std::move(*s);
    }
    str("wrapper_logdir", job.wrapper_logdir);
    str("lockfile", job.lockfile);

    // timeout: null keeps 3600 (the original daemon's behaviour), 0 is unlimited.
    secs("timeout", job.timeout, false);
    for (std::string_view k : {"hard_timeout", "soft_timeout"}) {
        if (const Entry* e = entries.get(k)) {
            c.warning(e->key_node, e->key, "accepted for compatibility but not used; 'timeout' applies");
        }
    }
    if (const Entry* e = entries.get("heartbeat_timeout")) {
        if (auto s = read_seconds(e->value, "heartbeat_timeout", c, true)) job.heartbeat_timeout = *s;
    }

    // Overlap: the original's exact phrase and our `concurrency` must agree when both are given.
    std::optional<Concurrency> from_overlap;
    if (const Entry* e = entries.get("allow_overlap")) {
        if (e->value.IsScalar() && e->value.Scalar() == k_allow_overlap_phrase) {
            from_overlap = Concurrency::allow;
        } else {
            from_overlap = Concurrency::forbid;
            c.warning(e->value, "allow_overlap",
                      describe(e->value) + " does not enable overlap; only the exact value \"" +
                          std::string(k_allow_overlap_phrase) + "\" does (or use 'concurrency: allow')");
        }
        job.concurrency = *from_overlap;
    }
    if (const Entry* e = entries.get("concurrency")) {
        if (auto s = read_choice(e->value, "concurrency", c, {"forbid", "allow", "replace"})) {
            const Concurrency value = *s == "allow" ? Concurrency::allow
                                      : *s == "replace" ? Concurrency::replace
                                                         : Concurrency::forbid;
            if (from_overlap && *from_overlap != value) {
                c.error(e->value, "concurrency",
                        "'concurrency: " + *s + "' contradicts 'allow_overlap', which means " +
                            std::string(to_string(*from_overlap)) + "; remove 'allow_overlap'");
            }
            job.concurrency = value;
        }
    }

    count("number_of_targets", job.number_of_targets);
    amount("batch_size", job.batch_size);
    secs("batch_wait", job.batch_wait, false);
    amount("max_failures", job.max_failures);
    count("canary", job.canary);
    if (const Entry* e = entries.get("misfire")) {
        if (auto s = read_choice(e->value, "misfire", c, {"skip", "run_once"})) {
            job.misfire = *s == "run_once" ? Misfire::run_once : Misfire::skip;
        }
    }
    secs("misfire_grace", job.misfire_grace, false);
    count("retries", job.retries);
    secs("retry_backoff", job.retry_backoff, false);
    secs("retry_backoff_max", job.retry_backoff_max, false);
    if (job.retry_backoff_max < job.retry_backoff) {
        const Entry* e = entries.get("retry_backoff_max");
        c.warning(e ? where(e->value) : job_at, "retry_backoff_max",
                  "retry_backoff_max (" + std::to_string(job.retry_backoff_max.count()) +
                      " s) is below retry_backoff (" + std::to_string(job.retry_backoff.count()) +
                      " s); every retry waits " + std::to_string(job.retry_backoff_max.count()) + " s");
    }
    secs("splay", job.splay, false);
    if (const Entry* e = entries.get("notify")) {
        if (auto n = read_notify(e->value, "notify", c)) job.notify = std::move(*n);
    }
    if (const Entry* e = entries.get("group")) {
        c.warning(e->key_node, "group", "ignored: a job's group is always its file name ('" + job.group + "')");
    }

    if (!expr || c.failed()) return std::nullopt;
    return job;
}

// ---- saltpeter_config ----

using SettingReader = std::function<bool(const YAML::Node&, Settings&, Ctx&)>;
using SettingCopier = std::function<void(const Settings&, Settings&)>;

struct SettingDef {
    std::string_view name;
    SettingReader read;
    SettingCopier copy;
};

template <typename T, typename Reader>
SettingDef setting(std::string_view name, T Settings::*member, Reader reader) {
    return SettingDef{
        name,
        [name, member, reader](const YAML::Node& v, Settings& s, Ctx& c) {
            std::optional<T> value = reader(v, std::string(name), c);
            if (!value) return false;
            s.*member = std::move(*value);
            return true;
        },
        [member](const Settings& from, Settings& to) { to.*member = from.*member; }};
}

std::optional<std::string> any_string(const YAML::Node& v, const std::string& f, Ctx& c) {
    return read_string(v, f, c);
}
std::optional<bool> any_bool(const YAML::Node& v, const std::string& f, Ctx& c) { return read_bool(v, f, c); }
// 0 = any free port (tests, the quickstart); the bound port is logged.
std::optional<std::uint16_t> port(const YAML::Node& v, const std::string& f, Ctx& c) {
    const auto n = read_count(v, f, c, 0, 65535);
    if (!n) return std::nullopt;
    return static_cast<std::uint16_t>(*n);
}
std::optional<std::chrono::seconds> positive_seconds(const YAML::Node& v, const std::string& f, Ctx& c) {
    return read_seconds(v, f, c, true);
}
std::optional<std::chrono::seconds> any_seconds(const YAML::Node& v, const std::string& f, Ctx& c) {
    return read_seconds(v, f, c, false);
}
std::optional<unsigned> any_unsigned(const YAML::Node& v, const std::string& f, Ctx& c) {
    return read_unsigned(v, f, c);
}
std::optional<std::uint64_t> any_u64(const YAML::Node& v, const std::string& f, Ctx& c) {
    return read_count(v, f, c, 0, std::numeric_limits<std::int64_t>::max());
}
std::optional<std::vector<std::string>> string_list(const YAML::Node& v, const std::string& f, Ctx& c) {
    return read_string_list(v, f, c);
}
std::optional<std::optional<Notify>> notify_setting(const YAML::Node& v, const std::string& f, Ctx& c) {
    auto n = read_notify(v, f, c);
    if (!n) return std::nullopt;
    return std::optional<Notify>(std::move(*n));
}
std::optional<std::string> loglevel(const YAML::Node& v, const std::string& f, Ctx& c) {
    return read_choice(v, f, c, k_loglevels);
}
std::optional<std::string> wrapper_auth(const YAML::Node& v, const std::string& f, Ctx& c) {
    return read_choice(v, f, c, {"required", "compatible"});
}

// api_tokens: a list of {name, token | token_file, role}; a bad entry is reported and left out.
std::optional<std::vector<ApiToken>> api_tokens(const YAML::Node& v, const std::string& f, Ctx& c) {
    if (!v.IsSequence()) {
        c.error(v, f, "expected a list of {name, token or token_file, role}, got " + describe(v));
        return std::nullopt;
    }
    std::vector<ApiToken> out;
    for (const auto& item : v) {
        if (!item.IsMap()) {
            c.error(item, f, "expected a mapping {name, token or token_file, role}, got " + describe(item));
            continue;
        }
        Entries entries(item, c);
        warn_unknown_keys(entries, {"name", "token", "token_file", "role"}, c, " in 'api_tokens'");
        ApiToken t;
        bool ok = true;
        auto take = [&](std::string_view key, std::string& target) {
            if (const Entry* e = entries.get(key)) {
                if (auto s = read_nonempty_string(e->value, f, c)) {
                    target = std::move(*s);
                } else {
                    ok = false;
                }
            }
        };
        take("name", t.name);
        take("token", t.token);
        take("token_file", t.token_file);
        if (const Entry* e = entries.get("role")) {
            if (auto r = read_choice(e->value, f, c, {"read", "operate"})) {
                t.role = std::move(*r);
            } else {
                ok = false;
            }
        }
        if (ok && t.name.empty()) {
            c.error(item, f, "an API token needs a 'name'");
            ok = false;
        }
        if (ok && t.token.empty() == t.token_file.empty()) {
            c.error(item, f, "API token '" + t.name + "' needs exactly one of 'token' and 'token_file'");
            ok = false;
        }
        if (ok) out.push_back(std::move(t));
    }
    return out;
}

const std::vector<SettingDef>& settings_table() {
    static const std::vector<SettingDef> table = {
        setting("logdir", &Settings::logdir, any_string),
        setting("debug", &Settings::debug, any_bool),
        setting("api_ws", &Settings::api_ws, any_bool),
        setting("api_ws_port", &Settings::api_ws_port, port),
        setting("api_ws_bind_addr", &Settings::api_ws_bind_addr, any_string),
        setting("machines_ws_port", &Settings::machines_ws_port, port),
        setting("machines_idle_timeout", &Settings::machines_idle_timeout, any_seconds),
        setting("machines_ws_bind_addr", &Settings::machines_ws_bind_addr, any_string),
        setting("default_saltpeter_server_host", &Settings::default_saltpeter_server_host, any_string),
        setting("default_wrapper_path", &Settings::default_wrapper_path, any_string),
        setting("default_wrapper_loglevel", &Settings::default_wrapper_loglevel, loglevel),
        setting("default_wrapper_logdir", &Settings::default_wrapper_logdir, any_string),
        setting("elasticsearch", &Settings::elasticsearch, any_string),
        setting("opensearch", &Settings::opensearch, any_string),
        setting("elasticsearch_index", &Settings::elasticsearch_index, any_string),
        setting("opensearch_index", &Settings::opensearch_index, any_string),
        setting("heartbeat_timeout", &Settings::heartbeat_timeout, positive_seconds),
        setting("startup_timeout", &Settings::startup_timeout, positive_seconds),
        setting("timeout_grace", &Settings::timeout_grace, any_seconds),
        setting("kill_grace", &Settings::kill_grace, any_seconds),
        setting("default_timezone", &Settings::default_timezone, any_string),
        setting("wrapper_secret_file", &Settings::wrapper_secret_file, any_string),
        setting("wrapper_auth", &Settings::wrapper_auth, wrapper_auth),
        setting("api_tokens", &Settings::api_tokens, api_tokens),
        setting("tls_cert", &Settings::tls_cert, any_string),
        setting("tls_key", &Settings::tls_key, any_string),
        setting("cors_origins", &Settings::cors_origins, string_list),
        setting("local_minions", &Settings::local_minions, string_list),
        setting("salt_binary", &Settings::salt_binary, any_string),
        setting("salt_run_binary", &Settings::salt_run_binary, any_string),
        setting("salt_config_dir", &Settings::salt_config_dir, any_string),
        setting("salt_api_url", &Settings::salt_api_url, any_string),
        setting("salt_api_username", &Settings::salt_api_username, any_string),
        setting("salt_api_password_file", &Settings::salt_api_password_file, any_string),
        setting("salt_api_eauth", &Settings::salt_api_eauth, any_string),
        setting("salt_api_ca_file", &Settings::salt_api_ca_file, any_string),
        setting("state_db", &Settings::state_db, any_string),
        setting("history_max_runs", &Settings::history_max_runs, any_unsigned),
        setting("history_max_days", &Settings::history_max_days, any_unsigned),
        setting("output_max_bytes", &Settings::output_max_bytes, any_u64),
        setting("notify", &Settings::notify, notify_setting),
    };
    return table;
}

const SettingDef* find_setting(std::string_view name) {
    for (const auto& def : settings_table()) {
        if (def.name == name) return &def;
    }
    return nullptr;
}

void parse_settings(const YAML::Node& key, const YAML::Node& body, FileConfig& out) {
    Ctx c(out, "");
    if (body.IsNull()) return;
    if (!body.IsMap()) {
        c.error(where(key), std::string(k_settings_section), "expected a mapping of settings, got " + describe(body));
        return;
    }
    std::vector<std::string_view> known;
    for (const auto& def : settings_table()) known.push_back(def.name);
    const Entries entries(body, c);
    warn_unknown_keys(entries, known, c, " in saltpeter_config");
    auto patch = std::make_shared<Settings>();
    for (const auto& e : entries.items()) {
        const SettingDef* def = find_setting(e.key);
        if (!def || e.value.IsNull()) continue;
        if (def->read(e.value, *patch, c)) out.settings_keys.push_back(SectionKey{e.key, where(e.key_node).line});
    }
    out.settings_patch = std::move(patch);
}

// ---- saltpeter_maintenance ----

void parse_maintenance(const YAML::Node& key, const YAML::Node& body, FileConfig& out) {
    Ctx c(out, "");
    if (body.IsNull()) return;
    if (!body.IsMap()) {
        c.error(where(key), std::string(k_maintenance_section),
                "expected a mapping {global, machines}, got " + describe(body));
        return;
    }
    const Entries entries(body, c);
    warn_unknown_keys(entries, {"global", "machines"}, c, " in saltpeter_maintenance");
    Maintenance m;
    if (const Entry* e = entries.get("global")) {
        bool ok = false;
        bool b = false;
        if (e->value.IsMap()) {
            // global: {until: TIME} is maintenance that lapses by itself.
            Entries g(e->value, c);
            warn_unknown_keys(g, {"until"}, c, " in 'global'");
            if (const Entry* until = g.get("until")) {
                if (auto t = read_time(until->value, "global", c)) {
                    m.global = true;
                    m.global_until = *t;
                    ok = true;
                }
            } else {
                c.error(e->value, "global", "expected true, false or {until: <ISO 8601 time>}; 'until' is missing");
            }
        } else if (e->value.IsScalar() && !is_quoted(e->value) && YAML::convert<bool>::decode(e->value, b)) {
            m.global = b;
            ok = true;
        } else {
            // The original took only a real bool; anything else kept the default (off).
            c.error(e->value, "global",
                    "expected true, false or {until: <ISO 8601 time>}, got " + describe(e->value) +
                        (is_quoted(e->value) ? " (a string)" : "") + "; global maintenance stays off");
        }
        if (ok) out.maintenance_keys.push_back(SectionKey{"global", where(e->key_node).line});
    }
    if (const Entry* e = entries.get("machines")) {
        if (!e->value.IsSequence()) {
            c.error(e->value, "machines",
                    "expected a list of targets or {target, until}, got " + describe(e->value) +
                        "; no machine is in maintenance");
        } else {
            for (const auto& item : e->value) {
                if (item.IsScalar() && !item.Scalar().empty()) {
                    m.machines.push_back(Maintenance::Entry{item.Scalar(), std::nullopt});
                    continue;
                }
                if (!item.IsMap()) {
                    c.error(item, "machines", "expected a target or {target, until}, got " + describe(item));
                    continue;
                }
                Entries me(item, c);
                warn_unknown_keys(me, {"target", "until"}, c, " in 'machines'");
                const Entry* target = me.get("target");
                if (!target) {
                    c.error(item, "machines", "an entry needs a 'target'");
                    continue;
                }
                auto t = read_nonempty_string(target->value, "machines", c);
                if (!t) continue;
                Maintenance::Entry entry{std::move(*t), std::nullopt};
                if (const Entry* until = me.get("until")) {
                    auto when = read_time(until->value, "machines", c);
                    if (!when) continue;
                    entry.until = *when;
                }
                m.machines.push_back(std::move(entry));
            }
            out.maintenance_keys.push_back(SectionKey{"machines", where(e->key_node).line});
        }
    }
    out.maintenance = std::move(m);
}

void parse_root(const YAML::Node& root, FileConfig& out) {
    Ctx c(out, "");
    if (root.IsNull()) return;  // an empty file is fine: no jobs
    if (!root.IsMap()) {
        c.error(root, "", "expected a mapping of job names to jobs at the top level, got " + describe(root));
        out.readable = false;
        return;
    }
    std::map<std::string, int> seen;  // name -> line of its first definition in this file
    for (auto it = root.begin(); it != root.end(); ++it) {
        const YAML::Node key = it->first;
        const YAML::Node body = it->second;
        if (!key.IsScalar() || key.Scalar().empty()) {
            c.error(key, "", "expected a job name, got " + describe(key));
            continue;
        }
        const std::string& name = key.Scalar();
        const int line = where(key).line;
        if (const auto [first, inserted] = seen.emplace(name, line); !inserted) {
            Ctx jc(out, name == k_settings_section || name == k_maintenance_section ? "" : name);
            jc.error(key, "",
                     "'" + name + "' is defined twice in this file (lines " + std::to_string(first->second) + " and " +
                         std::to_string(line) + "); the later definition is ignored");
            continue;
        }
        if (name == k_settings_section) {
            parse_settings(key, body, out);
        } else if (name == k_maintenance_section) {
            parse_maintenance(key, body, out);
        } else if (auto job = parse_job(name, key, body, out)) {
            out.jobs.push_back(std::move(*job));
        }
    }
}

}  // namespace

namespace config_detail {

std::size_t edit_distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diagonal = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t above = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diagonal = above;
        }
    }
    return row[b.size()];
}

std::string closest_key(std::string_view key, const std::vector<std::string_view>& candidates) {
    std::string best;
    std::size_t best_distance = std::numeric_limits<std::size_t>::max();
    for (std::string_view cand : candidates) {
        std::size_t d = edit_distance(key, cand);
        const bool prefix = key.size() >= 3 && cand.size() > key.size() && cand.substr(0, key.size()) == key;
        if (d > 2 && !prefix) continue;
        if (d < best_distance) {
            best_distance = d;
            best = std::string(cand);
        }
    }
    return best;
}

}  // namespace config_detail

void FileConfig::apply_settings(Settings& settings) const {
    if (!settings_patch) return;
    for (const auto& key : settings_keys) {
        if (const SettingDef* def = find_setting(key.name)) def->copy(*settings_patch, settings);
    }
}

void FileConfig::apply_maintenance(Maintenance& target) const {
    if (!maintenance) return;
    for (const auto& key : maintenance_keys) {
        if (key.name == "global") {
            target.global = maintenance->global;
            target.global_until = maintenance->global_until;
        } else if (key.name == "machines") {
            target.machines = maintenance->machines;
        }
    }
}

FileConfig parse_config(std::string_view text, std::string_view origin) {
    FileConfig out;
    out.origin = std::string(origin);
    try {
        const YAML::Node root = YAML::Load(std::string(text));
        parse_root(root, out);
    } catch (const YAML::Exception& e) {
        Problem p;
        p.file = out.origin;
        if (!e.mark.is_null()) {
            p.line = e.mark.line + 1;
            p.column = e.mark.column + 1;
        }
        p.message = "YAML syntax error: " + e.msg;
        out.problems.push_back(std::move(p));
        out.readable = false;
        out.jobs.clear();
    } catch (const std::exception& e) {
        // Not expected; reported rather than thrown because one file must never stop the others.
        Problem p;
        p.file = out.origin;
        p.message = std::string("cannot read this file: ") + e.what();
        out.problems.push_back(std::move(p));
        out.readable = false;
        out.jobs.clear();
    }
    return out;
}

}  // namespace saltpeter
