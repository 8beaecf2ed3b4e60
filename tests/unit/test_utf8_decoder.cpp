#include <doctest/doctest.h>

#include "core/utf8_decoder.hpp"

using saltpeter::Utf8Decoder;
using saltpeter::utf8_cut;

namespace {
const std::string k_fffd = "\xEF\xBF\xBD";

std::string decode_in_pieces(const std::string& bytes, std::size_t piece) {
    Utf8Decoder d;
    std::string out;
    for (std::size_t i = 0; i < bytes.size(); i += piece) d.decode(std::string_view(bytes).substr(i, piece), out);
    d.finish(out);
    return out;
}
}  // namespace

TEST_CASE("valid text passes unchanged, whatever the read boundaries") {
    const std::string text = "ascii \r\n caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 end";
    for (std::size_t piece = 1; piece <= text.size(); ++piece) CHECK(decode_in_pieces(text, piece) == text);
}

TEST_CASE("a character split across reads is carried over") {
    Utf8Decoder d;
    std::string out;
    d.decode("x\xE2\x82", out);
    CHECK(out == "x");
    CHECK(d.pending() == 2);
    d.decode("\xAC", out);
    CHECK(out == "x\xE2\x82\xAC");
    CHECK(d.pending() == 0);
}

TEST_CASE("invalid bytes become U+FFFD (maximal subparts)") {
    CHECK(decode_in_pieces("a\xFF" "b", 100) == "a" + k_fffd + "b");
    CHECK(decode_in_pieces("\xC0\xAF", 100) == k_fffd + k_fffd);                   // overlong
    CHECK(decode_in_pieces("\xE2\x82" "A", 100) == k_fffd + "A");                   // truncated, then ASCII
    CHECK(decode_in_pieces("\xED\xA0\x80", 100) == k_fffd + k_fffd + k_fffd);       // surrogate
    CHECK(decode_in_pieces("\xF4\x90\x80\x80", 100) == k_fffd + k_fffd + k_fffd + k_fffd);  // > U+10FFFF
    CHECK(decode_in_pieces("\x80\x80", 1) == k_fffd + k_fffd);
    for (std::size_t piece = 1; piece < 6; ++piece)
        CHECK(decode_in_pieces("\xF0\x9F\x98" "x\xF0\x9F\x98\x80", piece) == k_fffd + "x\xF0\x9F\x98\x80");
}

TEST_CASE("finish turns an incomplete tail into one U+FFFD") {
    Utf8Decoder d;
    std::string out;
    d.decode("ok\xF0\x9F", out);
    d.finish(out);
    CHECK(out == "ok" + k_fffd);
}

TEST_CASE("utf8_cut never splits a character") {
    const std::string s = "ab\xE2\x82\xAC" "cd";
    CHECK(utf8_cut(s, 100) == s.size());
    CHECK(utf8_cut(s, 3) == 2);
    CHECK(utf8_cut(s, 4) == 2);
    CHECK(utf8_cut(s, 5) == 5);
    CHECK(utf8_cut("\xE2\x82\xAC", 1) == 3);
}
