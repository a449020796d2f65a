"""Policy tests of the GitHub Actions workflows (run by
scripts/test-observability.sh, next to actionlint and checkov).

actionlint checks syntax, expressions and types; checkov a few known
dangerous patterns. These check what the project asks of its pipeline: actions
pinned by commit SHA with a version comment, no permission by default and
least privilege per job, a timeout on every job, AWS only through OIDC role
assumption, and the release lifecycle itself (build -> scan -> sign ->
staging -> smoke -> approval -> production, with rollback; Terraform plan on
pull requests, apply after approval).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

GITHUB = Path(__file__).resolve().parents[1]
ROOT = GITHUB.parent
WORKFLOWS = {p.name: p for p in sorted((GITHUB / "workflows").glob("*.yml"))}
PINNED = re.compile(r"^\s*(?:-\s+)?uses:\s+([\w.-]+/[\w./-]+)@([0-9a-f]{40})\s+#\s+v\d+(\.\d+)*\s*$")
USES = re.compile(r"^\s*(?:-\s+)?uses:\s+(\S+)")
READ_ONLY_ENOUGH = {"contents": "read"}


def load(name: str) -> dict:
    doc = yaml.safe_load(WORKFLOWS[name].read_text())
    # PyYAML reads the bare key `on` as the boolean True.
    if True in doc:
        doc["on"] = doc.pop(True)
    return doc


def jobs(name: str) -> dict:
    return load(name)["jobs"]


def steps(job: dict) -> list[dict]:
    return job.get("steps", [])


def runs(job: dict) -> str:
    return "\n".join(step.get("run", "") for step in steps(job))


def step_using(job: dict, action: str) -> list[dict]:
    return [s for s in steps(job) if s.get("uses", "").split("@")[0] == action]


def test_the_four_workflows_exist():
    assert {"ci.yml", "release.yml", "deploy.yml", "infra.yml"} <= set(WORKFLOWS)


#### Supply chain and privileges


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_every_action_is_pinned_by_commit_sha_with_a_version_comment(name):
    for number, line in enumerate(WORKFLOWS[name].read_text().splitlines(), 1):
        match = USES.match(line)
        if not match or match.group(1).startswith("./"):
            continue  # a reusable workflow of this repository
        assert PINNED.match(line), f"{name}:{number}: pin to a 40-hex SHA with '# vX.Y': {line.strip()}"


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_no_permissions_by_default_and_least_privilege_per_job(name):
    doc = load(name)
    assert doc.get("permissions") == {}, f"{name}: top-level 'permissions: {{}}'"
    for job_id, job in doc["jobs"].items():
        assert isinstance(job.get("permissions"), dict), f"{name}/{job_id}: no permissions block"
        permissions = job["permissions"]
        assert "write-all" not in str(permissions) and "read-all" not in str(permissions)
        if permissions.get("id-token") == "write":
            uses = {s.get("uses", "").split("@")[0] for s in steps(job)}
            assert job.get("uses") or uses & {
                "aws-actions/configure-aws-credentials", "sigstore/cosign-installer"
            }, f"{name}/{job_id}: id-token: write without OIDC use"


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_every_job_has_a_timeout(name):
    for job_id, job in jobs(name).items():
        if "uses" in job:
            continue  # a reusable-workflow call: its own jobs carry the timeout
        timeout = job.get("timeout-minutes")
        assert isinstance(timeout, int) and 0 < timeout <= 120, f"{name}/{job_id}: timeout-minutes"


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_checkouts_do_not_persist_the_token(name):
    for job_id, job in jobs(name).items():
        for step in step_using(job, "actions/checkout"):
            assert step.get("with", {}).get("persist-credentials") is False, f"{name}/{job_id}"


def test_aws_is_reached_only_by_oidc_role_assumption():
    text = "\n".join(p.read_text() for p in GITHUB.rglob("*") if p.is_file() and p.suffix in {".yml", ".yaml", ".sh"})
    for forbidden in ("aws-access-key-id", "aws-secret-access-key", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                      "aws-session-token"):
        assert forbidden not in text, forbidden
    found = 0
    for name in WORKFLOWS:
        for job_id, job in jobs(name).items():
            for step in step_using(job, "aws-actions/configure-aws-credentials"):
                found += 1
                assert step["with"]["role-to-assume"].startswith("${{ vars."), f"{name}/{job_id}"
                assert job["permissions"].get("id-token") == "write", f"{name}/{job_id}"
    assert found >= 5


def test_the_rollout_script_is_gone_helm_does_its_job():
    assert not (GITHUB / "scripts" / "rollout.sh").exists()


#### ci.yml


def test_ci_runs_fmt_clippy_the_test_command_with_postgres_and_cargo_deny():
    doc = load("ci.yml")
    assert set(doc["on"]) == {"pull_request", "push"} and doc["on"]["push"]["branches"] == ["main"]
    ci = doc["jobs"]
    everything = "\n".join(runs(job) for job in ci.values())
    assert "cargo fmt --all --check" in everything
    assert re.search(r"cargo clippy .*--all-targets.* -- -D warnings", everything)
    test = next(job for job in ci.values() if "bash scripts/test.sh" in runs(job))
    assert "postgres" in test["services"]
    assert test["env"]["DATABASE_URL"].startswith("postgres://")
    assert any(step_using(job, "EmbarkStudios/cargo-deny-action") for job in ci.values())
    assert (ROOT / "deny.toml").is_file()
    cached = [job for job in ci.values() if step_using(job, "Swatinem/rust-cache")]
    assert len(cached) >= 2, "clippy and the test suite cache their builds"


#### release.yml


def test_release_builds_both_architectures_with_sbom_and_provenance():
    doc = load("release.yml")
    assert doc["on"]["push"]["branches"] == ["main"] and doc["on"]["push"]["tags"]
    build = doc["jobs"]["build"]
    platforms = {entry["platform"] for entry in build["strategy"]["matrix"]["include"]}
    assert platforms == {"linux/amd64", "linux/arm64"}
    push = step_using(build, "docker/build-push-action")[0]["with"]
    assert push["file"] == "deploy/docker/Dockerfile" and push["context"] == "."
    assert push["provenance"] == "mode=max" and push["sbom"] is True
    assert "ghcr.io" in str(build) and "vars.ECR_REPOSITORY" in str(build)


def test_release_scans_before_it_signs_and_signs_before_it_deploys():
    release = jobs("release.yml")
    gate = [s for s in steps(release["scan"]) if s.get("uses", "").startswith("aquasecurity/trivy-action@")
            and s["with"].get("exit-code") == "1"]
    assert gate and gate[0]["with"]["severity"] == "CRITICAL"
    assert "scan" in release["sign"]["needs"]
    assert "cosign sign --yes" in runs(release["sign"])
    assert release["sign"]["permissions"]["id-token"] == "write"
    deploy = release["deploy"]
    assert deploy["uses"] == "./.github/workflows/deploy.yml"
    assert "sign" in deploy["needs"] and "refs/heads/main" in deploy["if"]


#### deploy.yml and deploy-environment.yml


def test_deploy_goes_to_staging_then_after_approval_to_production():
    deploy = jobs("deploy.yml")
    assert deploy["staging"]["with"]["environment"] == "staging"
    assert deploy["production"]["with"]["environment"] == "production"
    assert "cargo build -p palaver-bench --release" in runs(deploy["suite"])

    job = jobs("deploy-environment.yml")["deploy"]
    # The environment gates the job: production's required reviewers approve
    # before it starts, and its variables hold that environment's role.
    assert job["environment"]["name"] == "${{ inputs.environment }}"
    script = runs(job)
    assert "cosign verify" in script
    assert "palaver-bench\" smoke --base-url \"$BASE_URL\"" in script


#### The release lifecycle (issue 10: 4 and 7), each rule proven able to fail

def release_findings(docs: dict) -> list[str]:
    """What a first production release needs of deploy.yml,
    deploy-environment.yml, release.yml and ci.yml (parsed workflows)."""
    findings = []
    deploy = docs["deploy.yml"]["jobs"]
    environment = docs["deploy-environment.yml"]["jobs"]["deploy"]
    script = runs(environment)
    # 7. Helm releases it: upgrade --install, wait, roll back on failure, environments as values files.
    helm = next((line for line in script.splitlines() if "helm upgrade --install" in line), None)
    block = script[script.index("helm upgrade --install"):].split("\n\n")[0] if helm else ""
    if not helm:
        findings.append("production is not released with helm upgrade --install")
    for flag in ("--wait", "--wait-for-jobs", "--timeout"):
        if flag not in block:
            findings.append(f"helm upgrade without {flag}")
    if "--atomic" not in block and "--rollback-on-failure" not in block:
        findings.append("a failed helm upgrade is not rolled back")
    if 'deploy/environments/$ENVIRONMENT.yaml' not in block or "infra-values" not in block:
        findings.append("the release does not take the environment's values file and the infrastructure's values")
    if "kubectl apply" in script or "kubectl kustomize" in script or "rollout.sh" in script:
        findings.append("the release still applies a rendered manifest by hand")
    rollback = [s for s in steps(environment) if "helm rollback" in s.get("run", "")]
    if not rollback or "steps.smoke.outcome == 'failure'" not in str(rollback[0].get("if", "")):
        findings.append("a failed smoke check does not helm rollback")
    # 4. The deploy job reaches the private API endpoint from inside the VPC.
    if not str(environment.get("runs-on", "")).startswith("codebuild-palaver-${{ inputs.environment }}-deploy-runner-"):
        findings.append(f"the deploy job runs on {environment.get('runs-on')}, outside the VPC of the private API endpoint")
    if "ssm get-parameter" not in script or "vars.HELM_VALUES_PARAMETER" not in str(environment):
        findings.append("the infrastructure's values are not read from terraform's SSM parameter")
    # The browser suite runs against staging, after its smoke check, before the approval.
    browser = next((j for j in deploy.values() if "tests/e2e/web.test.mjs" in runs(j)), None)
    if browser is None:
        findings.append("the browser suite does not run against staging")
    else:
        needs = browser.get("needs")
        needs = [needs] if isinstance(needs, str) else needs or []
        if "staging" not in needs:
            findings.append("the browser suite does not wait for staging's deploy and smoke check")
        if "needs.staging.outputs.base_url" not in str(browser) or "PALAVER_E2E_BASE_URL" not in str(browser):
            findings.append("the browser suite is not pointed at staging's URL")
        if "install-tools.sh node browser" not in runs(browser):
            findings.append("the browser suite's Chromium and playwright-core are not installed as the test command does")
        production_needs = deploy["production"].get("needs")
        production_needs = [production_needs] if isinstance(production_needs, str) else production_needs
        browser_id = next(k for k, v in deploy.items() if v is browser)
        if browser_id not in production_needs:
            findings.append("production does not wait for the browser suite")
    # A pending production approval must not hold back staging.
    for name in ("release.yml", "deploy.yml"):
        if "concurrency" in docs[name]:
            findings.append(f"{name} has workflow-level concurrency: a run waiting for the production approval blocks the next")
    group = str(environment.get("concurrency", {}).get("group", ""))
    if "inputs.environment" not in group:
        findings.append("the deploy concurrency group is shared by staging and production")
    # The image is built on pull requests, and not pushed there.
    builds = [s for job in docs["ci.yml"]["jobs"].values() for s in step_using(job, "docker/build-push-action")]
    if not builds or any(b.get("with", {}).get("push") is not False for b in builds):
        findings.append("pull requests do not build the image (without pushing it)")
    if "pull_request" not in docs["ci.yml"]["on"]:
        findings.append("ci.yml does not run on pull requests")
    return findings


def workflow_docs() -> dict:
    return {name: load(name) for name in WORKFLOWS}


def test_the_release_lifecycle_is_sound():
    assert release_findings(workflow_docs()) == []


def _deploy_job(docs):
    return docs["deploy-environment.yml"]["jobs"]["deploy"]


def _edit_run(docs, needle, old, new):
    for step in steps(_deploy_job(docs)):
        if needle in step.get("run", ""):
            step["run"] = step["run"].replace(old, new)
            return
    raise AssertionError(f"no step runs {needle!r}")


RELEASE_MUTATIONS = {
    "kubectl apply of a render": (lambda d: _edit_run(d, "helm upgrade --install", "helm upgrade --install \"$RELEASE\" deploy/helm/palaver", "kubectl apply -f manifest.yaml #"), "not released with helm"),
    "no rollback on failure": (lambda d: _edit_run(d, "helm upgrade --install", "--atomic ", ""), "not rolled back"),
    "no wait": (lambda d: _edit_run(d, "helm upgrade --install", "--wait --wait-for-jobs ", ""), "without --wait"),
    "placeholders instead of terraform's values": (lambda d: _edit_run(d, "helm upgrade --install", '--values "$RUNNER_TEMP/infra-values.json"', ""), "infrastructure's values"),
    "smoke failure not rolled back": (lambda d: [s.update({"if": "failure()"}) for s in steps(_deploy_job(d)) if "helm rollback" in s.get("run", "")], "does not helm rollback"),
    "runner outside the VPC": (lambda d: _deploy_job(d).update({"runs-on": "ubuntu-24.04"}), "outside the VPC"),
    "browser suite after production": (lambda d: d["deploy.yml"]["jobs"]["production"].update({"needs": "staging"}), "does not wait for the browser suite"),
    "browser suite against another URL": (lambda d: d["deploy.yml"]["jobs"]["browser"]["steps"][-1]["env"].update({"PALAVER_E2E_BASE_URL": "https://example.com"}), "not pointed at staging"),
    "release-wide concurrency": (lambda d: d["release.yml"].update({"concurrency": {"group": "release-${{ github.ref }}"}}), "workflow-level concurrency"),
    "one deploy group for both environments": (lambda d: _deploy_job(d)["concurrency"].update({"group": "deploy"}), "shared by staging and production"),
    "image only built on main": (lambda d: [s["with"].update({"push": True}) for j in d["ci.yml"]["jobs"].values() for s in step_using(j, "docker/build-push-action")], "do not build the image"),
}


@pytest.mark.parametrize("name", sorted(RELEASE_MUTATIONS))
def test_the_release_checks_reject_each_broken_form(name):
    import copy

    mutate, expected = RELEASE_MUTATIONS[name]
    docs = copy.deepcopy(workflow_docs())
    mutate(docs)
    findings = release_findings(docs)
    assert any(expected in f for f in findings), f"{name}: expected {expected!r} in {findings}"


#### infra.yml


def test_infra_checks_plans_on_pull_requests_and_applies_after_approval():
    doc = load("infra.yml")
    infra = doc["jobs"]
    check = runs(infra["check"])
    for command in ("terraform fmt -check -recursive", "validate", "test"):
        assert command in check, command
    plan = infra["plan"]
    assert "pull_request" in plan["if"] and "terraform plan" in runs(plan)
    assert plan["permissions"]["pull-requests"] == "write"
    assert step_using(plan, "actions/github-script"), "the plan is posted as a comment"
    assert infra["apply-staging"]["environment"] == "terraform-staging"
    assert infra["apply-production"]["environment"] == "terraform-production"
    assert infra["apply-production"]["needs"] == "apply-staging"
    assert "push" in infra["apply-staging"]["if"] and "refs/heads/main" in infra["apply-staging"]["if"]
    for env in ("staging", "production"):
        apply = infra[f"apply-{env}"]
        # Inside the VPC: the add-ons and namespace layers need the private API.
        assert apply["runs-on"].startswith(f"codebuild-palaver-{env}-deploy-runner-")
        script = runs(apply)
        order = [script.index(p) for p in ("terraform apply -no-color -lock-timeout=10m tfplan", "fetch-rds-ca.sh", f"kubectl apply --server-side -k deploy/kustomize/overlays/{env}")]
        assert order == sorted(order), "platform layer, then the namespace layer"
        assert [s.get("working-directory") for s in steps(apply) if s.get("working-directory")] == [f"infra/terraform/envs/{env}", f"infra/terraform/envs/{env}/addons"]


def test_dependabot_updates_actions_and_cargo():
    doc = yaml.safe_load((GITHUB / "dependabot.yml").read_text())
    assert {u["package-ecosystem"] for u in doc["updates"]} >= {"github-actions", "cargo"}
