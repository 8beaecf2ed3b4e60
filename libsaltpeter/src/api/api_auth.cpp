// The API's tokens and origins: token files, constant-time matching, the CORS and
// cross-site rules (docs/api.md).

#include <cctype>
#include <fstream>

#include "api/api_server_impl.hpp"
#include "core/token.hpp"

namespace saltpeter {

using namespace api;

Result<std::vector<ApiCredential>> resolve_api_tokens(const std::vector<ApiToken>& tokens) {
    std::vector<ApiCredential> out;
    for (const ApiToken& t : tokens) {
        if (t.role != "read" && t.role != "operate")
            return Error{"API token '" + t.name + "': role must be read or operate, not '" + t.role + "'", "api_tokens"};
        ApiCredential c;
        c.name = t.name;
        c.operate = t.role == "operate";
        c.token = t.token;
        if (!t.token_file.empty()) {
            std::ifstream in(t.token_file);
            if (!in) return Error{"API token '" + t.name + "': cannot read token_file " + t.token_file, "api_tokens"};
            std::getline(in, c.token);
            while (!c.token.empty() && std::isspace(static_cast<unsigned char>(c.token.back()))) c.token.pop_back();
        }
        if (c.token.size() < 8)
            return Error{"API token '" + t.name + "' is too short (at least 8 characters)", "api_tokens"};
        out.push_back(std::move(c));
    }
    return out;
}

bool is_loopback_origin(std::string_view origin, std::uint16_t port) {
    auto lower = [](std::string_view v) {
        std::string out(v);
        for (char& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        return out;
    };
    const std::string o = lower(origin);
    std::string_view rest(o);
    unsigned long origin_port = 0;
    if (rest.substr(0, 7) == "http://") {
        rest.remove_prefix(7);
        origin_port = 80;
    } else if (rest.substr(0, 8) == "https://") {
        rest.remove_prefix(8);
        origin_port = 443;
    } else {
        return false;
    }
    std::string_view host;
    if (!rest.empty() && rest.front() == '[') {
        const auto close = rest.find(']');
        if (close == std::string_view::npos) return false;
        host = rest.substr(0, close + 1);
        rest.remove_prefix(close + 1);
    } else {
        const auto colon = rest.find(':');
        host = rest.substr(0, colon);
        rest.remove_prefix(colon == std::string_view::npos ? rest.size() : colon);
    }
    if (!rest.empty()) {
        if (rest.front() != ':' || rest.size() < 2 || rest.size() > 6) return false;
        origin_port = 0;
        for (char ch : rest.substr(1)) {
            if (ch < '0' || ch > '9') return false;
            origin_port = origin_port * 10 + static_cast<unsigned long>(ch - '0');
        }
    }
    return origin_port == port && (host == "127.0.0.1" || host == "localhost" || host == "[::1]");
}

const ApiCredential* match_token(const std::vector<ApiCredential>& credentials, const std::string& presented) {
    const ApiCredential* found = nullptr;
    // Every credential is compared, so the time does not tell which one (or whether one) matched.
    for (const ApiCredential& c : credentials) {
        if (detail::constant_time_equal(c.token, presented) && found == nullptr) found = &c;
    }
    return found;
}

// ---- auth and CORS ----------------------------------------------------------------------------

bool ApiServer::Impl::authorise(const std::string& auth_header, const std::string& query_token,
                                const ApiCredential*& who) const {
    who = nullptr;
    if (m_options.credentials.empty()) return true;
    std::string presented = query_token;
    static const std::string k_bearer = "Bearer ";
    if (auth_header.size() > k_bearer.size() && auth_header.compare(0, k_bearer.size(), k_bearer) == 0)
        presented = auth_header.substr(k_bearer.size());
    if (presented.empty()) return false;
    who = match_token(m_options.credentials, presented);
    return who != nullptr;
}

bool ApiServer::Impl::origin_allowed(const std::string& origin) const {
    for (const auto& o : m_options.cors_origins) {
        if (o == "*" || o == origin) return true;
    }
    return false;
}

std::string ApiServer::Impl::origin_refusal(const std::string& origin, bool post) const {
    if (origin.empty()) return "";  // not a browser: curl, spctl, scripts
    if (!m_options.cors_origins.empty()) {
        // With tokens a cross-site form POST cannot carry the Authorization header: the token guards it.
        if (origin_allowed(origin) || (post && !m_options.credentials.empty())) return "";
        return "origin '" + origin + "' is not in cors_origins";
    }
    // No cors_origins: without tokens only the API's own origin, or any page in the operator's
    // browser could drive this spd (cross-site WebSocket hijacking, cross-site POST).
    if (!m_options.credentials.empty() || is_loopback_origin(origin, m_port)) return "";
    return "origin '" + origin + "' is not this API's own (http://127.0.0.1:" + std::to_string(m_port) +
           "); list it in cors_origins";
}

std::vector<std::pair<std::string, std::string>> ApiServer::Impl::cors_headers(const std::string& origin) const {
    if (origin.empty() || !origin_allowed(origin)) return {};
    return {{"Access-Control-Allow-Origin", origin},
            {"Vary", "Origin"},
            {"Access-Control-Allow-Headers",
             "DNT,User-Agent,X-Requested-With,If-Modified-Since,Cache-Control,Content-Type,Range,Authorization"},
            {"Access-Control-Allow-Methods", "GET, POST, OPTIONS"}};
}

}  // namespace saltpeter
