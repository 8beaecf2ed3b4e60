#pragma once
// Utf8Decoder: turns a byte stream read in arbitrary pieces into valid UTF-8 text (PROTOCOL.md
// 5.4). Pure and incremental; one instance per stream.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace saltpeter {

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
