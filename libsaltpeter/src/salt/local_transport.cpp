// The local transport: Salt's behaviour reproduced on this host, for trying saltpeter without a
// Salt master and for tests. Targeting uses TargetMatcher; "minions" are processes on this host.
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <map>
#include <set>

#include "saltpeter/exit_code_mapper.hpp"
#include "host/process_runner.hpp"
#include "saltpeter/salt_transport.hpp"
#include "saltpeter/targeting.hpp"

extern char** environ;

namespace saltpeter {

std::string host_name() {
    struct utsname u {};
    if (uname(&u) != 0) return "localhost";
    return u.nodename;
}

namespace {

std::vector<std::string> merged_environment(const RunAllRequest& request, const std::string& minion) {
    std::map<std::string, std::string> env;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
        const std::string kv = *e;
        const auto eq = kv.find('=');
        if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    for (const auto& [k, v] : request.env) env[k] = v;
    // Every local "minion" is this same host, so the wrapper's per-host lock file would make the
    // minions of one run refuse each other. Give each minion its own default lock path, as if it
    // were a host of its own, in $TMPDIR (so that spds with their own TMPDIR, parallel test
    // suites for one, do not share locks); an explicit SP_LOCKFILE is left alone.
    auto job = env.find("SP_JOB_NAME");
    if (job != env.end() && env.count("SP_LOCKFILE") == 0) {
        auto tmp = env.find("TMPDIR");
        const std::string dir = tmp != env.end() && !tmp->second.empty() && tmp->second.front() == '/' ? tmp->second : "/tmp";
        env["SP_LOCKFILE"] = dir + (dir.back() == '/' ? "" : "/") + "sp_wrapper_" + job->second + "." + minion + ".lock";
    }
    auto it = request.minion_env.find(minion);
    if (it != request.minion_env.end()) {
        for (const auto& [k, v] : it->second) env[k] = v;
    }
    std::vector<std::string> out;
    out.reserve(env.size());
    for (const auto& [k, v] : env) out.push_back(k + "=" + v);
    return out;
}

class LocalTransport final : public SaltTransport {
public:
    LocalTransport(boost::asio::io_context& io, LocalTransportOptions options) : m_io(io), m_options(std::move(options)) {
        if (m_options.minions.empty()) m_options.minions.push_back(host_name());
        std::sort(m_options.minions.begin(), m_options.minions.end());
    }

    std::string name() const override { return "local"; }

    void ping(const SaltTarget& target, std::chrono::seconds /*timeout*/,
              std::function<void(Result<PingReply>)> done) override {
        auto matcher = TargetMatcher::compile(target.expression, target.type);
        Result<PingReply> result = [&]() -> Result<PingReply> {
            if (!matcher) return matcher.error();
            PingReply reply;
            for (const auto& id : m_options.minions) {
                MinionInfo info{id, {}};
                auto g = m_options.grains.find(id);
                if (g != m_options.grains.end()) info.grains = g->second;
                if (matcher->matches(info)) reply.responding.push_back(id);
            }
            return reply;
        }();
        // Asynchronous like a real transport: the caller never sees its callback inside ping().
        boost::asio::post(m_io, [done = std::move(done), result = std::move(result)]() mutable { done(std::move(result)); });
    }

    TransportJob run_all(const RunAllRequest& request, std::function<void(MinionReturn)> on_return,
                         std::function<void()> done) override {
        const TransportJob id = ++m_next_job;
        auto job = new_job(id, std::move(on_return), std::move(done), request.minions.size());
        if (request.minions.empty()) finish_job(id);
        for (const auto& minion : request.minions) start_one(id, job, request, minion);
        return id;
    }

    // Legacy mode: one /bin/sh -c per minion, Salt's timeout= reproduced (the process group is
    // killed and the return is retcode 1 with "<cmd> : Timed out after N seconds").
    TransportJob run_async(const CommandRequest& request, std::function<void(MinionReturn)> on_return,
                           std::function<void()> done) override {
        const TransportJob id = ++m_next_job;
        auto job = new_job(id, std::move(on_return), std::move(done), request.minions.size());
        job->command = request.command;
        job->timeout = request.timeout;
        job->asynchronous = true;
        if (request.minions.empty()) {
            finish_job(id);
            return id;
        }
        const RunAllRequest run = shell_request(request);
        for (const auto& minion : request.minions) start_one(id, job, run, minion);
        if (request.follow_for.count() > 0) {
            job->follow_timer = std::make_shared<boost::asio::steady_timer>(m_io, request.follow_for);
            std::weak_ptr<Job> weak = job;
            const auto limit = request.follow_for;
            job->follow_timer->async_wait([this, weak, id, limit](const boost::system::error_code& ec) {
                auto j = weak.lock();
                if (ec || !j) return;
                std::vector<std::string> missing;
                for (const auto& [m, p] : j->processes) {
                    if (j->reported.count(m) == 0) missing.push_back(m);
                }
                for (const auto& m : missing) {
                    MinionReturn ret;
                    ret.minion = m;
                    ret.returned = false;
                    ret.error = "no return within " + std::to_string(limit.count()) + " s";
                    report(id, std::move(ret));
                }
            });
        }
        return id;
    }

    void terminate(TransportJob id, const std::vector<std::string>& minions, std::chrono::seconds grace) override {
        auto it = m_jobs.find(id);
        if (it == m_jobs.end()) return;
        auto job = it->second;
        for (const auto& minion : minions) {
            auto p = job->processes.find(minion);
            if (p == job->processes.end() || !p->second.runner) continue;
            if (job->asynchronous) p->second.terminated = true;
            p->second.runner->kill_group(SIGTERM);
            auto timer = std::make_shared<boost::asio::steady_timer>(m_io, grace);
            std::weak_ptr<Job> weak = job;
            timer->async_wait([weak, minion, timer](const boost::system::error_code& ec) {
                if (ec) return;
                auto j = weak.lock();
                if (!j) return;
                auto q = j->processes.find(minion);
                if (q != j->processes.end() && q->second.runner && q->second.runner->group_alive()) {
                    q->second.runner->kill_group(SIGKILL);
                }
            });
        }
    }

    void stop() override {
        m_stopped = true;
        for (auto& [id, job] : m_jobs) {
            job->on_return = nullptr;
            job->done = nullptr;
        }
    }

private:
    struct Process {
        std::unique_ptr<ProcessRunner> runner;
        std::string output;
        std::unique_ptr<boost::asio::steady_timer> timeout_timer;
        bool exited = false;
        bool eof = false;
        bool timed_out = false;   ///< killed by Salt's timeout= (run_async)
        bool terminated = false;  ///< terminate() was asked for (run_async: never returns)
        int status = 0;
    };
    struct Job {
        std::function<void(MinionReturn)> on_return;
        std::function<void()> done;
        std::size_t pending = 0;
        std::map<std::string, Process> processes;
        std::set<std::string> reported;
        bool asynchronous = false;  ///< run_async: timeout= and terminate follow Salt's job rules
        std::string command;
        std::chrono::seconds timeout{0};
        std::shared_ptr<boost::asio::steady_timer> follow_timer;
    };

    std::shared_ptr<Job> new_job(TransportJob id, std::function<void(MinionReturn)> on_return, std::function<void()> done,
                                 std::size_t pending) {
        auto job = std::make_shared<Job>();
        job->on_return = std::move(on_return);
        job->done = std::move(done);
        job->pending = pending;
        m_jobs[id] = job;
        return job;
    }

    void report(TransportJob id, MinionReturn ret) {
        auto it = m_jobs.find(id);
        if (it == m_jobs.end()) return;
        auto job = it->second;
        if (!job->reported.insert(ret.minion).second) return;  // given up on earlier (follow_for)
        if (job->on_return && !m_stopped) job->on_return(std::move(ret));
        if (job->pending > 0 && --job->pending == 0) finish_job(id);
    }

    void finish_job(TransportJob id) {
        auto it = m_jobs.find(id);
        if (it == m_jobs.end()) return;
        auto job = it->second;
        auto done = std::move(job->done);
        if (job->follow_timer) job->follow_timer->cancel();
        erase_if_reaped(id);
        if (done && !m_stopped) boost::asio::post(m_io, std::move(done));
    }

    // The processes may outlive the Salt call (a detached wrapper's children are not ours); a job
    // is kept until every runner is reaped so that nothing is left a zombie.
    void erase_if_reaped(TransportJob id) {
        auto it = m_jobs.find(id);
        if (it == m_jobs.end()) return;
        for (const auto& [m, p] : it->second->processes) {
            if (!p.exited) return;
        }
        m_jobs.erase(it);
    }

    // What Salt's cmd.run_all answers when the program cannot be started: the shell's words and
    // codes (127 missing, 126 not executable), so spd's "Salt execution error" path is the same.
    static std::optional<MinionReturn> precheck(const RunAllRequest& request, const std::string& minion) {
        const std::string& program = request.argv.front();
        if (program.find('/') == std::string::npos) return std::nullopt;  // PATH lookup: leave it to exec
        MinionReturn ret;
        ret.minion = minion;
        if (access(program.c_str(), F_OK) != 0) {
            ret.retcode = ExitCodeMapper::code(Outcome::not_found);
            ret.stderr_text = program + ": No such file or directory";
            return ret;
        }
        if (access(program.c_str(), X_OK) != 0) {
            ret.retcode = ExitCodeMapper::code(Outcome::permission_denied);
            ret.stderr_text = program + ": Permission denied";
            return ret;
        }
        return std::nullopt;
    }

    void start_one(TransportJob id, const std::shared_ptr<Job>& job, const RunAllRequest& request,
                   const std::string& minion) {
        if (request.argv.empty()) {
            post_return(id, MinionReturn{minion, true, ExitCodeMapper::code(Outcome::not_found), "", "nothing to run", ""});
            return;
        }
        if (auto failed = precheck(request, minion)) {
            post_return(id, std::move(*failed));
            return;
        }
        ProcessSpec spec;
        spec.argv = request.argv;
        spec.env = merged_environment(request, minion);
        spec.cwd = request.cwd;
        spec.user = request.runas;
        Process& proc = job->processes[minion];
        proc.runner = make_process_runner(m_io);
        std::weak_ptr<Job> weak = job;
        ProcessCallbacks callbacks;
        callbacks.on_output = [weak, minion](std::string_view bytes) {
            if (auto j = weak.lock()) {
                auto& p = j->processes[minion];
                if (p.output.size() < k_max_output) p.output.append(bytes.substr(0, k_max_output - p.output.size()));
            }
        };
        callbacks.on_output_end = [this, weak, id, minion] {
            if (auto j = weak.lock()) {
                j->processes[minion].eof = true;
                maybe_report(id, j, minion);
            }
        };
        callbacks.on_exit = [this, weak, id, minion](int status) {
            if (auto j = weak.lock()) {
                auto& p = j->processes[minion];
                p.exited = true;
                p.status = status;
                maybe_report(id, j, minion);
            }
        };
        auto started = proc.runner->start(spec, std::move(callbacks));
        if (!started) {
            // Salt reports a runas/cwd failure as a string reply (TRANSCRIPTS item 3).
            proc.exited = true;
            post_return(id, MinionReturn{minion, true, 1, "", "", "ERROR: " + started.error().message});
            return;
        }
        if (job->asynchronous && job->timeout.count() > 0) {
            proc.timeout_timer = std::make_unique<boost::asio::steady_timer>(m_io, job->timeout);
            proc.timeout_timer->async_wait([weak, minion](const boost::system::error_code& ec) {
                auto j = weak.lock();
                if (ec || !j) return;
                auto& p = j->processes[minion];
                if (p.exited || p.terminated) return;
                // Salt kills the command's whole tree at timeout= (no `sleep` was left behind).
                p.timed_out = true;
                p.runner->kill_group(SIGKILL);
            });
        }
    }

    void maybe_report(TransportJob id, const std::shared_ptr<Job>& job, const std::string& minion) {
        auto& p = job->processes[minion];
        // cmd.run_all returns when the program exits and its output pipe is closed; a detached
        // wrapper closes its copy of the pipe before the parent exits, so both come quickly.
        if (!p.exited || !p.eof) return;
        if (p.timeout_timer) p.timeout_timer->cancel();
        MinionReturn ret;
        ret.minion = minion;
        ret.retcode = WIFEXITED(p.status) ? WEXITSTATUS(p.status) : 128 + WTERMSIG(p.status);
        ret.stdout_text = std::move(p.output);
        while (!ret.stdout_text.empty() && ret.stdout_text.back() == '\n') ret.stdout_text.pop_back();
        if (p.terminated) {
            // saltutil.term_job / kill_job: Salt never records a return for the job.
            ret = MinionReturn{minion, false, 0, "", "", "terminated (saltutil.term_job)"};
        } else if (p.timed_out) {
            ret.retcode = 1;
            ret.stdout_text = job->command + " : Timed out after " + std::to_string(job->timeout.count()) + " seconds";
            ret.stderr_text.clear();
        }
        report(id, std::move(ret));
        auto it = m_jobs.find(id);
        if (it != m_jobs.end() && it->second->pending == 0) erase_if_reaped(id);
    }

    void post_return(TransportJob id, MinionReturn ret) {
        boost::asio::post(m_io, [this, id, ret = std::move(ret)]() mutable { report(id, std::move(ret)); });
    }

    static constexpr std::size_t k_max_output = 1u << 20;  // Salt returns are small; cap a runaway

    boost::asio::io_context& m_io;
    LocalTransportOptions m_options;
    std::map<TransportJob, std::shared_ptr<Job>> m_jobs;
    TransportJob m_next_job = 0;
    bool m_stopped = false;
};

}  // namespace

std::unique_ptr<SaltTransport> make_local_transport(boost::asio::io_context& io, LocalTransportOptions options) {
    return std::make_unique<LocalTransport>(io, std::move(options));
}

}  // namespace saltpeter
