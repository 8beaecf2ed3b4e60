#pragma once
// Helpers the loopback tests share: a temporary directory removed at the end of the test, reading
// a whole file, and whether a process is still alive (a zombie counts as gone).
#include <doctest/doctest.h>
#include <signal.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>

namespace sp_test {

struct TempDir {
    explicit TempDir(const std::string& prefix = "sp-test") {
        std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
        REQUIRE(mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::filesystem::path path;
};

/// Points $TMPDIR at `dir` (created) while alive and restores it afterwards. The local transport
/// and the fake salt doubles put each minion's wrapper host lock in $TMPDIR, so a test that runs
/// sp_wrapper through a Daemon takes its locks in its own directory, never shared with another
/// checkout's tests. Create it before the daemon's threads start (setenv is not thread-safe).
struct ScopedTmpdir {
    explicit ScopedTmpdir(const std::filesystem::path& dir) {
        std::filesystem::create_directories(dir);
        if (const char* old = getenv("TMPDIR")) saved = old;
        had = getenv("TMPDIR") != nullptr;
        setenv("TMPDIR", dir.c_str(), 1);
    }
    ~ScopedTmpdir() {
        if (had) setenv("TMPDIR", saved.c_str(), 1);
        else unsetenv("TMPDIR");
    }
    ScopedTmpdir(const ScopedTmpdir&) = delete;
    ScopedTmpdir& operator=(const ScopedTmpdir&) = delete;
    std::string saved;
    bool had = false;
};

inline std::string read_file(const std::filesystem::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

inline bool pid_alive(pid_t pid) {
    if (kill(pid, 0) != 0) return false;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string all((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const auto close = all.rfind(") ");
    return close == std::string::npos || all[close + 2] != 'Z';
}

}  // namespace sp_test
