#!/usr/bin/env bash
# The whole test suite: the README's test command, and what .ci/run calls.
# Installs what it needs (scripts/install-tools.sh), then runs every suite.
# Each suite is a script of its own so it can be run alone while working.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/install-tools.sh

suites=(
  scripts/test-rust.sh
  scripts/test-infra.sh
  scripts/test-deploy.sh
  scripts/test-web.sh
  scripts/test-observability.sh
  scripts/test-faults.sh
)
for suite in "${suites[@]}"; do
  if [ -f "$suite" ]; then
    echo "==> $suite"
    bash "$suite"
  fi
done
echo "==> all suites passed"
