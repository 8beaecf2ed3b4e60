#pragma once
// WsServer: one WebSocket + HTTP listener (ws:// or wss://) on a caller's io_context, shared by
// the machine hub and the API. It hides websocketpp (~20 s per translation unit); only
// ws_server.cpp and ws_client.cpp include it.

#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <system_error>

#include <boost/asio/io_context.hpp>

#include "saltpeter/result.hpp"

namespace saltpeter {

/// WebSocket close codes (RFC 6455 7.4.1) as plain integers.
namespace ws_close {
constexpr int k_normal = 1000;
constexpr int k_going_away = 1001;
constexpr int k_policy_violation = 1008;
constexpr int k_message_too_big = 1009;
constexpr int k_internal_endpoint_error = 1011;
constexpr int k_try_again_later = 1013;
}  // namespace ws_close

/// A peer that never completes its HTTP request or upgrade is dropped after this long (slowloris).
constexpr long k_ws_open_handshake_timeout_ms = 5000;
constexpr long k_ws_close_handshake_timeout_ms = 1000;

/// The words WsServer's errors use, so that each caller keeps its own messages:
/// "<label> <addr:port>: TLS needs ...", "cannot listen on <listen_label> <addr:port>: ..."
/// (Error::field `listen_field`), "<bad_address_prefix> '<addr>': ..." (field `address_field`).
struct WsServerWords {
    std::string label = "WebSocket port";
    std::string listen_label = "WebSocket port";
    std::string listen_field = "port";
    std::string bad_address_prefix = "invalid bind address";
    std::string address_field = "bind_address";
};

/// What WsServer binds and how it bounds its peers.
struct WsServerOptions {
    std::string bind_address;
    std::uint16_t port = 0;                ///< 0 = an ephemeral port (tests)
    std::string tls_cert;                  ///< PEM files; both empty = plain, both set = TLS only
    std::string tls_key;                   ///< one alone is a listen() error
    std::size_t max_message_bytes = 16u * 1024 * 1024;  ///< a larger frame closes the peer (1009)
    std::size_t max_http_body_bytes = 32000000;  ///< a larger request body fails (websocketpp's default)
    bool serve_http = false;               ///< plain HTTP requests go to on_http; otherwise 426 and on_fail
    long open_handshake_timeout_ms = k_ws_open_handshake_timeout_ms;
    long close_handshake_timeout_ms = k_ws_close_handshake_timeout_ms;
    WsServerWords words = {};
};

/// One accepted peer (ws or wss, or a plain HTTP request on the same port). Held as a shared_ptr
/// whose address is stable for the connection's life; calls after the peer is gone do nothing.
class WsConnection {
public:
    virtual ~WsConnection() = default;
    /// Queues one text frame; an error when the socket is not open.
    virtual std::error_code send_text(const std::string& text) = 0;
    /// Bytes queued but not yet written (websocketpp queues without limit: callers bound it).
    virtual std::size_t buffered_amount() const = 0;
    /// Starts the closing handshake if the connection is open; otherwise nothing.
    virtual void close(int code, const std::string& reason) = 0;
    /// The close code this side sent (ws_close::k_message_too_big after an oversized frame), or 0.
    virtual int local_close_code() const = 0;
    /// "address:port" of the peer, or websocketpp's "Unknown" once the socket is gone.
    virtual std::string remote_endpoint() const = 0;

    // The HTTP request (plain requests and upgrades) and, in on_http/on_validate, the response.
    virtual std::string method() const = 0;
    virtual std::string resource() const = 0;  ///< path and query
    virtual std::string request_header(const std::string& name) const = 0;  ///< "" when absent
    virtual std::string request_body() const = 0;
    virtual void set_status(int status) = 0;
    virtual void replace_header(const std::string& name, const std::string& value) = 0;
    virtual void set_body(const std::string& body) = 0;
};

using WsConnectionPtr = std::shared_ptr<WsConnection>;

/// Why a connection failed before it opened (websocketpp's fail handler).
struct WsFailure {
    enum class Kind {
        rejected,                ///< on_validate said no (the refusal was already answered)
        open_handshake_timeout,  ///< the request was not complete in time (slow client)
        other,                   ///< malformed or oversized request, TLS error, ...
    };
    Kind kind = Kind::other;
    std::string message;  ///< the library's error text
    int http_status = 0;  ///< the response status that was (or would have been) sent
};

/// The server's callbacks, all on the io_context thread. An exception thrown by one is caught and
/// handed to on_handler_error; nothing escapes into the socket layer.
class WsHandler {
public:
    virtual ~WsHandler() = default;
    /// A TCP (and TLS) connection was accepted, before its request is read.
    virtual void on_accept(const WsConnectionPtr&) {}
    /// A plain HTTP request (only with WsServerOptions::serve_http): set status, headers and
    /// body; the response is sent on return.
    virtual void on_http(const WsConnectionPtr&) {}
    /// An upgrade request: true accepts it; false sends the status and body set on `conn`.
    virtual bool on_validate(const WsConnectionPtr&) { return true; }
    virtual void on_open(const WsConnectionPtr&) {}
    virtual void on_message(const WsConnectionPtr& conn, bool is_text, const std::string& payload) = 0;
    /// An open connection closed (either side, or the network).
    virtual void on_close(const WsConnectionPtr&) {}
    /// A connection failed before it opened (not called for answered plain HTTP requests).
    virtual void on_fail(const WsConnectionPtr&, const WsFailure&) {}
    /// `callback` ("accept", "http", "validate", "open", "message", "close", "fail") threw;
    /// `error` is null for an exception not derived from std::exception.
    virtual void on_handler_error(const WsConnectionPtr& conn, const char* callback, const std::exception* error) = 0;
};

/// The listener. `handler` is locked for each callback (events after it is gone are dropped) and
/// never called once the server is destroyed. Io thread only.
class WsServer {
public:
    WsServer(boost::asio::io_context& io, WsServerOptions options, std::weak_ptr<WsHandler> handler);
    ~WsServer();
    WsServer(const WsServer&) = delete;
    WsServer& operator=(const WsServer&) = delete;

    /// Loads the TLS files (once, so that a bad file is a start-up error), binds with
    /// SO_REUSEADDR and starts accepting. Returns the bound port. Errors use the options' words;
    /// a TLS file at fault has Error::field "tls_cert"/"tls_key". Call at most once.
    Result<std::uint16_t> listen();
    /// Stops accepting (open connections stay). Keeps the socket layer alive for 50 ms so that the
    /// cancelled accept can complete safely even if the server is destroyed at once. Idempotent.
    void stop_listening();
    /// True when TLS files were configured (wss:// and https://).
    bool secure() const noexcept;

private:
    struct Impl;
    std::shared_ptr<Impl> m_impl;
};

}  // namespace saltpeter
