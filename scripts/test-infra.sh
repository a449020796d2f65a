#!/usr/bin/env bash
# Static checks of the Terraform in infra/terraform; needs no cloud account and
# no network beyond the package installs of scripts/install-tools.sh:
#
#   1. terraform fmt -check -recursive
#   2. the structural tests (python-hcl2 7.3.1): infra/terraform/tests
#   3. checkov, configured in infra/terraform/.checkov.yaml (the one place
#      where checks are skipped, each with its reason)
#   4. with the AWS provider (the local mirror in /opt/tf-plugins, or the
#      registry in CI): terraform validate and test of every AWS-only stack
#   5. the emulator test (Terratest's role): the AWS-only modules applied to
#      moto's server on loopback, asserted through the AWS API (boto3),
#      destroyed (infra/terraform/tests/emulator)
#
# The structural tests include tests/test_wiring.py: how Terraform, the
# chart, the environments' values and the image fit, with a broken form of
# each issue-10 mistake that the checks must report.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TF_DIR=infra/terraform
VENV=.tools/venv
log() { printf '[test-infra] %s\n' "$*" >&2; }

bash scripts/install-tools.sh py

# python-hcl2 7.3.1 lives in a folder of its own (see install-tools.sh: checkov's
# fork overwrites the `hcl2` package inside the venv).
HCL2_DIR=.tools/python-hcl2-7.3.1

echo "==> terraform fmt -check -recursive $TF_DIR"
# An inherited TF_CLI_CONFIG_FILE naming a missing file only adds warnings.
if [ -n "${TF_CLI_CONFIG_FILE:-}" ] && [ ! -f "$TF_CLI_CONFIG_FILE" ]; then
  unset TF_CLI_CONFIG_FILE
fi
if command -v terraform >/dev/null; then
  terraform fmt -check -recursive -diff "$TF_DIR"
  echo "terraform fmt: all files formatted"
elif [ -n "${CI:-}" ]; then
  # CI machines of this kind ship terraform 1.11: its absence is a failure.
  log "terraform is not on PATH"
  exit 1
else
  # No package registry reachable here ships a terraform binary; the
  # GitHub Actions infra workflow runs the same check with setup-terraform.
  log "WARNING: terraform is not on PATH; fmt check SKIPPED here (it runs in GitHub Actions)"
fi

echo "==> structural tests ($TF_DIR/tests)"
if "$VENV/bin/python" -c "import pytest" 2>/dev/null; then
  PYTHONPATH="$ROOT/$HCL2_DIR" "$VENV/bin/python" -m pytest -q -p no:cacheprovider "$TF_DIR/tests"
else
  PYTHONPATH="$ROOT/$HCL2_DIR" "$VENV/bin/python" -m unittest discover -s "$TF_DIR/tests" -p 'test_*.py'
fi

echo "==> checkov ($TF_DIR/.checkov.yaml)"
report="$(mktemp)"
trap 'rm -f "$report"' EXIT
status=0
BC_SKIP_MAPPING=TRUE CKV_SKIP_PACKAGE_UPDATE_CHECK=true LOG_LEVEL=ERROR \
  "$VENV/bin/checkov" --config-file "$TF_DIR/.checkov.yaml" --directory "$TF_DIR" >"$report" 2>&1 || status=$?
cat "$report"
if [ "$status" -ne 0 ]; then
  log "checkov failed (exit $status)"
  exit "$status"
fi
# checkov exits 0 when it finds nothing to scan; make sure it scanned.
passed="$(sed -n 's/.*Passed checks: \([0-9]*\), Failed checks: \([0-9]*\).*/\1 \2/p' "$report" | head -n1)"
if [ -z "$passed" ] || [ "${passed% *}" -eq 0 ] || [ "${passed#* }" -ne 0 ]; then
  log "checkov ran no check or reported failures: ${passed:-no summary}"
  exit 1
fi
# Where the machine carries a local provider mirror (this kind has the AWS
# provider under /opt/tf-plugins), also run `terraform validate` and the
# *.tftest.hcl files (mocked providers) of every stack that needs only AWS.
# The add-on layers need the helm provider, which is not mirrored: they are
# validated and tested in GitHub Actions only.
PLUGINS=/opt/tf-plugins
if command -v terraform >/dev/null && [ -d "$PLUGINS/registry.terraform.io/hashicorp/aws" ]; then
  work="$(mktemp -d)"
  trap 'rm -f "$report"; rm -rf "$work"' EXIT
  cp -r "$TF_DIR" "$work/terraform"
  for stack in modules/network modules/security modules/eks modules/secret-value modules/files modules/certificate modules/aurora modules/monitoring modules/ci modules/registry modules/audit modules/bus modules/identity modules/platform envs/account envs/staging envs/production; do
    echo "==> terraform validate + test ($stack, local provider mirror)"
    dir="$work/terraform/$stack"
    terraform -chdir="$dir" init -backend=false -input=false -no-color -plugin-dir="$PLUGINS" >"$work/init.log" 2>&1 \
      || { cat "$work/init.log"; exit 1; }
    terraform -chdir="$dir" validate -no-color
    terraform -chdir="$dir" test -no-color
  done
else
  log "no local provider mirror: terraform validate/test run in GitHub Actions only"
fi

#### Emulator: apply, assert through the AWS API, destroy
if command -v terraform >/dev/null && { [ -d "$PLUGINS/registry.terraform.io/hashicorp/aws" ] || [ -n "${CI:-}" ]; }; then
  echo "==> emulator: apply, assert, destroy (moto server on loopback)"
  "$VENV/bin/python" "$TF_DIR/tests/emulator/run.py"
else
  log "WARNING: no terraform with an AWS provider: the emulator test runs where one is (this machine's mirror, CI)"
fi

echo "==> infra checks passed"
