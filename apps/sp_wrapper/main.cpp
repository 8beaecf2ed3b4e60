// sp_wrapper: only version and help so far; the rest is wired in as the daemon and agent are built.
#include <CLI/CLI.hpp>
#include <string>

#include "saltpeter/version.hpp"

int main(int argc, char** argv) {
    CLI::App app{"sp_wrapper: runs one saltpeter job on this machine and streams it to spd"};
    app.set_version_flag("--version", "sp_wrapper " + std::string(saltpeter::version()));
    app.require_subcommand(0, 0);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        return code == 0 ? 0 : 2;
    }
    std::cerr << app.help();
    return 2;
}
