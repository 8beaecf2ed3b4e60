# Every find_package of the project lives here; saltpeterConfig.cmake.in re-finds the ones the
# installed library needs. All come from Debian's apt (scripts/install-deps).
find_package(Threads REQUIRED)
find_package(yaml-cpp REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(spdlog REQUIRED)
find_package(CLI11 REQUIRED)
if(SALTPETER_BUILD_TESTS)
  find_package(doctest REQUIRED)
  include(doctest)                     # doctest_discover_tests
endif()
