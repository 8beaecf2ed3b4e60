#include "spctl.hpp"

#include <exception>
#include <iostream>
#include <string>

#include "saltpeter/version.hpp"

namespace spctl {

int run(int argc, char** argv) {
    CLI::App app{"spctl: operate saltpeter, the distributed cron for Salt fleets"};
    app.set_version_flag("--version", "spctl " + std::string(saltpeter::version()));
    app.require_subcommand(1);
    Context ctx;
    app.add_option("--url", ctx.url, "spd API URL (default: $SALTPETER_URL, spctl.yaml, http://127.0.0.1:8888)");
    app.add_option("--token", ctx.token, "API token (default: $SALTPETER_TOKEN, spctl.yaml)");
    app.add_flag("--json", ctx.json, "Print JSON for scripts");
    app.fallthrough();  // global options may also follow the command
    register_validate(app, ctx);
    register_next(app, ctx);
    register_import_crontab(app, ctx);
    register_status(app, ctx);
    register_jobs(app, ctx);
    register_running(app, ctx);
    register_run_now(app, ctx);
    register_kill(app, ctx);
    register_logs(app, ctx);
    register_history(app, ctx);
    register_completion(app, ctx);
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e);  // prints the message and the usage hint
        return k_exit_usage;
    } catch (const std::exception& e) {
        std::cerr << "spctl: " << e.what() << "\n";
        return k_exit_failure;
    }
    return ctx.exit_code;
}

}  // namespace spctl
