#pragma once
// TestPeer: a scripted stand-in for spd's machines WebSocket, for the net tests.
// websocketpp server on 127.0.0.1, port 0, in its own thread; records every frame and stores
// output the way spd does (dedup, nack on gaps), or behaves like the original Python server.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace saltpeter::test {

struct PeerScript {
    bool proto2 = true;              ///< connect ack carries proto 2 + last_seq (our spd)
    bool ack_start = true;           ///< answer start
    bool ack_outputs = true;         ///< answer output frames
    int ack_delay_ms = 0;            ///< delay every output ack by this much
    bool ack_complete = true;        ///< answer complete
    bool job_not_found = false;      ///< answer complete with error JOB_NOT_FOUND and close
    std::vector<long> close_after_outputs;  ///< close the socket when the n-th output frame (total) arrives
    long nack_seq_once = -1;         ///< drop and nack the first output frame with this seq
};

/// Certificate and key (PEM files) to serve wss:// instead of ws://.
struct PeerTls {
    std::string cert_file;
    std::string key_file;
};

class TestPeer {
public:
    explicit TestPeer(PeerScript script = {}, PeerTls tls = {});
    ~TestPeer();
    TestPeer(const TestPeer&) = delete;
    TestPeer& operator=(const TestPeer&) = delete;

    int port() const;
    std::string url() const;  ///< ws://127.0.0.1:<port>, or wss://localhost:<port> with TLS
    /// Public for the server backends in test_peer.cpp.
    struct Impl;

    void set_script(const PeerScript& script);
    /// Rejects WebSocket handshakes (HTTP 403) for the given time from now.
    void refuse_for(std::chrono::milliseconds duration);
    /// Sends a kill frame on the newest connection.
    void send_kill();
    /// Closes every open connection.
    void close_all();

    std::vector<std::string> frames() const;     ///< every frame received, in order
    std::vector<std::string> frame_types() const;
    std::string output() const;                  ///< stored output (in order, once)
    std::optional<int> retcode() const;          ///< from the first complete frame
    long output_frames() const;
    long long output_bytes() const;              ///< data bytes of all output frames received
    int connections() const;                     ///< connections opened so far

    /// Waits until pred() holds (checked under the lock every 20 ms). False on timeout.
    bool wait_for(const std::function<bool()>& pred, std::chrono::milliseconds timeout) const;

private:
    std::unique_ptr<Impl> m_impl;
};

}  // namespace saltpeter::test
