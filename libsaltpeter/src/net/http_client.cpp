// http_client.hpp: Beast's asynchronous operations run to completion on a private io_context,
// so that one deadline (tcp_stream::expires_after) covers resolve, connect, TLS and the exchange.
#include "net/http_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
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

Result<HttpResult> http_call(const Url& url, const HttpRequest& request) {
    // Errors name the URL without its query: a webhook's query may carry a secret.
    const std::string where = url.scheme + "://" + url.host + ":" + url.port + url.base.substr(0, url.base.find('?'));
    net::io_context io;
    ssl::context tls(ssl::context::tls_client);
    const bool secure = url.scheme == "https";
    if (secure) {
        boost::system::error_code ec;
        if (request.ca_file.empty()) tls.set_default_verify_paths(ec);
        else tls.load_verify_file(request.ca_file, ec);
        if (ec) return Error{"cannot load CA certificates for " + request.peer + " at " + where + ": " + ec.message(), "unreachable"};
        tls.set_verify_mode(ssl::verify_peer);
    }
    beast::tcp_stream plain(io);
    beast::ssl_stream<beast::tcp_stream> secured(io, tls);
    beast::tcp_stream& lowest = secure ? beast::get_lowest_layer(secured) : plain;
    lowest.expires_after(request.timeout);
    if (secure) {
        // SSL_set_tlsext_host_name is a macro with a C cast; call what it expands to (SNI).
        SSL_ctrl(secured.native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                 const_cast<char*>(url.host.c_str()));
        secured.set_verify_callback(ssl::host_name_verification(url.host));
    }

    http::request<http::string_body> req{request.method == "POST" ? http::verb::post : http::verb::get,
                                         url.base + request.target, 11};
    req.set(http::field::host, url.host + ":" + url.port);
    req.set(http::field::user_agent, "saltpeter/" + std::string(version()));
    req.set(http::field::accept, "application/json");
    req.set(http::field::connection, "close");
    for (const auto& [k, v] : request.headers) req.set(k, v);
    if (req.method() == http::verb::post) {
        if (req.find(http::field::content_type) == req.end()) req.set(http::field::content_type, "application/json");
        req.body() = request.body;
        req.prepare_payload();
    }

    boost::system::error_code failure;
    std::string step = "resolve";
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(k_max_response_bytes);
    bool done = false;
    tcp::resolver resolver(io);

    auto on_read = [&](beast::error_code ec, std::size_t) {
        if (ec) failure = ec;
        done = !ec;
    };
    auto on_write = [&](beast::error_code ec, std::size_t) {
        if (ec) { failure = ec; return; }
        step = "read the response";
        if (secure) http::async_read(secured, buffer, parser, on_read);
        else http::async_read(plain, buffer, parser, on_read);
    };
    auto send = [&] {
        step = "send the request";
        if (secure) http::async_write(secured, req, on_write);
        else http::async_write(plain, req, on_write);
    };
    resolver.async_resolve(url.host, url.port, [&](beast::error_code ec, tcp::resolver::results_type results) {
        if (ec) { failure = ec; return; }
        step = "connect";
        lowest.async_connect(results, [&](beast::error_code ec2, const tcp::endpoint&) {
            if (ec2) { failure = ec2; return; }
            if (!secure) return send();
            step = "TLS handshake";
            secured.async_handshake(ssl::stream_base::client, [&](beast::error_code ec3) {
                if (ec3) { failure = ec3; return; }
                send();
            });
        });
    });
    io.run();
    if (!done) {
        const std::string reason = failure == beast::error::timeout ? "timed out" : failure.message();
        return Error{"cannot reach " + request.peer + " at " + where + " (" + step + ": " + reason + ")", "unreachable"};
    }
    HttpResult result;
    auto& res = parser.get();
    result.status = static_cast<int>(res.result_int());
    result.body = std::move(res.body());
    result.content_type = std::string(res[http::field::content_type]);
    return result;
}

}  // namespace saltpeter::detail
