#include "hub_test_client.hpp"

#include <websocketpp/client.hpp>
#include <websocketpp/config/asio_client.hpp>
#include <websocketpp/config/asio_no_tls_client.hpp>

#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

namespace saltpeter::test {

struct HubTestClient::Impl {
    virtual ~Impl() = default;
    virtual bool send(const std::string& payload, websocketpp::frame::opcode::value op) = 0;
    virtual void close(websocketpp::close::status::value code) = 0;
    /// Closes or aborts the connection and unhooks the handlers (they hold this Impl's address).
    virtual void detach() = 0;
    virtual boost::asio::io_context& io() = 0;

    bool open = false;
    bool closed = false;
    int close_code = 0;
    std::vector<std::string> received;
};

namespace {

template <typename Config>
struct ImplOf final : HubTestClient::Impl {
    using Client = websocketpp::client<Config>;
    Client client;
    typename Client::connection_ptr con;

    bool send(const std::string& payload, websocketpp::frame::opcode::value op) override {
        return con && !con->send(payload, op);
    }
    void close(websocketpp::close::status::value code) override {
        websocketpp::lib::error_code ec;
        if (con && con->get_state() == websocketpp::session::state::open) con->close(code, "", ec);
    }
    void detach() override {
        if (!con) return;
        websocketpp::lib::error_code ec;
        if (con->get_state() == websocketpp::session::state::open) con->close(websocketpp::close::status::going_away, "", ec);
        else if (con->get_state() == websocketpp::session::state::connecting) con->terminate(ec);
        con->set_open_handler(nullptr);
        con->set_message_handler(nullptr);
        con->set_fail_handler(nullptr);
        con->set_close_handler(nullptr);
    }
    boost::asio::io_context& io() override { return client.get_io_service(); }

    void start(boost::asio::io_context& context, const std::string& url) {
        client.clear_access_channels(websocketpp::log::alevel::all);
        client.clear_error_channels(websocketpp::log::elevel::all);
        client.init_asio(&context);
        client.set_max_message_size(64u * 1024 * 1024);
        websocketpp::lib::error_code ec;
        auto c = client.get_connection(url, ec);
        if (ec) {
            closed = true;
            return;
        }
        c->set_open_handler([this](websocketpp::connection_hdl) { open = true; });
        c->set_message_handler([this](websocketpp::connection_hdl, typename Client::message_ptr msg) {
            if (msg->get_opcode() == websocketpp::frame::opcode::text) received.push_back(msg->get_payload());
        });
        auto done = [this](websocketpp::connection_hdl) {
            open = false;
            closed = true;
            if (con) close_code = con->get_remote_close_code();
        };
        c->set_fail_handler(done);
        c->set_close_handler(done);
        con = c;
        client.connect(c);
    }
};

}  // namespace

HubTestClient::HubTestClient(boost::asio::io_context& io, std::uint16_t port, bool tls) {
    const std::string where = "127.0.0.1:" + std::to_string(port) + "/";
    if (tls) {
        auto impl = std::make_shared<ImplOf<websocketpp::config::asio_tls_client>>();
        impl->client.set_tls_init_handler([](websocketpp::connection_hdl) {
            auto ctx = std::make_shared<boost::asio::ssl::context>(boost::asio::ssl::context::tls_client);
            ctx->set_verify_mode(boost::asio::ssl::verify_none);  // a self-signed test certificate
            return ctx;
        });
        impl->start(io, "wss://" + where);
        m_impl = impl;
    } else {
        auto impl = std::make_shared<ImplOf<websocketpp::config::asio_client>>();
        impl->start(io, "ws://" + where);
        m_impl = impl;
    }
}

HubTestClient::~HubTestClient() {
    m_impl->detach();
    // Handlers still queued may touch the endpoint: keep it until they have run.
    auto timer = std::make_shared<boost::asio::steady_timer>(m_impl->io(), std::chrono::milliseconds(50));
    timer->async_wait([keep = m_impl, timer](const boost::system::error_code&) {});
}

bool HubTestClient::is_open() const { return m_impl->open; }
bool HubTestClient::is_closed() const { return m_impl->closed; }
int HubTestClient::remote_close_code() const { return m_impl->close_code; }

bool HubTestClient::send(const std::string& text) {
    return m_impl->open && m_impl->send(text, websocketpp::frame::opcode::text);
}

bool HubTestClient::send_binary(const std::string& bytes) {
    return m_impl->open && m_impl->send(bytes, websocketpp::frame::opcode::binary);
}

const std::vector<std::string>& HubTestClient::received() const { return m_impl->received; }

void HubTestClient::close() { m_impl->close(websocketpp::close::status::normal); }

}  // namespace saltpeter::test
