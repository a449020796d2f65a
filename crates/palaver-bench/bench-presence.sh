#!/usr/bin/env bash
# The "Presence and typing" figures of BENCHMARKS.md (issue 19), on both
# buses side by side in one run: two replicas (A and B, all roles) of one
# PostgreSQL (default durability) with the NOTIFY transport, then with
# --bus redis:// (one redis-server).
#
#   crates/palaver-bench/bench-presence.sh OUT_DIR
#
# Per bus:
#   typing   palaver-bench typing: one typist on B in $ROOMS rooms (a frame
#            per room every 2.05 s), a watcher on A: delivery p50/p99 across
#            the bus, $RUNS runs.
#   sends    palaver-bench send (32 clients, 100 rooms, $SEND_S s) against A,
#            alone and beside 2,000 rooms typing (2,000 people's worth), in
#            alternating pairs, $RUNS each; the signal payloads B sent (from
#            its /metrics) and the CPU of A, B and redis-server in that time.
#   online   $ONLINE_USERS users (sessions inserted straight in the table)
#            each with a stream on B, held $HOLD_S s: signal payloads/s and
#            CPU of A and B; then every stream closed and reopened for
#            $FLAP_S s (CPU of A and B over that time); A's and B's RSS
#            before, during and $SETTLE_S s after.
# Binaries: $PALAVER and $BENCH (default: target/release). Loopback only.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${1:?output folder}"
mkdir -p "$OUT"
PALAVER="${PALAVER:-$ROOT/target/release/palaver}"
BENCH="${BENCH:-$ROOT/target/release/palaver-bench}"
RUNS="${RUNS:-3}"
ROOMS="${ROOMS:-50}"
SEND_S="${SEND_S:-10}"
ONLINE_USERS="${ONLINE_USERS:-10000}"
HOLD_S="${HOLD_S:-60}"
FLAP_S="${FLAP_S:-60}"
SETTLE_S="${SETTLE_S:-60}"
BUSES="${BUSES:-postgres redis}"
TICK="$(getconf CLK_TCK)"

work="$(mktemp -d /tmp/palaver-presence-bench-XXXXXX)"
chmod 755 "$work" # the cluster runs as postgres
pids=()
stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
cleanup() {
  for pid in "${pids[@]}"; do stop_pid "$pid"; done
  bash "$ROOT/scripts/pg-cluster.sh" stop "$work/pg" >/dev/null 2>&1 || true
  bash "$ROOT/scripts/redis-server.sh" stop "$work/redis" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"

ADMIN="$(bash "$ROOT/scripts/pg-cluster.sh" start "$work/pg")"
REDIS="$(bash "$ROOT/scripts/redis-server.sh" start "$work/redis")"
REDIS_PID="$(cat "$work/redis/redis.pid")"
DB="${ADMIN%/*}/palaver_presence"

cpu_s() { awk -v t="$TICK" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / t }' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
metric() { # BASE NAME: the sum of a metric's series
  curl -fsS "$1/metrics" | awk -v n="$2" 'index($0, n) == 1 { s += $NF } END { printf "%d", s }'
}

# start NAME BUS -> sets base_NAME, pid_NAME
start() {
  local name="$1" bus="$2" port pid
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  local flags=()
  [ "$bus" = redis ] && flags=(--bus "$REDIS")
  "$PALAVER" serve --listen "127.0.0.1:$port" --database-url "$DB" "${flags[@]}" \
    --max-streams 30000 --max-streams-per-ip 0 --stream-open-rate 0 --rate-limit 0 \
    --registrations-per-ip-burst 100000 --login-failures-per-ip 0 \
    --log warn --log-format json >>"$work/server-$name.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  printf -v "base_$name" '%s' "http://127.0.0.1:$port"
  printf -v "pid_$name" '%s' "$pid"
  for _ in $(seq 1 400); do
    curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  tail -n 20 "$work/server-$name.log" >&2
  return 1
}

for bus in $BUSES; do
  echo "== bus $bus" >&2
  psql -q "$ADMIN" -c "DROP DATABASE IF EXISTS palaver_presence WITH (FORCE)" -c "CREATE DATABASE palaver_presence"
  start a "$bus"
  start b "$bus"

  for run in $(seq 1 "$RUNS"); do
    "$BENCH" typing --typist-url "$base_b" --watcher-url "$base_a" --rooms "$ROOMS" --duration 20 \
      >"$OUT/$bus.typing.$run.json"
  done

  for run in $(seq 1 "$RUNS"); do
    "$BENCH" send --base-url "$base_a" --clients 32 --rooms 100 --duration "$SEND_S" --warmup 2 \
      >"$OUT/$bus.sends-alone.$run.json"
    payloads0="$(metric "$base_b" palaver_signal_payloads_total)"
    cpu_a0="$(cpu_s "$pid_a")"; cpu_b0="$(cpu_s "$pid_b")"; cpu_r0="$(cpu_s "$REDIS_PID")"
    "$BENCH" typing --typist-url "$base_b" --watcher-url "$base_a" --rooms 2000 \
      --duration "$((SEND_S + 8))" >"$OUT/$bus.typing-2000.$run.json" 2>"$work/typing.log" &
    typing_pid=$!
    # Sends start once the 2,000 rooms are prepared and typing has begun.
    for _ in $(seq 1 600); do
      grep -q 'typing now' "$work/typing.log" 2>/dev/null && break
      sleep 0.2
    done
    "$BENCH" send --base-url "$base_a" --clients 32 --rooms 100 --duration "$SEND_S" --warmup 2 \
      >"$OUT/$bus.sends-typing.$run.json"
    wait "$typing_pid"
    payloads1="$(metric "$base_b" palaver_signal_payloads_total)"
    printf '{"payloads": %d, "cpu_a_s": %s, "cpu_b_s": %s, "cpu_redis_s": %s}\n' \
      "$((payloads1 - payloads0))" \
      "$(awk -v a="$(cpu_s "$pid_a")" -v b="$cpu_a0" 'BEGIN { printf "%.2f", a - b }')" \
      "$(awk -v a="$(cpu_s "$pid_b")" -v b="$cpu_b0" 'BEGIN { printf "%.2f", a - b }')" \
      "$(awk -v a="$(cpu_s "$REDIS_PID")" -v b="$cpu_r0" 'BEGIN { printf "%.2f", a - b }')" \
      >"$OUT/$bus.typing-2000-cost.$run.json"
  done

  # ONLINE_USERS users and sessions, inserted directly (no password hashing).
  psql -q "$DB" -c "INSERT INTO users (id, username, display_name)
      SELECT 'bench-online-user-' || i, 'bo' || i, 'Online ' || i FROM generate_series(0, $ONLINE_USERS - 1) i
      ON CONFLICT DO NOTHING" \
    -c "INSERT INTO sessions (id, user_id, created_at, expires_at)
      SELECT encode(sha256(convert_to('bench-online-' || i, 'UTF8')), 'hex'), 'bench-online-user-' || i, now(), now() + interval '1 day'
      FROM generate_series(0, $ONLINE_USERS - 1) i ON CONFLICT DO NOTHING"
  rss_a0="$(rss_kib "$pid_a")"; rss_b0="$(rss_kib "$pid_b")"
  payloads0="$(metric "$base_b" palaver_signal_payloads_total)"
  cpu_a0="$(cpu_s "$pid_a")"; cpu_b0="$(cpu_s "$pid_b")"; cpu_r0="$(cpu_s "$REDIS_PID")"
  "$BENCH" online --base-url "$base_b" --users "$ONLINE_USERS" --hold "$HOLD_S" --flap 0 \
    >"$OUT/$bus.online-hold.json" &
  online_pid=$!
  # Measure the holding phase only: from the last stream opened to the end
  # (99% of them: on a loaded machine a few openings time out).
  for _ in $(seq 1 600); do
    [ "$(metric "$base_a" palaver_presence_online_users)" -ge "$((ONLINE_USERS * 99 / 100))" ] && break
    kill -0 "$online_pid" 2>/dev/null || break
    sleep 1
  done
  sleep 10 # the openings' own signals are not part of the steady state
  p_start="$(metric "$base_b" palaver_signal_payloads_total)"
  c_a="$(cpu_s "$pid_a")"; c_b="$(cpu_s "$pid_b")"; c_r="$(cpu_s "$REDIS_PID")"; t0="$(date +%s.%N)"
  rss_a_on="$(rss_kib "$pid_a")"; rss_b_on="$(rss_kib "$pid_b")"
  wait "$online_pid"
  t1="$(date +%s.%N)"
  p_end="$(metric "$base_b" palaver_signal_payloads_total)"
  printf '{"users": %d, "seconds": %.1f, "payloads_per_s": %.2f, "cpu_a_pct": %.1f, "cpu_b_pct": %.1f, "cpu_redis_pct": %.1f, "rss_a_kib": [%d, %d], "rss_b_kib": [%d, %d]}\n' \
    "$ONLINE_USERS" "$(awk -v a="$t1" -v b="$t0" 'BEGIN { print a - b }')" \
    "$(awk -v a="$p_end" -v b="$p_start" -v s="$(awk -v a="$t1" -v b="$t0" 'BEGIN { print a - b }')" 'BEGIN { print (a - b) / s }')" \
    "$(awk -v a="$(cpu_s "$pid_a")" -v b="$c_a" -v x="$t1" -v y="$t0" 'BEGIN { print 100 * (a - b) / (x - y) }')" \
    "$(awk -v a="$(cpu_s "$pid_b")" -v b="$c_b" -v x="$t1" -v y="$t0" 'BEGIN { print 100 * (a - b) / (x - y) }')" \
    "$(awk -v a="$(cpu_s "$REDIS_PID")" -v b="$c_r" -v x="$t1" -v y="$t0" 'BEGIN { print 100 * (a - b) / (x - y) }')" \
    "$rss_a0" "$rss_a_on" "$rss_b0" "$rss_b_on" >"$OUT/$bus.online-cost.json"

  c_a="$(cpu_s "$pid_a")"; c_b="$(cpu_s "$pid_b")"; t0="$(date +%s.%N)"
  "$BENCH" online --base-url "$base_b" --users "$ONLINE_USERS" --hold 1 --flap "$FLAP_S" \
    >"$OUT/$bus.online-flap.json"
  t1="$(date +%s.%N)"
  printf '{"seconds": %.1f, "cpu_a_pct": %.1f, "cpu_b_pct": %.1f}\n' \
    "$(awk -v a="$t1" -v b="$t0" 'BEGIN { print a - b }')" \
    "$(awk -v a="$(cpu_s "$pid_a")" -v b="$c_a" -v x="$t1" -v y="$t0" 'BEGIN { print 100 * (a - b) / (x - y) }')" \
    "$(awk -v a="$(cpu_s "$pid_b")" -v b="$c_b" -v x="$t1" -v y="$t0" 'BEGIN { print 100 * (a - b) / (x - y) }')" \
    >"$OUT/$bus.online-flap-cost.json"
  rss_a_flap="$(rss_kib "$pid_a")"; rss_b_flap="$(rss_kib "$pid_b")"
  sleep "$SETTLE_S"
  printf '{"rss_a_kib": {"before": %d, "after_flapping": %d, "settled": %d}, "rss_b_kib": {"before": %d, "after_flapping": %d, "settled": %d}, "online_a_after": %d}\n' \
    "$rss_a0" "$rss_a_flap" "$(rss_kib "$pid_a")" "$rss_b0" "$rss_b_flap" "$(rss_kib "$pid_b")" \
    "$(metric "$base_a" palaver_presence_online_users)" >"$OUT/$bus.online-memory.json"

  stop_pid "$pid_a"; stop_pid "$pid_b"
done
python3 "$ROOT/crates/palaver-bench/summarize-presence.py" "$OUT" | tee "$OUT/summary.md"
