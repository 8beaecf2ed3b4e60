# Registers the short CI fuzz run (included from tests/CMakeLists.txt; the targets themselves are a
# separate clang project, tests/fuzz/CMakeLists.txt, configured by tests/fuzz/run).
find_program(SALTPETER_CLANGXX NAMES clang++ clang++-14)
if(SALTPETER_CLANGXX)
  execute_process(COMMAND ${SALTPETER_CLANGXX} -print-file-name=libclang_rt.fuzzer-x86_64.a
    OUTPUT_VARIABLE SALTPETER_LIBFUZZER OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
endif()
if(SALTPETER_CLANGXX AND SALTPETER_LIBFUZZER AND EXISTS "${SALTPETER_LIBFUZZER}")
  # Each target for 20 s after replaying tests/fuzz/regressions; builds in <source>/build-fuzz
  # (the same dir as a manual tests/fuzz/run, so ccache and the grown corpus are shared).
  add_test(NAME fuzz.short COMMAND ${CMAKE_CURRENT_LIST_DIR}/run 20)
  set_tests_properties(fuzz.short PROPERTIES LABELS fuzz TIMEOUT 1200 RUN_SERIAL TRUE
    ENVIRONMENT "CLANGXX=${SALTPETER_CLANGXX}")
else()
  message(STATUS "clang++ with libFuzzer not found: the fuzz.short test is not registered (apt libclang-rt-14-dev)")
endif()
