#include "saltpeter/schedule.hpp"

namespace saltpeter {

void Schedule::arm(State& state, const std::string& name) {
    if (state.next) m_queue.emplace(*state.next, name);
}

void Schedule::set_jobs(std::vector<Entry> entries, SysSeconds now) {
    std::map<std::string, State> next_jobs;
    for (auto& entry : entries) {
        const std::string name = entry.job;
        auto old = m_jobs.find(name);
        State state{std::move(entry), std::nullopt};
        if (old != m_jobs.end() && old->second.entry.expression.text() == state.entry.expression.text() &&
            old->second.entry.zone.name() == state.entry.zone.name()) {
            state.next = old->second.next;  // unchanged: keep the pending fire time
        } else {
            state.next = state.entry.expression.next_after(now, state.entry.zone);
        }
        next_jobs.insert_or_assign(name, std::move(state));
    }
    m_jobs = std::move(next_jobs);
    m_queue.clear();
    for (auto& [name, state] : m_jobs) arm(state, name);
}

std::vector<Schedule::Due> Schedule::take_due(SysSeconds now) {
    std::vector<Due> due;
    while (!m_queue.empty() && m_queue.begin()->first <= now) {
        const std::string name = m_queue.begin()->second;
        m_queue.erase(m_queue.begin());
        State& state = m_jobs.at(name);
        Due d{name, *state.next, 0};
        // Count (without firing) the fire times that also passed, e.g. after a suspend, so that
        // a late wake-up gives one run, never a burst. Bounded: a job firing every second
        // could have missed many; past 100000 we stop counting.
        std::optional<SysSeconds> t = state.entry.expression.next_after(*state.next, state.entry.zone);
        while (t && *t <= now && d.missed < 100000) {
            ++d.missed;
            d.scheduled = *t;
            t = state.entry.expression.next_after(*t, state.entry.zone);
        }
        if (t && *t <= now) t = state.entry.expression.next_after(now, state.entry.zone);
        state.next = t;
        arm(state, name);
        due.push_back(std::move(d));
    }
    return due;
}

std::optional<SysSeconds> Schedule::next_wake() const {
    if (m_queue.empty()) return std::nullopt;
    return m_queue.begin()->first;
}

std::optional<SysSeconds> Schedule::next_run(const std::string& job) const {
    auto it = m_jobs.find(job);
    if (it == m_jobs.end()) return std::nullopt;
    return it->second.next;
}

}  // namespace saltpeter
