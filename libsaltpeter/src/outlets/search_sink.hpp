#pragma once
// SearchSink: ships spd's log records to Elasticsearch or OpenSearch as the documents of
// PROTOCOL.md 4.3, one per record, into the daily index <prefix>-YYYY.MM.DD (spd's local date).
// The io thread only formats a document and pushes it into a bounded queue; a worker thread
// sends batches with POST <url>/_bulk (NDJSON), retries with exponential backoff and never
// blocks the scheduler. When the queue is full the new document is dropped and counted.
//
//   on_log (io) --format--> queue (bounded) --batch--> worker: POST _bulk
//                               ^                          |  transport error, 429, 5xx: backoff, retry
//                               |                          |  200 + errors: retry 429/5xx items,
//                               +-- full: drop, count      |  count other rejected items as failed

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "saltpeter/job_log.hpp"
#include "core/metrics.hpp"
#include "saltpeter/result.hpp"
#include "saltpeter/runs.hpp"

namespace saltpeter {

struct SearchSinkOptions {
    std::string name = "opensearch";     ///< the metrics label `sink` and the name in log lines
    /// http(s)://[user:password@]host[:port][/base]; the credentials become a Basic
    /// Authorization header and never appear in log lines or errors.
    std::string url;
    std::string index_prefix = "saltpeter";  ///< documents go to <index_prefix>-YYYY.MM.DD
    std::size_t max_queue_docs = 10000;       ///< queued documents beyond this are dropped
    std::size_t max_queue_bytes = 64u * 1024u * 1024u;
    std::size_t batch_docs = 500;             ///< per _bulk request
    std::size_t batch_bytes = 5u * 1024u * 1024u;
    std::chrono::milliseconds retry_initial{500};  ///< backoff after a failed request, doubling
    std::chrono::milliseconds retry_max{30000};
    std::chrono::milliseconds request_timeout{20000};
    std::chrono::milliseconds stop_deadline{5000};  ///< stop(): how long to keep flushing
    std::string ca_file;                            ///< https: extra CA bundle (empty = system)
};

/// A snapshot of a sink's counters (read from any thread).
struct SearchSinkStats {
    std::uint64_t sent = 0;     ///< documents the server accepted
    std::uint64_t dropped = 0;  ///< queue full, or still queued when stop() gave up
    std::uint64_t failed = 0;   ///< documents the server rejected for good (4xx)
    std::uint64_t retries = 0;  ///< _bulk requests sent again after a failure
    std::uint64_t queued = 0;   ///< documents waiting or in flight
};

/// `@timestamp` of a document: ISO-8601 as Python's isoformat() of an aware UTC datetime
/// ("2026-11-28T04:38:47.740601+00:00", the fraction left out when zero).
std::string search_timestamp(SysMicros time);

/// `<prefix>-YYYY.MM.DD` for the local date (TZ of the process) at `now`.
std::string search_index_name(const std::string& prefix, std::chrono::system_clock::time_point now);

/// The JSON document of one log record (PROTOCOL.md 4.3): job_name, group, job_instance,
/// @timestamp, return_code, machine ('' when none), output (carriage returns processed), msg_type.
std::string search_document(const std::string& job, const std::string& group, const LogRecord& record);

/// One `_bulk` action pair: {"index":{"_index":"<index>"}}\n<document>\n.
std::string bulk_action(const std::string& index, const std::string& document);

class SearchSink final : public RunObserver {
public:
    /// Gives the group (config file name) of a job; called on the io thread.
    using GroupLookup = std::function<std::string(const std::string& job)>;

    /// Starts the worker thread. Error (field "url") naming the sink when the URL is invalid;
    /// the message leaves out any credentials.
    static Result<std::unique_ptr<SearchSink>> create(SearchSinkOptions options, GroupLookup group_of);
    /// Stops as stop() does.
    ~SearchSink() override;
    SearchSink(const SearchSink&) = delete;
    SearchSink& operator=(const SearchSink&) = delete;

    /// Formats the record and queues it for the day's index (io thread; never blocks on I/O).
    void on_log(const std::string& job, const LogRecord& record) override;
    /// Queues a formatted document for `index` (any thread). False, and counted as dropped, when
    /// the queue is full or the sink has stopped.
    bool enqueue(const std::string& index, const std::string& document);
    /// Sends what is queued for at most stop_deadline, then counts the rest as dropped; a request
    /// still in flight then is abandoned (its thread detached). Idempotent; blocks the caller for
    /// about stop_deadline at most. Documents arriving later are dropped and counted.
    void stop();
    /// The counters (any thread).
    SearchSinkStats stats() const;
    /// The options in force; `url` without credentials.
    const SearchSinkOptions& options() const noexcept;
    /// The URL without credentials (for log lines).
    const std::string& display_url() const noexcept;

private:
    struct Impl;
    SearchSink(std::shared_ptr<Impl> impl, GroupLookup group_of);
    std::shared_ptr<Impl> m_impl;
    GroupLookup m_group_of;
    std::thread m_worker;
};

/// Copies the sink's counters into `metrics` (io thread, at /metrics time):
/// saltpeter_search_documents_sent_total, _dropped_total, _failed_total, saltpeter_search_retries_total
/// and the gauge saltpeter_search_queue_depth, each labelled sink="<name>".
void report_search_sink(Metrics& metrics, const std::string& name, const SearchSinkStats& stats);

}  // namespace saltpeter
