// The JSON schedule-state file behind FireTimeStore.
#include "runs/fire_time_store.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

namespace saltpeter {

namespace {

using Json = nlohmann::json;

struct JobState {
    std::optional<SysSeconds> last_fire;
    Json last_misfire;  // null or {"at", "missed", "decision"}
};

class FileFireTimeStore final : public FireTimeStore {
public:
    FileFireTimeStore(std::string path, std::string* warning) : m_path(std::move(path)) {
        std::ifstream in(m_path);
        if (!in) return;  // first start
        std::stringstream text;
        text << in.rdbuf();
        try {
            const Json doc = Json::parse(text.str());
            for (const auto& [name, state] : doc.at("jobs").items()) {
                JobState s;
                if (state.contains("last_fire") && state.at("last_fire").is_number_integer()) {
                    s.last_fire = SysSeconds(std::chrono::seconds(state.at("last_fire").get<std::int64_t>()));
                }
                if (state.contains("last_misfire")) s.last_misfire = state.at("last_misfire");
                m_jobs[name] = std::move(s);
            }
        } catch (const std::exception& e) {
            m_jobs.clear();
            if (warning != nullptr) *warning = "schedule state " + m_path + " is unreadable (" + e.what() + "); starting afresh";
        }
    }

    std::optional<SysSeconds> last_fire(const std::string& job) const override {
        auto it = m_jobs.find(job);
        return it == m_jobs.end() ? std::nullopt : it->second.last_fire;
    }

    void record_fire(const std::string& job, SysSeconds fire_time) override {
        auto& s = m_jobs[job];
        if (s.last_fire && *s.last_fire >= fire_time) return;
        s.last_fire = fire_time;
        m_dirty = true;
    }

    void record_misfire(const std::string& job, SysSeconds now, std::uint32_t missed, const std::string& decision) override {
        m_jobs[job].last_misfire = Json{{"at", now.time_since_epoch().count()}, {"missed", missed}, {"decision", decision}};
        m_dirty = true;
    }

    void retain(const std::vector<std::string>& jobs) override {
        const std::set<std::string> keep(jobs.begin(), jobs.end());
        for (auto it = m_jobs.begin(); it != m_jobs.end();) {
            if (keep.count(it->first) == 0) {
                it = m_jobs.erase(it);
                m_dirty = true;
            } else {
                ++it;
            }
        }
    }

    Status flush() override {
        if (!m_dirty) return Ok{};
        Json doc{{"version", 1}, {"jobs", Json::object()}};
        for (const auto& [name, s] : m_jobs) {
            Json j = Json::object();
            if (s.last_fire) j["last_fire"] = s.last_fire->time_since_epoch().count();
            if (!s.last_misfire.is_null()) j["last_misfire"] = s.last_misfire;
            doc["jobs"][name] = std::move(j);
        }
        const std::string text = doc.dump(1) + "\n";
        const std::string tmp = m_path + ".tmp";
        ::unlink(tmp.c_str());
        const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) return Error{"cannot write schedule state " + tmp + ": " + std::strerror(errno), "logdir"};
        std::size_t done = 0;
        while (done < text.size()) {
            const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                const std::string why = std::strerror(errno);
                ::close(fd);
                ::unlink(tmp.c_str());
                return Error{"cannot write schedule state " + tmp + ": " + why, "logdir"};
            }
            done += static_cast<std::size_t>(n);
        }
        ::fsync(fd);
        ::close(fd);
        if (::rename(tmp.c_str(), m_path.c_str()) != 0) {
            const std::string why = std::strerror(errno);
            ::unlink(tmp.c_str());
            return Error{"cannot replace schedule state " + m_path + ": " + why, "logdir"};
        }
        m_dirty = false;
        return Ok{};
    }

private:
    std::string m_path;
    std::map<std::string, JobState> m_jobs;
    bool m_dirty = false;
};

}  // namespace

std::unique_ptr<FireTimeStore> make_file_fire_time_store(const std::string& path, std::string* warning) {
    return std::make_unique<FileFireTimeStore>(path, warning);
}

}  // namespace saltpeter
