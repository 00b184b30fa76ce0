#!/usr/bin/env bash
# Benchmarks Troupe against raw runc on this machine and prints the results
# (docs/benchmarks.md explains what is measured). Builds Release into
# build/release, starts one agent on 127.0.0.1 with a temporary data dir,
# runs tests/bench/container_start.py against it, then stops the agent and
# removes every container, mount, cgroup and temporary file it made, also
# when a step fails or the run is interrupted.
#   BENCH_N        sequential starts per variant (default 50)
#   BENCH_WARMUP   unrecorded starts per variant first (default 3)
#   BENCH_BURST    containers requested at once (default 50)
#   BENCH_ROUNDS   rounds of the at-once test per side (default 3)
#   BENCH_JSON     also write every sample to this file
#   BENCH_NO_BUILD=1  use the binaries already in build/release
#   BENCH_MEMBERSHIP=0  skip the membership benchmarks (simulated, and against Serf)
#   BENCH_MEMBERSHIP_ROUNDS, BENCH_MEMBERSHIP_JSON, BENCH_SIM_MAX_MEMBERS
#   BENCH_RAFT=0   skip the replication benchmark (Troupe's Raft against etcd)
#   BENCH_RAFT_ROUNDS  failover rounds per system (default 5)
#   BENCH_RAFT_JSON    also write every replication sample to this file
#   BENCH_RAFT_SIM_SEEDS  seeded Raft fault simulations per cluster size, every
#                      safety and linearizability check on (default 5000; CI runs 340)
#   BENCH_SCHEDULER=0  skip the scheduler benchmark (100,000 placements on 5,000 simulated nodes)
#   BENCH_SERVICES=0   skip the services benchmark (deploy and client failover on 6 real agents)
#   BENCH_SWARM=0      skip the services benchmark side by side with Docker Swarm mode (3 agents with
#                      --driver runc against a single-node swarm of a dockerd of its own; installs
#                      Debian's docker.io if missing; about 6 minutes at 3 rounds)
#   BENCH_SWARM_ROUNDS rounds per system (default 3)
#   BENCH_SWARM_JSON   also write every Swarm/Troupe sample to this file
#   BENCH_IMAGES=0     skip the image pull benchmark (Troupe side by side with skopeo from one
#                      docker-registry on loopback, then three agents pulling at once; about a minute)
#   BENCH_IMAGES_ROUNDS  pull rounds per side (default 5)
#   BENCH_IMAGES_JSON  also write every image pull sample to this file
#   BENCH_CHAOS=0      skip the convergence benchmark: deploy/chaos.sh --netns (5 agents in network
#                      namespaces, every fault kind, seed BENCH_CHAOS_SEED or 2026); its report gives the
#                      convergence time per fault kind (median, p99)
#   BENCH_CHAOS_MINUTES  how long faults are injected (default 30)
#   BENCH_CHAOS_REPORT   where its report goes (default .chaos/bench-report.md)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if [ "$(id -u)" -ne 0 ]; then
  echo "bench.sh: skipped: runc containers and overlay mounts need root (run it with sudo)"
  exit 0
fi

# The peers and the image content; deploy/setup.sh normally installed them.
missing=()
for p in runc busybox-static python3 serf iproute2 nftables etcd-server; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench.sh: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

build=build/release
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j"$(nproc)" --target troupe troupectl troupe-shim swim_sim_bench raft_sim_bench kv_load scheduler_bench
fi
troupe=$root/$build/tools/troupe
troupectl=$root/$build/tools/troupectl
export TROUPE_SHIM=$root/$build/actors/node/runc/troupe-shim
for b in "$troupe" "$troupectl" "$TROUPE_SHIM"; do
  [ -x "$b" ] || { echo "bench.sh: $b is missing; build first" >&2; exit 1; }
done
runc=$(command -v runc)

tmp=$(mktemp -d /tmp/troupe-bench.XXXXXX)
data=$tmp/data
work=$tmp/work
agent_pid=""
node_id=""

# Mount points under $tmp, deepest first.
mounts_under_tmp() {
  awk -v p="$tmp/" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo | sort -r
}

# Pids of runc processes working on a runc root under $tmp.
runc_commands() {
  local pid
  for pid in $(pgrep -x runc); do
    tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q -- "--root $tmp/" && echo "$pid"
  done
}

cleanup() {
  local code=$?
  set +e
  if [ -n "$agent_pid" ] && kill -0 "$agent_pid" 2>/dev/null; then
    kill -TERM "$agent_pid"
    for _ in $(seq 100); do kill -0 "$agent_pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$agent_pid" 2>/dev/null && kill -KILL "$agent_pid"
    wait "$agent_pid" 2>/dev/null
  fi
  # A runc command the benchmark started may still be running: let it end,
  # so that what it creates is deleted below rather than left behind.
  for _ in $(seq 50); do
    [ -z "$(runc_commands)" ] && break
    sleep 0.1
  done
  # Containers outlive the agent by design; these runc roots are ours alone.
  for state in "$data/runc" "$work/runc"; do
    [ -d "$state" ] || continue
    for id in $("$runc" --root "$state" list -q 2>/dev/null); do
      "$runc" --root "$state" delete --force "$id" >/dev/null 2>&1
    done
  done
  # Whatever still runs in our cgroups is a container of ours runc lost
  # track of (its create was cut short): kill those pids, then the groups.
  local groups=()
  for parent in ${node_id:+"troupe-${node_id:0:12}"} troupe-bench-runc; do
    for ctl in /sys/fs/cgroup/*/; do
      [ -d "$ctl$parent" ] && groups+=("$ctl$parent")
    done
  done
  if [ ${#groups[@]} -gt 0 ]; then
    for pid in $(find "${groups[@]}" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u); do
      kill -KILL "$pid" 2>/dev/null
    done
    sleep 0.2
    find "${groups[@]}" -depth -type d -exec rmdir {} + 2>/dev/null
  fi
  for m in $(mounts_under_tmp); do
    umount "$m" 2>/dev/null || umount -l "$m"
  done
  if [ -n "$(mounts_under_tmp)" ]; then
    echo "bench.sh: mounts remain under $tmp; not removing it" >&2
  else
    rm -rf --one-file-system "$tmp"
  fi
  exit "$code"
}
bench_pid=""
# The benchmark runs in the background so that a signal reaches this trap at
# once; it is told to stop and removes its own containers before cleanup.
on_signal() {
  if [ -n "$bench_pid" ]; then
    kill -TERM "$bench_pid" 2>/dev/null
    wait "$bench_pid" 2>/dev/null
  fi
  exit 130
}
trap cleanup EXIT
trap on_signal INT TERM

# Runs a benchmark in the background, so that a signal reaches on_signal at
# once, and waits for it; its exit code is left in bench_code.
run_bench() {
  "$@" &
  bench_pid=$!
  bench_code=0
  wait "$bench_pid" || bench_code=$?
  bench_pid=""
}

# A busybox rootfs, imported as the image every container runs.
mkdir -p "$tmp/rootfs/bin" "$work"
cp /bin/busybox "$tmp/rootfs/bin/busybox"
for tool in sh echo sleep cat true; do ln -s busybox "$tmp/rootfs/bin/$tool"; done
mkdir -p "$tmp/rootfs/proc" "$tmp/rootfs/dev" "$tmp/rootfs/sys" "$tmp/rootfs/tmp" "$tmp/rootfs/etc"

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
addr=127.0.0.1:$port
# Its own session: a Ctrl-C reaches the benchmark, which then stops its
# containers through the agent; the agent itself is stopped below by pid.
# The agent bootstraps with a token of ours; troupectl and the scripts present it.
export TROUPE_TOKEN="trp_bench_$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
echo "$TROUPE_TOKEN" >"$tmp/token"
setsid "$troupe" agent --name bench --data-dir "$data" --bind 127.0.0.1 --http-port "$port" \
  --management-token-file "$tmp/token" >"$tmp/agent.log" 2>&1 &
agent_pid=$!
for _ in $(seq 100); do
  "$troupectl" --addr "$addr" status >/dev/null 2>&1 && break
  kill -0 "$agent_pid" 2>/dev/null || { echo "bench.sh: the agent exited:" >&2; cat "$tmp/agent.log" >&2; exit 1; }
  sleep 0.1
done
rss_at_start=$(awk '/^VmRSS:/ { print $2 }' "/proc/$agent_pid/status")
read -r node_id status_pid < <("$troupectl" --addr "$addr" -o json status |
  python3 -c 'import json, sys; s = json.load(sys.stdin); print(s["id"], s["pid"])')
if [ "$status_pid" != "$agent_pid" ]; then
  echo "bench.sh: the agent on $addr reports pid $status_pid, not $agent_pid" >&2
  exit 1
fi
"$troupectl" --addr "$addr" image import "$tmp/rootfs" --name busybox:1 >/dev/null

echo "bench.sh: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), kernel $(uname -r)"
echo "bench.sh: $("$runc" --version | head -1), troupe $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo '+changes'), agent pid $agent_pid on $addr"
json_args=()
[ -n "${BENCH_JSON:-}" ] && json_args=(--json "$BENCH_JSON")
run_bench python3 -B tests/bench/container_start.py --addr "$addr" --agent-pid "$agent_pid" --data-dir "$data" \
  --work "$work" --rootfs "$tmp/rootfs" --runc "$runc" --rss-at-start "$rss_at_start" \
  --agent-log "$tmp/agent.log" "${json_args[@]}"
if [ "$bench_code" -ne 0 ]; then
  echo "bench.sh: the benchmark failed (exit $bench_code); the agent's log ends:" >&2
  tail -20 "$tmp/agent.log" >&2
  exit 1
fi

# Membership: the simulated protocol at N = 100 and 1,000 (lan timings and
# Serf's), then real agents side by side with Serf on loopback, in a network
# namespace of its own for the 10% loss phase (about 15 minutes).
if [ "${BENCH_MEMBERSHIP:-1}" = 1 ]; then
  "$root/$build/actors/membership/swim_sim_bench" --max-members "${BENCH_SIM_MAX_MEMBERS:-1000}"
  python3 -B tests/bench/membership_bench.py --troupe "$troupe" --troupectl "$troupectl" \
    ${BENCH_MEMBERSHIP_ROUNDS:+--rounds "$BENCH_MEMBERSHIP_ROUNDS"} \
    ${BENCH_MEMBERSHIP_JSON:+--json "$BENCH_MEMBERSHIP_JSON"}
fi

# Replication: three Troupe servers side by side with a three-member etcd
# cluster on loopback, both at default settings with synced writes:
# sequential latency, throughput at 8 and 64 clients, failover after a
# kill -9 of the leader (about 5 minutes). In the background like the
# container benchmark, so that a signal reaches it through on_signal; it
# stops every member it started before it exits.
if [ "${BENCH_RAFT:-1}" = 1 ]; then
  # Many more seeds of the Raft fault simulation than the tests run, with 3
  # and 5 voters; a failing seed is printed and fails the benchmark.
  for voters in 3 5; do
    "$root/$build/actors/raft/raft_sim_bench" --seeds "${BENCH_RAFT_SIM_SEEDS:-5000}" --voters "$voters"
  done
  run_bench python3 -B tests/bench/raft_bench.py --troupe "$troupe" --kv-load "$root/$build/tests/kv_load" \
    ${BENCH_RAFT_ROUNDS:+--rounds "$BENCH_RAFT_ROUNDS"} \
    ${BENCH_RAFT_JSON:+--json "$BENCH_RAFT_JSON"}
  if [ "$bench_code" -ne 0 ]; then
    echo "bench.sh: the replication benchmark failed (exit $bench_code)" >&2
    exit 1
  fi
fi

# The scheduler's core on one core: 100,000 allocations of 1,000 services
# (constraints, spread over a zone label, dynamic ports) onto 5,000 nodes,
# three seeds.
if [ "${BENCH_SCHEDULER:-1}" = 1 ]; then
  for seed in 1 2 3; do
    taskset -c 0 "$root/$build/actors/scheduler/scheduler_bench" --seed "$seed"
  done
fi

# Services on six real agents: deploy 10 replicas, kill -9 a client, time
# until its tasks run elsewhere; with host processes, then with real runc
# containers (about a minute each).
if [ "${BENCH_SERVICES:-1}" = 1 ]; then
  for driver in process runc; do
    run_bench python3 -B tests/bench/services_bench.py --troupe "$troupe" \
      --troupectl "$troupectl" --driver "$driver"
    if [ "$bench_code" -ne 0 ]; then
      echo "bench.sh: the services benchmark ($driver driver) failed (exit $bench_code)" >&2
      exit 1
    fi
  done
fi

# Services side by side with Docker Swarm mode: deploy to 10 and to 50
# running, scale 50 -> 100, a rolling update of 10 with parallelism 2, and
# a container killed, on three Troupe agents (--driver runc) and on a
# single-node swarm of a dockerd that the benchmark starts itself, in a
# network namespace of its own, and stops (about 6 minutes). docker.io is a
# benchmark-only peer: it is installed here, not by deploy/setup.sh.
if [ "${BENCH_SWARM:-1}" = 1 ]; then
  if ! dpkg-query -W -f='${Status}' docker.io 2>/dev/null | grep -q "install ok installed"; then
    # The package's scripts may start a system dockerd (policy-rc.d or the
    # lack of an init system usually stops them): one that was not running
    # before the install is stopped again, by its pid.
    daemons_before=" $({ pgrep -x dockerd; pgrep -x containerd; } | tr '\n' ' ' || true) "
    echo "bench.sh: installing docker.io (the Swarm peer of the services benchmark)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends docker.io
    for pid in $(pgrep -x dockerd) $(pgrep -x containerd); do
      case "$daemons_before" in *" $pid "*) continue ;; esac
      echo "bench.sh: the docker.io install started $(cat "/proc/$pid/comm" 2>/dev/null) (pid $pid); stopping it"
      kill -TERM "$pid" 2>/dev/null
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    done
  fi
  run_bench python3 -B tests/bench/swarm_bench.py --troupe "$troupe" --troupectl "$troupectl" \
    --runc "$runc" ${BENCH_SWARM_ROUNDS:+--rounds "$BENCH_SWARM_ROUNDS"} \
    ${BENCH_SWARM_JSON:+--json "$BENCH_SWARM_JSON"}
  if [ "$bench_code" -ne 0 ]; then
    echo "bench.sh: the Swarm side-by-side benchmark failed (exit $bench_code)" >&2
    exit 1
  fi
fi

# Image pulls: a ~100 MB image of five random layers from one docker-registry
# on loopback, pulled by one agent (POST /v1/images/pull) and by skopeo copy
# to a directory, in turns; then three agents pull another image at once and
# the registry's access log says how many blob bytes it served (about a
# minute). docker-registry and skopeo come from deploy/setup.sh, which also
# keeps the package's own registry service from serving on all interfaces;
# they are not installed here for that reason.
if [ "${BENCH_IMAGES:-1}" = 1 ] && { [ ! -x /usr/bin/docker-registry ] || ! command -v skopeo >/dev/null; }; then
  echo "bench.sh: image pull benchmark skipped: docker-registry or skopeo missing (run deploy/setup.sh)"
elif [ "${BENCH_IMAGES:-1}" = 1 ]; then
  run_bench python3 -B tests/bench/image_bench.py --troupe "$troupe" \
    ${BENCH_IMAGES_ROUNDS:+--rounds "$BENCH_IMAGES_ROUNDS"} \
    ${BENCH_IMAGES_JSON:+--json "$BENCH_IMAGES_JSON"}
  if [ "$bench_code" -ne 0 ]; then
    echo "bench.sh: the image pull benchmark failed (exit $bench_code)" >&2
    exit 1
  fi
fi

# Convergence after faults: a chaos run against 5 agents in network
# namespaces (deploy/chaos.sh builds nothing here: the Release build above
# has troupe-chaos). The report holds the convergence times per fault kind;
# docs/benchmarks.md sets them beside the failover defaults of Kubernetes,
# Swarm and Nomad.
if [ "${BENCH_CHAOS:-1}" = 1 ]; then
  [ "${BENCH_NO_BUILD:-0}" = 1 ] || cmake --build "$root/build/release" -j"$(nproc)" --target troupe-chaos >/dev/null
  chaos_report=${BENCH_CHAOS_REPORT:-$root/.chaos/bench-report.md}
  run_bench env TROUPE_SKIP_BUILD=1 "$root/deploy/chaos.sh" --netns --nodes 5 \
    --minutes "${BENCH_CHAOS_MINUTES:-30}" --seed "${BENCH_CHAOS_SEED:-2026}" --report "$chaos_report"
  sed -n '/^## Faults/,/^## Workload/p' "$chaos_report" 2>/dev/null | sed '$d' || true
  if [ "$bench_code" -ne 0 ]; then
    echo "bench.sh: the chaos run found violations or failed (exit $bench_code); see $chaos_report" >&2
    exit 1
  fi
fi
