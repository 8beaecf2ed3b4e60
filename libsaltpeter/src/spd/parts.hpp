#pragma once
// What spd builds from its configuration before wiring it together: each function turns
// saltpeter_config settings into one part's options or the part itself. Daemon (daemon.cpp) only
// composes what these return. Io thread; start-up errors name the setting at fault.

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "api/api_server.hpp"
#include "runs/machine_hub.hpp"
#include "runs/run_tracker.hpp"
#include "saltpeter/config.hpp"
#include "saltpeter/executor.hpp"
#include "saltpeter/salt_transport.hpp"
#include "saltpeter/daemon.hpp"
#include "saltpeter/run_store.hpp"

namespace saltpeter {

class FireTimeStore;
class Metrics;
class Notifier;
class SearchSink;

/// The wrapper secret: 32 random bytes in a 0600 file, created at first start (PROTOCOL.md 5.5).
/// Errors name the file; a file readable by others is used with a warning.
Result<std::string> load_or_create_secret(const std::string& path);

/// The state database (state_db, default <logdir>/state.db) or a store in memory.
Result<std::unique_ptr<RunStore>> open_run_store(boost::asio::io_context& io, const Settings& settings, bool in_memory);

/// The transport chosen by `options` (its factory, or local / salt-cli / salt-api with the
/// settings); errors name the setting (salt_api_url, salt_api_password_file, transport).
Result<std::unique_ptr<SaltTransport>> make_transport(boost::asio::io_context& io, const DaemonOptions& options,
                                                      const Settings& settings);

TrackerOptions tracker_options(const Settings& settings);
HubOptions hub_options(const Settings& settings, const std::string& secret);

/// The executors' view of the settings: where wrappers connect back (the machines port), which
/// wrapper, its logging, maintenance and the grace periods. `transport` picks the default
/// wrapper path (with `local`, the sp_wrapper built or installed beside spd).
LaunchContext launch_context(const Config& config, const std::string& transport, std::uint16_t machines_port,
                             std::string secret);

/// Re-opens the runs the store holds as unfinished (spd stopped or died while they ran), so their
/// wrappers are re-adopted or end with 253. Error: the store could not be read.
Status recover_runs(RunStore& store, RunTracker& tracker, const Config& config);

/// saltpeter_config keys that cannot change while spd runs keep their old value in `after`; the
/// log names them.
void keep_restart_settings(const Settings& before, Settings& after);

/// One search sink per configured OpenSearch/Elasticsearch URL, each with its counters in
/// `metrics`. `group_of` names a job's group. Error: a URL that cannot be used.
Result<std::vector<std::shared_ptr<SearchSink>>> make_search_sinks(const Settings& settings, Metrics& metrics,
                                                                   std::function<std::string(const std::string&)> group_of);

/// Webhooks: the notifier, its counters in `metrics`, each job's last outcome seeded from the
/// store (so that the first success after a restart can be `recovered`).
std::unique_ptr<Notifier> make_notifier(RunStore& store, const Config& config, Metrics& metrics);

/// The API's options: tokens resolved (errors name the token and file), and without tokens the
/// API listens on 127.0.0.1 only, whatever api_ws_bind_addr says.
Result<ApiServerOptions> api_options(const Settings& settings);

/// Collectors for the series whose state spd's parts own: wrapper connections and frames (from
/// `hub`), targets running by job (tracker), store write errors and queued bytes (null store:
/// left out) and jobs in the configuration. Every part must outlive `metrics`' collect().
void add_daemon_collectors(Metrics& metrics, std::function<HubStats()> hub, const RunTracker& tracker,
                           const RunStore* store, const Config& config);

}  // namespace saltpeter
