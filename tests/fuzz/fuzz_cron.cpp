// libFuzzer target: CronExpression::parse on arbitrary text, then next_after() on what parses,
// in UTC and one DST zone. Must never crash, hang or trip a sanitizer.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "saltpeter/cron_expression.hpp"
#include "saltpeter/time_zone.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto parsed = saltpeter::CronExpression::parse(text);
    if (!parsed) return 0;
    static const auto utc = saltpeter::TimeZone::utc();
    static const auto paris = saltpeter::TimeZone::locate("Europe/Paris");
    saltpeter::SysSeconds t{std::chrono::seconds{1795000000}};
    for (int i = 0; i < 4; ++i) {
        auto next = parsed->next_after(t, utc);
        if (!next) break;
        t = *next;
    }
    if (paris) (void)parsed->next_after(saltpeter::SysSeconds{std::chrono::seconds{1795000000}}, *paris);
    return 0;
}
