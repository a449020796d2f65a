"""How the pieces fit: Terraform, the Helm chart, the environments' values,
the Kustomize layer, the Dockerfile and the application's own limits.

Each check reads the files it needs from a tree (path -> text) and returns
its findings. The tests run every check on the repository (no finding) and
on broken copies of it, one per mistake a first deploy hit (issue 10), each
of which the check must report: a check that cannot fail proves nothing.

Run by scripts/test-infra.sh (python-hcl2 7.3.1 first on PYTHONPATH).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import hcl2
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
TF = "infra/terraform"
CHART = "deploy/helm/palaver"
HELM = ROOT / ".tools" / "bin" / "helm"

FILES = [
    f"{TF}/modules/addons/main.tf",
    f"{TF}/modules/addons/variables.tf",
    f"{TF}/modules/addons/charts/platform-objects/templates/clustersecretstore.yaml",
    f"{TF}/modules/addons/charts/platform-objects/templates/storageclass.yaml",
    f"{TF}/modules/aurora/main.tf",
    f"{TF}/modules/certificate/main.tf",
    f"{TF}/modules/eks/variables.tf",
    f"{TF}/modules/files/main.tf",
    f"{TF}/modules/files/outputs.tf",
    f"{TF}/modules/aurora/outputs.tf",
    f"{TF}/modules/ci/main.tf",
    f"{TF}/modules/eks/main.tf",
    f"{TF}/modules/platform/main.tf",
    f"{TF}/modules/platform/variables.tf",
    f"{TF}/modules/registry/main.tf",
    f"{TF}/modules/secret-value/main.tf",
    f"{TF}/modules/security/main.tf",
    f"{TF}/modules/security/variables.tf",
    f"{TF}/envs/staging/main.tf",
    f"{TF}/envs/production/main.tf",
    f"{TF}/envs/staging/addons/main.tf",
    f"{TF}/envs/production/addons/main.tf",
    f"{CHART}/values.yaml",
    f"{CHART}/templates/deployment.yaml",
    f"{CHART}/templates/networkpolicy.yaml",
    "deploy/environments/staging.yaml",
    "deploy/environments/production.yaml",
    "deploy/kustomize/base/kustomization.yaml",
    "deploy/kustomize/overlays/staging/kustomization.yaml",
    "deploy/kustomize/overlays/production/kustomization.yaml",
    "deploy/tests/fixtures/infra-values.yaml",
    "deploy/docker/Dockerfile",
    "crates/palaver/src/config.rs",
]


def load_tree() -> dict[str, str]:
    return {path: (ROOT / path).read_text() for path in FILES}


def hcl(tree: dict[str, str], path: str) -> dict:
    return hcl2.loads(tree[path])


def blocks(doc: dict, kind: str) -> dict[str, dict]:
    """`kind "name" {}` blocks of a parsed file, by name (resources by "type.name")."""
    found = {}
    for entry in doc.get(kind, []):
        for name, body in entry.items():
            if kind in ("resource", "data") and isinstance(body, dict):
                for inner, b in body.items():
                    found[f"{name}.{inner}"] = b
            else:
                found[name] = body
    return found


def locals_of(doc: dict) -> dict:
    merged = {}
    for entry in doc.get("locals", []):
        merged.update(entry)
    return merged


def default(tree: dict[str, str], path: str, variable: str):
    return blocks(hcl(tree, path), "variable")[variable].get("default")


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def key_paths(value, prefix="") -> set[str]:
    if isinstance(value, dict):
        paths = set()
        for key, inner in value.items():
            paths |= key_paths(inner, f"{prefix}.{key}" if prefix else key)
        return paths
    return {prefix}


#### 1. External Secrets serves the API the chart renders

def eso_api_findings(tree):
    # The pinned versions are the defaults of the object type: optional(string, "x.y.z").
    text = tree[f"{TF}/modules/addons/variables.tf"]
    match = re.search(r'external_secrets\s*=\s*optional\(string,\s*"([0-9.]+)"\)', text)
    version = match.group(1) if match else "0.0.0"
    chart = yaml.safe_load(tree[f"{CHART}/values.yaml"])
    api = chart["database"]["externalSecret"]["apiVersion"]
    served = set()
    v = version_tuple(version)
    if v < (0, 17, 0):
        served.add("external-secrets.io/v1beta1")
    if v >= (0, 16, 2):
        served.add("external-secrets.io/v1")
    return [] if api in served else [f"External Secrets {version} does not serve {api} (it serves {sorted(served)})"]


#### 2. The ClusterSecretStore the chart reads from exists, under that name

def store_findings(tree):
    findings = []
    chart = yaml.safe_load(tree[f"{CHART}/values.yaml"])["database"]["externalSecret"]["secretStoreRef"]
    template = tree[f"{TF}/modules/addons/charts/platform-objects/templates/clustersecretstore.yaml"]
    if "kind: ClusterSecretStore" not in template:
        findings.append("the add-ons layer creates no ClusterSecretStore")
    addons = hcl(tree, f"{TF}/modules/addons/main.tf")
    release = blocks(addons, "resource").get("helm_release.platform_objects")
    if release is None:
        findings.append("the add-ons layer does not install the platform-objects chart")
    elif "var.cluster_secret_store_name" not in json.dumps(release):
        findings.append("the ClusterSecretStore's name is not the cluster_secret_store_name variable")
    names = {
        "modules/addons": default(tree, f"{TF}/modules/addons/variables.tf", "cluster_secret_store_name"),
        "modules/platform": default(tree, f"{TF}/modules/platform/variables.tf", "cluster_secret_store_name"),
    }
    for where, name in names.items():
        if chart["kind"] != "ClusterSecretStore" or name != chart["name"]:
            findings.append(f"the chart reads {chart['kind']}/{chart['name']}, {where} names the store {name}")
    return findings


#### 3. One secret name; the operator may read it; the secret holds every part of the URL

def secret_findings(tree):
    findings = []
    platform = locals_of(hcl(tree, f"{TF}/modules/platform/main.tf"))
    helm_values = platform.get("helm_values", {})
    key = helm_values.get("database", {}).get("externalSecret", {}).get("key")
    if key != "${module.aurora.app_secret_name}":
        findings.append(f"the release reads secret {key!r}, not the one modules/aurora creates")
    aurora_outputs = blocks(hcl(tree, f"{TF}/modules/aurora/outputs.tf"), "output")
    if aurora_outputs.get("app_secret_name", {}).get("value") != "${aws_secretsmanager_secret.app.name}":
        findings.append("app_secret_name is not the name of the secret modules/aurora creates")
    eks_call = blocks(hcl(tree, f"{TF}/modules/platform/main.tf"), "module")["eks"]
    if eks_call.get("app_secret_arn") != "${module.aurora.app_secret_arn}":
        findings.append("External Secrets' role may read another secret than the application's")
    if "module.aurora.master_user_secret_arn" not in json.dumps(eks_call.get("extra_readable_secret_arns", "")):
        findings.append("External Secrets' role may not read the master secret the bootstrap hook needs")
    eks = blocks(hcl(tree, f"{TF}/modules/eks/main.tf"), "data")["aws_iam_policy_document.external_secrets"]
    if "local.readable_secret_arns" not in json.dumps(eks):
        findings.append("the External Secrets policy does not grant the readable secrets")
    # Every property the chart assembles the URL from is in the written value.
    properties = set(yaml.safe_load(tree[f"{CHART}/values.yaml"])["database"]["externalSecret"]["properties"].values())
    connection = aurora_outputs.get("app_connection", {}).get("value", {})
    written = set(connection) | ({"password"} if "password" in tree[f"{TF}/modules/secret-value/main.tf"] else set())
    if properties - written:
        findings.append(f"the application secret lacks {sorted(properties - written)}")
    for env in ("staging", "production"):
        addons = blocks(hcl(tree, f"{TF}/envs/{env}/addons/main.tf"), "module")
        writer = addons.get("app_secret_value", {})
        if writer.get("secret_id") != "${local.platform.app_secret_arn}" or writer.get("value") != "${local.platform.app_connection}":
            findings.append(f"envs/{env}/addons does not write the application secret's value")
    return findings


#### 4. CI reaches AWS and the cluster

def ci_findings(tree):
    findings = []
    registry = blocks(hcl(tree, f"{TF}/modules/registry/main.tf"), "resource")
    if "aws_iam_openid_connect_provider.github" not in registry:
        findings.append("no GitHub OIDC provider in Terraform")
    ecr = registry.get("aws_ecr_repository.this", {})
    if ecr.get("image_tag_mutability") != "IMMUTABLE":
        findings.append("the ECR repository's tags are mutable")
    if not any(s.get("scan_on_push") for s in ecr.get("image_scanning_configuration", [])):
        findings.append("the ECR repository does not scan on push")
    if not any(e.get("encryption_type") == "KMS" for e in ecr.get("encryption_configuration", [])):
        findings.append("the ECR repository is not KMS-encrypted")
    ci = blocks(hcl(tree, f"{TF}/modules/ci/main.tf"), "resource")
    for role in ("aws_iam_role.apply", "aws_iam_role.deploy", "aws_codebuild_project.runner", "aws_ssm_parameter.helm_values"):
        if role not in ci:
            findings.append(f"modules/ci has no {role}")
    ci_text = tree[f"{TF}/modules/ci/main.tf"]
    if ":environment:${each.value}" not in ci_text:
        findings.append("the CI roles are not bound to GitHub environments")
    eks_call = blocks(hcl(tree, f"{TF}/modules/platform/main.tf"), "module")["eks"]
    if "module.ci.deploy_role_arn" not in json.dumps(eks_call.get("namespace_deploy_role_arns", "")):
        findings.append("the deploy role has no access entry")
    if "module.ci.apply_role_arn" not in json.dumps(eks_call.get("ci_admin_role_arns", "")):
        findings.append("the apply role (add-ons layer) has no cluster-admin access entry")
    if "module.ci.runner_security_group_id" not in json.dumps(eks_call.get("api_client_security_group_ids", "")):
        findings.append("the runner cannot reach the private API endpoint")
    association = blocks(hcl(tree, f"{TF}/modules/eks/main.tf"), "resource").get("aws_eks_access_policy_association.namespace", {})
    scopes = association.get("access_scope", [{}])
    if not scopes or scopes[0].get("type") != "namespace":
        findings.append("the deploy role's access entry is not scoped to a namespace")
    return findings


#### 5. Everything the release needs from the infrastructure comes from Terraform

INFRA_PATTERNS = {
    "an account ID": re.compile(r"(?<![0-9])[0-9]{12}(?![0-9])"),
    "an ARN": re.compile(r"arn:aws[a-z-]*:"),
    "a CIDR": re.compile(r"(?<![0-9.])[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}"),
}
COMMITTED_RELEASE_FILES = [
    "deploy/environments/staging.yaml",
    "deploy/environments/production.yaml",
    "deploy/kustomize/base/kustomization.yaml",
    "deploy/kustomize/overlays/staging/kustomization.yaml",
    "deploy/kustomize/overlays/production/kustomization.yaml",
]


def source_of_truth_findings(tree):
    findings = []
    for path in COMMITTED_RELEASE_FILES:
        for line in tree[path].splitlines():
            content = line.split("#", 1)[0]
            for what, pattern in INFRA_PATTERNS.items():
                if pattern.search(content):
                    findings.append(f"{path} hard-codes {what} (it comes from terraform output): {line.strip()}")
    helm_values = locals_of(hcl(tree, f"{TF}/modules/platform/main.tf")).get("helm_values", {})
    fixture = yaml.safe_load(tree["deploy/tests/fixtures/infra-values.yaml"])
    if key_paths(helm_values) != key_paths(fixture):
        findings.append(f"the infra-values stand-in differs from Terraform's helm_values: {sorted(key_paths(helm_values) ^ key_paths(fixture))}")
    expected = {
        "config.trustedProxies": "var.vpc_cidr",
        "networkPolicy.ingress.cidrs": "var.vpc_cidr",
        "database.cidrs": "module.network.database_subnet_cidrs",
        "ingress.alb.wafv2AclArn": "module.security.web_acl_arn",
        "ingress.alb.certificateArn": "module.certificate.arn",
        "ingress.hosts": "var.host_name",
        "fileStore.url": "module.files.url",
        "fileStore.maxFileBytes": "var.max_file_bytes",
        "image.repository": "var.ecr_repository_url",
        "database.bootstrap.masterSecretKey": "module.aurora.master_user_secret_arn",
    }
    for path, reference in expected.items():
        value = helm_values
        for part in path.split("."):
            value = value.get(part, {}) if isinstance(value, dict) else {}
        if reference not in json.dumps(value):
            findings.append(f"helm_values {path} is {value!r}, not {reference}")
    chart_keys = key_paths(yaml.safe_load(tree[f"{CHART}/values.yaml"]))
    for path in key_paths(helm_values):
        if not any(k == path or k.startswith(path + ".") or path.startswith(k + ".") for k in chart_keys):
            findings.append(f"helm_values sets {path}, which the chart does not have")
    # The VPCs the environments are built in, and no other.
    for env, cidr in (("staging", "10.10.0.0/16"), ("production", "10.20.0.0/16")):
        platform = blocks(hcl(tree, f"{TF}/envs/{env}/main.tf"), "module")["platform"]
        if platform.get("vpc_cidr") != cidr:
            findings.append(f"envs/{env} builds VPC {platform.get('vpc_cidr')}, the tests expect {cidr}")
    return findings


#### 6. Observability, network policy, storage, WAF and TLS

def platform_findings(tree):
    findings = []
    eks = tree[f"{TF}/modules/eks/main.tf"]
    eks_doc = hcl(tree, f"{TF}/modules/eks/main.tf")
    configuration = locals_of(eks_doc).get("addon_configuration", {}).get("vpc-cni", "")
    if 'enableNetworkPolicy = "true"' not in re.sub(r"\s+", " ", eks) or not configuration:
        findings.append("the vpc-cni add-on runs without its network policy agent")
    addon = blocks(eks_doc, "resource")["aws_eks_addon.before_nodes"]
    if "local.addon_configuration" not in json.dumps(addon.get("configuration_values", "")):
        findings.append("the vpc-cni add-on's configuration is not applied")

    addons = tree[f"{TF}/modules/addons/main.tf"]
    flat = re.sub(r"\s+", " ", addons)
    for component in ("kubeControllerManager", "kubeScheduler", "kubeEtcd", "kubeProxy"):
        if not re.search(rf"{component}\s*=\s*\{{ enabled = false \}}", flat):
            findings.append(f"kube-prometheus-stack scrapes the hidden {component}")
    if "merge(local.hidden_control_plane" not in addons:
        findings.append("the control-plane settings do not reach kube-prometheus-stack")
    if "sns_configs" not in addons or "var.alert_topic_arn" not in addons or 'receiver        = "sns"' not in addons:
        findings.append("Alertmanager has no receiver that reaches a person")

    template = tree[f"{TF}/modules/addons/charts/platform-objects/templates/storageclass.yaml"]
    template = re.sub(r"(?m)^\s*\{\{-?[^}]*\}\}\s*$\n?", "", template)  # control lines
    storage = yaml.safe_load(re.sub(r"\{\{.*?\}\}", "x", template))
    params = (storage or {}).get("parameters", {})
    if params.get("type") != "gp3" or params.get("encrypted") != "true":
        findings.append("the StorageClass is not encrypted gp3")
    class_name = default(tree, f"{TF}/modules/addons/variables.tf", "storage_class_name")
    if class_name in (None, "gp2"):
        findings.append(f"the volumes use StorageClass {class_name}")
    uses = len(re.findall(r"storageClassName\s*=\s*var\.storage_class_name", addons))
    if uses < 3:
        findings.append(f"only {uses} of the 3 volumes (Prometheus, Alertmanager, Grafana) use the encrypted class")

    # WAF: nothing the application accepts is blocked for its size.
    app_limit = int(eval(re.search(r'PALAVER_MAX_BODY_BYTES", default_value_t = ([0-9 *]+)', tree["crates/palaver/src/config.rs"]).group(1)))
    waf_limit = default(tree, f"{TF}/modules/security/variables.tf", "max_body_bytes")
    if waf_limit != app_limit:
        findings.append(f"the WAF's body limit is {waf_limit}, the application's {app_limit}")
    security = locals_of(hcl(tree, f"{TF}/modules/security/main.tf"))
    if "SizeRestrictions_BODY" not in json.dumps(security.get("common_rule_overrides", "")):
        findings.append("SizeRestrictions_BODY (8 KB) still blocks bodies the application accepts")
    if "local.common_rule_overrides" not in tree[f"{TF}/modules/security/main.tf"]:
        findings.append("the rule overrides do not reach the web ACL")

    # TLS to the database: the certificate is verified against a bundle the image carries.
    options = yaml.safe_load(tree[f"{CHART}/values.yaml"])["database"]["externalSecret"]["options"]
    if "sslmode=verify-full" not in options:
        findings.append(f"the application connects with {options} (certificate unchecked)")
    match = re.search(r"sslrootcert=([^&]+)", options)
    if not match or not re.search(rf"^COPY .*\s{re.escape(match.group(1))}$", tree["deploy/docker/Dockerfile"], re.M):
        findings.append("the image does not carry the CA bundle the database URL names")
    return findings


#### 7. Uploaded files (issue 18): the bucket, the api role's access, the
#### release's values and the WAF's upload route

# The contract (DESIGN §5d): --max-file-bytes defaults to 25 MiB; when the
# server's config.rs declares it, its default is the one compared.
DESIGN_MAX_FILE_BYTES = 25 * 1024 * 1024
UPLOAD_ROUTE = "/api/v1/rooms/general/files"


def files_findings(tree):
    findings = []
    match = re.search(r'PALAVER_MAX_FILE_BYTES", default_value_t = ([0-9 *]+)', tree["crates/palaver/src/config.rs"])
    app_limit = int(eval(match.group(1))) if match else DESIGN_MAX_FILE_BYTES
    for module in ("platform", "security"):
        limit = default(tree, f"{TF}/modules/{module}/variables.tf", "max_file_bytes")
        if limit != app_limit:
            findings.append(f"modules/{module} max_file_bytes is {limit}, the application's --max-file-bytes {app_limit}")
    calls = blocks(hcl(tree, f"{TF}/modules/platform/main.tf"), "module")
    if calls.get("security", {}).get("max_file_bytes") != "${var.max_file_bytes}":
        findings.append("the WAF's upload limit is not the release's max_file_bytes")
    files_call = calls.get("files", {})
    if files_call.get("kms_key_arn") != "${module.security.files_kms_key_arn}":
        findings.append(f"the files bucket is not encrypted with the project's files key: {files_call.get('kms_key_arn')!r}")
    if "module.files.access_policy_json" not in json.dumps(calls.get("eks", {}).get("api_policy_jsons", "")):
        findings.append("the api role's Pod Identity does not get the files bucket's policy")

    # The bucket: SSE-KMS with the given key, no public access, TLS only,
    # incomplete multipart uploads aborted.
    files = hcl(tree, f"{TF}/modules/files/main.tf")
    resources = blocks(files, "resource")
    sse = json.dumps(resources.get("aws_s3_bucket_server_side_encryption_configuration.this", {}))
    if '"sse_algorithm": "aws:kms"' not in sse or "var.kms_key_arn" not in sse:
        findings.append("the files bucket is not SSE-KMS with the given key")
    block = resources.get("aws_s3_bucket_public_access_block.this", {})
    for setting in ("block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"):
        if block.get(setting) is not True:
            findings.append(f"the files bucket does not set {setting}")
    policy = json.dumps(blocks(files, "data").get("aws_iam_policy_document.bucket", {}))
    if "aws:SecureTransport" not in policy or '"Deny"' not in policy:
        findings.append("the files bucket admits requests without TLS")
    if "data.aws_iam_policy_document.bucket.json" not in json.dumps(resources.get("aws_s3_bucket_policy.this", {})):
        findings.append("the TLS-only policy is not the bucket's policy")
    lifecycle = json.dumps(resources.get("aws_s3_bucket_lifecycle_configuration.this", {}))
    if "abort_incomplete_multipart_upload" not in lifecycle:
        findings.append("incomplete multipart uploads are never aborted")
    # The api role's access: that bucket's prefix only.
    access = blocks(files, "data").get("aws_iam_policy_document.access", {})
    for statement in access.get("statement", []):
        for resource in statement.get("resources", []):
            if resource not in ("${local.objects_arn}", "${aws_s3_bucket.this.arn}", "${var.kms_key_arn}"):
                findings.append(f"the api role's files policy reaches {resource}")
            if resource == "${aws_s3_bucket.this.arn}" and "s3:prefix" not in json.dumps(statement):
                findings.append("the api role may list the whole files bucket")
    objects = locals_of(files).get("objects_arn", "")
    if not objects.endswith("/${var.prefix}/*"):
        findings.append(f"the api role's objects are {objects!r}, not the prefix's")
    outputs = blocks(hcl(tree, f"{TF}/modules/files/outputs.tf"), "output")
    if outputs.get("url", {}).get("value") != "s3://${aws_s3_bucket.this.bucket}/${var.prefix}":
        findings.append("the release's --file-store is not s3://<the bucket>/<the prefix>")

    # Only the api role's pods run as the service account Pod Identity names.
    eks_sa = default(tree, f"{TF}/modules/eks/variables.tf", "api_service_account")
    if eks_sa != "palaver-api":
        findings.append(f"the api role's Pod Identity is for service account {eks_sa}, the chart's is palaver-api")
    deployment = tree[f"{CHART}/templates/deployment.yaml"]
    if 'ternary "palaver.apiServiceAccountName" "palaver.serviceAccountName" (has $role (list "api" "all"))' not in deployment:
        findings.append("the api role's pods do not run as its own service account")
    if 'hasPrefix "s3://" .Values.fileStore.url' not in tree[f"{CHART}/templates/networkpolicy.yaml"]:
        findings.append("the api role's NetworkPolicy does not let it reach S3")

    # The WAF: uploads up to max_file_bytes pass on the upload route only.
    security_text = tree[f"{TF}/modules/security/main.tf"]
    security = locals_of(hcl(tree, f"{TF}/modules/security/main.tf"))
    path = security.get("upload_path", "")
    if not re.match(path, UPLOAD_ROUTE) or re.match(path, "/api/v1/rooms/general/messages"):
        findings.append(f"the WAF's upload route {path!r} is not POST /api/v1/rooms/{{room}}/files")
    acl = blocks(hcl(tree, f"{TF}/modules/security/main.tf"), "resource").get("aws_wafv2_web_acl.this", {})
    rules = {r.get("name"): json.dumps(r) for r in acl.get("rule", [])}
    upload = rules.get("upload-over-file-limit", "")
    if "local.content_length_over_file_limit" not in upload or "local.upload_path" not in upload:
        findings.append("no rule limits uploads to max_file_bytes on the upload route")
    body = rules.get("body-over-application-limit", "")
    if "not_statement" not in body or "local.upload_path" not in body:
        findings.append("the body-size rule blocks uploads on the upload route")
    if "var.max_file_bytes" not in security_text.split("content_length_over_file_limit", 1)[0]:
        findings.append("the upload limit is not built from max_file_bytes")
    return findings


#### 8. One public host name: the certificate's and the Ingress's (issue 20, item 7)

def host_findings(tree):
    findings = []
    platform = hcl(tree, f"{TF}/modules/platform/main.tf")
    helm_values = locals_of(platform).get("helm_values", {})
    if helm_values.get("ingress", {}).get("hosts") != ["${var.host_name}"]:
        findings.append(f"the release's Ingress hosts are {helm_values.get('ingress', {}).get('hosts')!r}, not host_name")
    if helm_values.get("ingress", {}).get("alb", {}).get("certificateArn") != "${module.certificate.arn}":
        findings.append("the ALB's certificate is not the one of host_name")
    calls = blocks(platform, "module")
    if calls.get("certificate", {}).get("host_name") != "${var.host_name}":
        findings.append("the certificate is for another name than host_name")
    if calls.get("security", {}).get("certificate_arn") != "${module.certificate.arn}":
        findings.append("the ingress annotations carry another certificate than host_name's")
    certificate = blocks(hcl(tree, f"{TF}/modules/certificate/main.tf"), "resource")
    requested = certificate.get("aws_acm_certificate.this", {})
    if requested.get("domain_name") != "${var.host_name}" or requested.get("validation_method") != "DNS":
        findings.append("the requested certificate is not DNS-validated for host_name")
    if "aws_route53_record.validation" not in certificate or "aws_acm_certificate_validation.this" not in certificate:
        findings.append("the certificate's DNS validation is not written to the zone and awaited")
    looked_up = blocks(hcl(tree, f"{TF}/modules/certificate/main.tf"), "data").get("aws_acm_certificate.this", {})
    if looked_up.get("domain") != "${var.host_name}" or looked_up.get("statuses") != ["ISSUED"]:
        findings.append("without a zone, the looked-up certificate is not host_name's issued one")
    for env in ("staging", "production"):
        env_call = blocks(hcl(tree, f"{TF}/envs/{env}/main.tf"), "module")["platform"]
        if env_call.get("host_name") != "${var.host_name}":
            findings.append(f"envs/{env} does not pass its host_name variable")
        for url in env_call.get("identity_callback_urls", []):
            if "${var.host_name}" not in url:
                findings.append(f"envs/{env} sends the sign-in back to {url}, not host_name")
        values = yaml.safe_load(tree[f"deploy/environments/{env}.yaml"])
        if "hosts" in (values.get("ingress") or {}):
            findings.append(f"deploy/environments/{env}.yaml sets ingress.hosts (host_name comes from Terraform)")
    return findings


CHECKS = {
    "eso_api": eso_api_findings,
    "store": store_findings,
    "secret": secret_findings,
    "ci": ci_findings,
    "source_of_truth": source_of_truth_findings,
    "platform": platform_findings,
    "files": files_findings,
    "host": host_findings,
}


@pytest.fixture(scope="module")
def tree():
    return load_tree()


@pytest.mark.parametrize("check", sorted(CHECKS))
def test_the_repository_is_wired_together(tree, check):
    assert CHECKS[check](tree) == []


def replace(path, old, new):
    def mutate(tree):
        assert old in tree[path], f"mutation no longer applies: {old!r} not in {path}"
        tree[path] = tree[path].replace(old, new, 1)
    return mutate


# Each broken form is one of the mistakes of issue 10 (numbered as there).
MUTATIONS = [
    # 1. an operator that serves only v1beta1, or a chart that renders it to a v1-only operator
    ("eso_api", replace(f"{TF}/modules/addons/variables.tf", 'optional(string, "0.20.1")', 'optional(string, "0.12.1")'), "does not serve"),
    ("eso_api", replace(f"{CHART}/values.yaml", "apiVersion: external-secrets.io/v1\n", "apiVersion: external-secrets.io/v1beta1\n"), "does not serve"),
    # 2. the store is created nowhere, or under another name
    ("store", replace(f"{TF}/modules/addons/charts/platform-objects/templates/clustersecretstore.yaml", "kind: ClusterSecretStore", "kind: SecretStore"), "creates no ClusterSecretStore"),
    ("store", replace(f"{CHART}/values.yaml", "      name: aws-secrets-manager", "      name: aws-secretsmanager"), "names the store"),
    # 3. another secret name, a policy for another secret, a secret without host/port/dbname/user
    ("secret", replace(f"{TF}/modules/platform/main.tf", "key            = module.aurora.app_secret_name", 'key            = "palaver/staging/database"'), "not the one modules/aurora creates"),
    ("secret", replace(f"{TF}/modules/platform/main.tf", "app_secret_arn         = module.aurora.app_secret_arn", "app_secret_arn         = module.aurora.master_user_secret_arn"), "another secret"),
    ("secret", replace(f"{TF}/modules/aurora/outputs.tf", "    host     = aws_rds_cluster.this.endpoint\n", ""), "lacks ['host']"),
    ("secret", replace(f"{TF}/envs/staging/addons/main.tf", 'module "app_secret_value"', 'module "app_secret_value_unused"'), "does not write the application secret"),
    # 4. no access entry for CI, a deploy role with the whole cluster, no OIDC provider or ECR settings
    ("ci", replace(f"{TF}/modules/platform/main.tf", "namespace_deploy_role_arns    = { ci-deploy = module.ci.deploy_role_arn }", "namespace_deploy_role_arns    = {}"), "no access entry"),
    ("ci", replace(f"{TF}/modules/eks/main.tf", 'type       = "namespace"', 'type       = "cluster"'), "not scoped to a namespace"),
    ("ci", replace(f"{TF}/modules/platform/main.tf", "api_client_security_group_ids = { ci-runner = module.ci.runner_security_group_id }", "api_client_security_group_ids = {}"), "cannot reach the private API"),
    ("ci", replace(f"{TF}/modules/registry/main.tf", 'resource "aws_iam_openid_connect_provider" "github"', 'resource "aws_iam_openid_connect_provider" "other"'), "no GitHub OIDC provider"),
    ("ci", replace(f"{TF}/modules/registry/main.tf", 'image_tag_mutability = "IMMUTABLE"', 'image_tag_mutability = "MUTABLE"'), "mutable"),
    # 5. placeholders and 10.0.0.0/16 in the committed values; helm_values not from the VPC
    ("source_of_truth", replace("deploy/environments/staging.yaml", "ingress:\n", "config:\n  trustedProxies:\n    - 10.0.0.0/16\ningress:\n"), "hard-codes a CIDR"),
    ("source_of_truth", replace("deploy/environments/production.yaml", "ingress:\n", "image:\n  repository: 111122223333.dkr.ecr.eu-west-1.amazonaws.com/palaver\ningress:\n"), "hard-codes an account ID"),
    ("source_of_truth", replace(f"{TF}/modules/platform/main.tf", "trustedProxies = [var.vpc_cidr]", 'trustedProxies = ["10.0.0.0/16"]'), "config.trustedProxies"),
    ("source_of_truth", replace("deploy/tests/fixtures/infra-values.yaml", "  port: 5432\n", ""), "stand-in differs"),
    # 6. the unenforced policies, the receiver-less Alertmanager, the control-plane scrapes, gp2, the 8 KB body rule, sslmode=require
    ("platform", replace(f"{TF}/modules/eks/main.tf", 'enableNetworkPolicy = "true"', 'enableNetworkPolicy = "false"'), "network policy agent"),
    ("platform", replace(f"{TF}/modules/addons/main.tf", "kubeEtcd              = { enabled = false }", "kubeEtcd              = { enabled = true }"), "hidden kubeEtcd"),
    ("platform", replace(f"{TF}/modules/addons/main.tf", "sns_configs", "webhook_configs"), "no receiver"),
    ("platform", replace(f"{TF}/modules/addons/variables.tf", 'default     = "gp3-encrypted"', 'default     = "gp2"'), "StorageClass gp2"),
    ("platform", replace(f"{TF}/modules/addons/charts/platform-objects/templates/storageclass.yaml", 'encrypted: "true"', 'encrypted: "false"'), "not encrypted gp3"),
    ("platform", replace(f"{TF}/modules/security/main.tf", 'concat(["SizeRestrictions_BODY"], var.waf_common_rule_overrides)', "var.waf_common_rule_overrides"), "SizeRestrictions_BODY"),
    ("platform", replace(f"{TF}/modules/security/variables.tf", "default     = 65536", "default     = 8192"), "body limit is 8192"),
    ("platform", replace(f"{CHART}/values.yaml", "options: sslmode=verify-full&sslrootcert=/etc/ssl/rds/global-bundle.pem", "options: sslmode=require"), "certificate unchecked"),
    # Issue 18: the bucket, the api role's access, the release's values, the WAF's upload route
    ("files", replace(f"{TF}/modules/files/main.tf", 'sse_algorithm     = "aws:kms"', 'sse_algorithm     = "AES256"'), "not SSE-KMS"),
    ("files", replace(f"{TF}/modules/platform/main.tf", "kms_key_arn             = module.security.files_kms_key_arn", "kms_key_arn             = module.security.logs_kms_key_arn"), "project's files key"),
    ("files", replace(f"{TF}/modules/files/main.tf", "restrict_public_buckets = true", "restrict_public_buckets = false"), "restrict_public_buckets"),
    ("files", replace(f"{TF}/modules/files/main.tf", 'variable = "aws:SecureTransport"', 'variable = "aws:SourceIp"'), "without TLS"),
    ("files", replace(f"{TF}/modules/files/main.tf", "abort_incomplete_multipart_upload {", "noncurrent_version_transition {"), "multipart"),
    ("files", replace(f"{TF}/modules/files/main.tf", "resources = [local.objects_arn]", 'resources = ["${aws_s3_bucket.this.arn}/*"]'), "policy reaches"),
    ("files", replace(f"{TF}/modules/files/main.tf", 'variable = "s3:prefix"', 'variable = "s3:delimiter"'), "list the whole"),
    ("files", replace(f"{TF}/modules/platform/main.tf", "api_policy_jsons = { files = module.files.access_policy_json }", "api_policy_jsons = {}"), "does not get the files bucket"),
    ("source_of_truth", replace(f"{TF}/modules/platform/main.tf", "url          = module.files.url", 'url          = "file://data/files"'), "fileStore.url"),
    ("source_of_truth", replace(f"{TF}/modules/platform/main.tf", "maxFileBytes = var.max_file_bytes", "maxFileBytes = 26214400"), "fileStore.maxFileBytes"),
    ("files", replace(f"{TF}/modules/platform/variables.tf", "default     = 26214400", "default     = 16777216"), "modules/platform max_file_bytes is 16777216"),
    ("files", replace(f"{TF}/modules/platform/main.tf", "max_file_bytes           = var.max_file_bytes\n", ""), "WAF's upload limit"),
    ("files", replace(f"{TF}/modules/eks/variables.tf", 'default     = "palaver-api"', 'default     = "palaver"'), "service account palaver,"),
    ("files", replace(f"{CHART}/templates/deployment.yaml", '(has $role (list "api" "all"))', '(has $role (list "all"))'), "own service account"),
    ("files", replace(f"{TF}/modules/security/main.tf", 'upload_path       = "^/api/v1/rooms/[^/]+/files$"', 'upload_path       = "^/api/v1/files$"'), "upload route"),
    ("files", replace(f"{TF}/modules/security/main.tf", 'name     = "upload-over-file-limit"', 'name     = "upload-limit-off"'), "no rule limits uploads"),
    ("files", replace(f"{TF}/modules/security/main.tf", "not_statement {", "or_statement {"), "blocks uploads on the upload route"),
    # Issue 20, item 7: the host name, the certificate and the Ingress
    ("host", replace(f"{TF}/modules/platform/main.tf", "hosts = [var.host_name]", 'hosts = ["chat.example.com"]'), "Ingress hosts"),
    ("host", replace(f"{TF}/modules/platform/main.tf", "certificateArn = module.certificate.arn", "certificateArn = var.certificate_arn"), "not the one of host_name"),
    ("host", replace(f"{TF}/modules/platform/main.tf", "certificate_arn          = module.certificate.arn", "certificate_arn          = var.certificate_arn"), "annotations carry another"),
    ("host", replace(f"{TF}/modules/platform/main.tf", "host_name       = var.host_name", 'host_name       = "chat.example.com"'), "another name than host_name"),
    ("host", replace(f"{TF}/modules/certificate/main.tf", 'validation_method = "DNS"', 'validation_method = "EMAIL"'), "not DNS-validated"),
    ("host", replace(f"{TF}/modules/certificate/main.tf", 'resource "aws_acm_certificate_validation" "this"', 'resource "aws_acm_certificate_validation" "unused"'), "awaited"),
    ("host", replace(f"{TF}/modules/certificate/main.tf", 'statuses    = ["ISSUED"]', 'statuses    = ["ISSUED", "PENDING_VALIDATION"]'), "issued one"),
    ("host", replace(f"{TF}/envs/production/main.tf", "host_name                   = var.host_name", 'host_name                   = "chat.example.com"'), "does not pass its host_name"),
    ("host", replace(f"{TF}/envs/staging/main.tf", 'identity_callback_urls = ["https://${var.host_name}/"]', 'identity_callback_urls = ["https://chat.staging.example.com/"]'), "sends the sign-in back"),
    ("host", replace("deploy/environments/staging.yaml", "  className: alb\n", "  className: alb\n  hosts:\n    - chat.staging.example.com\n"), "sets ingress.hosts"),
    ("platform", replace("deploy/docker/Dockerfile", "COPY --from=rds-ca /rds/global-bundle.pem /etc/ssl/rds/global-bundle.pem\n", ""), "does not carry the CA bundle"),
]


@pytest.mark.parametrize("check,mutate,expected", MUTATIONS,
                         ids=[f"{c}-{i}" for i, (c, _, _) in enumerate(MUTATIONS)])
def test_each_broken_form_is_reported(tree, check, mutate, expected):
    broken = dict(tree)
    mutate(broken)
    findings = CHECKS[check](broken)
    assert any(expected in f for f in findings), f"expected a finding with {expected!r}, got {findings}"


#### The cluster objects themselves: the platform-objects chart renders valid
#### objects with the values the add-ons layer passes.

def test_platform_objects_chart_renders_the_store_and_the_encrypted_class(tmp_path):
    if not HELM.exists():
        pytest.skip("helm is installed by scripts/install-tools.sh k8s")
    chart = ROOT / TF / "modules/addons/charts/platform-objects"
    result = subprocess.run(
        [str(HELM), "template", "platform-objects", str(chart),
         "--set", "storageClass.kmsKeyId=arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"],
        capture_output=True, text=True, timeout=60, check=True)
    docs = {d["kind"]: d for d in yaml.safe_load_all(result.stdout) if d}
    store = docs["ClusterSecretStore"]
    assert store["apiVersion"] == "external-secrets.io/v1"
    assert store["spec"]["provider"]["aws"]["service"] == "SecretsManager"
    assert store["spec"]["conditions"][0]["namespaces"] == ["palaver"]
    klass = docs["StorageClass"]
    assert klass["provisioner"] == "ebs.csi.aws.com"
    assert klass["parameters"] == {"type": "gp3", "encrypted": "true",
                                   "kmsKeyId": "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"}
    assert klass["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
