#pragma once
// The library's one HTTP/1.1 client (http:// and https://, one request per connection). The
// asynchronous HttpExchange serves the salt-api transport on spd's io_context; the blocking
// http_call (ApiClient, spctl, the search sink, webhooks) runs it on a private io_context.
// Failures are structured (step, text, timed out) so that each caller keeps its own messages.
// Private to the library; Beast stays in http_client.cpp.

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "saltpeter/result.hpp"

namespace saltpeter::detail {

struct Url {
    std::string scheme;  ///< http or https (ws/wss map to these)
    std::string host;    ///< without [] for IPv6 literals
    std::string port;
    std::string base;    ///< path prefix without a trailing slash ("" for none)
};

/// Parses http(s)://host[:port][/base] (also ws/wss, [v6]:port); Error (field "url") naming the
/// URL otherwise. A missing port becomes 80 or 443.
Result<Url> parse_url(const std::string& text);

/// A TLS client context: peer verification against the system CAs or a CA bundle. Shared by the
/// exchanges that use it; opaque outside http_client.cpp.
class TlsClientContext;

/// Loads the system default CA paths (`ca_file` empty) or `ca_file`. Error message: the library's
/// text only (callers add what it is about); field "ca_file" for a CA that cannot be loaded.
Result<std::shared_ptr<TlsClientContext>> make_tls_client_context(const std::string& ca_file);

struct HttpResult {
    int status = 0;
    std::string body;
    std::string content_type;
};

/// The step an exchange was in when it failed.
enum class HttpStep { resolve, connect, tls_setup, tls_handshake, write, read };

struct HttpFailure {
    HttpStep step = HttpStep::resolve;
    std::string message;                 ///< the error's text ("" when timed out or cancelled)
    bool timed_out = false;
    bool cancelled = false;              ///< cancel() was called
    std::chrono::milliseconds limit{0};  ///< timed out: the limit that passed
};

/// A response or why there is none.
struct HttpOutcome {
    std::optional<HttpResult> response;
    HttpFailure failure;  ///< meaningful when !response
};

struct HttpExchangeRequest {
    std::string method = "GET";  ///< GET or POST
    std::string target;          ///< the full path and query (url.base included)
    std::string body;            ///< POST: Content-Type application/json unless headers name one
    /// Sent after Host (with [] for IPv6 literals); Connection: close is always added.
    std::vector<std::pair<std::string, std::string>> headers;
    std::chrono::milliseconds connect_timeout{10000};  ///< resolve + connect
    std::chrono::milliseconds request_timeout{10000};  ///< TLS, write and read, from the connection on
    std::size_t body_limit = 64u * 1024 * 1024;        ///< a larger response body fails the read
};

/// One HTTP exchange on a fresh connection: resolve, connect, optional TLS (SNI, host-name and
/// peer verification), write, read. Io thread only.
class HttpExchange {
public:
    using Handler = std::function<void(HttpOutcome)>;
    virtual ~HttpExchange() = default;
    /// Starts it on `io`. `tls` is required for https (null for http). `done` runs exactly once,
    /// on the io thread, never inside start().
    static std::shared_ptr<HttpExchange> start(boost::asio::io_context& io, const Url& url, HttpExchangeRequest request,
                                               std::shared_ptr<TlsClientContext> tls, Handler done);
    /// Ends the exchange; `done` runs at once with failure.cancelled unless it already ran.
    virtual void cancel() = 0;
};

/// The name of `step` as the blocking client's messages say it ("send the request", ...).
const char* describe(HttpStep step);

struct HttpRequest {
    std::string method = "GET";  ///< GET or POST
    std::string target;          ///< path and query, appended to url.base
    std::string body;            ///< POST: JSON unless headers name another Content-Type
    std::vector<std::pair<std::string, std::string>> headers;
    std::string peer = "spd";    ///< what errors say could not be reached
    std::chrono::milliseconds timeout{10000};
    std::string ca_file;         ///< https: extra CA bundle (empty = system default paths)
};

/// Sends one request and reads the whole response (at most 256 MiB), all within request.timeout;
/// blocks the calling thread. Error (field "unreachable") when the host cannot be reached, the
/// TLS handshake fails or the deadline passes; the message names the URL (without its query).
Result<HttpResult> http_call(const Url& url, const HttpRequest& request);

}  // namespace saltpeter::detail
