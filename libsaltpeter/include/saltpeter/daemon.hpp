#pragma once
// Daemon: spd composed from the library's wings: the config loader and its inotify watcher, the
// Scheduler (fire times, misfire, splay, catch-up), the Dispatcher (maintenance, concurrency,
// batches, retries), the executors over a SaltTransport, the MachineHub and RunTracker, the
// RunStore, the outlets (job logs, search sinks, webhooks) and the API. It only wires them (see
// docs/ARCHITECTURE.md). Tools that embed saltpeter can run one on their own io_context. Io
// thread only.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>

#include "saltpeter/result.hpp"
#include "saltpeter/config.hpp"
#include "saltpeter/run_store.hpp"
#include "saltpeter/runs.hpp"
#include "saltpeter/salt_transport.hpp"

namespace saltpeter {

class RunTracker;

struct DaemonOptions {
    std::string config_dir = "/etc/saltpeter";
    std::string transport = "local";  ///< local, salt-cli or salt-api
    /// When set, spd uses this transport instead of `transport` (embedding programs, benchmarks):
    /// it gets the daemon's io_context and the loaded settings.
    std::function<std::unique_ptr<SaltTransport>(boost::asio::io_context&, const Settings&)> transport_factory;
    bool schedule = true;             ///< false: only run_now() starts runs (spd --run-once)
    bool echo_output = false;         ///< print each target's output to stdout as "machine | line"
    bool watch_config = true;         ///< reload on changes in config_dir (inotify, debounced 300 ms)
    /// Keep runs in memory instead of the SQLite state_db (tests, benchmarks, embedding programs
    /// that do not want a file). A restart then loses history and in-flight runs.
    bool memory_store = false;
};

class Daemon {
public:
    Daemon(boost::asio::io_context& io, DaemonOptions options);
    ~Daemon();
    Daemon(const Daemon&) = delete;
    Daemon& operator=(const Daemon&) = delete;

    /// Loads the configuration, prepares logdir and the wrapper secret, binds the machines port
    /// and starts scheduling. Errors name what failed (unreadable config dir, port in use, ...).
    Status start();
    /// Re-reads the configuration (SIGHUP); broken files keep their last good version.
    void reload();
    /// No new runs; closes the sockets and stops the timers. Running wrappers finish on their own.
    void stop();

    /// Starts a run of `job` now (same policies as a scheduled firing). Returns the instance id,
    /// or an Error saying why not: unknown job, already running under `concurrency: forbid`
    /// (field "overlap"; `force` starts it anyway), or global maintenance (field "queued": the
    /// request waits and starts when maintenance ends).
    Result<std::string> run_now(const std::string& job, bool force = false);
    /// Run-now requests waiting for global maintenance to end.
    std::size_t queued_run_now() const;
    /// Kills the running instance(s) of `job`, or only `machine`. False when nothing runs.
    bool kill_job(const std::string& job, const std::optional<std::string>& machine = std::nullopt);

    /// The bound machines port (useful with port 0).
    std::uint16_t machines_port() const noexcept;
    /// Called after every finished run once its result is committed to the store and acknowledged
    /// to the wrappers (e.g. to print results or to exit after --run-once).
    void set_on_run_finished(std::function<void(const RunRecord&)> callback);
    /// The bound API port (api_ws: true), 0 when the API is off.
    std::uint16_t api_port() const noexcept;
    /// The runs in memory (tests and embedders that watch runs; io thread only).
    const RunTracker& tracker() const;
    /// The durable store of runs, output, decisions and fire times (null before start()).
    RunStore* store() const noexcept;

private:
    class Impl;
    std::unique_ptr<Impl> m_impl;
};

}  // namespace saltpeter
