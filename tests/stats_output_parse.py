#!/usr/bin/env python3
"""Parses bpool's stats outputs with real parsers: Python's json, and prometheus_client's parser of
the text exposition format (Debian's python3-prometheus-client, which scripts/test installs).

  stats_output_parse.py DUMP    runs the stats_output_dump program DUMP and checks what it prints
Exits 0 when both parse and agree, 1 otherwise, 77 (skipped) without prometheus_client.
"""
import json
import subprocess
import sys

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    print("prometheus_client is not installed (apt-get install python3-prometheus-client)")
    sys.exit(77)


def main(dump):
    out = subprocess.run([dump], check=True, capture_output=True, text=True).stdout
    first, _, exposition = out.partition("\n")
    stats = json.loads(first)
    families = {f.name: f for f in text_string_to_metric_families(exposition)}
    errors = []

    def expect(ok, message):
        if not ok:
            errors.append(message)

    def value(family, sample_name=None, labels=None):
        for s in families[family].samples:
            if (sample_name is None or s.name == sample_name) and (labels is None or s.labels == labels):
                return s.value
        raise KeyError(f"{family} {sample_name} {labels}")

    expect(value("bpool_live_bytes") == stats["live_bytes"], "live_bytes differs")
    expect(value("bpool_capacity_bytes") == stats["capacity"], "capacity differs")
    expect(families["bpool_allocations"].type == "counter", "allocations is not a counter")
    expect(value("bpool_allocations", "bpool_allocations_total") == stats["allocations"],
           "allocations differs")
    expect(value("bpool_waits", "bpool_waits_total") == stats["waits"], "waits differs")
    hist = families["bpool_wait_seconds"]
    expect(hist.type == "histogram", "wait_seconds is not a histogram")
    finished = sum(stats["wait_histogram"])
    expect(finished >= 1, "no finished wait in the dump")
    expect(value("bpool_wait_seconds", "bpool_wait_seconds_count") == finished, "count differs")
    buckets = [s for s in hist.samples if s.name == "bpool_wait_seconds_bucket"]
    expect(len(buckets) == len(stats["wait_histogram"]), "bucket count differs")
    expect(buckets[-1].labels["le"] == "+Inf" and buckets[-1].value == finished, "+Inf bucket")
    counts = [b.value for b in buckets]
    expect(counts == sorted(counts), "buckets are not cumulative")
    expect(abs(value("bpool_wait_seconds", "bpool_wait_seconds_sum") - stats["total_wait_ns"] / 1e9)
           < 1e-6, "sum differs")
    used = [c for c in stats["classes"] if c["allocations"] > 0]
    expect(len(used) >= 2, "fewer than two classes in use")
    for c in used:
        labels = {"block_size": str(c["block_size"])}
        expect(value("bpool_class_live_blocks", labels=labels) == c["live_blocks"],
               f"class {c['block_size']} live blocks differ")
    for e in errors:
        print("stats_output_parse:", e)
    print(f"json: {len(stats)} keys; prometheus: {len(families)} families")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
