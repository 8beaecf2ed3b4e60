#include "saltpeter/version.hpp"

#include "saltpeter_version_config.hpp"

namespace saltpeter {
std::string_view version() noexcept { return SALTPETER_VERSION_STRING; }
}  // namespace saltpeter
