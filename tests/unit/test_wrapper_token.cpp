// wrapper_token() and its HMAC-SHA256 / constant-time helpers (PROTOCOL.md 5.5), against RFC 4231.
#include <doctest/doctest.h>

#include <string>

#include "runs/machine_hub.hpp"
#include "core/token.hpp"

using saltpeter::detail::constant_time_equal;
using saltpeter::detail::hmac_sha256_hex;

TEST_CASE("HMAC-SHA256 matches RFC 4231") {
    // Test case 1: key = 20 x 0x0b, data "Hi There".
    CHECK(hmac_sha256_hex(std::string(20, '\x0b'), "Hi There") ==
          "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
    // Test case 2: key "Jefe".
    CHECK(hmac_sha256_hex("Jefe", "what do ya want for nothing?") ==
          "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    CHECK(hmac_sha256_hex("", "").size() == 64);
}

TEST_CASE("wrapper_token hashes instance and machine joined by a newline") {
    // Python: hmac.new(b"s3cret", b"demo_1\ntesthost", hashlib.sha256).hexdigest()
    CHECK(saltpeter::wrapper_token("s3cret", "demo_1", "testhost") ==
          "ff27e3cdb7116abd4375e960d61e13adee8944c1924b39ae2c4530b160c3e276");
    CHECK(saltpeter::wrapper_token("Jefe", "demo_1", "testhost") == hmac_sha256_hex("Jefe", "demo_1\ntesthost"));
    CHECK(saltpeter::wrapper_token("s3cret", "demo_1", "testhost") != saltpeter::wrapper_token("s3cret", "demo_1\nt", "esthost") );
}

TEST_CASE("constant_time_equal") {
    CHECK(constant_time_equal("abc", "abc"));
    CHECK_FALSE(constant_time_equal("abc", "abd"));
    CHECK_FALSE(constant_time_equal("abc", "abcd"));
    CHECK(constant_time_equal("", ""));
}
