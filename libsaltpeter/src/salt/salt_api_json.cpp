// salt-api body parsing with nlohmann-json in non-throwing mode: every accessor checks the type
// first, so a surprising body becomes an Error naming what was expected, never an exception.
#include "salt/salt_api_json.hpp"
#include "core/shell_words.hpp"

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>

namespace saltpeter::detail {

namespace {

using nlohmann::json;

constexpr std::string_view k_no_return = "Minion did not return";

std::optional<json> parse_json(std::string_view body) {
    json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) return std::nullopt;
    return j;
}

std::string excerpt(std::string_view body) {
    constexpr std::size_t k_max = 200;
    std::string s(body.substr(0, k_max));
    if (body.size() > k_max) s += "...";
    return s;
}

// The first element of "return", which every recorded salt-api answer has.
Result<json> first_return(std::string_view body, std::string_view what) {
    auto j = parse_json(body);
    if (!j) return Error{std::string(what) + ": response is not JSON: " + excerpt(body), ""};
    if (!j->is_object()) return Error{std::string(what) + ": response is not a JSON object: " + excerpt(body), ""};
    auto it = j->find("return");
    if (it == j->end() || !it->is_array() || it->empty() || !(*it)[0].is_object()) {
        return Error{std::string(what) + ": response has no \"return\": [{...}]: " + excerpt(body), "return"};
    }
    return (*it)[0];
}

std::string string_or(const json& j, const char* key, std::string fallback = {}) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) return fallback;
    return it->get<std::string>();
}

MinionReturn minion_return(const std::string& minion, const json& value) {
    MinionReturn ret;
    ret.minion = minion;
    if (value.is_object() && value.contains("ret") && value.contains("jid")) {
        // full_return: {"ret": ..., "retcode": n, "jid": ...}
        return minion_return(minion, value["ret"]);
    }
    if (value.is_object() && value.contains("retcode")) {
        const json& rc = value["retcode"];
        ret.retcode = rc.is_number_integer() ? rc.get<int>() : 1;
        ret.stdout_text = string_or(value, "stdout");
        ret.stderr_text = string_or(value, "stderr");
        return ret;
    }
    if (value.is_string()) {
        ret.error = value.get<std::string>();
        // "Minion did not return. [No response]..." is Salt saying nothing came back; every other
        // string is the minion's own refusal ("ERROR: User 'x' is not available").
        ret.returned = ret.error.compare(0, k_no_return.size(), k_no_return) != 0;
        return ret;
    }
    if (value.is_boolean() && !value.get<bool>()) {
        // client=local reports a stopped minion as `false` after timeout + gather_job_timeout.
        ret.returned = false;
        ret.error = "Minion did not return (salt-api reported false: minion down or timed out)";
        return ret;
    }
    ret.error = "unexpected cmd.run_all return: " + excerpt(value.dump());
    return ret;
}

std::vector<MinionReturn> returns_of(const json& map) {
    std::vector<MinionReturn> out;
    for (auto it = map.begin(); it != map.end(); ++it) out.push_back(minion_return(it.key(), it.value()));
    std::sort(out.begin(), out.end(), [](const MinionReturn& a, const MinionReturn& b) { return a.minion < b.minion; });
    return out;
}

}  // namespace

Result<LoginReply> parse_login(std::string_view body) {
    auto first = first_return(body, "salt-api login");
    if (!first) return first.error();
    LoginReply reply;
    reply.token = string_or(*first, "token");
    if (reply.token.empty()) return Error{"salt-api login: no token in response", "token"};
    auto e = first->find("expire");
    if (e != first->end() && e->is_number()) reply.expire = e->get<double>();
    return reply;
}

Result<PingReply> parse_ping(std::string_view body) {
    auto first = first_return(body, "salt-api test.ping");
    if (!first) return first.error();
    PingReply reply;
    for (auto it = first->begin(); it != first->end(); ++it) {
        const json& v = it.value();
        if (v.is_boolean() && v.get<bool>()) {
            reply.responding.push_back(it.key());
        } else if (v.is_string()) {
            reply.not_responding.emplace_back(it.key(), v.get<std::string>());
        } else if (v.is_boolean()) {
            reply.not_responding.emplace_back(it.key(), "Minion did not return (salt-api reported false)");
        } else {
            reply.not_responding.emplace_back(it.key(), "unexpected test.ping return: " + excerpt(v.dump()));
        }
    }
    std::sort(reply.responding.begin(), reply.responding.end());
    std::sort(reply.not_responding.begin(), reply.not_responding.end());
    return reply;
}

MinionReturn minion_return_from_json_text(const std::string& minion, std::string_view value_json) {
    auto j = parse_json(value_json);
    if (!j) {
        MinionReturn ret;
        ret.minion = minion;
        ret.error = "return is not JSON: " + excerpt(value_json);
        return ret;
    }
    return minion_return(minion, *j);
}

Result<std::vector<MinionReturn>> parse_run_all(std::string_view body) {
    auto first = first_return(body, "salt-api cmd.run_all");
    if (!first) return first.error();
    return returns_of(*first);
}

Result<AsyncJob> parse_local_async(std::string_view body) {
    auto first = first_return(body, "salt-api local_async");
    if (!first) return first.error();
    AsyncJob job;
    if (first->empty()) return job;  // no minion matched: no jid was assigned
    job.jid = string_or(*first, "jid");
    if (job.jid.empty()) return Error{"salt-api local_async: no jid in response: " + excerpt(body), "jid"};
    auto m = first->find("minions");
    if (m != first->end() && m->is_array()) {
        for (const auto& id : *m) {
            if (id.is_string()) job.minions.push_back(id.get<std::string>());
        }
    }
    std::sort(job.minions.begin(), job.minions.end());
    return job;
}

Result<JobLookup> parse_job_lookup(std::string_view body) {
    auto first = first_return(body, "salt-api jobs lookup");
    if (!first) return first.error();
    JobLookup lookup;
    lookup.returns = returns_of(*first);
    auto j = parse_json(body);  // valid: first_return parsed it
    auto info = j->find("info");
    if (info != j->end() && info->is_array() && !info->empty() && (*info)[0].is_object()) {
        auto m = (*info)[0].find("Minions");
        if (m != (*info)[0].end() && m->is_array()) {
            for (const auto& id : *m) {
                if (id.is_string()) lookup.expected.push_back(id.get<std::string>());
            }
        }
    }
    std::sort(lookup.expected.begin(), lookup.expected.end());
    return lookup;
}

std::string ping_lowstate(const SaltTarget& target, std::chrono::seconds timeout) {
    json chunk = {{"client", "local"},
                  {"tgt", target.expression},
                  {"tgt_type", std::string(to_string(target.type))},
                  {"fun", "test.ping"},
                  {"timeout", timeout.count()}};
    return json::array({chunk}).dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string run_all_lowstate(const RunAllRequest& request, const std::string& minion, std::string_view client) {
    json env = json::object();
    for (const auto& [k, v] : request.env) env[k] = v;
    auto it = request.minion_env.find(minion);
    if (it != request.minion_env.end()) {
        for (const auto& [k, v] : it->second) env[k] = v;
    }
    json kwarg = {{"env", env}};
    if (!request.cwd.empty()) kwarg["cwd"] = request.cwd;
    if (!request.runas.empty()) kwarg["runas"] = request.runas;
    json chunk = {{"client", std::string(client)},
                  {"tgt", minion},
                  {"tgt_type", "list"},
                  {"fun", "cmd.run_all"},
                  {"arg", json::array({shell_command_line(request.argv)})},
                  {"kwarg", kwarg},
                  {"timeout", request.timeout.count()}};
    // Invalid UTF-8 in env or argv must not throw from dump(): replace it.
    return json::array({chunk}).dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string command_lowstate(const CommandRequest& request, std::string_view client) {
    json env = json::object();
    for (const auto& [k, v] : request.env) env[k] = v;
    json kwarg = {{"env", env}};
    if (!request.cwd.empty()) kwarg["cwd"] = request.cwd;
    if (!request.runas.empty()) kwarg["runas"] = request.runas;
    if (request.timeout.count() > 0) kwarg["timeout"] = request.timeout.count();
    std::string tgt;
    for (const auto& m : request.minions) tgt += (tgt.empty() ? "" : ",") + m;
    json chunk = {{"client", std::string(client)},
                  {"tgt", tgt},
                  {"tgt_type", "list"},
                  {"fun", "cmd.run_all"},
                  {"arg", json::array({request.command})},
                  {"kwarg", kwarg}};
    return json::array({chunk}).dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string signal_job_lowstate(const std::vector<std::string>& minions, const std::string& jid, std::string_view fun) {
    std::string tgt;
    for (const auto& m : minions) tgt += (tgt.empty() ? "" : ",") + m;
    json chunk = {{"client", "local"}, {"tgt", tgt}, {"tgt_type", "list"}, {"fun", std::string(fun)},
                  {"arg", json::array({jid})}};
    return json::array({chunk}).dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string login_body(const std::string& username, const std::string& password, const std::string& eauth) {
    return json{{"username", username}, {"password", password}, {"eauth", eauth}}.dump(
        -1, ' ', false, json::error_handler_t::replace);
}

}  // namespace saltpeter::detail
