// The in-memory RunStore: the same contract as the SQLite one (tests/unit/test_run_store.cpp runs
// both), for tests and embedders that do not want history on disk. Writes apply at once under a
// mutex; their completions are still posted to the io_context, so callers see the same ordering
// and back-pressure as with SQLite.

#include <algorithm>
#include <mutex>

#include <boost/asio/post.hpp>

#include "store/run_store_detail.hpp"
#include "saltpeter/run_store.hpp"

namespace saltpeter {
namespace {

struct MemTarget {
    StoredTarget meta;
    std::string head;
    std::string tail;  ///< may hold more than the tail limit; only its last tail_limit bytes count
};

struct MemRun {
    StoredRun run;  ///< targets left empty; they live in `targets`
    std::map<std::string, MemTarget> targets;
};

class MemoryRunStore final : public RunStore {
public:
    MemoryRunStore(boost::asio::io_context& io, const RunStoreOptions& options)
        : m_io(io), m_options(options), m_gate(std::make_shared<detail::OutputGate>(io, options.queue_max_bytes)) {}

    void put_run(const StoredRun& run, Completion done) override {
        {
            std::lock_guard lock(m_mutex);
            auto& r = m_runs[run.instance];
            r.run = run;
            r.run.targets.clear();
        }
        complete(std::move(done), Ok{}, "put_run", 0);
    }

    void finish_run(const std::string& instance, SysMicros ended, RunStatus status, Completion done) override {
        Status result = Ok{};
        {
            std::lock_guard lock(m_mutex);
            auto it = m_runs.find(instance);
            if (it == m_runs.end()) {
                result = Error{"finish_run: unknown run " + instance, "instance"};
            } else {
                it->second.run.ended = ended;
                it->second.run.status = status;
            }
        }
        complete(std::move(done), std::move(result), "finish_run", 0);
    }

    void put_target(const StoredTarget& target, Completion done) override {
        Status result = Ok{};
        {
            std::lock_guard lock(m_mutex);
            auto it = m_runs.find(target.instance);
            if (it == m_runs.end()) {
                result = Error{"put_target: unknown run " + target.instance + " (machine " + target.machine + ")",
                               "instance"};
            } else {
                auto& t = it->second.targets[target.machine];
                const auto last_seq = t.meta.last_seq;
                const auto bytes = t.meta.output_bytes;
                t.meta = target;
                t.meta.last_seq = last_seq;
                t.meta.output_bytes = bytes;
                t.meta.cut_bytes = 0;  // computed on read
            }
        }
        complete(std::move(done), std::move(result), "put_target", 0);
    }

    bool try_append_output(const std::string& instance, const std::string& machine, std::optional<std::int64_t> seq,
                           std::string data, Completion done) override {
        const std::uint64_t n = data.size();
        if (!m_gate->try_reserve(n)) return false;
        Status result = Ok{};
        {
            std::lock_guard lock(m_mutex);
            MemTarget* t = find_target(instance, machine);
            if (t == nullptr) {
                result = Error{"append_output: unknown target " + instance + " machine " + machine, "machine"};
            } else if (!(seq && t->meta.last_seq && *seq <= *t->meta.last_seq)) {
                append(*t, data);
                if (seq) t->meta.last_seq = seq;
            }
        }
        complete(std::move(done), std::move(result), "append_output", n);
        return true;
    }

    void when_writable(std::function<void()> ready) override { m_gate->when_writable(std::move(ready)); }

    // Writes to memory only fail for unknown targets, and nothing else ever will for them.
    void clear_target_error(const std::string& /*instance*/, const std::string& /*machine*/, Completion done) override {
        complete(std::move(done), Ok{}, "clear_target_error", 0);
    }

    void record_decision(const SchedulerDecision& decision, Completion done) override {
        {
            std::lock_guard lock(m_mutex);
            m_decisions.push_back(decision);
        }
        complete(std::move(done), Ok{}, "record_decision", 0);
    }

    void set_last_fire(const std::string& job, SysSeconds fire, Completion done) override {
        {
            std::lock_guard lock(m_mutex);
            m_last_fire[job] = fire;
        }
        complete(std::move(done), Ok{}, "set_last_fire", 0);
    }

    void prune(SysMicros now, Completion done) override {
        {
            std::lock_guard lock(m_mutex);
            if (m_options.history_max_days > 0) {
                const SysMicros cutoff = now - std::chrono::hours(24) * m_options.history_max_days;
                for (auto it = m_runs.begin(); it != m_runs.end();) {
                    if (it->second.run.ended && *it->second.run.ended < cutoff) {
                        it = m_runs.erase(it);
                    } else {
                        ++it;
                    }
                }
                m_decisions.erase(std::remove_if(m_decisions.begin(), m_decisions.end(),
                                                 [&](const SchedulerDecision& d) { return d.at < cutoff; }),
                                  m_decisions.end());
            }
            if (m_options.history_max_runs > 0) {
                std::map<std::string, std::vector<const StoredRun*>> finished;
                for (const auto& [instance, r] : m_runs) {
                    if (r.run.ended) finished[r.run.job].push_back(&r.run);
                }
                std::vector<std::string> doomed;
                for (auto& [job, list] : finished) {
                    std::sort(list.begin(), list.end(), newer_first);
                    for (std::size_t i = m_options.history_max_runs; i < list.size(); ++i) {
                        doomed.push_back(list[i]->instance);
                    }
                }
                for (const auto& instance : doomed) m_runs.erase(instance);
                std::map<std::string, std::size_t> kept;
                std::vector<SchedulerDecision> decisions;
                for (auto it = m_decisions.rbegin(); it != m_decisions.rend(); ++it) {
                    if (++kept[it->job] <= m_options.history_max_runs) decisions.push_back(*it);
                }
                std::reverse(decisions.begin(), decisions.end());
                m_decisions = std::move(decisions);
            }
        }
        complete(std::move(done), Ok{}, "prune", 0);
    }

    void flush(Completion done) override { complete(std::move(done), Ok{}, "flush", 0); }

    std::uint64_t queued_bytes() const override { return m_gate->queued(); }

    Result<std::vector<StoredRun>> unfinished_runs() override {
        std::lock_guard lock(m_mutex);
        std::vector<StoredRun> out;
        for (const auto& [instance, r] : m_runs) {
            if (!r.run.ended) out.push_back(with_targets(r));
        }
        std::sort(out.begin(), out.end(), [](const StoredRun& a, const StoredRun& b) { return newer_first(&b, &a); });
        return out;
    }

    Result<std::map<std::string, SysSeconds>> last_fire_times() override {
        std::lock_guard lock(m_mutex);
        return m_last_fire;
    }

    Result<std::optional<StoredRun>> run(const std::string& instance) override {
        std::lock_guard lock(m_mutex);
        auto it = m_runs.find(instance);
        if (it == m_runs.end()) return std::optional<StoredRun>{};
        return std::optional<StoredRun>{with_targets(it->second)};
    }

    Result<std::vector<StoredRun>> runs(const std::string& job, std::size_t limit) override {
        std::lock_guard lock(m_mutex);
        std::vector<const MemRun*> list;
        for (const auto& [instance, r] : m_runs) {
            if (r.run.job == job) list.push_back(&r);
        }
        std::sort(list.begin(), list.end(), [](const MemRun* a, const MemRun* b) { return newer_first(&a->run, &b->run); });
        std::vector<StoredRun> out;
        for (std::size_t i = 0; i < list.size() && i < limit; ++i) out.push_back(with_targets(*list[i]));
        return out;
    }

    Result<std::vector<StoredRun>> runs_between(SysMicros start, SysMicros end, std::size_t limit) override {
        std::lock_guard lock(m_mutex);
        std::vector<const MemRun*> list;
        if (start > end) return std::vector<StoredRun>{};
        for (const auto& [instance, r] : m_runs) {
            if (r.run.started <= end && (!r.run.ended || *r.run.ended >= start)) list.push_back(&r);
        }
        std::sort(list.begin(), list.end(), [](const MemRun* a, const MemRun* b) { return newer_first(&a->run, &b->run); });
        std::vector<StoredRun> out;
        for (std::size_t i = 0; i < list.size() && i < limit; ++i) out.push_back(with_targets(*list[i]));
        return out;
    }

    Result<std::string> output(const std::string& instance, const std::string& machine) override {
        std::lock_guard lock(m_mutex);
        const MemTarget* t = find_target(instance, machine);
        if (t == nullptr) return Error{"output: unknown target " + instance + " machine " + machine, "machine"};
        const std::string_view tail = kept_tail(*t);
        const std::uint64_t cut = t->meta.output_bytes - t->head.size() - tail.size();
        std::string out = t->head;
        if (cut > 0) out += output_cut_marker(cut);
        out += tail;
        return out;
    }

    Result<std::vector<SchedulerDecision>> decisions(const std::string& job, std::size_t limit) override {
        std::lock_guard lock(m_mutex);
        std::vector<SchedulerDecision> out;
        for (auto it = m_decisions.rbegin(); it != m_decisions.rend() && out.size() < limit; ++it) {
            if (it->job == job) out.push_back(*it);
        }
        return out;
    }

private:
    static bool newer_first(const StoredRun* a, const StoredRun* b) {
        if (a->started != b->started) return a->started > b->started;
        return a->instance > b->instance;
    }

    MemTarget* find_target(const std::string& instance, const std::string& machine) {
        auto r = m_runs.find(instance);
        if (r == m_runs.end()) return nullptr;
        auto t = r->second.targets.find(machine);
        return t == r->second.targets.end() ? nullptr : &t->second;
    }

    std::string_view kept_tail(const MemTarget& t) const {
        if (m_options.output_max_bytes == 0) return t.tail;
        const std::size_t limit = detail::tail_limit(m_options.output_max_bytes);
        std::string_view tail = t.tail;
        return tail.size() > limit ? tail.substr(tail.size() - limit) : tail;
    }

    void append(MemTarget& t, std::string_view data) {
        t.meta.output_bytes += data.size();
        if (m_options.output_max_bytes == 0) {
            t.head.append(data);
            return;
        }
        const std::size_t head_limit = detail::head_limit(m_options.output_max_bytes);
        if (t.head.size() < head_limit) {
            const std::size_t take = std::min(head_limit - t.head.size(), data.size());
            t.head.append(data.substr(0, take));
            data.remove_prefix(take);
        }
        t.tail.append(data);
        // Trim only when twice the limit, so appends stay amortised O(chunk).
        const std::size_t tail_limit = detail::tail_limit(m_options.output_max_bytes);
        if (t.tail.size() > 2 * tail_limit) t.tail.erase(0, t.tail.size() - tail_limit);
    }

    StoredRun with_targets(const MemRun& r) const {
        StoredRun out = r.run;
        for (const auto& [machine, t] : r.targets) {
            StoredTarget meta = t.meta;
            meta.cut_bytes = meta.output_bytes - t.head.size() - kept_tail(t).size();
            out.targets.push_back(std::move(meta));
        }
        return out;
    }

    void complete(Completion done, Status status, const char* what, std::uint64_t gate_bytes) {
        boost::asio::post(m_io, [gate = m_gate, done = std::move(done), status = std::move(status), what, gate_bytes] {
            detail::call_completion(done, status, what);
            if (gate_bytes > 0) gate->release(gate_bytes);
        });
    }

    boost::asio::io_context& m_io;
    const RunStoreOptions m_options;
    std::shared_ptr<detail::OutputGate> m_gate;
    std::mutex m_mutex;
    std::map<std::string, MemRun> m_runs;
    std::vector<SchedulerDecision> m_decisions;
    std::map<std::string, SysSeconds> m_last_fire;
};

}  // namespace

std::unique_ptr<RunStore> make_memory_run_store(boost::asio::io_context& io, const RunStoreOptions& options) {
    return std::make_unique<MemoryRunStore>(io, options);
}

}  // namespace saltpeter
