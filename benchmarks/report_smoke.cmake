# ctest bench_report_smoke: a tiny run of the whole pipeline (suite, burst, small blocks,
# report.py), so that the report cannot rot: it must write report.md with its sections and print its
# summary, with a verdict line per peer and no internal wording; then, told to assume a load above
# the cores, that it says the machine was busy and marks its verdicts unreliable. Variables: BENCH,
# BURST, SMALL (the binaries), BENCH_CHECKED (bpool_bench_checked; optional), INSTRUCTIONS
# (bpool_instructions; optional, with valgrind), PYTHON, REPORT (report.py), DIR.
file(REMOVE_RECURSE "${DIR}")
file(MAKE_DIRECTORY "${DIR}/raw")

# tail_of(<var> <text>): the last 1500 characters of <text>, in <var>.
function(tail_of var text)
  string(LENGTH "${text}" n)
  if(n GREATER 1500)
    math(EXPR from "${n} - 1500")
    string(SUBSTRING "${text}" ${from} -1 text)
  endif()
  set(${var} "${text}" PARENT_SCOPE)
endfunction()

# run_step(<command...>): runs it, fails the test if it fails (saying which step, with the ends of
# its stderr and stdout); its stdout goes to step_output.
function(run_step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    tail_of(err "${err}")
    tail_of(out "${out}")
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n--- stderr (end):\n${err}\n--- stdout (end):\n${out}")
  endif()
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

# What the report's sections need; of the many-threads workloads, bpool's runs only (each runs a
# fixed amount of work, seconds for all subjects).
string(CONCAT filter "^((churn_1k|threads_churn|churn_1k_(direct|bypass|unsized)|buffer_64k_a4k)/"
  "|(idle_threads|short_threads)/bpool/|cap_64_threads/)")
run_step("${BENCH}" --benchmark_min_time=0.001 --benchmark_repetitions=2
  "--benchmark_filter=${filter}"
  "--benchmark_out=${DIR}/raw/bench_main_smoke.json" --benchmark_out_format=json)
if(BENCH_CHECKED)
  # As scripts/bench runs it: the checked build's registry without a stack per allocation.
  set(ENV{BPOOL_CHECKED_STACKS} 0)
  run_step("${BENCH_CHECKED}" --benchmark_min_time=0.001 --benchmark_repetitions=2
    "--benchmark_filter=^churn_1k/"
    "--benchmark_out=${DIR}/raw/bench_checked_smoke.json" --benchmark_out_format=json)
  unset(ENV{BPOOL_CHECKED_STACKS})
endif()
run_step("${BURST}" --subject=bpool_capped --connections=300 --capacity-mib=2 --hold-ms=2
  "--trace=${DIR}/raw/burst_bpool_capped.dat" --check)
file(WRITE "${DIR}/raw/burst_bpool_capped.json" "${step_output}")
run_step("${SMALL}" --subject=bpool --blocks=20000)
file(WRITE "${DIR}/raw/small_bpool.json" "${step_output}")
if(INSTRUCTIONS)
  # Short runs (the counts are per step whatever the length), bpool alone.
  get_filename_component(bench_dir "${REPORT}" DIRECTORY)
  run_step("${PYTHON}" "${bench_dir}/instructions.py" --binary "${INSTRUCTIONS}" --subjects bpool
    --steps 2000,6000 "--json=${DIR}/raw/instructions_main.json")
endif()
run_step("${PYTHON}" "${REPORT}" "${DIR}" --command smoke --mode quick)
set(summary "${step_output}")
if(NOT EXISTS "${DIR}/report.md")
  message(FATAL_ERROR "report.py wrote no report.md")
endif()
file(READ "${DIR}/report.md" report)

# expect(<text> <what> <string>): fails the test unless <string> occurs in <text>.
function(expect text what string)
  string(FIND "${text}" "${string}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "report.py: ${what} lacks \"${string}\"\n--- ${what}:\n${text}")
  endif()
endfunction()
foreach(s IN ITEMS
    "# bpool benchmark report" "- **Machine**:" "- **Compiler**:"
    "## Verdicts" "- bpool vs glibc: faster on " "## Targets" "| target | verdict | measured |"
    "capped within 5 % of uncapped"
    "## All workloads: ns/op (ratio to mimalloc)" "| workload | bpool | bpool_capped |"
    "| churn_1k |" "## Thread scaling (threads_churn)" "## The burst" "| bpool_capped |"
    "## Blocks by address (pagemap) and 4 KiB-aligned buffers" "| churn_1k_direct: "
    "| churn_1k_bypass: " "| churn_1k_unsized: " "| buffer_64k_a4k |"
    "## Many threads" "### A busy thread beside idle threads" "### Short-lived threads"
    "### 64 threads at the cap" "| capped at 772 KiB (wait) |" "| uncapped |"
    "a busy thread beside idle threads within 10 % of none"
    "## Small blocks: resident memory"
    "| subject | requested MiB | RSS MiB | RSS / requested | upstream MiB | RSS / upstream |"
    "## Per workload" "## How this was measured")
  expect("${report}" report.md "${s}")
endforeach()
if(INSTRUCTIONS)
  expect("${report}" report.md "## Instructions per allocate + deallocate pair (callgrind)")
  expect("${report}" report.md "instructions per allocate + deallocate pair on churn_1k (bpool)")
  expect("${summary}" "report.py's output" "== instructions per allocate + deallocate pair")
endif()
if(BENCH_CHECKED)
  expect("${report}" report.md "## The checked build: checking on vs off")
  expect("${summary}" "report.py's output" "== checked build")
endif()
foreach(s IN ITEMS "== summary: ns/op" "== blocks by address" "== 4 KiB-aligned 64 KiB buffer"
    "== busy thread beside idle threads" "== 64 threads at the cap"
    "== small blocks" "== targets" "== verdicts" "report: ")
  expect("${summary}" "report.py's output" "${s}")
endforeach()

# What users read names no internal work items ("issue 8"), and every peer's verdict is counted.
foreach(what IN ITEMS report summary)
  string(REGEX MATCH "[Ii]ssues? [^ ]*" internal "${${what}}")
  if(internal)
    message(FATAL_ERROR "report.py: the ${what} names an internal work item: \"${internal}\"")
  endif()
  string(REGEX MATCH "bpool vs [a-z_]+: faster on [0-9]+ of [0-9]+ workloads" verdict "${${what}}")
  if(NOT verdict)
    message(FATAL_ERROR "report.py: the ${what} has no verdict line "
      "(bpool vs PEER: faster on N of M workloads)")
  endif()
endforeach()

# On a busy machine (other work keeping more threads runnable than there are cores, assumed here)
# the report and the console say so first, and every verdict is marked.
run_step("${PYTHON}" "${REPORT}" "${DIR}" --command smoke --mode quick --assume-load 999)
set(summary "${step_output}")
file(READ "${DIR}/report.md" report)
string(FIND "${summary}" "!! the machine was busy: other work kept 999.0 threads runnable" at)
if(NOT at EQUAL 0)
  message(FATAL_ERROR "report.py: with --assume-load 999 the console does not start with the busy "
    "warning\n--- output:\n${summary}")
endif()
string(FIND "${report}" "> **The machine was busy**: other work kept 999.0 threads" banner)
string(FIND "${report}" "- **Date**" date)
if(banner EQUAL -1 OR banner GREATER date)
  message(FATAL_ERROR "report.py: with --assume-load 999 report.md has no busy banner at its top")
endif()
expect("${report}" report.md "faster on ")
foreach(what IN ITEMS report summary)
  string(REGEX MATCH "bpool vs [a-z_]+: faster on [0-9]+ of [0-9]+ workloads \\(unreliable\\)"
    marked "${${what}}")
  if(NOT marked)
    message(FATAL_ERROR "report.py: with --assume-load 999 the ${what}'s verdicts are not marked "
      "unreliable")
  endif()
endforeach()
