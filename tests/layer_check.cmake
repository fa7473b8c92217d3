# The layering check (scripts/check-layers) on the real tree, and on a small tree with one file of
# each kind of violation, which it must reject, naming each: so that the check itself can fail.
#   -DPYTHON=... -DROOT=<checkout> -DWORK=<scratch dir>
execute_process(COMMAND "${PYTHON}" "${ROOT}/scripts/check-layers" "${ROOT}"
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "layer check failed on the tree:\n${out}${err}")
endif()

file(REMOVE_RECURSE "${WORK}")
file(WRITE "${WORK}/src/base/low.hpp" "#include \"pool/high.hpp\"\n")
file(WRITE "${WORK}/src/pool/high.hpp" "#include \"base/low.hpp\"\n#include \"pool/high2.hpp\"\n")
file(WRITE "${WORK}/src/pool/high2.hpp" "#include \"nowhere.hpp\"\n")
file(WRITE "${WORK}/src/stray.cpp" "\n")
file(WRITE "${WORK}/adapters/include/bpool/adapters/a.hpp" "#include \"cache/thread_cache.hpp\"\n")
file(WRITE "${WORK}/include/bpool/b.hpp" "#include \"../src/pool/high.hpp\"\n")
execute_process(COMMAND "${PYTHON}" "${ROOT}/scripts/check-layers" "${WORK}"
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(rc EQUAL 0)
  message(FATAL_ERROR "layer check accepted a tree with violations:\n${out}")
endif()
foreach(expected
    "src/base/low.hpp:1: #include \"pool/high.hpp\": layer pool is above base"
    "src/pool/high2.hpp:1: #include \"nowhere.hpp\" names no layer folder"
    "src/stray.cpp:1: not in a layer folder"
    "adapters/include/bpool/adapters/a.hpp:1: #include \"cache/thread_cache.hpp\": adapters/ never includes the implementation"
    "include/bpool/b.hpp:1: #include \"../src/pool/high.hpp\": include/ never includes the implementation")
  string(FIND "${out}" "${expected}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "layer check did not report: ${expected}\nIt printed:\n${out}")
  endif()
endforeach()
string(FIND "${out}" "src/pool/high.hpp:1" at)
if(NOT at EQUAL -1)
  message(FATAL_ERROR "layer check rejected an include of a lower layer:\n${out}")
endif()
file(REMOVE_RECURSE "${WORK}")
message(STATUS "layer check: the tree is layered, and the check rejects each kind of violation")
