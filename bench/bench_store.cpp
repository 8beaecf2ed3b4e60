// bench_store: RunStore throughput. Streams output into one target in fixed-size chunks with a
// completion per chunk (the way spd acks wrapper output only after commit), producer and
// completions on one io thread, back-pressure honoured through when_writable; then small writes
// one at a time (each waits for its commit: commits/s) and pipelined. Prints the median of
// several runs per scenario. "commits" counts the io handlers that delivered completions: the
// SQLite store posts one per group commit.
//
//   bench_store [--mib 1024] [--chunk 65536] [--runs 3] [--dir DIR] [--small 2000]
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "saltpeter/run_store.hpp"

using namespace saltpeter;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
    std::uint64_t mib = 1024;
    std::size_t chunk = 64 * 1024;
    int runs = 3;
    std::string dir;
    int small = 2000;
};

struct Measure {
    double seconds = 0;
    std::uint64_t ops = 0;
    std::uint64_t commits = 0;
    std::uint64_t failures = 0;
};

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/// Runs `io` until `done` holds, counting the handlers that moved `progress` (one per commit).
template <typename Pred>
std::uint64_t run_counting(boost::asio::io_context& io, const std::uint64_t& progress, Pred done) {
    auto guard = boost::asio::make_work_guard(io);
    io.restart();
    std::uint64_t commits = 0;
    while (!done()) {
        const std::uint64_t before = progress;
        io.run_one();
        if (progress != before) ++commits;
    }
    return commits;
}

std::unique_ptr<RunStore> open_store(boost::asio::io_context& io, const std::string& path, const RunStoreOptions& o,
                                     bool sqlite) {
    if (!sqlite) return make_memory_run_store(io, o);
    auto s = make_sqlite_run_store(io, path, o);
    if (!s) {
        std::fprintf(stderr, "bench_store: %s\n", s.error().message.c_str());
        std::exit(1);
    }
    return std::move(*s);
}

void setup_run(boost::asio::io_context& io, RunStore& store) {
    StoredRun r;
    r.instance = "bench_1";
    r.job = "bench";
    r.started = std::chrono::time_point_cast<std::chrono::microseconds>(std::chrono::system_clock::now());
    StoredTarget t;
    t.instance = "bench_1";
    t.machine = "m";
    bool ok = false;
    store.put_run(r);
    store.put_target(t);
    store.flush([&](const Status& s) { ok = true; if (!s) std::fprintf(stderr, "%s\n", s.error().message.c_str()); });
    std::uint64_t dummy = 0;
    run_counting(io, dummy, [&] { return ok; });
}

Measure stream(const Args& a, const RunStoreOptions& o, bool sqlite, const std::string& path) {
    boost::asio::io_context io;
    auto store = open_store(io, path, o, sqlite);
    setup_run(io, *store);
    const std::uint64_t total = a.mib * 1024 * 1024 / a.chunk;
    std::string chunk(a.chunk, 'x');
    for (std::size_t i = 0; i < chunk.size(); i += 64) chunk[i] = '\n';
    std::uint64_t sent = 0, completed = 0, failures = 0;
    std::function<void()> pump = [&] {
        while (sent < total) {
            if (!store->try_append_output("bench_1", "m", static_cast<std::int64_t>(sent), chunk, [&](const Status& s) {
                    ++completed;
                    if (!s) ++failures;
                })) {
                store->when_writable(pump);
                return;
            }
            ++sent;
        }
    };
    const auto t0 = Clock::now();
    pump();
    const std::uint64_t commits = run_counting(io, completed, [&] { return completed == total; });
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    store.reset();  // the final checkpoint is not part of the measured time
    return {secs, total, commits, failures};
}

/// One small write at a time, each waiting for its commit: the commit latency bound.
Measure sequential(const Args& a, const RunStoreOptions& o, bool sqlite, const std::string& path) {
    boost::asio::io_context io;
    auto store = open_store(io, path, o, sqlite);
    setup_run(io, *store);
    std::uint64_t completed = 0, failures = 0;
    const auto t0 = Clock::now();
    for (int i = 0; i < a.small; ++i) {
        store->try_append_output("bench_1", "m", i, "a line of output, about sixty bytes long, like most logs\n",
                                 [&](const Status& s) {
                                     ++completed;
                                     if (!s) ++failures;
                                 });
        run_counting(io, completed, [&] { return completed == static_cast<std::uint64_t>(i) + 1; });
    }
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    return {secs, completed, completed, failures};
}

/// Many small writes outstanding: how many fit in a group commit.
Measure pipelined(const Args& a, const RunStoreOptions& o, bool sqlite, const std::string& path) {
    boost::asio::io_context io;
    auto store = open_store(io, path, o, sqlite);
    setup_run(io, *store);
    const std::uint64_t total = static_cast<std::uint64_t>(a.small) * 50;
    std::uint64_t completed = 0, failures = 0;
    const auto t0 = Clock::now();
    for (std::uint64_t i = 0; i < total; ++i) {
        store->try_append_output("bench_1", "m", static_cast<std::int64_t>(i),
                                 "a line of output, about sixty bytes long, like most logs\n", [&](const Status& s) {
                                     ++completed;
                                     if (!s) ++failures;
                                 });
    }
    const std::uint64_t commits = run_counting(io, completed, [&] { return completed == total; });
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    return {secs, total, commits, failures};
}

void remove_db(const std::string& path) {
    std::error_code ec;
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path + suffix, ec);
}

}  // namespace

int main(int argc, char** argv) {
    Args a;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string k = argv[i];
        const char* v = argv[i + 1];
        if (k == "--mib") a.mib = std::strtoull(v, nullptr, 10);
        else if (k == "--chunk") a.chunk = std::strtoull(v, nullptr, 10);
        else if (k == "--runs") a.runs = std::atoi(v);
        else if (k == "--dir") a.dir = v;
        else if (k == "--small") a.small = std::atoi(v);
        else {
            std::fprintf(stderr, "usage: bench_store [--mib N] [--chunk BYTES] [--runs N] [--dir DIR] [--small N]\n");
            return 2;
        }
    }
    if (a.dir.empty()) a.dir = fs::temp_directory_path().string();
    if (a.chunk == 0 || a.mib == 0 || a.runs <= 0 || a.small <= 0) return 2;
    const std::string path = (fs::path(a.dir) / ("bench_store_" + std::to_string(::getpid()) + ".db")).string();
    std::printf("bench_store: %llu MiB in %zu-byte chunks, completion per chunk; %d runs, medians; db %s\n",
                static_cast<unsigned long long>(a.mib), a.chunk, a.runs, path.c_str());

    struct Scenario {
        const char* name;
        bool sqlite;
        bool sync_full;
        std::uint64_t output_max;
    };
    const Scenario streams[] = {
        {"sqlite FULL,   output_max_bytes=0 (all kept)", true, true, 0},
        {"sqlite NORMAL, output_max_bytes=0 (all kept)", true, false, 0},
        {"sqlite FULL,   output_max_bytes=16MiB (cut)", true, true, 16u * 1024 * 1024},
        {"memory,        output_max_bytes=16MiB (cut)", false, true, 16u * 1024 * 1024},
    };
    bool failed = false;
    for (const auto& s : streams) {
        std::vector<double> mbs, commits, per_commit;
        for (int r = 0; r < a.runs; ++r) {
            RunStoreOptions o;
            o.sync_full = s.sync_full;
            o.output_max_bytes = s.output_max;
            const Measure m = stream(a, o, s.sqlite, path);
            remove_db(path);
            failed = failed || m.failures > 0;
            mbs.push_back(static_cast<double>(m.ops * a.chunk) / (1024.0 * 1024.0) / m.seconds);
            commits.push_back(static_cast<double>(m.commits) / m.seconds);
            per_commit.push_back(static_cast<double>(m.ops) / static_cast<double>(std::max<std::uint64_t>(m.commits, 1)));
        }
        std::printf("stream   %-46s %8.1f MiB/s  %8.1f commits/s  %6.1f chunks/commit\n", s.name, median(mbs),
                    median(commits), median(per_commit));
        std::fflush(stdout);
    }
    const Scenario smalls[] = {
        {"sqlite FULL", true, true, 0},
        {"sqlite NORMAL", true, false, 0},
    };
    for (const auto& s : smalls) {
        std::vector<double> seq_rate, pipe_rate, pipe_commits;
        for (int r = 0; r < a.runs; ++r) {
            RunStoreOptions o;
            o.sync_full = s.sync_full;
            const Measure m1 = sequential(a, o, s.sqlite, path);
            remove_db(path);
            const Measure m2 = pipelined(a, o, s.sqlite, path);
            remove_db(path);
            failed = failed || m1.failures > 0 || m2.failures > 0;
            seq_rate.push_back(static_cast<double>(m1.ops) / m1.seconds);
            pipe_rate.push_back(static_cast<double>(m2.ops) / m2.seconds);
            pipe_commits.push_back(static_cast<double>(m2.commits) / m2.seconds);
        }
        std::printf("small    %-14s one at a time: %8.0f commits/s   pipelined: %9.0f writes/s in %6.0f commits/s\n",
                    s.name, median(seq_rate), median(pipe_rate), median(pipe_commits));
        std::fflush(stdout);
    }
    if (failed) {
        std::fprintf(stderr, "bench_store: some writes failed\n");
        return 1;
    }
    return 0;
}
