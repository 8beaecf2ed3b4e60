#pragma once
// A blocking HTTP/1.1 client for one request at a time (ApiClient, spctl), on a private
// io_context with an overall deadline. http:// and https:// (system CAs, or ca_file). Private to
// the library; the salt-api transport keeps its own asynchronous client.

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "saltpeter/result.hpp"

namespace saltpeter::detail {

struct Url {
    std::string scheme;  ///< http or https (ws/wss map to these)
    std::string host;
    std::string port;
    std::string base;    ///< path prefix without a trailing slash ("" for none)
};

/// Parses http(s)://host[:port][/base]; Error naming the URL otherwise.
Result<Url> parse_url(const std::string& text);

struct HttpResult {
    int status = 0;
    std::string body;
    std::string content_type;
};

struct HttpRequest {
    std::string method = "GET";  ///< GET or POST
    std::string target;          ///< path and query, appended to url.base
    std::string body;            ///< POST: JSON unless headers name another Content-Type
    std::vector<std::pair<std::string, std::string>> headers;
    std::string peer = "spd";    ///< what errors say could not be reached
    std::chrono::milliseconds timeout{10000};
    std::string ca_file;         ///< https: extra CA bundle (empty = system default paths)
};

/// Sends one request and reads the whole response. Error (field "unreachable") when the host
/// cannot be reached, the TLS handshake fails or the deadline passes; the message names the URL.
Result<HttpResult> http_call(const Url& url, const HttpRequest& request);

}  // namespace saltpeter::detail
