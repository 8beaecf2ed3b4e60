// wrapper_token() and its helpers (PROTOCOL.md 5.5). See token.hpp.
#include "core/token.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <stdexcept>


namespace saltpeter {
namespace detail {

std::string hmac_sha256_hex(std::string_view key, std::string_view data) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    // HMAC() with a null key pointer would pick a static buffer; an empty key is legal (tests).
    static const unsigned char k_empty = 0;
    const void* key_ptr = key.empty() ? static_cast<const void*>(&k_empty) : static_cast<const void*>(key.data());
    const auto* data_ptr = reinterpret_cast<const unsigned char*>(data.empty() ? "" : data.data());
    if (HMAC(EVP_sha256(), key_ptr, static_cast<int>(key.size()), data_ptr, data.size(), digest, &length) == nullptr)
        throw std::runtime_error("HMAC-SHA256 failed in libcrypto");
    static constexpr char k_hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(length * 2);
    for (unsigned int i = 0; i < length; ++i) {
        out.push_back(k_hex[digest[i] >> 4]);
        out.push_back(k_hex[digest[i] & 0x0f]);
    }
    return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) noexcept {
    // The length of a token is public (64 hex digits); only the content must not leak.
    if (a.size() != b.size()) return false;
    if (a.empty()) return true;
    return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace detail

std::string wrapper_token(const std::string& secret, const std::string& instance, const std::string& machine) {
    return detail::hmac_sha256_hex(secret, instance + "\n" + machine);
}

}  // namespace saltpeter
