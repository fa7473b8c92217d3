# Install rules and the relocatable CMake package: find_package(bpool CONFIG REQUIRED) + bpool::bpool.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(BPOOL_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/bpool")

install(TARGETS bpool bpool_new_delete EXPORT bpoolTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  OBJECTS DESTINATION ${CMAKE_INSTALL_LIBDIR}/bpool
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
# bpool::checked, where this build has a library of its own for it (a checked build's bpool is the
# checked one: bpoolConfig.cmake then makes bpool::checked name bpool::bpool).
if(TARGET bpool_checked)
  install(TARGETS bpool_checked EXPORT bpoolTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
    INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endif()
# The preload library is loaded by path (LD_PRELOAD), never linked: installed, not exported.
install(TARGETS bpool_preload LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
# The headers of the optional adapters (adapters/include/bpool/adapters/<name>.hpp for the target
# bpool_<name>) are installed only with their target: without it they could not be used.
set(_bpool_skipped_headers "")
foreach(_adapter IN ITEMS asio boost mimalloc)
  if(TARGET bpool_${_adapter})
    install(TARGETS bpool_${_adapter} EXPORT bpoolTargets
      ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
      LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
  else()
    list(APPEND _bpool_skipped_headers PATTERN "adapters/${_adapter}.hpp" EXCLUDE)
  endif()
endforeach()
install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/" "${PROJECT_SOURCE_DIR}/adapters/include/"
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.hpp" ${_bpool_skipped_headers})
# The generated version header (src/CMakeLists.txt makes it from include/bpool/version.hpp.in).
install(FILES "${PROJECT_BINARY_DIR}/include/bpool/version.hpp"
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/bpool)

install(EXPORT bpoolTargets NAMESPACE bpool:: DESTINATION ${BPOOL_CMAKE_DIR})
configure_package_config_file("${PROJECT_SOURCE_DIR}/cmake/bpoolConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/bpoolConfig.cmake" INSTALL_DESTINATION ${BPOOL_CMAKE_DIR})
write_basic_package_version_file("${PROJECT_BINARY_DIR}/bpoolConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion)
install(FILES "${PROJECT_BINARY_DIR}/bpoolConfig.cmake" "${PROJECT_BINARY_DIR}/bpoolConfigVersion.cmake"
  DESTINATION ${BPOOL_CMAKE_DIR})
include(bpool_pkgconfig)
install(FILES "${PROJECT_SOURCE_DIR}/LICENSE" DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/bpool)
