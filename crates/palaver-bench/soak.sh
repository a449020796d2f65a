#!/usr/bin/env bash
# Soak: steady fan-out load for $DURATION seconds (default 600) on PostgreSQL
# with nothing scraping /metrics, and the server's RSS every $EVERY seconds
# (default 30), then for $IDLE seconds (default 60) after the load stops.
#
#   crates/palaver-bench/soak.sh        # 600 subscribers in 300 rooms, 1,500 msg/s, 10 min
#   SUBSCRIBERS=200 ROOMS=100 RATE=500 DURATION=120 crates/palaver-bench/soak.sh
#
# Prints one line per sample (`elapsed_s rss_kib phase`) and writes them, the
# fanout summary (delivery counts and latency) and the server log to $OUT.
# The server is a release build; the cluster is a throwaway one from
# scripts/pg-cluster.sh (fsync=off: the figure is memory, not durability).
# Extra server flags can be given in $SERVER_ARGS. Every subscriber comes
# from 127.0.0.1, so the per-IP stream limits are off.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

SUBSCRIBERS="${SUBSCRIBERS:-600}"
ROOMS="${ROOMS:-300}"
RATE="${RATE:-1500}"
DURATION="${DURATION:-600}"
EVERY="${EVERY:-30}"
IDLE="${IDLE:-60}"
OUT="${OUT:-${CARGO_TARGET_DIR:-$ROOT/target}/bench/soak-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT"

if [ -z "${NO_BUILD:-}" ]; then
  cargo build --release --locked -p palaver -p palaver-bench
fi
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
PALAVER="$TARGET/release/palaver"
BENCH="$TARGET/release/palaver-bench"
ulimit -n "$(ulimit -Hn)"

cluster="$(mktemp -d /tmp/palaver-soak-pg-XXXXXX)"
server=""
bench=""
cleanup() {
  for pid in $bench $server; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  bash scripts/pg-cluster.sh stop "$cluster"
}
trap cleanup EXIT
url="$(bash scripts/pg-cluster.sh start "$cluster")"

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
# shellcheck disable=SC2086 # SERVER_ARGS is a list of flags
"$PALAVER" serve --listen "127.0.0.1:$port" --database-url "$url" \
  --rate-limit 0 --stream-open-rate 0 --max-streams-per-ip 0 \
  --log warn --log-format json ${SERVER_ARGS:-} >"$OUT/server.log" 2>&1 &
server=$!
base="http://127.0.0.1:$port"
for _ in $(seq 1 200); do
  if curl -fsS "$base/readyz" >/dev/null 2>&1; then break; fi
  sleep 0.05
done

rss() { awk '/^VmRSS:/ {print $2}' "/proc/$server/status"; }
echo "elapsed_s rss_kib phase" | tee "$OUT/rss.txt"
start=$(date +%s)
echo "0 $(rss) idle_before" | tee -a "$OUT/rss.txt"

"$BENCH" fanout --base-url "$base" --subscribers "$SUBSCRIBERS" --rooms "$ROOMS" \
  --rate "$RATE" --duration "$DURATION" --drain-timeout 30 --server-pid "$server" \
  >"$OUT/fanout.json" 2>"$OUT/fanout.log" &
bench=$!
while kill -0 "$bench" 2>/dev/null; do
  sleep "$EVERY"
  kill -0 "$bench" 2>/dev/null || break
  echo "$(( $(date +%s) - start )) $(rss) load" | tee -a "$OUT/rss.txt"
done
wait "$bench" && status=0 || status=$?
bench=""
end=$(( $(date +%s) + IDLE ))
while [ "$(date +%s)" -lt "$end" ]; do
  sleep "$EVERY"
  echo "$(( $(date +%s) - start )) $(rss) idle_after" | tee -a "$OUT/rss.txt"
done
echo "fanout summary: $OUT/fanout.json (exit $status)"
python3 - "$OUT/fanout.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
d = s["delivery"]
print(f"posted {s['posted_ok']}, expected {d['expected']}, received {d['received']}, "
      f"missing {d['missing']}, duplicates {d['duplicates']}, closed early {d['closed_early']}, "
      f"delivery p50 {s['delivery_latency'].get('p50_ms')} ms p99 {s['delivery_latency'].get('p99_ms')} ms")
PY
exit "$status"
