#!/usr/bin/env python3
"""Turns the raw results of bench-scale.sh into the tables of BENCHMARKS.md:
medians over runs, per scale (backend-messages)."""
import glob
import json
import os
import re
import statistics
import sys

out = sys.argv[1]


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def wrk(path):
    text = open(path).read()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    return float(rps.group(1)) if rps else None, int(non2xx.group(1)) if non2xx else 0


def runs(prefix, ext):
    found = []
    for f in glob.glob(os.path.join(out, f"{prefix}-*.{ext}")):
        m = re.fullmatch(re.escape(prefix) + r"-(\d+)\." + ext, os.path.basename(f))
        if m:
            found.append((int(m.group(1)), f))
    return [f for _, f in sorted(found)]


scales = sorted({os.path.basename(f)[len("fill-"):-len(".json")]
                 for f in glob.glob(os.path.join(out, "fill-*.json"))},
                key=lambda t: (t.split("-")[0], int(t.split("-")[1])))
print("| scale | request | p50 ms | p95 ms | p99 ms | req/s (1 client) | errors | runs |")
print("|---|---|---|---|---|---|---|---|")
for tag in scales:
    for what, label in (("rooms", "GET /api/v1/rooms (member of 500)"),
                        ("rooms-base", "GET /api/v1/rooms (member of 500), baseline"),
                        ("rare", "search rare word (member of 50)"),
                        ("onepct", "search 1% word (member of 50)")):
        files = runs(f"{what}-{tag}", "json")
        if not files:
            continue
        js = [json.load(open(f)) for f in files]
        lat = lambda k: median([j["latency"].get(k) for j in js])
        errors = sum(sum(j["errors"].values()) for j in js)
        print(f"| {tag} | {label} | {lat('p50_ms')} | {lat('p95_ms')} | {lat('p99_ms')} "
              f"| {median([j['throughput_per_s'] for j in js])} | {errors} | {len(js)} |")
print()
print("| scale | newest page with reactions, req/s (wrk -c32) | ceiling req/s | ratio (median of per-run ratios) | runs |")
print("|---|---|---|---|---|")
for tag, what in [(t, w) for t in scales for w in ("newest", "newest-base")]:
    newest = [wrk(f) for f in runs(f"{what}-{tag}", "txt")]
    ceiling = [wrk(f) for f in runs(f"ceiling-{tag}", "txt")]
    if not newest:
        continue
    ratios = [n[0] / c[0] for n, c in zip(newest, ceiling) if n[0] and c[0]]
    bad = sum(n[1] for n in newest)
    print(f"| {tag}{', baseline' if what == 'newest-base' else ''} | {median([n[0] for n in newest])} | {median([c[0] for c in ceiling])} "
          f"| {round(median(ratios), 3) if ratios else '-'} | {len(newest)}{f' ({bad} non-2xx)' if bad else ''} |")
print()
for tag in scales:
    print(f"fill {tag}: {open(os.path.join(out, f'fill-{tag}.json')).read().strip()}")
