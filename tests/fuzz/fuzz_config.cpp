// libFuzzer target: parse_config on arbitrary YAML text, then merge_configs and the schedule
// validation on what came out. Bad input must become Problems, never a crash or an exception.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "saltpeter/config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto file = saltpeter::parse_config(text, "fuzz.yaml");
    std::vector<saltpeter::FileConfig> files{file};
    auto merged = saltpeter::merge_configs(files);
    (void)saltpeter::validate_schedules(merged.config, saltpeter::SysSeconds{std::chrono::seconds{1795000000}});
    return 0;
}
