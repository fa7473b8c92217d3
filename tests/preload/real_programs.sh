#!/usr/bin/env bash
# ctest real_programs_preload: C++ programs from Debian's packages, which nobody here wrote, run
# with libbpool_preload.so in LD_PRELOAD. Each must print exactly what it prints without it (its
# exit status, stdout, and stderr but for the pool's own stats lines), and the pool's BPOOL_STATS=1
# report must show that it allocated through the pool. Then two capped runs: clang under `fail`
# ends with its own out-of-memory message or std::bad_alloc, neither a crash nor a hang; and a
# multithreaded program under `wait` completes with the same output, having waited, with its peak
# live bytes under the cap; under BPOOL_VERBOSE=1 a stuck request reports its stall.
#   real_programs.sh PRELOAD CAPPED_WORKERS WORKDIR
set -uo pipefail
preload=$1 workers=$2 work=$3
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# run_as LABEL PRELOADED(0|1) CMD...: runs CMD (at most 300 s), leaving LABEL.out, LABEL.err and
# LABEL.rc; under the preload with BPOOL_STATS=1 and whatever BPOOL_* the caller exported.
run_as() {
    local label=$1 pre=$2
    shift 2
    if [ "$pre" -eq 1 ]; then
        LD_PRELOAD="$preload" BPOOL_STATS=1 timeout 300 "$@" >"$label.out" 2>"$label.err"
    else
        env -u BPOOL_CAPACITY -u BPOOL_ON_EXHAUSTION timeout 300 "$@" >"$label.out" 2>"$label.err"
    fi
    echo $? >"$label.rc"
}

# stats LABEL KEY: the largest value of KEY over the stats lines in LABEL.err (0 if none).
stats() {
    grep -o "^bpool: stats .*" "$1.err" | grep -o " $2=[0-9]*" | cut -d= -f2 | sort -n | tail -n 1 |
        grep . || echo 0
}

# same NAME SETUP CMD...: runs SETUP (a shell snippet that resets the work directory) and CMD
# without the preload, then again with it, and compares.
same() {
    local name=$1 setup=$2
    shift 2
    eval "$setup"
    run_as "$name.plain" 0 "$@"
    eval "$setup"
    run_as "$name.bpool" 1 "$@"
    grep -v "^bpool: stats " "$name.bpool.err" >"$name.bpool.err.own"
    # Newer CMake prints how long a step took: the one difference two runs may rightly have.
    sed -i -E 's/ \([0-9.]+s\)$//' "$name.plain.out" "$name.bpool.out"
    if ! cmp -s "$name.plain.rc" "$name.bpool.rc"; then
        fail "$name: exit status $(cat "$name.plain.rc") without the preload, $(cat "$name.bpool.rc") with it"
    elif ! cmp -s "$name.plain.out" "$name.bpool.out"; then
        fail "$name: stdout differs"; diff "$name.plain.out" "$name.bpool.out" | head -n 20
    elif ! cmp -s "$name.plain.err" "$name.bpool.err.own"; then
        fail "$name: stderr differs"; diff "$name.plain.err" "$name.bpool.err.own" | head -n 20
    fi
    local allocations processes
    allocations=$(stats "$name.bpool" allocations)
    processes=$(grep -c "^bpool: stats " "$name.bpool.err")
    if [ "$allocations" -le 0 ]; then
        fail "$name: the pool reported no allocation (stats lines: $processes)"
    else
        echo "ok: $name (exit $(cat "$name.bpool.rc"); $processes processes reported, at most $allocations allocations in one)"
    fi
}

# 1. cmake configuring and building a small project with ninja (which runs g++, itself C++), and
# the program it built; 2. ninja again on the built tree (nothing to do).
mkdir -p proj
cat >proj/CMakeLists.txt <<'CML'
cmake_minimum_required(VERSION 3.20)
project(preload_probe CXX)
add_executable(probe main.cpp)
CML
cat >proj/main.cpp <<'CPP'
#include <iostream>
#include <map>
#include <string>
int main() {
    std::map<std::string, int> words;
    for (const char* w : {"pool", "cap", "pool", "wait", "cap", "pool"}) ++words[w];
    for (const auto& [w, n] : words) std::cout << w << ' ' << n << '\n';
}
CPP
same cmake_configure "rm -rf b" cmake -S proj -B b -G Ninja -DCMAKE_BUILD_TYPE=Release
same cmake_build "rm -rf b && cmake -S proj -B b -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null" \
    cmake --build b
same ninja_noop ":" ninja -C b
same probe ":" b/probe

# 3. clang++ checking a large translation unit (much of the standard library) with a warning.
cat >big.cpp <<'CPP'
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <format>
#include <iostream>
#include <map>
#include <memory_resource>
#include <regex>
#include <string>
#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>
int main() {
    int unused = 0;
    std::map<std::string, std::vector<int>> m;
    std::regex r("a+b*");
    return static_cast<int>(m.size());
}
CPP
sed -i '/#include <format>/d' big.cpp  # libstdc++ 12 has no <format>
same clang_syntax ":" clang++ -std=c++20 -Wall -fsyntax-only big.cpp

# 4. clang capped far below its peak, failing at the cap: its own out-of-memory message (LLVM's
# new_handler) or std::bad_alloc; not a crash by signal other than that abort, not a hang.
BPOOL_CAPACITY=8M BPOOL_ON_EXHAUSTION=fail run_as clang_capped 1 clang++ -std=c++20 -fsyntax-only big.cpp
rc=$(cat clang_capped.rc)
if [ "$rc" -eq 0 ]; then
    fail "clang_capped: succeeded under an 8 MiB cap (peak live $(stats clang_syntax.bpool peak_live_bytes))"
elif [ "$rc" -eq 124 ]; then
    fail "clang_capped: hung"
elif ! grep -qE "out of memory|bad_alloc|capacity_exceeded" clang_capped.err; then
    fail "clang_capped: exit $rc without an out-of-memory message"; tail -n 5 clang_capped.err
else
    echo "ok: clang_capped (exit $rc: $(grep -m1 -oE "LLVM ERROR: out of memory|[a-z:_]*bad_alloc|[a-z:_]*capacity_exceeded" clang_capped.err))"
fi

# 5. A multithreaded program capped with `wait`, its threads freeing memory as they go.
run_as workers.plain 0 "$workers"
BPOOL_CAPACITY=3680K BPOOL_ON_EXHAUSTION=wait BPOOL_MAX_WAIT=120s run_as workers.capped 1 "$workers"
if ! cmp -s workers.plain.out workers.capped.out || [ "$(cat workers.capped.rc)" -ne 0 ]; then
    fail "workers: exit $(cat workers.capped.rc), output $(cat workers.capped.out) (expected $(cat workers.plain.out))"
else
    waits=$(stats workers.capped waits)
    peak=$(stats workers.capped peak_live_bytes)
    cap=$(stats workers.capped capacity)
    if [ "$waits" -le 0 ]; then fail "workers: no request waited at the cap"; fi
    if [ "$cap" -ne 3768320 ] || [ "$peak" -gt "$cap" ]; then
        fail "workers: peak live $peak bytes, capacity $cap"
    fi
    echo "ok: workers (capped at $cap bytes: peak live $peak, $waits waits)"
fi

# 6. BPOOL_VERBOSE=1: a request stuck at a cap that nothing frees reports its stall after 1 s,
# and its giving up (the program then dies of the uncaught capacity_exceeded: abort, 134). When
# several workers give up at once, the second std::terminate may abort the process ("terminate
# called recursively") before the first has named the exception, so either message will do.
BPOOL_VERBOSE=1 BPOOL_CAPACITY=100K BPOOL_ON_EXHAUSTION=wait BPOOL_MAX_WAIT=1500ms \
    run_as verbose 1 "$workers"
if ! grep -q "^bpool: a request of [0-9]* bytes still waits after" verbose.err ||
    ! grep -q "^bpool: a request of [0-9]* bytes gave up after" verbose.err ||
    [ "$(cat verbose.rc)" != 134 ] ||
    ! grep -q -e "capacity_exceeded" -e "terminate called recursively" verbose.err; then
    fail "verbose: no stall and timeout reports"; head -n 5 verbose.err
else
    echo "ok: verbose ($(grep -c "^bpool: a request" verbose.err) reports)"
fi

if [ "$failures" -ne 0 ]; then
    echo "$failures failures (outputs in $work)"
    exit 1
fi
echo "all real programs ran the same under the preload"
