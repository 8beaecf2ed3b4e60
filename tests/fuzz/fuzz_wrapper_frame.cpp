// libFuzzer target: the wrapper-protocol frame parsers (both directions). What parses must
// serialize and parse back to the same message type (a round trip that changes the type is a bug).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/protocol.hpp"

namespace proto = saltpeter::protocol;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    if (auto w = proto::parse_wrapper_frame(text)) {
        auto again = proto::parse_wrapper_frame(proto::serialize(*w));
        if (!again || again->index() != w->index()) std::abort();
    }
    if (auto s = proto::parse_server_frame(text)) {
        auto again = proto::parse_server_frame(proto::serialize(*s));
        if (!again || again->index() != s->index()) std::abort();
    }
    (void)proto::parse_timestamp(text);
    (void)proto::sanitize_utf8(text);
    return 0;
}
