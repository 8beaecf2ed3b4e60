// The salt-api (rest_cherrypy) transport. One TU holds all of Beast/Asio-SSL so that the heavy
// headers stay out of the public API and compile once. Shapes follow salt/TRANSCRIPTS.md item 7.
//
// run_all: the transcript has no example of several lowstate chunks in one POST, and every minion
// needs its own env (SP_TOKEN), so each minion gets its own `local_async` request (at most
// k_max_http_in_flight HTTP calls at once), then GET /jobs/<jid> is polled every second until that
// minion's return shows up or the request timeout passes. The jids make terminate possible
// (saltutil.term_job, then saltutil.kill_job after the grace period).
#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <deque>
#include <map>
#include <set>
#include <spdlog/spdlog.h>

#include "salt/salt_api_json.hpp"
#include "saltpeter/salt_transport.hpp"

namespace saltpeter {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

constexpr std::size_t k_max_http_in_flight = 16;
constexpr std::chrono::seconds k_poll_interval{1};
// run_async follows one jid for the whole batch: 1 s between polls at first, growing to 10 s.
constexpr std::chrono::milliseconds k_follow_first{1000};
constexpr std::chrono::milliseconds k_follow_max{10000};
// A token is renewed this long before Salt says it expires, so a request never races expiry.
constexpr double k_token_margin_s = 60;

struct Url {
    bool tls = false;
    std::string host;
    std::string port;
    std::string base_path;  ///< without trailing '/'; "" for the root
    std::string text;       ///< scheme://host:port + base_path, for messages
};

Result<Url> parse_url(const std::string& text) {
    Url url;
    std::string rest;
    if (text.rfind("http://", 0) == 0) {
        rest = text.substr(7);
    } else if (text.rfind("https://", 0) == 0) {
        url.tls = true;
        rest = text.substr(8);
    } else {
        return Error{"salt-api url must start with http:// or https://: " + text, "salt_api_url"};
    }
    const auto slash = rest.find('/');
    std::string authority = rest.substr(0, slash);
    url.base_path = slash == std::string::npos ? "" : rest.substr(slash);
    while (!url.base_path.empty() && url.base_path.back() == '/') url.base_path.pop_back();
    const auto colon = authority.rfind(':');
    if (colon != std::string::npos && authority.find(']', colon) == std::string::npos) {
        url.host = authority.substr(0, colon);
        url.port = authority.substr(colon + 1);
    } else {
        url.host = authority;
        url.port = url.tls ? "443" : "80";
    }
    if (url.host.size() > 2 && url.host.front() == '[' && url.host.back() == ']') {
        url.host = url.host.substr(1, url.host.size() - 2);
    }
    if (url.host.empty() || url.port.empty()) return Error{"salt-api url has no host: " + text, "salt_api_url"};
    url.text = (url.tls ? "https://" : "http://") + authority + url.base_path;
    return url;
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

// One HTTP(S) exchange on a fresh connection (Connection: close): resolve, connect within the
// connect timeout, optional TLS handshake, write and read within the request timeout.
class HttpCall : public std::enable_shared_from_this<HttpCall> {
public:
    HttpCall(net::io_context& io, ssl::context* tls, const Url& url, http::verb verb, std::string path,
             std::string body, std::string token, std::chrono::seconds connect_timeout,
             std::chrono::seconds request_timeout, HttpHandler done)
        : m_resolver(io), m_tcp(io), m_url(url), m_connect_timeout(connect_timeout),
          m_request_timeout(request_timeout), m_done(std::move(done)) {
        if (tls != nullptr) m_tls = std::make_unique<beast::ssl_stream<beast::tcp_stream>>(io, *tls);
        m_what = "salt-api " + url.text + path;
        m_request.method(verb);
        m_request.target(url.base_path + path);
        m_request.version(11);
        const bool v6 = url.host.find(':') != std::string::npos;
        m_request.set(http::field::host, (v6 ? "[" + url.host + "]" : url.host) + ":" + url.port);
        m_request.set(http::field::accept, "application/json");
        m_request.set(http::field::connection, "close");
        if (!token.empty()) m_request.set("X-Auth-Token", token);
        if (verb == http::verb::post) {
            m_request.set(http::field::content_type, "application/json");
            m_request.body() = std::move(body);
        }
        m_request.prepare_payload();
        m_parser.body_limit(64 * 1024 * 1024);
    }

    void start() {
        auto self = shared_from_this();
        arm_timer(m_connect_timeout);
        m_resolver.async_resolve(m_url.host, m_url.port,
                                 [self](const beast::error_code& ec, tcp::resolver::results_type results) {
                                     self->on_resolve(ec, std::move(results));
                                 });
    }

    /// Ends the exchange; the handler gets an error unless it already ran.
    void cancel() {
        m_resolver.cancel();
        beast::error_code ignored;
        lowest().socket().close(ignored);
        finish(Error{m_what + ": cancelled", ""});
    }

private:
    beast::tcp_stream& lowest() { return m_tls ? beast::get_lowest_layer(*m_tls) : m_tcp; }

    // The resolver has no deadline of its own; a timer closes everything when it passes.
    void arm_timer(std::chrono::seconds limit) {
        if (!m_timer) m_timer = std::make_unique<net::steady_timer>(m_tcp.get_executor());
        m_timer->expires_after(limit);
        std::weak_ptr<HttpCall> weak = shared_from_this();
        m_timer->async_wait([weak, limit](const beast::error_code& ec) {
            if (ec) return;
            if (auto self = weak.lock()) {
                self->m_resolver.cancel();
                beast::error_code ignored;
                self->lowest().socket().close(ignored);
                self->finish(Error{self->m_what + ": timed out after " + std::to_string(limit.count()) + " s", ""});
            }
        });
    }

    void on_resolve(const beast::error_code& ec, tcp::resolver::results_type results) {
        if (ec) return fail(ec, "resolve");
        auto self = shared_from_this();
        lowest().async_connect(results, [self](const beast::error_code& e, const tcp::endpoint&) {
            self->on_connect(e);
        });
    }

    void on_connect(const beast::error_code& ec) {
        if (ec) return fail(ec, "connect");
        auto self = shared_from_this();
        arm_timer(m_request_timeout);
        if (!m_tls) return send();
        // SSL_set_tlsext_host_name is a macro with a C cast; call what it expands to.
        if (SSL_ctrl(m_tls->native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                     const_cast<char*>(m_url.host.c_str())) != 1) {
            return finish(Error{m_what + ": cannot set TLS server name", ""});
        }
        m_tls->set_verify_callback(ssl::host_name_verification(m_url.host));
        m_tls->async_handshake(ssl::stream_base::client, [self](const beast::error_code& e) {
            if (e) return self->fail(e, "TLS handshake");
            self->send();
        });
    }

    void send() {
        auto self = shared_from_this();
        auto on_write = [self](const beast::error_code& ec, std::size_t) {
            if (ec) return self->fail(ec, "write");
            self->receive();
        };
        if (m_tls) {
            http::async_write(*m_tls, m_request, on_write);
        } else {
            http::async_write(m_tcp, m_request, on_write);
        }
    }

    void receive() {
        auto self = shared_from_this();
        auto on_read = [self](const beast::error_code& ec, std::size_t) {
            if (ec) return self->fail(ec, "read");
            HttpResponse response;
            response.status = self->m_parser.get().result_int();
            response.body = std::move(self->m_parser.get().body());
            beast::error_code ignored;
            self->lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
            self->lowest().socket().close(ignored);
            self->finish(std::move(response));
        };
        if (m_tls) {
            http::async_read(*m_tls, m_buffer, m_parser, on_read);
        } else {
            http::async_read(m_tcp, m_buffer, m_parser, on_read);
        }
    }

    void fail(const beast::error_code& ec, const char* step) {
        finish(Error{m_what + ": " + step + " failed: " + ec.message(), ""});
    }

    void finish(Result<HttpResponse> result) {
        if (!m_done) return;
        if (m_timer) m_timer->cancel();
        auto done = std::move(m_done);
        m_done = nullptr;
        done(std::move(result));
    }

    tcp::resolver m_resolver;
    beast::tcp_stream m_tcp;
    std::unique_ptr<beast::ssl_stream<beast::tcp_stream>> m_tls;
    std::unique_ptr<net::steady_timer> m_timer;
    Url m_url;
    std::chrono::seconds m_connect_timeout;
    std::chrono::seconds m_request_timeout;
    HttpHandler m_done;
    std::string m_what;
    http::request<http::string_body> m_request;
    http::response_parser<http::string_body> m_parser;
    beast::flat_buffer m_buffer;
};

// State shared with every pending completion, so that the transport can be destroyed while
// calls are in flight: completions then find m_stopped and call nobody.
class SaltApiCore : public std::enable_shared_from_this<SaltApiCore> {
public:
    SaltApiCore(net::io_context& io, SaltApiOptions options) : m_io(io), m_options(std::move(options)) {
        auto url = parse_url(m_options.url);
        if (!url) {
            m_setup_error = url.error().message;
            return;
        }
        m_url = *url;
        if (m_url.tls) {
            m_tls = std::make_unique<ssl::context>(ssl::context::tls_client);
            beast::error_code ec;
            if (m_options.ca_file.empty()) {
                m_tls->set_default_verify_paths(ec);
            } else {
                m_tls->load_verify_file(m_options.ca_file, ec);
            }
            if (ec) m_setup_error = "salt-api " + m_url.text + ": cannot load CA certificates: " + ec.message();
            m_tls->set_verify_mode(ssl::verify_peer, ec);
            if (ec && m_setup_error.empty()) m_setup_error = "salt-api " + m_url.text + ": " + ec.message();
        }
    }

    net::io_context& io() { return m_io; }
    const SaltApiOptions& options() const { return m_options; }
    bool stopped() const { return m_stopped; }

    /// An authenticated call: logs in when there is no valid token; on a 401 logs in again once
    /// and retries. Non-2xx answers become an Error naming the URL and the HTTP status.
    void api_call(http::verb verb, const std::string& path, std::string body, std::chrono::seconds timeout,
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
        const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
        return now < m_token_expire - k_token_margin_s;
    }

    void with_token(std::function<void(Status)> next) {
        if (token_valid()) return next(Ok{});
        m_login_waiters.push_back(std::move(next));
        if (m_login_in_flight) return;
        m_login_in_flight = true;
        auto self = shared_from_this();
        // The body carries the password: it goes on the wire only, never into a message.
        start_call(http::verb::post, "/login",
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
    void queued_call(http::verb verb, const std::string& path, std::string body, std::string token,
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

    void start_call(http::verb verb, const std::string& path, std::string body, std::string token,
                    std::chrono::seconds timeout, HttpHandler done) {
        if (m_stopped) return;
        const std::uint64_t id = ++m_next_call;
        auto self = shared_from_this();
        auto call = std::make_shared<HttpCall>(
            m_io, m_tls.get(), m_url, verb, path, std::move(body), std::move(token), m_options.connect_timeout, timeout,
            [self, id, done = std::move(done)](Result<HttpResponse> r) mutable {
                self->m_calls.erase(id);
                if (self->m_stopped) return;
                done(std::move(r));
            });
        m_calls[id] = call;
        call->start();
    }

    net::io_context& m_io;
    SaltApiOptions m_options;
    Url m_url;
    std::string m_setup_error;
    std::unique_ptr<ssl::context> m_tls;
    std::string m_token;
    double m_token_expire = 0;
    bool m_login_in_flight = false;
    std::vector<std::function<void(Status)>> m_login_waiters;
    std::deque<std::function<void()>> m_queue;
    std::size_t m_active = 0;
    std::map<std::uint64_t, std::weak_ptr<HttpCall>> m_calls;
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
        m_core->api_call(http::verb::post, "/", detail::ping_lowstate(target, timeout),
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
            job->give_up_timer->async_wait([this, id, weak](const beast::error_code& ec) {
                auto live = weak.lock();
                if (ec || !live || m_stopped || live->pending.empty()) return;
                std::string why = "no return within " + std::to_string(live->follow_for.count()) + " s";
                if (!live->jid.empty()) why += " (jid " + live->jid + ")";
                if (!live->last_error.empty()) why += "; last error: " + live->last_error;
                give_up(id, live, why);
            });
        }
        m_core->api_call(http::verb::post, "/", detail::command_lowstate(request, "local_async"),
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
        job->timer->async_wait([this, id, weak, interval](const beast::error_code& ec) {
            auto live = weak.lock();
            if (ec || !live || m_stopped) return;
            follow(id, live, interval);
        });
    }

    void follow(TransportJob id, const std::shared_ptr<FollowedJob>& job, std::chrono::milliseconds interval) {
        std::weak_ptr<FollowedJob> weak = job;
        m_core->api_call(http::verb::get, "/jobs/" + job->jid, "", m_core->options().request_timeout,
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
        timer->async_wait([this, id, weak, targets, jid, timer](const beast::error_code& ec) {
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
        m_core->api_call(http::verb::post, "/", detail::signal_job_lowstate(minions, jid, fun),
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
        m_core->api_call(http::verb::post, "/", detail::run_all_lowstate(job->request, minion, "local_async"),
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
        timer->async_wait([this, id, weak, minion](const beast::error_code& ec) {
            auto live = weak.lock();
            if (ec || !live || m_stopped) return;
            poll(id, live, minion);
        });
    }

    void poll(TransportJob id, const std::shared_ptr<Job>& job, const std::string& minion) {
        const std::string jid = job->jids[minion];
        std::weak_ptr<Job> weak = job;
        m_core->api_call(http::verb::get, "/jobs/" + jid, "", m_core->options().request_timeout,
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
        timer->async_wait([this, weak, minion, jid, timer](const beast::error_code& ec) {
            auto live = weak.lock();
            if (ec || !live || m_stopped || live->pending.count(minion) == 0) return;
            send_signal_job(minion, jid, "saltutil.kill_job");
        });
    }

    void send_signal_job(const std::string& minion, const std::string& jid, const std::string& fun) {
        std::string body = detail::signal_job_lowstate({minion}, jid, fun);
        m_core->api_call(http::verb::post, "/", std::move(body), m_core->options().request_timeout,
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
