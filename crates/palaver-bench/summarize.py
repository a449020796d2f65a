#!/usr/bin/env python3
"""Turns the raw results of bench.sh (one file per run) into the markdown
tables of BENCHMARKS.md. Each figure is the median over runs, taken per
figure."""
import glob
import json
import os
import re
import statistics
import sys

out = sys.argv[1]


def load(pattern):
    return [json.load(open(f)) for f in sorted(glob.glob(os.path.join(out, pattern)))]


def med(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def fmt(v, digits=1):
    if v is None:
        return "-"
    if isinstance(v, float) and not v.is_integer():
        return f"{v:,.{digits}f}"
    return f"{int(v):,}"


def wrk(path):
    text = open(path).read()
    unit = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    pct = {}
    for p, v, u in re.findall(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s)\s*$", text, re.M):
        pct[int(p)] = float(v) * unit[u]
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    requests = re.search(r"(\d+) requests in", text)
    timeouts = re.search(r"Socket errors:.*timeout (\d+)", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: (.*)", text)
    return {
        "rps": float(rps.group(1)) if rps else None,
        "p50": pct.get(50),
        "p90": pct.get(90),
        "p99": pct.get(99),
        "errors": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(1).strip() if errors else "",
        "requests": int(requests.group(1)) if requests else None,
        "timeouts": int(timeouts.group(1)) if timeouts else 0,
    }


def runs_of(prefix):
    """The files `<prefix>-<run>.txt`, in run order (not `<prefix>-<run>.batch.txt`)."""
    found = []
    for f in glob.glob(os.path.join(out, f"{prefix}-*.txt")):
        m = re.fullmatch(re.escape(prefix) + r"-(\d+)\.txt", os.path.basename(f))
        if m:
            found.append((int(m.group(1)), f))
    return [f for _, f in sorted(found)]


def sum_count(path):
    try:
        text = open(path).read()
    except OSError:
        return None
    total = re.search(r"_sum\S* ([\d.e+]+)", text)
    count = re.search(r"_count\S* ([\d.e+]+)", text)
    if not total or not count:
        return None
    return float(total.group(1)), float(count.group(1))


runs = None
print("## Sends\n")
def batch(path):
    try:
        text = open(path).read()
    except OSError:
        return None
    total = re.search(r"_sum\S* ([\d.e+]+)", text)
    count = re.search(r"_count\S* ([\d.e+]+)", text)
    if not total or not count or float(count.group(1)) == 0:
        return None
    return float(total.group(1)) / float(count.group(1))


print("| target | clients | msg/s | p50 ms | p99 ms | max ms | errors | mean batch | stored = acknowledged |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
for backend in ["sqlite", "postgres"]:
    for rooms in [1, 100]:
        rs = [json.load(open(f)) for f in sorted(glob.glob(os.path.join(out, f"send-{rooms}-{backend}-[0-9]*.json")))]
        if not rs:
            continue
        runs = len(rs)
        print(
            f"| {backend}, {rooms} room{'s' if rooms > 1 else ''} | {rs[0]['clients']} "
            f"| {fmt(med([r['throughput_per_s'] for r in rs]), 0)} "
            f"| {fmt(med([r['latency']['p50_ms'] for r in rs]), 2)} "
            f"| {fmt(med([r['latency']['p99_ms'] for r in rs]), 2)} "
            f"| {fmt(med([r['latency']['max_ms'] for r in rs]), 1)} "
            f"| {sum(sum(r['errors'].values()) for r in rs)} "
            f"| {fmt(med([batch(f) for f in sorted(glob.glob(os.path.join(out, f'send-{rooms}-{backend}-*.batch.txt')))]), 1)} "
            f"| {'yes' if all(r['consistent'] for r in rs) else 'NO'} ({sum(r['acknowledged'] for r in rs):,} sends) |"
        )
pg = sorted(glob.glob(os.path.join(out, "pgbench-*.txt")))
if pg:
    tps, lat = [], []
    clients = None
    for f in pg:
        text = open(f).read()
        m = re.search(r"tps = ([\d.]+)", text)
        tps.append(float(m.group(1)) if m else None)
        m = re.search(r"latency average = ([\d.]+) ms", text)
        lat.append(float(m.group(1)) if m else None)
        m = re.search(r"number of clients: (\d+)", text)
        clients = m.group(1) if m else clients
    print(
        f"| pgbench: one-row INSERT per commit, same PostgreSQL | {clients} | {fmt(med(tps), 0)} "
        f"| {fmt(med(lat), 2)} (mean) | - | - | - | 1 | - |"
    )

print("\n## Reads (wrk, 1 thread)\n")
print("| target | body bytes | req/s | p50 ms | p90 ms | p99 ms | non-2xx |")
print("|---|---:|---:|---:|---:|---:|---:|")
for name, label in [("chat", "GET /chat?size=50"), ("v1", "GET /api/v1/rooms/general/messages?limit=50")]:
    for backend in ["sqlite", "postgres"]:
        files = sorted(glob.glob(os.path.join(out, f"read-{name}-{backend}-*.txt")))
        if not files:
            continue
        rs = [wrk(f) for f in files]
        size = open(os.path.join(out, f"read-{name}-bytes-{backend}.txt")).read().strip()
        print(
            f"| {label}, {backend} | {size} | {fmt(med([r['rps'] for r in rs]), 0)} "
            f"| {fmt(med([r['p50'] for r in rs]), 2)} | {fmt(med([r['p90'] for r in rs]), 2)} "
            f"| {fmt(med([r['p99'] for r in rs]), 2)} | {sum(r['errors'] for r in rs)} |"
        )
files = sorted(glob.glob(os.path.join(out, "read-ceiling-none-*.txt")))
if files:
    rs = [wrk(f) for f in files]
    size = open(os.path.join(out, "read-chat-bytes-sqlite.txt")).read().strip()
    print(
        f"| ceiling: minimal axum handler, fixed body | {size} | {fmt(med([r['rps'] for r in rs]), 0)} "
        f"| {fmt(med([r['p50'] for r in rs]), 2)} | {fmt(med([r['p90'] for r in rs]), 2)} "
        f"| {fmt(med([r['p99'] for r in rs]), 2)} | {sum(r['errors'] for r in rs)} |"
    )

put = {b: runs_of(f"put-{b}") for b in ["sqlite", "postgres"]}
if any(put.values()):
    print("\n## Seed sends: `PUT /chat` (wrk -t2 -c16, 64-character message)\n")
    print("| backend | req/s | p50 ms | p99 ms | non-2xx | mean batch | stored / 201s |")
    print("|---|---:|---:|---:|---:|---:|---|")
for backend, files in put.items():
    if not files:
        continue
    rs, batches, stored, acked, ok = [], [], 0, 0, True
    for f in files:
        r = wrk(f)
        rs.append(r)
        stem = f[: -len(".txt")]
        before, after = sum_count(stem + ".batch-before.txt"), sum_count(stem + ".batch.txt")
        if before and after and after[1] > before[1]:
            batches.append((after[0] - before[0]) / (after[1] - before[1]))
        seqs = json.load(open(stem + ".stored.json"))
        run_stored = seqs["last_seq_after"] - seqs["last_seq_before"]
        run_acked = (r["requests"] or 0) - r["errors"]
        # wrk abandons the requests in flight when its time is up (at most
        # one per connection) and those that timed out: they may be stored.
        ok = ok and 0 <= run_stored - run_acked <= seqs["connections"] + r["timeouts"]
        stored, acked = stored + run_stored, acked + run_acked
    print(
        f"| {backend} | {fmt(med([r['rps'] for r in rs]), 0)} "
        f"| {fmt(med([r['p50'] for r in rs]), 2)} | {fmt(med([r['p99'] for r in rs]), 2)} "
        f"| {sum(r['errors'] for r in rs)} | {fmt(med(batches), 1)} "
        f"| {stored:,} / {acked:,} ({'match' if ok else 'MISMATCH'}) |"
    )

gen_path = os.path.join(out, "bigread-generate.json")
if os.path.exists(gen_path):
    gen = json.load(open(gen_path))
    big, small = gen["big_messages"], gen["small_messages"]
    print(f"\n## Page reads at {big:,} stored messages (PostgreSQL, wrk -t1 -c32, signed in)\n")
    print(
        f"Rooms filled in SQL (`bigread-fill.sql`): {big + small:,} messages in {gen['insert_s']:,} s, "
        f"then `VACUUM ANALYZE` in {gen['vacuum_analyze_s']:,} s; messages table "
        f"{gen['messages_table_bytes'] / 2**30:,.2f} GiB; last_seq {gen['rooms_last_seq']}, "
        f"rows/max seq {gen['messages_count_max_seq']}.\n"
    )
    print(
        f"`alone`: a room of {small:,} in a database of {small:,} messages; `beside`: a room of {small:,} "
        f"in the database that also holds the room of {big:,} (same table and index); ratios are "
        f"req/s of the {small:,}-message read over req/s of the {big:,}-message read (target <= 1.2).\n"
    )
    print(
        f"| read | alone req/s | beside req/s | {big:,} req/s | alone / big | beside / big "
        "| p50 ms alone / beside / big | p99 ms alone / beside / big | non-2xx |"
    )
    print("|---|---:|---:|---:|---:|---:|---|---|---:|")
    targets = ["alone", "small", "big"]
    for name, label in [
        ("newest-cacheon", "newest page `?limit=50`, read cache on"),
        ("newest-cacheoff", "newest page `?limit=50`, read cache off (database)"),
        ("middle", "middle pages `?before=<8 seqs around N/2>&limit=50`"),
    ]:
        by = {t: [wrk(f) for f in runs_of(f"bigread-{name}-{t}")] for t in targets}
        if not by["big"]:
            continue
        rps = {t: med([r["rps"] for r in by[t]]) for t in targets}
        ratio = lambda t: fmt(rps[t] / rps["big"], 2) if rps[t] and rps["big"] else "-"
        pct = lambda p: " / ".join(fmt(med([r[p] for r in by[t]]), 2) for t in targets)
        print(
            f"| {label} | {fmt(rps['alone'], 0)} | {fmt(rps['small'], 0)} | {fmt(rps['big'], 0)} "
            f"| {ratio('alone')} | {ratio('small')} | {pct('p50')} | {pct('p99')} "
            f"| {sum(r['errors'] for rs in by.values() for r in rs)} |"
        )

print("\n## Fan-out\n")
print(
    "| backend, rooms | subscribers | posted msg/s | deliveries/s | commit→delivery p50 / p99 / max ms "
    "| send→delivery p99 ms | delivered / expected | complete subscribers | server RSS per connection KiB |"
)
print("|---|---:|---:|---:|---|---:|---|---:|---:|")
for backend in ["sqlite", "postgres"]:
    for rooms in [1, 100]:
        rs = load(f"fanout-{rooms}-{backend}-*.json")
        if not rs:
            continue
        d = lambda k: med([r["delivery_latency"][k] for r in rs])
        rate = med([r["posted_ok"] / r["duration_s"] for r in rs])
        deliveries = med([r["delivery"]["received"] / r["duration_s"] for r in rs])
        rss = med([(r.get("server_rss") or {}).get("per_connection_kib") for r in rs])
        exp = sum(r["delivery"]["expected"] for r in rs)
        got = sum(r["delivery"]["received"] - r["delivery"]["duplicates"] for r in rs)
        complete = med([r["delivery"]["subscribers_complete"] for r in rs])
        print(
            f"| {backend}, {rooms} | {fmt(med([r['subscribers'] - r['connect_failed'] for r in rs]), 0)} "
            f"| {fmt(rate, 0)} | {fmt(deliveries, 0)} "
            f"| {fmt(d('p50_ms'), 1)} / {fmt(d('p99_ms'), 1)} / {fmt(d('max_ms'), 1)} "
            f"| {fmt(med([r['end_to_end_latency']['p99_ms'] for r in rs]), 1)} "
            f"| {got:,} / {exp:,} | {fmt(complete, 0)} | {fmt(rss, 2)} |"
        )

print("\n## Start-up\n")
print("| backend | exec → /readyz 200, median ms | idle RSS, median MiB | runs |")
print("|---|---:|---:|---:|")
for backend in ["sqlite", "postgres"]:
    rs = load(f"startup-{backend}.json")
    for r in rs:
        print(
            f"| {backend} | {fmt(r['median_ready_ms'], 1)} | {fmt(r['median_idle_rss_kib'] / 1024, 1)} | {r['runs']} |"
        )

if runs:
    print(f"\nMedians of {runs} runs per figure.")
