// http_client.hpp. One exchange class for both the asynchronous and the blocking client, so that
// TLS verification, timeouts and the request headers are decided once.
#include "net/http_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/version.hpp>

#include <memory>

#include "saltpeter/version.hpp"

namespace saltpeter::detail {

namespace {
namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
constexpr std::size_t k_max_response_bytes = 256u * 1024 * 1024;
}  // namespace

class TlsClientContext {
public:
    TlsClientContext() : context(ssl::context::tls_client) {}
    ssl::context context;
};

Result<Url> parse_url(const std::string& text) {
    Url u;
    const auto colon = text.find("://");
    if (colon == std::string::npos) return Error{"invalid URL '" + text + "' (expected http://host:port)", "url"};
    u.scheme = text.substr(0, colon);
    if (u.scheme == "ws") u.scheme = "http";
    if (u.scheme == "wss") u.scheme = "https";
    if (u.scheme != "http" && u.scheme != "https")
        return Error{"invalid URL '" + text + "': scheme must be http or https", "url"};
    std::string rest = text.substr(colon + 3);
    const auto slash = rest.find('/');
    std::string hostport = rest.substr(0, slash);
    u.base = slash == std::string::npos ? "" : rest.substr(slash);
    while (!u.base.empty() && u.base.back() == '/') u.base.pop_back();
    if (!hostport.empty() && hostport.front() == '[') {
        const auto close = hostport.find(']');
        if (close == std::string::npos) return Error{"invalid URL '" + text + "': unclosed [", "url"};
        u.host = hostport.substr(1, close - 1);
        if (close + 1 < hostport.size() && hostport[close + 1] == ':') u.port = hostport.substr(close + 2);
    } else {
        const auto c = hostport.rfind(':');
        u.host = hostport.substr(0, c);
        if (c != std::string::npos) u.port = hostport.substr(c + 1);
    }
    if (u.host.empty()) return Error{"invalid URL '" + text + "': no host", "url"};
    if (u.port.empty()) u.port = u.scheme == "https" ? "443" : "80";
    return u;
}

Result<std::shared_ptr<TlsClientContext>> make_tls_client_context(const std::string& ca_file) {
    auto tls = std::make_shared<TlsClientContext>();
    boost::system::error_code ec;
    if (ca_file.empty()) tls->context.set_default_verify_paths(ec);
    else tls->context.load_verify_file(ca_file, ec);
    if (ec) return Error{ec.message(), "ca_file"};
    tls->context.set_verify_mode(ssl::verify_peer, ec);
    if (ec) return Error{ec.message(), "verify_mode"};
    return tls;
}

const char* describe(HttpStep step) {
    switch (step) {
    case HttpStep::resolve: return "resolve";
    case HttpStep::connect: return "connect";
    case HttpStep::tls_setup:
    case HttpStep::tls_handshake: return "TLS handshake";
    case HttpStep::write: return "send the request";
    case HttpStep::read: return "read the response";
    }
    return "exchange";
}

namespace {

class BeastExchange final : public HttpExchange, public std::enable_shared_from_this<BeastExchange> {
public:
    BeastExchange(net::io_context& io, const Url& url, HttpExchangeRequest request, std::shared_ptr<TlsClientContext> tls,
                  Handler done)
        : m_resolver(io), m_tcp(io), m_timer(io), m_url(url), m_tls_context(std::move(tls)),
          m_connect_timeout(request.connect_timeout), m_request_timeout(request.request_timeout), m_done(std::move(done)) {
        if (m_tls_context) m_tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(io, m_tls_context->context);
        m_request.method(request.method == "POST" ? http::verb::post : http::verb::get);
        m_request.target(request.target);
        m_request.version(11);
        const bool v6 = url.host.find(':') != std::string::npos;
        m_request.set(http::field::host, (v6 ? "[" + url.host + "]" : url.host) + ":" + url.port);
        for (const auto& [k, v] : request.headers) m_request.set(k, v);
        m_request.set(http::field::connection, "close");
        if (m_request.method() == http::verb::post) {
            if (m_request.find(http::field::content_type) == m_request.end())
                m_request.set(http::field::content_type, "application/json");
            m_request.body() = std::move(request.body);
        }
        m_request.prepare_payload();
        m_parser.body_limit(request.body_limit);
    }

    void begin() {
        auto self = shared_from_this();
        arm_timer(m_connect_timeout);
        m_resolver.async_resolve(m_url.host, m_url.port,
                                 [self](const beast::error_code& ec, tcp::resolver::results_type results) {
                                     self->on_resolve(ec, std::move(results));
                                 });
    }

    void cancel() override {
        HttpFailure failure;
        failure.step = m_step;
        failure.cancelled = true;
        abort();
        finish(HttpOutcome{std::nullopt, failure});
    }

private:
    beast::tcp_stream& lowest() { return m_tls ? beast::get_lowest_layer(*m_tls) : m_tcp; }

    void abort() {
        m_resolver.cancel();
        beast::error_code ignored;
        lowest().socket().close(ignored);
    }

    // The resolver has no deadline of its own; a timer closes everything when it passes.
    void arm_timer(std::chrono::milliseconds limit) {
        m_timer.expires_after(limit);
        std::weak_ptr<BeastExchange> weak = shared_from_this();
        m_timer.async_wait([weak, limit](const beast::error_code& ec) {
            if (ec) return;
            if (auto self = weak.lock()) {
                HttpFailure failure;
                failure.step = self->m_step;
                failure.timed_out = true;
                failure.limit = limit;
                self->abort();
                self->finish(HttpOutcome{std::nullopt, failure});
            }
        });
    }

    void on_resolve(const beast::error_code& ec, tcp::resolver::results_type results) {
        if (ec) return fail(ec);
        m_step = HttpStep::connect;
        auto self = shared_from_this();
        lowest().async_connect(results, [self](const beast::error_code& e, const tcp::endpoint&) { self->on_connect(e); });
    }

    void on_connect(const beast::error_code& ec) {
        if (ec) return fail(ec);
        auto self = shared_from_this();
        arm_timer(m_request_timeout);
        if (!m_tls) return send();
        m_step = HttpStep::tls_setup;
        // SSL_set_tlsext_host_name is a macro with a C cast; call what it expands to (SNI).
        if (SSL_ctrl(m_tls->native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                     const_cast<char*>(m_url.host.c_str())) != 1) {
            HttpFailure failure;
            failure.step = m_step;
            failure.message = "cannot set TLS server name";
            abort();
            return finish(HttpOutcome{std::nullopt, failure});
        }
        m_tls->set_verify_callback(ssl::host_name_verification(m_url.host));
        m_step = HttpStep::tls_handshake;
        m_tls->async_handshake(ssl::stream_base::client, [self](const beast::error_code& e) {
            if (e) return self->fail(e);
            self->send();
        });
    }

    void send() {
        m_step = HttpStep::write;
        auto self = shared_from_this();
        auto on_write = [self](const beast::error_code& ec, std::size_t) {
            if (ec) return self->fail(ec);
            self->receive();
        };
        if (m_tls) http::async_write(*m_tls, m_request, on_write);
        else http::async_write(m_tcp, m_request, on_write);
    }

    void receive() {
        m_step = HttpStep::read;
        auto self = shared_from_this();
        auto on_read = [self](const beast::error_code& ec, std::size_t) {
            if (ec) return self->fail(ec);
            HttpResult result;
            auto& res = self->m_parser.get();
            result.status = static_cast<int>(res.result_int());
            result.body = std::move(res.body());
            result.content_type = std::string(res[http::field::content_type]);
            beast::error_code ignored;
            self->lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
            self->lowest().socket().close(ignored);
            self->finish(HttpOutcome{std::move(result), {}});
        };
        if (m_tls) http::async_read(*m_tls, m_buffer, m_parser, on_read);
        else http::async_read(m_tcp, m_buffer, m_parser, on_read);
    }

    void fail(const beast::error_code& ec) {
        HttpFailure failure;
        failure.step = m_step;
        failure.message = ec.message();
        finish(HttpOutcome{std::nullopt, failure});
    }

    void finish(HttpOutcome outcome) {
        if (!m_done) return;
        m_timer.cancel();
        auto done = std::move(m_done);
        m_done = nullptr;
        done(std::move(outcome));
    }

    tcp::resolver m_resolver;
    beast::tcp_stream m_tcp;
    net::steady_timer m_timer;
    Url m_url;
    std::shared_ptr<TlsClientContext> m_tls_context;
    std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> m_tls;
    std::chrono::milliseconds m_connect_timeout;
    std::chrono::milliseconds m_request_timeout;
    Handler m_done;
    HttpStep m_step = HttpStep::resolve;
    http::request<http::string_body> m_request;
    http::response_parser<http::string_body> m_parser;
    beast::flat_buffer m_buffer;
};

}  // namespace

std::shared_ptr<HttpExchange> HttpExchange::start(net::io_context& io, const Url& url, HttpExchangeRequest request,
                                                  std::shared_ptr<TlsClientContext> tls, Handler done) {
    auto exchange = std::make_shared<BeastExchange>(io, url, std::move(request), std::move(tls), std::move(done));
    exchange->begin();
    return exchange;
}

Result<HttpResult> http_call(const Url& url, const HttpRequest& request) {
    // Errors name the URL without its query: a webhook's query may carry a secret.
    const std::string where = url.scheme + "://" + url.host + ":" + url.port + url.base.substr(0, url.base.find('?'));
    std::shared_ptr<TlsClientContext> tls;
    if (url.scheme == "https") {
        auto context = make_tls_client_context(request.ca_file);
        if (!context)
            return Error{"cannot load CA certificates for " + request.peer + " at " + where + ": " + context.error().message,
                         "unreachable"};
        tls = *context;
    }
    HttpExchangeRequest exchange;
    exchange.method = request.method;
    exchange.target = url.base + request.target;
    exchange.body = request.body;
    exchange.headers = {{"User-Agent", "saltpeter/" + std::string(version())}, {"Accept", "application/json"}};
    for (const auto& header : request.headers) exchange.headers.push_back(header);
    exchange.connect_timeout = request.timeout;
    exchange.request_timeout = request.timeout;
    exchange.body_limit = k_max_response_bytes;

    net::io_context io;
    HttpOutcome outcome;
    // One deadline for the whole exchange; the exchange's own limits (the same length, armed
    // later) are only a backstop.
    bool deadline_passed = false;
    net::steady_timer deadline(io, request.timeout);
    auto call = HttpExchange::start(io, url, std::move(exchange), tls, [&](HttpOutcome o) {
        outcome = std::move(o);
        deadline.cancel();
    });
    deadline.async_wait([&](const beast::error_code& ec) {
        if (ec) return;
        deadline_passed = true;
        call->cancel();
    });
    io.run();
    if (!outcome.response) {
        const HttpFailure& f = outcome.failure;
        const std::string reason = f.timed_out || deadline_passed ? "timed out" : f.message;
        return Error{"cannot reach " + request.peer + " at " + where + " (" + describe(f.step) + ": " + reason + ")",
                     "unreachable"};
    }
    return std::move(*outcome.response);
}

}  // namespace saltpeter::detail
