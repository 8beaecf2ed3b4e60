#pragma once
// FireTimeStore: the last fire time each job has had, kept across spd restarts so the misfire
// policy can count what was missed while spd was down. A small interface so the durable store
// (SQLite, a later issue) can replace the JSON file; io thread only.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "saltpeter/config.hpp"
#include "saltpeter/result.hpp"
#include "saltpeter/time.hpp"

namespace saltpeter {

class FireTimeStore {
public:
    virtual ~FireTimeStore() = default;
    /// The latest fire time handled for `job` (run or deliberately skipped); nullopt when unknown.
    virtual std::optional<SysSeconds> last_fire(const std::string& job) const = 0;
    /// Records that fire times of `job` up to `fire_time` are handled.
    virtual void record_fire(const std::string& job, SysSeconds fire_time) = 0;
    /// Records a misfire decision: `missed` fire times, what was done (a log line), seen at `now`.
    virtual void record_misfire(const std::string& job, SysSeconds now, std::uint32_t missed,
                                const std::string& decision) = 0;
    /// Forgets jobs not in `jobs` (removed from the config).
    virtual void retain(const std::vector<std::string>& jobs) = 0;
    /// Writes pending changes. Error names the file and the reason; the state stays in memory.
    virtual Status flush() = 0;
};

/// The JSON state file (e.g. <logdir>/schedule-state.json), written atomically (temp file +
/// rename) with mode 0600. A missing file is an empty state; an unreadable one is reported in
/// `warning` and treated as empty.
std::unique_ptr<FireTimeStore> make_file_fire_time_store(const std::string& path, std::string* warning = nullptr);

class RunStore;
/// Fire times kept in the RunStore (spd's state_db): last fire times are read once here and
/// written through set_last_fire; misfires become scheduler decisions. A job that retain() drops
/// is stored with fire time 0, which reads as unknown (it starts afresh when it comes back). An
/// unreadable store is reported in `warning` and treated as empty. flush() has nothing to do.
std::unique_ptr<FireTimeStore> make_run_store_fire_times(RunStore& store, std::string* warning = nullptr);

/// The JSON state file of earlier versions: when no job of `jobs` has a fire time in `into`
/// yet, the file's last fire times are copied there once (logged); a missing file does nothing.
void import_fire_time_file(const std::string& path, FireTimeStore& into, const std::vector<Job>& jobs);

}  // namespace saltpeter
