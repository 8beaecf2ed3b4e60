#pragma once
// Pieces shared by the SQLite and the in-memory RunStore: the byte-bounded output gate
// (back-pressure) and the delivery of completions on the io thread.

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "saltpeter/run_store.hpp"

namespace saltpeter::detail {

/// Counts output bytes from try_append_output until their completion has run on the io thread.
/// Shared (shared_ptr) with the posted completions, so a completion that runs after the store is
/// gone still finds it.
class OutputGate {
public:
    OutputGate(boost::asio::io_context& io, std::uint64_t max_bytes) : m_io(io), m_max(max_bytes) {}

    /// Reserves `n` bytes unless the gate already holds the limit (so it may overshoot by one chunk).
    bool try_reserve(std::uint64_t n);
    /// Gives `n` bytes back (io thread) and wakes the waiters once the gate is half empty.
    void release(std::uint64_t n);
    void when_writable(std::function<void()> ready);
    std::uint64_t queued() const;

private:
    boost::asio::io_context& m_io;
    const std::uint64_t m_max;
    mutable std::mutex m_mutex;
    std::uint64_t m_queued = 0;
    std::vector<std::function<void()>> m_waiters;
};

/// Runs a user callback, logging instead of letting an exception escape.
void call_completion(const RunStore::Completion& done, const Status& status, const char* what) noexcept;
void call_ready(const std::function<void()>& ready) noexcept;

/// Head and tail sizes for a cut output: the head gets the smaller half.
inline std::uint64_t head_limit(std::uint64_t max) { return max / 2; }
inline std::uint64_t tail_limit(std::uint64_t max) { return max - max / 2; }

}  // namespace saltpeter::detail
