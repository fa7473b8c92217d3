# The lean install preset (`cmake --preset install`, README "Using bpool from another CMake
# project") configures the library and its adapters alone: it must succeed with GoogleTest, Google
# Benchmark and Doxygen unavailable (their find_package calls disabled) and define no test,
# benchmark, example or docs part. Configuring is enough: the library's build is every preset's.
# SOURCE_DIR: bpool's source tree; WORK_DIR: a scratch build directory.
file(REMOVE_RECURSE "${WORK_DIR}")
execute_process(COMMAND "${CMAKE_COMMAND}" --preset install -B "${WORK_DIR}"
    -DCMAKE_DISABLE_FIND_PACKAGE_GTest=ON -DCMAKE_DISABLE_FIND_PACKAGE_benchmark=ON
    -DCMAKE_DISABLE_FIND_PACKAGE_Doxygen=ON
    WORKING_DIRECTORY "${SOURCE_DIR}" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "cmake --preset install failed:\n${out}\n${err}")
endif()
foreach(part IN ITEMS tests benchmarks examples docs)
  if(EXISTS "${WORK_DIR}/${part}")
    message(FATAL_ERROR "the install preset configured ${part}/")
  endif()
endforeach()
# The library and its install rules are there.
file(READ "${WORK_DIR}/cmake_install.cmake" rules)
string(FIND "${rules}" "bpoolTargets" at)
if(NOT EXISTS "${WORK_DIR}/src/cmake_install.cmake" OR at EQUAL -1)
  message(FATAL_ERROR "the install preset has no library or no install rules")
endif()
message(STATUS "the install preset configures the library alone")
