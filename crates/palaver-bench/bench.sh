#!/usr/bin/env bash
# Reproduces the figures in BENCHMARKS.md on this machine: release builds,
# SQLite and a PostgreSQL cluster with its default durability (fsync=on,
# synchronous_commit=on), each figure the median of $RUNS runs.
#
#   crates/palaver-bench/bench.sh                     # everything (~25 min)
#   ONLY=send,pgbench RUNS=5 crates/palaver-bench/bench.sh
#
# Scenarios (ONLY, comma list): send pgbench read fanout startup bus
# (bus: bench-bus.sh, the PostgreSQL against the Redis bus; not in the default
# list, it starts its own PostgreSQL and redis-server).
# Raw results (one JSON or text file per run) go to $OUT; summarize.py turns
# them into the tables of BENCHMARKS.md. Traffic stays on 127.0.0.1.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

RUNS="${RUNS:-3}"
DURATION="${DURATION:-10}"
CLIENTS="${CLIENTS:-32}"
SUBSCRIBERS="${SUBSCRIBERS:-10000}"
FANOUT_RATE="${FANOUT_RATE:-100}"
FANOUT_DURATION="${FANOUT_DURATION:-20}"
ONLY="${ONLY:-send,pgbench,read,fanout,startup}"
OUT="${OUT:-$ROOT/target/bench/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT"

want() { [[ ",$ONLY," == *",$1,"* ]]; }

cargo build --release --locked -p palaver -p palaver-bench
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
PALAVER="$TARGET_DIR/release/palaver"
BENCH="$TARGET_DIR/release/palaver-bench"
ulimit -n "$(ulimit -Hn)"
if want read && ! command -v wrk >/dev/null; then
  echo "wrk is needed for the read figures: apt-get install -y --no-install-recommends wrk" >&2
  exit 1
fi

work="$(mktemp -d /tmp/palaver-bench-XXXXXX)"
pg=""
pids=()
stop_pid() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
cleanup() {
  for pid in "${pids[@]}"; do stop_pid "$pid"; done
  if [ -n "$pg" ] && [ -f "$pg/data/postmaster.pid" ]; then
    as_pg "$(pg_bin pg_ctl)" -D "$pg/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$work" "$pg"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
pg_bin() {
  if command -v "$1" >/dev/null; then command -v "$1"; else ls /usr/lib/postgresql/*/bin/"$1" | sort -V | tail -n1; fi
}

# PostgreSQL with default durability settings: only the port, socket folder,
# listen address and max_connections are set.
# As root the cluster runs as `postgres` (initdb refuses root), in a folder
# of its own.
pg_port="$(free_port)"
pg="$(mktemp -d /tmp/palaver-bench-pg-XXXXXX)"
if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$pg"; fi
as_pg "$(pg_bin initdb)" -U postgres -A trust -E UTF8 -D "$pg/data" >/dev/null
as_pg "$(pg_bin pg_ctl)" -D "$pg/data" -l "$pg/server.log" -w -t 60 \
  -o "-p $pg_port -k $pg -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
PG_ADMIN="postgres://postgres@127.0.0.1:$pg_port/postgres"
psql -qAt "$PG_ADMIN" -c "SHOW fsync; SHOW synchronous_commit; SHOW wal_sync_method; SHOW shared_buffers; SELECT version();" \
  >"$OUT/postgres-settings.txt"

# Starts a release server over backend $1 with extra flags; sets $base, $pid.
start_server() {
  local backend="$1"
  shift
  local port url
  port="$(free_port)"
  case "$backend" in
    sqlite)
      rm -f "$work"/sqlite.db*
      url="sqlite://$work/sqlite.db"
      ;;
    postgres)
      psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS palaver_bench WITH (FORCE)" -c "CREATE DATABASE palaver_bench"
      url="postgres://postgres@127.0.0.1:$pg_port/palaver_bench"
      ;;
  esac
  "$PALAVER" serve --listen "127.0.0.1:$port" --database-url "$url" \
    --rate-limit 0 --stream-open-rate 0 --max-streams-per-ip 0 --log warn --log-format json "$@" >"$work/server.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  base="http://127.0.0.1:$port"
  for _ in $(seq 1 400); do
    curl -fsS "$base/readyz" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  cat "$work/server.log" >&2
  return 1
}

machine() {
  {
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) x $(nproc)"
    echo "memory: $(free -g | awk '/Mem:/ {print $2}') GiB"
    echo "kernel: $(uname -r)"
    echo "rustc: $(rustc --version)"
    echo "wrk: $(wrk --version 2>&1 | head -n1 || true)"
    echo "date: $(date -u +%FT%TZ)"
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  } >"$OUT/machine.txt"
  # What one fdatasync costs on this disk (PostgreSQL's WAL flush).
  (cd "$work" && "$(pg_bin pg_test_fsync)" -s 2 -f "$work/fsync.test" 2>&1 | sed -n '1,12p') \
    >"$OUT/pg_test_fsync.txt" || true
}
machine

for backend in sqlite postgres; do
  if want send; then
    for rooms in 1 100; do
      for run in $(seq 1 "$RUNS"); do
        start_server "$backend"
        echo "send: $backend, $rooms room(s), run $run" >&2
        "$BENCH" send --base-url "$base" --clients "$CLIENTS" --rooms "$rooms" \
          --duration "$DURATION" --warmup 2 >"$OUT/send-$rooms-$backend-$run.json"
        # Group-commit batch sizes (sum and count of the histogram).
        curl -fsS "$base/metrics" | grep -E '^palaver_group_commit_batch_size_(sum|count)' \
          >"$OUT/send-$rooms-$backend-$run.batch.txt" || true
        stop_pid "$pid"
      done
    done
  fi

  if want read; then
    start_server "$backend"
    "$BENCH" read --base-url "$base" --prefill 1000 --duration 1 --warmup 0 >/dev/null
    for run in $(seq 1 "$RUNS"); do
      echo "read: $backend, run $run" >&2
      wrk -t1 -c"$CLIENTS" -d"${DURATION}s" --latency "$base/chat?size=50" \
        >"$OUT/read-chat-$backend-$run.txt"
      wrk -t1 -c"$CLIENTS" -d"${DURATION}s" --latency "$base/api/v1/rooms/general/messages?limit=50" \
        >"$OUT/read-v1-$backend-$run.txt"
    done
    curl -fsS "$base/chat?size=50" | wc -c >"$OUT/read-chat-bytes-$backend.txt"
    curl -fsS "$base/api/v1/rooms/general/messages?limit=50" | wc -c >"$OUT/read-v1-bytes-$backend.txt"
    stop_pid "$pid"
    if [ "$backend" = sqlite ]; then
      # The HTTP ceiling: a minimal axum handler returning a fixed body the
      # size of the /chat?size=50 answer, read the same way.
      port="$(free_port)"
      "$BENCH" ceiling --listen "127.0.0.1:$port" --body-bytes "$(cat "$OUT/read-chat-bytes-sqlite.txt")" 2>/dev/null &
      ceiling=$!
      pids+=("$ceiling")
      for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$port/" >/dev/null 2>&1 && break; sleep 0.05; done
      for run in $(seq 1 "$RUNS"); do
        echo "read: ceiling, run $run" >&2
        wrk -t1 -c"$CLIENTS" -d"${DURATION}s" --latency "http://127.0.0.1:$port/" \
          >"$OUT/read-ceiling-none-$run.txt"
      done
      stop_pid "$ceiling"
    fi
  fi

  if want fanout; then
    for rooms in 1 100; do
      for run in $(seq 1 "$RUNS"); do
        start_server "$backend" --max-streams 20000
        echo "fanout: $backend, $SUBSCRIBERS subscribers, $rooms room(s), run $run" >&2
        "$BENCH" fanout --base-url "$base" --subscribers "$SUBSCRIBERS" --rooms "$rooms" \
          --rate "$FANOUT_RATE" --duration "$FANOUT_DURATION" --drain-timeout 60 --server-pid "$pid" \
          >"$OUT/fanout-$rooms-$backend-$run.json"
        stop_pid "$pid"
      done
    done
  fi

  if want startup; then
    case "$backend" in
      sqlite) url="sqlite://$work/startup.db" ;;
      postgres)
        psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS palaver_startup" -c "CREATE DATABASE palaver_startup"
        url="postgres://postgres@127.0.0.1:$pg_port/palaver_startup"
        ;;
    esac
    # The first start creates the database and runs the migrations; the
    # figures are the next five (an existing database, as on a restart).
    "$BENCH" startup --bin "$PALAVER" --runs 1 -- --database-url "$url" --log warn >/dev/null
    "$BENCH" startup --bin "$PALAVER" --runs 5 -- --database-url "$url" --log warn \
      >"$OUT/startup-$backend.json"
  fi
done

# The per-commit limit of the same PostgreSQL: one-row INSERT transactions
# at the same client count.
if want pgbench; then
  psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS pgbench_insert" -c "CREATE DATABASE pgbench_insert"
  psql -q "postgres://postgres@127.0.0.1:$pg_port/pgbench_insert" -c \
    "CREATE TABLE messages (id bigserial PRIMARY KEY, room text NOT NULL, author text NOT NULL,
       text text NOT NULL, sent_at timestamptz NOT NULL DEFAULT now())"
  cp "$ROOT/crates/palaver-bench/pgbench-insert.sql" "$work/insert.sql"
  for run in $(seq 1 "$RUNS"); do
    echo "pgbench: run $run" >&2
    pgbench -n -M prepared -c "$CLIENTS" -j 2 -T "$DURATION" -f "$work/insert.sql" \
      "postgres://postgres@127.0.0.1:$pg_port/pgbench_insert" >"$OUT/pgbench-$run.txt" 2>&1
  done
fi

if want bus; then
  PALAVER="$PALAVER" BENCH="$BENCH" bash "$ROOT/crates/palaver-bench/bench-bus.sh" "$OUT"
  python3 "$ROOT/crates/palaver-bench/summarize-bus.py" "$OUT" | tee "$OUT/summary-bus.md"
fi

python3 "$ROOT/crates/palaver-bench/summarize.py" "$OUT" | tee "$OUT/summary.md"
echo "raw results: $OUT" >&2
