#pragma once
// Job configuration: the YAML files of the config directory (PROTOCOL.md 2.6 and 5.7).
// parse_config() is pure (text in, jobs and problems out); load_config_dir() and ConfigLoader
// read the directory. A broken file or job is reported and skipped; it never hides the others.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "saltpeter/cron_expression.hpp"
#include "saltpeter/result.hpp"
#include "saltpeter/time.hpp"
#include "saltpeter/time_zone.hpp"

namespace saltpeter {

/// One finding of the loader or validator, with where it is. Lines and columns are 1-based;
/// 0 means unknown.
struct Problem {
    enum class Severity { error, warning };
    Severity severity = Severity::error;
    std::string file;
    int line = 0;
    int column = 0;
    std::string job;    ///< empty when the problem is not about one job
    std::string field;  ///< the YAML key, empty when not about one key
    std::string message;

    /// "file:line:col: job 'name': field 'key': message" (parts that are unknown are left out;
    /// warnings read "file:line:col: warning: job ...").
    std::string to_string() const;
    bool is_error() const noexcept { return severity == Severity::error; }
};

enum class TargetType { glob, pcre, list, grain, grain_pcre, pillar, pillar_pcre, nodegroup, compound, ipcidr, range };
std::string_view to_string(TargetType t) noexcept;
std::optional<TargetType> target_type_from_string(std::string_view s) noexcept;

/// What happens when a job fires while an earlier instance still runs.
enum class Concurrency { forbid, allow, replace };
std::string_view to_string(Concurrency c) noexcept;

/// What happens to fire times missed while spd was down.
enum class Misfire { skip, run_once };
std::string_view to_string(Misfire m) noexcept;

/// A count given either as a number or as a percentage of a total ("25%").
struct Amount {
    unsigned value = 0;
    bool percent = false;
    /// The count for `total` targets: a percentage rounds up and is at least 1 when value > 0.
    unsigned resolve(unsigned total) const noexcept;
    bool is_set() const noexcept { return value != 0; }
};

/// Per-job or default notification settings.
struct Notify {
    std::vector<std::string> on;  ///< any of failure, success, missed, recovered
    std::string webhook;
};

/// One job of the config (PROTOCOL.md 2.6 plus 5.6/5.7); every member holds its default until set.
struct Job {
    /// A job firing on `expr` with every other key at its default (CronExpression has no default).
    explicit Job(CronExpression expr) : schedule(std::move(expr)) {}

    std::string name;
    std::string group;  ///< the file name without its extension
    std::string file;   ///< the file it came from (as given to the loader)
    int line = 0;       ///< where the job's key is

    CronExpression schedule;  ///< from the `schedule:` macro/expression or the sec..year keys
    std::string timezone;     ///< IANA name; empty = saltpeter_config.default_timezone
    TimeZone zone = TimeZone::utc();  ///< resolved zone (utc: true forces UTC)

    std::string command;
    std::string targets;     ///< a list in YAML is joined with ','
    TargetType target_type = TargetType::glob;
    std::optional<std::string> cwd;
    std::optional<std::string> user;
    std::vector<std::pair<std::string, std::string>> env;  ///< in file order; values stringified

    bool use_wrapper = true;
    std::optional<std::string> wrapper_path;
    std::optional<std::string> saltpeter_server_host;
    std::optional<std::string> wrapper_loglevel;
    std::optional<std::string> wrapper_logdir;
    std::optional<std::string> lockfile;

    std::chrono::seconds timeout{3600};  ///< 0 = unlimited
    std::optional<std::chrono::seconds> heartbeat_timeout;

    Concurrency concurrency = Concurrency::forbid;
    unsigned number_of_targets = 0;  ///< 0 = all
    Amount batch_size;               ///< 0 = one batch
    std::chrono::seconds batch_wait{0};
    Amount max_failures;             ///< 0 = no limit
    unsigned canary = 0;
    Misfire misfire = Misfire::skip;
    std::chrono::seconds misfire_grace{300};
    unsigned retries = 0;
    std::chrono::seconds retry_backoff{10};
    std::chrono::seconds retry_backoff_max{300};
    std::chrono::seconds splay{0};
    std::optional<Notify> notify;
};

struct ApiToken {
    std::string name;
    std::string token;       ///< the secret itself; empty when token_file is given
    std::string token_file;  ///< read by the API server at start-up (parsing stays pure)
    std::string role = "read";  ///< read | operate
};

/// The `saltpeter_config` section (merged across files in file-name order, later wins per key).
struct Settings {
    std::string logdir = "/var/log/saltpeter";
    bool debug = false;
    bool api_ws = false;
    std::uint16_t api_ws_port = 8888;
    std::string api_ws_bind_addr = "0.0.0.0";
    std::uint16_t machines_ws_port = 8889;
    /// A wrapper socket that sends no valid frame within this is closed (1008); 0 = never.
    std::chrono::seconds machines_idle_timeout{60};
    std::string machines_ws_bind_addr = "0.0.0.0";
    std::string default_saltpeter_server_host;  ///< empty = this host's name
    /// empty = the transport's default: /usr/local/bin/sp_wrapper through Salt, the sp_wrapper
    /// installed beside spd with the local transport
    std::string default_wrapper_path;
    std::string default_wrapper_loglevel = "normal";
    std::string default_wrapper_logdir = "/var/log/sp_wrapper";
    std::string elasticsearch;
    std::string opensearch;
    std::string elasticsearch_index = "saltpeter";
    std::string opensearch_index = "saltpeter";
    std::chrono::seconds heartbeat_timeout{15};
    std::chrono::seconds startup_timeout{30};
    std::chrono::seconds timeout_grace{30};
    std::chrono::seconds kill_grace{30};
    std::string default_timezone = "UTC";
    std::string wrapper_secret_file;  ///< empty = <logdir>/wrapper.secret
    std::string wrapper_auth = "required";  ///< required | compatible
    std::vector<ApiToken> api_tokens;
    std::string tls_cert;
    std::string tls_key;
    std::vector<std::string> cors_origins;
    std::vector<std::string> local_minions;  ///< local transport; empty = this host's name
    std::string salt_binary = "salt";
    std::string salt_run_binary = "salt-run";
    std::string salt_config_dir;
    std::string salt_api_url;
    std::string salt_api_username;
    std::string salt_api_password_file;
    std::string salt_api_eauth = "pam";
    std::string salt_api_ca_file;
    std::string state_db;  ///< empty = <logdir>/state.db
    unsigned history_max_runs = 1000;
    unsigned history_max_days = 90;
    std::uint64_t output_max_bytes = 16u * 1024u * 1024u;
    std::optional<Notify> notify;
};

/// The `saltpeter_maintenance` section. Entries are minion ids or target expressions
/// (globs, G@grain:value, compound); `until` makes an entry lapse by itself.
struct Maintenance {
    struct Entry {
        std::string target;
        std::optional<SysSeconds> until;
    };
    bool global = false;
    std::optional<SysSeconds> global_until;
    std::vector<Entry> machines;
    /// Global maintenance in force at `now`.
    bool global_active(SysSeconds now) const noexcept;
};

/// One key a file sets in `saltpeter_config` or `saltpeter_maintenance`, and where.
struct SectionKey {
    std::string name;
    int line = 0;  ///< 1-based line of the key
};

/// What one YAML file contributes.
struct FileConfig {
    std::string origin;     ///< file name as given
    bool readable = true;   ///< false when the YAML itself is broken (no jobs taken from it)
    std::vector<Job> jobs;  ///< the valid jobs, in file order
    /// saltpeter_config keys this file sets with a valid value, in file order; their values are
    /// in settings_patch. Keys with a bad value are reported and left out (the default stays).
    std::vector<SectionKey> settings_keys;
    std::shared_ptr<const Settings> settings_patch;
    /// saltpeter_maintenance keys ("global", "machines") this file sets with a valid value; their
    /// values are in `maintenance`.
    std::vector<SectionKey> maintenance_keys;
    std::optional<Maintenance> maintenance;
    std::vector<Problem> problems;

    /// Copies the values of this file's saltpeter_config keys onto `settings` (later file wins).
    void apply_settings(Settings& settings) const;
    /// Copies this file's saltpeter_maintenance keys onto `maintenance` (later file wins).
    void apply_maintenance(Maintenance& maintenance) const;
};

/// The effective configuration.
struct Config {
    Settings settings;
    Maintenance maintenance;
    std::vector<Job> jobs;  ///< sorted by name, unique names
    const Job* find(std::string_view name) const noexcept;
};

struct LoadResult {
    Config config;
    std::vector<Problem> problems;  ///< errors and warnings, in file order
    std::size_t error_count() const noexcept;
    std::size_t warning_count() const noexcept;
};

/// Parses one YAML document. `origin` names the file in problems and gives the group
/// (its base name without .yaml/.yml). Never throws on bad input.
FileConfig parse_config(std::string_view text, std::string_view origin);

/// Merges file results (in the order given): settings and maintenance later-wins, jobs unique by
/// name (a duplicate is an error naming both files; the first stays), zones resolved.
LoadResult merge_configs(const std::vector<FileConfig>& files);

/// Reads every *.yaml / *.yml in `dir` (sorted by name). Error only when `dir` cannot be read.
Result<LoadResult> load_config_dir(const std::string& dir);

/// Checks that need the time: expressions that never fire again after `now`, fixed-hour jobs in
/// zones whose DST changes skip or repeat their wall times (warnings).
std::vector<Problem> validate_schedules(const Config& config, SysSeconds now);

/// Keeps the last good version of each file across reloads: when a file that loaded before
/// becomes unreadable, its previous jobs stay in force and the problem is reported.
class ConfigLoader {
public:
    explicit ConfigLoader(std::string dir);
    /// Re-reads the directory. Error only when the directory cannot be read.
    Result<LoadResult> reload();
    const std::string& dir() const noexcept { return m_dir; }

private:
    std::string m_dir;
    std::map<std::string, FileConfig> m_last_good;  ///< by file name
};

}  // namespace saltpeter
