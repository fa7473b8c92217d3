# ctest bench_report_smoke: a tiny run of the whole pipeline (suite, burst, report.py), so that the
# report cannot rot. Variables: BENCH, BURST (the binaries), PYTHON, REPORT (report.py), DIR.
file(REMOVE_RECURSE "${DIR}")
file(MAKE_DIRECTORY "${DIR}/raw")

# run_step(<command...>): runs it, fails the test if it fails; its stdout goes to step_output.
function(run_step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

run_step("${BENCH}" --benchmark_min_time=0.001 --benchmark_repetitions=2
  "--benchmark_filter=^(churn_1k|threads_churn)/"
  "--benchmark_out=${DIR}/raw/bench_main_smoke.json" --benchmark_out_format=json)
run_step("${BURST}" --subject=bpool_capped --connections=300 --capacity-mib=2 --hold-ms=2
  "--trace=${DIR}/raw/burst_bpool_capped.dat" --check)
file(WRITE "${DIR}/raw/burst_bpool_capped.json" "${step_output}")
run_step("${PYTHON}" "${REPORT}" "${DIR}" --command smoke --mode quick)
if(NOT EXISTS "${DIR}/report.md")
  message(FATAL_ERROR "report.py wrote no report.md")
endif()
