#pragma once
// HubTestClient: a minimal WebSocket client for the MachineHub tests. It runs on the test's
// io_context (the test thread drives it with run_for), sends raw frames and records what comes
// back. websocketpp stays inside hub_test_client.cpp so the test TUs compile fast.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

namespace saltpeter::test {

class HubTestClient {
public:
    /// Starts connecting to ws://127.0.0.1:<port>/ (wss:// with `tls`, certificate not verified)
    /// at once; progress needs the io_context to run.
    HubTestClient(boost::asio::io_context& io, std::uint16_t port, bool tls = false);
    ~HubTestClient();
    HubTestClient(const HubTestClient&) = delete;
    HubTestClient& operator=(const HubTestClient&) = delete;

    bool is_open() const;
    /// True once the connection failed or closed (by either side).
    bool is_closed() const;
    /// The close code the server sent (0 when none).
    int remote_close_code() const;
    /// Queues one text frame; false when not open.
    bool send(const std::string& text);
    /// Queues one binary frame; false when not open.
    bool send_binary(const std::string& bytes);
    /// Every text frame received, in order.
    const std::vector<std::string>& received() const;
    /// Closes the connection (normal closure) without waiting.
    void close();

    struct Impl;  ///< ws:// or wss:// behind one interface (defined in the .cpp)

private:
    std::shared_ptr<Impl> m_impl;
};

}  // namespace saltpeter::test
