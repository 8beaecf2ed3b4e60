#pragma once
// Utf8Decoder: turns a byte stream read in arbitrary pieces into valid UTF-8 text (PROTOCOL.md
// 5.4). Pure and incremental; one instance per stream.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace saltpeter {

/// What a lead byte says about the UTF-8 sequence it starts (Unicode Table 3-7): its `length` in
/// bytes (1 for ASCII, 2 to 4), or 0 for a byte that cannot start one (80-C1, F5-FF); and the
/// range the second byte must lie in, which rules out overlongs, surrogates and > U+10FFFF.
struct Utf8Lead {
    std::size_t length = 0;
    unsigned char lower = 0x80;
    unsigned char upper = 0xBF;
};

/// See Utf8Lead. Pure and constexpr, for the hot paths that validate output frames.
constexpr Utf8Lead utf8_lead(unsigned char lead) noexcept {
    if (lead < 0x80) return {1, 0x80, 0xBF};
    if (lead >= 0xC2 && lead <= 0xDF) return {2, 0x80, 0xBF};
    if (lead >= 0xE0 && lead <= 0xEF)
        return {3, static_cast<unsigned char>(lead == 0xE0 ? 0xA0 : 0x80), static_cast<unsigned char>(lead == 0xED ? 0x9F : 0xBF)};
    if (lead >= 0xF0 && lead <= 0xF4)
        return {4, static_cast<unsigned char>(lead == 0xF0 ? 0x90 : 0x80), static_cast<unsigned char>(lead == 0xF4 ? 0x8F : 0xBF)};
    return {0, 0x80, 0xBF};
}

/// The length of the sequence `lead` starts (1 to 4), or 0 when it cannot start one.
constexpr std::size_t utf8_sequence_length(unsigned char lead) noexcept { return utf8_lead(lead).length; }

/// True for 10xxxxxx, a byte that continues a sequence (never starts a character).
constexpr bool utf8_is_continuation(unsigned char byte) noexcept { return (byte & 0xC0) == 0x80; }

class Utf8Decoder {
public:
    /// Appends the valid UTF-8 text decoded from `bytes` to `out`. A character cut at the end of
    /// `bytes` is carried over to the next call; each maximal invalid subsequence (WHATWG /
    /// Unicode "substitution of maximal subparts") becomes U+FFFD; `\r` and every other valid
    /// character is kept as is. Never throws except std::bad_alloc. Not thread-safe.
    void decode(std::string_view bytes, std::string& out);
    /// Ends the stream: a carried incomplete character becomes one U+FFFD in `out`.
    void finish(std::string& out);
    /// Bytes of an incomplete character carried over (0..3).
    std::size_t pending() const noexcept { return m_seen; }

private:
    void fail(std::string& out);
    unsigned char m_bytes[4] = {};
    std::size_t m_seen = 0;    // bytes of the current sequence so far
    std::size_t m_needed = 0;  // continuation bytes still expected
    unsigned char m_lower = 0x80;
    unsigned char m_upper = 0xBF;
};

/// The largest n <= max such that text[0, n) ends on a character boundary (text is valid UTF-8).
/// When the first character alone is longer than max, returns that character's length instead.
std::size_t utf8_cut(std::string_view text, std::size_t max) noexcept;

}  // namespace saltpeter
