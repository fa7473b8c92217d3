#!/usr/bin/env python3
"""Writes REPORT_DIR/report.md and its plots from the raw results scripts/bench leaves in
REPORT_DIR/raw, then prints the summary table. Standard library only (Python 3.9+); the loading
and formatting are in report_data.py.

    python3 benchmarks/report.py build/report --command "scripts/bench" --mode full

Raw inputs: bench_<variant>_<workload>.json (Google Benchmark JSON, aggregates of repetitions),
burst_<subject>.json (one object from bpool_burst) and burst_<subject>.dat (live bytes over time),
small_<subject>.json (one object from bpool_small_blocks). Any of them may be missing.
"""

import argparse
import datetime
import os
import platform
import sys

sys.dont_write_bytecode = True  # importing report_data must leave no __pycache__ in the source tree
from report_data import (CHECKED, INSTRUCTION_LOOPS, SUBJECTS, cpu_model, fmt_ns, fmt_rate, fmt_ratio, fmt_size,
                         git_revision, idle_ratio, idle_runs, crowd_runs, label, load_benchmarks,
                         load_bursts, load_instructions, load_small, memory_gib, ordered, os_name, package_version,
                         ratio, read, stream_pairs, usable_cpus, workload_keys, MIB, HERE)
from report_memory import (SMALL_ORDER, burst_section, memory_section, others_section,
                           real_programs_section, small_section)
from report_time import (address_section, checked_section, detail_section, instructions_section,
                         matrix_section, scaling_section, threads_section, wait_section)
from report_verdicts import (ALIGNED, address_rows, busy_banner, busy_reasons, checked_rows,
                             median_spread, others_load, parse_load, peer_verdicts, targets,
                             targets_section, verdicts_section)



def header(args, contexts, load, banner):
    """Returns the report's first lines: the busy banner if any, date, command, machine, compiler
    and versions. load: machine_load's dictionary."""
    ctx = contexts.get("main", next(iter(contexts.values()), {}))

    def malloc_line(variant):
        c = contexts.get(variant)
        if not c:
            return "not run"
        return (f"{c.get('malloc')} {c.get('malloc_version')} "
                f"(`malloc` resolves to {c.get('malloc_library')})")

    root = os.path.dirname(HERE)
    others = " / ".join("?" if n is None else f"{n:.1f}" for n in load["others"])
    spread = "?" if load["spread"] is None else f"{load['spread'] * 100:.0f} %"
    gbench_type = ctx.get("library_build_type")
    gbench_note = ""
    if gbench_type == "debug":
        gbench_note = (" (its `library_build_type` is `debug`: Debian's libbenchmark-dev is built "
                       "that way; that is the harness library, timing loop and reporting, not the "
                       "code measured, which is this Release build)")
    elif gbench_type:
        gbench_note = f" (library_build_type {gbench_type})"
    lines = [
        "# bpool benchmark report",
        "",
    ] + banner + [
        f"- **Date**: {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}",
        f"- **Command**: `{args.command}` ({args.mode} run: {repetitions_text(args.mode)})",
        f"- **Machine**: {cpu_model()}, {usable_cpus()} cores "
        f"({ctx.get('mhz_per_cpu', '?')} MHz), {memory_gib()} RAM; {os_name()}, "
        f"Linux {platform.release()}",
        f"- **Load average** (1, 5, 15 min) at start / end: {load_average(load['lines'][0])} / "
        f"{load_average(load['lines'][1])}; runnable threads of other work at start / end: "
        f"{others}; spread of the repetitions (median over the rows of (max - min) / median): "
        f"{spread}",
        f"- **Compiler**: {ctx.get('compiler', '?')}, libstdc++ {ctx.get('libstdcxx', '?')}, "
        f"CMake Release (-O3 -DNDEBUG); Google Benchmark "
        f"{package_version('libbenchmark-dev') or '?'}{gbench_note}",
        f"- **bpool**: git {git_revision(root)}",
        f"- **glibc**: {malloc_line('main')}",
        f"- **mimalloc** (LD_PRELOAD): {malloc_line('mimalloc')}",
        f"- **mimalloc_resource** (linked): {malloc_line('mimalloc_resource')}",
        f"- **jemalloc** (LD_PRELOAD): {malloc_line('jemalloc')}",
        f"- **tcmalloc** (LD_PRELOAD): {malloc_line('tcmalloc')}",
        f"- **Boost.Container**: {ctx.get('boost', '?').replace('_', '.')}",
        "",
    ]
    return lines


def load_average(text):
    fields = text.split()
    return " ".join(fields[:3]) if len(fields) >= 3 else "?"


def repetitions_text(mode):
    return ("3 repetitions of at least 0.02 s each" if mode == "quick"
            else "10 repetitions of at least 0.1 s each")


def summary(results, others, bursts, small, counts, target_rows):
    """The console's summary: the table of every workload, then the smaller tables and the
    targets."""
    print_workloads(results)
    print_pairs(results, others)
    print_threads(results)
    print_memory(bursts, small)
    if counts:
        print("\n== instructions per allocate + deallocate pair (callgrind): "
              + " / ".join(INSTRUCTION_LOOPS))
        for s in ordered(counts, SUBJECTS):
            print(f"{s:18s} " + " ".join(f"{counts[s].get(l, float('nan')):8.0f}"
                                         for l in INSTRUCTION_LOOPS))
    print("\n== targets")
    for t, verdict, detail in target_rows:
        print(f"[{verdict}] {t}: {detail}")


def print_workloads(results):
    """The table of every workload: ns/op of bpool, capped and each peer."""
    peers = [s for s in ("mimalloc", "mimalloc_resource", "glibc", "jemalloc", "tcmalloc",
                         "std_sync", "boost_sync")
             if any(s in figs for figs in results.values())]
    head = ["workload", "bpool", "capped"] + peers + ["bpool/mimalloc"]
    rows = []
    for k in workload_keys(results):
        figs = results[k]
        cell = lambda s: fmt_ns(figs[s].median) if s in figs else "–"
        rows.append([label(k), cell("bpool"), cell("bpool_capped")] + [cell(s) for s in peers]
                    + [fmt_ratio(ratio(figs, "bpool"))])
    widths = [max(len(str(r[i])) for r in rows + [head]) for i in range(len(head))]
    line = lambda r: "  ".join(str(c).rjust(w) if i else str(c).ljust(w)
                               for i, (c, w) in enumerate(zip(r, widths)))
    print("\n== summary: ns/op, median (full tables and spreads in the report)")
    print(line(head))
    for r in rows:
        print(line(r))


def print_pairs(results, others):
    """Streams, the checked build, blocks by address and the aligned buffer: ratios of pairs."""
    pairs = stream_pairs(others)
    if pairs:
        print("\n== streams: ns/op, std::ostringstream vs bpool::ostream")
        for (task, size), figs in sorted(pairs.items()):
            std, ours = figs.get("std_ostringstream"), figs.get("bpool_ostream")
            if std and ours and std.median:
                print(f"{task:8s} {fmt_size(size):>8s}  {fmt_ns(std.median):>10s}  "
                      f"{fmt_ns(ours.median):>10s}  ×{ours.median / std.median:.2f}")
    checked = checked_rows(results)
    if checked:
        print("\n== checked build: ns/op with checking off (bpool) / on (bpool_checked)")
        for n, off, on in checked:
            print(f"{n:24s} {fmt_ns(off.median):>10s}  {fmt_ns(on.median):>10s}  "
                  f"×{on.median / off.median:.2f}")
    pairs = address_rows(results)
    if pairs:
        print("\n== blocks by address (bpool): ns/op baseline / variant, ratio (goal)")
        for w, _, base, var, goal in pairs:
            print(f"{w:24s} {fmt_ns(base.median):>10s}  {fmt_ns(var.median):>10s}  "
                  f"×{var.median / base.median:.2f} (≤ {goal:.2f})")
    aligned = results.get(ALIGNED, {})
    bp = aligned.get("bpool")
    if bp is not None and bp.median:
        print("\n== 4 KiB-aligned 64 KiB buffer: ns/op, bpool / subject")
        for s in ordered(aligned, SUBJECTS):
            f = aligned[s]
            if f.median:
                print(f"{s:14s} {fmt_ns(f.median):>10s}  ×{bp.median / f.median:.2f}")


def print_threads(results):
    """The many-threads workloads."""
    counts, idle = idle_runs(results)
    if idle:
        print("\n== busy thread beside idle threads: ns/op (× none idle)")
        for s in ordered(idle, SUBJECTS):
            cells = [f"{n} idle {fmt_ns(idle[s][n].median)}"
                     + (f" ×{idle_ratio(idle[s], n):.2f}" if n and idle_ratio(idle[s], n) else "")
                     for n in counts if n in idle[s] and idle[s][n].median]
            print(f"{s:14s} " + ", ".join(cells))
    crowd = crowd_runs(results)
    if crowd.get(True) is not None and crowd[True].median:
        c = crowd[True].counters
        base = crowd.get(False)
        print("\n== 64 threads at the cap: ops/s, waited, wake median / p99 µs")
        print(f"capped {fmt_rate(crowd[True].median)} ops/s"
              + (f" (uncapped {fmt_rate(base.median)})" if base is not None else "")
              + f", {c.get('waited_share', 0) * 100:.0f} % waited, wake "
              f"{c.get('wake_median_us', 0):.1f} / {c.get('wake_p99_us', 0):.1f} µs")


def print_memory(bursts, small):
    """The burst and the small blocks."""
    if bursts:
        print("\n== burst: peak live MiB / peak RSS MiB / total s")
        for s, b in bursts.items():
            print(f"{s:14s} {b['peak_live_bytes'] / MIB:8.1f} {b['peak_rss_bytes'] / MIB:8.1f} "
                  f"{b['total_s']:7.2f}")
    if small:
        print("\n== small blocks: requested MiB / RSS MiB / RSS per requested byte")
        for s in ordered(small, SMALL_ORDER):
            req, rss = small[s]["requested_bytes"], small[s]["resident_bytes"]
            print(f"{s:14s} {req / MIB:8.1f} {rss / MIB:8.1f} {rss / req if req else 0:7.2f}")


def machine_load(args, raw, results):
    """Returns {"lines": /proc/loadavg at start and end, "others": runnable threads of other work
    at start and end, "spread": median_spread, "reasons": why the machine counts as busy}. The
    start is what scripts/bench saved before the first benchmark; the end is now."""
    load = {"lines": [read(os.path.join(raw, "loadavg_start")), read("/proc/loadavg")],
            "others": [parse_load(read(os.path.join(raw, "others_start"))), others_load()],
            "spread": median_spread(results)}
    if args.assume_load is not None:
        load["others"] = [args.assume_load, args.assume_load]
    if args.assume_spread is not None:
        load["spread"] = args.assume_spread
    load["reasons"] = busy_reasons(load["others"], usable_cpus(), load["spread"])
    return load


def print_verdicts(verdicts, reasons):
    """The last thing scripts/bench prints before its time: bpool against each peer."""
    if not verdicts:
        return
    print("\n== verdicts" + (" (the machine was busy: unreliable)" if reasons else ""))
    for line in verdicts:
        print(line)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report_dir")
    parser.add_argument("--command", default="scripts/bench")
    parser.add_argument("--mode", default="full", choices=["full", "quick"])
    # For tests (benchmarks/report_smoke.cmake): what the busy check would see on a busy machine.
    parser.add_argument("--assume-load", type=float, metavar="THREADS",
                        help="testing: take THREADS as the runnable threads of other work at the "
                             "start and the end")
    parser.add_argument("--assume-spread", type=float, metavar="FRACTION",
                        help="testing: take FRACTION as the median spread of the repetitions")
    args = parser.parse_args()
    raw = os.path.join(args.report_dir, "raw")
    results, contexts, descriptions, others = load_benchmarks(raw)
    bursts = load_bursts(raw)
    small = load_small(raw)
    counts, loop_cost = load_instructions(raw)
    if not results and not bursts and not small:
        sys.exit(f"report: no results in {raw}")
    subjects = ordered({s for figs in results.values() for s in figs}, SUBJECTS)
    peers = [s for s in subjects if s != CHECKED]  # bpool_checked has its own section
    load = machine_load(args, raw, results)
    reasons = load["reasons"]
    verdicts = peer_verdicts(results, bool(reasons))
    target_rows = targets(results, bursts, bool(reasons), counts)
    notes = read(os.path.join(raw, "notes")).strip()
    lines = header(args, contexts, load, busy_banner(reasons))
    lines += verdicts_section(verdicts)
    lines += targets_section(target_rows)
    lines += matrix_section(results, peers)
    lines += instructions_section(counts, loop_cost)
    lines += memory_section(results)
    lines += checked_section(results)
    lines += scaling_section(results, peers, args.report_dir)
    lines += threads_section(results, peers)
    lines += burst_section(bursts, args.report_dir)
    lines += small_section(small)
    lines += address_section(results, descriptions)
    lines += wait_section(results)
    lines += real_programs_section(raw)
    lines += others_section(others)
    lines += detail_section(results, subjects, descriptions)
    lines += ["## How this was measured", "",
              "- Google Benchmark, one benchmark per (workload, subject); each figure is the "
              "median of the repetitions, with min – max and stddev. A fresh instance of the "
              "subject per repetition; sizes and indices are drawn before timing.",
              "- bpool_bench runs bpool, bpool_capped (capacity 64 GiB: never reached), glibc "
              "(plain `malloc` / `free`, `aligned_alloc` above 16 B alignment, behind a "
              "`memory_resource`), the std and Boost pools. mimalloc, jemalloc and tcmalloc are "
              "that malloc subject run again under `LD_PRELOAD`: what a program that drops in "
              "another allocator gets; the binary checks that `malloc` resolves into the "
              "preloaded library (header above) and refuses to run otherwise. "
              "bpool_bench_mimalloc runs `bpool::mimalloc_resource`, bpool's adapter (a separate "
              "binary: Debian's libmimalloc.so exports malloc, so any binary that links it runs "
              "wholly on mimalloc). bpool_bench_checked runs bpool_checked (bpool built with "
              "`-DBPOOL_CHECKED=ON`, no sanitizer) on the churns and the 32 KiB buffer.",
              "- The unsynchronized pools run only single-threaded workloads.",
              "- The many-threads workloads run a fixed amount of work in each repetition, in both "
              "modes: 500 rounds of the busy thread, 10,000 short-lived threads, 1000 operations "
              "of each of the 64 threads at the cap.",
              f"- Reproduce: `{args.command}`; raw JSON in `{raw}`."]
    if notes:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in notes.splitlines()]
    path = os.path.join(args.report_dir, "report.md")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    if reasons:  # at the top of the console's summary too, before any figure
        print(f"!! the machine was busy: {'; '.join(reasons)}: verdicts unreliable")
    summary(results, others, bursts, small, counts, target_rows)
    print_verdicts(verdicts, reasons)
    print(f"\nreport: {path}")


if __name__ == "__main__":
    main()
