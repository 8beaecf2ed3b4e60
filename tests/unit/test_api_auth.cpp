// api_server.hpp: API tokens (roles, token_file) and the constant-time match.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "api/api_server.hpp"

using namespace saltpeter;

TEST_CASE("resolve_api_tokens: roles, token_file, errors naming the token") {
    char path[] = "/tmp/sp-token-XXXXXX";
    const int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    std::ofstream(path) << "from-a-file-123\n";
    std::vector<ApiToken> tokens{{"reader", "read-token-1", "", "read"}, {"ops", "", path, "operate"}};
    auto creds = resolve_api_tokens(tokens);
    REQUIRE(creds);
    REQUIRE(creds->size() == 2);
    CHECK_FALSE((*creds)[0].operate);
    CHECK((*creds)[1].operate);
    CHECK((*creds)[1].token == "from-a-file-123");
    std::remove(path);

    auto bad_role = resolve_api_tokens({{"x", "long-enough-token", "", "admin"}});
    REQUIRE_FALSE(bad_role);
    CHECK(bad_role.error().message.find("'x'") != std::string::npos);
    auto missing = resolve_api_tokens({{"y", "", "/nonexistent/token", "read"}});
    REQUIRE_FALSE(missing);
    CHECK(missing.error().message.find("/nonexistent/token") != std::string::npos);
    CHECK_FALSE(resolve_api_tokens({{"z", "short", "", "read"}}));
}

TEST_CASE("match_token finds the exact token only") {
    std::vector<ApiCredential> creds{{"reader", "read-token-1", false}, {"ops", "operate-token-2", true}};
    REQUIRE(match_token(creds, "operate-token-2") != nullptr);
    CHECK(match_token(creds, "operate-token-2")->name == "ops");
    CHECK(match_token(creds, "read-token-1")->name == "reader");
    CHECK(match_token(creds, "operate-token-") == nullptr);
    CHECK(match_token(creds, "operate-token-3") == nullptr);
    CHECK(match_token(creds, "") == nullptr);
    CHECK(match_token({}, "anything") == nullptr);
}

TEST_CASE("is_loopback_origin: the API's own origin only (cross-site WebSocket hijacking)") {
    CHECK(is_loopback_origin("http://127.0.0.1:8888", 8888));
    CHECK(is_loopback_origin("http://localhost:8888", 8888));
    CHECK(is_loopback_origin("https://LOCALHOST:8888", 8888));
    CHECK(is_loopback_origin("http://[::1]:8888", 8888));
    CHECK(is_loopback_origin("http://localhost", 80));
    CHECK(is_loopback_origin("https://127.0.0.1", 443));
    CHECK_FALSE(is_loopback_origin("http://127.0.0.1", 8888));         // port 80, not the API's
    CHECK_FALSE(is_loopback_origin("http://127.0.0.1:8889", 8888));
    CHECK_FALSE(is_loopback_origin("http://localhost:88888", 8888));   // 88888 is no port
    CHECK_FALSE(is_loopback_origin("http://localhost:8888/", 8888));   // an Origin has no path
    CHECK_FALSE(is_loopback_origin("http://localhost.evil.example:8888", 8888));
    CHECK_FALSE(is_loopback_origin("http://127.0.0.1.evil.example:8888", 8888));
    CHECK_FALSE(is_loopback_origin("http://evil.example:8888", 8888));
    CHECK_FALSE(is_loopback_origin("http://user@127.0.0.1:8888", 8888));
    CHECK_FALSE(is_loopback_origin("null", 8888));                       // sandboxed iframes, file://
    CHECK_FALSE(is_loopback_origin("file://", 8888));
    CHECK_FALSE(is_loopback_origin("ws://127.0.0.1:8888", 8888));
    CHECK_FALSE(is_loopback_origin("http://[::1:8888", 8888));
    CHECK_FALSE(is_loopback_origin("http://127.0.0.1:", 8888));
    CHECK_FALSE(is_loopback_origin("", 8888));
}
