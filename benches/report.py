#!/usr/bin/env python3
"""Print the criterion results under $CARGO_TARGET_DIR/criterion as Markdown tables.

Usage: python3 benches/report.py [criterion dir]   (default: $CARGO_TARGET_DIR/criterion,
or target/criterion). For each benchmark group it lists the median time, events (elements)
per second, MB/s, and each row's time relative to the group's reference row: `wot-sse` for the
SSE groups, the floor for td_parse, td_batch and events_filter, `10-rules` for alerts_update,
the parse + validate of the resulting TD for td_instantiate, `parse` (the SSE parser alone)
for pipeline.
"""

import json
import os
import sys
from collections import defaultdict

REFERENCES = ["wot-sse", "floor-serde_json-Value", "floor-closure", "10-rules",
              "reference-td-from_value+validate", "parse"]


def load(root):
    groups = defaultdict(dict)
    for dirpath, _, files in os.walk(root):
        if os.path.basename(dirpath) != "new" or "benchmark.json" not in files:
            continue
        with open(os.path.join(dirpath, "benchmark.json")) as f:
            bench = json.load(f)
        with open(os.path.join(dirpath, "estimates.json")) as f:
            est = json.load(f)
        groups[bench["group_id"]][bench["function_id"]] = (
            est["median"]["point_estimate"],
            bench.get("throughput") or {},
        )
    return groups


def human_time(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def rate(x):
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.3g} {unit}"
    return f"{x:.3g}"


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.environ.get("CARGO_TARGET_DIR", "target"), "criterion")
    for group, rows in sorted(load(root).items()):
        ref = next((r for r in REFERENCES if r in rows), None)
        print(f"\n#### `{group}`\n")
        head = "| contender | median time | elements/s | MB/s |"
        if ref:
            head += f" time ÷ `{ref}` |"
        print(head)
        print("|" + " --- |" * (head.count("|") - 1))
        for name, (ns, tp) in sorted(rows.items(), key=lambda kv: kv[1][0]):
            secs = ns / 1e9
            both = tp.get("ElementsAndBytes") or {}
            elements = both.get("elements", tp.get("Elements"))
            nbytes = both.get("bytes", tp.get("Bytes"))
            cells = [f"`{name}`", human_time(ns),
                     rate(elements / secs) if elements else "",
                     f"{nbytes / secs / 1e6:.1f}" if nbytes else ""]
            if ref:
                cells.append(f"{ns / rows[ref][0]:.2f}")
            print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
