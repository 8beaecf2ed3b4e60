#include "core/utf8_decoder.hpp"

#include <cstring>

namespace saltpeter {
namespace {
constexpr char k_replacement[] = "\xEF\xBF\xBD";

// Length of the leading run of ASCII bytes; checks 8 bytes at a time because job output is
// mostly ASCII and this loop dominates the wrapper's CPU time.
std::size_t ascii_run(const unsigned char* p, std::size_t n) noexcept {
    std::size_t i = 0;
    while (i + 8 <= n) {
        std::uint64_t w;
        std::memcpy(&w, p + i, 8);
        if (w & 0x8080808080808080ULL) break;
        i += 8;
    }
    while (i < n && p[i] < 0x80) ++i;
    return i;
}
}  // namespace

void Utf8Decoder::fail(std::string& out) {
    out.append(k_replacement, 3);
    m_seen = 0;
    m_needed = 0;
    m_lower = 0x80;
    m_upper = 0xBF;
}

void Utf8Decoder::decode(std::string_view bytes, std::string& out) {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    const std::size_t n = bytes.size();
    std::size_t i = 0;
    while (i < n) {
        if (m_needed == 0) {
            const std::size_t run = ascii_run(p + i, n - i);
            if (run) {
                out.append(bytes.data() + i, run);
                i += run;
                continue;
            }
            const unsigned char b = p[i];
            const Utf8Lead lead = utf8_lead(b);
            if (lead.length < 2) {  // ascii_run took every ASCII byte: this one cannot start a character
                out.append(k_replacement, 3);
                ++i;
                continue;
            }
            m_needed = lead.length - 1;
            m_lower = lead.lower;
            m_upper = lead.upper;
            m_bytes[0] = b;
            m_seen = 1;
            ++i;
            continue;
        }
        const unsigned char b = p[i];
        if (b < m_lower || b > m_upper) {
            // The byte is not consumed: it may start the next character.
            fail(out);
            continue;
        }
        m_lower = 0x80;
        m_upper = 0xBF;
        m_bytes[m_seen++] = b;
        ++i;
        if (--m_needed == 0) {
            out.append(reinterpret_cast<const char*>(m_bytes), m_seen);
            m_seen = 0;
        }
    }
}

void Utf8Decoder::finish(std::string& out) {
    if (m_needed != 0) fail(out);
}

std::size_t utf8_cut(std::string_view text, std::size_t max) noexcept {
    if (text.size() <= max) return text.size();
    std::size_t n = max;
    while (n > 0 && utf8_is_continuation(static_cast<unsigned char>(text[n]))) --n;
    if (n == 0) {
        // A character longer than max: return its length.
        n = 1;
        while (n < text.size() && utf8_is_continuation(static_cast<unsigned char>(text[n]))) ++n;
    }
    return n;
}

}  // namespace saltpeter
