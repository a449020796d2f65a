#!/usr/bin/env bash
# Where the cores go during sends against pgbench (BENCHMARKS.md "Sends
# against pgbench, and the one-room cycle"): CPU of the server, the load
# generator and every PostgreSQL process over 8 s of a 32-client send run
# (ROOMS, default 1), then of pgbench's one-row INSERT on the same cluster
# (default durability), from /proc/PID/stat before and after.
#   ROOMS=100 crates/palaver-bench/cpu-split.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
PALAVER="${PALAVER:-$ROOT/target/release/palaver}"
BENCH="${BENCH:-$ROOT/target/release/palaver-bench}"
PGBIN="$(dirname "$(ls /usr/lib/postgresql/*/bin/pg_ctl | sort -V | tail -n1)")"
work="$(mktemp -d /tmp/palaver-cpu-XXXXXX)"
chown postgres "$work" 2>/dev/null || true
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
sp=""
cleanup() {
  [ -n "$sp" ] && kill "$sp" 2>/dev/null || true
  as_pg "$PGBIN/pg_ctl" -D "$work/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
as_pg "$PGBIN/initdb" -U postgres -A trust -E UTF8 -D "$work/data" >/dev/null
as_pg "$PGBIN/pg_ctl" -D "$work/data" -l "$work/pg.log" -w start \
  -o "-p $port -k $work -c listen_addresses=127.0.0.1 -c max_connections=200" >/dev/null
url="postgres://postgres@127.0.0.1:$port/postgres"
ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
pgticks() { local t=0 p; for p in $(pgrep -u postgres -f "$work" ; pgrep -u postgres -P "$(head -1 "$work/data/postmaster.pid")"); do t=$((t + $(awk '{print $14+$15}' "/proc/$p/stat" 2>/dev/null || echo 0))); done; echo "$t"; }
idle() { awk '/^cpu /{print $5}' /proc/stat; }
cores() { echo "scale=2; ($2 - $1) / 100 / $3" | bc; }

"$PALAVER" serve --listen "127.0.0.1:$((port + 1))" --database-url "$url" --rate-limit 0 \
  --stream-open-rate 0 --max-streams-per-ip 0 --log warn >"$work/server.log" 2>&1 &
sp=$!
sleep 2
"$BENCH" send --base-url "http://127.0.0.1:$((port + 1))" --clients 32 --rooms "${ROOMS:-1}" \
  --duration 12 --warmup 2 >"$work/send.json" &
bp=$!
sleep 4
s0=$(ticks $sp); b0=$(ticks $bp); g0=$(pgticks); i0=$(idle); t0=$(date +%s.%N)
sleep 8
s1=$(ticks $sp); b1=$(ticks $bp); g1=$(pgticks); i1=$(idle); t1=$(date +%s.%N)
wait $bp
el="$(echo "$t1 - $t0" | bc)"
echo "sends, ${ROOMS:-1} room(s): $(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['throughput_per_s'])" "$work/send.json") msg/s;" \
  "cores: server $(cores "$s0" "$s1" "$el") load generator $(cores "$b0" "$b1" "$el")" \
  "postgres $(cores "$g0" "$g1" "$el") idle $(cores "$i0" "$i1" "$el")"
kill $sp; wait $sp 2>/dev/null || true; sp=""

psql -q "$url" -c "CREATE TABLE pgb (id bigserial PRIMARY KEY, room text, author text, text text, sent_at timestamptz DEFAULT now())"
echo "INSERT INTO pgb (room, author, text) VALUES ('r', 'a', 'sixty-four characters of text, more or less, for the benchmark.');" >"$work/insert.sql"
"$PGBIN/pgbench" -n -c 32 -j 2 -T 8 -f "$work/insert.sql" "$url" >"$work/pgbench.txt" 2>&1 &
pb=$!
sleep 1
g0=$(pgticks); c0=$(ticks $pb); i0=$(idle); t0=$(date +%s.%N)
sleep 6
g1=$(pgticks); c1=$(ticks $pb); i1=$(idle); t1=$(date +%s.%N)
wait $pb
el="$(echo "$t1 - $t0" | bc)"
echo "pgbench: $(awk '/^tps/{print $3}' "$work/pgbench.txt") tps, latency $(awk '/latency average/{print $4}' "$work/pgbench.txt") ms;" \
  "cores: pgbench $(cores "$c0" "$c1" "$el") postgres $(cores "$g0" "$g1" "$el") idle $(cores "$i0" "$i1" "$el")"
