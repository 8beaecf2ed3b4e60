# -DSALTPETER_SANITIZE=ON builds everything with ASan + UBSan (tests included).
if(SALTPETER_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
  # GCC 12 reports maybe-uninitialized inside std::regex and Asio once the sanitizers instrument
  # them; it is a known false positive of that combination, so -Werror builds keep working.
  add_compile_options(-Wno-maybe-uninitialized)
endif()
