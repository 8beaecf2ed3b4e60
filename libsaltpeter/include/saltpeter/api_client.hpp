#pragma once
// ApiClient: a blocking client of spd's API (docs/api.md) for spctl, scripts and the Python
// bindings. Each call runs on a private io_context with a deadline; failures come back as an
// Error whose `field` says the kind: "unreachable", "unauthorized" (401), "forbidden" (403),
// "not_found" (404), "conflict" (409), "bad_request" (400/413), "server" (other), "protocol"
// (a body that is not the JSON expected). Messages name the URL and the server's error text.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "saltpeter/result.hpp"

namespace saltpeter {

struct ApiClientOptions {
    std::string url = "http://127.0.0.1:8888";  ///< http(s)://host:port; ws(s):// accepted
    std::string token;                          ///< sent as Authorization: Bearer (never logged)
    std::chrono::milliseconds timeout{10000};   ///< per HTTP request
    std::string ca_file;                        ///< https: extra CA bundle
};

/// Reads a spctl config file (YAML keys url, token, token_file, ca_file) onto `options`. A
/// missing file is not an error (options unchanged); a broken one names the file and line.
Status load_client_config(const std::string& path, ApiClientOptions& options);

/// One target of a run as the API reports it (times are ISO 8601, "" while unset).
struct TargetInfo {
    std::string machine;
    std::string state;  ///< pending, launched, started, finished
    std::optional<int> retcode;
    std::string starttime;
    std::string endtime;
    std::optional<double> duration;  ///< seconds, once finished
    std::uint64_t output_length = 0;
    std::vector<std::string> notes;
    std::string output;  ///< only filled by ApiClient::output()
};

struct RunInfo {
    std::string instance;
    std::string job;
    std::string trigger;
    std::string started;
    std::string ended;  ///< "" while running
    bool finished = false;
    bool success = false;
    bool kill_requested = false;
    std::vector<TargetInfo> targets;  ///< by machine name
};

struct JobInfo {
    std::string name;
    std::string group;
    std::string schedule;
    std::string timezone;
    std::string command;
    std::string targets;
    bool use_wrapper = true;
    std::string next_run;  ///< "" when none
    std::string last_run;
    std::optional<bool> last_success;
    std::vector<std::string> running;  ///< instances not ended
    std::size_t targets_running = 0;
    std::string last_instance;  ///< the newest run kept, "" when none
};

class ApiClient {
public:
    explicit ApiClient(ApiClientOptions options);
    ~ApiClient();
    ApiClient(const ApiClient&) = delete;
    ApiClient& operator=(const ApiClient&) = delete;

    /// GET `path` (e.g. "/jobs"); the body of a 2xx answer (raw JSON or text), else an Error.
    Result<std::string> get(const std::string& path);
    /// POST `body` (JSON) to `path`; the body of a 2xx answer, else an Error.
    Result<std::string> post(const std::string& path, const std::string& body);

    Result<std::vector<JobInfo>> jobs();
    Result<JobInfo> job(const std::string& name);
    /// Runs of `job`, newest first.
    Result<std::vector<RunInfo>> history(const std::string& job, std::size_t limit);
    Result<RunInfo> run(const std::string& instance);
    /// Output per machine of a run (only `machine` when given).
    Result<std::map<std::string, std::string>> output(const std::string& instance,
                                                      const std::optional<std::string>& machine = std::nullopt);
    /// Starts `job` now; returns the instance id. `force` starts it even while a `forbid` job
    /// runs. Under global maintenance the request is queued by spd: the Error's field is "queued".
    Result<std::string> run_now(const std::string& job, bool force = false);
    /// Kill request for `job` (all its running instances, or `instance`), optionally one machine.
    Status kill(const std::string& job, const std::optional<std::string>& machine = std::nullopt,
                const std::optional<std::string>& instance = std::nullopt);

    /// Streams the output of run `instance` of `job` over the /ws push mode until it has ended
    /// (all output so far first, then live). `on_output(machine, text)` gets each new piece in
    /// order; `on_update(run)` (may be empty) each time the run's state may have changed. Returns
    /// the finished run. Error when the socket cannot be opened or drops.
    Result<RunInfo> follow(const std::string& job, const std::string& instance,
                           const std::function<void(const std::string&, std::string_view)>& on_output,
                           const std::function<void(const RunInfo&)>& on_update = {});

    const ApiClientOptions& options() const noexcept { return m_options; }

private:
    ApiClientOptions m_options;
};

}  // namespace saltpeter
