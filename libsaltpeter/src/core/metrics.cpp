// Metrics (metrics.hpp): Prometheus text exposition, https://prometheus.io/docs/instrumenting/exposition_formats/
#include "core/metrics.hpp"

#include "saltpeter/exit_code_mapper.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace saltpeter {

namespace {

std::string escape_label(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        if (c == '\\') out += "\\\\";
        else if (c == '"') out += "\\\"";
        else if (c == '\n') out += "\\n";
        else out += c;
    }
    return out;
}

std::string number(double v) {
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    if (std::isnan(v)) return "NaN";
    if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<long long>(v));
    // The shortest of 15 or 17 significant digits that reads back as the same double (0.1, not
    // 0.10000000000000001).
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.15g", v);
    if (std::strtod(buf, nullptr) != v) std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

class MetricsObserver final : public RunObserver {
public:
    explicit MetricsObserver(Metrics& m) : m_metrics(m) {
        m.describe("saltpeter_runs_started_total", "counter", "Runs started, by job");
        m.describe("saltpeter_runs_finished_total", "counter", "Runs finished, by job and result (success/failed)");
        m.describe("saltpeter_target_results_total", "counter", "Target results, by job and exit code");
        m.describe("saltpeter_heartbeats_lost_total", "counter", "Targets that went silent past heartbeat_timeout (253)");
    }
    void on_run_started(const RunRecord& run) override {
        m_metrics.add("saltpeter_runs_started_total", {{"job", run.job}});
    }
    void on_target_finished(const RunRecord& run, const TargetResult& target) override {
        const int code = target.retcode.value_or(-1);
        m_metrics.add("saltpeter_target_results_total", {{"job", run.job}, {"code", std::to_string(code)}});
        if (ExitCodeMapper::outcome(code) == Outcome::heartbeat_lost && target.spd_verdict) m_metrics.add("saltpeter_heartbeats_lost_total", {{"job", run.job}});
    }
    void on_run_finished(const RunRecord& run) override {
        m_metrics.add("saltpeter_runs_finished_total",
                      {{"job", run.job}, {"result", run.success() ? "success" : "failed"}});
    }

private:
    Metrics& m_metrics;
};

}  // namespace

std::string render_labels(const MetricLabels& labels) {
    if (labels.empty()) return "";
    std::string out = "{";
    for (std::size_t i = 0; i < labels.size(); ++i) {
        if (i) out += ",";
        out += labels[i].first + "=\"" + escape_label(labels[i].second) + "\"";
    }
    return out + "}";
}

void Metrics::describe(const std::string& name, std::string_view type, std::string help) {
    Family& f = m_families[name];
    f.type = std::string(type);
    f.help = std::move(help);
}

void Metrics::add(const std::string& name, const MetricLabels& labels, double value) {
    m_families[name].series[render_labels(labels)] += value;
}

void Metrics::set(const std::string& name, const MetricLabels& labels, double value) {
    m_families[name].series[render_labels(labels)] = value;
}

void Metrics::clear(const std::string& name) {
    auto it = m_families.find(name);
    if (it != m_families.end()) it->second.series.clear();
}

void Metrics::observe(const std::string& name, double value, const std::vector<double>& buckets) {
    Family& f = m_families[name];
    if (!f.histogram) {
        f.histogram = std::make_unique<Histogram>();
        f.histogram->bounds = buckets;
        f.histogram->counts.assign(buckets.size(), 0);
        if (f.type == "untyped") f.type = "histogram";
    }
    Histogram& h = *f.histogram;
    for (std::size_t i = 0; i < h.bounds.size(); ++i) {
        if (value <= h.bounds[i]) {
            ++h.counts[i];
            break;
        }
    }
    ++h.count;
    h.sum += value;
}

double Metrics::value(const std::string& name, const MetricLabels& labels) const {
    auto it = m_families.find(name);
    if (it == m_families.end()) return 0;
    auto s = it->second.series.find(render_labels(labels));
    return s == it->second.series.end() ? 0 : s->second;
}

std::string Metrics::render() const {
    std::string out;
    for (const auto& [name, f] : m_families) {
        if (!f.help.empty()) out += "# HELP " + name + " " + f.help + "\n";
        out += "# TYPE " + name + " " + f.type + "\n";
        if (f.histogram) {
            const Histogram& h = *f.histogram;
            std::uint64_t cumulative = 0;
            for (std::size_t i = 0; i < h.bounds.size(); ++i) {
                cumulative += h.counts[i];
                out += name + "_bucket{le=\"" + number(h.bounds[i]) + "\"} " + std::to_string(cumulative) + "\n";
            }
            out += name + "_bucket{le=\"+Inf\"} " + std::to_string(h.count) + "\n";
            out += name + "_sum " + number(h.sum) + "\n";
            out += name + "_count " + std::to_string(h.count) + "\n";
            continue;
        }
        for (const auto& [labels, v] : f.series) out += name + labels + " " + number(v) + "\n";
    }
    return out;
}

void Metrics::add_collector(std::function<void(Metrics&)> collector) { m_collectors.push_back(std::move(collector)); }

void Metrics::collect() {
    for (auto& collector : m_collectors) collector(*this);
}

std::unique_ptr<RunObserver> make_metrics_observer(Metrics& metrics) { return std::make_unique<MetricsObserver>(metrics); }


}  // namespace saltpeter
