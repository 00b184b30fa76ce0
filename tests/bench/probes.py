"""What the container start benchmark reads from the host besides its
timings: the agent's memory and threads, the shims' memory, the kernel's
listen-queue drops, the disk's sync cost and the agent's own log."""

import os
import re
import statistics
import time
from datetime import datetime


def now_ns():
    return time.perf_counter_ns()


def ms(ns):
    return ns / 1e6


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key == "VmRSS":
                out[key] = int(value.split()[0])  # kB
            elif key == "Threads":
                out[key] = int(value)
    return out


def pss_kib(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def shims_pss_kib(data_dir):
    """Summed PSS of the troupe-shim processes of this agent's containers:
    Troupe's per-container cost that lives outside the agent. PSS, not RSS,
    because the shims share their libraries' pages and RSS would count
    those once per shim."""
    total, count = 0, 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            if not argv[0].endswith(b"troupe-shim") or data_dir.encode() not in b" ".join(argv):
                continue
            total += pss_kib(pid)
            count += 1
        except OSError:
            continue
    return total, count


def listen_overflows():
    """The kernel's count of connections dropped because a listen queue was
    full (TcpExt ListenOverflows, host-wide; nothing else here listens
    under load, so a change during a burst is the agent's queue)."""
    with open("/proc/net/netstat") as f:
        lines = f.read().splitlines()
    for names, values in zip(lines[::2], lines[1::2]):
        if names.startswith("TcpExt:"):
            return int(dict(zip(names.split()[1:], values.split()[1:])).get("ListenOverflows", 0))
    return 0


def overlay_lowerdir(mount_point):
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            if len(fields) > 4 and fields[4] == mount_point and " - overlay " in line:
                for opt in line.split(" - ", 1)[1].split()[2].split(","):
                    if opt.startswith("lowerdir="):
                        return opt[len("lowerdir="):]
    return None


PHASES = ("request -> allocation committed", "allocation -> task actor starts it",
          "task actor starts it -> process runs", "process runs -> 'running' logged")


def agent_log_phases(log_file, samples):
    """Where a sequential Troupe start spends its time, from the agent's
    own log lines and the sample's own clock: the node logs an allocation
    after its LMDB commit; the task actor logs `starting` when it begins a
    start and `running` once the shim reported (each before its commit);
    the container's process ran at t0 + proc. Log stamps are wall-clock
    milliseconds, truncated, so only medians mean much. Returns
    ({phase: median ms}, {phase: [ms per sample]})."""
    stamp = r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}) "
    alloc_re = re.compile(stamp + r"I \[node\] allocation id=(\w+) ")
    task_re = re.compile(stamp + r"I \[task\] task alloc=(\w+) from=(\w+) to=(\w+) ")
    at = {}
    with open(log_file) as f:
        for line in f:
            m = alloc_re.match(line)
            if m:
                at[(m.group(2), "allocated")] = m.group(1)
                continue
            m = task_re.match(line)
            if m and m.group(4) in ("starting", "running"):
                at.setdefault((m.group(2), m.group(4)), m.group(1))
    unix_ms = lambda text: datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f").timestamp() * 1000
    phases = {k: [] for k in PHASES}
    for s in samples:
        a = s["alloc"]
        keys = [(a, "allocated"), (a, "starting"), (a, "running")]
        if not all(k in at for k in keys):
            continue
        allocated, starting, running = (unix_ms(at[k]) for k in keys)
        ran = s["t0_unix_ms"] + s["proc"]
        for name, value in zip(PHASES, (allocated - s["t0_unix_ms"], starting - allocated, ran - starting,
                                        running - ran)):
            phases[name].append(value)
    return {k: statistics.median(v) for k, v in phases.items() if v}, phases


def fdatasync_ms(directory, count=30):
    """What one fdatasync costs on the disk under `directory`; an LMDB
    commit with sync on makes two."""
    path = os.path.join(directory, "fsync-probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    times = []
    try:
        for i in range(count):
            os.pwrite(fd, b"x" * 4096, (i % 8) * 4096)
            t0 = now_ns()
            os.fdatasync(fd)
            times.append(ms(now_ns() - t0))
    finally:
        os.close(fd)
        os.unlink(path)
    return statistics.median(times)
