#include "host/process_runner.hpp"

#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/signal_set.hpp>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <optional>

#include "saltpeter/exit_code_mapper.hpp"

namespace saltpeter {
namespace {

constexpr std::size_t k_read_size = 64 * 1024;
// A larger pipe lets a fast producer run ahead between two reads, which halves the context
// switches per megabyte (the benchmark's main cost after JSON encoding).
constexpr int k_pipe_size = 1024 * 1024;

// What the child reports through the CLOEXEC error pipe when it cannot reach execve().
enum class Stage : int { chdir = 1, setgroups, setgid, setuid, exec, dup };

struct ChildFailure {
    int stage;
    int error;
};

struct UserInfo {
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;
    std::string name, home, shell;
};

Result<UserInfo> lookup_user(const std::string& user) {
    std::vector<char> buf(16384);
    passwd pw{};
    passwd* found = nullptr;
    const int rc = getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found);
    if (rc != 0 || !found) return Error{"unknown user '" + user + "'", "user"};
    UserInfo info;
    info.uid = pw.pw_uid;
    info.gid = pw.pw_gid;
    info.name = pw.pw_name;
    info.home = pw.pw_dir ? pw.pw_dir : "/";
    info.shell = pw.pw_shell && *pw.pw_shell ? pw.pw_shell : "/bin/sh";
    // initgroups() is not async-signal-safe, so the list is computed here and the child only calls
    // setgroups().
    int count = 64;
    info.groups.resize(static_cast<std::size_t>(count));
    if (getgrouplist(pw.pw_name, pw.pw_gid, info.groups.data(), &count) < 0) {
        info.groups.resize(static_cast<std::size_t>(count));
        getgrouplist(pw.pw_name, pw.pw_gid, info.groups.data(), &count);
    }
    info.groups.resize(static_cast<std::size_t>(count));
    return info;
}

std::string resolve_program(const std::string& program, const std::vector<std::string>& env) {
    if (program.find('/') != std::string::npos) return program;
    std::string path = "/usr/local/bin:/usr/bin:/bin";
    for (const auto& kv : env)
        if (kv.rfind("PATH=", 0) == 0) path = kv.substr(5);
    std::size_t start = 0;
    while (start <= path.size()) {
        const auto end = path.find(':', start);
        std::string dir = path.substr(start, end == std::string::npos ? std::string::npos : end - start);
        if (dir.empty()) dir = ".";
        const std::string candidate = dir + "/" + program;
        if (access(candidate.c_str(), X_OK) == 0) return candidate;
        if (end == std::string::npos) break;
        start = end + 1;
    }
    return program;
}

std::string describe(const ChildFailure& f, const ProcessSpec& spec) {
    const std::string err = std::strerror(f.error);
    switch (static_cast<Stage>(f.stage)) {
        case Stage::chdir: return "cannot change to working directory '" + spec.cwd + "': " + err;
        case Stage::setgroups: return "cannot set the groups of user '" + spec.user + "': " + err;
        case Stage::setgid: return "cannot switch to the group of user '" + spec.user + "': " + err;
        case Stage::setuid: return "cannot switch to user '" + spec.user + "': " + err;
        case Stage::exec: return "cannot execute '" + spec.argv.front() + "': " + err;
        case Stage::dup: return "cannot set up the child's standard streams: " + err;
    }
    return "child failed before exec: " + err;
}

class PosixProcessRunner final : public ProcessRunner {
public:
    explicit PosixProcessRunner(boost::asio::io_context& io) : m_pipe(io), m_sigchld(io, SIGCHLD) {}

    ~PosixProcessRunner() override {
        boost::system::error_code ec;
        m_sigchld.cancel(ec);
        m_pipe.close(ec);
    }

    Result<int> start(const ProcessSpec& spec, ProcessCallbacks callbacks) override {
        if (spec.argv.empty()) return Error{"nothing to run: empty argv", "argv"};
        if (m_pid > 0) return Error{"ProcessRunner::start called twice", ""};
        std::optional<UserInfo> user;
        if (!spec.user.empty()) {
            auto info = lookup_user(spec.user);
            if (!info) return info.error();
            if (geteuid() != 0 && info->uid != geteuid())
                return Error{"running as user '" + spec.user + "' needs root", "user"};
            user = std::move(*info);
        }
        // Everything the child needs is prepared before fork(): the child may only make
        // async-signal-safe calls (spd forks from a multi-threaded process).
        const std::string program = resolve_program(spec.argv.front(), spec.env);
        std::vector<char*> argv, envp;
        for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        for (const auto& e : spec.env) envp.push_back(const_cast<char*>(e.c_str()));
        envp.push_back(nullptr);

        int out[2], err[2];
        if (pipe2(out, O_CLOEXEC) != 0) return Error{std::string("pipe: ") + std::strerror(errno), ""};
        if (pipe2(err, O_CLOEXEC) != 0) {
            close(out[0]);
            close(out[1]);
            return Error{std::string("pipe: ") + std::strerror(errno), ""};
        }
        const int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);

        const pid_t pid = fork();
        if (pid < 0) {
            const int e = errno;
            for (int fd : {out[0], out[1], err[0], err[1], devnull}) if (fd >= 0) close(fd);
            return Error{std::string("fork: ") + std::strerror(e), ""};
        }
        if (pid == 0) child(spec, user, program, argv, envp, out[1], err[1], devnull);

        close(out[1]);
        close(err[1]);
        if (devnull >= 0) close(devnull);
        // The other side of the race in child(): both set the group so killpg works at once.
        setpgid(pid, pid);
        ChildFailure failure{};
        ssize_t n;
        do n = read(err[0], &failure, sizeof failure);
        while (n < 0 && errno == EINTR);
        close(err[0]);
        if (n == static_cast<ssize_t>(sizeof failure)) {
            close(out[0]);
            int status = 0;
            while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
            return Error{describe(failure, spec), failure.stage == static_cast<int>(Stage::chdir) ? "cwd" : ""};
        }
        m_pid = pid;
        m_callbacks = std::move(callbacks);
        fcntl(out[0], F_SETPIPE_SZ, k_pipe_size);  // best effort: the default size works too
        m_pipe.assign(out[0]);
        m_pipe.non_blocking(true);
        read_more();
        wait_child();
        // A very fast child is checked once more, from the io_context so that on_exit never runs
        // inside start().
        boost::asio::post(m_pipe.get_executor(), [this] { reap(); });
        return static_cast<int>(pid);
    }

    bool kill_group(int signal) override {
        if (m_pid <= 0) return false;
        return ::kill(-m_pid, signal) == 0;
    }

    bool group_alive() const override {
        if (m_pid <= 0) return false;
        return ::kill(-m_pid, 0) == 0 || errno == EPERM;
    }

    void close_output() override {
        boost::system::error_code ec;
        m_reading_closed = true;
        m_pipe.close(ec);
    }

private:
    [[noreturn]] static void child(const ProcessSpec& spec, const std::optional<UserInfo>& user,
                                   const std::string& program, const std::vector<char*>& argv,
                                   const std::vector<char*>& envp, int out, int err, int devnull) {
        auto fail = [err](Stage stage) {
            ChildFailure f{static_cast<int>(stage), errno};
            ssize_t ignored = write(err, &f, sizeof f);
            (void)ignored;
            _exit(ExitCodeMapper::code(Outcome::not_found));
        };
        setpgid(0, 0);
        // Descriptors the parent opened without O_CLOEXEC (sockets, logs) must not leak into the
        // job; marking them close-on-exec keeps the error pipe usable until execve.
        close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
        // The parent's signal mask and ignored signals must not leak into the job.
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, nullptr);
        for (int s = 1; s < NSIG; ++s)
            if (s != SIGKILL && s != SIGSTOP) signal(s, SIG_DFL);
        if (devnull >= 0 && dup2(devnull, 0) < 0) fail(Stage::dup);
        if (dup2(out, 1) < 0 || dup2(out, 2) < 0) fail(Stage::dup);
        if (!spec.cwd.empty() && chdir(spec.cwd.c_str()) != 0) fail(Stage::chdir);
        if (user) {
            if (geteuid() == 0 && setgroups(user->groups.size(), user->groups.data()) != 0) fail(Stage::setgroups);
            if (setgid(user->gid) != 0) fail(Stage::setgid);
            if (setuid(user->uid) != 0) fail(Stage::setuid);
        }
        execve(program.c_str(), argv.data(), envp.data());
        fail(Stage::exec);
        _exit(ExitCodeMapper::code(Outcome::not_found));
    }

    void read_more() {
        m_pipe.async_read_some(boost::asio::buffer(m_buffer), [this](const boost::system::error_code& ec, std::size_t n) {
            if (m_reading_closed) return;
            if (n > 0 && m_callbacks.on_output) m_callbacks.on_output(std::string_view(m_buffer.data(), n));
            if (ec) {
                if (ec == boost::asio::error::operation_aborted) return;
                boost::system::error_code ignored;
                m_pipe.close(ignored);
                m_reading_closed = true;
                if (m_callbacks.on_output_end) m_callbacks.on_output_end();
                return;
            }
            read_more();
        });
    }

    void wait_child() {
        m_sigchld.async_wait([this](const boost::system::error_code& ec, int) {
            if (ec) return;
            if (!reap()) wait_child();
        });
    }

    bool reap() {
        if (m_exited) return true;
        int status = 0;
        const pid_t r = waitpid(m_pid, &status, WNOHANG);
        if (r == m_pid) {
            m_exited = true;
            boost::system::error_code ec;
            m_sigchld.cancel(ec);
            if (m_callbacks.on_exit) m_callbacks.on_exit(status);
            return true;
        }
        return false;
    }

    boost::asio::posix::stream_descriptor m_pipe;
    boost::asio::signal_set m_sigchld;
    ProcessCallbacks m_callbacks;
    std::array<char, k_read_size> m_buffer{};
    pid_t m_pid = -1;
    bool m_exited = false;
    bool m_reading_closed = false;
};

}  // namespace

std::unique_ptr<ProcessRunner> make_process_runner(boost::asio::io_context& io) {
    return std::make_unique<PosixProcessRunner>(io);
}

Result<std::vector<std::string>> user_environment(const std::string& user) {
    auto info = lookup_user(user);
    if (!info) return info.error();
    return std::vector<std::string>{"HOME=" + info->home, "USER=" + info->name, "LOGNAME=" + info->name,
                                    "SHELL=" + info->shell};
}

}  // namespace saltpeter
