// FireTimeStore over the RunStore: the misfire policy's last fire times and decisions live in
// spd's state database with the runs (fire_time_store.hpp).

#include <chrono>
#include <map>
#include <set>

#include "runs/fire_time_store.hpp"
#include "saltpeter/store/run_store.hpp"

namespace saltpeter {
namespace {

class RunStoreFireTimes final : public FireTimeStore {
public:
    RunStoreFireTimes(RunStore& store, std::string* warning) : m_store(store) {
        auto stored = store.last_fire_times();
        if (!stored) {
            if (warning != nullptr) *warning = stored.error().message + "; fire times start afresh";
            return;
        }
        for (const auto& [job, fire] : *stored) {
            if (fire.time_since_epoch().count() > 0) m_last[job] = fire;  // 0 = forgotten
        }
    }

    std::optional<SysSeconds> last_fire(const std::string& job) const override {
        auto it = m_last.find(job);
        if (it == m_last.end()) return std::nullopt;
        return it->second;
    }

    void record_fire(const std::string& job, SysSeconds fire_time) override {
        auto& last = m_last[job];
        if (fire_time < last) return;
        last = fire_time;
        m_store.set_last_fire(job, fire_time);
    }

    void record_misfire(const std::string& job, SysSeconds now, std::uint32_t missed,
                        const std::string& decision) override {
        SchedulerDecision d;
        d.job = job;
        d.kind = DecisionKind::misfire;
        d.at = std::chrono::time_point_cast<std::chrono::microseconds>(now);
        d.detail = decision + " (" + std::to_string(missed) + " fire time(s) missed)";
        m_store.record_decision(d);
    }

    void retain(const std::vector<std::string>& jobs) override {
        const std::set<std::string> keep(jobs.begin(), jobs.end());
        for (auto it = m_last.begin(); it != m_last.end();) {
            if (keep.count(it->first) == 0) {
                m_store.set_last_fire(it->first, SysSeconds{});
                it = m_last.erase(it);
            } else {
                ++it;
            }
        }
    }

    Status flush() override { return Ok{}; }

private:
    RunStore& m_store;
    std::map<std::string, SysSeconds> m_last;
};

}  // namespace

std::unique_ptr<FireTimeStore> make_run_store_fire_times(RunStore& store, std::string* warning) {
    return std::make_unique<RunStoreFireTimes>(store, warning);
}

}  // namespace saltpeter
