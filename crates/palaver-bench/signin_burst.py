#!/usr/bin/env python3
"""Sign-in burst (issue 21): server RSS and login latency around a burst of
sign-ins, on a fresh `palaver serve` child (SQLite, release build).

    python3 crates/palaver-bench/signin_burst.py target/release/palaver [--runs 3]
        [--env NAME=VALUE ...] [--label TEXT]

Per run: a fresh server; its idle RSS; 16 accounts registered 8 at a time;
96 sign-ins 8 at a time (RSS sampled every 20 ms for the peak, each login's
latency timed); then the RSS 10 s after the burst ("settled"). Requests come
from 127.0.0.2-127.0.0.13 and 16 users, so no per-address or per-username
limit of the old or new code refuses any of them. Prints one JSON line per
run and the medians. `--env` sets variables for the server only (e.g.
LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2, or
GLIBC_TUNABLES=glibc.malloc.mmap_threshold=1048576).
"""

import argparse
import http.client
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

PASSWORD = "correct horse battery"
USERS = 16
SIGN_INS = 96
CONCURRENCY = 8
ADDRESSES = [f"127.0.0.{n}" for n in range(2, 14)]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(port, source, path, body):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60, source_address=(source, 0))
    started = time.perf_counter()
    conn.request("POST", path, json.dumps(body), {"content-type": "application/json"})
    response = conn.getresponse()
    response.read()
    elapsed = time.perf_counter() - started
    conn.close()
    return response.status, elapsed


def run(binary, env_extra):
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, **env_extra)
        server = subprocess.Popen(
            [binary, "serve", "--listen", f"127.0.0.1:{port}",
             "--database-url", f"sqlite://{tmp}/bench.db", "--log", "warn"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(200):
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                    conn.request("GET", "/readyz")
                    if conn.getresponse().status == 200:
                        break
                except OSError:
                    pass
                time.sleep(0.05)
            time.sleep(1)
            pid = server.pid
            idle = rss_kib(pid)
            with ThreadPoolExecutor(CONCURRENCY) as pool:
                statuses = list(pool.map(
                    lambda i: post(port, ADDRESSES[i % len(ADDRESSES)], "/api/v1/auth/register",
                                   {"username": f"bench{i}", "password": PASSWORD})[0],
                    range(USERS)))
            assert all(s == 201 for s in statuses), statuses
            registered = rss_kib(pid)

            peak = [registered]
            done = threading.Event()

            def sample():
                while not done.is_set():
                    peak[0] = max(peak[0], rss_kib(pid))
                    time.sleep(0.02)

            sampler = threading.Thread(target=sample)
            sampler.start()
            with ThreadPoolExecutor(CONCURRENCY) as pool:
                results = list(pool.map(
                    lambda i: post(port, ADDRESSES[i % len(ADDRESSES)], "/api/v1/auth/login",
                                   {"username": f"bench{i % USERS}", "password": PASSWORD}),
                    range(SIGN_INS)))
            done.set()
            sampler.join()
            assert all(s == 200 for s, _ in results), [s for s, _ in results]
            after = rss_kib(pid)
            time.sleep(10)
            settled = rss_kib(pid)
            latencies = sorted(e * 1000 for _, e in results)
            return {
                "idle_mib": round(idle / 1024, 1),
                "after_register_mib": round(registered / 1024, 1),
                "peak_mib": round(peak[0] / 1024, 1),
                "after_burst_mib": round(after / 1024, 1),
                "settled_10s_mib": round(settled / 1024, 1),
                "login_p50_ms": round(latencies[len(latencies) // 2], 1),
                "login_p99_ms": round(latencies[math.ceil(len(latencies) * 0.99) - 1], 1),
            }
        finally:
            server.terminate()
            server.wait()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--env", action="append", default=[])
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    env_extra = dict(item.split("=", 1) for item in args.env)
    runs = []
    for _ in range(args.runs):
        result = run(args.binary, env_extra)
        print(json.dumps({"label": args.label, **result}), flush=True)
        runs.append(result)
    medians = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    print(json.dumps({"label": args.label, "median_of": args.runs, **medians}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
