// OrderedStoreWriter (ordered_writer.hpp).
#include "store/ordered_writer.hpp"

#include <spdlog/spdlog.h>

#include <deque>
#include <map>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

namespace saltpeter {

class OrderedStoreWriter::Impl {
public:
    Impl(boost::asio::io_context& io, RunStore& store) : m_io(io), m_store(store) {}
    ~Impl() {
        for (auto& [key, t] : m_targets) {
            if (t.retry) t.retry->cancel();
            // Never silent: what a failing disk kept out of the database when spd stops. The wrapper
            // was not told it was stored, so it still has it and resends it to the next spd.
            if (t.failed && !t.unacked.empty()) {
                spdlog::error("state database: {} write(s) of {} {} not stored at shutdown (never acknowledged)",
                              t.unacked.size(), key.instance, key.machine);
            }
        }
    }

    /// The current metadata of a target (null when the tracker no longer holds it).
    std::function<std::optional<StoredTarget>(const TargetKey&)> snapshot;

    void run(const StoredRun& run) {
        submit([this, run, done = completion("run " + run.instance)] {
            m_store.put_run(run, done);
            return true;
        });
    }
    void finish(const std::string& instance, SysMicros ended, RunStatus status) {
        submit([this, instance, ended, status, done = completion("run " + instance)] {
            m_store.finish_run(instance, ended, status, done);
            return true;
        });
    }
    void target(const TargetKey& key, std::function<void()> stored) {
        write(key, Write{false, std::nullopt, nullptr, std::move(stored)});
    }
    void output(const TargetKey& key, std::optional<std::int64_t> seq, std::string_view data,
                std::function<void()> stored) {
        // The hub passes each seq once per numbering epoch; a wrapper that restarts its numbering
        // (an original wrapper reconnecting with a fresh connect) sends new data under old numbers,
        // which the store would take for resends: such chunks are stored without a seq.
        if (seq) {
            auto [it, fresh] = m_last_seq.emplace(key, *seq);
            if (!fresh) {
                if (*seq <= it->second) {
                    seq.reset();
                } else {
                    it->second = *seq;
                }
            }
        }
        write(key, Write{true, seq, std::make_shared<const std::string>(data), std::move(stored)});
    }
    /// The last seq stored for a re-opened target.
    void restored(const TargetKey& key, std::optional<std::int64_t> last_seq) {
        if (last_seq) m_last_seq[key] = *last_seq;
    }
    void forget(const TargetKey& key) { m_last_seq.erase(key); }
    std::uint64_t errors() const noexcept { return m_errors; }

private:
    struct Write {
        bool is_output = false;
        std::optional<std::int64_t> seq;
        std::shared_ptr<const std::string> data;
        std::function<void()> stored;
    };
    struct TargetWrites {
        std::deque<Write> unacked;    // oldest first, until committed
        std::size_t outstanding = 0;  // handed to the store (or waiting in m_blocked), not completed
        bool failed = false;
        std::chrono::seconds backoff{1};
        std::unique_ptr<boost::asio::steady_timer> retry;
        bool retry_armed = false;
    };

    RunStore::Completion completion(std::string what) {
        return [this, alive = std::weak_ptr<char>(m_alive), what = std::move(what)](const Status& st) {
            if (alive.expired() || st) return;
            ++m_errors;
            spdlog::error("state database: cannot store {}: {}", what, st.error().message);
        };
    }

    void write(const TargetKey& key, Write w) {
        TargetWrites& t = m_targets[key];
        t.unacked.push_back(std::move(w));
        if (!t.failed) issue(key, t, t.unacked.back());
    }

    void issue(const TargetKey& key, TargetWrites& t, const Write& w) {
        ++t.outstanding;
        auto done = [this, alive = std::weak_ptr<char>(m_alive), key](const Status& st) {
            if (!alive.expired()) written(key, st);
        };
        if (w.is_output) {
            submit([this, key, seq = w.seq, data = w.data, done] {
                return m_store.try_append_output(key.instance, key.machine, seq, std::string(*data), done);
            });
        } else {
            submit([this, key, done] {
                auto meta = snapshot ? snapshot(key) : std::nullopt;
                if (meta) {
                    m_store.put_target(*meta, done);
                } else {
                    boost::asio::post(m_io, [done] { done(Ok{}); });  // the tracker forgot it: nothing to write
                }
                return true;
            });
        }
    }

    void written(const TargetKey& key, const Status& st) {
        auto it = m_targets.find(key);
        if (it == m_targets.end()) return;
        TargetWrites& t = it->second;
        if (t.outstanding > 0) --t.outstanding;
        if (st && !t.failed) {
            std::function<void()> stored;
            if (!t.unacked.empty()) {
                stored = std::move(t.unacked.front().stored);
                t.unacked.pop_front();
            }
            if (t.backoff != std::chrono::seconds(1)) {
                spdlog::info("state database: writes of {} {} stored again", key.instance, key.machine);
                t.backoff = std::chrono::seconds(1);
            }
            if (t.unacked.empty() && t.outstanding == 0 && !t.retry_armed) m_targets.erase(it);
            if (stored) stored();
            return;
        }
        if (!st && !t.failed) {
            t.failed = true;
            ++m_errors;
            spdlog::error("state database: cannot store output/result of {} {}: {}; not acknowledging it to the "
                          "wrapper, writing it again in {} s",
                          key.instance, key.machine, st.error().message, t.backoff.count());
        }
        if (t.failed && t.outstanding == 0) arm_retry(key, t);
    }

    void arm_retry(const TargetKey& key, TargetWrites& t) {
        if (t.retry_armed) return;
        t.retry_armed = true;
        if (!t.retry) t.retry = std::make_unique<boost::asio::steady_timer>(m_io);
        t.retry->expires_after(t.backoff);
        t.backoff = std::min(t.backoff * 2, std::chrono::seconds(30));
        t.retry->async_wait([this, key](const boost::system::error_code& ec) {
            if (ec) return;
            auto it = m_targets.find(key);
            if (it == m_targets.end()) return;
            TargetWrites& tw = it->second;
            tw.retry_armed = false;
            tw.failed = false;
            submit([this, key] {
                m_store.clear_target_error(key.instance, key.machine);
                return true;
            });
            for (const Write& w : tw.unacked) issue(key, tw, w);
        });
    }

    // Keeps the order of every write: once one is refused for back-pressure, later ones queue behind it.
    void submit(std::function<bool()> attempt) {
        if (m_blocked.empty() && attempt()) return;
        m_blocked.push_back(std::move(attempt));
        wait_writable();
    }
    void wait_writable() {
        if (m_waiting) return;
        m_waiting = true;
        m_store.when_writable([this, alive = std::weak_ptr<char>(m_alive)] {
            if (alive.expired()) return;
            m_waiting = false;
            while (!m_blocked.empty()) {
                if (!m_blocked.front()()) {
                    wait_writable();
                    return;
                }
                m_blocked.pop_front();
            }
        });
    }

    boost::asio::io_context& m_io;
    RunStore& m_store;
    std::shared_ptr<char> m_alive = std::make_shared<char>(0);
    std::map<TargetKey, TargetWrites> m_targets;
    std::map<TargetKey, std::int64_t> m_last_seq;
    std::deque<std::function<bool()>> m_blocked;
    bool m_waiting = false;
    std::uint64_t m_errors = 0;
};


OrderedStoreWriter::OrderedStoreWriter(boost::asio::io_context& io, RunStore& store)
    : m_impl(std::make_unique<Impl>(io, store)) {}
OrderedStoreWriter::~OrderedStoreWriter() = default;
void OrderedStoreWriter::set_snapshot(std::function<std::optional<StoredTarget>(const TargetKey&)> snapshot) {
    m_impl->snapshot = std::move(snapshot);
}
void OrderedStoreWriter::run(const StoredRun& run) { m_impl->run(run); }
void OrderedStoreWriter::finish(const std::string& instance, SysMicros ended, RunStatus status) {
    m_impl->finish(instance, ended, status);
}
void OrderedStoreWriter::target(const TargetKey& key, std::function<void()> stored) {
    m_impl->target(key, std::move(stored));
}
void OrderedStoreWriter::output(const TargetKey& key, std::optional<std::int64_t> seq, std::string_view data,
                                std::function<void()> stored) {
    m_impl->output(key, seq, data, std::move(stored));
}
void OrderedStoreWriter::restored(const TargetKey& key, std::optional<std::int64_t> last_seq) {
    m_impl->restored(key, last_seq);
}
void OrderedStoreWriter::forget(const TargetKey& key) { m_impl->forget(key); }
std::uint64_t OrderedStoreWriter::errors() const noexcept { return m_impl->errors(); }

}  // namespace saltpeter
