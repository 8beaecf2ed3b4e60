#pragma once
// OrderedStoreWriter: the tracker's way into the RunStore.
// It writes to the RunStore in order and turns commits into acknowledgements. Every write of a target
// is kept until its completion says committed; a failed one stops the target's acknowledgements
// (the store refuses its later writes too, so nothing after a lost chunk is committed) and the
// kept writes are written again, in order, after a backoff. Writes the store refuses for
// back-pressure wait in one FIFO so that the order of all writes is kept.
// Io thread only.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>

#include "saltpeter/run_store.hpp"
#include "saltpeter/runs.hpp"

namespace saltpeter {

class OrderedStoreWriter {
public:
    /// `store` must outlive the writer. At destruction, writes a failing disk kept out are logged.
    OrderedStoreWriter(boost::asio::io_context& io, RunStore& store);
    ~OrderedStoreWriter();
    OrderedStoreWriter(const OrderedStoreWriter&) = delete;
    OrderedStoreWriter& operator=(const OrderedStoreWriter&) = delete;

    /// Where the current metadata of a target comes from when a target write is (re)tried
    /// (nullopt: the tracker no longer holds it).
    void set_snapshot(std::function<std::optional<StoredTarget>(const TargetKey&)> snapshot);
    /// Writes a run's own row.
    void run(const StoredRun& run);
    /// Writes a run's end.
    void finish(const std::string& instance, SysMicros ended, RunStatus status);
    /// Writes a target's metadata (from the snapshot); `stored` runs once it is committed.
    void target(const TargetKey& key, std::function<void()> stored);
    /// Writes a chunk of output; `stored` runs once it is committed, in the order of the writes.
    /// A seq not above the last one seen for the target is stored without a seq (a restarted
    /// numbering, not a resend).
    void output(const TargetKey& key, std::optional<std::int64_t> seq, std::string_view data,
                std::function<void()> stored);
    /// The last seq stored for a re-opened target.
    void restored(const TargetKey& key, std::optional<std::int64_t> last_seq);
    /// Drops the seq state of a target whose run is over.
    void forget(const TargetKey& key);
    /// Writes that failed so far (each is retried until it succeeds).
    std::uint64_t errors() const noexcept;

private:
    class Impl;
    std::unique_ptr<Impl> m_impl;
};

}  // namespace saltpeter
