#include <doctest/doctest.h>

#include "saltpeter/job_log.hpp"

using namespace saltpeter;

namespace {
// 2026-11-28 04:38:47.740601 UTC
const SysMicros k_time{std::chrono::microseconds{1795840727740601LL}};
}  // namespace

TEST_CASE("python_datetime prints like str(datetime) of an aware UTC time") {
    CHECK(python_datetime(k_time) == "2026-11-28 04:38:47.740601+00:00");
    CHECK(python_datetime(SysMicros{std::chrono::microseconds{1795840727000000LL}}) == "2026-11-28 04:38:47+00:00");
    CHECK(python_datetime(SysMicros{std::chrono::microseconds{1795840727000001LL}}) ==
          "2026-11-28 04:38:47.000001+00:00");
    CHECK(python_datetime(SysMicros{}) == "1970-01-01 00:00:00+00:00");
}

TEST_CASE("carriage returns keep the last non-empty segment of each line") {
    CHECK(process_carriage_returns("plain\ntext") == "plain\ntext");
    CHECK(process_carriage_returns("10%\r50%\r100%\ndone\n") == "100%\ndone\n");
    CHECK(process_carriage_returns("progress 100%\r\n") == "progress 100%\n");
    CHECK(process_carriage_returns("\r\r\n") == "\n");
    CHECK(process_carriage_returns("a\rb\r") == "b");
    CHECK(process_carriage_returns("") == "");
    CHECK(process_carriage_returns("\n\n") == "\n\n");
    CHECK(process_carriage_returns("x\r\ny\rz\nw") == "x\nz\nw");
}

TEST_CASE("records have the exact text of the original log files") {
    LogRecord r;
    r.instance = "demo_1795840727";
    r.time = k_time;

    r.type = LogRecordType::start;
    CHECK(format_log_record(r) == "###### Starting demo_1795840727 at 2026-11-28 04:38:47.740601+00:00 ################\n");

    r.type = LogRecordType::machine_start;
    r.machine = "web1";
    CHECK(format_log_record(r) ==
          "###### Starting demo_1795840727 on web1 at 2026-11-28 04:38:47.740601+00:00 ################\n");

    r.type = LogRecordType::no_machines;
    CHECK(format_log_record(r) == "!!!!!! No targets matched for demo_1795840727 !!!!!!\n");

    r.type = LogRecordType::test_ping_failed;
    r.out = "SALT-MASTER ERROR during test.ping: boom";
    CHECK(format_log_record(r) ==
          "!!!!!! SALT-MASTER ERROR during test.ping for demo_1795840727 at 2026-11-28 04:38:47.740601+00:00 "
          "!!!!!!\nSALT-MASTER ERROR during test.ping: boom\n");

    r.type = LogRecordType::end;
    CHECK(format_log_record(r) == "###### Finished demo_1795840727 at 2026-11-28 04:38:47.740601+00:00 ################\n");

    r.type = LogRecordType::overlap;
    CHECK(format_log_record(r) ==
          "###### Overlap detected on demo_1795840727 at 2026-11-28 04:38:47.740601+00:00 ################\n");

    r.type = LogRecordType::machine_result;
    r.code = 3;
    r.out = "line 1\nstep 1\rstep 2\n";
    CHECK(format_log_record(r) ==
          "########## web1 from demo_1795840727 ################\n**** Exit Code 3 ******\nline 1\nstep 2\n\n"
          "####### END web1 from demo_1795840727 at 2026-11-28 04:38:47.740601+00:00 #########\n");

    r.type = LogRecordType::maintenance;
    r.machine = "";
    r.code = 0;
    r.out = "Global maintenance mode active";
    CHECK(format_log_record(r) ==
          "##########  from demo_1795840727 ################\n**** Exit Code 0 ******\nGlobal maintenance mode "
          "active\n####### END  from demo_1795840727 at 2026-11-28 04:38:47.740601+00:00 #########\n");
    CHECK(to_string(LogRecordType::machine_result) == "machine_result");
    CHECK(to_string(LogRecordType::test_ping_failed) == "test_ping_failed");
}
