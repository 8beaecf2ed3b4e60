#pragma once
// ObserverList: one RunObserver that fans every run event out to many (job logs, the store's
// decisions, metrics, search sinks, the dispatcher, the API's push), in the order added.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "saltpeter/runs.hpp"

namespace saltpeter {

class ObserverList final : public RunObserver {
public:
    /// Adds an observer owned elsewhere (it must outlive the list's use).
    void add(RunObserver* observer) { m_observers.push_back(observer); }
    /// Adds an observer the list keeps alive.
    void add(std::shared_ptr<RunObserver> observer) {
        m_observers.push_back(observer.get());
        m_kept.push_back(std::move(observer));
    }

    void on_log(const std::string& job, const LogRecord& record) override {
        for (auto* o : m_observers) o->on_log(job, record);
    }
    void on_run_started(const RunRecord& run) override {
        for (auto* o : m_observers) o->on_run_started(run);
    }
    void on_target_started(const RunRecord& run, const TargetResult& target) override {
        for (auto* o : m_observers) o->on_target_started(run, target);
    }
    void on_output(const RunRecord& run, const TargetResult& target, std::string_view data) override {
        for (auto* o : m_observers) o->on_output(run, target, data);
    }
    void on_target_finished(const RunRecord& run, const TargetResult& target) override {
        for (auto* o : m_observers) o->on_target_finished(run, target);
    }
    void on_run_finished(const RunRecord& run) override {
        for (auto* o : m_observers) o->on_run_finished(run);
    }

private:
    std::vector<RunObserver*> m_observers;
    std::vector<std::shared_ptr<RunObserver>> m_kept;
};

}  // namespace saltpeter
