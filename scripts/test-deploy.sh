#!/usr/bin/env bash
# Deployment packaging suite: the Helm chart, the Kustomize overlays and the
# Dockerfile, rendered and checked without a cluster or a Docker engine.
#
#   1. helm lint --strict with every deploy/helm/palaver/ci/*-values.yaml
#   2. render each of those (helm template), the release of each
#      environment (deploy/environments/<env>.yaml + the infrastructure's
#      values, stand-in deploy/tests/fixtures/infra-values.yaml) and both
#      Kustomize overlays (the namespace layer) into a temporary directory
#   3. checkov on every render (kubernetes) and on the Dockerfile, zero
#      failed checks; skips only those listed in deploy/.checkov.yaml
#   4. pytest deploy/tests: strict Kubernetes 1.33 schemas for built-in kinds,
#      CRD schemas for ExternalSecret/ServiceMonitor/PrometheusRule, the
#      workload policy, self-tests that the checks reject broken manifests,
#      and chart values the schema must refuse
#
# Runnable from any directory; installs its tools (scripts/install-tools.sh).
# KEEP_RENDER=1 keeps the rendered manifests and prints where they are.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/install-tools.sh k8s py

HELM="$ROOT/.tools/bin/helm"
KUBECTL="$ROOT/.tools/bin/kubectl"
PY="$ROOT/.tools/venv/bin/python"
CHECKOV="$ROOT/.tools/venv/bin/checkov"
CHART="$ROOT/deploy/helm/palaver"
NAMESPACE=palaver

RENDER="$(mktemp -d "${TMPDIR:-/tmp}/palaver-deploy.XXXXXX")"
cleanup() {
  if [ "${KEEP_RENDER:-0}" = 1 ]; then
    echo "rendered manifests kept in $RENDER"
  else
    rm -rf "$RENDER"
  fi
}
trap cleanup EXIT

passed=0
step() { printf '==> %s\n' "$*"; }
ok() { passed=$((passed + 1)); printf '    ok  %s\n' "$*"; }

#### 1. Lint and render the chart with every CI values file
shopt -s nullglob
ci_values=("$CHART"/ci/*-values.yaml)
[ ${#ci_values[@]} -ge 3 ] || { echo "expected at least 3 files in $CHART/ci" >&2; exit 1; }
for values in "${ci_values[@]}"; do
  name="$(basename "$values" -values.yaml)"
  step "helm lint --strict ($name)"
  "$HELM" lint --strict --quiet -f "$values" "$CHART" >"$RENDER/lint-$name.log" 2>&1 \
    || { cat "$RENDER/lint-$name.log" >&2; exit 1; }
  ok "lint $name"
  "$HELM" template palaver "$CHART" --namespace "$NAMESPACE" --kube-version 1.33.0 \
    -f "$values" >"$RENDER/chart-$name.yaml"
  ok "render chart-$name"
done

#### 2. The release as the deploy workflow runs it: each environment's values
#### file, then the infrastructure's values (here the stand-in of the SSM
#### parameter, deploy/tests/fixtures/infra-values.yaml)
for env in staging production; do
  step "helm lint --strict + template (environments/$env.yaml + infra values)"
  env_args=(-f "$ROOT/deploy/environments/$env.yaml" -f "$ROOT/deploy/tests/fixtures/infra-values.yaml"
    --set image.digest=sha256:0000000000000000000000000000000000000000000000000000000000000000)
  "$HELM" lint --strict --quiet "${env_args[@]}" "$CHART" >"$RENDER/lint-env-$env.log" 2>&1 \
    || { cat "$RENDER/lint-env-$env.log" >&2; exit 1; }
  "$HELM" template palaver "$CHART" --namespace "$NAMESPACE" --kube-version 1.33.0 \
    "${env_args[@]}" >"$RENDER/release-$env.yaml"
  ok "render release-$env"
done

#### 3. The Kustomize overlays: the namespace and its cluster-level objects.
#### The RDS CA bundle is fetched in CI (scripts/fetch-rds-ca.sh); here a
#### throwaway CA named like one stands in, in a copy of the tree.
KUST="$RENDER/kustomize-tree"
cp -r "$ROOT/deploy/kustomize" "$KUST"
mkdir -p "$KUST/base/rds-ca"
for i in $(seq 1 10); do
  openssl req -x509 -newkey rsa:2048 -nodes -keyout /dev/null -days 2 \
    -subj "/CN=Amazon RDS test Root CA $i" -addext basicConstraints=critical,CA:TRUE 2>/dev/null
done >"$RENDER/test-bundle.pem"
RDS_CA_URL="file://$RENDER/test-bundle.pem" bash "$ROOT/scripts/fetch-rds-ca.sh" "$KUST/base/rds-ca/global-bundle.pem" >/dev/null
for overlay in staging production; do
  step "kubectl kustomize overlays/$overlay"
  "$KUBECTL" kustomize "$KUST/overlays/$overlay" >"$RENDER/kustomize-$overlay.yaml"
  ok "render kustomize-$overlay"
done

#### 4. checkov: zero failed checks; skips live in deploy/.checkov.yaml with their reasons
export BC_SKIP_MAPPING=TRUE CKV_SKIP_PACKAGE_UPDATE_CHECK=true
run_checkov() {
  local label="$1"; shift
  local log="$RENDER/checkov-$label.log"
  if ! "$CHECKOV" --config-file "$ROOT/deploy/.checkov.yaml" "$@" >"$log" 2>&1; then
    cat "$log" >&2
    echo "checkov failed on $label" >&2
    exit 1
  fi
  grep -q 'Passed checks: [1-9]' "$log" || { cat "$log" >&2; echo "checkov ran no check on $label" >&2; exit 1; }
  ok "checkov $label ($(grep -o 'Passed checks: [0-9]*, Failed checks: [0-9]*, Skipped checks: [0-9]*' "$log" | head -n1))"
}
for rendered in "$RENDER"/*.yaml; do
  name="$(basename "$rendered" .yaml)"
  # One directory per render: checkov's graph checks (e.g. every pod has a
  # NetworkPolicy) must not be satisfied by another configuration's objects.
  mkdir -p "$RENDER/checkov/$name"
  cp "$rendered" "$RENDER/checkov/$name/"
  step "checkov $name"
  run_checkov "$name" --framework kubernetes -d "$RENDER/checkov/$name"
done
step "checkov Dockerfile"
run_checkov dockerfile --framework dockerfile -f "$ROOT/deploy/docker/Dockerfile"

#### 5. Schemas, policy and self-tests
step "pytest deploy/tests"
PALAVER_RENDER_DIR="$RENDER" PALAVER_HELM="$HELM" \
  PYTHONDONTWRITEBYTECODE=1 "$PY" -m pytest -q -p no:cacheprovider "$ROOT/deploy/tests"
ok "pytest deploy/tests"

echo "deploy: $passed passed, 0 failed"
