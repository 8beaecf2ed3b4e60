#include "runs/run_tracker.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <deque>
#include <set>

#include "saltpeter/exit_code_mapper.hpp"
#include "saltpeter/heartbeat_monitor.hpp"
#include "store/ordered_writer.hpp"

namespace saltpeter {

namespace {

using Clock = std::chrono::steady_clock;

SysMicros wall_now() {
    return std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
}

std::string monitor_key(const TargetKey& key) { return key.instance + '\n' + key.machine; }

TargetKey key_from_monitor(const std::string& k) {
    const auto nl = k.find('\n');
    return {k.substr(0, nl), k.substr(nl + 1)};
}

long seconds_of(std::chrono::milliseconds d) { return static_cast<long>(d.count() / 1000); }

// The verdict text as the notes keep it: without the newlines that frame it in the output.
std::string trimmed(const std::string& text) {
    const auto first = text.find_first_not_of('\n');
    if (first == std::string::npos) return {};
    return text.substr(first, text.find_last_not_of('\n') - first + 1);
}

}  // namespace

// Timers of one target. They are cancelled when the target finishes; a handler that still runs
// checks the target's state again, so a stale timer never overwrites a newer result.
struct TargetTimers {
    explicit TargetTimers(boost::asio::io_context& io) : startup(io), deadline(io), kill_resend(io), kill_grace(io) {}
    boost::asio::steady_timer startup;
    boost::asio::steady_timer deadline;
    boost::asio::steady_timer kill_resend;
    boost::asio::steady_timer kill_grace;
    bool killing = false;
    std::string verdict_note;  ///< text appended to the output by the last verdict (removed on recovery)
    Clock::time_point verdict_at{};
    void cancel_all() {
        startup.cancel();
        deadline.cancel();
        kill_resend.cancel();
        kill_grace.cancel();
    }
};

struct RunTracker::Impl {
    explicit Impl(boost::asio::io_context& io) : heartbeat_timer(io) {}
    std::unique_ptr<OrderedStoreWriter> store;
    RunStore* raw_store = nullptr;
    std::map<TargetKey, std::int64_t> restored_seq;  // last stored seq of re-opened targets (hub admission)
    std::set<TargetKey> awaiting_wrapper;             // re-opened targets not heard from since the restart
    HeartbeatMonitor monitor;
    boost::asio::steady_timer heartbeat_timer;
    std::optional<Clock::time_point> heartbeat_armed_for;
    std::map<TargetKey, std::unique_ptr<TargetTimers>> timers;
    // Output past output_max_bytes: the newest part, held back until the target ends.
    struct HeldTail {
        std::string data;
        std::uint64_t cut = 0;  ///< bytes dropped from its front so far
    };
    std::map<TargetKey, HeldTail> tails;
};

RunTracker::RunTracker(boost::asio::io_context& io, TrackerOptions options, RunObserver& observer)
    : m_io(io), m_options(options), m_observer(observer), m_impl(std::make_unique<Impl>(io)) {}

RunTracker::~RunTracker() {
    m_impl->heartbeat_timer.cancel();
    for (auto& [k, t] : m_impl->timers) t->cancel_all();
}

void RunTracker::set_store(RunStore* store) {
    m_impl->raw_store = store;
    if (store == nullptr) {
        m_impl->store.reset();
        return;
    }
    m_impl->store = std::make_unique<OrderedStoreWriter>(m_io, *store);
    m_impl->store->set_snapshot([this](const TargetKey& key) -> std::optional<StoredTarget> {
        RunRecord* run = nullptr;
        TargetResult* target = target_of(key, &run);
        if (target == nullptr) return std::nullopt;
        return to_stored_target(*run, *target);
    });
}

std::uint64_t RunTracker::store_write_errors() const noexcept { return m_impl->store ? m_impl->store->errors() : 0; }

void RunTracker::store_run(const RunRecord& run) {
    if (m_impl->store) m_impl->store->run(to_stored_run(run));
}

void RunTracker::store_target(const RunRecord& run, const TargetResult& target, std::function<void()> stored) {
    if (m_impl->store) {
        m_impl->store->target({run.instance, target.machine}, std::move(stored));
    } else if (stored) {
        stored();
    }
}

void RunTracker::store_output(const TargetKey& key, std::optional<std::int64_t> seq, std::string_view data,
                              std::function<void()> stored) {
    if (m_impl->store) {
        m_impl->store->output(key, seq, data, std::move(stored));
    } else if (stored) {
        stored();
    }
}

RunRecord* RunTracker::run_of(const std::string& instance) {
    auto it = m_runs.find(instance);
    return it == m_runs.end() ? nullptr : &it->second;
}

const RunRecord* RunTracker::find(const std::string& instance) const {
    auto it = m_runs.find(instance);
    return it == m_runs.end() ? nullptr : &it->second;
}

bool RunTracker::instance_taken(const std::string& instance) const {
    if (m_runs.count(instance) != 0) return true;
    if (m_impl->raw_store == nullptr) return false;
    auto stored = m_impl->raw_store->run(instance);
    // An unreadable store cannot say; the id is used (a clash replaces a run of an earlier spd).
    return stored.ok() && stored->has_value();
}

TargetResult* RunTracker::target_of(const TargetKey& key, RunRecord** run_out) {
    RunRecord* run = run_of(key.instance);
    if (run == nullptr) return nullptr;
    auto it = run->targets.find(key.machine);
    if (it == run->targets.end()) return nullptr;
    if (run_out != nullptr) *run_out = run;
    return &it->second;
}

std::vector<const RunRecord*> RunTracker::running(const std::string& job) const {
    std::vector<const RunRecord*> out;
    for (const auto& [instance, run] : m_runs) {
        if (run.job == job && !run.finished()) out.push_back(&run);
    }
    std::sort(out.begin(), out.end(), [](const RunRecord* a, const RunRecord* b) { return a->started < b->started; });
    return out;
}

const RunRecord& RunTracker::open(const RunSpec& spec) {
    RunRecord run;
    run.instance = spec.instance;
    run.job = spec.job;
    run.group = spec.group;
    run.trigger = spec.trigger;
    run.scheduled = spec.scheduled;
    run.started = wall_now();
    auto [it, inserted] = m_runs.emplace(spec.instance, std::move(run));
    if (!inserted) throw std::logic_error("run " + spec.instance + " opened twice");
    m_specs[spec.instance] = spec;
    store_run(it->second);
    JobStatus& status = m_status[spec.job];
    status.last_run = it->second.started;
    status.overlap = false;
    LogRecord record;
    record.type = LogRecordType::start;
    record.instance = spec.instance;
    record.time = it->second.started;
    m_observer.on_log(spec.job, record);
    m_observer.on_run_started(it->second);
    spdlog::info("[{}] run started ({})", spec.instance, to_string(spec.trigger));
    return it->second;
}

void RunTracker::restore(const StoredRun& stored, const RunSpec& spec) {
    if (m_runs.count(stored.instance) != 0) return;
    RunRecord run = to_run_record(stored);
    run.launching_done = true;  // what was not launched before the restart never will be
    std::vector<TargetKey> waiting;
    std::vector<std::pair<TargetKey, std::string>> verdict_notes;
    for (const StoredTarget& st : stored.targets) {
        TargetResult& t = run.targets.at(st.machine);
        if (m_impl->raw_store != nullptr) {
            auto out = m_impl->raw_store->output(stored.instance, st.machine);
            if (out) {
                t.output = std::move(*out);
            } else {
                spdlog::error("[{}] [{}] stored output unreadable: {}", stored.instance, st.machine, out.error().message);
            }
        }
        const TargetKey key{stored.instance, st.machine};
        if (t.state == TargetState::finished && t.spd_verdict) {
            // The live view shows a verdict's text after the output; a late wrapper takes it out again.
            const std::size_t bytes = t.output.size();
            t.output = stored_output_display(std::move(t.output), st);
            if (t.output.size() > bytes) verdict_notes.emplace_back(key, t.output.substr(bytes));
        }
        if (t.state != TargetState::finished) {
            waiting.push_back(key);
            m_impl->restored_seq[key] = st.last_seq.value_or(-1);
            if (m_impl->store) m_impl->store->restored(key, st.last_seq);
        }
    }
    auto& rec = m_runs.emplace(stored.instance, std::move(run)).first->second;
    m_specs[stored.instance] = spec;
    m_status[rec.job].last_run = rec.started;
    for (auto& [key, note] : verdict_notes) {
        auto& timers = m_impl->timers[key];
        timers = std::make_unique<TargetTimers>(m_io);
        timers->verdict_note = std::move(note);
        timers->verdict_at = Clock::now();
    }
    const auto now_wall = wall_now();
    for (const TargetKey& key : waiting) {
        auto& timers = m_impl->timers[key];
        timers = std::make_unique<TargetTimers>(m_io);
        m_impl->awaiting_wrapper.insert(key);
        if (spec.timeout.count() > 0) {
            const TargetResult& t = rec.targets.at(key.machine);
            const auto due = t.starttime + std::chrono::duration_cast<std::chrono::microseconds>(spec.timeout) +
                             std::chrono::duration_cast<std::chrono::microseconds>(m_options.timeout_grace);
            arm_deadline(key, std::max(Clock::duration::zero(),
                                       std::chrono::duration_cast<Clock::duration>(due - now_wall)));
        }
        m_impl->monitor.track(monitor_key(key), Clock::now(),
                              std::chrono::duration_cast<Clock::duration>(spec.heartbeat_timeout));
    }
    arm_heartbeat_timer();
    spdlog::warn("[{}] re-opened after a restart of spd: {} of {} target(s) wait for their wrapper (up to {} s)",
                 rec.instance, waiting.size(), rec.targets.size(), spec.heartbeat_timeout.count());
    maybe_finish_run(rec);  // every target had ended before the restart: only the run's end was missing
}

void RunTracker::log(const std::string& job, LogRecord record) {
    if (record.time == SysMicros{}) record.time = wall_now();
    m_observer.on_log(job, record);
}

void RunTracker::add_target(const std::string& instance, const std::string& machine, bool wrapper) {
    RunRecord* run = run_of(instance);
    if (run == nullptr || run->targets.count(machine) != 0) return;
    TargetResult& target = run->targets[machine];
    target.machine = machine;
    target.starttime = wall_now();
    LogRecord record;
    record.type = LogRecordType::machine_start;
    record.instance = instance;
    record.machine = machine;
    record.time = target.starttime;
    m_observer.on_log(run->job, record);
    store_target(*run, target);

    const TargetKey key{instance, machine};
    auto& timers = m_impl->timers[key];
    timers = std::make_unique<TargetTimers>(m_io);
    const RunSpec& spec = m_specs[instance];
    if (spec.timeout.count() > 0) {
        // Server-side deadline: the wrapper enforces `timeout` itself; spd steps in only when no
        // completion arrives by timeout + grace (PROTOCOL.md 5.2).
        arm_deadline(key, std::chrono::duration_cast<Clock::duration>(spec.timeout) + m_options.timeout_grace);
    }
    if (wrapper) {
        timers->startup.expires_after(m_options.startup_timeout);
        timers->startup.async_wait([this, key](const boost::system::error_code& ec) {
            if (ec) return;
            RunRecord* r = nullptr;
            TargetResult* t = target_of(key, &r);
            if (t == nullptr || t->state == TargetState::started || t->state == TargetState::finished) return;
            spdlog::warn("[{}] [{}] wrapper did not start within {} s: 254", key.instance, key.machine,
                         seconds_of(m_options.startup_timeout));
            verdict(*r, *t, ExitCodeMapper::code(Outcome::never_started),
                    "Wrapper failed to connect within " + std::to_string(seconds_of(m_options.startup_timeout)) +
                        "s (no response from Salt or wrapper)");
        });
    }
}

void RunTracker::arm_deadline(const TargetKey& key, Clock::duration after) {
    auto& timers = m_impl->timers[key];
    if (!timers) timers = std::make_unique<TargetTimers>(m_io);
    timers->deadline.expires_after(after);
    timers->deadline.async_wait([this, key](const boost::system::error_code& ec) {
        if (ec) return;
        RunRecord* r = nullptr;
        TargetResult* t = target_of(key, &r);
        if (t == nullptr || t->state == TargetState::finished) return;
        spdlog::warn("[{}] [{}] no completion by timeout + grace: 124", key.instance, key.machine);
        verdict(*r, *t, ExitCodeMapper::code(Outcome::timeout), "\n[SALTPETER ERROR: Job exceeded timeout]\n");
    });
}

void RunTracker::mark_launched(const std::string& instance, const std::string& machine) {
    RunRecord* run = nullptr;
    TargetResult* target = target_of({instance, machine}, &run);
    if (target != nullptr && target->state == TargetState::pending) {
        target->state = TargetState::launched;
        store_target(*run, *target);
    }
}

void RunTracker::set_result(const std::string& instance, const std::string& machine, int code,
                            const std::string& output, bool spd_verdict) {
    RunRecord* run = nullptr;
    TargetResult* target = target_of({instance, machine}, &run);
    if (target == nullptr || target->state == TargetState::finished) return;
    if (spd_verdict) {
        verdict(*run, *target, code, output);
        return;
    }
    flush_held_output(*run, *target);
    target->output += output;
    if (!output.empty()) store_output({instance, machine}, std::nullopt, output, {});
    target->retcode = code;
    target->spd_verdict = false;
    finish_target(*run, *target);
}

void RunTracker::append_output(const std::string& instance, const std::string& machine, const std::string& data) {
    RunRecord* run = nullptr;
    TargetResult* target = target_of({instance, machine}, &run);
    if (target == nullptr) return;
    add_output(*run, *target, data);
    store_output({instance, machine}, std::nullopt, data, {});
    m_observer.on_output(*run, *target, data);
}

// The output in memory only grows (the UI and spctl follow it by position), so the cut keeps the
// first output_max_bytes, then holds the newest part back and appends it when the target ends.
// The held part is trimmed when it reaches twice its size: amortised O(1) per byte, and at most
// 2 x output_max_bytes per target in memory however much the command prints.
void RunTracker::add_output(const RunRecord& run, TargetResult& target, std::string_view data) {
    target.output_bytes += data.size();
    const std::uint64_t limit = m_options.output_max_bytes;
    const TargetKey key{run.instance, target.machine};
    auto held = m_impl->tails.find(key);
    if (limit == 0 || (held == m_impl->tails.end() && target.output.size() + data.size() <= limit)) {
        target.output.append(data);
        return;
    }
    if (held == m_impl->tails.end()) {
        std::size_t take = target.output.size() < limit ? static_cast<std::size_t>(limit) - target.output.size() : 0;
        // Never split a UTF-8 sequence: back off to the start of the character.
        while (take > 0 && take < data.size() && (static_cast<unsigned char>(data[take]) & 0xC0u) == 0x80u) --take;
        target.output.append(data.substr(0, take));
        target.output += "\n[... saltpeter: output_max_bytes (" + std::to_string(limit) +
                         ") reached; the middle is cut and the end follows when this target finishes ...]\n";
        data.remove_prefix(take);
        held = m_impl->tails.emplace(key, Impl::HeldTail{}).first;
    }
    auto& tail = held->second;
    tail.data.append(data);
    const std::size_t keep = static_cast<std::size_t>(limit / 2);
    if (tail.data.size() > 2 * keep) {
        const std::size_t drop = tail.data.size() - keep;
        tail.data.erase(0, drop);
        tail.cut += drop;
    }
}

void RunTracker::flush_held_output(const RunRecord& run, TargetResult& target) {
    auto held = m_impl->tails.find(TargetKey{run.instance, target.machine});
    if (held == m_impl->tails.end()) return;
    auto& tail = held->second;
    const std::size_t keep = static_cast<std::size_t>(m_options.output_max_bytes / 2);
    std::size_t start = tail.data.size() > keep ? tail.data.size() - keep : 0;
    while (start < tail.data.size() && (static_cast<unsigned char>(tail.data[start]) & 0xC0u) == 0x80u) ++start;
    const std::uint64_t cut = tail.cut + start;
    if (cut > 0) {
        target.output += "[... " + std::to_string(cut) + " bytes cut by saltpeter (output_max_bytes) ...]\n";
        target.notes.push_back(std::to_string(cut) + " bytes of output cut (output_max_bytes " +
                               std::to_string(m_options.output_max_bytes) + ")");
    }
    target.output.append(tail.data, start, std::string::npos);
    m_impl->tails.erase(held);
}

void RunTracker::launching_done(const std::string& instance) {
    RunRecord* run = run_of(instance);
    if (run == nullptr) return;
    run->launching_done = true;
    maybe_finish_run(*run);
}

// A verdict of spd's own: the code, the note appended to the output (1.11's texts), and the
// target is finished. It stays replaceable: late data from the wrapper undoes it (recover()).
void RunTracker::verdict(RunRecord& run, TargetResult& target, int code, const std::string& note) {
    const TargetKey key{run.instance, target.machine};
    auto it = m_impl->timers.find(key);
    if (it != m_impl->timers.end()) {
        it->second->verdict_note = note;
        it->second->verdict_at = Clock::now();
    }
    flush_held_output(run, target);
    target.output += note;
    target.retcode = code;
    target.spd_verdict = true;
    // The store keeps the command's bytes only; the verdict text lives in the notes (last entry).
    target.notes.push_back(trimmed(note));
    finish_target(run, target);
}

void RunTracker::finish_target(RunRecord& run, TargetResult& target, std::function<void()> stored) {
    const TargetKey key{run.instance, target.machine};
    flush_held_output(run, target);
    target.state = TargetState::finished;
    target.endtime = wall_now();
    m_impl->monitor.forget(monitor_key(key));
    auto it = m_impl->timers.find(key);
    if (it != m_impl->timers.end()) {
        it->second->cancel_all();
        it->second->killing = false;
    }
    LogRecord record;
    record.type = LogRecordType::machine_result;
    record.instance = run.instance;
    record.machine = target.machine;
    record.code = target.retcode.value_or(-1);
    record.out = target.output;
    record.time = *target.endtime;
    m_observer.on_log(run.job, record);
    store_target(run, target, std::move(stored));
    m_observer.on_target_finished(run, target);
    spdlog::info("[{}] [{}] finished with {} ({})", run.instance, target.machine, record.code,
                 ExitCodeMapper::meaning(record.code));
    maybe_finish_run(run);
}

void RunTracker::maybe_finish_run(RunRecord& run) {
    if (run.finished() || !run.launching_done) return;
    for (const auto& [m, t] : run.targets) {
        if (t.state != TargetState::finished) return;
    }
    run.ended = wall_now();
    if (m_impl->store) m_impl->store->finish(run.instance, *run.ended, run_status(run));
    JobStatus& status = m_status[run.job];
    status.last_success = run.success();
    status.last_failed_count = run.failed();
    status.last_total_count = run.total();
    LogRecord record;
    record.type = LogRecordType::end;
    record.instance = run.instance;
    record.code = run.success() ? 0 : 1;
    record.out = "Completed: " + std::to_string(run.total() - run.failed()) + "/" + std::to_string(run.total()) +
                 " targets successful";
    record.time = *run.ended;
    m_observer.on_log(run.job, record);
    m_observer.on_run_finished(run);
    spdlog::info("[{}] run finished: {}", run.instance, record.out);
    evict_old_runs(run.job);
}

void RunTracker::evict_old_runs(const std::string& job) {
    std::vector<std::pair<SysMicros, std::string>> finished;
    for (const auto& [instance, run] : m_runs) {
        if (run.job == job && run.finished()) finished.emplace_back(run.started, instance);
    }
    if (finished.size() <= m_options.finished_runs_kept) return;
    std::sort(finished.begin(), finished.end());
    for (std::size_t i = 0; i + m_options.finished_runs_kept < finished.size(); ++i) {
        const std::string& instance = finished[i].second;
        for (const auto& [machine, t] : m_runs[instance].targets) {
            const TargetKey key{instance, machine};
            if (m_hub != nullptr) m_hub->forget(key);
            m_impl->timers.erase(key);
            m_impl->tails.erase(key);
            m_impl->restored_seq.erase(key);
            m_impl->awaiting_wrapper.erase(key);
            if (m_impl->store) m_impl->store->forget(key);
        }
        m_runs.erase(instance);
        m_specs.erase(instance);
    }
}

// Late data from a wrapper after spd's verdict: the real outcome replaces the verdict, the note
// text is taken out of the output again, and the gap is remembered in the notes.
void RunTracker::recover(RunRecord& run, TargetResult& target) {
    const TargetKey key{run.instance, target.machine};
    auto& timers = m_impl->timers[key];
    if (!timers) timers = std::make_unique<TargetTimers>(m_io);
    const std::string& note = timers->verdict_note;
    if (!note.empty() && target.output.size() >= note.size() &&
        target.output.compare(target.output.size() - note.size(), note.size(), note) == 0) {
        target.output.resize(target.output.size() - note.size());
    }
    const auto gap = std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - timers->verdict_at);
    target.notes.push_back("verdict " + std::to_string(target.retcode.value_or(-1)) + " withdrawn: the wrapper reported again " +
                           std::to_string(gap.count()) + " s later");
    spdlog::warn("[{}] [{}] wrapper came back after verdict {}; waiting for its real result", run.instance,
                 target.machine, target.retcode.value_or(-1));
    timers->verdict_note.clear();
    target.retcode.reset();
    target.endtime.reset();
    target.spd_verdict = false;
    target.state = TargetState::started;
    store_target(run, target);
    if (run.finished()) {
        run.ended.reset();
        store_run(run);
    }
    m_impl->monitor.track(monitor_key(key), Clock::now(),
                          std::chrono::duration_cast<Clock::duration>(m_specs[run.instance].heartbeat_timeout));
    arm_heartbeat_timer();
}

Admission RunTracker::admit(const TargetKey& key) {
    Admission a;
    RunRecord* run = run_of(key.instance);
    if (run == nullptr) return a;  // unknown
    a.job_name = run->job;
    auto it = run->targets.find(key.machine);
    if (it == run->targets.end()) {
        a.verdict = Admission::Verdict::not_a_target;
        return a;
    }
    a.verdict = Admission::Verdict::accept;
    a.completed = it->second.state == TargetState::finished && !it->second.spd_verdict;
    auto restored = m_impl->restored_seq.find(key);
    if (restored != m_impl->restored_seq.end()) a.last_seq = restored->second;
    return a;
}

void RunTracker::on_activity(const TargetKey& key) {
    RunRecord* run = nullptr;
    TargetResult* target = target_of(key, &run);
    if (target == nullptr) return;
    target->last_heartbeat = wall_now();
    if (m_impl->awaiting_wrapper.erase(key) > 0) {
        target->notes.push_back("re-adopted after an spd restart");
        spdlog::info("[{}] [{}] wrapper re-adopted after the restart", key.instance, key.machine);
        store_target(*run, *target);
    }
    if (target->state == TargetState::finished && target->spd_verdict) {
        recover(*run, *target);
        return;
    }
    m_impl->monitor.beat(monitor_key(key), Clock::now());
}

void RunTracker::on_start(const TargetKey& key, const protocol::Start& start) {
    RunRecord* run = nullptr;
    TargetResult* target = target_of(key, &run);
    if (target == nullptr) return;
    target->wrapper_version = start.version;
    if (target->state == TargetState::started || target->state == TargetState::finished) return;  // a repeated start
    target->state = TargetState::started;
    store_target(*run, *target);
    auto& timers = m_impl->timers[key];
    if (timers) timers->startup.cancel();
    m_impl->monitor.track(monitor_key(key), Clock::now(),
                          std::chrono::duration_cast<Clock::duration>(m_specs[key.instance].heartbeat_timeout));
    arm_heartbeat_timer();
    m_observer.on_target_started(*run, *target);
    spdlog::info("[{}] [{}] wrapper {} started (pid {})", key.instance, key.machine, start.version, start.pid);
    if (run->kill_requested) send_kill(key);
}

void RunTracker::on_output(const TargetKey& key, const protocol::Output& output, std::function<void()> stored) {
    RunRecord* run = nullptr;
    TargetResult* target = target_of(key, &run);
    if (target == nullptr) {
        stored();
        return;
    }
    add_output(*run, *target, output.data);
    store_output(key, output.seq, output.data, std::move(stored));
    m_observer.on_output(*run, *target, output.data);
}

void RunTracker::on_complete(const TargetKey& key, const protocol::Complete& complete, std::function<void()> stored) {
    RunRecord* run = nullptr;
    TargetResult* target = target_of(key, &run);
    if (target != nullptr && !(target->state == TargetState::finished && !target->spd_verdict)) {
        if (target->state == TargetState::finished) recover(*run, *target);
        target->retcode = complete.retcode;
        target->spd_verdict = false;
        finish_target(*run, *target, std::move(stored));
        return;
    }
    stored();
}

void RunTracker::on_wrapper_error(const TargetKey& key, const protocol::WrapperError& error) {
    RunRecord* run = nullptr;
    TargetResult* target = target_of(key, &run);
    if (target == nullptr || (target->state == TargetState::finished && !target->spd_verdict)) return;
    if (target->state == TargetState::finished) recover(*run, *target);
    target->output += "Wrapper error: " + error.error;
    target->retcode = ExitCodeMapper::code(Outcome::wrapper_error);
    finish_target(*run, *target);
}

void RunTracker::arm_heartbeat_timer() {
    auto next = m_impl->monitor.next_deadline();
    if (!next) return;
    // expire() takes deadlines strictly before `now`, so wake a millisecond after the deadline.
    const auto wake = *next + std::chrono::milliseconds(1);
    if (m_impl->heartbeat_armed_for && *m_impl->heartbeat_armed_for <= wake) return;
    m_impl->heartbeat_armed_for = wake;
    m_impl->heartbeat_timer.expires_at(wake);
    m_impl->heartbeat_timer.async_wait([this](const boost::system::error_code& ec) {
        if (ec) return;
        m_impl->heartbeat_armed_for.reset();
        on_heartbeat_timer();
    });
}

void RunTracker::on_heartbeat_timer() {
    for (const auto& expired : m_impl->monitor.expire(Clock::now())) {
        const TargetKey key = key_from_monitor(expired.key);
        RunRecord* run = nullptr;
        TargetResult* target = target_of(key, &run);
        if (target == nullptr || target->state == TargetState::finished) continue;
        const auto silence = std::chrono::duration_cast<std::chrono::seconds>(expired.silence).count();
        if (m_impl->awaiting_wrapper.erase(key) > 0) {
            spdlog::warn("[{}] [{}] wrapper did not come back within {} s of the restart: 253", key.instance,
                         key.machine, silence);
            verdict(*run, *target, ExitCodeMapper::code(Outcome::heartbeat_lost),
                    "\n[SALTPETER ERROR: spd restarted and the wrapper did not reconnect within " +
                        std::to_string(silence) + " seconds]\n");
            continue;
        }
        spdlog::warn("[{}] [{}] no heartbeat for {} s: 253", key.instance, key.machine, silence);
        verdict(*run, *target, ExitCodeMapper::code(Outcome::heartbeat_lost),
                "\n[SALTPETER ERROR: Job lost connection - no heartbeat for " + std::to_string(silence) + " seconds]\n");
    }
    arm_heartbeat_timer();
}

bool RunTracker::kill(const std::string& instance, const std::optional<std::string>& machine) {
    RunRecord* run = run_of(instance);
    if (run == nullptr || run->finished()) return false;
    if (!machine) run->kill_requested = true;
    bool any = false;
    for (auto& [m, target] : run->targets) {
        if (machine && m != *machine) continue;
        if (target.state == TargetState::finished) continue;
        any = true;
        const TargetKey key{instance, m};
        auto& timers = m_impl->timers[key];
        if (!timers) timers = std::make_unique<TargetTimers>(m_io);
        if (timers->killing) continue;
        timers->killing = true;
        spdlog::info("[{}] [{}] kill requested", instance, m);
        send_kill(key);
        timers->kill_grace.expires_after(m_options.kill_grace);
        timers->kill_grace.async_wait([this, key](const boost::system::error_code& ec) {
            if (ec) return;
            RunRecord* r = nullptr;
            TargetResult* t = target_of(key, &r);
            if (t == nullptr || t->state == TargetState::finished) return;
            spdlog::warn("[{}] [{}] no completion within the kill grace: 143", key.instance, key.machine);
            verdict(*r, *t, ExitCodeMapper::code(Outcome::killed),
                    "\n[Job terminated by user request - grace period expired after " +
                        std::to_string(seconds_of(m_options.kill_grace)) + "s]\n");
        });
    }
    return any;
}

// `kill` goes out now and again every kill_resend until the target completes: a wrapper that
// was reconnecting or had not connected yet still gets it (PROTOCOL.md 5.2).
void RunTracker::send_kill(const TargetKey& key) {
    RunRecord* run = nullptr;
    TargetResult* target = target_of(key, &run);
    if (target == nullptr || target->state == TargetState::finished) return;
    if (m_hub != nullptr) m_hub->send_kill(key, run->job);
    auto& timers = m_impl->timers[key];
    if (!timers || !timers->killing) return;
    timers->kill_resend.expires_after(m_options.kill_resend);
    timers->kill_resend.async_wait([this, key](const boost::system::error_code& ec) {
        if (!ec) send_kill(key);
    });
}

}  // namespace saltpeter
