#!/usr/bin/env bash
# Uploads for issue 18 (BENCHMARKS.md "Search, direct rooms, files"): $UPLOADS
# concurrent uploads of $MIB MiB (random bytes, curl --data-binary) to one
# release server (SQLite, --file-store file://<tmp>/files on the same disk as
# the reference, --max-concurrent-uploads $UPLOADS), side by side in each run
# with the reference: the same bytes written to the same folder by $UPLOADS
# concurrent `dd bs=1M` (page cache, no fsync: the file store does not fsync
# either). Per run: wall time of each, and the server's VmRSS sampled every
# 10 ms (peak minus the RSS just before the uploads, after one warm-up
# upload). Median of $RUNS runs; the order of the two alternates.
#   crates/palaver-bench/bench-files.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
RUNS="${RUNS:-3}"
UPLOADS="${UPLOADS:-20}"
MIB="${MIB:-10}"
OUT="${OUT:-$ROOT/target/bench/files-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT"

# -p palaver-bench too, so features unify as in the other scripts (no rebuild)
cargo build --release --locked -p palaver -p palaver-bench
PALAVER="${CARGO_TARGET_DIR:-$ROOT/target}/release/palaver"
# Under target/ (the same disk as the build) rather than /tmp, which may be
# a tmpfs.
work="$(mktemp -d "$ROOT/target/palaver-files-XXXXXX")"
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$PALAVER" serve --listen "127.0.0.1:$port" --database-url "sqlite://$work/files.db" \
  --file-store "file://$work/files" --max-concurrent-uploads "$UPLOADS" \
  --rate-limit 0 --log warn >"$work/server.log" 2>&1 &
pid=$!
base="http://127.0.0.1:$port"
for _ in $(seq 1 400); do curl -fsS "$base/readyz" >/dev/null 2>&1 && break; sleep 0.05; done
body='{"username":"bench-files","password":"bench-files-password","display_name":"files"}'
cookie="$(curl -sS -o /dev/null -D - -H 'Content-Type: application/json' -d "$body" "$base/api/v1/auth/register" |
  tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: *\(palaver_session=[^;]*\).*/\1/p')"
[ -n "$cookie" ] || { echo "no session" >&2; exit 1; }
mkdir -p "$work/files" "$work/ref"
head -c "$((MIB * 1024 * 1024))" /dev/urandom >"$work/upload.bin"
{
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "disk: $(df -h "$work" | tail -n1)"
  echo "load before: $(cat /proc/loadavg)"
} >"$OUT/machine.txt"

upload() {
  curl -sS -o /dev/null -w '%{http_code}\n' -H "Cookie: $cookie" --data-binary @"$work/upload.bin" \
    "$base/api/v1/rooms/general/files?name=upload-$1.bin"
}
upload warm >/dev/null

# Samples the server's VmRSS (KiB) every 10 ms until $work/stop exists.
sample_rss() {
  python3 - "$pid" "$work/stop" "$work/ready" <<'PY'
import os, sys, time
pid, stop, ready = sys.argv[1], sys.argv[2], sys.argv[3]
peak = 0
while True:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            peak = max(peak, int(line.split()[1]))
    if not os.path.exists(ready):
        open(ready, "w").close()
    if os.path.exists(stop):
        break
    time.sleep(0.01)
print(peak)
PY
}
rss_now() { awk '/VmRSS:/ {print $2}' "/proc/$pid/status"; }
now() { date +%s.%N; }

measure_uploads() {
  local run="$1" before t0 t1 codes
  sync
  before="$(rss_now)"
  rm -f "$work/stop" "$work/ready"
  sample_rss >"$work/peak" &
  local sampler=$!
  # The sampler has read the RSS once before the first upload starts.
  while [ ! -e "$work/ready" ]; do sleep 0.01; done
  t0="$(now)"
  local uploads=()
  for i in $(seq 1 "$UPLOADS"); do
    upload "$run-$i" >"$work/code-$i" &
    uploads+=("$!")
  done
  wait "${uploads[@]}"
  t1="$(now)"
  touch "$work/stop"
  wait "$sampler"
  codes="$(cat "$work"/code-* | sort | uniq -c | tr -s ' ' | paste -sd, -)"
  printf '{"run": %s, "uploads": %s, "mib": %s, "seconds": %.3f, "rss_before_kib": %s, "rss_peak_kib": %s, "codes": "%s"}\n' \
    "$run" "$UPLOADS" "$MIB" "$(echo "$t1 - $t0" | bc)" "$before" "$(cat "$work/peak")" "$codes" \
    >"$OUT/uploads-$run.json"
}
measure_reference() {
  local run="$1" t0 t1
  sync
  t0="$(now)"
  local writers=()
  for i in $(seq 1 "$UPLOADS"); do
    dd if="$work/upload.bin" of="$work/ref/$i.bin" bs=1M status=none &
    writers+=("$!")
  done
  wait "${writers[@]}"
  t1="$(now)"
  printf '{"run": %s, "seconds": %.3f}\n' "$run" "$(echo "$t1 - $t0" | bc)" >"$OUT/reference-$run.json"
  rm -f "$work"/ref/*.bin
}
for run in $(seq 1 "$RUNS"); do
  echo "files: run $run" >&2
  if ((run % 2)); then measure_uploads "$run"; measure_reference "$run"; else measure_reference "$run"; measure_uploads "$run"; fi
  cat "$OUT/uploads-$run.json" "$OUT/reference-$run.json" >&2
done
echo "load after: $(cat /proc/loadavg)" >>"$OUT/machine.txt"
python3 - "$OUT" <<'PY' | tee "$OUT/summary.md"
import glob, json, os, statistics, sys
out = sys.argv[1]
up = [json.load(open(f)) for f in sorted(glob.glob(os.path.join(out, "uploads-*.json")))]
ref = {j["run"]: j for j in (json.load(open(f)) for f in glob.glob(os.path.join(out, "reference-*.json")))}
mib = up[0]["uploads"] * up[0]["mib"]
rows = [(u["seconds"], ref[u["run"]]["seconds"], (u["rss_peak_kib"] - u["rss_before_kib"]) / 1024, u["codes"]) for u in up]
med = lambda xs: statistics.median(xs)
print(f"| {up[0]['uploads']} x {up[0]['mib']} MiB | upload MiB/s | reference MiB/s | upload/reference time | RSS growth MiB | answers | runs |")
print("|---|---|---|---|---|---|---|")
print(f"| median | {med([mib / r[0] for r in rows]):.0f} | {med([mib / r[1] for r in rows]):.0f} "
      f"| {med([r[0] / r[1] for r in rows]):.2f} | {med([r[2] for r in rows]):.1f} (max {max(r[2] for r in rows):.1f}) "
      f"| {rows[0][3]} | {len(rows)} |")
PY
