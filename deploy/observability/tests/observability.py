"""What the observability tests share: the files of deploy/observability, and
the names of the metrics their PromQL expressions read.

PromQL is parsed just far enough to find metric names: string literals, label
matchers, range selectors and grouping clauses are blanked out, then every
identifier that is not a keyword and not followed by "(" (a function or an
aggregation) names a metric. That covers the expressions written here; a
metric written only as {__name__="..."} would be missed, so the static tests
forbid that form.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
OBSERVABILITY = HERE.parent
ROOT = OBSERVABILITY.parents[1]
RULE_FILES = sorted((OBSERVABILITY / "rules").glob("*.yaml"))
DASHBOARD_FILES = sorted((OBSERVABILITY / "dashboards").glob("*.json"))
PROMTOOL_TESTS = sorted(HERE.glob("*.test.yaml"))
EXTERNAL_METRICS_FILE = OBSERVABILITY / "external-metrics.yaml"
RUNBOOKS = OBSERVABILITY / "runbooks.md"
TELEMETRY_RS = ROOT / "crates" / "palaver" / "src" / "telemetry.rs"

# Metrics Prometheus itself attaches to every scrape of a Palaver target.
SCRAPE_METRICS = {"up"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

_KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
    "offset", "and", "or", "unless", "atan2", "inf", "nan", "start", "end",
}
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.I)
_TOKEN = re.compile(r"[0-9][0-9A-Za-z_.]*|[A-Za-z_:][A-Za-z0-9_:]*")
_LABEL_VALUES = re.compile(r"^\s*label_values\((?:(?P<selector>.*),)?\s*(?P<label>[A-Za-z_][A-Za-z0-9_]*)\s*\)\s*$", re.S)


def metric_names(expr: str) -> set[str]:
    """Metric names read by a PromQL expression."""
    text = _STRING.sub('""', str(expr))
    text = _MATCHERS.sub("{}", text)
    text = _RANGE.sub("[]", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for match in _TOKEN.finditer(text):
        token = match.group()
        if token[0].isdigit() or token.lower() in _KEYWORDS:
            continue
        rest = text[match.end():].lstrip()
        if rest.startswith("("):
            continue  # a function or an aggregation operator
        names.add(token)
    return names


def base_metric(name: str) -> str:
    """The exported family of a series name (histogram suffixes removed)."""
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


#### Rules


@cache
def rule_groups() -> list[dict]:
    groups = []
    for path in RULE_FILES:
        groups.extend(yaml.safe_load(path.read_text())["groups"])
    return groups


def rules() -> list[dict]:
    return [rule for group in rule_groups() for rule in group["rules"]]


def alerts() -> list[dict]:
    return [rule for rule in rules() if "alert" in rule]


def recorded_names() -> set[str]:
    return {rule["record"] for rule in rules() if "record" in rule}


#### Dashboards


@cache
def dashboards() -> dict[str, dict]:
    return {path.name: json.loads(path.read_text()) for path in DASHBOARD_FILES}


def panels(dashboard: dict) -> list[dict]:
    """Every panel, including those nested in collapsed rows."""
    found = []
    for panel in dashboard.get("panels", []):
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, expr) of every panel target."""
    queries = []
    for name, dashboard in dashboards().items():
        for panel in panels(dashboard):
            for target in panel.get("targets", []):
                queries.append((name, panel["title"], target["expr"]))
    return queries


def variable_selector(query: str) -> tuple[str | None, str]:
    """The series selector and label of a `label_values(selector, label)` query."""
    match = _LABEL_VALUES.match(query)
    if not match:
        raise ValueError(f"not a label_values() query: {query}")
    return match.group("selector"), match.group("label")


def variable_queries() -> list[tuple[str, dict]]:
    found = []
    for name, dashboard in dashboards().items():
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                found.append((name, variable))
    return found


#### Metric names in one place


def external_metrics() -> dict[str, str]:
    """The allow-list: metric name -> the exporter that produces it."""
    doc = yaml.safe_load(EXTERNAL_METRICS_FILE.read_text())
    return {entry["name"]: source for source, entries in doc.items() for entry in entries}


def used_metrics() -> dict[str, set[str]]:
    """Metric name -> where it is used (rule names, dashboard panels)."""
    used: dict[str, set[str]] = {}
    for rule in rules():
        where = rule.get("alert") or rule.get("record")
        for name in metric_names(rule["expr"]):
            used.setdefault(name, set()).add(f"rule {where}")
    for dashboard, title, expr in dashboard_queries():
        for name in metric_names(expr):
            used.setdefault(name, set()).add(f"{dashboard}: {title}")
    for dashboard, variable in variable_queries():
        selector, _ = variable_selector(variable["definition"])
        for name in metric_names(selector or ""):
            used.setdefault(name, set()).add(f"{dashboard}: variable {variable['name']}")
    return used


#### What a freshly started server exports

# Watched series a server that has answered no request cannot have: they are
# labelled by the route and status of the requests answered. Every other
# watched Palaver series exists, at 0, from start-up (telemetry.rs,
# register_at_zero).
BORN_WITH_FIRST_REQUEST = {"palaver_http_requests_total", "palaver_http_request_duration_seconds"}
# Labels Prometheus (or the ServiceMonitor) attaches, not Palaver.
TARGET_LABELS = {"job", "namespace", "pod", "role", "container", "service", "endpoint", "instance"}
_SELECTOR = re.compile(r"\b(palaver_[a-z_]+)\{([^{}]*)\}")
_EQUAL = re.compile(r'\b([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"([^"]*)"')
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s")
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


def all_exprs() -> list[str]:
    exprs = [rule["expr"] for rule in rules()]
    exprs += [expr for _, _, expr in dashboard_queries()]
    exprs += [variable_selector(v["definition"])[0] or "" for _, v in variable_queries()]
    return exprs


def watched_at_start() -> set[tuple[str, str, str]]:
    """What a freshly started Palaver must export: (family, label, value) for
    every Palaver metric a rule or panel names ("" label: the family itself),
    and every exact label value they select it by (`reason="lagging"`)."""
    watched = set()
    for name in used_metrics():
        family = base_metric(name)
        if family.startswith("palaver_") and family not in BORN_WITH_FIRST_REQUEST:
            watched.add((family, "", ""))
    for expr in all_exprs():
        for match in _SELECTOR.finditer(str(expr)):
            family = base_metric(match.group(1))
            if family in BORN_WITH_FIRST_REQUEST:
                continue
            for label, value in _EQUAL.findall(match.group(2)):
                if label not in TARGET_LABELS and "$" not in value:
                    watched.add((family, label, value))
    return watched


def exported(exposition: str) -> set[tuple[str, str, str]]:
    """(family, label, value) of every sample in a Prometheus text scrape,
    plus (family, "", "") for each family."""
    found = set()
    for line in exposition.splitlines():
        match = _SAMPLE.match(line)
        if not match or line.startswith("#"):
            continue
        family = base_metric(match.group(1))
        found.add((family, "", ""))
        for label, value in _LABEL.findall(match.group(2) or ""):
            found.add((family, label, value))
    return found


def missing_at_start(exposition: str, watched: set[tuple[str, str, str]] | None = None) -> list[str]:
    """The watched series a scrape lacks, as `family` or `family{label="value"}`."""
    watched = watched_at_start() if watched is None else watched
    have = exported(exposition)
    return sorted(f'{f}{{{l}="{v}"}}' if l else f for f, l, v in watched - have)


def telemetry_metrics() -> set[str]:
    """The metric names the Rust code declares in telemetry::metrics."""
    return set(re.findall(r'pub const [A-Z_]+: &str = "([a-z_:]+)";', TELEMETRY_RS.read_text()))
