// With ws_server.cpp the only translation units of the library that include websocketpp.
#include "net/ws_client.hpp"

#include <boost/asio/ssl.hpp>
#include <websocketpp/client.hpp>
#include <websocketpp/config/asio_client.hpp>
#include <websocketpp/uri.hpp>

#include <openssl/ssl.h>
#include <sys/random.h>

#include <cstdint>
#include <variant>

namespace saltpeter {
namespace {

// The wrapper sends frames below 1 MiB and spd only small ones; 16 MiB still bounds a bad peer.
constexpr std::size_t k_max_message_size = 16 * 1024 * 1024;
// PROTOCOL.md 1.5: connecting is limited to 2 s.
constexpr long k_open_timeout_ms = 2000;
constexpr long k_close_timeout_ms = 1000;

template <typename Config>
struct Endpoint {
    using Client = websocketpp::client<Config>;
    Client client;
    typename Client::connection_ptr connection;
};

using PlainEndpoint = Endpoint<websocketpp::config::asio_client>;
using TlsEndpoint = Endpoint<websocketpp::config::asio_tls_client>;

template <typename E>
void quiet(E& endpoint, boost::asio::io_context& io) {
    endpoint.client.clear_access_channels(websocketpp::log::alevel::all);
    endpoint.client.clear_error_channels(websocketpp::log::elevel::all);
    endpoint.client.init_asio(&io);
    endpoint.client.set_open_handshake_timeout(k_open_timeout_ms);
    endpoint.client.set_close_handshake_timeout(k_close_timeout_ms);
    endpoint.client.set_max_message_size(k_max_message_size);
}

}  // namespace

struct WsClient::Impl {
    boost::asio::io_context& io;
    Handlers handlers;
    std::unique_ptr<PlainEndpoint> plain;
    std::unique_ptr<TlsEndpoint> tls;
    bool use_tls = false;
    bool open = false;
    // Every connection gets a generation; events from older generations are ignored so that a
    // replaced or closed connection can never disturb the session.
    std::uint64_t generation = 0;
    std::string host;

    Impl(boost::asio::io_context& context, Handlers h) : io(context), handlers(std::move(h)) {}

    template <typename E>
    bool start(E& endpoint, const std::string& url, std::string& error) {
        websocketpp::lib::error_code ec;
        auto con = endpoint.client.get_connection(url, ec);
        if (ec) {
            error = "cannot connect to '" + url + "': " + ec.message();
            return false;
        }
        const std::uint64_t gen = ++generation;
        con->set_open_handler([this, gen](websocketpp::connection_hdl) {
            if (gen != generation) return;
            open = true;
            if (handlers.on_open) handlers.on_open();
        });
        con->set_message_handler([this, gen](websocketpp::connection_hdl, typename E::Client::message_ptr msg) {
            if (gen != generation) return;
            if (msg->get_opcode() != websocketpp::frame::opcode::text) return;
            if (handlers.on_message) handlers.on_message(std::move(msg->get_raw_payload()));
        });
        auto closed = [this, gen, &endpoint](websocketpp::connection_hdl hdl) {
            if (gen != generation) return;
            open = false;
            std::string reason = "connection closed";
            websocketpp::lib::error_code cec;
            auto c = endpoint.client.get_con_from_hdl(hdl, cec);
            if (!cec && c) {
                if (c->get_ec()) reason = c->get_ec().message();
                else if (c->get_remote_close_code() != websocketpp::close::status::blank)
                    reason = "closed by server (" + std::to_string(c->get_remote_close_code()) + ")";
            }
            ++generation;
            endpoint.connection.reset();
            if (handlers.on_closed) handlers.on_closed(reason);
        };
        con->set_fail_handler(closed);
        con->set_close_handler(closed);
        endpoint.connection = con;
        endpoint.client.connect(con);
        return true;
    }

    template <typename E>
    void drop(E* endpoint) {
        if (!endpoint || !endpoint->connection) return;
        websocketpp::lib::error_code ec;
        auto state = endpoint->connection->get_state();
        if (state == websocketpp::session::state::open)
            endpoint->connection->close(websocketpp::close::status::going_away, "", ec);
        else if (state == websocketpp::session::state::connecting)
            endpoint->connection->terminate(ec);
        endpoint->connection.reset();
    }
};

WsClient::WsClient(boost::asio::io_context& io, Handlers handlers)
    : m_impl(std::make_unique<Impl>(io, std::move(handlers))) {}

WsClient::~WsClient() { close(); }

bool WsClient::connect(const std::string& url, std::string& error) {
    close();
    websocketpp::uri uri(url);
    if (!uri.get_valid()) {
        error = "invalid WebSocket URL '" + url + "'";
        return false;
    }
    m_impl->use_tls = uri.get_secure();
    m_impl->host = uri.get_host();
    if (m_impl->use_tls) {
        if (!m_impl->tls) {
            m_impl->tls = std::make_unique<TlsEndpoint>();
            quiet(*m_impl->tls, m_impl->io);
            Impl* impl = m_impl.get();
            m_impl->tls->client.set_tls_init_handler([impl](websocketpp::connection_hdl) {
                namespace ssl = boost::asio::ssl;
                auto ctx = std::make_shared<ssl::context>(ssl::context::tls_client);
                ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                                 ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
                // The system trust store (SSL_CERT_FILE / SSL_CERT_DIR are honoured by OpenSSL).
                ctx->set_default_verify_paths();
                ctx->set_verify_mode(ssl::verify_peer);
                ctx->set_verify_callback(ssl::host_name_verification(impl->host));
                return ctx;
            });
            m_impl->tls->client.set_socket_init_handler(
                [impl](websocketpp::connection_hdl, boost::asio::ssl::stream<boost::asio::ip::tcp::socket>& s) {
                    // SNI, so that virtual-hosted TLS front ends pick the right certificate.
                    // (SSL_set_tlsext_host_name expanded: the macro uses an old-style cast.)
                    SSL_ctrl(s.native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                             const_cast<char*>(impl->host.c_str()));
                });
        }
        return m_impl->start(*m_impl->tls, url, error);
    }
    if (!m_impl->plain) {
        m_impl->plain = std::make_unique<PlainEndpoint>();
        quiet(*m_impl->plain, m_impl->io);
    }
    return m_impl->start(*m_impl->plain, url, error);
}

namespace {

// Builds the masked frame ourselves and hands websocketpp a prepared message: its own
// prepare_data_frame() copies the payload and re-validates UTF-8, which cost a third of the
// wrapper's CPU time. Our text is valid UTF-8 by construction (protocol::serialize).
template <typename Connection>
bool send_prepared(Connection& con, std::string&& text) {
    namespace frame = websocketpp::frame;
    auto msg = con.get_message(frame::opcode::text, 0);
    if (!msg) return false;
    frame::masking_key_type key;
    // RFC 6455 5.3: masking keys must be unpredictable.
    if (getrandom(&key.i, sizeof key.i, 0) != static_cast<ssize_t>(sizeof key.i)) return false;
    std::string& payload = msg->get_raw_payload();
    payload = std::move(text);
    frame::word_mask_exact(reinterpret_cast<std::uint8_t*>(payload.data()), payload.size(), key);
    const frame::basic_header header(frame::opcode::text, payload.size(), true, true, false);
    const frame::extended_header extended(payload.size(), key.i);
    msg->set_header(frame::prepare_header(header, extended));
    msg->set_prepared(true);
    return !con.send(msg);
}

}  // namespace

bool WsClient::send(std::string text) {
    if (!m_impl->open) return false;
    if (m_impl->use_tls) {
        if (!m_impl->tls || !m_impl->tls->connection) return false;
        return send_prepared(*m_impl->tls->connection, std::move(text));
    }
    if (!m_impl->plain || !m_impl->plain->connection) return false;
    return send_prepared(*m_impl->plain->connection, std::move(text));
}

void WsClient::close() {
    ++m_impl->generation;
    m_impl->open = false;
    m_impl->drop(m_impl->plain.get());
    m_impl->drop(m_impl->tls.get());
}

bool WsClient::is_open() const noexcept { return m_impl->open; }

std::size_t WsClient::buffered_amount() const {
    if (m_impl->use_tls) return m_impl->tls && m_impl->tls->connection ? m_impl->tls->connection->get_buffered_amount() : 0;
    return m_impl->plain && m_impl->plain->connection ? m_impl->plain->connection->get_buffered_amount() : 0;
}

}  // namespace saltpeter
