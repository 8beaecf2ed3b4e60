#include "saltpeter/spd/daemon.hpp"

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

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <list>

#include "api/api_server.hpp"
#include "runs/observer_list.hpp"
#include "spd/api_backend.hpp"
#include "saltpeter/core/config.hpp"
#include "host/config_watcher.hpp"
#include "core/dispatch_policy.hpp"
#include "runs/dispatcher.hpp"
#include "saltpeter/runs/executor.hpp"
#include "saltpeter/core/exit_code_mapper.hpp"
#include "runs/fire_time_store.hpp"
#include "runs/machine_hub.hpp"
#include "runs/run_tracker.hpp"
#include "api/metrics.hpp"
#include "outlets/notifier.hpp"
#include "saltpeter/salt/salt_transport.hpp"
#include "saltpeter/runs/scheduler.hpp"
#include "outlets/search_sink.hpp"

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

// Keeps the scheduler decisions that did not start a run (overlap, maintenance) in the store, so
// that history shows why a fire time has no run. Misfires come through the FireTimeStore.
class DecisionRecorder final : public RunObserver {
public:
    void set_store(RunStore* store) { m_store = store; }
    void on_log(const std::string& job, const LogRecord& record) override {
        if (m_store == nullptr) return;
        if (record.type != LogRecordType::overlap && record.type != LogRecordType::maintenance) return;
        if (record.type == LogRecordType::maintenance && !record.machine.empty()) return;  // one target only
        SchedulerDecision d;
        d.job = job;
        d.kind = record.type == LogRecordType::overlap ? DecisionKind::skipped_overlap : DecisionKind::skipped_maintenance;
        d.at = record.time;
        d.detail = record.out.empty() ? record.instance + " still running" : record.out;
        m_store->record_decision(d);
    }

private:
    RunStore* m_store = nullptr;
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
    Impl(Daemon& owner, boost::asio::io_context& io, DaemonOptions options)
        : m_owner(owner),
          m_io(io),
          m_options(std::move(options)),
          m_loader(m_options.config_dir),
          m_scheduler(io, [this](const Schedule::Due& due) { on_due(due); }) {}

    Status start() {
        auto loaded = m_loader.reload();
        if (!loaded) return loaded.error();
        report_problems(*loaded);
        m_config = loaded->config;
        m_config_serial = unix_now();
        const Settings& s = m_config.settings;

        std::error_code ec;
        fs::create_directories(s.logdir, ec);
        if (ec) return Error{"cannot create logdir " + s.logdir + ": " + ec.message(), "logdir"};
        m_log_writer.set_dir(s.logdir);

        // The store comes before anything that could start a run: without it spd refuses to run
        // rather than lose history (a corrupt or unwritable state_db is a start-up error).
        RunStoreOptions store_options;
        store_options.history_max_runs = s.history_max_runs;
        store_options.history_max_days = s.history_max_days;
        store_options.output_max_bytes = s.output_max_bytes;
        if (m_options.memory_store) {
            m_store = make_memory_run_store(m_io, store_options);
        } else {
            const std::string db_path = s.state_db.empty() ? s.logdir + "/state.db" : s.state_db;
            auto store = make_sqlite_run_store(m_io, db_path, store_options);
            if (!store) return store.error();
            m_store = std::move(*store);
            spdlog::info("state database {}", db_path);
        }

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
        tracker_options.output_max_bytes = s.output_max_bytes;
        m_observers.add(&m_log_writer);
        if (m_options.echo_output) m_observers.add(&m_echo);
        m_metrics_observer = make_metrics_observer(m_metrics);
        m_observers.add(m_metrics_observer.get());
        if (auto sinks = start_search_sinks(s); !sinks) return sinks.error();
        m_tracker = std::make_unique<RunTracker>(m_io, tracker_options, m_observers);
        m_tracker->set_store(m_store.get());
        m_tracker->set_on_run_finished([this](const RunRecord& run) { on_run_finished(run); });
        m_decisions.set_store(m_store.get());
        m_observers.add(&m_decisions);

        HubOptions hub_options;
        hub_options.bind_address = s.machines_ws_bind_addr;
        hub_options.port = s.machines_ws_port;
        hub_options.idle_timeout = s.machines_idle_timeout;
        hub_options.require_token = s.wrapper_auth != "compatible";
        hub_options.secret = *secret;
        hub_options.tls_cert = s.tls_cert;
        hub_options.tls_key = s.tls_key;
        m_hub = std::make_unique<MachineHub>(m_io, hub_options, *m_tracker);
        auto port = m_hub->listen();
        if (!port) return port.error();
        m_port = *port;
        m_tracker->set_hub(m_hub.get());
        add_daemon_collectors(m_metrics, [this] { return hub_stats(); }, *m_tracker, m_store.get(), m_config);
        spdlog::info("machines WebSocket listening on {}:{} (wrapper_auth {})", s.machines_ws_bind_addr, m_port,
                     s.wrapper_auth);
        auto recovered = recover_runs();
        if (!recovered) return recovered.error();
        prune_history();

        m_context.secret = *secret;
        apply_settings();
        auto context = [this]() -> const LaunchContext& { return m_context; };
        m_wrapper_executor = make_wrapper_executor(*m_transport, *m_tracker, context);
        m_legacy_executor = make_legacy_executor(*m_transport, *m_tracker, context);
        m_dispatcher = std::make_unique<Dispatcher>(m_io, *m_transport, *m_tracker, *m_wrapper_executor,
                                                    *m_legacy_executor, context);
        m_dispatcher->set_job_lookup([this](const std::string& name) { return m_config.find(name); });
        m_observers.add(m_dispatcher.get());
        start_notifier();
        if (m_options.schedule) {
            std::string warning;
            m_fire_times = make_run_store_fire_times(*m_store, &warning);
            if (!warning.empty()) spdlog::warn("{}", warning);
            import_fire_times(s.logdir + "/schedule-state.json");
            catch_up_missed();
            schedule_jobs();
        }
        if (m_options.watch_config) {
            m_watcher = std::make_unique<ConfigWatcher>(m_io, m_options.config_dir, std::chrono::milliseconds(300),
                                                        [this] {
                                                            spdlog::info("config directory {} changed; reloading",
                                                                         m_options.config_dir);
                                                            reload();
                                                        });
            auto watching = m_watcher->start();
            if (!watching) {
                spdlog::warn("{}; changes need SIGHUP", watching.error().message);
                m_watcher.reset();
            }
        }
        if (s.api_ws) {
            auto api = start_api(s);
            if (!api) return api.error();
        }
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
        if (m_stopped) return;
        auto loaded = m_loader.reload();
        if (!loaded) {
            spdlog::error("reload failed, keeping the current configuration: {}", loaded.error().message);
            return;
        }
        report_problems(*loaded);
        const Settings before = m_config.settings;
        m_config = loaded->config;
        keep_restart_settings(before, m_config.settings);
        m_config_serial = unix_now();
        apply_settings();
        if (m_options.schedule) schedule_jobs();
        m_dispatcher->maintenance_changed();
        spdlog::info("configuration reloaded: {} job(s)", m_config.jobs.size());
    }

    void stop() {
        if (m_stopped) return;
        m_stopped = true;
        if (m_watcher) m_watcher->stop();
        m_scheduler.stop();
        for (auto& timer : m_splay_timers) timer.cancel();
        if (m_dispatcher) m_dispatcher->stop();
        m_prune_timer.cancel();
        flush_fire_times();
        if (m_transport) m_transport->stop();
        if (m_hub) m_hub->stop();
        if (m_api) m_api->stop();
        for (auto& sink : m_search_sinks) sink->stop();  // flushes for at most 5 s each
        if (m_notifier) m_notifier->stop();  // bounded drain of queued webhooks
        spdlog::info("spd stopped");
    }

    Result<std::string> run_now(const std::string& job, bool force) {
        if (m_config.find(job) == nullptr) return Error{"unknown job '" + job + "'", "job"};
        return fire(job, Trigger::run_now, std::nullopt, force);
    }

    bool kill_job(const std::string& job, const std::optional<std::string>& machine) {
        const Job* cfg = m_config.find(job);
        if (cfg != nullptr) return m_dispatcher->kill_job(*cfg, machine);
        // A job removed from the config: its running instances can still be killed.
        bool any = false;
        for (const RunRecord* run : m_tracker->running(job)) any = m_tracker->kill(run->instance, machine) || any;
        return any;
    }

    std::size_t queued_run_now() const { return m_dispatcher ? m_dispatcher->queued() : 0; }

    std::uint16_t port() const noexcept { return m_port; }
    RunStore* store() const noexcept { return m_store.get(); }
    const RunTracker& tracker() const { return *m_tracker; }

    bool kill_run(const std::string& instance, const std::optional<std::string>& machine) {
        const RunRecord* run = m_tracker->find(instance);
        if (run == nullptr || run->finished()) return false;
        const Job* cfg = m_config.find(run->job);
        return cfg != nullptr ? m_dispatcher->kill(*cfg, instance, machine) : m_tracker->kill(instance, machine);
    }
    std::optional<SysSeconds> next_run(const std::string& job) const { return m_scheduler.next_run(job); }
    HubStats hub_stats() const { return m_hub ? m_hub->stats() : HubStats{}; }

    // One search sink per configured URL (search_sink.hpp); their counters reach /metrics through a collector.
    Status start_search_sinks(const Settings& s) {
        const std::pair<const char*, std::pair<std::string, std::string>> wanted[] = {
            {"elasticsearch", {s.elasticsearch, s.elasticsearch_index}},
            {"opensearch", {s.opensearch, s.opensearch_index}}};
        for (const auto& [name, where] : wanted) {
            if (where.first.empty()) continue;
            SearchSinkOptions options;
            options.name = name;
            options.url = where.first;
            options.index_prefix = where.second;
            auto sink = SearchSink::create(options, [this](const std::string& job) {
                const Job* cfg = m_config.find(job);
                return cfg != nullptr ? cfg->group : std::string();
            });
            if (!sink) return Error{sink.error().message, name};
            std::shared_ptr<SearchSink> shared = std::move(*sink);
            spdlog::info("{} sink: documents go to {}/_bulk, index {}-YYYY.MM.DD", name, shared->display_url(),
                         options.index_prefix);
            m_observers.add(shared.get());
            m_metrics.add_collector([shared](Metrics& m) { report_search_sink(m, shared->options().name, shared->stats()); });
            m_search_sinks.push_back(std::move(shared));
        }
        return Ok{};
    }

    // The API (api_server.hpp); without tokens it listens on 127.0.0.1 only, whatever the config says.
    Status start_api(const Settings& s) {
        auto credentials = resolve_api_tokens(s.api_tokens);
        if (!credentials) return credentials.error();
        ApiServerOptions api;
        api.bind_address = s.api_ws_bind_addr;
        if (credentials->empty() && api.bind_address != "127.0.0.1") {
            spdlog::warn("API: no api_tokens configured, so the API listens on 127.0.0.1 only (not {})",
                         s.api_ws_bind_addr);
            api.bind_address = "127.0.0.1";
        }
        api.port = s.api_ws_port;
        api.credentials = std::move(*credentials);
        api.tls_cert = s.tls_cert;
        api.tls_key = s.tls_key;
        api.cors_origins = s.cors_origins;
        m_backend = make_spd_backend({m_config, m_config_serial, *m_tracker, m_scheduler, *m_dispatcher, m_metrics,
                                      m_observers, m_store.get(),
                                      [this](const std::string& job, bool force) { return run_now(job, force); }});
        m_api = std::make_unique<ApiServer>(m_io, api, *m_backend);
        auto port = m_api->listen();
        if (!port) return port.error();
        m_api_port = *port;
        spdlog::info("API listening on {}://{}:{} ({} token(s))", s.tls_cert.empty() ? "http" : "https",
                     api.bind_address, m_api_port, api.credentials.size());
        return Ok{};
    }
    static double unix_now() {
        return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    }

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
        m_context.timeout_grace = s.timeout_grace;
        m_context.kill_grace = s.kill_grace;
    }

    void schedule_jobs() {
        std::vector<Schedule::Entry> entries;
        for (const Job& job : m_config.jobs) entries.push_back({job.name, job.schedule, job.zone});
        m_scheduler.set_jobs(std::move(entries));
        if (m_fire_times) {
            // A job new to the state starts counting missed fire times from now.
            const SysSeconds now = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
            std::vector<std::string> names;
            for (const Job& job : m_config.jobs) {
                names.push_back(job.name);
                if (!m_fire_times->last_fire(job.name)) m_fire_times->record_fire(job.name, now);
            }
            m_fire_times->retain(names);  // a removed job that comes back starts afresh
            schedule_flush();
        }
        for (const Job& job : m_config.jobs) m_tracker->status_of(job.name).next_run = m_scheduler.next_run(job.name);
    }

    Result<std::string> fire(const std::string& name, Trigger trigger, std::optional<SysSeconds> scheduled,
                             bool force = false) {
        if (m_stopped) return Error{"spd is stopping", ""};
        const Job* job = m_config.find(name);
        if (job == nullptr) return Error{"unknown job '" + name + "'", "job"};
        m_tracker->status_of(name).next_run = m_scheduler.next_run(name);
        if (scheduled) m_metrics.observe("saltpeter_scheduler_lag_seconds",
                                         unix_now() - static_cast<double>(scheduled->time_since_epoch().count()),
                                         {0.01, 0.05, 0.1, 0.5, 1, 5, 30});
        RunSpec spec;
        spec.job = name;
        spec.group = job->group;
        spec.trigger = trigger;
        spec.scheduled = scheduled;
        spec.timeout = job->timeout;
        spec.heartbeat_timeout = job->heartbeat_timeout.value_or(m_config.settings.heartbeat_timeout);
        return m_dispatcher->submit(*job, spec, force);
    }

    // A fire time came due: the misfire policy decides on late wake-ups (suspend, clock step),
    // then the splay offset delays the firing.
    void on_due(const Schedule::Due& due) {
        const Job* job = m_config.find(due.job);
        if (job == nullptr) return;
        const SysSeconds now = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
        const auto decision = policy::decide_misfire(job->misfire, job->misfire_grace, due.scheduled, due.missed, now);
        if (m_fire_times) {
            m_fire_times->record_fire(due.job, due.scheduled);
            if (!decision.reason.empty()) m_fire_times->record_misfire(due.job, now, decision.missed, decision.reason);
            schedule_flush();
        }
        if (!decision.reason.empty()) spdlog::warn("{}: {}", due.job, decision.reason);
        notify_missed(*job, decision, decision.reason);
        if (!decision.run) {
            m_tracker->status_of(due.job).next_run = m_scheduler.next_run(due.job);
            return;
        }
        const Trigger trigger = decision.catch_up ? Trigger::catch_up : Trigger::schedule;
        const auto offset = policy::splay_offset(job->name, job->splay);
        if (offset.count() == 0) {
            fire(due.job, trigger, due.scheduled);
            return;
        }
        spdlog::debug("{}: splay {} s", due.job, offset.count());
        auto it = m_splay_timers.emplace(m_splay_timers.end(), m_io);
        it->expires_after(offset);
        it->async_wait([this, it, name = due.job, trigger, scheduled = due.scheduled](const boost::system::error_code& ec) {
            if (ec) return;  // stop() cancelled it; the list goes with the daemon
            m_splay_timers.erase(it);
            fire(name, trigger, scheduled);
        });
    }

    // At start: fire times that passed while spd was down, per job, from the state file.
    void catch_up_missed() {
        const SysSeconds now = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
        for (const Job& job : m_config.jobs) {
            const auto last = m_fire_times->last_fire(job.name);
            if (!last) {
                m_fire_times->record_fire(job.name, now);  // from now on its fire times count
                continue;
            }
            const auto missed = policy::missed_fire_times(job.schedule, job.zone, *last, now);
            if (missed.count == 0 || !missed.latest) continue;
            auto decision = policy::decide_misfire(job.misfire, job.misfire_grace, *missed.latest, missed.count - 1, now,
                                                   std::chrono::seconds{0});
            if (decision.reason.empty()) decision.reason = "1 fire time passed while spd was down";
            const std::string line = "spd was down: " + decision.reason;
            spdlog::warn("{}: {}", job.name, line);
            m_fire_times->record_fire(job.name, *missed.latest);
            m_fire_times->record_misfire(job.name, now, decision.missed, line);
            notify_missed(job, decision, line);
            if (decision.run) {
                auto started = fire(job.name, decision.catch_up ? Trigger::catch_up : Trigger::schedule, missed.latest);
                if (!started) spdlog::warn("{}: catch-up run not started: {}", job.name, started.error().message);
            }
        }
        std::vector<std::string> names;
        for (const Job& job : m_config.jobs) names.push_back(job.name);
        m_fire_times->retain(names);
        flush_fire_times();
    }

    void schedule_flush() {
        if (m_flush_pending) return;
        m_flush_pending = true;
        // One write per burst of firings (500 jobs at midnight write the file once).
        boost::asio::post(m_io, [this] {
            m_flush_pending = false;
            flush_fire_times();
        });
    }

    void flush_fire_times() {
        if (!m_fire_times) return;
        auto written = m_fire_times->flush();
        if (!written) spdlog::error("{}", written.error().message);
    }

    // saltpeter_config keys that cannot change while spd runs keep their old value; the log says so.
    static void keep_restart_settings(const Settings& before, Settings& after) {
        std::vector<std::string> changed;
        auto keep = [&](auto& now, const auto& old, const char* key) {
            if (now != old) {
                changed.emplace_back(key);
                now = old;
            }
        };
        keep(after.machines_ws_port, before.machines_ws_port, "machines_ws_port");
        keep(after.machines_ws_bind_addr, before.machines_ws_bind_addr, "machines_ws_bind_addr");
        keep(after.machines_idle_timeout, before.machines_idle_timeout, "machines_idle_timeout");
        keep(after.logdir, before.logdir, "logdir");
        keep(after.wrapper_auth, before.wrapper_auth, "wrapper_auth");
        keep(after.wrapper_secret_file, before.wrapper_secret_file, "wrapper_secret_file");
        keep(after.tls_cert, before.tls_cert, "tls_cert");
        keep(after.tls_key, before.tls_key, "tls_key");
        keep(after.local_minions, before.local_minions, "local_minions");
        keep(after.salt_binary, before.salt_binary, "salt_binary");
        keep(after.salt_run_binary, before.salt_run_binary, "salt_run_binary");
        keep(after.salt_config_dir, before.salt_config_dir, "salt_config_dir");
        keep(after.salt_api_url, before.salt_api_url, "salt_api_url");
        keep(after.salt_api_username, before.salt_api_username, "salt_api_username");
        keep(after.salt_api_password_file, before.salt_api_password_file, "salt_api_password_file");
        keep(after.salt_api_eauth, before.salt_api_eauth, "salt_api_eauth");
        keep(after.salt_api_ca_file, before.salt_api_ca_file, "salt_api_ca_file");
        keep(after.startup_timeout, before.startup_timeout, "startup_timeout");
        keep(after.timeout_grace, before.timeout_grace, "timeout_grace");
        keep(after.kill_grace, before.kill_grace, "kill_grace");
        keep(after.elasticsearch, before.elasticsearch, "elasticsearch");
        keep(after.opensearch, before.opensearch, "opensearch");
        keep(after.elasticsearch_index, before.elasticsearch_index, "elasticsearch_index");
        keep(after.opensearch_index, before.opensearch_index, "opensearch_index");
        keep(after.api_ws, before.api_ws, "api_ws");
        keep(after.api_ws_port, before.api_ws_port, "api_ws_port");
        keep(after.api_ws_bind_addr, before.api_ws_bind_addr, "api_ws_bind_addr");
        keep(after.state_db, before.state_db, "state_db");
        if (changed.empty()) return;
        std::string list;
        for (const auto& key : changed) list += (list.empty() ? "" : ", ") + key;
        spdlog::warn("saltpeter_config: {} changed; {} take effect after a restart of spd (the old value stays until then)",
                     list, changed.size() == 1 ? "this change will only" : "these changes will only");
    }

    // Runs the store holds as unfinished were in flight when spd stopped or died: re-open them so
    // that their wrappers are re-adopted (or end with 253 when they do not come back).
    Status recover_runs() {
        auto unfinished = m_store->unfinished_runs();
        if (!unfinished) return unfinished.error();
        for (const StoredRun& run : *unfinished) {
            RunSpec spec;
            spec.instance = run.instance;
            spec.job = run.job;
            spec.group = run.group;
            spec.trigger = run.trigger;
            spec.scheduled = run.scheduled;
            spec.heartbeat_timeout = m_config.settings.heartbeat_timeout;
            spec.timeout = std::chrono::seconds{0};
            if (const Job* job = m_config.find(run.job)) {
                spec.timeout = job->timeout;
                spec.heartbeat_timeout = job->heartbeat_timeout.value_or(m_config.settings.heartbeat_timeout);
            }
            m_tracker->restore(run, spec);
        }
        if (!unfinished->empty()) spdlog::warn("{} run(s) were in flight when spd stopped; re-opened", unfinished->size());
        return Ok{};
    }

    // history_max_runs / history_max_days, applied at start and every hour by the store's writer.
    void prune_history() {
        if (m_stopped) return;
        m_store->prune(std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now()),
                       [](const Status& st) {
                           if (!st) spdlog::error("pruning the run history failed: {}", st.error().message);
                       });
        m_prune_timer.expires_after(std::chrono::hours(1));
        m_prune_timer.async_wait([this](const boost::system::error_code& ec) {
            if (!ec) prune_history();
        });
    }

    // The JSON state file of earlier versions: its fire times seed an empty store once.
    void import_fire_times(const std::string& path) {
        std::error_code ec;
        if (!fs::exists(path, ec)) return;
        bool empty = true;
        for (const Job& job : m_config.jobs) empty = empty && !m_fire_times->last_fire(job.name);
        if (!empty) return;
        std::string warning;
        auto old = make_file_fire_time_store(path, &warning);
        if (!warning.empty()) spdlog::warn("{}", warning);
        std::size_t n = 0;
        for (const Job& job : m_config.jobs) {
            if (auto last = old->last_fire(job.name)) {
                m_fire_times->record_fire(job.name, *last);
                ++n;
            }
        }
        spdlog::info("imported {} last fire time(s) from {} into the state database; the file is no longer used", n,
                     path);
    }

    // Webhooks (notifier.hpp): a worker thread posts; the io thread only queues. The last outcome
    // per job comes from the store, so the first success after a restart can be `recovered`.
    void start_notifier() {
        NotifierOptions options;
        options.payload.host = host_name();
        m_notifier = std::make_unique<Notifier>(options);
        m_metrics.add_collector([this](Metrics& m) { m_notifier->export_metrics(m); });
        for (const Job& job : m_config.jobs) {
            auto runs = m_store->runs(job.name, 2);  // the latest may be one still running
            if (!runs) continue;
            for (const StoredRun& r : *runs) {
                if (r.status == RunStatus::running) continue;
                m_notifier->seed_outcome(job.name, r.status == RunStatus::success);
                break;
            }
        }
    }

    void notify_missed(const Job& job, const policy::MisfireDecision& decision, const std::string& reason) {
        if (!m_notifier || decision.missed == 0 || !decision.latest) return;
        m_notifier->missed({job.name, job.group, *decision.latest, decision.missed, decision.catch_up, reason},
                           effective_notify(&job, m_config.settings));
    }

    void on_run_finished(const RunRecord& run) {
        m_tracker->status_of(run.job).next_run = m_scheduler.next_run(run.job);
        if (m_notifier) m_notifier->run_finished(run, effective_notify(m_config.find(run.job), m_config.settings));
        if (!m_on_finished) return;
        // Once the result is committed, and so the wrappers have their acks (spd --run-once exits
        // from here: earlier, its wrapper would lose the ack and retry against a stopped spd).
        m_store->flush([this, alive = std::weak_ptr<char>(m_alive), instance = run.instance](const Status&) {
            if (alive.expired() || !m_on_finished) return;
            if (const RunRecord* finished = m_tracker->find(instance)) m_on_finished(*finished);
        });
    }

public:
    std::function<void(const RunRecord&)> m_on_finished;
    Config m_config;
    double m_config_serial = 0;
    ObserverList m_observers;
    Metrics m_metrics;
    std::uint16_t m_api_port = 0;

private:
    Daemon& m_owner;
    boost::asio::io_context& m_io;
    DaemonOptions m_options;
    ConfigLoader m_loader;
    JobLogWriter m_log_writer;
    OutputEcho m_echo;
    std::unique_ptr<RunObserver> m_metrics_observer;
    std::vector<std::shared_ptr<SearchSink>> m_search_sinks;  // outlive the tracker that feeds them
    Scheduler m_scheduler;
    std::unique_ptr<SaltTransport> m_transport;
    std::unique_ptr<RunStore> m_store;  // destroyed after the tracker, hub and API that write to it
    std::unique_ptr<RunTracker> m_tracker;
    std::unique_ptr<MachineHub> m_hub;
    std::unique_ptr<Executor> m_wrapper_executor;
    std::unique_ptr<Executor> m_legacy_executor;
    std::unique_ptr<Dispatcher> m_dispatcher;
    std::unique_ptr<ConfigWatcher> m_watcher;
    std::unique_ptr<FireTimeStore> m_fire_times;
    std::list<boost::asio::steady_timer> m_splay_timers;
    boost::asio::steady_timer m_prune_timer{m_io};
    std::shared_ptr<char> m_alive = std::make_shared<char>(0);  // for store completions that outlive us
    DecisionRecorder m_decisions;
    bool m_flush_pending = false;
    std::unique_ptr<ApiBackend> m_backend;
    std::unique_ptr<ApiServer> m_api;
    std::unique_ptr<Notifier> m_notifier;
    LaunchContext m_context;
    std::uint16_t m_port = 0;
    bool m_stopped = false;
};

Daemon::Daemon(boost::asio::io_context& io, DaemonOptions options)
    : m_impl(std::make_unique<Impl>(*this, io, std::move(options))) {}
Daemon::~Daemon() { m_impl->stop(); }
Status Daemon::start() { return m_impl->start(); }
void Daemon::reload() { m_impl->reload(); }
void Daemon::stop() { m_impl->stop(); }
Result<std::string> Daemon::run_now(const std::string& job, bool force) { return m_impl->run_now(job, force); }
std::size_t Daemon::queued_run_now() const { return m_impl->queued_run_now(); }
bool Daemon::kill_job(const std::string& job, const std::optional<std::string>& machine) {
    return m_impl->kill_job(job, machine);
}
std::uint16_t Daemon::machines_port() const noexcept { return m_impl->port(); }
const RunTracker& Daemon::tracker() const { return m_impl->tracker(); }
bool Daemon::kill_run(const std::string& instance, const std::optional<std::string>& machine) {
    return m_impl->kill_run(instance, machine);
}
const Config& Daemon::config() const { return m_impl->m_config; }
double Daemon::config_serial() const noexcept { return m_impl->m_config_serial; }
std::optional<SysSeconds> Daemon::next_run(const std::string& job) const { return m_impl->next_run(job); }
void Daemon::add_observer(std::shared_ptr<RunObserver> observer) { m_impl->m_observers.add(std::move(observer)); }
HubStats Daemon::hub_stats() const { return m_impl->hub_stats(); }
Metrics& Daemon::metrics() { return m_impl->m_metrics; }
std::uint16_t Daemon::api_port() const noexcept { return m_impl->m_api_port; }
RunStore* Daemon::store() const noexcept { return m_impl->store(); }
void Daemon::set_on_run_finished(std::function<void(const RunRecord&)> callback) {
    m_impl->m_on_finished = std::move(callback);
}

}  // namespace saltpeter
