// metrics.hpp: Prometheus text exposition and the run observer's counters.
#include <doctest/doctest.h>

#include "core/metrics.hpp"

using namespace saltpeter;

TEST_CASE("counters, gauges and label escaping render in the text format") {
    Metrics m;
    m.describe("sp_runs_total", "counter", "Runs");
    m.add("sp_runs_total", {{"job", "a"}});
    m.add("sp_runs_total", {{"job", "a"}});
    m.add("sp_runs_total", {{"job", "we\"ird\\\n"}}, 3);
    m.set("sp_gauge", {}, 2.5);
    const std::string text = m.render();
    CHECK(text.find("# HELP sp_runs_total Runs\n# TYPE sp_runs_total counter\n") != std::string::npos);
    CHECK(text.find("sp_runs_total{job=\"a\"} 2\n") != std::string::npos);
    CHECK(text.find("sp_runs_total{job=\"we\\\"ird\\\\\\n\"} 3\n") != std::string::npos);
    CHECK(text.find("# TYPE sp_gauge untyped\nsp_gauge 2.5\n") != std::string::npos);
    CHECK(m.value("sp_runs_total", {{"job", "a"}}) == 2);
    m.clear("sp_runs_total");
    CHECK(m.value("sp_runs_total", {{"job", "a"}}) == 0);
}

TEST_CASE("histogram buckets are cumulative with +Inf, sum and count") {
    Metrics m;
    m.describe("lag_seconds", "histogram", "Lag");
    for (double v : {0.0078125, 0.25, 0.375, 7.0}) m.observe("lag_seconds", v, {0.01, 0.5, 1});
    const std::string text = m.render();
    CHECK(text.find("lag_seconds_bucket{le=\"0.01\"} 1\n") != std::string::npos);
    CHECK(text.find("lag_seconds_bucket{le=\"0.5\"} 3\n") != std::string::npos);
    CHECK(text.find("lag_seconds_bucket{le=\"1\"} 3\n") != std::string::npos);
    CHECK(text.find("lag_seconds_bucket{le=\"+Inf\"} 4\n") != std::string::npos);
    CHECK(text.find("lag_seconds_sum 7.6328125\n") != std::string::npos);
    CHECK(text.find("lag_seconds_count 4\n") != std::string::npos);
    m.observe("tenths", 0.1, {0.05, 0.1});
    CHECK(m.render().find("tenths_bucket{le=\"0.05\"} 0\ntenths_bucket{le=\"0.1\"} 1\n") != std::string::npos);
}

TEST_CASE("the metrics observer counts runs, results by exit code and lost heartbeats") {
    Metrics m;
    auto observer = make_metrics_observer(m);
    RunRecord run;
    run.job = "backup";
    TargetResult ok;
    ok.retcode = 0;
    TargetResult lost;
    lost.retcode = 253;
    lost.spd_verdict = true;
    run.targets["a"] = ok;
    run.targets["b"] = lost;
    observer->on_run_started(run);
    observer->on_target_finished(run, ok);
    observer->on_target_finished(run, lost);
    observer->on_run_finished(run);
    CHECK(m.value("saltpeter_runs_started_total", {{"job", "backup"}}) == 1);
    CHECK(m.value("saltpeter_target_results_total", {{"job", "backup"}, {"code", "0"}}) == 1);
    CHECK(m.value("saltpeter_target_results_total", {{"job", "backup"}, {"code", "253"}}) == 1);
    CHECK(m.value("saltpeter_heartbeats_lost_total", {{"job", "backup"}}) == 1);
    CHECK(m.value("saltpeter_runs_finished_total", {{"job", "backup"}, {"result", "failed"}}) == 1);
}
