#pragma once
// MachineHub: spd's WebSocket server for the wrappers (the "machines" port, PROTOCOL.md 1 and 5).
// It owns the sockets, the per-(instance, machine) sequence state across sockets, the token
// check, acks/nacks and kill delivery; it hands every accepted frame to a HubListener (the run
// tracker), which owns the runs. One io_context thread; no exception escapes a socket callback.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>

#include "core/protocol.hpp"
#include "core/token.hpp"
#include "saltpeter/result.hpp"
#include "saltpeter/runs.hpp"

namespace saltpeter {

/// The listener's answer when a frame arrives for a pair the hub has no state for yet.
struct Admission {
    enum class Verdict {
        accept,          ///< a running instance expects this machine
        unknown,         ///< no such running instance (complete -> JOB_NOT_FOUND)
        not_a_target,    ///< the instance runs, but not on this machine
    };
    Verdict verdict = Verdict::unknown;
    std::string job_name;       ///< for the token check and logs
    std::int64_t last_seq = -1; ///< last output seq already stored for this pair (restart recovery)
    bool completed = false;     ///< the result is already stored: ack repeats of complete at once
};

/// Implemented by the run tracker. Every call is on the io thread, in frame order per pair.
/// The `stored` callbacks must be called on the io thread too, at most once each, in the order
/// they were handed out; calling one after the hub (or the socket) is gone is harmless.
class HubListener {
public:
    virtual ~HubListener() = default;
    /// May frames for `key` be accepted? Asked once per pair (and again after forget()).
    virtual Admission admit(const TargetKey& key) = 0;
    /// Any accepted frame from `key` (a sign of life, also for heartbeats).
    virtual void on_activity(const TargetKey& key) = 0;
    virtual void on_start(const TargetKey& key, const protocol::Start& start) = 0;
    /// In-order, de-duplicated output. Call `stored` once it is committed; the hub acks then.
    virtual void on_output(const TargetKey& key, const protocol::Output& output, std::function<void()> stored) = 0;
    /// The wrapper's result. Call `stored` once the result is committed; the hub acks then.
    virtual void on_complete(const TargetKey& key, const protocol::Complete& complete, std::function<void()> stored) = 0;
    /// An `error` frame from the wrapper (recorded as 255 "Wrapper error: ...").
    virtual void on_wrapper_error(const TargetKey& key, const protocol::WrapperError& error) = 0;
};

struct HubOptions {
    std::string bind_address = "0.0.0.0";
    std::uint16_t port = 8889;            ///< 0 = an ephemeral port (tests)
    std::size_t max_frame_bytes = 16u * 1024 * 1024;     ///< a larger frame closes that socket (1009)
    std::size_t max_send_queue_bytes = 4u * 1024 * 1024; ///< a peer that lets more pile up is closed (1013)
    bool require_token = true;            ///< wrapper_auth: required (false = compatible)
    std::string secret;                   ///< HMAC-SHA256 key for per-target tokens
    std::string tls_cert;                 ///< PEM files (certificate chain, private key); both empty = plain ws://
    std::string tls_key;                  ///< both set = wss:// only; one alone is a listen() error
    /// A socket that completed the WebSocket handshake but has not sent one valid wrapper frame
    /// within this long is closed (1008, logged once). After a valid frame the run's heartbeat
    /// timeout governs it. 0 = no deadline.
    std::chrono::milliseconds idle_timeout{60000};
};

/// Counters for /metrics and tests.
struct HubStats {
    std::uint64_t connections_open = 0;
    std::uint64_t connections_total = 0;
    std::uint64_t frames_received = 0;
    std::uint64_t bytes_received = 0;
    std::uint64_t frames_rejected = 0;    ///< malformed, unauthorised, unknown instance
    std::uint64_t duplicates_acked = 0;
    std::uint64_t gaps_nacked = 0;
    std::uint64_t peers_closed = 0;       ///< sockets the hub closed: bad token, oversized frame, stuck peer
    std::uint64_t warnings_logged = 0;    ///< problem reports (each kind once per socket)
};

class MachineHub {
public:
    MachineHub(boost::asio::io_context& io, HubOptions options, HubListener& listener);
    ~MachineHub();
    MachineHub(const MachineHub&) = delete;
    MachineHub& operator=(const MachineHub&) = delete;

    /// Binds (SO_REUSEADDR) and starts accepting on the io_context. Returns the bound port (the
    /// ephemeral one for port 0). Errors name the address and reason, or the TLS file at fault
    /// (Error::field "tls_cert"/"tls_key"); listen() after stop() or a second time is an error.
    Result<std::uint16_t> listen();
    /// Sends `kill` to the newest socket of the pair once its handshake is answered (queued
    /// until then; one kill waits, a repeat replaces it). Returns false when the hub has no state
    /// for the pair (never heard from it, forget()-ed, or stopped).
    bool send_kill(const TargetKey& key, const std::string& job_name);
    /// Drops the sequence state of a pair whose run is over (its sockets stay open until closed).
    void forget(const TargetKey& key);
    /// Stops accepting and closes every socket (1001). Idempotent; also run by the destructor.
    /// `stored` callbacks called afterwards do nothing; the listener is never called again.
    void stop();
    HubStats stats() const;

private:
    class Impl;
    std::shared_ptr<Impl> m_impl;
};

}  // namespace saltpeter
