#include "wrapper_cli.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <map>
#include <string>

#include "saltpeter/version.hpp"
#include "saltpeter/wrapper_agent.hpp"

namespace sp_wrapper {
namespace {

// Double fork + setsid + stdio to /dev/null, so that Salt's cmd.run_all returns at once.
// Returns true in the grandchild; the other processes exit here.
bool detach() {
    std::cout.flush();
    std::fflush(nullptr);
    const pid_t first = fork();
    if (first < 0) {
        std::perror("sp_wrapper: fork");
        std::exit(1);
    }
    if (first > 0) {
        std::cout << "Wrapper started successfully" << std::endl;
        std::_Exit(0);
    }
    setsid();
    const pid_t second = fork();
    if (second < 0) std::_Exit(1);
    if (second > 0) std::_Exit(0);
    const int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(devnull, 2);
        if (devnull > 2) close(devnull);
    }
    // No chdir("/"): without SP_CWD the job inherits the launcher's working directory, as with
    // the original wrapper.
    return true;
}

}  // namespace

int run_cli(int argc, char** argv) {
    CLI::App app{"sp_wrapper: runs one saltpeter job on this machine and streams it to spd.\n"
                 "Settings come from the SP_* environment (SP_TOKEN only from there); flags override them."};
    app.set_version_flag("--version", "sp_wrapper " + std::string(saltpeter::version()));
    std::map<std::string, std::string> flags;
    struct Flag {
        const char* name;
        const char* var;
        const char* help;
    };
    const Flag k_flags[] = {
        {"--url", "SP_WEBSOCKET_URL", "daemon URL, ws:// or wss://"},
        {"--job-name", "SP_JOB_NAME", "job name"},
        {"--job-instance", "SP_JOB_INSTANCE", "instance id"},
        {"--command", "SP_COMMAND", "shell command, run with /bin/sh -c"},
        {"--machine-id", "SP_MACHINE_ID", "machine name reported to the daemon"},
        {"--cwd", "SP_CWD", "working directory of the job"},
        {"--user", "SP_USER", "run the job as this user (root only)"},
        {"--timeout", "SP_TIMEOUT", "seconds, 0 = unlimited"},
        {"--output-interval-ms", "SP_OUTPUT_INTERVAL_MS", "output flush interval"},
        {"--log-level", "SP_WRAPPER_LOGLEVEL", "normal|debug|off"},
        {"--log-dir", "SP_WRAPPER_LOGDIR", "wrapper log directory"},
        {"--allow-overlap", "SP_ALLOW_OVERLAP", "true|false"},
        {"--lockfile", "SP_LOCKFILE", "host lock file"},
    };
    for (const Flag& f : k_flags)
        app.add_option_function<std::string>(f.name, [&flags, var = f.var](const std::string& v) { flags[var] = v; },
                                             std::string(f.help) + " (" + f.var + ")");
    bool foreground = false;
    std::string replay;
    app.add_flag("--foreground", foreground, "stay attached to the terminal (tests, manual runs)");
    app.add_option("--replay", replay, "deliver a result file written when completion failed");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        return code == 0 ? 0 : 2;
    }

    auto env = saltpeter::current_environment();
    for (const auto& [k, v] : flags) env[k] = v;

    if (!replay.empty()) {
        saltpeter::WrapperSettings overrides;
        if (auto it = env.find("SP_WEBSOCKET_URL"); it != env.end()) overrides.websocket_url = it->second;
        if (auto it = env.find("SP_TOKEN"); it != env.end()) overrides.token = it->second;
        if (auto it = env.find("SP_WRAPPER_LOGDIR"); it != env.end()) overrides.log_dir = it->second;
        if (auto it = env.find("SP_WRAPPER_LOGLEVEL"); it != env.end() && it->second == "off")
            overrides.log_level = saltpeter::WrapperLogLevel::off;
        return saltpeter::replay_result(replay, overrides);
    }

    std::cout << "Saltpeter Wrapper version " << saltpeter::version() << std::endl;
    auto settings = saltpeter::wrapper_settings_from_environment(env);
    if (!settings) {
        std::cerr << settings.error().message << std::endl;
        return 1;
    }
    if (auto ok = saltpeter::check_wrapper_settings(*settings); !ok) {
        std::cerr << ok.error().message << std::endl;
        return 1;
    }
    if (foreground) {
        std::cout << "Wrapper started successfully" << std::endl;
    } else {
        detach();
    }
    return saltpeter::run_wrapper(*settings);
}

}  // namespace sp_wrapper
