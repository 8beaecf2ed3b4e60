// WsServer (ws_server.hpp). With ws_client.cpp the only library TUs that include websocketpp.
// Connections are wrapped once here, keyed by websocketpp's weak handle, so that callers can key
// their own state on a stable WsConnection without seeing websocketpp.
#include "net/ws_server.hpp"

#include <websocketpp/config/asio.hpp>
#include <websocketpp/config/asio_no_tls.hpp>
#include <websocketpp/server.hpp>

#include <map>
#include <utility>

#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace saltpeter {
namespace {

using PlainServer = websocketpp::server<websocketpp::config::asio>;
using TlsServer = websocketpp::server<websocketpp::config::asio_tls>;
using Hdl = websocketpp::connection_hdl;

// Holds only the weak handle: a wrapper kept by a caller must not keep the socket alive, and a
// call after websocketpp dropped the connection is a no-op.
template <typename ServerT>
class ConnectionOf final : public WsConnection {
public:
    using ConPtr = typename ServerT::connection_ptr;
    explicit ConnectionOf(Hdl hdl) : m_hdl(std::move(hdl)) {}

    std::error_code send_text(const std::string& text) override {
        if (auto c = con()) return c->send(text, websocketpp::frame::opcode::text);
        return websocketpp::error::make_error_code(websocketpp::error::bad_connection);
    }
    std::size_t buffered_amount() const override {
        auto c = con();
        return c ? c->get_buffered_amount() : 0;
    }
    void close(int code, const std::string& reason) override {
        auto c = con();
        websocketpp::lib::error_code ec;
        if (c && c->get_state() == websocketpp::session::state::open)
            c->close(static_cast<websocketpp::close::status::value>(code), reason, ec);
    }
    int local_close_code() const override {
        auto c = con();
        return c ? static_cast<int>(c->get_local_close_code()) : 0;
    }
    std::string remote_endpoint() const override {
        auto c = con();
        return c ? c->get_remote_endpoint() : "Unknown";
    }
    std::string method() const override {
        auto c = con();
        return c ? c->get_request().get_method() : "";
    }
    std::string resource() const override {
        auto c = con();
        return c ? c->get_resource() : "";
    }
    std::string request_header(const std::string& name) const override {
        auto c = con();
        return c ? c->get_request_header(name) : "";
    }
    std::string request_body() const override {
        auto c = con();
        return c ? c->get_request_body() : "";
    }
    void set_status(int status) override {
        if (auto c = con()) c->set_status(static_cast<websocketpp::http::status_code::value>(status));
    }
    void replace_header(const std::string& name, const std::string& value) override {
        if (auto c = con()) c->replace_header(name, value);
    }
    void set_body(const std::string& body) override {
        if (auto c = con()) c->set_body(body);
    }

private:
    ConPtr con() const { return std::static_pointer_cast<typename ConPtr::element_type>(m_hdl.lock()); }
    Hdl m_hdl;
};

}  // namespace

struct WsServer::Impl : std::enable_shared_from_this<Impl> {
    Impl(boost::asio::io_context& context, WsServerOptions opts, std::weak_ptr<WsHandler> h)
        : io(context), options(std::move(opts)), handler(std::move(h)) {}

    Result<std::uint16_t> listen();
    Result<std::shared_ptr<boost::asio::ssl::context>> load_tls(const std::string& where) const;
    template <typename ServerT>
    Result<std::uint16_t> start(ServerT& server, const boost::asio::ip::tcp::endpoint& endpoint, const std::string& where);
    template <typename ServerT>
    WsConnectionPtr connection(const Hdl& hdl);
    void forget(const Hdl& hdl) { connections.erase(hdl); }
    template <typename F>
    void guarded(const WsConnectionPtr& conn, const char* what, F&& body);
    void stop_listening();

    boost::asio::io_context& io;
    WsServerOptions options;
    std::weak_ptr<WsHandler> handler;  ///< reset once the WsServer is gone (the Impl may live 50 ms longer)
    std::unique_ptr<PlainServer> plain;
    std::unique_ptr<TlsServer> tls;
    bool listening = false;
    bool started = false;
    std::map<Hdl, WsConnectionPtr, std::owner_less<Hdl>> connections;
    std::size_t sweep_at = 64;
};

Result<std::uint16_t> WsServer::Impl::listen() {
    const std::string where = options.bind_address + ":" + std::to_string(options.port);
    if (started) return Error{options.words.label + " " + where + ": listen() called twice", ""};
    started = true;
    boost::system::error_code aec;
    const auto address = boost::asio::ip::make_address(options.bind_address, aec);
    if (aec) return Error{options.words.bad_address_prefix + " '" + options.bind_address + "': " + aec.message(), options.words.address_field};
    const boost::asio::ip::tcp::endpoint endpoint(address, options.port);
    if (options.tls_cert.empty() && options.tls_key.empty()) {
        plain = std::make_unique<PlainServer>();
        return start(*plain, endpoint, where);
    }
    auto context = load_tls(where);
    if (!context) return context.error();
    tls = std::make_unique<TlsServer>();
    tls->set_tls_init_handler([ctx = *context](Hdl) { return ctx; });
    return start(*tls, endpoint, where);
}

Result<std::shared_ptr<boost::asio::ssl::context>> WsServer::Impl::load_tls(const std::string& where) const {
    if (options.tls_cert.empty() || options.tls_key.empty())
        return Error{options.words.label + " " + where + ": TLS needs both tls_cert and tls_key",
                     options.tls_cert.empty() ? "tls_cert" : "tls_key"};
    namespace ssl = boost::asio::ssl;
    auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
    ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                     ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
    // Loaded once here, so that a bad file is a start-up error and not a failure per connection.
    boost::system::error_code ec;
    ctx->use_certificate_chain_file(options.tls_cert, ec);
    if (ec) return Error{options.words.label + " " + where + ": cannot use tls_cert '" + options.tls_cert + "': " + ec.message(), "tls_cert"};
    ctx->use_private_key_file(options.tls_key, ssl::context::pem, ec);
    if (ec) return Error{options.words.label + " " + where + ": cannot use tls_key '" + options.tls_key + "': " + ec.message(), "tls_key"};
    return ctx;
}

template <typename ServerT>
WsConnectionPtr WsServer::Impl::connection(const Hdl& hdl) {
    auto it = connections.find(hdl);
    if (it != connections.end()) return it->second;
    // Plain HTTP peers that vanish without a close or fail event leave expired handles behind;
    // sweeping when the map has doubled keeps that bounded at amortised O(1) per accept.
    if (connections.size() >= sweep_at) {
        for (auto i = connections.begin(); i != connections.end();) i = i->first.expired() ? connections.erase(i) : std::next(i);
        sweep_at = 2 * connections.size() + 64;
    }
    WsConnectionPtr conn = std::make_shared<ConnectionOf<ServerT>>(hdl);
    connections.emplace(hdl, conn);
    return conn;
}

template <typename F>
void WsServer::Impl::guarded(const WsConnectionPtr& conn, const char* what, F&& body) {
    // Locked for the whole callback, so that a handler that drops its owner finishes safely.
    auto h = handler.lock();
    if (!h) return;
    try {
        body(*h);
    } catch (const std::exception& e) {
        try {
            h->on_handler_error(conn, what, &e);
        } catch (...) {
        }
    } catch (...) {
        try {
            h->on_handler_error(conn, what, nullptr);
        } catch (...) {
        }
    }
}

template <typename ServerT>
Result<std::uint16_t> WsServer::Impl::start(ServerT& server, const boost::asio::ip::tcp::endpoint& endpoint,
                                            const std::string& where) {
    websocketpp::lib::error_code ec;
    server.clear_access_channels(websocketpp::log::alevel::all);
    server.clear_error_channels(websocketpp::log::elevel::all);
    server.init_asio(&io, ec);
    if (ec) return Error{options.words.label + " " + where + ": " + ec.message(), ""};
    server.set_reuse_addr(true);
    server.set_max_message_size(options.max_message_bytes);
    server.set_max_http_body_size(options.max_http_body_bytes);
    server.set_open_handshake_timeout(options.open_handshake_timeout_ms);
    server.set_close_handshake_timeout(options.close_handshake_timeout_ms);

    // Handlers hold a weak pointer: after the server is gone, late events are dropped. `server`
    // is owned by the Impl, so it is alive whenever the lock succeeds.
    std::weak_ptr<Impl> weak = shared_from_this();
    ServerT* srv = &server;
    server.set_tcp_post_init_handler([weak](Hdl hdl) {
        if (auto self = weak.lock()) {
            auto conn = self->template connection<ServerT>(hdl);
            self->guarded(conn, "accept", [&](WsHandler& h) { h.on_accept(conn); });
        }
    });
    if (options.serve_http) {
        server.set_http_handler([weak](Hdl hdl) {
            if (auto self = weak.lock()) {
                auto conn = self->template connection<ServerT>(hdl);
                self->guarded(conn, "http", [&](WsHandler& h) { h.on_http(conn); });
                self->forget(hdl);  // answered: websocketpp sends the response and ends the connection
            }
        });
    }
    server.set_validate_handler([weak](Hdl hdl) {
        bool ok = false;
        if (auto self = weak.lock()) {
            auto conn = self->template connection<ServerT>(hdl);
            self->guarded(conn, "validate", [&](WsHandler& h) { ok = h.on_validate(conn); });
        }
        return ok;
    });
    server.set_open_handler([weak](Hdl hdl) {
        if (auto self = weak.lock()) {
            auto conn = self->template connection<ServerT>(hdl);
            self->guarded(conn, "open", [&](WsHandler& h) { h.on_open(conn); });
        }
    });
    server.set_close_handler([weak](Hdl hdl) {
        if (auto self = weak.lock()) {
            auto conn = self->template connection<ServerT>(hdl);
            self->guarded(conn, "close", [&](WsHandler& h) { h.on_close(conn); });
            self->forget(hdl);
        }
    });
    server.set_fail_handler([weak, srv](Hdl hdl) {
        auto self = weak.lock();
        if (!self) return;
        auto conn = self->template connection<ServerT>(hdl);
        self->guarded(conn, "fail", [&](WsHandler& h) {
            WsFailure failure;
            websocketpp::lib::error_code cec;
            if (auto con = srv->get_con_from_hdl(hdl, cec); !cec && con) {
                const auto why = con->get_ec();
                if (why == websocketpp::error::make_error_code(websocketpp::error::rejected))
                    failure.kind = WsFailure::Kind::rejected;
                else if (why == websocketpp::error::make_error_code(websocketpp::error::open_handshake_timeout))
                    failure.kind = WsFailure::Kind::open_handshake_timeout;
                failure.message = why.message();
                failure.http_status = static_cast<int>(con->get_response_code());
            }
            h.on_fail(conn, failure);
        });
        self->forget(hdl);
    });
    server.set_message_handler([weak](Hdl hdl, typename ServerT::message_ptr msg) {
        if (auto self = weak.lock()) {
            auto conn = self->template connection<ServerT>(hdl);
            self->guarded(conn, "message", [&](WsHandler& h) {
                h.on_message(conn, msg->get_opcode() == websocketpp::frame::opcode::text, msg->get_payload());
            });
        }
    });

    server.listen(endpoint, ec);
    if (ec) return Error{"cannot listen on " + options.words.listen_label + " " + where + ": " + ec.message(), options.words.listen_field};
    server.start_accept(ec);
    if (ec) {
        websocketpp::lib::error_code ignored;
        server.stop_listening(ignored);
        return Error{"cannot accept on " + options.words.listen_label + " " + where + ": " + ec.message(), options.words.listen_field};
    }
    listening = true;
    boost::system::error_code aec;
    const auto local = server.get_local_endpoint(aec);
    if (aec) return Error{options.words.label + " " + where + ": " + aec.message(), options.words.listen_field};
    return local.port();
}

void WsServer::Impl::stop_listening() {
    if (!listening) return;
    listening = false;
    websocketpp::lib::error_code ec;
    if (plain) plain->stop_listening(ec);
    if (tls) tls->stop_listening(ec);
    // The cancelled accept completes later and touches the endpoint inside this Impl: keep the
    // Impl alive until it has run (the timer fires after the already-queued cancellation).
    auto timer = std::make_shared<boost::asio::steady_timer>(io, std::chrono::milliseconds(50));
    timer->async_wait([self = shared_from_this(), timer](const boost::system::error_code&) {});
}

WsServer::WsServer(boost::asio::io_context& io, WsServerOptions options, std::weak_ptr<WsHandler> handler)
    : m_impl(std::make_shared<Impl>(io, std::move(options), std::move(handler))) {}

WsServer::~WsServer() {
    m_impl->handler.reset();
    try {
        m_impl->stop_listening();
    } catch (...) {
        // Nothing to report to: the owner is going away and the socket layer stops on its own.
    }
}

Result<std::uint16_t> WsServer::listen() { return m_impl->listen(); }
void WsServer::stop_listening() { m_impl->stop_listening(); }
bool WsServer::secure() const noexcept { return !m_impl->options.tls_cert.empty() || !m_impl->options.tls_key.empty(); }

}  // namespace saltpeter
