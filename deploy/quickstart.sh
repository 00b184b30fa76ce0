#!/usr/bin/env bash
# The main job: installs, builds (Release) and starts a Troupe agent in the
# background on 127.0.0.1, then prints `troupectl status`.
#   deploy/quickstart.sh          start (or show the running one)
#   deploy/quickstart.sh stop     stop what it started
#   TROUPE_HTTP_PORT              the API port (default 7070)
# State, log and pid live in .quickstart/ at the top of the checkout.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
qs=$root/.quickstart
build=$root/build/release
port=${TROUPE_HTTP_PORT:-7070}
pidfile=$qs/agent.pid
ctl() { "$build/tools/troupectl" --addr "127.0.0.1:$port" "$@"; }

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

stop() {
  if ! running; then
    echo "quickstart: no agent running"
    rm -f "$pidfile"
    return 0
  fi
  pid=$(cat "$pidfile")
  kill -TERM "$pid"
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "quickstart: agent $pid did not stop in 10s; killing it" >&2
    kill -KILL "$pid"
  fi
  rm -f "$pidfile"
  echo "quickstart: agent $pid stopped (log: $qs/agent.log)"
}

start() {
  "$root/deploy/setup.sh"
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j"$(nproc)" --target troupe troupectl
  mkdir -p "$qs"
  if running; then
    echo "quickstart: agent already running (pid $(cat "$pidfile"))"
  else
    nohup "$build/tools/troupe" agent --name node-1 --data-dir "$qs/data" \
      --bind 127.0.0.1 --http-port "$port" >>"$qs/agent.log" 2>&1 &
    echo $! >"$pidfile"
    for _ in $(seq 100); do
      ctl status >/dev/null 2>&1 && break
      running || { echo "quickstart: the agent exited; its log:" >&2; tail -20 "$qs/agent.log" >&2; exit 1; }
      sleep 0.1
    done
  fi
  ctl status
  cat <<EOT

Try:  $build/tools/troupectl actor kill monitor && $build/tools/troupectl actors
Log:  $qs/agent.log
Stop: deploy/quickstart.sh stop
EOT
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: deploy/quickstart.sh [start|stop]" >&2; exit 2 ;;
esac
