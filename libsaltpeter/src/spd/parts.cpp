// spd's parts built from its settings (parts.hpp).
#include "spd/parts.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/metrics.hpp"
#include "outlets/notifier.hpp"
#include "runs/dispatcher.hpp"
#include "outlets/search_sink.hpp"

namespace saltpeter {

namespace {

namespace fs = std::filesystem;

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

Result<std::unique_ptr<RunStore>> open_run_store(boost::asio::io_context& io, const Settings& s, bool in_memory) {
    RunStoreOptions store_options;
    store_options.history_max_runs = s.history_max_runs;
    store_options.history_max_days = s.history_max_days;
    store_options.output_max_bytes = s.output_max_bytes;
    if (in_memory) return make_memory_run_store(io, store_options);
    const std::string db_path = s.state_db.empty() ? s.logdir + "/state.db" : s.state_db;
    auto store = make_sqlite_run_store(io, db_path, store_options);
    if (store) spdlog::info("state database {}", db_path);
    return store;
}

// The --transport choice with its settings (PROTOCOL.md 2; docs/operations.md).
Result<std::unique_ptr<SaltTransport>> make_transport(boost::asio::io_context& io, const DaemonOptions& options,
                                                      const Settings& s) {
    if (options.transport_factory) {
        auto transport = options.transport_factory(io, s);
        if (!transport) return Error{"the embedding program's transport factory returned no transport", "transport"};
        return transport;
    }
    if (options.transport == "local") {
        LocalTransportOptions local;
        local.minions = s.local_minions;
        return make_local_transport(io, local);
    }
    if (options.transport == "salt-cli") {
        SaltCliOptions cli;
        cli.salt_binary = s.salt_binary;
        cli.salt_run_binary = s.salt_run_binary;
        cli.config_dir = s.salt_config_dir;
        return make_salt_cli_transport(io, cli);
    }
    if (options.transport == "salt-api") {
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
        return make_salt_api_transport(io, api);
    }
    return Error{"unknown transport '" + options.transport + "' (local, salt-cli, salt-api)", "transport"};
}

TrackerOptions tracker_options(const Settings& s) {
    TrackerOptions options;
    options.startup_timeout = s.startup_timeout;
    options.timeout_grace = s.timeout_grace;
    options.kill_grace = s.kill_grace;
    options.output_max_bytes = s.output_max_bytes;
    return options;
}

HubOptions hub_options(const Settings& s, const std::string& secret) {
    HubOptions options;
    options.bind_address = s.machines_ws_bind_addr;
    options.port = s.machines_ws_port;
    options.idle_timeout = s.machines_idle_timeout;
    options.require_token = s.wrapper_auth != "compatible";
    options.secret = secret;
    options.tls_cert = s.tls_cert;
    options.tls_key = s.tls_key;
    return options;
}

LaunchContext launch_context(const Config& config, const std::string& transport, std::uint16_t machines_port,
                             std::string secret) {
    LaunchContext context;
    context.secret = std::move(secret);
    const Settings& s = config.settings;
    std::string host = s.default_saltpeter_server_host;
    if (host.empty()) {
        const bool wildcard = s.machines_ws_bind_addr == "0.0.0.0" || s.machines_ws_bind_addr == "::";
        host = wildcard ? host_name() : s.machines_ws_bind_addr;
    }
    context.websocket_scheme = s.tls_cert.empty() ? "ws" : "wss";
    context.machines_port = machines_port;
    context.websocket_url = context.websocket_scheme + "://" + host + ":" + std::to_string(machines_port);
    context.wrapper_path = s.default_wrapper_path.empty()
                                 ? (transport == "local" ? local_wrapper_path() : "/usr/local/bin/sp_wrapper")
                                 : s.default_wrapper_path;
    context.wrapper_loglevel = s.default_wrapper_loglevel;
    context.wrapper_logdir = s.default_wrapper_logdir;
    context.maintenance = config.maintenance;
    context.timeout_grace = s.timeout_grace;
    context.kill_grace = s.kill_grace;
    context.heartbeat_timeout = s.heartbeat_timeout;
    return context;
}

// Runs the store holds as unfinished were in flight when spd stopped or died.
Status recover_runs(RunStore& store, RunTracker& tracker, const Config& config) {
    auto unfinished = store.unfinished_runs();
    if (!unfinished) return unfinished.error();
    for (const StoredRun& run : *unfinished) {
        RunSpec spec = run_spec_for(run.job, config.find(run.job), config.settings.heartbeat_timeout);
        spec.instance = run.instance;
        spec.group = run.group;
        spec.trigger = run.trigger;
        spec.scheduled = run.scheduled;
        tracker.restore(run, spec);
    }
    if (!unfinished->empty()) spdlog::warn("{} run(s) were in flight when spd stopped; re-opened", unfinished->size());
    return Ok{};
}

void keep_restart_settings(const Settings& before, Settings& after) {
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

Result<std::vector<std::shared_ptr<SearchSink>>> make_search_sinks(const Settings& s, Metrics& metrics,
                                                                   std::function<std::string(const std::string&)> group_of) {
    std::vector<std::shared_ptr<SearchSink>> sinks;
    const std::pair<const char*, std::pair<std::string, std::string>> wanted[] = {
        {"elasticsearch", {s.elasticsearch, s.elasticsearch_index}},
        {"opensearch", {s.opensearch, s.opensearch_index}}};
    for (const auto& [name, where] : wanted) {
        if (where.first.empty()) continue;
        SearchSinkOptions options;
        options.name = name;
        options.url = where.first;
        options.index_prefix = where.second;
        auto sink = SearchSink::create(options, group_of);
        if (!sink) return Error{sink.error().message, name};
        std::shared_ptr<SearchSink> shared = std::move(*sink);
        spdlog::info("{} sink: documents go to {}/_bulk, index {}-YYYY.MM.DD", name, shared->display_url(),
                     options.index_prefix);
        metrics.add_collector([shared](Metrics& m) { report_search_sink(m, shared->options().name, shared->stats()); });
        sinks.push_back(std::move(shared));
    }
    return sinks;
}

// Webhooks (notifier.hpp): a worker thread posts; the io thread only queues.
std::unique_ptr<Notifier> make_notifier(RunStore& store, const Config& config, Metrics& metrics) {
    NotifierOptions options;
    options.payload.host = host_name();
    auto notifier = std::make_unique<Notifier>(options);
    metrics.add_collector([n = notifier.get()](Metrics& m) { n->export_metrics(m); });
    for (const Job& job : config.jobs) {
        auto runs = store.runs(job.name, 2);  // the latest may be one still running
        if (!runs) continue;
        for (const StoredRun& r : *runs) {
            if (r.status == RunStatus::running) continue;
            notifier->seed_outcome(job.name, r.status == RunStatus::success);
            break;
        }
    }
    return notifier;
}

Result<ApiServerOptions> api_options(const Settings& s) {
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
    return api;
}

void add_daemon_collectors(Metrics& metrics, std::function<HubStats()> hub, const RunTracker& tracker,
                           const RunStore* store, const Config& config) {
    metrics.add_collector([hub = std::move(hub), &tracker, store, &config](Metrics& m) {
        const HubStats stats = hub();
        m.describe("saltpeter_wrappers_connected", "gauge", "Wrapper WebSocket connections open");
        m.set("saltpeter_wrappers_connected", {}, static_cast<double>(stats.connections_open));
        m.describe("saltpeter_frames_received_total", "counter", "Wrapper frames received");
        m.set("saltpeter_frames_received_total", {}, static_cast<double>(stats.frames_received));
        m.describe("saltpeter_bytes_received_total", "counter", "Wrapper frame bytes received");
        m.set("saltpeter_bytes_received_total", {}, static_cast<double>(stats.bytes_received));
        m.describe("saltpeter_frames_rejected_total", "counter", "Wrapper frames rejected (malformed, unauthorised, unknown)");
        m.set("saltpeter_frames_rejected_total", {}, static_cast<double>(stats.frames_rejected));
        m.describe("saltpeter_targets_running", "gauge", "Targets of runs that have not ended, by job");
        m.clear("saltpeter_targets_running");
        std::map<std::string, std::size_t> running;
        for (const Job& job : config.jobs) running[job.name] = 0;
        for (const auto& [instance, run] : tracker.runs()) {
            if (run.finished()) continue;
            for (const auto& [machine, t] : run.targets) running[run.job] += t.state != TargetState::finished ? 1 : 0;
        }
        for (const auto& [job, n] : running) m.set("saltpeter_targets_running", {{"job", job}}, static_cast<double>(n));
        m.describe("saltpeter_scheduler_lag_seconds", "histogram", "Delay between a scheduled fire time and the firing");
        m.describe("saltpeter_store_write_errors_total", "counter",
                   "State database writes that failed (each is retried; nothing unstored is acknowledged)");
        m.set("saltpeter_store_write_errors_total", {}, static_cast<double>(tracker.store_write_errors()));
        if (store != nullptr) {
            m.describe("saltpeter_store_queued_bytes", "gauge", "Output bytes waiting to be committed to the state database");
            m.set("saltpeter_store_queued_bytes", {}, static_cast<double>(store->queued_bytes()));
        }
        m.describe("saltpeter_jobs", "gauge", "Jobs in the configuration");
        m.set("saltpeter_jobs", {}, static_cast<double>(config.jobs.size()));
    });
}

}  // namespace saltpeter
