#!/usr/bin/env python3
"""The report's sections on memory: what the pool holds in the churn, the burst, small blocks,
real programs under LD_PRELOAD, and the benchmarks outside the subject matrix. Used by
report.py."""

import os

from report_data import (MIB, STREAM_NAME, fmt_bytes, fmt_mib, fmt_ns, fmt_ratio, fmt_size,
                         label, ordered, plot, read, stream_pairs, table, workload_keys)


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
