#!/usr/bin/env bash
# The "Bus" figures of BENCHMARKS.md: the PostgreSQL LISTEN/NOTIFY bus against
# the Redis bus, side by side in one run, with one writer process (role api)
# and 1, 2 and 4 gateway processes (role gateway) on one PostgreSQL (default
# durability, pg_stat_statements loaded) and one redis-server.
#
#   crates/palaver-bench/bench-bus.sh OUT_DIR     # or: ONLY=bus crates/palaver-bench/bench.sh
#
# Per bus and gateway count, two fan-out runs over 100 fresh rooms with
# $BUS_SUBSCRIBERS WebSocket subscribers spread over every gateway:
#   throughput  closed-loop posting from $BUS_CLIENTS clients for $BUS_DURATION s
#   latency     $BUS_RATE msg/s for $BUS_DURATION s (commit->delivery p50/p99)
# For each run: database statements (pg_stat_statements, reset once every
# subscriber is caught up, so they count the posting phase only) per
# delivered message, split by database user (writer / gateways); CPU seconds
# of every process (from /proc/PID/stat); redis-server's PUBLISH count and
# CPU. Then 100-room sends (palaver-bench send) against the writer with NOTIFY
# in each transaction (postgres bus) and without (redis bus).
# Binaries: $PALAVER and $BENCH (default: target/release). Loopback only.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUT="${1:?output folder}"
mkdir -p "$OUT"
PALAVER="${PALAVER:-$ROOT/target/release/palaver}"
BENCH="${BENCH:-$ROOT/target/release/palaver-bench}"
BUS_SUBSCRIBERS="${BUS_SUBSCRIBERS:-800}"
BUS_ROOMS="${BUS_ROOMS:-100}"
BUS_CLIENTS="${BUS_CLIENTS:-32}"
BUS_RATE="${BUS_RATE:-200}"
BUS_DURATION="${BUS_DURATION:-10}"
BUS_GATEWAYS="${BUS_GATEWAYS:-1 2 4}"
TICK="$(getconf CLK_TCK)"

work="$(mktemp -d /tmp/palaver-bus-bench-XXXXXX)"
pids=()
stop_pid() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
pg_bin() {
  if command -v "$1" >/dev/null; then command -v "$1"; else ls /usr/lib/postgresql/*/bin/"$1" | sort -V | tail -n1; fi
}
pg="$work/pg"
cleanup() {
  for pid in "${pids[@]}"; do stop_pid "$pid"; done
  [ -f "$pg/data/postmaster.pid" ] && as_pg "$(pg_bin pg_ctl)" -D "$pg/data" -m fast -w stop >/dev/null 2>&1 || true
  bash "$ROOT/scripts/redis-server.sh" stop "$work/redis" || true
  rm -rf "$work"
}
trap cleanup EXIT
ulimit -n "$(ulimit -Hn)"

# PostgreSQL with default durability, plus pg_stat_statements.
mkdir -p "$pg"
[ "$(id -u)" -eq 0 ] && chown postgres:postgres "$pg" "$work"
pg_port="$(free_port)"
as_pg "$(pg_bin initdb)" -U postgres -A trust -E UTF8 -D "$pg/data" >/dev/null
as_pg "$(pg_bin pg_ctl)" -D "$pg/data" -l "$pg/server.log" -w -t 60 \
  -o "-p $pg_port -k $pg -c listen_addresses=127.0.0.1 -c max_connections=300 -c shared_preload_libraries=pg_stat_statements" \
  start >/dev/null
ADMIN="postgres://postgres@127.0.0.1:$pg_port/postgres"
psql -qAt "$ADMIN" -c "CREATE ROLE writer LOGIN SUPERUSER" -c "CREATE ROLE gateway LOGIN SUPERUSER"
REDIS="$(bash "$ROOT/scripts/redis-server.sh" start "$work/redis")"
REDIS_PID="$(cat "$work/redis/redis.pid")"
redis_cli() { redis-cli -u "$REDIS" "$@"; }

cpu_s() { # utime + stime of a PID, in seconds
  awk -v t="$TICK" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / t }' "/proc/$1/stat"
}

fresh_db() {
  psql -q "$ADMIN" -c "DROP DATABASE IF EXISTS palaver_bus WITH (FORCE)" -c "CREATE DATABASE palaver_bus"
  psql -q "postgres://postgres@127.0.0.1:$pg_port/palaver_bus" -c "CREATE EXTENSION pg_stat_statements"
}

# start ROLE USER BUS -> sets $base and $pid
start() {
  local role="$1" user="$2" bus="$3" port
  port="$(free_port)"
  "$PALAVER" serve --listen "127.0.0.1:$port" \
    --database-url "postgres://$user@127.0.0.1:$pg_port/palaver_bus" \
    --role "$role" --bus "$bus" --max-streams 20000 \
    --rate-limit 0 --log warn --log-format json >>"$work/server.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  base="http://127.0.0.1:$port"
  for _ in $(seq 1 400); do
    curl -fsS "$base/readyz" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  tail -n 20 "$work/server.log" >&2
  return 1
}

# Written by --before-posting: resets the counters, records CPU times.
cat >"$work/mark.sh" <<EOF
#!/usr/bin/env bash
psql -qAt "postgres://postgres@127.0.0.1:$pg_port/palaver_bus" -c "SELECT pg_stat_statements_reset()" >/dev/null
redis-cli -u "$REDIS" CONFIG RESETSTAT >/dev/null
for p in \$(cat "$work/procs"); do
  echo "\$p \$(awk -v t=$TICK '{ sub(/^.*\) /, ""); printf "%.2f", (\$12 + \$13) / t }' /proc/\$p/stat)"
done >"$work/cpu-before"
pm=\$(head -n1 "$pg/data/postmaster.pid")
for p in \$pm \$(pgrep -P \$pm); do
  echo "\$p \$(awk -v t=$TICK '{ sub(/^.*\) /, ""); printf "%.2f", (\$12 + \$13) / t }' /proc/\$p/stat 2>/dev/null)"
done >"$work/pg-before"
EOF
chmod +x "$work/mark.sh"

# after RUN_NAME: statements, CPU, broker figures of the posting phase.
after() {
  local name="$1"
  psql -qAt -F ' ' "postgres://postgres@127.0.0.1:$pg_port/palaver_bus" -c \
    "SELECT r.rolname, sum(s.calls), sum(s.rows) FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
      WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = 'palaver_bus') AND r.rolname IN ('writer', 'gateway')
      GROUP BY r.rolname ORDER BY 1" >"$OUT/$name.statements.txt"
  psql -qAt -F ' ' "postgres://postgres@127.0.0.1:$pg_port/palaver_bus" -c \
    "SELECT r.rolname, s.calls, s.rows, left(regexp_replace(s.query, '\s+', ' ', 'g'), 90) FROM pg_stat_statements s
      JOIN pg_roles r ON r.oid = s.userid WHERE r.rolname IN ('writer', 'gateway')
      AND s.dbid = (SELECT oid FROM pg_database WHERE datname = 'palaver_bus') ORDER BY s.calls DESC LIMIT 12" \
    >"$OUT/$name.top-statements.txt"
  : >"$OUT/$name.cpu.txt"
  while read -r p before; do
    echo "$p $(awk -v a="$(cpu_s "$p")" -v b="$before" 'BEGIN { printf "%.2f", a - b }')" >>"$OUT/$name.cpu.txt"
  done <"$work/cpu-before"
  # PostgreSQL: the postmaster and its children (backends started during the
  # run count from zero).
  local pm total=0
  pm="$(head -n1 "$pg/data/postmaster.pid")"
  for p in $pm $(pgrep -P "$pm"); do
    now="$(cpu_s "$p" 2>/dev/null || echo 0)"
    before="$(awk -v p="$p" '$1 == p { print $2 }' "$work/pg-before")"
    total="$(awk -v a="$total" -v n="$now" -v b="${before:-0}" 'BEGIN { printf "%.2f", a + n - b }')"
  done
  echo "postgres $total" >>"$OUT/$name.cpu.txt"
  redis_cli INFO commandstats | tr -d '\r' | grep -E '^cmdstat_(publish|subscribe|unsubscribe|ping):' \
    >"$OUT/$name.redis.txt" || true
}

for bus in postgres redis; do
  bus_arg="$bus"
  [ "$bus" = redis ] && bus_arg="$REDIS"
  for gateways in $BUS_GATEWAYS; do
    fresh_db
    : >"$work/procs"
    start api writer "$bus_arg"
    api="$base"
    echo "writer $pid" >"$OUT/bus-$bus-$gateways.procs.txt"
    echo "postgres postgres" >>"$OUT/bus-$bus-$gateways.procs.txt"
    echo "$pid" >>"$work/procs"
    urls=()
    for g in $(seq 1 "$gateways"); do
      start gateway gateway "$bus_arg"
      urls+=("$base")
      echo "gateway $pid" >>"$OUT/bus-$bus-$gateways.procs.txt"
      echo "$pid" >>"$work/procs"
    done
    [ "$bus" = redis ] && echo "redis $REDIS_PID" >>"$OUT/bus-$bus-$gateways.procs.txt" && echo "$REDIS_PID" >>"$work/procs"
    gw_list="$(IFS=,; echo "${urls[*]}")"
    for mode in throughput latency; do
      name="bus-$bus-$gateways-$mode"
      echo "bus: $bus, $gateways gateway(s), $mode" >&2
      rate=0
      [ "$mode" = latency ] && rate="$BUS_RATE"
      "$BENCH" fanout --base-url "$gw_list" --post-url "$api" --subscribers "$BUS_SUBSCRIBERS" \
        --rooms "$BUS_ROOMS" --rate "$rate" --post-clients "$BUS_CLIENTS" --duration "$BUS_DURATION" \
        --drain-timeout 60 --before-posting "$work/mark.sh" >"$OUT/$name.json"
      after "$name"
    done
    for p in $(cat "$work/procs"); do [ "$p" = "$REDIS_PID" ] || stop_pid "$p"; done
  done
done

# 100-room sends into the writer alone: NOTIFY in every transaction
# (postgres bus) against none (redis bus: the batch is published after commit).
for bus in postgres redis; do
  bus_arg="$bus"
  [ "$bus" = redis ] && bus_arg="$REDIS"
  fresh_db
  start api writer "$bus_arg"
  echo "bus: 100-room sends, $bus bus" >&2
  "$BENCH" send --base-url "$base" --clients "$BUS_CLIENTS" --rooms 100 \
    --duration "$BUS_DURATION" --warmup 2 >"$OUT/bus-send100-$bus.json"
  stop_pid "$pid"
done
cp "$pg/server.log" "$OUT/bus-postgres.log" 2>/dev/null || true
echo "bus figures: $OUT" >&2
