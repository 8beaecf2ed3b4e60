// ApiServer with an embedded Daemon (local transport, real sp_wrapper) and ApiClient over real
// HTTP and WebSocket on 127.0.0.1: run-now, live follow, history, output, auth, metrics.
#include <doctest/doctest.h>
#include <stdlib.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <thread>

#include "saltpeter/api_client.hpp"
#include "saltpeter/daemon.hpp"
#include "test_files.hpp"
#include "watchdog.hpp"

using namespace saltpeter;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

constexpr const char* k_read_token = "read-token-0123456789";
constexpr const char* k_operate_token = "operate-token-0123456789";

// spd with the API on 127.0.0.1:0; its io_context runs on a thread of its own so that the
// blocking ApiClient can be used from the test thread.
struct ApiFixture {
    explicit ApiFixture(const std::string& job_yaml) {
        char tmpl[] = "/tmp/sp-api-XXXXXX";
        REQUIRE(mkdtemp(tmpl) != nullptr);
        dir = tmpl;
        tmpdir = std::make_unique<sp_test::ScopedTmpdir>(dir / "tmp");
        fs::create_directories(dir / "config");
        std::ofstream(dir / "config" / "jobs.yaml") << "saltpeter_config:\n"
                                                     << "  logdir: " << (dir / "log").string() << "\n"
                                                     << "  machines_ws_bind_addr: 127.0.0.1\n"
                                                     << "  machines_ws_port: 0\n"
                                                     << "  api_ws: true\n"
                                                     << "  api_ws_bind_addr: 127.0.0.1\n"
                                                     << "  api_ws_port: 0\n"
                                                     << "  api_tokens:\n"
                                                     << "    - {name: reader, token: " << k_read_token << ", role: read}\n"
                                                     << "    - {name: ops, token: " << k_operate_token << ", role: operate}\n"
                                                     << "  default_wrapper_path: " << SP_WRAPPER_PATH << "\n"
                                                     << "  default_wrapper_logdir: " << (dir / "wlog").string() << "\n"
                                                     << "  local_minions: [m1, m2]\n"
                                                     << job_yaml;
        DaemonOptions options;
        options.config_dir = (dir / "config").string();
        options.schedule = false;
        daemon = std::make_unique<Daemon>(io, options);
        auto started = daemon->start();
        REQUIRE_MESSAGE(started.ok(), (started.ok() ? "" : started.error().message));
        REQUIRE(daemon->api_port() != 0);
        url = "http://127.0.0.1:" + std::to_string(daemon->api_port());
        thread = std::thread([this] { io.run(); });
    }
    ~ApiFixture() {
        boost::asio::post(io, [this] {
            daemon->stop();
            io.stop();
        });
        thread.join();
        daemon.reset();
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    ApiClient client(const std::string& token) const {
        ApiClientOptions o;
        o.url = url;
        o.token = token;
        o.timeout = 10s;
        return ApiClient(o);
    }

    fs::path dir;
    std::unique_ptr<sp_test::ScopedTmpdir> tmpdir;  // the wrapper host locks
    boost::asio::io_context io;
    std::unique_ptr<Daemon> daemon;
    std::string url;
    std::thread thread;
};

// Job names unique across tests (the wrapper host locks are in each fixture's own TMPDIR).
const char* const k_jobs = R"(
api_ticker:
  command: "echo one; sleep 1; echo two; sleep 1; echo three"
  targets: 'm*'
  schedule: '@yearly'
  env:
    SP_OUTPUT_INTERVAL_MS: '50'
api_failing:
  command: "echo bad; exit 7"
  targets: m1
  schedule: '@yearly'
)";

}  // namespace

TEST_CASE("API: run-now, live follow, history, output and metrics over HTTP and /ws") {
    saltpeter::test::Watchdog dog(90s);
    ApiFixture f(k_jobs);
    auto ops = f.client(k_operate_token);
    auto instance = ops.run_now("api_ticker");
    REQUIRE_MESSAGE(instance.ok(), (instance.ok() ? "" : instance.error().message));
    CHECK(instance->rfind("api_ticker_", 0) == 0);

    std::map<std::string, std::string> seen;
    std::vector<std::chrono::steady_clock::time_point> arrivals;
    bool saw_unfinished_update = false;
    auto run = ops.follow(
        "api_ticker", *instance,
        [&](const std::string& machine, std::string_view text) {
            seen[machine] += std::string(text);
            arrivals.push_back(std::chrono::steady_clock::now());
        },
        [&](const RunInfo& r) { saw_unfinished_update = saw_unfinished_update || !r.finished; });
    REQUIRE_MESSAGE(run.ok(), (run.ok() ? "" : run.error().message));
    CHECK(run->finished);
    CHECK(run->success);
    CHECK(saw_unfinished_update);
    REQUIRE(seen.size() == 2);
    for (const auto& [machine, text] : seen) CHECK_MESSAGE(text == "one\ntwo\nthree\n", machine);
    // Live: the pieces arrived spread over the run, not all at its end.
    REQUIRE(arrivals.size() >= 3);
    CHECK(arrivals.back() - arrivals.front() > 1s);

    auto history = ops.history("api_ticker", 5);
    REQUIRE(history.ok());
    REQUIRE(history->size() == 1);
    CHECK(history->front().instance == *instance);
    REQUIRE(history->front().targets.size() == 2);
    for (const auto& t : history->front().targets) {
        CHECK(t.retcode == 0);
        REQUIRE(t.duration);
        CHECK(*t.duration > 1.5);
    }
    auto output = ops.output(*instance, std::string("m2"));
    REQUIRE(output.ok());
    CHECK(output->size() == 1);
    CHECK(output->at("m2") == "one\ntwo\nthree\n");

    auto failing = ops.run_now("api_failing");
    REQUIRE(failing.ok());
    auto failed = ops.follow("api_failing", *failing, {});
    REQUIRE(failed.ok());
    CHECK_FALSE(failed->success);
    REQUIRE(failed->targets.size() == 1);
    CHECK(failed->targets[0].retcode == 7);

    auto metrics = f.client(k_read_token).get("/metrics");
    REQUIRE(metrics.ok());
    CHECK(metrics->find("saltpeter_runs_started_total{job=\"api_ticker\"} 1\n") != std::string::npos);
    CHECK(metrics->find("saltpeter_target_results_total{code=\"7\",job=\"api_failing\"} 1\n") == std::string::npos);
    CHECK(metrics->find("saltpeter_target_results_total{job=\"api_failing\",code=\"7\"} 1\n") != std::string::npos);
    CHECK(metrics->find("saltpeter_runs_finished_total{job=\"api_ticker\",result=\"success\"} 1\n") != std::string::npos);
    CHECK(metrics->find("# TYPE saltpeter_wrappers_connected gauge") != std::string::npos);
}

TEST_CASE("API: tokens and roles, unknown jobs with close names, kill conflicts") {
    saltpeter::test::Watchdog dog(60s);
    ApiFixture f(k_jobs);
    auto anonymous = f.client("");
    auto jobs = anonymous.jobs();
    REQUIRE_FALSE(jobs.ok());
    CHECK(jobs.error().field == "unauthorized");
    CHECK(f.client("wrong-token-0123456789").jobs().error().field == "unauthorized");
    auto health = anonymous.get("/healthz");
    CHECK(health.ok());

    auto reader = f.client(k_read_token);
    auto listed = reader.jobs();
    REQUIRE(listed.ok());
    REQUIRE(listed->size() == 2);
    CHECK(listed->at(0).name == "api_failing");
    CHECK(listed->at(1).name == "api_ticker");
    auto refused = reader.run_now("api_ticker");
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().field == "forbidden");

    auto ops = f.client(k_operate_token);
    auto unknown = ops.run_now("api_tikcer");
    REQUIRE_FALSE(unknown.ok());
    CHECK(unknown.error().field == "not_found");
    CHECK(unknown.error().message.find("close names: api_ticker") != std::string::npos);
    auto nothing = ops.kill("api_ticker");
    REQUIRE_FALSE(nothing.ok());
    CHECK(nothing.error().field == "conflict");
    auto bad = ops.post("/kill", "{\"job\": 5}");
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().field == "bad_request");
    CHECK(ops.get("/nope").error().field == "not_found");

    ApiClientOptions nowhere;
    nowhere.url = "http://127.0.0.1:1";
    nowhere.timeout = 3s;
    auto unreachable = ApiClient(nowhere).jobs();
    REQUIRE_FALSE(unreachable.ok());
    CHECK(unreachable.error().field == "unreachable");
    CHECK(unreachable.error().message.find("127.0.0.1:1") != std::string::npos);
}
