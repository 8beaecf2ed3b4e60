// validate_schedules(): the checks that need "now" (PROTOCOL.md 5.6): expressions that never fire
// again, and fixed-hour jobs whose wall times a DST change skips or repeats.

#include <cstdio>

#include "core/config_detail.hpp"
#include "saltpeter/config.hpp"

namespace saltpeter {
namespace config_detail {

std::vector<ZoneSpan> spans_between(const TimeZone& zone, SysSeconds from, SysSeconds to) {
    std::vector<ZoneSpan> spans;
    ZoneSpan span = zone.span_at(from);
    spans.push_back(span);
    while (span.end < to && span.end != SysSeconds::max()) {
        span = zone.span_at(span.end);
        spans.push_back(span);
    }
    return spans;
}

std::vector<DstConflict> find_dst_conflicts(const CronExpression& expr, const std::vector<ZoneSpan>& spans) {
    // Offset changes are at most a few hours wide, so walking the affected wall-clock window second
    // by second costs a few thousand matches() calls per change; a window wider than a day (a zone
    // that skipped a date) is capped there.
    constexpr std::chrono::seconds k_max_window{24 * 3600};
    std::vector<DstConflict> out;
    for (std::size_t i = 1; i < spans.size(); ++i) {
        const ZoneSpan& before = spans[i - 1];
        const ZoneSpan& after = spans[i];
        if (before.offset == after.offset) continue;
        const SysSeconds at = after.begin;
        const auto lo = std::min(before.offset, after.offset);
        const auto hi = std::max(before.offset, after.offset);
        const LocalSeconds begin{at.time_since_epoch() + lo};
        const LocalSeconds end{at.time_since_epoch() + std::min(hi, lo + k_max_window)};
        for (LocalSeconds wall = begin; wall < end; wall += std::chrono::seconds{1}) {
            if (!expr.matches(to_civil(wall))) continue;
            out.push_back(DstConflict{after.offset > before.offset ? DstConflict::Kind::gap : DstConflict::Kind::overlap,
                                      wall, at, before, after});
            break;
        }
    }
    return out;
}

}  // namespace config_detail

namespace {

std::string wall_text(LocalSeconds wall) {
    const CivilTime c = to_civil(wall);
    char buf[40];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02u %02u:%02u:%02u", c.year, c.month, c.day, c.hour, c.minute,
                  c.second);
    return buf;
}

Problem job_problem(const Job& job, Problem::Severity severity, std::string message) {
    Problem p;
    p.severity = severity;
    p.file = job.file;
    p.line = job.line;
    p.job = job.name;
    p.message = std::move(message);
    return p;
}

}  // namespace

std::vector<Problem> validate_schedules(const Config& config, SysSeconds now) {
    constexpr std::chrono::seconds k_horizon{366 * 24 * 3600};
    std::vector<Problem> problems;
    for (const Job& job : config.jobs) {
        if (!job.schedule.next_after(now, job.zone)) {
            problems.push_back(job_problem(job, Problem::Severity::error,
                                           "'" + job.schedule.text() + "' never fires again after " +
                                               format_iso8601(now, job.zone)));
            continue;
        }
        if (job.schedule.follows_real_time() || job.zone.is_utc()) continue;
        const auto spans = config_detail::spans_between(job.zone, now, now + k_horizon);
        bool gap_reported = false;
        bool overlap_reported = false;
        for (const auto& conflict : config_detail::find_dst_conflicts(job.schedule, spans)) {
            const std::string when = wall_text(conflict.wall);
            if (conflict.kind == config_detail::DstConflict::Kind::gap && !gap_reported) {
                gap_reported = true;
                problems.push_back(job_problem(
                    job, Problem::Severity::warning,
                    "fires at " + when + " (" + job.zone.name() +
                        "), a wall time skipped when the clocks go forward; it runs once, at the end of the gap (" +
                        format_iso8601(conflict.transition, job.zone) + ")"));
            } else if (conflict.kind == config_detail::DstConflict::Kind::overlap && !overlap_reported) {
                overlap_reported = true;
                problems.push_back(job_problem(
                    job, Problem::Severity::warning,
                    "fires at " + when + " (" + job.zone.name() +
                        "), a wall time that occurs twice when the clocks go back; it runs once, at the first "
                        "occurrence"));
            }
        }
    }
    return problems;
}

}  // namespace saltpeter
