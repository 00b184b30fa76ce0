#!/usr/bin/env bash
# The main job: installs, builds (Release) and starts a Troupe cluster of
# three agents on loopback (node-1 bootstraps it, node-2 and node-3 join
# through it as servers), then deploys a demo web service: three busybox
# httpd replicas with an http health check, reachable from the host.
#   deploy/quickstart.sh          start (or show the running cluster)
#   deploy/quickstart.sh stop     remove the demo service, stop the agents
#   TROUPE_HTTP_PORT              node-1's API port (default 7070; node-2 and
#                                 node-3 take the next two)
# State, logs and pids live in .quickstart/ at the top of the checkout.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
qs=$root/.quickstart
build=$root/build/release
base=${TROUPE_HTTP_PORT:-7070}
nodes=(node-1 node-2 node-3)
# node-1 bootstraps the cluster and writes its management token there.
token_file=$qs/node-1/management.token
token() { cat "$token_file" 2>/dev/null || true; }
ctl() { TROUPE_TOKEN=$(token) "$build/tools/troupectl" --addr "127.0.0.1:$base" "$@"; }

# node-N: API base+N-1, gossip 7946+10(N-1), rpc one above, task ports
# 20000+1000(N-1) .. +999 (the agents share the host's network).
http_port() { echo $((base + $1 - 1)); }
gossip_port() { echo $((7946 + 10 * ($1 - 1))); }
pidfile() { echo "$qs/node-$1.pid"; }
running() { [ -f "$(pidfile "$1")" ] && kill -0 "$(cat "$(pidfile "$1")")" 2>/dev/null; }

stop() {
  if running 1; then
    # Containers outlive their agents by design: the service goes first,
    # and each node stops its tasks.
    if ctl rm web >/dev/null 2>&1; then
      for _ in $(seq 100); do
        [ "$(ctl -o json ps --all 2>/dev/null | grep -c '"id"')" = 0 ] && break
        sleep 0.1
      done
    fi
  fi
  local stopped=0
  for n in 3 2 1; do
    running "$n" || { rm -f "$(pidfile "$n")"; continue; }
    pid=$(cat "$(pidfile "$n")")
    kill -TERM "$pid"
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "quickstart: node-$n ($pid) did not stop in 10s; killing it" >&2
      kill -KILL "$pid"
    fi
    rm -f "$(pidfile "$n")"
    stopped=$((stopped + 1))
  done
  echo "quickstart: $stopped agent(s) stopped (logs: $qs/node-*.log)"
}

start_agent() {
  local n=$1 gossip http
  gossip=$(gossip_port "$n")
  http=$(http_port "$n")
  if running "$n"; then
    echo "quickstart: node-$n already running (pid $(cat "$(pidfile "$n")"))"
    return
  fi
  local args=(agent --name "node-$n" --data-dir "$qs/node-$n" --bind 127.0.0.1
              --gossip-port "$gossip" --rpc-port $((gossip + 1)) --http-port "$http"
              --port-range "$((20000 + 1000 * (n - 1)))-$((20999 + 1000 * (n - 1)))"
              --driver "$driver" --server --label "zone=z$n")
  [ "$n" -gt 1 ] && args+=(--seed "127.0.0.1:$(gossip_port 1)")
  nohup "$build/tools/troupe" "${args[@]}" >>"$qs/node-$n.log" 2>&1 &
  echo $! >"$(pidfile "$n")"
  for _ in $(seq 200); do
    TROUPE_TOKEN=$(token) "$build/tools/troupectl" --addr "127.0.0.1:$http" status >/dev/null 2>&1 && return
    running "$n" || { echo "quickstart: node-$n exited; its log:" >&2; tail -20 "$qs/node-$n.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "quickstart: node-$n did not answer within 20s; see $qs/node-$n.log" >&2
  exit 1
}

# A busybox image made from the host's static busybox, imported once into
# the cluster's own registry (node-1's store, recorded in Raft): the other
# servers copy it, and every node that runs a replica pulls it from a peer.
import_image() {
  local rootfs=$qs/busybox-rootfs
  if [ ! -x "$rootfs/bin/busybox" ]; then
    mkdir -p "$rootfs/bin" "$rootfs/proc" "$rootfs/dev" "$rootfs/sys" "$rootfs/tmp" "$rootfs/etc"
    cp /bin/busybox "$rootfs/bin/busybox"
    for tool in sh echo cat ls ps sleep true false env head tail wc grep httpd wget mkdir hostname; do
      ln -sf busybox "$rootfs/bin/$tool"
    done
  fi
  ctl image import "$rootfs" --name busybox:1 >/dev/null
}

deploy_demo() {
  # With the process driver the replicas are host processes: each serves
  # its own directory. httpd runs under a shell that ends it on SIGTERM (a
  # container's PID 1 ignores signals it has no handler for).
  cat >"$qs/web.yaml" <<'EOT'
name: web
image: busybox:1
command: [/bin/busybox, sh, -c, 'd=/tmp/troupe-web-$PORT_http; mkdir -p $d && echo "hello from $(hostname), port $PORT_http" > $d/index.html; trap "kill \$!; exit 0" TERM; /bin/busybox httpd -f -p $PORT_http -h $d & wait']
replicas: 3
ports: [{name: http}]
resources: {cpu: 50m, memory: 32Mi}
spread: zone
health: {http: /, port: http, interval: 1s, timeout: 500ms, retries: 3}
update: {parallelism: 1, monitor: 2s, failure_action: rollback}
EOT
  for _ in $(seq 100); do  # the scheduler knows the three nodes
    [ "$(ctl -o json nodes 2>/dev/null | grep -c '"state": "alive"')" -ge 3 ] && break
    sleep 0.2
  done
  ctl deploy -f "$qs/web.yaml" --wait --timeout 2m
}

start() {
  "$root/deploy/setup.sh"
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j"$(nproc)" --target troupe troupectl troupe-shim
  [ -x /bin/busybox ] || { echo "quickstart: /bin/busybox is missing (busybox-static)" >&2; exit 1; }
  mkdir -p "$qs"
  driver=process
  if [ "$(id -u)" -eq 0 ] && command -v runc >/dev/null; then
    driver=runc
  else
    echo "quickstart: not root or no runc: the demo runs as host processes (--driver process)"
  fi
  for n in 1 2 3; do
    start_agent "$n"
  done
  for _ in $(seq 100); do  # a leader (a restarted cluster elects one first)
    ctl services >/dev/null 2>&1 && break
    sleep 0.2
  done
  ctl status
  import_image
  ctl services | grep -q default/web || deploy_demo
  echo
  ctl ps web
  echo
  echo "The demo service answers on each replica's host port:"
  ctl -o json ps web | grep -A1 '"ports"' | grep -o '[0-9]\{5\}' | while read -r port; do
    echo "  curl http://127.0.0.1:$port/   # $(wget -qO- "http://127.0.0.1:$port/" 2>/dev/null || echo 'not answering yet')"
  done
  cat <<EOT

Try:  export PATH=$build/tools:\$PATH TROUPE_TOKEN=\$(cat $token_file)
      troupectl services; troupectl service inspect web
      troupectl scale web 5; troupectl ps web
      troupectl image ls; curl -s -u "any:\$TROUPE_TOKEN" 127.0.0.1:$base/v2/_catalog   # the built-in registry
      troupectl token create ci --scope read --ttl 24h   # a read-only token for a script
      troupectl drain node-2               # its replica moves to node-1 or node-3
      kill -9 \$(cat $qs/node-3.pid)        # the cluster keeps 3 replicas on the two left
Logs: $qs/node-*.log
Stop: deploy/quickstart.sh stop
EOT
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: deploy/quickstart.sh [start|stop]" >&2; exit 2 ;;
esac
