// FireTimeStore (the schedule-state file the misfire policy reads) and ConfigWatcher's filter.
#include <doctest/doctest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "host/config_watcher.hpp"
#include "runs/fire_time_store.hpp"

using namespace saltpeter;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

struct ScratchDir {
    ScratchDir() {
        char tmpl[] = "/tmp/sp-state-XXXXXX";
        REQUIRE(mkdtemp(tmpl) != nullptr);
        path = tmpl;
    }
    ~ScratchDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    fs::path path;
};

SysSeconds t(long s) { return SysSeconds(std::chrono::seconds(s)); }

}  // namespace

TEST_CASE("fire-time store: round trip through the file, 0600, atomic, later times only") {
    ScratchDir dir;
    const std::string path = (dir.path / "schedule-state.json").string();
    {
        std::string warning;
        auto store = make_file_fire_time_store(path, &warning);
        CHECK(warning.empty());  // a missing file is a first start
        CHECK_FALSE(store->last_fire("a").has_value());
        store->record_fire("a", t(1000));
        store->record_fire("a", t(900));  // never goes back
        store->record_fire("b", t(2000));
        store->record_misfire("b", t(2100), 3, "3 fire time(s) missed; misfire: skip");
        REQUIRE(store->flush().ok());
        CHECK_FALSE(fs::exists(path + ".tmp"));
        struct stat st {};
        REQUIRE(::stat(path.c_str(), &st) == 0);
        CHECK((st.st_mode & 0777) == 0600);
    }
    auto again = make_file_fire_time_store(path);
    CHECK(again->last_fire("a") == t(1000));
    CHECK(again->last_fire("b") == t(2000));
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    CHECK(text.str().find("\"decision\": \"3 fire time(s) missed; misfire: skip\"") != std::string::npos);
    CHECK(text.str().find("\"missed\": 3") != std::string::npos);
    again->retain({"b"});
    REQUIRE(again->flush().ok());
    CHECK_FALSE(make_file_fire_time_store(path)->last_fire("a").has_value());
    CHECK(make_file_fire_time_store(path)->last_fire("b") == t(2000));
}

TEST_CASE("fire-time store: a corrupt file is reported and treated as empty; an unwritable dir is an error") {
    ScratchDir dir;
    const std::string path = (dir.path / "schedule-state.json").string();
    std::ofstream(path) << "{not json";
    std::string warning;
    auto store = make_file_fire_time_store(path, &warning);
    CHECK(warning.find("schedule state " + path + " is unreadable") != std::string::npos);
    CHECK_FALSE(store->last_fire("a").has_value());
    auto nowhere = make_file_fire_time_store((dir.path / "missing" / "state.json").string());
    nowhere->record_fire("a", t(1));
    auto written = nowhere->flush();
    REQUIRE_FALSE(written.ok());
    CHECK(written.error().message.find("cannot write schedule state " + (dir.path / "missing").string()) == 0);
    CHECK(nowhere->last_fire("a") == t(1));  // kept in memory
}

TEST_CASE("config watcher: only visible *.yaml / *.yml files count") {
    CHECK(ConfigWatcher::relevant("jobs.yaml"));
    CHECK(ConfigWatcher::relevant("a.yml"));
    CHECK_FALSE(ConfigWatcher::relevant(".jobs.yaml.swp"));
    CHECK_FALSE(ConfigWatcher::relevant(".hidden.yaml"));
    CHECK_FALSE(ConfigWatcher::relevant("jobs.yaml~"));
    CHECK_FALSE(ConfigWatcher::relevant("4913"));  // vim's probe file
    CHECK_FALSE(ConfigWatcher::relevant("notes.txt"));
    CHECK_FALSE(ConfigWatcher::relevant(""));
}
