#!/usr/bin/env bash
# Deployment packaging suite: the Helm chart, the Kustomize overlays and the
# Dockerfile, rendered and checked without a cluster or a Docker engine.
#
#   1. helm lint --strict with every deploy/helm/palaver/ci/*-values.yaml
#   2. render each of those (helm template) and both overlays
#      (kubectl kustomize --enable-helm) into a temporary directory
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

#### 2. Render the Kustomize overlays (they inflate the chart through helmCharts)
for overlay in staging production; do
  step "kubectl kustomize --enable-helm overlays/$overlay"
  "$KUBECTL" kustomize --enable-helm --helm-command "$HELM" \
    "$ROOT/deploy/kustomize/overlays/$overlay" >"$RENDER/kustomize-$overlay.yaml"
  ok "render kustomize-$overlay"
done

#### 3. checkov: zero failed checks; skips live in deploy/.checkov.yaml with their reasons
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

#### 4. Schemas, policy and self-tests
step "pytest deploy/tests"
PALAVER_RENDER_DIR="$RENDER" PALAVER_HELM="$HELM" \
  PYTHONDONTWRITEBYTECODE=1 "$PY" -m pytest -q -p no:cacheprovider "$ROOT/deploy/tests"
ok "pytest deploy/tests"

echo "deploy: $passed passed, 0 failed"
