# Warnings as an INTERFACE target, linked as $<BUILD_INTERFACE:saltpeter_warnings> so it never
# leaks into the installed package.
add_library(saltpeter_warnings INTERFACE)
target_compile_options(saltpeter_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wold-style-cast -Wcast-align
  -Wunused -Woverloaded-virtual -Wnull-dereference -Wformat=2 -Wimplicit-fallthrough)
if(SALTPETER_WERROR)
  target_compile_options(saltpeter_warnings INTERFACE -Werror)
endif()
