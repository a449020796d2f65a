"""End to end: the rules and dashboards against a real Prometheus scraping a
real Palaver.

The fixture starts a throwaway PostgreSQL cluster (scripts/pg-cluster.sh), two
`palaver serve` replicas on it, and Prometheus (the Debian package) scraping
both every second with the labels the chart's ServiceMonitor gives real pods,
and evaluating deploy/observability/rules every second. It then drives
traffic: concurrent sends to one replica, a Server-Sent-Events subscriber on
the other (so fan-out crosses replicas through LISTEN/NOTIFY), reads, the
seed-compatible /chat, bad input, an unknown room, a stream refused with 503
at the second replica's --max-streams, and the readiness probe.

Then, through Prometheus's HTTP API only: the rule groups load and evaluate
without errors; every recording rule yields series; every metric a rule or a
dashboard names exists in what Prometheus scraped (or is on the allow-list of
cluster metrics); every dashboard query and variable runs and, unless it reads
cluster metrics, returns data; nothing alerts on healthy traffic; and killing
a replica and stopping the database raise PalaverTargetDown and
PalaverDatabaseUnavailable.

Environment: PALAVER_BIN (default target/debug/palaver), PROMETHEUS (default
`prometheus` on PATH), KEEP_E2E=1 keeps the working folder and logs.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

import observability as obs

PALAVER = Path(os.environ.get("PALAVER_BIN", obs.ROOT / "target" / "debug" / "palaver"))
PROMETHEUS = os.environ.get("PROMETHEUS", "prometheus")
PG_CLUSTER = obs.ROOT / "scripts" / "pg-cluster.sh"
NAMESPACE = "palaver"
ROOM = "observability"
SENDS = 400
# What the Grafana variables and macros become when a query runs here.
RATE_INTERVAL = "1m"


#### Processes


def _die_with_parent():
    # Children get SIGTERM if this test process dies, so nothing outlives it.
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The v1 API needs a signed-in user (DESIGN §5a): drive_traffic registers one
# and every request carries its session cookie.
SESSION: dict[str, str] = {}


def request(method: str, url: str, body: dict | None = None, headers: dict | None = None, timeout: float = 10):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={**SESSION, **(headers or {})})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def wait_for(what: str, check, timeout: float = 60, interval: float = 0.25):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (OSError, http.client.HTTPException, ValueError, KeyError) as err:
            last = err
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last error: {last})")


class Stack:
    """The processes of one run, stopped in reverse order by PID."""

    def __init__(self, work: Path):
        self.work = work
        self.procs: dict[str, subprocess.Popen] = {}
        self.pg_dir = work / "pg"
        self.pg_started = False
        # Each replica's first /metrics answer, before it served anything else.
        self.first_scrape: dict[str, str] = {}

    def spawn(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.work / f"{name}.log", "wb")
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                preexec_fn=_die_with_parent)
        self.procs[name] = proc
        return proc

    def stop(self, name: str, sig=signal.SIGTERM):
        proc = self.procs.get(name)
        if proc and proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop_database(self):
        if self.pg_started:
            subprocess.run(["bash", str(PG_CLUSTER), "stop", str(self.pg_dir)], check=False)
            self.pg_started = False

    def close(self):
        for name in reversed(list(self.procs)):
            self.stop(name)
        self.stop_database()

    def log(self, name: str) -> str:
        path = self.work / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


class Prometheus:
    def __init__(self, base: str):
        self.base = base

    def get(self, path: str, **params):
        query = urllib.parse.urlencode(params, doseq=True)
        status, body = request("GET", f"{self.base}{path}?{query}")
        doc = json.loads(body)
        assert status == 200 and doc["status"] == "success", f"{path} {params}: {status} {doc}"
        return doc["data"]

    def query(self, expr: str) -> list[dict]:
        return self.get("/api/v1/query", query=expr)["result"]


#### The stack and its traffic


class Subscriber(threading.Thread):
    """An SSE client that counts the messages it receives."""

    def __init__(self, port: int, room: str):
        super().__init__(daemon=True)
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.conn.request("GET", f"/api/v1/rooms/{room}/stream", headers={"Accept": "text/event-stream", **SESSION})
        self.response = self.conn.getresponse()
        assert self.response.status == 200, self.response.status
        self.received = 0
        self.caught_up = threading.Event()

    def run(self):
        try:
            for raw in self.response:
                line = raw.decode().strip()
                if line == "event: caught_up":
                    self.caught_up.set()
                elif line == "event: message":
                    self.received += 1
        except (OSError, ValueError, http.client.HTTPException):
            pass  # the socket was shut down by close()

    def close(self):
        """Hang up, as a browser tab closing would, and wait for the reader."""
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.join(10)
        self.conn.close()


def sign_up(base: str):
    """Registers the observer account (or signs in when it exists)."""
    body = json.dumps({"username": "observer", "password": "observer-password"}).encode()
    for path in ("/api/v1/auth/register", "/api/v1/auth/login"):
        req = urllib.request.Request(f"{base}{path}", method="POST", data=body,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as response:
                SESSION["Cookie"] = response.headers["Set-Cookie"].split(";")[0]
                return
        except urllib.error.HTTPError as err:
            if err.code != 409:
                raise
    raise AssertionError("could not sign in the observer")


def drive_traffic(a: str, b: str, b_port: int):
    sign_up(a)
    subscriber = Subscriber(b_port, ROOM)
    subscriber.start()
    assert subscriber.caught_up.wait(15), "the SSE subscriber never caught up"
    # The second replica allows one stream (--max-streams 1): a second one is
    # refused with 503, which gives the 5xx series real data.
    status, _ = request("GET", f"{b}/api/v1/rooms/{ROOM}/stream", headers={"Accept": "text/event-stream"})
    assert status == 503, status

    def send(i: int):
        status, _ = request("POST", f"{a}/api/v1/rooms/{ROOM}/messages",
                         {"author": "observer", "text": f"message {i}", "client_id": f"obs-{i}"})
        assert status == 201, status

    # Concurrent sends to one room are group-committed into batches.
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(send, range(SENDS)))
    for base in (a, b):
        assert request("GET", f"{base}/readyz")[0] == 200
        assert request("GET", f"{base}/api/v1/rooms/{ROOM}/messages?limit=50")[0] == 200
        # The same newest page again: a read-cache hit where the cache holds it.
        assert request("GET", f"{base}/api/v1/rooms/{ROOM}/messages?limit=50")[0] == 200
        assert request("GET", f"{base}/api/v1/rooms")[0] == 200
        assert request("PUT", f"{base}/chat", {"message": "hello from the seed API"})[0] == 201
        assert request("GET", f"{base}/chat?size=5")[0] == 200
        assert request("GET", f"{base}/api/v1/rooms/no-such-room/messages")[0] == 404
        assert request("POST", f"{base}/api/v1/rooms/{ROOM}/messages", {"author": "", "text": ""})[0] == 400
    wait_for("every message to reach the subscriber on the other replica", lambda: subscriber.received >= SENDS, 30)
    subscriber.close()  # counted as a stream closed with reason client_closed


@pytest.fixture(scope="module")
def stack():
    assert PALAVER.is_file() and os.access(PALAVER, os.X_OK), f"build it first: cargo build -p palaver ({PALAVER})"
    assert shutil.which(PROMETHEUS), f"{PROMETHEUS} not found: bash scripts/install-tools.sh prom"
    work = Path(tempfile.mkdtemp(prefix="palaver-obs-"))
    work.chmod(0o755)  # as root, the cluster runs as `postgres` and must reach its folder
    run = Stack(work)
    try:
        # The cluster is this run's alone: its `postgres` database will do.
        database_url = subprocess.run(["bash", str(PG_CLUSTER), "start", str(run.pg_dir)], check=True,
                                      capture_output=True, text=True).stdout.strip()
        run.pg_started = True

        ports = [free_port(), free_port()]
        for index, port in enumerate(ports):
            # The second replica: one stream at most (refusals), and a read
            # cache of one byte, so every room it caches is evicted at once
            # (palaver_read_cache_evictions_total).
            extra = ["--max-streams", "1", "--read-cache-bytes", "1"] if index == 1 else []
            run.spawn(f"palaver-{index}", [
                str(PALAVER), "serve", "--listen", f"127.0.0.1:{port}", "--database-url", database_url,
                "--rate-limit", "0", "--log-format", "json", "--log", "warn", *extra])
        for index, port in enumerate(ports):
            # Nothing else is asked of the replica before this scrape.
            def scrape(port=port):
                status, body = request("GET", f"http://127.0.0.1:{port}/metrics", timeout=2)
                return body.decode() if status == 200 else None
            run.first_scrape[f"palaver-{index}"] = wait_for(f"palaver-{index} /metrics", scrape, 60)
        for index, port in enumerate(ports):
            wait_for(f"palaver-{index} /readyz",
                     lambda port=port: request("GET", f"http://127.0.0.1:{port}/readyz", timeout=2)[0] == 200, 60)

        prom_port = free_port()
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "900ms", "evaluation_interval": "1s"},
            "rule_files": [str(path) for path in obs.RULE_FILES],
            "scrape_configs": [{
                "job_name": "palaver",
                "static_configs": [
                    {"targets": [f"127.0.0.1:{port}"],
                     # What the ServiceMonitor (and Prometheus' Kubernetes
                     # discovery) attach to a pod's series.
                     "labels": {"namespace": NAMESPACE, "pod": f"palaver-all-{index}", "role": "all",
                                "container": "palaver", "service": "palaver-all", "endpoint": "http"}}
                    for index, port in enumerate(ports)
                ],
            }],
        }
        (work / "prometheus.yml").write_text(yaml.safe_dump(config))
        run.spawn("prometheus", [
            PROMETHEUS, f"--config.file={work / 'prometheus.yml'}", f"--storage.tsdb.path={work / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}", "--log.level=warn"])
        prom = Prometheus(f"http://127.0.0.1:{prom_port}")

        def targets_up():
            active = prom.get("/api/v1/targets", state="active")["activeTargets"]
            return len(active) == 2 and all(t["health"] == "up" for t in active)
        wait_for("Prometheus to scrape both replicas", targets_up, 60)

        a, b = (f"http://127.0.0.1:{port}" for port in ports)
        drive_traffic(a, b, ports[1])
        # Scrapes after the traffic, and rule evaluations over them.
        time.sleep(4)
        wait_for("the recording rules to produce series",
                 lambda: prom.query("job:palaver_fanout_lag_seconds:p99_5m"), 30)
        yield run, prom, a, b
    except BaseException:
        for name in run.procs:
            print(f"---- {name} log ----\n{run.log(name)}")
        raise
    finally:
        run.close()
        if os.environ.get("KEEP_E2E") == "1":
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


#### The assertions


def test_prometheus_scrapes_both_replicas(stack):
    _, prom, _, _ = stack
    active = prom.get("/api/v1/targets", state="active")["activeTargets"]
    assert sorted(t["labels"]["pod"] for t in active) == ["palaver-all-0", "palaver-all-1"]
    assert {t["health"] for t in active} == {"up"}


def test_every_rule_group_loads_and_evaluates_without_errors(stack):
    _, prom, _, _ = stack
    groups = prom.get("/api/v1/rules")["groups"]
    assert sorted(g["name"] for g in groups) == sorted(g["name"] for g in obs.rule_groups())
    expected = {(r.get("alert") or r.get("record")) for r in obs.rules()}
    loaded = set()
    for group in groups:
        assert not group["lastEvaluation"].startswith("0001-"), f"{group['name']} never evaluated"
        for rule in group["rules"]:
            loaded.add(rule["name"])
            assert rule["health"] == "ok", f"{rule['name']}: {rule['health']} {rule.get('lastError')}"
            assert not rule.get("lastError"), f"{rule['name']}: {rule['lastError']}"
    assert loaded == expected


def test_every_recording_rule_yields_series(stack):
    _, prom, _, _ = stack
    empty = [name for name in sorted(obs.recorded_names()) if not prom.query(name)]
    assert empty == []


def test_every_metric_named_by_a_rule_or_dashboard_was_scraped_from_palaver(stack):
    _, prom, _, _ = stack
    external = obs.external_metrics()
    recorded = obs.recorded_names()
    missing = {}
    for name, where in sorted(obs.used_metrics().items()):
        if name in external:
            continue
        if name in recorded:
            selector = name
        else:
            # From a Palaver target, not from anything else Prometheus holds.
            selector = f'{name}{{job="palaver"}}'
        if not prom.query(f"count({selector})"):
            missing[name] = sorted(where)
    assert missing == {}, "metrics no Palaver target exports (add them to the code or the allow-list)"


def test_every_watched_series_is_exported_at_zero_by_a_freshly_started_server(stack):
    # Scraped before any other request: a series born with its first event
    # would hide that event from rate() and increase().
    run, _, _, _ = stack
    assert sorted(run.first_scrape) == ["palaver-0", "palaver-1"]
    for name, text in run.first_scrape.items():
        assert obs.missing_at_start(text) == [], f"{name}: watched series missing at start-up"
        assert "palaver_http_requests_total" not in text, f"{name} had answered a request before its first scrape"
    # The check fails on a broken copy: the same scrape without one series.
    broken = "\n".join(line for line in run.first_scrape["palaver-0"].splitlines()
                        if not line.startswith("palaver_stream_refused_total"))
    assert obs.missing_at_start(broken) == sorted(
        ["palaver_stream_refused_total"]
        + [f'palaver_stream_refused_total{{reason="{r}"}}' for r in ("client_cap", "opening_too_fast", "process_cap")
           if ("palaver_stream_refused_total", "reason", r) in obs.watched_at_start()])


def variable_values(prom: Prometheus) -> dict[str, str]:
    """What each dashboard variable resolves to here: its first value, or the
    regex of "All" for multi-value variables. Every variable must have values."""
    values = {"__rate_interval": RATE_INTERVAL, "__interval": "15s", "__range": "5m"}
    for _, variable in obs.variable_queries():
        selector, label = obs.variable_selector(variable["definition"])
        selector = substitute(selector or "", values) if selector else None
        params = {"match[]": selector} if selector else {}
        found = prom.get(f"/api/v1/label/{label}/values", **params)
        assert found, f"variable {variable['name']}: {variable['definition']} has no values"
        values[variable["name"]] = variable["allValue"] if variable.get("includeAll") else sorted(found)[0]
    return values


def substitute(expr: str, values: dict[str, str]) -> str:
    for name in sorted(values, key=len, reverse=True):
        expr = expr.replace("${" + name + "}", values[name]).replace("$" + name, values[name])
    return expr


def test_every_dashboard_query_runs_and_shows_data_unless_it_reads_cluster_metrics(stack):
    _, prom, _, _ = stack
    values = variable_values(prom)
    external = set(obs.external_metrics())
    no_data = []
    for dashboard, title, expr in obs.dashboard_queries():
        result = prom.query(substitute(expr, values))  # asserts the query is valid
        if not result and not (obs.metric_names(expr) & external):
            no_data.append(f"{dashboard}: {title}: {expr}")
    assert no_data == [], "panels that would stay empty"


# Alerts on how fast this machine is (a debug build on shared cores): their
# logic is covered by the promtool tests, their health by the rules test.
SPEED_ALERTS = {"PalaverLatencySLOBurnFast", "PalaverLatencySLOBurnSlow", "PalaverFanoutLagHigh"}


def test_nothing_alerts_on_healthy_traffic(stack):
    _, prom, _, _ = stack
    active = [a["labels"] for a in prom.get("/api/v1/alerts")["alerts"]
              if a["labels"]["alertname"].startswith("Palaver") and a["labels"]["alertname"] not in SPEED_ALERTS]
    assert active == []


def test_a_dead_replica_and_a_dead_database_raise_their_alerts(stack):
    # Last: it breaks the stack.
    run, prom, a, _ = stack
    run.stop("palaver-1", signal.SIGKILL)
    run.stop_database()
    # The readiness probe is what updates palaver_db_up.
    assert request("GET", f"{a}/readyz", timeout=15)[0] == 503

    def raised():
        request("GET", f"{a}/readyz", timeout=15)
        active = {(x["labels"]["alertname"], x["labels"].get("pod", "")) for x in prom.get("/api/v1/alerts")["alerts"]
                  if x["state"] in ("pending", "firing")}
        return {("PalaverTargetDown", "palaver-all-1"), ("PalaverDatabaseUnavailable", "")} <= active

    wait_for("PalaverTargetDown and PalaverDatabaseUnavailable to become pending", raised, 30, 1)
