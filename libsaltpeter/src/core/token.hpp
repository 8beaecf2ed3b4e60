#pragma once
// wrapper_token() and the helpers behind it: HMAC-SHA256 and a constant-time
// comparison, kept out of machine_hub.cpp so that OpenSSL and websocketpp share no TU and the
// unit tests can check them against RFC 4231 without a socket.

#include <string>
#include <string_view>

namespace saltpeter::detail {

/// Lowercase hex of HMAC-SHA256(key, data): 64 digits. Throws std::runtime_error if libcrypto fails
/// (it does not for SHA-256 with any key length).
std::string hmac_sha256_hex(std::string_view key, std::string_view data);

/// True when a and b are equal. The time taken depends only on the lengths, never on where the
/// first difference is (CRYPTO_memcmp), so a token cannot be guessed byte by byte.
bool constant_time_equal(std::string_view a, std::string_view b) noexcept;

}  // namespace saltpeter::detail

namespace saltpeter {

/// The per-target token spd hands to a wrapper as SP_TOKEN: hex(HMAC-SHA256(secret,
/// instance + "\n" + machine)), 64 lowercase hex digits (PROTOCOL.md 5.5).
std::string wrapper_token(const std::string& secret, const std::string& instance, const std::string& machine);

}  // namespace saltpeter
