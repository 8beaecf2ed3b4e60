#include "saltpeter/daemon.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>

#include "saltpeter/config.hpp"
#include "saltpeter/dispatcher.hpp"
#include "saltpeter/executor.hpp"
#include "saltpeter/exit_code_mapper.hpp"
#include "saltpeter/machine_hub.hpp"
#include "saltpeter/salt_transport.hpp"
#include "saltpeter/scheduler.hpp"

namespace saltpeter {

namespace {

namespace fs = std::filesystem;

// Appends each record to <logdir>/<job>.log, opening the file per record as the original does,
// so that logrotate needs no signal.
class JobLogWriter final : public RunObserver {
public:
    void set_dir(std::string dir) { m_dir = std::move(dir); }
    void on_log(const std::string& job, const LogRecord& record) override {
        if (m_dir.empty()) return;
        const std::string path = m_dir + "/" + job + ".log";
        const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd < 0) {
            if (m_failed_paths.insert(path).second) {
                spdlog::error("cannot write job log {}: {}", path, std::strerror(errno));
            }
            return;
        }
        const std::string text = format_log_record(record);
        std::size_t done = 0;
        while (done < text.size()) {
            const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                // Once per path until a record gets through again (a full disk fails every record).
                if (m_failed_paths.insert(path).second) {
                    spdlog::error("cannot write job log {}: {}", path, n < 0 ? std::strerror(errno) : "short write");
                }
                break;
            }
            done += static_cast<std::size_t>(n);
        }
        ::close(fd);
        if (done == text.size() && m_failed_paths.erase(path) > 0) spdlog::info("job log {} is writable again", path);
    }

private:
    std::string m_dir;
    std::set<std::string> m_failed_paths;
};

// Prints output as it streams, one "instance machine | line" per line (spd --echo-output; the
// quickstart). A partial last line waits for its newline or the end of the target.
class OutputEcho final : public RunObserver {
public:
    void on_output(const RunRecord& run, const TargetResult& target, std::string_view data) override {
        std::string& pending = m_pending[run.instance + " " + target.machine];
        pending.append(data);
        std::size_t start = 0;
        for (std::size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
            std::cout << run.instance << " " << target.machine << " | " << pending.substr(start, nl - start) << "\n";
        }
        pending.erase(0, start);
        std::cout.flush();
    }
    void on_target_finished(const RunRecord& run, const TargetResult& target) override {
        const std::string key = run.instance + " " + target.machine;
        auto it = m_pending.find(key);
        if (it != m_pending.end() && !it->second.empty()) std::cout << key << " | " << it->second << "\n";
        if (it != m_pending.end()) m_pending.erase(it);
        const int code = target.retcode.value_or(-1);
        std::cout << run.instance << " " << target.machine << " exit " << code << " (" << ExitCodeMapper::meaning(code)
                  << ")\n";
        std::cout.flush();
    }

private:
    std::map<std::string, std::string> m_pending;
};

// Fans every event out to the daemon's observers (log files, output echo).
class ObserverList final : public RunObserver {
public:
    void add(RunObserver* observer) { m_observers.push_back(observer); }
    void on_log(const std::string& job, const LogRecord& record) override {
        for (auto* o : m_observers) o->on_log(job, record);
    }
    void on_run_started(const RunRecord& run) override {
        for (auto* o : m_observers) o->on_run_started(run);
    }
    void on_target_started(const RunRecord& run, const TargetResult& target) override {
        for (auto* o : m_observers) o->on_target_started(run, target);
    }
    void on_output(const RunRecord& run, const TargetResult& target, std::string_view data) override {
        for (auto* o : m_observers) o->on_output(run, target, data);
    }
    void on_target_finished(const RunRecord& run, const TargetResult& target) override {
        for (auto* o : m_observers) o->on_target_finished(run, target);
    }
    void on_run_finished(const RunRecord& run) override {
        for (auto* o : m_observers) o->on_run_finished(run);
    }

private:
    std::vector<RunObserver*> m_observers;
};

// The wrapper secret: 32 random bytes in a 0600 file, created at first start (PROTOCOL.md 5.5).
Result<std::string> load_or_create_secret(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0 && errno == ENOENT) {
        fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) return Error{"cannot create wrapper secret " + path + ": " + std::strerror(errno), "wrapper_secret_file"};
        unsigned char bytes[32];
        if (getrandom(bytes, sizeof bytes, 0) != static_cast<ssize_t>(sizeof bytes)) {
            ::close(fd);
            return Error{"cannot get random bytes for the wrapper secret: " + std::string(std::strerror(errno)), ""};
        }
        const bool ok = ::write(fd, bytes, sizeof bytes) == static_cast<ssize_t>(sizeof bytes);
        ::close(fd);
        if (!ok) return Error{"cannot write wrapper secret " + path, "wrapper_secret_file"};
        spdlog::info("created wrapper secret {} (mode 0600)", path);
        return std::string(reinterpret_cast<const char*>(bytes), sizeof bytes);
    }
    if (fd < 0) return Error{"cannot read wrapper secret " + path + ": " + std::strerror(errno), "wrapper_secret_file"};
    struct stat st {};
    if (fstat(fd, &st) == 0 && (st.st_mode & 077) != 0) {
        spdlog::warn("wrapper secret {} is readable by others (mode {:o}); chmod 600 it", path, st.st_mode & 0777);
    }
    std::string secret;
    char buf[256];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) secret.append(buf, static_cast<std::size_t>(n));
    ::close(fd);
    if (secret.size() < 16) return Error{"wrapper secret " + path + " is too short (at least 16 bytes)", "wrapper_secret_file"};
    return secret;
}

std::string self_directory() {
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    return ec ? std::string(".") : exe.parent_path().string();
}

// With the local transport the wrapper is the one built or installed with spd.
std::string local_wrapper_path() {
    const fs::path dir = self_directory();
    for (const fs::path& candidate : {dir / "sp_wrapper", dir / ".." / "sp_wrapper" / "sp_wrapper"}) {
        std::error_code ec;
        if (fs::exists(candidate, ec)) return fs::weakly_canonical(candidate, ec).string();
    }
    return (dir / "sp_wrapper").string();
}

}  // namespace

class Daemon::Impl {
public:
    Impl(boost::asio::io_context& io, DaemonOptions options)
        : m_io(io),
          m_options(std::move(options)),
          m_loader(m_options.config_dir),
          m_scheduler(io, [this](const Schedule::Due& due) { fire(due.job, Trigger::schedule, due.scheduled); }) {}

    Status start() {
        auto loaded = m_loader.reload();
        if (!loaded) return loaded.error();
        report_problems(*loaded);
        m_config = loaded->config;
        const Settings& s = m_config.settings;

        std::error_code ec;
        fs::create_directories(s.logdir, ec);
        if (ec) return Error{"cannot create logdir " + s.logdir + ": " + ec.message(), "logdir"};
        m_log_writer.set_dir(s.logdir);

        const std::string secret_path = s.wrapper_secret_file.empty() ? s.logdir + "/wrapper.secret" : s.wrapper_secret_file;
        auto secret = load_or_create_secret(secret_path);
        if (!secret) return secret.error();

        auto transport = make_transport(s);
        if (!transport) return transport.error();
        m_transport = std::move(*transport);

        TrackerOptions tracker_options;
        tracker_options.startup_timeout = s.startup_timeout;
        tracker_options.timeout_grace = s.timeout_grace;
        tracker_options.kill_grace = s.kill_grace;
        m_observers.add(&m_log_writer);
        if (m_options.echo_output) m_observers.add(&m_echo);
        m_tracker = std::make_unique<RunTracker>(m_io, tracker_options, m_observers);
        m_tracker->set_on_run_finished([this](const RunRecord& run) { on_run_finished(run); });

        HubOptions hub_options;
        hub_options.bind_address = s.machines_ws_bind_addr;
        hub_options.port = s.machines_ws_port;
        hub_options.require_token = s.wrapper_auth != "compatible";
        hub_options.secret = *secret;
        hub_options.tls_cert = s.tls_cert;
        hub_options.tls_key = s.tls_key;
        m_hub = std::make_unique<MachineHub>(m_io, hub_options, *m_tracker);
        auto port = m_hub->listen();
        if (!port) return port.error();
        m_port = *port;
        m_tracker->set_hub(m_hub.get());
        spdlog::info("machines WebSocket listening on {}:{} (wrapper_auth {})", s.machines_ws_bind_addr, m_port,
                     s.wrapper_auth);

        m_context.secret = *secret;
        apply_settings();
        auto context = [this]() -> const LaunchContext& { return m_context; };
        m_wrapper_executor = make_wrapper_executor(*m_transport, *m_tracker, context);
        m_legacy_executor = make_legacy_executor(*m_transport, *m_tracker, context);
        m_dispatcher = std::make_unique<Dispatcher>(*m_transport, *m_tracker, *m_wrapper_executor, *m_legacy_executor,
                                                    context);
        if (m_options.schedule) schedule_jobs();
        spdlog::info("spd started: {} job(s) from {}, transport {}", m_config.jobs.size(), m_options.config_dir,
                     m_transport->name());
        return Ok{};
    }

    // The --transport choice with its settings (PROTOCOL.md 2; docs/operations.md).
    Result<std::unique_ptr<SaltTransport>> make_transport(const Settings& s) {
        if (m_options.transport_factory) {
            auto transport = m_options.transport_factory(m_io, s);
            if (!transport) return Error{"the embedding program's transport factory returned no transport", "transport"};
            return transport;
        }
        if (m_options.transport == "local") {
            LocalTransportOptions local;
            local.minions = s.local_minions;
            return make_local_transport(m_io, local);
        }
        if (m_options.transport == "salt-cli") {
            SaltCliOptions cli;
            cli.salt_binary = s.salt_binary;
            cli.salt_run_binary = s.salt_run_binary;
            cli.config_dir = s.salt_config_dir;
            return make_salt_cli_transport(m_io, cli);
        }
        if (m_options.transport == "salt-api") {
            if (s.salt_api_url.empty()) return Error{"--transport salt-api needs salt_api_url in saltpeter_config", "salt_api_url"};
            SaltApiOptions api;
            api.url = s.salt_api_url;
            api.username = s.salt_api_username;
            api.eauth = s.salt_api_eauth;
            api.ca_file = s.salt_api_ca_file;
            if (!s.salt_api_password_file.empty()) {
                // The password stays in a file (never on a command line or in the YAML).
                std::ifstream in(s.salt_api_password_file);
                if (!in) {
                    return Error{"cannot read salt_api_password_file " + s.salt_api_password_file + ": " +
                                     std::strerror(errno),
                                 "salt_api_password_file"};
                }
                std::getline(in, api.password);
            }
            return make_salt_api_transport(m_io, api);
        }
        return Error{"unknown transport '" + m_options.transport + "' (local, salt-cli, salt-api)", "transport"};
    }

    void reload() {
        auto loaded = m_loader.reload();
        if (!loaded) {
            spdlog::error("reload failed, keeping the current configuration: {}", loaded.error().message);
            return;
        }
        report_problems(*loaded);
        const Settings before = m_config.settings;
        m_config = loaded->config;
        if (before.machines_ws_port != m_config.settings.machines_ws_port ||
            before.machines_ws_bind_addr != m_config.settings.machines_ws_bind_addr ||
            before.logdir != m_config.settings.logdir || before.wrapper_auth != m_config.settings.wrapper_auth) {
            spdlog::warn("machines_ws_*, logdir and wrapper_auth changes take effect after a restart");
            m_config.settings.machines_ws_port = before.machines_ws_port;
            m_config.settings.machines_ws_bind_addr = before.machines_ws_bind_addr;
            m_config.settings.logdir = before.logdir;
            m_config.settings.wrapper_auth = before.wrapper_auth;
        }
        apply_settings();
        if (m_options.schedule) schedule_jobs();
        spdlog::info("configuration reloaded: {} job(s)", m_config.jobs.size());
    }

    void stop() {
        if (m_stopped) return;
        m_stopped = true;
        m_scheduler.stop();
        if (m_transport) m_transport->stop();
        if (m_hub) m_hub->stop();
        spdlog::info("spd stopped");
    }

    Result<std::string> run_now(const std::string& job) {
        if (m_config.find(job) == nullptr) return Error{"unknown job '" + job + "'", "job"};
        return fire(job, Trigger::run_now, std::nullopt);
    }

    bool kill_job(const std::string& job, const std::optional<std::string>& machine) {
        bool any = false;
        for (const RunRecord* run : m_tracker->running(job)) {
            const Job* cfg = m_config.find(job);
            if (cfg == nullptr) {
                any = m_tracker->kill(run->instance, machine) || any;
                continue;
            }
            any = m_dispatcher->kill(*cfg, run->instance, machine) || any;
        }
        return any;
    }

    std::uint16_t port() const noexcept { return m_port; }
    const RunTracker& tracker() const { return *m_tracker; }

private:
    void report_problems(const LoadResult& loaded) {
        for (const auto& p : loaded.problems) {
            if (p.is_error()) {
                spdlog::error("config: {}", p.to_string());
            } else {
                spdlog::warn("config: {}", p.to_string());
            }
        }
    }

    void apply_settings() {
        const Settings& s = m_config.settings;
        std::string host = s.default_saltpeter_server_host;
        if (host.empty()) {
            const bool wildcard = s.machines_ws_bind_addr == "0.0.0.0" || s.machines_ws_bind_addr == "::";
            host = wildcard ? host_name() : s.machines_ws_bind_addr;
        }
        m_context.websocket_scheme = s.tls_cert.empty() ? "ws" : "wss";
        m_context.machines_port = m_port;
        m_context.websocket_url = m_context.websocket_scheme + "://" + host + ":" + std::to_string(m_port);
        m_context.wrapper_path = s.default_wrapper_path.empty()
                                     ? (m_options.transport == "local" ? local_wrapper_path() : "/usr/local/bin/sp_wrapper")
                                     : s.default_wrapper_path;
        m_context.wrapper_loglevel = s.default_wrapper_loglevel;
        m_context.wrapper_logdir = s.default_wrapper_logdir;
        m_context.maintenance = m_config.maintenance;
    }

    void schedule_jobs() {
        std::vector<Schedule::Entry> entries;
        for (const Job& job : m_config.jobs) entries.push_back({job.name, job.schedule, job.zone});
        m_scheduler.set_jobs(std::move(entries));
        for (const Job& job : m_config.jobs) m_tracker->status_of(job.name).next_run = m_scheduler.next_run(job.name);
    }

    std::string new_instance(const std::string& job) {
        const auto secs = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
        std::string id = job + "_" + std::to_string(secs);
        // Two runs in one second (run-now next to a firing) still get distinct ids.
        for (int n = 2; m_tracker->find(id) != nullptr; ++n) id = job + "_" + std::to_string(secs) + "_" + std::to_string(n);
        return id;
    }

    Result<std::string> fire(const std::string& name, Trigger trigger, std::optional<SysSeconds> scheduled) {
        if (m_stopped) return Error{"spd is stopping", ""};
        const Job* job = m_config.find(name);
        if (job == nullptr) return Error{"unknown job '" + name + "'", "job"};
        m_tracker->status_of(name).next_run = m_scheduler.next_run(name);
        const auto now = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
        if (m_config.maintenance.global_active(now)) {
            LogRecord record;
            record.type = LogRecordType::maintenance;
            record.instance = name;
            record.out = "Global maintenance mode active";
            m_tracker->log(name, record);
            spdlog::info("{}: not started, global maintenance is active", name);
            return Error{"global maintenance is active", ""};
        }
        const auto running = m_tracker->running(name);
        if (!running.empty()) {
            if (job->concurrency == Concurrency::forbid) {
                LogRecord record;
                record.type = LogRecordType::overlap;
                record.instance = running.front()->instance;
                m_tracker->log(name, record);
                m_tracker->status_of(name).overlap = true;
                spdlog::warn("{}: {} is still running; this firing is skipped (concurrency: forbid)", name,
                             running.front()->instance);
                return Error{"job '" + name + "' is still running (" + running.front()->instance + ")", ""};
            }
            if (job->concurrency == Concurrency::replace) {
                for (const RunRecord* run : running) {
                    spdlog::info("{}: replacing {} (concurrency: replace)", name, run->instance);
                    m_dispatcher->kill(*job, run->instance, std::nullopt);
                }
            }
        }
        RunSpec spec;
        spec.instance = new_instance(name);
        spec.job = name;
        spec.group = job->group;
        spec.trigger = trigger;
        spec.scheduled = scheduled;
        spec.timeout = job->timeout;
        spec.heartbeat_timeout = job->heartbeat_timeout.value_or(m_config.settings.heartbeat_timeout);
        m_dispatcher->start(*job, spec);
        return spec.instance;
    }

    void on_run_finished(const RunRecord& run) {
        m_tracker->status_of(run.job).next_run = m_scheduler.next_run(run.job);
        if (m_on_finished) m_on_finished(run);
    }

public:
    std::function<void(const RunRecord&)> m_on_finished;

private:
    boost::asio::io_context& m_io;
    DaemonOptions m_options;
    ConfigLoader m_loader;
    Config m_config;
    JobLogWriter m_log_writer;
    OutputEcho m_echo;
    ObserverList m_observers;
    Scheduler m_scheduler;
    std::unique_ptr<SaltTransport> m_transport;
    std::unique_ptr<RunTracker> m_tracker;
    std::unique_ptr<MachineHub> m_hub;
    std::unique_ptr<Executor> m_wrapper_executor;
    std::unique_ptr<Executor> m_legacy_executor;
    std::unique_ptr<Dispatcher> m_dispatcher;
    LaunchContext m_context;
    std::uint16_t m_port = 0;
    bool m_stopped = false;
};

Daemon::Daemon(boost::asio::io_context& io, DaemonOptions options) : m_impl(std::make_unique<Impl>(io, std::move(options))) {}
Daemon::~Daemon() { m_impl->stop(); }
Status Daemon::start() { return m_impl->start(); }
void Daemon::reload() { m_impl->reload(); }
void Daemon::stop() { m_impl->stop(); }
Result<std::string> Daemon::run_now(const std::string& job) { return m_impl->run_now(job); }
bool Daemon::kill_job(const std::string& job, const std::optional<std::string>& machine) {
    return m_impl->kill_job(job, machine);
}
std::uint16_t Daemon::machines_port() const noexcept { return m_impl->port(); }
const RunTracker& Daemon::tracker() const { return m_impl->tracker(); }
void Daemon::set_on_run_finished(std::function<void(const RunRecord&)> callback) {
    m_impl->m_on_finished = std::move(callback);
}

}  // namespace saltpeter
