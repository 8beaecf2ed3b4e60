// ApiClient (api_client.hpp): HTTP through http_client.cpp, the live stream through WsClient on a
// private io_context (the /ws push mode, docs/api.md).
#include "saltpeter/api_client.hpp"

#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <cctype>
#include <fstream>
#include <sstream>

#include "net/http_client.hpp"
#include "api/ui_protocol.hpp"
#include "net/ws_client.hpp"

namespace saltpeter {

namespace {

using Json = nlohmann::json;

std::string url_encode(std::string_view s) {
    static const char* k_hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += k_hex[c >> 4];
            out += k_hex[c & 15];
        }
    }
    return out;
}

std::string str_or_empty(const Json& j, const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

RunInfo parse_run(const Json& j) {
    RunInfo r;
    r.instance = str_or_empty(j, "instance");
    r.job = str_or_empty(j, "job");
    r.trigger = str_or_empty(j, "trigger");
    r.started = str_or_empty(j, "started");
    r.ended = str_or_empty(j, "ended");
    r.finished = j.value("finished", false);
    r.success = j.value("success", false);
    r.kill_requested = j.value("kill_requested", false);
    if (auto t = j.find("targets"); t != j.end() && t->is_object()) {
        for (const auto& [machine, v] : t->items()) {
            TargetInfo ti;
            ti.machine = machine;
            ti.state = str_or_empty(v, "state");
            if (v.contains("retcode") && v["retcode"].is_number_integer()) ti.retcode = v["retcode"].get<int>();
            ti.starttime = str_or_empty(v, "starttime");
            ti.endtime = str_or_empty(v, "endtime");
            if (v.contains("duration") && v["duration"].is_number()) ti.duration = v["duration"].get<double>();
            ti.output_length = v.value("output_length", std::uint64_t{0});
            if (v.contains("notes") && v["notes"].is_array()) {
                for (const auto& n : v["notes"]) {
                    if (n.is_string()) ti.notes.push_back(n.get<std::string>());
                }
            }
            r.targets.push_back(std::move(ti));
        }
    }
    return r;
}

JobInfo parse_job(const Json& j) {
    JobInfo info;
    info.name = str_or_empty(j, "name");
    info.group = str_or_empty(j, "group");
    info.schedule = str_or_empty(j, "schedule");
    info.timezone = str_or_empty(j, "timezone");
    info.command = str_or_empty(j, "command");
    info.targets = str_or_empty(j, "targets");
    info.use_wrapper = j.value("use_wrapper", true);
    info.next_run = str_or_empty(j, "next_run");
    info.last_run = str_or_empty(j, "last_run");
    if (j.contains("last_success") && j["last_success"].is_boolean()) info.last_success = j["last_success"].get<bool>();
    if (j.contains("running") && j["running"].is_array()) {
        for (const auto& r : j["running"]) {
            if (r.is_string()) info.running.push_back(r.get<std::string>());
        }
    }
    info.targets_running = j.value("targets_running", std::size_t{0});
    info.last_instance = str_or_empty(j, "last_instance");
    return info;
}

template <typename T, typename F>
Result<T> parse_body(const Result<std::string>& body, const std::string& what, F&& convert) {
    if (!body) return body.error();
    Json j = Json::parse(*body, nullptr, false);
    if (j.is_discarded()) return Error{"spd sent invalid JSON for " + what, "protocol"};
    try {
        return convert(j);
    } catch (const std::exception& e) {
        return Error{"spd sent unexpected JSON for " + what + ": " + e.what(), "protocol"};
    }
}

// The run as far as a push-mode `details` frame tells it (no output).
RunInfo run_from_details(const Json& data, const std::string& job) {
    RunInfo r;
    r.job = job;
    r.instance = str_or_empty(data, "job_instance");
    r.finished = data.value("finished", false);
    if (auto res = data.find("results"); res != data.end() && res->is_object()) {
        for (const auto& [machine, v] : res->items()) {
            TargetInfo t;
            t.machine = machine;
            if (v.contains("retcode") && v["retcode"].is_number_integer()) t.retcode = v["retcode"].get<int>();
            t.starttime = str_or_empty(v, "starttime");
            t.endtime = str_or_empty(v, "endtime");
            t.state = !t.endtime.empty() ? "finished" : (!t.starttime.empty() ? "started" : "pending");
            r.targets.push_back(std::move(t));
        }
    }
    return r;
}

}  // namespace

Status load_client_config(const std::string& path, ApiClientOptions& options) {
    std::ifstream in(path);
    if (!in) return Ok{};
    std::stringstream text;
    text << in.rdbuf();
    try {
        YAML::Node root = YAML::Load(text.str());
        if (root.IsNull()) return Ok{};
        if (!root.IsMap()) return Error{path + ": expected a mapping with url, token or token_file, ca_file", ""};
        if (root["url"]) options.url = root["url"].as<std::string>();
        if (root["ca_file"]) options.ca_file = root["ca_file"].as<std::string>();
        if (root["token"]) options.token = root["token"].as<std::string>();
        if (root["token_file"]) {
            const std::string file = root["token_file"].as<std::string>();
            std::ifstream tf(file);
            if (!tf) return Error{path + ": cannot read token_file " + file, "token_file"};
            std::getline(tf, options.token);
            while (!options.token.empty() && std::isspace(static_cast<unsigned char>(options.token.back())))
                options.token.pop_back();
        }
    } catch (const YAML::Exception& e) {
        return Error{path + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg, ""};
    }
    return Ok{};
}

ApiClient::ApiClient(ApiClientOptions options) : m_options(std::move(options)) {}
ApiClient::~ApiClient() = default;

namespace {

Result<std::string> call(const ApiClientOptions& o, const std::string& method, const std::string& path,
                         const std::string& body) {
    auto url = detail::parse_url(o.url);
    if (!url) return url.error();
    detail::HttpRequest req;
    req.method = method;
    req.target = path;
    req.body = body;
    req.timeout = o.timeout;
    req.ca_file = o.ca_file;
    if (!o.token.empty()) req.headers.emplace_back("Authorization", "Bearer " + o.token);
    auto res = detail::http_call(*url, req);
    if (!res) return res.error();
    if (res->status >= 200 && res->status < 300) return std::move(res->body);
    std::string message;
    Json j = Json::parse(res->body, nullptr, false);
    if (!j.is_discarded() && j.is_object() && j.contains("error") && j["error"].is_string()) message = j["error"].get<std::string>();
    if (message.empty()) message = res->body.substr(0, 200);
    const int s = res->status;
    const char* kind = s == 401 ? "unauthorized" : s == 403 ? "forbidden" : s == 404 ? "not_found" : s == 409 ? "conflict"
                     : (s == 400 || s == 413) ? "bad_request" : "server";
    return Error{message + " (HTTP " + std::to_string(s) + " from " + o.url + path + ")", kind};
}

}  // namespace

Result<std::string> ApiClient::get(const std::string& path) { return call(m_options, "GET", path, ""); }
Result<std::string> ApiClient::post(const std::string& path, const std::string& body) {
    return call(m_options, "POST", path, body);
}

Result<std::vector<JobInfo>> ApiClient::jobs() {
    return parse_body<std::vector<JobInfo>>(get("/jobs"), "/jobs", [](const Json& j) {
        std::vector<JobInfo> out;
        for (const auto& x : j) out.push_back(parse_job(x));
        return out;
    });
}

Result<JobInfo> ApiClient::job(const std::string& name) {
    return parse_body<JobInfo>(get("/jobs/" + url_encode(name)), "job " + name, [](const Json& j) { return parse_job(j); });
}

Result<std::vector<RunInfo>> ApiClient::history(const std::string& job, std::size_t limit) {
    return parse_body<std::vector<RunInfo>>(get("/jobs/" + url_encode(job) + "/runs?limit=" + std::to_string(limit)),
                                            "history of " + job, [](const Json& j) {
                                                std::vector<RunInfo> out;
                                                for (const auto& x : j) out.push_back(parse_run(x));
                                                return out;
                                            });
}

Result<RunInfo> ApiClient::run(const std::string& instance) {
    return parse_body<RunInfo>(get("/runs/" + url_encode(instance)), "run " + instance, [](const Json& j) { return parse_run(j); });
}

Result<std::map<std::string, std::string>> ApiClient::output(const std::string& instance,
                                                             const std::optional<std::string>& machine) {
    std::string path = "/runs/" + url_encode(instance) + "/output";
    if (machine) path += "?machine=" + url_encode(*machine);
    return parse_body<std::map<std::string, std::string>>(get(path), "output of " + instance, [](const Json& j) {
        std::map<std::string, std::string> out;
        for (const auto& [m, v] : j.at("outputs").items()) out[m] = v.get<std::string>();
        return out;
    });
}

Result<std::string> ApiClient::run_now(const std::string& job, bool force) {
    auto started = parse_body<Result<std::string>>(
        post("/jobs/" + url_encode(job) + "/run", Json{{"force", force}}.dump()), "run-now " + job,
        [](const Json& j) -> Result<std::string> {
            // Global maintenance: spd keeps the request and starts it when maintenance ends.
            if (j.value("queued", false)) return Error{j.value("message", std::string("queued")), "queued"};
            return j.at("instance").get<std::string>();
        });
    if (!started) return started.error();
    return *started;
}

Status ApiClient::kill(const std::string& job, const std::optional<std::string>& machine,
                       const std::optional<std::string>& instance) {
    Json body{{"job", job}};
    if (machine) body["machine"] = *machine;
    if (instance) body["instance"] = *instance;
    auto res = post("/kill", body.dump());
    if (!res) return res.error();
    return Ok{};
}

Result<RunInfo> ApiClient::follow(const std::string& job, const std::string& instance,
                                  const std::function<void(const std::string&, std::string_view)>& on_output,
                                  const std::function<void(const RunInfo&)>& on_update) {
    auto url = detail::parse_url(m_options.url);
    if (!url) return url.error();
    std::string ws_url = (url->scheme == "https" ? "wss://" : "ws://") + url->host + ":" + url->port + url->base +
                         "/ws?push=1&subscribe=" + url_encode(job);
    if (!m_options.token.empty()) ws_url += "&token=" + url_encode(m_options.token);
    const std::string shown = m_options.url + "/ws";

    boost::asio::io_context io;
    std::optional<Result<RunInfo>> outcome;
    std::map<std::string, std::size_t> expected;  // UTF-16 units delivered per machine
    bool opened = false;
    auto finish = [&](Result<RunInfo> r) {
        if (!outcome) outcome = std::move(r);
        io.stop();
    };
    auto deliver = [&](const std::string& machine, const std::string& chunk, std::size_t position) {
        std::size_t& done = expected[machine];
        const std::size_t len = ui::utf16_length(chunk);
        if (position + len <= done) return;
        std::string_view text(chunk);
        if (position < done) text.remove_prefix(ui::byte_offset_of_utf16(chunk, done - position));
        done = position + len;
        if (on_output && !text.empty()) on_output(machine, text);
    };
    // The run is over: fetch it (and any output the stream did not carry, e.g. an older instance).
    auto conclude = [&] {
        auto run = this->run(instance);
        if (!run) return finish(run.error());
        if (on_output) {
            auto outputs = output(instance);
            if (outputs) {
                for (const auto& [m, text] : *outputs) deliver(m, text, 0);
            }
        }
        finish(std::move(*run));
    };
    WsClient::Handlers handlers;
    handlers.on_open = [&] { opened = true; };
    handlers.on_closed = [&](const std::string& reason) {
        finish(Error{"cannot follow " + instance + " at " + shown + ": " + (opened ? "connection lost" : "cannot connect") +
                         " (" + reason + ")",
                     "unreachable"});
    };
    handlers.on_message = [&](std::string text) {
        Json j = Json::parse(text, nullptr, false);
        if (j.is_discarded() || !j.is_object()) return;
        const std::string type = str_or_empty(j, "type");
        if (type.empty() && j.contains("error")) return finish(Error{str_or_empty(j, "error"), "forbidden"});
        if (str_or_empty(j, "cron") != job) return;
        if (type == "output_chunk") {
            if (str_or_empty(j, "job_instance") != instance) return;
            deliver(str_or_empty(j, "machine"), str_or_empty(j, "chunk"), j.value("position", std::size_t{0}));
        } else if (type == "details") {
            const Json& data = j["data"];
            const std::string current = str_or_empty(data, "job_instance");
            if (current == instance) {
                const RunInfo r = run_from_details(data, job);
                if (on_update) on_update(r);
                if (r.finished) conclude();
            } else if (!current.empty()) {
                // A newer run is the job's latest: ours is only visible through HTTP now.
                auto run = this->run(instance);
                if (!run) return finish(run.error());
                if (on_update) on_update(*run);
                if (run->finished) conclude();
            }
        }
    };
    WsClient ws(io, handlers);
    std::string error;
    if (!ws.connect(ws_url, error)) return Error{"cannot follow " + instance + " at " + shown + ": " + error, "unreachable"};
    // A safety net besides the stream: every few seconds ask whether the run has ended (a job
    // removed from the config gets no details frames any more).
    boost::asio::steady_timer check(io);
    std::function<void()> arm = [&] {
        check.expires_after(std::chrono::seconds(5));
        check.async_wait([&](const boost::system::error_code& ec) {
            if (ec || outcome) return;
            auto current = this->run(instance);
            if (current && current->finished) return conclude();
            arm();
        });
    };
    arm();
    io.run();
    ws.close();
    if (!outcome) return Error{"follow of " + instance + " ended without a result", "protocol"};
    return std::move(*outcome);
}

}  // namespace saltpeter
