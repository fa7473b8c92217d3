#!/usr/bin/env python3
"""Counts, with callgrind, the instructions of one allocate + deallocate pair of each subject of
one bpool_instructions binary, on its three loops; writes them as JSON. Standard library only.

    python3 benchmarks/instructions.py --binary build/bench/benchmarks/bpool_instructions \\
        --json build/report/raw/instructions_main.json [--preload LIB --expect NAME] \\
        [--subjects REGEX] [--steps 100000,300000]

Each (subject, loop) runs twice under `valgrind --tool=callgrind`, with the two step counts; the
difference of the two totals, per step, is what one step costs with the set-up, the initial live
set and the exit left out. Less the same for the loop without an allocator (subject `none`), it
is what the allocator's allocate and deallocate cost together, the virtual calls included. The
counts are exact and do not depend on the machine's load, so the runs go in parallel.
"""

import argparse
import concurrent.futures
import json
import os
import re
import subprocess
import sys

LOOPS = ["fixed_64", "churn_1k", "churn_64k"]


def collected(binary, env, subject, loop, steps):
    """The instructions callgrind counted in one run of `binary`."""
    cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", binary,
           f"--subject={subject}", f"--loop={loop}", f"--steps={steps}"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    found = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
    if done.returncode != 0 or not found:
        sys.exit(f"instructions: {' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return int(found.group(1))


def per_step(pool, binary, env, subject, loop, steps):
    """A future of the instructions of one step of `loop` for `subject`."""
    runs = [pool.submit(collected, binary, env, subject, loop, n) for n in steps]
    return lambda: (runs[1].result() - runs[0].result()) / (steps[1] - steps[0])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", required=True)
    parser.add_argument("--json", required=True, help="where to write the counts")
    parser.add_argument("--preload", default="", help="a library for LD_PRELOAD")
    parser.add_argument("--expect", default="", help="the malloc the preload must make (checked)")
    parser.add_argument("--subjects", default="", help="a regex: only these subjects")
    parser.add_argument("--steps", default="100000,300000", help="the two step counts")
    args = parser.parse_args()
    steps = [int(n) for n in args.steps.split(",")]
    if len(steps) != 2 or steps[1] <= steps[0]:
        sys.exit("instructions: --steps takes two increasing counts")
    env = dict(os.environ)
    if args.preload:
        env["LD_PRELOAD"] = args.preload
    if args.expect:
        env["BPOOL_BENCH_EXPECT_MALLOC"] = args.expect
    listed = subprocess.run([args.binary, "--list"], env=env, capture_output=True, text=True,
                            check=True).stdout.split()
    subjects = [s for s in listed if not args.subjects or re.fullmatch(args.subjects, s)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        loop_cost = {l: per_step(pool, args.binary, env, "none", l, steps) for l in LOOPS}
        counts = {s: {l: per_step(pool, args.binary, env, s, l, steps) for l in LOOPS}
                  for s in subjects}
        loop_cost = {l: f() for l, f in loop_cost.items()}
        counts = {s: {l: round(f() - loop_cost[l], 1) for l, f in by.items()}
                  for s, by in counts.items()}
    with open(args.json, "w") as f:
        json.dump({"binary": os.path.basename(args.binary), "preload": args.preload,
                   "steps": steps, "loop_cost": loop_cost, "subjects": counts}, f, indent=1)
    for s, by in counts.items():
        print(f"instructions {s:18s} " + "  ".join(f"{l} {by[l]:7.1f}" for l in LOOPS))


if __name__ == "__main__":
    main()
