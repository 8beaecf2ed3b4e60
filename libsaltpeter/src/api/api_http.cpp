// The API's HTTP routes (docs/api.md): /version, /config, /running, /status, /timeline,
// /metrics, /jobs..., /runs..., and POST run/kill, with their JSON bodies.

#include <algorithm>
#include <cctype>

#include "core/metrics.hpp"
#include "api/api_server_impl.hpp"
#include "api/ui_protocol.hpp"
#include "runs/run_history.hpp"
#include "saltpeter/version.hpp"

namespace saltpeter {

namespace api {

HttpReply error_reply(int status, const std::string& message) {
    HttpReply r;
    r.status = status;
    r.body = ui::error_json(message);
    return r;
}

std::string url_decode(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
            std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
            out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
            i += 2;
        } else if (s[i] == '+') {
            out += ' ';
        } else {
            out += s[i];
        }
    }
    return out;
}

// The original's timeline serial: the Unix time as a float.
double unix_seconds_now() {
    return unix_seconds(std::chrono::system_clock::now());
}


Target parse_target(const std::string& resource) {
    Target t;
    const auto q = resource.find('?');
    t.path = resource.substr(0, q);
    if (q != std::string::npos) {
        std::string_view rest(resource);
        rest.remove_prefix(q + 1);
        while (!rest.empty()) {
            const auto amp = rest.find('&');
            const std::string_view pair = rest.substr(0, amp);
            const auto eq = pair.find('=');
            t.query[url_decode(pair.substr(0, eq))] = eq == std::string_view::npos ? "" : url_decode(pair.substr(eq + 1));
            if (amp == std::string_view::npos) break;
            rest.remove_prefix(amp + 1);
        }
    }
    std::size_t start = 1;
    while (start <= t.path.size()) {
        const auto slash = t.path.find('/', start);
        const std::string seg = t.path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
        if (!seg.empty()) t.segments.push_back(url_decode(seg));
        if (slash == std::string::npos) break;
        start = slash + 1;
    }
    return t;
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        cur[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j)
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
        std::swap(prev, cur);
    }
    return prev[b.size()];
}

// "unknown job 'bakup' (close names: backup)" so that spctl and scripts can show them.
std::string unknown_job_message(const Config& config, const std::string& name) {
    std::vector<std::string> close;
    for (const Job& job : config.jobs) {
        const std::size_t limit = std::max<std::size_t>(2, name.size() / 3);
        if (edit_distance(job.name, name) <= limit || (!name.empty() && job.name.find(name) != std::string::npos))
            close.push_back(job.name);
    }
    std::string msg = "unknown job '" + name + "'";
    if (!close.empty()) {
        msg += " (close names:";
        for (std::size_t i = 0; i < close.size() && i < 5; ++i) msg += (i ? ", " : " ") + close[i];
        msg += ")";
    }
    return msg;
}

}  // namespace api

using namespace api;

// ---- HTTP -------------------------------------------------------------------------------------

void ApiServer::Impl::on_http(const WsConnectionPtr& con) {
    m_peers.erase(con);
    ++m_http_requests;
    const std::string method = con->method();
    const Target target = parse_target(con->resource());
    HttpReply reply;
    const ApiCredential* who = nullptr;
    if (method == "OPTIONS") {
        reply.status = 204;
        reply.content_type.clear();
    } else if (target.path == "/healthz") {
        reply.body = R"({"status": "ok"})";
    } else if (!authorise(con->request_header("Authorization"), "", who)) {
        reply = error_reply(401, "missing or invalid API token (send Authorization: Bearer <token>)");
        reply.headers.emplace_back("WWW-Authenticate", "Bearer");
    } else if (const std::string why = method == "POST" ? origin_refusal(con->request_header("Origin"), true) : "";
               !why.empty()) {
        spdlog::warn("API {}: POST {} refused: {}", con->remote_endpoint(), target.path, why);
        reply = error_reply(403, why);
    } else {
        reply = route(method, target, con->request_body(), who);
    }
    con->set_status(reply.status);
    if (!reply.content_type.empty()) con->replace_header("Content-Type", reply.content_type);
    for (const auto& [k, v] : cors_headers(con->request_header("Origin"))) con->replace_header(k, v);
    for (const auto& [k, v] : reply.headers) con->replace_header(k, v);
    con->replace_header("Cache-Control", "no-store");
    con->set_body(reply.body);
}

HttpReply ApiServer::Impl::route(const std::string& method, const Target& target, const std::string& body,
                                 const ApiCredential* who) {
    if (method == "GET" || method == "HEAD") return route_get(target);
    if (method == "POST") {
        if (!m_options.credentials.empty() && (who == nullptr || !who->operate))
            return error_reply(403, "API token '" + (who ? who->name : std::string("?")) +
                                        "' has role read; POST needs role operate");
        return route_post(target, body);
    }
    HttpReply r = error_reply(405, "method " + method + " not allowed");
    r.headers.emplace_back("Allow", "GET, POST, OPTIONS");
    return r;
}

JobStatus ApiServer::Impl::status_of(const std::string& job) const { return m_backend.job_status(job); }

std::string ApiServer::Impl::job_summary(const Job& job) const {
    const JobStatus st = status_of(job.name);
    Json j;
    j["name"] = job.name;
    j["group"] = job.group;
    j["schedule"] = job.schedule.text();
    j["timezone"] = job.timezone.empty() ? std::string("UTC") : job.timezone;
    j["command"] = job.command;
    j["targets"] = job.targets;
    j["target_type"] = std::string(to_string(job.target_type));
    j["use_wrapper"] = job.use_wrapper;
    j["concurrency"] = std::string(to_string(job.concurrency));
    j["timeout"] = job.timeout.count();
    j["next_run"] = st.next_run ? Json(ui::iso_datetime(std::chrono::time_point_cast<std::chrono::microseconds>(*st.next_run))) : Json(nullptr);
    j["last_run"] = st.last_run ? Json(ui::iso_datetime(*st.last_run)) : Json(nullptr);
    j["last_success"] = st.last_success ? Json(*st.last_success) : Json(nullptr);
    j["last_failed_count"] = st.last_failed_count;
    j["last_total_count"] = st.last_total_count;
    Json running = Json::array();
    std::size_t targets_running = 0;
    for (const RunRecord* run : m_backend.running(job.name)) {
        running.push_back(run->instance);
        for (const auto& [m, t] : run->targets) targets_running += t.state != TargetState::finished ? 1 : 0;
    }
    j["running"] = std::move(running);
    j["targets_running"] = targets_running;
    const RunRecord* latest = ui::latest_run(m_backend.runs(), job.name);
    std::string last_instance = latest ? latest->instance : std::string();
    if (latest == nullptr) {
        // Nothing in memory (e.g. after a restart): the newest stored run, so that spctl logs finds it.
        for (const RunRecord& run : m_backend.history().runs_of(job.name, 1)) last_instance = run.instance;
    }
    j["last_instance"] = last_instance.empty() ? Json(nullptr) : Json(last_instance);
    return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string ApiServer::Impl::metrics_text() {
    // The API's own series; the daemon's (hub, runs, store) come from collectors spd registers.
    Metrics& m = m_backend.metrics();
    m.describe("saltpeter_api_ws_clients", "gauge", "UI/spctl WebSocket connections open");
    m.set("saltpeter_api_ws_clients", {}, static_cast<double>(m_clients.size()));
    m.describe("saltpeter_api_http_requests_total", "counter", "HTTP requests served by the API");
    m.set("saltpeter_api_http_requests_total", {}, static_cast<double>(m_http_requests));
    m.collect();
    return m.render();
}

HttpReply ApiServer::Impl::route_get(const Target& t) {
    const auto& seg = t.segments;
    HttpReply r;
    if (t.path == "/version") {
        r.body = Json{{"version", std::string(version())}, {"last_build", __DATE__}}.dump();
    } else if (t.path == "/config") {
        r.body = ui::config_json(m_backend.config(), m_backend.config_serial());
    } else if (t.path == "/running") {
        r.body = ui::running_json(m_backend.runs());
    } else if (t.path == "/timeline") {
        // ?start=&end= (ISO 8601 or now-1h), default the last day; the body is dict(timeline).
        const auto now = std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
        auto start = ui::parse_timeline_bound((t.query.count("start") ? t.query.at("start") : std::string("now-1d")), now);
        auto end = ui::parse_timeline_bound((t.query.count("end") ? t.query.at("end") : std::string("now")), now);
        if (!start) return error_reply(400, start.error().message);
        if (!end) return error_reply(400, end.error().message);
        Json j = Json::parse(ui::timeline_frame(m_backend.history().runs_between(*start, *end, k_timeline_max_runs), *start,
                                                *end, "http", unix_seconds_now()));
        r.body = j["timeline"].dump(-1, ' ', true, Json::error_handler_t::replace);
    } else if (t.path == "/status") {
        Json j = Json::parse(ui::status_frame(m_backend.runs(), m_backend.job_status()));
        j.erase("type");
        r.body = j.dump(-1, ' ', true, Json::error_handler_t::replace);
    } else if (t.path == "/metrics") {
        r.body = metrics_text();
        r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    } else if (seg.size() == 1 && seg[0] == "jobs") {
        std::string body = "[";
        for (const Job& job : m_backend.config().jobs) body += (body.size() > 1 ? "," : "") + job_summary(job);
        r.body = body + "]";
    } else if (seg.size() >= 2 && seg[0] == "jobs") {
        const Job* job = m_backend.config().find(seg[1]);
        if (job == nullptr) return error_reply(404, unknown_job_message(m_backend.config(), seg[1]));
        if (seg.size() == 2) {
            r.body = job_summary(*job);
        } else if (seg.size() == 3 && seg[2] == "runs") {
            std::size_t limit = k_default_history_limit;
            if (auto it = t.query.find("limit"); it != t.query.end()) {
                try {
                    limit = static_cast<std::size_t>(std::stoul(it->second));
                } catch (const std::exception&) {
                    return error_reply(400, "limit must be a positive number, not '" + it->second + "'");
                }
            }
            std::string body = "[";
            for (const RunRecord& run : m_backend.history().runs_of(job->name, limit))
                body += (body.size() > 1 ? "," : "") + ui::run_json(run, false);
            r.body = body + "]";
        } else {
            return error_reply(404, "no such endpoint: " + t.path);
        }
    } else if (seg.size() >= 2 && seg[0] == "runs") {
        auto run = m_backend.history().find(seg[1]);
        if (!run) return error_reply(404, "unknown run instance '" + seg[1] + "'");
        if (seg.size() == 2) {
            r.body = ui::run_json(*run, false);
        } else if (seg.size() == 3 && seg[2] == "output") {
            Json j;
            j["instance"] = run->instance;
            j["job"] = run->job;
            j["finished"] = run->finished();
            Json outputs = Json::object();
            auto m = t.query.find("machine");
            for (const auto& [machine, target] : run->targets) {
                if (m == t.query.end() || m->second == machine) outputs[machine] = target.output;
            }
            if (m != t.query.end() && outputs.empty())
                return error_reply(404, "run " + run->instance + " has no target '" + m->second + "'");
            j["outputs"] = std::move(outputs);
            r.body = j.dump(-1, ' ', false, Json::error_handler_t::replace);
        } else {
            return error_reply(404, "no such endpoint: " + t.path);
        }
    } else if (t.path == "/ws") {
        return error_reply(400, "/ws needs a WebSocket upgrade");
    } else {
        return error_reply(404, "no such endpoint: " + t.path);
    }
    return r;
}

HttpReply ApiServer::Impl::route_post(const Target& t, const std::string& body) {
    const auto& seg = t.segments;
    if (t.path == "/kill") return post_kill("", body, true);
    if (seg.size() == 3 && seg[0] == "jobs" && seg[2] == "kill") return post_kill(seg[1], body, false);
    if (seg.size() == 3 && seg[0] == "jobs" && seg[2] == "run") {
        const Job* job = m_backend.config().find(seg[1]);
        if (job == nullptr) return error_reply(404, unknown_job_message(m_backend.config(), seg[1]));
        // Optional body {"force": true}: start even while a forbid job runs (the host lock stays).
        bool force = false;
        if (!body.empty()) {
            Json j = Json::parse(body, nullptr, false);
            if (j.is_discarded() || !j.is_object()) return error_reply(400, "request body must be a JSON object");
            auto it = j.find("force");
            if (it != j.end() && !it->is_null()) {
                if (!it->is_boolean()) return error_reply(400, "field 'force' must be true or false");
                force = it->get<bool>();
            }
        }
        auto started = m_backend.run_now(job->name, force);
        if (!started && started.error().field == "queued") {
            // Global maintenance: the request waits and starts when maintenance ends.
            HttpReply r;
            r.status = 202;
            r.body = Json{{"job", job->name}, {"queued", true}, {"message", started.error().message}}.dump();
            spdlog::info("API: run-now {} queued: {}", job->name, started.error().message);
            return r;
        }
        if (!started) return error_reply(409, started.error().message);
        HttpReply r;
        r.status = 202;
        r.body = Json{{"instance", *started}, {"job", job->name}}.dump();
        spdlog::info("API: run-now {} started {}", job->name, *started);
        return r;
    }
    return error_reply(404, "no such endpoint: POST " + t.path);
}

HttpReply ApiServer::Impl::post_kill(const std::string& path_job, const std::string& body, bool body_has_job) {
    std::string job = path_job;
    std::optional<std::string> machine;
    std::optional<std::string> instance;
    if (!body.empty()) {
        Json j = Json::parse(body, nullptr, false);
        if (j.is_discarded() || !j.is_object()) return error_reply(400, "request body must be a JSON object");
        auto str = [&](const char* key) -> std::optional<std::string> {
            auto it = j.find(key);
            if (it == j.end() || it->is_null()) return std::nullopt;
            if (!it->is_string()) throw std::invalid_argument(key);
            return it->get<std::string>();
        };
        try {
            if (body_has_job) job = str("job").value_or("");
            machine = str("machine");
            instance = str("instance");
        } catch (const std::invalid_argument& e) {
            return error_reply(400, std::string("field '") + e.what() + "' must be a string");
        }
    }
    if (job.empty()) return error_reply(400, "field 'job' is required");
    if (m_backend.config().find(job) == nullptr && m_backend.running(job).empty())
        return error_reply(404, unknown_job_message(m_backend.config(), job));
    bool killed = false;
    if (instance) {
        const RunRecord* run = m_backend.find_run(*instance);
        if (run == nullptr || run->job != job) return error_reply(404, "job '" + job + "' has no run '" + *instance + "'");
        killed = m_backend.kill_run(*instance, machine);
    } else {
        killed = m_backend.kill_job(job, machine);
    }
    if (!killed)
        return error_reply(409, "nothing to kill: job '" + job + "'" + (machine ? " on '" + *machine + "'" : std::string()) +
                                    " is not running");
    spdlog::info("API: kill {}{}{}", job, instance ? " " + *instance : std::string(), machine ? " on " + *machine : std::string());
    HttpReply r;
    r.status = 202;
    Json j{{"job", job}, {"killed", true}};
    if (machine) j["machine"] = *machine;
    if (instance) j["instance"] = *instance;
    r.body = j.dump();
    return r;
}

}  // namespace saltpeter
