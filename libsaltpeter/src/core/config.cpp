// The config module's plumbing: names of enums, merging the files, reading the directory and the
// reloading loader. Parsing one file is in config_parse.cpp, time checks in config_validate.cpp.

#include "saltpeter/config.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

namespace saltpeter {

namespace {

constexpr std::string_view k_target_type_names[] = {"glob",   "pcre",        "list",      "grain",
                                                   "grain_pcre", "pillar", "pillar_pcre", "nodegroup",
                                                   "compound", "ipcidr",   "range"};

Problem make_problem(Problem::Severity severity, std::string file, int line, std::string job, std::string field,
                     std::string message) {
    Problem p;
    p.severity = severity;
    p.file = std::move(file);
    p.line = line;
    p.job = std::move(job);
    p.field = std::move(field);
    p.message = std::move(message);
    return p;
}

std::string location(const std::string& file, int line) {
    return line > 0 ? file + ":" + std::to_string(line) : file;
}

bool has_config_extension(const std::string& name) {
    for (std::string_view ext : {".yaml", ".yml"}) {
        if (name.size() > ext.size() && name.compare(name.size() - ext.size(), ext.size(), ext) == 0) return true;
    }
    return false;
}

// One file of the directory, read or with the reason it could not be.
struct DirFile {
    std::string path;
    bool read_ok = false;
    std::string text;
    std::string error;
};

Result<std::vector<DirFile>> read_dir_files(const std::string& dir) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::directory_iterator it(dir, ec);
    if (ec) return Error{"cannot read config directory '" + dir + "': " + ec.message(), ""};
    std::vector<std::string> names;
    for (; it != fs::directory_iterator(); it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (name.empty() || name[0] == '.' || !has_config_extension(name)) continue;
        std::error_code sec;
        const fs::file_status st = it->status(sec);
        // A dangling symlink is a file the operator meant us to read, so it is reported; other
        // non-regular entries (directories, sockets) are not config files and are skipped.
        const bool dangling = fs::is_symlink(it->symlink_status(sec)) && !fs::exists(st);
        if (!dangling && !fs::is_regular_file(st)) continue;
        names.push_back(name);
    }
    if (ec) return Error{"cannot read config directory '" + dir + "': " + ec.message(), ""};
    std::sort(names.begin(), names.end());

    std::vector<DirFile> files;
    for (const auto& name : names) {
        DirFile f;
        f.path = dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
        errno = 0;
        std::ifstream in(f.path, std::ios::binary);
        if (!in) {
            f.error = std::string("cannot read file: ") + std::strerror(errno != 0 ? errno : EIO);
        } else {
            std::ostringstream text;
            text << in.rdbuf();
            if (in.bad()) {
                f.error = "cannot read file: read error";
            } else {
                f.read_ok = true;
                f.text = text.str();
            }
        }
        files.push_back(std::move(f));
    }
    return files;
}

FileConfig unreadable_file(const DirFile& f) {
    FileConfig fc;
    fc.origin = f.path;
    fc.readable = false;
    fc.problems.push_back(make_problem(Problem::Severity::error, f.path, 0, "", "", f.error));
    return fc;
}

}  // namespace

std::string Problem::to_string() const {
    std::string out = file;
    if (line > 0) {
        out += ":" + std::to_string(line);
        if (column > 0) out += ":" + std::to_string(column);
    }
    if (!out.empty()) out += ": ";
    if (severity == Severity::warning) out += "warning: ";
    if (!job.empty()) out += "job '" + job + "': ";
    if (!field.empty()) out += "field '" + field + "': ";
    out += message;
    return out;
}

std::string_view to_string(TargetType t) noexcept {
    return k_target_type_names[static_cast<std::size_t>(t)];
}

std::optional<TargetType> target_type_from_string(std::string_view s) noexcept {
    for (std::size_t i = 0; i < std::size(k_target_type_names); ++i) {
        if (k_target_type_names[i] == s) return static_cast<TargetType>(i);
    }
    return std::nullopt;
}

std::string_view to_string(Concurrency c) noexcept {
    switch (c) {
        case Concurrency::allow: return "allow";
        case Concurrency::replace: return "replace";
        case Concurrency::forbid: break;
    }
    return "forbid";
}

std::string_view to_string(Misfire m) noexcept { return m == Misfire::run_once ? "run_once" : "skip"; }

unsigned Amount::resolve(unsigned total) const noexcept {
    if (!percent) return value;
    const auto count = static_cast<unsigned>((static_cast<std::uint64_t>(total) * value + 99) / 100);
    return value > 0 && count == 0 ? 1 : count;
}

bool Maintenance::global_active(SysSeconds now) const noexcept {
    return global && (!global_until || now < *global_until);
}

const Job* Config::find(std::string_view name) const noexcept {
    const auto it = std::lower_bound(jobs.begin(), jobs.end(), name,
                                     [](const Job& j, std::string_view n) { return j.name < n; });
    return it != jobs.end() && it->name == name ? &*it : nullptr;
}

std::size_t LoadResult::error_count() const noexcept {
    return static_cast<std::size_t>(
        std::count_if(problems.begin(), problems.end(), [](const Problem& p) { return p.is_error(); }));
}

std::size_t LoadResult::warning_count() const noexcept { return problems.size() - error_count(); }

LoadResult merge_configs(const std::vector<FileConfig>& files) {
    LoadResult result;
    struct Seen {
        std::string file;
        int line;
    };
    std::map<std::string, Seen> seen;
    std::string timezone_file;
    int timezone_line = 0;
    for (const auto& file : files) {
        result.problems.insert(result.problems.end(), file.problems.begin(), file.problems.end());
        file.apply_settings(result.config.settings);
        file.apply_maintenance(result.config.maintenance);
        for (const auto& key : file.settings_keys) {
            if (key.name == "default_timezone") {
                timezone_file = file.origin;
                timezone_line = key.line;
            }
        }
        for (const auto& job : file.jobs) {
            const auto [it, inserted] = seen.emplace(job.name, Seen{job.file, job.line});
            if (!inserted) {
                result.problems.push_back(make_problem(
                    Problem::Severity::error, job.file, job.line, job.name, "",
                    "job '" + job.name + "' is defined in " + location(it->second.file, it->second.line) +
                        " and again in " + location(job.file, job.line) + "; the later definition is ignored"));
                continue;
            }
            result.config.jobs.push_back(job);
        }
    }

    Settings& settings = result.config.settings;
    TimeZone default_zone = TimeZone::utc();
    if (auto zone = TimeZone::locate(settings.default_timezone)) {
        default_zone = *zone;
    } else {
        result.problems.push_back(make_problem(Problem::Severity::error, timezone_file, timezone_line, "",
                                               "default_timezone", zone.error().message + "; UTC is used"));
        settings.default_timezone = "UTC";
    }
    std::vector<Job> jobs;
    for (auto& job : result.config.jobs) {
        if (job.timezone.empty()) {
            job.zone = default_zone;
        } else if (auto zone = TimeZone::locate(job.timezone)) {
            job.zone = *zone;
        } else {
            // parse_config() checked the name already; a zone file removed since then lands here.
            result.problems.push_back(make_problem(Problem::Severity::error, job.file, job.line, job.name, "timezone",
                                                   zone.error().message + "; the job is skipped"));
            continue;
        }
        jobs.push_back(std::move(job));
    }
    std::sort(jobs.begin(), jobs.end(), [](const Job& a, const Job& b) { return a.name < b.name; });
    result.config.jobs = std::move(jobs);
    return result;
}

Result<LoadResult> load_config_dir(const std::string& dir) {
    auto files = read_dir_files(dir);
    if (!files) return files.error();
    std::vector<FileConfig> configs;
    for (const auto& f : *files) {
        configs.push_back(f.read_ok ? parse_config(f.text, f.path) : unreadable_file(f));
    }
    return merge_configs(configs);
}

ConfigLoader::ConfigLoader(std::string dir) : m_dir(std::move(dir)) {}

Result<LoadResult> ConfigLoader::reload() {
    auto files = read_dir_files(m_dir);
    if (!files) return files.error();
    std::vector<FileConfig> configs;
    std::set<std::string> present;
    for (const auto& f : *files) {
        present.insert(f.path);
        FileConfig fc = f.read_ok ? parse_config(f.text, f.path) : unreadable_file(f);
        if (fc.readable) {
            // Per job there is no memory: a job that turned invalid in a readable file is reported
            // and dropped, because the file as a whole says what the operator wants now.
            m_last_good[f.path] = fc;
            configs.push_back(std::move(fc));
            continue;
        }
        const auto last = m_last_good.find(f.path);
        if (last == m_last_good.end()) {
            configs.push_back(std::move(fc));
            continue;
        }
        FileConfig kept = last->second;
        kept.problems = std::move(fc.problems);
        kept.problems.push_back(make_problem(Problem::Severity::warning, f.path, 0, "", "",
                                             "keeping the last good version of this file (" +
                                                 std::to_string(kept.jobs.size()) + " jobs)"));
        configs.push_back(std::move(kept));
    }
    // A deleted file takes its jobs with it.
    for (auto it = m_last_good.begin(); it != m_last_good.end();) {
        it = present.count(it->first) != 0 ? std::next(it) : m_last_good.erase(it);
    }
    return merge_configs(configs);
}

}  // namespace saltpeter
