#include "saltpeter/run_store.hpp"

#include <initializer_list>

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "store/run_store_detail.hpp"

namespace saltpeter {

namespace {
// The inverse of an enum's to_string: the value among `values` whose name is `text`.
template <typename E>
std::optional<E> from_name(std::string_view text, std::initializer_list<E> values) noexcept {
    for (E v : values) {
        if (to_string(v) == text) return v;
    }
    return std::nullopt;
}
}  // namespace

std::optional<Trigger> trigger_from_string(std::string_view text) noexcept {
    return from_name<Trigger>(text, {Trigger::schedule, Trigger::run_now, Trigger::catch_up, Trigger::retry});
}

std::optional<TargetState> target_state_from_string(std::string_view text) noexcept {
    return from_name<TargetState>(text, {TargetState::pending, TargetState::launched, TargetState::started, TargetState::finished});
}

std::string_view to_string(RunStatus status) noexcept {
    switch (status) {
        case RunStatus::running: return "running";
        case RunStatus::success: return "success";
        case RunStatus::failure: return "failure";
        case RunStatus::killed: return "killed";
    }
    return "running";
}

std::optional<RunStatus> run_status_from_string(std::string_view text) noexcept {
    return from_name<RunStatus>(text, {RunStatus::running, RunStatus::success, RunStatus::failure, RunStatus::killed});
}

std::string_view to_string(DecisionKind kind) noexcept {
    switch (kind) {
        case DecisionKind::skipped_overlap: return "skipped-overlap";
        case DecisionKind::skipped_maintenance: return "skipped-maintenance";
        case DecisionKind::misfire: return "misfire";
    }
    return "misfire";
}

std::optional<DecisionKind> decision_kind_from_string(std::string_view text) noexcept {
    return from_name<DecisionKind>(text, {DecisionKind::skipped_overlap, DecisionKind::skipped_maintenance, DecisionKind::misfire});
}

std::string output_cut_marker(std::uint64_t cut_bytes) {
    return "\n[... " + std::to_string(cut_bytes) + " bytes cut by saltpeter (output_max_bytes) ...]\n";
}

// The two run shapes, one conversion each way (RunRecord lives in memory, StoredRun in the store).

RunStatus run_status(const RunRecord& run) {
    if (!run.finished()) return RunStatus::running;
    if (run.kill_requested) return RunStatus::killed;
    return run.success() ? RunStatus::success : RunStatus::failure;
}

StoredRun to_stored_run(const RunRecord& run) {
    StoredRun r;
    r.instance = run.instance;
    r.job = run.job;
    r.group = run.group;
    r.trigger = run.trigger;
    r.scheduled = run.scheduled;
    r.started = run.started;
    r.ended = run.ended;
    r.status = run_status(run);
    return r;
}

StoredTarget to_stored_target(const RunRecord& run, const TargetResult& t) {
    StoredTarget s;
    s.instance = run.instance;
    s.machine = t.machine;
    s.state = t.state;
    s.started = t.starttime;
    s.ended = t.endtime;
    s.retcode = t.retcode;
    s.wrapper_version = t.wrapper_version;
    s.last_heartbeat = t.last_heartbeat;
    s.notes = t.notes;
    s.spd_verdict = t.spd_verdict;
    return s;
}

RunRecord to_run_record(const StoredRun& run) {
    RunRecord r;
    r.instance = run.instance;
    r.job = run.job;
    r.group = run.group;
    r.trigger = run.trigger;
    r.scheduled = run.scheduled;
    r.started = run.started;
    r.ended = run.ended;
    r.kill_requested = run.status == RunStatus::killed;
    r.launching_done = run.ended.has_value();
    for (const StoredTarget& t : run.targets) {
        TargetResult& out = r.targets[t.machine];
        out.machine = t.machine;
        out.state = t.state;
        out.starttime = t.started.value_or(run.started);
        out.endtime = t.ended;
        out.retcode = t.retcode;
        out.wrapper_version = t.wrapper_version;
        out.last_heartbeat = t.last_heartbeat;
        out.notes = t.notes;
        out.spd_verdict = t.spd_verdict;
        out.output_bytes = t.output_bytes;
    }
    return r;
}

std::string stored_output_display(std::string output, const StoredTarget& target) {
    if (!target.spd_verdict || target.notes.empty()) return output;
    std::string_view note = target.notes.back();
    while (!note.empty() && note.front() == '\n') note.remove_prefix(1);
    while (!note.empty() && note.back() == '\n') note.remove_suffix(1);
    if (note.empty()) return output;
    if (!output.empty() && output.back() != '\n') output += '\n';
    output += note;
    output += '\n';
    return output;
}

namespace detail {

bool OutputGate::try_reserve(std::uint64_t n) {
    std::lock_guard lock(m_mutex);
    if (m_max != 0 && m_queued >= m_max) return false;
    m_queued += n;
    return true;
}

void OutputGate::release(std::uint64_t n) {
    std::vector<std::function<void()>> ready;
    {
        std::lock_guard lock(m_mutex);
        m_queued -= std::min(n, m_queued);
        if (m_queued <= m_max / 2) ready.swap(m_waiters);
    }
    for (const auto& r : ready) call_ready(r);
}

void OutputGate::when_writable(std::function<void()> ready) {
    std::lock_guard lock(m_mutex);
    if (m_max == 0 || m_queued < m_max) {
        boost::asio::post(m_io, [ready = std::move(ready)] { call_ready(ready); });
    } else {
        m_waiters.push_back(std::move(ready));
    }
}

std::uint64_t OutputGate::queued() const {
    std::lock_guard lock(m_mutex);
    return m_queued;
}

void call_completion(const RunStore::Completion& done, const Status& status, const char* what) noexcept {
    if (!done) {
        if (!status.ok()) spdlog::error("state database: {} failed: {}", what, status.error().message);
        return;
    }
    try {
        done(status);
    } catch (const std::exception& e) {
        spdlog::error("state database: completion of {} threw: {}", what, e.what());
    } catch (...) {
        spdlog::error("state database: completion of {} threw", what);
    }
}

void call_ready(const std::function<void()>& ready) noexcept {
    try {
        if (ready) ready();
    } catch (const std::exception& e) {
        spdlog::error("state database: when_writable callback threw: {}", e.what());
    } catch (...) {
        spdlog::error("state database: when_writable callback threw");
    }
}

}  // namespace detail
}  // namespace saltpeter
