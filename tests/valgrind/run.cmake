# Runs each program of this directory under memcheck and checks its report: the error's kind, the
# program's function in the error's stack, and memcheck's description of the block (the pool's
# block, not the upstream allocation that holds it).
#   PROGRAM_DIR: where the programs are; empty: configure and build them in WORK_DIR first, over
#                BPOOL_SOURCE_DIR, with BPOOL_VALGRIND=ON (GENERATOR, CXX).
#   VALGRIND: the valgrind executable.
if(NOT PROGRAM_DIR)
  file(REMOVE_RECURSE "${WORK_DIR}")
  # Debug: the library compiles fastest unoptimized, and each run below still takes seconds.
  execute_process(COMMAND "${CMAKE_COMMAND}" -S "${CMAKE_CURRENT_LIST_DIR}" -B "${WORK_DIR}"
      -G "${GENERATOR}" "-DCMAKE_CXX_COMPILER=${CXX}" -DCMAKE_BUILD_TYPE=Debug
      "-DBPOOL_SOURCE_DIR=${BPOOL_SOURCE_DIR}"
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "configuring the valgrind programs failed:\n${out}\n${err}")
  endif()
  execute_process(COMMAND "${CMAKE_COMMAND}" --build "${WORK_DIR}"
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "building the valgrind programs failed:\n${out}\n${err}")
  endif()
  set(PROGRAM_DIR "${WORK_DIR}")
endif()

set(failures 0)
# memcheck(<program> <expected exit status> <regex>...): runs it, and fails unless it exits with
# that status and its report matches every regex.
function(memcheck program status)
  execute_process(COMMAND "${VALGRIND}" --tool=memcheck --leak-check=full --num-callers=40
      --error-exitcode=99 "${PROGRAM_DIR}/valgrind_${program}"
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE report TIMEOUT 120)
  set(ok TRUE)
  if(NOT rc STREQUAL "${status}")
    set(ok FALSE)
    message(STATUS "${program}: exit status ${rc}, expected ${status}")
  endif()
  foreach(regex IN LISTS ARGN)
    if(NOT report MATCHES "${regex}")
      set(ok FALSE)
      message(STATUS "${program}: the report does not match: ${regex}")
    endif()
  endforeach()
  if(ok)
    message(STATUS "${program}: as expected")
  else()
    message(STATUS "${program}'s report:\n${report}")
    math(EXPR failures "${failures} + 1")
    set(failures ${failures} PARENT_SCOPE)
  endif()
endfunction()

# An error record: its first line, then the lines of its stack up to one naming `fn`.
set(frames "(==[0-9]+==    (at|by) [^\n]*\n)*==[0-9]+==    (at|by) [^\n]*")
memcheck(use_after_free 99
  "Invalid read of size [0-9]+\n${frames}read_after_free"
  "Address 0x[0-9a-f]+ is 40 bytes inside a block of size 64 free'd\n${frames}read_after_free"
  "Invalid write of size [0-9]+\n${frames}write_after_free"
  "Address 0x[0-9a-f]+ is 100 bytes inside a block of size 256 free'd\n${frames}write_after_free")
memcheck(double_free 99
  "Invalid free\\(\\)[^\n]*\n${frames}free_twice"
  "Address 0x[0-9a-f]+ is 0 bytes inside a block of size 48 free'd")
memcheck(leak 99
  " 80 bytes in 1 blocks are definitely lost[^\n]*\n${frames}lose_blocks"
  " 98,304 bytes in 1 blocks are definitely lost[^\n]*\n${frames}lose_blocks"
  " 3,145,728 bytes in 1 blocks are definitely lost[^\n]*\n${frames}lose_blocks"
  "definitely lost: 3,244,112 bytes in 3 blocks"
  "possibly lost: 0 bytes in 0 blocks")
memcheck(clean 0 "ERROR SUMMARY: 0 errors")
if(failures GREATER 0)
  message(FATAL_ERROR "${failures} valgrind check(s) failed")
endif()
