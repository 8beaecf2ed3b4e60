// The salt CLI transport: every operation is one `salt` child process run with an argv array
// through ProcessRunner, parsed by salt_cli_output. Never `--static` (it hangs on -L with an
// unknown id and drops stopped minions, salt/TRANSCRIPTS.md item 4); `--out-indent=-1` gives one
// JSON line per minion. stdout and stderr share ProcessRunner's pipe, which is fine: stderr only
// carries text lines ("ERROR: ..."), and the parser keeps those apart from the JSON lines.
#include <sys/wait.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <spdlog/spdlog.h>

#include "saltpeter/exit_code_mapper.hpp"
#include "salt/salt_cli_output.hpp"
#include "core/shell_words.hpp"
#include "host/process_runner.hpp"
#include "saltpeter/salt_transport.hpp"

extern char** environ;

namespace saltpeter {

namespace {

// Salt's -t bounds the wait for returns, but the CLI then spends up to gather_job_timeout
// (default 10 s, TRANSCRIPTS 4.3) asking about stragglers, plus ~1 s of start-up.
constexpr std::chrono::seconds k_deadline_margin{15};
constexpr std::size_t k_max_output = 4u << 20;  // returns of wrapper launches are small
// Following an --async job: salt-run costs 1.1-1.9 s per call (TRANSCRIPTS item 1), so the
// list_job polls start at 1 s apart and grow to 10 s for long jobs.
constexpr std::chrono::milliseconds k_follow_first{1000};
constexpr std::chrono::milliseconds k_follow_max{10000};
constexpr std::chrono::seconds k_salt_run_deadline{30};

std::string target_flag(TargetType type) {
    switch (type) {
        case TargetType::glob: return "";
        case TargetType::pcre: return "-E";
        case TargetType::list: return "-L";
        case TargetType::grain: return "-G";
        case TargetType::grain_pcre: return "-P";
        case TargetType::pillar: return "-I";
        case TargetType::pillar_pcre: return "-J";
        case TargetType::nodegroup: return "-N";
        case TargetType::compound: return "-C";
        case TargetType::ipcidr: return "-S";
        case TargetType::range: return "-R";
    }
    return "";
}

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
    std::string out;
    for (const auto& p : parts) {
        if (!out.empty()) out += sep;
        out += p;
    }
    return out;
}

std::vector<std::string> current_environment() {
    std::vector<std::string> env;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) env.emplace_back(*e);
    return env;
}

// The result of one salt child: its merged output and exit code, or why it produced none.
struct CallOutcome {
    std::string output;
    int exit_code = -1;
    std::string failure;  ///< non-empty: the call did not complete (not started, killed at deadline)
};

class SaltCliTransport final : public SaltTransport {
public:
    SaltCliTransport(boost::asio::io_context& io, SaltCliOptions options) : m_io(io), m_options(std::move(options)) {}

    // The runners go away with the transport and cannot reap their children any more, so the
    // killed ones are reaped here (SIGKILL makes that wait short).
    ~SaltCliTransport() override {
        kill_all();
        for (auto& [id, c] : m_calls) {
            if (!c->exited && c->pid > 0) waitpid(c->pid, nullptr, 0);
        }
    }

    std::string name() const override { return "salt-cli"; }

    void ping(const SaltTarget& target, std::chrono::seconds timeout,
              std::function<void(Result<PingReply>)> done) override {
        std::vector<std::string> argv = base_argv(timeout);
        const std::string flag = target_flag(target.type);
        if (!flag.empty()) argv.push_back(flag);
        argv.push_back(target.expression);
        argv.emplace_back("test.ping");
        const std::string command = describe_command(argv);
        run_call(argv, timeout + k_deadline_margin, [done = std::move(done), command](CallOutcome outcome) {
            if (!outcome.failure.empty()) {
                done(Error{command + ": " + outcome.failure, ""});
                return;
            }
            done(detail::parse_ping_output(outcome.output, outcome.exit_code, command));
        });
    }

    TransportJob run_all(const RunAllRequest& request, std::function<void(MinionReturn)> on_return,
                         std::function<void()> done) override {
        const TransportJob id = ++m_next_job;
        auto job = std::make_shared<Job>();
        job->minions = request.minions;
        m_jobs[id] = job;
        if (request.minions.empty() || request.argv.empty()) {
            std::vector<MinionReturn> rets;
            for (const auto& m : request.minions) rets.push_back(MinionReturn{m, true, ExitCodeMapper::code(Outcome::not_found), "", "nothing to run", ""});
            post_results(id, std::move(rets), std::move(on_return), std::move(done));
            return id;
        }
        std::vector<std::string> argv = base_argv(request.timeout);
        // --show-jid prints "jid: <jid>" before the returns (TRANSCRIPTS item 2): terminate needs it.
        argv.emplace_back("--show-jid");
        argv.emplace_back("-L");
        argv.push_back(join(request.minions, ","));
        argv.emplace_back("cmd.run_all");
        argv.push_back(detail::shell_command_line(request.argv));
        argv.push_back("env=" + env_json(request));
        if (!request.cwd.empty()) argv.push_back("cwd=" + request.cwd);
        if (!request.runas.empty()) argv.push_back("runas=" + request.runas);
        const std::string command = describe_command(argv);
        std::weak_ptr<Job> weak_job = job;
        auto on_output = [this, id, weak_job](const std::string& so_far) {
            auto j = weak_job.lock();
            if (!j || j->jid || so_far.size() > 65536) return;
            // Only complete lines: a jid cut in the middle of a read would name another job.
            const auto complete = so_far.rfind('\n');
            if (complete == std::string::npos) return;
            auto lines = detail::split_salt_cli_output(std::string_view(so_far).substr(0, complete + 1));
            if (lines.jid) {
                j->jid = lines.jid;
                for (auto& [minions, grace] : j->pending_terminations) send_termination(id, *j->jid, minions, grace);
                j->pending_terminations.clear();
            }
        };
        run_call(
            argv, request.timeout + k_deadline_margin,
            [this, id, command, minions = request.minions, on_return = std::move(on_return),
             done = std::move(done)](CallOutcome outcome) mutable {
                post_results(id, collect_returns(minions, outcome, command), std::move(on_return), std::move(done));
            },
            std::move(on_output));
        return id;
    }


    // Legacy mode: one `salt --async -L <all minions> cmd.run_all` (the CLI costs ~1 s per call,
    // never one per target), then `salt-run jobs.list_job <jid>` until every minion returned.
    TransportJob run_async(const CommandRequest& request, std::function<void(MinionReturn)> on_return,
                           std::function<void()> done) override {
        const TransportJob id = ++m_next_job;
        auto job = std::make_shared<Job>();
        job->minions = request.minions;
        job->on_return = std::move(on_return);
        job->done = std::move(done);
        job->asynchronous = true;
        for (const auto& m : request.minions) job->pending.insert(m);
        job->follow_for = request.follow_for;
        m_jobs[id] = job;
        if (job->pending.empty()) {
            finish_async(id, job);
            return id;
        }
        if (job->follow_for.count() > 0) {
            // At the limit every minion still pending is given up at once, even with a poll in
            // flight: salt-run may take seconds, and spd's own timeout verdict comes soon after.
            job->give_up_timer = std::make_unique<boost::asio::steady_timer>(m_io, job->follow_for);
            std::weak_ptr<Job> weak = job;
            job->give_up_timer->async_wait([this, id, weak, alive = std::weak_ptr<bool>(m_alive)](
                                               const boost::system::error_code& ec) {
                if (ec || alive.expired() || m_stopped) return;
                auto j = weak.lock();
                if (!j || j->pending.empty()) return;
                std::string why = "no return within " + std::to_string(j->follow_for.count()) + " s";
                if (j->jid) why += " (jid " + *j->jid + ")";
                if (!j->last_error.empty()) why += "; last error: " + j->last_error;
                give_up(id, j, why);
            });
        }
        std::vector<std::string> argv{m_options.salt_binary};
        if (!m_options.config_dir.empty()) {
            argv.emplace_back("-c");
            argv.push_back(m_options.config_dir);
        }
        argv.emplace_back("--async");
        argv.emplace_back("-L");
        argv.push_back(join(request.minions, ","));
        argv.emplace_back("cmd.run_all");
        argv.push_back(request.command);
        nlohmann::json env = nlohmann::json::object();
        for (const auto& [k, v] : request.env) env[k] = v;
        argv.push_back("env=" + env.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
        if (!request.cwd.empty()) argv.push_back("cwd=" + request.cwd);
        if (!request.runas.empty()) argv.push_back("runas=" + request.runas);
        if (request.timeout.count() > 0) argv.push_back("timeout=" + std::to_string(request.timeout.count()));
        const std::string command = describe_command(argv);
        std::weak_ptr<Job> weak = job;
        run_call(argv, k_deadline_margin, [this, id, weak, command](CallOutcome outcome) {
            auto j = weak.lock();
            if (!j || m_stopped) return;
            Result<detail::AsyncPublish> publish =
                outcome.failure.empty() ? detail::parse_async_output(outcome.output, outcome.exit_code, command)
                                        : Result<detail::AsyncPublish>(Error{command + ": " + outcome.failure, ""});
            if (!publish) return give_up(id, j, publish.error().message);
            if (publish->jid.empty()) {
                return give_up(id, j, command + ": No minions matched the target. No command was sent, no jid was assigned.");
            }
            j->jid = publish->jid;
            spdlog::info("salt-cli: job {} published to {} minion(s)", *j->jid, j->minions.size());
            for (auto& [minions, grace] : j->pending_terminations) send_termination(id, *j->jid, minions, grace);
            j->pending_terminations.clear();
            schedule_follow(id, j, k_follow_first);
        });
        return id;
    }

    void terminate(TransportJob id, const std::vector<std::string>& minions, std::chrono::seconds grace) override {
        auto it = m_jobs.find(id);
        if (it == m_jobs.end() || minions.empty() || m_stopped) return;
        auto& job = *it->second;
        // Before the jid line has arrived the job cannot be named yet; it is sent once it does.
        if (job.jid) send_termination(id, *job.jid, minions, grace);
        else job.pending_terminations.emplace_back(minions, grace);
    }

    void stop() override {
        m_stopped = true;
        kill_all();
    }

private:
    struct Job {
        std::vector<std::string> minions;
        std::optional<std::string> jid;
        std::vector<std::pair<std::vector<std::string>, std::chrono::seconds>> pending_terminations;
        // run_async only: followed through salt-run jobs.list_job.
        bool asynchronous = false;
        std::function<void(MinionReturn)> on_return;
        std::function<void()> done;
        std::set<std::string> pending;     ///< minions not reported yet
        std::set<std::string> terminated;  ///< kill_job sent: they will never return
        std::chrono::seconds follow_for{0};
        std::unique_ptr<boost::asio::steady_timer> follow_timer;
        std::unique_ptr<boost::asio::steady_timer> give_up_timer;
        std::string last_error;            ///< of the latest failed list_job, for the give-up text
    };
    struct Call {
        std::unique_ptr<ProcessRunner> runner;
        std::unique_ptr<boost::asio::steady_timer> deadline;
        std::string output;
        bool exited = false;
        bool eof = false;
        bool timed_out = false;
        int status = 0;
        int pid = 0;
        std::function<void(CallOutcome)> finish;
        std::function<void(const std::string&)> on_output;
    };

    std::vector<std::string> base_argv(std::chrono::seconds timeout) const {
        std::vector<std::string> argv{m_options.salt_binary};
        if (!m_options.config_dir.empty()) {
            argv.emplace_back("-c");
            argv.push_back(m_options.config_dir);
        }
        argv.emplace_back("--out=json");
        argv.emplace_back("--out-indent=-1");
        argv.emplace_back("-t");
        argv.push_back(std::to_string(std::max<long long>(1, timeout.count())));
        return argv;
    }

    // For messages only: the argv as one line, long arguments (env JSON) shortened.
    static std::string describe_command(const std::vector<std::string>& argv) {
        std::string out;
        for (const auto& a : argv) {
            if (!out.empty()) out += ' ';
            out += a.size() > 80 ? a.substr(0, 77) + "..." : a;
        }
        return out;
    }

    // One env for all minions: per-minion tokens travel as SP_TOKENS={minion: token}, which the
    // wrapper resolves with its machine id; SP_MACHINE_ID is left out because the wrapper falls
    // back to the minion id (/etc/salt/minion_id). Other per-minion variables cannot be expressed
    // in one call and are only passed when every minion has the same value.
    static std::string env_json(const RunAllRequest& request) {
        nlohmann::json env = nlohmann::json::object();
        for (const auto& [k, v] : request.env) env[k] = v;
        nlohmann::json tokens = nlohmann::json::object();
        std::map<std::string, std::set<std::string>> shared;
        std::map<std::string, std::size_t> counts;
        for (const auto& [minion, vars] : request.minion_env) {
            for (const auto& [k, v] : vars) {
                if (k == "SP_TOKEN") tokens[minion] = v;
                else if (k != "SP_MACHINE_ID") {
                    shared[k].insert(v);
                    ++counts[k];
                }
            }
        }
        for (const auto& [k, values] : shared) {
            if (values.size() == 1 && counts[k] == request.minions.size()) env[k] = *values.begin();
        }
        if (!tokens.empty()) env["SP_TOKENS"] = tokens.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        return env.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    }

    static std::vector<MinionReturn> collect_returns(const std::vector<std::string>& minions, const CallOutcome& outcome,
                                                     const std::string& command) {
        std::map<std::string, MinionReturn> by_minion;
        std::string call_error;
        if (!outcome.failure.empty()) {
            call_error = command + ": " + outcome.failure;
        } else {
            const auto lines = detail::split_salt_cli_output(outcome.output);
            for (auto& ret : detail::parse_run_all_output(lines)) by_minion.emplace(ret.minion, std::move(ret));
            // Exit 1 is also Salt's answer when a minion returned non-zero, but then there are
            // returns; a non-zero exit without any is the CLI failing (master down, bad arguments).
            if (by_minion.empty() && outcome.exit_code != 0) {
                call_error = command + " failed (exit code " + std::to_string(outcome.exit_code) +
                             "): " + detail::describe_text(lines);
            } else if (by_minion.empty() && lines.no_minions_matched) {
                call_error = command + ": " + detail::describe_text(lines);
            }
        }
        std::vector<MinionReturn> out;
        for (const auto& m : minions) {
            auto it = by_minion.find(m);
            if (it != by_minion.end()) {
                out.push_back(std::move(it->second));
                continue;
            }
            MinionReturn missing;
            missing.minion = m;
            missing.returned = false;
            missing.error = call_error.empty() ? "Minion did not return" : call_error;
            out.push_back(std::move(missing));
        }
        return out;
    }

    void post_results(TransportJob id, std::vector<MinionReturn> rets, std::function<void(MinionReturn)> on_return,
                      std::function<void()> done) {
        boost::asio::post(m_io, [this, id, rets = std::move(rets), on_return = std::move(on_return),
                                 done = std::move(done), alive = std::weak_ptr<bool>(m_alive)]() mutable {
            if (alive.expired() || m_stopped) return;
            m_jobs.erase(id);
            for (auto& r : rets) {
                if (m_stopped) return;
                if (on_return) on_return(std::move(r));
            }
            if (!m_stopped && done) done();
        });
    }


    void schedule_follow(TransportJob id, const std::shared_ptr<Job>& job, std::chrono::milliseconds interval) {
        if (m_stopped) return;
        if (!job->follow_timer) job->follow_timer = std::make_unique<boost::asio::steady_timer>(m_io);
        job->follow_timer->expires_after(interval);
        std::weak_ptr<Job> weak = job;
        job->follow_timer->async_wait([this, id, weak, interval, alive = std::weak_ptr<bool>(m_alive)](
                                          const boost::system::error_code& ec) {
            if (ec || alive.expired() || m_stopped) return;
            if (auto j = weak.lock()) poll_list_job(id, j, interval);
        });
    }

    void poll_list_job(TransportJob id, const std::shared_ptr<Job>& job, std::chrono::milliseconds interval) {
        std::vector<std::string> argv{m_options.salt_run_binary};
        if (!m_options.config_dir.empty()) {
            argv.emplace_back("-c");
            argv.push_back(m_options.config_dir);
        }
        argv.emplace_back("--out=json");
        argv.emplace_back("jobs.list_job");
        argv.push_back(*job->jid);
        const std::string command = describe_command(argv);
        std::weak_ptr<Job> weak = job;
        run_call(argv, k_salt_run_deadline, [this, id, weak, interval, command](CallOutcome outcome) {
            auto j = weak.lock();
            if (!j || m_stopped || j->pending.empty()) return;
            if (!outcome.failure.empty()) {
                j->last_error = command + ": " + outcome.failure;
            } else if (outcome.exit_code != 0) {
                j->last_error = command + " failed (exit code " + std::to_string(outcome.exit_code) +
                                "): " + detail::describe_text(detail::split_salt_cli_output(outcome.output));
            } else if (auto listed = detail::parse_list_job_output(outcome.output, command)) {
                j->last_error = listed->error.empty() ? "" : command + ": " + listed->error;
                for (auto& ret : listed->returns) {
                    if (j->pending.count(ret.minion) != 0) report_async(id, j, std::move(ret));
                    if (j->pending.empty()) return;
                }
            } else {
                j->last_error = listed.error().message;
            }
            // A failed poll is retried: the master may be restarting while the job keeps running.
            schedule_follow(id, j, std::min(k_follow_max, std::chrono::milliseconds(interval.count() * 3 / 2)));
        });
    }

    void report_async(TransportJob id, const std::shared_ptr<Job>& job, MinionReturn ret) {
        if (job->pending.erase(ret.minion) == 0) return;
        if (job->on_return) job->on_return(std::move(ret));
        if (job->pending.empty()) finish_async(id, job);
    }

    // Every minion still pending is reported as not returned, with `why`.
    void give_up(TransportJob id, const std::shared_ptr<Job>& job, const std::string& why) {
        const std::vector<std::string> left(job->pending.begin(), job->pending.end());
        for (const auto& m : left) {
            MinionReturn ret;
            ret.minion = m;
            ret.returned = false;
            ret.error = why;
            report_async(id, job, std::move(ret));
        }
        if (left.empty()) finish_async(id, job);
    }

    void finish_async(TransportJob id, const std::shared_ptr<Job>& job) {
        if (job->follow_timer) job->follow_timer->cancel();
        if (job->give_up_timer) job->give_up_timer->cancel();
        auto done = std::move(job->done);
        job->done = nullptr;
        m_jobs.erase(id);
        if (!done) return;
        boost::asio::post(m_io, [this, done = std::move(done), alive = std::weak_ptr<bool>(m_alive)] {
            if (!alive.expired() && !m_stopped) done();
        });
    }

    // saltutil.term_job now, saltutil.kill_job after `grace`. A terminated job never returns
    // (TRANSCRIPTS item 5): run_all reports the minions as not returned on its own; a run_async
    // job reports them once kill_job has been answered (its last chance to have returned first).
    void send_termination(TransportJob id, const std::string& jid, const std::vector<std::string>& minions,
                          std::chrono::seconds grace) {
        auto signal_job = [this, jid, minions](const char* function, std::function<void(CallOutcome)> after) {
            std::vector<std::string> argv = base_argv(std::chrono::seconds(10));
            argv.emplace_back("-L");
            argv.push_back(join(minions, ","));
            argv.emplace_back(function);
            argv.push_back(jid);
            run_call(argv, std::chrono::seconds(10) + k_deadline_margin, std::move(after));
        };
        spdlog::info("salt-cli: saltutil.term_job {} on {}", jid, join(minions, ","));
        signal_job("saltutil.term_job", [](CallOutcome) {});
        auto timer = std::make_shared<boost::asio::steady_timer>(m_io, grace);
        timer->async_wait([this, id, jid, minions, timer, signal_job, alive = std::weak_ptr<bool>(m_alive)](
                              const boost::system::error_code& ec) {
            if (ec || alive.expired() || m_stopped) return;
            auto it = m_jobs.find(id);
            if (it == m_jobs.end()) return;  // everything returned meanwhile
            signal_job("saltutil.kill_job", [this, id, jid, minions, alive](CallOutcome) {
                if (alive.expired() || m_stopped) return;
                auto j = m_jobs.find(id);
                if (j == m_jobs.end() || !j->second->asynchronous) return;
                auto job = j->second;
                for (const auto& m : minions) {
                    if (job->pending.count(m) == 0) continue;
                    MinionReturn ret;
                    ret.minion = m;
                    ret.returned = false;
                    ret.error = "terminated (saltutil.term_job, saltutil.kill_job " + jid + ")";
                    report_async(id, job, std::move(ret));
                    if (m_jobs.count(id) == 0) return;
                }
            });
        });
    }

    // Runs one child with a deadline; `finish` runs once on the io thread after the child is
    // reaped and its output is drained (or it could not start, or it was killed at the deadline).
    void run_call(const std::vector<std::string>& argv, std::chrono::seconds deadline,
                  std::function<void(CallOutcome)> finish, std::function<void(const std::string&)> on_output = {}) {
        if (m_stopped) return;
        const std::uint64_t call_id = ++m_next_call;
        auto call = std::make_shared<Call>();
        call->finish = std::move(finish);
        call->on_output = std::move(on_output);
        call->runner = make_process_runner(m_io);
        std::weak_ptr<bool> alive = m_alive;
        ProcessCallbacks callbacks;
        callbacks.on_output = [this, alive, call_id](std::string_view bytes) {
            if (alive.expired()) return;
            auto c = find_call(call_id);
            if (!c) return;
            if (c->output.size() < k_max_output) c->output.append(bytes.substr(0, k_max_output - c->output.size()));
            if (c->on_output) c->on_output(c->output);
        };
        callbacks.on_output_end = [this, alive, call_id] {
            if (alive.expired()) return;
            if (auto c = find_call(call_id)) {
                c->eof = true;
                maybe_finish(call_id);
            }
        };
        callbacks.on_exit = [this, alive, call_id](int status) {
            if (alive.expired()) return;
            if (auto c = find_call(call_id)) {
                c->exited = true;
                c->status = status;
                maybe_finish(call_id);
            }
        };
        ProcessSpec spec;
        spec.argv = argv;
        spec.env = current_environment();
        auto started = call->runner->start(spec, std::move(callbacks));
        if (!started) {
            CallOutcome outcome;
            outcome.failure = "cannot run: " + started.error().message;
            boost::asio::post(m_io, [this, f = std::move(call->finish), outcome = std::move(outcome),
                                     alive]() mutable {
                if (!alive.expired() && !m_stopped) f(std::move(outcome));
            });
            return;
        }
        call->pid = *started;
        call->deadline = std::make_unique<boost::asio::steady_timer>(m_io, deadline);
        call->deadline->async_wait([this, alive, call_id](const boost::system::error_code& ec) {
            if (ec || alive.expired()) return;
            auto c = find_call(call_id);
            if (!c || c->exited) return;
            // A hung CLI (or a grandchild keeping the pipe open) must not hold the job forever.
            c->timed_out = true;
            c->runner->kill_group(SIGKILL);
            c->runner->close_output();
            c->eof = true;
            maybe_finish(call_id);
        });
        m_calls[call_id] = call;
    }

    std::shared_ptr<Call> find_call(std::uint64_t id) {
        auto it = m_calls.find(id);
        return it == m_calls.end() ? nullptr : it->second;
    }

    void maybe_finish(std::uint64_t call_id) {
        auto c = find_call(call_id);
        if (!c || !c->exited || !c->eof) return;
        m_calls.erase(call_id);
        if (c->deadline) c->deadline->cancel();
        CallOutcome outcome;
        outcome.output = std::move(c->output);
        if (c->timed_out) {
            outcome.failure = "no answer within the deadline, killed; output: " +
                              detail::describe_text(detail::split_salt_cli_output(outcome.output));
        } else if (WIFEXITED(c->status)) {
            outcome.exit_code = WEXITSTATUS(c->status);
        } else {
            outcome.failure = "killed by signal " + std::to_string(WTERMSIG(c->status));
        }
        if (!m_stopped && c->finish) c->finish(std::move(outcome));
        // The runner is released on the io thread after its own handlers have returned.
        boost::asio::post(m_io, [c] {});
    }

    // SIGKILL to every child's group; the runners stay until reaped so that nothing is left a
    // zombie, but no callback reaches the caller after stop().
    void kill_all() {
        for (auto& [id, c] : m_calls) {
            c->finish = nullptr;
            c->on_output = nullptr;
            if (c->deadline) c->deadline->cancel();
            if (!c->exited) c->runner->kill_group(SIGKILL);
            // A grandchild may still hold the pipe; only the reaping is waited for.
            c->runner->close_output();
            c->eof = true;
        }
    }

    boost::asio::io_context& m_io;
    SaltCliOptions m_options;
    std::map<TransportJob, std::shared_ptr<Job>> m_jobs;
    std::map<std::uint64_t, std::shared_ptr<Call>> m_calls;
    TransportJob m_next_job = 0;
    std::uint64_t m_next_call = 0;
    bool m_stopped = false;
    // Handlers outliving the transport check this before touching it.
    std::shared_ptr<bool> m_alive = std::make_shared<bool>(true);
};

}  // namespace

std::unique_ptr<SaltTransport> make_salt_cli_transport(boost::asio::io_context& io, SaltCliOptions options) {
    return std::make_unique<SaltCliTransport>(io, std::move(options));
}

}  // namespace saltpeter
