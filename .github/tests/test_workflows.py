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
    assert deploy["production"]["needs"] == "staging"
    assert "cargo build -p palaver-bench --release" in runs(deploy["suite"])

    job = jobs("deploy-environment.yml")["deploy"]
    # The environment gates the job: production's required reviewers approve
    # before it starts, and its variables hold that environment's role.
    assert job["environment"]["name"] == "${{ inputs.environment }}"
    script = runs(job)
    assert "cosign verify" in script
    assert "palaver-bench\" smoke --base-url \"$BASE_URL\"" in script
    assert ".github/scripts/rollout.sh" in script
    named = {s.get("id"): s for s in steps(job) if s.get("id")}
    assert {"rollout", "smoke", "previous"} <= set(named)
    rollbacks = [s for s in steps(job) if "failure()" in str(s.get("if", ""))]
    assert rollbacks and all("steps.rollout.outcome" in s["if"] and "steps.smoke.outcome" in s["if"] for s in rollbacks)


def test_the_rollout_script_is_valid_bash_and_waits_for_everything():
    script = GITHUB / "scripts" / "rollout.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    assert "set -euo pipefail" in text
    assert "rollout status" in text and "kubectl apply --server-side" in text


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


def test_dependabot_updates_actions_and_cargo():
    doc = yaml.safe_load((GITHUB / "dependabot.yml").read_text())
    assert {u["package-ecosystem"] for u in doc["updates"]} >= {"github-actions", "cargo"}
