#include <doctest/doctest.h>
#include <sys/wait.h>

#include <csignal>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "saltpeter/exit_code_mapper.hpp"

using namespace saltpeter;

namespace {

std::string trim(const std::string& s) {
    const auto b = s.find_first_not_of(' ');
    const auto e = s.find_last_not_of(' ');
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

std::vector<std::vector<std::string>> doc_table_rows() {
    std::ifstream in(std::string(SALTPETER_SOURCE_DIR) + "/docs/exit-codes.md");
    REQUIRE(in.good());
    std::vector<std::vector<std::string>> rows;
    std::string line;
    bool inside = false;
    while (std::getline(in, line)) {
        if (line.find("exit-code-table:begin") != std::string::npos) inside = true;
        if (line.find("exit-code-table:end") != std::string::npos) inside = false;
        if (!inside || line.rfind("| ", 0) != 0 || line.rfind("| code", 0) == 0) continue;
        std::vector<std::string> cells;
        std::stringstream ss(line.substr(1));
        std::string cell;
        while (std::getline(ss, cell, '|')) cells.push_back(trim(cell));
        rows.push_back(cells);
    }
    return rows;
}

}  // namespace

TEST_CASE("docs/exit-codes.md mirrors ExitCodeMapper::table() row by row") {
    const auto rows = doc_table_rows();
    const auto& table = ExitCodeMapper::table();
    REQUIRE(rows.size() == table.size());
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const auto& row = table[i];
        const std::string code = row.first == row.last ? std::to_string(row.first)
                                                       : std::to_string(row.first) + "-" + std::to_string(row.last);
        INFO("row " << i);
        REQUIRE(rows[i].size() >= 3);
        CHECK(rows[i][0] == code);
        CHECK(rows[i][1] == row.meaning);
        CHECK(rows[i][2] == row.set_by);
    }
}

TEST_CASE("every outcome maps to the code of PROTOCOL 5.1 and back") {
    struct Case {
        Outcome outcome;
        int code;
    };
    const Case cases[] = {
        {Outcome::success, 0},         {Outcome::timeout, 124},         {Outcome::permission_denied, 126},
        {Outcome::not_found, 127},     {Outcome::killed, 143},          {Outcome::heartbeat_lost, 253},
        {Outcome::skipped, 252},
        {Outcome::never_started, 254}, {Outcome::no_response, 255},
    };
    for (const auto& c : cases) {
        CHECK(ExitCodeMapper::code(c.outcome) == c.code);
        CHECK(ExitCodeMapper::outcome(c.code) == c.outcome);
    }
    CHECK(ExitCodeMapper::code(Outcome::lock_held) == 254);
    CHECK(ExitCodeMapper::code(Outcome::wrapper_error) == 255);
    CHECK(ExitCodeMapper::code(Outcome::unknown_error) == 255);
    CHECK(ExitCodeMapper::outcome(3) == Outcome::command_failed);
    CHECK(ExitCodeMapper::outcome(123) == Outcome::command_failed);
    CHECK(ExitCodeMapper::outcome(200) == Outcome::command_failed);
    CHECK(ExitCodeMapper::outcome(-15) == Outcome::signaled);
    CHECK(ExitCodeMapper::outcome(300) == Outcome::unknown_error);
}

TEST_CASE("meanings read well for operators") {
    CHECK(ExitCodeMapper::meaning(0) == "success");
    CHECK(ExitCodeMapper::meaning(3) == "the command's own failure (exit 3)");
    CHECK(ExitCodeMapper::meaning(143) == "killed on request");
    CHECK(ExitCodeMapper::meaning(253) == "heartbeat lost: no frame from the wrapper for heartbeat_timeout");
    CHECK(ExitCodeMapper::meaning(-15) == "killed by signal 15 (SIGTERM)");
    CHECK(ExitCodeMapper::meaning(-9) == "killed by signal 9 (SIGKILL)");
    CHECK(ExitCodeMapper::meaning(137) == "the command's own failure (exit 137, usually death by SIGKILL)");
    CHECK(ExitCodeMapper::meaning(125) == "the command's own failure (exit 125)");
    CHECK(ExitCodeMapper::meaning(4000) == "unknown exit code 4000");
    for (const auto& row : ExitCodeMapper::table()) {
        if (row.first == row.last) CHECK(ExitCodeMapper::meaning(row.first) == row.meaning);
    }
}

TEST_CASE("wait statuses become wrapper exit codes") {
    // Build real wait statuses by running children rather than faking the bit layout.
    auto status_of = [](auto&& child_body) {
        const pid_t pid = fork();
        if (pid == 0) child_body();
        int status = 0;
        waitpid(pid, &status, 0);
        return status;
    };
    const int exited3 = status_of([] { _exit(3); });
    const int exited0 = status_of([] { _exit(0); });
    const int terminated = status_of([] {
        std::signal(SIGTERM, SIG_DFL);
        raise(SIGTERM);
        _exit(99);
    });
    CHECK(ExitCodeMapper::from_wait_status(exited3, Verdict::none) == 3);
    CHECK(ExitCodeMapper::from_wait_status(exited0, Verdict::none) == 0);
    CHECK(ExitCodeMapper::from_wait_status(terminated, Verdict::none) == -15);
    // After the wrapper's own kill or timeout, the verdict wins whether the shell exited or died.
    CHECK(ExitCodeMapper::from_wait_status(terminated, Verdict::killed) == 143);
    CHECK(ExitCodeMapper::from_wait_status(exited0, Verdict::killed) == 143);
    CHECK(ExitCodeMapper::from_wait_status(terminated, Verdict::timed_out) == 124);
    CHECK(ExitCodeMapper::from_wait_status(exited3, Verdict::timed_out) == 124);
}

TEST_CASE("signal names") {
    CHECK(signal_name(SIGTERM) == "SIGTERM");
    CHECK(signal_name(SIGKILL) == "SIGKILL");
    CHECK(signal_name(200) == "signal 200");
}

TEST_CASE("process status of a whole run: 0 only when every target succeeded, else the highest code") {
    CHECK(ExitCodeMapper::process_status({0, 0}) == 0);
    CHECK(ExitCodeMapper::process_status({}) == 1);                       // no target ran
    CHECK(ExitCodeMapper::process_status({0, std::nullopt}) == 1);        // a target without a result
    CHECK(ExitCodeMapper::process_status({0, 3, 253}) == 253);
    CHECK(ExitCodeMapper::process_status({-15}) == 1);                    // signalled
    CHECK(ExitCodeMapper::process_status({0, 300}) == 255);               // clamped to a process status
}
