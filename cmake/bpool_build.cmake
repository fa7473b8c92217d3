# Build settings shared by every bpool target: language level, warnings, sanitizers.

set(CMAKE_CXX_STANDARD 20)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)
set(CMAKE_EXPORT_COMPILE_COMMANDS ON)

if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES AND PROJECT_IS_TOP_LEVEL)
  set(CMAKE_BUILD_TYPE Release CACHE STRING "Build type" FORCE)
endif()

# Sanitizers apply to everything in this directory tree (library, tests, examples), never to a parent
# project: instrumenting only half of a program gives false reports.
if(BPOOL_SANITIZER)
  set(_bpool_san_ok FALSE)
  if(BPOOL_SANITIZER STREQUAL "address;undefined" OR BPOOL_SANITIZER STREQUAL "thread"
     OR BPOOL_SANITIZER STREQUAL "address" OR BPOOL_SANITIZER STREQUAL "undefined")
    set(_bpool_san_ok TRUE)
  endif()
  if(NOT _bpool_san_ok)
    message(FATAL_ERROR "BPOOL_SANITIZER='${BPOOL_SANITIZER}': use 'address;undefined', 'thread' or leave it empty")
  endif()
  list(JOIN BPOOL_SANITIZER "," _bpool_san)
  add_compile_options(-fsanitize=${_bpool_san} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${_bpool_san})
  message(STATUS "bpool: sanitizers ${_bpool_san}")
endif()

# bpool_target_warnings(<target>): the project's warning set, PRIVATE so that consumers never inherit it.
function(bpool_target_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wconversion -Wsign-conversion -Wshadow -Wnon-virtual-dtor
    -Wold-style-cast -Wcast-align -Woverloaded-virtual -Wnull-dereference -Wdouble-promotion
    -Wimplicit-fallthrough)
  if(BPOOL_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# bpool_missing_tool(<message pieces>...): a needed tool or library is missing and its part is off:
# a warning, or a configure error under BPOOL_REQUIRE_TOOLS (the presets).
function(bpool_missing_tool)
  string(JOIN "" text ${ARGN})
  if(BPOOL_REQUIRE_TOOLS)
    message(FATAL_ERROR "${text} (BPOOL_REQUIRE_TOOLS is ON, as in the presets: install it, or "
      "configure with -DBPOOL_REQUIRE_TOOLS=OFF)")
  endif()
  message(WARNING "${text}")
endfunction()

# bpool_add_capped_workers(): the target capped_workers (tests/preload/capped_workers.cpp), a
# multithreaded program that knows nothing of bpool, run under libbpool_preload.so by the tests
# (real_programs_preload) and by scripts/bench (benchmarks/real_programs.py); made once.
function(bpool_add_capped_workers)
  if(TARGET capped_workers)
    return()
  endif()
  find_package(Threads REQUIRED)
  add_executable(capped_workers "${PROJECT_SOURCE_DIR}/tests/preload/capped_workers.cpp")
  target_link_libraries(capped_workers PRIVATE Threads::Threads)
endfunction()
