// notifier.hpp: pure event selection and payloads, then a worker thread that owns the blocking
// HTTP calls. The io thread only builds payloads and pushes them on a bounded queue; it never
// waits for the network. Counters are atomics, copied into Metrics on the io thread.
#include "outlets/notifier.hpp"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "core/utf8_decoder.hpp"
#include "net/http_client.hpp"
#include "saltpeter/exit_code_mapper.hpp"
#include "saltpeter/version.hpp"

namespace saltpeter {

namespace {

using Json = nlohmann::ordered_json;
constexpr std::array<NotifyEvent, 4> k_events = {NotifyEvent::failure, NotifyEvent::success, NotifyEvent::recovered,
                                                 NotifyEvent::missed};

std::size_t index_of(NotifyEvent e) noexcept { return static_cast<std::size_t>(e); }

bool subscribes(const Notify& notify, NotifyEvent event) {
    return std::find(notify.on.begin(), notify.on.end(), to_string(event)) != notify.on.end();
}

// The last `bytes` of `text`, starting on a UTF-8 character boundary.
std::string tail_of(const std::string& text, std::size_t bytes) {
    if (text.size() <= bytes) return text;
    std::size_t start = text.size() - bytes;
    while (start < text.size() && utf8_is_continuation(static_cast<unsigned char>(text[start]))) ++start;
    return text.substr(start);
}

Json base_document(NotifyEvent event, const std::string& job, const std::string& group) {
    Json j;
    j["event"] = std::string(to_string(event));
    j["job"] = job;
    j["group"] = group;
    return j;
}

Json saltpeter_part(const PayloadContext& context) {
    return Json{{"version", std::string(version())}, {"host", context.host}};
}

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

std::string base64(const std::string& in) {
    static constexpr char k_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        const unsigned v = (static_cast<unsigned char>(in[i]) << 16U) | (static_cast<unsigned char>(in[i + 1]) << 8U) |
                           static_cast<unsigned char>(in[i + 2]);
        out += {k_alphabet[(v >> 18U) & 63U], k_alphabet[(v >> 12U) & 63U], k_alphabet[(v >> 6U) & 63U], k_alphabet[v & 63U]};
    }
    if (i + 1 == in.size()) {
        const unsigned v = static_cast<unsigned char>(in[i]) << 16U;
        out += {k_alphabet[(v >> 18U) & 63U], k_alphabet[(v >> 12U) & 63U], '=', '='};
    } else if (i + 2 == in.size()) {
        const unsigned v = (static_cast<unsigned char>(in[i]) << 16U) | (static_cast<unsigned char>(in[i + 1]) << 8U);
        out += {k_alphabet[(v >> 18U) & 63U], k_alphabet[(v >> 12U) & 63U], k_alphabet[(v >> 6U) & 63U], '='};
    }
    return out;
}

}  // namespace

std::string_view to_string(NotifyEvent event) noexcept {
    switch (event) {
        case NotifyEvent::failure: return "failure";
        case NotifyEvent::success: return "success";
        case NotifyEvent::recovered: return "recovered";
        case NotifyEvent::missed: return "missed";
    }
    return "failure";
}

std::optional<NotifyEvent> notify_event_from_string(std::string_view text) noexcept {
    for (NotifyEvent e : k_events) {
        if (to_string(e) == text) return e;
    }
    return std::nullopt;
}

std::optional<Notify> effective_notify(const Job* job, const Settings& settings) {
    const std::optional<Notify>& fallback = settings.notify;
    if (job == nullptr || !job->notify) {
        if (!fallback || fallback->webhook.empty() || fallback->on.empty()) return std::nullopt;
        return fallback;
    }
    Notify n = *job->notify;
    if (n.webhook.empty() && fallback) n.webhook = fallback->webhook;
    if (n.on.empty()) n.on = fallback && !fallback->on.empty() ? fallback->on : std::vector<std::string>{"failure"};
    if (n.webhook.empty()) return std::nullopt;
    return n;
}

std::vector<NotifyEvent> run_events(const RunRecord& run, std::optional<bool> previous_success) {
    if (!run.success()) return {NotifyEvent::failure};
    if (previous_success.has_value() && !*previous_success) return {NotifyEvent::success, NotifyEvent::recovered};
    return {NotifyEvent::success};
}

std::vector<NotifyEvent> subscribed_events(const std::vector<NotifyEvent>& events, const Notify& notify) {
    std::vector<NotifyEvent> out;
    for (NotifyEvent e : events) {
        if (subscribes(notify, e)) out.push_back(e);
    }
    return out;
}

std::string run_payload(NotifyEvent event, const RunRecord& run, const PayloadContext& context) {
    Json j = base_document(event, run.job, run.group);
    j["instance"] = run.instance;
    j["trigger"] = std::string(to_string(run.trigger));
    j["scheduled"] = run.scheduled ? Json(iso_datetime(std::chrono::time_point_cast<std::chrono::microseconds>(*run.scheduled)))
                                   : Json(nullptr);
    j["started"] = iso_datetime(run.started);
    j["ended"] = run.ended ? Json(iso_datetime(*run.ended)) : Json(nullptr);
    const bool success = run.success();
    j["status"] = success ? "success" : run.kill_requested ? "killed" : "failure";
    j["success"] = success;
    j["targets_total"] = run.targets.size();
    std::vector<const TargetResult*> order;
    std::size_t failed = 0;
    for (const auto& [machine, t] : run.targets) {
        order.push_back(&t);
        failed += t.retcode.value_or(-1) != 0 ? 1 : 0;
    }
    j["targets_failed"] = failed;
    // Failed targets first (the ones a reader wants), each group by machine name.
    std::stable_sort(order.begin(), order.end(), [](const TargetResult* a, const TargetResult* b) {
        return (a->retcode.value_or(-1) != 0) > (b->retcode.value_or(-1) != 0);
    });
    Json targets = Json::array();
    for (std::size_t i = 0; i < order.size() && i < context.max_targets; ++i) {
        const TargetResult& t = *order[i];
        Json row;
        row["machine"] = t.machine;
        row["retcode"] = t.retcode ? Json(*t.retcode) : Json(nullptr);
        row["meaning"] = t.retcode ? ExitCodeMapper::meaning(*t.retcode) : std::string("no result");
        row["output_tail"] = tail_of(t.output, context.output_tail_bytes);
        row["output_truncated"] = t.output.size() > context.output_tail_bytes || t.output_bytes > t.output.size();
        targets.push_back(std::move(row));
    }
    j["targets"] = std::move(targets);
    j["targets_omitted"] = order.size() > context.max_targets ? order.size() - context.max_targets : 0;
    j["saltpeter"] = saltpeter_part(context);
    return dump(j);
}

std::string missed_payload(const MissedFire& missed, const PayloadContext& context) {
    Json j = base_document(NotifyEvent::missed, missed.job, missed.group);
    j["scheduled"] = iso_datetime(std::chrono::time_point_cast<std::chrono::microseconds>(missed.scheduled));
    j["missed"] = missed.count;
    j["catch_up"] = missed.catch_up;
    j["reason"] = missed.reason;
    j["saltpeter"] = saltpeter_part(context);
    return dump(j);
}

std::string redact_url(const std::string& url) {
    const auto scheme = url.find("://");
    if (scheme == std::string::npos) {
        return url.substr(0, url.find_first_of("?#"));
    }
    const std::size_t host = scheme + 3;
    std::string out = url.substr(0, url.find_first_of("?#", host));
    const auto authority_end = std::min(out.find('/', host), out.size());
    const auto at = out.rfind('@', authority_end);
    if (at != std::string::npos && at >= host) out.erase(host, at + 1 - host);
    return out;
}

bool webhook_retryable(std::optional<int> status) noexcept {
    if (!status) return true;
    return *status == 408 || *status == 429 || (*status >= 500 && *status <= 599);
}

WebhookPoster make_http_webhook_poster() {
    return [](const WebhookRequest& request) -> Result<int> {
        std::string url = request.url.substr(0, request.url.find('#'));
        std::string authorization;
        const auto scheme = url.find("://");
        if (scheme != std::string::npos) {
            const std::size_t host = scheme + 3;
            const auto authority_end = std::min(url.find_first_of("/?", host), url.size());
            const auto at = url.rfind('@', authority_end);
            if (at != std::string::npos && at >= host) {
                authorization = "Basic " + base64(url.substr(host, at - host));
                url.erase(host, at + 1 - host);
            }
            // http://host?x=1 has an empty path; parse_url wants the query after a path.
            const auto query = url.find('?', host);
            if (query != std::string::npos && url.find('/', host) > query) url.insert(query, "/");
        }
        auto parsed = detail::parse_url(url);
        if (!parsed) return Error{"invalid webhook URL " + redact_url(request.url), "webhook"};
        detail::HttpRequest http;
        http.method = "POST";
        http.target = parsed->base.empty() || parsed->base.front() == '?' ? "/" : "";
        http.body = request.body;
        http.timeout = request.timeout;
        http.peer = "webhook";
        if (!authorization.empty()) http.headers.emplace_back("Authorization", authorization);
        auto reply = detail::http_call(*parsed, http);
        if (!reply) return reply.error();
        return reply->status;
    };
}

// ---- the worker ----

class Notifier::Impl {
public:
    struct Delivery {
        NotifyEvent event = NotifyEvent::failure;
        std::string job;
        std::string url;
        std::string body;
    };
    struct Atomics {
        std::atomic<std::uint64_t> sent{0};
        std::atomic<std::uint64_t> failed{0};
        std::atomic<std::uint64_t> dropped{0};
        std::atomic<std::uint64_t> retries{0};
    };
    using Clock = std::chrono::steady_clock;

    explicit Impl(NotifierOptions options) : m_options(std::move(options)) {
        if (!m_options.poster) m_options.poster = make_http_webhook_poster();
        if (m_options.max_attempts == 0) m_options.max_attempts = 1;
        m_worker = std::thread([this] { work(); });
    }

    void enqueue(Delivery d) {
        std::lock_guard lock(m_mutex);
        const bool full = m_queue.size() >= m_options.queue_max ||
                          m_queue_bytes + d.body.size() > m_options.queue_max_bytes;
        if (m_stopping || full) {
            m_counts[index_of(d.event)].dropped++;
            // Once per episode of a full queue, not once per notification.
            if (!m_full_logged) {
                spdlog::error("notify: {} notification of job {} to {} dropped: {}", to_string(d.event), d.job,
                              redact_url(d.url), m_stopping ? "spd is stopping" : "the queue is full (" +
                              std::to_string(m_queue.size()) + " waiting, " + std::to_string(m_queue_bytes) + " bytes)");
                m_full_logged = true;
            }
            return;
        }
        m_queue_bytes += d.body.size();
        m_queue.push_back(std::move(d));
        m_queued = m_queue.size();
        m_cv.notify_one();
    }

    void stop() {
        {
            std::lock_guard lock(m_mutex);
            if (!m_stopping) {
                m_stopping = true;
                m_deadline = Clock::now() + m_options.drain_timeout;
            }
            m_cv.notify_all();
        }
        if (m_worker.joinable()) m_worker.join();
    }

    void work() {
        for (;;) {
            Delivery d;
            {
                std::unique_lock lock(m_mutex);
                m_cv.wait(lock, [&] { return m_stopping || !m_queue.empty(); });
                if (m_queue.empty()) return;
                if (m_stopping && Clock::now() >= m_deadline) {
                    abandon_queue_locked();
                    return;
                }
                d = std::move(m_queue.front());
                m_queue.pop_front();
                m_queued = m_queue.size();
                m_queue_bytes -= d.body.size();
                if (m_queue.size() <= m_options.queue_max / 2 && m_queue_bytes <= m_options.queue_max_bytes / 2) {
                    m_full_logged = false;
                }
            }
            deliver(d);
        }
    }

    void abandon_queue_locked() {
        if (m_queue.empty()) return;
        spdlog::error("notify: spd stopped with {} notification(s) undelivered after drain_timeout; dropped",
                      m_queue.size());
        for (const Delivery& d : m_queue) m_counts[index_of(d.event)].dropped++;
        m_queue.clear();
        m_queued = 0;
        m_queue_bytes = 0;
    }

    // Attempts one notification until it is delivered, fails for good, or stop's drain ends.
    void deliver(const Delivery& d) {
        Atomics& count = m_counts[index_of(d.event)];
        const std::string where = redact_url(d.url);
        std::chrono::milliseconds delay = m_options.backoff_initial;
        for (unsigned attempt = 1;; ++attempt) {
            std::chrono::milliseconds timeout = m_options.attempt_timeout;
            if (const auto left = drain_left(); left) {
                if (*left <= std::chrono::milliseconds{0}) return give_up_at_stop(d, where);
                timeout = std::min(timeout, *left);
            }
            std::optional<int> status;
            std::string problem;
            try {
                auto reply = m_options.poster(WebhookRequest{d.url, d.body, timeout});
                if (reply) status = *reply;
                else problem = reply.error().message;
            } catch (const std::exception& e) {
                problem = std::string("unexpected error: ") + e.what();
            }
            if (status && *status >= 200 && *status <= 299) {
                count.sent++;
                spdlog::info("notify: {} of job {} delivered to {} (HTTP {}, attempt {})", to_string(d.event), d.job,
                             where, *status, attempt);
                return;
            }
            if (status) problem = "HTTP " + std::to_string(*status);
            if (!webhook_retryable(status)) {
                count.failed++;
                spdlog::error("notify: {} of job {} to {} failed: {} (not retried)", to_string(d.event), d.job, where,
                              problem);
                return;
            }
            if (attempt >= m_options.max_attempts) {
                count.failed++;
                spdlog::error("notify: {} of job {} to {} failed after {} attempt(s): {}", to_string(d.event), d.job,
                              where, attempt, problem);
                return;
            }
            spdlog::warn("notify: {} of job {} to {}: attempt {} failed ({}); retrying in {} ms", to_string(d.event),
                         d.job, where, attempt, problem, delay.count());
            if (!wait_backoff(delay)) return give_up_at_stop(d, where);
            count.retries++;
            delay = std::min(delay * 2, m_options.backoff_max);
        }
    }

    // nullopt while running; during stop's drain, the time left.
    std::optional<std::chrono::milliseconds> drain_left() {
        std::lock_guard lock(m_mutex);
        if (!m_stopping) return std::nullopt;
        return std::chrono::duration_cast<std::chrono::milliseconds>(m_deadline - Clock::now());
    }

    // Sleeps `delay`, cut short by stop() only when the drain deadline comes first. False then.
    bool wait_backoff(std::chrono::milliseconds delay) {
        const auto wake = Clock::now() + delay;
        std::unique_lock lock(m_mutex);
        for (;;) {
            const auto now = Clock::now();
            if (m_stopping && m_deadline <= wake) return false;  // the retry would come too late
            if (now >= wake) return true;
            m_cv.wait_until(lock, m_stopping ? std::min(wake, m_deadline) : wake);
        }
    }

    void give_up_at_stop(const Delivery& d, const std::string& where) {
        m_counts[index_of(d.event)].dropped++;
        spdlog::error("notify: {} of job {} to {} abandoned: spd stopped and drain_timeout passed", to_string(d.event),
                      d.job, where);
    }

    NotifierOptions m_options;
    mutable std::mutex m_mutex;
    std::condition_variable m_cv;
    std::deque<Delivery> m_queue;
    std::size_t m_queue_bytes = 0;
    bool m_stopping = false;
    bool m_full_logged = false;
    Clock::time_point m_deadline{};
    std::array<Atomics, 4> m_counts;
    std::atomic<std::size_t> m_queued{0};
    std::map<std::string, bool> m_last_success;  // io thread only
    std::thread m_worker;
};

Notifier::Notifier(NotifierOptions options) : m_impl(std::make_unique<Impl>(std::move(options))) {}
Notifier::~Notifier() { m_impl->stop(); }

void Notifier::run_finished(const RunRecord& run, const std::optional<Notify>& notify) {
    const auto previous = m_impl->m_last_success.find(run.job);
    const std::optional<bool> before =
        previous == m_impl->m_last_success.end() ? std::nullopt : std::optional<bool>(previous->second);
    m_impl->m_last_success[run.job] = run.success();
    if (!notify) return;
    for (NotifyEvent e : subscribed_events(run_events(run, before), *notify)) {
        m_impl->enqueue({e, run.job, notify->webhook, run_payload(e, run, m_impl->m_options.payload)});
    }
}

void Notifier::missed(const MissedFire& missed, const std::optional<Notify>& notify) {
    if (!notify || missed.count == 0 || !subscribes(*notify, NotifyEvent::missed)) return;
    m_impl->enqueue({NotifyEvent::missed, missed.job, notify->webhook, missed_payload(missed, m_impl->m_options.payload)});
}

void Notifier::seed_outcome(const std::string& job, bool success) { m_impl->m_last_success.emplace(job, success); }

void Notifier::stop() { m_impl->stop(); }

std::map<NotifyEvent, NotifyCounters> Notifier::counters() const {
    std::map<NotifyEvent, NotifyCounters> out;
    for (NotifyEvent e : k_events) {
        const auto& a = m_impl->m_counts[index_of(e)];
        out[e] = NotifyCounters{a.sent.load(), a.failed.load(), a.dropped.load(), a.retries.load()};
    }
    return out;
}

void Notifier::export_metrics(Metrics& metrics) const {
    metrics.describe("saltpeter_notifications_sent_total", "counter", "Webhook notifications delivered, by event");
    metrics.describe("saltpeter_notifications_failed_total", "counter",
                     "Webhook notifications given up (after the last attempt or a 4xx), by event");
    metrics.describe("saltpeter_notifications_dropped_total", "counter",
                     "Webhook notifications dropped (queue full, spd stopping), by event");
    metrics.describe("saltpeter_notifications_retries_total", "counter", "Webhook attempts after the first, by event");
    metrics.describe("saltpeter_notifications_queued", "gauge", "Webhook notifications waiting for the worker");
    for (const auto& [event, c] : counters()) {
        const MetricLabels labels{{"event", std::string(to_string(event))}};
        metrics.set("saltpeter_notifications_sent_total", labels, static_cast<double>(c.sent));
        metrics.set("saltpeter_notifications_failed_total", labels, static_cast<double>(c.failed));
        metrics.set("saltpeter_notifications_dropped_total", labels, static_cast<double>(c.dropped));
        metrics.set("saltpeter_notifications_retries_total", labels, static_cast<double>(c.retries));
    }
    metrics.set("saltpeter_notifications_queued", {}, static_cast<double>(m_impl->m_queued.load()));
}

}  // namespace saltpeter
