# pkg-config files for the installed package, one per library: bpool.pc (the core, with the
# header-only adapters), bpool-checked.pc, bpool-new-delete.pc, bpool-boost.pc, bpool-mimalloc.pc,
# bpool-asio.pc,
# each for a target this build has. Included by bpool_install.cmake.
#
# The files are relocatable: prefix is found from the .pc file's own directory (${pcfiledir}), so
# that a prefix moved or installed with `cmake --install --prefix` still works. A static library's
# own dependencies are in Libs, not Libs.private: `pkg-config --libs` (without --static) must be
# enough to link, as it is for the CMake package.

set(BPOOL_PKGCONFIG_DIR "${CMAKE_INSTALL_LIBDIR}/pkgconfig")

# ${pcfiledir} up to the prefix: one ".." per component of the pkgconfig directory.
string(REGEX REPLACE "[^/]+" ".." _bpool_pc_up "${BPOOL_PKGCONFIG_DIR}")
set(_bpool_pc_dir "${PROJECT_BINARY_DIR}/pkgconfig")

# bpool_pkgconfig(<file> <description> [REQUIRES <pkgs...>] [CFLAGS <flags...>] [LIBS <items...>]):
# writes <file>.pc for installation. LIBS items are written as given after -L${libdir}.
function(bpool_pkgconfig file description)
  cmake_parse_arguments(ARG "" "" "REQUIRES;CFLAGS;LIBS" ${ARGN})
  list(JOIN ARG_REQUIRES ", " requires)
  list(JOIN ARG_CFLAGS " " cflags)
  list(JOIN ARG_LIBS " " libs)
  set(text "prefix=\${pcfiledir}/${_bpool_pc_up}\n")
  string(APPEND text "includedir=\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}\n")
  string(APPEND text "libdir=\${prefix}/${CMAKE_INSTALL_LIBDIR}\n\n")
  string(APPEND text "Name: ${file}\nDescription: ${description}\n")
  string(APPEND text "Version: ${PROJECT_VERSION}\nURL: ${PROJECT_HOMEPAGE_URL}\n")
  if(requires)
    string(APPEND text "Requires: ${requires}\n")
  endif()
  string(APPEND text "Cflags: ${cflags}\nLibs: -L\${libdir} ${libs}\n")
  # file(GENERATE): the object file's path below names the configuration ($<CONFIG>).
  file(GENERATE OUTPUT "${_bpool_pc_dir}/${file}.pc" CONTENT "${text}")
  install(FILES "${_bpool_pc_dir}/${file}.pc" DESTINATION "${BPOOL_PKGCONFIG_DIR}")
endfunction()

# The headers need C++20; pkg-config cannot choose the language level, the consumer's
# -std=c++20 (or later) does.
set(_bpool_cflags "-I\${includedir}")
if(BPOOL_CHECKED)
  list(APPEND _bpool_cflags "-DBPOOL_CHECKED=1")  # this build's bpool is the checked one
endif()
bpool_pkgconfig(bpool "${PROJECT_DESCRIPTION}" CFLAGS ${_bpool_cflags} LIBS -lbpool -pthread)
if(TARGET bpool_checked)
  bpool_pkgconfig(bpool-checked "bpool's checked build: double free, wrong size, foreign pointers, use after free and leaks reported"
    CFLAGS "-I\${includedir}" -DBPOOL_CHECKED=1 LIBS -lbpool_checked -pthread)
endif()
# The operators are an object file (see src/CMakeLists.txt): named by its installed path, it comes
# before -lbpool on the link line, as Requires' flags follow the package's own.
bpool_pkgconfig(bpool-new-delete "bpool's process-wide pool as the program's operator new and delete"
  REQUIRES "bpool = ${PROJECT_VERSION}"
  LIBS "\${libdir}/bpool/objects-$<CONFIG>/bpool_new_delete/global/new_delete.cpp${CMAKE_CXX_OUTPUT_EXTENSION}")
if(TARGET bpool_boost)
  bpool_pkgconfig(bpool-boost "bpool's Boost.Container adapter (boost_resource)"
    REQUIRES "bpool = ${PROJECT_VERSION}" LIBS -lbpool_boost -lboost_container)
endif()
if(TARGET bpool_mimalloc)
  bpool_pkgconfig(bpool-mimalloc "bpool's mimalloc adapter (mimalloc_resource)"
    REQUIRES "bpool = ${PROJECT_VERSION}" LIBS -lbpool_mimalloc -lmimalloc)
endif()
if(TARGET bpool_asio)
  # Header-only over Boost's headers (in the default include path on Debian): nothing to link but
  # bpool.
  bpool_pkgconfig(bpool-asio "bpool's Boost.Asio adapter (async_get, async_allocate, dynamic_buffer)"
    REQUIRES "bpool = ${PROJECT_VERSION}")
endif()
