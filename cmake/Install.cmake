include(CMakePackageConfigHelpers)

install(TARGETS saltpeter EXPORT saltpeterTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/libsaltpeter/include/saltpeter
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT saltpeterTargets NAMESPACE saltpeter::
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/saltpeter)

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/saltpeterConfig.cmake.in
  ${PROJECT_BINARY_DIR}/saltpeterConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/saltpeter)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/saltpeterConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/saltpeterConfig.cmake ${PROJECT_BINARY_DIR}/saltpeterConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/saltpeter)
