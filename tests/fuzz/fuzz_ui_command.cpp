// libFuzzer target: the web UI's /ws client frames (ui::parse_command, PROTOCOL.md 3.2) and what
// spd does with their strings: the getTimeline bounds, the UTF-16 position helpers and the frames
// that echo client text back (output_chunk, timeline, error). Never a crash, an uncaught exception
// or a sanitizer report; the checks below abort on a broken invariant.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "api/ui_protocol.hpp"

namespace ui = saltpeter::ui;
using Kind = ui::Command::Kind;

namespace {

void check(bool ok) {
    if (!ok) std::abort();
}

// What spd sends back must be valid JSON whatever bytes the client sent (invalid UTF-8 included).
void check_json(const std::string& frame) { check(!nlohmann::json::parse(frame, nullptr, false).is_discarded()); }

void check_utf16(std::string_view text) {
    const std::size_t units = ui::utf16_length(text);
    check(units <= text.size());
    check(ui::byte_offset_of_utf16(text, units) == text.size());
    check(ui::byte_offset_of_utf16(text, units + 7) == text.size());
    std::size_t previous = 0;
    for (std::size_t u = 0; u <= units && u < 64; ++u) {
        const std::size_t at = ui::byte_offset_of_utf16(text, u);
        check(at >= previous && at <= text.size());
        // The prefix up to the offset never holds more units than asked for (no split surrogate pair).
        check(ui::utf16_length(text.substr(0, at)) <= u);
        previous = at;
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    check_utf16(text);
    const auto now = saltpeter::SysMicros(std::chrono::microseconds(1795841033123456));
    (void)ui::parse_timeline_bound(text, now);
    check_json(ui::error_json(text));

    auto parsed = ui::parse_command(text);
    if (!parsed) return 0;
    const ui::Command& c = *parsed;
    switch (c.kind) {
    case Kind::none:
        check(c.jobs.empty());
        break;
    case Kind::subscribe:
    case Kind::unsubscribe:
        check(c.job.empty());
        for (const auto& job : c.jobs) check_json(ui::error_json("unknown job '" + job + "'"));
        break;
    case Kind::kill_machine:
        check(!c.job.empty() && !c.machine.empty());
        check(!c.instance || !c.instance->empty());
        break;
    case Kind::get_timeline: {
        auto start = ui::parse_timeline_bound(c.start_date.empty() ? "now-1d" : c.start_date, now);
        auto end = ui::parse_timeline_bound(c.end_date.empty() ? "now" : c.end_date, now);
        if (start && end) check_json(ui::timeline_frame({}, *start, *end, c.id, 1795841040.5));
        check_json(ui::timeline_frame({}, now, now, c.id, 1795841040.5));
        break;
    }
    default:
        check(c.jobs.empty());
        break;
    }
    // A chunk of whatever the client named, as the server would echo it.
    ui::OutputChunk chunk;
    chunk.cron = c.job;
    chunk.machine = c.machine;
    chunk.chunk = std::string(text);
    chunk.total_length = ui::utf16_length(text);
    chunk.instance = c.instance.value_or("");
    check_json(ui::output_chunk_frame(chunk));
    return 0;
}
