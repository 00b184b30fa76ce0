#!/usr/bin/env bash
# A Troupe cluster of N agents on this machine, each on its own loopback
# address (node-i on 127.0.0.(10+i) by default) with its own data dir:
# node-1 bootstraps it, the others join through node-1; the first three
# are servers, the rest clients.
#
#   deploy/local-cluster.sh start N [OPTIONS] [-- AGENT_FLAGS...]
#   deploy/local-cluster.sh stop            SIGTERM every agent (SIGKILL after 20 s)
#   deploy/local-cluster.sh status          each node's pid, address, role; the cluster
#   deploy/local-cluster.sh logs I [-f]     node-I's log
#   deploy/local-cluster.sh restart I       stop node-I and start it again, data intact
#
# Options (each also an environment variable):
#   --dir DIR          TROUPE_CLUSTER_DIR  state (default .cluster at the checkout's top)
#   --bin DIR          TROUPE_BIN          troupe and troupectl (default build/release/tools)
#   --ip-base A.B.C.D  TROUPE_IP_BASE      node-i listens on the base's last byte + i (127.0.0.10)
#   --http-port PORT   TROUPE_HTTP_PORT    every node's API port, on its own address (7070)
#   --servers S        TROUPE_SERVERS      how many of the nodes vote in Raft (3)
#   --driver D         TROUPE_DRIVER       auto, runc or process (auto)
#
# Layout, read by troupe-chaos and by people (DIR/node-I/):
#   run        executable: execs the agent in the foreground with its flags
#   pid        the running agent's pid      log    its output
#   addr       its IP                       http   its API as IP:PORT
#   role       server or client             data/  its --data-dir
# DIR/env sets TROUPE_ADDR, TROUPE_TOKEN_FILE, CLUSTER_NODES and CLUSTER_MODE.
# A stopped cluster starts again from the same dirs, keeping its state.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${TROUPE_CLUSTER_DIR:-$root/.cluster}
bin=${TROUPE_BIN:-$root/build/release/tools}
ip_base=${TROUPE_IP_BASE:-127.0.0.10}
http_port=${TROUPE_HTTP_PORT:-7070}
servers=${TROUPE_SERVERS:-3}
driver=${TROUPE_DRIVER:-auto}

prog=local-cluster
# shellcheck source=deploy/cluster-common.sh
. "$root/deploy/cluster-common.sh"
read_command "$@"
shift "$taken"
follow=0
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --ip-base) ip_base=$2; shift 2 ;;
    --http-port) http_port=$2; shift 2 ;;
    --servers) servers=$2; shift 2 ;;
    --driver) driver=$2; shift 2 ;;
    -f) follow=1; shift ;;
    --) shift; extra=("$@"); break ;;
    *) die "unknown option '$1'" ;;
  esac
done
[[ $ip_base =~ ^127\.([0-9]+)\.([0-9]+)\.([0-9]+)$ ]] || die "--ip-base '$ip_base' is not a 127.x.y.z address"
ip_prefix=127.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}
ip_last=${BASH_REMATCH[3]}
[[ $http_port =~ ^[0-9]+$ ]] || die "--http-port '$http_port' is not a port"
[[ $servers =~ ^[1-9][0-9]*$ ]] || die "--servers '$servers' is not a positive number"
dir=$(mkdir -p "$dir" && cd "$dir" && pwd)

addr_of() {  # node I's IP
  local last=$((ip_last + $1))
  [ "$last" -le 254 ] || die "node-$1: $ip_base + $1 is past $ip_prefix.254"
  echo "$ip_prefix.$last"
}

# Writes node I's run script once; later starts reuse it (same flags).
configure() {
  local i=$1 d addr role
  d=$(node_dir "$i")
  [ -x "$d/run" ] && return
  mkdir -p "$d/data"
  addr=$(addr_of "$i")
  role=client
  [ "$i" -le "$servers" ] && role=server
  local args=(agent --name "node-$i" --data-dir "$d/data" --bind "$addr" --http-port "$http_port"
              --port-range "$((20000 + 500 * (i - 1)))-$((20499 + 500 * (i - 1)))"
              --driver "$driver" "--$role" --gossip-profile local --label "zone=z$(((i - 1) % 3 + 1))")
  [ "$i" -gt 1 ] && args+=(--seed "$(addr_of 1):7946")
  args+=("${extra[@]}")
  write_node "$i" "$addr" "$role" "" "node-$i of the cluster in $dir (written by deploy/local-cluster.sh)" "${args[@]}"
}

case "$cmd" in
  start)
    [ "$arg" -ge 1 ] || die "start needs at least 1 node"
    for i in $(seq "$arg"); do configure "$i"; done
    for i in $(seq "$arg"); do start_node "$i"; done
    write_env loopback
    echo "cluster of $arg in $dir; use it with:"
    started_banner
    ;;
  stop)
    echo "$(stop_all) agent(s) stopped; state kept in $dir (rm -rf it to start afresh)"
    ;;
  restart)
    [ -x "$(node_dir "$arg")/run" ] || die "node-$arg was never started in $dir"
    stop_node "$arg" || true
    start_node "$arg"
    ;;
  status)
    printf '%-8s %-8s %-7s %-20s %s\n' NODE PID ROLE API STATE
    for i in $(nodes); do
      d=$(node_dir "$i")
      state=stopped pid=
      running "$i" && state=running pid=$(pid_of "$i")
      printf '%-8s %-8s %-7s %-20s %s\n' "node-$i" "${pid:--}" "$(cat "$d/role")" "$(cat "$d/http")" "$state"
    done
    cluster_status
    ;;
  logs) show_log "$arg" "$follow" ;;
esac
