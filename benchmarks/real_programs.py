#!/usr/bin/env python3
"""Real programs under each allocator by LD_PRELOAD: wall time and peak RSS.

Runs each workload under glibc (no preload), mimalloc, jemalloc, tcmalloc and bpool
(libbpool_preload.so), RUNS times each, the allocators alternating within a round so that a
busy moment of the machine falls on all of them; prints a Markdown table of medians with the
ratio to mimalloc, and writes the figures as JSON. The capped row runs a multithreaded program
under bpool capped with `wait` below its demand (its peak RSS stays near the cap).

  real_programs.py --preload LIB --workers EXE --work DIR [--runs N] [--json FILE]
"""
import argparse
import json
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import time

LIBDIR = pathlib.Path("/usr/lib/x86_64-linux-gnu")
PEERS = {"mimalloc": "libmimalloc.so.2", "jemalloc": "libjemalloc.so.2",
         "tcmalloc": "libtcmalloc.so.4"}

BIG_TU = """#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory_resource>
#include <regex>
#include <string>
#include <thread>
#include <unordered_map>
#include <variant>
#include <vector>
int main() { std::map<std::string, std::vector<int>> m; std::regex r("a+b*"); return 0; }
"""

PROJECT = """cmake_minimum_required(VERSION 3.20)
project(preload_probe CXX)
add_executable(probe main.cpp)
"""


def run_once(cmd, env, cwd):
    """Runs cmd in a child of its own; returns (wall seconds, peak RSS in KiB) of that child."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.monotonic() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({status}) under {env.get('LD_PRELOAD')}")
    return wall, usage.ru_maxrss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preload", required=True)
    ap.add_argument("--workers", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json")
    a = ap.parse_args()
    work = pathlib.Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    (work / "big.cpp").write_text(BIG_TU)
    (work / "proj").mkdir(exist_ok=True)
    (work / "proj/CMakeLists.txt").write_text(PROJECT)
    (work / "proj/main.cpp").write_text("int main() { return 0; }\n")

    allocators = {"glibc": None}
    for name, lib in PEERS.items():
        if (LIBDIR / lib).exists():
            allocators[name] = str(LIBDIR / lib)
    allocators["bpool"] = str(pathlib.Path(a.preload).resolve())
    workloads = {
        "clang++ -fsyntax-only (libstdc++ headers)":
            ["clang++", "-std=c++20", "-fsyntax-only", "big.cpp"],
        "cmake configure (small C++ project)":
            ["sh", "-c", "rm -rf b && cmake -S proj -B b -G Ninja >/dev/null"],
        "8 threads x 400 buffers of 64 KiB": [str(pathlib.Path(a.workers).resolve())],
    }
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("BPOOL_")}
    figures = {}
    for wl, cmd in workloads.items():
        rows = {name: [] for name in allocators}
        if wl.startswith("8 threads"):
            rows["bpool capped at 3.59 MiB (wait)"] = []
        for _ in range(a.runs):
            for name in rows:
                env = dict(base_env)
                lib = allocators.get(name, allocators["bpool"])
                if lib:
                    env["LD_PRELOAD"] = lib
                if name.startswith("bpool capped"):
                    env.update(BPOOL_CAPACITY="3680K", BPOOL_ON_EXHAUSTION="wait",
                               BPOOL_MAX_WAIT="120s")
                rows[name].append(run_once(cmd, env, work))
        figures[wl] = {n: {"wall_s": statistics.median(w for w, _ in r),
                           "rss_kib": statistics.median(m for _, m in r)} for n, r in rows.items()}
        print(f"{wl}: done", file=sys.stderr)

    print("| program | allocator | wall s (median) | ×mimalloc | peak RSS MiB | ×mimalloc |")
    print("|---|---|---|---|---|---|")
    for wl, by in figures.items():
        ref = by.get("mimalloc")
        for name, f in by.items():
            tr = f"{f['wall_s'] / ref['wall_s']:.2f}" if ref else "–"
            rr = f"{f['rss_kib'] / ref['rss_kib']:.2f}" if ref else "–"
            print(f"| {wl} | {name} | {f['wall_s']:.3f} | {tr} | {f['rss_kib'] / 1024:.1f} | {rr} |")
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
