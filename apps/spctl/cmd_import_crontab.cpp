// spctl import-crontab FILE: a classic crontab converted into a saltpeter job file (offline).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>
#include <string>

#include "saltpeter/config.hpp"
#include "saltpeter/crontab_import.hpp"
#include "saltpeter/salt_transport.hpp"
#include "spctl.hpp"

namespace spctl {

namespace {

struct ImportOptions {
    std::string file;
    std::string targets;  // empty = this host's name
    std::string target_type = "glob";
    std::string output;   // empty = stdout
    bool system = false;
    bool user = false;
    bool force = false;
};

bool is_system_crontab_path(const std::string& path) {
    return path == "/etc/crontab" || path.rfind("/etc/cron.d/", 0) == 0;
}

// Writes `text` to `path`: a new file 0644 (O_EXCL unless `force`), never through a symlink.
bool write_file(const std::string& path, const std::string& text, bool force) {
    const int flags = O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC | (force ? O_TRUNC : O_EXCL);
    const int fd = ::open(path.c_str(), flags, 0644);
    if (fd < 0) {
        std::cerr << "spctl import-crontab: cannot create '" << path << "': " << std::strerror(errno)
                  << (errno == EEXIST ? " (use --force to overwrite)" : "") << "\n";
        return false;
    }
    std::size_t done = 0;
    while (done < text.size()) {
        const auto n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            std::cerr << "spctl import-crontab: cannot write '" << path << "': " << std::strerror(errno) << "\n";
            ::close(fd);
            return false;
        }
        done += static_cast<std::size_t>(n);
    }
    return ::close(fd) == 0;
}

int run_import(const ImportOptions& opts) {
    if (opts.system && opts.user) {
        std::cerr << "spctl import-crontab: give either --system or --user, not both\n";
        return k_exit_usage;
    }
    const auto type = saltpeter::target_type_from_string(opts.target_type);
    if (!type) {
        std::cerr << "spctl import-crontab: --target-type: unknown target type '" << opts.target_type << "'\n";
        return k_exit_usage;
    }
    std::string text;
    if (opts.file == "-") {
        text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    } else {
        std::ifstream in(opts.file, std::ios::binary);
        if (!in) {
            std::cerr << "spctl import-crontab: cannot read '" << opts.file << "': " << std::strerror(errno) << "\n";
            return k_exit_usage;
        }
        std::ostringstream buffer;
        buffer << in.rdbuf();
        text = buffer.str();
    }

    saltpeter::CrontabImportOptions options;
    options.targets = opts.targets.empty() ? saltpeter::host_name() : opts.targets;
    options.target_type = *type;
    options.system_crontab = opts.system || (!opts.user && is_system_crontab_path(opts.file));
    options.origin = opts.file == "-" ? "<stdin>" : opts.file;
    const auto result = saltpeter::import_crontab(text, options);

    std::size_t errors = 0;
    std::size_t warnings = 0;
    for (const auto& p : result.problems) {
        std::cerr << p.to_string() << "\n";
        (p.is_error() ? errors : warnings) += 1;
    }
    if (opts.output.empty()) {
        std::cout << result.yaml << std::flush;
    } else if (!write_file(opts.output, result.yaml, opts.force)) {
        return k_exit_usage;
    }
    std::cerr << result.jobs << (result.jobs == 1 ? " job, " : " jobs, ") << errors
              << (errors == 1 ? " line not converted" : " lines not converted");
    if (warnings > 0) std::cerr << ", " << warnings << (warnings == 1 ? " warning" : " warnings");
    std::cerr << "\n";
    return errors == 0 ? k_exit_ok : k_exit_failure;
}

}  // namespace

void register_import_crontab(CLI::App& app, Context& ctx) {
    auto opts = std::make_shared<ImportOptions>();
    auto* cmd = app.add_subcommand("import-crontab", "Convert a crontab into a saltpeter job file (offline)");
    cmd->add_option("FILE", opts->file, "The crontab ('-' reads standard input)")->required();
    cmd->add_option("--targets", opts->targets, "Salt target of every job (default: this host's name)");
    cmd->add_option("--target-type", opts->target_type, "glob, list, compound, ...")->capture_default_str();
    cmd->add_option("-o,--output", opts->output, "Write the YAML to this new file (default: standard output)");
    cmd->add_flag("--force", opts->force, "Overwrite the --output file");
    cmd->add_flag("--system", opts->system,
                  "The 6th field is the user (default for /etc/crontab and /etc/cron.d/*)");
    cmd->add_flag("--user", opts->user, "A user's crontab (no user field), whatever the path");
    cmd->footer("Problems go to standard error as file:line:col: message.\n"
                "Exit status: 0 every line converted, 1 some lines left out (kept as comments), 2 bad arguments "
                "or unreadable FILE.");
    cmd->callback([opts, &ctx] { ctx.exit_code = run_import(*opts); });
}

}  // namespace spctl
