#!/usr/bin/env python3
"""The report's sections on time: every workload's ns/op against the peers, thread scaling, many
threads, the checked build, blocks by address and the wait path. Used by report.py."""

import os
import re

from report_data import (INSTRUCTION_LOOPS, REFERENCE, SHORT, crowd_runs, fmt_bytes, fmt_ns, fmt_rate, fmt_ratio,
                         idle_ratio, idle_runs, label, ordered, plot, ratio, table, usable_cpus,
                         workload_keys, SUBJECTS, IDLE_GOAL)
from report_verdicts import (ALIGNED, address_rows, checked_rows, goal_verdict, ranges_overlap)


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
                "memory_resource: bpool `pool_resource::allocate(65536, 4096)`, mimalloc_resource "
                "`mi_malloc_aligned` / `mi_free_size_aligned`, glibc, mimalloc, jemalloc and "
                "tcmalloc `aligned_alloc` / `free`. *Pooled*: the share of bpool's allocations served by a "
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
    rows = []
    for name, what in (("wait_wake", "blocking (`allocate`)"),
                       ("async_wake", "asynchronous (`async_allocate`)")):
        fig = results.get((name, ""), {}).get("bpool")
        if fig is None or "wake_median_us" not in fig.counters:
            continue
        c = fig.counters
        rows.append([what, f"{c['wake_median_us']:.1f}", f"{c['wake_p99_us']:.1f}",
                     f"{c['wake_max_us']:.0f}"])
    if not rows:
        return []
    return (["## The wait path", "",
             "A request waits at the cap of a pool that holds one 4 KiB block; another thread "
             "gives the block back; the time from that release to the waiter's return (blocking) "
             "or to its completion on bpool's completion thread (asynchronous), over 400 rounds "
             "per repetition (medians over the repetitions).", ""]
            + table(["request", "median µs", "99th percentile µs", "max µs"], rows) + [""])


def instructions_section(counts, loop_cost):
    """Callgrind's instructions per allocate + deallocate pair, every subject, three loops."""
    if not counts:
        return []
    ref = counts.get(REFERENCE, {})
    rows = []
    for s in ordered(counts, SUBJECTS):
        cells = []
        for loop in INSTRUCTION_LOOPS:
            n, r = counts[s].get(loop), ref.get(loop)
            shown = f" ({fmt_ratio(n / r)})" if n is not None and r and s != REFERENCE else ""
            cells.append("–" if n is None else f"{n:.0f}{shown}")
        rows.append([s] + cells)
    own = ", ".join(f"{l} {loop_cost[l]:.0f}" for l in INSTRUCTION_LOOPS if l in loop_cost)
    return (["## Instructions per allocate + deallocate pair (callgrind)", "",
             "Counted by `valgrind --tool=callgrind` (benchmarks/instructions.py), single thread, "
             "through `std::pmr::memory_resource*` for every subject (two virtual calls per pair "
             "included): exact and repeatable, whatever the machine's load. *fixed_64*: allocate "
             "64 B, touch, free; *churn_1k* / *churn_64k*: the churn workloads' steps (free a "
             "random block of the 1024 live, allocate one of a random size of 8 B–1 KiB / "
             "8 B–64 KiB in its place). Each figure is the difference of two runs of different "
             "lengths per step, less the loop's own instructions without an allocator "
             f"({own}). In parentheses: the ratio to mimalloc (its `malloc` / `free`).", ""]
            + table(["subject"] + INSTRUCTION_LOOPS, rows) + [""])

