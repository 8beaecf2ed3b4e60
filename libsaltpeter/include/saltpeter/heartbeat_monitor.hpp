#pragma once
// HeartbeatMonitor: pure bookkeeping of "when did we last hear from X" on spd's own clock.
// Callers pass `now`; nothing here reads a clock or owns a timer (RunTracker arms one timer at
// next_deadline()). Wrapper timestamps are never used for liveness (PROTOCOL.md 5.2).

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace saltpeter {

class HeartbeatMonitor {
public:
    using Clock = std::chrono::steady_clock;
    using TimePoint = Clock::time_point;

    /// A key whose silence exceeded its limit.
    struct Expired {
        std::string key;
        TimePoint last_seen;
        Clock::duration silence;  ///< now - last_seen when expire() found it
    };

    /// Starts (or restarts) watching `key`: it expires when nothing is heard for `limit`.
    void track(const std::string& key, TimePoint now, Clock::duration limit);
    /// Records a sign of life. Returns false (and does nothing) when `key` is not tracked.
    bool beat(const std::string& key, TimePoint now);
    /// Stops watching `key` (no-op when unknown).
    void forget(const std::string& key);
    /// Removes and returns every key whose deadline (last_seen + limit) has passed: silence
    /// strictly longer than the limit. In deadline order.
    std::vector<Expired> expire(TimePoint now);
    /// The earliest deadline, for arming one timer; nullopt when nothing is tracked.
    std::optional<TimePoint> next_deadline() const;

    bool tracking(const std::string& key) const { return m_entries.count(key) != 0; }
    std::optional<TimePoint> last_seen(const std::string& key) const;
    std::size_t size() const noexcept { return m_entries.size(); }

private:
    struct Entry {
        TimePoint last_seen;
        Clock::duration limit;
    };
    TimePoint deadline_of(const Entry& e) const { return e.last_seen + e.limit; }

    std::map<std::string, Entry> m_entries;
    std::set<std::pair<TimePoint, std::string>> m_deadlines;  // ordered for expire()/next_deadline()
};

}  // namespace saltpeter
