// Embedding example (b): load and validate a config directory the way spd and `spctl validate`
// do, then list each valid job with its next fire time.
//
//   config_check CONFIGDIR [NOW]      (NOW: ISO 8601, default the current time)
#include <chrono>
#include <iostream>

#include <saltpeter/config.hpp>
#include <saltpeter/time_zone.hpp>

int main(int argc, char** argv) {
    if (argc < 2) {
        std::cerr << "usage: config_check CONFIGDIR [NOW]\n";
        return 2;
    }
    saltpeter::SysSeconds now = std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::now());
    if (argc > 2) {
        auto parsed = saltpeter::parse_iso8601(argv[2], saltpeter::TimeZone::utc());
        if (!parsed) {
            std::cerr << "config_check: " << parsed.error().message << "\n";
            return 2;
        }
        now = *parsed;
    }
    auto loaded = saltpeter::load_config_dir(argv[1]);
    if (!loaded) {  // the directory itself cannot be read
        std::cerr << "config_check: " << loaded.error().message << "\n";
        return 2;
    }
    auto problems = loaded->problems;
    for (auto& p : saltpeter::validate_schedules(loaded->config, now)) problems.push_back(std::move(p));

    for (const auto& job : loaded->config.jobs) {
        auto next = job.schedule.next_after(now, job.zone);
        std::cout << "job " << job.name << " (" << job.file << ":" << job.line << ") on '" << job.targets << "' next "
                  << (next ? saltpeter::format_iso8601(*next, job.zone) : std::string("never")) << "\n";
    }
    std::size_t errors = 0;
    for (const auto& p : problems) {
        std::cout << (p.is_error() ? "error " : "warning ") << p.to_string() << "\n";
        if (p.is_error()) ++errors;
    }
    std::cout << loaded->config.jobs.size() << " jobs, " << errors << " errors\n";
    return errors == 0 ? 0 : 1;
}
