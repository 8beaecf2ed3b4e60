// SaltTransport's default run_async, for transports that only implement run_all.
#include "saltpeter/salt_transport.hpp"

namespace saltpeter {

RunAllRequest shell_request(const CommandRequest& request) {
    RunAllRequest run;
    run.minions = request.minions;
    run.argv = {"/bin/sh", "-c", request.command};
    run.env = request.env;
    run.cwd = request.cwd;
    run.runas = request.runas;
    return run;
}

TransportJob SaltTransport::run_async(const CommandRequest& request, std::function<void(MinionReturn)> on_return,
                                      std::function<void()> done) {
    RunAllRequest run = shell_request(request);
    run.timeout = request.follow_for.count() > 0 ? request.follow_for : std::chrono::seconds(24 * 3600);
    return run_all(run, std::move(on_return), std::move(done));
}

}  // namespace saltpeter
