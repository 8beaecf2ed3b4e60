#include "saltpeter/runs.hpp"

namespace saltpeter {

std::string_view to_string(Trigger trigger) noexcept {
    switch (trigger) {
        case Trigger::schedule: return "schedule";
        case Trigger::run_now: return "run-now";
        case Trigger::catch_up: return "catch-up";
        case Trigger::retry: return "retry";
    }
    return "schedule";
}

std::string_view to_string(TargetState state) noexcept {
    switch (state) {
        case TargetState::pending: return "pending";
        case TargetState::launched: return "launched";
        case TargetState::started: return "started";
        case TargetState::finished: return "finished";
    }
    return "pending";
}

std::size_t RunRecord::total() const noexcept {
    std::size_t n = 0;
    for (const auto& [m, t] : targets) n += t.retcode.has_value() ? 1 : 0;
    return n;
}

std::size_t RunRecord::failed() const noexcept {
    std::size_t n = 0;
    for (const auto& [m, t] : targets) n += (t.retcode && *t.retcode != 0) ? 1 : 0;
    return n;
}

RunRecord RunRecord::without_output() const {
    RunRecord r;
    r.instance = instance;
    r.job = job;
    r.group = group;
    r.trigger = trigger;
    r.scheduled = scheduled;
    r.started = started;
    r.ended = ended;
    r.kill_requested = kill_requested;
    r.launching_done = launching_done;
    for (const auto& [machine, t] : targets) {
        TargetResult& c = r.targets[machine];
        c.machine = t.machine;
        c.state = t.state;
        c.starttime = t.starttime;
        c.endtime = t.endtime;
        c.retcode = t.retcode;
        c.wrapper_version = t.wrapper_version;
        c.last_heartbeat = t.last_heartbeat;
        c.notes = t.notes;
        c.spd_verdict = t.spd_verdict;
        c.output_bytes = t.output_bytes;
    }
    return r;
}

}  // namespace saltpeter
