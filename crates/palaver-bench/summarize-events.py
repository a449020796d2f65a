#!/usr/bin/env python3
"""Turns the raw results of bench-events.sh into the tables of BENCHMARKS.md:
medians over runs, and each ratio as the median of the per-run ratios (the
two figures of a ratio come from the same run)."""
import glob
import json
import os
import re
import statistics
import sys

out = sys.argv[1]


def load(scenario, backend):
    found = {}
    for f in glob.glob(os.path.join(out, f"{scenario}-{backend}-*.json")):
        m = re.fullmatch(re.escape(f"{scenario}-{backend}-") + r"(\d+)\.json", os.path.basename(f))
        if m:
            try:
                found[int(m.group(1))] = json.load(open(f))
            except ValueError:
                pass
    return found


def med(xs):
    xs = [x for x in xs if x is not None]
    return round(statistics.median(xs), 3) if xs else None


def ratio(a, b, key):
    return med([key(a[r]) / key(b[r]) for r in a if r in b and key(b[r])])


def errors(runs):
    return sum(sum(j.get("errors", {}).values()) for j in runs.values())


backends = sorted({os.path.basename(f).split("-")[-2] for f in glob.glob(os.path.join(out, "send-*.json"))})
print("| backend | scenario | requests/s | messages/s | p50 ms | p99 ms | errors | runs |")
print("|---|---|---|---|---|---|---|---|")
for b in backends:
    for s in ("send", "send-noindex", "sendsonly", "mixed", "after-events"):
        runs = load(s, b)
        if not runs:
            continue
        msgs = [j.get("messages_per_s", j["throughput_per_s"]) for j in runs.values()]
        print(f"| {b} | {s} | {med([j['throughput_per_s'] for j in runs.values()])} | {med(msgs)} "
              f"| {med([j['latency']['p50_ms'] for j in runs.values()])} | {med([j['latency']['p99_ms'] for j in runs.values()])} "
              f"| {errors(runs)} | {len(runs)} |")
print()
print("| backend | ratio (median of per-run ratios) | value |")
print("|---|---|---|")
msgs = lambda j: j.get("messages_per_s", j["throughput_per_s"])
for b in backends:
    send, noidx = load("send", b), load("send-noindex", b)
    only, mixed, after = load("sendsonly", b), load("mixed", b), load("after-events", b)
    print(f"| {b} | send with index / without (issue 18: >= 0.90) | {ratio(send, noidx, msgs)} |")
    print(f"| {b} | sends into rooms with events / fresh rooms (issue 17: >= 0.95) | {ratio(after, only, msgs)} |")
    print(f"| {b} | mixed requests/s / sends-only requests/s | {ratio(mixed, only, lambda j: j['throughput_per_s'])} |")
    print(f"| {b} | mixed messages/s / sends-only messages/s | {ratio(mixed, only, msgs)} |")
    for kind in ("send", "reaction", "edit", "read_marker"):
        lat = [j["by_kind"][kind]["latency"]["p99_ms"] for j in mixed.values() if kind in j.get("by_kind", {})]
        rate = [j["by_kind"][kind]["per_s"] for j in mixed.values() if kind in j.get("by_kind", {})]
        print(f"| {b} | mixed: {kind} per s / p99 ms | {med(rate)} / {med(lat)} |")
fan = False
for b in backends:
    for bg in ("sendsonly", "mixed"):
        runs = load(f"fanout-{bg}", b)
        if not runs:
            continue
        if not fan:
            print()
            print(f"| backend | background | fan-out delivery p50 ms | p99 ms | end-to-end p99 ms | received/expected | background req/s | runs |")
            print("|---|---|---|---|---|---|---|---|")
            fan = True
        bgr = load(f"fanout-bg-{bg}", b)
        print(f"| {b} | {bg} | {med([j['delivery_latency']['p50_ms'] for j in runs.values()])} "
              f"| {med([j['delivery_latency']['p99_ms'] for j in runs.values()])} "
              f"| {med([j['end_to_end_latency']['p99_ms'] for j in runs.values()])} "
              f"| {sum(j['delivery']['received'] for j in runs.values())}/{sum(j['delivery']['expected'] for j in runs.values())} "
              f"| {med([j['throughput_per_s'] for j in bgr.values()])} | {len(runs)} |")
    for b2 in (b,):
        mix, only = load("fanout-mixed", b2), load("fanout-sendsonly", b2)
        if mix and only:
            print(f"| {b2} | p99 ratio mixed / sends-only (median of per-run) | {ratio(mix, only, lambda j: j['delivery_latency']['p99_ms'])} | | | | | |")
