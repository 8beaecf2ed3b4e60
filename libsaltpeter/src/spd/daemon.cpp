// Daemon (daemon.hpp): the composition root of spd. It builds the parts from the settings
// (parts.hpp), wires them and hands them the configuration again on reload; a run enters here
// only through start() and reload(). What each part does is said in its own header.
//
//   ConfigLoader -> Scheduler -> Dispatcher -> executors -> SaltTransport -> sp_wrapper
//   MachineHub -> RunTracker -> ObserverList -> outlets, Dispatcher, API push;  RunTracker -> RunStore
#include "saltpeter/daemon.hpp"

#include <spdlog/spdlog.h>

#include <filesystem>

#include "api/api_server.hpp"
#include "core/metrics.hpp"
#include "host/config_watcher.hpp"
#include "outlets/observers.hpp"
#include "outlets/notifier.hpp"
#include "outlets/search_sink.hpp"
#include "runs/dispatcher.hpp"
#include "runs/fire_time_store.hpp"
#include "runs/observer_list.hpp"
#include "saltpeter/scheduler.hpp"
#include "spd/api_backend.hpp"
#include "spd/parts.hpp"
#include "store/retention.hpp"

namespace saltpeter {

namespace {
double unix_now() { return unix_seconds(std::chrono::system_clock::now()); }

void report_problems(const LoadResult& loaded) {
    for (const auto& p : loaded.problems) {
        if (p.is_error()) spdlog::error("config: {}", p.to_string());
        else spdlog::warn("config: {}", p.to_string());
    }
}
}  // namespace

class Daemon::Impl {
public:
    Impl(boost::asio::io_context& io, DaemonOptions options)
        : m_io(io), m_options(std::move(options)), m_loader(m_options.config_dir),
          m_scheduler(io, [this](const std::string& job, Trigger trigger, std::optional<SysSeconds> scheduled) {
              return m_dispatcher->fire(job, trigger, scheduled);
          }) {}

    Status start() {
        auto loaded = m_loader.reload();
        if (!loaded) return loaded.error();
        report_problems(*loaded);
        m_config = loaded->config;
        m_config_serial = unix_now();
        const Settings& s = m_config.settings;
        std::error_code ec;
        std::filesystem::create_directories(s.logdir, ec);
        if (ec) return Error{"cannot create logdir " + s.logdir + ": " + ec.message(), "logdir"};

        // The store comes before anything that could start a run: without it spd refuses to run
        // rather than lose history (a corrupt or unwritable state_db is a start-up error).
        auto store = open_run_store(m_io, s, m_options.memory_store);
        if (!store) return store.error();
        m_store = std::move(*store);
        auto secret = load_or_create_secret(s.wrapper_secret_file.empty() ? s.logdir + "/wrapper.secret"
                                                                          : s.wrapper_secret_file);
        if (!secret) return secret.error();
        auto transport = make_transport(m_io, m_options, s);
        if (!transport) return transport.error();
        m_transport = std::move(*transport);

        // Observers in the order they hear each event: files, terminal, metrics, search, store, dispatcher, API.
        m_log_writer = std::make_unique<JobLogWriter>(s.logdir);
        m_observers.add(m_log_writer.get());
        if (m_options.echo_output) m_observers.add(std::make_shared<OutputEcho>());
        m_observers.add(std::shared_ptr<RunObserver>(make_metrics_observer(m_metrics)));
        auto sinks = make_search_sinks(s, m_metrics, [this](const std::string& job) {
            const Job* cfg = m_config.find(job);
            return cfg != nullptr ? cfg->group : std::string();
        });
        if (!sinks) return sinks.error();
        m_search_sinks = std::move(*sinks);
        for (auto& sink : m_search_sinks) m_observers.add(sink.get());
        m_tracker = std::make_unique<RunTracker>(m_io, tracker_options(s), m_observers);
        m_tracker->set_store(m_store.get());
        m_observers.add(std::make_shared<DecisionRecorder>(*m_store));

        m_hub = std::make_unique<MachineHub>(m_io, hub_options(s, *secret), *m_tracker);
        auto port = m_hub->listen();
        if (!port) return port.error();
        m_port = *port;
        m_tracker->set_hub(m_hub.get());
        add_daemon_collectors(m_metrics, [this] { return m_hub->stats(); }, *m_tracker, m_store.get(), m_config);
        spdlog::info("machines WebSocket listening on {}:{} (wrapper_auth {})", s.machines_ws_bind_addr, m_port,
                     s.wrapper_auth);
        if (auto recovered = recover_runs(*m_store, *m_tracker, m_config); !recovered) return recovered.error();
        m_retention = std::make_unique<Retention>(m_io, *m_store);
        m_retention->start();

        m_secret = *secret;
        m_context = launch_context(m_config, m_options.transport, m_port, m_secret);
        auto context = [this]() -> const LaunchContext& { return m_context; };
        m_wrapper_executor = make_wrapper_executor(*m_transport, *m_tracker, context);
        m_legacy_executor = make_legacy_executor(*m_transport, *m_tracker, context);
        m_dispatcher = std::make_unique<Dispatcher>(m_io, *m_transport, *m_tracker, *m_wrapper_executor,
                                                    *m_legacy_executor, context);
        m_dispatcher->set_job_lookup([this](const std::string& name) { return m_config.find(name); });
        m_observers.add(m_dispatcher.get());
        m_notifier = make_notifier(*m_store, m_config, m_metrics);
        m_observers.add(std::make_shared<NotifyObserver>(*m_notifier, m_config));
        m_observers.add(std::make_shared<FinishedRunHook>(*m_store, *m_tracker, m_on_finished));
        if (m_options.schedule) start_scheduling();
        if (m_options.watch_config) watch_config();
        if (s.api_ws) {
            if (auto api = start_api(s); !api) return api.error();
        }
        spdlog::info("spd started: {} job(s) from {}, transport {}", m_config.jobs.size(), m_options.config_dir,
                     m_transport->name());
        return Ok{};
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
        m_context = launch_context(m_config, m_options.transport, m_port, m_secret);
        if (m_options.schedule) m_scheduler.set_jobs(m_config.jobs);
        m_dispatcher->maintenance_changed();
        spdlog::info("configuration reloaded: {} job(s)", m_config.jobs.size());
    }

    void stop() {
        if (m_stopped) return;
        m_stopped = true;
        if (m_watcher) m_watcher->stop();
        m_scheduler.stop();  // writes the fire times
        if (m_dispatcher) m_dispatcher->stop();
        if (m_retention) m_retention->stop();
        if (m_transport) m_transport->stop();
        if (m_hub) m_hub->stop();
        if (m_api) m_api->stop();
        for (auto& sink : m_search_sinks) sink->stop();  // flushes for at most 5 s each
        if (m_notifier) m_notifier->stop();              // bounded drain of queued webhooks
        spdlog::info("spd stopped");
    }

    ApiBackend& backend() {
        if (!m_backend)
            m_backend = make_spd_backend({m_config, m_config_serial, *m_tracker, m_scheduler, *m_dispatcher, m_metrics,
                                          m_observers, m_store.get(), [this](const std::string& job, bool force) {
                                              return m_dispatcher->fire(job, Trigger::run_now, std::nullopt, force);
                                          }});
        return *m_backend;
    }

    boost::asio::io_context& m_io;
    DaemonOptions m_options;
    ConfigLoader m_loader;
    Config m_config;
    double m_config_serial = 0;
    std::function<void(const RunRecord&)> m_on_finished;
    Metrics m_metrics;
    ObserverList m_observers;
    std::unique_ptr<JobLogWriter> m_log_writer;
    std::vector<std::shared_ptr<SearchSink>> m_search_sinks;  // outlive the tracker that feeds them
    Scheduler m_scheduler;
    std::unique_ptr<SaltTransport> m_transport;
    std::unique_ptr<RunStore> m_store;  // destroyed after the tracker, hub and API that write to it
    std::unique_ptr<Retention> m_retention;
    std::unique_ptr<FireTimeStore> m_fire_times;
    std::unique_ptr<RunTracker> m_tracker;
    std::unique_ptr<MachineHub> m_hub;
    std::unique_ptr<Executor> m_wrapper_executor;
    std::unique_ptr<Executor> m_legacy_executor;
    std::unique_ptr<Dispatcher> m_dispatcher;
    std::unique_ptr<ConfigWatcher> m_watcher;
    std::unique_ptr<ApiBackend> m_backend;
    std::unique_ptr<ApiServer> m_api;
    std::unique_ptr<Notifier> m_notifier;
    LaunchContext m_context;
    std::string m_secret;
    std::uint16_t m_port = 0;
    std::uint16_t m_api_port = 0;
    bool m_stopped = false;

private:
    void start_scheduling() {
        std::string warning;
        m_fire_times = make_run_store_fire_times(*m_store, &warning);
        if (!warning.empty()) spdlog::warn("{}", warning);
        import_fire_time_file(m_config.settings.logdir + "/schedule-state.json", *m_fire_times, m_config.jobs);
        m_scheduler.set_fire_times(m_fire_times.get());
        m_scheduler.set_metrics(&m_metrics);
        m_scheduler.set_on_missed([this](const Job& job, const MissedFires& missed) {
            m_notifier->missed({job.name, job.group, missed.latest, missed.count, missed.catch_up, missed.reason},
                               effective_notify(&job, m_config.settings));
        });
        m_scheduler.catch_up(m_config.jobs);
        m_scheduler.set_jobs(m_config.jobs);
    }

    void watch_config() {
        m_watcher = std::make_unique<ConfigWatcher>(m_io, m_options.config_dir, std::chrono::milliseconds(300), [this] {
            spdlog::info("config directory {} changed; reloading", m_options.config_dir);
            reload();
        });
        if (auto watching = m_watcher->start(); !watching) {
            spdlog::warn("{}; changes need SIGHUP", watching.error().message);
            m_watcher.reset();
        }
    }

    Status start_api(const Settings& s) {
        auto options = api_options(s);
        if (!options) return options.error();
        m_api = std::make_unique<ApiServer>(m_io, *options, backend());
        auto port = m_api->listen();
        if (!port) return port.error();
        m_api_port = *port;
        spdlog::info("API listening on {}://{}:{} ({} token(s))", s.tls_cert.empty() ? "http" : "https",
                     options->bind_address, m_api_port, options->credentials.size());
        return Ok{};
    }

};

Daemon::Daemon(boost::asio::io_context& io, DaemonOptions options) : m_impl(std::make_unique<Impl>(io, std::move(options))) {}
Daemon::~Daemon() { m_impl->stop(); }
Status Daemon::start() { return m_impl->start(); }
void Daemon::reload() { m_impl->reload(); }
void Daemon::stop() { m_impl->stop(); }
Result<std::string> Daemon::run_now(const std::string& job, bool force) {
    if (!m_impl->m_dispatcher) return Error{"unknown job '" + job + "'", "job"};  // not started: no jobs
    return m_impl->m_dispatcher->fire(job, Trigger::run_now, std::nullopt, force);
}
std::size_t Daemon::queued_run_now() const { return m_impl->m_dispatcher ? m_impl->m_dispatcher->queued() : 0; }
bool Daemon::kill_job(const std::string& job, const std::optional<std::string>& machine) {
    return m_impl->m_tracker ? m_impl->backend().kill_job(job, machine) : false;
}
std::uint16_t Daemon::machines_port() const noexcept { return m_impl->m_port; }
std::uint16_t Daemon::api_port() const noexcept { return m_impl->m_api_port; }
const RunTracker& Daemon::tracker() const { return *m_impl->m_tracker; }
RunStore* Daemon::store() const noexcept { return m_impl->m_store.get(); }
void Daemon::set_on_run_finished(std::function<void(const RunRecord&)> callback) {
    m_impl->m_on_finished = std::move(callback);
}

}  // namespace saltpeter
