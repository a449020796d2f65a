#!/usr/bin/env python3
"""Turns the raw results of bench-bus.sh into the "Bus" tables of BENCHMARKS.md.

    python3 crates/palaver-bench/summarize-bus.py OUT_DIR
"""
import json
import sys
from pathlib import Path


def load(path):
    return json.loads(path.read_text()) if path.exists() else None


def statements(path):
    """{user: (calls, rows)} from a .statements.txt file."""
    out = {}
    if path.exists():
        for line in path.read_text().split("\n"):
            parts = line.split()
            if len(parts) == 3:
                out[parts[0]] = (int(parts[1]), int(parts[2]))
    return out


def cpu(out, name):
    """{kind: cpu seconds summed} using the .procs.txt of the configuration."""
    procs = {}
    stem = name.rsplit("-", 1)[0]
    procs_file = out / f"{stem}.procs.txt"
    if procs_file.exists():
        for line in procs_file.read_text().split("\n"):
            if line.strip():
                kind, pid = line.split()
                procs[pid] = kind
    totals = {}
    cpu_file = out / f"{name}.cpu.txt"
    if cpu_file.exists():
        for line in cpu_file.read_text().split("\n"):
            if line.strip():
                pid, seconds = line.split()
                kind = procs.get(pid, "other")
                totals[kind] = totals.get(kind, 0.0) + float(seconds)
    return totals


def publishes(path):
    if not path.exists():
        return None
    for line in path.read_text().split("\n"):
        if line.startswith("cmdstat_publish:"):
            fields = dict(kv.split("=") for kv in line.split(":", 1)[1].split(","))
            return int(fields["calls"]), float(fields["usec_per_call"])
    return None


def fmt(x, digits=2):
    return f"{x:,.{digits}f}"


def main(out):
    out = Path(out)
    rows_t, rows_l = [], []
    for bus in ("postgres", "redis"):
        for gateways in (1, 2, 4):
            for mode in ("throughput", "latency"):
                name = f"bus-{bus}-{gateways}-{mode}"
                result = load(out / f"{name}.json")
                if result is None:
                    continue
                d = result["delivery"]
                st = statements(out / f"{name}.statements.txt")
                gw_calls = st.get("gateway", (0, 0))[0]
                wr_calls = st.get("writer", (0, 0))[0]
                received = max(d["received"], 1)
                posted = max(result["posted_ok"], 1)
                c = cpu(out, name)
                pub = publishes(out / f"{name}.redis.txt")
                complete = f'{d["subscribers_complete"]}/{result["subscribers"]}'
                exact = "yes" if d["missing"] == 0 and d["duplicates"] == 0 and d["out_of_order"] == 0 else "no"
                common = [
                    "PostgreSQL LISTEN/NOTIFY" if bus == "postgres" else "Redis pub/sub",
                    str(gateways),
                ]
                if mode == "throughput":
                    rows_t.append(common + [
                        fmt(result["posts_per_s"], 0),
                        f'{d["received"]:,}',
                        fmt(gw_calls / received, 3),
                        fmt(wr_calls / posted, 2),
                        fmt(1000 * c.get("writer", 0) / posted, 3),
                        fmt(1000 * c.get("gateway", 0) / received, 3),
                        fmt(1000 * c.get("postgres", 0) / posted, 3),
                        (fmt(1000 * c.get("redis", 0) / posted, 3) if bus == "redis" else "-"),
                        (f"{pub[0]:,} ({pub[1]:.1f} µs each)" if pub else "-"),
                        f"{exact} ({complete})",
                    ])
                else:
                    lat = result["delivery_latency"]
                    e2e = result["end_to_end_latency"]
                    rows_l.append(common + [
                        fmt(result["rate"], 0),
                        f'{d["received"]:,}',
                        f'{fmt(lat["p50_ms"], 1)} / **{fmt(lat["p99_ms"], 1)}** / {fmt(lat["max_ms"], 1)}',
                        fmt(e2e["p99_ms"], 1),
                        fmt(gw_calls / received, 3),
                        f"{exact} ({complete})",
                    ])
    print("### Send throughput and database statements per delivered message\n")
    print("| bus | gateways | posts/s (closed loop) | deliveries | gateway statements per delivery | writer statements per post | writer CPU ms per post | gateway CPU ms per delivery | PostgreSQL CPU ms per post | redis CPU ms per post | PUBLISH calls | every message once, in order |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for r in rows_t:
        print("| " + " | ".join(r) + " |")
    print("\n### Commit→delivery latency at a fixed rate\n")
    print("| bus | gateways | msg/s | deliveries | commit→delivery p50 / p99 / max ms | send→delivery p99 ms | gateway statements per delivery | every message once, in order |")
    print("|---|---:|---:|---:|---|---:|---:|---|")
    for r in rows_l:
        print("| " + " | ".join(r) + " |")
    print("\n### 100-room sends into one writer: NOTIFY in the transaction against none\n")
    print("| bus | msg/s | p50 ms | p99 ms | errors | stored = acknowledged |")
    print("|---|---:|---:|---:|---:|---|")
    for bus, label in (("postgres", "PostgreSQL (pg_notify in each transaction)"), ("redis", "Redis (PUBLISH after commit, no NOTIFY)")):
        s = load(out / f"bus-send100-{bus}.json")
        if s:
            errors = sum(s["errors"].values())
            print(f'| {label} | **{fmt(s["throughput_per_s"], 0)}** | {fmt(s["latency"]["p50_ms"])} | {fmt(s["latency"]["p99_ms"])} | {errors} | {"yes" if s["consistent"] else "no"} ({s["acknowledged"]:,} sends) |')


if __name__ == "__main__":
    main(sys.argv[1])
