// SP_* environment parsing and the pre-detach checks of sp_wrapper (PROTOCOL.md 1.10).
#include <netdb.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "host/process_runner.hpp"
#include "saltpeter/wrapper_agent.hpp"

extern char** environ;

namespace saltpeter {
namespace {

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

std::string trim(const std::string& s) {
    const auto b = s.find_first_not_of(" \t\r\n");
    if (b == std::string::npos) return {};
    return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

// Strict non-negative integer: "12" yes, "12x", "-1", "" no.
bool parse_count(const std::string& text, long long& out) {
    const std::string t = trim(text);
    if (t.empty() || t.size() > 15) return false;
    long long v = 0;
    for (char c : t) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + (c - '0');
    }
    out = v;
    return true;
}

// Creates `dir` and its parents with mode 0755.
bool make_dirs(const std::string& dir) {
    if (dir.empty()) return false;
    struct stat st {};
    if (stat(dir.c_str(), &st) == 0) return S_ISDIR(st.st_mode);
    const auto slash = dir.find_last_of('/');
    if (slash != std::string::npos && slash > 0 && !make_dirs(dir.substr(0, slash))) return false;
    return mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST;
}

}  // namespace

std::map<std::string, std::string> current_environment() {
    std::map<std::string, std::string> env;
    for (char** e = environ; e && *e; ++e) {
        const char* eq = std::strchr(*e, '=');
        if (!eq) continue;
        env.emplace(std::string(*e, static_cast<std::size_t>(eq - *e)), std::string(eq + 1));
    }
    return env;
}

std::string default_machine_id() {
    std::ifstream in("/etc/salt/minion_id");
    std::string id;
    if (in && std::getline(in, id) && !trim(id).empty()) return trim(id);
    // Python's socket.getfqdn(): the canonical name (or an alias) with a dot, else the hostname.
    char host[256] = {};
    if (gethostname(host, sizeof host - 1) != 0) return "localhost";
    addrinfo hints{};
    hints.ai_flags = AI_CANONNAME;
    hints.ai_family = AF_UNSPEC;
    addrinfo* res = nullptr;
    std::string fqdn = host;
    if (getaddrinfo(host, nullptr, &hints, &res) == 0 && res) {
        if (res->ai_canonname && std::strchr(res->ai_canonname, '.')) fqdn = res->ai_canonname;
        freeaddrinfo(res);
    }
    return fqdn;
}

Result<WrapperSettings> wrapper_settings_from_environment(const std::map<std::string, std::string>& env) {
    auto get = [&](const char* name) -> const std::string* {
        const auto it = env.find(name);
        return it == env.end() ? nullptr : &it->second;
    };
    WrapperSettings s;
    struct Required {
        const char* name;
        std::string* target;
    };
    for (const Required& r : {Required{"SP_WEBSOCKET_URL", &s.websocket_url}, Required{"SP_JOB_NAME", &s.job_name},
                              Required{"SP_JOB_INSTANCE", &s.job_instance}, Required{"SP_COMMAND", &s.command}}) {
        const std::string* v = get(r.name);
        if (!v || v->empty()) return Error{std::string("Error: ") + r.name + " environment variable not set", r.name};
        *r.target = *v;
    }
    if (s.job_name.find('/') != std::string::npos || s.job_instance.find('/') != std::string::npos)
        return Error{"Error: SP_JOB_NAME and SP_JOB_INSTANCE must not contain '/'", "SP_JOB_NAME"};
    if (const auto* v = get("SP_MACHINE_ID"); v && !v->empty()) s.machine_id = *v;
    else s.machine_id = default_machine_id();
    if (const auto* v = get("SP_CWD")) s.cwd = *v;
    if (const auto* v = get("SP_USER")) s.user = trim(*v);
    if (const auto* v = get("SP_TIMEOUT"); v && !trim(*v).empty()) {
        long long t = 0;
        if (!parse_count(*v, t) || t > 100LL * 365 * 86400)
            return Error{"Error: SP_TIMEOUT must be a whole number of seconds (0 = unlimited), got '" + *v + "'",
                         "SP_TIMEOUT"};
        s.timeout_seconds = static_cast<int>(t);
    }
    struct Millis {
        const char* name;
        std::chrono::milliseconds* target;
        long long min;
    };
    for (const Millis& m : {Millis{"SP_OUTPUT_INTERVAL_MS", &s.output_interval, 1},
                            Millis{"SP_HEARTBEAT_INTERVAL_MS", &s.heartbeat_interval, 10},
                            Millis{"SP_RECONNECT_INTERVAL_MS", &s.reconnect_interval, 10},
                            Millis{"SP_KILL_GRACE_MS", &s.kill_grace, 0},
                            Millis{"SP_COMPLETION_RETRY_MS", &s.completion_retry, 0}}) {
        const auto* v = get(m.name);
        if (!v || trim(*v).empty()) continue;
        long long ms = 0;
        if (!parse_count(*v, ms) || ms < m.min)
            return Error{std::string("Error: ") + m.name + " must be a whole number of milliseconds >= " +
                             std::to_string(m.min) + ", got '" + *v + "'",
                         m.name};
        *m.target = std::chrono::milliseconds(ms);
    }
    if (const auto* v = get("SP_WRAPPER_MEMORY_LIMIT"); v && !trim(*v).empty()) {
        long long bytes = 0;
        if (!parse_count(*v, bytes) || bytes < 65536)
            return Error{"Error: SP_WRAPPER_MEMORY_LIMIT must be a number of bytes >= 65536, got '" + *v + "'",
                         "SP_WRAPPER_MEMORY_LIMIT"};
        s.memory_limit = static_cast<std::size_t>(bytes);
    }
    if (const auto* v = get("SP_WRAPPER_LOGLEVEL")) {
        const std::string l = lower(trim(*v));
        // PROTOCOL.md 1.10: any value other than normal/debug behaves like off.
        s.log_level = l == "debug" ? WrapperLogLevel::debug
                      : (l == "normal" || l.empty()) ? WrapperLogLevel::normal
                                                     : WrapperLogLevel::off;
    }
    if (const auto* v = get("SP_WRAPPER_LOGDIR"); v && !v->empty()) s.log_dir = *v;
    if (const auto* v = get("SP_ALLOW_OVERLAP")) {
        const std::string l = lower(trim(*v));
        s.allow_overlap = l == "true" || l == "1" || l == "yes";
    }
    if (const auto* v = get("SP_LOCKFILE"); v && !v->empty()) s.lockfile = *v;
    else s.lockfile = "/tmp/sp_wrapper_" + s.job_name + ".lock";
    if (const auto* v = get("SP_TOKEN")) s.token = *v;
    // The salt CLI transport starts all minions with one environment, so it passes every
    // minion's token as SP_TOKENS={"<machine id>": "<token>"}; SP_TOKEN wins when both are set.
    if (const auto* v = get("SP_TOKENS"); v && !v->empty() && s.token.empty()) {
        const auto tokens = nlohmann::json::parse(*v, nullptr, false);
        if (tokens.is_discarded() || !tokens.is_object())
            return Error{"Error: SP_TOKENS is not a JSON object of machine id to token", "SP_TOKENS"};
        const auto it = tokens.find(s.machine_id);
        if (it == tokens.end() || !it->is_string())
            return Error{"Error: SP_TOKENS has no token for machine id '" + s.machine_id + "'", "SP_TOKENS"};
        s.token = it->get<std::string>();
    }
    for (const auto& [k, v] : env)
        if (k != "SP_TOKEN" && k != "SP_TOKENS") s.job_environment.push_back(k + "=" + v);
    return s;
}

Status check_wrapper_settings(const WrapperSettings& s) {
    if (!s.cwd.empty()) {
        struct stat st {};
        if (stat(s.cwd.c_str(), &st) != 0)
            return Error{"Error: SP_CWD '" + s.cwd + "': " + std::strerror(errno), "SP_CWD"};
        if (!S_ISDIR(st.st_mode)) return Error{"Error: SP_CWD '" + s.cwd + "' is not a directory", "SP_CWD"};
    }
    if (!s.user.empty() && geteuid() == 0) {
        auto env = user_environment(s.user);
        if (!env) return Error{"Error: SP_USER: " + env.error().message, "SP_USER"};
    }
    if (s.log_level != WrapperLogLevel::off) {
        if (!make_dirs(s.log_dir))
            return Error{"Error: SP_WRAPPER_LOGDIR '" + s.log_dir + "' cannot be created: " + std::strerror(errno),
                         "SP_WRAPPER_LOGDIR"};
        if (access(s.log_dir.c_str(), W_OK | X_OK) != 0)
            return Error{"Error: SP_WRAPPER_LOGDIR '" + s.log_dir + "' is not writable: " + std::strerror(errno),
                         "SP_WRAPPER_LOGDIR"};
    }
    return Ok{};
}

}  // namespace saltpeter
