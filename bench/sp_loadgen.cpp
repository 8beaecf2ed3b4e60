// sp_loadgen: N simulated wrappers against one spd over real WebSockets (bench/hub, bench/fanout).
//
// Design: the process forks. The child is "spd": a saltpeter::Daemon on its own io_context whose
// SaltTransport (DaemonOptions::transport_factory) answers test.ping for N minions and, on
// run_all, does not start N programs but writes the launch (instance, minions, per-target tokens)
// to a pipe. The parent is the load generator: it reads the launch and opens N WebSocket
// connections to the child's machines port, each speaking PROTOCOL.md section 1 with proto 2
// (connect with token, start, one output line per interval with seq, a heartbeat every 5 s,
// complete). So spd's CPU and memory are those of a process of their own (/proc/<child>), and the
// RunTracker really owns N targets. When every target completed, the child checks what it stored
// (lines per target, consecutive, no duplicates; 253 verdicts) and reports back.
//
// Usage: sp_loadgen [--wrappers N] [--seconds T] [--interval-ms 1000] [--heartbeat-ms 5000]
//                   [--connect-parallel 256] [--keep]
// Prints one "key: value" line per figure. Exit 0 when the run completed (figures may still show
// losses: the caller judges them), 1 on a setup failure.

#include <fcntl.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>

#include "saltpeter/daemon.hpp"
#include "core/protocol.hpp"
#include "saltpeter/salt_transport.hpp"
#include "net/ws_client.hpp"

namespace {

namespace proto = saltpeter::protocol;
using Clock = std::chrono::steady_clock;

std::int64_t mono_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

struct Options {
    int wrappers = 1000;
    int seconds = 60;
    int interval_ms = 1000;
    int heartbeat_ms = 5000;
    int connect_parallel = 256;
    bool keep = false;
};

void write_all(int fd, const std::string& text) {
    std::size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        done += static_cast<std::size_t>(n);
    }
}

// Lines from the spd side's pipe, read in large chunks without blocking (the launch line of 10,000
// targets is ~750 KB; the writer blocks until it is drained).
class LineReader {
public:
    explicit LineReader(int fd) : m_fd(fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }
    /// A complete line if one is available now (reads what the pipe holds first).
    bool poll_line(std::string& line) {
        char chunk[65536];
        while (true) {
            const ssize_t n = ::read(m_fd, chunk, sizeof chunk);
            if (n > 0) {
                m_buffer.append(chunk, static_cast<std::size_t>(n));
                continue;
            }
            if (n == 0) m_eof = true;
            break;
        }
        const std::size_t nl = m_buffer.find('\n');
        if (nl == std::string::npos) return false;
        line = m_buffer.substr(0, nl);
        m_buffer.erase(0, nl + 1);
        return true;
    }
    /// Waits up to `timeout_ms` for a line; empty on timeout or end of file.
    std::string wait_line(int timeout_ms) {
        const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
        std::string line;
        while (Clock::now() < deadline) {
            if (poll_line(line)) return line;
            if (m_eof) return {};
            pollfd p{m_fd, POLLIN, 0};
            ::poll(&p, 1, 20);
        }
        return {};
    }

private:
    int m_fd;
    std::string m_buffer;
    bool m_eof = false;
};

// ---- the spd side ----------------------------------------------------------------------------

std::atomic<std::int64_t> g_fire_ns{0};

// A transport for N simulated minions: ping says all respond; run_all hands the launch to the load
// generator through `launch_fd` and reports every launch as successful (as Salt does once the real
// wrapper has daemonized).
class SimTransport final : public saltpeter::SaltTransport {
public:
    SimTransport(boost::asio::io_context& io, std::vector<std::string> minions, int launch_fd)
        : m_io(io), m_minions(std::move(minions)), m_launch_fd(launch_fd) {}
    std::string name() const override { return "loadgen"; }
    void ping(const saltpeter::SaltTarget&, std::chrono::seconds,
              std::function<void(saltpeter::Result<saltpeter::PingReply>)> done) override {
        saltpeter::PingReply reply;
        reply.responding = m_minions;
        m_io.post([done = std::move(done), reply = std::move(reply)]() mutable { done(std::move(reply)); });
    }
    saltpeter::TransportJob run_all(const saltpeter::RunAllRequest& request,
                                    std::function<void(saltpeter::MinionReturn)> on_return,
                                    std::function<void()> done) override {
        std::string instance, job;
        for (const auto& [k, v] : request.env) {
            if (k == "SP_JOB_INSTANCE") instance = v;
            if (k == "SP_JOB_NAME") job = v;
        }
        std::string line = "launch " + std::to_string(g_fire_ns.load()) + " " + job + " " + instance;
        for (const auto& minion : request.minions) {
            std::string token = "-";
            auto it = request.minion_env.find(minion);
            if (it != request.minion_env.end()) {
                for (const auto& [k, v] : it->second) {
                    if (k == "SP_TOKEN") token = v;
                }
            }
            line += " " + minion + " " + token;
        }
        write_all(m_launch_fd, line + "\n");
        std::vector<std::string> minions = request.minions;
        m_io.post([minions = std::move(minions), on_return = std::move(on_return), done = std::move(done)] {
            for (const auto& m : minions) {
                saltpeter::MinionReturn ret;
                ret.minion = m;
                on_return(ret);
            }
            done();
        });
        return ++m_next;
    }
    void terminate(saltpeter::TransportJob, const std::vector<std::string>&, std::chrono::seconds) override {}
    void stop() override {}

private:
    boost::asio::io_context& m_io;
    std::vector<std::string> m_minions;
    int m_launch_fd;
    saltpeter::TransportJob m_next = 0;
};

// Checks one target's stored output: lines "<machine> line <k>\n" for k = 0, 1, ... in order.
// Returns the number of lines; `bad` is set on a gap, a duplicate or foreign text.
std::uint64_t check_output(const std::string& machine, const std::string& output, bool& bad) {
    std::uint64_t k = 0;
    std::size_t pos = 0;
    while (pos < output.size()) {
        const std::size_t nl = output.find('\n', pos);
        if (nl == std::string::npos) {
            bad = true;
            break;
        }
        if (output.compare(pos, nl - pos, machine + " line " + std::to_string(k)) != 0) bad = true;
        ++k;
        pos = nl + 1;
    }
    return k;
}

[[noreturn]] void run_spd_side(const std::string& dir, int wrappers, int launch_fd, int control_fd) {
    // spd's log goes to a file, as a daemon's would; its cost stays in the figures.
    const std::string log = dir + "/spd.log";
    const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (log_fd >= 0) {
        ::dup2(log_fd, 1);  // spdlog's default logger writes to stdout
        ::dup2(log_fd, 2);
    }
    std::vector<std::string> minions;
    minions.reserve(static_cast<std::size_t>(wrappers));
    char name[32];
    for (int i = 0; i < wrappers; ++i) {
        std::snprintf(name, sizeof name, "sim%05d", i);
        minions.emplace_back(name);
    }
    boost::asio::io_context io;
    saltpeter::DaemonOptions options;
    options.config_dir = dir + "/config";
    options.schedule = false;
    options.transport_factory = [&](boost::asio::io_context& ctx, const saltpeter::Settings&) {
        return std::make_unique<SimTransport>(ctx, minions, launch_fd);
    };
    saltpeter::Daemon daemon(io, options);
    daemon.set_on_run_finished([&](const saltpeter::RunRecord& run) {
        std::uint64_t lines = 0, bad = 0, verdict253 = 0, nonzero = 0;
        for (const auto& [machine, t] : run.targets) {
            bool broken = false;
            lines += check_output(machine, t.output, broken);
            if (broken) ++bad;
            if (t.retcode.value_or(-1) != 0) ++nonzero;
            bool had253 = t.retcode.value_or(0) == 253;
            for (const auto& note : t.notes) had253 = had253 || note.find("verdict 253") != std::string::npos;
            if (had253) ++verdict253;
        }
        write_all(launch_fd, "finished " + std::to_string(run.targets.size()) + " " + std::to_string(lines) + " " +
                                 std::to_string(bad) + " " + std::to_string(verdict253) + " " +
                                 std::to_string(nonzero) + "\n");
    });
    auto started = daemon.start();
    if (!started) {
        write_all(launch_fd, "error " + started.error().message + "\n");
        ::_exit(1);
    }
    write_all(launch_fd, "port " + std::to_string(daemon.machines_port()) + "\n");
    boost::asio::posix::stream_descriptor control(io, control_fd);
    boost::asio::streambuf buffer;
    std::function<void()> read_command = [&] {
        boost::asio::async_read_until(control, buffer, '\n', [&](boost::system::error_code ec, std::size_t) {
            if (ec) {
                daemon.stop();
                io.stop();
                return;
            }
            std::istream in(&buffer);
            std::string command;
            std::getline(in, command);
            if (command == "fire") {
                g_fire_ns = mono_ns();
                auto id = daemon.run_now("hub");
                if (!id) write_all(launch_fd, "error run_now: " + id.error().message + "\n");
            } else if (command == "quit") {
                daemon.stop();
                io.stop();
                return;
            }
            read_command();
        });
    };
    read_command();
    io.run();
    ::_exit(0);
}

// ---- the load generator side -----------------------------------------------------------------

struct Sim;

struct LoadGen {
    boost::asio::io_context io;
    Options opt;
    std::string url;
    std::string job, instance;
    std::vector<std::unique_ptr<Sim>> sims;
    std::deque<Sim*> to_connect;
    int connecting = 0;
    std::int64_t fire_ns = 0;
    std::int64_t last_start_ack_ns = 0;
    int started = 0, completed = 0;
    std::uint64_t frames_sent = 0, output_frames = 0, heartbeats = 0, acks = 0, nacks = 0, reconnects = 0;
    std::uint64_t lines_sent = 0;
    std::vector<float> ack_latency_ms;
    bool steady = false;  // collecting latencies/frames of the steady phase
    Clock::time_point stream_start;
    int ticks_total = 0;  // lines each sim prints
    void connect_more();
};

struct Sim {
    LoadGen& g;
    std::string machine, token;
    std::unique_ptr<saltpeter::WsClient> ws;
    std::int64_t next_seq = 0;
    std::map<std::int64_t, std::pair<std::int64_t, std::string>> inflight;  // seq -> (sent ns, frame)
    bool connect_acked_once = false, start_acked = false, complete_sent = false, done = false;
    int lines = 0;
    int ticks = 0;
    bool counted_connect = false;

    Sim(LoadGen& gen, std::string m, std::string t) : g(gen), machine(std::move(m)), token(std::move(t)) {}

    proto::Envelope env() const {
        return proto::Envelope{g.job, g.instance, machine, proto::format_timestamp(std::chrono::system_clock::now())};
    }
    void send(const std::string& text) {
        if (ws && ws->send(text)) ++g.frames_sent;
    }
    void open() {
        ws = std::make_unique<saltpeter::WsClient>(
            g.io, saltpeter::WsClient::Handlers{[this] { on_open(); }, [this](std::string t) { on_message(t); },
                                                [this](const std::string&) { on_closed(); }});
        std::string error;
        if (!ws->connect(g.url, error)) {
            std::fprintf(stderr, "sp_loadgen: %s\n", error.c_str());
            std::exit(1);
        }
    }
    void handshake_over() {
        if (counted_connect) return;
        counted_connect = true;
        --g.connecting;
        g.connect_more();
    }
    void on_open() {
        proto::Connect c{env(), 2, next_seq, token == "-" ? std::nullopt : std::optional<std::string>(token)};
        send(proto::serialize(proto::WrapperMessage{c}));
    }
    void on_closed() {
        handshake_over();
        if (done) return;
        ++g.reconnects;
        auto timer = std::make_shared<boost::asio::steady_timer>(g.io, std::chrono::seconds(1));
        timer->async_wait([this, timer](boost::system::error_code) { open(); });
    }
    void on_message(const std::string& text) {
        auto parsed = proto::parse_server_frame(text);
        if (!parsed) return;
        if (auto* nack = std::get_if<proto::Nack>(&*parsed)) {
            ++g.nacks;
            (void)nack;
            return;
        }
        auto* ack = std::get_if<proto::Ack>(&*parsed);
        if (!ack) return;
        ++g.acks;
        const std::int64_t now = mono_ns();
        switch (ack->ack_type) {
            case proto::AckType::connect: {
                handshake_over();
                const std::int64_t last = ack->last_seq.value_or(-1);
                for (auto it = inflight.begin(); it != inflight.end();) {
                    if (it->first <= last) {
                        it = inflight.erase(it);
                    } else {
                        send(it->second.second);
                        ++it;
                    }
                }
                if (!start_acked) {
                    proto::Start s{env(), 100000, "loadgen"};
                    send(proto::serialize(proto::WrapperMessage{s}));
                }
                if (complete_sent) send_complete();
                connect_acked_once = true;
                break;
            }
            case proto::AckType::start:
                if (!start_acked) {
                    start_acked = true;
                    ++g.started;
                    g.last_start_ack_ns = std::max(g.last_start_ack_ns, now);
                }
                break;
            case proto::AckType::output: {
                if (!ack->seq) break;
                auto it = inflight.find(*ack->seq);
                if (it != inflight.end()) {
                    if (g.steady) g.ack_latency_ms.push_back(static_cast<float>((now - it->second.first) / 1e6));
                    inflight.erase(it);
                }
                break;
            }
            case proto::AckType::complete:
                if (!done) {
                    done = true;
                    ++g.completed;
                    ws->close();
                }
                break;
        }
    }
    // One tick of this sim's clock (every interval_ms, at its own phase): a heartbeat every
    // heartbeat_ms from the start; in the steady phase also one output line, then `complete`.
    void tick() {
        ++ticks;
        const int per_heartbeat = std::max(1, g.opt.heartbeat_ms / g.opt.interval_ms);
        if (ticks % per_heartbeat == 0 && start_acked && !done && ws && ws->is_open()) {
            send(proto::serialize(proto::WrapperMessage{proto::Heartbeat{env()}}));
            ++g.heartbeats;
        }
        if (!g.steady || complete_sent) return;
        if (lines < g.ticks_total) {
            proto::Output o{env(), "stdout", machine + " line " + std::to_string(lines) + "\n", next_seq};
            std::string frame = proto::serialize(proto::WrapperMessage{o});
            inflight[next_seq] = {mono_ns(), frame};
            ++next_seq;
            ++lines;
            ++g.lines_sent;
            ++g.output_frames;
            if (ws && ws->is_open()) send(frame);
            return;
        }
        complete_sent = true;
        send_complete();
    }
    void send_complete() {
        proto::Complete c{env(), 0, next_seq};
        if (ws && ws->is_open()) send(proto::serialize(proto::WrapperMessage{c}));
    }
};

void LoadGen::connect_more() {
    while (connecting < opt.connect_parallel && !to_connect.empty()) {
        Sim* s = to_connect.front();
        to_connect.pop_front();
        ++connecting;
        s->open();
    }
}

double percentile(std::vector<float> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const std::size_t i = std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5));
    return v[i];
}

struct ProcStat {
    double cpu_s = 0;
    long rss_kib = 0, hwm_kib = 0;
};
ProcStat proc_stat(pid_t pid) {
    ProcStat s;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const auto close = text.rfind(')');
    if (close != std::string::npos) {
        std::istringstream in(text.substr(close + 2));
        std::string field;
        unsigned long long utime = 0, stime = 0;
        for (int i = 3; i <= 15 && in >> field; ++i) {
            if (i == 14) utime = std::stoull(field);
            if (i == 15) stime = std::stoull(field);
        }
        s.cpu_s = static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
    }
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("VmRSS:", 0) == 0) s.rss_kib = std::atol(line.c_str() + 6);
        if (line.rfind("VmHWM:", 0) == 0) s.hwm_kib = std::atol(line.c_str() + 6);
    }
    return s;
}

double self_cpu_s() {
    timespec ts{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

int usage() {
    std::fprintf(stderr,
                 "usage: sp_loadgen [--wrappers N] [--seconds T] [--interval-ms MS] [--heartbeat-ms MS]\n"
                 "                  [--connect-parallel K] [--keep]\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    Options opt;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> int { return i + 1 < argc ? std::atoi(argv[++i]) : -1; };
        if (a == "--wrappers") opt.wrappers = next();
        else if (a == "--seconds") opt.seconds = next();
        else if (a == "--interval-ms") opt.interval_ms = next();
        else if (a == "--heartbeat-ms") opt.heartbeat_ms = next();
        else if (a == "--connect-parallel") opt.connect_parallel = next();
        else if (a == "--keep") opt.keep = true;
        else return usage();
    }
    if (opt.wrappers <= 0 || opt.seconds <= 0 || opt.interval_ms <= 0 || opt.connect_parallel <= 0) return usage();

    // Two sockets per wrapper on this host (ours and spd's, in two processes) plus spares.
    rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    const rlim_t want = static_cast<rlim_t>(opt.wrappers) + 1024;
    if (lim.rlim_cur < want) {
        lim.rlim_cur = std::min(want, lim.rlim_max);
        ::setrlimit(RLIMIT_NOFILE, &lim);
        ::getrlimit(RLIMIT_NOFILE, &lim);
    }
    if (lim.rlim_cur < want) {
        std::fprintf(stderr, "sp_loadgen: RLIMIT_NOFILE is %llu, %d wrappers need %llu (raise the hard limit)\n",
                     static_cast<unsigned long long>(lim.rlim_cur), opt.wrappers,
                     static_cast<unsigned long long>(want));
        return 1;
    }

    char tmpl[] = "/tmp/sp_loadgen.XXXXXX";
    if (!::mkdtemp(tmpl)) {
        std::perror("sp_loadgen: mkdtemp");
        return 1;
    }
    const std::string dir = tmpl;
    std::filesystem::create_directories(dir + "/config");
    std::filesystem::create_directories(dir + "/log");
    {
        std::ofstream cfg(dir + "/config/hub.yaml");
        cfg << "saltpeter_config:\n"
            << "  logdir: " << dir << "/log\n"
            << "  machines_ws_bind_addr: 127.0.0.1\n"
            << "  machines_ws_port: 0\n"
            << "  heartbeat_timeout: 15\n"
            << "  startup_timeout: 600\n"
            << "  wrapper_secret_file: " << dir << "/secret\n"
            << "  default_wrapper_logdir: " << dir << "/log\n"
            << "hub:\n"
            << "  command: simulated\n"
            << "  targets: '*'\n"
            << "  schedule: '@yearly'\n"
            << "  timeout: 0\n";
    }

    int launch_pipe[2], control_pipe[2];
    if (::pipe2(launch_pipe, O_CLOEXEC) != 0 || ::pipe2(control_pipe, O_CLOEXEC) != 0) {
        std::perror("sp_loadgen: pipe");
        return 1;
    }
    const pid_t child = ::fork();
    if (child < 0) {
        std::perror("sp_loadgen: fork");
        return 1;
    }
    if (child == 0) {
        ::close(launch_pipe[0]);
        ::close(control_pipe[1]);
        run_spd_side(dir, opt.wrappers, launch_pipe[1], control_pipe[0]);
    }
    ::close(launch_pipe[1]);
    ::close(control_pipe[0]);
    const int to_spd = control_pipe[1];
    LineReader from_spd(launch_pipe[0]);
    auto fail = [&](const std::string& why) {
        std::fprintf(stderr, "sp_loadgen: %s (spd log: %s/spd.log)\n", why.c_str(), dir.c_str());
        ::kill(child, SIGKILL);
        ::waitpid(child, nullptr, 0);
        return 1;
    };

    std::string line = from_spd.wait_line(60000);
    if (line.rfind("port ", 0) != 0) return fail("spd side did not start: " + line);
    LoadGen g;
    g.opt = opt;
    g.url = "ws://127.0.0.1:" + line.substr(5) + "/";
    g.ticks_total = std::max(1, opt.seconds * 1000 / opt.interval_ms);
    const ProcStat idle0 = proc_stat(child);

    write_all(to_spd, "fire\n");
    line = from_spd.wait_line(120000);
    if (line.rfind("launch ", 0) != 0) return fail("no launch from spd: " + line);
    {
        std::istringstream in(line.substr(7));
        in >> g.fire_ns >> g.job >> g.instance;
        std::string machine, token;
        while (in >> machine >> token) g.sims.push_back(std::make_unique<Sim>(g, machine, token));
    }
    if (static_cast<int>(g.sims.size()) != opt.wrappers) return fail("launch lists " + std::to_string(g.sims.size()) + " targets");
    for (auto& s : g.sims) g.to_connect.push_back(s.get());
    g.connect_more();

    // One 10 ms tick wheel drives every sim at its own phase of the interval. Phase 1: all connect
    // and start (heartbeats already flow); phase 2, the steady stream, begins once all started.
    const int slots = std::max(1, opt.interval_ms / 10);
    std::vector<std::vector<Sim*>> wheel(static_cast<std::size_t>(slots));
    for (std::size_t i = 0; i < g.sims.size(); ++i) wheel[i % wheel.size()].push_back(g.sims[i].get());
    std::int64_t slot_index = 0;
    const auto tick = std::chrono::milliseconds(10);
    const auto begin = Clock::now();
    auto next_tick = begin;
    ProcStat s0;
    double self0 = 0;
    std::uint64_t frames0 = 0;
    double fanout_s = 0;
    std::string finished;
    while (g.completed < opt.wrappers) {
        for (std::string l; from_spd.poll_line(l);) {
            if (l.rfind("finished ", 0) == 0) finished = l;
            if (l.rfind("error ", 0) == 0) return fail(l);
        }
        for (Sim* s : wheel[static_cast<std::size_t>(slot_index % slots)]) s->tick();
        ++slot_index;
        next_tick += tick;
        g.io.poll();  // a tick that ran late still reads what arrived (run_until of a past time runs nothing)
        g.io.run_until(next_tick);
        if (!g.steady && g.started == opt.wrappers) {
            fanout_s = static_cast<double>(g.last_start_ack_ns - g.fire_ns) / 1e9;
            s0 = proc_stat(child);
            self0 = self_cpu_s();
            frames0 = g.frames_sent;
            g.stream_start = Clock::now();
            g.steady = true;
        }
        if (!g.steady && Clock::now() - begin > std::chrono::seconds(300)) {
            return fail("only " + std::to_string(g.started) + " wrappers started within 300 s");
        }
        if (g.steady && Clock::now() - g.stream_start > std::chrono::seconds(opt.seconds + 120)) break;
    }
    const double stream_s = std::chrono::duration<double>(Clock::now() - g.stream_start).count();
    const ProcStat s1 = proc_stat(child);
    const double self1 = self_cpu_s();
    const std::uint64_t frames = g.frames_sent - frames0;

    // Phase 3: spd's own account of what it stored.
    const auto report_deadline = Clock::now() + std::chrono::seconds(60);
    while (finished.empty() && Clock::now() < report_deadline) {
        const std::string l = from_spd.wait_line(1000);
        if (l.rfind("finished ", 0) == 0) finished = l;
    }
    std::uint64_t targets = 0, stored = 0, bad = 0, v253 = 0, nonzero = 0;
    if (!finished.empty()) {
        std::istringstream in(finished.substr(9));
        in >> targets >> stored >> bad >> v253 >> nonzero;
    }
    write_all(to_spd, "quit\n");
    int status = 0;
    ::waitpid(child, &status, 0);

    const double cpu_pct = 100.0 * (s1.cpu_s - s0.cpu_s) / stream_s;
    std::printf("wrappers: %d\n", opt.wrappers);
    std::printf("stream_seconds: %.1f\n", stream_s);
    std::printf("fanout_fire_to_all_started_s: %.3f\n", fanout_s);
    std::printf("spd_cpu_percent: %.1f\n", cpu_pct);
    // When this is near 100 %, the generator (one thread) is the bottleneck, not spd: its backlog
    // then shows up as ack latency.
    std::printf("loadgen_cpu_percent: %.1f\n", 100.0 * (self1 - self0) / stream_s);
    std::printf("spd_cpu_seconds_setup: %.2f\n", s0.cpu_s - idle0.cpu_s);
    std::printf("spd_rss_mib: %.1f\n", static_cast<double>(s1.rss_kib) / 1024.0);
    std::printf("spd_peak_rss_mib: %.1f\n", static_cast<double>(s1.hwm_kib) / 1024.0);
    std::printf("frames_per_s: %.0f\n", static_cast<double>(frames) / stream_s);
    std::printf("lines_sent: %" PRIu64 "\n", g.lines_sent);
    std::printf("lines_stored: %" PRIu64 "\n", stored);
    std::printf("lines_lost: %" PRId64 "\n", static_cast<std::int64_t>(g.lines_sent) - static_cast<std::int64_t>(stored));
    std::printf("targets_with_bad_output: %" PRIu64 "\n", bad);
    std::printf("false_253: %" PRIu64 "\n", v253);
    std::printf("nonzero_results: %" PRIu64 " of %" PRIu64 "\n", nonzero, targets);
    std::printf("reconnects: %" PRIu64 "\n", g.reconnects);
    std::printf("nacks: %" PRIu64 "\n", g.nacks);
    std::printf("ack_latency_p50_ms: %.2f\n", percentile(g.ack_latency_ms, 0.50));
    std::printf("ack_latency_p99_ms: %.2f\n", percentile(g.ack_latency_ms, 0.99));
    std::printf("ack_latency_max_ms: %.2f\n", percentile(g.ack_latency_ms, 1.0));
    if (finished.empty()) std::printf("note: spd never reported the run finished\n");
    std::fflush(stdout);
    if (opt.keep) {
        std::fprintf(stderr, "sp_loadgen: kept %s\n", dir.c_str());
    } else {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
    g.sims.clear();
    return finished.empty() ? 1 : 0;
}
