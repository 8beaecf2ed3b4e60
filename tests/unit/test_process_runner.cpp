#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <csignal>

#include "host/process_runner.hpp"

using namespace saltpeter;

namespace {
struct Outcome {
    std::string output;
    int status = -1;
    bool ended = false;
};

Outcome run(const ProcessSpec& spec, Result<int>* started = nullptr, int signal_after_start = 0) {
    boost::asio::io_context io;
    auto runner = make_process_runner(io);
    Outcome o;
    auto pid = runner->start(spec, ProcessCallbacks{[&](std::string_view b) { o.output.append(b); },
                                                    [&] { o.ended = true; },
                                                    [&](int st) { o.status = st; }});
    if (started) *started = pid;
    if (!pid) return o;
    if (signal_after_start) runner->kill_group(signal_after_start);
    io.run_for(std::chrono::seconds(5));
    return o;
}
}  // namespace

TEST_CASE("stdout and stderr are merged, the exit status is reported") {
    ProcessSpec spec{{"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}, {"PATH=/usr/bin:/bin"}, "", ""};
    const auto o = run(spec);
    CHECK(o.output == "out\nerr\n");
    CHECK(o.ended);
    REQUIRE(WIFEXITED(o.status));
    CHECK(WEXITSTATUS(o.status) == 3);
}

TEST_CASE("environment and working directory are applied and argv is not interpolated by a shell") {
    ProcessSpec spec{{"/bin/sh", "-c", "echo \"$FOO\" \"$1\"; pwd", "sh", "$(id)"}, {"FOO=bar"}, "/tmp", ""};
    CHECK(run(spec).output == "bar $(id)\n/tmp\n");
}

TEST_CASE("the child is its own process group and kill_group reaches it") {
    ProcessSpec spec{{"/bin/sh", "-c", "sleep 30"}, {}, "", ""};
    Result<int> pid = Error{"", ""};
    const auto o = run(spec, &pid, SIGTERM);
    REQUIRE(pid.ok());
    CHECK(getpgid(*pid) == -1);  // reaped
    REQUIRE(WIFSIGNALED(o.status));
    CHECK(WTERMSIG(o.status) == SIGTERM);
}

TEST_CASE("errors before exec are reported with a clear message") {
    Result<int> pid = 0;
    run(ProcessSpec{{"/bin/sh", "-c", "true"}, {}, "/nonexistent/dir", ""}, &pid);
    REQUIRE_FALSE(pid.ok());
    CHECK(pid.error().message == "cannot change to working directory '/nonexistent/dir': No such file or directory");
    run(ProcessSpec{{"/nonexistent/program"}, {}, "", ""}, &pid);
    REQUIRE_FALSE(pid.ok());
    CHECK(pid.error().message == "cannot execute '/nonexistent/program': No such file or directory");
    run(ProcessSpec{{"/bin/true"}, {}, "", "no_such_user_sp"}, &pid);
    REQUIRE_FALSE(pid.ok());
    CHECK(pid.error().message == "unknown user 'no_such_user_sp'");
}

TEST_CASE("user_environment comes from the password database") {
    auto env = user_environment("root");
    REQUIRE(env.ok());
    CHECK(env->at(1) == "USER=root");
    CHECK(env->at(2) == "LOGNAME=root");
    CHECK(user_environment("no_such_user_sp").error().field == "user");
}

TEST_CASE("the child inherits only stdin, stdout and stderr") {
    const int leaked = open("/dev/null", O_RDONLY);  // deliberately without O_CLOEXEC
    REQUIRE(leaked > 2);
    ProcessSpec spec{{"/bin/sh", "-c", "ls /proc/$$/fd"}, {"PATH=/usr/bin:/bin"}, "", ""};
    CHECK(run(spec).output == "0\n1\n2\n");
    close(leaked);
}
