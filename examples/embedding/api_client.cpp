// Embedding example (d): drive a running spd through ApiClient, as spctl does. Lists the jobs,
// starts one, streams its output as "machine | text" while it runs, then prints each target's
// exit code. The token comes from the environment (never from the command line, where `ps`
// would show it).
//
//   SALTPETER_TOKEN=... api_client http://127.0.0.1:8888 JOB
#include <cstdlib>
#include <iostream>
#include <string>

#include <saltpeter/api_client.hpp>
#include <saltpeter/exit_code_mapper.hpp>

int main(int argc, char** argv) {
    if (argc != 3) {
        std::cerr << "usage: api_client URL JOB   (token in SALTPETER_TOKEN)\n";
        return 2;
    }
    saltpeter::ApiClientOptions options;
    options.url = argv[1];
    if (const char* token = std::getenv("SALTPETER_TOKEN")) options.token = token;
    saltpeter::ApiClient client(options);

    auto jobs = client.jobs();
    if (!jobs) {
        std::cerr << "api_client: " << jobs.error().message << "\n";
        return 3;
    }
    std::cout << jobs->size() << " job(s) configured\n";

    auto instance = client.run_now(argv[2]);
    if (!instance) {
        std::cerr << "api_client: " << instance.error().message << "\n";
        return 3;
    }
    std::cout << "started " << *instance << "\n";
    auto run = client.follow(argv[2], *instance, [](const std::string& machine, std::string_view text) {
        std::cout << machine << " | " << text << std::flush;
    });
    if (!run) {
        std::cerr << "api_client: " << run.error().message << "\n";
        return 3;
    }
    int highest = 0;
    for (const auto& target : run->targets) {
        const int code = target.retcode.value_or(-1);
        std::cout << target.machine << " exit " << code << " (" << saltpeter::ExitCodeMapper::meaning(code) << ")\n";
        if (code != 0 && (highest == 0 || code > highest)) highest = code;
    }
    return highest > 0 && highest < 256 ? highest : (highest == 0 ? 0 : 1);
}
