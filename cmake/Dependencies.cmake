# Every find_package of the project lives here; saltpeterConfig.cmake.in re-finds the ones the
# installed library needs. All come from Debian's apt (scripts/install-deps).
find_package(Threads REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(spdlog REQUIRED)
find_package(CLI11 REQUIRED)
# The wrapper's WebSocket client (and the test peer): header-only Asio from Boost 1.74 (Boost.System
# is header-only since 1.69) and websocketpp 0.8.2; OpenSSL for wss://.
find_package(Boost 1.74 REQUIRED)
find_package(websocketpp REQUIRED)
find_package(OpenSSL REQUIRED)
# The state database (RunStore); CMake's FindSQLite3 gives SQLite::SQLite3 (Debian: libsqlite3-dev).
find_package(SQLite3 REQUIRED)
# sp_wrapper is copied to every minion: by default it links libstdc++ and OpenSSL statically, which
# makes it independent of the target's library versions and cuts its resident memory by ~2 MiB
# (no relocation of three large shared libraries). OpenSSL fixes then need a rebuild of sp_wrapper.
option(SALTPETER_WRAPPER_STATIC "Link sp_wrapper with static libstdc++ and OpenSSL" ON)
find_library(SALTPETER_LIBSSL_STATIC NAMES libssl.a)
find_library(SALTPETER_LIBCRYPTO_STATIC NAMES libcrypto.a)
# Packed relative relocations (DT_RELR, binutils >= 2.38, glibc >= 2.36) shrink the relocation
# table a PIE reads at start-up from ~540 KiB to ~7 KiB.
include(CheckLinkerFlag)
check_linker_flag(CXX "LINKER:-z,pack-relative-relocs" SALTPETER_HAVE_PACK_RELATIVE_RELOCS)
if(SALTPETER_BUILD_TESTS)
  find_package(doctest REQUIRED)
  include(doctest)                     # doctest_discover_tests
endif()
# The Python bindings: pybind11 from apt, built for Debian's python3 (not an interpreter that
# happens to be first in PATH, such as pyenv's).
set(SALTPETER_PYTHON "/usr/bin/python3" CACHE FILEPATH "Python the bindings are built for and tested with")
if(EXISTS "${SALTPETER_PYTHON}")
  set(Python_EXECUTABLE "${SALTPETER_PYTHON}")
  set(PYBIND11_FINDPYTHON ON)
  find_package(pybind11 2.6 CONFIG QUIET)
endif()
