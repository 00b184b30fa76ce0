#!/usr/bin/env bash
# A Troupe cluster of N agents on this machine, each in a network namespace
# of its own (root only): node-i at 10.77.0.(10+i) behind a veth on a bridge
# this script makes, the bridge at 10.77.0.1 so that the host reaches every
# API. node-1 bootstraps the cluster, the others join through node-1; the
# first three are servers, the rest clients. The namespaces have no route
# but their /24: traffic stays between them and the host's bridge. Cut a
# link with iptables inside a namespace (ip netns exec NS iptables ...).
#
#   deploy/netns-cluster.sh start N [OPTIONS] [-- AGENT_FLAGS...]
#   deploy/netns-cluster.sh stop [--keep-net]  SIGTERM every agent (SIGKILL after 20 s), then remove the
#                                              namespaces, veths, bridge and firewall rules; --keep-net
#                                              stops the agents only (restart I brings one back)
#   deploy/netns-cluster.sh status          each node's pid, address, role, namespace; the cluster
#   deploy/netns-cluster.sh logs I [-f]     node-I's log
#   deploy/netns-cluster.sh restart I       stop node-I and start it again, data intact (and its
#                                           namespace, if a stop removed it)
#
# Options (each also an environment variable):
#   --dir DIR          TROUPE_CLUSTER_DIR  state (default .netns-cluster at the checkout's top)
#   --bin DIR          TROUPE_BIN          troupe and troupectl (default build/release/tools)
#   --subnet A.B.C.0/24  TROUPE_SUBNET     the namespaces' /24 (10.77.0.0/24): bridge .1, node-i .(10+i)
#   --http-port PORT   TROUPE_HTTP_PORT    every node's API port, on its own address (7070)
#   --servers S        TROUPE_SERVERS      how many of the nodes vote in Raft (3)
#   --driver D         TROUPE_DRIVER       auto, runc or process (auto)
#
# Layout, read by troupe-chaos and by people (DIR/node-I/), as local-cluster.sh's:
#   run        executable: execs the agent in the foreground, inside its namespace
#   pid        the running agent's pid      log    its output
#   addr       its IP                       http   its API as IP:PORT
#   role       server or client             data/  its --data-dir
#   netns      its network namespace (trp-<hash of DIR>-I)
# DIR/env sets TROUPE_ADDR, TROUPE_TOKEN_FILE, CLUSTER_NODES and CLUSTER_MODE
# (netns), and CLUSTER_BRIDGE and CLUSTER_SUBNET. DIR/net records what the
# script made on the host (bridge, firewall rules), for stop.
# A stopped cluster starts again from the same dirs, keeping its state.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${TROUPE_CLUSTER_DIR:-$root/.netns-cluster}
bin=${TROUPE_BIN:-$root/build/release/tools}
subnet=${TROUPE_SUBNET:-10.77.0.0/24}
subnet_given=0
[ -z "${TROUPE_SUBNET:-}" ] || subnet_given=1
http_port=${TROUPE_HTTP_PORT:-7070}
servers=${TROUPE_SERVERS:-3}
driver=${TROUPE_DRIVER:-auto}

prog=netns-cluster
# shellcheck source=deploy/cluster-common.sh
. "$root/deploy/cluster-common.sh"
read_command "$@"
shift "$taken"
follow=0
keep_net=0
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dir | --bin | --subnet | --http-port | --servers | --driver)
      [ $# -ge 2 ] || die "option '$1' needs a value" ;;&
    --dir) dir=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --subnet) subnet=$2; subnet_given=1; shift 2 ;;
    --http-port) http_port=$2; shift 2 ;;
    --servers) servers=$2; shift 2 ;;
    --driver) driver=$2; shift 2 ;;
    -f) follow=1; shift ;;
    --keep-net) [ "$cmd" = stop ] || die "--keep-net goes with stop only"; keep_net=1; shift ;;
    --) shift; extra=("$@"); break ;;
    *) die "unknown option '$1'" ;;
  esac
done
[[ $subnet =~ ^([0-9]+)\.([0-9]+)\.([0-9]+)\.0/24$ ]] || die "--subnet '$subnet' is not an A.B.C.0/24 network"
for b in "${BASH_REMATCH[@]:1}"; do [ "$b" -le 255 ] || die "--subnet '$subnet' is not an IPv4 network"; done
net_prefix=${BASH_REMATCH[1]}.${BASH_REMATCH[2]}.${BASH_REMATCH[3]}
if ! [[ $http_port =~ ^[0-9]+$ ]] || [ "$http_port" -lt 1 ] || [ "$http_port" -gt 65535 ]; then
  die "--http-port '$http_port' is not a port"
fi
[[ $servers =~ ^[1-9][0-9]*$ ]] || die "--servers '$servers' is not a positive number"
case "$cmd" in
  start | stop | restart) [ "$(id -u)" -eq 0 ] || die "$cmd needs root (network namespaces, veths, a bridge)" ;;
esac
dir=$(mkdir -p "$dir" && cd "$dir" && pwd)

# Names on the host, unique to the cluster dir: a short hash of its path.
hash=$(printf '%s' "$dir" | sha256sum | cut -c1-6)
bridge=trp-$hash-br                      # at most 15 characters, as Linux wants
# A cluster configured before keeps the subnet its run scripts bind to.
if [ -f "$dir/node-1/addr" ]; then
  recorded=$(cut -d. -f1-3 "$dir/node-1/addr")
  if [ "$recorded" != "$net_prefix" ]; then
    [ "$subnet_given" = 0 ] || die "--subnet '$subnet': the cluster in $dir was made with $recorded.0/24"
    net_prefix=$recorded
    subnet=$recorded.0/24
  fi
fi

addr_of() {  # node I's IP
  local last=$((10 + $1))
  [ "$last" -le 254 ] || die "node-$1: $net_prefix.$last is past $net_prefix.254"
  echo "$net_prefix.$last"
}
ns_of() { echo "trp-$hash-$1"; }
node_where() { ns_of "$1"; }
veth_of() { echo "trp-$hash-v$1"; }
ns_exists() { [ -e "/run/netns/$1" ]; }
link_exists() { ip link show dev "$1" >/dev/null 2>&1; }

# What this run made, undone if it fails before the end (see on_exit).
made_ns=() made_rules=()
made_bridge=0 done_ok=0

# ---- The network ----------------------------------------------------------

# A firewall rule, inserted once and recorded in DIR/net for stop.
add_rule() {  # add_rule TABLE-less iptables args (CHAIN ...)
  local chain=$1; shift
  iptables -C "$chain" "$@" 2>/dev/null && return 0
  iptables -I "$chain" "$@"
  echo "RULE=$chain $*" >>"$dir/net"
  made_rules+=("$chain $*")
}

# The bridge, its address, and the host's firewall letting bridge traffic through.
ensure_bridge() {
  if ! link_exists "$bridge"; then
    # The subnet must be ours alone on this host.
    local other
    other=$(ip -4 -o addr show | awk -v p="$net_prefix." 'index($4, p) == 1 {print $2 " " $4}' | head -1)
    [ -z "$other" ] || die "--subnet $subnet is already used on this host ($other); give another --subnet"
    ip link add "$bridge" type bridge
    made_bridge=1
    {
      echo "# written by deploy/netns-cluster.sh: what stop removes"
      echo "BRIDGE=$bridge"
      echo "SUBNET=$subnet"
    } >"$dir/net"
  fi
  ip addr replace "$net_prefix.1/24" dev "$bridge"
  ip link set "$bridge" up
  # br_netfilter sends bridged IPv4 through iptables' FORWARD chain; the
  # host reaching the namespaces goes through INPUT. A DROP policy (Docker
  # sets one) would cut the cluster: let this bridge's traffic through.
  if [ "$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || echo 0)" = 1 ] &&
     iptables -S FORWARD 2>/dev/null | grep -qx -- '-P FORWARD DROP'; then
    add_rule FORWARD -i "$bridge" -o "$bridge" -m comment --comment "troupe-netns-cluster-$hash" -j ACCEPT
  fi
  if iptables -S INPUT 2>/dev/null | grep -qx -- '-P INPUT DROP'; then
    add_rule INPUT -i "$bridge" -s "$subnet" -m comment --comment "troupe-netns-cluster-$hash" -j ACCEPT
  fi
  # Native nftables chains (not iptables' own table ip filter) are only checked.
  if command -v nft >/dev/null && nft list chains 2>/dev/null |
     awk '/^table/ {t = $2 " " $3} /hook forward/ && /policy drop/ && t != "ip filter" {f = 1} END {exit !f}'; then
    echo "netns-cluster: warning: an nftables chain on the forward hook drops by default;" \
         "if the nodes cannot reach each other, accept iifname $bridge oifname $bridge there" >&2
  fi
}

# Node I's namespace: lo up, eth0 (a veth whose other end is on the bridge) at its address.
ensure_node_net() {
  local i=$1 ns veth
  ns=$(ns_of "$i")
  veth=$(veth_of "$i")
  if ! ns_exists "$ns"; then
    ip netns add "$ns"
    made_ns+=("$ns")
  fi
  echo "$ns" >"$(node_dir "$i")/netns"
  ip -n "$ns" link set lo up
  if ! link_exists "$veth"; then
    ip -n "$ns" link del eth0 2>/dev/null || true
    ip link add "$veth" type veth peer name eth0 netns "$ns"
  fi
  ip link set "$veth" master "$bridge" up
  ip -n "$ns" addr replace "$(addr_of "$i")/24" dev eth0
  ip -n "$ns" link set eth0 up
}

# A veth goes with its namespace, but a moment later: waits up to 3 s for
# nodes I...'s, then deletes what is left.
wait_veths_gone() {
  local i left
  for _ in $(seq 30); do
    left=0
    for i in "$@"; do
      if link_exists "$(veth_of "$i")"; then left=1; fi
    done
    [ "$left" = 0 ] && return 0
    sleep 0.1
  done
  for i in "$@"; do ip link del "$(veth_of "$i")" 2>/dev/null || true; done
}

# Removes the namespaces of every node dir (their veths go with them), the
# bridge and the firewall rules DIR/net records.
teardown_net() {
  local i ns rule
  for i in $(nodes); do
    ns=$(ns_of "$i")
    ! ns_exists "$ns" || ip netns del "$ns"
  done
  # shellcheck disable=SC2046  # node numbers
  wait_veths_gone $(nodes)
  ! link_exists "$bridge" || ip link del "$bridge"
  if [ -f "$dir/net" ]; then
    while IFS= read -r rule; do
      # shellcheck disable=SC2086  # the rule is words, as add_rule wrote them
      iptables -D ${rule#RULE=} 2>/dev/null || echo "netns-cluster: firewall rule gone already: ${rule#RULE=}" >&2
    done < <(grep '^RULE=' "$dir/net")
    rm -f "$dir/net"
  fi
  return 0
}

# ---- The agents -----------------------------------------------------------

# Writes node I's run script once; later starts reuse it (same flags).
configure() {
  local i=$1 d addr role ns
  d=$(node_dir "$i")
  [ -x "$d/run" ] && return 0
  mkdir -p "$d/data"
  addr=$(addr_of "$i")
  ns=$(ns_of "$i")
  role=client
  [ "$i" -le "$servers" ] && role=server
  # Each node has its own network: every one keeps the default ports.
  local args=(agent --name "node-$i" --data-dir "$d/data" --bind "$addr" --http-port "$http_port"
              --driver "$driver" "--$role" --gossip-profile local --label "zone=z$(((i - 1) % 3 + 1))")
  [ "$i" -gt 1 ] && args+=(--seed "$(addr_of 1):7946")
  args+=("${extra[@]}")
  write_node "$i" "$addr" "$role" "nsenter --net=/run/netns/$ns --" \
    "node-$i of the cluster in $dir, in network namespace $ns (written by deploy/netns-cluster.sh)
nsenter --net, not ip netns exec: that one also gives the agent a mount namespace with a
/sys of its own, without /sys/fs/cgroup (runc needs it), and hides its containers' mounts
from the next agent that adopts them. exec: the pid is the agent's." "${args[@]}"
  echo "$ns" >"$d/netns"
}

# A start or restart that fails stops the agents it started and removes
# what it made on the host, so that a failed run leaves nothing behind.
on_exit() {
  [ "$done_ok" = 1 ] && return 0
  local i ns rule
  trap - INT TERM
  for i in "${started[@]}"; do stop_node "$i" || true; done
  for ns in "${made_ns[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  # shellcheck disable=SC2046  # node numbers
  [ ${#made_ns[@]} -eq 0 ] || wait_veths_gone $(printf '%s\n' "${made_ns[@]}" | sed 's/.*-//')
  for rule in "${made_rules[@]}"; do
    # shellcheck disable=SC2086
    iptables -D $rule 2>/dev/null || true
    if [ -f "$dir/net" ]; then
      grep -vxF "RULE=$rule" "$dir/net" >"$dir/net.tmp" || true
      mv "$dir/net.tmp" "$dir/net"
    fi
  done
  if [ "$made_bridge" = 1 ]; then
    ip link del "$bridge" 2>/dev/null || true
    rm -f "$dir/net"
  fi
  [ ${#started[@]} -eq 0 ] && [ ${#made_ns[@]} -eq 0 ] && [ "$made_bridge" = 0 ] ||
    echo "netns-cluster: $cmd failed: undid what it made (agents started, namespaces, bridge, rules)" >&2
}

case "$cmd" in
  start)
    [ "$arg" -ge 1 ] || die "start needs at least 1 node"
    command -v nsenter >/dev/null || die "nsenter is missing (util-linux)"
    trap on_exit EXIT
    trap 'exit 130' INT TERM
    for i in $(seq "$arg"); do configure "$i"; done
    ensure_bridge
    for i in $(seq "$arg"); do ensure_node_net "$i"; done
    for i in $(seq "$arg"); do start_node "$i"; done
    write_env netns "CLUSTER_BRIDGE=$bridge" "CLUSTER_SUBNET=$subnet"
    done_ok=1
    echo "cluster of $arg in $dir (namespaces trp-$hash-1..$arg on bridge $bridge, $subnet); use it with:"
    started_banner
    ;;
  stop)
    stopped=$(stop_all)
    if [ "$keep_net" = 1 ]; then
      echo "$stopped agent(s) stopped; namespaces and bridge $bridge kept; state kept in $dir"
    else
      teardown_net
      echo "$stopped agent(s) stopped; namespaces, veths and bridge $bridge removed; state kept in $dir (rm -rf it to start afresh)"
    fi
    ;;
  restart)
    [ -x "$(node_dir "$arg")/run" ] || die "node-$arg was never started in $dir"
    trap on_exit EXIT
    trap 'exit 130' INT TERM
    stop_node "$arg" || true
    ensure_bridge
    ensure_node_net "$arg"
    start_node "$arg"
    done_ok=1
    ;;
  status)
    printf '%-8s %-8s %-7s %-20s %-16s %s\n' NODE PID ROLE API NETNS STATE
    for i in $(nodes); do
      d=$(node_dir "$i")
      state=stopped pid=
      running "$i" && state=running pid=$(pid_of "$i")
      ns_exists "$(ns_of "$i")" || state="$state, no namespace"
      printf '%-8s %-8s %-7s %-20s %-16s %s\n' "node-$i" "${pid:--}" "$(cat "$d/role")" \
        "$(cat "$d/http")" "$(ns_of "$i")" "$state"
    done
    if link_exists "$bridge"; then echo "bridge $bridge up, $subnet"; else echo "bridge $bridge: none"; fi
    cluster_status
    ;;
  logs) show_log "$arg" "$follow" ;;
esac
