// ApiServer (api_server.hpp): one WsServer endpoint (ws/http or wss/https) on the daemon's
// io_context. Plain HTTP requests go to route(); upgrades on /ws become UI clients. The frames
// themselves are built by ui_protocol.cpp; this file keeps per-connection state:
//
//   UI client: subscriptions (job names), per (job, machine) how much of the latest run's output
//   was sent (instance, bytes, UTF-16 units), the config serial it has seen, push on/off.
//
//   open --> config, status, timeline
//   every tick (2 s): [config if the serial changed] status, per subscribed job (config order):
//                     output_chunks then details
//   push mode: the same per-job update (and status) right after a run event, coalesced per turn.
//
// The sockets, TLS and handshake timeouts are net/ws_server.hpp's.

#include "api/api_server.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <set>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "api/api_backend.hpp"
#include "api/metrics.hpp"
#include "runs/run_history.hpp"
#include "api/ui_protocol.hpp"
#include "net/ws_server.hpp"
#include "saltpeter/version.hpp"
#include "core/token.hpp"

namespace saltpeter {

namespace {

using Json = nlohmann::json;

constexpr std::size_t k_max_send_queue_bytes = 8u * 1024 * 1024;  // a UI that reads slower is closed
constexpr std::size_t k_default_history_limit = 20;
constexpr std::size_t k_timeline_max_runs = 5000;  // the newest runs of a timeline range

struct HttpReply {
    int status = 200;
    std::string body;
    std::string content_type = "application/json";
    std::vector<std::pair<std::string, std::string>> headers;
};

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
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Splits "/a/b?x=1&y=2" into decoded path segments and query parameters.
struct Target {
    std::string path;
    std::vector<std::string> segments;
    std::map<std::string, std::string> query;
};

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

}  // namespace

Result<std::vector<ApiCredential>> resolve_api_tokens(const std::vector<ApiToken>& tokens) {
    std::vector<ApiCredential> out;
    for (const ApiToken& t : tokens) {
        if (t.role != "read" && t.role != "operate")
            return Error{"API token '" + t.name + "': role must be read or operate, not '" + t.role + "'", "api_tokens"};
        ApiCredential c;
        c.name = t.name;
        c.operate = t.role == "operate";
        c.token = t.token;
        if (!t.token_file.empty()) {
            std::ifstream in(t.token_file);
            if (!in) return Error{"API token '" + t.name + "': cannot read token_file " + t.token_file, "api_tokens"};
            std::getline(in, c.token);
            while (!c.token.empty() && std::isspace(static_cast<unsigned char>(c.token.back()))) c.token.pop_back();
        }
        if (c.token.size() < 8)
            return Error{"API token '" + t.name + "' is too short (at least 8 characters)", "api_tokens"};
        out.push_back(std::move(c));
    }
    return out;
}

bool is_loopback_origin(std::string_view origin, std::uint16_t port) {
    auto lower = [](std::string_view v) {
        std::string out(v);
        for (char& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        return out;
    };
    const std::string o = lower(origin);
    std::string_view rest(o);
    unsigned long origin_port = 0;
    if (rest.substr(0, 7) == "http://") {
        rest.remove_prefix(7);
        origin_port = 80;
    } else if (rest.substr(0, 8) == "https://") {
        rest.remove_prefix(8);
        origin_port = 443;
    } else {
        return false;
    }
    std::string_view host;
    if (!rest.empty() && rest.front() == '[') {
        const auto close = rest.find(']');
        if (close == std::string_view::npos) return false;
        host = rest.substr(0, close + 1);
        rest.remove_prefix(close + 1);
    } else {
        const auto colon = rest.find(':');
        host = rest.substr(0, colon);
        rest.remove_prefix(colon == std::string_view::npos ? rest.size() : colon);
    }
    if (!rest.empty()) {
        if (rest.front() != ':' || rest.size() < 2 || rest.size() > 6) return false;
        origin_port = 0;
        for (char ch : rest.substr(1)) {
            if (ch < '0' || ch > '9') return false;
            origin_port = origin_port * 10 + static_cast<unsigned long>(ch - '0');
        }
    }
    return origin_port == port && (host == "127.0.0.1" || host == "localhost" || host == "[::1]");
}

const ApiCredential* match_token(const std::vector<ApiCredential>& credentials, const std::string& presented) {
    const ApiCredential* found = nullptr;
    // Every credential is compared, so the time does not tell which one (or whether one) matched.
    for (const ApiCredential& c : credentials) {
        if (detail::constant_time_equal(c.token, presented) && found == nullptr) found = &c;
    }
    return found;
}

class ApiServer::Impl : public std::enable_shared_from_this<Impl>, public RunObserver, public WsHandler {
public:
    Impl(boost::asio::io_context& io, ApiServerOptions options, ApiBackend& backend)
        : m_io(io), m_options(std::move(options)), m_backend(backend), m_tick(io) {}

    Result<std::uint16_t> listen();
    void stop();
    std::size_t ws_connections() const { return m_clients.size(); }

    // RunObserver: push mode.
    void on_run_started(const RunRecord& run) override { touch(run.job, true); }
    void on_target_started(const RunRecord& run, const TargetResult&) override { touch(run.job, false); }
    void on_output(const RunRecord& run, const TargetResult&, std::string_view) override { touch(run.job, false); }
    void on_target_finished(const RunRecord& run, const TargetResult&) override { touch(run.job, true); }
    void on_run_finished(const RunRecord& run) override { touch(run.job, true); }

private:
    struct Position {
        std::string instance;
        std::size_t bytes = 0;
        std::size_t units = 0;
    };
    struct Client {
        WsConnectionPtr link;
        std::string peer;
        bool operate = false;
        bool push = false;
        std::vector<std::string> subscriptions;
        std::map<std::pair<std::string, std::string>, Position> positions;
        double config_serial = 0;
        std::set<std::string> dirty_jobs;
        bool dirty_status = false;
    };
    using ClientPtr = std::shared_ptr<Client>;

    // WsHandler (WsServer catches what they throw and reports it to on_handler_error).
    void on_accept(const WsConnectionPtr& con) override { m_peers[con] = con->remote_endpoint(); }
    void on_http(const WsConnectionPtr& con) override;
    bool on_validate(const WsConnectionPtr& con) override;
    void on_open(const WsConnectionPtr& con) override;
    void on_message(const WsConnectionPtr& con, bool is_text, const std::string& text) override;
    void on_close(const WsConnectionPtr& con) override { m_clients.erase(con.get()); }
    void on_fail(const WsConnectionPtr& con, const WsFailure& failure) override;
    void on_handler_error(const WsConnectionPtr&, const char* what, const std::exception* error) override;

    HttpReply route(const std::string& method, const Target& target, const std::string& body, const ApiCredential* who);
    HttpReply route_get(const Target& target);
    HttpReply route_post(const Target& target, const std::string& body);
    HttpReply post_kill(const std::string& job, const std::string& body_json, bool body_has_job);
    std::string job_summary(const Job& job) const;
    std::string metrics_text();
    // Authorisation: nullptr with `ok` true when no tokens are configured.
    bool authorise(const std::string& auth_header, const std::string& query_token, const ApiCredential*& who) const;
    std::vector<std::pair<std::string, std::string>> cors_headers(const std::string& origin) const;
    bool origin_allowed(const std::string& origin) const;
    // Why a browser `origin` may not use /ws (or POST, `post` true), or "" when it may.
    std::string origin_refusal(const std::string& origin, bool post) const;

    void send(const ClientPtr& c, const std::string& text);
    void send_status(const ClientPtr& c);
    void send_job(const ClientPtr& c, const std::string& job);
    void send_subscribed(const ClientPtr& c);
    void arm_tick();
    void on_tick();
    void touch(const std::string& job, bool status);
    void flush_push();
    JobStatus status_of(const std::string& job) const;
    template <typename F>
    void guarded(const char* what, F&& body);

    boost::asio::io_context& m_io;
    ApiServerOptions m_options;
    ApiBackend& m_backend;
    std::unique_ptr<WsServer> m_server;
    boost::asio::steady_timer m_tick;
    bool m_listening = false;
    bool m_stopped = false;
    bool m_flush_posted = false;
    std::map<const WsConnection*, ClientPtr> m_clients;  ///< keyed by Client::link
    std::uint64_t m_http_requests = 0;
    std::uint16_t m_port = 0;  ///< the bound port (the API's own origin)
    // Each connection's peer from accept until its request is handled (http, open) or it fails:
    // a failed socket may no longer know its remote endpoint when the failure is logged.
    std::map<std::weak_ptr<WsConnection>, std::string, std::owner_less<>> m_peers;
    std::string take_peer(const WsConnectionPtr& con);
};

// ---- setup ------------------------------------------------------------------------------------

Result<std::uint16_t> ApiServer::Impl::listen() {
    const std::string where = m_options.bind_address + ":" + std::to_string(m_options.port);
    if (m_listening || m_stopped) return Error{"API " + where + ": listen() called twice or after stop()", ""};
    WsServerOptions ws{m_options.bind_address, m_options.port, m_options.tls_cert, m_options.tls_key};
    ws.max_message_bytes = m_options.max_ws_frame_bytes;
    ws.max_http_body_bytes = m_options.max_body_bytes;
    ws.serve_http = true;
    ws.words = {"API", "API port", "api_ws_port", "API: invalid api_ws_bind_addr", "api_ws_bind_addr"};
    m_server = std::make_unique<WsServer>(m_io, std::move(ws), weak_from_this());
    auto port = m_server->listen();
    if (!port) return port;
    m_listening = true;
    m_port = *port;
    m_backend.add_observer(shared_from_this());
    arm_tick();
    return port;
}

void ApiServer::Impl::on_fail(const WsConnectionPtr& con, const WsFailure& failure) {
    m_clients.erase(con.get());
    // One line per failed connection: a slow client (5 s), a malformed or oversized request.
    // A refused upgrade was logged by on_validate already; nothing is reported while stopping.
    std::string peer = take_peer(con);
    if (m_stopped || failure.kind == WsFailure::Kind::rejected) return;
    if (peer.empty()) peer = con->remote_endpoint();
    if (failure.kind == WsFailure::Kind::open_handshake_timeout) {
        spdlog::warn("API {}: request not complete within {} ms (slow client); connection closed", peer,
                     k_ws_open_handshake_timeout_ms);
    } else {
        spdlog::warn("API {}: {} (HTTP status {}); connection closed", peer, failure.message, failure.http_status);
    }
}

void ApiServer::Impl::on_handler_error(const WsConnectionPtr&, const char* what, const std::exception* error) {
    if (error) spdlog::error("API: {} handler failed: {}", what, error->what());
    else spdlog::error("API: {} handler failed", what);
}

std::string ApiServer::Impl::take_peer(const WsConnectionPtr& con) {
    auto it = m_peers.find(con);
    if (it == m_peers.end()) return "";
    std::string peer = std::move(it->second);
    m_peers.erase(it);
    return peer;
}

void ApiServer::Impl::stop() {
    if (m_stopped) return;
    m_stopped = true;
    m_tick.cancel();
    if (m_listening && m_server) m_server->stop_listening();
    m_listening = false;
    auto clients = std::move(m_clients);
    m_clients.clear();
    for (auto& [con, c] : clients) c->link->close(ws_close::k_going_away, "server stopping");
}

template <typename F>
void ApiServer::Impl::guarded(const char* what, F&& body) {
    try {
        body();
    } catch (const std::exception& e) {
        spdlog::error("API: {} handler failed: {}", what, e.what());
    } catch (...) {
        spdlog::error("API: {} handler failed", what);
    }
}

// ---- auth and CORS ----------------------------------------------------------------------------

bool ApiServer::Impl::authorise(const std::string& auth_header, const std::string& query_token,
                                const ApiCredential*& who) const {
    who = nullptr;
    if (m_options.credentials.empty()) return true;
    std::string presented = query_token;
    static const std::string k_bearer = "Bearer ";
    if (auth_header.size() > k_bearer.size() && auth_header.compare(0, k_bearer.size(), k_bearer) == 0)
        presented = auth_header.substr(k_bearer.size());
    if (presented.empty()) return false;
    who = match_token(m_options.credentials, presented);
    return who != nullptr;
}

bool ApiServer::Impl::origin_allowed(const std::string& origin) const {
    for (const auto& o : m_options.cors_origins) {
        if (o == "*" || o == origin) return true;
    }
    return false;
}

std::string ApiServer::Impl::origin_refusal(const std::string& origin, bool post) const {
    if (origin.empty()) return "";  // not a browser: curl, spctl, scripts
    if (!m_options.cors_origins.empty()) {
        // With tokens a cross-site form POST cannot carry the Authorization header: the token guards it.
        if (origin_allowed(origin) || (post && !m_options.credentials.empty())) return "";
        return "origin '" + origin + "' is not in cors_origins";
    }
    // No cors_origins: without tokens only the API's own origin, or any page in the operator's
    // browser could drive this spd (cross-site WebSocket hijacking, cross-site POST).
    if (!m_options.credentials.empty() || is_loopback_origin(origin, m_port)) return "";
    return "origin '" + origin + "' is not this API's own (http://127.0.0.1:" + std::to_string(m_port) +
           "); list it in cors_origins";
}

std::vector<std::pair<std::string, std::string>> ApiServer::Impl::cors_headers(const std::string& origin) const {
    if (origin.empty() || !origin_allowed(origin)) return {};
    return {{"Access-Control-Allow-Origin", origin},
            {"Vary", "Origin"},
            {"Access-Control-Allow-Headers",
             "DNT,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization"},
            {"Access-Control-Allow-Methods", "GET, POST, OPTIONS"}};
}

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

// ---- WebSocket --------------------------------------------------------------------------------

bool ApiServer::Impl::on_validate(const WsConnectionPtr& con) {
    const Target t = parse_target(con->resource());
    if (t.path != "/ws") {
        con->set_status(404);
        con->set_body(ui::error_json("no WebSocket endpoint at " + t.path + " (use /ws)"));
        return false;
    }
    const std::string origin = con->request_header("Origin");
    if (const std::string why = origin_refusal(origin, false); !why.empty()) {
        spdlog::warn("API /ws {}: upgrade refused: {}", con->remote_endpoint(), why);
        con->set_status(403);
        con->set_body(ui::error_json(why));
        return false;
    }
    const ApiCredential* who = nullptr;
    auto tok = t.query.find("token");
    if (!authorise(con->request_header("Authorization"), tok == t.query.end() ? "" : tok->second, who)) {
        con->set_status(401);
        con->set_body(ui::error_json("missing or invalid API token (Authorization: Bearer or ?token=)"));
        return false;
    }
    return true;
}

void ApiServer::Impl::on_open(const WsConnectionPtr& con) {
    m_peers.erase(con);
    auto c = std::make_shared<Client>();
    c->link = con;
    c->peer = con->remote_endpoint();
    const Target t = parse_target(con->resource());
    const ApiCredential* who = nullptr;
    auto tok = t.query.find("token");
    authorise(con->request_header("Authorization"), tok == t.query.end() ? "" : tok->second, who);
    c->operate = m_options.credentials.empty() || (who != nullptr && who->operate);
    c->push = t.query.count("push") > 0 && t.query.at("push") != "0";
    if (auto sub = t.query.find("subscribe"); sub != t.query.end() && !sub->second.empty()) c->subscriptions.push_back(sub->second);
    m_clients[con.get()] = c;
    if (m_stopped) return;
    const Config& config = m_backend.config();
    c->config_serial = m_backend.config_serial();
    send(c, ui::config_frame(config, c->config_serial));
    send_status(c);
    send(c, ui::timeline_frame());
    if (!c->subscriptions.empty()) send_subscribed(c);
}

void ApiServer::Impl::on_message(const WsConnectionPtr& con, bool /*is_text*/, const std::string& text) {
    auto it = m_clients.find(con.get());
    if (it == m_clients.end()) return;
    ClientPtr c = it->second;
    auto parsed = ui::parse_command(text);
    if (!parsed) {
        spdlog::warn("API /ws {}: {}", c->peer, parsed.error().message);
        return;
    }
    const ui::Command& cmd = *parsed;
    using Kind = ui::Command::Kind;
    const bool needs_operate = cmd.kind == Kind::run || cmd.kind == Kind::kill_cron || cmd.kind == Kind::kill_machine;
    if (needs_operate && !c->operate) {
        spdlog::warn("API /ws {}: refused {} (token role read; needs operate)", c->peer, text.substr(0, 200));
        if (c->push) send(c, ui::error_json("token role read; run and kill need role operate"));
        return;
    }
    switch (cmd.kind) {
    case Kind::subscribe:
        for (const auto& job : cmd.jobs) {
            if (std::find(c->subscriptions.begin(), c->subscriptions.end(), job) == c->subscriptions.end())
                c->subscriptions.push_back(job);
        }
        send_status(c);
        send_subscribed(c);
        break;
    case Kind::unsubscribe:
        for (const auto& job : cmd.jobs) {
            c->subscriptions.erase(std::remove(c->subscriptions.begin(), c->subscriptions.end(), job), c->subscriptions.end());
            for (auto p = c->positions.begin(); p != c->positions.end();) p = p->first.first == job ? c->positions.erase(p) : std::next(p);
        }
        break;
    case Kind::ack:
        spdlog::debug("API /ws {}: ack {} {} {}", c->peer, cmd.job, cmd.machine, cmd.position);
        break;
    case Kind::run: {
        auto started = m_backend.run_now(cmd.job, false);
        if (started) spdlog::info("API /ws {}: run {} started {}", c->peer, cmd.job, *started);
        else spdlog::warn("API /ws {}: run {}: {}", c->peer, cmd.job, started.error().message);
        if (c->push) send(c, started ? Json{{"type", "started"}, {"cron", cmd.job}, {"job_instance", *started}}.dump()
                                     : ui::error_json(started.error().message));
        break;
    }
    case Kind::kill_cron:
        spdlog::info("API /ws {}: killCron {}: {}", c->peer, cmd.job, m_backend.kill_job(cmd.job, std::nullopt) ? "sent" : "nothing running");
        break;
    case Kind::kill_machine: {
        std::optional<std::string> instance = cmd.instance;
        if (!instance) {
            for (const RunRecord* run : m_backend.running(cmd.job)) {
                if (run->targets.count(cmd.machine)) instance = run->instance;
            }
        }
        if (!instance) {
            spdlog::warn("API /ws {}: killMachine {} {}: no running instance has that machine", c->peer, cmd.job, cmd.machine);
            break;
        }
        spdlog::info("API /ws {}: killMachine {} {} {}: {}", c->peer, cmd.job, cmd.machine, *instance,
                     m_backend.kill_run(*instance, cmd.machine) ? "sent" : "nothing running");
        break;
    }
    case Kind::get_timeline: {
        // Served from the run history (the store; no search backend needed); a bad bound answers with
        // the request id and no content, as the UI expects a reply.
        const auto now = std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
        auto start = ui::parse_timeline_bound(cmd.start_date.empty() ? "now-1d" : cmd.start_date, now);
        auto end = ui::parse_timeline_bound(cmd.end_date.empty() ? "now" : cmd.end_date, now);
        if (!start || !end) {
            spdlog::warn("API /ws {}: getTimeline: {}", c->peer, (!start ? start.error() : end.error()).message);
            send(c, ui::timeline_frame({}, now, now, cmd.id, unix_seconds_now()));
            break;
        }
        send(c, ui::timeline_frame(m_backend.history().runs_between(*start, *end, k_timeline_max_runs), *start, *end, cmd.id,
                                   unix_seconds_now()));
        break;
    }
    case Kind::push:
        c->push = cmd.push;
        if (c->push) send_subscribed(c);
        break;
    case Kind::none:
        break;
    }
}

void ApiServer::Impl::send(const ClientPtr& c, const std::string& text) {
    if (c->link->buffered_amount() > k_max_send_queue_bytes) {
        spdlog::warn("API /ws {}: client reads too slowly ({} bytes queued); closing it", c->peer, c->link->buffered_amount());
        c->link->close(ws_close::k_try_again_later, "too slow");
        return;
    }
    c->link->send_text(text);
}

void ApiServer::Impl::send_status(const ClientPtr& c) {
    send(c, ui::status_frame(m_backend.runs(), m_backend.job_status()));
}

void ApiServer::Impl::send_job(const ClientPtr& c, const std::string& job) {
    const Job* cfg = m_backend.config().find(job);
    if (cfg == nullptr) return;  // the original sends nothing for jobs not in config.crons
    const RunRecord* latest = ui::latest_run(m_backend.runs(), job);
    if (latest != nullptr) {
        for (const auto& [machine, t] : latest->targets) {
            Position& pos = c->positions[{job, machine}];
            if (pos.instance != latest->instance || pos.bytes > t.output.size()) pos = Position{latest->instance, 0, 0};
            if (t.output.size() <= pos.bytes) continue;
            ui::OutputChunk chunk;
            chunk.cron = job;
            chunk.machine = machine;
            chunk.chunk = t.output.substr(pos.bytes);
            chunk.position = pos.units;
            chunk.total_length = pos.units + ui::utf16_length(chunk.chunk);
            chunk.is_complete = t.endtime.has_value();
            if (c->push) chunk.instance = latest->instance;
            pos.bytes = t.output.size();
            pos.units = chunk.total_length;
            send(c, ui::output_chunk_frame(chunk));
        }
    }
    const JobStatus st = status_of(job);
    send(c, ui::details_frame(job, cfg->group, &st, latest, c->push));
}

void ApiServer::Impl::send_subscribed(const ClientPtr& c) {
    // In config order, as the original iterates config.crons.
    for (const Job& job : m_backend.config().jobs) {
        if (std::find(c->subscriptions.begin(), c->subscriptions.end(), job.name) != c->subscriptions.end())
            send_job(c, job.name);
    }
}

void ApiServer::Impl::arm_tick() {
    m_tick.expires_after(std::chrono::milliseconds(m_options.tick_ms));
    std::weak_ptr<Impl> weak = shared_from_this();
    m_tick.async_wait([weak](const boost::system::error_code& ec) {
        if (ec) return;
        if (auto self = weak.lock()) {
            self->guarded("tick", [&] { self->on_tick(); });
            if (!self->m_stopped) self->arm_tick();
        }
    });
}

void ApiServer::Impl::on_tick() {
    for (auto it = m_peers.begin(); it != m_peers.end();) it = it->first.expired() ? m_peers.erase(it) : std::next(it);
    const double serial = m_backend.config_serial();
    auto clients = m_clients;  // a send may close one
    for (auto& [conn, c] : clients) {
        if (c->config_serial != serial) {
            c->config_serial = serial;
            send(c, ui::config_frame(m_backend.config(), serial));
        }
        send_status(c);
        send_subscribed(c);
    }
}

void ApiServer::Impl::touch(const std::string& job, bool status) {
    if (m_stopped) return;
    bool any = false;
    for (auto& [conn, c] : m_clients) {
        if (!c->push) continue;
        if (std::find(c->subscriptions.begin(), c->subscriptions.end(), job) != c->subscriptions.end()) {
            c->dirty_jobs.insert(job);
            any = true;
        }
        if (status) {
            c->dirty_status = true;
            any = true;
        }
    }
    if (!any || m_flush_posted) return;
    m_flush_posted = true;
    // After the current handler, so that one burst of events becomes one update per client.
    boost::asio::post(m_io, [weak = std::weak_ptr<Impl>(shared_from_this())] {
        if (auto self = weak.lock()) self->guarded("push", [&] { self->flush_push(); });
    });
}

void ApiServer::Impl::flush_push() {
    m_flush_posted = false;
    if (m_stopped) return;
    auto clients = m_clients;
    for (auto& [conn, c] : clients) {
        if (c->dirty_status) send_status(c);
        for (const Job& job : m_backend.config().jobs) {
            if (c->dirty_jobs.count(job.name)) send_job(c, job.name);
        }
        c->dirty_status = false;
        c->dirty_jobs.clear();
    }
}

// ---- facade -----------------------------------------------------------------------------------

ApiServer::ApiServer(boost::asio::io_context& io, ApiServerOptions options, ApiBackend& backend)
    : m_impl(std::make_shared<Impl>(io, std::move(options), backend)) {}
ApiServer::~ApiServer() { m_impl->stop(); }
Result<std::uint16_t> ApiServer::listen() { return m_impl->listen(); }
void ApiServer::stop() { m_impl->stop(); }
std::size_t ApiServer::ws_connections() const { return m_impl->ws_connections(); }

}  // namespace saltpeter
