// Throughput of `head -c <N>M /dev/zero | base64` through sp_wrapper to a minimal acking peer,
// and sp_wrapper's own peak RSS (VmHWM of its /proc entry, sampled until it exits).
// Prints one line per run and the medians, for the issue's figure and for a paced job (1 MiB
// bursts) that shows the footprint when the network keeps up.
//
// The peer is a deliberately minimal WebSocket server (blocking socket, one thread): it unmasks
// only the head and tail of each output frame to find its seq and acks it, so that the figure
// measures sp_wrapper and not a full WebSocket stack on the other side of the same two cores.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>


namespace {

class RawAckPeer {
public:
    RawAckPeer() {
        m_listen = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        bind(m_listen, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
        listen(m_listen, 4);
        socklen_t len = sizeof addr;
        getsockname(m_listen, reinterpret_cast<sockaddr*>(&addr), &len);
        m_port = ntohs(addr.sin_port);
        m_thread = std::thread([this] { serve(); });
    }
    ~RawAckPeer() {
        shutdown(m_listen, SHUT_RDWR);
        close(m_listen);
        m_thread.join();
    }
    std::string url() const { return "ws://127.0.0.1:" + std::to_string(m_port); }
    int retcode() const { return m_retcode; }
    long frames() const { return m_frames; }

private:
    void serve() {
        const int fd = accept4(m_listen, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) return;
        std::string request;
        char buf[4096];
        while (request.find("\r\n\r\n") == std::string::npos) {
            const ssize_t n = recv(fd, buf, sizeof buf, 0);
            if (n <= 0) return void(close(fd));
            request.append(buf, static_cast<std::size_t>(n));
        }
        const auto k = request.find("Sec-WebSocket-Key: ");
        const std::string key = request.substr(k + 19, request.find("\r\n", k) - k - 19) +
                                "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
        unsigned char digest[SHA_DIGEST_LENGTH];
        SHA1(reinterpret_cast<const unsigned char*>(key.data()), key.size(), digest);
        unsigned char accept[64] = {};
        EVP_EncodeBlock(accept, digest, SHA_DIGEST_LENGTH);
        const std::string response = std::string("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                                 "Connection: Upgrade\r\nSec-WebSocket-Accept: ") +
                                     reinterpret_cast<char*>(accept) + "\r\n\r\n";
        send_all(fd, response);
        std::vector<unsigned char> in(4 << 20);
        std::size_t have = 0;
        for (;;) {
            const ssize_t n = recv(fd, in.data() + have, in.size() - have, 0);
            if (n <= 0) break;
            have += static_cast<std::size_t>(n);
            std::size_t pos = 0;
            while (have - pos >= 2) {
                const unsigned char* f = in.data() + pos;
                std::size_t hdr = 2;
                std::uint64_t len = f[1] & 0x7F;
                if (len == 126) {
                    if (have - pos < 4) break;
                    len = (std::uint64_t{f[2]} << 8) | f[3];
                    hdr = 4;
                } else if (len == 127) {
                    if (have - pos < 10) break;
                    len = 0;
                    for (int i = 0; i < 8; ++i) len = (len << 8) | f[2 + i];
                    hdr = 10;
                }
                const bool masked = f[1] & 0x80;
                const std::size_t mask_at = hdr;
                if (masked) hdr += 4;
                if (have - pos < hdr + len) break;
                on_frame(fd, f[0] & 0x0F, masked ? f + mask_at : nullptr, f + hdr, static_cast<std::size_t>(len));
                pos += hdr + static_cast<std::size_t>(len);
            }
            std::memmove(in.data(), in.data() + pos, have - pos);
            have -= pos;
            if (m_retcode != -999) break;
        }
        close(fd);
    }

    // Unmasks only [from, to) of the payload.
    static std::string unmask(const unsigned char* mask, const unsigned char* p, std::size_t from, std::size_t to) {
        std::string s(to - from, '\0');
        for (std::size_t i = from; i < to; ++i) s[i - from] = static_cast<char>(p[i] ^ (mask ? mask[i % 4] : 0));
        return s;
    }

    void on_frame(int fd, int opcode, const unsigned char* mask, const unsigned char* p, std::size_t len) {
        if (opcode == 8) {
            m_retcode = m_retcode == -999 ? -1 : m_retcode.load();
            return;
        }
        if (opcode != 1) return;
        const std::string head = unmask(mask, p, 0, std::min<std::size_t>(len, 24));
        if (head.rfind("{\"type\":\"output\"", 0) == 0) {
            ++m_frames;
            const std::string tail = unmask(mask, p, len > 120 ? len - 120 : 0, len);
            const auto at = tail.rfind("\"seq\":");
            reply(fd, "{\"type\":\"ack\",\"ack_type\":\"output\",\"seq\":" +
                          std::to_string(std::strtol(tail.c_str() + at + 6, nullptr, 10)) + "}");
            return;
        }
        const std::string text = unmask(mask, p, 0, len);
        if (text.find("\"type\":\"connect\"") != std::string::npos)
            reply(fd, R"({"type":"ack","ack_type":"connect","proto":2,"last_seq":-1})");
        else if (text.find("\"type\":\"start\"") != std::string::npos)
            reply(fd, R"({"type":"ack","ack_type":"start"})");
        else if (text.find("\"type\":\"complete\"") != std::string::npos) {
            const auto at = text.find("\"retcode\":");
            const auto seq = text.find("\"seq\":");
            reply(fd, "{\"type\":\"ack\",\"ack_type\":\"complete\",\"seq\":" +
                          std::to_string(std::strtol(text.c_str() + seq + 6, nullptr, 10)) + "}");
            m_retcode = static_cast<int>(std::strtol(text.c_str() + at + 10, nullptr, 10));
        }
    }

    static void reply(int fd, const std::string& text) {
        std::string frame;
        frame.push_back(static_cast<char>(0x81));
        if (text.size() < 126) {
            frame.push_back(static_cast<char>(text.size()));
        } else {
            frame.push_back(126);
            frame.push_back(static_cast<char>(text.size() >> 8));
            frame.push_back(static_cast<char>(text.size() & 0xFF));
        }
        send_all(fd, frame + text);
    }

    static void send_all(int fd, const std::string& s) {
        std::size_t off = 0;
        while (off < s.size()) {
            const ssize_t n = send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
            if (n <= 0) return;
            off += static_cast<std::size_t>(n);
        }
    }

    int m_listen = -1;
    int m_port = 0;
    std::thread m_thread;
    std::atomic<int> m_retcode{-999};
    std::atomic<long> m_frames{0};
};

long vm_hwm_kib(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmHWM:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
    return -1;
}

// utime + stime of the process, in seconds.
double cpu_seconds(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat;
    std::getline(in, stat);
    const auto close = stat.rfind(')');
    if (close == std::string::npos) return -1;
    std::istringstream fields(stat.substr(close + 2));
    std::string f;
    long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && fields >> f; ++i) {
        if (i == 14) utime = std::atoll(f.c_str());
        if (i == 15) stime = std::atoll(f.c_str());
    }
    return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

struct Figures {
    double rate = 0;  // MB/s of job output
    double rss = 0;   // MiB, sp_wrapper's VmHWM
};

// Runs `command` through sp_wrapper `runs` times; `output` is the job's output size in bytes.
bool measure(const std::string& name, const std::string& command, long long output, int runs, Figures& medians) {
    std::vector<double> rates, rss;
    for (int r = 0; r < runs; ++r) {
        RawAckPeer peer;
        std::vector<std::string> env = {"PATH=/usr/local/bin:/usr/bin:/bin",
                                        "SP_WEBSOCKET_URL=" + peer.url(),
                                        "SP_JOB_NAME=bench",
                                        "SP_JOB_INSTANCE=bench_" + std::to_string(r),
                                        "SP_COMMAND=" + command,
                                        "SP_MACHINE_ID=benchhost",
                                        "SP_WRAPPER_LOGLEVEL=off"};
        const auto t0 = std::chrono::steady_clock::now();
        const pid_t pid = fork();
        if (pid == 0) {
            const int devnull = open("/dev/null", O_WRONLY);
            dup2(devnull, 1);
            std::vector<char*> envp;
            for (auto& e : env) envp.push_back(e.data());
            envp.push_back(nullptr);
            char arg0[] = SP_WRAPPER_PATH;
            char arg1[] = "--foreground";
            char* args[] = {arg0, arg1, nullptr};
            execve(arg0, args, envp.data());
            _exit(99);
        }
        long hwm = 0;
        double cpu = 0;
        int status = 0;
        // waitid(WNOWAIT) leaves the exited process in place so its final VmHWM/CPU can be read.
        siginfo_t info{};
        while (waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == 0) {
            hwm = std::max(hwm, vm_hwm_kib(pid));
            cpu = std::max(cpu, cpu_seconds(pid));
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        cpu = std::max(cpu, cpu_seconds(pid));
        waitpid(pid, &status, 0);
        const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && peer.retcode() == 0;
        const double rate = static_cast<double>(output) / 1e6 / secs;
        std::printf("%s run %d: %s, %.0f MB in %.2f s = %.1f MB/s, sp_wrapper peak RSS %.2f MiB, "
                    "CPU %.2f s = %.0f MB per CPU second (%ld frames)\n",
                    name.c_str(), r + 1, ok ? "ok" : "FAILED", static_cast<double>(output) / 1e6, secs, rate,
                    static_cast<double>(hwm) / 1024.0, cpu, static_cast<double>(output) / 1e6 / cpu, peer.frames());
        if (!ok) return false;
        rates.push_back(rate);
        rss.push_back(static_cast<double>(hwm) / 1024.0);
    }
    medians.rate = median(rates);
    medians.rss = median(rss);
    std::printf("%s: median of %d runs: %.1f MB/s, peak RSS %.2f MiB\n", name.c_str(), runs, medians.rate, medians.rss);
    return true;
}

long long base64_size(long long input) {
    const long long chars = 4 * ((input + 2) / 3);
    return chars + (chars + 75) / 76;  // base64 wraps at 76 columns
}

}  // namespace

int main(int argc, char** argv) {
    int runs = 3;
    long mib = 500;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i];
        if (a == "--runs") runs = std::atoi(argv[i + 1]);
        else if (a == "--mib") mib = std::atol(argv[i + 1]);
    }
    Figures flat_out, paced;
    // The issue's figure: as fast as the producer can go.
    if (!measure("throughput", "head -c " + std::to_string(mib) + "M /dev/zero | base64",
                 base64_size(mib * 1024LL * 1024LL), runs, flat_out))
        return 1;
    // A chatty but ordinary job (1 MiB bursts, 20 per second): the footprint when the network keeps up.
    if (!measure("paced", "for i in $(seq 1 40); do head -c 1M /dev/zero | base64; sleep 0.05; done",
                 40 * base64_size(1024LL * 1024LL), runs, paced))
        return 1;
    return 0;
}
