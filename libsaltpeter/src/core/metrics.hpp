#pragma once
// Metrics: a small registry of counters, gauges and one kind of histogram, rendered in the
// Prometheus text exposition format (version 0.0.4) for GET /metrics. Io thread only; no locks.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "saltpeter/runs.hpp"

namespace saltpeter {

/// Label pairs of one series, e.g. {{"job", "backup"}, {"code", "0"}}.
using MetricLabels = std::vector<std::pair<std::string, std::string>>;

class Metrics {
public:
    /// Declares a family (HELP/TYPE lines); a family used before being declared renders as untyped.
    void describe(const std::string& name, std::string_view type, std::string help);
    /// Adds `value` to a counter series (created at 0).
    void add(const std::string& name, const MetricLabels& labels = {}, double value = 1);
    /// Sets a gauge series.
    void set(const std::string& name, const MetricLabels& labels, double value);
    /// Drops every series of a gauge family (before setting the current ones at scrape time).
    void clear(const std::string& name);
    /// Records one observation in a histogram with `buckets` (upper bounds, ascending; +Inf is
    /// implied). The buckets of the first call stay.
    void observe(const std::string& name, double value, const std::vector<double>& buckets);
    /// The current value of a counter or gauge series; 0 when unknown (tests).
    double value(const std::string& name, const MetricLabels& labels = {}) const;
    /// Adds a function that refreshes series from state kept elsewhere (e.g. another thread's
    /// atomics) each time collect() runs. Io thread; what it captures must stay valid while
    /// collect() can be called.
    void add_collector(std::function<void(Metrics&)> collector);
    /// Runs every collector in the order added (the API calls it just before render()).
    void collect();
    /// Every family in name order: # HELP, # TYPE, then its series (histograms as _bucket{le=},
    /// _sum and _count). Label values escape backslash, double quote and newline.
    std::string render() const;

private:
    struct Histogram {
        std::vector<double> bounds;
        std::vector<std::uint64_t> counts;  ///< per bound, not cumulative
        std::uint64_t count = 0;
        double sum = 0;
    };
    struct Family {
        std::string type = "untyped";
        std::string help;
        std::map<std::string, double> series;  ///< by rendered label set
        std::unique_ptr<Histogram> histogram;
    };
    std::map<std::string, Family> m_families;
    std::vector<std::function<void(Metrics&)>> m_collectors;
};

/// Renders `{a="x",b="y"}` (empty for no labels).
std::string render_labels(const MetricLabels& labels);

/// A RunObserver that counts runs started/finished by job, target results by job and exit code,
/// and heartbeats lost (spd's 253 verdicts) into `metrics`. The registry must outlive it.
std::unique_ptr<RunObserver> make_metrics_observer(Metrics& metrics);

}  // namespace saltpeter
