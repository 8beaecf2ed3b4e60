#include "spd_app.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <iostream>
#include <string>

#include "saltpeter/daemon.hpp"
#include "saltpeter/exit_code_mapper.hpp"
#include "saltpeter/version.hpp"

namespace spd {

namespace {

// The exit code of `spd --run-once` (ExitCodeMapper::process_status over the targets).
int run_once_status(const saltpeter::RunRecord& run) {
    std::vector<std::optional<int>> codes;
    for (const auto& [machine, t] : run.targets) codes.push_back(t.retcode);
    return saltpeter::ExitCodeMapper::process_status(codes);
}

void print_run(const saltpeter::RunRecord& run) {
    for (const auto& [machine, t] : run.targets) {
        const int code = t.retcode.value_or(-1);
        std::cout << "===== " << machine << ": exit " << code << " (" << saltpeter::ExitCodeMapper::meaning(code)
                  << ")\n"
                  << t.output;
        if (!t.output.empty() && t.output.back() != '\n') std::cout << "\n";
    }
    std::cout << "===== " << run.instance << ": " << (run.success() ? "success" : "failed") << " ("
              << run.total() - run.failed() << "/" << run.total() << " targets)\n";
    std::cout.flush();
}

}  // namespace

int run(int argc, char** argv) {
    CLI::App app{"spd: the saltpeter daemon (schedules jobs and follows their runs)"};
    app.set_version_flag("--version", "spd " + std::string(saltpeter::version()));
    saltpeter::DaemonOptions options;
    std::string log_level = "info";
    std::string run_once;
    app.add_option("-c,--configdir", options.config_dir, "Config directory")->capture_default_str();
    app.add_option("--transport", options.transport, "How minions are reached: local (this host, no Salt), salt-cli, salt-api")
        ->check(CLI::IsMember({"local", "salt-cli", "salt-api"}))
        ->capture_default_str();
    app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}))
        ->capture_default_str();
    app.add_option("--run-once", run_once,
                   "Run this job now, print each target's output and exit with 0 when every target succeeded, "
                   "else the highest exit code (no scheduling)");
    app.add_flag("--echo-output", options.echo_output, "Print every target's output to stdout as it streams");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        return code == 0 ? 0 : 2;
    }

    auto logger = spdlog::stderr_color_mt("spd");
    spdlog::set_default_logger(logger);
    spdlog::set_level(spdlog::level::from_str(log_level));
    spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e %^%l%$ %v");

    options.schedule = run_once.empty();
    boost::asio::io_context io;
    saltpeter::Daemon daemon(io, options);
    int exit_code = 0;
    try {
        auto started = daemon.start();
        if (!started) {
            spdlog::critical("cannot start: {}", started.error().message);
            return 1;
        }
        boost::asio::signal_set signals(io, SIGTERM, SIGINT, SIGHUP);
        boost::asio::steady_timer guard(io);
        // A clean stop lets queued frames (the ack of a last `complete`) and close handshakes go
        // out: io.run() returns once nothing is left, with a guard in case a peer never answers.
        auto shutdown = [&] {
            daemon.stop();
            signals.cancel();
            guard.expires_after(std::chrono::seconds(2));
            guard.async_wait([&](const boost::system::error_code& ec) {
                if (!ec) io.stop();
            });
        };
        std::function<void(const boost::system::error_code&, int)> on_signal =
            [&](const boost::system::error_code& ec, int signal) {
                if (ec) return;
                if (signal == SIGHUP) {
                    spdlog::info("SIGHUP: reloading the configuration");
                    daemon.reload();
                    signals.async_wait(on_signal);
                    return;
                }
                spdlog::info("{}: stopping", signal == SIGTERM ? "SIGTERM" : "SIGINT");
                shutdown();
            };
        signals.async_wait(on_signal);
        if (!run_once.empty()) {
            daemon.set_on_run_finished([&](const saltpeter::RunRecord& run) {
                print_run(run);
                exit_code = run_once_status(run);
                // After the current handler, so that the wrapper gets its ack first.
                boost::asio::post(io, shutdown);
            });
            auto instance = daemon.run_now(run_once);
            if (!instance) {
                spdlog::critical("cannot run '{}': {}", run_once, instance.error().message);
                return 1;
            }
        }
        io.run();
    } catch (const std::exception& e) {
        spdlog::critical("fatal: {}", e.what());
        return 1;
    }
    return exit_code;
}

}  // namespace spd
