// SaltApiTransport against tests/support/fake_salt_api.py (the shapes of salt/TRANSCRIPTS.md
// item 7) over real HTTP on 127.0.0.1: ping, run_all with per-minion env, token renewal,
// bad credentials, terminate, and a server that is not there.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "saltpeter/salt_transport.hpp"
#include "watchdog.hpp"

using namespace saltpeter;
using namespace std::chrono_literals;

namespace {

constexpr const char* k_password = "saltpeter-secret";

// The fake server as a child process; its first stdout line is the port it listens on.
class FakeSaltApi {
public:
    explicit FakeSaltApi(const std::string& down = "", const std::string& tls_dir = "") : m_tls(!tls_dir.empty()) {
        int out[2];
        REQUIRE(pipe(out) == 0);
        m_pid = fork();
        REQUIRE(m_pid >= 0);
        if (m_pid == 0) {
            dup2(out[1], STDOUT_FILENO);
            close(out[0]);
            close(out[1]);
            setenv("FAKE_SALT_MINIONS", "m1,m2,m3", 1);
            setenv("FAKE_SALT_DOWN", down.c_str(), 1);
            if (!tls_dir.empty()) {
                setenv("FAKE_SALT_TLS_CERT", (tls_dir + "/cert.pem").c_str(), 1);
                setenv("FAKE_SALT_TLS_KEY", (tls_dir + "/key.pem").c_str(), 1);
            }
            const std::string script = std::string(SALTPETER_SOURCE_DIR) + "/tests/support/fake_salt_api.py";
            execlp("python3", "python3", script.c_str(), static_cast<char*>(nullptr));
            _exit(127);
        }
        close(out[1]);
        m_out = fdopen(out[0], "r");
        REQUIRE(m_out != nullptr);
        const std::string line = read_line();
        REQUIRE_MESSAGE(!line.empty(), "fake_salt_api.py did not start");
        m_port = std::stoi(line);
    }
    ~FakeSaltApi() {
        kill(m_pid, SIGTERM);
        int status = 0;
        waitpid(m_pid, &status, 0);
        if (m_out != nullptr) fclose(m_out);
    }
    FakeSaltApi(const FakeSaltApi&) = delete;
    FakeSaltApi& operator=(const FakeSaltApi&) = delete;

    std::string url() const { return (m_tls ? "https://127.0.0.1:" : "http://127.0.0.1:") + std::to_string(m_port); }

    /// Makes the server forget every token (next request 401) and waits until it has.
    void expire_tokens() {
        REQUIRE(kill(m_pid, SIGUSR1) == 0);
        CHECK(read_line() == "tokens-expired");
    }

private:
    std::string read_line() {
        char buf[256];
        if (fgets(buf, sizeof buf, m_out) == nullptr) return {};
        std::string s = buf;
        while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
        return s;
    }

    bool m_tls = false;
    pid_t m_pid = -1;
    FILE* m_out = nullptr;
    int m_port = 0;
};

SaltApiOptions options_for(const std::string& url, const std::string& password = k_password) {
    SaltApiOptions o;
    o.url = url;
    o.username = "saltpeter";
    o.password = password;
    o.eauth = "sharedsecret";
    o.connect_timeout = 3s;
    o.request_timeout = 10s;
    return o;
}

template <typename Pred>
void run_until(boost::asio::io_context& io, Pred done) {
    // A previous run_until may have let the context run out of work, which stops it.
    io.restart();
    auto guard = boost::asio::make_work_guard(io);
    while (!done()) io.run_one_for(100ms);
}

Result<PingReply> ping(boost::asio::io_context& io, SaltTransport& t, SaltTarget target) {
    std::optional<Result<PingReply>> out;
    t.ping(target, 5s, [&](Result<PingReply> r) { out.emplace(std::move(r)); });
    run_until(io, [&] { return out.has_value(); });
    return std::move(*out);
}

struct RunOutcome {
    std::map<std::string, MinionReturn> returns;
    bool done = false;
};

RunOutcome run(boost::asio::io_context& io, SaltTransport& t, const RunAllRequest& request) {
    RunOutcome out;
    t.run_all(request, [&](MinionReturn r) { out.returns[r.minion] = std::move(r); }, [&] { out.done = true; });
    run_until(io, [&] { return out.done; });
    return out;
}

// A loopback port with nothing listening on it.
int closed_port() {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd >= 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    close(fd);
    return ntohs(addr.sin_port);
}

}  // namespace

TEST_CASE("salt api transport: ping matches, stopped minion, unknown id, no match") {
    test::Watchdog watchdog(60s);
    FakeSaltApi server("m3");
    boost::asio::io_context io;
    auto t = make_salt_api_transport(io, options_for(server.url()));
    CHECK(t->name() == "salt-api");

    auto all = ping(io, *t, {"*", TargetType::glob});
    REQUIRE_MESSAGE(all.ok(), all.error().message);
    CHECK(all->responding == std::vector<std::string>{"m1", "m2"});
    REQUIRE(all->not_responding.size() == 1);
    CHECK(all->not_responding[0].first == "m3");

    auto listed = ping(io, *t, {"m1,nosuchminion", TargetType::list});
    REQUIRE_MESSAGE(listed.ok(), listed.error().message);
    CHECK(listed->responding == std::vector<std::string>{"m1"});
    REQUIRE(listed->not_responding.size() == 1);
    CHECK(listed->not_responding[0].first == "nosuchminion");
    CHECK(listed->not_responding[0].second.find("Minion did not return") == 0);

    auto none = ping(io, *t, {"nosuch*", TargetType::glob});
    REQUIRE_MESSAGE(none.ok(), none.error().message);
    CHECK(none->responding.empty());
    CHECK(none->not_responding.empty());
    t->stop();
}

TEST_CASE("salt api transport: run_all on three minions with per-minion env") {
    test::Watchdog watchdog(60s);
    FakeSaltApi server;
    boost::asio::io_context io;
    auto t = make_salt_api_transport(io, options_for(server.url()));

    RunAllRequest req;
    req.minions = {"m1", "m2", "m3"};
    req.argv = {"/bin/sh", "-c", "echo \"$SP_MACHINE_ID $COMMON 'q'\"; echo err >&2; exit 3"};
    req.env = {{"COMMON", "shared value"}, {"SP_MACHINE_ID", "unset"}};
    for (const auto& m : req.minions) req.minion_env[m] = {{"SP_MACHINE_ID", "id-" + m}};
    req.cwd = "/tmp";
    req.timeout = 20s;
    auto out = run(io, *t, req);
    REQUIRE(out.returns.size() == 3);
    for (const auto& m : req.minions) {
        const auto& r = out.returns[m];
        CAPTURE(m);
        CHECK(r.returned);
        CHECK(r.error.empty());
        CHECK(r.retcode == 3);
        CHECK(r.stdout_text == "id-" + m + " shared value 'q'");
        CHECK(r.stderr_text == "err");
    }
    t->stop();
}

TEST_CASE("salt api transport: run_all on a stopped and an unknown minion ends with no-returns") {
    test::Watchdog watchdog(60s);
    FakeSaltApi server("m3");
    boost::asio::io_context io;
    auto t = make_salt_api_transport(io, options_for(server.url()));
    RunAllRequest req;
    req.minions = {"m1", "m3", "ghost"};
    req.argv = {"true"};
    req.timeout = 2s;
    auto out = run(io, *t, req);
    REQUIRE(out.returns.size() == 3);
    CHECK(out.returns["m1"].returned);
    CHECK(out.returns["m1"].retcode == 0);
    CHECK_FALSE(out.returns["m3"].returned);
    CHECK(out.returns["m3"].error.find("did not return") != std::string::npos);
    CHECK_FALSE(out.returns["ghost"].returned);
    CHECK(out.returns["ghost"].error.find("No minions matched") != std::string::npos);
    t->stop();
}

TEST_CASE("salt api transport: a runas error string is Salt's error") {
    test::Watchdog watchdog(60s);
    FakeSaltApi server;
    boost::asio::io_context io;
    auto t = make_salt_api_transport(io, options_for(server.url()));
    RunAllRequest req;
    req.minions = {"m1"};
    req.argv = {"true"};
    req.runas = "no-such-user-sp";
    auto out = run(io, *t, req);
    REQUIRE(out.returns.size() == 1);
    CHECK(out.returns["m1"].returned);
    CHECK(out.returns["m1"].error == "ERROR: User 'no-such-user-sp' is not available");
    t->stop();
}

TEST_CASE("salt api transport: login is renewed once after a 401") {
    test::Watchdog watchdog(60s);
    FakeSaltApi server;
    boost::asio::io_context io;
    auto t = make_salt_api_transport(io, options_for(server.url()));
    auto first = ping(io, *t, {"m1", TargetType::glob});
    REQUIRE_MESSAGE(first.ok(), first.error().message);
    server.expire_tokens();
    auto second = ping(io, *t, {"m1", TargetType::glob});
    REQUIRE_MESSAGE(second.ok(), second.error().message);
    CHECK(second->responding == std::vector<std::string>{"m1"});
    t->stop();
}

TEST_CASE("salt api transport: wrong password is an Error naming the URL and the status") {
    test::Watchdog watchdog(60s);
    FakeSaltApi server;
    boost::asio::io_context io;
    auto t = make_salt_api_transport(io, options_for(server.url(), "wrong-password-xyz"));
    auto r = ping(io, *t, {"*", TargetType::glob});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("salt-api " + server.url() + "/login: HTTP 401") == 0);
    CHECK(r.error().message.find("wrong-password-xyz") == std::string::npos);

    RunAllRequest req;
    req.minions = {"m1", "m2"};
    req.argv = {"true"};
    auto out = run(io, *t, req);
    REQUIRE(out.returns.size() == 2);
    CHECK_FALSE(out.returns["m1"].returned);
    CHECK(out.returns["m1"].error.find("HTTP 401") != std::string::npos);
    t->stop();
}

TEST_CASE("salt api transport: server down is an Error, not a hang") {
    test::Watchdog watchdog(30s);
    boost::asio::io_context io;
    const std::string url = "http://127.0.0.1:" + std::to_string(closed_port());
    auto t = make_salt_api_transport(io, options_for(url));
    auto r = ping(io, *t, {"*", TargetType::glob});
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().message.find("salt-api " + url + "/login") == 0);

    RunAllRequest req;
    req.minions = {"m1"};
    req.argv = {"true"};
    auto out = run(io, *t, req);
    REQUIRE(out.returns.size() == 1);
    CHECK_FALSE(out.returns["m1"].returned);
    CHECK_FALSE(out.returns["m1"].error.empty());

    auto bad = make_salt_api_transport(io, options_for("ftp://x"));
    auto b = ping(io, *bad, {"*", TargetType::glob});
    REQUIRE_FALSE(b.ok());
    CHECK(b.error().message.find("http://") != std::string::npos);
}

TEST_CASE("salt api transport: terminate sends saltutil.term_job to the running job") {
    test::Watchdog watchdog(60s);
    FakeSaltApi server;
    boost::asio::io_context io;
    auto t = make_salt_api_transport(io, options_for(server.url()));
    char tmpl[] = "/tmp/sp-saltapi-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    const std::string pid_file = std::string(tmpl) + "/pid";

    RunAllRequest req;
    req.minions = {"m1"};
    req.argv = {"/bin/sh", "-c", "echo $$ > " + pid_file + "; exec sleep 30"};
    req.timeout = 4s;
    RunOutcome out;
    const TransportJob job =
        t->run_all(req, [&](MinionReturn r) { out.returns[r.minion] = std::move(r); }, [&] { out.done = true; });
    // Wait until the command runs, then terminate it.
    run_until(io, [&] {
        std::ifstream in(pid_file);
        int pid = 0;
        return static_cast<bool>(in >> pid) && pid > 0;
    });
    int pid = 0;
    std::ifstream(pid_file) >> pid;
    t->terminate(job, {"m1"}, 1s);
    run_until(io, [&] { return out.done; });
    // Salt never records a return for a terminated job: the minion is a no-return at the deadline.
    REQUIRE(out.returns.size() == 1);
    CHECK_FALSE(out.returns["m1"].returned);
    CHECK(kill(pid, 0) == -1);
    CHECK(errno == ESRCH);
    std::remove(pid_file.c_str());
    rmdir(tmpl);
    t->stop();
}

TEST_CASE("salt api transport: https verifies the server against ca_file") {
    test::Watchdog watchdog(60s);
    char tmpl[] = "/tmp/sp-saltapi-tls-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    const std::string dir = tmpl;
    const std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
                            "-addext subjectAltName=IP:127.0.0.1 -keyout " + dir + "/key.pem -out " + dir +
                            "/cert.pem >/dev/null 2>&1";
    REQUIRE(std::system(cmd.c_str()) == 0);
    {
        FakeSaltApi server("", dir);
        boost::asio::io_context io;
        auto options = options_for(server.url());
        options.ca_file = dir + "/cert.pem";
        auto t = make_salt_api_transport(io, options);
        auto r = ping(io, *t, {"*", TargetType::glob});
        REQUIRE_MESSAGE(r.ok(), r.error().message);
        CHECK(r->responding == std::vector<std::string>{"m1", "m2", "m3"});
        t->stop();

        // The self-signed certificate is not in the system store: the handshake must fail.
        auto untrusted = make_salt_api_transport(io, options_for(server.url()));
        auto u = ping(io, *untrusted, {"*", TargetType::glob});
        REQUIRE_FALSE(u.ok());
        CHECK(u.error().message.find("TLS handshake") != std::string::npos);
        untrusted->stop();
    }
    std::remove((dir + "/cert.pem").c_str());
    std::remove((dir + "/key.pem").c_str());
    rmdir(tmpl);
}

TEST_CASE("salt api transport: stop and destruction with calls in flight run no callbacks") {
    test::Watchdog watchdog(60s);
    FakeSaltApi server;
    boost::asio::io_context io;
    int callbacks = 0;
    {
        auto t = make_salt_api_transport(io, options_for(server.url()));
        RunAllRequest req;
        req.minions = {"m1", "m2"};
        req.argv = {"sleep", "2"};
        req.timeout = 10s;
        t->run_all(req, [&](MinionReturn) { ++callbacks; }, [&] { ++callbacks; });
        t->ping({"*", TargetType::glob}, 5s, [&](Result<PingReply>) { ++callbacks; });
        const auto until = std::chrono::steady_clock::now() + 1500ms;
        run_until(io, [&] { return std::chrono::steady_clock::now() >= until; });
        t->stop();
        t->stop();  // idempotent
        t->run_all(req, [&](MinionReturn) { ++callbacks; }, [&] { ++callbacks; });
    }
    {
        auto t = make_salt_api_transport(io, options_for(server.url()));
        t->ping({"*", TargetType::glob}, 5s, [&](Result<PingReply>) { ++callbacks; });
    }  // destroyed with the login in flight
    const auto until = std::chrono::steady_clock::now() + 3s;
    run_until(io, [&] { return std::chrono::steady_clock::now() >= until; });
    CHECK(callbacks == 1);  // only the ping that completed before stop()
}

namespace {

struct AsyncOutcome {
    std::map<std::string, MinionReturn> returns;
    int return_calls = 0;
    bool done = false;
};

TransportJob start_async(SaltTransport& t, const CommandRequest& req, AsyncOutcome& out) {
    return t.run_async(
        req,
        [&out](MinionReturn r) {
            ++out.return_calls;
            CHECK_FALSE(out.done);
            out.returns[r.minion] = std::move(r);
        },
        [&out] { out.done = true; });
}

}  // namespace

TEST_CASE("salt api transport: run_async on three minions, a stopped one given up at follow_for") {
    test::Watchdog watchdog(90s);
    FakeSaltApi server("m3");
    boost::asio::io_context io;
    auto t = make_salt_api_transport(io, options_for(server.url()));
    CommandRequest req;
    req.minions = {"m1", "m2", "m3"};
    req.command = "echo \"$SP_JOB_NAME in $(pwd)\"; echo oops >&2; exit 5";
    req.env = {{"SP_JOB_NAME", "it's legacy"}};
    req.cwd = "/tmp";
    req.timeout = 30s;
    req.follow_for = 6s;
    AsyncOutcome out;
    const auto started = std::chrono::steady_clock::now();
    start_async(*t, req, out);
    run_until(io, [&] { return out.done; });
    CHECK(out.return_calls == 3);
    for (const std::string m : {"m1", "m2"}) {
        CAPTURE(m);
        CHECK(out.returns[m].returned);
        CHECK(out.returns[m].retcode == 5);
        CHECK(out.returns[m].stdout_text == "it's legacy in /tmp");
        CHECK(out.returns[m].stderr_text == "oops");
    }
    CHECK_FALSE(out.returns["m3"].returned);
    CHECK(out.returns["m3"].error.find("no return within 6 s (jid ") == 0);
    const auto took = std::chrono::steady_clock::now() - started;
    CHECK(took >= 6s);
    CHECK(took < 30s);
    t->stop();
}

TEST_CASE("salt api transport: run_async timeout= comes back in Salt's shape") {
    test::Watchdog watchdog(90s);
    FakeSaltApi server;
    boost::asio::io_context io;
    auto t = make_salt_api_transport(io, options_for(server.url()));
    CommandRequest req;
    req.minions = {"m1", "m2"};
    req.command = "sleep 30";
    req.timeout = 2s;
    AsyncOutcome out;
    start_async(*t, req, out);
    run_until(io, [&] { return out.done; });
    for (const std::string m : {"m1", "m2"}) {
        CAPTURE(m);
        CHECK(out.returns[m].returned);
        CHECK(out.returns[m].retcode == 1);
        CHECK(out.returns[m].stdout_text == "sleep 30 : Timed out after 2 seconds");
    }
    t->stop();
}

TEST_CASE("salt api transport: run_async terminate ends the minions and their processes") {
    test::Watchdog watchdog(90s);
    FakeSaltApi server;
    boost::asio::io_context io;
    auto t = make_salt_api_transport(io, options_for(server.url()));
    char tmpl[] = "/tmp/sp-saltapi-XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    const std::string pid_file = std::string(tmpl) + "/pids";
    CommandRequest req;
    req.minions = {"m1", "m2"};
    req.command = "trap '' TERM; sleep 60 & echo $! >> " + pid_file + "; echo $$ >> " + pid_file + "; wait";
    AsyncOutcome out;
    const TransportJob job = start_async(*t, req, out);
    run_until(io, [&] {
        std::ifstream in(pid_file);
        int n = 0;
        for (int pid; in >> pid;) ++n;
        return n == 4;
    });
    t->terminate(job, {"m1", "m2"}, 1s);
    run_until(io, [&] { return out.done; });
    CHECK_FALSE(out.returns["m1"].returned);
    CHECK(out.returns["m1"].error.find("terminated") == 0);
    CHECK_FALSE(out.returns["m2"].returned);
    std::ifstream in(pid_file);
    for (int pid; in >> pid;) {
        CAPTURE(pid);
        // A zombie is not left either: the fake reaps its children.
        bool gone = false;
        for (int i = 0; i < 50 && !gone; ++i) {
            gone = kill(pid, 0) == -1 && errno == ESRCH;
            if (!gone) usleep(100000);
        }
        CHECK(gone);
    }
    std::remove(pid_file.c_str());
    rmdir(tmpl);
    t->stop();
}
