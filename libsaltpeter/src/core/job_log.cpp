#include "saltpeter/job_log.hpp"

#include <cstdio>

#include "saltpeter/time.hpp"

namespace saltpeter {

std::string_view to_string(LogRecordType type) noexcept {
    switch (type) {
        case LogRecordType::start: return "start";
        case LogRecordType::machine_start: return "machine_start";
        case LogRecordType::no_machines: return "no_machines";
        case LogRecordType::test_ping_failed: return "test_ping_failed";
        case LogRecordType::wrapper_failed: return "wrapper_failed";
        case LogRecordType::end: return "end";
        case LogRecordType::overlap: return "overlap";
        case LogRecordType::machine_result: return "machine_result";
        case LogRecordType::maintenance: return "maintenance";
    }
    return "machine_result";
}

std::string python_datetime(SysMicros t) {
    const std::int64_t us = t.time_since_epoch().count();
    std::int64_t secs = us / 1000000;
    std::int64_t frac = us % 1000000;
    if (frac < 0) {
        frac += 1000000;
        --secs;
    }
    const CivilTime c = to_civil(LocalSeconds{std::chrono::seconds{secs}});
    char buf[64];
    if (frac == 0) {
        std::snprintf(buf, sizeof buf, "%04d-%02u-%02u %02u:%02u:%02u+00:00", c.year, c.month, c.day, c.hour, c.minute,
                      c.second);
    } else {
        std::snprintf(buf, sizeof buf, "%04d-%02u-%02u %02u:%02u:%02u.%06lld+00:00", c.year, c.month, c.day, c.hour,
                      c.minute, c.second, static_cast<long long>(frac));
    }
    return buf;
}

std::string process_carriage_returns(std::string_view text) {
    std::string result;
    result.reserve(text.size());
    std::size_t pos = 0;
    while (true) {
        const std::size_t nl = text.find('\n', pos);
        const std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
        if (line.find('\r') == std::string_view::npos) {
            result += line;
        } else {
            // The last non-empty segment is what a terminal would have left visible.
            std::string_view last;
            std::size_t start = 0;
            while (start <= line.size()) {
                const std::size_t cr = line.find('\r', start);
                const std::string_view seg = line.substr(start, cr == std::string_view::npos ? std::string_view::npos : cr - start);
                if (!seg.empty()) last = seg;
                if (cr == std::string_view::npos) break;
                start = cr + 1;
            }
            result += last;
        }
        if (nl == std::string_view::npos) break;
        result += '\n';
        pos = nl + 1;
    }
    return result;
}

std::string format_log_record(const LogRecord& r) {
    const std::string time = python_datetime(r.time);
    switch (r.type) {
        case LogRecordType::start:
            return "###### Starting " + r.instance + " at " + time + " ################\n";
        case LogRecordType::machine_start:
            return "###### Starting " + r.instance + " on " + r.machine + " at " + time + " ################\n";
        case LogRecordType::no_machines:
            return "!!!!!! No targets matched for " + r.instance + " !!!!!!\n";
        case LogRecordType::test_ping_failed:
            return "!!!!!! SALT-MASTER ERROR during test.ping for " + r.instance + " at " + time + " !!!!!!\n" +
                   process_carriage_returns(r.out) + "\n";
        case LogRecordType::wrapper_failed:
            return "!!!!!! Wrapper failed for " + r.instance + " on " + r.machine + " at " + time + " !!!!!!\n" +
                   process_carriage_returns(r.out) + "\n";
        case LogRecordType::end:
            return "###### Finished " + r.instance + " at " + time + " ################\n";
        case LogRecordType::overlap:
            return "###### Overlap detected on " + r.instance + " at " + time + " ################\n";
        case LogRecordType::machine_result:
        case LogRecordType::maintenance:
            break;
    }
    return "########## " + r.machine + " from " + r.instance + " ################\n**** Exit Code " +
           std::to_string(r.code) + " ******\n" + process_carriage_returns(r.out) + "\n####### END " + r.machine +
           " from " + r.instance + " at " + time + " #########\n";
}

std::string iso_datetime(SysMicros t) {
    std::string s = python_datetime(t);
    const auto space = s.find(' ');
    if (space != std::string::npos) s[space] = 'T';
    return s;
}

}  // namespace saltpeter
