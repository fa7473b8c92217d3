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
import re
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True  # importing report_data must leave no __pycache__ in the source tree
from report_data import (CHECKED, IDLE_GOAL, MIB, REFERENCE, SHORT, STREAM_NAME, SUBJECTS,
                         cpu_model, crowd_runs, fmt_bytes, fmt_mib, fmt_ns, fmt_rate, fmt_ratio,
                         fmt_size, git_revision, idle_ratio, idle_runs, label, load_benchmarks,
                         load_bursts, load_small, memory_gib, ordered, os_name, package_version,
                         ratio, read, stream_pairs, table, workload_keys)
from report_verdicts import (ALIGNED, address_rows, busy_banner, busy_reasons, checked_rows,
                             goal_verdict, median_spread, others_load, parse_load, peer_verdicts,
                             ranges_overlap, targets, targets_section, verdicts_section)

HERE = os.path.dirname(os.path.abspath(__file__))


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
        f"- **mimalloc**: {malloc_line('mimalloc')}",
        f"- **jemalloc** (LD_PRELOAD): {malloc_line('jemalloc')}",
        f"- **tcmalloc** (LD_PRELOAD): {malloc_line('tcmalloc')}",
        f"- **Boost.Container**: {ctx.get('boost', '?').replace('_', '.')}",
        "",
    ]
    return lines


def usable_cpus():
    """The CPUs this process may run on (its affinity mask, as nproc and the benchmarks count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count()


def load_average(text):
    fields = text.split()
    return " ".join(fields[:3]) if len(fields) >= 3 else "?"


def repetitions_text(mode):
    return ("3 repetitions of at least 0.02 s each" if mode == "quick"
            else "10 repetitions of at least 0.1 s each")


# ----------------------------------------------------------------------------------------------
# Sections


def matrix_section(results, subjects):
    rows = []
    for k in workload_keys(results):
        figs = results[k]
        cells = []
        for s in subjects:
            f = figs.get(s)
            if f is None or f.median is None:
                cells.append("")
                continue
            r = ratio(figs, s)
            shown = r is not None and s != REFERENCE
            cells.append(fmt_ns(f.median) + (f" ({fmt_ratio(r)})" if shown else ""))
        rows.append([label(k)] + cells)
    return (["## All workloads: ns/op (ratio to mimalloc)", "",
             "Median ns per op over the repetitions (wall time; for multi-threaded workloads, the "
             "wall time of all threads together divided by all their ops). In parentheses: the "
             "ratio to mimalloc's median (below 1: faster than mimalloc). Spreads are in the "
             "per-workload tables below.", ""]
            + table(["workload"] + subjects, rows) + [""])


def detail_section(results, subjects, descriptions):
    out = ["## Per workload", ""]
    for k in workload_keys(results):
        figs = results[k]
        out += [f"### {label(k)}", "", descriptions.get(k[0], ""), ""]
        rows = []
        for s in subjects:
            f = figs.get(s)
            if f is None:
                continue
            rows.append([s, fmt_ns(f.median), f.spread(), fmt_ns(f.stddev),
                         fmt_ratio(ratio(figs, s))])
        out += table(["subject", "ns/op (median)", "min – max", "stddev", "× mimalloc"], rows)
        out.append("")
    return out


def memory_section(results):
    rows = []
    for k in workload_keys(results):
        if not k[0].startswith("churn"):
            continue
        for s in ("bpool", "bpool_capped"):
            f = results[k].get(s)
            if f is None or "peak_live" not in f.counters:
                continue
            c = f.counters
            rows.append([label(k), s, fmt_bytes(c["peak_live"]), fmt_bytes(c.get("pool_peak_live")),
                         fmt_bytes(c.get("cached")), fmt_bytes(c.get("held")),
                         fmt_bytes(c.get("peak_held")),
                         fmt_ratio(c.get("held_ratio")), fmt_ratio(c.get("peak_held_ratio")),
                         fmt_ratio(c.get("class_floor_ratio"))])
    if not rows:
        return []
    return (["## Memory held in the steady-state churn", "",
             "Measured at the end of each run, live set still held (medians over the repetitions). "
             "*Peak live* is the true peak of class-rounded live bytes, recomputed from the "
             "precomputed operations with `pool.block_size()`; *pool peak live* is what "
             "`stats().peak_live_bytes` saw (sampled). *Idle* is `stats().cached_bytes` (thread "
             "caches, central lists, free blocks in chunks); *held* is `stats().upstream_bytes` "
             "at the end, *peak held* `stats().peak_upstream_bytes`. Target: held ≤ 1.3 × peak "
             "live. *Size-class floor* is the sum over the classes of each class's own peak of "
             "live bytes (recomputed from the operations): the classes peak at different "
             "moments, and an allocator that keeps freed blocks for reuse in their class holds "
             "at least that much, whatever its caching policy.", ""]
            + table(["workload", "subject", "peak live", "pool peak live", "idle", "held",
                     "peak held", "held / peak live", "peak held / peak live",
                     "size-class floor / peak live"], rows) + [""])


def scaling_section(results, subjects, out_dir):
    keys = [k for k in workload_keys(results) if k[0] == "threads_churn"]
    if not keys:
        return []
    threads = sorted({int(re.search(r"threads:(\d+)", k[1]).group(1)) for k in keys})
    present = [s for s in subjects if any(s in results[k] for k in keys)]
    dat = os.path.join(out_dir, "scaling.dat")
    with open(dat, "w") as f:
        f.write("threads " + " ".join(present) + "\n")
        for t in threads:
            figs = results.get(("threads_churn", f"threads:{t}"), {})
            vals = []
            for s in present:
                fig = figs.get(s)
                vals.append(f"{1e3 / fig.median:.3f}" if fig and fig.median else "NaN")
            f.write(f"{t} " + " ".join(vals) + "\n")
    png = plot("plot_scaling.gp", os.path.join(out_dir, "scaling.png"),
               {"datafile": dat, "columns": str(len(present) + 1)})
    out = ["## Thread scaling (threads_churn)", "",
           f"Throughput of N threads churning one shared instance (million ops/s, all threads "
           f"together; higher is better). {usable_cpus()} cores here: N goes up to the number "
           f"of cores (at most 16).", ""]
    out += ([f"![thread scaling]({os.path.basename(png)})", ""] if png
            else ["(gnuplot not found: no plot)", ""])
    rows = []
    for t in threads:
        figs = results.get(("threads_churn", f"threads:{t}"), {})
        rows.append([t] + [f"{1e3 / figs[s].median:.1f}" if s in figs and figs[s].median else "–"
                           for s in present])
    return out + table(["threads"] + [f"{s} Mops/s" for s in present], rows) + [""]


def idle_section(results, subjects):
    counts, runs = idle_runs(results)
    if not runs:
        return []
    rows = []
    for s in [s for s in subjects if s in runs]:
        cells = []
        for n in counts:
            fig, r = runs[s].get(n), idle_ratio(runs[s], n)
            shown = f" (×{fmt_ratio(r)})" if n and r is not None else ""
            cells.append("–" if fig is None or fig.median is None else fmt_ns(fig.median) + shown)
        rows.append([s] + cells)
    return (["### A busy thread beside idle threads", "",
             "One thread allocates 2000 blocks of 64 B and frees them all, round after round, "
             "while other threads that each allocated and freed one block of the same instance "
             "(so that it keeps a cache or heap for each of them) sleep until the end, as the idle "
             "workers of a server do. Time per allocate + free pair of the busy thread (median), "
             "and in parentheses the ratio to the same with no idle thread. Goal for bpool: "
             f"within {(IDLE_GOAL - 1) * 100:.0f} % of no idle thread, whatever their number.", ""]
            + table(["subject"] + [f"{n:,} idle: ns/op" for n in counts], rows) + [""])


def short_section(results, subjects):
    figs = results.get((SHORT, ""), {})
    if not figs:
        return []
    us = lambda ns: "–" if ns is None else f"{ns / 1e3:.1f}"
    rows = [[s, us(figs[s].median), f"{us(figs[s].min)} – {us(figs[s].max)}",
             fmt_ratio(ratio(figs, s))] for s in subjects if s in figs and figs[s].median]
    return (["### Short-lived threads", "",
             "10,000 threads, one after the other, as a server that starts a thread per request: "
             "each allocates 100 blocks of 16 B–1 KiB, frees them and exits. Wall time per thread, "
             "its start and join included (which the allocator does not change): what an "
             "allocator adds is its setting up and giving back of a thread's cache or heap.", ""]
            + table(["subject", "µs per thread (median)", "min – max", "× mimalloc"], rows) + [""])


def crowd_section(results):
    runs = crowd_runs(results)
    if not runs:
        return []
    rows = []
    for capped in (True, False):
        fig = runs.get(capped)
        if fig is None or not fig.median:
            continue
        c = fig.counters
        measured = capped and c.get("wake_samples")
        rows.append(["capped at 772 KiB (wait)" if capped else "uncapped", fmt_rate(fig.median),
                     f"{fmt_rate(fig.max)} – {fmt_rate(fig.min)}",
                     f"{c['waited_share'] * 100:.0f} %" if capped and "waited_share" in c else "–",
                     f"{c['wake_median_us']:.1f}" if measured else "–",
                     f"{c['wake_p99_us']:.1f}" if measured else "–",
                     f"{c['wake_samples']:,.0f}" if measured else "–",
                     f"{fig.totals.get('timeouts', 0):.0f}" if capped else "–"])
    return (["### 64 threads at the cap", "",
             "64 threads share one bpool pool capped at 772 KiB (`exhaustion::wait`), three "
             "quarters of the 1 MiB they would hold at once: each holds 0 to 4 blocks of 4 KiB at "
             "random, allocating and freeing, and yields after every operation, so that on a "
             "machine with fewer cores the threads take turns (each holding its blocks meanwhile) "
             "as they would run at once on 64 cores. *Uncapped* is the same on a pool without a "
             "cap, for comparison. *Ops/s*: allocations and frees of all threads together per "
             "second. *Waited*: the share of allocations that waited at the cap. *Wake*: the time "
             "from a free to the return of a waiting allocation it let through (waits that did "
             "not sleep until a free are left out; if another free came in between, the time is "
             "counted from that one, so a figure may be low, never high); median and 99th "
             "percentile, medians over the repetitions. *Timeouts*: allocations that gave up "
             "after 2 s, in all repetitions (expected: none).", ""]
            + table(["pool", "ops/s (median)", "min – max", "waited", "wake median µs",
                     "wake 99th percentile µs", "wakes measured", "timeouts"], rows) + [""])


def threads_section(results, subjects):
    parts = idle_section(results, subjects) + short_section(results, subjects) + crowd_section(
        results)
    return ["## Many threads", ""] + parts if parts else []


def checked_section(results):
    rows = checked_rows(results)
    if not rows:
        return []
    return (["## The checked build: checking on vs off", "",
             "*off* is the `bpool` subject, the library as released and as every other table and "
             "target measures it: built without `BPOOL_CHECKED`, so that the checks are not "
             "compiled in at all. *on* is `bpool_checked`: the same sources and options built with "
             "`-DBPOOL_CHECKED=ON` and no sanitizer (bpool_bench_checked, a binary of its own, "
             "since every translation unit must agree on `BPOOL_CHECKED`): double-free, size "
             "class and foreign-pointer checks, 0xCD / 0xDD fills. The ratio is what turning "
             "checking on costs.", ""]
            + table(["workload", "off (bpool) ns/op", "min – max", "on (bpool_checked) ns/op",
                     "min – max", "on / off"],
                    [[n, fmt_ns(off.median), off.spread(), fmt_ns(on.median), on.spread(),
                      fmt_ratio(on.median / off.median)] for n, off, on in rows]) + [""])


def address_section(results, descriptions):
    rows = address_rows(results)
    aligned = results.get(ALIGNED, {})
    if not rows and not aligned:
        return []
    out = ["## Blocks by address (pagemap) and 4 KiB-aligned buffers", ""]
    if rows:
        out += ["From bench_by_address.cpp, on `bpool` alone; each pair is two runs of one "
                "workload, in one process, one after the other. *churn_1k_direct*: the churn_1k "
                "churn with one 2 MiB block (above `largest_pooled_block`: served directly by "
                "upstream) live for the whole run, against none live. *churn_1k_bypass*: the same "
                "on a pool capped at 8 MiB with `exhaustion::bypass`, with one 64 KiB block that "
                "the policy served from upstream (the pool was at its cap) live, against none "
                "(before the pagemap, such a block sent every free down a locked slow path). "
                "*Outside the classes*: `stats().large_live_bytes + stats().bypass_live_bytes` at "
                "the end of the variant's run. *churn_1k_unsized*: the churn giving every block "
                "back with `deallocate_unsized(p)`, against `deallocate(p, n)` (both called on "
                "the `pool_resource`).", ""]
        table_rows = []
        for w, what, base, var, goal in rows:
            r = var.median / base.median
            outside = var.counters.get("outside_live_bytes")
            table_rows.append([f"{w}: {what}", fmt_ns(base.median), base.spread(),
                               fmt_ns(var.median), var.spread(), fmt_ratio(r), f"≤ {goal:.2f}",
                               goal_verdict(r, goal, ranges_overlap(base, var)),
                               fmt_bytes(outside) if outside else "–"])
        out += table(["pair", "baseline ns/op", "min – max", "variant ns/op", "min – max",
                      "variant / baseline", "goal", "verdict", "outside the classes"], table_rows)
        out.append("")
    if aligned:
        bp = aligned.get("bpool")
        out += [f"*buffer_64k_a4k*: {descriptions.get(ALIGNED[0], '')}. Each subject through its "
                "memory_resource: bpool `pool_resource::allocate(65536, 4096)`, mimalloc "
                "`mi_malloc_aligned` / `mi_free_size_aligned` (`bpool::mimalloc_resource`), glibc "
                "`aligned_alloc` / `free` (the aligned `operator new` / `delete` behind "
                "`new_delete_resource`). *Pooled*: the share of bpool's allocations served by a "
                "size class (1.00: every buffer came from the pool's cache, none from upstream).",
                ""]
        table_rows = []
        for s in ordered(aligned, SUBJECTS):
            f = aligned[s]
            if f.median is None:
                if f.error:
                    table_rows.append([s, f"not run: {f.error}", "–", "–", "–"])
                continue
            pooled = f.counters.get("pooled")
            table_rows.append([s, fmt_ns(f.median), f.spread(),
                               fmt_ratio(bp.median / f.median if bp and bp.median else None),
                               fmt_ratio(pooled) if pooled is not None else "–"])
        out += table(["subject", "ns/op (median)", "min – max", "bpool / subject", "pooled"],
                     table_rows) + [""]
    return out


def wait_section(results):
    fig = results.get(("wait_wake", ""), {}).get("bpool")
    if fig is None or "wake_median_us" not in fig.counters:
        return []
    c = fig.counters
    return (["## The wait path", "",
             "A request waits at the cap of a pool that holds one 4 KiB block; another thread "
             "gives the block back; the time from that release to the waiter's return, over 400 "
             "rounds per repetition (medians over the repetitions).", ""]
            + table(["median µs", "99th percentile µs", "max µs"],
                    [[f"{c['wake_median_us']:.1f}", f"{c['wake_p99_us']:.1f}",
                      f"{c['wake_max_us']:.0f}"]]) + [""])


def burst_section(bursts, out_dir):
    if not bursts:
        return []
    order = ["bpool_capped", "bpool", "mimalloc", "glibc", "jemalloc", "tcmalloc", "std_sync",
             "boost_sync"]
    rows = []
    for s in ordered(bursts, order):
        b = bursts[s]
        cap = f"{b['capacity'] / MIB:.0f} MiB, wait" if b.get("capacity") else "unbounded"
        waits = b.get("waits")
        rows.append([s, cap, fmt_mib(b["peak_live_bytes"]), f"{b['peak_live_blocks']:,}",
                     fmt_mib(b["peak_rss_bytes"]), fmt_mib(b["baseline_rss_bytes"]),
                     f"{b['total_s']:.2f}", f"{b['admitted_s']:.2f}",
                     "–" if waits is None else f"{waits:,}", b["corrupted"]])
    out = ["## The burst", ""]
    any_b = next(iter(bursts.values()))
    out.append(
        f"{any_b['connections']:,} connections arrive at once; {any_b['handlers']} handler threads "
        f"admit them: each takes a {any_b['buffer_bytes'] // 1024} KiB buffer, writes all of it, "
        f"and a completion thread gives it back {any_b['hold_ms']} ms after it was admitted. "
        f"bpool_capped is capped at 64 MiB with `exhaustion::wait`; every other subject is "
        f"unbounded. One process per subject: *peak RSS* is that process's peak resident memory "
        f"(`getrusage`'s ru_maxrss, the kernel's VmHWM; including "
        f"its baseline, shown apart), *peak live* the highest sum of buffers handed out and not "
        f"yet given back. *Total*: until the last buffer is given back; *admitted*: until the "
        f"last connection got its buffer.")
    out.append("")
    out += table(["subject", "cap", "peak live MiB", "peak live buffers", "peak RSS MiB",
                  "baseline RSS MiB", "total s", "admitted s", "waits", "corrupted"], rows)
    out.append("")
    traces = {s: bursts[s]["trace"] for s in ("bpool_capped", "mimalloc")
              if s in bursts and os.path.exists(bursts[s]["trace"])}
    if len(traces) == 2:
        png = plot("plot_burst.gp", os.path.join(out_dir, "burst.png"),
                   {"capped": traces["bpool_capped"], "peer": traces["mimalloc"],
                    "cap_mib": str(bursts["bpool_capped"]["capacity"] // MIB)})
        if png:
            out += ["![live bytes during the burst](burst.png)", ""]
    return out


SMALL_ORDER = ["bpool", "mimalloc", "glibc", "jemalloc", "tcmalloc", "std_sync", "boost_sync"]


def small_section(small):
    if not small:
        return []
    rows = []
    for s in ordered(small, SMALL_ORDER):
        b = small[s]
        req, rss, up = b["requested_bytes"], b["resident_bytes"], b.get("upstream_bytes")
        rows.append([s, fmt_mib(req), fmt_mib(rss), fmt_ratio(rss / req if req else None),
                     fmt_mib(up), fmt_ratio(rss / up if up else None)])
    any_b = next(iter(small.values()))
    out = ["## Small blocks: resident memory", "",
           f"{any_b['blocks']:,} blocks of random sizes {any_b['min_size']}–{any_b['max_size']} B "
           f"(the same sizes for every subject), every byte written, all live at once. One process "
           f"per subject: *RSS* is VmRSS after the allocations minus VmRSS before the subject was "
           f"made, so it counts what the allocator keeps resident (padding and metadata it "
           f"touches) and not address space it reserves but never touches. *Requested*: the sum "
           f"of the sizes; *upstream*: what bpool holds from its upstream (glibc).", ""]
    out += table(["subject", "requested MiB", "RSS MiB", "RSS / requested", "upstream MiB",
                  "RSS / upstream"], rows)
    return out + [""]


def real_programs_section(raw):
    """The table of benchmarks/real_programs.py, if scripts/bench ran it."""
    table = read(os.path.join(raw, "real_programs.md")).strip()
    if not table:
        return []
    return ["## Real programs under LD_PRELOAD", "",
            "Unmodified programs from Debian's packages (and one multithreaded program that "
            "knows nothing of bpool) under glibc, mimalloc, jemalloc and tcmalloc (each by "
            "`LD_PRELOAD`) and bpool (`libbpool_preload.so`): medians of the runs, the "
            "allocators alternating within each round (`benchmarks/real_programs.py`). The "
            "capped row runs bpool capped with `wait` below the program's demand.", "",
            table, ""]


def others_section(others):
    if not others:
        return []
    out = []
    pairs = stream_pairs(others)
    if pairs:
        rows = []
        for (task, size), figs in sorted(pairs.items()):
            std, ours = figs.get("std_ostringstream"), figs.get("bpool_ostream")
            r = ours.median / std.median if ours and std and std.median else None
            rows.append([task, fmt_size(size),
                         fmt_ns(std.median) if std else "–", std.spread() if std else "–",
                         fmt_ns(ours.median) if ours else "–", ours.spread() if ours else "–",
                         fmt_ratio(r)])
        out += ["## Stream formatting: bpool::ostream vs std::ostringstream", "",
                "From bench_streams.cpp: each op builds a fresh stream, writes about the given "
                "amount of text (*format*: log lines with numbers; *append*: 32-byte pieces) and "
                "destroys it. `bpool::ostream` draws from a default `bpool::pool_resource`; "
                "`std::ostringstream` from the global heap (glibc). Not crossed with the other "
                "subjects, so the ratio is to std::ostringstream (below 1: bpool faster).", ""]
        out += table(["task", "text", "std::ostringstream ns", "min – max", "bpool::ostream ns",
                      "min – max", "bpool / std"], rows) + [""]
    rest = {n: f for n, f in others.items() if not STREAM_NAME.match(n)}
    if rest:
        rows = [[name, fmt_ns(f.median), f.spread(), fmt_ns(f.stddev)]
                for name, f in sorted(rest.items())]
        out += ["## Other benchmarks", ""]
        out += table(["benchmark", "ns/op (median)", "min – max", "stddev"], rows) + [""]
    return out


# ----------------------------------------------------------------------------------------------
# Plots and summary


def plot(script, png, variables):
    """Runs gnuplot on benchmarks/<script> with `variables`; returns the PNG path or None."""
    if not shutil.which("gnuplot"):
        return None
    args = ["gnuplot"]
    for name, value in {**variables, "outfile": png}.items():
        args += ["-e", f"{name}='{value}'" if not value.isdigit() else f"{name}={value}"]
    args.append(os.path.join(HERE, script))
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"report: gnuplot {script} failed: {done.stderr.strip()}", file=sys.stderr)
        return None
    return png


def summary(results, others, bursts, small, target_rows):
    peers = [s for s in ("mimalloc", "glibc", "jemalloc", "tcmalloc", "std_sync", "boost_sync")
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
    print("\n== targets")
    for t, verdict, detail in target_rows:
        print(f"[{verdict}] {t}: {detail}")


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
    if not results and not bursts and not small:
        sys.exit(f"report: no results in {raw}")
    subjects = ordered({s for figs in results.values() for s in figs}, SUBJECTS)
    peers = [s for s in subjects if s != CHECKED]  # bpool_checked has its own section
    load = machine_load(args, raw, results)
    reasons = load["reasons"]
    verdicts = peer_verdicts(results, bool(reasons))
    target_rows = targets(results, bursts, bool(reasons))
    notes = read(os.path.join(raw, "notes")).strip()
    lines = header(args, contexts, load, busy_banner(reasons))
    lines += verdicts_section(verdicts)
    lines += targets_section(target_rows)
    lines += matrix_section(results, peers)
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
              "(`std::pmr::new_delete_resource()`), the std and Boost pools; bpool_bench_mimalloc "
              "runs `bpool::mimalloc_resource` (a separate binary: Debian's libmimalloc.so "
              "exports malloc, so any binary that links it runs wholly on mimalloc). jemalloc "
              "and tcmalloc are bpool_bench's malloc subject run again under `LD_PRELOAD`; the "
              "binary checks that `malloc` resolves into the preloaded library (header above) "
              "and refuses to run otherwise. bpool_bench_checked runs bpool_checked (bpool built "
              "with `-DBPOOL_CHECKED=ON`, no sanitizer) on the churns and the 32 KiB buffer.",
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
    summary(results, others, bursts, small, target_rows)
    print_verdicts(verdicts, reasons)
    print(f"\nreport: {path}")


if __name__ == "__main__":
    main()
