// Crontab -> saltpeter YAML (spctl import-crontab). Follows Vixie cron's reading of a crontab:
// environment assignments apply to the lines after them, '%' in a command starts its standard
// input, `\%` is a literal percent sign.
#include "saltpeter/crontab_import.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <optional>
#include <set>
#include <utility>

#include "saltpeter/cron_expression.hpp"

namespace saltpeter {

namespace {

constexpr std::array<std::string_view, 7> k_macros = {"@yearly", "@annually", "@monthly", "@weekly",
                                                      "@daily",  "@midnight", "@hourly"};
// Programs that only wrap the real command; the job name comes from what follows them.
constexpr std::array<std::string_view, 9> k_wrappers = {"env", "nice", "ionice", "nohup", "exec",
                                                        "time", "sudo", "chronic", "flock"};

bool is_space(char c) noexcept { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (is_space(s.front()) || s.front() == '\r')) s.remove_prefix(1);
    while (!s.empty() && (is_space(s.back()) || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

/// YAML single-quoted scalar: only the quote itself needs doubling.
std::string quote(std::string_view s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'') out += '\'';
        out += c;
    }
    out += '\'';
    return out;
}

/// Printable text for a comment or message (control characters become '?').
std::string printable(std::string_view s) {
    std::string out(s);
    for (char& c : out) {
        const auto u = static_cast<unsigned char>(c);
        if ((u < 0x20 && c != '\t') || u == 0x7f) c = '?';
    }
    return out;
}

bool has_control(std::string_view s) noexcept {
    return std::any_of(s.begin(), s.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return (u < 0x20 && c != '\t') || u == 0x7f;
    });
}

bool is_identifier(std::string_view s) noexcept {
    if (s.empty() || std::isdigit(static_cast<unsigned char>(s.front()))) return false;
    return std::all_of(s.begin(), s.end(),
                       [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

/// Splits off the next whitespace-separated word of `rest`.
std::string_view next_word(std::string_view& rest) noexcept {
    while (!rest.empty() && is_space(rest.front())) rest.remove_prefix(1);
    std::size_t n = 0;
    while (n < rest.size() && !is_space(rest[n])) ++n;
    auto word = rest.substr(0, n);
    rest.remove_prefix(n);
    return word;
}

/// "NAME=value" / "NAME = 'value'" as cron reads it; nullopt when the line is not one.
std::optional<std::pair<std::string, std::string>> parse_assignment(std::string_view line) {
    std::size_t n = 0;
    while (n < line.size() && (std::isalnum(static_cast<unsigned char>(line[n])) || line[n] == '_')) ++n;
    auto name = line.substr(0, n);
    if (!is_identifier(name)) return std::nullopt;
    auto rest = line.substr(n);
    while (!rest.empty() && is_space(rest.front())) rest.remove_prefix(1);
    if (rest.empty() || rest.front() != '=') return std::nullopt;
    auto value = trim(rest.substr(1));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') && value.back() == value.front()) {
        value = value.substr(1, value.size() - 2);
    }
    return std::make_pair(std::string(name), std::string(value));
}

/// Cron's '%' handling: `\%` is '%'; an unescaped '%' is an error (it starts the job's stdin).
Result<std::string> unescape_command(std::string_view command) {
    std::string out;
    for (std::size_t i = 0; i < command.size(); ++i) {
        if (command[i] == '\\' && i + 1 < command.size() && command[i + 1] == '%') {
            out += '%';
            ++i;
        } else if (command[i] == '%') {
            return Error{"an unescaped '%' starts the command's standard input in cron, which saltpeter "
                         "cannot pass; write \\% for a literal percent sign or move the input into a script",
                         "command"};
        } else {
            out += command[i];
        }
    }
    return out;
}

struct PendingJob {
    int line = 0;
    std::string original;
    std::string macro;  // "@daily" when the line used one
    CronExpression::Fields fields;
    std::string command;
    std::string user;
};

class Converter {
public:
    explicit Converter(const CrontabImportOptions& options) : m_options(options) {}

    CrontabImport run(std::string_view text) {
        header();
        int line_no = 0;
        while (!text.empty()) {
            ++line_no;
            const auto nl = text.find('\n');
            auto raw = text.substr(0, nl);
            text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
            line(line_no, raw);
        }
        return std::move(m_result);
    }

private:
    void header() {
        auto& y = m_result.yaml;
        y += "# Converted from " + printable(m_options.origin) + " by spctl import-crontab.\n";
        y += "# Every job runs on targets " + printable(quote(m_options.targets)) + " (target_type " +
             std::string(to_string(m_options.target_type)) + ").\n";
        y += "# Cron never stops a job, hence timeout: 0. Unlike cron, saltpeter skips a firing while the\n";
        y += "# previous run still runs (concurrency: forbid); set concurrency: allow where runs must overlap.\n";
    }

    void problem(int line, Problem::Severity severity, std::string field, std::string message) {
        Problem p;
        p.severity = severity;
        p.file = m_options.origin;
        p.line = line;
        p.column = 1;
        p.field = std::move(field);
        p.message = std::move(message);
        m_result.problems.push_back(std::move(p));
    }

    /// An unconvertible line: reported, and kept in the output as a comment.
    void skip(int line, std::string_view original, std::string field, const std::string& message) {
        const std::string why = (field.empty() ? "" : "field '" + field + "': ") + message;
        problem(line, Problem::Severity::error, std::move(field), message);
        m_result.yaml += "# NOT CONVERTED (line " + std::to_string(line) + ": " + printable(why) + "):\n";
        m_result.yaml += "# " + printable(original) + "\n";
    }

    void line(int line_no, std::string_view raw) {
        const auto text = trim(raw);
        if (text.empty()) {
            m_result.yaml += "\n";
            return;
        }
        if (text.front() == '#') {
            m_result.yaml += printable(text) + "\n";
            return;
        }
        if (has_control(text)) {
            skip(line_no, text, "", "control characters in the line");
            return;
        }
        if (auto assignment = parse_assignment(text)) {
            environment(line_no, text, std::move(assignment->first), std::move(assignment->second));
            return;
        }
        schedule_line(line_no, text);
    }

    void environment(int line_no, std::string_view text, std::string name, std::string value) {
        if (name == "MAILTO" || name == "MAILFROM") {
            problem(line_no, Problem::Severity::warning, "", name + " has no saltpeter equivalent (job output is in "
                    "the job log; see notify in docs/configuration.md)");
            m_result.yaml += "# " + printable(text) + "   (not converted: no mail in saltpeter)\n";
            return;
        }
        if (name == "SHELL") {
            if (value != "/bin/sh") {
                problem(line_no, Problem::Severity::warning, "command",
                        "saltpeter runs every command with /bin/sh -c; SHELL=" + printable(value) + " is not applied");
            }
            m_result.yaml += "# " + printable(text) + "   (saltpeter runs commands with /bin/sh -c)\n";
            return;
        }
        if (name == "CRON_TZ") {
            m_timezone = value;
            m_result.yaml += "# " + printable(text) + "   (timezone: of the jobs below)\n";
            return;
        }
        auto it = std::find_if(m_env.begin(), m_env.end(), [&](const auto& kv) { return kv.first == name; });
        if (it != m_env.end()) {
            it->second = std::move(value);
        } else {
            m_env.emplace_back(std::move(name), std::move(value));
        }
        m_result.yaml += "# " + printable(text) + "   (env: of the jobs below)\n";
    }

    void schedule_line(int line_no, std::string_view text) {
        PendingJob job;
        job.line = line_no;
        job.original = std::string(text);
        std::string_view rest = text;
        if (text.front() == '@') {
            const auto macro = next_word(rest);
            if (macro == "@reboot") {
                skip(line_no, text, "", "@reboot has no saltpeter equivalent (saltpeter runs jobs on a schedule)");
                return;
            }
            if (std::find(k_macros.begin(), k_macros.end(), macro) == k_macros.end()) {
                skip(line_no, text, "", "unknown macro '" + printable(macro) + "'");
                return;
            }
            job.macro = std::string(macro);
            job.fields = CronExpression::parse(macro)->fields();
        } else {
            std::array<std::string, 5> f;
            for (auto& field : f) {
                field = std::string(next_word(rest));
                if (field.empty()) {
                    skip(line_no, text, "", "expected 5 time fields and a command");
                    return;
                }
            }
            job.fields.sec = "0";
            job.fields.min = f[0];
            job.fields.hour = f[1];
            job.fields.dom = f[2];
            job.fields.mon = f[3];
            job.fields.dow = f[4];
            job.fields.year = "*";
            auto expr = CronExpression::from_fields(job.fields);
            if (!expr) {
                // The parser's message starts with "field 'x': ", which Problem::to_string() adds again.
                const auto& error = expr.error();
                const std::string prefix = "field '" + error.field + "': ";
                const bool prefixed = !error.field.empty() && error.message.rfind(prefix, 0) == 0;
                skip(line_no, text, error.field, prefixed ? error.message.substr(prefix.size()) : error.message);
                return;
            }
        }
        if (m_options.system_crontab) {
            job.user = std::string(next_word(rest));
            if (job.user.empty()) {
                skip(line_no, text, "user", "expected a user name after the time fields (system crontab)");
                return;
            }
        }
        const auto command_text = trim(rest);
        if (command_text.empty()) {
            skip(line_no, text, "command", "no command after the time fields");
            return;
        }
        auto command = unescape_command(command_text);
        if (!command) {
            skip(line_no, text, command.error().field, command.error().message);
            return;
        }
        job.command = std::move(*command);
        write(job);
    }

    std::string unique_name(const std::string& command) {
        const auto base = job_name_from_command(command);
        auto name = base;
        for (int n = 2; m_names.count(name) != 0; ++n) name = base + "_" + std::to_string(n);
        m_names.insert(name);
        return name;
    }

    void write(const PendingJob& job) {
        auto& y = m_result.yaml;
        y += "# line " + std::to_string(job.line) + ": " + printable(job.original) + "\n";
        y += unique_name(job.command) + ":\n";
        y += "  command: " + quote(job.command) + "\n";
        y += "  targets: " + quote(m_options.targets) + "\n";
        y += "  target_type: " + std::string(to_string(m_options.target_type)) + "\n";
        const std::array<std::pair<const char*, const std::string*>, 5> fields = {{{"min", &job.fields.min},
                                                                                   {"hour", &job.fields.hour},
                                                                                   {"dom", &job.fields.dom},
                                                                                   {"mon", &job.fields.mon},
                                                                                   {"dow", &job.fields.dow}}};
        for (const auto& [key, value] : fields) {
            y += std::string("  ") + key + ": " + quote(*value);
            if (!job.macro.empty() && std::string_view(key) == "min") y += "  # " + job.macro;
            y += "\n";
        }
        if (!m_timezone.empty()) y += "  timezone: " + quote(m_timezone) + "\n";
        if (!job.user.empty()) y += "  user: " + quote(job.user) + "\n";
        y += "  timeout: 0\n";
        if (!m_env.empty()) {
            y += "  env:\n";
            for (const auto& [name, value] : m_env) y += "    " + name + ": " + quote(value) + "\n";
        }
        ++m_result.jobs;
    }

    const CrontabImportOptions& m_options;
    CrontabImport m_result;
    std::vector<std::pair<std::string, std::string>> m_env;
    std::string m_timezone;
    std::set<std::string> m_names;
};

}  // namespace

std::string job_name_from_command(std::string_view command) {
    std::string_view rest = command;
    std::string_view program;
    while (true) {
        auto word = next_word(rest);
        if (word.empty()) break;
        if (parse_assignment(word)) continue;  // FOO=1 cmd
        if (word == "cd") {                    // cd /dir && cmd
            auto dir = next_word(rest);
            if (!dir.empty() && dir.back() == ';') continue;
            auto sep = next_word(rest);
            if (sep == "&&" || sep == ";") continue;
            program = word;
            break;
        }
        if (std::find(k_wrappers.begin(), k_wrappers.end(), word) != k_wrappers.end()) {
            // nice -n 10 cmd, flock -n /lock cmd: skip options, numeric arguments, flock's lock file.
            while (true) {
                auto save = rest;
                auto opt = next_word(rest);
                const bool option = !opt.empty() && opt.front() == '-';
                const bool argument = !opt.empty() && std::isdigit(static_cast<unsigned char>(opt.front()));
                if (!option && !argument) {
                    rest = save;
                    break;
                }
            }
            if (word == "flock") next_word(rest);  // the lock file
            continue;
        }
        program = word;
        break;
    }
    while (!program.empty() && (program.front() == '"' || program.front() == '\'' || program.front() == '(')) {
        program.remove_prefix(1);
    }
    while (!program.empty() && (program.back() == '"' || program.back() == '\'' || program.back() == ';')) {
        program.remove_suffix(1);
    }
    if (const auto slash = program.rfind('/'); slash != std::string_view::npos) program.remove_prefix(slash + 1);
    if (const auto dot = program.rfind('.'); dot != std::string_view::npos && dot > 0) program = program.substr(0, dot);

    std::string name;
    for (char c : program) {
        const auto u = static_cast<unsigned char>(c);
        const char lower = static_cast<char>(std::tolower(u));
        const bool keep = (u < 0x80 && std::isalnum(u)) || c == '_';
        if (keep) {
            name += lower;
        } else if (!name.empty() && name.back() != '_') {
            name += '_';
        }
    }
    while (!name.empty() && name.back() == '_') name.pop_back();
    if (name.empty()) return "job";
    if (std::isdigit(static_cast<unsigned char>(name.front())) || name == "saltpeter_config" ||
        name == "saltpeter_maintenance") {
        name = "job_" + name;
    }
    return name;
}

CrontabImport import_crontab(std::string_view text, const CrontabImportOptions& options) {
    return Converter(options).run(text);
}

}  // namespace saltpeter
