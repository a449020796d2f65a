#!/usr/bin/env bash
# Reads at scale for issues 17 and 18 (BENCHMARKS.md "Room events" and
# "Search, direct rooms, files"): databases filled in SQL with 500 private
# rooms (scale-fill.sql, scale-fill-sqlite.sql), then, each figure the median
# of $RUNS runs of $DURATION s from one client (latency) unless said:
# - rooms:  `GET /api/v1/rooms` as a member of all 500 rooms (read markers
#           0-49 seqs behind each head);
# - rare:   `GET /api/v1/search?q=zanzibar&limit=20` (20 messages hold it, 2
#           of them in rooms the caller reads), as a member of 50 rooms;
# - onepct: `GET /api/v1/search?q=onepct&limit=20` (~1% of the messages);
# - newest: the newest page (limit=50) of big-000 with reactions on every
#           message of it (wrk -t1 -c32), and the HTTP ceiling (palaver-bench
#           ceiling serving a body of the same size, wrk the same way).
# SCALES is a list of backend:messages; the PostgreSQL cluster has the same
# default durability as bench.sh's, plus pg_stat_statements loaded, whose
# per-query figures (calls per request, mean plan and execution time) are
# saved beside the runs with EXPLAIN (ANALYZE, BUFFERS) of both searches.
#   crates/palaver-bench/bench-scale.sh
#   SCALES=postgres:100000 RUNS=1 DURATION=3 crates/palaver-bench/bench-scale.sh
# BASELINE=<an older palaver binary>: that binary serves the same database
# beside this one (its own port, started after the reactions were added), and
# every run measures `GET /api/v1/rooms` and the newest page on it right after
# this one's (files *-base-*; rows "baseline" in the summary).
# Disk: ~5 GB at 10 million messages on PostgreSQL; every database is
# dropped when its figures are taken (KEEP=1 leaves the last one and the
# cluster running, for profiling by hand).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

RUNS="${RUNS:-3}"
DURATION="${DURATION:-10}"
ROOMS=500
SCALES="${SCALES:-postgres:1000000 sqlite:1000000 postgres:10000000}"
OUT="${OUT:-$ROOT/target/bench/scale-$(date -u +%Y%m%dT%H%M%SZ)}"
mkdir -p "$OUT"

if ! command -v wrk >/dev/null; then
  echo "wrk is needed for the newest-page figures: apt-get install -y --no-install-recommends wrk" >&2
  exit 1
fi
cargo build --release --locked -p palaver -p palaver-bench
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
PALAVER="$TARGET_DIR/release/palaver"
BENCH="$TARGET_DIR/release/palaver-bench"
ulimit -n "$(ulimit -Hn)"

work="$(mktemp -d /tmp/palaver-scale-XXXXXX)"
pg="$(mktemp -d /tmp/palaver-scale-pg-XXXXXX)"
pids=()
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
KEEP="${KEEP:-0}"
cleanup() {
  for p in "${pids[@]}"; do stop_pid "$p"; done
  if [ "$KEEP" = 1 ]; then
    echo "KEEP=1: the cluster in $pg (port $pg_port) and $work are left; stop with pg_ctl -D $pg/data stop" >&2
    return
  fi
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
  -o "-p $pg_port -k $pg -c listen_addresses=127.0.0.1 -c max_connections=200 -c shared_preload_libraries=pg_stat_statements" \
  start >/dev/null
PG_ADMIN="postgres://postgres@127.0.0.1:$pg_port/postgres"
psql -qAt "$PG_ADMIN" -c "SHOW fsync; SHOW synchronous_commit; SHOW shared_buffers; SELECT version();" \
  >"$OUT/postgres-settings.txt"
{
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs) x $(nproc)"
  echo "memory: $(free -g | awk '/Mem:/ {print $2}') GiB"
  echo "date: $(date -u +%FT%TZ)"
  echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "load before: $(cat /proc/loadavg)"
} >"$OUT/machine.txt"

# Starts a release server over $url; sets $base, $pid.
serve() {
  local port
  port="$(free_port)"
  "$PALAVER" serve --listen "127.0.0.1:$port" --database-url "$url" \
    --rate-limit 0 --stream-open-rate 0 --max-streams-per-ip 0 \
    --registrations-per-ip-burst 1000000 --registrations-per-ip-per-hour 3600 \
    --log warn --log-format json >"$work/server.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  base="http://127.0.0.1:$port"
  for _ in $(seq 1 1200); do
    curl -fsS "$base/readyz" >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  cat "$work/server.log" >&2
  return 1
}

# Prints a session cookie of user $1 (password "$1-password"), registering
# the user first when needed.
cookie_of() {
  local body="{\"username\":\"$1\",\"password\":\"$1-password\",\"display_name\":\"$1\"}"
  local path cookie=""
  for path in register login; do
    cookie="$(curl -sS -o /dev/null -D - -H 'Content-Type: application/json' -d "$body" \
      "$base/api/v1/auth/$path" | tr -d '\r' |
      sed -n 's/^[Ss]et-[Cc]ookie: *\(palaver_session=[^;]*\).*/\1/p')"
    [ -n "$cookie" ] && break
  done
  [ -n "$cookie" ] || { echo "no session for $1 at $base" >&2; return 1; }
  echo "$cookie"
}

# One closed-loop latency run as user $2 of path $3, saved as $1.
latency() {
  PALAVER_BENCH_USER="$2" PALAVER_BENCH_PASSWORD="$2-password" \
    "$BENCH" read --base-url "$base" --path "$3" --clients 1 --duration "$DURATION" --warmup "${WARMUP:-1}" \
    >"$OUT/$1.json"
}

pg_stats() { # $1: file; per statement: calls, mean plan and execution ms
  psql -qAt -F ' | ' "$dburl" -c "SELECT calls, round(mean_plan_time::numeric, 3) AS plan_ms,
      round(mean_exec_time::numeric, 3) AS exec_ms, shared_blks_hit + shared_blks_read AS blocks,
      left(regexp_replace(query, '\s+', ' ', 'g'), 160)
    FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
    ORDER BY total_exec_time DESC LIMIT 12" >"$1"
}

# EXISTING=<PostgreSQL URL> EXISTING_N=<messages>: measure a database
# filled before (by scale-fill.sql, bench users registered, migrated by the
# server) instead of filling one; SCALES is then ignored.
if [ -n "${EXISTING:-}" ]; then SCALES="existing:${EXISTING_N:?}"; fi
for scale in $SCALES; do
  backend="${scale%%:*}"
  n="${scale#*:}"
  per_room=$((n / ROOMS))
  tag="$backend-$n"
  if [ "$backend" = existing ]; then
    tag="postgres-$n"
    url="$EXISTING"
    dburl="$url"
    printf '{"scale": "%s", "prefilled": true, "bytes": %s}\n' "$tag" \
      "$(psql -qAt "$dburl" -c "SELECT pg_database_size(current_database())")" >"$OUT/fill-$tag.json"
  fi
  case "$backend" in
    postgres)
      psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS palaver_scale WITH (FORCE)" -c "CREATE DATABASE palaver_scale"
      url="postgres://postgres@127.0.0.1:$pg_port/palaver_scale"
      dburl="$url"
      ;;
    sqlite)
      rm -f "$work"/scale.db*
      url="sqlite://$work/scale.db"
      ;;
  esac
  if [ "$backend" != existing ]; then
  serve # migrations
  cookie_of palaver-bench >/dev/null
  cookie_of bench-search >/dev/null
  stop_pid "$pid"
  echo "scale: filling $tag ($ROOMS rooms x $per_room messages)" >&2
  t0="$(date +%s.%N)"
  case "$backend" in
    postgres)
      psql -q "$dburl" -v rooms="$ROOMS" -v per_room="$per_room" -f "$ROOT/crates/palaver-bench/scale-fill.sql"
      t1="$(date +%s.%N)"
      psql -q "$dburl" -c "VACUUM ANALYZE"
      size="$(psql -qAt "$dburl" -c "SELECT pg_database_size(current_database())")"
      counts="$(psql -qAt "$dburl" -c "SELECT (SELECT count(*) FROM messages) || ' messages, ' || (SELECT count(*) FROM room_events) || ' events, ' || (SELECT count(*) FROM reactions) || ' reactions'")"
      ;;
    sqlite)
      "$BENCH" sql --database-url "$url" --file "$ROOT/crates/palaver-bench/scale-fill-sqlite.sql" \
        --set rooms="$ROOMS" --set per_room="$per_room" >/dev/null
      t1="$(date +%s.%N)"
      size="$(du -cb "$work"/scale.db* | tail -n1 | cut -f1)"
      counts="$(sqlite3 "$work/scale.db" "SELECT (SELECT count(*) FROM messages) || ' messages, ' || (SELECT count(*) FROM room_events) || ' events, ' || (SELECT count(*) FROM reactions) || ' reactions'" 2>/dev/null || echo unknown)"
      ;;
  esac
  t2="$(date +%s.%N)"
  printf '{"scale": "%s", "fill_s": %.1f, "analyze_s": %.1f, "bytes": %s, "rows": "%s"}\n' \
    "$tag" "$(echo "$t1 - $t0" | bc)" "$(echo "$t2 - $t1" | bc)" "$size" "$counts" | tee "$OUT/fill-$tag.json" >&2
  fi

  serve
  new_pid="$pid"
  bench_cookie="$(cookie_of palaver-bench)"
  search_cookie="$(cookie_of bench-search)"
  # Reactions on every message of big-000's newest page: 3 emoji each,
  # through the API (events, reactions and the read cache as a client
  # leaves them).
  page="$base/api/v1/rooms/big-000/messages?limit=50"
  for seq in $(curl -fsS -H "Cookie: $bench_cookie" "$page" | python3 -c 'import json, sys; print(" ".join(str(m["seq"]) for m in json.load(sys.stdin)["messages"]))'); do
    for emoji in %F0%9F%91%8D %F0%9F%8E%89 %E2%9D%A4%EF%B8%8F; do
      curl -fsS -o /dev/null -X PUT -H "Cookie: $bench_cookie" "$base/api/v1/rooms/big-000/messages/$seq/reactions/$emoji"
    done
  done
  {
    echo "rooms listed: $(curl -fsS -H "Cookie: $bench_cookie" "$base/api/v1/rooms" | python3 -c 'import json, sys; r = json.load(sys.stdin)["rooms"]; print(len(r), "unread", sum(x["unread"] for x in r), "mentions", sum(x["mentions"] for x in r))')"
    for q in zanzibar onepct; do
      echo "search $q: $(curl -fsS -H "Cookie: $search_cookie" "$base/api/v1/search?q=$q&limit=20" | python3 -c 'import json, sys; r = json.load(sys.stdin)["results"]; print(len(r), "results, rooms", sorted({x["message"]["room"] for x in r})[:5])')"
    done
    echo "newest page: $(curl -fsS -H "Cookie: $bench_cookie" "$page" | python3 -c 'import json, sys; m = json.load(sys.stdin)["messages"]; print(len(m), "messages,", sum(len(x["reactions"]) for x in m), "reaction groups")')"
  } | tee "$OUT/check-$tag.txt" >&2
  page_bytes="$(curl -fsS -H "Cookie: $bench_cookie" "$page" | wc -c)"
  if [ -n "${BASELINE:-}" ]; then
    new_base="$base"
    PALAVER="$BASELINE" serve
    base_pid="$pid" base_base="$base"
    base="$new_base" pid="$new_pid"
    base_page="$base_base/api/v1/rooms/big-000/messages?limit=50"
    cmp <(curl -fsS -H "Cookie: $bench_cookie" "$page") <(curl -fsS -H "Cookie: $bench_cookie" "$base_page") >&2 ||
      echo "scale: the baseline's newest page differs" >&2
  fi
  port="$(free_port)"
  "$BENCH" ceiling --listen "127.0.0.1:$port" --body-bytes "$page_bytes" 2>/dev/null &
  ceiling=$!
  pids+=("$ceiling")
  for _ in $(seq 1 100); do curl -fsS "http://127.0.0.1:$port/" >/dev/null 2>&1 && break; sleep 0.05; done

  for run in $(seq 1 "$RUNS"); do
    echo "scale: $tag, run $run" >&2
    latency "rooms-$tag-$run" palaver-bench /api/v1/rooms
    if [ -n "${BASELINE:-}" ]; then
      base="$base_base" latency "rooms-base-$tag-$run" palaver-bench /api/v1/rooms
    fi
    latency "rare-$tag-$run" bench-search "/api/v1/search?q=zanzibar&limit=20"
    latency "onepct-$tag-$run" bench-search "/api/v1/search?q=onepct&limit=20"
    wrk -t1 -c32 -d"${DURATION}s" --latency -H "Cookie: $bench_cookie" "$page" >"$OUT/newest-$tag-$run.txt"
    if [ -n "${BASELINE:-}" ]; then
      wrk -t1 -c32 -d"${DURATION}s" --latency -H "Cookie: $bench_cookie" "$base_page" >"$OUT/newest-base-$tag-$run.txt"
    fi
    wrk -t1 -c32 -d"${DURATION}s" --latency "http://127.0.0.1:$port/" >"$OUT/ceiling-$tag-$run.txt"
  done
  stop_pid "$ceiling"
  [ -n "${BASELINE:-}" ] && stop_pid "$base_pid"

  if [ "$backend" != sqlite ]; then
    # Per-request statements: $PROFILE_REQUESTS of each request after a reset.
    psql -q "$dburl" -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" \
      -c "ALTER SYSTEM SET pg_stat_statements.track_planning = on" -c "SELECT pg_reload_conf()" >/dev/null
    for what in rooms rare onepct; do
      case "$what" in
        rooms) c="$bench_cookie" p=/api/v1/rooms ;;
        rare) c="$search_cookie" p="/api/v1/search?q=zanzibar&limit=20" ;;
        onepct) c="$search_cookie" p="/api/v1/search?q=onepct&limit=20" ;;
      esac
      psql -qAt "$dburl" -c "SELECT pg_stat_statements_reset()" >/dev/null
      for _ in $(seq 1 "${PROFILE_REQUESTS:-20}"); do curl -fsS -o /dev/null -H "Cookie: $c" "$base$p"; done
      pg_stats "$OUT/pgss-$what-$tag.txt"
    done
    searcher="$(psql -qAt "$dburl" -c "SELECT id FROM users WHERE username = 'bench-search'")"
    # Each word with the plan the server chooses for it (store/search.rs):
    # the rare word through the GIN index (its ORDER BY hides sent_at from
    # the planner, as the server's does), the 1% word walking messages_newest.
    for q in zanzibar onepct; do
      order="m.sent_at DESC"
      if [ "$q" = zanzibar ]; then order="m.sent_at + INTERVAL '0' DESC"; fi
      psql -qAt "$dburl" >"$OUT/explain-$q-$tag.txt" <<SQL
EXPLAIN (ANALYZE, BUFFERS)
SELECT m.room, m.seq, m.author, m.author_id, m.text, m.client_id, m.sent_at, m.edited_at,
  m.reply_to, m.mentions, m.files, NULL::BIGINT AS search_id FROM messages m
JOIN rooms r ON r.name = m.room
WHERE m.search @@ websearch_to_tsquery('simple', palaver_search_text('"$q"'))
AND NOT m.deleted AND (NULL::TEXT IS NULL OR m.room = NULL)
AND (r.visibility = 'public' OR EXISTS (SELECT 1 FROM room_members rm
     WHERE rm.room = m.room AND rm.user_id = '$searcher'))
ORDER BY $order, m.room DESC, m.seq DESC LIMIT 20;
SQL
    done
    bench_id="$(psql -qAt "$dburl" -c "SELECT id FROM users WHERE username = 'palaver-bench'")"
    # The server's statement (sql::ROOMS_VISIBLE_TO_PG, with the settings
    # the server gives it), $1 the bench user.
    psql -qAt "$dburl" -v uid="'$bench_id'" >"$OUT/explain-rooms-$tag.txt" <<'SQL'
SET jit = off; SET enable_bitmapscan = off;
EXPLAIN (ANALYZE, BUFFERS, SETTINGS)
SELECT r.name, r.last_seq, r.visibility, r.topic, r.direct_key IS NOT NULL AS direct,
  (SELECT o.username FROM users o WHERE o.id = r.owner_id) AS owner,
  EXISTS (SELECT 1 FROM room_members j WHERE j.room = r.name AND j.user_id = :uid) AS joined,
  coalesce(rm.read_seq, 0) AS read_seq, c.unread, c.mentions
FROM rooms r
LEFT JOIN read_markers rm ON rm.room = r.name AND rm.user_id = :uid
CROSS JOIN LATERAL (SELECT count(*) AS unread,
    count(*) FILTER (WHERE r.direct_key IS NOT NULL OR m.mentions LIKE '%"' || :uid || '"%') AS mentions
  FROM messages m WHERE m.room = r.name
  AND m.seq > coalesce(rm.read_seq, 0) AND m.seq <= r.last_seq
  AND NOT m.deleted AND coalesce(m.author_id, '') <> :uid) c
WHERE r.visibility = 'public' OR EXISTS (SELECT 1 FROM room_members v WHERE v.room = r.name AND v.user_id = :uid)
ORDER BY r.name;
SQL
  fi
  stop_pid "$pid"
  [ "$KEEP" = 1 ] && [ "$scale" = "${SCALES##* }" ] && break
  case "$backend" in
    existing) ;;
    postgres) psql -q "$PG_ADMIN" -c "DROP DATABASE palaver_scale WITH (FORCE)" ;;
    sqlite) rm -f "$work"/scale.db* ;;
  esac
done
echo "load after: $(cat /proc/loadavg)" >>"$OUT/machine.txt"
python3 "$ROOT/crates/palaver-bench/summarize-scale.py" "$OUT" | tee "$OUT/summary.md"
echo "raw results: $OUT" >&2
