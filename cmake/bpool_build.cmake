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
