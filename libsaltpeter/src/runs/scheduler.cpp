#include "saltpeter/runs/scheduler.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/steady_timer.hpp>

namespace saltpeter {

namespace {
// A steady timer cannot see wall-clock steps; waking at least this often bounds how late a
// firing can be after the clock jumps.
constexpr std::chrono::seconds k_max_sleep{60};
}  // namespace

struct Scheduler::Impl {
    Impl(boost::asio::io_context& io, FireCallback cb) : timer(io), on_fire(std::move(cb)) {}
    boost::asio::steady_timer timer;
    FireCallback on_fire;
    Schedule schedule;
    bool stopped = false;
};

Scheduler::Scheduler(boost::asio::io_context& io, FireCallback on_fire)
    : m_impl(std::make_unique<Impl>(io, std::move(on_fire))) {}

Scheduler::~Scheduler() { stop(); }

void Scheduler::set_jobs(std::vector<Schedule::Entry> entries) {
    const auto now = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
    m_impl->schedule.set_jobs(std::move(entries), now);
    arm();
}

std::optional<SysSeconds> Scheduler::next_run(const std::string& job) const { return m_impl->schedule.next_run(job); }

void Scheduler::stop() {
    m_impl->stopped = true;
    m_impl->timer.cancel();
}

void Scheduler::arm() {
    if (m_impl->stopped) return;
    auto next = m_impl->schedule.next_wake();
    if (!next) {
        m_impl->timer.cancel();
        return;
    }
    const auto now = std::chrono::system_clock::now();
    auto wait = std::chrono::duration_cast<std::chrono::steady_clock::duration>(*next - now);
    if (wait < std::chrono::steady_clock::duration::zero()) wait = std::chrono::steady_clock::duration::zero();
    if (wait > k_max_sleep) wait = k_max_sleep;
    m_impl->timer.expires_after(wait);
    m_impl->timer.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) on_timer();
    });
}

void Scheduler::on_timer() {
    if (m_impl->stopped) return;
    const auto now = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
    for (const auto& due : m_impl->schedule.take_due(now)) {
        // Late wake-ups (due.missed > 0, or scheduled long before now) are the misfire policy's
        // to judge (dispatch_policy.hpp); the callback decides and logs.
        try {
            m_impl->on_fire(due);
        } catch (const std::exception& e) {
            spdlog::error("{}: firing failed: {}", due.job, e.what());
        }
    }
    arm();
}

}  // namespace saltpeter
