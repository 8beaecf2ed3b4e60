// ApiServer (api_server.hpp): one WsServer endpoint (ws/http or wss/https) on the daemon's
// io_context; this file is the listener and the server's lifetime. Plain HTTP requests go to the
// routes (api_http.cpp), upgrades on /ws become UI clients (api_ui.cpp), tokens and origins are
// api_auth.cpp's. The sockets, TLS and handshake timeouts are net/ws_server.hpp's.

#include "api/api_server.hpp"

#include "api/api_server_impl.hpp"

namespace saltpeter {

using namespace api;

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


// ---- facade -----------------------------------------------------------------------------------

ApiServer::ApiServer(boost::asio::io_context& io, ApiServerOptions options, ApiBackend& backend)
    : m_impl(std::make_shared<Impl>(io, std::move(options), backend)) {}
ApiServer::~ApiServer() { m_impl->stop(); }
Result<std::uint16_t> ApiServer::listen() { return m_impl->listen(); }
void ApiServer::stop() { m_impl->stop(); }
std::size_t ApiServer::ws_connections() const { return m_impl->ws_connections(); }

}  // namespace saltpeter
