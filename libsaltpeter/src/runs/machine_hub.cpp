// MachineHub (machine_hub.hpp): spd's "machines" WebSocket server, PROTOCOL.md 1.4 (REC) and 5.3.
// The sockets themselves are net/ws_server.hpp's; this file is the protocol logic on top.
//
// Per (instance, machine) pair; the state outlives sockets and lives until forget():
//
//            first accepted-or-not frame of an unknown pair on a socket
//   (none) ------------------------------------------------------------> admit()
//                                                                          |
//       unknown: complete -> error JOB_NOT_FOUND + close 1000;  <----------+---- not_a_target:
//                others dropped, logged once per socket                   |     dropped, logged once
//                                                                         | accept
//                                                                         v
//   +--------------------------- ACCEPTED (expected = last_seq + 1, last_stored = last_seq) ----+
//   | connect, no proto : new numbering epoch: expected = 0, last_stored = -1 (stored data kept)|
//   | connect, proto 2  : ack{proto 2, last_seq = last_stored}; numbering kept                  |
//   | start             : on_start once (started); every start acked                            |
//   | output seq == expected : expected++, on_output, ack(seq) when stored() -> last_stored     |
//   |        seq <  expected : duplicate: ack at once if <= last_stored, else when it is stored |
//   |        seq >  expected : nack{expected, received}                                         |
//   | sync_request      : sync_response{last_stored}                                            |
//   | complete          : on_complete once -> COMPLETING --stored()--> COMPLETED (acks waiters) |
//   |                     COMPLETED (or Admission.completed): ack every repeat at once          |
//   +-------------------------------------------------------------------------------------------+
//
// Per socket, kills wait for the handshake (PROTOCOL.md 0.1: the wrapper takes the next frame as
// the ACK of connect/start):
//
//   OPEN --first frame connect--> CONNECTED --start acked / pair already started / other frame--> READY
//   OPEN --first frame anything else (original wrapper after a reconnect: implicit connect)----> READY
//
// Kills go to the pair's newest socket (the last one an accepted frame of the pair came in on),
// only when it is READY; until then one kill waits in the pair.

#include "runs/machine_hub.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <set>
#include <utility>
#include <variant>
#include <vector>

#include <boost/asio/steady_timer.hpp>

#include "core/token.hpp"
#include "net/ws_server.hpp"

namespace saltpeter {
namespace {

namespace proto = protocol;

// Rejected admissions remembered per socket (so that admit() is not asked for every frame);
// beyond this the cache is cleared rather than grown.
constexpr std::size_t k_max_refused_per_socket = 1024;
// Duplicates (or repeated completes) waiting for the first copy to be stored, per pair.
constexpr std::size_t k_max_waiters = 1024;
constexpr const char* k_job_not_found_message = "Job no longer exists on server (stopped or restarted)";

std::string now_ts() { return proto::format_timestamp(std::chrono::system_clock::now()); }

const proto::Envelope& envelope_of(const proto::WrapperMessage& m) {
    return std::visit([](const auto& x) -> const proto::Envelope& { return x.envelope; }, m);
}

}  // namespace

class MachineHub::Impl : public std::enable_shared_from_this<Impl>, public WsHandler {
public:
    Impl(boost::asio::io_context& io, HubOptions options, HubListener& listener)
        : m_io(io), m_options(std::move(options)), m_listener(listener) {}

    Result<std::uint16_t> listen();
    bool send_kill(const TargetKey& key, const std::string& job_name);
    void forget(const TargetKey& key) { m_pairs.erase(key); }
    void stop();
    HubStats stats() const { return m_stats; }

private:
    struct Socket {
        std::uint64_t id = 0;
        WsConnectionPtr con;
        std::string peer;
        bool open = true;
        bool any_frame = false;
        bool valid_frame = false;       ///< a well-formed, authenticated frame arrived (ends the idle deadline)
        std::unique_ptr<boost::asio::steady_timer> idle_timer;
        bool explicit_connect = false;  ///< the first frame on this socket was `connect`
        bool connect_answered = false;
        bool start_answered = false;
        bool past_handshake = false;    ///< a frame other than connect/start arrived
        std::set<std::string> logged;   ///< problem kinds (a fixed set) already reported for this socket
        std::set<TargetKey> authenticated;
        std::map<TargetKey, Admission::Verdict> refused;
    };
    using SocketPtr = std::shared_ptr<Socket>;

    struct Waiter {
        std::weak_ptr<Socket> socket;
        std::optional<std::int64_t> seq;
    };
    struct Pair {
        std::int64_t expected = 0;
        std::int64_t last_stored = -1;
        std::uint64_t epoch = 0;  ///< bumped when a proto-less connect restarts the numbering
        bool started = false;
        bool completing = false;
        bool completed = false;
        bool logged_tokenless = false;
        std::vector<Waiter> complete_waiters;
        std::vector<Waiter> duplicate_waiters;  ///< duplicates of outputs not stored yet
        std::weak_ptr<Socket> newest;
        std::optional<std::string> pending_kill;
    };
    using PairPtr = std::shared_ptr<Pair>;

    // WsHandler (WsServer catches what they throw and reports it to on_handler_error).
    void on_open(const WsConnectionPtr& con) override;
    void on_close(const WsConnectionPtr& con) override { on_closed(con); }
    void on_fail(const WsConnectionPtr& con, const WsFailure&) override { on_closed(con); }
    void on_message(const WsConnectionPtr& con, bool is_text, const std::string& payload) override;
    void on_handler_error(const WsConnectionPtr& con, const char* what, const std::exception* error) override {
        handler_failed(find_socket(con.get()), what, error);
    }
    void on_closed(const WsConnectionPtr& con);
    void on_idle_deadline(const SocketPtr& sock);
    void handler_failed(const SocketPtr& sock, const char* what, const std::exception* error);

    void handle_frame(const SocketPtr& sock, const proto::WrapperMessage& message);
    bool check_token(const SocketPtr& sock, const TargetKey& key, const proto::Connect& c);
    PairPtr admit(const SocketPtr& sock, const TargetKey& key, bool is_complete);
    void handle_output(const SocketPtr& sock, const TargetKey& key, const PairPtr& pair, const proto::Output& o);
    void handle_complete(const SocketPtr& sock, const TargetKey& key, const PairPtr& pair, const proto::Complete& c);
    void output_stored(const TargetKey& key, const std::weak_ptr<Socket>& sock, std::optional<std::int64_t> seq,
                       std::uint64_t epoch);
    void complete_stored(const TargetKey& key, const Waiter& first);
    void flush_kill(const TargetKey& key, Pair& pair);

    bool ready(const Socket& sock, const Pair& pair) const;
    void send(const SocketPtr& sock, const proto::ServerMessage& message);
    void close_peer(const SocketPtr& sock, int code, const std::string& reason);
    void warn_once(Socket& sock, const std::string& kind, const std::string& message);
    void reject(Socket& sock, const std::string& kind, const std::string& message);
    SocketPtr find_socket(const WsConnection* con) const;
    PairPtr find_pair(const TargetKey& key) const;

    boost::asio::io_context& m_io;
    HubOptions m_options;
    HubListener& m_listener;
    std::unique_ptr<WsServer> m_server;
    bool m_listening = false;
    bool m_stopped = false;
    std::uint64_t m_next_socket_id = 0;
    std::map<const WsConnection*, SocketPtr> m_sockets;  ///< keyed by Socket::con while it is open
    std::map<TargetKey, PairPtr> m_pairs;
    HubStats m_stats;
};

// ---- setup and teardown ---------------------------------------------------------------------

Result<std::uint16_t> MachineHub::Impl::listen() {
    const std::string where = m_options.bind_address + ":" + std::to_string(m_options.port);
    if (m_stopped) return Error{"machines port " + where + ": the hub was stopped", ""};
    if (m_listening) return Error{"machines port " + where + ": already listening", ""};
    WsServerOptions ws{m_options.bind_address, m_options.port, m_options.tls_cert, m_options.tls_key};
    ws.max_message_bytes = m_options.max_frame_bytes;
    ws.words = {"machines port", "machines port", "port", "machines port: invalid bind address", "bind_address"};
    m_server = std::make_unique<WsServer>(m_io, std::move(ws), weak_from_this());
    auto port = m_server->listen();
    if (!port) return port;
    m_listening = true;
    spdlog::info("machine hub listening on {}://{}:{}", m_server->secure() ? "wss" : "ws", m_options.bind_address, *port);
    return port;
}

void MachineHub::Impl::stop() {
    if (m_stopped) return;
    m_stopped = true;
    if (m_listening && m_server) m_server->stop_listening();  // keeps the socket layer alive 50 ms
    m_listening = false;
    auto sockets = std::move(m_sockets);
    m_sockets.clear();
    for (auto& [key, sock] : sockets) {
        sock->open = false;
        if (sock->idle_timer) sock->idle_timer->cancel();
        if (sock->con) sock->con->close(ws_close::k_going_away, "server stopping");
    }
    m_stats.connections_open = 0;
}

void MachineHub::Impl::handler_failed(const SocketPtr& sock, const char* what, const std::exception* error) {
    if (error) spdlog::error("machine hub: {} handler failed: {}; closing that peer", what, error->what());
    else spdlog::error("machine hub: {} handler failed; closing that peer", what);
    if (sock) close_peer(sock, ws_close::k_internal_endpoint_error, "internal error");
}

void MachineHub::Impl::on_open(const WsConnectionPtr& con) {
    if (m_stopped) {
        con->close(ws_close::k_going_away, "server stopping");
        return;
    }
    auto sock = std::make_shared<Socket>();
    sock->id = ++m_next_socket_id;
    sock->peer = con->remote_endpoint();
    sock->con = con;
    m_sockets[con.get()] = sock;
    ++m_stats.connections_open;
    ++m_stats.connections_total;
    if (m_options.idle_timeout.count() > 0) {
        // A peer that holds the socket without ever sending a valid frame costs a connection's
        // buffers for good; heartbeats only watch sockets of known pairs.
        sock->idle_timer = std::make_unique<boost::asio::steady_timer>(m_io, m_options.idle_timeout);
        std::weak_ptr<Impl> weak = shared_from_this();
        std::weak_ptr<Socket> wsock = sock;
        sock->idle_timer->async_wait([weak, wsock](const boost::system::error_code& ec) {
            if (ec) return;
            auto self = weak.lock();
            auto s = wsock.lock();
            if (!self || !s) return;
            // A timer callback, not a socket one: guarded here, as WsServer guards the others.
            try {
                self->on_idle_deadline(s);
            } catch (const std::exception& e) {
                self->handler_failed(self->find_socket(s->con.get()), "idle", &e);
            } catch (...) {
                self->handler_failed(self->find_socket(s->con.get()), "idle", nullptr);
            }
        });
    }
}

void MachineHub::Impl::on_idle_deadline(const SocketPtr& sock) {
    if (m_stopped || !sock->open || sock->valid_frame) return;
    warn_once(*sock, "idle", "no valid frame within " + std::to_string(m_options.idle_timeout.count()) +
                                 " ms of the handshake; socket closed (1008)");
    close_peer(sock, ws_close::k_policy_violation, "no frame");
}

void MachineHub::Impl::on_closed(const WsConnectionPtr& con) {
    auto it = m_sockets.find(con.get());
    if (it == m_sockets.end()) return;  // a failed handshake, or closed by stop()
    SocketPtr sock = it->second;
    m_sockets.erase(it);
    sock->open = false;
    if (sock->idle_timer) sock->idle_timer->cancel();
    if (m_stats.connections_open > 0) --m_stats.connections_open;
    // websocketpp closes a socket whose frame exceeds max_frame_bytes with 1009 on its own.
    if (sock->con && sock->con->local_close_code() == ws_close::k_message_too_big) {
        ++m_stats.frames_rejected;
        ++m_stats.peers_closed;
        warn_once(*sock, "too_big", "frame larger than " + std::to_string(m_options.max_frame_bytes) +
                                        " bytes; socket closed (1009)");
    }
    sock->con.reset();
}

// ---- frames ---------------------------------------------------------------------------------

void MachineHub::Impl::on_message(const WsConnectionPtr& con, bool is_text, const std::string& text) {
    if (m_stopped) return;
    SocketPtr sock = find_socket(con.get());
    if (!sock || !sock->open) return;
    ++m_stats.frames_received;
    m_stats.bytes_received += text.size();
    if (!is_text) {
        reject(*sock, "binary", "binary frame dropped (the protocol uses text frames only)");
        return;
    }
    auto parsed = proto::parse_wrapper_frame(text);
    if (!parsed) {
        reject(*sock, "malformed", "malformed frame dropped: " + parsed.error().message);
        return;
    }
    handle_frame(sock, *parsed);
}

bool MachineHub::Impl::check_token(const SocketPtr& sock, const TargetKey& key, const proto::Connect& c) {
    if (c.token) {
        const std::string want = wrapper_token(m_options.secret, key.instance, key.machine);
        if (detail::constant_time_equal(*c.token, want)) {
            // Authentication is the token's business, not the admission's: a wrapper whose
            // instance is gone must still get JOB_NOT_FOUND for its complete on this socket.
            sock->authenticated.insert(key);
            return true;
        }
        reject(*sock, "bad_token", "connect for " + key.to_string() + " with a wrong token; socket closed");
    } else if (m_options.require_token) {
        reject(*sock, "no_token", "connect for " + key.to_string() + " without a token (wrapper_auth: required); socket closed");
    } else {
        return true;
    }
    close_peer(sock, ws_close::k_policy_violation, "authentication failed");
    return false;
}

MachineHub::Impl::PairPtr MachineHub::Impl::admit(const SocketPtr& sock, const TargetKey& key, bool is_complete) {
    if (auto pair = find_pair(key)) return pair;
    Admission::Verdict verdict;
    if (auto it = sock->refused.find(key); it != sock->refused.end()) {
        verdict = it->second;
    } else {
        Admission admission = m_listener.admit(key);
        if (m_stopped || !sock->open) return nullptr;  // the listener stopped us
        verdict = admission.verdict;
        if (verdict == Admission::Verdict::accept) {
            auto pair = std::make_shared<Pair>();
            pair->last_stored = std::max<std::int64_t>(admission.last_seq, -1);
            pair->expected = pair->last_stored + 1;
            pair->completed = admission.completed;
            m_pairs[key] = pair;
            return pair;
        }
        if (sock->refused.size() >= k_max_refused_per_socket) sock->refused.clear();
        sock->refused[key] = verdict;
    }
    if (verdict == Admission::Verdict::unknown && is_complete) {
        // PROTOCOL.md 1.4: the original wrapper stops for good on JOB_NOT_FOUND.
        ++m_stats.frames_rejected;
        warn_once(*sock, "job_not_found", "complete for unknown instance " + key.to_string() + ": JOB_NOT_FOUND");
        send(sock, proto::ServerError{"JOB_NOT_FOUND", k_job_not_found_message});
        close_peer(sock, ws_close::k_normal, "");
    } else if (verdict == Admission::Verdict::unknown) {
        reject(*sock, "unknown", "frame for unknown instance " + key.to_string() + " dropped");
    } else {
        reject(*sock, "not_a_target",
               "frame from " + key.machine + ", not a target of " + key.instance + ", dropped");
    }
    return nullptr;
}

void MachineHub::Impl::handle_frame(const SocketPtr& sock, const proto::WrapperMessage& message) {
    const proto::Envelope& env = envelope_of(message);
    const TargetKey key{env.job_instance, env.machine};
    const auto* connect = std::get_if<proto::Connect>(&message);
    const bool is_start = std::holds_alternative<proto::Start>(message);
    if (!sock->any_frame) {
        sock->any_frame = true;
        sock->explicit_connect = connect != nullptr;
    }

    if (connect) {
        if (!check_token(sock, key, *connect)) return;
    } else if (m_options.require_token && sock->authenticated.count(key) == 0) {
        reject(*sock, "unauthenticated",
               "frame for " + key.to_string() + " on a socket without an authenticated connect dropped");
        return;
    }
    if (!sock->valid_frame) {
        sock->valid_frame = true;
        if (sock->idle_timer) sock->idle_timer->cancel();
    }

    PairPtr pair = admit(sock, key, std::holds_alternative<proto::Complete>(message));
    if (!pair) return;
    if (sock->authenticated.count(key) == 0 && !pair->logged_tokenless) {
        // Only reachable with wrapper_auth: compatible (5.5: "logs each one").
        pair->logged_tokenless = true;
        spdlog::info("machine hub: accepting original wrapper without token for {} ({})", key.to_string(), sock->peer);
    }
    if (!connect && !is_start) sock->past_handshake = true;
    pair->newest = sock;
    m_listener.on_activity(key);
    if (m_stopped || !sock->open) return;

    std::visit(
        [&](const auto& m) {
            using T = std::decay_t<decltype(m)>;
            if constexpr (std::is_same_v<T, proto::Connect>) {
                proto::Ack ack{proto::AckType::connect, now_ts(), std::nullopt, std::nullopt, std::nullopt};
                if (m.proto && *m.proto >= 2) {
                    // 5.3: the wrapper resends seq > last_seq and keeps its numbering.
                    ack.proto = 2;
                    ack.last_seq = pair->last_stored;
                } else {
                    // 1.7 REC: a proto-less connect restarts the numbering at 0. The original wrapper
                    // only sends connect before its first output, so nothing stored is repeated; a
                    // peer that renumbers per socket resends only what it has no ack for. Stored
                    // output is kept; only the expectation (and its epoch) starts over.
                    ++pair->epoch;
                    pair->expected = 0;
                    pair->last_stored = -1;
                    pair->duplicate_waiters.clear();
                }
                send(sock, ack);
                sock->connect_answered = true;
            } else if constexpr (std::is_same_v<T, proto::Start>) {
                // 1.7 REC 3: a second start must not reset what was collected.
                if (!pair->started) {
                    pair->started = true;
                    m_listener.on_start(key, m);
                }
                send(sock, proto::Ack{proto::AckType::start, now_ts(), std::nullopt, std::nullopt, std::nullopt});
                sock->start_answered = true;
            } else if constexpr (std::is_same_v<T, proto::Output>) {
                handle_output(sock, key, pair, m);
            } else if constexpr (std::is_same_v<T, proto::Heartbeat>) {
                // on_activity above is all a heartbeat is for.
            } else if constexpr (std::is_same_v<T, proto::SyncRequest>) {
                send(sock, proto::SyncResponse{pair->last_stored, now_ts()});
            } else if constexpr (std::is_same_v<T, proto::Complete>) {
                handle_complete(sock, key, pair, m);
            } else if constexpr (std::is_same_v<T, proto::Killed>) {
                spdlog::info("machine hub: {} reports killed", key.to_string());
            } else if constexpr (std::is_same_v<T, proto::WrapperError>) {
                m_listener.on_wrapper_error(key, m);
            }
        },
        message);
    if (!m_stopped) flush_kill(key, *pair);
}

void MachineHub::Impl::handle_output(const SocketPtr& sock, const TargetKey& key, const PairPtr& pair,
                                     const proto::Output& o) {
    std::weak_ptr<Impl> weak = shared_from_this();
    std::weak_ptr<Socket> wsock = sock;
    auto make_stored = [weak, key, wsock](std::optional<std::int64_t> seq, std::uint64_t epoch) {
        auto called = std::make_shared<bool>(false);
        return std::function<void()>([weak, key, wsock, seq, epoch, called] {
            if (*called) return;
            *called = true;
            auto self = weak.lock();
            if (!self || self->m_stopped) return;
            try {
                self->output_stored(key, wsock, seq, epoch);
            } catch (const std::exception& e) {
                spdlog::error("machine hub: acking output of {} failed: {}", key.to_string(), e.what());
            }
        });
    };
    if (!o.seq) {
        // 1.4: output without seq skips the sequence check and is acked without seq.
        m_listener.on_output(key, o, make_stored(std::nullopt, pair->epoch));
        return;
    }
    const std::int64_t seq = *o.seq;
    if (seq < 0) {
        reject(*sock, "negative_seq", "output for " + key.to_string() + " with negative seq dropped");
        return;
    }
    if (seq < pair->expected) {
        ++m_stats.duplicates_acked;
        if (seq <= pair->last_stored) send(sock, proto::Ack{proto::AckType::output, now_ts(), seq, std::nullopt, std::nullopt});
        else if (pair->duplicate_waiters.size() < k_max_waiters)
            pair->duplicate_waiters.push_back(Waiter{sock, seq});  // acked once the first copy is stored
        // Beyond the bound a duplicate goes unanswered; the wrapper's sync_request recovers it.
        return;
    }
    if (seq > pair->expected) {
        ++m_stats.gaps_nacked;
        send(sock, proto::Nack{"out_of_order", pair->expected, seq, now_ts()});
        return;
    }
    ++pair->expected;
    m_listener.on_output(key, o, make_stored(seq, pair->epoch));
}

void MachineHub::Impl::output_stored(const TargetKey& key, const std::weak_ptr<Socket>& wsock,
                                     std::optional<std::int64_t> seq, std::uint64_t epoch) {
    PairPtr pair = find_pair(key);
    // Acks go out in the order stored() is called, which is the seq order (listener contract).
    if (auto sock = wsock.lock(); sock && sock->open)
        send(sock, proto::Ack{proto::AckType::output, now_ts(), seq, std::nullopt, std::nullopt});
    if (!pair || !seq || pair->epoch != epoch) return;
    pair->last_stored = std::max(pair->last_stored, *seq);
    auto& waiters = pair->duplicate_waiters;
    for (auto it = waiters.begin(); it != waiters.end();) {
        if (it->seq && *it->seq <= pair->last_stored) {
            if (auto s = it->socket.lock(); s && s->open)
                send(s, proto::Ack{proto::AckType::output, now_ts(), it->seq, std::nullopt, std::nullopt});
            it = waiters.erase(it);
        } else {
            ++it;
        }
    }
}

void MachineHub::Impl::handle_complete(const SocketPtr& sock, const TargetKey& key, const PairPtr& pair,
                                       const proto::Complete& c) {
    if (pair->completed) {
        // 1.7 REC 6: repeats of a recorded result are acked at once, never stored again.
        send(sock, proto::Ack{proto::AckType::complete, now_ts(), c.seq, std::nullopt, std::nullopt});
        return;
    }
    Waiter me{sock, c.seq};
    if (pair->complete_waiters.size() < k_max_waiters) pair->complete_waiters.push_back(me);
    if (pair->completing) return;  // the first copy is being stored; this one is acked with it
    pair->completing = true;
    if (c.seq && *c.seq != pair->expected)
        spdlog::warn("machine hub: complete of {} says seq {} but output up to {} arrived", key.to_string(), *c.seq,
                     pair->expected - 1);
    std::weak_ptr<Impl> weak = shared_from_this();
    auto called = std::make_shared<bool>(false);
    m_listener.on_complete(key, c, [weak, key, me, called] {
        if (*called) return;
        *called = true;
        auto self = weak.lock();
        if (!self || self->m_stopped) return;
        try {
            self->complete_stored(key, me);
        } catch (const std::exception& e) {
            spdlog::error("machine hub: acking complete of {} failed: {}", key.to_string(), e.what());
        }
    });
}

void MachineHub::Impl::complete_stored(const TargetKey& key, const Waiter& first) {
    std::vector<Waiter> waiters{first};
    if (PairPtr pair = find_pair(key)) {
        pair->completing = false;
        pair->completed = true;
        waiters = std::move(pair->complete_waiters);
        pair->complete_waiters.clear();
    }
    for (const auto& w : waiters)
        if (auto s = w.socket.lock(); s && s->open)
            send(s, proto::Ack{proto::AckType::complete, now_ts(), w.seq, std::nullopt, std::nullopt});
}

// ---- kills ----------------------------------------------------------------------------------

bool MachineHub::Impl::send_kill(const TargetKey& key, const std::string& job_name) {
    PairPtr pair = find_pair(key);
    if (!pair || m_stopped) return false;
    pair->pending_kill = job_name;
    flush_kill(key, *pair);
    return true;
}

bool MachineHub::Impl::ready(const Socket& sock, const Pair& pair) const {
    if (!sock.open) return false;
    if (!sock.explicit_connect || sock.past_handshake) return true;
    // After connect the original wrapper takes the very next frame as the start ack.
    return sock.connect_answered && (sock.start_answered || pair.started);
}

void MachineHub::Impl::flush_kill(const TargetKey& key, Pair& pair) {
    if (!pair.pending_kill) return;
    auto sock = pair.newest.lock();
    if (!sock || !ready(*sock, pair)) return;
    proto::Kill kill{proto::Envelope{*pair.pending_kill, key.instance, key.machine, now_ts()}};
    pair.pending_kill.reset();
    send(sock, kill);
}

// ---- plumbing -------------------------------------------------------------------------------

void MachineHub::Impl::send(const SocketPtr& sock, const proto::ServerMessage& message) {
    if (!sock->open || !sock->con) return;
    const std::error_code ec = sock->con->send_text(proto::serialize(message));
    if (ec) {
        spdlog::debug("machine hub: send to {} failed: {}", sock->peer, ec.message());
        return;
    }
    // websocketpp keeps one write in flight and queues the rest without limit: bound it here.
    if (sock->con->buffered_amount() > m_options.max_send_queue_bytes) {
        warn_once(*sock, "stuck", "peer does not read (more than " + std::to_string(m_options.max_send_queue_bytes) +
                                      " bytes queued); socket closed");
        close_peer(sock, ws_close::k_try_again_later, "send queue full");
    }
}

void MachineHub::Impl::close_peer(const SocketPtr& sock, int code, const std::string& reason) {
    if (!sock->open) return;
    sock->open = false;
    ++m_stats.peers_closed;
    if (sock->con) sock->con->close(code, reason);
}

void MachineHub::Impl::warn_once(Socket& sock, const std::string& kind, const std::string& message) {
    if (!sock.logged.insert(kind).second) return;
    ++m_stats.warnings_logged;
    spdlog::warn("machine hub: {} (socket {}, {})", message, sock.id, sock.peer);
}

void MachineHub::Impl::reject(Socket& sock, const std::string& kind, const std::string& message) {
    ++m_stats.frames_rejected;
    warn_once(sock, kind, message);
}

MachineHub::Impl::SocketPtr MachineHub::Impl::find_socket(const WsConnection* con) const {
    auto it = m_sockets.find(con);
    return it == m_sockets.end() ? nullptr : it->second;
}

MachineHub::Impl::PairPtr MachineHub::Impl::find_pair(const TargetKey& key) const {
    auto it = m_pairs.find(key);
    return it == m_pairs.end() ? nullptr : it->second;
}

// ---- MachineHub -----------------------------------------------------------------------------

MachineHub::MachineHub(boost::asio::io_context& io, HubOptions options, HubListener& listener)
    : m_impl(std::make_shared<Impl>(io, std::move(options), listener)) {}

MachineHub::~MachineHub() {
    try {
        m_impl->stop();
    } catch (const std::exception& e) {
        spdlog::error("machine hub: stop failed: {}", e.what());
    }
}

Result<std::uint16_t> MachineHub::listen() { return m_impl->listen(); }
bool MachineHub::send_kill(const TargetKey& key, const std::string& job_name) { return m_impl->send_kill(key, job_name); }
void MachineHub::forget(const TargetKey& key) { m_impl->forget(key); }
void MachineHub::stop() { m_impl->stop(); }
HubStats MachineHub::stats() const { return m_impl->stats(); }

}  // namespace saltpeter
