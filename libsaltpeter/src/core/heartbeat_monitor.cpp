#include "saltpeter/heartbeat_monitor.hpp"

namespace saltpeter {

void HeartbeatMonitor::track(const std::string& key, TimePoint now, Clock::duration limit) {
    forget(key);
    Entry entry{now, limit};
    m_deadlines.emplace(deadline_of(entry), key);
    m_entries.emplace(key, entry);
}

bool HeartbeatMonitor::beat(const std::string& key, TimePoint now) {
    auto it = m_entries.find(key);
    if (it == m_entries.end()) return false;
    // A late, out-of-order beat must never move the deadline backwards.
    if (now <= it->second.last_seen) return true;
    m_deadlines.erase({deadline_of(it->second), key});
    it->second.last_seen = now;
    m_deadlines.emplace(deadline_of(it->second), key);
    return true;
}

void HeartbeatMonitor::forget(const std::string& key) {
    auto it = m_entries.find(key);
    if (it == m_entries.end()) return;
    m_deadlines.erase({deadline_of(it->second), key});
    m_entries.erase(it);
}

std::vector<HeartbeatMonitor::Expired> HeartbeatMonitor::expire(TimePoint now) {
    std::vector<Expired> expired;
    while (!m_deadlines.empty() && m_deadlines.begin()->first < now) {
        const std::string key = m_deadlines.begin()->second;
        m_deadlines.erase(m_deadlines.begin());
        auto it = m_entries.find(key);
        expired.push_back({key, it->second.last_seen, now - it->second.last_seen});
        m_entries.erase(it);
    }
    return expired;
}

std::optional<HeartbeatMonitor::TimePoint> HeartbeatMonitor::next_deadline() const {
    if (m_deadlines.empty()) return std::nullopt;
    return m_deadlines.begin()->first;
}

std::optional<HeartbeatMonitor::TimePoint> HeartbeatMonitor::last_seen(const std::string& key) const {
    auto it = m_entries.find(key);
    if (it == m_entries.end()) return std::nullopt;
    return it->second.last_seen;
}

}  // namespace saltpeter
