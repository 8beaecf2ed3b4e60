#include "saltpeter/core/runs.hpp"

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

}  // namespace saltpeter
