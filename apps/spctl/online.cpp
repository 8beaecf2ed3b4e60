// Helpers of spctl's online commands (online.hpp).
#include "online.hpp"

#include "saltpeter/exit_code_mapper.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>

namespace spctl {

saltpeter::Result<Connection> resolve_connection(const Context& ctx) {
    Connection c;
    c.token_source = "no token";
    std::string file;
    if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg && *xdg) file = std::string(xdg) + "/saltpeter/spctl.yaml";
    else if (const char* home = std::getenv("HOME"); home && *home) file = std::string(home) + "/.config/saltpeter/spctl.yaml";
    if (!file.empty()) {
        const std::string before = c.options.token;
        auto loaded = saltpeter::load_client_config(file, c.options);
        if (!loaded) return loaded.error();
        if (c.options.token != before) c.token_source = "the token in " + file;
    }
    if (const char* url = std::getenv("SALTPETER_URL"); url && *url) c.options.url = url;
    if (const char* token = std::getenv("SALTPETER_TOKEN"); token && *token) {
        c.options.token = token;
        c.token_source = "$SALTPETER_TOKEN";
    }
    if (!ctx.url.empty()) c.options.url = ctx.url;
    if (!ctx.token.empty()) {
        c.options.token = ctx.token;
        c.token_source = "--token";
    }
    while (!c.options.url.empty() && c.options.url.back() == '/') c.options.url.pop_back();
    return c;
}

int report(const std::string& command, const saltpeter::Error& error, const Connection& conn) {
    std::cerr << "spctl " << command << ": " << error.message << "\n";
    const std::string& kind = error.field;
    if (kind == "unreachable") {
        std::cerr << "  is spd running with api_ws: true at " << conn.options.url
                  << "? (set --url, $SALTPETER_URL or url: in spctl.yaml)\n";
        return k_exit_unreachable;
    }
    if (kind == "unauthorized") {
        std::cerr << "  spd rejected the API token (" << conn.token_source << ")\n";
        return k_exit_auth;
    }
    if (kind == "forbidden") {
        std::cerr << "  the API token (" << conn.token_source << ") has role read; this needs role operate\n";
        return k_exit_auth;
    }
    if (kind == "not_found") return k_exit_not_found;
    if (kind == "conflict") return k_exit_conflict;
    if (kind == "bad_request" || kind == "url") return k_exit_usage;
    return k_exit_failure;
}

bool use_colour() {
    const char* no = std::getenv("NO_COLOR");
    return ::isatty(STDOUT_FILENO) == 1 && (no == nullptr || *no == '\0');
}

std::string colour(const std::string& text, int code) {
    if (!use_colour()) return text;
    return "\033[" + std::to_string(code) + "m" + text + "\033[0m";
}

void print_table(const std::vector<std::vector<std::string>>& rows) {
    std::vector<std::size_t> width;
    // Widths ignore ANSI colour sequences.
    auto visible = [](const std::string& s) {
        std::size_t n = 0;
        for (std::size_t i = 0; i < s.size(); ++i) {
            if (s[i] == '\033') {
                while (i < s.size() && s[i] != 'm') ++i;
                continue;
            }
            if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80) ++n;
        }
        return n;
    };
    for (const auto& row : rows) {
        if (width.size() < row.size()) width.resize(row.size(), 0);
        for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], visible(row[i]));
    }
    for (const auto& row : rows) {
        std::string line;
        for (std::size_t i = 0; i < row.size(); ++i) {
            line += row[i];
            if (i + 1 < row.size()) line += std::string(width[i] - visible(row[i]) + 2, ' ');
        }
        std::cout << line << "\n";
    }
}

int run_exit_status(const saltpeter::RunInfo& run) {
    std::vector<std::optional<int>> codes;
    for (const auto& t : run.targets) codes.push_back(t.retcode);
    return saltpeter::ExitCodeMapper::process_status(codes);
}

void LinePrefixer::add(const std::string& machine, std::string_view text) {
    auto it = std::find_if(m_pending.begin(), m_pending.end(), [&](const auto& p) { return p.first == machine; });
    if (it == m_pending.end()) it = m_pending.insert(m_pending.end(), {machine, std::string()});
    std::string& pending = it->second;
    pending.append(text);
    std::size_t start = 0;
    for (std::size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1)
        std::cout << machine << " | " << pending.substr(start, nl - start) << "\n";
    pending.erase(0, start);
    std::cout.flush();
}

void LinePrefixer::flush() {
    for (auto& [machine, pending] : m_pending) {
        if (!pending.empty()) std::cout << machine << " | " << pending << "\n";
        pending.clear();
    }
    std::cout.flush();
}

std::string short_time(const std::string& iso) {
    if (iso.empty()) return "-";
    std::string s = iso.substr(0, 19);
    if (s.size() > 10 && s[10] == 'T') s[10] = ' ';
    return s;
}

}  // namespace spctl
