// The salt-api (rest_cherrypy) transport, over net/http_client.hpp's asynchronous exchange (Beast
// stays in http_client.cpp). Shapes follow salt/TRANSCRIPTS.md item 7.
//
// run_all: the transcript has no example of several lowstate chunks in one POST, and every minion
// needs its own env (SP_TOKEN), so each minion gets its own `local_async` request (at most
// k_max_http_in_flight HTTP calls at once), then GET /jobs/<jid> is polled every second until that
// minion's return shows up or the request timeout passes. The jids make terminate possible
// (saltutil.term_job, then saltutil.kill_job after the grace period).
#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <map>
#include <set>
#include <spdlog/spdlog.h>

#include "net/http_client.hpp"
#include "salt/salt_api_json.hpp"
#include "saltpeter/salt_transport.hpp"
#include "saltpeter/time.hpp"

namespace saltpeter {

namespace {

namespace net = boost::asio;
using error_code = boost::system::error_code;

constexpr std::size_t k_max_http_in_flight = 16;
constexpr std::chrono::seconds k_poll_interval{1};
// run_async follows one jid for the whole batch: 1 s between polls at first, growing to 10 s.
constexpr std::chrono::milliseconds k_follow_first{1000};
constexpr std::chrono::milliseconds k_follow_max{10000};
// A token is renewed this long before Salt says it expires, so a request never races expiry.
constexpr double k_token_margin_s = 60;

constexpr std::size_t k_max_response_bytes = 64u * 1024 * 1024;

struct SaltUrl {
    detail::Url url;
    std::string text;  ///< scheme://host[:port] as written + base path, for messages
};

// The shared parser, behind salt-api's own checks and messages (field salt_api_url).
Result<SaltUrl> parse_salt_url(const std::string& text) {
    if (text.rfind("http://", 0) != 0 && text.rfind("https://", 0) != 0)
        return Error{"salt-api url must start with http:// or https://: " + text, "salt_api_url"};
    const std::size_t scheme_end = text.find("://") + 3;
    const std::string rest = text.substr(scheme_end);
    const std::string authority = rest.substr(0, rest.find('/'));
    auto parsed = detail::parse_url(text);
    // "host:" names no port; the shared parser would default it, salt-api's contract refuses it.
    if (!parsed || (!authority.empty() && authority.back() == ':'))
        return Error{"salt-api url has no host: " + text, "salt_api_url"};
    return SaltUrl{*parsed, text.substr(0, scheme_end) + authority + parsed->base};
}

struct HttpResponse {
    unsigned status = 0;
    std::string body;
};
using HttpHandler = std::function<void(Result<HttpResponse>)>;

// rest_cherrypy answers errors with an HTML page whose <p> holds the reason
// ("Client disabled: 'local'. Add to 'netapi_enable_clients' ..."); show that, not the page.
std::string html_reason(const std::string& body) {
    const auto p = body.find("<p>");
    if (p == std::string::npos) return {};
    const auto e = body.find("</p>", p);
    if (e == std::string::npos) return {};
    return body.substr(p + 3, e - p - 3);
}

const char* step_name(detail::HttpStep step) {
    switch (step) {
    case detail::HttpStep::resolve: return "resolve";
    case detail::HttpStep::connect: return "connect";
    case detail::HttpStep::tls_setup:
    case detail::HttpStep::tls_handshake: return "TLS handshake";
    case detail::HttpStep::write: return "write";
    case detail::HttpStep::read: return "read";
    }
    return "exchange";
}

// `what` is "salt-api <url><path>": every message names the call it is about.
Result<HttpResponse> to_response(detail::HttpOutcome outcome, const std::string& what) {
    if (outcome.response) return HttpResponse{static_cast<unsigned>(outcome.response->status), std::move(outcome.response->body)};
    const detail::HttpFailure& f = outcome.failure;
    if (f.cancelled) return Error{what + ": cancelled", ""};
    if (f.timed_out)
        return Error{what + ": timed out after " +
                         std::to_string(std::chrono::duration_cast<std::chrono::seconds>(f.limit).count()) + " s",
                     ""};
    if (f.step == detail::HttpStep::tls_setup) return Error{what + ": " + f.message, ""};
    return Error{what + ": " + step_name(f.step) + " failed: " + f.message, ""};
}

// State shared with every pending completion, so that the transport can be destroyed while
// calls are in flight: completions then find m_stopped and call nobody.
class SaltApiCore : public std::enable_shared_from_this<SaltApiCore> {
public:
    SaltApiCore(net::io_context& io, SaltApiOptions options) : m_io(io), m_options(std::move(options)) {
        auto url = parse_salt_url(m_options.url);
        if (!url) {
            m_setup_error = url.error().message;
            return;
        }
        m_url = *url;
        if (m_url.url.scheme == "https") {
            auto tls = detail::make_tls_client_context(m_options.ca_file);
            if (tls) m_tls = *tls;
            else if (tls.error().field == "ca_file")
                m_setup_error = "salt-api " + m_url.text + ": cannot load CA certificates: " + tls.error().message;
            else m_setup_error = "salt-api " + m_url.text + ": " + tls.error().message;
        }
    }

    net::io_context& io() { return m_io; }
    const SaltApiOptions& options() const { return m_options; }
    bool stopped() const { return m_stopped; }

    /// An authenticated call: logs in when there is no valid token; on a 401 logs in again once
    /// and retries. Non-2xx answers become an Error naming the URL and the HTTP status.
    void api_call(const std::string& verb, const std::string& path, std::string body, std::chrono::seconds timeout,
                  HttpHandler done, bool retried = false) {
        if (!m_setup_error.empty()) return post_result(std::move(done), Error{m_setup_error, ""});
        auto self = shared_from_this();
        with_token([self, verb, path, body, timeout, done = std::move(done), retried](Status status) mutable {
            if (!status) return done(status.error());
            const std::string used = self->m_token;
            self->queued_call(verb, path, body, used, timeout,
                       [self, verb, path, body, timeout, used, done = std::move(done), retried](Result<HttpResponse> r) mutable {
                           if (r && r->status == 401 && !retried) {
                               // Expired or revoked token (salt-api restart, token_expire): renew once.
                               if (self->m_token == used) self->m_token.clear();
                               return self->api_call(verb, path, std::move(body), timeout, std::move(done), true);
                           }
                           done(self->checked(std::move(r), path));
                       });
        });
    }

    void stop() {
        m_stopped = true;
        // cancel() runs the completion, which erases from m_calls: iterate over a moved-out copy.
        auto calls = std::move(m_calls);
        m_calls.clear();
        for (auto& [id, weak] : calls) {
            if (auto call = weak.lock()) call->cancel();
        }
        m_queue.clear();
        m_login_waiters.clear();
    }

private:
    void post_result(HttpHandler done, Result<HttpResponse> r) {
        net::post(m_io, [done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
    }

    Result<HttpResponse> checked(Result<HttpResponse> r, const std::string& path) const {
        if (!r) return r;
        if (r->status >= 200 && r->status < 300) return r;
        std::string message = "salt-api " + m_url.text + path + ": HTTP " + std::to_string(r->status);
        const std::string reason = html_reason(r->body);
        if (!reason.empty()) message += ": " + reason;
        return Error{message, ""};
    }

    bool token_valid() const {
        if (m_token.empty()) return false;
        if (m_token_expire <= 0) return true;
        const double now = unix_seconds(std::chrono::system_clock::now());
        return now < m_token_expire - k_token_margin_s;
    }

    void with_token(std::function<void(Status)> next) {
        if (token_valid()) return next(Ok{});
        m_login_waiters.push_back(std::move(next));
        if (m_login_in_flight) return;
        m_login_in_flight = true;
        auto self = shared_from_this();
        // The body carries the password: it goes on the wire only, never into a message.
        start_call("POST", "/login",
                   detail::login_body(m_options.username, m_options.password, m_options.eauth), "",
                   m_options.request_timeout, [self](Result<HttpResponse> r) {
                       self->m_login_in_flight = false;
                       Status status = Ok{};
                       r = self->checked(std::move(r), "/login");
                       if (!r) {
                           status = r.error();
                       } else if (auto login = detail::parse_login(r->body)) {
                           self->m_token = login->token;
                           self->m_token_expire = login->expire;
                       } else {
                           status = Error{"salt-api " + self->m_url.text + "/login: " + login.error().message, ""};
                       }
                       auto waiters = std::move(self->m_login_waiters);
                       self->m_login_waiters.clear();
                       for (auto& w : waiters) w(status);
                   });
    }

    // Queues behind k_max_http_in_flight so a run on many minions does not open hundreds of
    // connections to the master at once.
    void queued_call(const std::string& verb, const std::string& path, std::string body, std::string token,
              std::chrono::seconds timeout, HttpHandler done) {
        auto self = shared_from_this();
        m_queue.push_back([self, verb, path, body = std::move(body), token = std::move(token), timeout,
                           done = std::move(done)]() mutable {
            ++self->m_active;
            self->start_call(verb, path, std::move(body), std::move(token), timeout,
                             [self, done = std::move(done)](Result<HttpResponse> r) mutable {
                                 --self->m_active;
                                 self->pump();
                                 done(std::move(r));
                             });
        });
        pump();
    }

    void pump() {
        while (!m_stopped && m_active < k_max_http_in_flight && !m_queue.empty()) {
            auto next = std::move(m_queue.front());
            m_queue.pop_front();
            next();
        }
    }

    void start_call(const std::string& verb, const std::string& path, std::string body, std::string token,
                    std::chrono::seconds timeout, HttpHandler done) {
        if (m_stopped) return;
        const std::uint64_t id = ++m_next_call;
        auto self = shared_from_this();
        detail::HttpExchangeRequest request;
        request.method = verb;
        request.target = m_url.url.base + path;
        request.body = std::move(body);
        request.headers.emplace_back("Accept", "application/json");
        if (!token.empty()) request.headers.emplace_back("X-Auth-Token", std::move(token));
        request.connect_timeout = m_options.connect_timeout;
        request.request_timeout = timeout;
        request.body_limit = k_max_response_bytes;
        auto call = detail::HttpExchange::start(
            m_io, m_url.url, std::move(request), m_tls,
            [self, id, what = "salt-api " + m_url.text + path, done = std::move(done)](detail::HttpOutcome outcome) mutable {
                self->m_calls.erase(id);
                if (self->m_stopped) return;
                done(to_response(std::move(outcome), what));
            });
        m_calls[id] = call;
    }

    net::io_context& m_io;
    SaltApiOptions m_options;
    SaltUrl m_url;
    std::string m_setup_error;
    std::shared_ptr<detail::TlsClientContext> m_tls;  ///< https only
    std::string m_token;
    double m_token_expire = 0;
    bool m_login_in_flight = false;
    std::vector<std::function<void(Status)>> m_login_waiters;
    std::deque<std::function<void()>> m_queue;
    std::size_t m_active = 0;
    std::map<std::uint64_t, std::weak_ptr<detail::HttpExchange>> m_calls;
    std::uint64_t m_next_call = 0;
    bool m_stopped = false;
};

class SaltApiTransport final : public SaltTransport {
public:
    SaltApiTransport(net::io_context& io, SaltApiOptions options)
        : m_core(std::make_shared<SaltApiCore>(io, std::move(options))), m_jobs(std::make_shared<Jobs>()),
          m_followed(std::make_shared<FollowedJobs>()) {}
    ~SaltApiTransport() override { stop(); }

    std::string name() const override { return "salt-api"; }

    void ping(const SaltTarget& target, std::chrono::seconds timeout,
              std::function<void(Result<PingReply>)> done) override {
        // A stopped minion answers `false` only after timeout + gather_job_timeout (10 s by
        // default), so the HTTP deadline is Salt's timeout plus the configured request timeout.
        m_core->api_call("POST", "/", detail::ping_lowstate(target, timeout),
                         timeout + m_core->options().request_timeout,
                         [done = std::move(done)](Result<HttpResponse> r) {
                             if (!r) return done(r.error());
                             done(detail::parse_ping(r->body));
                         });
    }

    TransportJob run_all(const RunAllRequest& request, std::function<void(MinionReturn)> on_return,
                         std::function<void()> done) override {
        const TransportJob id = ++m_next_job;
        auto job = std::make_shared<Job>();
        job->request = request;
        job->on_return = std::move(on_return);
        job->done = std::move(done);
        for (const auto& m : request.minions) job->pending.insert(m);
        (*m_jobs)[id] = job;
        if (job->pending.empty()) {
            finish(id);
            return id;
        }
        for (const auto& minion : request.minions) submit(id, job, minion);
        return id;
    }

    // Legacy mode: one local_async for the whole batch (the same command and env everywhere),
    // then GET /jobs/<jid> with a growing interval until every minion returned.
    TransportJob run_async(const CommandRequest& request, std::function<void(MinionReturn)> on_return,
                           std::function<void()> done) override {
        const TransportJob id = ++m_next_job;
        auto job = std::make_shared<FollowedJob>();
        job->on_return = std::move(on_return);
        job->done = std::move(done);
        job->pending.insert(request.minions.begin(), request.minions.end());
        job->follow_for = request.follow_for;
        job->timer = std::make_shared<net::steady_timer>(m_core->io());
        (*m_followed)[id] = job;
        if (job->pending.empty()) {
            finish_followed(id, job);
            return id;
        }
        std::weak_ptr<FollowedJob> weak = job;
        if (job->follow_for.count() > 0) {
            // At the limit every minion still pending is given up at once, even with a poll in flight.
            job->give_up_timer = std::make_shared<net::steady_timer>(m_core->io(), job->follow_for);
            job->give_up_timer->async_wait([this, id, weak](const error_code& ec) {
                auto live = weak.lock();
                if (ec || !live || m_stopped || live->pending.empty()) return;
                std::string why = "no return within " + std::to_string(live->follow_for.count()) + " s";
                if (!live->jid.empty()) why += " (jid " + live->jid + ")";
                if (!live->last_error.empty()) why += "; last error: " + live->last_error;
                give_up(id, live, why);
            });
        }
        m_core->api_call("POST", "/", detail::command_lowstate(request, "local_async"),
                         m_core->options().request_timeout, [this, id, weak](Result<HttpResponse> r) {
                             auto live = weak.lock();
                             if (!live || m_stopped) return;
                             if (!r) return give_up(id, live, r.error().message);
                             auto async = detail::parse_local_async(r->body);
                             if (!async) return give_up(id, live, async.error().message);
                             if (async->jid.empty()) {
                                 return give_up(id, live, "No minions matched the target (salt-api assigned no jid)");
                             }
                             live->jid = async->jid;
                             spdlog::info("salt-api: job {} published to {} minion(s)", live->jid, live->pending.size());
                             for (auto& [minions, grace] : live->pending_terminations) {
                                 terminate_followed(id, live, minions, grace);
                             }
                             live->pending_terminations.clear();
                             schedule_follow(id, live, k_follow_first);
                         });
        return id;
    }

    void terminate(TransportJob id, const std::vector<std::string>& minions, std::chrono::seconds grace) override {
        auto followed = m_followed->find(id);
        if (followed != m_followed->end()) {
            auto job = followed->second;
            if (job->jid.empty()) {
                job->pending_terminations.emplace_back(minions, grace);
            } else {
                terminate_followed(id, job, minions, grace);
            }
            return;
        }
        auto it = m_jobs->find(id);
        if (it == m_jobs->end()) return;
        auto job = it->second;
        for (const auto& minion : minions) {
            if (job->pending.count(minion) == 0) continue;
            job->terminate_requested[minion] = grace;
            auto jid = job->jids.find(minion);
            if (jid != job->jids.end()) send_term(job, minion, jid->second, grace);
            // Without a jid yet the submission is in flight; send_term runs when the jid arrives.
        }
    }

    void stop() override {
        if (m_stopped) return;
        m_stopped = true;
        m_core->stop();
        for (auto& [id, job] : *m_jobs) {
            job->on_return = nullptr;
            job->done = nullptr;
            for (auto& [m, timer] : job->timers) timer->cancel();
        }
        m_jobs->clear();
        for (auto& [id, job] : *m_followed) {
            job->on_return = nullptr;
            job->done = nullptr;
            job->timer->cancel();
            if (job->give_up_timer) job->give_up_timer->cancel();
        }
        m_followed->clear();
    }

private:
    struct FollowedJob {
        std::string jid;
        std::function<void(MinionReturn)> on_return;
        std::function<void()> done;
        std::set<std::string> pending;
        std::chrono::seconds follow_for{0};
        std::shared_ptr<net::steady_timer> timer;
        std::shared_ptr<net::steady_timer> give_up_timer;
        std::vector<std::pair<std::vector<std::string>, std::chrono::seconds>> pending_terminations;
        std::string last_error;
    };
    using FollowedJobs = std::map<TransportJob, std::shared_ptr<FollowedJob>>;

    void schedule_follow(TransportJob id, const std::shared_ptr<FollowedJob>& job, std::chrono::milliseconds interval) {
        job->timer->expires_after(interval);
        std::weak_ptr<FollowedJob> weak = job;
        job->timer->async_wait([this, id, weak, interval](const error_code& ec) {
            auto live = weak.lock();
            if (ec || !live || m_stopped) return;
            follow(id, live, interval);
        });
    }

    void follow(TransportJob id, const std::shared_ptr<FollowedJob>& job, std::chrono::milliseconds interval) {
        std::weak_ptr<FollowedJob> weak = job;
        m_core->api_call("GET", "/jobs/" + job->jid, "", m_core->options().request_timeout,
                         [this, id, weak, interval](Result<HttpResponse> r) {
                             auto live = weak.lock();
                             if (!live || m_stopped || live->pending.empty()) return;
                             if (!r) {
                                 live->last_error = r.error().message;
                             } else if (auto lookup = detail::parse_job_lookup(r->body)) {
                                 live->last_error.clear();
                                 for (auto& ret : lookup->returns) {
                                     if (live->pending.count(ret.minion) != 0) report_followed(id, live, std::move(ret));
                                     if (live->pending.empty()) return;
                                 }
                             } else {
                                 live->last_error = lookup.error().message;
                             }
                             // A failed poll is retried: the master may be restarting meanwhile.
                             schedule_follow(id, live,
                                             std::min(k_follow_max, std::chrono::milliseconds(interval.count() * 3 / 2)));
                         });
    }

    // saltutil.term_job now, saltutil.kill_job after `grace`; once kill_job is answered the
    // minions still without a return are reported: a terminated job never returns (item 5).
    void terminate_followed(TransportJob id, const std::shared_ptr<FollowedJob>& job,
                            const std::vector<std::string>& minions, std::chrono::seconds grace) {
        std::vector<std::string> targets;
        for (const auto& m : minions) {
            if (job->pending.count(m) != 0) targets.push_back(m);
        }
        if (targets.empty()) return;
        const std::string jid = job->jid;
        post_signal(targets, jid, "saltutil.term_job", {});
        auto timer = std::make_shared<net::steady_timer>(m_core->io(), grace);
        std::weak_ptr<FollowedJob> weak = job;
        timer->async_wait([this, id, weak, targets, jid, timer](const error_code& ec) {
            auto live = weak.lock();
            if (ec || !live || m_stopped || live->pending.empty()) return;
            post_signal(targets, jid, "saltutil.kill_job", [this, id, weak, targets, jid] {
                auto again = weak.lock();
                if (!again || m_stopped) return;
                for (const auto& m : targets) {
                    if (again->pending.count(m) == 0) continue;
                    report_followed(id, again, no_return(m, "terminated (saltutil.term_job, saltutil.kill_job " + jid + ")"));
                }
            });
        });
    }

    void post_signal(const std::vector<std::string>& minions, const std::string& jid, const std::string& fun,
                     std::function<void()> after) {
        m_core->api_call("POST", "/", detail::signal_job_lowstate(minions, jid, fun),
                         m_core->options().request_timeout,
                         [jid, fun, after = std::move(after)](Result<HttpResponse> r) {
                             if (!r) spdlog::warn("{} of job {}: {}", fun, jid, r.error().message);
                             if (after) after();
                         });
    }

    void report_followed(TransportJob id, const std::shared_ptr<FollowedJob>& job, MinionReturn ret) {
        if (job->pending.erase(ret.minion) == 0) return;
        if (job->on_return) job->on_return(std::move(ret));
        if (job->pending.empty()) finish_followed(id, job);
    }

    void give_up(TransportJob id, const std::shared_ptr<FollowedJob>& job, const std::string& why) {
        const std::vector<std::string> left(job->pending.begin(), job->pending.end());
        for (const auto& m : left) report_followed(id, job, no_return(m, why));
    }

    void finish_followed(TransportJob id, const std::shared_ptr<FollowedJob>& job) {
        job->timer->cancel();
        if (job->give_up_timer) job->give_up_timer->cancel();
        auto done = std::move(job->done);
        job->done = nullptr;
        m_followed->erase(id);
        if (done && !m_stopped) net::post(m_core->io(), std::move(done));
    }

    struct Job {
        RunAllRequest request;
        std::function<void(MinionReturn)> on_return;
        std::function<void()> done;
        std::set<std::string> pending;  ///< minions not reported yet
        std::map<std::string, std::string> jids;
        std::map<std::string, std::chrono::steady_clock::time_point> deadlines;
        std::map<std::string, std::chrono::seconds> terminate_requested;
        std::map<std::string, std::shared_ptr<net::steady_timer>> timers;
    };
    using Jobs = std::map<TransportJob, std::shared_ptr<Job>>;

    void submit(TransportJob id, const std::shared_ptr<Job>& job, const std::string& minion) {
        std::weak_ptr<Job> weak = job;
        m_core->api_call("POST", "/", detail::run_all_lowstate(job->request, minion, "local_async"),
                         m_core->options().request_timeout, [this, id, weak, minion](Result<HttpResponse> r) {
                             auto live = weak.lock();
                             if (!live || m_stopped) return;
                             if (!r) return report(id, live, no_return(minion, r.error().message));
                             auto async = detail::parse_local_async(r->body);
                             if (!async) return report(id, live, no_return(minion, async.error().message));
                             if (async->jid.empty()) {
                                 return report(id, live, no_return(minion, "No minions matched the target (salt-api "
                                                                          "assigned no jid; is the minion known to the master?)"));
                             }
                             live->jids[minion] = async->jid;
                             live->deadlines[minion] = std::chrono::steady_clock::now() + live->request.timeout;
                             auto term = live->terminate_requested.find(minion);
                             if (term != live->terminate_requested.end()) {
                                 send_term(live, minion, async->jid, term->second);
                             }
                             schedule_poll(id, live, minion);
                         });
    }

    void schedule_poll(TransportJob id, const std::shared_ptr<Job>& job, const std::string& minion) {
        auto& timer = job->timers[minion];
        if (!timer) timer = std::make_shared<net::steady_timer>(m_core->io());
        timer->expires_after(k_poll_interval);
        std::weak_ptr<Job> weak = job;
        timer->async_wait([this, id, weak, minion](const error_code& ec) {
            auto live = weak.lock();
            if (ec || !live || m_stopped) return;
            poll(id, live, minion);
        });
    }

    void poll(TransportJob id, const std::shared_ptr<Job>& job, const std::string& minion) {
        const std::string jid = job->jids[minion];
        std::weak_ptr<Job> weak = job;
        m_core->api_call("GET", "/jobs/" + jid, "", m_core->options().request_timeout,
                         [this, id, weak, minion, jid](Result<HttpResponse> r) {
                             auto live = weak.lock();
                             if (!live || m_stopped || live->pending.count(minion) == 0) return;
                             std::string last_error;
                             if (r) {
                                 auto lookup = detail::parse_job_lookup(r->body);
                                 if (lookup) {
                                     for (auto& ret : lookup->returns) {
                                         if (ret.minion == minion) return report(id, live, std::move(ret));
                                     }
                                 } else {
                                     last_error = lookup.error().message;
                                 }
                             } else {
                                 last_error = r.error().message;
                             }
                             // A failed poll is retried until the deadline: the master may be
                             // restarting, and the job keeps running on the minion meanwhile.
                             if (std::chrono::steady_clock::now() >= live->deadlines[minion]) {
                                 std::string why = "Minion did not return within " +
                                                   std::to_string(live->request.timeout.count()) + " s (jid " + jid + ")";
                                 if (!last_error.empty()) why += "; last error: " + last_error;
                                 return report(id, live, no_return(minion, why));
                             }
                             schedule_poll(id, live, minion);
                         });
    }

    void send_term(const std::shared_ptr<Job>& job, const std::string& minion,
                   const std::string& jid, std::chrono::seconds grace) {
        job->terminate_requested.erase(minion);
        send_signal_job(minion, jid, "saltutil.term_job");
        auto timer = std::make_shared<net::steady_timer>(m_core->io(), grace);
        std::weak_ptr<Job> weak = job;
        timer->async_wait([this, weak, minion, jid, timer](const error_code& ec) {
            auto live = weak.lock();
            if (ec || !live || m_stopped || live->pending.count(minion) == 0) return;
            send_signal_job(minion, jid, "saltutil.kill_job");
        });
    }

    void send_signal_job(const std::string& minion, const std::string& jid, const std::string& fun) {
        std::string body = detail::signal_job_lowstate({minion}, jid, fun);
        m_core->api_call("POST", "/", std::move(body), m_core->options().request_timeout,
                         [minion, jid, fun](Result<HttpResponse> r) {
                             if (!r) spdlog::warn("{} of job {} on {}: {}", fun, jid, minion, r.error().message);
                         });
    }

    static MinionReturn no_return(const std::string& minion, std::string why) {
        MinionReturn ret;
        ret.minion = minion;
        ret.returned = false;
        ret.error = std::move(why);
        return ret;
    }

    void report(TransportJob id, const std::shared_ptr<Job>& job, MinionReturn ret) {
        if (job->pending.erase(ret.minion) == 0) return;
        auto timer = job->timers.find(ret.minion);
        if (timer != job->timers.end()) {
            timer->second->cancel();
            job->timers.erase(timer);
        }
        if (job->on_return) job->on_return(std::move(ret));
        if (job->pending.empty()) finish(id);
    }

    void finish(TransportJob id) {
        auto it = m_jobs->find(id);
        if (it == m_jobs->end()) return;
        auto done = std::move(it->second->done);
        m_jobs->erase(it);
        // Posted, so that `done` never runs inside run_all() itself.
        if (done && !m_stopped) net::post(m_core->io(), std::move(done));
    }

    std::shared_ptr<SaltApiCore> m_core;
    std::shared_ptr<Jobs> m_jobs;
    std::shared_ptr<FollowedJobs> m_followed;
    TransportJob m_next_job = 0;
    bool m_stopped = false;
};

}  // namespace

std::unique_ptr<SaltTransport> make_salt_api_transport(boost::asio::io_context& io, SaltApiOptions options) {
    return std::make_unique<SaltApiTransport>(io, std::move(options));
}

}  // namespace saltpeter
