#!/usr/bin/env python3
"""Membership benchmark: Troupe's SWIM + Lifeguard against HashiCorp Serf.

Both run side by side in the same run, on loopback, each with its default LAN
settings (Troupe: `--gossip-profile lan`, the default; Serf: `-profile=lan`,
its default). For each cluster size N and each round it measures, for one
side and then the other (the order alternates per round):

  join      the seed runs alone; then the other N-1 agents are started at
            once, each joining through the seed. Time from the first of those
            spawns until the seed lists all N members alive, and until every
            agent does (both polled the same way on both sides).
  RSS       VmRSS of every agent process, after the cluster settled.
  failure   one agent other than the seed is killed with SIGKILL. Time until
            the first and until the last of the N-1 others mark it failed.
            Taken from each agent's own events (Troupe: the `atMs` of its
            `failed` member event; Serf: the moment its `serf monitor` stream
            delivers `EventMemberFailed`), and cross-checked by polling every
            agent's member list on both sides alike.

Then, for each size in --loss-sizes, a loss phase per side inside a network
namespace that this script creates (never on the host's lo): the cluster
joins without loss, then 10% loss is put on the namespace's lo for
--loss-seconds (`tc ... netem loss 10%`; where the kernel lacks sch_netem, an
nftables rule in the namespace that drops 10% of the packets at random), and
every member marked failed (all were alive: nothing was killed) is a false
positive.

Python 3 standard library only. Needs root for the loss phase (netns, tc);
without it that phase is skipped with the reason. Every process, temporary dir
and namespace this script makes is removed at the end, also on failure and on
Ctrl-C or SIGTERM.

  tests/bench/membership_bench.py --troupe build/bench-rel/tools/troupe \\
      --troupectl build/bench-rel/tools/troupectl --json /tmp/membership.json
"""

import argparse
import ctypes
import http.client
import json
import os
import random
import re
import secrets
import select
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time

# Every Troupe cluster of a benchmark bootstraps with this management token
# (--management-token-file); troupectl children read it from TROUPE_TOKEN and
# the scripts' own requests send AUTH.
BENCH_TOKEN = os.environ.get("TROUPE_TOKEN") or "trp_bench_" + secrets.token_hex(16)
os.environ["TROUPE_TOKEN"] = BENCH_TOKEN
AUTH = {"Authorization": "Bearer " + BENCH_TOKEN}

# ---------------------------------------------------------------------------
# msgpack, just enough for Serf's RPC protocol
# ---------------------------------------------------------------------------


def mp_pack(obj):
    if obj is None:
        return b"\xc0"
    if obj is True:
        return b"\xc3"
    if obj is False:
        return b"\xc2"
    if isinstance(obj, int):
        if 0 <= obj < 0x80:
            return bytes([obj])
        if 0 <= obj < 1 << 32:
            return b"\xce" + struct.pack(">I", obj)
        if 0 <= obj < 1 << 64:
            return b"\xcf" + struct.pack(">Q", obj)
        if -32 <= obj < 0:
            return struct.pack(">b", obj)
        return b"\xd3" + struct.pack(">q", obj)
    if isinstance(obj, str):
        b = obj.encode()
        if len(b) < 32:
            return bytes([0xA0 | len(b)]) + b
        if len(b) < 256:
            return b"\xd9" + bytes([len(b)]) + b
        return b"\xda" + struct.pack(">H", len(b)) + b
    if isinstance(obj, (bytes, bytearray)):
        return b"\xc4" + bytes([len(obj)]) + bytes(obj) if len(obj) < 256 else \
            b"\xc5" + struct.pack(">H", len(obj)) + bytes(obj)
    if isinstance(obj, (list, tuple)):
        head = bytes([0x90 | len(obj)]) if len(obj) < 16 else b"\xdc" + struct.pack(">H", len(obj))
        return head + b"".join(mp_pack(x) for x in obj)
    if isinstance(obj, dict):
        head = bytes([0x80 | len(obj)]) if len(obj) < 16 else b"\xde" + struct.pack(">H", len(obj))
        return head + b"".join(mp_pack(k) + mp_pack(v) for k, v in obj.items())
    raise TypeError("cannot pack %r" % type(obj))


class Incomplete(Exception):
    """The buffer ends inside an object: read more."""


def mp_unpack(buf, pos=0):
    """Decodes one object at buf[pos:]; returns (object, next position)."""

    def need(n):
        if pos + n > len(buf):
            raise Incomplete()

    need(1)
    b = buf[pos]
    pos += 1

    def take(n):
        nonlocal pos
        need(n)
        out = buf[pos:pos + n]
        pos += n
        return out

    def seq(count, is_map):
        nonlocal pos
        if is_map:
            out = {}
            for _ in range(count):
                k, pos = mp_unpack(buf, pos)
                v, pos = mp_unpack(buf, pos)
                out[k.decode("utf-8", "replace") if isinstance(k, bytes) else k] = v
            return out
        out = []
        for _ in range(count):
            v, pos = mp_unpack(buf, pos)
            out.append(v)
        return out

    if b < 0x80:
        return b, pos
    if b >= 0xE0:
        return b - 0x100, pos
    if 0x80 <= b <= 0x8F:
        return seq(b & 0x0F, True), pos
    if 0x90 <= b <= 0x9F:
        return seq(b & 0x0F, False), pos
    if 0xA0 <= b <= 0xBF:
        return take(b & 0x1F).decode("utf-8", "replace"), pos
    if b == 0xC0:
        return None, pos
    if b == 0xC2:
        return False, pos
    if b == 0xC3:
        return True, pos
    if b in (0xC4, 0xC5, 0xC6):  # bin 8/16/32
        n = struct.unpack(">" + "BHI"[b - 0xC4], take(1 << (b - 0xC4)))[0]
        return bytes(take(n)), pos
    if b in (0xC7, 0xC8, 0xC9):  # ext 8/16/32
        n = struct.unpack(">" + "BHI"[b - 0xC7], take(1 << (b - 0xC7)))[0]
        take(1 + n)
        return None, pos
    if b == 0xCA:
        return struct.unpack(">f", take(4))[0], pos
    if b == 0xCB:
        return struct.unpack(">d", take(8))[0], pos
    if 0xCC <= b <= 0xCF:
        n = 1 << (b - 0xCC)
        return int.from_bytes(take(n), "big"), pos
    if 0xD0 <= b <= 0xD3:
        n = 1 << (b - 0xD0)
        return int.from_bytes(take(n), "big", signed=True), pos
    if 0xD4 <= b <= 0xD8:  # fixext
        take(1 + (1 << (b - 0xD4)))
        return None, pos
    if b in (0xD9, 0xDA, 0xDB):  # str 8/16/32
        n = struct.unpack(">" + "BHI"[b - 0xD9], take(1 << (b - 0xD9)))[0]
        return take(n).decode("utf-8", "replace"), pos
    if b in (0xDC, 0xDD):
        n = struct.unpack(">H" if b == 0xDC else ">I", take(2 if b == 0xDC else 4))[0]
        return seq(n, False), pos
    if b in (0xDE, 0xDF):
        n = struct.unpack(">H" if b == 0xDE else ">I", take(2 if b == 0xDE else 4))[0]
        return seq(n, True), pos
    raise ValueError("bad msgpack byte 0x%02x" % b)


class SerfRPC:
    """One connection to a Serf agent's RPC port (msgpack over TCP)."""

    def __init__(self, port, timeout=2.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.seq = 0
        self.call("handshake", {"Version": 1})

    def send(self, command, body=None):
        self.seq += 1
        data = mp_pack({"Command": command, "Seq": self.seq})
        if body is not None:
            data += mp_pack(body)
        self.sock.sendall(data)
        return self.seq

    def read(self):
        while True:
            try:
                obj, pos = mp_unpack(self.buf)
                self.buf = self.buf[pos:]
                return obj
            except Incomplete:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("serf rpc closed")
                self.buf += chunk

    def call(self, command, body=None, has_reply_body=False):
        self.send(command, body)
        head = self.read()
        if head.get("Error"):
            raise RuntimeError("serf rpc %s: %s" % (command, head["Error"]))
        return self.read() if has_reply_body else None

    def members(self):
        return self.call("members", None, True)["Members"]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ---------------------------------------------------------------------------
# processes, ports, cleanup
# ---------------------------------------------------------------------------

PROCS = []          # every agent Popen this script started
NOW_NETNS = None    # name of the namespace we created, if any


def now_ms():
    return time.time() * 1000.0


def port_range():
    """Ports below the kernel's ephemeral range, so that no outgoing
    connection (ours or an agent's) takes a port between check and bind."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return (10000, low - 1) if low > 12000 else (low // 2, low - 1)


def free_port(used):
    """A port free for TCP and UDP on 127.0.0.1 (in the current netns)."""
    lo, hi = port_range()
    for _ in range(2000):
        p = random.randint(lo, hi)
        if p in used:
            continue
        ok = True
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
            s = socket.socket(socket.AF_INET, kind)
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                ok = False
            finally:
                s.close()
        if ok:
            used.add(p)
            return p
    raise RuntimeError("no free port")


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def memory_of(pid):
    """VmRSS and its anon/file parts (status), PSS (smaps_rollup), threads; KiB."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                key = line.split(":")[0]
                if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem", "Threads"):
                    out[key] = int(line.split()[1])
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    out["Pss"] = int(line.split()[1])
    except OSError:
        pass
    return out


def threads_of(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def remove_empty_cgroup_parents(log):
    """A Troupe agent makes its cgroup parent (troupe-<node id>) at start and
    removes it when it stops cleanly; one killed with SIGKILL cannot. Its
    node id is in its log ("starting name=... id=..."). Only empty
    directories go (rmdir): nothing that still runs is touched."""
    ids = set()
    try:
        with open(log, errors="replace") as f:
            for line in f:
                at = line.find("starting name=")
                key = line.find(" id=", at) if at >= 0 else -1
                if key >= 0:
                    ids.add(line[key + 4:].split()[0])
    except OSError:
        return
    for nid in ids:
        name = "troupe-" + nid[:12]
        for d in [os.path.join("/sys/fs/cgroup", h, name) for h in os.listdir("/sys/fs/cgroup")] + \
                 [os.path.join("/sys/fs/cgroup", name)]:
            try:
                os.rmdir(d)
            except OSError:
                pass


def stop_procs(procs, grace=5.0):
    """SIGTERM each by pid, SIGKILL what is left after `grace` seconds."""
    live = [p for p in procs if p.poll() is None]
    for p in live:
        try:
            os.kill(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(p.poll() is None for p in live):
        time.sleep(0.05)
    for p in live:
        if p.poll() is None:
            try:
                os.kill(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        if p in PROCS:
            PROCS.remove(p)


# ---------------------------------------------------------------------------
# network namespace (loss phase only)
# ---------------------------------------------------------------------------

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def spawn_logged(cmd, log, cwd):
    """Starts cmd in a session of its own, its output appended to log;
    recorded in PROCS so that stop_procs ends it."""
    logf = open(log, "ab")
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                                cwd=cwd, start_new_session=True)
    finally:
        logf.close()
    PROCS.append(proc)
    return proc


def run_quiet(args, stdin=None):
    try:
        r = subprocess.run(args, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except FileNotFoundError as e:
        return 127, str(e)
    return r.returncode, r.stdout.strip()


NFT_TABLE = "troupe_bench_loss"


class Netns:
    """A network namespace of our own: `ip netns add troupe-bench-PID`. Loss
    on its lo comes from `tc ... netem loss P%`, or, where the kernel has no
    sch_netem, from an nftables rule in the namespace that drops a random P%
    of the packets on the input hook (silently, like netem: a drop on the
    output hook would fail the sender's sendto with EPERM instead)."""

    def __init__(self):
        self.name = "troupe-bench-%d" % os.getpid()
        self.host_fd = None
        self.entered = False
        self.method = None

    def exec(self, *args):
        return ["ip", "netns", "exec", self.name] + list(args)

    def create(self):
        """Returns None, or why the loss phase cannot run."""
        global NOW_NETNS
        if os.geteuid() != 0:
            return "needs root (ip netns, tc or nft)"
        if not shutil.which("ip"):
            return "ip is missing (apt-get install iproute2)"
        rc, out = run_quiet(["ip", "netns", "add", self.name])
        if rc != 0:
            return "ip netns add failed: " + out
        NOW_NETNS = self.name
        rc, out = run_quiet(self.exec("ip", "link", "set", "lo", "up"))
        if rc != 0:
            return "ip link set lo up in the namespace failed: " + out
        probe = self.exec("tc", "qdisc", "add", "dev", "lo", "root", "netem", "loss", "0%")
        rc, why_netem = run_quiet(probe)
        if rc != 0:
            run_quiet(["modprobe", "sch_netem"])
            rc, why_netem = run_quiet(probe)
        if rc == 0:
            run_quiet(self.exec("tc", "qdisc", "del", "dev", "lo", "root"))
            self.method = "netem"
            return None
        rc, why_nft = run_quiet(self.exec("nft", "-f", "-"), self.nft_rules(0))
        if rc == 0:
            run_quiet(self.exec("nft", "delete", "table", "inet", NFT_TABLE))
            self.method = "nftables"
            print("tc netem is unavailable (%s); using an nftables random drop in the namespace instead"
                  % (why_netem.splitlines()[-1] if why_netem else "?"), flush=True)
            return None
        return "no way to make loss: tc netem: %s; nft: %s (apt-get install iproute2 nftables)" % (
            why_netem, why_nft)

    @staticmethod
    def nft_rules(percent):
        per_mille = int(round(percent * 10))
        return ("table inet %s {\n chain input {\n  type filter hook input priority 0; policy accept;\n"
                "  counter\n  numgen random mod 1000 < %d counter drop\n }\n}\n" % (NFT_TABLE, per_mille))

    def set_loss(self, percent):
        """Puts `percent` loss on the namespace's lo, or (0) removes it. On
        removal with nftables, returns {"packets", "dropped"} it counted."""
        if self.method == "netem":
            args = self.exec("tc", "qdisc")
            if percent:
                rc, out = run_quiet(args + ["add", "dev", "lo", "root", "netem", "loss", "%g%%" % percent])
            else:
                rc, out = run_quiet(args + ["del", "dev", "lo", "root"])
            if rc != 0:
                raise RuntimeError("tc failed: " + out)
            return None
        if percent:
            rc, out = run_quiet(self.exec("nft", "-f", "-"), self.nft_rules(percent))
            if rc != 0:
                raise RuntimeError("nft failed: " + out)
            return None
        rc, listing = run_quiet(self.exec("nft", "list", "table", "inet", NFT_TABLE))
        counts = [int(x) for x in re.findall(r"counter packets (\d+)", listing)] if rc == 0 else []
        rc, out = run_quiet(self.exec("nft", "delete", "table", "inet", NFT_TABLE))
        if rc != 0:
            raise RuntimeError("nft failed: " + out)
        return {"packets": counts[0], "dropped": counts[1]} if len(counts) == 2 else None

    def enter(self):
        """Moves this (main) thread into the namespace: the harness's own
        sockets, and every child it spawns, are then inside it."""
        self.host_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        fd = os.open("/var/run/netns/" + self.name, os.O_RDONLY)
        try:
            if _libc.setns(fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns into " + self.name)
        finally:
            os.close(fd)
        self.entered = True

    def leave(self):
        if self.entered and self.host_fd is not None:
            if _libc.setns(self.host_fd, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back to the host namespace")
            self.entered = False
        if self.host_fd is not None:
            os.close(self.host_fd)
            self.host_fd = None

    def destroy(self):
        global NOW_NETNS
        try:
            self.leave()
        except OSError as e:
            print("warning: %s" % e, file=sys.stderr)
        if NOW_NETNS:
            # Any process still inside is ours: end it by pid before deleting.
            rc, out = run_quiet(["ip", "netns", "pids", self.name])
            for pid in out.split() if rc == 0 else []:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ValueError, ProcessLookupError):
                    pass
            rc, out = run_quiet(["ip", "netns", "del", self.name])
            if rc != 0:
                print("warning: ip netns del %s: %s" % (self.name, out), file=sys.stderr)
            NOW_NETNS = None


# ---------------------------------------------------------------------------
# the two sides
# ---------------------------------------------------------------------------


class Agent:
    def __init__(self, side, idx, name, ports, workdir):
        self.side, self.idx, self.name, self.ports, self.dir = side, idx, name, ports, workdir
        self.proc = None
        self.log = os.path.join(workdir, "agent.log")
        self.conn = None  # HTTPConnection or SerfRPC, lazily
        self.timeout = 2.0  # per request, seconds

    @property
    def pid(self):
        return self.proc.pid

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except Exception:
                pass
            self.conn = None


class TroupeSide:
    label = "Troupe"
    prefix = "n"

    def __init__(self, binary, ctl):
        self.binary, self.ctl = binary, ctl

    def ports(self, used):
        return {"gossip": free_port(used), "rpc": free_port(used), "http": free_port(used)}

    def gossip_port(self, agent):
        return agent.ports["gossip"]

    def command(self, agent, seed):
        cmd = [self.binary, "agent", "--name", agent.name, "--data-dir", os.path.join(agent.dir, "data"),
               "--bind", "127.0.0.1", "--gossip-port", str(agent.ports["gossip"]),
               "--rpc-port", str(agent.ports["rpc"]), "--http-port", str(agent.ports["http"]),
               "--driver", "process"]
        if seed is not None:
            cmd += ["--seed", "127.0.0.1:%d" % self.gossip_port(seed)]
        else:
            token_file = os.path.join(agent.dir, "management-token")
            with open(token_file, "w") as f:
                f.write(BENCH_TOKEN + "\n")
            cmd += ["--management-token-file", token_file]
        return cmd

    def get(self, agent, path, timeout=None):
        """GET as JSON, or None. A kept-alive connection that the server
        closed in the meantime is retried once on a new connection."""
        timeout = timeout or agent.timeout
        for attempt in (0, 1):
            reused = agent.conn is not None
            try:
                if agent.conn is None:
                    agent.conn = http.client.HTTPConnection("127.0.0.1", agent.ports["http"], timeout=timeout)
                agent.conn.timeout = timeout
                if agent.conn.sock is not None:
                    agent.conn.sock.settimeout(timeout)
                agent.conn.request("GET", path, headers=AUTH)
                resp = agent.conn.getresponse()
                body = resp.read()
                if resp.status != 200:
                    return None
                return json.loads(body)
            except (OSError, http.client.HTTPException, ValueError):
                agent.close()
                if not reused or isinstance(sys.exc_info()[1], socket.timeout):
                    return None
        return None

    def members(self, agent):
        """{name: alive|suspect|failed|left}, or None if the agent does not answer."""
        doc = self.get(agent, "/v1/members")
        if doc is None:
            return None
        norm = {"dead": "failed"}
        return {m["name"]: norm.get(m.get("state"), m.get("state")) for m in doc.get("members", [])}

    def health(self, agent):
        """Lifeguard's local health (awareness) score; 0 is healthy."""
        doc = self.get(agent, "/v1/members")
        return None if doc is None else int(doc.get("healthScore", 0))

    def events(self, agent):
        """Member events [(unix ms, kind, subject)], read back from the agent."""
        doc = self.get(agent, "/v1/events?kind=member", timeout=max(agent.timeout, 10.0))
        if doc is None:
            return None
        return [(int(e["atMs"]), e["kind"], e["member"]["name"]) for e in doc.get("events", [])]

    def count_log(self, agent, offset):
        """Suspect/failed lines in the agent's log after byte `offset`."""
        out = {"suspect": [], "failed": [], "refute": 0}
        with open(agent.log, errors="replace") as f:
            f.seek(offset)
            for line in f:
                m = re.search(r"member_(suspect|failed) name=(\S+)(?: address=\S+ incarnation=(\d+))?", line)
                if m and m.group(1) == "failed":
                    out["failed"].append(m.group(2))
                elif m:  # the same suspicion reaches every agent: name#incarnation tells episodes apart
                    out["suspect"].append("%s#%s" % (m.group(2), m.group(3)))
        return out


class SerfSide:
    label = "Serf"
    prefix = "s"

    def __init__(self, binary):
        self.binary = binary

    def ports(self, used):
        return {"bind": free_port(used), "rpc": free_port(used)}

    def gossip_port(self, agent):
        return agent.ports["bind"]

    def command(self, agent, seed):
        # Defaults otherwise: profile lan, no -discover (no mDNS), no snapshot.
        cmd = [self.binary, "agent", "-node=" + agent.name, "-bind=127.0.0.1:%d" % agent.ports["bind"],
               "-rpc-addr=127.0.0.1:%d" % agent.ports["rpc"]]
        if seed is not None:
            cmd.append("-join=127.0.0.1:%d" % self.gossip_port(seed))
        return cmd

    def members(self, agent):
        try:
            if agent.conn is None:
                agent.conn = SerfRPC(agent.ports["rpc"], agent.timeout)
            ms = agent.conn.members()
        except (OSError, ConnectionError, RuntimeError, ValueError):
            agent.close()
            return None
        norm = {"leaving": "left"}
        return {m["Name"]: norm.get(m["Status"], m["Status"]) for m in ms}

    def health(self, agent):
        """memberlist's awareness score from `serf info` (RPC "stats"); 0 is healthy."""
        try:
            if agent.conn is None:
                agent.conn = SerfRPC(agent.ports["rpc"], agent.timeout)
            st = agent.conn.call("stats", None, True)
            return int(st["serf"]["health_score"])
        except (OSError, ConnectionError, RuntimeError, ValueError, KeyError, TypeError):
            agent.close()
            return None

    def count_log(self, agent, offset):
        out = {"suspect": [], "failed": [], "refute": 0}
        with open(agent.log, errors="replace") as f:
            f.seek(offset)
            for line in f:
                m = re.search(r"serf: EventMemberFailed: (\S+)", line)
                if m:
                    out["failed"].append(m.group(1))
                    continue
                m = re.search(r"memberlist: Suspect (\S+) has failed", line)
                if m:
                    out["suspect"].append(m.group(1))
                elif "memberlist: Refuting a " in line:
                    out["refute"] += 1
        return out


SERF_LINE = [
    ("failed", re.compile(r"serf: EventMemberFailed: (\S+)")),
    ("suspect", re.compile(r"memberlist: Suspect (\S+) has failed")),
    ("joined", re.compile(r"serf: EventMemberJoin: (\S+)")),
]


class SerfMonitor:
    """`serf monitor` streams of many agents, read by one thread that stamps
    each log line with the moment it arrived (Serf's own log timestamps have
    one-second resolution; its event handlers and RPC event streams are
    coalesced for up to 3 s, so neither can time a failure)."""

    def __init__(self):
        self.events = []  # (unix ms at receipt, observer, kind, subject)
        self.lock = threading.Lock()
        self.conns = {}
        self.stop = False
        self.thread = None

    def add(self, agent):
        rpc = SerfRPC(agent.ports["rpc"])
        seq = rpc.send("monitor", {"LogLevel": "INFO"})
        head = rpc.read()
        if head.get("Error"):
            raise RuntimeError("serf monitor: " + head["Error"])
        rpc.sock.setblocking(False)
        with self.lock:
            self.conns[rpc.sock.fileno()] = (agent.name, rpc, seq)
        if self.thread is None:
            self.thread = threading.Thread(target=self.loop, daemon=True)
            self.thread.start()

    def loop(self):
        while not self.stop:
            with self.lock:
                fds = list(self.conns)
            if not fds:
                time.sleep(0.01)
                continue
            try:
                ready, _, _ = select.select(fds, [], [], 0.05)
            except (OSError, ValueError):
                continue
            for fd in ready:
                at = now_ms()
                with self.lock:
                    entry = self.conns.get(fd)
                if entry is None:
                    continue
                name, rpc, _ = entry
                try:
                    chunk = rpc.sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    chunk = b""
                if not chunk:
                    with self.lock:
                        self.conns.pop(fd, None)
                    continue
                rpc.buf += chunk
                while True:  # header, then body {"Log": line}
                    try:
                        _, p1 = mp_unpack(rpc.buf)
                        body, p2 = mp_unpack(rpc.buf, p1)
                    except Incomplete:
                        break
                    rpc.buf = rpc.buf[p2:]
                    line = body.get("Log", "") if isinstance(body, dict) else ""
                    for kind, rx in SERF_LINE:
                        m = rx.search(line)
                        if m:
                            with self.lock:
                                self.events.append((at, name, kind, m.group(1)))
                            break

    def snapshot(self):
        with self.lock:
            return list(self.events)

    def close(self):
        self.stop = True
        if self.thread is not None:
            self.thread.join(timeout=2)
        with self.lock:
            for _, rpc, _ in self.conns.values():
                rpc.close()
            self.conns.clear()


# ---------------------------------------------------------------------------
# one cluster
# ---------------------------------------------------------------------------


class Cluster:
    def __init__(self, side, n, root, netns=None):
        self.side, self.n, self.netns = side, n, netns
        self.root = tempfile.mkdtemp(prefix="%s-%d-" % (side.label.lower(), n), dir=root)
        self.agents = []
        used = set()
        for i in range(1, n + 1):
            d = os.path.join(self.root, "%s%d" % (side.prefix, i))
            os.makedirs(d)
            self.agents.append(Agent(side, i, "%s%d" % (side.prefix, i), side.ports(used), d))

    def spawn(self, agent, seed):
        cmd = self.side.command(agent, seed)
        if self.netns is not None:
            cmd = ["ip", "netns", "exec", self.netns.name] + cmd
        agent.proc = spawn_logged(cmd, agent.log, agent.dir)

    def check_alive(self, agents=None):
        for a in agents or self.agents:
            if a.proc is not None and a.proc.poll() is not None:
                raise AgentExited("%s agent %s exited with %s; log %s:\n%s" % (
                    self.side.label, a.name, a.proc.returncode, a.log, tail(a.log)))

    def stop(self):
        for a in self.agents:
            a.close()
        stop_procs([a.proc for a in self.agents if a.proc is not None])
        for a in self.agents:
            remove_empty_cgroup_parents(a.log)

    def keep_logs(self, dest, tag):
        if not dest:
            return
        os.makedirs(dest, exist_ok=True)
        for a in self.agents:
            if os.path.exists(a.log):
                shutil.copy(a.log, os.path.join(dest, "%s-%s.log" % (tag, a.name)))


class AgentExited(RuntimeError):
    def port_taken(self):
        return "already in use" in str(self).lower()


def with_retry(fn, *args):
    """Runs a round again (up to twice) when an agent could not bind its
    port: another process took it between our check and the agent's bind."""
    for attempt in range(3):
        try:
            return fn(*args)
        except AgentExited as e:
            if not e.port_taken() or attempt == 2:
                raise
            print("  (a port was taken before the agent bound it; running the round again)", flush=True)


def tail(path, lines=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def wait_until(pred, timeout, interval):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def join_cluster(cl, opts, monitor=None):
    """Starts the seed, then the rest at once. Returns the join measurements."""
    side = cl.side
    seed = cl.agents[0]
    t_seed = now_ms()
    cl.spawn(seed, None)

    def seed_ready():
        cl.check_alive([seed])
        m = side.members(seed)
        return m is not None and m.get(seed.name) == "alive"

    if not wait_until(seed_ready, 30, 0.02):
        raise RuntimeError("%s seed did not answer within 30 s:\n%s" % (side.label, tail(seed.log)))
    seed_start = now_ms() - t_seed
    if monitor is not None:
        monitor.add(seed)
    t0 = now_ms()
    for a in cl.agents[1:]:
        cl.spawn(a, seed)
    spawned = now_ms() - t0
    poll = opts.poll_ms / 1000.0

    def seed_sees_all():
        cl.check_alive()
        m = side.members(seed)
        return m is not None and sum(1 for s in m.values() if s == "alive") == cl.n

    if not wait_until(seed_sees_all, opts.join_timeout, poll):
        raise RuntimeError("%s N=%d: the seed did not see all members alive within %d s:\n%s" % (
            side.label, cl.n, opts.join_timeout, tail(seed.log)))
    join_seed = now_ms() - t0
    seen = {seed.name: join_seed}
    deadline = time.monotonic() + opts.join_timeout
    sweep_ms = []
    while len(seen) < cl.n:
        if time.monotonic() > deadline:
            missing = [a.name for a in cl.agents if a.name not in seen]
            raise RuntimeError("%s N=%d: %s did not see all members alive within %d s" % (
                side.label, cl.n, missing, opts.join_timeout))
        cl.check_alive()
        start = now_ms()
        for a in cl.agents:
            if a.name in seen:
                continue
            m = side.members(a)
            if m is not None and sum(1 for s in m.values() if s == "alive") == cl.n:
                seen[a.name] = now_ms() - t0
        sweep_ms.append(now_ms() - start)
        time.sleep(opts.sweep_ms / 1000.0)
    out = {"t0_unix_ms": t0, "spawn_ms": spawned, "seed_start_ms": seed_start, "seed_all_alive_ms": join_seed,
           "every_agent_all_alive_ms": max(seen.values()), "sweep_ms_median": med(sweep_ms)}
    # The seed's own events, for comparison: when it learned the last member.
    if isinstance(side, TroupeSide):
        # When each agent's membership actor was up, from its log (ms).
        ready = [log_time(a.log, "[membership] ready ") for a in cl.agents[1:]]
        if all(ready):
            out["last_agent_gossip_ready_ms"] = max(ready) - t0
        evs = side.events(seed) or []
        joins = [at for at, kind, who in evs if kind == "joined" and who != seed.name and at >= t0]
        if len(joins) == cl.n - 1:
            out["seed_last_join_event_ms"] = max(joins) - t0
    elif monitor is not None:
        joins = {}
        for at, obs, kind, who in monitor.snapshot():
            if obs == seed.name and kind == "joined" and who != seed.name and at >= t0:
                joins.setdefault(who, at)
        if len(joins) == cl.n - 1:
            out["seed_last_join_event_ms"] = max(joins.values()) - t0
    return out


def log_time(path, marker):
    """Unix ms of the first Troupe log line holding `marker` (spdlog's
    local-time stamp, millisecond resolution), or None."""
    try:
        with open(path, errors="replace") as f:
            for line in f:
                if marker in line:
                    stamp = time.strptime(line[:19], "%Y-%m-%dT%H:%M:%S")
                    return time.mktime(stamp) * 1000.0 + int(line[20:23])
    except (OSError, ValueError):
        pass
    return None


def sub(a, b):
    return None if a is None or b is None else a - b


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def measure_round(side, n, rnd, opts, root, rng):
    cl = Cluster(side, n, root)
    monitor = SerfMonitor() if isinstance(side, SerfSide) else None
    res = {"side": side.label, "n": n, "round": rnd, "loadavg_before": loadavg()}
    try:
        res["join"] = join_cluster(cl, opts, monitor)
        time.sleep(opts.settle)
        cl.check_alive()
        res["rss_kib"] = {a.name: rss_kib(a.pid) for a in cl.agents}
        res["threads"] = {a.name: threads_of(a.pid) for a in cl.agents}
        res["memory_kib"] = {a.name: memory_of(a.pid) for a in cl.agents}

        res["health_before_kill"] = {a.name: side.health(a) for a in cl.agents}
        victim = rng.choice(cl.agents[1:])
        survivors = [a for a in cl.agents if a is not victim]
        if monitor is not None:
            for a in survivors[1:]:  # the seed's stream is open since the join
                monitor.add(a)
        log_offsets = {a.name: os.path.getsize(a.log) for a in survivors}
        res["victim"] = victim.name
        t_kill = now_ms()
        os.kill(victim.pid, signal.SIGKILL)  # kill -9
        victim.close()
        polled_failed, polled_suspect = {}, {}
        deadline = time.monotonic() + opts.detect_timeout
        while len(polled_failed) < len(survivors) and time.monotonic() < deadline:
            cl.check_alive(survivors)
            for a in survivors:
                if a.name in polled_failed:
                    continue
                m = side.members(a)
                if m is None:
                    continue
                st = m.get(victim.name)
                if st == "suspect":
                    polled_suspect.setdefault(a.name, now_ms() - t_kill)
                elif st == "failed":
                    polled_failed[a.name] = now_ms() - t_kill
            time.sleep(opts.detect_poll_ms / 1000.0)
        # Let late events arrive (and give false positives time to show).
        time.sleep(1.0)
        res["health_after"] = {a.name: side.health(a) for a in survivors}

        ev_failed, ev_suspect, fp = {}, {}, []
        if isinstance(side, TroupeSide):
            for a in survivors:
                for at, kind, who in side.events(a) or []:
                    if at < t_kill:
                        continue
                    if who == victim.name and kind == "failed":
                        ev_failed.setdefault(a.name, at - t_kill)
                    elif who == victim.name and kind == "suspect":
                        ev_suspect.setdefault(a.name, at - t_kill)
                    elif who != victim.name and kind == "failed":
                        fp.append((a.name, who))
        else:
            for at, obs, kind, who in monitor.snapshot():
                if at < t_kill:
                    continue
                if who == victim.name and kind == "failed":
                    ev_failed.setdefault(obs, at - t_kill)
                elif who == victim.name and kind == "suspect":
                    ev_suspect.setdefault(obs, at - t_kill)
                elif who != victim.name and kind == "failed":
                    fp.append((obs, who))
        logs = {a.name: side.count_log(a, log_offsets[a.name]) for a in survivors}
        done = len(ev_failed) == len(survivors)
        res["detect"] = {
            "survivors": len(survivors),
            "complete": done and len(polled_failed) == len(survivors),
            "event_failed_ms": ev_failed, "event_suspect_ms": ev_suspect,
            "polled_failed_ms": polled_failed, "polled_suspect_ms": polled_suspect,
            "event_first_ms": min(ev_failed.values()) if ev_failed else None,
            "event_all_ms": max(ev_failed.values()) if done else None,
            "polled_first_ms": min(polled_failed.values()) if polled_failed else None,
            "polled_all_ms": max(polled_failed.values()) if len(polled_failed) == len(survivors) else None,
            "first_suspect_ms": min(ev_suspect.values()) if ev_suspect else None,
            "false_failed": fp,
            "log_suspects": sum(len(v["suspect"]) for v in logs.values()),
            "log_failed_not_victim": sum(1 for v in logs.values() for w in v["failed"] if w != victim.name),
        }
        res["loadavg_after"] = loadavg()
        cl.keep_logs(opts.keep_logs, "%s-n%d-r%d" % (side.label.lower(), n, rnd))
    finally:
        if monitor is not None:
            monitor.close()
        cl.stop()
        shutil.rmtree(cl.root, ignore_errors=True)
    return res


def loss_phase(side, n, opts, root, netns):
    """N agents in our namespace, joined without loss, then --loss-percent
    loss on the namespace's lo for --loss-seconds: count members marked
    failed (none was killed, so each one is a false positive)."""
    cl = Cluster(side, n, root, netns)
    for a in cl.agents:
        a.timeout = 5.0  # the harness's own TCP requests see the loss too
    res = {"side": side.label, "n": n, "loss_percent": opts.loss_percent, "seconds": opts.loss_seconds}
    loss_on = False
    try:
        res["join"] = join_cluster(cl, opts)
        time.sleep(opts.settle)
        offsets = {a.name: os.path.getsize(a.log) for a in cl.agents}
        t_start = now_ms()
        netns.set_loss(opts.loss_percent)
        loss_on = True
        non_alive_seen = {}  # (observer, subject) -> first state other than alive seen by polling
        polls = polls_ok = 0
        end = time.monotonic() + opts.loss_seconds
        while time.monotonic() < end:
            cl.check_alive()
            for a in cl.agents:
                polls += 1
                m = side.members(a)
                if m is None:
                    continue
                polls_ok += 1
                for who, st in m.items():
                    if st != "alive":
                        non_alive_seen.setdefault("%s:%s" % (a.name, who), st)
            time.sleep(1.0)
        res["measured_loss"] = netns.set_loss(0)
        loss_on = False
        t_end = now_ms()
        res["loss_method"] = netns.method
        time.sleep(opts.loss_grace)  # a suspicion begun under loss may still end as failed
        final_bad = {}
        for a in cl.agents:
            m = side.members(a)
            if m is None:
                final_bad[a.name] = "no answer"
                continue
            bad = {w: s for w, s in m.items() if s != "alive"}
            if bad or len(m) != n:
                final_bad[a.name] = bad or "knows %d members" % len(m)
        logs = {a.name: side.count_log(a, offsets[a.name]) for a in cl.agents}
        suspects = [w for v in logs.values() for w in v["suspect"]]
        res.update({
            "failed_marks": [(a, w) for a, v in logs.items() for w in v["failed"]],
            # Troupe logs a suspicion on every agent that hears of it: count
            # distinct (member, incarnation). Serf logs one only on the agent
            # whose probe failed (memberlist "Suspect X has failed").
            "suspicions": len(set(suspects)) if isinstance(side, TroupeSide) else len(suspects),
            "suspect_marks_logged": len(suspects),
            "refutations": sum(v["refute"] for v in logs.values()),
            "polled_not_alive": non_alive_seen, "polls": polls, "polls_answered": polls_ok,
            "final_not_alive": final_bad, "window_ms": [t_start, t_end],
        })
        if isinstance(side, TroupeSide):  # the agents' own events, cross-check of the log
            evf, evs = [], 0
            for a in cl.agents:
                for at, kind, who in side.events(a) or []:
                    if t_start <= at:
                        if kind == "failed":
                            evf.append((a.name, who))
                        elif kind == "suspect":
                            evs += 1
            res["failed_events"] = evf
            res["suspect_events"] = evs
            res["counters"] = {}
            for a in cl.agents:
                doc = side.get(a, "/v1/members")
                if doc:
                    for k, v in doc.get("counters", {}).items():
                        res["counters"][k] = res["counters"].get(k, 0) + int(v)
            # Refutations are not logged; take the agents' counters (whole run
            # of the cluster, but nothing is refuted before the loss).
            res["refutations"] = res["counters"].get("refutations", 0)
        res["false_positives"] = len(res["failed_marks"])
        cl.keep_logs(opts.keep_logs, "loss-%s-n%d" % (side.label.lower(), n))
    finally:
        if loss_on:
            try:
                netns.set_loss(0)
            except RuntimeError as e:
                print("warning: %s" % e, file=sys.stderr)
        cl.stop()
        shutil.rmtree(cl.root, ignore_errors=True)
    return res


# ---------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------


def fmt(v, unit=""):
    if v is None:
        return "-"
    if isinstance(v, float):
        return ("%.0f" % v if abs(v) >= 100 else "%.1f" % v) + unit
    return str(v) + unit


def ratio(serf, troupe):
    if serf is None or troupe is None or troupe == 0:
        return "-"
    return "%.2f×" % (serf / troupe)


def summarize(rounds, sizes):
    """Per size and side: the median of each metric over rounds, and the
    median of the per-round ratios Serf ÷ Troupe."""
    rows = []
    metrics = [
        ("agent start alone: spawn → API answers (ms, seed)", lambda r: r["join"]["seed_start_ms"]),
        ("join: seed sees all N alive (ms, polled)", lambda r: r["join"]["seed_all_alive_ms"]),
        ("join: every agent sees all N alive (ms, polled)", lambda r: r["join"]["every_agent_all_alive_ms"]),
        ("join: seed's last join event (ms)", lambda r: r["join"].get("seed_last_join_event_ms")),
        ("kill -9 → first agent marks failed (ms, events)", lambda r: r["detect"]["event_first_ms"]),
        ("kill -9 → all N-1 mark failed (ms, events)", lambda r: r["detect"]["event_all_ms"]),
        ("kill -9 → first marks failed (ms, polled)", lambda r: r["detect"]["polled_first_ms"]),
        ("kill -9 → all mark failed (ms, polled)", lambda r: r["detect"]["polled_all_ms"]),
        ("  of which kill → first suspicion (waiting for a probe of the dead member; ms)",
         lambda r: r["detect"]["first_suspect_ms"]),
        ("  of which first suspicion → first marks failed (suspicion timeout; ms)",
         lambda r: sub(r["detect"]["event_first_ms"], r["detect"]["first_suspect_ms"])),
        ("  of which first → last of the N-1 marks failed (dissemination; ms)",
         lambda r: sub(r["detect"]["event_all_ms"], r["detect"]["event_first_ms"])),
        ("RSS per agent, median (MiB)", lambda r: med(list(r["rss_kib"].values())) / 1024.0),
        ("RSS per agent, max (MiB)", lambda r: max(r["rss_kib"].values()) / 1024.0),
        ("  of which anonymous (heap, stacks; MiB, median)",
         lambda r: med([m.get("RssAnon") for m in r["memory_kib"].values()]) / 1024.0),
        ("  of which file-backed (binary, libraries; MiB, median)",
         lambda r: med([m.get("RssFile") for m in r["memory_kib"].values()]) / 1024.0),
        ("PSS per agent, N on one host (MiB, median)",
         lambda r: med([m.get("Pss") for m in r["memory_kib"].values()]) / 1024.0),
        ("threads per agent (median)", lambda r: med([m.get("Threads") for m in r["memory_kib"].values()])),
    ]
    summary = {}
    for n in sizes:
        t = [r for r in rounds if r["n"] == n and r["side"] == "Troupe"]
        s = [r for r in rounds if r["n"] == n and r["side"] == "Serf"]
        for name, get in metrics:
            tv = [get(r) for r in t]
            sv = [get(r) for r in s]
            per_round = [a / b for a, b in zip(sv, tv) if a is not None and b]
            tm, sm = med(tv), med(sv)
            rows.append((n, name, tm, sm, ratio(sm, tm), "%.2f×" % med(per_round) if per_round else "-",
                         tv, sv))
            summary.setdefault(str(n), {})[name] = {"troupe": tm, "serf": sm, "troupe_rounds": tv,
                                                     "serf_rounds": sv, "ratio_of_medians": (sm / tm) if
                                                     sm is not None and tm else None,
                                                     "median_of_round_ratios": med(per_round)}
        def unhealthy(rs, key):
            return sum(1 for r in rs for v in r.get(key, {}).values() if v)
        rows.append((n, "agents with Lifeguard health score > 0 just before the kill (all rounds)",
                     unhealthy(t, "health_before_kill"), unhealthy(s, "health_before_kill"), "", "", [], []))
        fpt = sum(len(r["detect"]["false_failed"]) for r in t)
        fps = sum(len(r["detect"]["false_failed"]) for r in s)
        rows.append((n, "other members marked failed in those rounds", fpt, fps, "", "", [], []))
    return rows, summary


def print_table(rows):
    def r0(v):
        return "[" + ", ".join(fmt(x) for x in v) + "]"
    print()
    print("| N | what | Troupe | Serf | Serf ÷ Troupe (medians) | median of per-round ratios | "
          "Troupe rounds | Serf rounds |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | --- | --- |")
    for n, name, tm, sm, rat, rr, tv, sv in rows:
        print("| %d | %s | %s | %s | %s | %s | %s | %s |" % (n, name, fmt(tm), fmt(sm), rat, rr, r0(tv), r0(sv)))


def print_loss(loss):
    if not loss:
        return
    print()
    print("| N | side | loss asked (measured) | seconds | members marked failed (false positives) | "
          "suspicions raised | refutations | not alive at the end | polls answered |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |")
    for r in loss:
        m = r.get("measured_loss")
        measured = " (%.1f%% of %d packets)" % (100.0 * m["dropped"] / m["packets"], m["packets"]) \
            if m and m.get("packets") else ""
        print("| %d | %s | %g%%%s | %d | %d | %d | %d | %s | %d/%d |" % (
            r["n"], r["side"], r["loss_percent"], measured, r["seconds"], r["false_positives"], r["suspicions"],
            r["refutations"], json.dumps(r["final_not_alive"]) if r["final_not_alive"] else "none",
            r["polls_answered"], r["polls"]))


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------


class Interrupted(Exception):
    pass


def on_signal(signum, _frame):
    raise Interrupted("signal %d" % signum)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--troupe", default=os.path.join(repo, "build/bench-rel/tools/troupe"),
                    help="the troupe binary (default build/bench-rel/tools/troupe)")
    ap.add_argument("--troupectl", default=os.path.join(repo, "build/bench-rel/tools/troupectl"),
                    help="troupectl, checked once against GET /v1/members")
    ap.add_argument("--serf", default=shutil.which("serf") or "/usr/bin/serf",
                    help="the serf binary (Debian package serf)")
    ap.add_argument("--sizes", default="10,30", help="cluster sizes N (default 10,30)")
    ap.add_argument("--rounds", type=int, default=10, help="join+kill rounds per size and side (10)")
    ap.add_argument("--settle", type=float, default=5.0, help="seconds after the join before RSS and kill (5)")
    ap.add_argument("--poll-ms", type=float, default=10.0, help="polling interval of the seed during join (10)")
    ap.add_argument("--sweep-ms", type=float, default=20.0, help="pause between sweeps over all agents (20)")
    ap.add_argument("--detect-poll-ms", type=float, default=20.0,
                    help="pause between sweeps over the survivors after the kill (20)")
    ap.add_argument("--join-timeout", type=float, default=120.0, help="seconds (120)")
    ap.add_argument("--detect-timeout", type=float, default=120.0, help="seconds (120)")
    ap.add_argument("--loss-sizes", default="10,30", help="sizes for the loss phase; empty: skip it (10,30)")
    ap.add_argument("--loss-percent", type=float, default=10.0, help="packet loss on the namespace's lo (10)")
    ap.add_argument("--loss-seconds", type=float, default=60.0, help="how long the loss lasts (60)")
    ap.add_argument("--loss-grace", type=float, default=5.0,
                    help="seconds after the loss is removed that still count (5)")
    ap.add_argument("--sides", default="troupe,serf", help="troupe, serf or both (troupe,serf)")
    ap.add_argument("--seed", type=int, default=None, help="random seed for the victim choice")
    ap.add_argument("--json", help="write every sample to this file")
    ap.add_argument("--keep-logs", help="copy every agent's log into this directory")
    ap.add_argument("--report", metavar="JSON", help="print the tables of an earlier run's --json file; run nothing")
    opts = ap.parse_args()
    if opts.report:
        with open(opts.report) as f:
            old = json.load(f)
        rows, _ = summarize(old["rounds"], sorted({r["n"] for r in old["rounds"]}))
        print_table(rows)
        print_loss(old["loss"])
        return 0

    sizes = [int(x) for x in opts.sizes.split(",") if x]
    loss_sizes = [int(x) for x in opts.loss_sizes.split(",") if x]
    want = [s.strip() for s in opts.sides.split(",") if s.strip()]
    sides = []
    if "troupe" in want:
        for b in (opts.troupe, opts.troupectl):
            if not os.access(b, os.X_OK):
                sys.exit("membership_bench: %s is missing; build it "
                         "(cmake --build BUILD --target troupe troupectl)" % b)
        sides.append(TroupeSide(opts.troupe, opts.troupectl))
    if "serf" in want:
        if not os.access(opts.serf, os.X_OK):
            sys.exit("membership_bench: serf is missing: apt-get install serf")
        sides.append(SerfSide(opts.serf))
    seed = opts.seed if opts.seed is not None else int(time.time())
    rng = random.Random(seed)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)

    root = tempfile.mkdtemp(prefix="troupe-membench.")
    netns = None
    out = {"config": {k: v for k, v in vars(opts).items()}, "random_seed": seed, "rounds": [], "loss": [],
           "machine": machine_info(sides)}
    out["config"]["started_unix"] = time.time()
    code = 0
    try:
        if sides and isinstance(sides[0], TroupeSide):
            check_troupectl(sides[0], root)
        for n in sizes:
            for rnd in range(opts.rounds):
                order = sides if rnd % 2 == 0 else list(reversed(sides))
                for side in order:
                    t = time.monotonic()
                    r = with_retry(measure_round, side, n, rnd, opts, root, rng)
                    out["rounds"].append(r)
                    d = r["detect"]
                    print("N=%d round %d %-6s join seed %s ms, all %s ms; failed first %s / all %s ms "
                          "(polled %s / %s); RSS median %.1f MiB; %.0f s" % (
                              n, rnd + 1, side.label, fmt(r["join"]["seed_all_alive_ms"]),
                              fmt(r["join"]["every_agent_all_alive_ms"]), fmt(d["event_first_ms"]),
                              fmt(d["event_all_ms"]), fmt(d["polled_first_ms"]), fmt(d["polled_all_ms"]),
                              med(list(r["rss_kib"].values())) / 1024.0, time.monotonic() - t), flush=True)
        if loss_sizes and sides:
            netns = Netns()
            why = netns.create()
            if why:
                print("loss phase skipped: " + why, flush=True)
                out["loss_skipped"] = why
            else:
                netns.enter()
                try:
                    for i, n in enumerate(loss_sizes):
                        order = sides if i % 2 == 0 else list(reversed(sides))
                        for side in order:
                            r = with_retry(loss_phase, side, n, opts, root, netns)
                            out["loss"].append(r)
                            print("loss N=%d %-6s %g%% for %ds: %d marked failed, %d suspicions, %d refutations; "
                                  "not alive at the end: %s" % (
                                      n, side.label, opts.loss_percent, opts.loss_seconds, r["false_positives"],
                                      r["suspicions"], r["refutations"], r["final_not_alive"] or "none"),
                                  flush=True)
                finally:
                    netns.leave()
    except (KeyboardInterrupt, Interrupted) as e:
        print("\ninterrupted (%s): cleaning up" % (e or "Ctrl-C"), file=sys.stderr)
        code = 130
    except Exception as e:  # noqa: BLE001 - report, clean up, exit non-zero
        print("membership_bench: error: %s" % e, file=sys.stderr)
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop_procs(list(PROCS))
        if netns is not None:
            netns.destroy()
        shutil.rmtree(root, ignore_errors=True)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    if out["rounds"]:
        done_sizes = sorted({r["n"] for r in out["rounds"]})
        rows, summary = summarize(out["rounds"], done_sizes)
        out["summary"] = summary
        print_table(rows)
    print_loss(out["loss"])
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump(out, f, indent=1, default=str)
        print("\nall samples: " + opts.json)
    return code


def check_troupectl(side, root):
    """`troupectl nodes` and GET /v1/members must agree (the harness uses the latter)."""
    cl = Cluster(side, 1, root)
    try:
        cl.spawn(cl.agents[0], None)
        a = cl.agents[0]
        if not wait_until(lambda: side.members(a), 30, 0.05):
            raise RuntimeError("troupe agent did not answer:\n" + tail(a.log))
        r = subprocess.run([side.ctl, "--addr", "127.0.0.1:%d" % a.ports["http"], "-o", "json", "nodes"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=10)
        doc = json.loads(r.stdout)
        if doc.get("self") != a.name or [m["name"] for m in doc["members"]] != [a.name]:
            raise RuntimeError("troupectl nodes printed something unexpected: " + r.stdout[:300])
    finally:
        cl.stop()
        shutil.rmtree(cl.root, ignore_errors=True)


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return [float(x) for x in f.read().split()[:3]]
    except OSError:
        return None


def machine_info(sides):
    info = {"nproc": os.cpu_count(), "kernel": os.uname().release, "python": sys.version.split()[0]}
    try:
        with open("/proc/loadavg") as f:
            info["loadavg_start"] = f.read().split()[:3]
    except OSError:
        pass
    for s in sides:
        if isinstance(s, SerfSide):
            r = subprocess.run([s.binary, "version"], stdout=subprocess.PIPE, text=True)
            info["serf_version"] = r.stdout.strip().splitlines()[0] if r.stdout else None
    return info


if __name__ == "__main__":
    sys.exit(main())
