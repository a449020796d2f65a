#!/usr/bin/env bash
# A throwaway 3-primary Redis Cluster on free loopback ports, for benchmarks
# and by hand (the Rust tests start their own, the same way).
#   scripts/redis-cluster.sh start DIR   # prints the bus URL (redis://127.0.0.1:PORT of the first node)
#   scripts/redis-cluster.sh stop DIR    # SIGKILLs the nodes by their PIDs and removes DIR
# Each node: --cluster-enabled yes, its own cluster bus port, no persistence
# (--save '' --appendonly no), bound to 127.0.0.1 only; joined with
# `redis-cli --cluster create … --cluster-replicas 0`, then waited for until
# every node says cluster_state:ok.
set -euo pipefail
cmd="${1:?start|stop}"
dir="${2:?cluster folder}"
nodes=3

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

case "$cmd" in
  start)
    command -v redis-server >/dev/null || bash "$(dirname "$0")/install-tools.sh" redis
    mkdir -p "$dir"
    ports=()
    for i in $(seq 1 "$nodes"); do
      port=$(free_port)
      bus_port=$(free_port)
      mkdir -p "$dir/$i"
      redis-server --port "$port" --cluster-port "$bus_port" --bind 127.0.0.1 \
        --cluster-enabled yes --cluster-config-file "$dir/$i/nodes.conf" \
        --cluster-require-full-coverage no \
        --save '' --appendonly no --dir "$dir/$i" --loglevel warning \
        --logfile "$dir/$i/redis.log" --daemonize yes --pidfile "$dir/$i/redis.pid" >/dev/null
      ports+=("$port")
    done
    for port in "${ports[@]}"; do
      for _ in $(seq 1 100); do
        [ "$(redis-cli -p "$port" ping 2>/dev/null)" = "PONG" ] && break
        sleep 0.05
      done
    done
    addresses=()
    for port in "${ports[@]}"; do addresses+=("127.0.0.1:$port"); done
    redis-cli --cluster create "${addresses[@]}" --cluster-replicas 0 --cluster-yes >"$dir/create.log" 2>&1
    for _ in $(seq 1 200); do
      ok=0
      for port in "${ports[@]}"; do
        redis-cli -p "$port" cluster info 2>/dev/null | grep -q '^cluster_state:ok' && ok=$((ok + 1))
      done
      if [ "$ok" = "$nodes" ]; then
        echo "redis://127.0.0.1:${ports[0]}"
        exit 0
      fi
      sleep 0.05
    done
    echo "the cluster did not reach cluster_state:ok (see $dir/create.log)" >&2
    exit 1
    ;;
  stop)
    for pidfile in "$dir"/*/redis.pid; do
      [ -f "$pidfile" ] && kill -KILL "$(cat "$pidfile")" 2>/dev/null || true
    done
    rm -rf "$dir"
    ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
