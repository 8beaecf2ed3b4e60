// libFuzzer target: every parser of Salt replies — the salt CLI's line-wise JSON output and the
// salt-api JSON bodies. Never a crash, an uncaught exception or a sanitizer report.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "salt/salt_api_json.hpp"
#include "salt/salt_cli_output.hpp"

namespace detail = saltpeter::detail;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto lines = detail::split_salt_cli_output(text);
    (void)detail::parse_run_all_output(lines);
    (void)detail::describe_text(lines);
    (void)detail::parse_ping_output(text, 0, "salt fuzz");
    (void)detail::parse_ping_output(text, 2, "salt fuzz");
    (void)detail::parse_login(text);
    (void)detail::parse_ping(text);
    (void)detail::parse_run_all(text);
    (void)detail::parse_local_async(text);
    (void)detail::parse_job_lookup(text);
    (void)detail::minion_return_from_json_text("m1", text);
    return 0;
}
