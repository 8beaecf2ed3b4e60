// Line-oriented parsing: with --out-indent=-1 every minion's return is one JSON line, so a line
// that does not parse as a JSON object is text (Salt's notices, or stderr sharing the pipe).
#include "salt/salt_cli_output.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace saltpeter::detail {

namespace {

constexpr std::string_view k_no_match_prefix = "No minions matched the target";
constexpr std::string_view k_jid_prefix = "jid: ";
constexpr std::string_view k_did_not_return_prefix = "Minion did not return";
constexpr std::string_view k_async_prefix = "Executed command with job ID: ";

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.back() == '\r' || s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    return s;
}

bool starts_with(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

// A JSON string value is shown unquoted; anything else as compact JSON.
std::string value_text(const nlohmann::json& value) {
    if (value.is_string()) return value.get<std::string>();
    return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

SaltCliLines split_salt_cli_output(std::string_view output) {
    SaltCliLines lines;
    std::size_t pos = 0;
    while (pos < output.size()) {
        std::size_t end = output.find('\n', pos);
        if (end == std::string_view::npos) end = output.size();
        const std::string_view line = trim(output.substr(pos, end - pos));
        pos = end + 1;
        if (line.empty()) continue;
        if (line.front() == '{') {
            auto doc = nlohmann::json::parse(line.begin(), line.end(), nullptr, false);
            if (!doc.is_discarded() && doc.is_object()) {
                for (auto it = doc.begin(); it != doc.end(); ++it) {
                    lines.documents.emplace_back(it.key(), it.value().dump(-1, ' ', false,
                                                                           nlohmann::json::error_handler_t::replace));
                }
                continue;
            }
        }
        if (starts_with(line, k_no_match_prefix)) lines.no_minions_matched = true;
        if (starts_with(line, k_jid_prefix)) {
            const std::string_view jid = trim(line.substr(k_jid_prefix.size()));
            if (!jid.empty() && std::all_of(jid.begin(), jid.end(), [](char c) { return c >= '0' && c <= '9'; })) {
                lines.jid = std::string(jid);
            }
        }
        lines.text_lines.emplace_back(line);
    }
    return lines;
}

std::string describe_text(const SaltCliLines& lines) {
    if (lines.text_lines.empty()) return "no output";
    std::string out;
    for (const auto& l : lines.text_lines) {
        if (!out.empty()) out += "; ";
        out += l;
    }
    return out;
}

Result<PingReply> parse_ping_output(std::string_view output, int exit_code, const std::string& command) {
    const SaltCliLines lines = split_salt_cli_output(output);
    // Exit 2 + "No minions matched" is Salt's answer for an empty target (TRANSCRIPTS 4.1), not a
    // failure; exit 2 without that text (e.g. only stopped minions with --static) is not expected
    // here and is reported.
    if (lines.no_minions_matched && lines.documents.empty() && (exit_code == 0 || exit_code == 2)) {
        return PingReply{};
    }
    // 0: all true; 1: some minion did not return or returned non-true (TRANSCRIPTS 4.2, 4.3).
    // No return at all without the "No minions matched" notice is not an answer either (a CLI
    // killed by SIGTERM exits 0 with empty output, TRANSCRIPTS 4.2).
    const bool usable_exit = (exit_code == 0 || exit_code == 1) && !lines.documents.empty();
    if (!usable_exit) {
        return Error{command + " failed (exit code " + std::to_string(exit_code) + "): " + describe_text(lines), ""};
    }
    PingReply reply;
    for (const auto& [minion, value_json] : lines.documents) {
        auto value = nlohmann::json::parse(value_json, nullptr, false);
        if (value.is_boolean() && value.get<bool>()) {
            reply.responding.push_back(minion);
        } else {
            reply.not_responding.emplace_back(minion, value_text(value));
        }
    }
    std::sort(reply.responding.begin(), reply.responding.end());
    reply.responding.erase(std::unique(reply.responding.begin(), reply.responding.end()), reply.responding.end());
    std::sort(reply.not_responding.begin(), reply.not_responding.end());
    return reply;
}

// One minion's cmd.run_all value: the {pid, retcode, stdout, stderr} dict, or a string (Salt's
// "Minion did not return..." or the minion's own refusal "ERROR: ...").
static MinionReturn minion_return_of(const std::string& minion, const nlohmann::json& value) {
    MinionReturn ret;
    ret.minion = minion;
    if (value.is_object() && value.contains("retcode") && value["retcode"].is_number_integer()) {
        ret.retcode = value["retcode"].get<int>();
        if (value.contains("stdout") && value["stdout"].is_string()) ret.stdout_text = value["stdout"].get<std::string>();
        if (value.contains("stderr") && value["stderr"].is_string()) ret.stderr_text = value["stderr"].get<std::string>();
    } else if (value.is_string()) {
        ret.error = value.get<std::string>();
        if (starts_with(ret.error, k_did_not_return_prefix)) {
            ret.returned = false;
        } else {
            ret.retcode = 1;
        }
    } else {
        ret.retcode = 1;
        ret.error = "unexpected cmd.run_all return: " + value_text(value);
    }
    return ret;
}

std::vector<MinionReturn> parse_run_all_output(const SaltCliLines& lines) {
    std::vector<MinionReturn> out;
    for (const auto& [minion, value_json] : lines.documents) {
        out.push_back(minion_return_of(minion, nlohmann::json::parse(value_json, nullptr, false)));
    }
    return out;
}

Result<AsyncPublish> parse_async_output(std::string_view output, int exit_code, const std::string& command) {
    const SaltCliLines lines = split_salt_cli_output(output);
    AsyncPublish publish;
    publish.no_minions_matched = lines.no_minions_matched;
    for (const auto& line : lines.text_lines) {
        if (!starts_with(line, k_async_prefix)) continue;
        const std::string_view jid = trim(std::string_view(line).substr(k_async_prefix.size()));
        if (!jid.empty() && std::all_of(jid.begin(), jid.end(), [](char c) { return c >= '0' && c <= '9'; })) {
            publish.jid = std::string(jid);
        }
    }
    if (publish.jid == "0") {
        // "No minions matched the target. ..." then "Executed command with job ID: 0" (item 5).
        publish.jid.clear();
        publish.no_minions_matched = true;
    }
    if (exit_code != 0 || (publish.jid.empty() && !publish.no_minions_matched)) {
        return Error{command + " failed (exit code " + std::to_string(exit_code) + ", no job ID): " + describe_text(lines),
                     ""};
    }
    return publish;
}

Result<ListJob> parse_list_job_output(std::string_view output, const std::string& command) {
    // One pretty-printed document; anything before its first line that opens with '{' is text.
    std::size_t start = 0;
    while (start < output.size() && output[start] != '{') {
        const auto nl = output.find('\n', start);
        if (nl == std::string_view::npos) {
            start = output.size();
            break;
        }
        start = nl + 1;
    }
    auto doc = nlohmann::json::parse(output.substr(std::min(start, output.size())), nullptr, false);
    if (doc.is_discarded() || !doc.is_object()) {
        return Error{command + ": output is not one JSON object: " + describe_text(split_salt_cli_output(output)), ""};
    }
    ListJob job;
    if (doc.contains("jid") && doc["jid"].is_string()) job.jid = doc["jid"].get<std::string>();
    if (doc.contains("Error") && doc["Error"].is_string()) job.error = doc["Error"].get<std::string>();
    if (doc.contains("Minions") && doc["Minions"].is_array()) {
        for (const auto& m : doc["Minions"]) {
            if (m.is_string()) job.minions.push_back(m.get<std::string>());
        }
    }
    std::sort(job.minions.begin(), job.minions.end());
    if (!doc.contains("Result") || !doc["Result"].is_object()) {
        return Error{command + ": no \"Result\" object in the job data", "Result"};
    }
    const auto& result = doc["Result"];
    for (auto it = result.begin(); it != result.end(); ++it) {
        const auto& entry = it.value();
        if (entry.is_object() && entry.contains("return")) {
            job.returns.push_back(minion_return_of(it.key(), entry["return"]));
        } else {
            job.returns.push_back(minion_return_of(it.key(), entry));
        }
    }
    std::sort(job.returns.begin(), job.returns.end(),
              [](const MinionReturn& a, const MinionReturn& b) { return a.minion < b.minion; });
    return job;
}

}  // namespace saltpeter::detail
