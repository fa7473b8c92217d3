"""What a scripts/bench report concludes: whether the machine was quiet enough to trust it, bpool
against each peer, and bpool's own performance targets. Used by report.py. Standard library
only."""

import re
import statistics
import time

from report_data import (ADDRESS_PAIRS, CHECKED, IDLE_GOAL, MIB, REFERENCE, SUBJECTS, fmt_ns,
                         idle_ratio, idle_runs, label, overlap, ratio, table, workload_keys)

# The machine counts as busy when its load at the start or at the end of the run is above the
# number of cores: other work then takes CPU time from the benchmark's threads. The load is the
# runnable threads of other processes (sampled for 2 s while the suite runs nothing) plus the one
# thread of a benchmark: the 1-minute load average would count the build that just ran and, at
# the end, the suite's own workloads of 8 to 64 threads, and say "busy" on every quiet machine.
# Or when the repetitions of a workload disagree: (max - min) / median over the repetitions, the
# median of that over every (workload, subject) row, above SPREAD_LIMIT. Most rows are
# single-threaded and repeat within a few percent on a quiet machine (the multi-threaded ones
# within 10-20 %, but they are few, and the median leaves them out); on a loaded one preemption
# stretches some repetitions and not others: 17 % (quick) and 39 % (full) at a load of 13-17 on 2
# cores (docs/decisions.md).
SPREAD_LIMIT = 0.15
OWN_THREADS = 1
# The peers bpool is set against in the verdicts, in report order.
PEERS = [s for s in SUBJECTS if not s.startswith("bpool")]


# ----------------------------------------------------------------------------------------------
# Was the machine busy?


def others_load(seconds=2.0, samples=20):
    """Returns the mean number of runnable threads of other processes over `seconds`: the running
    count of /proc/loadavg ("3/95"), less the one reading it; None where there is no /proc."""
    total = 0
    for _ in range(samples):
        try:
            with open("/proc/loadavg") as f:
                total += int(f.read().split()[3].split("/")[0]) - 1
        except (OSError, IndexError, ValueError):
            return None
        time.sleep(seconds / samples)
    return total / samples


def parse_load(text):
    """Returns the number written by scripts/bench's others_load, or None."""
    try:
        return float(text.split()[0])
    except (IndexError, ValueError):
        return None


def median_spread(results):
    """Returns the median over all rows of (max - min) / median of their repetitions, or None."""
    spreads = [(f.max - f.min) / f.median for figs in results.values() for f in figs.values()
               if f.median and f.min is not None and f.max is not None]
    return statistics.median(spreads) if spreads else None


def busy_reasons(others, cores, spread):
    """Returns why the machine counts as busy (an empty list if it does not). others: the runnable
    threads of other work at the start and at the end (None where unknown); spread:
    median_spread."""
    reasons = []
    high = [(when, n) for when, n in zip(("at the start", "at the end"), others)
            if n is not None and n + OWN_THREADS > cores]
    if high:
        reasons.append("other work kept " + " and ".join(f"{n:.1f} threads runnable {when}"
                                                         for when, n in high)
                       + f": with the benchmark's own, a load above the {cores} cores")
    if spread is not None and spread > SPREAD_LIMIT:
        reasons.append(f"the repetitions disagreed: (max - min) / median was {spread * 100:.0f} % "
                       f"on the median row, above {SPREAD_LIMIT * 100:.0f} %")
    return reasons


def busy_banner(reasons):
    """The warning put at the top of the report (Markdown) when the machine was busy."""
    if not reasons:
        return []
    return [f"> **The machine was busy**: {'; '.join(reasons)}. The verdicts below are "
            "unreliable (marked so): rerun `scripts/bench` on a quiet machine.", ""]


# ----------------------------------------------------------------------------------------------
# bpool against each peer


def bpool_ratios(results, peer):
    """[(workload, bpool's median / peer's)] over the workloads both ran, in report order."""
    pairs = ((k, ratio(results[k], "bpool", peer)) for k in workload_keys(results))
    return [(k, r) for k, r in pairs if r is not None]


def peer_verdicts(results, unreliable):
    """Returns one line per peer: "bpool vs <peer>: faster on N of M workloads", counted on the
    medians of the workloads both ran, and the workloads where bpool was not faster."""
    lines = []
    for peer in PEERS:
        pairs = bpool_ratios(results, peer)
        compared = len(pairs)
        slower = [label(k) for k, r in pairs if r >= 1.0]
        if not compared:
            continue
        line = f"bpool vs {peer}: faster on {compared - len(slower)} of {compared} workloads"
        if unreliable:
            line += " (unreliable)"
        if slower:
            line += "; not on " + ", ".join(slower)
        lines.append(line)
    return lines


def verdicts_section(lines):
    if not lines:
        return []
    return (["## Verdicts", "",
             "bpool against each peer: on how many workloads of *All workloads* its median ns/op "
             "was lower.", ""] + [f"- {line}" for line in lines] + [""])


# ----------------------------------------------------------------------------------------------
# Targets: (target, verdict, detail, timed); timed ones depend on the machine being quiet.


def checked_rows(results):
    """Returns [(label, off Figure, on Figure)] for the workloads run with checking on and off."""
    rows = []
    for k in workload_keys(results):
        off, on = results[k].get("bpool"), results[k].get(CHECKED)
        if off is not None and on is not None and off.median and on.median:
            rows.append((label(k), off, on))
    return rows


def address_rows(results):
    """Returns [(workload, what, baseline Figure, variant Figure, goal)] for the pairs of
    bench_by_address.cpp that ran (bpool alone: argument 0 the baseline, 1 the variant)."""
    rows = []
    for w, arg, what, goal in ADDRESS_PAIRS:
        base = results.get((w, f"{arg}:0"), {}).get("bpool")
        var = results.get((w, f"{arg}:1"), {}).get("bpool")
        if base is not None and var is not None and base.median and var.median:
            rows.append((w, what, base, var, goal))
    return rows


def ranges_overlap(a, b):
    """Returns whether the min-max ranges of Figures a and b overlap."""
    if None in (a.min, a.max, b.min, b.max):
        return False
    return a.min <= b.max and b.min <= a.max


def goal_verdict(r, goal, overlapping):
    if r <= goal:
        return "met"
    return "missed (ranges overlap)" if overlapping else "missed"


ALIGNED = ("buffer_64k_a4k", "")  # the 4 KiB-aligned 64 KiB buffer of bench_buffers.cpp


def peer_targets(results):
    """bpool at or below mimalloc's and tcmalloc's malloc on every workload; 3x faster than the
    std pool on churn."""
    out = []
    for peer in (REFERENCE, "tcmalloc"):
        pairs = bpool_ratios(results, peer)
        checked = len(pairs)
        misses = [f"{label(k)} ×{r:.2f}"
                  + (" (ranges overlap)" if overlap(results[k], "bpool", peer) else "")
                  for k, r in pairs if r > 1.0]
        if checked:
            out.append((f"bpool ns/op ≤ {peer} on every workload",
                        "met" if not misses else f"missed on {len(misses)} of {checked}",
                        "; ".join(misses) if misses else f"all {checked} workloads"))
    worst = None
    for k in workload_keys(results):
        r = ratio(results[k], "std_sync", "bpool") if "churn" in k[0] else None
        if r is not None and (worst is None or r < worst[1]):
            worst = (label(k), r)
    if worst:
        out.append(("bpool ≥ 3× faster than std::pmr::synchronized_pool_resource on churn",
                    "met" if worst[1] >= 3 else "missed",
                    f"smallest speed-up {worst[1]:.1f}× ({worst[0]})"))
    return out


def capped_targets(results):
    """The cap's accounting: capped within 5 % of uncapped on every workload, and within 20 %
    on two threads or more (where waking and counting across threads costs more), shown apart."""
    def multi_threaded(k):
        threads = re.search(r"threads:(\d+)", k[1])
        return k[0] == "handoff" or (threads is not None and int(threads.group(1)) >= 2)

    out = []
    for name, limit, keep in (
            ("capped within 5 % of uncapped, every workload", 1.05, lambda k: True),
            ("capped within 20 % of uncapped, two or more threads", 1.20, multi_threaded)):
        worst = None
        for k in filter(keep, workload_keys(results)):
            r = ratio(results[k], "bpool_capped", "bpool")
            if r is not None and (worst is None or r > worst[1]):
                worst = (label(k), r, overlap(results[k], "bpool_capped", "bpool"))
        if worst:
            out.append((name, "met" if worst[1] <= limit else "missed",
                        f"worst ×{worst[1]:.2f} ({worst[0]}"
                        + (", ranges overlap)" if worst[2] else ")")))
    return out


def timed_targets(results):
    out = peer_targets(results) + capped_targets(results)
    # The targets are the off build's; what turning checking on costs, for the record.
    rows = checked_rows(results)
    if rows:
        out.append(("checking costs nothing when off: every target here is measured on the off "
                    "build (bpool); turning it on costs",
                    "info", "; ".join(f"{n} ×{on.median / off.median:.2f}" for n, off, on in rows)))
    # Blocks by address: a live direct or bypass block costs the other frees at most 5 %;
    # deallocate_unsized at most 15 % over deallocate.
    for w, what, base, var, goal in address_rows(results):
        r = var.median / base.median
        out.append((f"{what} ≤ {goal:.2f}", goal_verdict(r, goal, ranges_overlap(base, var)),
                    f"×{r:.2f} ({fmt_ns(var.median)} / {fmt_ns(base.median)} ns)"))
    counts, idle = idle_runs(results)
    by = idle.get("bpool", {})
    ratios = [(n, idle_ratio(by, n)) for n in counts if n and idle_ratio(by, n) is not None]
    if ratios:
        n, worst = max(ratios, key=lambda t: t[1])
        goal = f"{(IDLE_GOAL - 1) * 100:.0f} %"
        out.append((f"a busy thread beside idle threads within {goal} of none (bpool)",
                    goal_verdict(worst, IDLE_GOAL, ranges_overlap(by[0], by[n])),
                    "; ".join(f"{m:,} idle ×{r:.2f}" for m, r in ratios)
                    + f" ({fmt_ns(by[0].median)} ns/op with none)"))
    wake = results.get(("wait_wake", ""), {}).get("bpool")
    if wake is not None and "wake_p99_us" in wake.counters:
        p99 = wake.counters["wake_p99_us"]
        out.append(("wait: a waiter returns well under 1 ms after a release (p99)",
                    "met" if p99 < 1000 else "missed",
                    f"median {wake.counters['wake_median_us']:.1f} µs, p99 {p99:.1f} µs"))
    return out


def memory_targets(results):
    out = []
    bp = results.get(ALIGNED, {}).get("bpool")
    if bp is not None and "pooled" in bp.counters:
        pooled = bp.counters["pooled"]
        out.append(("4 KiB-aligned 64 KiB buffers come from a size class (bpool)",
                    "met" if pooled >= 0.999 else "missed", f"{pooled:.1%} of allocations pooled"))
    held = []
    for k in workload_keys(results):
        f = results[k].get("bpool")
        if k[0].startswith("churn") and f is not None and "held_ratio" in f.counters:
            held.append((label(k), f.counters["held_ratio"], f.counters.get("peak_held_ratio"),
                         f.counters.get("class_floor_ratio")))
    if held:
        worst = max(held, key=lambda h: h[1])
        out.append(("held from upstream ≤ 1.3 × peak live (steady-state churn)",
                    "met" if worst[1] <= 1.3 else "missed",
                    "; ".join(f"{n}: ×{h:.2f} (peak held ×{p:.2f}; size-class floor "
                              f"×{fl:.2f})" if fl else f"{n}: ×{h:.2f} (peak held ×{p:.2f})"
                              for n, h, p, fl in held)))
    return out


def burst_targets(bursts):
    capped = bursts.get("bpool_capped")
    if not capped or not capped.get("capacity"):
        return []
    cap = capped["capacity"] / MIB
    live, rss = capped["peak_live_bytes"] / MIB, capped["peak_rss_bytes"] / MIB
    # The RSS allowed: the cap plus 16 MiB for the binary, its threads and everything else.
    limit = cap + 16
    out = [(f"burst: bpool peak live ≤ the cap ({cap:.0f} MiB)",
            "met" if live <= cap else "missed", f"{live:.1f} MiB"),
           (f"burst: bpool peak RSS ≤ {limit:.0f} MiB", "met" if rss <= limit else "missed",
            f"{rss:.1f} MiB" + ("" if rss <= limit else f" ({rss - limit:.1f} MiB over)"))]
    full = capped["connections"] * capped["buffer_bytes"]
    peers = {s: b["peak_live_bytes"] for s, b in bursts.items() if not s.startswith("bpool")}
    if peers:
        low = [s for s, v in peers.items() if v < 0.95 * full]
        out.append((f"burst: unbounded peers reach all {capped['connections']:,} x "
                    f"{capped['buffer_bytes'] // 1024} KiB = {full / MIB:.1f} MiB at once",
                    "met" if not low else f"missed by {', '.join(low)}",
                    ", ".join(f"{s} {v / MIB:.1f} MiB" for s, v in peers.items())))
    return out


# The fast path's targets, in instructions per allocate + deallocate pair (callgrind).
INSTRUCTION_GOALS = {"churn_1k": 60, "churn_64k": 90}


def instruction_targets(counts):
    """bpool's instructions per pair at or under INSTRUCTION_GOALS; capped costs what uncapped
    does. Counts do not depend on the machine's load."""
    out = []
    bp, capped = counts.get("bpool", {}), counts.get("bpool_capped", {})
    for loop, goal in INSTRUCTION_GOALS.items():
        n = bp.get(loop)
        if n is not None:
            out.append((f"≤ {goal} instructions per allocate + deallocate pair on {loop} (bpool)",
                        "met" if n <= goal else "missed",
                        f"{n:.0f}" + (f" (capped {capped[loop]:.0f})" if loop in capped else "")))
    return out


def targets(results, bursts, unreliable, counts=None):
    """Returns [(target, verdict, detail)]; when `unreliable`, the verdicts of the targets on
    time say so (those on memory and instructions do not depend on the load)."""
    mark = " (unreliable)" if unreliable else ""
    return ([(t, v + mark, d) for t, v, d in timed_targets(results)]
            + instruction_targets(counts or {}) + memory_targets(results)
            + burst_targets(bursts))


def targets_section(rows):
    return (["## Targets", "",
             "The performance targets bpool is built to meet (README), checked against the "
             "medians below, on the `bpool` subject: the build with checking off (the checked "
             "build has its own section). \"Ranges overlap\": the min – max ranges of the two "
             "subjects overlap, so the difference is within the noise of this run.", ""]
            + table(["target", "verdict", "measured"], rows) + [""])
