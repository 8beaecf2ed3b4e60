#pragma once
// SpdBackend: the API's backend (api/api_backend.hpp) over spd's parts. It owns the run history
// and answers the read model from the tracker and the scheduler; commands go to the dispatcher.
// Io thread only.

#include <functional>
#include <memory>

#include "api/api_backend.hpp"

namespace saltpeter {

class Dispatcher;
class Metrics;
class ObserverList;
class RunStore;
class RunTracker;
class Scheduler;

/// What the backend reads and drives; every part must outlive it.
struct SpdParts {
    const Config& config;
    const double& config_serial;
    RunTracker& tracker;
    const Scheduler& scheduler;
    Dispatcher& dispatcher;
    Metrics& metrics;
    ObserverList& observers;
    RunStore* store = nullptr;  ///< null: history from memory only
    /// Starts a run now (the daemon's firing path).
    std::function<Result<std::string>(const std::string& job, bool force)> run_now;
};

std::unique_ptr<ApiBackend> make_spd_backend(SpdParts parts);

}  // namespace saltpeter
