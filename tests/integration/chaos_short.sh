#!/usr/bin/env bash
# chaos_short: a 4-node loopback cluster (deploy/local-cluster.sh), two
# minutes of actor, agent and leader kills from seed 1 while the workload
# deploys and scales, and every invariant of troupe-chaos must hold.
#
#   tests/integration/chaos_short.sh BIN_DIR [MINUTES]
#
# BIN_DIR holds troupe, troupectl and troupe-chaos ($TROUPE_BIN and
# $TROUPE_CHAOS, when set, name the agent's dir and the runner instead;
# $CHAOS_DRIVER forces the driver, runc or process). The
# cluster is stopped and its containers removed however the test ends; its
# dir (logs, history, report) is kept when the test fails.
set -euo pipefail
bin=$(cd "${TROUPE_BIN:-$1}" && pwd)
chaos=${TROUPE_CHAOS:-$1/troupe-chaos}
minutes=${2:-2}
root=$(cd "$(dirname "$0")/../.." && pwd)
for f in "$bin/troupe" "$bin/troupectl" "$chaos"; do
  [ -x "$f" ] || { echo "chaos_short: no $f (build troupe, troupectl, troupe-shim and troupe-chaos first)" >&2; exit 1; }
done
cluster=$root/deploy/local-cluster.sh
dir=$(mktemp -d /tmp/troupe-chaos-short.XXXXXX)
# An address block of its own, so that parallel runs (and other people's
# clusters on 127.0.0.x) do not collide.
ip_base=127.$((100 + $$ % 100)).$(($$ / 100 % 250)).10
port=7070

driver=process
if [ -n "${CHAOS_DRIVER:-}" ]; then
  driver=$CHAOS_DRIVER
  why="CHAOS_DRIVER is set"
elif [ "$(id -u)" != 0 ]; then
  why="not root"
elif ! command -v runc >/dev/null 2>&1; then
  why="no runc on PATH"
elif ! runc --root "$dir/runc-probe" list >/dev/null 2>&1; then
  why="runc list fails here"
elif [ ! -w /sys/fs/cgroup ]; then
  why="/sys/fs/cgroup is not writable"
else
  driver=runc
  why="root, and runc works"
fi
rm -rf "$dir/runc-probe"
echo "chaos_short: driver $driver ($why); cluster in $dir on $ip_base"

prog=chaos_short
# shellcheck source=deploy/cluster-common.sh
. "$root/deploy/cluster-common.sh"

# Containers outlive their agents by design: remove the services first, then
# stop the agents, then end whatever still runs.
cleanup() {
  local rc=$?
  set +e
  remove_workload chaos-1 chaos-2 chaos-3
  "$cluster" stop --dir "$dir" >/dev/null 2>&1
  remove_leftovers
  if [ "$rc" = 0 ]; then
    rm -rf "$dir"
  else
    echo "chaos_short: failed (exit $rc); the cluster's logs, report and history are in $dir" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT

"$cluster" start 4 --dir "$dir" --bin "$bin" --driver "$driver" --ip-base "$ip_base" --http-port "$port" >/dev/null
"$chaos" --cluster "$dir" --seed 1 --minutes "$minutes" --faults actor-kill,agent-kill,leader-kill \
  --report "$dir/report.md" --history "$dir/history.jsonl"
