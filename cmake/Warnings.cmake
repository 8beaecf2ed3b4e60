# Warnings as an INTERFACE target, linked as $<BUILD_INTERFACE:saltpeter_warnings> so it never
# leaks into the installed package.
add_library(saltpeter_warnings INTERFACE)
# No -Wnull-dereference: GCC 12 reports it inside inlined Boost.Asio and nlohmann-json internals,
# which SYSTEM include directories cannot silence.
target_compile_options(saltpeter_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
  -Wunused -Woverloaded-virtual -Wformat=2 -Wimplicit-fallthrough)
if(SALTPETER_WERROR)
  target_compile_options(saltpeter_warnings INTERFACE -Werror)
endif()
