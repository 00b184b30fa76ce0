#!/usr/bin/env python3
"""Container start latency of a Troupe agent against raw runc, side by side.

Run by deploy/bench.sh, which builds Troupe, starts an agent on loopback with
a temporary data dir, imports a busybox image and cleans everything up. This
tool only measures; it needs root, runc and that running agent.

What one sample measures (docs/benchmarks.md says the same at more length):

  t0    just before the request: the POST /v1/tasks is sent (Troupe), or
        runc is spawned (raw runc).
  proc  the container's own first command has run: every container runs
        `sh -c 'echo ok > /bench/ready; exec sleep 1000'` and /bench/ready
        is a FIFO on the host that this tool holds open and waits on.
        The same event for Troupe and for runc, found without polling.
  api   (Troupe) GET /v1/tasks first shows the task as running; polled every
        POLL_MS after `proc`, so it never slows the agent before `proc`.
  ret   (runc) the runc command returned.

Raw runc runs a bundle whose config.json is the one Troupe rendered for its
own warm-up container (same namespaces, mounts, capabilities, no network
namespace), with its own overlay of the same image rootfs, mounted before t0.

Timings are printed and written as JSON; nothing here asserts on them.
"""

import argparse
import http.client
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time

from probes import (agent_log_phases, fdatasync_ms, listen_overflows, ms, now_ns, overlay_lowerdir,
                    proc_status, shims_pss_kib)
from report import report

COMMAND = ["sh", "-c", "echo ok > /bench/ready; exec sleep 1000"]
RAW_CGROUP_PARENT = "troupe-bench-runc"
POLL_MS = 1
START_TIMEOUT_S = 60


# --- the agent's HTTP API ----------------------------------------------------

class Api:
    """One connection per request, as a CLI client would open; keeps the
    numbers free of keep-alive limits on the server side."""

    def __init__(self, addr):
        host, port = addr.rsplit(":", 1)
        self.host, self.port = host, int(port)

    def call(self, method, path, body=None, timeout=120):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            data = b"" if body is None else json.dumps(body).encode()
            headers = {"Authorization": "Bearer " + os.environ.get("TROUPE_TOKEN", "")}
            if body is not None:
                headers["Content-Type"] = "application/json"
            conn.request(method, path, body=data if method == "POST" else None, headers=headers)
            res = conn.getresponse()
            text = res.read().decode()
        finally:
            conn.close()
        if res.status >= 300:
            raise RuntimeError(f"{method} {path}: HTTP {res.status}: {text.strip()}")
        return json.loads(text) if text else {}

    def tasks(self):
        return {t["allocId"]: t for t in self.call("GET", "/v1/tasks").get("tasks", [])}

    def run(self, spec):
        return self.call("POST", "/v1/tasks", spec)["allocation"]["id"]

    def stop(self, alloc_id):
        self.call("POST", f"/v1/tasks/{alloc_id}/stop", body=None)


# --- the FIFO each container writes to when its command runs -----------------

def make_ready(directory):
    """A FIFO in `directory`, held open read-write so that neither side
    blocks in open() and no EOF arrives before the container writes."""
    os.makedirs(directory, exist_ok=True)
    fifo = os.path.join(directory, "ready")
    os.mkfifo(fifo, 0o600)
    return os.open(fifo, os.O_RDWR | os.O_NONBLOCK)


def wait_ready(fds, timeout_s, on_slow=None):
    """Waits until every fd in `fds` (a dict key -> fd) is readable; returns
    key -> the time it was seen. `on_slow` is called every 200 ms so that a
    start that failed is reported instead of waited out."""
    seen = {}
    deadline = time.monotonic() + timeout_s
    while len(seen) < len(fds):
        left = deadline - time.monotonic()
        if left <= 0:
            missing = sorted(str(k) for k in fds if k not in seen)
            raise RuntimeError(f"containers never signalled they run: {', '.join(missing[:5])}")
        pending = [fd for k, fd in fds.items() if k not in seen]
        ready, _, _ = select.select(pending, [], [], min(left, 0.2))
        t = now_ns()
        for k, fd in fds.items():
            if fd in ready:
                seen[k] = t
                os.read(fd, 64)
        if not ready and on_slow:
            on_slow(set(fds) - set(seen))
    return seen


# --- raw runc ------------------------------------------------------------------

class RawRunc:
    """The peer: `runc run -d` (or create + start) of a prepared bundle."""

    def __init__(self, runc, root, work, template, lowerdir):
        self.runc, self.root, self.work = runc, root, work
        self.template, self.lowerdir = template, lowerdir
        self.live = {}  # id -> bundle dir, for cleanup
        os.makedirs(root, exist_ok=True)

    def prepare(self, cid, ready_dir):
        """Bundle with its overlay mounted and config.json written: work a
        runc user does before `runc run`, so it is outside the timing."""
        bundle = os.path.join(self.work, "bundles", cid)
        for d in ("upper", "work", "merged"):
            os.makedirs(os.path.join(bundle, d))
        merged = os.path.join(bundle, "merged")
        opts = f"lowerdir={self.lowerdir},upperdir={bundle}/upper,workdir={bundle}/work"
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, merged], check=True)
        self.live[cid] = bundle
        cfg = json.loads(json.dumps(self.template))
        cfg["root"]["path"] = merged
        cfg["hostname"] = cid
        cfg["process"]["args"] = COMMAND
        cfg["linux"]["cgroupsPath"] = f"/{RAW_CGROUP_PARENT}/{cid}"
        for m in cfg["mounts"]:
            if m["destination"] == "/bench":
                m["source"] = ready_dir
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(cfg, f)
        return bundle

    def _runc(self, *args, bundle):
        # stderr to a file: the detached container inherits runc's stdio, so
        # a pipe would never reach EOF.
        with open(os.path.join(bundle, "runc.err"), "ab") as err:
            r = subprocess.run([self.runc, "--root", self.root, *args], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=err)
        if r.returncode != 0:
            with open(os.path.join(bundle, "runc.err")) as f:
                raise RuntimeError(f"runc {' '.join(args)} failed: {f.read().strip()}")

    def run_detached(self, cid, bundle):
        self._runc("run", "-d", "--bundle", bundle, cid, bundle=bundle)

    def create_start(self, cid, bundle):
        self._runc("create", "--bundle", bundle, cid, bundle=bundle)
        self._runc("start", cid, bundle=bundle)

    def state_of_absent(self):
        """One `runc state` of an id runc does not know: the price of any
        extra runc call on a start path (Troupe's driver made one before
        every start; it now looks for runc's state directory instead)."""
        t0 = now_ns()
        subprocess.run([self.runc, "--root", self.root, "state", "absent-probe"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return ms(now_ns() - t0)

    def remove(self, cid):
        subprocess.run([self.runc, "--root", self.root, "delete", "--force", cid],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        bundle = self.live.pop(cid, None)
        if bundle:
            merged = os.path.join(bundle, "merged")
            if subprocess.run(["umount", merged], stderr=subprocess.DEVNULL).returncode != 0:
                subprocess.run(["umount", "-l", merged], stderr=subprocess.DEVNULL)
            shutil.rmtree(bundle, ignore_errors=True)

    def remove_all(self):
        for cid in list(self.live):
            self.remove(cid)
        for ctl in os.listdir("/sys/fs/cgroup"):
            try:
                os.rmdir(os.path.join("/sys/fs/cgroup", ctl, RAW_CGROUP_PARENT))
            except OSError:
                pass


# --- samples -------------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.args = args
        self.api = Api(args.addr)
        self.work = args.work
        self.seq = 0
        self.troupe_live = set()
        self.raw = None

    def ready_dir(self, cid):
        return os.path.join(self.work, "ready", cid)

    def spec(self, name, ready_dir):
        return {"name": name, "image": self.args.image, "command": COMMAND,
                "volumes": [{"source": ready_dir, "target": "/bench"}],
                # sleep as pid 1 ignores SIGTERM: stop with SIGKILL at once.
                "stopGraceMs": "1", "restart": {"policy": "never"}}

    def next_name(self, prefix):
        self.seq += 1
        return f"{prefix}-{self.seq}"

    def fail_if_failed(self, alloc_ids):
        def check(pending):
            tasks = self.api.tasks()
            for key in pending:
                t = tasks.get(alloc_ids.get(key, ""))
                if t and t["state"] in ("failed", "exited", "stopped"):
                    raise RuntimeError(f"task {key} is {t['state']}: {t.get('reason', '')}")
        return check

    def wait_api_running(self, alloc_ids):
        want = set(alloc_ids)
        while True:
            tasks = self.api.tasks()
            t = now_ns()
            if all(tasks.get(a, {}).get("state") == "running" for a in want):
                return t
            time.sleep(POLL_MS / 1000)

    def troupe_once(self, keep=False):
        name = self.next_name("bench")
        d = self.ready_dir(name)
        fd = make_ready(d)
        ids = {}
        try:
            wall0 = time.time() * 1000
            t0 = now_ns()
            alloc = self.api.run(self.spec(name, d))
            t_reply = now_ns()
            ids[name] = alloc
            self.troupe_live.add(alloc)
            t_proc = wait_ready({name: fd}, START_TIMEOUT_S, self.fail_if_failed(ids))[name]
            t_api = self.wait_api_running([alloc])
        finally:
            os.close(fd)
        sample = {"proc": ms(t_proc - t0), "api": ms(t_api - t0), "reply": ms(t_reply - t0),
                  "alloc": alloc, "t0_unix_ms": wall0}
        if not keep:
            self.troupe_stop(alloc)
            shutil.rmtree(d, ignore_errors=True)
        return sample, alloc

    def troupe_stop(self, alloc):
        self.api.stop(alloc)
        self.troupe_live.discard(alloc)

    def raw_once(self, mode):
        cid = self.next_name("raw")
        d = self.ready_dir(cid)
        fd = make_ready(d)
        bundle = self.raw.prepare(cid, d)
        try:
            t0 = now_ns()
            if mode == "run":
                self.raw.run_detached(cid, bundle)
            else:
                self.raw.create_start(cid, bundle)
            t_ret = now_ns()
            t_proc = wait_ready({cid: fd}, START_TIMEOUT_S)[cid]
        finally:
            os.close(fd)
            self.raw.remove(cid)
            shutil.rmtree(d, ignore_errors=True)
        return {"proc": ms(t_proc - t0), "ret": ms(t_ret - t0)}

    # -- setup: a warm-up container whose config.json the raw bundles copy --

    def setup_raw(self):
        sample, alloc = self.troupe_once(keep=True)
        bundle = os.path.join(self.args.data_dir, "containers", alloc)
        with open(os.path.join(bundle, "config.json")) as f:
            template = json.load(f)
        lowerdir = overlay_lowerdir(os.path.join(bundle, "merged")) or self.args.rootfs
        if not lowerdir:
            raise RuntimeError("cannot tell the image rootfs: no overlay on the warm-up container and no --rootfs")
        self.troupe_stop(alloc)
        self.raw = RawRunc(self.args.runc, os.path.join(self.work, "runc"), self.work, template, lowerdir)
        return lowerdir

    # -- (a) + (b): sequential starts, variants in rotating order --

    def sequential(self, n, warmup):
        variants = {"troupe": lambda: self.troupe_once()[0],
                    "runc_run": lambda: self.raw_once("run"),
                    "runc_create_start": lambda: self.raw_once("create_start")}
        names = list(variants)
        out = {k: [] for k in names}
        for i in range(-warmup, n):
            k = i % len(names)
            for v in names[k:] + names[:k]:
                s = variants[v]()
                if i >= 0:
                    out[v].append(s)
                time.sleep(self.args.settle_ms / 1000)
            if i >= 0 and (i + 1) % 10 == 0:
                print(f"  sequential: {i + 1}/{n}", file=sys.stderr, flush=True)
        return out

    # -- (c): many at once --

    def at_once(self, keys, action, fds, on_slow=None):
        """Runs action(key) for every key in its own thread, all released
        together at t0, while a watcher thread sees each FIFO fire; so a
        container that runs before the last request is answered is timed
        when it runs. Returns t0, when every action returned, and the
        key -> time each container ran."""
        go, abort = threading.Event(), threading.Event()
        errors, watched = [], {}

        def act(key):
            go.wait()
            try:
                action(key)
            except Exception as e:  # reported after every thread ends
                errors.append(f"{key}: {e}")
                abort.set()

        def slow(pending):
            if abort.is_set():
                raise RuntimeError("a request failed")
            if on_slow:
                on_slow(pending)

        def watch():
            try:
                watched["seen"] = wait_ready(fds, START_TIMEOUT_S * 2, slow)
            except Exception as e:
                watched["error"] = e

        threads = [threading.Thread(target=act, args=(k,)) for k in keys]
        watcher = threading.Thread(target=watch)
        for t in threads:
            t.start()
        time.sleep(0.05)  # every thread parked on the event
        watcher.start()
        t0 = now_ns()
        go.set()
        for t in threads:
            t.join()
        t_done = now_ns()
        watcher.join()
        if errors:
            raise RuntimeError("; ".join(errors[:3]))
        if "error" in watched:
            raise watched["error"]
        return t0, t_done, watched["seen"]

    def troupe_burst(self, count):
        names = [self.next_name("burst") for _ in range(count)]
        fds = {n: make_ready(self.ready_dir(n)) for n in names}
        ids, resets, replied = {}, [], {}

        def post(name):
            ids[name] = self.run_resetting(name, resets)
            replied[name] = now_ns()
            self.troupe_live.add(ids[name])

        overflows = listen_overflows()
        try:
            t0, t_replied, seen = self.at_once(names, post, fds, self.fail_if_failed(ids))
            t_api = self.wait_api_running(list(ids.values()))
        finally:
            for fd in fds.values():
                os.close(fd)
        agent = proc_status(self.args.agent_pid)
        shims = shims_pss_kib(self.args.data_dir)
        result = {"all_proc": ms(max(seen.values()) - t0), "all_api": ms(t_api - t0),
                  "all_replied": ms(t_replied - t0), "first_proc": ms(min(seen.values()) - t0),
                  "resets": len(resets), "listen_overflows": listen_overflows() - overflows,
                  "agent_rss_kib": agent["VmRSS"], "agent_threads": agent["Threads"],
                  "shims_pss_kib": shims[0], "shims": shims[1]}
        self.parallel(self.troupe_stop, list(ids.values()))
        for n in names:
            shutil.rmtree(self.ready_dir(n), ignore_errors=True)
        return result

    def run_resetting(self, name, resets):
        """POST /v1/tasks, again after a connection reset if no task of that
        name exists: the agent's listen queue overflows under a burst and
        the kernel resets connections it never handed to the server, so the
        request was not seen. Each reset is counted and reported."""
        for _ in range(20):
            try:
                return self.api.run(self.spec(name, self.ready_dir(name)))
            except (ConnectionResetError, ConnectionRefusedError, http.client.RemoteDisconnected):
                resets.append(name)
                for t in self.api.tasks().values():
                    if t["name"] == name:
                        return t["allocId"]
        raise RuntimeError(f"POST /v1/tasks for {name}: connection reset 20 times")

    def raw_burst(self, count):
        cids = [self.next_name("rawburst") for _ in range(count)]
        fds = {c: make_ready(self.ready_dir(c)) for c in cids}
        try:
            bundles = {c: self.raw.prepare(c, self.ready_dir(c)) for c in cids}
            t0, t_returned, seen = self.at_once(cids, lambda c: self.raw.run_detached(c, bundles[c]), fds)
        finally:
            for fd in fds.values():
                os.close(fd)
            self.parallel(self.raw.remove, cids)
            for c in cids:
                shutil.rmtree(self.ready_dir(c), ignore_errors=True)
        return {"all_proc": ms(max(seen.values()) - t0), "all_returned": ms(t_returned - t0),
                "first_proc": ms(min(seen.values()) - t0)}

    @staticmethod
    def parallel(fn, items, width=16):
        items = list(items)
        lock = threading.Lock()

        def worker():
            while True:
                with lock:
                    if not items:
                        return
                    item = items.pop()
                fn(item)

        threads = [threading.Thread(target=worker) for _ in range(width)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def cleanup(self):
        for alloc in list(self.troupe_live):
            try:
                self.troupe_stop(alloc)
            except Exception as e:
                print(f"container_start: stopping {alloc}: {e}", file=sys.stderr)
        if self.raw:
            self.raw.remove_all()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--addr", required=True, help="agent API, 127.0.0.1:PORT")
    p.add_argument("--agent-pid", type=int, required=True)
    p.add_argument("--data-dir", required=True, help="the agent's --data-dir")
    p.add_argument("--work", required=True, help="scratch dir for FIFOs and raw runc bundles")
    p.add_argument("--image", default="busybox:1")
    p.add_argument("--rootfs", help="image rootfs for raw runc if the warm-up shows no overlay")
    p.add_argument("--runc", default=shutil.which("runc") or "/usr/sbin/runc")
    p.add_argument("-n", type=int, default=int(os.environ.get("BENCH_N", "50")))
    p.add_argument("--warmup", type=int, default=int(os.environ.get("BENCH_WARMUP", "3")))
    p.add_argument("--burst", type=int, default=int(os.environ.get("BENCH_BURST", "50")))
    p.add_argument("--rounds", type=int, default=int(os.environ.get("BENCH_ROUNDS", "3")))
    p.add_argument("--agent-log", help="the agent's log, for where a start spends its time")
    p.add_argument("--rss-at-start", type=int, help="agent VmRSS in KiB before the image import")
    p.add_argument("--settle-ms", type=int, default=20, help="pause after each sample")
    p.add_argument("--json", help="write every sample here")
    args = p.parse_args()
    if os.geteuid() != 0:
        print("container_start: needs root (runc, overlay mounts)", file=sys.stderr)
        return 2

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    bench = Bench(args)
    res = {"config": {"n": args.n, "warmup": args.warmup, "burst": args.burst, "rounds": args.rounds,
                      "command": COMMAND, "poll_ms": POLL_MS, "settle_ms": args.settle_ms}}
    loadavg = lambda: open("/proc/loadavg").read().strip()
    res["loadavg"] = [loadavg(), None]
    try:
        idle = proc_status(args.agent_pid)
        res["rss"] = {"at_start_kib": args.rss_at_start, "idle_before_kib": idle["VmRSS"],
                      "idle_before_threads": idle["Threads"]}
        res["config"]["lowerdir"] = bench.setup_raw()
        print(f"container_start: {args.n} sequential starts of each variant "
              f"(+{args.warmup} warm-up)", file=sys.stderr, flush=True)
        res["sequential"] = bench.sequential(args.n, args.warmup)
        res["runc_state_probe"] = [bench.raw.state_of_absent() for _ in range(args.n)]
        res["fdatasync_ms"] = fdatasync_ms(args.data_dir)
        if args.agent_log:
            res["phases"], res["phase_samples"] = agent_log_phases(args.agent_log, res["sequential"]["troupe"])
        res["burst"] = {"troupe": [], "runc_run": []}
        for r in range(args.rounds):
            order = ["troupe", "runc_run"] if r % 2 == 0 else ["runc_run", "troupe"]
            for v in order:
                out = bench.troupe_burst(args.burst) if v == "troupe" else bench.raw_burst(args.burst)
                res["burst"][v].append(out)
                time.sleep(0.5)
            print(f"  burst: round {r + 1}/{args.rounds}", file=sys.stderr, flush=True)
        time.sleep(1)  # let the agent's stopped task threads finish
        after = proc_status(args.agent_pid)
        res["rss"].update(idle_after_kib=after["VmRSS"],
                          idle_after_threads=after["Threads"])
        res["loadavg"][1] = loadavg()
    except KeyboardInterrupt:
        print("container_start: interrupted; removing its containers", file=sys.stderr)
        return 130
    finally:
        bench.cleanup()
    text = report(res)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
