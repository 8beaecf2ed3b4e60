// SearchSink against a fake _bulk endpoint on 127.0.0.1: NDJSON shape, Basic auth, retries with
// backoff, partial failures, the queue bound and the stop deadline.
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "outlets/search_sink.hpp"
#include "watchdog.hpp"

using namespace saltpeter;
using namespace std::chrono_literals;

namespace {

struct BulkRequest {
    std::string method;
    std::string target;
    std::string content_type;
    std::string authorization;
    std::string body;
};

// Splits a _bulk body into its documents (every second line).
std::vector<std::string> documents_of(const std::string& body) {
    std::vector<std::string> lines, docs;
    std::size_t pos = 0;
    while (pos < body.size()) {
        const auto nl = body.find('\n', pos);
        if (nl == std::string::npos) break;
        lines.push_back(body.substr(pos, nl - pos));
        pos = nl + 1;
    }
    for (std::size_t i = 1; i < lines.size(); i += 2) docs.push_back(lines[i]);
    return docs;
}

// A one-connection-at-a-time HTTP/1.1 server: records each request, then answers what
// `respond` says (status, body). hold() makes it wait before answering until release().
class FakeBulk {
public:
    using Responder = std::function<std::pair<int, std::string>(const BulkRequest&, std::size_t index)>;

    explicit FakeBulk(Responder respond) : m_respond(std::move(respond)) {
        m_fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = 0;
        REQUIRE(::bind(m_fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        REQUIRE(::listen(m_fd, 16) == 0);
        socklen_t len = sizeof addr;
        ::getsockname(m_fd, reinterpret_cast<sockaddr*>(&addr), &len);
        m_port = ntohs(addr.sin_port);
        m_thread = std::thread([this] { serve(); });
    }
    ~FakeBulk() {
        {
            std::lock_guard<std::mutex> lock(m_mutex);
            m_stop = true;
            m_held = false;
        }
        m_cv.notify_all();
        m_thread.join();
        ::close(m_fd);
    }
    FakeBulk(const FakeBulk&) = delete;
    FakeBulk& operator=(const FakeBulk&) = delete;

    std::string url(const std::string& credentials = "") const {
        return "http://" + credentials + "127.0.0.1:" + std::to_string(m_port);
    }
    void hold() {
        std::lock_guard<std::mutex> lock(m_mutex);
        m_held = true;
    }
    void release() {
        {
            std::lock_guard<std::mutex> lock(m_mutex);
            m_held = false;
        }
        m_cv.notify_all();
    }
    std::vector<BulkRequest> requests() {
        std::lock_guard<std::mutex> lock(m_mutex);
        return m_requests;
    }
    bool wait_requests(std::size_t n, std::chrono::milliseconds limit) {
        std::unique_lock<std::mutex> lock(m_mutex);
        return m_cv.wait_for(lock, limit, [&] { return m_requests.size() >= n; });
    }

private:
    void serve() {
        while (true) {
            {
                std::lock_guard<std::mutex> lock(m_mutex);
                if (m_stop) return;
            }
            pollfd p{m_fd, POLLIN, 0};
            if (::poll(&p, 1, 20) <= 0) continue;
            const int conn = ::accept(m_fd, nullptr, nullptr);
            if (conn < 0) continue;
            handle(conn);
            ::close(conn);
        }
    }

    static std::string header(const std::string& head, const std::string& name) {
        std::string lower = head;
        std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
        const auto at = lower.find("\r\n" + name + ":");
        if (at == std::string::npos) return "";
        auto start = at + 3 + name.size();
        while (start < head.size() && head[start] == ' ') ++start;
        return head.substr(start, head.find("\r\n", start) - start);
    }

    void handle(int conn) {
        std::string data;
        char buf[65536];
        std::size_t head_end = std::string::npos;
        std::size_t length = 0;
        while (true) {
            if (head_end == std::string::npos) {
                head_end = data.find("\r\n\r\n");
                if (head_end != std::string::npos) length = std::stoul("0" + header(data.substr(0, head_end + 2), "content-length"));
            }
            if (head_end != std::string::npos && data.size() >= head_end + 4 + length) break;
            pollfd p{conn, POLLIN, 0};
            if (::poll(&p, 1, 5000) <= 0) return;
            const ssize_t n = ::read(conn, buf, sizeof buf);
            if (n <= 0) return;
            data.append(buf, static_cast<std::size_t>(n));
        }
        const std::string head = data.substr(0, head_end + 2);
        BulkRequest r;
        r.method = head.substr(0, head.find(' '));
        const auto t = head.find(' ') + 1;
        r.target = head.substr(t, head.find(' ', t) - t);
        r.content_type = header(head, "content-type");
        r.authorization = header(head, "authorization");
        r.body = data.substr(head_end + 4, length);
        std::size_t index = 0;
        {
            std::unique_lock<std::mutex> lock(m_mutex);
            index = m_requests.size();
            m_requests.push_back(r);
            m_cv.notify_all();
            m_cv.wait(lock, [&] { return !m_held; });
            if (m_stop) return;
        }
        const auto [status, body] = m_respond(r, index);
        const std::string reply = "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json\r\n" +
                                  "Content-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
        std::size_t sent = 0;
        while (sent < reply.size()) {
            const ssize_t n = ::write(conn, reply.data() + sent, reply.size() - sent);
            if (n <= 0) return;
            sent += static_cast<std::size_t>(n);
        }
    }

    Responder m_respond;
    int m_fd = -1;
    std::uint16_t m_port = 0;
    std::mutex m_mutex;
    std::condition_variable m_cv;
    std::vector<BulkRequest> m_requests;
    bool m_held = false;
    bool m_stop = false;
    std::thread m_thread;
};

std::pair<int, std::string> accept_all(const BulkRequest&, std::size_t) { return {200, R"({"errors":false,"items":[]})"}; }

bool wait_for(const std::function<bool()>& condition, std::chrono::milliseconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!condition()) {
        if (std::chrono::steady_clock::now() > until) return false;
        std::this_thread::sleep_for(10ms);
    }
    return true;
}

LogRecord record(LogRecordType type, const std::string& instance, const std::string& machine, int code,
                 const std::string& out) {
    LogRecord r;
    r.type = type;
    r.instance = instance;
    r.machine = machine;
    r.code = code;
    r.out = out;
    r.time = SysMicros{std::chrono::microseconds{1795840727740601LL}};
    return r;
}

SearchSinkOptions fast_options(const std::string& url) {
    SearchSinkOptions o;
    o.url = url;
    o.retry_initial = 20ms;
    o.retry_max = 80ms;
    o.request_timeout = 5000ms;
    o.stop_deadline = 5000ms;
    return o;
}

}  // namespace

TEST_CASE("search sink: records reach _bulk as NDJSON in the daily index, with Basic auth") {
    test::Watchdog dog(60s);
    FakeBulk server(accept_all);
    SearchSinkOptions o = fast_options(server.url("elastic:s3cr%40t@"));
    o.name = "elasticsearch";
    o.index_prefix = "jobs";
    auto created = SearchSink::create(o, [](const std::string& job) { return job == "backup" ? "nightly" : "?"; });
    REQUIRE(created);
    SearchSink& sink = **created;
    CHECK(sink.display_url().find("s3cr") == std::string::npos);
    CHECK(sink.display_url().find("elastic") == std::string::npos);
    const std::string index_before = search_index_name("jobs", std::chrono::system_clock::now());
    const std::vector<LogRecord> records = {
        record(LogRecordType::start, "backup_1", "", 0, ""),
        record(LogRecordType::machine_start, "backup_1", "web1", 0, ""),
        record(LogRecordType::machine_result, "backup_1", "web1", 3, "a\rb\n"),
        record(LogRecordType::end, "backup_1", "", 1, ""),
    };
    for (const auto& r : records) sink.on_log("backup", r);
    sink.stop();
    const std::string index_after = search_index_name("jobs", std::chrono::system_clock::now());

    std::string body;
    for (const auto& r : server.requests()) {
        CHECK(r.method == "POST");
        CHECK(r.target == "/_bulk");
        CHECK(r.content_type == "application/x-ndjson");
        CHECK(r.authorization == "Basic ZWxhc3RpYzpzM2NyQHQ=");  // elastic:s3cr@t
        body += r.body;
    }
    std::string expected_before, expected_after;
    for (const auto& r : records) {
        expected_before += bulk_action(index_before, search_document("backup", "nightly", r));
        expected_after += bulk_action(index_after, search_document("backup", "nightly", r));
    }
    CHECK((body == expected_before || body == expected_after));
    const SearchSinkStats s = sink.stats();
    CHECK(s.sent == 4);
    CHECK(s.dropped == 0);
    CHECK(s.failed == 0);
    CHECK(s.queued == 0);
}

TEST_CASE("search sink: failed requests are retried with backoff until they succeed") {
    test::Watchdog dog(60s);
    FakeBulk server([](const BulkRequest& r, std::size_t index) -> std::pair<int, std::string> {
        if (index < 2) return {500, R"({"error":"boom"})"};
        (void)r;
        return {200, R"({"errors":false})"};
    });
    auto created = SearchSink::create(fast_options(server.url()), nullptr);
    REQUIRE(created);
    SearchSink& sink = **created;
    CHECK(sink.enqueue("idx-2026.11.28", R"({"n":1})"));
    REQUIRE(wait_for([&] { return sink.stats().sent == 1; }, 10s));
    const auto requests = server.requests();
    REQUIRE(requests.size() == 3);
    for (const auto& r : requests) CHECK(r.body == bulk_action("idx-2026.11.28", R"({"n":1})"));
    CHECK(sink.stats().retries == 2);
    CHECK(sink.stats().queued == 0);
    sink.stop();
    CHECK(server.requests().size() == 3);
}

TEST_CASE("search sink: a partial failure retries 429 items and counts 4xx items as failed") {
    test::Watchdog dog(60s);
    std::atomic<int> busy_answers{0};
    FakeBulk server([&](const BulkRequest& r, std::size_t) -> std::pair<int, std::string> {
        std::string items;
        bool errors = false;
        for (const auto& doc : documents_of(r.body)) {
            int status = 201;
            if (doc.find("reject") != std::string::npos) status = 400;
            if (doc.find("busy") != std::string::npos && busy_answers++ == 0) status = 429;
            errors = errors || status >= 300;
            if (!items.empty()) items += ",";
            items += R"({"index":{"status":)" + std::to_string(status) +
                     (status == 400 ? R"(,"error":{"type":"mapper_parsing_exception","reason":"bad"})" : "") + "}}";
        }
        return {200, std::string(R"({"errors":)") + (errors ? "true" : "false") + R"(,"items":[)" + items + "]}"};
    });
    auto created = SearchSink::create(fast_options(server.url()), nullptr);
    REQUIRE(created);
    SearchSink& sink = **created;
    sink.enqueue("i", R"({"d":"ok"})");
    sink.enqueue("i", R"({"d":"busy"})");
    sink.enqueue("i", R"({"d":"reject"})");
    REQUIRE(wait_for([&] { return sink.stats().queued == 0; }, 10s));
    sink.stop();
    const SearchSinkStats s = sink.stats();
    CHECK(s.sent == 2);
    CHECK(s.failed == 1);
    CHECK(s.dropped == 0);
    CHECK(s.retries >= 1);
    std::vector<std::string> seen;
    for (const auto& r : server.requests())
        for (const auto& d : documents_of(r.body)) seen.push_back(d);
    CHECK(std::count(seen.begin(), seen.end(), R"({"d":"ok"})") == 1);
    CHECK(std::count(seen.begin(), seen.end(), R"({"d":"busy"})") == 2);
    CHECK(std::count(seen.begin(), seen.end(), R"({"d":"reject"})") == 1);
}

TEST_CASE("search sink: a full queue drops new documents and counts them, never blocking") {
    test::Watchdog dog(60s);
    FakeBulk server(accept_all);
    server.hold();
    SearchSinkOptions o = fast_options(server.url());
    o.max_queue_docs = 2;
    auto created = SearchSink::create(o, nullptr);
    REQUIRE(created);
    SearchSink& sink = **created;
    CHECK(sink.enqueue("i", R"({"n":1})"));
    REQUIRE(server.wait_requests(1, 10s));  // document 1 is in flight, the endpoint does not answer
    const auto start = std::chrono::steady_clock::now();
    CHECK(sink.enqueue("i", R"({"n":2})"));
    CHECK(sink.enqueue("i", R"({"n":3})"));
    CHECK_FALSE(sink.enqueue("i", R"({"n":4})"));
    CHECK_FALSE(sink.enqueue("i", R"({"n":5})"));
    CHECK(std::chrono::steady_clock::now() - start < 1s);
    SearchSinkStats s = sink.stats();
    CHECK(s.dropped == 2);
    CHECK(s.queued == 3);
    CHECK(s.sent == 0);
    server.release();
    REQUIRE(wait_for([&] { return sink.stats().sent == 3; }, 10s));
    sink.stop();
    std::vector<std::string> seen;
    for (const auto& r : server.requests())
        for (const auto& d : documents_of(r.body)) seen.push_back(d);
    CHECK(seen == std::vector<std::string>{R"({"n":1})", R"({"n":2})", R"({"n":3})"});
    s = sink.stats();
    CHECK(s.dropped == 2);
    CHECK(s.queued == 0);
}

TEST_CASE("search sink: the queue's byte bound drops too") {
    test::Watchdog dog(60s);
    FakeBulk server(accept_all);
    server.hold();
    SearchSinkOptions o = fast_options(server.url());
    o.max_queue_bytes = 100;
    auto created = SearchSink::create(o, nullptr);
    REQUIRE(created);
    SearchSink& sink = **created;
    CHECK(sink.enqueue("i", R"({"n":1})"));
    REQUIRE(server.wait_requests(1, 10s));
    CHECK_FALSE(sink.enqueue("i", std::string(200, 'x')));
    CHECK(sink.enqueue("i", R"({"n":2})"));
    CHECK(sink.stats().dropped == 1);
    server.release();
    sink.stop();
    CHECK(sink.stats().sent == 2);
}

TEST_CASE("search sink: stop gives up after its deadline and counts the rest as dropped") {
    test::Watchdog dog(60s);
    FakeBulk server(accept_all);
    server.hold();  // never answers until the end of the test
    SearchSinkOptions o = fast_options(server.url());
    o.stop_deadline = 300ms;
    o.request_timeout = 20000ms;
    auto created = SearchSink::create(o, nullptr);
    REQUIRE(created);
    SearchSink& sink = **created;
    sink.enqueue("i", R"({"n":1})");
    REQUIRE(server.wait_requests(1, 10s));
    sink.enqueue("i", R"({"n":2})");
    const auto start = std::chrono::steady_clock::now();
    sink.stop();
    CHECK(std::chrono::steady_clock::now() - start < 3s);
    const SearchSinkStats s = sink.stats();
    CHECK(s.dropped == 2);
    CHECK(s.sent == 0);
    CHECK(s.queued == 0);
    server.release();
}

TEST_CASE("search sink: an unreachable endpoint is retried, then dropped at stop") {
    test::Watchdog dog(60s);
    std::uint16_t port = 0;
    {
        FakeBulk closed(accept_all);  // a port nobody listens on once it is gone
        port = static_cast<std::uint16_t>(std::stoi(closed.url().substr(closed.url().rfind(':') + 1)));
    }
    SearchSinkOptions o = fast_options("http://127.0.0.1:" + std::to_string(port));
    o.stop_deadline = 300ms;
    auto created = SearchSink::create(o, nullptr);
    REQUIRE(created);
    SearchSink& sink = **created;
    sink.enqueue("i", R"({"n":1})");
    REQUIRE(wait_for([&] { return sink.stats().retries >= 2; }, 10s));
    sink.stop();
    CHECK(sink.stats().dropped == 1);
    CHECK(sink.stats().sent == 0);
}
