// FireTimeStore over the RunStore: the misfire policy's last fire times and decisions live in
// spd's state database with the runs (fire_time_store.hpp).

#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <set>

#include "runs/fire_time_store.hpp"
#include "saltpeter/run_store.hpp"

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

void import_fire_time_file(const std::string& path, FireTimeStore& into, const std::vector<Job>& jobs) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return;
    bool empty = true;
    for (const Job& job : jobs) empty = empty && !into.last_fire(job.name);
    if (!empty) return;
    std::string warning;
    auto old = make_file_fire_time_store(path, &warning);
    if (!warning.empty()) spdlog::warn("{}", warning);
    std::size_t n = 0;
    for (const Job& job : jobs) {
        if (auto last = old->last_fire(job.name)) {
            into.record_fire(job.name, *last);
            ++n;
        }
    }
    spdlog::info("imported {} last fire time(s) from {} into the state database; the file is no longer used", n,
                 path);
}

}  // namespace saltpeter
