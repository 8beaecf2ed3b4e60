#pragma once
// ConfigWatcher: inotify on the config directory (PROTOCOL.md 5.7: reload on change, no polling).
// Changes to *.yaml / *.yml files (written, created, deleted, moved in or out) are debounced and
// reported once through the callback on the io thread, where spd reloads. Io thread only.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>

#include "saltpeter/result.hpp"

namespace saltpeter {

class ConfigWatcher {
public:
    /// Watches `dir`; `on_change` runs `debounce` after the last of a burst of relevant events.
    ConfigWatcher(boost::asio::io_context& io, std::string dir, std::chrono::milliseconds debounce,
                  std::function<void()> on_change);
    ~ConfigWatcher();
    ConfigWatcher(const ConfigWatcher&) = delete;
    ConfigWatcher& operator=(const ConfigWatcher&) = delete;

    /// Starts watching. Error (naming the directory and errno) when inotify cannot watch it.
    Status start();
    /// Stops watching and cancels a pending callback. Idempotent.
    void stop();

    /// True when a change to the file `name` (no directory) may change the configuration.
    static bool relevant(std::string_view name) noexcept;

private:
    struct Impl;
    std::shared_ptr<Impl> m_impl;
};

}  // namespace saltpeter
