#!/usr/bin/env python3
"""Replication benchmark: Troupe's Raft against etcd, side by side.

Three Troupe server agents and a three-member etcd cluster (Debian
`etcd-server`) run on loopback at the same time, each with default settings
(nothing tuned: Troupe's tick and 10-20 tick election timeout, etcd's 100 ms
heartbeat and 1000 ms election timeout) and synced writes on both (a synced
LMDB commit per ready batch; etcd's WAL fdatasync). The same C++ client,
`kv_load`, drives both over HTTP/1.1 with kept-alive connections: Troupe's
`PUT /v1/kv/{key}` and etcd's v3 JSON gateway `POST /v3/kv/put`.

  sequential  one client, --seq-ops writes to the leader after --seq-warmup
              unrecorded ones: latency median, p90, p99, max.
  throughput  --clients (8 and 64) for --seconds each; client i writes to
              endpoint i mod 3, the leader first, so a third of the clients
              write to the leader and the rest through followers, which
              forward to it in both systems. Writes per second, latency, and
              the CPU time the three members used per write.
  quickack    a diagnostic: the sequential run and one throughput run per
              client count again, with a client that acknowledges every
              TCP segment at once (kv_load --quickack). A server that
              writes a response in two pieces with Nagle's algorithm on
              waits for the client's delayed ACK (40 ms on Linux) otherwise;
              this phase shows what the servers take without that wait.
  failover    --rounds per system: one sequential writer (the leader first in
              its list; a failed or timed-out write moves to the next member)
              runs, the leader is killed with SIGKILL, and the time from the
              kill to the first successful write sent after it is measured,
              as well as the time until a survivor reports a new leader
              (polled every 20 ms). The killed member is restarted on its
              data dir and the round ends once it follows the leader again
              and has caught up.

The two systems take turns: each phase runs for one and then the other, and
the order alternates between repetitions and rounds, so drift on a shared
machine touches both alike. Results are ratios Troupe / etcd. Benchmarks are
not tests: nothing here asserts on a time.

Python 3 standard library only. Every process and temporary dir it makes is
removed at the end, also after an error, Ctrl-C or SIGTERM.

  tests/bench/raft_bench.py --troupe build/kvbench-rel/tools/troupe \\
      --kv-load build/kvbench-rel/tests/kv_load --json /tmp/raft.json
"""

import argparse
import atexit
import http.client
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import membership_bench as mb  # noqa: E402 - agents, ports, process cleanup
from probes import fdatasync_ms  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def http_json(port, method, path, body=None, timeout=1.0):
    """One request on a new connection; the decoded JSON answer, or None."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = dict(mb.AUTH, **({"Content-Type": "application/json"} if body else {}))
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return json.loads(data) if resp.status == 200 else None
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        conn.close()


def cpu_seconds(pid):
    """utime + stime of a process, in seconds (all its threads)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


# ---------------------------------------------------------------------------
# the two systems, each three members on loopback
# ---------------------------------------------------------------------------


class TroupeSystem:
    """Three `troupe agent` servers from one seed (membership_bench's Troupe
    side: --driver process, default gossip profile), Raft at its defaults."""

    label = "Troupe"
    key = "troupe"

    def __init__(self, binary, root):
        self.side = mb.TroupeSide(binary, None)
        self.side.label = "Troupe"
        self.cl = mb.Cluster(self.side, 3, root)
        self.members = self.cl.agents

    def client_port(self, m):
        return m.ports["http"]

    def raft(self, m, timeout=0.5):
        # A new connection each time: a kept-alive one would hold one of
        # the agent's few HTTP threads while the load runs.
        if m.proc is None or m.proc.poll() is not None:
            return None
        return http_json(m.ports["http"], "GET", "/v1/raft", None, timeout)

    def start(self):
        first = self.members[0]
        self.cl.spawn(first, None)

        def leads():
            self.cl.check_alive([first])
            st = self.raft(first)
            return st is not None and st.get("role") == "leader"

        if not mb.wait_until(leads, 30, 0.05):
            raise RuntimeError("troupe s1 did not become leader within 30 s:\n" + mb.tail(first.log))
        for m in self.members[1:]:
            self.cl.spawn(m, first)

        def formed():
            self.cl.check_alive()
            st = [self.raft(m) for m in self.members]
            return all(s and len(s.get("voters", [])) == 3 and s.get("leaderId", "0") != "0" for s in st) and \
                len({s["leaderId"] for s in st}) == 1

        if not mb.wait_until(formed, 60, 0.1):
            raise RuntimeError("troupe: no three voters with one leader within 60 s:\n" +
                               "\n".join(json.dumps(self.raft(m)) for m in self.members))

    def leader(self, among=None):
        """The member that says it leads and that the others follow, or None."""
        st = {m.name: self.raft(m) for m in among or self.members}
        for m in among or self.members:
            s = st[m.name]
            if s and s.get("role") == "leader":
                followers = [o for o in st.values() if o and o.get("leaderId") == s.get("raftId")]
                if len(followers) >= 2:
                    return m
        return None

    def new_leader_seen(self, survivors, killed_id):
        for m in survivors:
            s = self.raft(m, timeout=0.2)
            if s and s.get("leaderId", "0") not in ("0", killed_id):
                return True
        return False

    def member_id(self, m):
        s = self.raft(m)
        return s.get("raftId") if s else None

    def restart(self, m):
        seed = next(o for o in self.members if o is not m and o.proc.poll() is None)
        self.cl.spawn(m, seed)

    def caught_up(self, m):
        lead = self.leader()
        if lead is None or lead is m:
            return False
        ls, ms = self.raft(lead), self.raft(m)
        return bool(ls and ms and ms.get("role") == "follower" and ms.get("leaderId") == ls.get("raftId") and
                    int(ms.get("applied", 0)) >= int(ls.get("commit", 0)) - 1 and len(ls.get("voters", [])) == 3)


class EtcdSide:
    """etcd members for mb.Cluster: a client and a peer port each, one
    static initial cluster, default timings and fsync."""

    label = "etcd"
    prefix = "e"

    def __init__(self, binary):
        self.binary = binary
        self.initial_cluster = None
        self.token = "troupe-bench-%d" % os.getpid()

    def ports(self, used):
        return {"client": mb.free_port(used), "peer": mb.free_port(used)}

    def command(self, agent, _seed):
        url = lambda p: "http://127.0.0.1:%d" % p  # noqa: E731
        return [self.binary, "--name", agent.name, "--data-dir", os.path.join(agent.dir, "data"),
                "--listen-client-urls", url(agent.ports["client"]),
                "--advertise-client-urls", url(agent.ports["client"]),
                "--listen-peer-urls", url(agent.ports["peer"]),
                "--initial-advertise-peer-urls", url(agent.ports["peer"]),
                "--initial-cluster", self.initial_cluster, "--initial-cluster-state", "new",
                "--initial-cluster-token", self.token]


class EtcdSystem:
    label = "etcd"
    key = "etcd"

    def __init__(self, binary, root):
        self.side = EtcdSide(binary)
        self.cl = mb.Cluster(self.side, 3, root)
        self.members = self.cl.agents
        self.side.initial_cluster = ",".join("%s=http://127.0.0.1:%d" % (m.name, m.ports["peer"])
                                             for m in self.members)

    def client_port(self, m):
        return m.ports["client"]

    def status(self, m, timeout=0.5):
        if m.proc is None or m.proc.poll() is not None:
            return None
        return http_json(m.ports["client"], "POST", "/v3/maintenance/status", b"{}", timeout)

    def start(self):
        for m in self.members:
            self.cl.spawn(m, None)

        def formed():
            self.cl.check_alive()
            st = [self.status(m) for m in self.members]
            return all(s and s.get("leader", "0") != "0" for s in st) and len({s["leader"] for s in st}) == 1

        if not mb.wait_until(formed, 60, 0.1):
            raise RuntimeError("etcd: no leader on all three within 60 s:\n" + mb.tail(self.members[0].log))

    def leader(self, among=None):
        st = {m.name: self.status(m) for m in among or self.members}
        for m in among or self.members:
            s = st[m.name]
            if s and s["header"]["member_id"] == s.get("leader"):
                if sum(1 for o in st.values() if o and o.get("leader") == s["leader"]) >= 2:
                    return m
        return None

    def new_leader_seen(self, survivors, killed_id):
        for m in survivors:
            s = self.status(m, timeout=0.2)
            if s and s.get("leader", "0") not in ("0", killed_id):
                return True
        return False

    def member_id(self, m):
        s = self.status(m)
        return s["header"]["member_id"] if s else None

    def restart(self, m):
        self.cl.spawn(m, None)  # its data dir holds the cluster; the flags for a new one are ignored

    def caught_up(self, m):
        lead = self.leader()
        if lead is None or lead is m:
            return False
        ls, ms = self.status(lead), self.status(m)
        return bool(ls and ms and ms.get("leader") == ls["header"]["member_id"] and
                    int(ms.get("raftAppliedIndex", 0)) >= int(ls.get("raftIndex", 0)) - 1)


# ---------------------------------------------------------------------------
# the measurements
# ---------------------------------------------------------------------------


def endpoints(system, first):
    """host:port of every member's client API, `first` first."""
    order = [first] + [m for m in system.members if m is not first]
    return ",".join("127.0.0.1:%d" % system.client_port(m) for m in order)


def wait_leader(system, timeout=30):
    lead = mb.wait_until(system.leader, timeout, 0.1)
    if lead is None:
        raise RuntimeError("%s has no leader" % system.label)
    return lead


def run_load(system, opts, clients, seconds=None, ops=None, warmup=0, quickack=False):
    """One kv_load run against `system` (leader first); its JSON summary
    plus the CPU seconds each member and the client used."""
    system.cl.check_alive()
    lead = wait_leader(system)
    cmd = [opts.kv_load, "--system", system.key, "--endpoints", endpoints(system, lead), "--clients", str(clients),
           "--value-size", str(opts.value_size), "--warmup-ops", str(warmup), "--json"]
    cmd += ["--seconds", str(seconds)] if seconds else ["--ops", str(ops)]
    cmd += ["--quickack"] if quickack else []
    cpu0 = {m.name: cpu_seconds(m.pid) for m in system.members}
    child0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    load0 = mb.loadavg()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    mb.PROCS.append(proc)
    try:
        out, err = proc.communicate(timeout=(seconds or 0) + 600)
    except BaseException:  # interrupted or stuck: stop it here, the cleanup no longer sees it
        mb.stop_procs([proc], grace=2.0)
        raise
    finally:
        if proc in mb.PROCS:
            mb.PROCS.remove(proc)
    child1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu1 = {m.name: cpu_seconds(m.pid) for m in system.members}
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError("kv_load failed (exit %s): %s" % (proc.returncode, err.strip() or out.strip()))
    res = json.loads(lines[-1])
    res["leader"] = lead.name
    res["cpu_s"] = {k: (cpu1[k] - cpu0[k]) if cpu0[k] is not None and cpu1[k] is not None else None for k in cpu0}
    res["cpu_s_leader"] = res["cpu_s"].get(lead.name)
    res["client_cpu_s"] = (child1.ru_utime + child1.ru_stime) - (child0.ru_utime + child0.ru_stime)
    total = sum(v for v in res["cpu_s"].values() if v is not None)
    res["cpu_ms_per_write"] = 1000.0 * total / res["ok"] if res["ok"] else None
    res["loadavg_before"] = load0
    return res


class Writer:
    """`kv_load --failover`: one sequential writer whose every write is
    read back as (ok, start ns, end ns, endpoint index, why)."""

    def __init__(self, system, opts, first):
        cmd = [opts.kv_load, "--failover", "--system", system.key, "--endpoints", endpoints(system, first),
               "--value-size", str(opts.value_size), "--timeout-ms", str(opts.failover_timeout_ms),
               "--seconds", "300"]
        self.writes = []
        self.cond = threading.Condition()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1)
        mb.PROCS.append(self.proc)
        self.thread = threading.Thread(target=self.read, daemon=True)
        self.thread.start()

    def read(self):
        for line in self.proc.stdout:
            parts = line.rstrip("\n").split(" ", 4)
            if len(parts) < 4:
                continue
            w = (parts[0] == "ok", int(parts[1]), int(parts[2]), int(parts[3]), parts[4] if len(parts) > 4 else "")
            with self.cond:
                self.writes.append(w)
                self.cond.notify_all()

    def wait_for(self, pred, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred(self.writes):
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    return False
                self.cond.wait(min(left, 0.1))
            return True

    def stop(self):
        mb.stop_procs([self.proc], grace=2.0)
        self.thread.join(timeout=2)


def failover_round(system, opts, rnd):
    system.cl.check_alive()
    lead = wait_leader(system)
    killed_id = system.member_id(lead)
    survivors = [m for m in system.members if m is not lead]
    res = {"system": system.label, "round": rnd, "killed": lead.name, "loadavg_before": mb.loadavg()}
    writer = Writer(system, opts, lead)
    killed = False
    try:
        if not writer.wait_for(lambda ws: sum(1 for w in ws if w[0]) >= 50, 15):
            raise RuntimeError("%s: the failover writer made no progress before the kill: %s" % (
                system.label, writer.writes[-3:]))
        time.sleep(0.5)
        seen = {}

        def poll_leader():
            while "at" not in seen and time.monotonic_ns() - t_kill < 30e9:
                if system.new_leader_seen(survivors, killed_id):
                    seen["at"] = time.monotonic_ns()
                    return
                time.sleep(0.02)

        t_kill = time.monotonic_ns()
        os.kill(lead.pid, signal.SIGKILL)
        killed = True
        poller = threading.Thread(target=poll_leader, daemon=True)
        poller.start()
        ok_after = writer.wait_for(lambda ws: any(w[0] and w[1] >= t_kill for w in ws), 30)
        time.sleep(0.2)
        poller.join(timeout=5)
    finally:
        writer.stop()
        if killed:  # interrupted before the kill, it still runs and the cleanup stops it
            lead.proc.wait()
            if lead.proc in mb.PROCS:
                mb.PROCS.remove(lead.proc)
            lead.close()
    ws = writer.writes
    after = [w for w in ws if w[2] >= t_kill]
    first_ok = next((w for w in ws if w[0] and w[1] >= t_kill), None)
    res["kill_to_write_ms"] = (first_ok[2] - t_kill) / 1e6 if ok_after and first_ok else None
    res["kill_to_leader_ms"] = (seen["at"] - t_kill) / 1e6 if "at" in seen else None
    before = [w for w in ws if w[2] < t_kill]
    res["writes_before_kill"] = len(before)
    res["errors_before_kill"] = sum(1 for w in before if not w[0])
    until = first_ok[2] if first_ok else float("inf")
    failed = [w for w in after if not w[0] and w[2] <= until]
    res["failed_writes_until_then"] = len(failed)
    kinds = {}
    for w in failed:
        kinds[w[4]] = kinds.get(w[4], 0) + 1
    res["failure_kinds"] = kinds
    res["timed_out_writes"] = sum(1 for w in failed if "timeout" in w[4])

    t0 = time.monotonic()
    system.restart(lead)
    if not mb.wait_until(lambda: (system.cl.check_alive(), system.caught_up(lead))[1], 90, 0.1):
        raise RuntimeError("%s: restarted %s did not catch up within 90 s:\n%s" % (
            system.label, lead.name, mb.tail(lead.log)))
    res["rejoin_s"] = time.monotonic() - t0
    return res


# ---------------------------------------------------------------------------
# the report
# ---------------------------------------------------------------------------


def med(xs):
    return mb.med(xs)


def fmt(v, digits=1):
    if v is None:
        return "-"
    return "%.*f" % (digits, v)


def ratio(t, e):
    return "%.2f×" % (t / e) if t is not None and e else "-"


def summarize(out):
    """Rows (what, Troupe, etcd, Troupe ÷ etcd) from the samples; medians over repetitions."""
    rows = []
    seq = {s: [r for r in out["sequential"] if r["system"] == s] for s in ("Troupe", "etcd")}
    for q in ("median", "p90", "p99", "max"):
        t = med([r["latency_ms"][q] for r in seq["Troupe"]])
        e = med([r["latency_ms"][q] for r in seq["etcd"]])
        rows.append(("sequential write latency, %s (ms; 1 client, to the leader)" % q, t, e, ratio(t, e), 2))
    t, e = med([r["throughput"] for r in seq["Troupe"]]), med([r["throughput"] for r in seq["etcd"]])
    rows.append(("sequential writes per second (1 client)", t, e, ratio(t, e), 0))
    for n in sorted({r["clients"] for r in out["throughput"]}):
        rs = {s: [r for r in out["throughput"] if r["system"] == s and r["clients"] == n] for s in ("Troupe", "etcd")}
        t, e = med([r["throughput"] for r in rs["Troupe"]]), med([r["throughput"] for r in rs["etcd"]])
        rows.append(("throughput, %d clients (writes/s)" % n, t, e, ratio(t, e), 0))
        for q in ("median", "p99"):
            t = med([r["latency_ms"][q] for r in rs["Troupe"]])
            e = med([r["latency_ms"][q] for r in rs["etcd"]])
            rows.append(("  latency %s at %d clients (ms)" % (q, n), t, e, ratio(t, e), 1))
        t = med([r["cpu_ms_per_write"] for r in rs["Troupe"]])
        e = med([r["cpu_ms_per_write"] for r in rs["etcd"]])
        rows.append(("  CPU per write, 3 members together (ms)", t, e, ratio(t, e), 3))
        t = med([r["cpu_s_leader"] / r["elapsed_s"] for r in rs["Troupe"] if r["cpu_s_leader"] is not None])
        e = med([r["cpu_s_leader"] / r["elapsed_s"] for r in rs["etcd"] if r["cpu_s_leader"] is not None])
        rows.append(("  leader's CPU use (cores)", t, e, ratio(t, e), 2))
        t = med([r["errors"] for r in rs["Troupe"]])
        e = med([r["errors"] for r in rs["etcd"]])
        rows.append(("  errors (writes that failed)", t, e, "", 0))
        t = med([r["reconnects"] for r in rs["Troupe"]])
        e = med([r["reconnects"] for r in rs["etcd"]])
        rows.append(("  reconnects (server closed a kept-alive connection)", t, e, "", 0))
    qa = {s: [r for r in out.get("quickack", []) if r["system"] == s] for s in ("Troupe", "etcd")}
    for name, pick, key, digits in (
            ("diagnostic, client ACKs at once: sequential latency median (ms)", 1, "median", 2),
            ("diagnostic, client ACKs at once: sequential latency p99 (ms)", 1, "p99", 2)):
        t = med([r["latency_ms"][key] for r in qa["Troupe"] if r["clients"] == pick])
        e = med([r["latency_ms"][key] for r in qa["etcd"] if r["clients"] == pick])
        if t is not None or e is not None:
            rows.append((name, t, e, ratio(t, e), digits))
    for n in sorted({r["clients"] for r in out.get("quickack", []) if r["clients"] > 1}):
        t = med([r["throughput"] for r in qa["Troupe"] if r["clients"] == n])
        e = med([r["throughput"] for r in qa["etcd"] if r["clients"] == n])
        rows.append(("diagnostic, client ACKs at once: throughput, %d clients (writes/s)" % n, t, e, ratio(t, e), 0))
        t = med([r["latency_ms"]["median"] for r in qa["Troupe"] if r["clients"] == n])
        e = med([r["latency_ms"]["median"] for r in qa["etcd"] if r["clients"] == n])
        rows.append(("  latency median at %d clients (ms)" % n, t, e, ratio(t, e), 1))
    fo = {s: [r for r in out["failover"] if r["system"] == s] for s in ("Troupe", "etcd")}
    for key, name in (("kill_to_write_ms", "failover: kill -9 of the leader → next write succeeds (ms, median)"),
                      ("kill_to_leader_ms", "failover: kill -9 → a survivor reports a new leader (ms, median)")):
        t, e = med([r[key] for r in fo["Troupe"]]), med([r[key] for r in fo["etcd"]])
        rows.append((name, t, e, ratio(t, e), 0))
        t = max([r[key] for r in fo["Troupe"] if r[key] is not None], default=None)
        e = max([r[key] for r in fo["etcd"] if r[key] is not None], default=None)
        rows.append(("  slowest round (ms)", t, e, ratio(t, e), 0))
    t, e = med([r["failed_writes_until_then"] for r in fo["Troupe"]]), \
        med([r["failed_writes_until_then"] for r in fo["etcd"]])
    rows.append(("  failed or timed-out writes before it (median)", t, e, "", 0))
    return rows


def print_report(out):
    rows = summarize(out)
    print()
    print("| what | Troupe | etcd | Troupe ÷ etcd |")
    print("| --- | ---: | ---: | ---: |")
    for name, t, e, r, digits in rows:
        if t is None and e is None:
            continue
        print("| %s | %s | %s | %s |" % (name, fmt(t, digits), fmt(e, digits), r))
    fo = out["failover"]
    for s in ("Troupe", "etcd"):
        rs = [r for r in fo if r["system"] == s]
        if rs:
            print("%s failover rounds, kill → write (kill → leader seen), ms: %s" % (s, ", ".join(
                "%s (%s)" % (fmt(r["kill_to_write_ms"], 0), fmt(r["kill_to_leader_ms"], 0)) for r in rs)))
    goals = []
    for n in sorted({r["clients"] for r in out["throughput"]}):
        t = med([r["throughput"] for r in out["throughput"] if r["system"] == "Troupe" and r["clients"] == n])
        e = med([r["throughput"] for r in out["throughput"] if r["system"] == "etcd" and r["clients"] == n])
        if t is not None and e:
            goals.append("throughput at %d clients >= etcd's: %s (%.2f×)" % (n, "yes" if t >= e else "NO", t / e))
    tf = [r["kill_to_write_ms"] for r in fo if r["system"] == "Troupe"]
    if tf:
        ok = [v for v in tf if v is not None and v < 1500]
        goals.append("Troupe failover under 1.5 s: median %s ms, %d of %d rounds under 1.5 s" % (
            fmt(med(tf), 0), len(ok), len(tf)))
    if goals:
        print("\nGoals (issue 5): " + "; ".join(goals))


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--troupe", default=os.path.join(repo, "build/kvbench-rel/tools/troupe"),
                    help="the troupe binary (default build/kvbench-rel/tools/troupe)")
    ap.add_argument("--kv-load", default=os.path.join(repo, "build/kvbench-rel/tests/kv_load"),
                    help="the load client (default build/kvbench-rel/tests/kv_load)")
    ap.add_argument("--etcd", default=shutil.which("etcd") or "/usr/bin/etcd",
                    help="the etcd binary (Debian package etcd-server)")
    ap.add_argument("--seq-ops", type=int, default=2000, help="timed sequential writes (2000)")
    ap.add_argument("--seq-warmup", type=int, default=200, help="unrecorded sequential writes first (200)")
    ap.add_argument("--clients", default="8,64", help="concurrent clients of the throughput runs (8,64)")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of one throughput run (10)")
    ap.add_argument("--reps", type=int, default=2, help="throughput runs per client count and system (2)")
    ap.add_argument("--rounds", type=int, default=5, help="failover rounds per system (5)")
    ap.add_argument("--value-size", type=int, default=256, help="bytes per value (256)")
    ap.add_argument("--failover-timeout-ms", type=int, default=250,
                    help="the failover writer gives up on a write after this long and tries the next member (250)")
    ap.add_argument("--systems", default="troupe,etcd", help="troupe, etcd or both (troupe,etcd)")
    ap.add_argument("--phases", default="sequential,throughput,quickack,failover", help="which phases to run (all)")
    ap.add_argument("--json", help="write every sample to this file")
    ap.add_argument("--keep-logs", help="copy every member's log into this directory")
    ap.add_argument("--report", metavar="JSON", help="print the table of an earlier run's --json file; run nothing")
    opts = ap.parse_args()
    if opts.report:
        with open(opts.report) as f:
            print_report(json.load(f))
        return 0

    opts.troupe, opts.kv_load, opts.etcd = (os.path.abspath(b) for b in (opts.troupe, opts.kv_load, opts.etcd))
    want = [s.strip() for s in opts.systems.split(",") if s.strip()]
    phases = [p.strip() for p in opts.phases.split(",") if p.strip()]
    for b, what in ((opts.kv_load, "cmake --build BUILD --target kv_load"),
                    (opts.troupe if "troupe" in want else None, "cmake --build BUILD --target troupe"),
                    (opts.etcd if "etcd" in want else None, "apt-get install etcd-server")):
        if b and not os.access(b, os.X_OK):
            sys.exit("raft_bench: %s is missing (%s)" % (b, what))

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, mb.on_signal)
    root = tempfile.mkdtemp(prefix="troupe-raftbench.", dir=os.environ.get("TMPDIR", "/tmp"))

    def cleanup():
        mb.stop_procs(list(mb.PROCS))
        shutil.rmtree(root, ignore_errors=True)

    atexit.register(cleanup)
    out = {"config": dict(vars(opts)), "machine": machine_info(opts), "sequential": [], "throughput": [],
           "quickack": [], "failover": []}
    out["config"]["started_unix"] = time.time()
    code = 0
    systems = []
    try:
        out["machine"]["fdatasync_ms_before"] = fdatasync_ms(root)
        for cls, binary, key in ((TroupeSystem, opts.troupe, "troupe"), (EtcdSystem, opts.etcd, "etcd")):
            if key in want:
                t = time.monotonic()
                s = start_system(cls, binary, root, systems)
                print("%s: 3 members up, leader %s (%.1f s)" % (s.label, wait_leader(s).name, time.monotonic() - t),
                      flush=True)

        def turns(i):
            return systems if i % 2 == 0 else list(reversed(systems))

        if "sequential" in phases:
            for s in turns(0):
                r = run_load(s, opts, 1, ops=opts.seq_ops, warmup=opts.seq_warmup)
                out["sequential"].append(dict(r, system=s.label))
                print("sequential %-6s %d writes, median %.2f ms, p99 %.2f ms, max %.1f ms, %d errors" % (
                    s.label, r["ok"], r["latency_ms"]["median"], r["latency_ms"]["p99"], r["latency_ms"]["max"],
                    r["errors"]), flush=True)
        if "throughput" in phases:
            i = 0
            for rep in range(opts.reps):
                for n in [int(x) for x in opts.clients.split(",") if x]:
                    for s in turns(i):
                        r = run_load(s, opts, n, seconds=opts.seconds, warmup=5)
                        out["throughput"].append(dict(r, system=s.label, rep=rep))
                        print("throughput %-6s %2d clients: %.0f writes/s, median %.1f ms, p99 %.1f ms, "
                              "%d errors, %d reconnects, CPU %.3f ms/write" % (
                                  s.label, n, r["throughput"], r["latency_ms"]["median"], r["latency_ms"]["p99"],
                                  r["errors"], r["reconnects"], r["cpu_ms_per_write"] or 0), flush=True)
                    i += 1
        if "quickack" in phases:
            for i, (n, kw) in enumerate([(1, {"ops": opts.seq_ops, "warmup": opts.seq_warmup})] +
                                        [(int(x), {"seconds": opts.seconds, "warmup": 5})
                                         for x in opts.clients.split(",") if x]):
                for s in turns(i):
                    r = run_load(s, opts, n, quickack=True, **kw)
                    out["quickack"].append(dict(r, system=s.label))
                    print("quickack   %-6s %2d client%s: %.0f writes/s, median %.2f ms, p99 %.2f ms, %d errors" % (
                        s.label, n, " " if n == 1 else "s", r["throughput"], r["latency_ms"]["median"],
                        r["latency_ms"]["p99"], r["errors"]), flush=True)
        if "failover" in phases:
            for rnd in range(opts.rounds):
                for s in turns(rnd):
                    r = failover_round(s, opts, rnd)
                    out["failover"].append(r)
                    print("failover %-6s round %d: killed %s, next write after %s ms, new leader seen after %s ms, "
                          "%d failed writes between (%s); rejoined in %.1f s" % (
                              s.label, rnd + 1, r["killed"], fmt(r["kill_to_write_ms"], 0),
                              fmt(r["kill_to_leader_ms"], 0), r["failed_writes_until_then"],
                              ", ".join("%d × %s" % (v, k) for k, v in r["failure_kinds"].items()) or "none",
                              r["rejoin_s"]), flush=True)
        out["machine"]["fdatasync_ms_after"] = fdatasync_ms(root)
    except (KeyboardInterrupt, mb.Interrupted) as e:
        print("\ninterrupted (%s): cleaning up" % (e or "Ctrl-C"), file=sys.stderr)
        code = 130
    except Exception as e:  # noqa: BLE001 - report, clean up, exit non-zero
        print("raft_bench: error: %s" % e, file=sys.stderr)
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for s in systems:
            s.cl.keep_logs(opts.keep_logs, s.label.lower())
        cleanup()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)

    if out["sequential"] or out["throughput"] or out["quickack"] or out["failover"]:
        print_report(out)
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump(out, f, indent=1, default=str)
        print("\nall samples: " + opts.json)
    return code


def start_system(cls, binary, root, systems):
    """Starts one system's three members (after the other system's are up,
    so that free_port sees their ports taken) and appends it to `systems`.
    A port that another process took before a member bound it costs a new
    set of ports, twice at most."""
    for attempt in range(3):
        s = cls(binary, root)
        systems.append(s)
        try:
            s.start()
            return s
        except mb.AgentExited as e:
            if not e.port_taken() or attempt == 2:
                raise
            s.cl.stop()
            systems.remove(s)
            print("  (%s: a port was taken before a member bound it; starting on other ports)" % s.label, flush=True)
    raise AssertionError("unreachable")


def machine_info(opts):
    info = {"nproc": os.cpu_count(), "kernel": os.uname().release, "python": sys.version.split()[0],
            "loadavg_start": mb.loadavg(), "troupe_binary": opts.troupe,
            "troupe_binary_mtime": time.ctime(os.path.getmtime(opts.troupe)) if os.path.exists(opts.troupe) else None}
    try:
        r = subprocess.run([opts.etcd, "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        info["etcd_version"] = r.stdout.splitlines()[0] if r.stdout else None
    except OSError:
        pass
    try:
        r = subprocess.run(["git", "-C", os.path.dirname(os.path.abspath(__file__)), "describe", "--always",
                            "--dirty"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        info["troupe_commit"] = r.stdout.strip()
    except OSError:
        pass
    return info


if __name__ == "__main__":
    sys.exit(main())
