"""Tests over the rendered deployment manifests, and tests that those tests bite.

scripts/test-deploy.sh renders every chart configuration (ci/*-values.yaml)
and both Kustomize overlays into $PALAVER_RENDER_DIR, then runs this file:

- every rendered file passes the schema and policy checks of k8s_checks;
- the checks reject deliberately broken variants of a good render (each
  mutation names the problem it must produce), so a check that silently
  stopped working fails here;
- the chart itself refuses values that would put a password in the release
  or break the contract (run through $PALAVER_HELM).
"""

from __future__ import annotations

import base64
import copy
import os
import subprocess
from pathlib import Path

import pytest

import k8s_checks

RENDER_DIR = Path(os.environ.get("PALAVER_RENDER_DIR", ""))
HELM = os.environ.get("PALAVER_HELM", "helm")
CHART = Path(__file__).resolve().parents[1] / "helm" / "palaver"
GOOD = "chart-all-roles.yaml"


def rendered_files() -> list[Path]:
    if not os.environ.get("PALAVER_RENDER_DIR"):
        pytest.fail("PALAVER_RENDER_DIR is not set: run scripts/test-deploy.sh")
    files = sorted(RENDER_DIR.glob("*.yaml"))
    assert files, f"nothing rendered in {RENDER_DIR}"
    return files


@pytest.fixture(scope="module")
def good_docs() -> list[dict]:
    return k8s_checks.load_file(RENDER_DIR / GOOD)


# ---------------------------------------------------------------------------
# The real renders


@pytest.mark.parametrize("path", rendered_files() if os.environ.get("PALAVER_RENDER_DIR") else [],
                         ids=lambda p: p.name)
def test_rendered_manifests_validate_against_kubernetes_and_crd_schemas(path: Path):
    assert k8s_checks.schema_problems(k8s_checks.load_file(path)) == []


def workload_renders() -> list[Path]:
    """Renders of the chart (CI values, and each environment's release); the
    Kustomize renders are the namespace layer, without workloads."""
    return [p for p in rendered_files() if not p.name.startswith("kustomize-")]


@pytest.mark.parametrize("path", workload_renders() if os.environ.get("PALAVER_RENDER_DIR") else [],
                         ids=lambda p: p.name)
def test_rendered_manifests_meet_the_workload_policy(path: Path):
    assert k8s_checks.policy_problems(k8s_checks.load_file(path)) == []


def test_every_render_has_its_workloads():
    names = {p.name for p in rendered_files()}
    assert {GOOD, "release-staging.yaml", "release-production.yaml", "kustomize-staging.yaml", "kustomize-production.yaml"} <= names
    for path in workload_renders():
        kinds = {d["kind"] for d in k8s_checks.load_file(path)}
        assert {"Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy", "Job"} <= kinds, path.name


def test_kustomize_renders_carry_the_restricted_namespace():
    for env in ("staging", "production"):
        docs = k8s_checks.load_file(RENDER_DIR / f"kustomize-{env}.yaml")
        namespaces = [d for d in docs if d["kind"] == "Namespace"]
        assert len(namespaces) == 1
        labels = namespaces[0]["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
        assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {"palaver"}
        kinds = {d["kind"] for d in docs}
        assert {"ResourceQuota", "LimitRange", "ConfigMap"} <= kinds
        bundle = next(d for d in docs if d["kind"] == "ConfigMap")
        assert bundle["metadata"]["name"] == "rds-ca-bundle" and "global-bundle.pem" in bundle["data"]


# ---------------------------------------------------------------------------
# The checks reject broken manifests


def find(docs, kind, name_suffix=""):
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"].endswith(name_suffix))


def container(docs, suffix="-api"):
    return find(docs, "Deployment", suffix)["spec"]["template"]["spec"]["containers"][0]


def set_root(docs):
    c = container(docs)
    c["securityContext"]["runAsUser"] = 0
    c["securityContext"]["runAsNonRoot"] = False


def add_capability(docs):
    container(docs)["securityContext"]["capabilities"]["add"] = ["NET_ADMIN"]


def writable_root(docs):
    del container(docs, "-gateway")["securityContext"]["readOnlyRootFilesystem"]


def escalation(docs):
    container(docs, "-web")["securityContext"]["allowPrivilegeEscalation"] = True


def no_seccomp(docs):
    pod = find(docs, "Deployment", "-api")["spec"]["template"]["spec"]
    del pod["securityContext"]["seccompProfile"]
    del pod["containers"][0]["securityContext"]["seccompProfile"]


def no_readiness(docs):
    del container(docs)["readinessProbe"]


def no_startup(docs):
    del container(docs, "-gateway")["startupProbe"]


def liveness_on_readyz(docs):
    container(docs)["livenessProbe"]["httpGet"]["path"] = "/readyz"


def no_memory_limit(docs):
    del container(docs, "-web")["resources"]["limits"]["memory"]


def job_without_requests(docs):
    del find(docs, "Job")["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]


def literal_password_env(docs):
    container(docs)["env"].append({"name": "DB_PASSWORD", "value": "hunter2"})


def literal_database_url(docs):
    env = container(docs, "-gateway")["env"]
    env[:] = [e for e in env if e["name"] != "PALAVER_DATABASE_URL"]
    env.append({"name": "PALAVER_DB", "value": "postgres://palaver:hunter2@db:5432/palaver"})


def secret_with_password(docs):
    docs.append({"apiVersion": "v1", "kind": "Secret",
                 "metadata": {"name": "palaver-database", "namespace": "palaver"},
                 "data": {"url": base64.b64encode(b"postgres://u:hunter2@db/palaver").decode()}})


def configmap_with_password(docs):
    find(docs, "ConfigMap")["data"]["PALAVER_DATABASE_URL"] = "postgres://u:hunter2@db/palaver"


def no_pdb(docs):
    docs.remove(find(docs, "PodDisruptionBudget", "-gateway"))


def no_hpa(docs):
    docs.remove(find(docs, "HorizontalPodAutoscaler", "-api"))


def replicas_fight_hpa(docs):
    find(docs, "Deployment", "-web")["spec"]["replicas"] = 3


def no_network_policies(docs):
    docs[:] = [d for d in docs if d["kind"] != "NetworkPolicy"]


def no_default_deny(docs):
    docs.remove(find(docs, "NetworkPolicy", "-default-deny"))


def egress_anywhere(docs):
    find(docs, "NetworkPolicy", "-api")["spec"]["egress"].append({})


def https_from_the_gateway(docs):
    # Only the roles that serve files may reach S3.
    find(docs, "NetworkPolicy", "-gateway")["spec"]["egress"].append(
        {"to": [{"ipBlock": dict(k8s_checks.S3_EGRESS)}], "ports": [{"protocol": "TCP", "port": 443}]})


def api_https_anywhere(docs):
    # S3 egress that reaches the private ranges too is not the files rule.
    find(docs, "NetworkPolicy", "-api")["spec"]["egress"].append(
        {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": [{"protocol": "TCP", "port": 443}]})


def ingress_from_anyone(docs):
    find(docs, "NetworkPolicy", "-web")["spec"]["ingress"].append({"ports": [{"port": 8080}]})


def token_mounted(docs):
    find(docs, "Deployment", "-api")["spec"]["template"]["spec"]["automountServiceAccountToken"] = True


def short_grace(docs):
    find(docs, "Deployment", "-gateway")["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 20


def latest_image(docs):
    container(docs)["image"] = "palaver:latest"


def default_namespace(docs):
    find(docs, "Service", "-api")["metadata"]["namespace"] = "default"


def unrestricted_namespace(docs):
    docs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "palaver", "labels": {}}})


def stream_to_api(docs):
    ingress = find(docs, "Ingress")
    for path in ingress["spec"]["rules"][0]["http"]["paths"]:
        if path["path"] == "/api/*/stream":
            path["backend"]["service"]["name"] = "palaver-api"


def short_idle_timeout(docs):
    ann = find(docs, "Ingress")["metadata"]["annotations"]
    ann["alb.ingress.kubernetes.io/load-balancer-attributes"] = "idle_timeout.timeout_seconds=15"


def no_waf(docs):
    del find(docs, "Ingress")["metadata"]["annotations"]["alb.ingress.kubernetes.io/wafv2-acl-arn"]


def no_checksum(docs):
    del find(docs, "Deployment", "-api")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]


def no_tmp(docs):
    pod = find(docs, "Deployment", "-web")["spec"]["template"]["spec"]
    pod["containers"][0]["volumeMounts"] = []


POLICY_MUTATIONS = [
    (set_root, "runAsNonRoot must be true"),
    (set_root, "runAsUser must be a non-zero"),
    (add_capability, "must not add capabilities"),
    (writable_root, "readOnlyRootFilesystem must be true"),
    (escalation, "allowPrivilegeEscalation must be false"),
    (no_seccomp, "seccompProfile.type must be RuntimeDefault"),
    (no_readiness, "readinessProbe must GET /readyz"),
    (no_startup, "startupProbe must GET /healthz"),
    (liveness_on_readyz, "livenessProbe must GET /healthz"),
    (no_memory_limit, "resources.limits.memory is not set"),
    (job_without_requests, "resources.requests.cpu is not set"),
    (literal_password_env, "env DB_PASSWORD carries a literal value"),
    (literal_database_url, "carries a URL with a password"),
    (secret_with_password, "holds a literal credential"),
    (configmap_with_password, "credential in a ConfigMap"),
    (no_pdb, "no PodDisruptionBudget selects"),
    (no_hpa, "needs a HorizontalPodAutoscaler"),
    (replicas_fight_hpa, "sets spec.replicas although an HPA"),
    (no_network_policies, "no NetworkPolicy selects its pods"),
    (no_default_deny, "no default-deny NetworkPolicy"),
    (egress_anywhere, "egress must be limited"),
    (https_from_the_gateway, "egress must be limited"),
    (api_https_anywhere, "egress must be limited"),
    (ingress_from_anyone, "admits every source"),
    (token_mounted, "automountServiceAccountToken must be false"),
    (short_grace, "terminationGracePeriodSeconds 20 must exceed"),
    (latest_image, "needs a fixed tag or a digest"),
    (default_namespace, "explicit namespace other than default"),
    (unrestricted_namespace, "must enforce restricted"),
    (stream_to_api, "stream path must route to the gateway"),
    (short_idle_timeout, "idle timeout 15s must exceed"),
    (no_waf, "without a WAFv2 web ACL"),
    (no_checksum, "checksum/config"),
    (no_tmp, "emptyDir mounted at /tmp"),
]


def test_the_good_render_is_clean(good_docs):
    assert k8s_checks.policy_problems(good_docs) == []
    assert k8s_checks.schema_problems(good_docs) == []


@pytest.mark.parametrize("mutate,expected", POLICY_MUTATIONS,
                         ids=[f"{m.__name__}:{e[:24]}" for m, e in POLICY_MUTATIONS])
def test_policy_rejects_a_broken_manifest(good_docs, mutate, expected):
    docs = copy.deepcopy(good_docs)
    mutate(docs)
    problems = k8s_checks.policy_problems(docs)
    assert any(expected in p for p in problems), problems


def unknown_field(docs):
    container(docs)["securityContext"]["readOnlyRootFilesytem"] = True


def wrong_type(docs):
    find(docs, "HorizontalPodAutoscaler", "-api")["spec"]["maxReplicas"] = "ten"


def removed_api(docs):
    find(docs, "PodDisruptionBudget", "-api")["apiVersion"] = "policy/v1beta1"


def bad_crd_field(docs):
    find(docs, "ServiceMonitor")["spec"]["endpoints"][0]["intervall"] = "30s"


def bad_rule(docs):
    find(docs, "PrometheusRule")["spec"]["groups"][0]["rules"][0].pop("expr")


def unknown_crd(docs):
    docs.append({"apiVersion": "example.com/v1", "kind": "Widget",
                 "metadata": {"name": "w", "namespace": "palaver"}, "spec": {}})


SCHEMA_MUTATIONS = [
    (unknown_field, "'readOnlyRootFilesytem' was unexpected"),
    (wrong_type, "maxReplicas"),
    (removed_api, "does not exist in Kubernetes"),
    (bad_crd_field, "'intervall' was unexpected"),
    (bad_rule, "'expr' is a required property"),
    (unknown_crd, "no schema for custom resource"),
]


@pytest.mark.parametrize("mutate,expected", SCHEMA_MUTATIONS, ids=[m.__name__ for m, _ in SCHEMA_MUTATIONS])
def test_schema_validation_rejects_a_broken_manifest(good_docs, mutate, expected):
    docs = copy.deepcopy(good_docs)
    mutate(docs)
    problems = k8s_checks.schema_problems(docs)
    assert any(expected in p for p in problems), problems


def test_external_secret_schema_rejects_an_unknown_creation_policy():
    docs = k8s_checks.load_file(RENDER_DIR / "chart-external-secret.yaml")
    es = find(docs, "ExternalSecret")
    assert k8s_checks.schema_problems([es]) == []
    es["spec"]["target"]["creationPolicy"] = "Sometimes"
    assert any("creationPolicy" in p for p in k8s_checks.schema_problems([es]))


# ---------------------------------------------------------------------------
# The chart refuses bad values


def helm_template(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [HELM, "template", "palaver", str(CHART), "--namespace", "palaver",
         "-f", str(CHART / "ci" / "all-roles-values.yaml"), *args],
        capture_output=True, text=True, timeout=60)


CHART_REJECTIONS = [
    (["--set", "database.password=hunter2"], "additional properties 'password' not allowed"),
    (["--set", "database.url=postgres://u:p@db/palaver"], "additional properties 'url' not allowed"),
    (["--set", "config.extraEnv.DB_PASSWORD=hunter2"], "DB_PASSWORD"),
    (["--set", "config.extraEnv.PALAVER_DATABASE_URL=postgres://u:p@db/x"], "PALAVER_DATABASE_URL"),
    (["--set", "securityContext.readOnlyRootFilesystem=false"], "readOnlyRootFilesystem"),
    (["--set", "podSecurityContext.runAsNonRoot=false"], "runAsNonRoot"),
    (["--set", "image.tag=latest"], "/image/tag"),
    (["--set", "roles.all.enabled=true"], "roles.all.enabled runs every role"),
    (["--set", "ingress.alb.idleTimeoutSeconds=20"], "must be greater than config.heartbeatIntervalSeconds"),
    (["--set", "ingress.alb.certificateArn="], "certificateArn is required"),
    (["--set", "ingress.alb.wafv2AclArn="], "wafv2AclArn is required"),
    (["--set", "database.existingSecret="], "set database.existingSecret"),
    (["--set", "networkPolicy.ingress.cidrs=null"], "networkPolicy.ingress.cidrs is required"),
]


@pytest.mark.parametrize("args,expected", CHART_REJECTIONS, ids=[a[1].split("=")[0] for a, _ in CHART_REJECTIONS])
def test_chart_refuses_values(args, expected):
    result = helm_template(*args)
    assert result.returncode != 0, f"helm template accepted {args}"
    assert expected in result.stderr, result.stderr


def test_chart_accepts_the_ci_values_and_harmless_extra_env():
    assert helm_template().returncode == 0
    result = helm_template("--set", "config.extraEnv.RUST_LOG=info")
    assert result.returncode == 0, result.stderr
    assert 'RUST_LOG: "info"' in result.stdout


# ---------------------------------------------------------------------------
# Chart documentation and the container image definition


def test_every_value_is_documented_and_the_readme_table_is_current():
    import values_doc

    text = (CHART / "values.yaml").read_text()
    _, missing = values_doc.documented_keys(text)
    assert missing == [], f"values without a '# --' comment: {missing}"
    readme = (CHART / "README.md").read_text()
    assert values_doc.table(text) in readme, "run: python deploy/tests/values_doc.py --write"


OBSERVABILITY = CHART.parents[1] / "observability"


def test_chart_rule_and_dashboard_files_are_links_to_deploy_observability():
    # One source of truth: the chart reads deploy/observability through
    # symbolic links (helm follows them when rendering and packaging).
    for name in ("rules", "dashboards"):
        link = CHART / "files" / name
        assert link.is_symlink(), f"files/{name} must link to deploy/observability/{name}, not copy it"
        assert link.resolve() == (OBSERVABILITY / name).resolve()
        assert not Path(os.readlink(link)).is_absolute(), "a relative link survives checkouts elsewhere"


def test_the_packaged_chart_carries_the_rule_and_dashboard_files_themselves(tmp_path):
    import tarfile

    result = subprocess.run([HELM, "package", str(CHART), "--destination", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    (package,) = tmp_path.glob("palaver-*.tgz")
    with tarfile.open(package) as tar:
        members = {m.name: m for m in tar.getmembers()}
        for source in sorted((OBSERVABILITY / "rules").glob("*.yaml")) + sorted((OBSERVABILITY / "dashboards").glob("*.json")):
            name = f"palaver/files/{source.parent.name}/{source.name}"
            assert name in members and members[name].isfile(), f"{name} missing from the package"
            assert tar.extractfile(members[name]).read() == source.read_bytes()


def test_prometheus_rule_files_are_rule_files():
    import yaml

    files = sorted((CHART / "files" / "rules").glob("*.yaml"))
    assert files
    for path in files:
        doc = yaml.safe_load(path.read_text())
        assert set(doc) == {"groups"}, path.name
        for group in doc["groups"]:
            assert group["name"] and group["rules"], path.name
            for rule in group["rules"]:
                assert ("alert" in rule) != ("record" in rule) and str(rule["expr"]).strip(), rule


def observability_groups() -> list[dict]:
    import yaml

    groups = []
    for path in sorted((OBSERVABILITY / "rules").glob("*.yaml")):
        groups.extend(yaml.safe_load(path.read_text())["groups"])
    return groups


@pytest.mark.parametrize("render", [GOOD, "release-staging.yaml", "release-production.yaml"])
def test_rendered_prometheus_rule_is_deploy_observability_verbatim(render):
    docs = k8s_checks.load_file(RENDER_DIR / render)
    rules = [d for d in docs if d["kind"] == "PrometheusRule"]
    assert len(rules) == 1, render
    assert rules[0]["spec"]["groups"] == observability_groups()


def test_rendered_dashboard_configmaps_are_deploy_observability_verbatim(good_docs):
    dashboards = {path.name: path.read_text() for path in sorted((OBSERVABILITY / "dashboards").glob("*.json"))}
    assert dashboards
    rendered = {}
    for doc in good_docs:
        if doc["kind"] == "ConfigMap" and doc["metadata"].get("labels", {}).get("grafana_dashboard") == "1":
            assert len(doc["data"]) == 1, doc["metadata"]["name"]
            rendered.update(doc["data"])
    assert rendered == dashboards


DOCKERFILE = CHART.parents[1] / "docker" / "Dockerfile"


def dockerfile_stages() -> list[list[str]]:
    """Instructions (continuation lines joined) grouped by FROM stage."""
    lines, current = [], ""
    for raw in DOCKERFILE.read_text().splitlines():
        if raw.lstrip().startswith("#") and not current:
            continue
        current += raw.rstrip("\\").strip() + " "
        if not raw.rstrip().endswith("\\"):
            if current.strip():
                lines.append(current.strip())
            current = ""
    stages: list[list[str]] = []
    for line in lines:
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def test_dockerfile_caches_dependencies_before_sources_and_ships_a_minimal_nonroot_image():
    stages = dockerfile_stages()
    assert len(stages) >= 3, "multi-stage build expected"
    builder = next(s for s in stages if " AS builder" in s[0])
    cook = next(i for i, l in enumerate(builder) if "cargo chef cook" in l)
    sources = next(i for i, l in enumerate(builder) if l.startswith("COPY . ."))
    build = next(i for i, l in enumerate(builder) if "cargo build --release --locked -p palaver" in l)
    assert cook < sources < build, "dependencies must build in a layer before the sources are copied"

    final = stages[-1]
    assert final[0].startswith("FROM gcr.io/distroless/cc-debian12:nonroot")
    users = [l for l in final if l.startswith("USER ")]
    assert users and users[-1].split()[1].split(":")[0].isdigit(), "USER must be a numeric UID"
    assert users[-1].split()[1].split(":")[0] != "0"
    assert any(l.startswith("HEALTHCHECK") and '"/palaver", "healthcheck"' in l for l in final)
    assert any(l.startswith('ENTRYPOINT ["/palaver"]') for l in final)
    labels = " ".join(l for l in final if l.startswith("LABEL "))
    for key in ("title", "description", "version", "revision", "created", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels, key
    assert any("PALAVER_LISTEN=0.0.0.0:8080" in l for l in final)


def test_dockerignore_sends_only_the_workspace():
    lines = [l.strip() for l in (CHART.parents[2] / ".dockerignore").read_text().splitlines()
             if l.strip() and not l.startswith("#")]
    assert lines[0] == "*", "allow-list: ignore everything first"
    for needed in ("!Cargo.toml", "!Cargo.lock", "!crates/", "!web/"):
        assert needed in lines
    assert "**/target/" in lines


def test_environments_set_their_own_values_and_the_infrastructure_the_rest():
    import yaml

    infra = yaml.safe_load((Path(__file__).parent / "fixtures" / "infra-values.yaml").read_text())
    rendered = {env: k8s_checks.load_file(RENDER_DIR / f"release-{env}.yaml") for env in ("staging", "production")}
    for env, docs in rendered.items():
        # The host is Terraform's host_name (the certificate's), not the environment file's.
        assert [r["host"] for r in find(docs, "Ingress")["spec"]["rules"]] == infra["ingress"]["hosts"]
        images = {c["image"] for d in docs if d["kind"] in ("Deployment", "Job") and not d["metadata"]["name"].endswith("db-bootstrap")
                  for c in d["spec"]["template"]["spec"]["containers"]}
        assert images == {infra["image"]["repository"] + "@sha256:" + "0" * 64}
        database = find(docs, "ExternalSecret", "-database")
        assert {d["remoteRef"]["key"] for d in database["spec"]["data"]} == {infra["database"]["externalSecret"]["key"], infra["bus"]["redis"]["key"]}
        assert "PALAVER_BUS" in database["spec"]["target"]["template"]["data"]
        ann = find(docs, "Ingress")["metadata"]["annotations"]
        assert ann["alb.ingress.kubernetes.io/wafv2-acl-arn"] == infra["ingress"]["alb"]["wafv2AclArn"]
        assert find(docs, "ConfigMap", "-config")["data"]["PALAVER_TRUSTED_PROXIES"] == ",".join(infra["config"]["trustedProxies"])
        assert find(docs, "Job", "-db-bootstrap"), "the database bootstrap hook runs in every environment"
    prod_api = find(rendered["production"], "HorizontalPodAutoscaler", "-api")["spec"]
    stag_api = find(rendered["staging"], "HorizontalPodAutoscaler", "-api")["spec"]
    assert prod_api["minReplicas"] >= 3 > stag_api["minReplicas"]
