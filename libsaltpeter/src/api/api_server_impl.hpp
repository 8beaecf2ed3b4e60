#pragma once
// ApiServer::Impl: the API's shared state, declared once for the files that each play one role
// (as in Beast's chat-multi): api_server.cpp the listener and lifetime, api_auth.cpp tokens and
// origins, api_http.cpp the HTTP routes, api_ui.cpp the /ws sessions of the UI protocol and push.
// Private to src/api/. Io thread only.

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "api/api_backend.hpp"
#include "api/api_server.hpp"
#include "net/ws_server.hpp"

namespace saltpeter {

namespace api {

using Json = nlohmann::json;

inline constexpr std::size_t k_max_send_queue_bytes = 8u * 1024 * 1024;  // a UI that reads slower is closed
inline constexpr std::size_t k_default_history_limit = 20;
inline constexpr std::size_t k_timeline_max_runs = 5000;  // the newest runs of a timeline range

struct HttpReply {
    int status = 200;
    std::string body;
    std::string content_type = "application/json";
    std::vector<std::pair<std::string, std::string>> headers;
};

/// A JSON error body {"error": message} with `status`.
HttpReply error_reply(int status, const std::string& message);

// Splits "/a/b?x=1&y=2" into decoded path segments and query parameters.
struct Target {
    std::string path;
    std::vector<std::string> segments;
    std::map<std::string, std::string> query;
};
Target parse_target(const std::string& resource);

/// "unknown job 'bakup' (close names: backup)", so that spctl and scripts can show them.
std::string unknown_job_message(const Config& config, const std::string& name);

/// The original's timeline serial: the Unix time as a float.
double unix_seconds_now();

}  // namespace api

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

    api::HttpReply route(const std::string& method, const api::Target& target, const std::string& body, const ApiCredential* who);
    api::HttpReply route_get(const api::Target& target);
    api::HttpReply route_post(const api::Target& target, const std::string& body);
    api::HttpReply post_kill(const std::string& job, const std::string& body_json, bool body_has_job);
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

}  // namespace saltpeter
