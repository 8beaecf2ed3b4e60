#pragma once
// ApiServer: spd's HTTP + WebSocket API on api_ws_port (PROTOCOL.md 3 and 5.5; docs/api.md).
// One listener serves the HTTP routes (/version, /config, /running, /status, /jobs..., /runs...,
// /metrics, POST run/kill) and the original web UI's /ws protocol, plus a push mode for spctl.
// Bearer tokens with roles (read, operate); constant-time compares. Io thread only.

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "saltpeter/config.hpp"
#include "saltpeter/result.hpp"
#include "saltpeter/runs.hpp"

namespace saltpeter {

class ApiBackend;

/// A token with its role, resolved (token_file read).
struct ApiCredential {
    std::string name;
    std::string token;
    bool operate = false;  ///< role operate: may POST and send run/kill on /ws
};

/// Reads the token_file entries of `tokens` (first line, trailing whitespace dropped). Errors
/// name the token and the file; a role other than read/operate is an error naming the token.
Result<std::vector<ApiCredential>> resolve_api_tokens(const std::vector<ApiToken>& tokens);

/// Which credential `presented` matches (compared in constant time against every one), or null.
const ApiCredential* match_token(const std::vector<ApiCredential>& credentials, const std::string& presented);

/// True when `origin` (an Origin header: "scheme://host[:port]") names the API itself as a
/// browser sees it without tokens: http or https, host 127.0.0.1, localhost or [::1], and `port`
/// (80/443 when the origin has none). Anything else, "null" included, is another site.
bool is_loopback_origin(std::string_view origin, std::uint16_t port);

struct ApiServerOptions {
    std::string bind_address = "127.0.0.1";  ///< with no credentials forced to 127.0.0.1
    std::uint16_t port = 8888;                ///< 0 = ephemeral (tests)
    std::vector<ApiCredential> credentials;   ///< empty = no auth (local only)
    std::string tls_cert;                     ///< both set = https:// and wss://
    std::string tls_key;
    std::vector<std::string> cors_origins;    ///< allowed Origin values; "*" allows any
    std::size_t max_body_bytes = 64 * 1024;   ///< larger request bodies get 413
    std::size_t max_ws_frame_bytes = 64 * 1024;
    long tick_ms = 2000;                      ///< the UI's status/details period
};

class ApiServer {
public:
    /// `backend` must outlive the server; the server reads its state and sends it commands.
    ApiServer(boost::asio::io_context& io, ApiServerOptions options, ApiBackend& backend);
    ~ApiServer();
    ApiServer(const ApiServer&) = delete;
    ApiServer& operator=(const ApiServer&) = delete;

    /// Binds and starts accepting and the 2 s tick. Returns the bound port. Errors name the
    /// address or TLS file.
    Result<std::uint16_t> listen();
    /// Stops accepting, closes every /ws connection and the tick. Idempotent.
    void stop();
    /// Open /ws connections (tests, metrics).
    std::size_t ws_connections() const;

private:
    class Impl;
    std::shared_ptr<Impl> m_impl;
};

}  // namespace saltpeter
