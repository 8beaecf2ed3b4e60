#pragma once
// Watchdog: aborts the test binary when a test case overruns its limit, so a hang fails CI
// instead of stalling it. Create one at the top of each loopback test case.

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <thread>

namespace saltpeter::test {

class Watchdog {
public:
    explicit Watchdog(std::chrono::seconds limit) {
        m_thread = std::thread([this, limit] {
            std::unique_lock<std::mutex> lock(m_mutex);
            if (!m_cv.wait_for(lock, limit, [this] { return m_done; })) {
                std::cerr << "WATCHDOG: test exceeded " << limit.count() << " s, aborting\n";
                std::abort();
            }
        });
    }
    ~Watchdog() {
        {
            std::lock_guard<std::mutex> lock(m_mutex);
            m_done = true;
        }
        m_cv.notify_all();
        m_thread.join();
    }
    Watchdog(const Watchdog&) = delete;
    Watchdog& operator=(const Watchdog&) = delete;

private:
    std::mutex m_mutex;
    std::condition_variable m_cv;
    bool m_done = false;
    std::thread m_thread;
};

}  // namespace saltpeter::test
