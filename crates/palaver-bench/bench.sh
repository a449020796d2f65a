#!/usr/bin/env bash
# Reproduces the figures in BENCHMARKS.md on this machine: release builds,
# SQLite and a PostgreSQL cluster with its default durability (fsync=on,
# synchronous_commit=on), each figure the median of $RUNS runs.
#
#   crates/palaver-bench/bench.sh                     # everything (~25 min)
#   ONLY=send,pgbench RUNS=5 crates/palaver-bench/bench.sh
#   PALAVER=/tmp/palaver-before BENCH=target/release/palaver-bench ONLY=cycle crates/palaver-bench/bench.sh
#
# Scenarios (ONLY, comma list): send pgbench read fanout startup put bus bigread cycle
# - cycle: the one-room batch cycle on PostgreSQL, broken down: closed-loop
#   sends into one room ($CLIENTS clients), the server's phase histogram
#   (palaver_group_commit_phase_seconds: gather, store, answer) and
#   pg_stat_statements with track_planning (plan and execute time of the
#   append statement) over the measured run; the store phase less plan and
#   execute is the WAL flush and the round trip. Not in the default list;
#   it loads pg_stat_statements into the cluster, so every scenario run
#   with it (or with PG_STATS=1) runs with that extension loaded.
#     ONLY=cycle crates/palaver-bench/bench.sh
# - put: the seed send, `PUT /chat` (wrk -t2 -c16, put-chat.lua), on SQLite
#   and PostgreSQL; the messages room `general` gained are compared with the
#   201s wrk counted.
# - bus: bench-bus.sh, the PostgreSQL against the Redis bus; not in the
#   default list, it starts its own PostgreSQL and redis-server.
# - bigread: page reads of a room of $BIGREAD_MESSAGES messages (default
#   10,000,000) against a room of 1,000 beside it and a room of 1,000 alone in
#   its database, on PostgreSQL (wrk -t1 -c32, signed in): the newest page
#   with the read cache on and off, and older pages from the middle of each
#   room (read-before.lua). Not in the default list: filling 10 million rows
#   (bigread-fill.sql) takes minutes (~130 s here) and ~2 GB of disk.
#     ONLY=bigread crates/palaver-bench/bench.sh
#     ONLY=bigread BIGREAD_MESSAGES=100000 RUNS=1 DURATION=5 crates/palaver-bench/bench.sh
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
ONLY="${ONLY:-send,pgbench,read,fanout,startup,put}"
BIGREAD_MESSAGES="${BIGREAD_MESSAGES:-10000000}"
OUT="${OUT:-$ROOT/target/bench/$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT"

want() { [[ ",$ONLY," == *",$1,"* ]]; }

# PALAVER and BENCH name prebuilt binaries (a before/after comparison in
# one sitting); without them both are built here.
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
if [ -z "${PALAVER:-}" ] || [ -z "${BENCH:-}" ]; then
  cargo build --release --locked -p palaver -p palaver-bench
fi
PALAVER="${PALAVER:-$TARGET_DIR/release/palaver}"
BENCH="${BENCH:-$TARGET_DIR/release/palaver-bench}"
ulimit -n "$(ulimit -Hn)"
if { want read || want put || want bigread; } && ! command -v wrk >/dev/null; then
  echo "wrk is needed for the read, put and bigread figures: apt-get install -y --no-install-recommends wrk" >&2
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
pg_stats=""
if want cycle || [ "${PG_STATS:-0}" = 1 ]; then
  pg_stats="-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track_planning=on"
fi
as_pg "$(pg_bin initdb)" -U postgres -A trust -E UTF8 -D "$pg/data" >/dev/null
as_pg "$(pg_bin pg_ctl)" -D "$pg/data" -l "$pg/server.log" -w -t 60 \
  -o "-p $pg_port -k $pg -c listen_addresses=127.0.0.1 -c max_connections=200 $pg_stats" start >/dev/null
PG_ADMIN="postgres://postgres@127.0.0.1:$pg_port/postgres"
psql -qAt "$PG_ADMIN" -c "SHOW fsync; SHOW synchronous_commit; SHOW wal_sync_method; SHOW shared_buffers; SELECT version();" \
  >"$OUT/postgres-settings.txt"

# Starts a release server over a fresh database of backend $1 with extra
# flags; sets $base, $pid.
start_server() {
  local backend="$1"
  shift
  local url
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
  serve "$url" "$@"
}

# Starts a release server over the database at URL $1 as it is, with extra
# flags; sets $base, $pid.
serve() {
  local url="$1"
  shift
  local port
  port="$(free_port)"
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

# Prints a `palaver_session=…` cookie of the bench user on the server at
# $base, registering the user first when it does not exist yet.
session_cookie() {
  local user='"username":"palaver-bench","password":"palaver-bench-password"'
  local path cookie=""
  for path in register login; do
    cookie="$(curl -sS -o /dev/null -D - -H 'Content-Type: application/json' \
      -d "{$user,\"display_name\":\"bench\"}" "$base/api/v1/auth/$path" |
      tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: *\(palaver_session=[^;]*\).*/\1/p')"
    [ -n "$cookie" ] && break
  done
  if [ -z "$cookie" ]; then
    echo "no session cookie from $base/api/v1/auth/{register,login}" >&2
    return 1
  fi
  echo "$cookie"
}

# Prints `last_seq` of room $1 as `GET /api/v1/rooms` (read from the
# rooms table) reports it, signed in with cookie $2.
room_last_seq() {
  curl -fsS -H "Cookie: $2" "$base/api/v1/rooms" |
    python3 -c 'import json, sys; print(next(r["last_seq"] for r in json.load(sys.stdin)["rooms"] if r["name"] == sys.argv[1]))' "$1"
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
    # v1 reads need a signed-in user (without one they are 401s).
    cookie="$(session_cookie)"
    for run in $(seq 1 "$RUNS"); do
      echo "read: $backend, run $run" >&2
      wrk -t1 -c"$CLIENTS" -d"${DURATION}s" --latency "$base/chat?size=50" \
        >"$OUT/read-chat-$backend-$run.txt"
      wrk -t1 -c"$CLIENTS" -d"${DURATION}s" --latency -H "Cookie: $cookie" "$base/api/v1/rooms/general/messages?limit=50" \
        >"$OUT/read-v1-$backend-$run.txt"
    done
    curl -fsS "$base/chat?size=50" | wc -c >"$OUT/read-chat-bytes-$backend.txt"
    curl -fsS -H "Cookie: $cookie" "$base/api/v1/rooms/general/messages?limit=50" | wc -c >"$OUT/read-v1-bytes-$backend.txt"
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

  # The seed send under the issue's load: 16 connections, 2 wrk threads.
  # The figure counts only what was stored: the messages room `general`
  # gained during the measured run are compared with wrk's 201s.
  if want put; then
    for run in $(seq 1 "$RUNS"); do
      start_server "$backend"
      echo "put: $backend, run $run" >&2
      cookie="$(session_cookie)"
      put=(wrk -t2 -c16 -s "$ROOT/crates/palaver-bench/put-chat.lua")
      "${put[@]}" -d2s "$base/chat" >/dev/null # warm-up, not counted
      sleep 0.5
      curl -fsS "$base/metrics" | grep -E '^palaver_group_commit_batch_size_(sum|count)' \
        >"$OUT/put-$backend-$run.batch-before.txt" || true
      before="$(room_last_seq general "$cookie")"
      "${put[@]}" -d"${DURATION}s" --latency "$base/chat" >"$OUT/put-$backend-$run.txt"
      # Requests wrk abandoned at its end may still commit: let them land.
      sleep 0.5
      after="$(room_last_seq general "$cookie")"
      curl -fsS "$base/metrics" | grep -E '^palaver_group_commit_batch_size_(sum|count)' \
        >"$OUT/put-$backend-$run.batch.txt" || true
      printf '{"connections": 16, "last_seq_before": %s, "last_seq_after": %s}\n' "$before" "$after" \
        >"$OUT/put-$backend-$run.stored.json"
      stop_pid "$pid"
    done
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

# The one-room batch cycle on PostgreSQL: where a batch's time goes.
if want cycle; then
  psql -q "$PG_ADMIN" -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"
  phases='^palaver_group_commit_(batch_size|phase_seconds)_(sum|count)'
  for run in $(seq 1 "$RUNS"); do
    start_server postgres
    echo "cycle: postgres, 1 room, run $run" >&2
    # Warm-up (prepares the statements on the pool's connections), then
    # the measured run from a reset of both counters.
    "$BENCH" send --base-url "$base" --clients "$CLIENTS" --rooms 1 --duration 2 --warmup 0 >/dev/null
    curl -fsS "$base/metrics" | grep -E "$phases" >"$OUT/cycle-$run.before.txt" || true
    psql -qAt "$PG_ADMIN" -c "SELECT pg_stat_statements_reset()" >/dev/null
    "$BENCH" send --base-url "$base" --clients "$CLIENTS" --rooms 1 --duration "$DURATION" --warmup 0 \
      >"$OUT/cycle-$run.json"
    curl -fsS "$base/metrics" | grep -E "$phases" >"$OUT/cycle-$run.after.txt" || true
    psql -q --csv "$PG_ADMIN" -c "SELECT s.calls, s.plans, s.total_plan_time, s.total_exec_time, s.rows,
        left(regexp_replace(s.query, '\s+', ' ', 'g'), 60) AS query
      FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
      WHERE d.datname = 'palaver_bench' ORDER BY s.total_exec_time DESC" >"$OUT/cycle-$run.statements.csv"
    stop_pid "$pid"
  done
  python3 - "$OUT" "$RUNS" <<'PY' | tee "$OUT/summary-cycle.md"
import csv, json, re, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
def metrics(path):
    found = {}
    for line in open(path):
        m = re.match(r'(palaver_group_commit_\w+?)_(sum|count)(\{phase="(\w+)"\})? ([\d.e+-]+)', line)
        if m:
            found[(m.group(1), m.group(4), m.group(2))] = float(m.group(5))
    return found
rows = []
for run in range(1, runs + 1):
    before, after = metrics(f"{out}/cycle-{run}.before.txt"), metrics(f"{out}/cycle-{run}.after.txt")
    d = lambda k: after.get(k, 0.0) - before.get(k, 0.0)
    batches = d(("palaver_group_commit_batch_size", None, "count"))
    sends = json.load(open(f"{out}/cycle-{run}.json"))
    phase = lambda p: 1000 * d(("palaver_group_commit_phase_seconds", p, "sum")) / max(d(("palaver_group_commit_phase_seconds", p, "count")), 1)
    append = [r for r in csv.DictReader(open(f"{out}/cycle-{run}.statements.csv")) if "input AS" in r["query"]]
    calls = sum(int(r["calls"]) for r in append)
    plans = sum(int(r["plans"]) for r in append)
    plan = sum(float(r["total_plan_time"]) for r in append) / max(calls, 1)
    execute = sum(float(r["total_exec_time"]) for r in append) / max(calls, 1)
    store = phase("store")
    rows.append({
        "msg/s": sends["throughput_per_s"], "batches/s": batches / sends["duration_s"],
        "mean batch": d(("palaver_group_commit_batch_size", None, "sum")) / max(batches, 1),
        "gather ms": phase("gather"), "plan ms": plan, "execute ms": execute,
        "flush + round trip ms": store - plan - execute, "store ms": store,
        "answer ms": phase("answer"), "plans per call": plans / max(calls, 1),
        "cycle ms": 1000 * sends["duration_s"] / max(batches, 1),
    })
print("| one-room batch cycle, PostgreSQL (medians of %d) | " % runs + " | ".join(rows[0]) + " |")
print("|---|" + "---:|" * len(rows[0]))
print("| this run | " + " | ".join(f"{statistics.median(r[k] for r in rows):,.3f}" for k in rows[0]) + " |")
PY
fi

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

# Page reads at BIGREAD_MESSAGES stored messages against the same reads at
# 1,000 (PostgreSQL), filled in SQL. Database palaver_bench holds room `big`
# (BIGREAD_MESSAGES) and room `small` (1,000) side by side; palaver_bench_1k
# holds only a room `small` of 1,000 (target `alone`: the reads at 1,000
# stored messages, index and table that small too). Runs alternate the order
# of the targets, so a machine getting busier does not favour one of them.
if want bigread; then
  small_n=1000
  start_server postgres # a fresh palaver_bench database, migrated
  stop_pid "$pid"
  bigdb="postgres://postgres@127.0.0.1:$pg_port/palaver_bench"
  psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS palaver_bench_1k WITH (FORCE)" -c "CREATE DATABASE palaver_bench_1k"
  smalldb="postgres://postgres@127.0.0.1:$pg_port/palaver_bench_1k"
  serve "$smalldb" # migrations
  stop_pid "$pid"
  psql -q "$smalldb" -v big=0 -v small="$small_n" -f "$ROOT/crates/palaver-bench/bigread-fill.sql"
  psql -q "$smalldb" -c "VACUUM ANALYZE rooms, messages"
  echo "bigread: filling room big ($BIGREAD_MESSAGES messages) and small ($small_n)" >&2
  t0="$(date +%s.%N)"
  psql -q "$bigdb" -v big="$BIGREAD_MESSAGES" -v small="$small_n" \
    -f "$ROOT/crates/palaver-bench/bigread-fill.sql"
  t1="$(date +%s.%N)"
  psql -q "$bigdb" -c "VACUUM ANALYZE rooms, messages"
  t2="$(date +%s.%N)"
  python3 - "$t0" "$t1" "$t2" "$BIGREAD_MESSAGES" "$small_n" \
    "$(psql -qAt "$bigdb" -c "SELECT pg_total_relation_size('messages')")" \
    "$(psql -qAt "$bigdb" -c "SELECT name || '=' || last_seq FROM rooms WHERE name IN ('big', 'small') ORDER BY name" | paste -sd,)" \
    "$(psql -qAt "$bigdb" -c "SELECT room || '=' || count(*) || '/' || max(seq) FROM messages WHERE room IN ('big', 'small') GROUP BY room ORDER BY room" | paste -sd,)" \
    >"$OUT/bigread-generate.json" <<'PY'
import json, sys
t0, t1, t2 = map(float, sys.argv[1:4])
print(json.dumps({
    "big_messages": int(sys.argv[4]), "small_messages": int(sys.argv[5]),
    "insert_s": round(t1 - t0, 1), "vacuum_analyze_s": round(t2 - t1, 1),
    "messages_table_bytes": int(sys.argv[6]),
    "rooms_last_seq": sys.argv[7], "messages_count_max_seq": sys.argv[8],
}))
PY
  cat "$OUT/bigread-generate.json" >&2
  # A few `before` seqs around the middle of a room of $1 messages.
  middle_seqs() { python3 -c 'import sys; n = int(sys.argv[1]); print(",".join(str(n // 2 + k * max(n // 100, 1)) for k in range(-4, 4)))' "$1"; }
  # Reads room $4 (of $5 messages) as target $3 in run $2 with the read
  # cache $1, from the server at $base signed in with $cookie.
  bigread_measure() {
    local cache="$1" run="$2" target="$3" room="$4" n="$5"
    echo "bigread: $target ($room), newest page, read cache $cache, run $run" >&2
    wrk -t1 -c32 -d"${DURATION}s" --latency -H "Cookie: $cookie" \
      "$base/api/v1/rooms/$room/messages?limit=50" >"$OUT/bigread-newest-cache$cache-$target-$run.txt"
    if [ "$cache" = off ]; then
      echo "bigread: $target ($room), middle pages, run $run" >&2
      ROOM="$room" BEFORE_SEQS="$(middle_seqs "$n")" wrk -t1 -c32 -d"${DURATION}s" --latency \
        -H "Cookie: $cookie" -s "$ROOT/crates/palaver-bench/read-before.lua" "$base" \
        >"$OUT/bigread-middle-$target-$run.txt"
    fi
  }
  # Serves database $1 with the read cache $2, signs in, checks that room $3's
  # newest page is full.
  bigread_serve() {
    if [ "$2" = on ]; then serve "$1"; else serve "$1" --read-cache-messages 0; fi
    cookie="$(session_cookie)"
    curl -fsS -H "Cookie: $cookie" "$base/api/v1/rooms/$3/messages?limit=50" |
      python3 -c 'import json, sys; p = json.load(sys.stdin); print(sys.argv[1], "messages", len(p["messages"]), "newest", p["messages"][0]["seq"], "has_more", p["has_more"])' "$1 $3" \
      >>"$OUT/bigread-check.txt"
  }
  for cache in on off; do
    for run in $(seq 1 "$RUNS"); do
      if ((run % 2)); then dbs="both alone" rooms="small big"; else dbs="alone both" rooms="big small"; fi
      for db in $dbs; do
        if [ "$db" = alone ]; then
          bigread_serve "$smalldb" "$cache" small
          bigread_measure "$cache" "$run" alone small "$small_n"
        else
          bigread_serve "$bigdb" "$cache" big
          for room in $rooms; do
            n="$small_n"
            [ "$room" = big ] && n="$BIGREAD_MESSAGES"
            bigread_measure "$cache" "$run" "$room" "$room" "$n"
          done
        fi
        stop_pid "$pid"
      done
    done
  done
fi

if want bus; then
  PALAVER="$PALAVER" BENCH="$BENCH" bash "$ROOT/crates/palaver-bench/bench-bus.sh" "$OUT"
  python3 "$ROOT/crates/palaver-bench/summarize-bus.py" "$OUT" | tee "$OUT/summary-bus.md"
fi

python3 "$ROOT/crates/palaver-bench/summarize.py" "$OUT" | tee "$OUT/summary.md"
echo "raw results: $OUT" >&2
