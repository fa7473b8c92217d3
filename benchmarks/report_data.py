#!/usr/bin/env python3
"""The data of a scripts/bench report: loading the raw results, the machine, formatting. Used by
report.py. Standard library only."""

import glob
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys


# Report order; subjects not listed (a new peer) follow in the order first seen.
SUBJECTS = ["bpool", "bpool_capped", "bpool_checked", "mimalloc", "mimalloc_resource", "glibc",
            "jemalloc", "tcmalloc", "std_sync", "std_unsync", "boost_sync", "boost_unsync"]
WORKLOADS = ["churn_1k", "churn_64k", "buffer_32k", "buffer_1m", "buffer_64k_a4k", "handoff",
             "threads_churn", "idle_threads", "short_threads", "pmr_vector", "pmr_string",
             "pmr_map", "string_appends", "buffer_writes"]
REFERENCE = "mimalloc"
CHECKED = "bpool_checked"  # bpool built with BPOOL_CHECKED=ON (bpool_bench_checked)
MIB = 1 << 20
HERE = os.path.dirname(os.path.abspath(__file__))


# ----------------------------------------------------------------------------------------------
# Loading


class Figure:
    """One benchmark's result: median, min, max and stddev of ns/op over its repetitions."""

    def __init__(self):
        self.median = self.min = self.max = self.stddev = None
        self.repetitions = 0
        self.counters = {}
        self.samples = []  # ns/op of each repetition
        self.totals = {}  # each counter summed over the repetitions
        self.error = None  # the message of a run that stopped with SkipWithError

    def finish(self):
        """Fills what the aggregates did not give from the repetitions themselves."""
        if self.samples:
            if self.min is None:
                self.min, self.max = min(self.samples), max(self.samples)
            if self.median is None:
                self.median = statistics.median(self.samples)
            self.repetitions = max(self.repetitions, len(self.samples))

    def spread(self):
        if self.min is not None and self.max is not None:
            return f"{fmt_ns(self.min)} – {fmt_ns(self.max)}"
        return "–"


def ns_of(entry):
    scale = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}[entry.get("time_unit", "ns")]
    return float(entry["real_time"]) * scale


COUNTER_KEYS = ("peak_live", "pool_peak_live", "cached", "held", "peak_held", "held_ratio",
                "peak_held_ratio", "class_floor_ratio", "wake_median_us", "wake_p99_us",
                "wake_max_us", "outside_live_bytes", "pooled", "wake_samples", "waited_share",
                "timeouts")
# Workloads reported in their own section rather than as ns/op against the peers.
SEPARATE = ("wait_wake", "async_wake", "churn_1k_direct", "churn_1k_bypass", "churn_1k_unsized",
            "cap_64_threads")
# The workloads of threads coming and going (bench_threads.cpp, bench_wait.cpp), and the goal for a
# busy thread beside idle ones: within 10 % of its time beside none.
IDLE, SHORT, CROWD = "idle_threads", "short_threads", "cap_64_threads"
IDLE_GOAL = 1.10
# The pairs of bench_by_address.cpp, bpool alone: (workload, argument, what its run with argument 1
# measures against its run with 0, goal for their ratio).
ADDRESS_PAIRS = (
    ("churn_1k_direct", "direct_live",
     "churn_1k with a 2 MiB direct block live / with none", 1.05),
    ("churn_1k_bypass", "bypass_live",
     "churn_1k (cap, `bypass`) with a 64 KiB bypass block live / with none", 1.05),
    ("churn_1k_unsized", "unsized",
     "churn_1k freeing by `deallocate_unsized(p)` / by `deallocate(p, n)`", 1.15),
)


# scripts/bench's variants, which name its output files bench_<variant>_<workload>.json.
VARIANTS = ("main", "mimalloc_resource", "checked", "mimalloc", "jemalloc", "tcmalloc")


def variant_of(filename):
    """Returns the variant of a bench_<variant>_<workload>.json file name: the longest known
    variant it starts with (mimalloc_resource, not mimalloc), else its first word."""
    rest = filename[len("bench_"):]
    known = [v for v in VARIANTS if rest.startswith(v + "_")]
    return max(known, key=len) if known else rest.split("_")[0]


def load_benchmarks(raw):
    """Returns (results, contexts, descriptions, others).

    results: {(workload, params): {subject: Figure}}; contexts: {variant: context};
    descriptions: {workload: text}; others: {name: Figure} for benchmarks that are not
    "<workload>/<subject>" (e.g. the stream benchmarks)."""
    results, contexts, descriptions, others = {}, {}, {}, {}
    for path in sorted(glob.glob(os.path.join(raw, "bench_*.json"))):
        with open(path) as f:
            data = json.load(f)
        context = data.get("context", {})
        contexts.setdefault(variant_of(os.path.basename(path)), context)
        subjects = set(context.get("subjects", "").split())
        for key, value in context.items():
            if key.startswith("workload:"):
                descriptions[key[len("workload:"):]] = value
        for entry in data.get("benchmarks", []):
            name = entry.get("run_name", entry["name"])
            parts = name.split("/")
            if len(parts) >= 2 and parts[1] in subjects:
                params = "/".join(p for p in parts[2:] if p not in ("real_time", "manual_time")
                                  and not p.startswith("iterations:"))
                fig = results.setdefault((parts[0], params), {}).setdefault(parts[1], Figure())
            else:
                fig = others.setdefault(name, Figure())
            add_entry(fig, entry)
    for fig in [f for figs in results.values() for f in figs.values()] + list(others.values()):
        fig.finish()
    return results, contexts, descriptions, others


def add_entry(fig, entry):
    if entry.get("error_occurred"):  # no time to take (e.g. a subject that broke the contract)
        fig.error = entry.get("error_message") or "error"
        return
    kind = entry.get("run_type", "iteration")
    if kind == "aggregate":
        which = entry.get("aggregate_name")
        if which in ("median", "min", "max", "stddev"):
            setattr(fig, which, ns_of(entry))
        if which == "median":
            fig.counters = {k: entry[k] for k in COUNTER_KEYS if k in entry}
        fig.repetitions = max(fig.repetitions, int(entry.get("repetitions", 0)))
    elif kind == "iteration":
        fig.samples.append(ns_of(entry))
        for k in COUNTER_KEYS:
            if k in entry:
                fig.totals[k] = fig.totals.get(k, 0) + entry[k]
        if int(entry.get("repetitions", 1)) <= 1:  # no aggregates follow (a smoke run)
            fig.counters = {k: entry[k] for k in COUNTER_KEYS if k in entry}


def load_bursts(raw):
    bursts = {}
    for path in sorted(glob.glob(os.path.join(raw, "burst_*.json"))):
        with open(path) as f:
            text = f.read().strip()
        if text:
            data = json.loads(text)
            data["trace"] = path[:-len(".json")] + ".dat"
            bursts[data["subject"]] = data
    return bursts


def load_small(raw):
    """Returns {subject: object} from the small_<subject>.json of bpool_small_blocks; {} if none."""
    small = {}
    for path in sorted(glob.glob(os.path.join(raw, "small_*.json"))):
        with open(path) as f:
            text = f.read().strip()
        if text:
            data = json.loads(text)
            small[data["subject"]] = data
    return small


INSTRUCTION_LOOPS = ["fixed_64", "churn_1k", "churn_64k"]


def load_instructions(raw):
    """Returns {subject: {loop: instructions per pair}} from the instructions_<variant>.json of
    benchmarks/instructions.py, and {loop: the loop's own instructions per step}; {} if none."""
    counts, loop_cost = {}, {}
    for path in sorted(glob.glob(os.path.join(raw, "instructions_*.json"))):
        with open(path) as f:
            data = json.load(f)
        counts.update(data["subjects"])
        # Every binary runs the same loop; the figures shown are the main binary's.
        if not loop_cost or path.endswith("instructions_main.json"):
            loop_cost = data["loop_cost"]
    return counts, loop_cost


# ----------------------------------------------------------------------------------------------
# Machine and versions


def read(path, default=""):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def run(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def cpu_model():
    for line in read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def memory_gib():
    m = re.search(r"MemTotal:\s+(\d+) kB", read("/proc/meminfo"))
    return f"{int(m.group(1)) / (1 << 20):.1f} GiB" if m else "unknown"


def os_name():
    m = re.search(r'PRETTY_NAME="([^"]+)"', read("/etc/os-release"))
    return m.group(1) if m else platform.system()


def package_version(name):
    return run(["dpkg-query", "-W", "-f=${Version}", name]) if shutil.which("dpkg-query") else ""


def git_revision(root):
    rev = run(["git", "-C", root, "rev-parse", "--short", "HEAD"])
    if rev and run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"]):
        rev += " (with uncommitted changes)"
    return rev or "unknown"


# ----------------------------------------------------------------------------------------------
# Formatting


def fmt_ns(ns):
    if ns is None:
        return "–"
    if ns >= 10000:
        return f"{ns:,.0f}"
    if ns >= 100:
        return f"{ns:.0f}"
    return f"{ns:.1f}"


def fmt_ratio(r):
    return "–" if r is None else f"{r:.2f}"


def fmt_mib(b):
    return "–" if b is None else f"{b / MIB:.1f}"


def fmt_bytes(b):
    if b is None:
        return "–"
    return f"{b / MIB:.2f} MiB" if b >= MIB else f"{b / 1024:.0f} KiB"


def ordered(names, order):
    known = [n for n in order if n in names]
    return known + sorted(n for n in names if n not in order)


def workload_keys(results):
    """Returns the (workload, params) keys compared across subjects, in report order."""
    def key(k):
        w, params = k
        threads = re.search(r"threads:(\d+)", params)
        return (WORKLOADS.index(w) if w in WORKLOADS else len(WORKLOADS), w,
                int(threads.group(1)) if threads else 0, params)
    return sorted((k for k in results if k[0] not in SEPARATE), key=key)


def idle_runs(results):
    """Returns (counts, {subject: {idle threads: Figure}}) for the runs of idle_threads."""
    runs = {}
    for (w, params), figs in results.items():
        m = re.fullmatch(r"idle:(\d+)", params)
        if w == IDLE and m:
            for s, fig in figs.items():
                runs.setdefault(s, {})[int(m.group(1))] = fig
    return sorted({n for by in runs.values() for n in by}), runs


def idle_ratio(by, n):
    """Returns the median with n idle threads over the median with none, or None."""
    base, fig = by.get(0), by.get(n)
    if base is None or fig is None or not base.median or fig.median is None:
        return None
    return fig.median / base.median


def crowd_runs(results):
    """Returns {True: Figure, False: Figure} for cap_64_threads capped and uncapped (bpool)."""
    runs = {}
    for (w, params), figs in results.items():
        m = re.search(r"capped:(\d)", params)
        if w == CROWD and m and "bpool" in figs:
            runs[m.group(1) != "0"] = figs["bpool"]
    return runs


def fmt_rate(ns):
    """ops/s of one op every `ns` nanoseconds."""
    return "–" if not ns else f"{1e9 / ns:,.0f}"


def label(k):
    w, params = k
    return w + (" " + params.replace("threads:", "×") if params else "")


def ratio(figs, subject, reference=REFERENCE):
    a, b = figs.get(subject), figs.get(reference)
    if a is None or b is None or a.median is None or not b.median:
        return None
    return a.median / b.median


def overlap(figs, a, b):
    """Returns whether the min-max ranges of subjects a and b overlap: a difference between
    their medians is then within the noise of this run."""
    fa, fb = figs.get(a), figs.get(b)
    if None in (fa, fb) or None in (fa.min, fa.max, fb.min, fb.max):
        return False
    return fa.min <= fb.max and fb.min <= fa.max


def table(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out


STREAM_NAME = re.compile(r"BM_(\w+?)_(std_ostringstream|bpool_ostream)/(\d+)$")


def stream_pairs(others):
    """Returns {(task, bytes): {"std_ostringstream": Figure, "bpool_ostream": Figure}} for the
    benchmarks of bench_streams.cpp."""
    pairs = {}
    for name, fig in others.items():
        m = STREAM_NAME.match(name)
        if m:
            pairs.setdefault((m.group(1), int(m.group(3))), {})[m.group(2)] = fig
    return pairs


def fmt_size(n):
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB" if n >= 1024 else f"{n} B"


def usable_cpus():
    """The CPUs this process may run on (its affinity mask, as nproc and the benchmarks count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count()


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
