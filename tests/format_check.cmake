# Fails if any C++ source of the project is not formatted per .clang-format, or if it finds none.
# Paths are taken relative to ROOT, so that only build directories inside the checkout are left out
# (a checkout that itself lives under some .../build/... is still checked).
file(GLOB_RECURSE files RELATIVE "${ROOT}"
  "${ROOT}/include/*.hpp" "${ROOT}/src/*.hpp" "${ROOT}/src/*.cpp"
  "${ROOT}/adapters/*.hpp" "${ROOT}/adapters/*.cpp"
  "${ROOT}/tests/*.hpp" "${ROOT}/tests/*.cpp"
  "${ROOT}/benchmarks/*.hpp" "${ROOT}/benchmarks/*.cpp"
  "${ROOT}/examples/*.cpp")
# Build trees inside the checkout: build/ at the top (the presets' binaryDir) or any build*/ below.
list(FILTER files EXCLUDE REGEX "(^|/)build[^/]*/")
list(LENGTH files n)
if(n EQUAL 0)
  message(FATAL_ERROR "format_check: no C++ source found under ${ROOT}")
endif()
execute_process(COMMAND "${CLANG_FORMAT}" --dry-run --Werror ${files}
  WORKING_DIRECTORY "${ROOT}" RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "clang-format: these files need formatting:\n${err}")
endif()
message(STATUS "clang-format: ${n} files clean")
