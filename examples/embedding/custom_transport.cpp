// Embedding example (c): run jobs through your own SaltTransport. The Daemon (spd's engine) is
// given a transport through DaemonOptions::transport_factory; here a dry-run transport whose
// minions are an in-memory inventory: test.ping answers for the minions that are "up", and
// cmd.run_all reports the argv it would run instead of running it. A real one would call your
// orchestration system, an SSH pool or a cloud API in the same places.
//
//   custom_transport        (writes a config into a temporary directory and runs job 'hello' once)
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <saltpeter/daemon.hpp>
#include <saltpeter/exit_code_mapper.hpp>
#include <saltpeter/salt_transport.hpp>
#include <saltpeter/targeting.hpp>

namespace {

class DryRunTransport final : public saltpeter::SaltTransport {
public:
    DryRunTransport(boost::asio::io_context& io, std::map<std::string, bool> inventory)
        : m_io(io), m_inventory(std::move(inventory)) {}

    std::string name() const override { return "dry-run"; }

    void ping(const saltpeter::SaltTarget& target, std::chrono::seconds /*timeout*/,
              std::function<void(saltpeter::Result<saltpeter::PingReply>)> done) override {
        ++pings;
        auto matcher = saltpeter::TargetMatcher::compile(target.expression, target.type);
        if (!matcher) {  // a bad target is an Error, reported once, like Salt's own refusal
            post([done, error = matcher.error()] { done(error); });
            return;
        }
        saltpeter::PingReply reply;
        for (const auto& [minion, up] : m_inventory) {
            if (!matcher->matches(minion)) continue;
            if (up) {
                reply.responding.push_back(minion);
            } else {
                reply.not_responding.emplace_back(minion, "Minion did not return. [No response]");
            }
        }
        // Callbacks never run inside the call: the caller may still be setting up.
        post([done, reply] { done(reply); });
    }

    saltpeter::TransportJob run_all(const saltpeter::RunAllRequest& request,
                                    std::function<void(saltpeter::MinionReturn)> on_return,
                                    std::function<void()> done) override {
        ++run_alls;
        std::string command;
        for (const auto& arg : request.argv) command += (command.empty() ? "" : " ") + arg;
        for (const auto& minion : request.minions) {
            saltpeter::MinionReturn ret;
            ret.minion = minion;
            ret.retcode = 0;
            ret.stdout_text = "dry-run: " + command;
            post([on_return, ret] { on_return(ret); });
        }
        post(std::move(done));
        return ++m_next_job;
    }

    void terminate(saltpeter::TransportJob, const std::vector<std::string>&, std::chrono::seconds) override {}
    void stop() override {}

    int pings = 0;
    int run_alls = 0;

private:
    template <typename F>
    void post(F f) { boost::asio::post(m_io, std::move(f)); }

    boost::asio::io_context& m_io;
    std::map<std::string, bool> m_inventory;  // minion -> up
    saltpeter::TransportJob m_next_job = 0;
};

}  // namespace

int main() {
    namespace fs = std::filesystem;
    std::string tmpl = (fs::temp_directory_path() / "saltpeter-embed-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
        std::cerr << "custom_transport: cannot create a temporary directory\n";
        return 1;
    }
    const fs::path dir = tmpl;
    {
        std::ofstream config(dir / "jobs.yaml");
        config << "saltpeter_config:\n"
                  "  logdir: " << (dir / "log").string() << "\n"
                  "  machines_ws_bind_addr: 127.0.0.1\n"
                  "  machines_ws_port: 0\n"
                  "hello:\n"
                  "  command: echo hello\n"
                  "  targets: '*'\n"
                  "  schedule: '@daily'\n"
                  "  use_wrapper: false\n";
    }

    boost::asio::io_context io;
    DryRunTransport* transport = nullptr;
    saltpeter::DaemonOptions options;
    options.config_dir = dir.string();
    options.schedule = false;  // only run_now() starts runs
    options.transport_factory = [&](boost::asio::io_context& daemon_io, const saltpeter::Settings&) {
        auto t = std::make_unique<DryRunTransport>(
            daemon_io, std::map<std::string, bool>{{"db01", false}, {"web01", true}, {"web02", true}});
        transport = t.get();
        return std::unique_ptr<saltpeter::SaltTransport>(std::move(t));
    };

    int status = 1;
    {
        saltpeter::Daemon daemon(io, options);
        boost::asio::steady_timer guard(io);
        if (auto started = daemon.start(); !started) {
            std::cerr << "custom_transport: " << started.error().message << "\n";
            fs::remove_all(dir);
            return 1;
        }
        daemon.set_on_run_finished([&](const saltpeter::RunRecord& run) {
            std::cout << "run of " << run.job << ": " << (run.targets.size() - run.failed()) << " of "
                      << run.targets.size() << " targets succeeded\n";
            for (const auto& [machine, target] : run.targets) {
                const int code = target.retcode.value_or(-1);
                std::cout << machine << " exit " << code << " (" << saltpeter::ExitCodeMapper::meaning(code)
                          << ") " << target.output << "\n";
            }
            status = 0;  // the run finished; its targets may still have failed (db01 is down)
            boost::asio::post(io, [&] {
                daemon.stop();
                guard.expires_after(std::chrono::seconds(2));
                guard.async_wait([&](const boost::system::error_code& ec) {
                    if (!ec) io.stop();
                });
            });
        });
        auto instance = daemon.run_now("hello");
        if (!instance) {
            std::cerr << "custom_transport: " << instance.error().message << "\n";
            fs::remove_all(dir);
            return 1;
        }
        io.run();
        if (transport != nullptr) {
            std::cout << "transport " << transport->name() << ": " << transport->pings << " ping, "
                      << transport->run_alls << " run_all\n";
        }
    }
    fs::remove_all(dir);
    return status;
}
