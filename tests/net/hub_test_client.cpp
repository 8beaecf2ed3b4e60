#include "hub_test_client.hpp"

#include <websocketpp/client.hpp>
#include <websocketpp/config/asio_no_tls_client.hpp>

#include <boost/asio/steady_timer.hpp>

namespace saltpeter::test {
namespace {
using Client = websocketpp::client<websocketpp::config::asio_client>;
}

struct HubTestClient::Impl {
    Client client;
    Client::connection_ptr con;
    bool open = false;
    bool closed = false;
    int close_code = 0;
    std::vector<std::string> received;
};

HubTestClient::HubTestClient(boost::asio::io_context& io, std::uint16_t port) : m_impl(std::make_shared<Impl>()) {
    auto& c = m_impl->client;
    c.clear_access_channels(websocketpp::log::alevel::all);
    c.clear_error_channels(websocketpp::log::elevel::all);
    c.init_asio(&io);
    c.set_max_message_size(64u * 1024 * 1024);
    Impl* impl = m_impl.get();
    websocketpp::lib::error_code ec;
    auto con = c.get_connection("ws://127.0.0.1:" + std::to_string(port) + "/", ec);
    if (ec) {
        impl->closed = true;
        return;
    }
    con->set_open_handler([impl](websocketpp::connection_hdl) { impl->open = true; });
    con->set_message_handler([impl](websocketpp::connection_hdl, Client::message_ptr msg) {
        if (msg->get_opcode() == websocketpp::frame::opcode::text) impl->received.push_back(msg->get_payload());
    });
    auto done = [impl](websocketpp::connection_hdl) {
        impl->open = false;
        impl->closed = true;
        if (impl->con) impl->close_code = impl->con->get_remote_close_code();
    };
    con->set_fail_handler(done);
    con->set_close_handler(done);
    m_impl->con = con;
    c.connect(con);
}

HubTestClient::~HubTestClient() {
    auto& con = m_impl->con;
    if (con) {
        websocketpp::lib::error_code ec;
        if (con->get_state() == websocketpp::session::state::open) con->close(websocketpp::close::status::going_away, "", ec);
        else if (con->get_state() == websocketpp::session::state::connecting) con->terminate(ec);
        // The handlers hold Impl*; detach them before the Impl can go.
        con->set_open_handler(nullptr);
        con->set_message_handler(nullptr);
        con->set_fail_handler(nullptr);
        con->set_close_handler(nullptr);
    }
    // Handlers still queued may touch the endpoint: keep it until they have run.
    auto timer = std::make_shared<boost::asio::steady_timer>(m_impl->client.get_io_service(), std::chrono::milliseconds(50));
    timer->async_wait([keep = m_impl, timer](const boost::system::error_code&) {});
}

bool HubTestClient::is_open() const { return m_impl->open; }
bool HubTestClient::is_closed() const { return m_impl->closed; }
int HubTestClient::remote_close_code() const { return m_impl->close_code; }

bool HubTestClient::send(const std::string& text) {
    if (!m_impl->open) return false;
    return !m_impl->con->send(text, websocketpp::frame::opcode::text);
}

bool HubTestClient::send_binary(const std::string& bytes) {
    if (!m_impl->open) return false;
    return !m_impl->con->send(bytes, websocketpp::frame::opcode::binary);
}

const std::vector<std::string>& HubTestClient::received() const { return m_impl->received; }

void HubTestClient::close() {
    if (!m_impl->open) return;
    websocketpp::lib::error_code ec;
    m_impl->con->close(websocketpp::close::status::normal, "", ec);
}

}  // namespace saltpeter::test
