#!/usr/bin/env bash
# Writes under room events and the search index (issues 17 and 18;
# BENCHMARKS.md "Room events" and "Search, direct rooms, files"): release
# builds, SQLite and a PostgreSQL cluster with bench.sh's default durability,
# $CLIENTS clients into 100 rooms, each figure the median of $RUNS runs, each
# run a fresh database; within a run the scenarios go in turn (their order
# rotates from run to run), so all figures of a run share the machine's load.
# Scenarios (closed loop, $DURATION s after 2 s of warm-up):
# - send:          `palaver-bench send` (bench.sh's sends figure);
# - send-noindex:  the same with the search index taken out after the
#                  migrations (PostgreSQL: the generated `search` column and
#                  its GIN index dropped; SQLite: the three FTS triggers
#                  dropped), server restarted;
# - sendsonly:     `palaver-bench mixed --sends-only` (the mix's own client);
# - mixed:         `palaver-bench mixed`: 80% sends, 10% reactions, 5% edits,
#                  5% read markers;
# - after-events:  sends only into 100 rooms that first took 5 s of the mix
#                  (so they hold edits and reactions).
# Fan-out (FANOUT=1, the default): `palaver-bench fanout` (1,000 WebSocket
# subscribers over 100 rooms, 100 posts/s for 20 s) while a background load
# of $BG_RATE requests/s runs in 100 other rooms: sends only, or the mix.
#   crates/palaver-bench/bench-events.sh
#   BACKENDS=postgres RUNS=1 DURATION=5 FANOUT=0 crates/palaver-bench/bench-events.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

RUNS="${RUNS:-3}"
DURATION="${DURATION:-10}"
CLIENTS="${CLIENTS:-32}"
BACKENDS="${BACKENDS:-sqlite postgres}"
FANOUT="${FANOUT:-1}"
BG_RATE="${BG_RATE:-400}"
OUT="${OUT:-$ROOT/target/bench/events-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT"

# PALAVER and BENCH name prebuilt binaries (a before/after comparison,
# one run each); without them both are built here.
if [ -z "${PALAVER:-}" ] || [ -z "${BENCH:-}" ]; then
  cargo build --release --locked -p palaver -p palaver-bench
fi
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
PALAVER="${PALAVER:-$TARGET_DIR/release/palaver}"
BENCH="${BENCH:-$TARGET_DIR/release/palaver-bench}"
ulimit -n "$(ulimit -Hn)"

work="$(mktemp -d /tmp/palaver-events-XXXXXX)"
pg="$(mktemp -d /tmp/palaver-events-pg-XXXXXX)"
pids=()
pid=""
stop_pid() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
pg_bin() {
  if command -v "$1" >/dev/null; then command -v "$1"; else ls /usr/lib/postgresql/*/bin/"$1" | sort -V | tail -n1; fi
}
cleanup() {
  for p in "${pids[@]}"; do stop_pid "$p"; done
  if [ -f "$pg/data/postmaster.pid" ]; then
    as_pg "$(pg_bin pg_ctl)" -D "$pg/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$work" "$pg"
}
trap cleanup EXIT
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

pg_port="$(free_port)"
if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$pg"; fi
as_pg "$(pg_bin initdb)" -U postgres -A trust -E UTF8 -D "$pg/data" >/dev/null
as_pg "$(pg_bin pg_ctl)" -D "$pg/data" -l "$pg/server.log" -w -t 60 \
  -o "-p $pg_port -k $pg -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
PG_ADMIN="postgres://postgres@127.0.0.1:$pg_port/postgres"
{
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) x $(nproc)"
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "load before: $(cat /proc/loadavg)"
} >"$OUT/machine.txt"

# Serves $url with extra flags; sets $base, $pid.
serve() {
  local port
  port="$(free_port)"
  "$PALAVER" serve --listen "127.0.0.1:$port" --database-url "$url" \
    --rate-limit 0 --stream-open-rate 0 --max-streams-per-ip 0 \
    --registrations-per-ip-burst 1000000 --registrations-per-ip-per-hour 3600 \
    --log warn --log-format json "$@" >"$work/server.log" 2>&1 &
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
# A fresh database of backend $1, served with extra flags.
fresh() {
  local backend="$1"
  shift
  case "$backend" in
    sqlite)
      rm -f "$work"/events.db*
      url="sqlite://$work/events.db"
      ;;
    postgres)
      psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS palaver_events WITH (FORCE)" -c "CREATE DATABASE palaver_events"
      url="postgres://postgres@127.0.0.1:$pg_port/palaver_events"
      ;;
  esac
  serve "$@"
}
# Takes the search index out of the database the server at $pid serves,
# and serves it again.
without_search_index() {
  stop_pid "$pid"
  case "$1" in
    sqlite)
      "$BENCH" sql --database-url "$url" --file "$ROOT/crates/palaver-bench/no-search-index-sqlite.sql" >/dev/null
      ;;
    postgres) psql -q "$url" -c "ALTER TABLE messages DROP COLUMN search" ;;
  esac
  serve
}

scenarios=(send send-noindex sendsonly mixed after-events)
load=(--base-url X --clients "$CLIENTS" --duration "$DURATION" --warmup 2)
for backend in $BACKENDS; do
  for run in $(seq 1 "$RUNS"); do
    # Rotate the order so no scenario always runs first or last.
    k=$(((run - 1) % ${#scenarios[@]}))
    order=("${scenarios[@]:k}" "${scenarios[@]:0:k}")
    for scenario in "${order[@]}"; do
      echo "events: $backend, $scenario, run $run" >&2
      fresh "$backend"
      load[1]="$base"
      file="$OUT/$scenario-$backend-$run.json"
      case "$scenario" in
        send) "$BENCH" send "${load[@]}" --rooms 100 >"$file" ;;
        send-noindex)
          without_search_index "$backend"
          load[1]="$base"
          "$BENCH" send "${load[@]}" --rooms 100 >"$file"
          ;;
        sendsonly) "$BENCH" mixed "${load[@]}" --rooms 100 --sends-only >"$file" ;;
        mixed) "$BENCH" mixed "${load[@]}" --rooms 100 >"$file" ;;
        after-events)
          "$BENCH" mixed --base-url "$base" --clients "$CLIENTS" --duration 5 --warmup 0 \
            --rooms 100 --room-prefix "ev$run" >"$OUT/after-events-prep-$backend-$run.json"
          "$BENCH" mixed "${load[@]}" --rooms 100 --room-prefix "ev$run" --sends-only >"$file"
          ;;
      esac
      stop_pid "$pid"
    done
  done
  if [ "$FANOUT" = 1 ]; then
    for run in $(seq 1 "$RUNS"); do
      if ((run % 2)); then bgs="sendsonly mixed"; else bgs="mixed sendsonly"; fi
      for bg in $bgs; do
        echo "events: $backend, fan-out beside $bg at $BG_RATE/s, run $run" >&2
        fresh "$backend" --max-streams 20000
        flag=""
        [ "$bg" = sendsonly ] && flag="--sends-only"
        bgfile="$OUT/fanout-bg-$bg-$backend-$run.json"
        "$BENCH" fanout --base-url "$base" --subscribers 1000 --rooms 100 --rate 100 --duration 20 \
          --drain-timeout 60 --server-pid "$pid" \
          --before-posting "'$BENCH' mixed --base-url '$base' --clients 256 --rate $BG_RATE --duration 22 --warmup 0 --rooms 100 $flag >'$bgfile' 2>/dev/null &" \
          >"$OUT/fanout-$bg-$backend-$run.json"
        for _ in $(seq 1 600); do [ -s "$bgfile" ] && break; sleep 0.1; done
        stop_pid "$pid"
      done
    done
  fi
done
echo "load after: $(cat /proc/loadavg)" >>"$OUT/machine.txt"
python3 "$ROOT/crates/palaver-bench/summarize-events.py" "$OUT" | tee "$OUT/summary.md"
echo "raw results: $OUT" >&2
