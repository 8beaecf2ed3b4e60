#include "store/retention.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/steady_timer.hpp>

#include "saltpeter/run_store.hpp"

namespace saltpeter {

struct Retention::Impl {
    Impl(boost::asio::io_context& io, RunStore& s) : store(s), timer(io) {}
    RunStore& store;
    boost::asio::steady_timer timer;
    bool stopped = false;

    void prune() {
        if (stopped) return;
        store.prune(std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now()),
                    [](const Status& st) {
                        if (!st) spdlog::error("pruning the run history failed: {}", st.error().message);
                    });
        timer.expires_after(std::chrono::hours(1));
        timer.async_wait([this](const boost::system::error_code& ec) {
            if (!ec) prune();
        });
    }
};

Retention::Retention(boost::asio::io_context& io, RunStore& store) : m_impl(std::make_unique<Impl>(io, store)) {}
Retention::~Retention() { stop(); }
void Retention::start() { m_impl->prune(); }
void Retention::stop() {
    m_impl->stopped = true;
    m_impl->timer.cancel();
}

}  // namespace saltpeter
