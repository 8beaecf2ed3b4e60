#pragma once
// Notifier: webhook notifications (a job's `notify:` or saltpeter_config's default). The daemon
// feeds it finished runs and skipped fire times on the io thread; it picks the subscribed events
// (failure, success, recovered, missed), builds one small JSON document per event and a worker
// thread POSTs them, retrying with exponential backoff. The selection and the payloads are pure
// functions below, so unit tests never sleep; the queue and worker are the thin shell around them.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "saltpeter/config.hpp"
#include "core/metrics.hpp"
#include "saltpeter/result.hpp"
#include "saltpeter/runs.hpp"
#include "saltpeter/time.hpp"

namespace saltpeter {

/// What a notification is about.
enum class NotifyEvent { failure, success, recovered, missed };
std::string_view to_string(NotifyEvent event) noexcept;
/// The inverse of to_string(NotifyEvent); nullopt for an unknown name.
std::optional<NotifyEvent> notify_event_from_string(std::string_view text) noexcept;

/// The notification settings in force for `job`: its own `notify`, else saltpeter_config's
/// default; a job's `notify` without `webhook` takes the default's webhook. nullopt when there is
/// no webhook to post to or no event is subscribed.
std::optional<Notify> effective_notify(const Job* job, const Settings& settings);

/// Events of a finished run: `success` when every target succeeded (RunRecord::success()), else
/// `failure`; plus `recovered` after `success` when the job's previous finished run failed
/// (`previous_success` false; nullopt = unknown, no `recovered`).
std::vector<NotifyEvent> run_events(const RunRecord& run, std::optional<bool> previous_success);

/// The events of `events` that `notify.on` subscribes to, in the order of `events`.
std::vector<NotifyEvent> subscribed_events(const std::vector<NotifyEvent>& events, const Notify& notify);

/// Fire times of one job that the misfire policy skipped (one decision, one notification).
struct MissedFire {
    std::string job;
    std::string group;
    SysSeconds scheduled{};   ///< the latest skipped fire time
    std::uint32_t count = 0;  ///< fire times that got no run of their own
    bool catch_up = false;    ///< a catch-up run was started for the latest one
    std::string reason;       ///< the misfire policy's line, as logged
};

/// What every payload carries besides the run, and its size bounds.
struct PayloadContext {
    std::string host;                      ///< spd's host name
    std::size_t output_tail_bytes = 2048;  ///< per target: the last bytes of output
    std::size_t max_targets = 50;          ///< targets listed (failed first); the rest are counted
};

/// The JSON document of a run notification (docs/operations.md "Notifications").
std::string run_payload(NotifyEvent event, const RunRecord& run, const PayloadContext& context);
/// The JSON document of a `missed` notification (docs/operations.md "Notifications").
std::string missed_payload(const MissedFire& missed, const PayloadContext& context);

/// `url` fit for a log line: scheme, host, port and path, without user info, query or fragment.
std::string redact_url(const std::string& url);

/// One POST as the worker makes it: url (possibly with user:password@, sent as Basic auth),
/// the JSON body and the deadline of this attempt.
struct WebhookRequest {
    std::string url;
    std::string body;
    std::chrono::milliseconds timeout{10000};
};
/// Sends one request and returns the HTTP status, or an Error when the webhook cannot be reached
/// (connection refused, DNS, TLS, deadline). Runs on the notifier's worker thread.
using WebhookPoster = std::function<Result<int>(const WebhookRequest& request)>;
/// The real poster: detail::http_call, Content-Type application/json, User-Agent saltpeter/<version>.
WebhookPoster make_http_webhook_poster();

/// Whether an attempt that got `status` (or no answer: nullopt) should be tried again:
/// no answer, 408, 429 and 5xx are; 2xx succeeded; any other status is a permanent failure.
bool webhook_retryable(std::optional<int> status) noexcept;

struct NotifierOptions {
    PayloadContext payload;
    std::size_t queue_max = 1000;  ///< notifications waiting; more are dropped and counted
    std::size_t queue_max_bytes = 32u * 1024u * 1024u;  ///< their bodies together; likewise
    unsigned max_attempts = 5;     ///< per notification, the first included
    std::chrono::milliseconds backoff_initial{1000};  ///< before the 2nd attempt, doubling
    std::chrono::milliseconds backoff_max{30000};
    std::chrono::milliseconds attempt_timeout{10000};  ///< one POST, connect to last byte
    std::chrono::milliseconds drain_timeout{5000};     ///< stop(): how long to keep delivering
    WebhookPoster poster;  ///< empty: make_http_webhook_poster()
};

/// Counters per event; every field only grows.
struct NotifyCounters {
    std::uint64_t sent = 0;     ///< delivered (2xx)
    std::uint64_t failed = 0;   ///< given up after the last attempt or a permanent 4xx
    std::uint64_t dropped = 0;  ///< not queued (queue full, stopped) or abandoned at stop
    std::uint64_t retries = 0;  ///< attempts after the first
};

class Notifier {
public:
    /// Starts the worker thread.
    explicit Notifier(NotifierOptions options);
    /// stop(), then joins the worker.
    ~Notifier();
    Notifier(const Notifier&) = delete;
    Notifier& operator=(const Notifier&) = delete;

    /// A run ended: remembers its outcome for `recovered` and queues one POST per subscribed
    /// event. `notify` is the job's effective_notify(); nullopt only records the outcome. Io thread.
    void run_finished(const RunRecord& run, const std::optional<Notify>& notify);
    /// The misfire policy skipped fire times: queues a `missed` POST when subscribed. Io thread.
    void missed(const MissedFire& missed, const std::optional<Notify>& notify);
    /// Sets the last known outcome of `job` (from the RunStore after a restart) unless a run
    /// already ended since. Io thread.
    void seed_outcome(const std::string& job, bool success);
    /// No new notifications; the worker keeps delivering what is queued for at most
    /// drain_timeout, then drops the rest (counted). Blocks until the worker has ended. Idempotent.
    void stop();

    /// Counters by event, any thread.
    std::map<NotifyEvent, NotifyCounters> counters() const;
    /// Copies the counters into `metrics` (saltpeter_notifications_{sent,failed,dropped,retries}_total
    /// by event, saltpeter_notifications_queued). Io thread (Metrics is io-thread only).
    void export_metrics(Metrics& metrics) const;

private:
    class Impl;
    std::unique_ptr<Impl> m_impl;
};

}  // namespace saltpeter
