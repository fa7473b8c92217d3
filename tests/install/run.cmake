# Installs the bpool build in BPOOL_BINARY_DIR into a fresh prefix, then configures, builds and runs
# the consumer project against it with find_package(bpool CONFIG REQUIRED). ADAPTERS: the optional
# adapter targets of that build (mimalloc, boost), which the consumer then requires and links.
file(REMOVE_RECURSE "${WORK_DIR}")
string(REPLACE "," ";" ADAPTERS "${ADAPTERS}")  # a comma list on the command line
set(prefix "${WORK_DIR}/prefix")

execute_process(COMMAND "${CMAKE_COMMAND}" --install "${BPOOL_BINARY_DIR}" --prefix "${prefix}"
  RESULT_VARIABLE rc OUTPUT_QUIET)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "install failed")
endif()

# A sanitized bpool needs the sanitizer runtime in the consumer too.
set(flags "${CXX_FLAGS}")
if(SANITIZER)
  string(REPLACE ";" "," san "${SANITIZER}")
  string(APPEND flags " -fsanitize=${san}")
endif()
execute_process(COMMAND "${CMAKE_COMMAND}" -S "${CONSUMER_SOURCE_DIR}" -B "${WORK_DIR}/build"
    -G "${GENERATOR}" "-DCMAKE_PREFIX_PATH=${prefix}" "-DCMAKE_BUILD_TYPE=${BUILD_TYPE}"
    "-DCMAKE_CXX_FLAGS=${flags}" "-DCONSUMER_EXPECT=${ADAPTERS}"
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "configuring the consumer failed")
endif()
execute_process(COMMAND "${CMAKE_COMMAND}" --build "${WORK_DIR}/build" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "building the consumer failed")
endif()
execute_process(COMMAND "${WORK_DIR}/build/consumer" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the consumer failed (${rc})")
endif()
# The never-destroyed global pool is no leak (LeakSanitizer cannot see into its mappings).
execute_process(COMMAND "${CMAKE_COMMAND}" -E env ASAN_OPTIONS=detect_leaks=0
  "${WORK_DIR}/build/consumer_new_delete" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the consumer linked with bpool::new_delete failed (${rc})")
endif()
file(GLOB_RECURSE preload "${prefix}/lib*/libbpool_preload.so")
if(NOT preload)
  message(FATAL_ERROR "libbpool_preload.so was not installed in ${prefix}/lib")
endif()
# A component the package does not have fails find_package with a message that names it.
file(WRITE "${WORK_DIR}/missing/CMakeLists.txt"
  "cmake_minimum_required(VERSION 3.25)\nproject(missing CXX)\n"
  "find_package(bpool CONFIG REQUIRED COMPONENTS new_delete nosuch)\n")
execute_process(COMMAND "${CMAKE_COMMAND}" -S "${WORK_DIR}/missing" -B "${WORK_DIR}/missing/build"
    -G "${GENERATOR}" "-DCMAKE_PREFIX_PATH=${prefix}"
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
string(FIND "${out}${err}" "bpool has no component 'nosuch'" at)
if(rc EQUAL 0 OR at EQUAL -1)
  message(FATAL_ERROR "find_package(bpool COMPONENTS nosuch) did not fail naming the component:\n${err}")
endif()
