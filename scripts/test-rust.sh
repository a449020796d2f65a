#!/usr/bin/env bash
# The Rust suite: formatting, lints, unit and integration tests over SQLite
# and a real PostgreSQL (DATABASE_URL if set, else a throwaway cluster).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings

if [ -z "${DATABASE_URL:-}" ]; then
  cluster="$(mktemp -d /tmp/palaver-pg-XXXXXX)"
  trap 'bash scripts/pg-cluster.sh stop "$cluster"' EXIT
  DATABASE_URL="$(bash scripts/pg-cluster.sh start "$cluster")"
  export DATABASE_URL
fi

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --workspace --no-fail-fast
  cargo test --locked --workspace --doc
else
  cargo test --locked --workspace
fi
