#!/usr/bin/env python3
"""Markdown tables from bench-presence.sh's JSON files (medians of the runs)."""
import glob
import json
import os
import statistics
import sys

out = sys.argv[1]


def load(pattern):
    return [json.load(open(p)) for p in sorted(glob.glob(os.path.join(out, pattern)))]


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


buses = sorted({os.path.basename(p).split(".")[0] for p in glob.glob(os.path.join(out, "*.json"))})
print("| bus | typing p50 ms | typing p99 ms | delivered/sent | sends/s alone | sends/s with 2,000 typing | ratio | signal payloads/s (2,000 typing) | CPU s A / B / redis |")
print("|---|---|---|---|---|---|---|---|---|")
for bus in buses:
    typing = load(f"{bus}.typing.[0-9]*.json")
    alone = [r["throughput_per_s"] for r in load(f"{bus}.sends-alone.*.json")]
    beside = [r["throughput_per_s"] for r in load(f"{bus}.sends-typing.*.json")]
    cost = load(f"{bus}.typing-2000-cost.*.json")
    t2000 = load(f"{bus}.typing-2000.*.json")
    p50 = med([t["delivery_latency"]["p50_ms"] for t in typing])
    p99 = med([t["delivery_latency"]["p99_ms"] for t in typing])
    ratio = f"{sum(t['typing_received'] for t in typing)}/{sum(t['typing_sent'] for t in typing)}"
    a, b = med(alone), med(beside)
    secs = med([t["duration_s"] for t in t2000])
    pps = med([c["payloads"] for c in cost]) / secs if secs else float("nan")
    cpu = "{:.1f} / {:.1f} / {:.1f}".format(
        med([c["cpu_a_s"] for c in cost]), med([c["cpu_b_s"] for c in cost]), med([c["cpu_redis_s"] for c in cost]))
    print(f"| {bus} | {p50:.1f} | {p99:.1f} | {ratio} | {a:.0f} | {b:.0f} | {b / a:.3f} | {pps:.1f} | {cpu} |")
print()
print("| bus | users online | signal payloads/s held | CPU % A / B / redis | RSS A KiB before → online | RSS B KiB before → online | flaps/s | CPU % A / B flapping | RSS A before / after flapping / settled | RSS B before / after / settled | online on A after |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for bus in buses:
    flap_cost = load(f"{bus}.online-flap-cost.json") or [None]
    for c, f, m, fc in zip(load(f"{bus}.online-cost.json"), load(f"{bus}.online-flap.json"), load(f"{bus}.online-memory.json"), flap_cost):
        ra, rb = m["rss_a_kib"], m["rss_b_kib"]
        flap_cpu = f"{fc['cpu_a_pct']:.1f} / {fc['cpu_b_pct']:.1f}" if fc else "–"
        print(f"| {bus} | {c['users']} | {c['payloads_per_s']:.2f} | {c['cpu_a_pct']:.1f} / {c['cpu_b_pct']:.1f} / {c['cpu_redis_pct']:.1f} "
              f"| {c['rss_a_kib'][0]} → {c['rss_a_kib'][1]} | {c['rss_b_kib'][0]} → {c['rss_b_kib'][1]} | {f['flaps_per_s']:.0f} | {flap_cpu} "
              f"| {ra['before']} / {ra['after_flapping']} / {ra['settled']} | {rb['before']} / {rb['after_flapping']} / {rb['settled']} | {m['online_a_after']} |")
