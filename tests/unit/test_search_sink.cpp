#include <doctest/doctest.h>

#include <cstdlib>
#include <ctime>
#include <optional>
#include <string>

#include "core/metrics.hpp"
#include "outlets/search_sink.hpp"

using namespace saltpeter;

namespace {
// 2026-11-28 04:38:47.740601 UTC
const SysMicros k_time{std::chrono::microseconds{1795840727740601LL}};

// Sets TZ for one test and puts the old value back.
class ScopedTz {
public:
    explicit ScopedTz(const char* tz) {
        if (const char* old = std::getenv("TZ")) m_old = old;
        ::setenv("TZ", tz, 1);
        ::tzset();
    }
    ~ScopedTz() {
        if (m_old) ::setenv("TZ", m_old->c_str(), 1);
        else ::unsetenv("TZ");
        ::tzset();
    }
    ScopedTz(const ScopedTz&) = delete;
    ScopedTz& operator=(const ScopedTz&) = delete;

private:
    std::optional<std::string> m_old;
};
}  // namespace

TEST_CASE("search_timestamp is Python's isoformat() of an aware UTC time") {
    CHECK(search_timestamp(k_time) == "2026-11-28T04:38:47.740601+00:00");
    CHECK(search_timestamp(SysMicros{std::chrono::microseconds{1795840727000000LL}}) == "2026-11-28T04:38:47+00:00");
}

TEST_CASE("search_index_name uses the local date of the process") {
    const auto t = std::chrono::system_clock::time_point{std::chrono::seconds{1795896000}};  // 2026-11-28 20:00 UTC
    {
        ScopedTz tz("UTC0");
        CHECK(search_index_name("saltpeter", t) == "saltpeter-2026.11.28");
    }
    {
        ScopedTz tz("JST-9");  // 05:00 the next day
        CHECK(search_index_name("saltpeter", t) == "saltpeter-2026.11.29");
    }
    {
        ScopedTz tz("EST5");
        CHECK(search_index_name("logs", std::chrono::system_clock::time_point{std::chrono::seconds{1767243600}}) ==
              "logs-2026.01.01");  // 2026-01-01 05:00 UTC = 00:00 EST
        CHECK(search_index_name("logs", std::chrono::system_clock::time_point{std::chrono::seconds{1767243599}}) ==
              "logs-2025.12.31");
    }
}

TEST_CASE("search_document has the original's eight fields, in order") {
    LogRecord r;
    r.type = LogRecordType::machine_result;
    r.instance = "backup_1795840727";
    r.machine = "web1";
    r.code = 3;
    r.out = "10%\r100%\ndone \"quoted\"\n";
    r.time = k_time;
    CHECK(search_document("backup", "nightly", r) ==
          R"({"job_name":"backup","group":"nightly","job_instance":"backup_1795840727",)"
          R"("@timestamp":"2026-11-28T04:38:47.740601+00:00","return_code":3,"machine":"web1",)"
          R"("output":"100%\ndone \"quoted\"\n","msg_type":"machine_result"})");

    LogRecord start;
    start.type = LogRecordType::start;
    start.instance = "backup_1";
    start.time = SysMicros{std::chrono::microseconds{1795840727000000LL}};
    CHECK(search_document("backup", "", start) ==
          R"({"job_name":"backup","group":"","job_instance":"backup_1","@timestamp":"2026-11-28T04:38:47+00:00",)"
          R"("return_code":0,"machine":"","output":"","msg_type":"start"})");

    LogRecord end = start;
    end.type = LogRecordType::end;
    end.code = 1;
    CHECK(search_document("j", "g", end).find(R"("return_code":1,"machine":"","output":"","msg_type":"end"})") !=
          std::string::npos);
}

TEST_CASE("search_document replaces invalid UTF-8 instead of failing") {
    LogRecord r;
    r.instance = "j_1";
    r.machine = "m";
    r.out = std::string("ok \xff\xfe bytes");
    const std::string doc = search_document("j", "g", r);
    CHECK(doc.find("\"output\":\"ok \xef\xbf\xbd") != std::string::npos);
}

TEST_CASE("bulk_action is an index action line and the document line") {
    CHECK(bulk_action("saltpeter-2026.11.28", R"({"a":1})") ==
          "{\"index\":{\"_index\":\"saltpeter-2026.11.28\"}}\n{\"a\":1}\n");
}

TEST_CASE("an invalid search URL is an error naming the sink, without the credentials") {
    SearchSinkOptions o;
    o.name = "elasticsearch";
    o.url = "ftp://admin:hunter2@example.invalid";
    auto sink = SearchSink::create(o, nullptr);
    REQUIRE_FALSE(sink);
    CHECK(sink.error().field == "url");
    CHECK(sink.error().message.find("elasticsearch") != std::string::npos);
    CHECK(sink.error().message.find("hunter2") == std::string::npos);
    o.url = "admin:hunter2@example.invalid:9200";  // no scheme: no credentials recognised either
    sink = SearchSink::create(o, nullptr);
    REQUIRE_FALSE(sink);
    CHECK(sink.error().message.find("invalid URL") != std::string::npos);
    CHECK(sink.error().message.find("hunter2") == std::string::npos);
}

TEST_CASE("a stopped sink drops and counts what still arrives") {
    SearchSinkOptions o;
    o.url = "http://127.0.0.1:9";  // never contacted: nothing is queued before stop()
    auto sink = SearchSink::create(o, nullptr);
    REQUIRE(sink);
    (*sink)->stop();
    CHECK_FALSE((*sink)->enqueue("i", "{}"));
    LogRecord r;
    (*sink)->on_log("job", r);
    const SearchSinkStats s = (*sink)->stats();
    CHECK(s.dropped == 2);
    CHECK(s.sent == 0);
    CHECK(s.queued == 0);
}

TEST_CASE("report_search_sink fills the sink's series through a metrics collector") {
    Metrics m;
    SearchSinkStats stats;
    stats.sent = 7;
    stats.dropped = 2;
    stats.failed = 1;
    stats.retries = 3;
    stats.queued = 4;
    m.add_collector([&](Metrics& metrics) { report_search_sink(metrics, "opensearch", stats); });
    CHECK(m.value("saltpeter_search_documents_sent_total", {{"sink", "opensearch"}}) == 0);
    m.collect();
    CHECK(m.value("saltpeter_search_documents_sent_total", {{"sink", "opensearch"}}) == 7);
    CHECK(m.value("saltpeter_search_documents_dropped_total", {{"sink", "opensearch"}}) == 2);
    CHECK(m.value("saltpeter_search_documents_failed_total", {{"sink", "opensearch"}}) == 1);
    CHECK(m.value("saltpeter_search_retries_total", {{"sink", "opensearch"}}) == 3);
    CHECK(m.value("saltpeter_search_queue_depth", {{"sink", "opensearch"}}) == 4);
    stats.sent = 9;
    m.collect();
    const std::string text = m.render();
    CHECK(text.find("saltpeter_search_documents_sent_total{sink=\"opensearch\"} 9\n") != std::string::npos);
    CHECK(text.find("# TYPE saltpeter_search_queue_depth gauge") != std::string::npos);
}
