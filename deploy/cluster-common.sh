# What local-cluster.sh and netns-cluster.sh share: the node dirs' layout
# (DIR/node-I/{run,pid,log,addr,http,role,data/}), starting, stopping and
# showing agents. Sourced; the script sets prog, dir and bin first, and may
# define node_where I (what "node-I up" adds, e.g. its namespace).
# shellcheck shell=bash disable=SC2154,SC2034  # prog, dir, bin, http_port: set by the script; cmd, arg, taken: read by it

die() { echo "$prog: $*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }

# read_command ARGS...: cmd, and arg for the commands that take a node
# number (start N, logs I, restart I); taken: how many words that was.
read_command() {
  cmd=${1:-} arg='' taken=1
  [ -n "$cmd" ] || usage
  case "$cmd" in
    start | logs | restart)
      [ $# -ge 2 ] && [[ $2 =~ ^[0-9]+$ ]] || die "$cmd needs a number ($prog.sh $cmd 3)"
      arg=$2 taken=2 ;;
    stop | status) ;;
    -h | --help | help) usage ;;
    *) die "unknown command '$cmd' (start, stop, status, logs, restart)" ;;
  esac
}
node_dir() { echo "$dir/node-$1"; }
pid_of() { cat "$(node_dir "$1")/pid" 2>/dev/null || true; }
running() { local p; p=$(pid_of "$1"); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }
nodes() { ls -d "$dir"/node-* 2>/dev/null | sed 's/.*node-//' | sort -n; }
token() { cat "$(node_dir 1)/data/management.token" 2>/dev/null || true; }
ctl_at() { local http=$1; shift; TROUPE_TOKEN=$(token) "$bin/troupectl" --addr "$http" "$@"; }
started=()  # nodes this run started, for a script that undoes a failed start

# write_node I ADDR ROLE LAUNCH COMMENT AGENT_ARGS...: node I's run script
# (`exec LAUNCH troupe AGENT_ARGS`, LAUNCH may be empty) and its addr, http
# and role files.
write_node() {
  local i=$1 addr=$2 role=$3 launch=$4 comment=$5 d
  shift 5
  d=$(node_dir "$i")
  {
    echo '#!/bin/sh'
    printf '%s\n' "$comment" | sed 's/^/# /'
    printf 'exec %s%q' "${launch:+$launch }" "$bin/troupe"
    printf ' %q' "$@"
    echo
  } >"$d/run"
  chmod +x "$d/run"
  echo "$addr" >"$d/addr"
  echo "$addr:$http_port" >"$d/http"
  echo "$role" >"$d/role"
}

start_node() {
  local i=$1 d http
  d=$(node_dir "$i")
  if running "$i"; then
    echo "node-$i already running (pid $(pid_of "$i"))"
    return 0
  fi
  [ -x "$bin/troupe" ] || die "no agent at $bin/troupe (build it, or give --bin)"
  # setsid: the agent outlives this script and its terminal.
  setsid "$d/run" >>"$d/log" 2>&1 </dev/null &
  echo $! >"$d/pid"
  started+=("$i")
  http=$(cat "$d/http")
  for _ in $(seq 300); do
    if [ -n "$(token)" ] && ctl_at "$http" status >/dev/null 2>&1; then
      echo "node-$i up (pid $(pid_of "$i"), $(type node_where >/dev/null 2>&1 && echo "$(node_where "$i"), ")$http)"
      return 0
    fi
    running "$i" || { tail -20 "$d/log" >&2; die "node-$i exited; its log is $d/log"; }
    sleep 0.1
  done
  die "node-$i did not answer within 30 s; see $d/log"
}

# SIGTERM, SIGKILL after 20 s; false when it was not running.
stop_node() {
  local i=$1 p
  p=$(pid_of "$i")
  if [ -z "$p" ] || ! kill -0 "$p" 2>/dev/null; then
    rm -f "$(node_dir "$i")/pid"
    return 1
  fi
  kill -TERM "$p"
  for _ in $(seq 200); do
    kill -0 "$p" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$p" 2>/dev/null; then
    echo "$prog: node-$i ($p) did not stop in 20 s; killing it" >&2
    kill -KILL "$p"
  fi
  rm -f "$(node_dir "$i")/pid"
}

# Stops every agent, clients first and node-1 last (the servers keep a
# quorum while the others leave); prints how many were running.
stop_all() {
  local i stopped=0
  for i in $(nodes | sort -rn); do
    if stop_node "$i"; then stopped=$((stopped + 1)); fi
  done
  echo "$stopped"
}

# write_env MODE [LINE...]: DIR/env, for `. DIR/env` and troupe-chaos.
write_env() {
  local mode=$1
  shift
  {
    echo "# written by deploy/$prog.sh: . $dir/env"
    echo "TROUPE_ADDR=$(cat "$(node_dir 1)/http")"
    echo "TROUPE_TOKEN_FILE=$(node_dir 1)/data/management.token"
    echo "CLUSTER_NODES=$(nodes | wc -l)"
    echo "CLUSTER_MODE=$mode"
    printf '%s\n' "$@"
    echo "export TROUPE_ADDR TROUPE_TOKEN_FILE"
  } >"$dir/env"
}

started_banner() {
  echo "  export TROUPE_ADDR=$(cat "$(node_dir 1)/http") TROUPE_TOKEN=\$(cat $(node_dir 1)/data/management.token)"
}

# The cluster as the first running agent sees it.
cluster_status() {
  local i
  for i in $(nodes); do
    running "$i" || continue
    echo
    ctl_at "$(cat "$(node_dir "$i")/http")" status || true
    return 0
  done
}

show_log() {  # show_log I FOLLOW
  local f
  f=$(node_dir "$1")/log
  [ -f "$f" ] || die "no log for node-$1 in $dir"
  if [ "$2" = 1 ]; then exec tail -n 50 -f "$f"; else cat "$f"; fi
}

# Containers outlive their agents by design. remove_workload SERVICE...:
# removes the services through the first agent that answers and waits (up
# to 20 s) for their tasks to stop; then, once the caller stopped the
# agents, remove_leftovers ends what still runs: runc containers in each
# node's runc root, the process driver's process groups, and the mounts
# of their roots.
remove_workload() {
  local i http s
  for i in $(nodes); do
    http=$(cat "$(node_dir "$i")/http" 2>/dev/null) || continue
    ctl_at "$http" status >/dev/null 2>&1 || continue
    for s in "$@"; do ctl_at "$http" rm "$s" >/dev/null 2>&1 || true; done
    for _ in $(seq 100); do
      [ "$(ctl_at "$http" -o json ps --all 2>/dev/null | grep -c '"id"')" = 0 ] && break
      sleep 0.2
    done
    return 0
  done
}

remove_leftovers() {
  local d id pidfile pid
  for d in "$dir"/node-*/data; do
    if [ -d "$d/runc" ] && command -v runc >/dev/null; then
      for id in $(runc --root "$d/runc" list -q 2>/dev/null); do
        runc --root "$d/runc" delete -f "$id" >/dev/null 2>&1 || true
      done
    fi
    for pidfile in "$d"/containers/*/init.pid; do
      [ -f "$pidfile" ] || continue
      read -r pid _ <"$pidfile" || continue
      [ -n "$pid" ] && kill -KILL -- "-$pid" 2>/dev/null || true
    done
    # The agent unmounts a container's root when it removes it; these had
    # no agent left to do it.
    awk -v p="$d/containers/" 'index($2, p) == 1 {print $2}' /proc/self/mounts | sort -r |
      while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  done
}
