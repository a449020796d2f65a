#!/usr/bin/env bash
# A throwaway redis-server on a free loopback port, for tests and benchmarks
# (the Rust tests start their own; this is for bench.sh and by hand).
#   scripts/redis-server.sh start DIR   # prints the bus URL (redis://127.0.0.1:PORT)
#   scripts/redis-server.sh stop DIR    # SIGKILLs it by its PID and removes DIR
# No persistence (--save '' --appendonly no), bound to 127.0.0.1 only.
set -euo pipefail
cmd="${1:?start|stop}"
dir="${2:?server folder}"

case "$cmd" in
  start)
    command -v redis-server >/dev/null || bash "$(dirname "$0")/install-tools.sh" redis
    mkdir -p "$dir"
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
      --dir "$dir" --loglevel warning --logfile "$dir/redis.log" \
      --daemonize yes --pidfile "$dir/redis.pid" >/dev/null
    for _ in $(seq 1 100); do
      if [ "$(redis-cli -p "$port" ping 2>/dev/null)" = "PONG" ]; then
        echo "redis://127.0.0.1:$port"
        exit 0
      fi
      sleep 0.05
    done
    echo "redis-server did not answer on $port" >&2
    exit 1
    ;;
  stop)
    if [ -f "$dir/redis.pid" ]; then
      kill -KILL "$(cat "$dir/redis.pid")" 2>/dev/null || true
    fi
    rm -rf "$dir"
    ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
