"""Checks of the rules, promtool tests and dashboards that need no Prometheus.

promtool itself (check rules, test rules) runs in scripts/test-observability.sh;
these add what promtool cannot know: every alert is tested both ways and has a
runbook, every dashboard is importable and parameterised, and every metric
named anywhere is Palaver's own (declared in telemetry.rs), a recording rule
defined here, or on the one allow-list of cluster metrics.
"""

from __future__ import annotations

import re
from collections import Counter

import pytest
import yaml

import observability as obs

SEVERITIES = {"critical", "warning"}
RUNBOOK_BASE = "https://github.com/palaver/palaver/blob/main/deploy/observability/runbooks.md#"
VARIABLE = re.compile(r"\$(\{)?([A-Za-z_][A-Za-z0-9_]*)")


#### Rules


def test_rule_files_exist_and_hold_only_groups():
    assert obs.RULE_FILES, "no rule files in deploy/observability/rules"
    for path in obs.RULE_FILES:
        doc = yaml.safe_load(path.read_text())
        assert set(doc) == {"groups"}, path.name
    names = [group["name"] for group in obs.rule_groups()]
    assert len(names) == len(set(names)), f"duplicate group names: {names}"


def test_every_alert_has_a_severity_a_summary_a_description_and_a_runbook_section():
    headings = {
        re.sub(r"[^a-z0-9-]", "", line[3:].strip().lower().replace(" ", "-"))
        for line in obs.RUNBOOKS.read_text().splitlines()
        if line.startswith("## ")
    }
    names = Counter(alert["alert"] for alert in obs.alerts())
    assert [n for n, c in names.items() if c > 1] == [], "alert names must be unique"
    for alert in obs.alerts():
        name = alert["alert"]
        assert alert["labels"]["severity"] in SEVERITIES, name
        annotations = alert["annotations"]
        assert annotations["summary"].strip() and annotations["description"].strip(), name
        url = annotations["runbook_url"]
        assert url.startswith(RUNBOOK_BASE), f"{name}: {url}"
        anchor = url[len(RUNBOOK_BASE):]
        assert anchor == name.lower(), f"{name}: anchor {anchor}"
        assert anchor in headings, f"{name}: no '## {name}' section in runbooks.md"


def test_the_alerts_the_release_issue_asks_for_exist():
    names = {alert["alert"] for alert in obs.alerts()}
    assert {
        "PalaverHighErrorRatio",  # high error ratio
        "PalaverLatencySLOBurnFast",  # latency SLO burn rate
        "PalaverFanoutLagHigh",  # fan-out lag
        "PalaverStreamDisconnectStorm",  # stream disconnect storms
        "PalaverDatabaseUnavailable",  # database unavailable
        "PalaverPodsNotReady",  # pods not ready
        "PalaverHPAAtMax",  # HPA at max
    } <= names


def test_recording_rules_follow_the_naming_convention_and_are_all_used():
    used = obs.used_metrics()
    for name in obs.recorded_names():
        assert re.fullmatch(r"[a-z_]+:[a-z0-9_]+:[a-z0-9_]+", name), f"level:metric:operations expected: {name}"
        assert any(not where.startswith(f"rule {name}") for where in used.get(name, ())), f"{name} is never read"


def test_no_expression_selects_a_metric_by_its_name_label():
    # The metric-name extraction (and so the end-to-end existence check)
    # relies on metric names written as identifiers.
    exprs = [rule["expr"] for rule in obs.rules()] + [expr for _, _, expr in obs.dashboard_queries()]
    assert [e for e in exprs if "__name__" in str(e)] == []


#### promtool tests


def promtool_cases() -> list[dict]:
    cases = []
    for path in obs.PROMTOOL_TESTS:
        doc = yaml.safe_load(path.read_text())
        files = {(path.parent / f).resolve() for f in doc["rule_files"]}
        assert files == {p.resolve() for p in obs.RULE_FILES}, f"{path.name} must load every rule file"
        for test in doc["tests"]:
            cases.extend(test.get("alert_rule_test", []))
    return cases


def test_every_alert_has_a_promtool_case_where_it_fires_and_one_where_it_must_not():
    assert obs.PROMTOOL_TESTS, "no *.test.yaml in deploy/observability/tests"
    cases = promtool_cases()
    fires = {c["alertname"] for c in cases if c.get("exp_alerts")}
    quiet = {c["alertname"] for c in cases if not c.get("exp_alerts")}
    names = {alert["alert"] for alert in obs.alerts()}
    assert sorted(names - fires) == [], "alerts never shown to fire"
    assert sorted(names - quiet) == [], "alerts never shown to stay quiet"
    assert sorted((fires | quiet) - names) == [], "tests of alerts that do not exist"


def test_firing_cases_check_every_annotation():
    for case in promtool_cases():
        for alert in case.get("exp_alerts") or []:
            assert set(alert.get("exp_annotations", {})) >= {"summary", "description", "runbook_url"}, case["alertname"]
            assert alert["exp_labels"].get("severity") in SEVERITIES, case["alertname"]


#### Dashboards


@pytest.mark.parametrize("name", sorted(obs.dashboards()))
def test_dashboard_is_importable_and_parameterised(name):
    dashboard = obs.dashboards()[name]
    assert dashboard["id"] is None, "provisioned dashboards carry no database id"
    assert re.fullmatch(r"[a-z0-9-]{1,40}", dashboard["uid"])
    assert dashboard["title"].startswith("Palaver / ")
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 36
    assert "palaver" in dashboard["tags"]

    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            obs.variable_selector(variable["definition"])  # a label_values() query
            assert variable["query"]["query"] == variable["definition"]
            if variable.get("includeAll"):
                assert variable.get("allValue") == ".*", variable["name"]

    panels = obs.panels(dashboard)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    builtin = {"__rate_interval", "__interval", "__range"}
    for panel in panels:
        if panel["type"] == "row":
            continue
        where = f"{name}: {panel['title']}"
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
        assert panel.get("description", "").strip(), f"{where}: describe what the panel shows"
        assert panel["fieldConfig"]["defaults"].get("unit"), f"{where}: no unit"
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24 and grid["h"] > 0, where
        assert panel["targets"], where
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], where
            for braces, var in VARIABLE.findall(target["expr"]):
                assert var in variables or var in builtin, f"{where}: undefined variable ${var}"
            for var in ("role", "pod"):
                # Multi-value variables expand to a regex: only =~ matches them.
                assert not re.search(rf'[^=!]=\s*"\${var}"', target["expr"]), f"{where}: use =~ with ${var}"


def test_dashboard_uids_are_unique():
    uids = [d["uid"] for d in obs.dashboards().values()]
    assert len(uids) == len(set(uids))


def test_dashboards_cover_the_views_the_release_issue_asks_for():
    exprs = " ".join(expr for _, _, expr in obs.dashboard_queries())
    for metric in (
        "palaver_http_requests_total",  # traffic and errors
        "palaver_http_request_duration_seconds_bucket",  # latency percentiles
        "palaver_stream_connections",  # streams
        "palaver_fanout_lag_seconds_bucket",  # fan-out lag
        "palaver_group_commit_batch_size_bucket",  # batch sizes
        "palaver_db_pool_connections",  # DB pool
        "container_memory_working_set_bytes",  # per-pod resources
        "container_cpu_usage_seconds_total",
    ):
        assert metric in exprs, metric


#### Metric names


def test_every_metric_is_palavers_a_recording_rule_or_on_the_external_allow_list():
    external = obs.external_metrics()
    recorded = obs.recorded_names()
    declared = obs.telemetry_metrics()
    assert declared, f"no metric names found in {obs.TELEMETRY_RS}"
    unknown = {}
    for name, where in obs.used_metrics().items():
        if name in external or name in recorded or name in obs.SCRAPE_METRICS:
            continue
        if obs.base_metric(name) in declared or name in declared:
            continue
        unknown[name] = sorted(where)
    assert unknown == {}, "metrics neither exported by Palaver (telemetry.rs) nor allow-listed"


def test_the_external_allow_list_names_no_palaver_metric_and_no_unused_one():
    external = obs.external_metrics()
    assert [n for n in external if n.startswith("palaver_") or n in obs.SCRAPE_METRICS] == []
    used = obs.used_metrics()
    assert sorted(set(external) - set(used)) == [], "allow-listed but unused: remove them"


def test_the_start_up_check_knows_the_watched_series_and_fails_on_a_missing_one():
    watched = obs.watched_at_start()
    assert ("palaver_read_cache_evictions_total", "", "") in watched
    assert ("palaver_stream_closed_total", "reason", "lagging") in watched
    assert not any(f in obs.BORN_WITH_FIRST_REQUEST for f, _, _ in watched)
    # A scrape with every watched series passes; drop one, or watch one
    # more name, and the check names it.
    full = "\n".join(f'{f}{{{l}="{v}"}} 0' if l else f"{f} 0" for f, l, v in sorted(watched))
    assert obs.missing_at_start(full) == []
    broken = "\n".join(line for line in full.splitlines() if "evictions" not in line)
    assert obs.missing_at_start(broken) == ["palaver_read_cache_evictions_total"]
    extra = watched | {("palaver_not_exported_total", "", "")}
    assert obs.missing_at_start(full, extra) == ["palaver_not_exported_total"]


def test_every_metric_palaver_declares_is_watched_somewhere():
    used = {obs.base_metric(n) for n in obs.used_metrics()} | set(obs.used_metrics())
    assert sorted(obs.telemetry_metrics() - used) == [], "exported metrics no rule or panel shows"


@pytest.mark.parametrize(
    "expr, names",
    [
        ('sum by (job, le) (rate(a_bucket{x="y",z=~"b|c"}[5m]))', {"a_bucket"}),
        ("a / ignoring (state) b > 0.9", {"a", "b"}),
        ("x >= on (namespace, hpa) y", {"x", "y"}),
        ('histogram_quantile(0.99, sum(rate(h_bucket[$__rate_interval]))) and on() vector(1)', {"h_bucket"}),
        ('absent(up{job="palaver"})', {"up"}),
        ("job:r:ratio_rate5m > (14.4 * 0.001) unless z offset 1h", {"job:r:ratio_rate5m", "z"}),
        ('label_replace(m, "dst", "$1", "src", "(.*)")', {"m"}),
    ],
)
def test_metric_name_extraction(expr, names):
    assert obs.metric_names(expr) == names
