# `cpack -G DEB` in the build directory: one saltpeter_<version>_<arch>.deb with spd, spctl,
# sp_wrapper, the library, headers and CMake package, the Python module (when built), the
# systemd unit, /etc/saltpeter with a commented example (a conffile), /etc/default/spd and
# /var/log/saltpeter. Files of the package's own: cmake/packaging/.
#
# The system files (/etc, /var/log) have absolute destinations and sit in the install component
# "system", which a plain `cmake --install` leaves out (EXCLUDE_FROM_ALL): installing into a
# scratch prefix never touches the real /etc. CPack installs every component into its staging
# directory (DESTDIR) and packs them into one .deb.
set(SALTPETER_PACKAGING_DIR ${PROJECT_SOURCE_DIR}/cmake/packaging)

# Relative destinations: <prefix>/lib/systemd/system is /usr/lib/systemd/system in the package.
install(FILES ${SALTPETER_PACKAGING_DIR}/spd.service DESTINATION lib/systemd/system)
install(FILES ${PROJECT_SOURCE_DIR}/examples/salt/sp_wrapper.sls ${PROJECT_SOURCE_DIR}/examples/salt/README.md
  DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples/salt)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR} FILES_MATCHING PATTERN "*.md")

install(FILES ${SALTPETER_PACKAGING_DIR}/saltpeter.yaml DESTINATION /etc/saltpeter
  PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ COMPONENT system EXCLUDE_FROM_ALL)
install(FILES ${SALTPETER_PACKAGING_DIR}/spd.default DESTINATION /etc/default RENAME spd
  PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ COMPONENT system EXCLUDE_FROM_ALL)
install(DIRECTORY DESTINATION /var/log/saltpeter
  DIRECTORY_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
  COMPONENT system EXCLUDE_FROM_ALL)

# The static library of a RelWithDebInfo build is ~250 MB, nearly all debug info; CPACK_STRIP_FILES
# strips only programs. In CPack's staging install (DESTDIR set) it loses its debug sections;
# --strip-debug keeps the symbol table the linker needs. A plain `cmake --install` keeps them.
install(CODE "
  if(NOT \"\$ENV{DESTDIR}\" STREQUAL \"\")
    execute_process(COMMAND \"${CMAKE_STRIP}\" --strip-debug
      \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/$<TARGET_FILE_NAME:saltpeter>\"
      RESULT_VARIABLE strip_result)
    if(NOT strip_result EQUAL 0)
      message(FATAL_ERROR \"strip --strip-debug of the static library failed: \${strip_result}\")
    endif()
  endif()")

set(CPACK_PACKAGE_NAME saltpeter)
set(CPACK_PACKAGE_VENDOR "saltpeter")
set(CPACK_PACKAGE_CONTACT "saltpeter maintainers <saltpeter@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_INSTALL_DIRECTORY saltpeter)
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)           # the prefix CPACK_SET_DESTDIR installs under
set(CPACK_SET_DESTDIR ON)            # absolute destinations (/etc, /var/log) land in the staging dir
set(CPACK_STRIP_FILES ON)
set(CPACK_COMPONENTS_ALL Unspecified system)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_GROUPING ALL_COMPONENTS_IN_ONE)  # one .deb holding both components
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "salt-master | salt-api, tzdata")
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
  "A distributed cron for Salt-managed fleets.\nspd schedules jobs and runs them on Salt minions through sp_wrapper, which\nstreams output, heartbeats and exit codes back over WebSocket; spctl is the\noperator CLI. Also ships libsaltpeter (headers, CMake package) and the\nPython module for embedding.")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${SALTPETER_PACKAGING_DIR}/conffiles ${SALTPETER_PACKAGING_DIR}/postinst
  ${SALTPETER_PACKAGING_DIR}/prerm ${SALTPETER_PACKAGING_DIR}/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
