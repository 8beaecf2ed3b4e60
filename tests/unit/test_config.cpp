#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/config_detail.hpp"
#include "saltpeter/config.hpp"

using namespace saltpeter;
using namespace std::chrono_literals;

namespace {

// A job body with every required key; `extra` lines are appended (two-space indented).
std::string job_yaml(const std::string& name, const std::string& extra = "") {
    return name +
           ":\n"
           "  command: /bin/true\n"
           "  targets: '*'\n"
           "  min: 0\n"
           "  hour: 3\n"
           "  dom: '*'\n"
           "  mon: '*'\n"
           "  dow: '*'\n" +
           extra;
}

const Problem* find_problem(const std::vector<Problem>& problems, const std::string& field,
                            Problem::Severity severity = Problem::Severity::error) {
    for (const auto& p : problems) {
        if (p.field == field && p.severity == severity) return &p;
    }
    return nullptr;
}

std::size_t count_severity(const std::vector<Problem>& problems, Problem::Severity severity) {
    return static_cast<std::size_t>(std::count_if(problems.begin(), problems.end(),
                                                  [&](const Problem& p) { return p.severity == severity; }));
}

std::string all_text(const std::vector<Problem>& problems) {
    std::string out;
    for (const auto& p : problems) out += p.to_string() + "\n";
    return out;
}

// Parses a file that holds one job with `extra` keys and expects exactly one error on `field` at
// line `line`; returns its message.
std::string single_error(const std::string& extra, const std::string& field, int line) {
    const FileConfig fc = parse_config(job_yaml("j", extra), "jobs.yaml");
    INFO(all_text(fc.problems));
    CHECK(fc.jobs.empty());
    CHECK(count_severity(fc.problems, Problem::Severity::error) == 1);
    const Problem* p = find_problem(fc.problems, field);
    REQUIRE(p != nullptr);
    CHECK(p->line == line);
    CHECK(p->job == "j");
    CHECK(p->file == "jobs.yaml");
    return p->message;
}

// A temporary directory under /tmp, removed with its contents at the end of the test.
class TempDir {
public:
    TempDir() {
        char tmpl[] = "/tmp/saltpeter_config_test_XXXXXX";
        const char* made = ::mkdtemp(tmpl);
        REQUIRE(made != nullptr);
        m_path = made;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(m_path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::string& path() const noexcept { return m_path; }
    std::string file(const std::string& name) const { return m_path + "/" + name; }
    void write(const std::string& name, const std::string& text) const {
        std::ofstream out(file(name), std::ios::binary | std::ios::trunc);
        out << text;
        REQUIRE(out.good());
    }
    void remove(const std::string& name) const { std::filesystem::remove(file(name)); }

private:
    std::string m_path;
};

std::vector<std::string> job_names(const Config& c) {
    std::vector<std::string> names;
    for (const auto& j : c.jobs) names.push_back(j.name);
    return names;
}

SysSeconds utc_time(const char* text) { return parse_iso8601(text, TimeZone::utc()).value(); }

}  // namespace

TEST_CASE("a minimal job gets every default") {
    const FileConfig fc = parse_config(job_yaml("backup"), "/etc/saltpeter/nightly.yaml");
    INFO(all_text(fc.problems));
    CHECK(fc.readable);
    CHECK(fc.problems.empty());
    REQUIRE(fc.jobs.size() == 1);
    const Job& j = fc.jobs[0];
    CHECK(j.name == "backup");
    CHECK(j.group == "nightly");
    CHECK(j.file == "/etc/saltpeter/nightly.yaml");
    CHECK(j.line == 1);
    CHECK(j.command == "/bin/true");
    CHECK(j.targets == "*");
    CHECK(j.target_type == TargetType::glob);
    CHECK(j.schedule.fields().sec == "0");
    CHECK(j.schedule.fields().min == "0");
    CHECK(j.schedule.fields().hour == "3");
    CHECK(j.schedule.fields().year == "*");
    CHECK(j.timezone.empty());
    CHECK(j.zone.name() == "UTC");
    CHECK_FALSE(j.cwd.has_value());
    CHECK_FALSE(j.user.has_value());
    CHECK(j.env.empty());
    CHECK(j.use_wrapper);
    CHECK_FALSE(j.wrapper_path.has_value());
    CHECK_FALSE(j.saltpeter_server_host.has_value());
    CHECK_FALSE(j.wrapper_loglevel.has_value());
    CHECK_FALSE(j.wrapper_logdir.has_value());
    CHECK_FALSE(j.lockfile.has_value());
    CHECK(j.timeout == 3600s);
    CHECK_FALSE(j.heartbeat_timeout.has_value());
    CHECK(j.concurrency == Concurrency::forbid);
    CHECK(j.number_of_targets == 0);
    CHECK(j.batch_size.value == 0);
    CHECK_FALSE(j.batch_size.is_set());
    CHECK(j.batch_wait == 0s);
    CHECK(j.max_failures.value == 0);
    CHECK(j.canary == 0);
    CHECK(j.misfire == Misfire::skip);
    CHECK(j.misfire_grace == 300s);
    CHECK(j.retries == 0);
    CHECK(j.retry_backoff == 10s);
    CHECK(j.retry_backoff_max == 300s);
    CHECK(j.splay == 0s);
    CHECK_FALSE(j.notify.has_value());
}

TEST_CASE("every job key is read") {
    const FileConfig fc = parse_config(job_yaml("full",
                                                "  sec: 30\n"
                                                "  year: '2020-2099'\n"
                                                "  target_type: list\n"
                                                "  cwd: /srv\n"
                                                "  user: app\n"
                                                "  env:\n"
                                                "    FLAG: true\n"
                                                "    COUNT: 5\n"
                                                "    NAME: 'x y'\n"
                                                "    EMPTY:\n"
                                                "  use_wrapper: false\n"
                                                "  wrapper_path: /opt/sp_wrapper\n"
                                                "  saltpeter_server_host: spd.example.com\n"
                                                "  wrapper_loglevel: debug\n"
                                                "  wrapper_logdir: /var/log/spw\n"
                                                "  lockfile: /run/full.lock\n"
                                                "  timeout: 0\n"
                                                "  heartbeat_timeout: 20\n"
                                                "  concurrency: replace\n"
                                                "  number_of_targets: 4\n"
                                                "  batch_size: '25%'\n"
                                                "  batch_wait: 15\n"
                                                "  max_failures: 3\n"
                                                "  canary: 1\n"
                                                "  misfire: run_once\n"
                                                "  misfire_grace: 60\n"
                                                "  retries: 2\n"
                                                "  retry_backoff: 5\n"
                                                "  retry_backoff_max: 50\n"
                                                "  splay: 7\n"
                                                "  timezone: Europe/Berlin\n"
                                                "  notify:\n"
                                                "    on: [failure, recovered]\n"
                                                "    webhook: https://hooks.example.com/x\n"),
                                       "f.yml");
    INFO(all_text(fc.problems));
    CHECK(fc.problems.empty());
    REQUIRE(fc.jobs.size() == 1);
    const Job& j = fc.jobs[0];
    CHECK(j.group == "f");
    CHECK(j.schedule.fields().sec == "30");
    CHECK(j.schedule.fields().year == "2020-2099");
    CHECK(j.target_type == TargetType::list);
    CHECK(j.cwd == "/srv");
    CHECK(j.user == "app");
    REQUIRE(j.env.size() == 4);
    CHECK(j.env[0] == std::make_pair(std::string("FLAG"), std::string("true")));
    CHECK(j.env[1] == std::make_pair(std::string("COUNT"), std::string("5")));
    CHECK(j.env[2] == std::make_pair(std::string("NAME"), std::string("x y")));
    CHECK(j.env[3] == std::make_pair(std::string("EMPTY"), std::string()));
    CHECK_FALSE(j.use_wrapper);
    CHECK(j.wrapper_path == "/opt/sp_wrapper");
    CHECK(j.saltpeter_server_host == "spd.example.com");
    CHECK(j.wrapper_loglevel == "debug");
    CHECK(j.wrapper_logdir == "/var/log/spw");
    CHECK(j.lockfile == "/run/full.lock");
    CHECK(j.timeout == 0s);
    CHECK(j.heartbeat_timeout == 20s);
    CHECK(j.concurrency == Concurrency::replace);
    CHECK(j.number_of_targets == 4);
    CHECK(j.batch_size.value == 25);
    CHECK(j.batch_size.percent);
    CHECK(j.batch_wait == 15s);
    CHECK(j.max_failures.value == 3);
    CHECK_FALSE(j.max_failures.percent);
    CHECK(j.canary == 1);
    CHECK(j.misfire == Misfire::run_once);
    CHECK(j.misfire_grace == 60s);
    CHECK(j.retries == 2);
    CHECK(j.retry_backoff == 5s);
    CHECK(j.retry_backoff_max == 50s);
    CHECK(j.splay == 7s);
    CHECK(j.timezone == "Europe/Berlin");
    REQUIRE(j.notify.has_value());
    CHECK(j.notify->on == std::vector<std::string>{"failure", "recovered"});
    CHECK(j.notify->webhook == "https://hooks.example.com/x");
}

TEST_CASE("timeout: null keeps the default 3600, negative and strings are errors") {
    const FileConfig fc = parse_config(job_yaml("j", "  timeout: null\n"), "a.yaml");
    CHECK(fc.problems.empty());
    REQUIRE(fc.jobs.size() == 1);
    CHECK(fc.jobs[0].timeout == 3600s);

    CHECK(single_error("  timeout: -1\n", "timeout", 9).find("negative") != std::string::npos);
    CHECK(single_error("  timeout: '60'\n", "timeout", 9).find("string '60'") != std::string::npos);
    CHECK(single_error("  timeout: soon\n", "timeout", 9).find("'soon'") != std::string::npos);
    CHECK(single_error("  timeout: [1]\n", "timeout", 9).find("got a list") != std::string::npos);
}

TEST_CASE("a wrong type for each key is reported on that key's line") {
    struct Case {
        const char* extra;
        const char* field;
        const char* needle;
        int line = 9;
    };
    const Case cases[] = {
        {"  cwd: [a, b]\n", "cwd", "expected a string, got a list"},
        {"  user: {a: 1}\n", "user", "expected a string, got a mapping"},
        {"  env: [A, B]\n", "env", "expected a mapping"},
        {"  env:\n    NESTED: {a: 1}\n", "env", "env 'NESTED': expected a string or number, got a mapping", 10},
        {"  use_wrapper: maybe\n", "use_wrapper", "expected true or false, got 'maybe'"},
        {"  utc: [true]\n", "utc", "expected true or false, got a list"},
        {"  wrapper_path: ''\n", "wrapper_path", "must not be empty"},
        {"  wrapper_loglevel: loud\n", "wrapper_loglevel", "'loud' is not one of normal, debug, off"},
        {"  heartbeat_timeout: 0\n", "heartbeat_timeout", "positive"},
        {"  number_of_targets: -2\n", "number_of_targets", "must not be negative, got -2"},
        {"  batch_size: '150%'\n", "batch_size", "'150%'"},
        {"  batch_size: -1\n", "batch_size", "negative"},
        {"  max_failures: 'lots'\n", "max_failures", "string 'lots'"},
        {"  batch_wait: -3\n", "batch_wait", "negative"},
        {"  canary: 1.5\n", "canary", "'1.5'"},
        {"  misfire: always\n", "misfire", "'always' is not one of skip, run_once"},
        {"  misfire_grace: x\n", "misfire_grace", "'x'"},
        {"  retries: -1\n", "retries", "negative"},
        {"  retry_backoff: []\n", "retry_backoff", "got a list"},
        {"  splay: -1\n", "splay", "negative"},
        {"  concurrency: sometimes\n", "concurrency", "'sometimes' is not one of forbid, allow, replace"},
        {"  notify: yes\n", "notify", "expected a mapping"},
        {"  notify:\n    on: [failure, exploded]\n", "notify", "'exploded'", 10},
        {"  target_type: galaxy\n", "target_type", "valid: glob, pcre, list"},
        {"  lockfile: [x]\n", "lockfile", "got a list"},
        {"  timezone: Mars/Olympus_Mons\n", "timezone", "unknown time zone 'Mars/Olympus_Mons'"},
    };
    for (const auto& c : cases) {
        const std::string extra = c.extra;
        CAPTURE(extra);
        const std::string message = single_error(extra, c.field, c.line);
        CHECK_MESSAGE(message.find(c.needle) != std::string::npos, message);
    }
}

TEST_CASE("cron fields: ints and strings, lists rejected, parser errors point at the field") {
    const FileConfig ok = parse_config("j:\n  command: x\n  targets: h\n  min: '*/5'\n  hour: 0\n  dom: 1\n"
                                       "  mon: '*'\n  dow: '*'\n",
                                       "a.yaml");
    REQUIRE(ok.jobs.size() == 1);
    CHECK(ok.jobs[0].schedule.fields().min == "*/5");
    CHECK(ok.jobs[0].schedule.fields().dom == "1");

    const FileConfig bad = parse_config("j:\n  command: x\n  targets: h\n  min: 0\n  hour: 25\n  dom: '*'\n"
                                        "  mon: '*'\n  dow: '*'\n",
                                        "a.yaml");
    CHECK(bad.jobs.empty());
    const Problem* p = find_problem(bad.problems, "hour");
    REQUIRE(p != nullptr);
    CHECK(p->line == 5);
    CHECK(p->column == 9);
    // The field name is not repeated inside the message.
    CHECK(p->message.find("field 'hour'") == std::string::npos);
    CHECK(p->to_string().rfind("a.yaml:5:9: job 'j': field 'hour': ", 0) == 0);

    CHECK(single_error("  year: [2020]\n", "year", 9).find("got a list") != std::string::npos);
}

TEST_CASE("missing required keys are named like the original") {
    const FileConfig fc = parse_config("j:\n  command: x\n  targets: h\n  min: 0\n  hour: 0\n  dom: '*'\n  mon: '*'\n",
                                       "a.yaml");
    CHECK(fc.jobs.empty());
    const Problem* p = find_problem(fc.problems, "dow");
    REQUIRE(p != nullptr);
    CHECK(p->message == "missing required key 'dow'");
    CHECK(p->line == 1);

    const FileConfig nc = parse_config("j:\n  min: 0\n  hour: 0\n  dom: '*'\n  mon: '*'\n  dow: '*'\n", "a.yaml");
    CHECK(nc.jobs.empty());
    REQUIRE(find_problem(nc.problems, "command") != nullptr);
    REQUIRE(find_problem(nc.problems, "targets") != nullptr);
    CHECK(find_problem(nc.problems, "command")->message == "missing required key 'command'");
}

TEST_CASE("a job that is not a mapping is an error naming the job") {
    const FileConfig fc = parse_config("myjob: hello\n" + job_yaml("good"), "a.yaml");
    REQUIRE(fc.jobs.size() == 1);
    CHECK(fc.jobs[0].name == "good");
    REQUIRE(fc.problems.size() == 1);
    CHECK(fc.problems[0].to_string() == "a.yaml:1:8: job 'myjob': expected a mapping of job keys, got 'hello'");
}

TEST_CASE("a bad job does not hide the good jobs in its file") {
    const FileConfig fc = parse_config(job_yaml("first") + job_yaml("broken", "  retries: -1\n") + job_yaml("last"),
                                       "a.yaml");
    CHECK(fc.readable);
    REQUIRE(fc.jobs.size() == 2);
    CHECK(fc.jobs[0].name == "first");
    CHECK(fc.jobs[1].name == "last");
    REQUIRE(fc.problems.size() == 1);
    CHECK(fc.problems[0].job == "broken");
    CHECK(fc.problems[0].line == 17);
}

TEST_CASE("targets as a list are joined, with a warning unless target_type is list") {
    const FileConfig as_list =
        parse_config("j:\n  command: x\n  targets: [web1, web2]\n  target_type: list\n  min: 0\n  hour: 0\n"
                     "  dom: '*'\n  mon: '*'\n  dow: '*'\n",
                     "a.yaml");
    CHECK(as_list.problems.empty());
    REQUIRE(as_list.jobs.size() == 1);
    CHECK(as_list.jobs[0].targets == "web1,web2");

    const FileConfig as_glob = parse_config(
        "j:\n  command: x\n  targets: [web1, web2]\n  min: 0\n  hour: 0\n  dom: '*'\n  mon: '*'\n  dow: '*'\n",
        "a.yaml");
    REQUIRE(as_glob.jobs.size() == 1);
    CHECK(as_glob.jobs[0].targets == "web1,web2");
    const Problem* w = find_problem(as_glob.problems, "targets", Problem::Severity::warning);
    REQUIRE(w != nullptr);
    CHECK(w->line == 3);
    CHECK(w->to_string().find("a.yaml:3:12: warning: job 'j': field 'targets': ") == 0);

    CHECK(single_error("  targets: {a: 1}\n", "targets", 9).find("got a mapping") != std::string::npos);
}

TEST_CASE("unknown keys draw a warning with a suggestion") {
    const FileConfig fc = parse_config(job_yaml("j", "  timout: 60\n  colour: blue\n  concur: allow\n"), "a.yaml");
    REQUIRE(fc.jobs.size() == 1);
    CHECK(fc.jobs[0].timeout == 3600s);
    CHECK(count_severity(fc.problems, Problem::Severity::error) == 0);
    const Problem* timout = find_problem(fc.problems, "timout", Problem::Severity::warning);
    REQUIRE(timout != nullptr);
    CHECK(timout->line == 9);
    CHECK(timout->message == "unknown key 'timout', ignored; did you mean 'timeout'?");
    const Problem* colour = find_problem(fc.problems, "colour", Problem::Severity::warning);
    REQUIRE(colour != nullptr);
    CHECK(colour->message == "unknown key 'colour', ignored");
    const Problem* concur = find_problem(fc.problems, "concur", Problem::Severity::warning);
    REQUIRE(concur != nullptr);
    CHECK(concur->message.find("did you mean 'concurrency'?") != std::string::npos);

    CHECK(config_detail::edit_distance("kitten", "sitting") == 3);
    CHECK(config_detail::closest_key("hours", {"hour", "min"}) == "hour");
    CHECK(config_detail::closest_key("zzzzzz", {"hour", "min"}).empty());
}

TEST_CASE("allow_overlap stays compatible and agrees with concurrency") {
    const FileConfig exact = parse_config(job_yaml("j", "  allow_overlap: \"i know what i am doing!\"\n"), "a.yaml");
    CHECK(exact.problems.empty());
    REQUIRE(exact.jobs.size() == 1);
    CHECK(exact.jobs[0].concurrency == Concurrency::allow);

    const FileConfig unquoted = parse_config(job_yaml("j", "  allow_overlap: i know what i am doing!\n"), "a.yaml");
    REQUIRE(unquoted.jobs.size() == 1);
    CHECK(unquoted.jobs[0].concurrency == Concurrency::allow);

    for (const char* value : {"true", "yes", "'I know what I am doing'"}) {
        CAPTURE(value);
        const FileConfig other = parse_config(job_yaml("j", std::string("  allow_overlap: ") + value + "\n"), "a.yaml");
        REQUIRE(other.jobs.size() == 1);
        CHECK(other.jobs[0].concurrency == Concurrency::forbid);
        const Problem* w = find_problem(other.problems, "allow_overlap", Problem::Severity::warning);
        REQUIRE(w != nullptr);
        CHECK(w->line == 9);
        CHECK(w->message.find("\"i know what i am doing!\"") != std::string::npos);
        CHECK(w->message.find("does not enable overlap") != std::string::npos);
    }

    const FileConfig agree =
        parse_config(job_yaml("j", "  allow_overlap: \"i know what i am doing!\"\n  concurrency: allow\n"), "a.yaml");
    CHECK(agree.problems.empty());
    REQUIRE(agree.jobs.size() == 1);
    CHECK(agree.jobs[0].concurrency == Concurrency::allow);

    const std::string msg =
        single_error("  allow_overlap: \"i know what i am doing!\"\n  concurrency: forbid\n", "concurrency", 10);
    CHECK(msg.find("contradicts 'allow_overlap'") != std::string::npos);
}

TEST_CASE("schedule: a macro or seven fields, never together with the separate fields") {
    const FileConfig fc = parse_config("daily:\n  command: x\n  targets: h\n  schedule: '@daily'\n"
                                       "every5:\n  command: x\n  targets: h\n  schedule: '0 */5 * * * * *'\n",
                                       "a.yaml");
    INFO(all_text(fc.problems));
    CHECK(fc.problems.empty());
    REQUIRE(fc.jobs.size() == 2);
    CHECK(fc.jobs[0].schedule.text() == "@daily");
    CHECK(fc.jobs[1].schedule.text() == "0 */5 * * * * *");

    const FileConfig both = parse_config(job_yaml("j", "  schedule: '@hourly'\n"), "a.yaml");
    CHECK(both.jobs.empty());
    for (const char* f : {"min", "hour", "dom", "mon", "dow"}) {
        CAPTURE(f);
        const Problem* p = find_problem(both.problems, f);
        REQUIRE(p != nullptr);
        CHECK(p->message.find("cannot be combined with 'schedule'") != std::string::npos);
    }
    const Problem* min = find_problem(both.problems, "min");
    REQUIRE(min != nullptr);
    CHECK(min->line == 4);

    const FileConfig bad = parse_config("j:\n  command: x\n  targets: h\n  schedule: '0 0 99 * * * *'\n", "a.yaml");
    CHECK(bad.jobs.empty());
    const Problem* p = find_problem(bad.problems, "schedule");
    REQUIRE(p != nullptr);
    CHECK(p->line == 4);
    CHECK(p->message.find("hour") != std::string::npos);
}

TEST_CASE("timezone and utc") {
    const FileConfig utc = parse_config(job_yaml("j", "  utc: true\n"), "a.yaml");
    CHECK(utc.problems.empty());
    REQUIRE(utc.jobs.size() == 1);
    CHECK(utc.jobs[0].timezone == "UTC");

    const FileConfig utc_and_utc = parse_config(job_yaml("j", "  utc: true\n  timezone: Etc/UTC\n"), "a.yaml");
    CHECK(utc_and_utc.problems.empty());
    CHECK(utc_and_utc.jobs.size() == 1);

    CHECK(single_error("  utc: true\n  timezone: America/New_York\n", "timezone", 10).find("conflicts") !=
          std::string::npos);

    const FileConfig ny = parse_config(job_yaml("j", "  utc: false\n  timezone: America/New_York\n"), "a.yaml");
    REQUIRE(ny.jobs.size() == 1);
    const LoadResult merged = merge_configs({ny});
    REQUIRE(merged.config.jobs.size() == 1);
    CHECK(merged.config.jobs[0].zone.name() == "America/New_York");
}

TEST_CASE("quoted booleans are read with a warning, as the original read any string as true") {
    const FileConfig fc = parse_config(job_yaml("j", "  use_wrapper: 'no'\n"), "a.yaml");
    REQUIRE(fc.jobs.size() == 1);
    CHECK_FALSE(fc.jobs[0].use_wrapper);
    const Problem* w = find_problem(fc.problems, "use_wrapper", Problem::Severity::warning);
    REQUIRE(w != nullptr);
    CHECK(w->line == 9);

    const FileConfig plain = parse_config(job_yaml("j", "  use_wrapper: off\n"), "a.yaml");
    CHECK(plain.problems.empty());
    REQUIRE(plain.jobs.size() == 1);
    CHECK_FALSE(plain.jobs[0].use_wrapper);
}

TEST_CASE("hard_timeout, soft_timeout and group are accepted with a warning") {
    const FileConfig fc =
        parse_config(job_yaml("j", "  hard_timeout: 10\n  soft_timeout: 5\n  group: other\n"), "/x/team.yaml");
    REQUIRE(fc.jobs.size() == 1);
    CHECK(fc.jobs[0].group == "team");
    CHECK(fc.jobs[0].timeout == 3600s);
    CHECK(count_severity(fc.problems, Problem::Severity::error) == 0);
    CHECK(count_severity(fc.problems, Problem::Severity::warning) == 3);
    REQUIRE(find_problem(fc.problems, "hard_timeout", Problem::Severity::warning) != nullptr);
    CHECK(find_problem(fc.problems, "hard_timeout", Problem::Severity::warning)->message.find("'timeout' applies") !=
          std::string::npos);
    const Problem* g = find_problem(fc.problems, "group", Problem::Severity::warning);
    REQUIRE(g != nullptr);
    CHECK(g->line == 11);
    CHECK(g->message.find("'team'") != std::string::npos);
}

TEST_CASE("a YAML syntax error is reported with 1-based line and column") {
    const FileConfig fc = parse_config("job:\n  command: [x\n  other: 1\n", "bad.yaml");
    CHECK_FALSE(fc.readable);
    CHECK(fc.jobs.empty());
    REQUIRE(fc.problems.size() == 1);
    CHECK(fc.problems[0].is_error());
    CHECK(fc.problems[0].line == 3);
    CHECK(fc.problems[0].column == 8);
    CHECK(fc.problems[0].to_string().rfind("bad.yaml:3:8: YAML syntax error: ", 0) == 0);

    const FileConfig tab = parse_config("a: b\n\tc: d\n", "tab.yaml");
    CHECK_FALSE(tab.readable);
    REQUIRE(tab.problems.size() == 1);
    CHECK(tab.problems[0].line == 2);
}

TEST_CASE("empty files and non-mapping top levels") {
    const FileConfig empty = parse_config("", "e.yaml");
    CHECK(empty.readable);
    CHECK(empty.jobs.empty());
    CHECK(empty.problems.empty());

    const FileConfig comment = parse_config("# nothing yet\n", "e.yaml");
    CHECK(comment.readable);
    CHECK(comment.problems.empty());

    const FileConfig list = parse_config("- a\n- b\n", "l.yaml");
    CHECK_FALSE(list.readable);
    REQUIRE(list.problems.size() == 1);
    CHECK(list.problems[0].message.find("got a list") != std::string::npos);
}

TEST_CASE("a job defined twice in one file keeps the first") {
    const FileConfig fc = parse_config(job_yaml("dup") + job_yaml("dup", "  timeout: 5\n"), "a.yaml");
    REQUIRE(fc.jobs.size() == 1);
    CHECK(fc.jobs[0].timeout == 3600s);
    REQUIRE(fc.problems.size() == 1);
    CHECK(fc.problems[0].line == 9);
    CHECK(fc.problems[0].message.find("lines 1 and 9") != std::string::npos);
}

TEST_CASE("a key given twice in a job: a warning, and the later value is used") {
    const FileConfig fc = parse_config(job_yaml("j", "  retries: 1\n  retries: 4\n"), "a.yaml");
    REQUIRE(fc.jobs.size() == 1);
    CHECK(fc.jobs[0].retries == 4);
    REQUIRE(fc.problems.size() == 1);
    CHECK(fc.problems[0].severity == Problem::Severity::warning);
    CHECK(fc.problems[0].field == "retries");
    CHECK(fc.problems[0].line == 10);
    CHECK(fc.problems[0].message.find("first on line 9") != std::string::npos);
}

TEST_CASE("Problem::to_string leaves out unknown parts") {
    Problem p;
    p.file = "a.yaml";
    p.message = "boom";
    CHECK(p.to_string() == "a.yaml: boom");
    p.line = 4;
    CHECK(p.to_string() == "a.yaml:4: boom");
    p.column = 2;
    p.job = "j";
    CHECK(p.to_string() == "a.yaml:4:2: job 'j': boom");
    p.field = "min";
    p.severity = Problem::Severity::warning;
    CHECK(p.to_string() == "a.yaml:4:2: warning: job 'j': field 'min': boom");
    p.file.clear();
    p.line = 0;
    CHECK(p.to_string() == "warning: job 'j': field 'min': boom");
}

TEST_CASE("enum names round trip") {
    for (const char* name : {"glob", "pcre", "list", "grain", "grain_pcre", "pillar", "pillar_pcre", "nodegroup",
                             "compound", "ipcidr", "range"}) {
        CAPTURE(name);
        const auto t = target_type_from_string(name);
        REQUIRE(t.has_value());
        CHECK(to_string(*t) == name);
    }
    CHECK_FALSE(target_type_from_string("Glob").has_value());
    CHECK(to_string(Concurrency::forbid) == "forbid");
    CHECK(to_string(Concurrency::allow) == "allow");
    CHECK(to_string(Concurrency::replace) == "replace");
    CHECK(to_string(Misfire::skip) == "skip");
    CHECK(to_string(Misfire::run_once) == "run_once");
}

TEST_CASE("Amount::resolve") {
    CHECK(Amount{5, false}.resolve(100) == 5);
    CHECK(Amount{25, true}.resolve(10) == 3);   // 2.5 rounds up
    CHECK(Amount{25, true}.resolve(8) == 2);
    CHECK(Amount{1, true}.resolve(10) == 1);    // at least one
    CHECK(Amount{100, true}.resolve(7) == 7);
    CHECK(Amount{0, true}.resolve(7) == 0);
    CHECK(Amount{0, false}.resolve(7) == 0);
}

TEST_CASE("saltpeter_config: defaults, every key, types and unknown keys") {
    const Settings defaults;
    CHECK(defaults.logdir == "/var/log/saltpeter");
    CHECK(defaults.api_ws_port == 8888);
    CHECK(defaults.machines_ws_port == 8889);
    CHECK(defaults.heartbeat_timeout == 15s);
    CHECK(defaults.wrapper_auth == "required");
    CHECK(defaults.default_timezone == "UTC");

    const FileConfig fc = parse_config("saltpeter_config:\n"
                                       "  logdir: /srv/log\n"
                                       "  debug: true\n"
                                       "  api_ws: true\n"
                                       "  api_ws_port: 9000\n"
                                       "  machines_ws_port: 9001\n"
                                       "  machines_idle_timeout: 0\n"
                                       "  heartbeat_timeout: 20\n"
                                       "  kill_grace: 0\n"
                                       "  wrapper_auth: compatible\n"
                                       "  default_timezone: Europe/Paris\n"
                                       "  cors_origins: [https://ui.example.com]\n"
                                       "  local_minions: node1\n"
                                       "  history_max_runs: 50\n"
                                       "  output_max_bytes: 1048576\n"
                                       "  api_tokens:\n"
                                       "    - {name: ui, token: s3cret}\n"
                                       "    - {name: ops, token_file: /etc/sp/ops.token, role: operate}\n"
                                       "  notify: {on: [missed], webhook: 'https://h'}\n",
                                       "s.yaml");
    INFO(all_text(fc.problems));
    CHECK(fc.problems.empty());
    CHECK(fc.jobs.empty());
    CHECK(fc.settings_keys.size() == 16);
    Settings s;
    fc.apply_settings(s);
    CHECK(s.logdir == "/srv/log");
    CHECK(s.debug);
    CHECK(s.api_ws);
    CHECK(s.api_ws_port == 9000);
    CHECK(s.machines_ws_port == 9001);
    CHECK(s.machines_idle_timeout == 0s);
    CHECK(s.heartbeat_timeout == 20s);
    CHECK(s.kill_grace == 0s);
    CHECK(s.wrapper_auth == "compatible");
    CHECK(s.default_timezone == "Europe/Paris");
    CHECK(s.cors_origins == std::vector<std::string>{"https://ui.example.com"});
    CHECK(s.local_minions == std::vector<std::string>{"node1"});
    CHECK(s.history_max_runs == 50);
    CHECK(s.output_max_bytes == 1048576u);
    REQUIRE(s.api_tokens.size() == 2);
    CHECK(s.api_tokens[0].name == "ui");
    CHECK(s.api_tokens[0].token == "s3cret");
    CHECK(s.api_tokens[0].role == "read");
    CHECK(s.api_tokens[1].token_file == "/etc/sp/ops.token");
    CHECK(s.api_tokens[1].role == "operate");
    REQUIRE(s.notify.has_value());
    CHECK(s.notify->on == std::vector<std::string>{"missed"});
    // Keys not set keep their defaults.
    CHECK(s.api_ws_bind_addr == "0.0.0.0");
    CHECK(s.startup_timeout == 30s);
    CHECK(Settings{}.machines_idle_timeout == 60s);
    CHECK(s.salt_api_eauth == "pam");

    const FileConfig bad = parse_config("saltpeter_config:\n"
                                        "  api_ws_port: 70000\n"
                                        "  machines_ws_port: -1\n"
                                        "  debug: [x]\n"
                                        "  wrapper_auth: optional\n"
                                        "  heartbeat_timeout: 0\n"
                                        "  logdr: /x\n"
                                        "  api_tokens:\n"
                                        "    - {name: both, token: a, token_file: b}\n"
                                        "    - {token: nameless}\n"
                                        "    - {name: good, token: t, role: admin}\n",
                                        "s.yaml");
    CHECK(bad.settings_keys.size() == 1);  // api_tokens, with no valid entry left
    Settings b;
    bad.apply_settings(b);
    CHECK(b.api_ws_port == 8888);
    CHECK(b.machines_ws_port == 8889);
    CHECK_FALSE(b.debug);
    CHECK(b.wrapper_auth == "required");
    CHECK(b.heartbeat_timeout == 15s);
    CHECK(b.api_tokens.empty());
    REQUIRE(find_problem(bad.problems, "api_ws_port") != nullptr);
    CHECK(find_problem(bad.problems, "api_ws_port")->line == 2);
    CHECK(find_problem(bad.problems, "api_ws_port")->message.find("between 0 and 65535") != std::string::npos);
    CHECK(find_problem(bad.problems, "machines_ws_port")->line == 3);
    CHECK(find_problem(bad.problems, "debug")->line == 4);
    CHECK(find_problem(bad.problems, "wrapper_auth")->line == 5);
    CHECK(find_problem(bad.problems, "heartbeat_timeout")->line == 6);
    const Problem* unknown = find_problem(bad.problems, "logdr", Problem::Severity::warning);
    REQUIRE(unknown != nullptr);
    CHECK(unknown->message.find("did you mean 'logdir'?") != std::string::npos);
    CHECK(count_severity(bad.problems, Problem::Severity::error) == 8);
}

TEST_CASE("settings merge across files in order, later wins per key") {
    const FileConfig a = parse_config("saltpeter_config:\n  logdir: /a\n  api_ws_port: 1111\n", "a.yaml");
    const FileConfig b = parse_config("saltpeter_config:\n  logdir: /b\n", "b.yaml");
    const LoadResult r = merge_configs({a, b});
    CHECK(r.problems.empty());
    CHECK(r.config.settings.logdir == "/b");
    CHECK(r.config.settings.api_ws_port == 1111);
    const LoadResult reversed = merge_configs({b, a});
    CHECK(reversed.config.settings.logdir == "/a");
}

TEST_CASE("default_timezone resolves job zones; an unknown one is an error and UTC is used") {
    const FileConfig s = parse_config("saltpeter_config:\n  default_timezone: Asia/Tokyo\n", "0.yaml");
    const FileConfig jobs = parse_config(job_yaml("local") + job_yaml("pinned", "  timezone: Europe/Berlin\n"),
                                         "1.yaml");
    const LoadResult r = merge_configs({s, jobs});
    CHECK(r.problems.empty());
    REQUIRE(r.config.jobs.size() == 2);
    CHECK(r.config.find("local")->zone.name() == "Asia/Tokyo");
    CHECK(r.config.find("pinned")->zone.name() == "Europe/Berlin");

    const FileConfig bad = parse_config("\nsaltpeter_config:\n  default_timezone: Nowhere/City\n", "0.yaml");
    const LoadResult rb = merge_configs({bad, jobs});
    REQUIRE(rb.error_count() == 1);
    const Problem* p = find_problem(rb.problems, "default_timezone");
    REQUIRE(p != nullptr);
    CHECK(p->file == "0.yaml");
    CHECK(p->line == 3);
    CHECK(p->message.find("Nowhere/City") != std::string::npos);
    CHECK(rb.config.settings.default_timezone == "UTC");
    CHECK(rb.config.find("local")->zone.name() == "UTC");
    CHECK(rb.config.find("pinned")->zone.name() == "Europe/Berlin");
}

TEST_CASE("duplicate job names across files: an error naming both, the first stays") {
    const FileConfig a = parse_config("\n\n" + job_yaml("backup", "  timeout: 1\n"), "a.yaml");
    const FileConfig b = parse_config("x:\n  y: 1\n" + std::string(4, '\n') + job_yaml("backup", "  timeout: 2\n"),
                                      "b.yaml");
    const LoadResult r = merge_configs({a, b});
    REQUIRE(r.config.jobs.size() == 1);
    CHECK(r.config.jobs[0].timeout == 1s);
    bool found = false;
    for (const auto& p : r.problems) {
        if (p.message == "job 'backup' is defined in a.yaml:3 and again in b.yaml:7; the later definition is ignored") {
            found = true;
            CHECK(p.file == "b.yaml");
            CHECK(p.line == 7);
            CHECK(p.is_error());
        }
    }
    CHECK_MESSAGE(found, all_text(r.problems));
}

TEST_CASE("merged jobs are sorted by name and found by name") {
    const FileConfig a = parse_config(job_yaml("zeta") + job_yaml("alpha"), "a.yaml");
    const FileConfig b = parse_config(job_yaml("mid"), "b.yaml");
    const LoadResult r = merge_configs({a, b});
    CHECK(job_names(r.config) == std::vector<std::string>{"alpha", "mid", "zeta"});
    REQUIRE(r.config.find("mid") != nullptr);
    CHECK(r.config.find("mid")->file == "b.yaml");
    CHECK(r.config.find("nope") == nullptr);
}

TEST_CASE("saltpeter_maintenance: bool, until, machine lists; other types keep the default") {
    const FileConfig fc = parse_config("saltpeter_maintenance:\n"
                                       "  global: true\n"
                                       "  machines:\n"
                                       "    - db01\n"
                                       "    - target: 'G@role:cache'\n"
                                       "      until: '2026-12-01T06:00:00Z'\n",
                                       "m.yaml");
    INFO(all_text(fc.problems));
    CHECK(fc.problems.empty());
    const LoadResult r = merge_configs({fc});
    const Maintenance& m = r.config.maintenance;
    CHECK(m.global);
    CHECK_FALSE(m.global_until.has_value());
    REQUIRE(m.machines.size() == 2);
    CHECK(m.machines[0].target == "db01");
    CHECK_FALSE(m.machines[0].until.has_value());
    CHECK(m.machines[1].target == "G@role:cache");
    REQUIRE(m.machines[1].until.has_value());
    CHECK(*m.machines[1].until == utc_time("2026-12-01T06:00:00Z"));
    CHECK(m.global_active(utc_time("2030-01-01T00:00:00Z")));

    const FileConfig until = parse_config("saltpeter_maintenance:\n  global: {until: '2026-12-01T06:00:00+01:00'}\n",
                                          "m.yaml");
    CHECK(until.problems.empty());
    Maintenance mu;
    until.apply_maintenance(mu);
    CHECK(mu.global);
    REQUIRE(mu.global_until.has_value());
    CHECK(*mu.global_until == utc_time("2026-12-01T05:00:00Z"));
    CHECK(mu.global_active(utc_time("2026-12-01T04:59:59Z")));
    CHECK_FALSE(mu.global_active(utc_time("2026-12-01T05:00:00Z")));

    const FileConfig wrong = parse_config("saltpeter_maintenance:\n"
                                          "  global: 'true'\n"
                                          "  machines: db01\n",
                                          "m.yaml");
    CHECK(wrong.maintenance_keys.empty());
    const LoadResult rw = merge_configs({fc, wrong});
    CHECK(rw.config.maintenance.global);  // kept from the earlier file: the bad values set nothing
    CHECK(rw.config.maintenance.machines.size() == 2);
    REQUIRE(find_problem(wrong.problems, "global") != nullptr);
    CHECK(find_problem(wrong.problems, "global")->line == 2);
    REQUIRE(find_problem(wrong.problems, "machines") != nullptr);
    CHECK(find_problem(wrong.problems, "machines")->line == 3);

    const FileConfig bad_until =
        parse_config("saltpeter_maintenance:\n  machines:\n    - {target: a, until: tomorrow}\n    - b\n", "m.yaml");
    const Problem* p = find_problem(bad_until.problems, "machines");
    REQUIRE(p != nullptr);
    CHECK(p->line == 3);
    Maintenance mb;
    bad_until.apply_maintenance(mb);
    REQUIRE(mb.machines.size() == 1);
    CHECK(mb.machines[0].target == "b");

    const FileConfig off = parse_config("saltpeter_maintenance:\n  global: false\n", "z.yaml");
    const LoadResult ro = merge_configs({fc, off});
    CHECK_FALSE(ro.config.maintenance.global);
    CHECK(ro.config.maintenance.machines.size() == 2);  // machines not set by z.yaml
}

TEST_CASE("load_config_dir: *.yaml and *.yml sorted, hidden and other files skipped, broken files reported") {
    TempDir dir;
    dir.write("b.yml", job_yaml("from_yml"));
    dir.write("a.yaml", job_yaml("from_yaml"));
    dir.write("c.yaml", "oops: [\n");
    dir.write("d.yaml.bak", job_yaml("from_bak"));
    dir.write("notes.txt", job_yaml("from_txt"));
    dir.write(".hidden.yaml", job_yaml("from_hidden"));
    std::filesystem::create_directory(dir.file("sub.yaml"));
    dir.write("sub.yaml/inner.yaml", job_yaml("from_subdir"));
    std::filesystem::create_symlink(dir.file("missing-target"), dir.file("e.yaml"));

    const auto r = load_config_dir(dir.path());
    REQUIRE(r.ok());
    CHECK(job_names(r->config) == std::vector<std::string>{"from_yaml", "from_yml"});
    CHECK(r->config.find("from_yml")->group == "b");
    CHECK(r->error_count() == 2);
    REQUIRE(r->problems.size() == 2);
    CHECK(r->problems[0].file == dir.file("c.yaml"));
    CHECK(r->problems[0].line == 2);
    CHECK(r->problems[1].file == dir.file("e.yaml"));
    CHECK(r->problems[1].message.find("cannot read file") != std::string::npos);
}

TEST_CASE("load_config_dir: a missing directory is an error naming it") {
    const auto r = load_config_dir("/nonexistent/saltpeter-config");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message == "cannot read config directory '/nonexistent/saltpeter-config': No such file or directory");
}

TEST_CASE("the broken test files are reported and do not hide each other") {
    const auto r = load_config_dir(std::string(SALTPETER_SOURCE_DIR) + "/tests/data/config/broken");
    REQUIRE(r.ok());
    INFO(all_text(r->problems));
    CHECK(job_names(r->config) == std::vector<std::string>{"fine_job"});
    CHECK(r->error_count() == 5);
    const std::string text = all_text(r->problems);
    CHECK(text.find("mixed.yaml:9:1: job 'no_dow': field 'dow': missing required key 'dow'") != std::string::npos);
    CHECK(text.find("mixed.yaml:16:13: job 'scalar_job': expected a mapping") != std::string::npos);
    CHECK(text.find("mixed.yaml:25:12: job 'bad_timeout': field 'timeout': ") != std::string::npos);
    CHECK(text.find("not_a_mapping.yaml:1:1: ") != std::string::npos);
    CHECK(text.find("syntax.yaml:10:8: YAML syntax error") != std::string::npos);
}

TEST_CASE("the examples load with no errors and no warnings") {
    const auto r = load_config_dir(std::string(SALTPETER_SOURCE_DIR) + "/examples/config");
    REQUIRE(r.ok());
    INFO(all_text(r->problems));
    CHECK(r->problems.empty());
    CHECK(r->error_count() == 0);
    CHECK(r->warning_count() == 0);
    CHECK(r->config.jobs.size() == 14);
    const Job* berlin = r->config.find("berlin_backup");
    REQUIRE(berlin != nullptr);
    CHECK(berlin->zone.name() == "Europe/Berlin");
    CHECK(berlin->group == "example3");
    const Job* probe = r->config.find("sample_probe");
    REQUIRE(probe != nullptr);
    CHECK(probe->concurrency == Concurrency::allow);
    const Job* legacy = r->config.find("legacy_system_job");
    REQUIRE(legacy != nullptr);
    CHECK_FALSE(legacy->use_wrapper);
    CHECK(legacy->timeout == 600s);
    CHECK(r->config.settings.api_ws);
    CHECK(r->config.settings.api_tokens.size() == 2);
    CHECK(r->config.maintenance.machines.size() == 2);
    const auto later = validate_schedules(r->config, utc_time("2026-01-01T00:00:00Z"));
    CHECK_MESSAGE(later.empty(), all_text(later));
}

TEST_CASE("ConfigLoader keeps the last good version of a broken file, recovers, and drops deleted files") {
    TempDir dir;
    dir.write("a.yaml", job_yaml("a1") + job_yaml("a2"));
    dir.write("b.yaml", job_yaml("b1"));
    ConfigLoader loader(dir.path());
    CHECK(loader.dir() == dir.path());

    auto first = loader.reload();
    REQUIRE(first.ok());
    CHECK(first->problems.empty());
    CHECK(job_names(first->config) == std::vector<std::string>{"a1", "a2", "b1"});

    dir.write("a.yaml", "a1:\n  command: [broken\n");
    auto broken = loader.reload();
    REQUIRE(broken.ok());
    CHECK(job_names(broken->config) == std::vector<std::string>{"a1", "a2", "b1"});
    REQUIRE(broken->problems.size() == 2);
    CHECK(broken->problems[0].is_error());
    CHECK(broken->problems[0].file == dir.file("a.yaml"));
    CHECK(broken->problems[0].message.find("YAML syntax error") != std::string::npos);
    CHECK(broken->problems[1].severity == Problem::Severity::warning);
    CHECK(broken->problems[1].message.find("keeping the last good version of this file") != std::string::npos);

    // Still readable but with one bad job: that job is dropped and reported.
    dir.write("a.yaml", job_yaml("a1") + job_yaml("a2", "  retries: -1\n"));
    auto one_bad = loader.reload();
    REQUIRE(one_bad.ok());
    CHECK(job_names(one_bad->config) == std::vector<std::string>{"a1", "b1"});
    CHECK(one_bad->error_count() == 1);

    // A broken file now falls back to that last readable version (a1 only).
    dir.write("a.yaml", "{{{");
    auto again = loader.reload();
    REQUIRE(again.ok());
    CHECK(job_names(again->config) == std::vector<std::string>{"a1", "b1"});

    dir.write("a.yaml", job_yaml("a1") + job_yaml("a3"));
    auto recovered = loader.reload();
    REQUIRE(recovered.ok());
    CHECK(recovered->problems.empty());
    CHECK(job_names(recovered->config) == std::vector<std::string>{"a1", "a3", "b1"});

    dir.remove("b.yaml");
    auto deleted = loader.reload();
    REQUIRE(deleted.ok());
    CHECK(job_names(deleted->config) == std::vector<std::string>{"a1", "a3"});

    // A file broken on its first sight has nothing to fall back to.
    dir.write("b.yaml", "b1: [\n");
    auto new_broken = loader.reload();
    REQUIRE(new_broken.ok());
    CHECK(job_names(new_broken->config) == std::vector<std::string>{"a1", "a3"});
    CHECK(new_broken->error_count() == 1);
    CHECK(new_broken->warning_count() == 0);

    std::filesystem::remove_all(dir.path());
    auto gone = loader.reload();
    REQUIRE_FALSE(gone.ok());
    CHECK(gone.error().message.find("cannot read config directory") == 0);
}

TEST_CASE("validate_schedules: an expression that never fires again is an error") {
    const FileConfig fc = parse_config(job_yaml("past", "  year: 2020\n") + job_yaml("future"), "a.yaml");
    REQUIRE(fc.jobs.size() == 2);
    const LoadResult r = merge_configs({fc});
    const auto problems = validate_schedules(r.config, utc_time("2025-06-01T00:00:00Z"));
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].is_error());
    CHECK(problems[0].job == "past");
    CHECK(problems[0].line == 1);
    CHECK(problems[0].message.find("never fires again after 2025-06-01T00:00:00") != std::string::npos);
}

TEST_CASE("DST conflicts: fixed wall times in a gap or an overlap are found") {
    // Two offset changes like Europe/Berlin's in 2027: +1 -> +2 at 01:00 UTC on 28 March (02:00-03:00
    // wall time skipped), +2 -> +1 at 01:00 UTC on 31 October (02:00-03:00 wall time repeated).
    const SysSeconds spring = utc_time("2027-03-28T01:00:00Z");
    const SysSeconds autumn = utc_time("2027-10-31T01:00:00Z");
    const std::vector<ZoneSpan> spans = {
        {SysSeconds::min(), spring, 3600s, false},
        {spring, autumn, 7200s, true},
        {autumn, SysSeconds::max(), 3600s, false},
    };
    const auto at_0230 = CronExpression::parse("0 30 2 * * * *").value();
    const auto conflicts = config_detail::find_dst_conflicts(at_0230, spans);
    REQUIRE(conflicts.size() == 2);
    CHECK(conflicts[0].kind == config_detail::DstConflict::Kind::gap);
    CHECK(to_civil(conflicts[0].wall) == CivilTime{2027, 3, 28, 2, 30, 0});
    CHECK(conflicts[0].transition == spring);
    CHECK(conflicts[1].kind == config_detail::DstConflict::Kind::overlap);
    CHECK(to_civil(conflicts[1].wall) == CivilTime{2027, 10, 31, 2, 30, 0});

    const auto at_0130 = CronExpression::parse("0 30 1 * * * *").value();
    CHECK(config_detail::find_dst_conflicts(at_0130, spans).empty());

    // Only on the 1st of the month: the change days do not match, so nothing to warn about.
    const auto first_of_month = CronExpression::parse("0 30 2 1 * * *").value();
    CHECK(config_detail::find_dst_conflicts(first_of_month, spans).empty());

    const auto utc_spans = config_detail::spans_between(TimeZone::utc(), spring, autumn);
    CHECK(utc_spans.size() == 1);
}

TEST_CASE("sections that are not mappings are errors on their own line and set nothing") {
    const FileConfig fc =
        parse_config(job_yaml("j") + "saltpeter_config: verbose\nsaltpeter_maintenance: [db01]\n", "s.yaml");
    REQUIRE(fc.jobs.size() == 1);
    CHECK(fc.settings_keys.empty());
    CHECK(fc.maintenance_keys.empty());
    const Problem* s = find_problem(fc.problems, "saltpeter_config");
    REQUIRE(s != nullptr);
    CHECK(s->line == 9);
    CHECK(s->job.empty());
    CHECK(s->message.find("got 'verbose'") != std::string::npos);
    const Problem* m = find_problem(fc.problems, "saltpeter_maintenance");
    REQUIRE(m != nullptr);
    CHECK(m->line == 10);
    const LoadResult r = merge_configs({fc});
    CHECK(r.config.settings.logdir == "/var/log/saltpeter");
    CHECK_FALSE(r.config.maintenance.global);
    CHECK(r.error_count() == 2);
}
