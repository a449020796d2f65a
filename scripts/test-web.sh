#!/usr/bin/env bash
# The web UI suite: Debian's Chromium, driven headless by playwright-core,
# against `palaver serve` processes the tests start on free 127.0.0.1 ports
# (tests/e2e/), with axe-core checking each view. Writes docs/screenshots/
# {desktop,desktop-dark,mobile,members,profile,private-room,direct-messages,
# search-results,attachments}.png;
# server logs and failure screenshots go to tests-output/web/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/install-tools.sh node browser
# axe-core for the accessibility checks of every view (tests/e2e/harness.mjs).
AXE_VERSION=4.11.0
export AXE_DIR="${AXE_DIR:-$ROOT/.tools/axe}"
if [ "$(cat "$AXE_DIR/.palaver-packages" 2>/dev/null)" != "axe-core@$AXE_VERSION" ]; then
  mkdir -p "$AXE_DIR"
  [ -f "$AXE_DIR/package.json" ] || echo '{"name":"palaver-axe","private":true}' >"$AXE_DIR/package.json"
  (cd "$AXE_DIR" && npm install --silent --no-audit --no-fund "axe-core@$AXE_VERSION" >/dev/null)
  echo "axe-core@$AXE_VERSION" >"$AXE_DIR/.palaver-packages"
fi
cargo build -p palaver --locked

rm -rf tests-output/web
mkdir -p tests-output/web
export PALAVER_BIN="$ROOT/target/debug/palaver"
# The harness stops every server it starts and records their pids here, so
# they are stopped even if node itself is killed.
export PALAVER_E2E_PIDS="$ROOT/tests-output/web/server.pids"
: >"$PALAVER_E2E_PIDS"
stop_servers() {
  local pid
  while read -r pid; do
    # Only a pid that still runs our binary: it may have been reused since.
    if [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$PALAVER_BIN" ]; then
      kill -TERM "$pid" 2>/dev/null || true
    fi
  done <"$PALAVER_E2E_PIDS"
}
trap stop_servers EXIT

node --test-reporter=spec tests/e2e/rules.test.mjs
# In-process (not `node --test`, which forks a child per file) so that the
# timeout's SIGTERM reaches the harness.
timeout 600 node --test-reporter=spec tests/e2e/web.test.mjs
timeout 900 node --test-reporter=spec tests/e2e/people.test.mjs
timeout 600 node --test-reporter=spec tests/e2e/conversation.test.mjs
timeout 600 node --test-reporter=spec tests/e2e/stream.test.mjs
timeout 600 node --test-reporter=spec tests/e2e/sharing.test.mjs
timeout 600 node --test-reporter=spec tests/e2e/presence.test.mjs
