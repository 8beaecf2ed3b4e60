#pragma once
// Scheduler: one timer around the pure Schedule. It wakes at the next fire time (re-checking the
// wall clock at least every minute, so clock steps and suspends are noticed), takes what is due
// and hands each firing to the callback. Io thread only.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "saltpeter/core/schedule.hpp"

namespace saltpeter {

class Scheduler {
public:
    using FireCallback = std::function<void(const Schedule::Due&)>;
    Scheduler(boost::asio::io_context& io, FireCallback on_fire);
    ~Scheduler();
    Scheduler(const Scheduler&) = delete;
    Scheduler& operator=(const Scheduler&) = delete;

    /// Replaces the jobs (see Schedule::set_jobs) and re-arms the timer.
    void set_jobs(std::vector<Schedule::Entry> entries);
    /// Pending fire time of a job.
    std::optional<SysSeconds> next_run(const std::string& job) const;
    /// Cancels the timer; no callback afterwards. Idempotent.
    void stop();

private:
    void arm();
    void on_timer();

    struct Impl;
    std::unique_ptr<Impl> m_impl;
};

}  // namespace saltpeter
