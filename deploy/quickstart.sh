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
  # Containers outlive their agent by design; quickstart removes its own.
  for id in $(ctl -o json ps 2>/dev/null | grep -o '"allocId": *"[0-9a-f]*"' | grep -o '[0-9a-f]\{12\}'); do
    ctl rm "$id" >/dev/null || true
  done
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

# A busybox image made from the host's static busybox, and one container
# that runs from it (needs root and runc; skipped with a note otherwise).
demo_container() {
  if [ "$(id -u)" -ne 0 ] || ! command -v runc >/dev/null || [ ! -x /bin/busybox ]; then
    echo "quickstart: not root or no runc/busybox: skipping the demo container"
    return 0
  fi
  rootfs=$qs/busybox-rootfs
  if [ ! -x "$rootfs/bin/busybox" ]; then
    mkdir -p "$rootfs/bin" "$rootfs/proc" "$rootfs/dev" "$rootfs/sys" "$rootfs/tmp" "$rootfs/etc"
    cp /bin/busybox "$rootfs/bin/busybox"
    for tool in sh echo cat ls ps sleep true false env head tail wc grep httpd wget; do
      ln -sf busybox "$rootfs/bin/$tool"
    done
  fi
  ctl image import "$rootfs" --name busybox:1 >/dev/null
  if ! ctl ps | grep -q ' hello '; then
    ctl run --name hello --memory 32Mi busybox:1 -- \
      sh -c "trap 'exit 0' TERM; echo hello from a troupe container; while true; do sleep 1; done" >/dev/null
  fi
  sleep 0.5
  echo
  ctl ps
  echo
  ctl logs hello
}

start() {
  "$root/deploy/setup.sh"
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build" -j"$(nproc)" --target troupe troupectl troupe-shim
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
  demo_container
  cat <<EOT

Try:  $build/tools/troupectl actor kill node && $build/tools/troupectl ps   # the container is adopted, not restarted
Log:  $qs/agent.log
Stop: deploy/quickstart.sh stop
EOT
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: deploy/quickstart.sh [start|stop]" >&2; exit 2 ;;
esac
