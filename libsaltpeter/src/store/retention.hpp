#pragma once
// Retention: applies history_max_runs and history_max_days to the RunStore at start and then
// every hour (the pruning runs on the store's writer, never on the io thread). Io thread only.

#include <memory>

#include <boost/asio/io_context.hpp>

namespace saltpeter {

class RunStore;

class Retention {
public:
    /// `store` must outlive the retention (or its stop()).
    Retention(boost::asio::io_context& io, RunStore& store);
    ~Retention();
    Retention(const Retention&) = delete;
    Retention& operator=(const Retention&) = delete;

    /// Prunes now and arms the hourly timer.
    void start();
    /// Cancels the timer. Idempotent.
    void stop();

private:
    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

}  // namespace saltpeter
