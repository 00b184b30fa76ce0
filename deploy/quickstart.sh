#!/usr/bin/env bash
# The main job: installs, builds (Release) and starts a Troupe cluster of
# three agents on loopback with deploy/local-cluster.sh (node-1 bootstraps
# it, node-2 and node-3 join through it as servers; node-i listens on
# 127.0.0.(10+i)), then deploys a demo web service: three busybox httpd
# replicas with an http health check, reachable from the host.
#   deploy/quickstart.sh          start (or show the running cluster)
#   deploy/quickstart.sh stop     remove the demo service, stop the agents
#   TROUPE_HTTP_PORT              every node's API port, on its own address (default 7070)
#   TROUPE_IP_BASE                node-i listens on the base's last byte + i (default 127.0.0.10;
#                                 move it to run quickstart beside a deploy/local-cluster.sh cluster)
#   TROUPE_BUILD_DIR              the build to use (default build/release at the top of the checkout)
#   TROUPE_SKIP_BUILD=1           do not configure and build: use TROUPE_BUILD_DIR as it is
# State, logs and pids live in .quickstart/ at the top of the checkout, in
# local-cluster.sh's layout (.quickstart/node-I/{run,pid,log,http,data/}).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
qs=$root/.quickstart
build=${TROUPE_BUILD_DIR:-$root/build/release}
build=$(cd "$build" 2>/dev/null && pwd || echo "$build")
cluster=("$root/deploy/local-cluster.sh")
cluster_opts=(--dir "$qs" --bin "$build/tools" --servers 3 --http-port "${TROUPE_HTTP_PORT:-7070}")
# node-1 bootstraps the cluster and writes its management token there.
token_file=$qs/node-1/data/management.token
token() { cat "$token_file" 2>/dev/null || true; }
api() { cat "$qs/node-1/http"; }
ctl() { TROUPE_TOKEN=$(token) "$build/tools/troupectl" --addr "$(api)" "$@"; }
running() { [ -f "$qs/node-$1/pid" ] && kill -0 "$(cat "$qs/node-$1/pid")" 2>/dev/null; }

# An earlier quickstart kept node-I's data dir in .quickstart/node-I itself.
check_layout() {
  if [ -e "$qs/node-1/data.mdb" ]; then
    echo "quickstart: $qs holds a cluster of an older quickstart (data dirs directly in node-I/);" >&2
    echo "  stop its agents (kill -TERM \$(cat $qs/node-*.pid)), then rm -rf $qs and start again" >&2
    exit 1
  fi
}

stop() {
  check_layout
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
  "${cluster[@]}" stop "${cluster_opts[@]}"
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
  check_layout
  if [ "${TROUPE_SKIP_BUILD:-0}" = 1 ]; then
    echo "quickstart: TROUPE_SKIP_BUILD=1: using the build in $build as it is"
  else
    "$root/deploy/setup.sh"
    cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
    cmake --build "$build" -j"$(nproc)" --target troupe troupectl troupe-shim
  fi
  for tool in troupe troupectl; do
    [ -x "$build/tools/$tool" ] || { echo "quickstart: no $build/tools/$tool (build it, or unset TROUPE_SKIP_BUILD)" >&2; exit 1; }
  done
  [ -x /bin/busybox ] || { echo "quickstart: /bin/busybox is missing (busybox-static)" >&2; exit 1; }
  mkdir -p "$qs"
  driver=process
  if [ "$(id -u)" -eq 0 ] && command -v runc >/dev/null; then
    driver=runc
  else
    echo "quickstart: not root or no runc: the demo runs as host processes (--driver process)"
  fi
  # A cluster started before keeps the flags of its first start (node-I/run).
  "${cluster[@]}" start 3 "${cluster_opts[@]}" --driver "$driver"
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

Try:  export PATH=$build/tools:\$PATH TROUPE_ADDR=$(api) TROUPE_TOKEN=\$(cat $token_file)
      troupectl services; troupectl service inspect web
      troupectl scale web 5; troupectl ps web
      troupectl image ls; curl -s -u "any:\$TROUPE_TOKEN" $(api)/v2/_catalog   # the built-in registry
      troupectl token create ci --scope read --ttl 24h   # a read-only token for a script
      troupectl drain node-2               # its replica moves to node-1 or node-3
      kill -9 \$(cat $qs/node-3/pid)        # the cluster keeps 3 replicas on the two left
      deploy/local-cluster.sh status --dir $qs --bin $build/tools   # the agents: pids, addresses, roles
Logs: $qs/node-*/log
Stop: deploy/quickstart.sh stop
EOT
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: deploy/quickstart.sh [start|stop]" >&2; exit 2 ;;
esac
