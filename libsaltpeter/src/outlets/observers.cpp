// The outlets of observers.hpp.
#include "outlets/observers.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <iostream>

#include "saltpeter/exit_code_mapper.hpp"
#include "outlets/notifier.hpp"
#include "runs/run_tracker.hpp"
#include "saltpeter/run_store.hpp"

namespace saltpeter {

void JobLogWriter::on_log(const std::string& job, const LogRecord& record) {
    if (m_dir.empty()) return;
    const std::string path = m_dir + "/" + job + ".log";
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        if (m_failed_paths.insert(path).second) {
            spdlog::error("cannot write job log {}: {}", path, std::strerror(errno));
        }
        return;
    }
    const std::string text = format_log_record(record);
    std::size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            // Once per path until a record gets through again (a full disk fails every record).
            if (m_failed_paths.insert(path).second) {
                spdlog::error("cannot write job log {}: {}", path, n < 0 ? std::strerror(errno) : "short write");
            }
            break;
        }
        done += static_cast<std::size_t>(n);
    }
    ::close(fd);
    if (done == text.size() && m_failed_paths.erase(path) > 0) spdlog::info("job log {} is writable again", path);
}

void OutputEcho::on_output(const RunRecord& run, const TargetResult& target, std::string_view data) {
    std::string& pending = m_pending[run.instance + " " + target.machine];
    pending.append(data);
    std::size_t start = 0;
    for (std::size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
        std::cout << run.instance << " " << target.machine << " | " << pending.substr(start, nl - start) << "\n";
    }
    pending.erase(0, start);
    std::cout.flush();
}

void OutputEcho::on_target_finished(const RunRecord& run, const TargetResult& target) {
    const std::string key = run.instance + " " + target.machine;
    auto it = m_pending.find(key);
    if (it != m_pending.end() && !it->second.empty()) std::cout << key << " | " << it->second << "\n";
    if (it != m_pending.end()) m_pending.erase(it);
    const int code = target.retcode.value_or(-1);
    std::cout << run.instance << " " << target.machine << " exit " << code << " (" << ExitCodeMapper::meaning(code)
              << ")\n";
    std::cout.flush();
}

void DecisionRecorder::on_log(const std::string& job, const LogRecord& record) {
    if (record.type != LogRecordType::overlap && record.type != LogRecordType::maintenance) return;
    if (record.type == LogRecordType::maintenance && !record.machine.empty()) return;  // one target only
    SchedulerDecision d;
    d.job = job;
    d.kind = record.type == LogRecordType::overlap ? DecisionKind::skipped_overlap : DecisionKind::skipped_maintenance;
    d.at = record.time;
    d.detail = record.out.empty() ? record.instance + " still running" : record.out;
    m_store.record_decision(d);
}

void NotifyObserver::on_run_finished(const RunRecord& run) {
    m_notifier.run_finished(run, effective_notify(m_config.find(run.job), m_config.settings));
}

void FinishedRunHook::on_run_finished(const RunRecord& run) {
    if (!m_callback) return;
    m_store.flush([this, alive = std::weak_ptr<char>(m_alive), instance = run.instance](const Status&) {
        if (alive.expired() || !m_callback) return;
        if (const RunRecord* finished = m_tracker.find(instance)) m_callback(*finished);
    });
}

}  // namespace saltpeter
