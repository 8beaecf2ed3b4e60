// SearchSink (search_sink.hpp): Elasticsearch/OpenSearch _bulk API,
// https://opensearch.org/docs/latest/api-reference/document-apis/bulk/
#include "outlets/search_sink.hpp"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <cstdio>
#include <ctime>
#include <deque>
#include <exception>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "net/http_client.hpp"

namespace saltpeter {

namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

std::string base64(const std::string& in) {
    static constexpr char k_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        const unsigned n = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                           static_cast<unsigned char>(in[i + 2]);
        out += k_alphabet[(n >> 18) & 63];
        out += k_alphabet[(n >> 12) & 63];
        out += k_alphabet[(n >> 6) & 63];
        out += k_alphabet[n & 63];
    }
    if (i + 1 == in.size()) {
        const unsigned n = static_cast<unsigned char>(in[i]) << 16;
        out += k_alphabet[(n >> 18) & 63];
        out += k_alphabet[(n >> 12) & 63];
        out += "==";
    } else if (i + 2 == in.size()) {
        const unsigned n = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8);
        out += k_alphabet[(n >> 18) & 63];
        out += k_alphabet[(n >> 12) & 63];
        out += k_alphabet[(n >> 6) & 63];
        out += '=';
    }
    return out;
}

std::string percent_decode(const std::string& in) {
    std::string out;
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] == '%' && i + 2 < in.size() && std::isxdigit(static_cast<unsigned char>(in[i + 1])) &&
            std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
            out += static_cast<char>(std::stoi(in.substr(i + 1, 2), nullptr, 16));
            i += 2;
        } else {
            out += in[i];
        }
    }
    return out;
}

// Splits user:password@ off the authority so that it becomes a header and stays out of logs.
struct SplitUrl {
    std::string without_credentials;
    std::string user_info;  // decoded user:password, empty when none
};
SplitUrl split_credentials(const std::string& url) {
    SplitUrl s{url, ""};
    const auto scheme_end = url.find("://");
    if (scheme_end == std::string::npos) return s;
    const auto host_start = scheme_end + 3;
    const auto path_start = url.find('/', host_start);
    const std::string authority = url.substr(host_start, path_start == std::string::npos ? std::string::npos
                                                                                          : path_start - host_start);
    const auto at = authority.rfind('@');
    if (at == std::string::npos) return s;
    const std::string info = authority.substr(0, at);
    const auto colon = info.find(':');
    s.user_info = colon == std::string::npos ? percent_decode(info)
                                             : percent_decode(info.substr(0, colon)) + ":" +
                                                   percent_decode(info.substr(colon + 1));
    s.without_credentials = url.substr(0, host_start) + url.substr(host_start + at + 1);
    return s;
}

}  // namespace

std::string search_timestamp(SysMicros time) {
    std::string s = python_datetime(time);
    const auto space = s.find(' ');
    if (space != std::string::npos) s[space] = 'T';
    return s;
}

std::string search_index_name(const std::string& prefix, std::chrono::system_clock::time_point now) {
    const std::time_t t = std::chrono::system_clock::to_time_t(now);
    std::tm local{};
    localtime_r(&t, &local);
    char buf[32];
    std::snprintf(buf, sizeof buf, "-%04d.%02d.%02d", local.tm_year + 1900, local.tm_mon + 1, local.tm_mday);
    return prefix + buf;
}

std::string search_document(const std::string& job, const std::string& group, const LogRecord& record) {
    // Key order as the original's dict; nlohmann's ordered_json keeps insertion order.
    nlohmann::ordered_json doc;
    doc["job_name"] = job;
    doc["group"] = group;
    doc["job_instance"] = record.instance;
    doc["@timestamp"] = search_timestamp(record.time);
    doc["return_code"] = record.code;
    doc["machine"] = record.machine;
    doc["output"] = process_carriage_returns(record.out);
    doc["msg_type"] = std::string(to_string(record.type));
    // Output is arbitrary bytes: invalid UTF-8 becomes U+FFFD rather than an exception.
    return doc.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string bulk_action(const std::string& index, const std::string& document) {
    Json action = {{"index", {{"_index", index}}}};
    return action.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n" + document + "\n";
}

// Shared by the sink and its worker thread: when stop() gives up on a request still in flight,
// the worker is detached and keeps the state alive until its request returns.
struct SearchSink::Impl {
    const SearchSinkOptions options;
    detail::Url url;
    std::string authorization;  // "Basic ..." or empty
    std::string display;

    std::mutex mutex;
    std::condition_variable wake;      // worker: new documents, stop
    std::condition_variable finished;  // stop(): the worker is done
    std::deque<std::string> queue;     // bulk action pairs
    std::size_t queued_bytes = 0;
    bool stopping = false;
    bool done = false;       // the worker left its loop
    bool abandoned = false;  // stop() gave up waiting; the worker must not count anything more
    bool drop_warned = false;
    Clock::time_point stop_by{};

    std::atomic<std::uint64_t> sent{0}, dropped{0}, failed{0}, retries{0}, depth{0};
    std::set<std::string> warned;  // worker only: kinds of failure already logged

    explicit Impl(SearchSinkOptions o) : options(std::move(o)) {}

    // What one _bulk request came to.
    struct Outcome {
        bool retry_all = false;
        std::size_t ok = 0;
        std::size_t rejected = 0;
        std::vector<std::string> again;  // documents to send again (429/5xx items)
        std::vector<std::pair<std::string, std::string>> warnings;  // kind, message
    };

    void warn_once(const std::string& kind, const std::string& message) {
        if (!warned.insert(kind).second) return;
        spdlog::warn("{} sink {}: {}", options.name, display, message);
    }

    void run() {
        try {
            loop();
        } catch (const std::exception& e) {
            spdlog::error("{} sink {}: worker stopped: {}", options.name, display, e.what());
        }
        std::lock_guard<std::mutex> lock(mutex);
        if (!abandoned) {
            dropped += depth.load();
            depth = 0;
        }
        queue.clear();
        queued_bytes = 0;
        done = true;
        finished.notify_all();
    }

    void loop() {
        std::vector<std::string> pending;  // the batch in flight, retried documents first
        auto backoff = options.retry_initial;
        for (;;) {
            std::chrono::milliseconds timeout = options.request_timeout;
            {
                std::unique_lock<std::mutex> lock(mutex);
                wake.wait(lock, [&] { return stopping || !queue.empty() || !pending.empty(); });
                if (stopping && (Clock::now() >= stop_by || (queue.empty() && pending.empty()))) return;
                std::size_t bytes = 0;
                for (const auto& p : pending) bytes += p.size();
                while (!queue.empty() && pending.size() < options.batch_docs &&
                       (pending.empty() || bytes + queue.front().size() <= options.batch_bytes)) {
                    bytes += queue.front().size();
                    queued_bytes -= queue.front().size();
                    pending.push_back(std::move(queue.front()));
                    queue.pop_front();
                }
                if (stopping) {
                    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(stop_by - Clock::now());
                    timeout = std::max(std::chrono::milliseconds(100), std::min(timeout, left));
                }
            }
            Outcome out = send(pending, timeout);
            {
                std::lock_guard<std::mutex> lock(mutex);
                if (abandoned) return;
                if (!out.retry_all) {
                    sent += out.ok;
                    failed += out.rejected;
                    depth -= out.ok + out.rejected;
                    pending = std::move(out.again);
                }
            }
            for (const auto& [kind, message] : out.warnings) warn_once(kind, message);
            if (pending.empty()) {
                if (out.warnings.empty() && !warned.empty()) {
                    warned.clear();
                    spdlog::info("{} sink {}: requests succeed again", options.name, display);
                }
                backoff = options.retry_initial;
                continue;
            }
            ++retries;
            wait_backoff(backoff);
            backoff = std::min(backoff * 2, options.retry_max);
        }
    }

    void wait_backoff(std::chrono::milliseconds backoff) {
        const auto until = Clock::now() + backoff;
        std::unique_lock<std::mutex> lock(mutex);
        for (;;) {
            const auto limit = stopping ? std::min(until, stop_by) : until;
            if (Clock::now() >= limit) return;
            const bool was_stopping = stopping;
            wake.wait_until(lock, limit, [&] { return stopping != was_stopping; });
        }
    }

    Outcome send(const std::vector<std::string>& pending, std::chrono::milliseconds timeout) const {
        Outcome out;
        detail::HttpRequest request;
        request.method = "POST";
        request.target = "/_bulk";
        request.peer = options.name;
        request.ca_file = options.ca_file;
        request.timeout = timeout;
        request.headers.emplace_back("Content-Type", "application/x-ndjson");
        if (!authorization.empty()) request.headers.emplace_back("Authorization", authorization);
        std::size_t bytes = 0;
        for (const auto& p : pending) bytes += p.size();
        request.body.reserve(bytes);
        for (const auto& p : pending) request.body += p;

        auto reply = detail::http_call(url, request);
        if (!reply) {
            out.retry_all = true;
            out.warnings.emplace_back("unreachable", reply.error().message + "; retrying with backoff");
            return out;
        }
        const int status = reply->status;
        const std::string http = "HTTP " + std::to_string(status);
        if (status == 429 || status >= 500 || status == 401 || status == 403) {
            // Overload, outage or credentials being fixed: worth waiting for.
            out.retry_all = true;
            out.warnings.emplace_back(http, "POST _bulk answered " + http + "; retrying with backoff");
            return out;
        }
        if (status < 200 || status >= 300) {
            out.rejected = pending.size();
            out.warnings.emplace_back(http, "POST _bulk answered " + http + "; dropped the " +
                                                std::to_string(pending.size()) + " document(s) of the request");
            return out;
        }
        const Json body = Json::parse(reply->body, nullptr, false);
        if (body.is_discarded() || !body.is_object() || !body.value("errors", false) || !body.contains("items") ||
            !body["items"].is_array()) {
            out.ok = pending.size();
            return out;
        }
        // A partial failure: the items answer the actions in order.
        const Json& items = body["items"];
        for (std::size_t i = 0; i < pending.size(); ++i) {
            if (i >= items.size() || !items[i].is_object() || items[i].empty()) {
                ++out.ok;
                continue;
            }
            const Json& result = items[i].begin().value();
            const int item_status = result.is_object() ? result.value("status", 200) : 200;
            if (item_status >= 200 && item_status < 300) {
                ++out.ok;
            } else if (item_status == 429 || item_status >= 500) {
                out.again.push_back(pending[i]);
            } else {
                ++out.rejected;
                std::string type = "status " + std::to_string(item_status);
                std::string reason;
                if (result.contains("error") && result["error"].is_object()) {
                    type = result["error"].value("type", type);
                    reason = result["error"].value("reason", "");
                }
                out.warnings.emplace_back("item " + type, "a document was rejected (" + type +
                                                              (reason.empty() ? "" : ": " + reason) +
                                                              "); such documents are dropped and counted as failed");
            }
        }
        if (!out.again.empty())
            out.warnings.emplace_back("items retried", std::to_string(out.again.size()) +
                                                           " document(s) refused with 429/5xx; sending them again");
        return out;
    }
};

SearchSink::SearchSink(std::shared_ptr<Impl> impl, GroupLookup group_of)
    : m_impl(std::move(impl)), m_group_of(std::move(group_of)) {}

Result<std::unique_ptr<SearchSink>> SearchSink::create(SearchSinkOptions options, GroupLookup group_of) {
    const SplitUrl split = split_credentials(options.url);
    auto url = detail::parse_url(split.without_credentials);
    if (!url) {
        // parse_url's message quotes the URL: only when it cannot hold a password.
        if (split.without_credentials.find('@') == std::string::npos)
            return Error{options.name + ": " + url.error().message, "url"};
        return Error{options.name + ": invalid URL (expected http(s)://[user:password@]host[:port][/path])", "url"};
    }
    options.url = split.without_credentials;
    options.max_queue_docs = std::max<std::size_t>(options.max_queue_docs, 1);
    options.batch_docs = std::max<std::size_t>(options.batch_docs, 1);
    auto impl = std::make_shared<Impl>(std::move(options));
    impl->url = *url;
    impl->display = split.without_credentials;
    if (!split.user_info.empty()) impl->authorization = "Basic " + base64(split.user_info);
    std::unique_ptr<SearchSink> sink(new SearchSink(impl, std::move(group_of)));
    sink->m_worker = std::thread([impl] { impl->run(); });
    return sink;
}

SearchSink::~SearchSink() { stop(); }

const SearchSinkOptions& SearchSink::options() const noexcept { return m_impl->options; }
const std::string& SearchSink::display_url() const noexcept { return m_impl->display; }

void SearchSink::on_log(const std::string& job, const LogRecord& record) {
    const std::string group = m_group_of ? m_group_of(job) : std::string();
    enqueue(search_index_name(m_impl->options.index_prefix, std::chrono::system_clock::now()),
            search_document(job, group, record));
}

bool SearchSink::enqueue(const std::string& index, const std::string& document) {
    std::string action = bulk_action(index, document);
    Impl& impl = *m_impl;
    const SearchSinkOptions& o = impl.options;
    bool warn = false;
    bool accepted = false;
    {
        std::lock_guard<std::mutex> lock(impl.mutex);
        const bool full =
            impl.queue.size() >= o.max_queue_docs || impl.queued_bytes + action.size() > o.max_queue_bytes;
        if (!impl.stopping && !full) {
            impl.queued_bytes += action.size();
            impl.queue.push_back(std::move(action));
            ++impl.depth;
            impl.drop_warned = false;
            accepted = true;
        } else {
            ++impl.dropped;
            warn = !impl.drop_warned && !impl.stopping;
            impl.drop_warned = true;
        }
    }
    if (!accepted) {
        if (warn)
            spdlog::warn("{} sink {}: queue full ({} documents / {} bytes at most), dropping documents until it drains",
                         o.name, impl.display, o.max_queue_docs, o.max_queue_bytes);
        return false;
    }
    impl.wake.notify_one();
    return true;
}

void SearchSink::stop() {
    Impl& impl = *m_impl;
    std::unique_lock<std::mutex> lock(impl.mutex);
    if (!m_worker.joinable()) return;
    impl.stopping = true;
    impl.stop_by = Clock::now() + impl.options.stop_deadline;
    impl.wake.notify_all();
    // A request already in flight has its own timeout; allow it a little beyond the deadline.
    const bool done = impl.finished.wait_until(lock, impl.stop_by + std::chrono::milliseconds(250),
                                               [&] { return impl.done; });
    if (!done) {
        impl.abandoned = true;
        impl.dropped += impl.depth.load();
        impl.depth = 0;
    }
    lock.unlock();
    if (done) m_worker.join();
    else m_worker.detach();
    const SearchSinkStats s = stats();
    if (!done)
        spdlog::warn("{} sink {}: a request was still in flight {} ms after stop; gave up on it", impl.options.name,
                     impl.display, impl.options.stop_deadline.count());
    if (s.dropped > 0 || s.failed > 0)
        spdlog::info("{} sink {} stopped: {} document(s) sent, {} dropped, {} rejected", impl.options.name, impl.display,
                     s.sent, s.dropped, s.failed);
}

SearchSinkStats SearchSink::stats() const {
    SearchSinkStats s;
    s.sent = m_impl->sent;
    s.dropped = m_impl->dropped;
    s.failed = m_impl->failed;
    s.retries = m_impl->retries;
    s.queued = m_impl->depth;
    return s;
}

void report_search_sink(Metrics& metrics, const std::string& name, const SearchSinkStats& stats) {
    const MetricLabels labels{{"sink", name}};
    metrics.describe("saltpeter_search_documents_sent_total", "counter", "Documents the search engine accepted, by sink");
    metrics.set("saltpeter_search_documents_sent_total", labels, static_cast<double>(stats.sent));
    metrics.describe("saltpeter_search_documents_dropped_total", "counter",
                     "Documents dropped because the sink's queue was full (or at stop), by sink");
    metrics.set("saltpeter_search_documents_dropped_total", labels, static_cast<double>(stats.dropped));
    metrics.describe("saltpeter_search_documents_failed_total", "counter",
                     "Documents the search engine rejected for good (4xx), by sink");
    metrics.set("saltpeter_search_documents_failed_total", labels, static_cast<double>(stats.failed));
    metrics.describe("saltpeter_search_retries_total", "counter", "_bulk requests sent again after a failure, by sink");
    metrics.set("saltpeter_search_retries_total", labels, static_cast<double>(stats.retries));
    metrics.describe("saltpeter_search_queue_depth", "gauge", "Documents waiting or in flight, by sink");
    metrics.set("saltpeter_search_queue_depth", labels, static_cast<double>(stats.queued));
}

}  // namespace saltpeter
