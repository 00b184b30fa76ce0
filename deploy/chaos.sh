#!/usr/bin/env bash
# A long chaos run: builds Troupe (Release), starts a cluster (loopback, or
# network namespaces with --netns), runs troupe-chaos against it for the
# given minutes, writes the report, and stops the cluster, also when the
# run fails. docs/chaos.md explains the faults, the invariants and the
# report.
#
#   deploy/chaos.sh [--minutes 30] [--netns] [--nodes 5] [--seed S] [--faults K,...]
#                   [--report FILE] [--driver auto|runc|process] [--keep]
#
#   --minutes M   how long faults are injected (30)
#   --netns       the cluster in network namespaces (root): partitions and
#                 packet loss join the faults
#   --nodes N     agents: 3 servers, the rest clients (5)
#   --seed S      the schedule's seed (default: from the clock; printed, and
#                 in the report, to replay a run)
#   --faults K,.. the fault kinds (default: all the cluster allows)
#   --report FILE where the report goes (default .chaos/report-SEED.md; the
#                 history, every fault and operation, beside it as .jsonl)
#   --driver D    how containers run (auto: runc when root and usable)
#   --keep        leave the cluster running after the run (to look at it)
#   TROUPE_BUILD_DIR / TROUPE_SKIP_BUILD=1   as in quickstart.sh
# Exit status: 0 no violation, 1 violations (the report names them), 2 bad
# usage or a cluster that did not start.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${TROUPE_BUILD_DIR:-$root/build/release}
minutes=30 netns=0 nodes=5 seed='' faults='' report='' driver=auto keep=0
die() { echo "chaos: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --minutes | --nodes | --seed | --faults | --report | --driver) [ $# -ge 2 ] || die "option '$1' needs a value" ;;&
    --minutes) minutes=$2; shift 2 ;;
    --nodes) nodes=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --faults) faults=$2; shift 2 ;;
    --report) report=$2; shift 2 ;;
    --driver) driver=$2; shift 2 ;;
    --netns) netns=1; shift ;;
    --keep) keep=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (see deploy/chaos.sh --help)" ;;
  esac
done
[[ $minutes =~ ^[0-9]+$ ]] && [ "$minutes" -ge 1 ] || die "--minutes '$minutes' is not a whole number of minutes"
[[ $nodes =~ ^[0-9]+$ ]] && [ "$nodes" -ge 3 ] || die "--nodes '$nodes': at least 3 (the servers)"
[ -z "$seed" ] || [[ $seed =~ ^[0-9]+$ ]] || die "--seed '$seed' is not a number"
seed=${seed:-$(date +%s)}
state=$root/.chaos
mkdir -p "$state"
report=${report:-$state/report-$seed.md}

if [ "${TROUPE_SKIP_BUILD:-0}" != 1 ]; then
  "$root/deploy/setup.sh"
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j"$(nproc)" --target troupe troupectl troupe-shim troupe-chaos
fi
[ -x "$build/tools/troupe-chaos" ] || die "no troupe-chaos in $build/tools (build it, or unset TROUPE_SKIP_BUILD)"

if [ "$netns" = 1 ]; then
  script=$root/deploy/netns-cluster.sh
  dir=$state/netns-cluster
else
  script=$root/deploy/local-cluster.sh
  dir=$state/cluster
fi
# A fresh cluster every run: the invariants speak of this run's history only.
if [ -d "$dir" ]; then
  "$script" stop --dir "$dir" >/dev/null 2>&1 || true
  rm -rf "$dir"
fi
prog=chaos bin=$build/tools
# shellcheck source=deploy/cluster-common.sh
. "$root/deploy/cluster-common.sh"
# The services' containers outlive the agents: removed first, and what is
# left once the agents stopped is ended.
cleanup() {
  [ "$keep" = 1 ] && { echo "chaos: cluster kept running in $dir ($script stop --dir $dir)"; return; }
  remove_workload chaos-1 chaos-2 chaos-3
  "$script" stop --dir "$dir" >/dev/null 2>&1 || true
  remove_leftovers
}
trap cleanup EXIT
trap 'exit 130' INT TERM
"$script" start "$nodes" --dir "$dir" --bin "$build/tools" --driver "$driver" || exit 2

args=(--cluster "$dir" --seed "$seed" --minutes "$minutes" --report "$report" --history "${report%.md}.jsonl")
[ -z "$faults" ] || args+=(--faults "$faults")
set +e
"$build/tools/troupe-chaos" "${args[@]}"
rc=$?
set -e
echo "chaos: report in $report (exit $rc; replay with --seed $seed)"
exit "$rc"
