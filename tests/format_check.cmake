# Fails if any C++ source of the project is not formatted per .clang-format.
file(GLOB_RECURSE files
  "${ROOT}/include/*.hpp" "${ROOT}/src/*.hpp" "${ROOT}/src/*.cpp"
  "${ROOT}/adapters/*.hpp" "${ROOT}/adapters/*.cpp"
  "${ROOT}/tests/*.hpp" "${ROOT}/tests/*.cpp"
  "${ROOT}/benchmarks/*.hpp" "${ROOT}/benchmarks/*.cpp"
  "${ROOT}/examples/*.cpp")
list(FILTER files EXCLUDE REGEX "/build/")
execute_process(COMMAND "${CLANG_FORMAT}" --dry-run --Werror ${files}
  RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "clang-format: these files need formatting:\n${err}")
endif()
list(LENGTH files n)
message(STATUS "clang-format: ${n} files clean")
