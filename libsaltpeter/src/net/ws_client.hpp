#pragma once
// WsClient: a small WebSocket client (ws:// and wss://) on a caller's io_context. It hides
// websocketpp, which costs ~20 s per translation unit; only ws_client.cpp and ws_server.cpp include it.

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>

namespace saltpeter {

class WsClient {
public:
    /// Callbacks, all run on the io_context thread. Events of a connection that was replaced or
    /// closed by close() are not delivered.
    struct Handlers {
        std::function<void()> on_open;                       ///< handshake done, send() works
        std::function<void(std::string text)> on_message;    ///< one text frame
        std::function<void(const std::string& reason)> on_closed;  ///< failed to open, or closed
    };

    /// Errors: none at construction. Thread: the io_context's.
    WsClient(boost::asio::io_context& io, Handlers handlers);
    ~WsClient();
    WsClient(const WsClient&) = delete;
    WsClient& operator=(const WsClient&) = delete;

    /// Starts connecting to `url` (ws:// or wss://), dropping any current connection first.
    /// Returns false (and an explanation in `error`) when the URL cannot be used at all.
    bool connect(const std::string& url, std::string& error);
    /// Queues one text frame; `text` must be valid UTF-8 (it is not re-validated). Returns false
    /// when no connection is open.
    bool send(std::string text);
    /// Closes the current connection (if any) without delivering on_closed.
    void close();
    /// True between on_open and on_closed/close().
    bool is_open() const noexcept;
    /// Bytes queued in the socket layer but not yet written.
    std::size_t buffered_amount() const;

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

}  // namespace saltpeter
