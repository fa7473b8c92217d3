# Installs the bpool build in BPOOL_BINARY_DIR into a fresh prefix, then configures, builds and runs
# the consumer project against it with find_package(bpool CONFIG REQUIRED). ADAPTERS: the optional
# adapter targets of that build (mimalloc, boost, asio), which the consumer then requires and links.
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
# bpool::checked (every build but a sanitized, unchecked one): the leak report at the pool's
# destruction names the function that allocated the block (in its first frame, or its second below
# std::pmr's allocate where that is not inlined, at -O0); a double free aborts with the message and
# the stack of the call.
set(checked_exe "${WORK_DIR}/build/consumer_checked")
if(EXISTS "${checked_exe}")
  execute_process(COMMAND "${checked_exe}" RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(NOT rc EQUAL 0 OR NOT err MATCHES "1 leaked block\\(s\\) \\(48 bytes\\) allocated at:\n([^\n]*memory_resource8allocate[^\n]*\n)?[^\n]*consumer_leaks_a_block")
    message(FATAL_ERROR "consumer_checked: no leak report naming consumer_leaks_a_block (${rc}):\n${err}")
  endif()
  execute_process(COMMAND "${checked_exe}" double-free RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(rc EQUAL 0 OR NOT err MATCHES "double free.*stack of the failing call.*consumer_frees_twice")
    message(FATAL_ERROR "consumer_checked double-free: no abort with the message and its stack (${rc}):\n${err}")
  endif()
elseif(NOT SANITIZER)
  message(FATAL_ERROR "consumer_checked was not built: the installed package has no bpool::checked")
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

# pkg-config: `pkg-config --cflags --libs bpool` (and each adapter's .pc) builds and runs the same
# consumers with no CMake, from the installed .pc files alone.
find_program(PKG_CONFIG pkg-config REQUIRED)
file(GLOB_RECURSE pc "${prefix}/*/pkgconfig/bpool.pc")
if(NOT pc)
  message(FATAL_ERROR "bpool.pc was not installed under ${prefix}")
endif()
get_filename_component(pc_dir "${pc}" DIRECTORY)
set(ENV{PKG_CONFIG_PATH} "${pc_dir}")
# pc_flags(<var> <packages...>): what pkg-config prints for them, as a list.
function(pc_flags var)
  execute_process(COMMAND "${PKG_CONFIG}" --cflags --libs ${ARGN}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "pkg-config --cflags --libs ${ARGN} failed: ${err}")
  endif()
  separate_arguments(out UNIX_COMMAND "${out}")
  set(${var} "${out}" PARENT_SCOPE)
endfunction()
execute_process(COMMAND "${PKG_CONFIG}" --modversion bpool OUTPUT_VARIABLE pc_version
  OUTPUT_STRIP_TRAILING_WHITESPACE)
separate_arguments(cxx_flags UNIX_COMMAND "${flags}")
# pc_consumer(<name> <source> <packages> <defines...>): compiles, links and runs one program.
function(pc_consumer name source packages)
  string(REPLACE "," ";" packages "${packages}")
  pc_flags(pcflags ${packages})
  set(exe "${WORK_DIR}/pkgconfig/${name}")
  file(MAKE_DIRECTORY "${WORK_DIR}/pkgconfig")
  execute_process(COMMAND "${CXX}" -std=c++20 ${cxx_flags} ${ARGN}
      "-DCONSUMER_VERSION=\"${pc_version}\"" "${CONSUMER_SOURCE_DIR}/${source}" -o "${exe}"
      ${pcflags}
    RESULT_VARIABLE rc ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "building ${name} with pkg-config (${packages}) failed:\n${err}")
  endif()
  execute_process(COMMAND "${CMAKE_COMMAND}" -E env ASAN_OPTIONS=detect_leaks=0 "${exe}"
    RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${name}, built with pkg-config (${packages}), failed (${rc})")
  endif()
endfunction()
set(packages bpool)
set(defines "")
foreach(adapter IN LISTS ADAPTERS)
  string(TOUPPER "${adapter}" upper)
  list(APPEND packages bpool-${adapter})
  list(APPEND defines -DCONSUMER_HAS_${upper}=1)
endforeach()
list(JOIN packages "," packages)
pc_consumer(consumer main.cpp "${packages}" ${defines})
pc_consumer(consumer_new_delete new_delete_main.cpp bpool-new-delete)
# bpool-checked.pc: a build with a library of its own for the checked variant (its Cflags must
# define BPOOL_CHECKED, or checked_main.cpp does not compile).
if(EXISTS "${pc_dir}/bpool-checked.pc")
  pc_consumer(consumer_checked checked_main.cpp bpool-checked)
endif()
