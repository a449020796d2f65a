"""Checks over rendered Kubernetes manifests (helm template / kustomize output).

Two families, both returning a list of human-readable problems (empty = pass):

- ``schema_problems``: built-in kinds validate strictly against the Kubernetes
  OpenAPI schemas of ``KUBERNETES_VERSION`` (kubernetes-validate); custom
  resources validate against the schemas in ``crd-schemas/``. A kind with no
  schema at all is a problem, never a silent pass.
- ``policy_problems``: what the platform asks of every workload (Pod Security
  Standard ``restricted``, probes, resources, PDB/HPA, NetworkPolicies, no
  literal credentials, ingress routing).

Run as a script on files to print problems: ``python k8s_checks.py FILE...``.
"""

from __future__ import annotations

import base64
import json
import re
import sys
from pathlib import Path
from typing import Iterable

import jsonschema
import kubernetes_validate
import yaml
from kubernetes_validate.utils import SchemaNotFoundError

KUBERNETES_VERSION = "1.33"
CRD_SCHEMA_DIR = Path(__file__).parent / "crd-schemas"
CRD_SCHEMAS = {
    "ExternalSecret": "externalsecret.json",
    "ServiceMonitor": "servicemonitor.json",
    "PrometheusRule": "prometheusrule.json",
}

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"}
LONG_RUNNING_KINDS = {"Deployment", "StatefulSet", "DaemonSet"}
CLUSTER_SCOPED_KINDS = {"Namespace", "ClusterRole", "ClusterRoleBinding", "IngressClass", "PriorityClass"}
# Roles that DESIGN §1 scales horizontally: they must have an autoscaler.
AUTOSCALED_ROLES = {"api", "gateway"}
APP_PORT = 8080
DNS_PORT = 53
DATABASE_PORT = 5432
# The Valkey broker of the fan-out bus (bus.redis, issue 12).
BUS_PORT = 6379

CREDENTIAL_NAME = re.compile(r"passw|secret|token|credential|private.?key|api.?key|database.?url|dsn", re.I)
# scheme://user:password@host — a URL that embeds a password.
URL_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", re.I)


# ---------------------------------------------------------------------------
# Loading


def load_documents(text: str) -> list[dict]:
    """All non-empty YAML documents of a multi-document stream."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def load_file(path: str | Path) -> list[dict]:
    return load_documents(Path(path).read_text())


def ident(doc: dict) -> str:
    meta = doc.get("metadata") or {}
    return f"{doc.get('kind')}/{meta.get('name')}"


def is_builtin(api_version: str) -> bool:
    """Core and *.k8s.io groups ship with Kubernetes; anything else is a CRD."""
    group = api_version.rpartition("/")[0]
    return group == "" or "." not in group or group.endswith(".k8s.io")


# ---------------------------------------------------------------------------
# Schemas


def schema_problems(docs: Iterable[dict], version: str = KUBERNETES_VERSION) -> list[str]:
    problems = []
    for doc in docs:
        api_version, kind = doc.get("apiVersion"), doc.get("kind")
        if not isinstance(api_version, str) or not isinstance(kind, str):
            problems.append(f"{ident(doc)}: apiVersion and kind are required")
            continue
        if is_builtin(api_version):
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except SchemaNotFoundError:
                problems.append(f"{ident(doc)}: {api_version} {kind} does not exist in Kubernetes {version}")
            except jsonschema.ValidationError as err:
                path = ".".join(str(p) for p in err.path)
                problems.append(f"{ident(doc)}: {path}: {err.message}")
        elif kind in CRD_SCHEMAS:
            schema = json.loads((CRD_SCHEMA_DIR / CRD_SCHEMAS[kind]).read_text())
            validator = jsonschema.Draft202012Validator(schema)
            for err in sorted(validator.iter_errors(doc), key=lambda e: list(e.path)):
                path = ".".join(str(p) for p in err.path)
                problems.append(f"{ident(doc)}: {path}: {err.message}")
        else:
            problems.append(f"{ident(doc)}: no schema for custom resource {api_version} {kind}")
    return problems


# ---------------------------------------------------------------------------
# Policy


def pod_spec(doc: dict) -> dict:
    spec = doc.get("spec") or {}
    if doc["kind"] == "Pod":
        return spec
    if doc["kind"] == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    return ((spec.get("template") or {}).get("spec")) or {}


def pod_labels(doc: dict) -> dict:
    if doc["kind"] == "Pod":
        return (doc.get("metadata") or {}).get("labels") or {}
    spec = doc.get("spec") or {}
    if doc["kind"] == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    return ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}


def selector_matches(selector: dict | None, labels: dict) -> bool:
    """Kubernetes LabelSelector semantics (an empty selector matches everything)."""
    selector = selector or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def env_value(container: dict, configmaps: dict[str, dict], name: str) -> str | None:
    for env in container.get("env") or []:
        if env.get("name") == name and "value" in env:
            return str(env["value"])
    for source in container.get("envFrom") or []:
        ref = (source.get("configMapRef") or {}).get("name")
        if ref in configmaps and name in configmaps[ref]:
            return str(configmaps[ref][name])
    return None


def container_problems(where: str, container: dict, pod: dict) -> list[str]:
    problems = []
    psc = pod.get("securityContext") or {}
    sc = container.get("securityContext") or {}
    if sc.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{where}: securityContext.allowPrivilegeEscalation must be false")
    if sc.get("readOnlyRootFilesystem") is not True:
        problems.append(f"{where}: securityContext.readOnlyRootFilesystem must be true")
    if sc.get("privileged"):
        problems.append(f"{where}: must not be privileged")
    caps = sc.get("capabilities") or {}
    if "ALL" not in (caps.get("drop") or []):
        problems.append(f"{where}: securityContext.capabilities.drop must contain ALL")
    if caps.get("add"):
        problems.append(f"{where}: must not add capabilities ({caps['add']})")
    if sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True:
        problems.append(f"{where}: runAsNonRoot must be true")
    if sc.get("runAsUser", psc.get("runAsUser")) in (0, None):
        problems.append(f"{where}: runAsUser must be a non-zero numeric UID")
    seccomp = (sc.get("seccompProfile") or psc.get("seccompProfile") or {}).get("type")
    if seccomp not in ("RuntimeDefault", "Localhost"):
        problems.append(f"{where}: seccompProfile.type must be RuntimeDefault or Localhost")
    resources = container.get("resources") or {}
    for section in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            if not (resources.get(section) or {}).get(resource):
                problems.append(f"{where}: resources.{section}.{resource} is not set")
    image = str(container.get("image") or "")
    if "@sha256:" not in image and (":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")):
        problems.append(f"{where}: image {image!r} needs a fixed tag or a digest")
    for env in container.get("env") or []:
        name, value = env.get("name", ""), env.get("value")
        if value is None:
            continue
        if CREDENTIAL_NAME.search(name):
            problems.append(f"{where}: env {name} carries a literal value; credentials must come from a Secret")
        elif URL_WITH_PASSWORD.search(str(value)):
            problems.append(f"{where}: env {name} carries a URL with a password")
    for arg in (container.get("args") or []) + (container.get("command") or []):
        if URL_WITH_PASSWORD.search(str(arg)):
            problems.append(f"{where}: an argument carries a URL with a password")
    return problems


def workload_problems(doc: dict, configmaps: dict[str, dict]) -> list[str]:
    where = ident(doc)
    pod = pod_spec(doc)
    problems = []
    psc = pod.get("securityContext") or {}
    if psc.get("runAsNonRoot") is not True:
        problems.append(f"{where}: pod securityContext.runAsNonRoot must be true")
    if (psc.get("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
        problems.append(f"{where}: pod securityContext.seccompProfile.type must be RuntimeDefault")
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            problems.append(f"{where}: {field} must not be set")
    if pod.get("automountServiceAccountToken") is not False:
        problems.append(f"{where}: automountServiceAccountToken must be false (no API token unless needed)")
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    for volume in volumes.values():
        if "hostPath" in volume:
            problems.append(f"{where}: hostPath volume {volume['name']} is not allowed")
    containers = pod.get("containers") or []
    if not containers:
        problems.append(f"{where}: no containers")
    for container in (pod.get("initContainers") or []) + containers:
        cwhere = f"{where} container {container.get('name')}"
        problems += container_problems(cwhere, container, pod)
        tmp = [m for m in container.get("volumeMounts") or [] if m.get("mountPath") == "/tmp"]
        if not tmp or "emptyDir" not in volumes.get(tmp[0]["name"], {}):
            problems.append(f"{cwhere}: needs an emptyDir mounted at /tmp (the root filesystem is read-only)")
    if doc["kind"] in LONG_RUNNING_KINDS:
        for container in containers:
            cwhere = f"{where} container {container.get('name')}"
            for probe, path in (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"),
                                ("readinessProbe", "/readyz")):
                got = ((container.get(probe) or {}).get("httpGet") or {}).get("path")
                if got != path:
                    problems.append(f"{cwhere}: {probe} must GET {path} (has {got!r})")
            grace = env_value(container, configmaps, "PALAVER_SHUTDOWN_GRACE")
            drain = int(grace) if grace is not None else 20
            sleep = ((((container.get("lifecycle") or {}).get("preStop") or {}).get("sleep") or {})
                     .get("seconds", 0))
            period = pod.get("terminationGracePeriodSeconds", 30)
            if period <= drain + sleep:
                problems.append(f"{where}: terminationGracePeriodSeconds {period} must exceed the preStop "
                                f"sleep {sleep}s + drain period {drain}s")
        annotations = (((doc.get("spec") or {}).get("template") or {}).get("metadata") or {}).get("annotations") or {}
        if any((c.get("envFrom") for c in containers)) and "checksum/config" not in annotations:
            problems.append(f"{where}: pod template needs a checksum/config annotation to roll on config change")
    return problems


def network_policy_problems(doc: dict, labels: dict, policies: list[dict]) -> list[str]:
    """A default deny (both directions) and an allow policy select the pods; the
    allowed traffic is the app port in (from named sources) and DNS + database out."""
    where = ident(doc)
    selecting = [p for p in policies if selector_matches((p.get("spec") or {}).get("podSelector"), labels)]
    if not selecting:
        return [f"{where}: no NetworkPolicy selects its pods"]
    problems = []

    def types(p: dict) -> set:
        return set((p.get("spec") or {}).get("policyTypes") or [])

    deny = [p for p in selecting if {"Ingress", "Egress"} <= types(p)
            and not p["spec"].get("ingress") and not p["spec"].get("egress")]
    if not deny:
        problems.append(f"{where}: no default-deny NetworkPolicy (Ingress and Egress, no rules) selects its pods")
    if not any("Egress" in types(p) and p["spec"].get("egress") for p in selecting):
        problems.append(f"{where}: no NetworkPolicy allows its egress to DNS and the database")
    for policy in selecting:
        pwhere = f"{where} via {ident(policy)}"
        for rule in policy["spec"].get("ingress") or []:
            if not rule.get("from"):
                problems.append(f"{pwhere}: an ingress rule admits every source")
            ports = {p.get("port") for p in rule.get("ports") or []}
            if ports - {APP_PORT, "http"} or not ports:
                problems.append(f"{pwhere}: ingress must be limited to port {APP_PORT} (has {sorted(map(str, ports))})")
        for rule in policy["spec"].get("egress") or []:
            ports = {p.get("port") for p in rule.get("ports") or []}
            if files_egress(doc, rule, ports):
                continue
            if not ports or ports - {DNS_PORT, DATABASE_PORT, BUS_PORT}:
                problems.append(f"{pwhere}: egress must be limited to DNS ({DNS_PORT}), the database "
                                f"({DATABASE_PORT}) and the bus ({BUS_PORT}) (has {sorted(map(str, ports)) or 'all ports'})")
    return problems


# The roles that serve uploaded files (api, all) may also reach S3 over HTTPS
# (public addresses only: every private range excepted) and the EKS Pod
# Identity agent (its credentials) on its link-local address, nothing else.
S3_EGRESS = {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16"]}
POD_IDENTITY_AGENT = {"cidr": "169.254.170.23/32"}


def files_egress(doc: dict, rule: dict, ports: set) -> bool:
    name = (doc.get("metadata") or {}).get("name", "")
    if not (name.endswith("-api") or name.endswith("-all")):
        return False
    to = [peer.get("ipBlock") for peer in rule.get("to") or []]
    return (ports == {443} and to == [S3_EGRESS]) or (ports == {80} and to == [POD_IDENTITY_AGENT])


def secret_problems(docs: list[dict]) -> list[str]:
    problems = []
    for doc in docs:
        if doc.get("kind") == "Secret":
            items = dict(doc.get("stringData") or {})
            for key, value in (doc.get("data") or {}).items():
                try:
                    items[key] = base64.b64decode(value).decode("utf-8", "replace")
                except (ValueError, TypeError):
                    items[key] = str(value)
            for key, value in items.items():
                if CREDENTIAL_NAME.search(key) or URL_WITH_PASSWORD.search(str(value)):
                    problems.append(f"{ident(doc)}: key {key} holds a literal credential; "
                                    "use an existing Secret or an ExternalSecret")
        if doc.get("kind") == "ConfigMap":
            for key, value in (doc.get("data") or {}).items():
                if CREDENTIAL_NAME.search(key) or URL_WITH_PASSWORD.search(str(value)):
                    problems.append(f"{ident(doc)}: key {key} holds a credential in a ConfigMap")
    return problems


def ingress_problems(docs: list[dict], services: dict[str, dict], heartbeat: int | None) -> list[str]:
    problems = []
    for doc in docs:
        if doc.get("kind") != "Ingress":
            continue
        where = ident(doc)
        ann = (doc.get("metadata") or {}).get("annotations") or {}
        spec = doc.get("spec") or {}
        routes = {}
        for rule in spec.get("rules") or []:
            for path in (rule.get("http") or {}).get("paths") or []:
                svc = ((path.get("backend") or {}).get("service") or {})
                port = svc.get("port") or {}
                if port.get("name") == "use-annotation":
                    if f"alb.ingress.kubernetes.io/actions.{svc.get('name')}" not in ann:
                        problems.append(f"{where}: path {path['path']} uses an action with no annotation")
                    continue
                if svc.get("name") not in services:
                    problems.append(f"{where}: path {path['path']} routes to a missing Service {svc.get('name')}")
                    continue
                role = ((services[svc["name"]].get("metadata") or {}).get("labels") or {}).get(
                    "app.kubernetes.io/component")
                routes[path["path"]] = role
        # DESIGN §1: streams to gateways, /api and /chat to api, / to web (or all to `all`).
        stream = [r for p, r in routes.items() if p.startswith("/api/") and "stream" in p]
        expected = {"/api": "api", "/chat": "api", "/": "web"}
        if "all" in routes.values():
            expected = {"/": "all"}
        elif stream and stream != ["gateway"]:
            problems.append(f"{where}: the stream path must route to the gateway (routes to {stream})")
        for path, role in expected.items():
            if path in routes and routes[path] != role:
                problems.append(f"{where}: {path} must route to {role}, routes to {routes[path]}")
        if (spec.get("ingressClassName") == "alb"
                or any(k.startswith("alb.ingress.kubernetes.io/") for k in ann)):
            if not ann.get("alb.ingress.kubernetes.io/certificate-arn"):
                problems.append(f"{where}: ALB without an ACM certificate-arn")
            if ann.get("alb.ingress.kubernetes.io/ssl-redirect") != "443":
                problems.append(f"{where}: ALB must redirect HTTP to HTTPS (ssl-redirect: '443')")
            if (ann.get("alb.ingress.kubernetes.io/scheme") == "internet-facing"
                    and not ann.get("alb.ingress.kubernetes.io/wafv2-acl-arn")):
                problems.append(f"{where}: internet-facing ALB without a WAFv2 web ACL")
            attrs = dict(kv.split("=", 1) for kv in
                         (ann.get("alb.ingress.kubernetes.io/load-balancer-attributes") or "").split(",") if "=" in kv)
            idle = int(attrs.get("idle_timeout.timeout_seconds", 60))
            if heartbeat is not None and idle <= heartbeat:
                problems.append(f"{where}: ALB idle timeout {idle}s must exceed the stream heartbeat {heartbeat}s")
        elif not spec.get("tls"):
            problems.append(f"{where}: no TLS")
    return problems


def policy_problems(docs: list[dict]) -> list[str]:
    docs = [d for d in docs if isinstance(d, dict) and d.get("kind")]
    problems = []
    configmaps = {d["metadata"]["name"]: d.get("data") or {} for d in docs if d["kind"] == "ConfigMap"}
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    pdbs = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    hpas = [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    workloads = [d for d in docs if d["kind"] in WORKLOAD_KINDS]
    if not workloads:
        problems.append("no workloads rendered")

    for doc in docs:
        meta = doc.get("metadata") or {}
        if doc["kind"] not in CLUSTER_SCOPED_KINDS and meta.get("namespace") in (None, "", "default"):
            problems.append(f"{ident(doc)}: needs an explicit namespace other than default")
        if doc["kind"] == "Namespace":
            labels = meta.get("labels") or {}
            if labels.get("pod-security.kubernetes.io/enforce") != "restricted":
                problems.append(f"{ident(doc)}: Pod Security Admission must enforce restricted")

    heartbeat = None
    for data in configmaps.values():
        if "PALAVER_HEARTBEAT_INTERVAL" in data:
            heartbeat = int(data["PALAVER_HEARTBEAT_INTERVAL"])

    for doc in workloads:
        where = ident(doc)
        labels = pod_labels(doc)
        problems += workload_problems(doc, configmaps)
        problems += network_policy_problems(doc, labels, policies)
        if doc["kind"] != "Deployment":
            continue
        if not any(selector_matches((p.get("spec") or {}).get("selector"), labels) for p in pdbs):
            problems.append(f"{where}: no PodDisruptionBudget selects its pods")
        targeting = [h for h in hpas if ((h.get("spec") or {}).get("scaleTargetRef") or {}).get("name")
                     == doc["metadata"]["name"]]
        role = labels.get("app.kubernetes.io/component")
        if targeting:
            hpa = targeting[0]["spec"]
            if "replicas" in (doc.get("spec") or {}):
                problems.append(f"{where}: sets spec.replicas although an HPA owns the count")
            if not 1 <= hpa.get("minReplicas", 1) <= hpa["maxReplicas"]:
                problems.append(f"{ident(targeting[0])}: needs 1 <= minReplicas <= maxReplicas")
        elif role in AUTOSCALED_ROLES:
            problems.append(f"{where}: role {role} scales out and needs a HorizontalPodAutoscaler")
        if not any(selector_matches({"matchLabels": s["spec"].get("selector") or {"-": "-"}}, labels)
                   for s in services.values()):
            problems.append(f"{where}: no Service selects its pods")

    for hpa in hpas:
        target = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
        if not any(w["kind"] == target.get("kind") and w["metadata"]["name"] == target.get("name")
                   for w in workloads):
            problems.append(f"{ident(hpa)}: scales a missing {target.get('kind')} {target.get('name')}")

    problems += secret_problems(docs)
    problems += ingress_problems(docs, services, heartbeat)
    return problems


def main(argv: list[str]) -> int:
    status = 0
    for path in argv:
        docs = load_file(path)
        problems = schema_problems(docs) + policy_problems(docs)
        for problem in problems:
            print(f"{path}: {problem}")
        status |= bool(problems)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
