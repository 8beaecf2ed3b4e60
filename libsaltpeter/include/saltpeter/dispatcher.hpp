#pragma once
// Dispatcher: between the Scheduler and the Executors (DESIGN.md). For each run it opens the
// record in the RunTracker, pings the job's targets through the SaltTransport, sorts out the
// minions that did not answer and those in maintenance, and hands the rest to the job's
// Executor (wrapper or legacy). The job policies (concurrency, batches, subsets, retries,
// misfire, splay) are decided here. Io thread only.

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "saltpeter/config.hpp"
#include "saltpeter/executor.hpp"
#include "saltpeter/run_tracker.hpp"
#include "saltpeter/salt_transport.hpp"

namespace saltpeter {

class Dispatcher {
public:
    Dispatcher(SaltTransport& transport, RunTracker& tracker, Executor& wrapper_executor, Executor& legacy_executor,
               std::function<const LaunchContext&()> context);
    ~Dispatcher();
    Dispatcher(const Dispatcher&) = delete;
    Dispatcher& operator=(const Dispatcher&) = delete;

    /// Opens `spec` in the tracker and runs `job` on its targets.
    void start(const Job& job, const RunSpec& spec);
    /// Kills a running instance of `job` (all its machines, or one). False when nothing runs.
    bool kill(const Job& job, const std::string& instance, const std::optional<std::string>& machine);

private:
    class Impl;
    std::unique_ptr<Impl> m_impl;
};

}  // namespace saltpeter
