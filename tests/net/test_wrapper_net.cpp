// Loopback tests: the real sp_wrapper binary against the scripted TestPeer (PROTOCOL.md 1, 5).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "core/protocol.hpp"
#include "watchdog.hpp"
#include "test_peer.hpp"

using namespace std::chrono_literals;
using saltpeter::test::PeerScript;
using saltpeter::test::TestPeer;
namespace proto = saltpeter::protocol;

namespace {

std::string temp_dir() {
    char tmpl[] = "/tmp/sp_wrapper_test.XXXXXX";
    const char* d = mkdtemp(tmpl);
    REQUIRE(d != nullptr);
    chmod(d, 0755);
    return d;
}

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

std::string unique_job(const char* base) {
    static int counter = 0;
    return std::string(base) + std::to_string(getpid()) + "_" + std::to_string(++counter);
}

struct Env {
    std::map<std::string, std::string> vars;
    Env(const std::string& url, const std::string& command, const std::string& log_dir, const std::string& job) {
        vars = {{"PATH", "/usr/local/bin:/usr/bin:/bin"},
                {"SP_WEBSOCKET_URL", url},
                {"SP_JOB_NAME", job},
                {"SP_JOB_INSTANCE", job + "_1700000000"},
                {"SP_COMMAND", command},
                {"SP_MACHINE_ID", "testhost"},
                {"SP_OUTPUT_INTERVAL_MS", "20"},
                {"SP_WRAPPER_LOGDIR", log_dir},
                {"SP_WRAPPER_LOGLEVEL", "debug"},
                {"SP_RECONNECT_INTERVAL_MS", "100"},
                {"SP_HEARTBEAT_INTERVAL_MS", "500"},
                {"SP_ALLOW_OVERLAP", "true"}};
    }
};

struct Run {
    pid_t pid = -1;
    std::string out_path;
};

Run spawn_wrapper(const std::map<std::string, std::string>& env, std::vector<std::string> args, const std::string& dir) {
    Run r;
    r.out_path = dir + "/wrapper.out";
    std::vector<std::string> envs;
    for (const auto& [k, v] : env) envs.push_back(k + "=" + v);
    args.insert(args.begin(), SP_WRAPPER_PATH);
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        const int fd = open(r.out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        std::vector<char*> argv, envp;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        for (auto& e : envs) envp.push_back(e.data());
        envp.push_back(nullptr);
        execve(argv[0], argv.data(), envp.data());
        _exit(99);
    }
    r.pid = pid;
    return r;
}

// The wrapper's exit code, or -1 when it did not exit in time (it is then killed).
int wait_exit(const Run& r, std::chrono::milliseconds timeout) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    while (std::chrono::steady_clock::now() < end) {
        if (waitpid(r.pid, &status, WNOHANG) == r.pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        std::this_thread::sleep_for(10ms);
    }
    kill(r.pid, SIGKILL);
    waitpid(r.pid, &status, 0);
    return -1;
}

int run_to_end(const Env& env, const std::string& dir, std::chrono::milliseconds timeout = 30s,
               std::vector<std::string> args = {"--foreground"}) {
    return wait_exit(spawn_wrapper(env.vars, std::move(args), dir), timeout);
}

std::vector<proto::WrapperMessage> parsed_frames(const TestPeer& peer) {
    std::vector<proto::WrapperMessage> out;
    for (const auto& f : peer.frames()) {
        auto m = proto::parse_wrapper_frame(f);
        REQUIRE_MESSAGE(m.ok(), f);
        out.push_back(*m);
    }
    return out;
}

long start_pid(const TestPeer& peer) {
    for (const auto& m : parsed_frames(peer))
        if (auto* s = std::get_if<proto::Start>(&m)) return static_cast<long>(s->pid);
    return -1;
}

// True once no process of the group is left. Killed processes are reparented to PID 1, which may
// take a moment to reap them (a zombie still counts as a group member), hence the polling.
bool group_gone(long pgid) {
    if (pgid <= 0) return false;
    const auto end = std::chrono::steady_clock::now() + 3s;
    while (std::chrono::steady_clock::now() < end) {
        if (kill(-static_cast<pid_t>(pgid), 0) != 0 && errno == ESRCH) return true;
        std::this_thread::sleep_for(20ms);
    }
    return false;
}

// True while a live (non-zombie) process is in the group.
bool group_has_live_process(long pgid) {
    FILE* p = popen("ps -eo pgid=,stat=", "r");
    if (!p) return false;
    char buf[128];
    bool live = false;
    while (fgets(buf, sizeof buf, p)) {
        char stat[32] = {};
        long g = 0;
        if (std::sscanf(buf, "%ld %31s", &g, stat) == 2 && g == pgid && stat[0] != 'Z') live = true;
    }
    pclose(p);
    return live;
}

std::string shell_output(const std::string& command) {
    std::string out;
    FILE* p = popen(command.c_str(), "r");
    REQUIRE(p != nullptr);
    char buf[65536];
    std::size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    pclose(p);
    return out;
}

}  // namespace

TEST_CASE("a job's output arrives complete and in order, with exit code and handshake") {
    saltpeter::test::Watchdog dog(60s);
    TestPeer peer;
    const auto dir = temp_dir();
    Env env(peer.url(), "for i in 1 2 3; do echo line $i; sleep 0.05; done; exit 3", dir, unique_job("basic"));
    env.vars["SP_TOKEN"] = "s3cret";
    CHECK(run_to_end(env, dir) == 0);
    CHECK(peer.output() == "line 1\nline 2\nline 3\n");
    CHECK(peer.retcode() == 3);
    const auto frames = parsed_frames(peer);
    REQUIRE(frames.size() >= 4);
    auto* c = std::get_if<proto::Connect>(&frames[0]);
    REQUIRE(c != nullptr);
    CHECK(c->proto == 2);
    CHECK(c->next_seq == 0);
    CHECK(c->token == std::string("s3cret"));
    CHECK(c->envelope.machine == "testhost");
    CHECK(c->envelope.timestamp.size() == 32);
    CHECK(c->envelope.timestamp.substr(26) == "+00:00");
    CHECK(std::holds_alternative<proto::Start>(frames[1]));
    long outputs = 0;
    for (const auto& f : frames)
        if (std::holds_alternative<proto::Output>(f)) ++outputs;
    auto* done = std::get_if<proto::Complete>(&frames.back());
    REQUIRE(done != nullptr);
    CHECK(done->seq == outputs);
    CHECK(read_file(dir + "/wrapper.out") == "Saltpeter Wrapper version 0.1.0\nWrapper started successfully\n");
    const auto log = read_file(dir + "/" + env.vars["SP_JOB_NAME"] + ".log");
    CHECK(log.find(" [" + env.vars["SP_JOB_INSTANCE"] + "] ") == 19);
}

TEST_CASE("exit codes from the shell are reported as is") {
    saltpeter::test::Watchdog dog(60s);
    const auto dir = temp_dir();
    for (auto [command, code] : std::vector<std::pair<std::string, int>>{
             {"exit 0", 0}, {"exit 3", 3}, {"/etc/passwd", 126}, {"no_such_command_sp_test", 127}}) {
        TestPeer peer;
        Env env(peer.url(), command, dir, unique_job("codes"));
        CHECK(run_to_end(env, dir) == 0);
        CHECK_MESSAGE(peer.retcode() == code, command);
    }
}

TEST_CASE("invalid UTF-8 becomes U+FFFD, split characters and carriage returns survive") {
    saltpeter::test::Watchdog dog(60s);
    TestPeer peer;
    const auto dir = temp_dir();
    Env env(peer.url(), "printf 'a\\r b\\377\\376 c\\342\\202'; sleep 0.1; printf '\\254 done\\r\\n'", dir,
            unique_job("utf8"));
    CHECK(run_to_end(env, dir) == 0);
    CHECK(peer.output() == "a\r b\xEF\xBF\xBD\xEF\xBF\xBD c\xE2\x82\xAC done\r\n");
}

TEST_CASE("progress bars with \\r arrive byte for byte") {
    saltpeter::test::Watchdog dog(60s);
    TestPeer peer;
    const auto dir = temp_dir();
    const std::string cmd = "for i in $(seq 1 200); do printf '\\r%3d%%' $i; done; echo";
    Env env(peer.url(), cmd, dir, unique_job("progress"));
    CHECK(run_to_end(env, dir) == 0);
    CHECK(peer.output() == shell_output(cmd));
}

TEST_CASE("50 MB of output across forced disconnects, spilled to disk, exactly once") {
    saltpeter::test::Watchdog dog(110s);
    PeerScript script;
    script.close_after_outputs = {3, 60, 200, 500};
    TestPeer peer(script);
    const auto dir = temp_dir();
    const std::string cmd = "seq 1 6500000; printf '\\377tail'";
    Env env(peer.url(), cmd, dir, unique_job("big"));
    env.vars["SP_WRAPPER_MEMORY_LIMIT"] = "1048576";
    CHECK(run_to_end(env, dir, 100s) == 0);
    const std::string expected = shell_output("seq 1 6500000") + "\xEF\xBF\xBDtail";
    CHECK(expected.size() > 50'000'000u);
    const std::string got = peer.output();
    CHECK(got.size() == expected.size());
    CHECK(got == expected);
    CHECK(peer.connections() >= 5);
    const auto types = peer.frame_types();
    CHECK(std::count(types.begin(), types.end(), "start") == 1);  // acked once, never resent
    CHECK(std::count(types.begin(), types.end(), "connect") == peer.connections());
    CHECK(read_file(dir + "/" + env.vars["SP_JOB_NAME"] + ".log").find("spilling to disk") != std::string::npos);
}

TEST_CASE("original server (no proto in the connect ack): renumbered from 0, start never resent") {
    saltpeter::test::Watchdog dog(60s);
    PeerScript script;
    script.proto2 = false;
    script.close_after_outputs = {4, 9};
    TestPeer peer(script);
    const auto dir = temp_dir();
    const std::string cmd = "for i in $(seq 1 40); do echo line $i; sleep 0.01; done";
    Env env(peer.url(), cmd, dir, unique_job("orig"));
    CHECK(run_to_end(env, dir) == 0);
    CHECK(peer.output() == shell_output(cmd));
    CHECK(peer.retcode() == 0);
    int starts = 0, connects = 0;
    for (const auto& t : peer.frame_types()) {
        starts += t == "start";
        connects += t == "connect";
    }
    CHECK(starts == 1);
    CHECK(connects >= 3);
}

TEST_CASE("kill: 143, notice, and the whole process tree is gone") {
    saltpeter::test::Watchdog dog(60s);
    TestPeer peer;
    const auto dir = temp_dir();
    Env env(peer.url(), "echo started; (sleep 300 &); sleep 300 & sleep 300", dir, unique_job("kill"));
    const Run run = spawn_wrapper(env.vars, {"--foreground"}, dir);
    REQUIRE(peer.wait_for([&] { return peer.output() == "started\n"; }, 10s));
    const long pgid = start_pid(peer);
    REQUIRE(pgid > 0);
    CHECK(group_has_live_process(pgid));
    peer.send_kill();
    CHECK(wait_exit(run, 20s) == 0);
    CHECK(peer.retcode() == 143);
    CHECK(peer.output() == "started\n\n[Job terminated by user request]\n");
    CHECK(group_gone(pgid));
}

TEST_CASE("timeout: 124, notice, and the whole process tree is gone") {
    saltpeter::test::Watchdog dog(60s);
    TestPeer peer;
    const auto dir = temp_dir();
    Env env(peer.url(), "(sleep 300 &); sleep 300 & sleep 300", dir, unique_job("timeout"));
    env.vars["SP_TIMEOUT"] = "1";
    const Run run = spawn_wrapper(env.vars, {"--foreground"}, dir);
    REQUIRE(peer.wait_for([&] { return start_pid(peer) > 0; }, 10s));
    const long pgid = start_pid(peer);
    CHECK(wait_exit(run, 20s) == 0);
    CHECK(peer.retcode() == 124);
    CHECK(peer.output() == "\n[Job exceeded timeout of 1 seconds]\n");
    CHECK(group_gone(pgid));
}

TEST_CASE("a job that ignores SIGTERM is SIGKILLed after the grace period") {
    saltpeter::test::Watchdog dog(60s);
    TestPeer peer;
    const auto dir = temp_dir();
    Env env(peer.url(), "trap '' TERM; echo armed; sleep 300; echo survived", dir, unique_job("stubborn"));
    env.vars["SP_KILL_GRACE_MS"] = "1500";
    env.vars["SP_HEARTBEAT_INTERVAL_MS"] = "200";
    const Run run = spawn_wrapper(env.vars, {"--foreground"}, dir);
    REQUIRE(peer.wait_for([&] { return peer.output() == "armed\n"; }, 10s));
    const long pgid = start_pid(peer);
    const auto t0 = std::chrono::steady_clock::now();
    auto heartbeats = [&] {
        const auto types = peer.frame_types();
        return std::count(types.begin(), types.end(), "heartbeat");
    };
    const auto beats_before = heartbeats();
    peer.send_kill();
    CHECK(wait_exit(run, 20s) == 0);
    CHECK(heartbeats() - beats_before >= 4);  // heartbeats go on during the kill grace
    CHECK(std::chrono::steady_clock::now() - t0 >= 900ms);
    CHECK(peer.retcode() == 143);
    CHECK(peer.output().find("survived") == std::string::npos);
    CHECK(group_gone(pgid));
}

TEST_CASE("a background child holding stdout does not hold up completion") {
    saltpeter::test::Watchdog dog(60s);
    TestPeer peer;
    const auto dir = temp_dir();
    Env env(peer.url(), "(sleep 30; echo late) & echo done", dir, unique_job("bg"));
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(run_to_end(env, dir, 20s) == 0);
    CHECK(std::chrono::steady_clock::now() - t0 < 10s);
    CHECK(peer.output() == "done\n");
    CHECK(peer.retcode() == 0);
}

TEST_CASE("lock held: 254 with the LOCKFILE ERROR output") {
    saltpeter::test::Watchdog dog(60s);
    TestPeer peer;
    const auto dir = temp_dir();
    const std::string job = unique_job("locked");
    const std::string lock = dir + "/job.lock";
    const int fd = open(lock.c_str(), O_RDWR | O_CREAT, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(flock(fd, LOCK_EX | LOCK_NB) == 0);
    REQUIRE(write(fd, "4242\n", 5) == 5);
    Env env(peer.url(), "echo should not run", dir, job);
    env.vars["SP_ALLOW_OVERLAP"] = "false";
    env.vars["SP_LOCKFILE"] = lock;
    CHECK(run_to_end(env, dir) == 0);
    CHECK(peer.retcode() == 254);
    CHECK(peer.output() == "LOCKFILE ERROR: Job " + job + " already running (PID 4242), overlap not allowed\n");
    close(fd);
    // Free again: the job runs.
    TestPeer peer2;
    env.vars["SP_WEBSOCKET_URL"] = peer2.url();
    CHECK(run_to_end(env, dir) == 0);
    CHECK(peer2.output() == "should not run\n");
    CHECK(peer2.retcode() == 0);
}

TEST_CASE("server down for the whole run: result file written, --replay delivers it") {
    saltpeter::test::Watchdog dog(60s);
    const auto dir = temp_dir();
    const std::string job = unique_job("down");
    std::string url;
    {
        TestPeer gone;  // take a free port, then close it
        url = gone.url();
    }
    Env env(url, "echo kept; printf '\\377'; exit 5", dir, job);
    env.vars["SP_COMPLETION_RETRY_MS"] = "1500";
    env.vars["SP_TOKEN"] = "tok";
    CHECK(run_to_end(env, dir) == 1);
    const std::string path = dir + "/" + job + "." + job + "_1700000000.result.json";
    struct stat st {};
    REQUIRE(stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);
    const std::string body = read_file(path);
    CHECK(body.find("\"retcode\": 5") != std::string::npos);
    CHECK(body.find("kept\\n\xEF\xBF\xBD") != std::string::npos);

    TestPeer peer;
    Env replay_env(peer.url(), "unused", dir, job);
    replay_env.vars.erase("SP_COMMAND");
    CHECK(run_to_end(replay_env, dir, 30s, {"--replay", path}) == 0);
    CHECK(peer.output() == "kept\n\xEF\xBF\xBD");
    CHECK(peer.retcode() == 5);
    CHECK(stat(path.c_str(), &st) != 0);
    for (const auto& m : parsed_frames(peer))
        if (auto* c = std::get_if<proto::Connect>(&m)) CHECK(c->token == std::string("tok"));
}

TEST_CASE("JOB_NOT_FOUND stops the retries and keeps the result") {
    saltpeter::test::Watchdog dog(60s);
    PeerScript script;
    script.job_not_found = true;
    TestPeer peer(script);
    const auto dir = temp_dir();
    const std::string job = unique_job("notfound");
    Env env(peer.url(), "echo x", dir, job);
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(run_to_end(env, dir) == 1);
    CHECK(std::chrono::steady_clock::now() - t0 < 10s);
    struct stat st {};
    CHECK(stat((dir + "/" + job + "." + job + "_1700000000.result.json").c_str(), &st) == 0);
}

TEST_CASE("delayed acks, missing acks and a nack still deliver everything once") {
    saltpeter::test::Watchdog dog(90s);
    const std::string cmd = "for i in $(seq 1 30); do echo line $i; sleep 0.02; done";
    const std::string expected = shell_output(cmd);
    const auto dir = temp_dir();
    SUBCASE("delayed") {
        PeerScript s;
        s.ack_delay_ms = 1500;
        TestPeer peer(s);
        Env env(peer.url(), cmd, dir, unique_job("delayed"));
        CHECK(run_to_end(env, dir) == 0);
        CHECK(peer.output() == expected);
        const auto types = peer.frame_types();
        CHECK(std::count(types.begin(), types.end(), "sync_request") >= 1);
    }
    SUBCASE("no output acks: sync_response carries the progress") {
        PeerScript s;
        s.ack_outputs = false;
        TestPeer peer(s);
        Env env(peer.url(), cmd, dir, unique_job("noacks"));
        CHECK(run_to_end(env, dir) == 0);
        CHECK(peer.output() == expected);
        CHECK(peer.retcode() == 0);
    }
    SUBCASE("nack") {
        PeerScript s;
        s.nack_seq_once = 2;
        TestPeer peer(s);
        Env env(peer.url(), cmd, dir, unique_job("nack"));
        CHECK(run_to_end(env, dir) == 0);
        CHECK(peer.output() == expected);
    }
}

TEST_CASE("connections refused for a while: the job runs on, output is queued and delivered") {
    saltpeter::test::Watchdog dog(60s);
    TestPeer peer;
    peer.refuse_for(1500ms);
    const auto dir = temp_dir();
    const std::string cmd = "for i in $(seq 1 20); do echo tick $i; sleep 0.05; done";
    Env env(peer.url(), cmd, dir, unique_job("refused"));
    CHECK(run_to_end(env, dir) == 0);
    CHECK(peer.output() == shell_output(cmd));
    CHECK(peer.retcode() == 0);
}

TEST_CASE("kill and socket close mid-stream together") {
    saltpeter::test::Watchdog dog(60s);
    TestPeer peer;
    const auto dir = temp_dir();
    Env env(peer.url(), "i=0; while true; do i=$((i+1)); echo n $i; sleep 0.01; done", dir, unique_job("midclose"));
    const Run run = spawn_wrapper(env.vars, {"--foreground"}, dir);
    REQUIRE(peer.wait_for([&] { return peer.output().size() > 50; }, 10s));
    peer.close_all();
    std::this_thread::sleep_for(300ms);
    REQUIRE(peer.wait_for([&] { return peer.connections() >= 2; }, 10s));
    peer.send_kill();
    CHECK(wait_exit(run, 20s) == 0);
    CHECK(peer.retcode() == 143);
    // Every line, in order, once: n 1 .. n K, then the notice.
    std::istringstream in(peer.output());
    std::string line;
    int expect = 1;
    while (std::getline(in, line) && line.rfind("n ", 0) == 0) CHECK(line == "n " + std::to_string(expect++));
    CHECK(peer.output().find("[Job terminated by user request]") != std::string::npos);
}

TEST_CASE("the job runs as SP_USER with its identity and without SP_TOKEN") {
    if (geteuid() != 0 || getpwnam("nobody") == nullptr) {
        MESSAGE("skipped: needs root and user 'nobody'");
        return;
    }
    saltpeter::test::Watchdog dog(60s);
    TestPeer peer;
    const auto dir = temp_dir();
    Env env(peer.url(), "id -un; echo $USER $LOGNAME $HOME; echo \"[$SP_TOKEN]\"; id -G", dir, unique_job("user"));
    env.vars["SP_USER"] = "nobody";
    env.vars["SP_TOKEN"] = "secret";
    env.vars["SP_CWD"] = "/";
    CHECK(run_to_end(env, dir) == 0);
    const passwd* pw = getpwnam("nobody");
    const std::string expected_ids = shell_output("id -G nobody");
    CHECK(peer.output() == "nobody\nnobody nobody " + std::string(pw->pw_dir) + "\n[]\n" + expected_ids);
}

TEST_CASE("launch: detaches and returns 0 at once and pre-detach failures exit non-zero") {
    saltpeter::test::Watchdog dog(60s);
    TestPeer peer;
    const auto dir = temp_dir();
    Env env(peer.url(), "sleep 1; echo detached", dir, unique_job("launch"));
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(run_to_end(env, dir, 10s, {}) == 0);
    CHECK(std::chrono::steady_clock::now() - t0 < 900ms);
    CHECK(read_file(dir + "/wrapper.out") == "Saltpeter Wrapper version 0.1.0\nWrapper started successfully\n");
    CHECK(peer.wait_for([&] { return peer.retcode().has_value(); }, 15s));
    CHECK(peer.output() == "detached\n");

    Env bad_cwd(peer.url(), "true", dir, unique_job("badcwd"));
    bad_cwd.vars["SP_CWD"] = "/nonexistent/dir";
    CHECK(run_to_end(bad_cwd, dir, 10s, {}) == 1);
    CHECK(read_file(dir + "/wrapper.out").find("SP_CWD '/nonexistent/dir'") != std::string::npos);

    Env bad_timeout(peer.url(), "true", dir, unique_job("badtimeout"));
    bad_timeout.vars["SP_TIMEOUT"] = "soon";
    CHECK(run_to_end(bad_timeout, dir, 10s, {}) == 1);
    CHECK(read_file(dir + "/wrapper.out").find("SP_TIMEOUT") != std::string::npos);

    Env bad_user(peer.url(), "true", dir, unique_job("baduser"));
    bad_user.vars["SP_USER"] = "no_such_user_sp";
    if (geteuid() == 0) {
        CHECK(run_to_end(bad_user, dir, 10s, {}) == 1);
        CHECK(read_file(dir + "/wrapper.out").find("no_such_user_sp") != std::string::npos);
    }

    Env missing(peer.url(), "true", dir, unique_job("missing"));
    missing.vars.erase("SP_COMMAND");
    CHECK(run_to_end(missing, dir, 10s, {}) == 1);
    CHECK(read_file(dir + "/wrapper.out").find("Error: SP_COMMAND environment variable not set") != std::string::npos);
}

TEST_CASE("kill: a grandchild that ignores SIGTERM and holds stdout after the shell died is SIGKILLed") {
    saltpeter::test::Watchdog dog(60s);
    TestPeer peer;
    const auto dir = temp_dir();
    Env env(peer.url(), "(trap '' TERM; sleep 300) & echo go; wait", dir, unique_job("grandchild"));
    env.vars["SP_KILL_GRACE_MS"] = "3000";
    const Run run = spawn_wrapper(env.vars, {"--foreground"}, dir);
    REQUIRE(peer.wait_for([&] { return peer.output() == "go\n"; }, 10s));
    const long pgid = start_pid(peer);
    const auto t0 = std::chrono::steady_clock::now();
    peer.send_kill();
    CHECK(wait_exit(run, 20s) == 0);
    CHECK(std::chrono::steady_clock::now() - t0 >= 2900ms);  // SIGKILL only after the grace
    CHECK(peer.retcode() == 143);
    CHECK(group_gone(pgid));
}

TEST_CASE("wss:// with a trusted certificate (SSL_CERT_FILE) streams like ws:// and an untrusted one is refused") {
    saltpeter::test::Watchdog dog(60s);
    const auto dir = temp_dir();
    const std::string cert = dir + "/cert.pem", key = dir + "/key.pem";
    const std::string gen = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost -keyout " + key +
                            " -out " + cert + " >/dev/null 2>&1";
    REQUIRE(std::system(gen.c_str()) == 0);
    TestPeer peer(PeerScript{}, saltpeter::test::PeerTls{cert, key});
    REQUIRE(peer.url().rfind("wss://localhost:", 0) == 0);
    const std::string cmd = "for i in 1 2 3; do echo secure $i; done; exit 7";
    Env env(peer.url(), cmd, dir, unique_job("tls"));
    env.vars["SSL_CERT_FILE"] = cert;
    CHECK(run_to_end(env, dir) == 0);
    CHECK(peer.output() == "secure 1\nsecure 2\nsecure 3\n");
    CHECK(peer.retcode() == 7);

    TestPeer untrusted(PeerScript{}, saltpeter::test::PeerTls{cert, key});
    Env env2(untrusted.url(), "echo x", dir, unique_job("tlsbad"));
    env2.vars["SSL_CERT_FILE"] = "/dev/null";
    env2.vars["SP_COMPLETION_RETRY_MS"] = "1000";
    CHECK(run_to_end(env2, dir) == 1);
    CHECK(untrusted.connections() == 0);
}

TEST_CASE("timeout of a job that ignores SIGTERM: heartbeats go on until SIGKILL and 124") {
    saltpeter::test::Watchdog dog(60s);
    TestPeer peer;
    const auto dir = temp_dir();
    Env env(peer.url(), "trap '' TERM; sleep 300", dir, unique_job("timeoutbeat"));
    env.vars["SP_TIMEOUT"] = "1";
    env.vars["SP_KILL_GRACE_MS"] = "1500";
    env.vars["SP_HEARTBEAT_INTERVAL_MS"] = "200";
    const Run run = spawn_wrapper(env.vars, {"--foreground"}, dir);
    REQUIRE(peer.wait_for([&] { return start_pid(peer) > 0; }, 10s));
    const long pgid = start_pid(peer);
    CHECK(wait_exit(run, 20s) == 0);
    CHECK(peer.retcode() == 124);
    CHECK(group_gone(pgid));
    // Heartbeats between the timeout notice and complete.
    const auto types = peer.frame_types();
    const auto notice = std::find(types.begin(), types.end(), "output");
    REQUIRE(notice != types.end());
    CHECK(std::count(notice, types.end(), "heartbeat") >= 4);
}

TEST_CASE("original server that never acks start: the wrapper keeps retrying and keeps the result") {
    saltpeter::test::Watchdog dog(60s);
    PeerScript script;
    script.proto2 = false;
    script.ack_start = false;
    TestPeer peer(script);
    const auto dir = temp_dir();
    const std::string job = unique_job("nostart");
    Env env(peer.url(), "echo lost; sleep 1", dir, job);
    env.vars["SP_COMPLETION_RETRY_MS"] = "2500";
    CHECK(run_to_end(env, dir) == 1);
    CHECK(peer.connections() >= 2);
    const auto types = peer.frame_types();
    CHECK(std::count(types.begin(), types.end(), "output") == 0);  // nothing before the handshake
    CHECK(read_file(dir + "/" + job + "." + job + "_1700000000.result.json").find("lost\\n") != std::string::npos);
}
