// UI protocol (ui_protocol.hpp): the frames of PROTOCOL.md 3.3 built with ordered JSON so that
// `type` comes first as in the original, and non-ASCII escaped as Python's json.dumps does.
#include "api/ui_protocol.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "core/utf8_decoder.hpp"
#include "saltpeter/time_zone.hpp"
#include "saltpeter/version.hpp"

namespace saltpeter::ui {

namespace {

using Json = nlohmann::ordered_json;

std::string dump(const Json& j) { return j.dump(-1, ' ', true, Json::error_handler_t::replace); }

Json time_or_empty(const std::optional<SysMicros>& t, bool iso) {
    if (!t) return "";
    return iso ? iso_datetime(*t) : python_datetime(*t);
}

Json seconds_or_empty(const std::optional<SysSeconds>& t) {
    if (!t) return "";
    return iso_datetime(std::chrono::time_point_cast<std::chrono::microseconds>(*t));
}

Json job_json(const Job& job) {
    Json j;
    j["command"] = job.command;
    j["targets"] = job.targets;
    j["target_type"] = std::string(to_string(job.target_type));
    const auto& f = job.schedule.fields();
    j["sec"] = f.sec;
    j["min"] = f.min;
    j["hour"] = f.hour;
    j["dom"] = f.dom;
    j["mon"] = f.mon;
    j["dow"] = f.dow;
    j["year"] = f.year;
    j["utc"] = job.timezone.empty() || job.timezone == "UTC";
    if (!job.timezone.empty()) j["timezone"] = job.timezone;
    j["timeout"] = job.timeout.count();
    j["group"] = job.group;
    if (job.cwd) j["cwd"] = *job.cwd;
    if (job.user) j["user"] = *job.user;
    if (job.number_of_targets != 0) j["number_of_targets"] = job.number_of_targets;
    if (job.batch_size.is_set()) {
        j["batch_size"] = job.batch_size.percent ? Json(std::to_string(job.batch_size.value) + "%")
                                                 : Json(job.batch_size.value);
    }
    j["use_wrapper"] = job.use_wrapper;
    j["concurrency"] = std::string(to_string(job.concurrency));
    return j;
}

Json config_object(const Config& config, double serial) {
    Json crons = Json::object();
    for (const Job& job : config.jobs) crons[job.name] = job_json(job);
    Json machines = Json::array();
    for (const auto& m : config.maintenance.machines) machines.push_back(m.target);
    const Settings& s = config.settings;
    Json settings;
    settings["logdir"] = s.logdir;
    settings["api_ws"] = s.api_ws;
    settings["api_ws_port"] = s.api_ws_port;
    settings["machines_ws_port"] = s.machines_ws_port;
    settings["heartbeat_timeout"] = s.heartbeat_timeout.count();
    settings["default_timezone"] = s.default_timezone;
    settings["wrapper_auth"] = s.wrapper_auth;
    Json j;
    j["crons"] = std::move(crons);
    j["maintenance"] = Json{{"global", config.maintenance.global}, {"machines", std::move(machines)}};
    j["serial"] = serial;
    j["saltpeter_config"] = std::move(settings);
    return j;
}

Json running_object(const std::map<std::string, RunRecord>& runs) {
    Json j = Json::object();
    for (const auto& [instance, run] : runs) {
        if (run.finished()) continue;
        Json machines = Json::array();
        for (const auto& [machine, target] : run.targets) machines.push_back(machine);
        j[instance] = Json{{"started", iso_datetime(run.started)},
                           {"name", run.job},
                           {"machines", std::move(machines)},
                           {"stop_signal", run.kill_requested}};
    }
    return j;
}

}  // namespace

Result<Command> parse_command(std::string_view text) {
    Json j = Json::parse(text.begin(), text.end(), nullptr, false);
    if (j.is_discarded()) return Error{"invalid JSON in UI frame", ""};
    Command c;
    if (!j.is_object()) return c;
    auto names = [](const Json& v, std::vector<std::string>& out) {
        if (v.is_string()) {
            out.push_back(v.get<std::string>());
            return true;
        }
        if (!v.is_array()) return false;
        for (const auto& x : v) {
            if (x.is_string()) out.push_back(x.get<std::string>());
        }
        return true;
    };
    auto str = [](const Json& obj, const char* key) -> std::string {
        auto it = obj.find(key);
        return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
    };
    if (auto it = j.find("subscribe"); it != j.end()) {
        if (names(*it, c.jobs)) c.kind = Command::Kind::subscribe;
    } else if (auto un = j.find("unsubscribe"); un != j.end()) {
        if (names(*un, c.jobs)) c.kind = Command::Kind::unsubscribe;
    } else if (auto ack = j.find("ack"); ack != j.end()) {
        if (ack->is_object()) {
            c.kind = Command::Kind::ack;
            c.job = str(*ack, "cron");
            c.machine = str(*ack, "machine");
            auto p = ack->find("position");
            if (p != ack->end() && p->is_number_integer()) c.position = p->get<std::int64_t>();
        }
    } else if (auto run = j.find("run"); run != j.end()) {
        if (run->is_string()) {
            c.kind = Command::Kind::run;
            c.job = run->get<std::string>();
        }
    } else if (auto kc = j.find("killCron"); kc != j.end()) {
        if (kc->is_string()) {
            c.kind = Command::Kind::kill_cron;
            c.job = kc->get<std::string>();
        }
    } else if (auto km = j.find("killMachine"); km != j.end()) {
        if (km->is_object()) {
            c.kind = Command::Kind::kill_machine;
            c.job = str(*km, "cron");
            c.machine = str(*km, "machine");
            const std::string instance = str(*km, "job_instance");
            if (!instance.empty()) c.instance = instance;
            if (c.job.empty() || c.machine.empty()) c.kind = Command::Kind::none;
        }
    } else if (auto tl = j.find("getTimeline"); tl != j.end()) {
        if (tl->is_object()) {
            c.kind = Command::Kind::get_timeline;
            c.start_date = str(*tl, "start_date");
            c.end_date = str(*tl, "end_date");
            c.id = str(*tl, "id");
        }
    } else if (auto push = j.find("push"); push != j.end()) {
        if (push->is_boolean()) {
            c.kind = Command::Kind::push;
            c.push = push->get<bool>();
        }
    }
    return c;
}

std::size_t utf16_length(std::string_view s) noexcept {
    std::size_t units = 0;
    for (std::size_t i = 0; i < s.size();) {
        const auto b = static_cast<unsigned char>(s[i]);
        std::size_t len = utf8_sequence_length(b);
        bool ok = len > 1 && i + len <= s.size();
        for (std::size_t k = 1; ok && k < len; ++k) ok = utf8_is_continuation(static_cast<unsigned char>(s[i + k]));
        if (!ok) len = 1;
        units += len == 4 ? 2 : 1;
        i += len;
    }
    return units;
}

std::size_t byte_offset_of_utf16(std::string_view s, std::size_t units) noexcept {
    std::size_t done = 0;
    std::size_t i = 0;
    while (i < s.size() && done < units) {
        const auto b = static_cast<unsigned char>(s[i]);
        std::size_t len = utf8_sequence_length(b);
        bool ok = len > 1 && i + len <= s.size();
        for (std::size_t k = 1; ok && k < len; ++k) ok = utf8_is_continuation(static_cast<unsigned char>(s[i + k]));
        if (!ok) len = 1;
        const std::size_t w = len == 4 ? 2 : 1;
        if (done + w > units) break;  // never split a surrogate pair's character
        done += w;
        i += len;
    }
    return i;
}

const RunRecord* latest_run(const std::map<std::string, RunRecord>& runs, const std::string& job) {
    const RunRecord* best = nullptr;
    for (const auto& [instance, run] : runs) {
        if (run.job != job) continue;
        if (best == nullptr || run.started > best->started || (run.started == best->started && instance > best->instance))
            best = &run;
    }
    return best;
}

std::string config_json(const Config& config, double serial) { return dump(config_object(config, serial)); }

std::string config_frame(const Config& config, double serial) {
    Json j;
    j["type"] = "config";
    j["config"] = config_object(config, serial);
    j["sp_version"] = std::string(version());
    return dump(j);
}

std::string running_json(const std::map<std::string, RunRecord>& runs) { return dump(running_object(runs)); }

std::string status_frame(const std::map<std::string, RunRecord>& runs, const std::map<std::string, JobStatus>& status) {
    Json last_state = Json::object();
    for (const auto& [job, st] : status) {
        if (!st.last_run) continue;
        bool running = false;
        for (const auto& [instance, run] : runs) running = running || (run.job == job && !run.finished());
        last_state[job] = Json{{"last_run", iso_datetime(*st.last_run)},
                               {"result_ok", running || st.last_success.value_or(false)}};
    }
    Json j;
    j["type"] = "status";
    j["running"] = running_object(runs);
    j["last_state"] = std::move(last_state);
    j["sp_version"] = std::string(version());
    return dump(j);
}

std::string output_chunk_frame(const OutputChunk& c) {
    Json j;
    j["type"] = "output_chunk";
    j["cron"] = c.cron;
    j["machine"] = c.machine;
    j["chunk"] = c.chunk;
    j["position"] = c.position;
    j["total_length"] = c.total_length;
    j["is_complete"] = c.is_complete;
    if (!c.instance.empty()) j["job_instance"] = c.instance;
    return dump(j);
}

std::string details_frame(const std::string& job, const std::string& group, const JobStatus* status,
                          const RunRecord* latest, bool push_fields) {
    Json data;
    data["next_run"] = status ? seconds_or_empty(status->next_run) : Json("");
    data["last_run"] = status ? time_or_empty(status->last_run, true) : Json("");
    data["overlap"] = status ? status->overlap : false;
    data["group"] = group;
    Json targets = Json::array();
    Json results = Json::object();
    if (latest != nullptr) {
        for (const auto& [machine, t] : latest->targets) {
            targets.push_back(machine);
            Json r;
            r["ret"] = "";
            r["retcode"] = t.retcode ? Json(*t.retcode) : Json("");
            r["starttime"] = t.state == TargetState::pending ? Json("") : Json(python_datetime(t.starttime));
            r["endtime"] = time_or_empty(t.endtime, false);
            if (!t.wrapper_version.empty()) r["wrapper_version"] = t.wrapper_version;
            if (t.last_heartbeat) r["last_heartbeat"] = python_datetime(*t.last_heartbeat);
            r["output_length"] = utf16_length(t.output);
            results[machine] = std::move(r);
        }
    }
    data["targets"] = std::move(targets);
    data["results"] = std::move(results);
    data["last_success"] = status && status->last_success ? Json(*status->last_success) : Json("");
    data["last_failed_count"] = status ? status->last_failed_count : 0;
    data["last_total_count"] = status ? status->last_total_count : 0;
    if (push_fields) {
        data["job_instance"] = latest ? latest->instance : std::string();
        data["finished"] = latest ? latest->finished() : false;
    }
    Json j;
    j["type"] = "details";
    j["cron"] = job;
    j["data"] = std::move(data);
    return dump(j);
}

std::string timeline_frame() { return dump(Json{{"timeline", Json::object()}}); }

Result<SysMicros> parse_timeline_bound(std::string_view text, SysMicros now) {
    if (text.substr(0, 3) == "now") {
        std::string_view rest = text.substr(3);
        if (rest.empty()) return now;
        if (rest.size() < 3 || (rest[0] != '-' && rest[0] != '+')) {
            return Error{"timeline bound '" + std::string(text) + "': expected now, now-<n><s|m|h|d|w> or ISO 8601", "start_date"};
        }
        std::int64_t n = 0;
        std::size_t i = 1;
        for (; i < rest.size() && rest[i] >= '0' && rest[i] <= '9' && n < 100000000; ++i) n = n * 10 + (rest[i] - '0');
        if (i == 1 || i + 1 != rest.size()) {
            return Error{"timeline bound '" + std::string(text) + "': expected now, now-<n><s|m|h|d|w> or ISO 8601", "start_date"};
        }
        std::int64_t unit = 0;
        switch (rest[i]) {
            case 's': unit = 1; break;
            case 'm': unit = 60; break;
            case 'h': unit = 3600; break;
            case 'd': unit = 86400; break;
            case 'w': unit = 7 * 86400; break;
            default:
                return Error{"timeline bound '" + std::string(text) + "': unknown unit '" + std::string(1, rest[i]) +
                                 "' (s, m, h, d, w)",
                             "start_date"};
        }
        const auto delta = std::chrono::seconds(n * unit);
        return rest[0] == '-' ? now - delta : now + delta;
    }
    auto t = parse_iso8601(text, TimeZone::utc());
    if (!t) return Error{"timeline bound: " + t.error().message, "start_date"};
    return std::chrono::time_point_cast<std::chrono::microseconds>(*t);
}

std::string timeline_frame(const std::map<std::string, RunRecord>& runs, SysMicros start, SysMicros end,
                           const std::string& id, double serial) {
    struct Entry {
        SysMicros at;
        Json json;
    };
    std::vector<Entry> entries;
    auto add = [&](const RunRecord& run, SysMicros at, int code, const char* type) {
        if (at < start || at > end) return;
        entries.push_back({at, Json{{"cron", run.job},
                                    {"timestamp", iso_datetime(at)},
                                    {"ret_code", code},
                                    {"msg_type", type},
                                    {"job_instance", run.instance}}});
    };
    for (const auto& [instance, run] : runs) {
        for (const auto& [machine, target] : run.targets) {
            add(run, target.starttime, 0, "machine_start");
            if (target.endtime && target.retcode) add(run, *target.endtime, *target.retcode, "machine_result");
        }
    }
    std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.at < b.at; });
    Json content = Json::array();
    for (auto& e : entries) content.push_back(std::move(e.json));
    return dump(Json{{"timeline", {{"content", std::move(content)}, {"id", id}, {"serial", serial}}}});
}

std::string error_json(std::string_view message) { return dump(Json{{"error", std::string(message)}}); }

std::string run_json(const RunRecord& run, bool with_output) {
    Json j;
    j["instance"] = run.instance;
    j["job"] = run.job;
    j["group"] = run.group;
    j["trigger"] = std::string(to_string(run.trigger));
    j["started"] = iso_datetime(run.started);
    j["ended"] = run.ended ? Json(iso_datetime(*run.ended)) : Json(nullptr);
    j["finished"] = run.finished();
    j["success"] = run.success();
    j["kill_requested"] = run.kill_requested;
    Json targets = Json::object();
    for (const auto& [machine, t] : run.targets) {
        Json r;
        r["state"] = std::string(to_string(t.state));
        r["retcode"] = t.retcode ? Json(*t.retcode) : Json(nullptr);
        r["starttime"] = t.state == TargetState::pending ? Json(nullptr) : Json(iso_datetime(t.starttime));
        r["endtime"] = t.endtime ? Json(iso_datetime(*t.endtime)) : Json(nullptr);
        double duration = 0;
        if (t.endtime && t.state != TargetState::pending)
            duration = std::chrono::duration<double>(*t.endtime - t.starttime).count();
        r["duration"] = t.endtime ? Json(duration) : Json(nullptr);
        // A stored run listed without its output: the bytes the target printed.
        r["output_length"] = t.output.empty() ? t.output_bytes : t.output.size();
        if (!t.notes.empty()) r["notes"] = t.notes;
        if (with_output) r["output"] = t.output;
        targets[machine] = std::move(r);
    }
    j["targets"] = std::move(targets);
    return dump(j);
}

}  // namespace saltpeter::ui
