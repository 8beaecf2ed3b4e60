#include <doctest/doctest.h>

#include <algorithm>
#include <string>

#include "saltpeter/config.hpp"
#include "saltpeter/crontab_import.hpp"

using namespace saltpeter;

namespace {

CrontabImportOptions options(bool system = false) {
    CrontabImportOptions o;
    o.targets = "web01";
    o.system_crontab = system;
    o.origin = "my.crontab";
    return o;
}

// The converted YAML loaded by the real config parser: it must have no errors.
Config load(const CrontabImport& imported) {
    auto file = parse_config(imported.yaml, "imported.yaml");
    auto merged = merge_configs({file});
    for (const auto& p : merged.problems) INFO(p.to_string());
    CHECK(merged.error_count() == 0);
    CHECK(merged.warning_count() == 0);
    return merged.config;
}

}  // namespace

TEST_CASE("crontab import: five fields become the seven-field schedule with sec 0") {
    auto r = import_crontab("*/15 2-4 1,15 JAN-MAR mon-fri /usr/local/bin/backup.sh --full\n", options());
    REQUIRE(r.problems.empty());
    CHECK(r.jobs == 1);
    auto config = load(r);
    REQUIRE(config.jobs.size() == 1);
    const auto& job = config.jobs[0];
    CHECK(job.name == "backup");
    CHECK(job.command == "/usr/local/bin/backup.sh --full");
    CHECK(job.targets == "web01");
    CHECK(job.target_type == TargetType::glob);
    CHECK(job.schedule.fields().sec == "0");
    CHECK(job.schedule.fields().min == "*/15");
    CHECK(job.schedule.fields().hour == "2-4");
    CHECK(job.schedule.fields().dom == "1,15");
    CHECK(job.schedule.fields().mon == "JAN-MAR");
    CHECK(job.schedule.fields().dow == "mon-fri");
    CHECK(job.timeout.count() == 0);
    CHECK_FALSE(job.user.has_value());
}

TEST_CASE("crontab import: the converted schedule fires when cron would") {
    // 30 4 * * 0 : 04:30 every Sunday. 2027-01-03 is a Sunday.
    auto r = import_crontab("30 4 * * 0 /bin/true\n", options());
    auto config = load(r);
    REQUIRE(config.jobs.size() == 1);
    auto from = parse_iso8601("2027-01-01T00:00:00Z", TimeZone::utc());
    auto next = config.jobs[0].schedule.next_after(*from, TimeZone::utc());
    REQUIRE(next.has_value());
    CHECK(format_iso8601(*next, TimeZone::utc()) == "2027-01-03T04:30:00+00:00");
}

TEST_CASE("crontab import: macros expand to fields and keep the macro as a comment") {
    auto r = import_crontab("@daily /usr/bin/logrotate /etc/logrotate.conf\n@hourly /opt/x/poll\n", options());
    REQUIRE(r.problems.empty());
    CHECK(r.yaml.find("# @daily") != std::string::npos);
    auto config = load(r);
    REQUIRE(config.jobs.size() == 2);
    const auto* daily = config.find("logrotate");
    REQUIRE(daily != nullptr);
    CHECK(daily->schedule.fields().min == "0");
    CHECK(daily->schedule.fields().hour == "0");
    const auto* hourly = config.find("poll");
    REQUIRE(hourly != nullptr);
    CHECK(hourly->schedule.fields().hour == "*");
}

TEST_CASE("crontab import: comments stay, environment lines become env of the jobs after them") {
    const std::string text =
        "# nightly work\n"
        "PATH=/usr/local/bin:/usr/bin:/bin\n"
        "0 1 * * * first\n"
        "GREETING = \"hello world\"\n"
        "PATH=/opt/bin\n"
        "0 2 * * * second\n";
    auto r = import_crontab(text, options());
    REQUIRE(r.problems.empty());
    CHECK(r.yaml.find("# nightly work\n") != std::string::npos);
    auto config = load(r);
    const auto* first = config.find("first");
    const auto* second = config.find("second");
    REQUIRE(first != nullptr);
    REQUIRE(second != nullptr);
    REQUIRE(first->env.size() == 1);
    CHECK(first->env[0] == std::make_pair(std::string("PATH"), std::string("/usr/local/bin:/usr/bin:/bin")));
    REQUIRE(second->env.size() == 2);
    CHECK(second->env[0] == std::make_pair(std::string("PATH"), std::string("/opt/bin")));
    CHECK(second->env[1] == std::make_pair(std::string("GREETING"), std::string("hello world")));
}

TEST_CASE("crontab import: MAILTO and SHELL are warnings, CRON_TZ becomes timezone") {
    auto r = import_crontab("MAILTO=ops@example.com\nSHELL=/bin/bash\nCRON_TZ=Europe/Berlin\n15 3 * * * job\n",
                            options());
    REQUIRE(r.problems.size() == 2);
    CHECK(r.problems[0].severity == Problem::Severity::warning);
    CHECK(r.problems[0].line == 1);
    CHECK(r.problems[0].message.find("MAILTO") != std::string::npos);
    CHECK(r.problems[1].line == 2);
    CHECK(r.problems[1].message.find("/bin/bash") != std::string::npos);
    auto config = load(r);
    REQUIRE(config.jobs.size() == 1);
    CHECK(config.jobs[0].timezone == "Europe/Berlin");
    CHECK(config.jobs[0].env.empty());
}

TEST_CASE("crontab import: a system crontab's sixth field is the user") {
    auto r = import_crontab("17 * * * * root cd / && run-parts --report /etc/cron.hourly\n", options(true));
    REQUIRE(r.problems.empty());
    auto config = load(r);
    REQUIRE(config.jobs.size() == 1);
    CHECK(config.jobs[0].name == "run_parts");
    REQUIRE(config.jobs[0].user.has_value());
    CHECK(*config.jobs[0].user == "root");
    CHECK(config.jobs[0].command == "cd / && run-parts --report /etc/cron.hourly");
}

TEST_CASE("crontab import: bad lines are reported with their line numbers and kept as comments") {
    const std::string text =
        "0 1 * * * good\n"
        "61 * * * * bad_minute\n"
        "@reboot /usr/bin/start-thing\n"
        "0 2 * *\n"
        "0 3 * * * printf 'a%b'\n"
        "0 4 * * 9 bad_dow\n";
    auto r = import_crontab(text, options());
    CHECK(r.jobs == 1);
    REQUIRE(r.problems.size() == 5);
    for (const auto& p : r.problems) CHECK(p.is_error());
    CHECK(r.problems[0].line == 2);
    CHECK(r.problems[0].field == "min");
    CHECK(r.problems[0].file == "my.crontab");
    CHECK(r.problems[1].line == 3);
    CHECK(r.problems[1].message.find("@reboot") != std::string::npos);
    CHECK(r.problems[2].line == 4);
    CHECK(r.problems[3].line == 5);
    CHECK(r.problems[3].message.find("'%'") != std::string::npos);
    CHECK(r.problems[4].line == 6);
    CHECK(r.problems[4].field == "dow");
    CHECK(r.problems[0].to_string().rfind("my.crontab:2:1: field 'min': ", 0) == 0);
    CHECK(r.yaml.find("# 61 * * * * bad_minute\n") != std::string::npos);
    auto config = load(r);
    CHECK(config.jobs.size() == 1);
}

TEST_CASE("crontab import: escaped percent signs and quotes survive") {
    auto r = import_crontab("0 5 * * * date +\\%Y-\\%m-\\%d > '/tmp/it''s'\n", options());
    REQUIRE(r.problems.empty());
    auto config = load(r);
    REQUIRE(config.jobs.size() == 1);
    CHECK(config.jobs[0].command == "date +%Y-%m-%d > '/tmp/it''s'");
    CHECK(config.jobs[0].name == "date");
}

TEST_CASE("crontab import: job names are unique and valid") {
    auto r = import_crontab("0 1 * * * /bin/sync\n0 2 * * * sync\n0 3 * * * /usr/bin/sync -f\n", options());
    auto config = load(r);
    REQUIRE(config.jobs.size() == 3);
    CHECK(config.find("sync") != nullptr);
    CHECK(config.find("sync_2") != nullptr);
    CHECK(config.find("sync_3") != nullptr);
}

TEST_CASE("crontab import: names from commands") {
    CHECK(job_name_from_command("/usr/local/bin/Backup-DB.sh --all") == "backup_db");
    CHECK(job_name_from_command("FOO=1 BAR=2 /opt/run.py") == "run");
    CHECK(job_name_from_command("nice -n 10 ionice -c3 /usr/bin/updatedb") == "updatedb");
    CHECK(job_name_from_command("cd /srv/app && ./manage.py clearsessions") == "manage");
    CHECK(job_name_from_command("flock -n /run/x.lock /usr/bin/rsync -a a b") == "rsync");
    CHECK(job_name_from_command("/opt/2fa-sync") == "job_2fa_sync");
    CHECK(job_name_from_command("saltpeter_config") == "job_saltpeter_config");
    CHECK(job_name_from_command("%%%") == "job");
}

TEST_CASE("crontab import: targets and target type are applied and quoted") {
    auto o = options();
    o.targets = "G@role:db and web*";
    o.target_type = TargetType::compound;
    auto r = import_crontab("0 0 * * * x\n", o);
    auto config = load(r);
    REQUIRE(config.jobs.size() == 1);
    CHECK(config.jobs[0].targets == "G@role:db and web*");
    CHECK(config.jobs[0].target_type == TargetType::compound);
}
