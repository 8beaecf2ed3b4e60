#pragma once
// What spd knows about runs: one RunRecord per job instance with one TargetResult per machine,
// and the per-job summary the UI shows. Plain data; RunTracker keeps them, RunObserver hears
// about every change (log files, the store, the API push).

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "saltpeter/job_log.hpp"
#include "saltpeter/time.hpp"

namespace saltpeter {

/// One target of one run (which wrapper is talking, which output is stored).
struct TargetKey {
    std::string instance;  ///< job_instance
    std::string machine;   ///< minion id as the wrapper reports it
    friend bool operator<(const TargetKey& a, const TargetKey& b) {
        return a.instance != b.instance ? a.instance < b.instance : a.machine < b.machine;
    }
    friend bool operator==(const TargetKey& a, const TargetKey& b) {
        return a.instance == b.instance && a.machine == b.machine;
    }
    std::string to_string() const { return instance + ":" + machine; }
};

/// Why a run was started.
enum class Trigger { schedule, run_now, catch_up, retry };
std::string_view to_string(Trigger trigger) noexcept;

/// Where one target of a run stands.
///
///   pending --launch--> launched --start--> started --complete--> finished
///      |                   |                  |   \--silence--> finished(253) --late data--> started/finished
///      +---Salt said no----+--no start (254)--+--deadline (124) / kill grace (143)--> finished
enum class TargetState { pending, launched, started, finished };
std::string_view to_string(TargetState state) noexcept;

struct TargetResult {
    std::string machine;
    TargetState state = TargetState::pending;
    SysMicros starttime{};
    std::optional<SysMicros> endtime;
    std::optional<int> retcode;
    std::string output;
    std::string wrapper_version;
    std::optional<SysMicros> last_heartbeat;  ///< spd's clock: when the wrapper was last heard
    std::vector<std::string> notes;           ///< e.g. "heartbeat lost after 15 s; recovered"
    bool spd_verdict = false;  ///< retcode set by spd (253/124/143/254), replaced by late real data
    std::uint64_t output_bytes = 0;
};

struct RunRecord {
    std::string instance;
    std::string job;
    std::string group;
    Trigger trigger = Trigger::schedule;
    std::optional<SysSeconds> scheduled;
    SysMicros started{};
    std::optional<SysMicros> ended;
    std::map<std::string, TargetResult> targets;  ///< by machine
    bool kill_requested = false;
    bool launching_done = false;  ///< no further targets will be added

    bool finished() const noexcept { return ended.has_value(); }
    std::size_t total() const noexcept;   ///< targets with a result
    std::size_t failed() const noexcept;  ///< results other than 0
    /// Every target succeeded and there was at least one.
    bool success() const noexcept { return total() > 0 && failed() == 0 && total() == targets.size(); }
    /// A copy with every field but the targets' output (the timeline needs times and codes only).
    RunRecord without_output() const;
};

/// What an executor says about a run it opens.
struct RunSpec {
    std::string instance;
    std::string job;
    std::string group;
    Trigger trigger = Trigger::schedule;
    std::optional<SysSeconds> scheduled;
    std::chrono::seconds timeout{3600};            ///< 0 = unlimited
    std::chrono::seconds heartbeat_timeout{15};
};

/// Per-job summary (the original's state[job]).
struct JobStatus {
    std::optional<SysMicros> last_run;
    std::optional<SysSeconds> next_run;
    std::optional<bool> last_success;
    std::size_t last_failed_count = 0;
    std::size_t last_total_count = 0;
    bool overlap = false;
};

/// Hears about every change of a run, on the io thread. Default implementations do nothing.
class RunObserver {
public:
    virtual ~RunObserver() = default;
    /// A record for `<logdir>/<job>.log` (and search sinks).
    virtual void on_log(const std::string& /*job*/, const LogRecord& /*record*/) {}
    virtual void on_run_started(const RunRecord& /*run*/) {}
    virtual void on_target_started(const RunRecord& /*run*/, const TargetResult& /*target*/) {}
    virtual void on_output(const RunRecord& /*run*/, const TargetResult& /*target*/, std::string_view /*data*/) {}
    virtual void on_target_finished(const RunRecord& /*run*/, const TargetResult& /*target*/) {}
    virtual void on_run_finished(const RunRecord& /*run*/) {}
};

}  // namespace saltpeter
