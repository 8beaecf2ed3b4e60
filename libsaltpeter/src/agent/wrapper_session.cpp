// The sp_wrapper session: runs the job, drains its output and streams it over the machines
// WebSocket with acknowledgements, reconnects, kill/timeout handling and completion retries.
//
//  Link state machine (one per socket; the job runs independently of it):
//
//            reconnect timer (2 s)                 ack/connect (proto 2: resend seq > last_seq;
//   +------+ ---------------------> +-----------+  no proto: renumber unacked from 0)
//   | down |                        | opening   | -----------------------------------+
//   +------+ <--------------------- +-----------+ open: send connect                 |
//      ^  ^   fail / close / 2 s handshake timeout          |                        v
//      |  |                                                 v              +------------------+
//      |  +-------------------------------------- +------------------+     | await_start_ack  |
//      |          fail / close / 2 s timeout      | await_connect_ack| --> | (start never     |
//      |                                          +------------------+     |  acked: send it) |
//      |                                                   | start acked   +------------------+
//      |  close / fail / sync -1 (original) / repeated nack v                        | ack/start
//      +------------------------------------------- +-----------+ <------------------+
//                                                   |   ready   |  output (<= 8 in flight),
//                                                   +-----------+  heartbeat, sync, complete
//                                                         | ack/complete or error JOB_NOT_FOUND
//                                                         v
//                                                       done  (or the completion deadline
//                                                              passes: result file)
//
//  Output path: pipe -> Utf8Decoder -> buffer (flushed at 64 KiB or every output interval)
//  -> memory queue (bounded) -> spill file (beyond the bound) -> unacked window -> socket.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <deque>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "saltpeter/exit_code_mapper.hpp"
#include "host/process_runner.hpp"
#include "core/protocol.hpp"
#include "core/utf8_decoder.hpp"
#include "saltpeter/version.hpp"
#include "saltpeter/wrapper_agent.hpp"
#include "net/ws_client.hpp"

namespace saltpeter {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::size_t k_chunk_size = 64 * 1024;  // flush threshold of the output buffer
// Queued chunks of one stream are merged into frames of up to this much data when the window
// opens: fewer, larger frames when the network lags. 160 KiB stays under 1 MiB of JSON even if
// every byte were a control character escaped as \u00XX (6 bytes).
constexpr std::size_t k_max_frame_data = 160 * 1024;
constexpr std::size_t k_window = 8;              // output frames in flight (PROTOCOL.md 5.4)
constexpr milliseconds k_handshake_timeout{2000};
constexpr milliseconds k_sync_after{1000};
constexpr milliseconds k_tick{250};
// After the shell exits, a background process may still hold the pipe; its output is read for
// this long and then the pipe is closed (the original wrapper blocked until EOF).
constexpr milliseconds k_linger{2000};

std::string utc_now_log() {
    const auto now = std::chrono::system_clock::now();
    const std::time_t t = std::chrono::system_clock::to_time_t(now);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

// <log_dir>/<job>.log, lines "YYYY-MM-DD HH:MM:SS [instance] message" in UTC.
class WrapperLog {
public:
    WrapperLog(const WrapperSettings& s) : m_instance(s.job_instance), m_level(s.log_level) {
        if (m_level == WrapperLogLevel::off) return;
        const std::string path = s.log_dir + "/" + s.job_name + ".log";
        m_fd = open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0640);
    }
    ~WrapperLog() {
        if (m_fd >= 0) close(m_fd);
    }
    WrapperLog(const WrapperLog&) = delete;
    WrapperLog& operator=(const WrapperLog&) = delete;
    void info(const std::string& message) { write(message); }
    void debug(const std::string& message) {
        if (m_level == WrapperLogLevel::debug) write(message);
    }
    bool debugging() const { return m_level == WrapperLogLevel::debug && m_fd >= 0; }

private:
    void write(const std::string& message) {
        if (m_fd < 0) return;
        const std::string line = utc_now_log() + " [" + m_instance + "] " + message + "\n";
        ssize_t ignored = ::write(m_fd, line.data(), line.size());
        (void)ignored;
    }
    std::string m_instance;
    WrapperLogLevel m_level;
    int m_fd = -1;
};

struct Chunk {
    std::int64_t seq = -1;  // logical seq, assigned when first sent
    bool is_stderr = false;
    std::string data;
};

// Chunks beyond the memory bound, in FIFO order: [u8 stream][u32 size][data] records.
class SpillFile {
public:
    ~SpillFile() { remove(); }
    bool empty() const { return m_read == m_write; }
    std::uint64_t size() const { return m_write - m_read; }
    const std::string& path() const { return m_path; }

    bool push(const std::string& dir, const std::string& base, const Chunk& c, std::string& error) {
        if (m_fd < 0 && !open_file(dir, base, error)) return false;
        char header[5];
        header[0] = c.is_stderr ? 1 : 0;
        const std::uint32_t n = static_cast<std::uint32_t>(c.data.size());
        std::memcpy(header + 1, &n, 4);
        if (!write_all(header, 5, m_write) || !write_all(c.data.data(), c.data.size(), m_write + 5)) {
            error = "cannot write spill file " + m_path + ": " + std::strerror(errno);
            return false;
        }
        m_write += 5 + c.data.size();
        return true;
    }
    std::optional<Chunk> pop() {
        if (empty()) return std::nullopt;
        char header[5];
        if (pread(m_fd, header, 5, static_cast<off_t>(m_read)) != 5) return std::nullopt;
        std::uint32_t n;
        std::memcpy(&n, header + 1, 4);
        Chunk c;
        c.is_stderr = header[0] == 1;
        c.data.resize(n);
        if (n && pread(m_fd, c.data.data(), n, static_cast<off_t>(m_read + 5)) != static_cast<ssize_t>(n))
            return std::nullopt;
        m_read += 5 + n;
        if (m_read == m_write) {
            // Drained: start over so the file does not grow for the rest of the run.
            m_read = m_write = 0;
            if (ftruncate(m_fd, 0) != 0) {}
        }
        return c;
    }
    void remove() {
        if (m_fd >= 0) {
            close(m_fd);
            unlink(m_path.c_str());
            m_fd = -1;
        }
    }

private:
    bool open_file(const std::string& dir, const std::string& base, std::string& error) {
        for (const std::string& d : {dir, std::string("/tmp")}) {
            m_path = d + "/" + base + "." + std::to_string(getpid()) + ".spill";
            m_fd = open(m_path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
            if (m_fd >= 0) return true;
        }
        error = "cannot create spill file " + m_path + ": " + std::strerror(errno);
        return false;
    }
    bool write_all(const char* p, std::size_t n, std::uint64_t offset) {
        while (n > 0) {
            const ssize_t w = pwrite(m_fd, p, n, static_cast<off_t>(offset));
            if (w < 0) {
                if (errno == EINTR) continue;
                return false;
            }
            p += w;
            n -= static_cast<std::size_t>(w);
            offset += static_cast<std::uint64_t>(w);
        }
        return true;
    }
    int m_fd = -1;
    std::string m_path;
    std::uint64_t m_read = 0, m_write = 0;
};

// What a session starts from: a job to run, a lock conflict to report, or a result to replay.
struct Replay {
    int retcode = 0;
    std::int64_t pid = 0;
    bool start_acked = false;
    std::int64_t next_seq = 0;
    std::deque<Chunk> outputs;
};

class Session {
public:
    Session(asio::io_context& io, WrapperSettings settings, WrapperLog& log)
        : m_io(io),
          m_s(std::move(settings)),
          m_log(log),
          m_ws(io, WsClient::Handlers{[this] { on_open(); }, [this](std::string t) { on_message(t); },
                                      [this](const std::string& r) { on_closed(r); }}),
          m_flush_timer(io),
          m_heartbeat_timer(io),
          m_reconnect_timer(io),
          m_handshake_timer(io),
          m_timeout_timer(io),
          m_grace_timer(io),
          m_linger_timer(io),
          m_tick_timer(io) {}

    // Runs the job (or reports `lock_error` as a 254 run) and the session. Returns the exit code.
    int run_job(const std::optional<std::string>& lock_error) {
        m_deadline = Clock::time_point::max();
        if (lock_error) {
            m_pid = getpid();
            push_chunk(Chunk{-1, false, *lock_error + "\n"});
            finish_with(ExitCodeMapper::code(Outcome::lock_held));
        } else {
            start_job();
        }
        return run();
    }

    int run_replay(Replay replay) {
        m_pid = replay.pid;
        m_start_acked = replay.start_acked;
        m_next_seq = replay.next_seq;
        m_unacked = std::move(replay.outputs);
        if (!m_unacked.empty()) m_last_acked = m_unacked.front().seq - 1;
        else m_last_acked = m_next_seq - 1;
        for (const auto& c : m_unacked) m_memory += c.data.size();
        m_replay = true;
        finish_with(replay.retcode);
        return run();
    }

    std::string result_path() const { return m_s.log_dir + "/" + m_s.job_name + "." + m_s.job_instance + ".result.json"; }

private:
    // ---- lifecycle ------------------------------------------------------------------------
    int run() {
        connect_now();
        arm_heartbeat();
        arm_tick();
        m_io.run();
        return m_exit_code;
    }

    void stop(int exit_code) {
        if (m_stopped) return;
        m_stopped = true;
        m_exit_code = exit_code;
        for (auto* t : {&m_flush_timer, &m_heartbeat_timer, &m_reconnect_timer, &m_handshake_timer, &m_timeout_timer,
                        &m_grace_timer, &m_linger_timer, &m_tick_timer})
            t->cancel();
        m_ws.close();
        if (m_runner) m_runner->close_output();
        m_spill.remove();
        m_io.stop();
    }

    // ---- the job --------------------------------------------------------------------------
    void start_job() {
        ProcessSpec spec;
        spec.argv = {"/bin/sh", "-c", m_s.command};
        spec.env = m_s.job_environment;
        spec.cwd = m_s.cwd;
        if (!m_s.user.empty()) {
            if (geteuid() == 0) {
                spec.user = m_s.user;
                if (auto extra = user_environment(m_s.user)) {
                    for (const auto& kv : *extra) {
                        const auto key = kv.substr(0, kv.find('=') + 1);
                        spec.env.erase(std::remove_if(spec.env.begin(), spec.env.end(),
                                                      [&](const std::string& e) { return e.rfind(key, 0) == 0; }),
                                       spec.env.end());
                        spec.env.push_back(kv);
                    }
                }
            } else {
                m_log.info("SP_USER=" + m_s.user + " ignored: the wrapper is not running as root");
            }
        }
        m_runner = make_process_runner(m_io);
        auto pid = m_runner->start(spec, ProcessCallbacks{[this](std::string_view b) { on_job_output(b); },
                                                          [this] { on_job_output_end(); },
                                                          [this](int status) { on_job_exit(status); }});
        if (!pid) {
            m_log.info("cannot start the job: " + pid.error().message);
            m_pid = getpid();
            push_chunk(Chunk{-1, true, "sp_wrapper: cannot start the job: " + pid.error().message + "\n"});
            finish_with(ExitCodeMapper::code(Outcome::unknown_error));
            return;
        }
        m_pid = *pid;
        m_job_running = true;
        m_log.info("Started job (pid " + std::to_string(m_pid) + "): " + m_s.command);
        if (m_s.timeout_seconds > 0) {
            m_timeout_timer.expires_after(std::chrono::seconds(m_s.timeout_seconds));
            m_timeout_timer.async_wait([this](const boost::system::error_code& ec) {
                if (!ec) terminate_job(Verdict::timed_out);
            });
        }
    }

    void on_job_output(std::string_view bytes) {
        m_decoder.decode(bytes, m_buffer);
        if (m_buffer.size() >= k_chunk_size) flush_buffer(false);
        if (!m_buffer.empty() && !m_flush_armed) {
            // Never cancelled: when it fires on an empty buffer it does nothing, which is simpler
            // than tracking cancellations against new output.
            m_flush_armed = true;
            m_flush_timer.expires_after(m_s.output_interval);
            m_flush_timer.async_wait([this](const boost::system::error_code& ec) {
                m_flush_armed = false;
                if (!ec) flush_buffer(true);
            });
        }
    }

    void on_job_output_end() {
        m_output_ended = true;
        maybe_job_done();
    }

    void on_job_exit(int status) {
        m_wait_status = status;
        m_exited = true;
        m_log.info("Job process exited (wait status " + std::to_string(status) + ")");
        if (!m_output_ended) {
            m_linger_timer.expires_after(k_linger);
            m_linger_timer.async_wait([this](const boost::system::error_code& ec) {
                if (ec || m_output_ended) return;
                m_log.info("A background process still holds the job's output; closing it");
                m_runner->close_output();
                m_output_ended = true;
                maybe_job_done();
            });
        }
        maybe_job_done();
    }

    void maybe_job_done() {
        if (!m_job_running || !m_exited || !m_output_ended) return;
        if (m_verdict != Verdict::none && m_runner->group_alive()) {
            // No process of a killed job may survive, even one that closed its output: the
            // grace timer SIGKILLs the group and comes back here.
            if (!m_grace_expired) return;
            m_runner->kill_group(SIGKILL);
        }
        m_job_running = false;
        m_grace_timer.cancel();
        m_timeout_timer.cancel();
        m_linger_timer.cancel();
        finish_with(ExitCodeMapper::from_wait_status(m_wait_status, m_verdict));
    }

    // SIGTERM to the group, SIGKILL after the grace; reported as 143 (kill) or 124 (timeout).
    void terminate_job(Verdict verdict) {
        if (!m_job_running || m_verdict != Verdict::none) return;
        m_verdict = verdict;
        const std::string notice = verdict == Verdict::killed
                                       ? "\n[Job terminated by user request]\n"
                                       : "\n[Job exceeded timeout of " + std::to_string(m_s.timeout_seconds) + " seconds]\n";
        m_log.info(verdict == Verdict::killed ? "Kill requested: SIGTERM to the job's process group"
                                              : "Timeout: SIGTERM to the job's process group");
        flush_buffer(true);
        push_chunk(Chunk{-1, true, notice});
        m_runner->kill_group(SIGTERM);
        m_grace_timer.expires_after(m_s.kill_grace);
        m_grace_timer.async_wait([this](const boost::system::error_code& ec) {
            if (ec || !m_job_running) return;
            m_grace_expired = true;
            if (m_runner->group_alive()) {
                m_log.info("Grace period over: SIGKILL to the job's process group");
                m_runner->kill_group(SIGKILL);
            }
            if (m_exited && !m_output_ended) {
                // Only processes outside the group (setsid) can still hold the pipe now.
                m_runner->close_output();
                m_output_ended = true;
            }
            maybe_job_done();
        });
        pump();
    }

    void finish_with(int retcode) {
        m_decoder.finish(m_buffer);
        flush_buffer(true);
        m_retcode = retcode;
        m_finished = true;
        m_deadline = Clock::now() + m_s.completion_retry;
        m_log.info("Job finished with exit code " + std::to_string(retcode));
        pump();
    }

    // ---- the output queue -----------------------------------------------------------------
    // Moves the buffer into the queue: always when `all`, else once it holds 64 KiB. A buffer of up
    // to one frame's worth moves as is (no copy: one read past 64 KiB stays below that); only a
    // larger one is cut at character boundaries.
    void flush_buffer(bool all) {
        if (m_buffer.empty() || (!all && m_buffer.size() < k_chunk_size)) return;
        if (m_buffer.size() <= k_max_frame_data) {
            push_chunk(Chunk{-1, false, std::move(m_buffer)});
            m_buffer.clear();
        } else {
            std::size_t pos = 0;
            while (pos < m_buffer.size()) {
                const std::size_t n = utf8_cut(std::string_view(m_buffer).substr(pos), k_chunk_size);
                push_chunk(Chunk{-1, false, m_buffer.substr(pos, n)});
                pos += n;
            }
            m_buffer.clear();
        }
        pump();
    }

    void push_chunk(Chunk c) {
        if (c.data.empty()) return;
        if (m_spill.empty() && m_memory + c.data.size() <= m_s.memory_limit) {
            m_memory += c.data.size();
            m_queue.push_back(std::move(c));
            return;
        }
        std::string error;
        if (m_spill.empty()) m_log.info("Output queue above " + std::to_string(m_s.memory_limit) + " bytes: spilling to disk");
        if (!m_spill.push(m_s.log_dir, m_s.job_name + "." + m_s.job_instance, c, error)) {
            // Nothing may be dropped: keep it in memory rather than lose it.
            m_log.info(error + "; keeping the output in memory");
            m_memory += c.data.size();
            m_queue.push_back(std::move(c));
        }
    }

    std::optional<Chunk> next_unsent() {
        if (!m_queue.empty()) {
            Chunk c = std::move(m_queue.front());
            m_queue.pop_front();
            m_memory -= c.data.size();
            return c;
        }
        return m_spill.pop();
    }

    bool all_output_sent() const {
        return m_queue.empty() && m_spill.empty() && m_buffer.empty() && m_sent_on_socket == m_unacked.size();
    }

    // ---- the connection -------------------------------------------------------------------
    void connect_now() {
        if (m_stopped || m_link != Link::down) return;
        m_link = Link::opening;
        std::string error;
        m_log.debug("Connecting to " + m_s.websocket_url);
        if (!m_ws.connect(m_s.websocket_url, error)) {
            m_log.info(error);
            m_link = Link::down;
            schedule_reconnect();
            return;
        }
        arm_handshake_timer();
    }

    void schedule_reconnect() {
        m_reconnect_timer.expires_after(m_s.reconnect_interval);
        m_reconnect_timer.async_wait([this](const boost::system::error_code& ec) {
            if (!ec) connect_now();
        });
    }

    void arm_handshake_timer() {
        m_handshake_timer.expires_after(k_handshake_timeout);
        m_handshake_timer.async_wait([this](const boost::system::error_code& ec) {
            if (ec || m_link == Link::ready || m_link == Link::down) return;
            drop_link("handshake not answered within 2 s");
        });
    }

    void drop_link(const std::string& why) {
        m_log.info("Connection dropped: " + why);
        m_ws.close();
        on_closed_internal();
    }

    void on_open() {
        m_link = Link::await_connect_ack;
        m_sent_on_socket = 0;
        m_complete_sent = false;
        m_nacks = 0;
        protocol::Connect c{envelope(), 2, m_next_seq, std::nullopt};
        if (!m_s.token.empty()) c.token = m_s.token;
        send(c);
        arm_handshake_timer();
    }

    void on_closed(const std::string& reason) {
        m_log.info("Connection to " + m_s.websocket_url + " lost or refused: " + reason);
        on_closed_internal();
    }

    void on_closed_internal() {
        m_link = Link::down;
        m_handshake_timer.cancel();
        m_sent_on_socket = 0;
        if (!m_stopped) schedule_reconnect();
    }

    void on_message(const std::string& text) {
        auto parsed = protocol::parse_server_frame(text);
        if (!parsed) {
            m_log.info("Ignoring a bad frame from the server: " + parsed.error().message);
            return;
        }
        if (m_log.debugging()) m_log.debug("recv " + text.substr(0, 300));
        std::visit([this](const auto& m) { handle(m); }, *parsed);
    }

    void handle(const protocol::Ack& ack) {
        switch (ack.ack_type) {
            case protocol::AckType::connect: {
                if (m_link != Link::await_connect_ack) return;
                m_proto2 = ack.proto && *ack.proto >= 2;
                if (m_proto2) {
                    m_base = 0;
                    if (ack.last_seq) acknowledge_up_to(*ack.last_seq);
                } else {
                    // The original server restarts its expectation at 0 on every connect.
                    m_base = m_unacked.empty() ? m_next_seq : m_unacked.front().seq;
                }
                m_log.debug(std::string("Connected (") + (m_proto2 ? "proto 2" : "original server") + ")");
                if (!m_start_acked) {
                    m_link = Link::await_start_ack;
                    send(protocol::Start{envelope(), m_pid, std::string(version())});
                } else {
                    become_ready();
                }
                return;
            }
            case protocol::AckType::start:
                m_start_acked = true;
                if (m_link == Link::await_start_ack) become_ready();
                return;
            case protocol::AckType::output:
                if (ack.seq && m_link == Link::ready) acknowledge_up_to(*ack.seq + m_base);
                pump();
                return;
            case protocol::AckType::complete:
                if (!m_finished || !m_complete_sent) return;
                m_log.info("Completion acknowledged by the server");
                stop(0);
                return;
        }
    }

    void handle(const protocol::Nack& nack) {
        if (m_link != Link::ready) return;
        m_log.info("Server reported out-of-order output (expected " + std::to_string(nack.expected_seq) + ", got " +
                   std::to_string(nack.received_seq) + ")");
        if (++m_nacks >= 3) {
            drop_link("repeated nacks without progress");
            return;
        }
        send_sync_request();
    }

    void handle(const protocol::SyncResponse& r) {
        if (m_link != Link::ready) return;
        if (r.last_seq < 0) {
            if (!m_proto2) {
                // The original server has no entry for this socket: it would store our resends
                // without ever acking them. A fresh connect gives it one (PROTOCOL.md 1.7).
                drop_link("original server lost our connection entry");
                return;
            }
            m_sent_on_socket = 0;  // spd stores nothing yet: resend everything unacked
            pump();
            return;
        }
        const std::int64_t logical = r.last_seq + m_base;
        if (logical < m_last_acked) {
            drop_link("server's last seq is behind what it acknowledged");
            return;
        }
        acknowledge_up_to(logical);
        m_sent_on_socket = 0;
        pump();
    }

    void handle(const protocol::Kill&) {
        if (m_replay) return;
        terminate_job(Verdict::killed);
    }

    void handle(const protocol::ServerError& e) {
        m_log.info("Server error " + e.code + ": " + e.message);
        // Only an answer to `complete` ends the session: while the job runs the wrapper keeps
        // draining it, and its `complete` will get the final word.
        if (e.code == "JOB_NOT_FOUND" && m_finished) {
            keep_result("the server no longer knows this job");
            stop(1);
        }
    }

    void become_ready() {
        m_link = Link::ready;
        m_handshake_timer.cancel();
        m_last_progress = Clock::now();
        pump();
    }

    void acknowledge_up_to(std::int64_t logical) {
        bool progress = false;
        while (!m_unacked.empty() && m_unacked.front().seq <= logical) {
            m_memory -= m_unacked.front().data.size();
            m_unacked.pop_front();
            if (m_sent_on_socket > 0) --m_sent_on_socket;
            progress = true;
        }
        if (logical > m_last_acked) {
            m_last_acked = std::min(logical, m_next_seq - 1);
            progress = true;
        }
        if (progress) {
            m_nacks = 0;
            m_last_progress = Clock::now();
            if (m_finished) m_deadline = std::max(m_deadline, Clock::now() + m_s.completion_retry);
        }
    }

    // Sends what the window allows, then `complete` once everything is out.
    void pump() {
        if (m_link != Link::ready || m_stopped) return;
        while (m_sent_on_socket < k_window) {
            if (m_sent_on_socket == m_unacked.size()) {
                auto next = next_unsent();
                if (!next) break;
                while (!m_queue.empty() && m_queue.front().is_stderr == next->is_stderr &&
                       next->data.size() + m_queue.front().data.size() <= k_max_frame_data) {
                    next->data += m_queue.front().data;
                    m_memory -= m_queue.front().data.size();
                    m_queue.pop_front();
                }
                next->seq = m_next_seq++;
                m_memory += next->data.size();
                m_unacked.push_back(std::move(*next));
            }
            const Chunk& c = m_unacked[m_sent_on_socket];
            protocol::Output o{envelope(), c.is_stderr ? "stderr" : "stdout", c.data, c.seq - m_base};
            if (!send(o)) return;
            if (m_sent_on_socket == 0) m_last_progress = Clock::now();
            ++m_sent_on_socket;
        }
        if (m_finished && !m_complete_sent && all_output_sent()) {
            m_complete_sent = send(protocol::Complete{envelope(), m_retcode, m_next_seq - m_base});
        }
    }

    void send_sync_request() {
        m_last_sync = Clock::now();
        send(protocol::SyncRequest{envelope(), m_last_acked < m_base ? -1 : m_last_acked - m_base, m_next_seq - m_base});
    }

    template <typename M>
    bool send(const M& message) {
        protocol::WrapperMessage m = message;
        std::string text = protocol::serialize(m);
        if (m_log.debugging())
            m_log.debug("send " + std::string(protocol::type_name(m)) + " (" + std::to_string(text.size()) + " bytes)");
        return m_ws.send(std::move(text));
    }

    protocol::Envelope envelope() const {
        return protocol::Envelope{m_s.job_name, m_s.job_instance, m_s.machine_id,
                                  protocol::format_timestamp(std::chrono::system_clock::now())};
    }

    // ---- timers ---------------------------------------------------------------------------
    void arm_heartbeat() {
        m_heartbeat_timer.expires_after(m_s.heartbeat_interval);
        m_heartbeat_timer.async_wait([this](const boost::system::error_code& ec) {
            if (ec) return;
            if (m_link == Link::ready) send(protocol::Heartbeat{envelope()});
            arm_heartbeat();
        });
    }

    void arm_tick() {
        m_tick_timer.expires_after(k_tick);
        m_tick_timer.async_wait([this](const boost::system::error_code& ec) {
            if (ec) return;
            const auto now = Clock::now();
            // An output ack more than 1 s late: ask where the server stands (PROTOCOL.md 1.5).
            if (m_link == Link::ready && m_sent_on_socket > 0 && now - m_last_progress >= k_sync_after &&
                now - m_last_sync >= k_sync_after)
                send_sync_request();
            if (m_finished && now >= m_deadline) {
                keep_result("completion could not be delivered within " +
                            std::to_string(m_s.completion_retry.count()) + " ms");
                stop(1);
                return;
            }
            arm_tick();
        });
    }

    // ---- the result file ------------------------------------------------------------------
    void keep_result(const std::string& why) {
        nlohmann::json outputs = nlohmann::json::array();
        std::string text;
        auto add = [&](const Chunk& c, std::int64_t seq) {
            outputs.push_back({{"seq", seq}, {"stream", c.is_stderr ? "stderr" : "stdout"}, {"data", c.data}});
            text += c.data;
        };
        std::int64_t seq = m_next_seq;
        for (const auto& c : m_unacked) add(c, c.seq);
        for (const auto& c : m_queue) add(c, seq++);
        while (auto c = m_spill.pop()) add(*c, seq++);
        if (!m_buffer.empty()) add(Chunk{-1, false, m_buffer}, seq++);
        nlohmann::json j = {{"job_name", m_s.job_name},
                            {"job_instance", m_s.job_instance},
                            {"machine", m_s.machine_id},
                            {"websocket_url", m_s.websocket_url},
                            {"token", m_s.token},
                            {"pid", m_pid},
                            {"start_acked", m_start_acked},
                            {"retcode", m_retcode},
                            {"next_seq", seq},
                            {"reason", why},
                            {"output", text},
                            {"outputs", outputs}};
        if (m_replay) {
            m_log.info("Replay failed (" + why + "); result file kept");
            return;
        }
        std::string path = result_path();
        const std::string body = j.dump(1, ' ', false, nlohmann::json::error_handler_t::replace);
        // The log directory may be missing when logging is off; /tmp is the fallback.
        if (access(m_s.log_dir.c_str(), W_OK | X_OK) != 0)
            path = "/tmp/" + m_s.job_name + "." + m_s.job_instance + ".result.json";
        const std::string tmp = path + ".tmp";
        unlink(tmp.c_str());
        const int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        bool ok = fd >= 0;
        if (ok) {
            std::size_t off = 0;
            while (ok && off < body.size()) {
                const ssize_t w = write(fd, body.data() + off, body.size() - off);
                if (w < 0 && errno == EINTR) continue;
                ok = w > 0;
                if (ok) off += static_cast<std::size_t>(w);
            }
            ok = ok && fsync(fd) == 0;
            close(fd);
            ok = ok && rename(tmp.c_str(), path.c_str()) == 0;
        }
        if (ok) {
            m_log.info("CRITICAL: " + why + "; result (exit code " + std::to_string(m_retcode) + ") kept in " + path +
                       " for sp_wrapper --replay");
        } else {
            m_log.info("CRITICAL: " + why + "; cannot write " + path + ": " + std::strerror(errno) +
                       "; exit code " + std::to_string(m_retcode) + ", output follows:\n" + text);
        }
    }

    enum class Link { down, opening, await_connect_ack, await_start_ack, ready };

    asio::io_context& m_io;
    WrapperSettings m_s;
    WrapperLog& m_log;
    WsClient m_ws;
    asio::steady_timer m_flush_timer, m_heartbeat_timer, m_reconnect_timer, m_handshake_timer, m_timeout_timer,
        m_grace_timer, m_linger_timer, m_tick_timer;

    // job
    std::unique_ptr<ProcessRunner> m_runner;
    Utf8Decoder m_decoder;
    std::string m_buffer;
    std::int64_t m_pid = 0;
    bool m_job_running = false, m_exited = false, m_output_ended = false, m_grace_expired = false;
    bool m_flush_armed = false;
    int m_wait_status = 0;
    Verdict m_verdict = Verdict::none;
    bool m_finished = false, m_replay = false;
    int m_retcode = 0;
    Clock::time_point m_deadline = Clock::time_point::max();

    // output
    std::deque<Chunk> m_unacked;  // seq assigned; the first m_sent_on_socket went out on this socket
    std::size_t m_sent_on_socket = 0;
    std::deque<Chunk> m_queue;
    std::size_t m_memory = 0;
    SpillFile m_spill;
    std::int64_t m_next_seq = 0, m_last_acked = -1;

    // link
    Link m_link = Link::down;
    bool m_proto2 = false, m_start_acked = false, m_complete_sent = false;
    std::int64_t m_base = 0;  // wire seq = logical seq - m_base (original server: per socket)
    int m_nacks = 0;
    Clock::time_point m_last_progress{}, m_last_sync{};

    bool m_stopped = false;
    int m_exit_code = 1;
};

// flock() on SP_LOCKFILE opened with O_NOFOLLOW (PROTOCOL.md 5.5). Returns the fd (kept open for
// the run) or the conflict text that becomes the job's output.
int take_lock(const WrapperSettings& s, std::optional<std::string>& conflict) {
    const int fd = open(s.lockfile.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        conflict = "LOCKFILE ERROR: Failed to write lockfile " + s.lockfile + ": " + std::strerror(errno);
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char buf[32] = {};
        const ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
        std::string pid = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "unknown";
        while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
        conflict = "LOCKFILE ERROR: Job " + s.job_name + " already running (PID " + pid + "), overlap not allowed";
        close(fd);
        return -1;
    }
    const std::string mine = std::to_string(getpid()) + "\n";
    if (ftruncate(fd, 0) != 0 || pwrite(fd, mine.data(), mine.size(), 0) != static_cast<ssize_t>(mine.size())) {
        conflict = "LOCKFILE ERROR: Failed to write lockfile " + s.lockfile + ": " + std::strerror(errno);
        close(fd);
        return -1;
    }
    return fd;
}

}  // namespace

int run_wrapper(const WrapperSettings& settings) {
    std::signal(SIGPIPE, SIG_IGN);
    WrapperLog log(settings);
    log.info("Saltpeter Wrapper version " + std::string(version()) + " starting job " + settings.job_name +
             " on " + settings.machine_id);
    std::optional<std::string> conflict;
    int lock_fd = -1;
    if (!settings.allow_overlap) {
        lock_fd = take_lock(settings, conflict);
        if (conflict) log.info(*conflict);
    }
    int code = 1;
    {
        asio::io_context io;
        Session session(io, settings, log);
        code = session.run_job(conflict);
    }
    // The lock file stays: unlinking a flock()ed file lets a concurrent run lock a new inode.
    if (lock_fd >= 0) close(lock_fd);
    log.info(code == 0 ? "Wrapper finished" : "Wrapper finished without delivering the result");
    return code;
}

int replay_result(const std::string& path, const WrapperSettings& overrides) {
    std::ifstream in(path);
    if (!in) {
        std::cerr << "Error: cannot read " << path << "\n";
        return 1;
    }
    nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        std::cerr << "Error: " << path << " is not a result file\n";
        return 1;
    }
    WrapperSettings s = overrides;
    Replay r;
    try {
        s.job_name = j.at("job_name").get<std::string>();
        s.job_instance = j.at("job_instance").get<std::string>();
        s.machine_id = j.at("machine").get<std::string>();
        if (s.websocket_url.empty()) s.websocket_url = j.at("websocket_url").get<std::string>();
        if (s.token.empty()) s.token = j.value("token", std::string());
        r.retcode = j.at("retcode").get<int>();
        r.pid = j.value("pid", std::int64_t{0});
        r.start_acked = j.value("start_acked", false);
        r.next_seq = j.at("next_seq").get<std::int64_t>();
        for (const auto& o : j.at("outputs"))
            r.outputs.push_back(Chunk{o.at("seq").get<std::int64_t>(), o.at("stream").get<std::string>() == "stderr",
                                      o.at("data").get<std::string>()});
    } catch (const nlohmann::json::exception& e) {
        std::cerr << "Error: " << path << " is not a result file: " << e.what() << "\n";
        return 1;
    }
    std::signal(SIGPIPE, SIG_IGN);
    WrapperLog log(s);
    log.info("Replaying " + path);
    asio::io_context io;
    Session session(io, s, log);
    const int code = session.run_replay(std::move(r));
    if (code == 0) {
        std::remove(path.c_str());
        std::cout << "Delivered " << path << "\n";
    } else {
        std::cerr << "Error: could not deliver " << path << " (kept)\n";
    }
    return code;
}

}  // namespace saltpeter
