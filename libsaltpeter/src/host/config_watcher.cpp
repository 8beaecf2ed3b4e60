// ConfigWatcher: an inotify descriptor read through asio on the io thread, plus a debounce timer.
#include "host/config_watcher.hpp"

#include <sys/inotify.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <array>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <cstring>

namespace saltpeter {

namespace {

bool ends_with(std::string_view s, std::string_view suffix) noexcept {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

struct ConfigWatcher::Impl : std::enable_shared_from_this<ConfigWatcher::Impl> {
    Impl(boost::asio::io_context& io, std::string d, std::chrono::milliseconds deb, std::function<void()> cb)
        : descriptor(io), timer(io), dir(std::move(d)), debounce(deb), on_change(std::move(cb)) {}

    boost::asio::posix::stream_descriptor descriptor;
    boost::asio::steady_timer timer;
    std::string dir;
    std::chrono::milliseconds debounce;
    std::function<void()> on_change;
    // Large enough for many events at once; inotify never splits one event across reads.
    alignas(struct inotify_event) std::array<char, 16384> buffer{};
    bool stopped = false;

    void read() {
        auto self = shared_from_this();
        descriptor.async_read_some(boost::asio::buffer(buffer), [self](const boost::system::error_code& ec, std::size_t n) {
            if (ec || self->stopped) {
                if (ec && ec != boost::asio::error::operation_aborted) {
                    spdlog::error("config watch on {} failed: {}; use SIGHUP to reload", self->dir, ec.message());
                }
                return;
            }
            self->on_events(n);
            self->read();
        });
    }

    void on_events(std::size_t n) {
        bool changed = false;
        for (std::size_t pos = 0; pos + sizeof(struct inotify_event) <= n;) {
            struct inotify_event event {};
            std::memcpy(&event, buffer.data() + pos, sizeof event);
            const char* name = buffer.data() + pos + sizeof event;
            const std::string_view file = event.len > 0 ? std::string_view(name, ::strnlen(name, event.len)) : std::string_view();
            if ((event.mask & IN_Q_OVERFLOW) != 0 || (event.mask & (IN_DELETE_SELF | IN_MOVE_SELF)) != 0 ||
                ConfigWatcher::relevant(file)) {
                changed = true;
            }
            if ((event.mask & (IN_DELETE_SELF | IN_MOVE_SELF)) != 0) {
                spdlog::warn("config directory {} was removed or moved; the last configuration stays in force", dir);
            }
            pos += sizeof(struct inotify_event) + event.len;
        }
        if (!changed) return;
        // Debounce: editors and `cp` produce several events per save; one reload after the burst.
        timer.expires_after(debounce);
        auto self = shared_from_this();
        timer.async_wait([self](const boost::system::error_code& ec) {
            if (ec || self->stopped) return;
            try {
                self->on_change();
            } catch (const std::exception& e) {
                spdlog::error("config reload after a change in {} failed: {}", self->dir, e.what());
            }
        });
    }
};

ConfigWatcher::ConfigWatcher(boost::asio::io_context& io, std::string dir, std::chrono::milliseconds debounce,
                             std::function<void()> on_change)
    : m_impl(std::make_shared<Impl>(io, std::move(dir), debounce, std::move(on_change))) {}

ConfigWatcher::~ConfigWatcher() { stop(); }

Status ConfigWatcher::start() {
    const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0) return Error{"inotify_init1 failed: " + std::string(std::strerror(errno)), "config_dir"};
    const uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE | IN_DELETE_SELF |
                          IN_MOVE_SELF | IN_ONLYDIR;
    if (::inotify_add_watch(fd, m_impl->dir.c_str(), mask) < 0) {
        const std::string why = std::strerror(errno);
        ::close(fd);
        return Error{"cannot watch config directory " + m_impl->dir + ": " + why, "config_dir"};
    }
    m_impl->descriptor.assign(fd);
    m_impl->read();
    return Ok{};
}

void ConfigWatcher::stop() {
    if (!m_impl || m_impl->stopped) return;
    m_impl->stopped = true;
    m_impl->timer.cancel();
    boost::system::error_code ec;
    m_impl->descriptor.close(ec);
}

bool ConfigWatcher::relevant(std::string_view name) noexcept {
    if (name.empty() || name.front() == '.') return false;  // editor swap and hidden files
    return ends_with(name, ".yaml") || ends_with(name, ".yml");
}

}  // namespace saltpeter
