// spctl next: the next fire times of an expression, of one configured job, or of every job (offline).
#include <chrono>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "saltpeter/config.hpp"
#include "saltpeter/cron_expression.hpp"
#include "saltpeter/time_zone.hpp"
#include "spctl.hpp"

namespace spctl {

using saltpeter::Result;

namespace {

struct NextOptions {
    std::string job;
    std::string dir = "/etc/saltpeter";
    std::string expr;
    std::string tz;
    std::string from;
    int count = 5;
    bool json = false;
};

Result<saltpeter::SysSeconds> start_time(const NextOptions& opts, const saltpeter::TimeZone& zone) {
    if (opts.from.empty()) return std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
    auto parsed = saltpeter::parse_iso8601(opts.from, zone);
    if (!parsed) return saltpeter::Error{"--from: " + parsed.error().message, "from"};
    return parsed;
}

// The next `count` fire times after `from`; a note on stderr when the schedule runs out.
std::vector<std::string> fire_times(const saltpeter::CronExpression& expr, const saltpeter::TimeZone& zone,
                                    saltpeter::SysSeconds from, int count, const std::string& what) {
    std::vector<std::string> times;
    saltpeter::SysSeconds t = from;
    for (int i = 0; i < count; ++i) {
        auto next = expr.next_after(t, zone);
        if (!next) break;
        times.push_back(saltpeter::format_iso8601(*next, zone));
        t = *next;
    }
    if (static_cast<int>(times.size()) < count) {
        std::cerr << "spctl next: " << what << " never fires " << (times.empty() ? "after " : "again after ")
                  << saltpeter::format_iso8601(t, zone) << "\n";
    }
    return times;
}

void print_json_array(const std::vector<std::string>& times) {
    std::cout << "[";
    for (std::size_t i = 0; i < times.size(); ++i) std::cout << (i ? ", " : "") << '"' << times[i] << '"';
    std::cout << "]";
}

Result<saltpeter::TimeZone> zone_override(const NextOptions& opts, const saltpeter::TimeZone& fallback) {
    if (opts.tz.empty()) return fallback;
    return saltpeter::TimeZone::locate(opts.tz);
}

// Resolves the zone (--tz over `default_zone`) and the start (--from), then lists the fire
// times into `times`. Returns the exit code of a failure, or nullopt.
std::optional<int> list_fire_times(const NextOptions& opts, const saltpeter::CronExpression& expr,
                                   const saltpeter::TimeZone& default_zone, const std::string& what,
                                   std::vector<std::string>& times) {
    auto zone = zone_override(opts, default_zone);
    if (!zone) {
        std::cerr << "spctl next: " << zone.error().message << "\n";
        return k_exit_failure;
    }
    auto from = start_time(opts, *zone);
    if (!from) {
        std::cerr << "spctl next: " << from.error().message << "\n";
        return k_exit_usage;
    }
    times = fire_times(expr, *zone, *from, opts.count, what);
    return std::nullopt;
}

int run_expression(const NextOptions& opts) {
    auto expr = saltpeter::CronExpression::parse(opts.expr);
    if (!expr) {
        std::cerr << "spctl next: " << expr.error().message << "\n";
        return k_exit_failure;
    }
    std::vector<std::string> times;
    if (auto failed = list_fire_times(opts, *expr, saltpeter::TimeZone::utc(), "expression '" + opts.expr + "'", times)) {
        return *failed;
    }
    if (opts.json) {
        print_json_array(times);
        std::cout << "\n";
    } else {
        for (const auto& s : times) std::cout << s << "\n";
    }
    return k_exit_ok;
}

// One job (JOB given) or every job of the directory (no JOB): "job time" lines, or JSON.
int run_jobs(const NextOptions& opts) {
    auto loaded = saltpeter::load_config_dir(opts.dir);
    if (!loaded) {
        std::cerr << "spctl next: " << loaded.error().message << "\n";
        return k_exit_usage;
    }
    std::vector<const saltpeter::Job*> jobs;
    if (!opts.job.empty()) {
        const saltpeter::Job* job = loaded->config.find(opts.job);
        if (job == nullptr) {
            std::cerr << "spctl next: no job '" << opts.job << "' in " << opts.dir << "\n";
            for (const auto& p : loaded->problems) {
                if (p.job == opts.job) std::cerr << "  " << p.to_string() << "\n";
            }
            return k_exit_failure;
        }
        jobs.push_back(job);
    } else {
        for (const auto& job : loaded->config.jobs) jobs.push_back(&job);
    }

    const bool single = !opts.job.empty();
    if (opts.json && !single) std::cout << "{";
    bool first = true;
    for (const saltpeter::Job* job : jobs) {
        std::vector<std::string> times;
        if (auto failed = list_fire_times(opts, job->schedule, job->zone, "job '" + job->name + "'", times)) {
            return *failed;
        }
        if (opts.json) {
            if (!single) std::cout << (first ? "" : ", ") << '"' << job->name << "\": ";
            print_json_array(times);
        } else {
            for (const auto& s : times) std::cout << (single ? "" : job->name + " ") << s << "\n";
        }
        first = false;
    }
    if (opts.json) std::cout << (single ? "\n" : "}\n");
    return k_exit_ok;
}

int run_next(const NextOptions& opts) {
    if (!opts.job.empty() && !opts.expr.empty()) {
        std::cerr << "spctl next: give either a JOB name (with -c DIR) or --expr EXPR, not both\n";
        return k_exit_usage;
    }
    if (opts.count < 0) {
        std::cerr << "spctl next: --count must not be negative\n";
        return k_exit_usage;
    }
    return opts.expr.empty() ? run_jobs(opts) : run_expression(opts);
}

}  // namespace

void register_next(CLI::App& app, Context& ctx) {
    auto opts = std::make_shared<NextOptions>();
    auto* cmd = app.add_subcommand("next", "Print the next fire times of an expression or a job (offline)");
    cmd->add_option("JOB", opts->job, "A job of the config directory (none: every job)");
    cmd->add_option("-c,--configdir", opts->dir, "Config directory (with JOB)")->capture_default_str();
    cmd->add_option("--expr", opts->expr, "Seven fields 'sec min hour dom mon dow year' or a macro (@daily)");
    cmd->add_option("--tz", opts->tz, "IANA time zone (default: the job's zone, or UTC)");
    cmd->add_option("--from", opts->from, "Start after this ISO 8601 time (default: now)");
    cmd->add_option("-n,--count", opts->count, "How many fire times")->capture_default_str();
    cmd->add_flag("--json", opts->json, "Print a JSON array of the times");
    cmd->callback([opts, &ctx] { ctx.exit_code = run_next(*opts); });
}

}  // namespace spctl
