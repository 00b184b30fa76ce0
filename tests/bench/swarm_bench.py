#!/usr/bin/env python3
"""Troupe services side by side with Docker Swarm mode, on this machine, in
the same run (issue 6: Troupe at least 3x faster than Swarm on each measure).

Both systems run the same image, a busybox rootfs made from the host's
static /bin/busybox (Troupe: `troupectl image import` on each agent, since
images are per node for now; Docker: `tar | docker import - busybox:1`), and
the same long-running command, one that stops at once on SIGTERM so that a
stop is not a 10 s grace period on both sides (busybox as a container's
PID 1 ignores SIGTERM otherwise):

    sh -c "trap 'exit 0' TERM; sleep 100000 & wait"

No ports, no health check, no resource reservations; host networking on
both (Troupe's runc containers share the host's network; Swarm's tasks get
`--network host`).

Troupe: three `troupe agent`s on 127.0.0.1 with free ports, default
settings and `--driver runc` (real runc containers): the first bootstraps,
the other two join it with --seed, and all three become Raft voters (the
agents of membership_bench.py / services_bench.py, whose helpers start and
stop them). Services go through `troupectl`; counts are read from
GET /v1/services/bench and GET /v1/allocations?service=bench of the first
agent.

Swarm: one dockerd of Debian's docker.io started by this script, with its
own --data-root, --exec-root, socket, pidfile, cgroup parent and config file
(/etc/docker/daemon.json is not read), --bridge=none, no iptables, no IP
forwarding, inside a network namespace of its own that has only a loopback
interface (`unshare --net`), so that nothing it does can leave the machine;
DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 and --no-resolve-image keep Swarm from
looking the image up in a registry. `docker swarm init` on 127.0.0.1 makes it
a single-node manager. Services go through the docker CLI (`-d`: detached);
counts are read from the Engine API on the daemon's socket
(GET /services?status=true, GET /tasks).

Each round, for each system (which goes first alternates), on a service
`bench`:

  deploy_10   deploy 10 replicas (env X=1) -> 10 running
  update_10   a rolling update of those 10 with parallelism 2 (env X=2):
              command -> 10 running with X=2 and none with X=1 left running.
              Troupe: `troupectl deploy -f v2.yaml --wait`, the spec has
              `update: {parallelism: 2}`; Swarm: `docker service update -d
              --env-add X=2 --update-parallelism 2 --no-resolve-image`. Delay
              and monitor are each system's defaults (both 0 s and 5 s).
              update_done is when the system says the update is over:
              troupectl --wait returned; Swarm's UpdateStatus "completed"
              (after its 5 s monitor period). The two defaults have the same
              value but not the same meaning: Troupe starts the next batch
              once the last one has stayed ready for the monitor period,
              Swarm starts it once the last one runs (its monitor only
              counts failures and holds back "completed").
  update_fast the same rolling update again (env X=3), with the monitor at
              1ms on both (Troupe reads 0s as "not given", i.e. 5 s): the
              two systems' rollout machinery without the monitor's wait.
              A run where no poll saw tasks of the old and the new version
              wanted at the same time prints "not in batches" and marks the
              update rows NOT COMPARABLE (an update that replaced all at
              once, as Troupe's did before rollouts landed).
  kill_10     kill -9 of one container's main process (found through the
              system's own API: Troupe's GET /v1/tasks of the node, Swarm's
              task ContainerStatus.PID) -> the killed one no longer counted
              and 10 running again. Default restart settings: Troupe restarts
              in place after its default 1 s delay; Swarm starts a new task
              after its default 5 s restart delay.
  (remove the service; wait until no container of it is left)
  deploy_50   deploy 50 replicas -> 50 running
  scale_100   scale 50 -> 100 -> 100 running
  kill_100    as kill_10 with 100 replicas, and the Swarm service created
              with --restart-delay 1s, Troupe's default: the two systems'
              replacement paths with the same delay
  (remove the service; wait until no container of it is left)

Times run from just before the command is started (the CLI's own start is
included on both sides) until the poll, every --poll-ms (50), first sees the
condition. Prints one line per round and system, then the medians and the
ratios Swarm/Troupe; --json FILE keeps every sample.

Everything it starts is gone at the end, also after an error or Ctrl-C:
services removed (the agents and dockerd stop their containers), Troupe
agents stopped with SIGTERM, the swarm left, dockerd stopped by its pid and
its containerd by its pid, then whatever is left of theirs deleted: runc
containers in their runc roots, processes and cgroups under their cgroup
parents, mounts and the temporary directory, and /etc/docker/key.json if
dockerd created it. It fails (exit 1) if dockerd's log shows any image pull
or registry lookup.

  swarm_bench.py --troupe build/release/tools/troupe --troupectl build/release/tools/troupectl [--rounds 3]

Needs root (runc, overlay mounts, network namespaces) and docker.io
(deploy/bench.sh installs it).
"""
import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import membership_bench as mb  # noqa: E402 - agents, ports, process cleanup
from raft_bench import http_json  # noqa: E402

SERVICE = "bench"
COMMAND = ["sh", "-c", "trap 'exit 0' TERM; sleep 100000 & wait"]
FAST_MONITOR = "1ms"  # as in the recorded runs (before 0s could be given); close to 0
TIMEOUT = 180.0  # seconds for any one measure; a slower one is an error
MEASURES = [
    ("deploy_10", "deploy -> 10 running"),
    ("update_10", "rolling update of 10, parallelism 2 -> 10 new running"),
    ("update_done", "rolling update of 10: system says done"),
    ("update_fast", "the same, monitor 1ms on both -> 10 new running"),
    ("update_fast_done", "the same, monitor 1ms on both: system says done"),
    ("kill_10", "kill -9 of 1 of 10 -> 10 running (default restart delay)"),
    ("deploy_50", "deploy -> 50 running"),
    ("scale_100", "scale 50 -> 100 running"),
    ("kill_100", "kill -9 of 1 of 100 -> 100 running (restart delay 1 s on both)"),
]


class Interrupted(Exception):
    pass


def on_signal(signum, _frame):
    raise Interrupted("signal %d" % signum)


def run(args, timeout=120, env=None, stdin=None):
    """(exit code, stdout+stderr) of a command."""
    try:
        r = subprocess.run(args, input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout, env=env)
    except FileNotFoundError as e:
        return 127, str(e)
    except subprocess.TimeoutExpired:
        return 124, "timed out after %s s: %s" % (timeout, " ".join(args))
    return r.returncode, r.stdout.decode(errors="replace").strip()


def wait_for(pred, what, timeout=TIMEOUT, interval=0.05):
    """Polls pred until it is true; the time it first was, or an error."""
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return time.monotonic()
        if time.monotonic() >= deadline:
            raise RuntimeError("%s: not within %.0f s" % (what, timeout))
        time.sleep(interval)


def kill9(pid):
    os.kill(pid, signal.SIGKILL)


def pids_in_cgroup_trees(dirs):
    pids = set()
    for d in dirs:
        for base, _subdirs, files in os.walk(d):
            if "cgroup.procs" in files:
                try:
                    with open(os.path.join(base, "cgroup.procs")) as f:
                        pids.update(int(x) for x in f.read().split())
                except (OSError, ValueError):
                    pass
    return pids


def remove_cgroup_parent(parent):
    """Kills what still runs under /<parent> in every hierarchy, then
    removes the directories, deepest first. Only for parents this script's
    systems made (named by node id or by this run)."""
    dirs = [os.path.join("/sys/fs/cgroup", c, parent) for c in sorted(os.listdir("/sys/fs/cgroup"))
            if os.path.isdir(os.path.join("/sys/fs/cgroup", c, parent))]
    if os.path.exists(os.path.join("/sys/fs/cgroup", parent, "cgroup.procs")):  # v2
        dirs.append(os.path.join("/sys/fs/cgroup", parent))
    left = pids_in_cgroup_trees(dirs)
    for pid in left:
        try:
            kill9(pid)
        except ProcessLookupError:
            pass
    if left:
        time.sleep(0.3)
    for d in dirs:
        for base, subdirs, _files in sorted(os.walk(d, topdown=False), key=lambda t: -len(t[0])):
            try:
                os.rmdir(base)
            except OSError:
                pass
    return sorted(left), [d for d in dirs if os.path.isdir(d)]


def mounts_under(path):
    prefix = path.rstrip("/") + "/"
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp.startswith(prefix):
                out.append(mp)
    return sorted(out, reverse=True)


def unmount_all_under(path):
    for m in mounts_under(path):
        if subprocess.call(["umount", m], stderr=subprocess.DEVNULL) != 0:
            subprocess.call(["umount", "-l", m], stderr=subprocess.DEVNULL)
    return mounts_under(path)


def runc_delete_all(runc, root):
    if not os.path.isdir(root):
        return []
    code, out = run([runc, "--root", root, "list", "-q"], timeout=30)
    ids = out.split() if code == 0 else []
    for cid in ids:
        run([runc, "--root", root, "delete", "--force", cid], timeout=30)
    return ids


def sweep_agents(runc, agents, node_ids):
    """After stopped agents: the runc containers and the processes in the
    cgroup parents they left (by node id), each named in the problems."""
    problems = []
    for a in agents:
        left = runc_delete_all(runc, os.path.join(a.dir, "data", "runc"))
        if left:
            problems.append("Troupe: deleted runc containers left by %s: %s" % (a.name, left))
    for name, nid in node_ids.items():
        pids, dirs = remove_cgroup_parent("troupe-" + nid[:12])
        if pids:
            problems.append("Troupe: killed processes left in %s's cgroups: %s" % (name, pids))
        if dirs:
            problems.append("Troupe: cgroups not removed: %s" % dirs)
    return problems


def make_rootfs(path):
    os.makedirs(os.path.join(path, "bin"))
    shutil.copy("/bin/busybox", os.path.join(path, "bin", "busybox"))
    for tool in ("sh", "sleep", "true", "cat"):
        os.symlink("busybox", os.path.join(path, "bin", tool))
    for d in ("proc", "dev", "sys", "tmp", "etc"):
        os.makedirs(os.path.join(path, d))


class Batches:
    """Whether a rollout was seen in batches: some poll saw replicas of the
    new version wanted (placed, desired running) next to replicas of the old
    one still wanted. An update that replaces everything in one step stops
    wanting every old replica when it places the new ones, so it never
    shows that."""

    def __init__(self):
        self.mixed = False

    def saw(self, old_wanted, new_wanted):
        if old_wanted > 0 and new_wanted > 0:
            self.mixed = True


# ---------------------------------------------------------------------------
# Troupe: three agents, runc driver
# ---------------------------------------------------------------------------


class RuncSide(mb.TroupeSide):
    """membership_bench's agents with --driver runc instead of process."""
    prefix = "t"

    def command(self, agent, seed):
        cmd = super().command(agent, seed)
        i = cmd.index("--driver")
        cmd[i + 1] = "runc"
        return cmd


class Troupe:
    label = "Troupe"

    def __init__(self, opts, root):
        self.opts, self.root = opts, root
        self.size = opts.agents
        self.cl = mb.Cluster(RuncSide(os.path.abspath(opts.troupe), opts.troupectl), self.size, root)
        self.agents = self.cl.agents
        self.node_ids = {}
        self.by_name = {a.name: a for a in self.agents}
        self.spec_dir = os.path.join(root, "specs")
        os.makedirs(self.spec_dir)

    @property
    def leader(self):
        return self.agents[0]

    def ctl(self, *args, agent=None, timeout=120):
        a = agent or self.leader
        return run([self.opts.troupectl, "--addr", "127.0.0.1:%d" % a.ports["http"]] + list(args), timeout=timeout)

    def get(self, path, agent=None, timeout=2.0):
        return http_json((agent or self.leader).ports["http"], "GET", path, None, timeout)

    def start(self, rootfs):
        self.cl.spawn(self.agents[0], None)
        wait_for(lambda: self.cl.check_alive() or self.get("/v1/status", timeout=1.0), "the first agent answers", 60)
        for a in self.agents[1:]:
            self.cl.spawn(a, self.agents[0])

        def ready():
            self.cl.check_alive()
            raft = self.get("/v1/raft", timeout=1.0)
            nodes = self.get("/v1/nodes", timeout=1.0)
            return raft and len(raft.get("voters", [])) == self.size and nodes and \
                sum(1 for n in nodes.get("nodes", []) if n.get("state") == "alive") == self.size
        wait_for(ready, "%d voters and %d alive nodes" % (self.size, self.size), 90, 0.2)
        for a in self.agents:
            st = self.get("/v1/status", agent=a)
            if not st or not st.get("id"):
                raise RuntimeError("no node id from %s" % a.name)
            self.node_ids[a.name] = st["id"]
            code, out = self.ctl("image", "import", rootfs, "--name", "busybox:1", agent=a)
            if code != 0:
                raise RuntimeError("image import on %s: %s" % (a.name, out))

    def version(self):
        out = run([self.opts.troupe, "--version"], timeout=10)[1]
        return out.splitlines()[0] if out else "?"

    # ---- state

    def summary(self):
        doc = self.get("/v1/services/" + SERVICE)
        if not doc or not doc.get("services"):
            return None
        return doc["services"][0]

    def running(self):
        s = self.summary()
        return -1 if s is None else int(s.get("running", 0))

    def allocations(self):
        doc = self.get("/v1/allocations?service=" + SERVICE)
        return None if doc is None else doc.get("allocations", [])

    def no_containers(self):
        """No task of the service on any agent, no allocation wanted."""
        for a in self.agents:
            doc = self.get("/v1/tasks", agent=a)
            if doc is None or any(t.get("name", "").startswith(SERVICE + "-") for t in doc.get("tasks", [])):
                return False
        allocs = self.allocations()
        return allocs is not None and not any(x.get("desired") == "run" for x in allocs)

    # ---- operations

    def spec(self, replicas, x, monitor=None):
        path = os.path.join(self.spec_dir, "bench-%d-%s.yaml" % (replicas, x))
        with open(path, "w") as f:
            f.write("name: %s\nimage: busybox:1\ncommand: %s\nenv: {X: '%s'}\nreplicas: %d\n"
                    "update: {parallelism: 2%s}\n" % (SERVICE, json.dumps(COMMAND), x, replicas,
                                                     ", monitor: %s" % monitor if monitor else ""))
        return path

    def deploy(self, replicas, m):
        spec = self.spec(replicas, "1")
        t0 = time.monotonic()
        code, out = self.ctl("deploy", "-f", spec)
        if code != 0:
            raise RuntimeError("troupectl deploy: %s" % out)
        return wait_for(lambda: self.running() == replicas, "%s: %d running" % (m, replicas)) - t0

    def update(self, replicas, x, monitor=None):
        spec = self.spec(replicas, x, monitor)
        before = int(self.summary()["service"]["version"])
        t0 = time.monotonic()
        proc = subprocess.Popen([self.opts.troupectl, "--addr", "127.0.0.1:%d" % self.leader.ports["http"],
                                 "deploy", "-f", spec, "--wait"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        seen = Batches()
        try:
            def done():
                allocs = self.allocations()
                if allocs is None:
                    return False
                new = [a for a in allocs if a.get("desired") == "run" and int(a.get("version", 0)) > before
                       and a.get("state") == "running"]
                old = [a for a in allocs if int(a.get("version", 0)) <= before and a.get("state") == "running"]
                seen.saw(sum(1 for a in allocs if a.get("desired") == "run" and int(a.get("version", 0)) <= before),
                         sum(1 for a in allocs if a.get("desired") == "run" and int(a.get("version", 0)) > before))
                return len(new) == replicas and not old
            t_new = wait_for(done, "update: %d of the new version running" % replicas) - t0
            out = proc.communicate(timeout=TIMEOUT)[0]
            t_done = time.monotonic() - t0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if proc.returncode != 0:
            raise RuntimeError("troupectl deploy --wait: %s" % out.decode(errors="replace"))
        return t_new, t_done, seen.mixed

    def scale(self, replicas):
        t0 = time.monotonic()
        code, out = self.ctl("scale", SERVICE, str(replicas))
        if code != 0:
            raise RuntimeError("troupectl scale: %s" % out)
        return wait_for(lambda: self.running() == replicas, "scale: %d running" % replicas) - t0

    def kill_one(self, replicas):
        allocs = [a for a in self.allocations() if a.get("desired") == "run" and a.get("state") == "running"]
        victim = allocs[len(allocs) // 2]
        tasks = self.get("/v1/tasks", agent=self.by_name[victim["node"]])["tasks"]
        # A service's task is named SERVICE-<first 6 of the allocation id>.
        task = next((t for t in tasks if victim["id"].startswith(t["allocId"]) or t["allocId"] == victim["id"]
                     or t.get("name") == "%s-%s" % (SERVICE, victim["id"][:6])), None)
        if task is None or not task.get("pid"):
            raise RuntimeError("no running task with a pid for allocation %s on %s: %s"
                               % (victim["id"], victim["node"], tasks))
        restarts = int(victim.get("restarts", 0))

        def back():
            allocs = self.allocations()
            if allocs is None:
                return False
            live = [a for a in allocs if a.get("desired") == "run" and a.get("state") == "running"]
            same = next((a for a in live if a["id"] == victim["id"]), None)
            return len(live) == replicas and (same is None or int(same.get("restarts", 0)) > restarts)
        t0 = time.monotonic()
        kill9(int(task["pid"]))
        return wait_for(back, "kill: %d running again" % replicas) - t0

    def remove(self):
        code, out = self.ctl("rm", SERVICE)
        if code != 0 and "does not exist" not in out:
            raise RuntimeError("troupectl rm: %s" % out)
        wait_for(self.no_containers, "remove: no task left", 120, 0.2)

    def stop(self, runc):
        """Service removed, agents stopped, then whatever of theirs is left."""
        problems = []
        alive = [a for a in self.agents if a.proc is not None and a.proc.poll() is None]
        if alive:
            self.ctl("rm", SERVICE, agent=alive[0], timeout=30)
            try:
                wait_for(self.no_containers, "", 60, 0.2)
            except RuntimeError:
                problems.append("Troupe: tasks still listed 60 s after the service was removed")
        self.cl.stop()
        return problems + sweep_agents(runc, self.agents, self.node_ids)


# ---------------------------------------------------------------------------
# Docker Swarm mode: one dockerd of our own in its own network namespace
# ---------------------------------------------------------------------------


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.path)


class Swarm:
    label = "Swarm"
    API = "/v1.41"

    def __init__(self, opts, root):
        self.opts, self.root = opts, root
        self.dir = os.path.join(root, "docker")
        os.makedirs(self.dir)
        self.sock = os.path.join(self.dir, "docker.sock")
        self.data = os.path.join(self.dir, "data")
        self.exec_root = os.path.join(self.dir, "exec")
        self.log = os.path.join(self.dir, "dockerd.log")
        self.cgroup_parent = "troupe-swarm-bench-%d" % os.getpid()
        self.proc = None
        self.containerd = None
        self.key_existed = os.path.exists("/etc/docker/key.json")
        self.env = dict(os.environ, DOCKER_HOST="unix://" + self.sock,
                        DOCKER_CONFIG=os.path.join(self.dir, "cli"))
        self.conn = None
        self.in_swarm = False

    def cli(self, *args, timeout=120):
        return run([self.opts.docker] + list(args), timeout=timeout, env=self.env)

    def api(self, path, timeout=5.0):
        for attempt in (0, 1):
            try:
                if self.conn is None:
                    self.conn = UnixHTTPConnection(self.sock, timeout)
                self.conn.request("GET", self.API + path)
                resp = self.conn.getresponse()
                body = resp.read()
                return json.loads(body) if resp.status == 200 else None
            except (OSError, http.client.HTTPException, ValueError):
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
        return None

    def check_alive(self):
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError("dockerd exited with %s; log %s:\n%s" % (self.proc.returncode, self.log,
                                                                       mb.tail(self.log)))
        return False

    def start(self, rootfs):
        config = os.path.join(self.dir, "daemon.json")
        with open(config, "w") as f:
            f.write("{}\n")
        dockerd = [self.opts.dockerd, "--config-file", config, "--host", "unix://" + self.sock,
                   "--data-root", self.data, "--exec-root", self.exec_root,
                   "--pidfile", os.path.join(self.dir, "docker.pid"), "--cgroup-parent", "/" + self.cgroup_parent,
                   "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-forward=false",
                   "--ip-masq=false"]
        # A network namespace with only lo, up: dockerd, its containerd and
        # the host-network tasks live in it and can reach nothing else.
        # unshare and sh exec, so that the pid stays dockerd's.
        cmd = ["unshare", "--net", "--", "sh", "-c",
               'ip link set lo up && exec env DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 "$@"', "sh"] + dockerd
        self.proc = mb.spawn_logged(cmd, self.log, self.dir)
        wait_for(lambda: self.check_alive() or self.ping(),
                 "dockerd answers on its socket", 60, 0.1)
        self.containerd = self.child_containerd()
        code, out = run(["sh", "-c", 'tar -C "$1" -c . | "$2" import - busybox:1', "sh", rootfs, self.opts.docker],
                        env=self.env)
        if code != 0:
            raise RuntimeError("docker import: %s" % out)
        used = set()
        listen, data_port = mb.free_port(used), mb.free_port(used)
        code, out = self.cli("swarm", "init", "--advertise-addr", "127.0.0.1",
                             "--listen-addr", "127.0.0.1:%d" % listen, "--data-path-addr", "127.0.0.1",
                             "--data-path-port", str(data_port))
        if code != 0:
            raise RuntimeError("docker swarm init: %s" % out)
        self.in_swarm = True

    def ping(self):
        try:
            c = UnixHTTPConnection(self.sock, 1.0)
            c.request("GET", "/_ping")
            ok = c.getresponse().status == 200
            c.close()
            return ok
        except (OSError, http.client.HTTPException):
            return False

    def child_containerd(self):
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % pid) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                with open("/proc/%s/comm" % pid) as f:
                    comm = f.read().strip()
            except OSError:
                continue
            if int(fields[1]) == self.proc.pid and comm == "containerd":
                return int(pid)
        return None

    def versions(self):
        v = self.api("/version") or {}
        return "docker %s (API %s), containerd and runc of Debian" % (v.get("Version"), v.get("ApiVersion"))

    # ---- state

    def status(self):
        doc = self.api('/services?status=true&filters={"name":["%s"]}' % SERVICE)
        if not doc:
            return None
        return next((s for s in doc if s["Spec"]["Name"] == SERVICE), None)

    def running(self):
        s = self.status()
        return -1 if s is None else int(s.get("ServiceStatus", {}).get("RunningTasks", 0))

    def tasks(self):
        doc = self.api('/tasks?filters={"service":["%s"],"desired-state":["running"]}' % SERVICE)
        return None if doc is None else doc

    def no_containers(self):
        doc = self.api("/containers/json?all=1")
        return doc is not None and len(doc) == 0 and self.status() is None

    # ---- operations

    def deploy(self, replicas, m, restart_delay=None):
        args = ["service", "create", "-d", "--name", SERVICE, "--replicas", str(replicas), "--network", "host",
                "--no-resolve-image", "--env", "X=1"]
        if restart_delay:
            args += ["--restart-delay", restart_delay]
        t0 = time.monotonic()
        code, out = self.cli(*(args + ["busybox:1"] + COMMAND))
        if code != 0:
            raise RuntimeError("docker service create: %s" % out)
        return wait_for(lambda: self.running() == replicas, "%s: %d running" % (m, replicas)) - t0

    def update(self, replicas, x, monitor=None):
        args = ["service", "update", "-d", "--env-add", "X=" + x, "--update-parallelism", "2",
                "--no-resolve-image"]
        if monitor:
            args += ["--update-monitor", monitor]
        t0 = time.monotonic()
        code, out = self.cli(*(args + [SERVICE]))
        if code != 0:
            raise RuntimeError("docker service update: %s" % out)

        def done():
            ts = self.api('/tasks?filters={"service":["%s"]}' % SERVICE)
            if ts is None:
                return False
            run_ = [t for t in ts if t["Status"]["State"] == "running"]
            new = [t for t in run_ if "X=" + x in (t["Spec"]["ContainerSpec"].get("Env") or [])
                   and t["DesiredState"] == "running"]
            wanted = [t for t in ts if t["DesiredState"] == "running"]
            new_wanted = sum(1 for t in wanted if "X=" + x in (t["Spec"]["ContainerSpec"].get("Env") or []))
            seen.saw(len(wanted) - new_wanted, new_wanted)
            return len(new) == replicas and len(run_) == replicas
        seen = Batches()
        t_new = wait_for(done, "update: %d of the new spec running" % replicas) - t0

        def completed():
            s = self.status()
            return s is not None and (s.get("UpdateStatus") or {}).get("State") == "completed"
        t_done = wait_for(completed, "update: UpdateStatus completed") - t0
        return t_new, t_done, seen.mixed

    def scale(self, replicas):
        t0 = time.monotonic()
        code, out = self.cli("service", "scale", "-d", "%s=%d" % (SERVICE, replicas))
        if code != 0:
            raise RuntimeError("docker service scale: %s" % out)
        return wait_for(lambda: self.running() == replicas, "scale: %d running" % replicas) - t0

    def kill_one(self, replicas):
        live = [t for t in self.tasks() if t["Status"]["State"] == "running"]
        victim = live[len(live) // 2]
        pid = (victim["Status"].get("ContainerStatus") or {}).get("PID")
        if not pid:
            raise RuntimeError("task %s has no container pid" % victim["ID"])

        def back():
            ts = self.tasks()
            if ts is None:
                return False
            live = [t for t in ts if t["Status"]["State"] == "running"]
            return len(live) == replicas and all(t["ID"] != victim["ID"] for t in live)
        t0 = time.monotonic()
        kill9(int(pid))
        return wait_for(back, "kill: %d running again" % replicas) - t0

    def remove(self):
        code, out = self.cli("service", "rm", SERVICE)
        if code != 0 and "not found" not in out:
            raise RuntimeError("docker service rm: %s" % out)
        wait_for(self.no_containers, "remove: no container left", 120, 0.2)

    def pulls(self):
        """Lines of dockerd's log that speak of pulling or of a registry."""
        try:
            with open(self.log, errors="replace") as f:
                return [line.rstrip() for line in f
                        if re.search(r"pull|registry-1\.docker\.io|index\.docker\.io", line, re.I)]
        except OSError:
            return []

    def stop(self, runc):
        problems = []
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        if self.proc is not None and self.proc.poll() is None:
            if self.in_swarm:
                self.cli("service", "rm", SERVICE, timeout=30)
                try:
                    wait_for(self.no_containers, "", 60, 0.2)
                except RuntimeError:
                    problems.append("Swarm: containers left 60 s after the service was removed")
                code, out = self.cli("swarm", "leave", "--force", timeout=60)
                if code != 0:
                    problems.append("Swarm: swarm leave: %s" % out)
            if self.containerd is None:
                self.containerd = self.child_containerd()
            mb.stop_procs([self.proc], grace=30.0)
        elif self.proc is not None:
            mb.stop_procs([self.proc], grace=0)
        # dockerd stops its containerd; one that outlived it is stopped here,
        # by the pid it had as dockerd's child.
        if self.containerd is not None and pid_is(self.containerd, "containerd"):
            problems.append("Swarm: containerd %d outlived dockerd; stopping it" % self.containerd)
            stop_pid(self.containerd)
        sock = os.path.join(self.exec_root, "containerd", "containerd.sock")
        shims = [pid for pid in all_pids() if ("-address " + sock) in cmdline(pid)]
        if shims:
            problems.append("Swarm: killed shims left over: %s" % shims)
            for pid in shims:
                try:
                    kill9(pid)
                except ProcessLookupError:
                    pass
        left = runc_delete_all(runc, os.path.join(self.exec_root, "runtime-runc", "moby"))
        if left:
            problems.append("Swarm: deleted runc containers left over: %s" % left)
        pids, dirs = remove_cgroup_parent(self.cgroup_parent)
        if pids:
            problems.append("Swarm: killed processes left in its cgroups: %s" % pids)
        if dirs:
            problems.append("Swarm: cgroups not removed: %s" % dirs)
        if not self.key_existed and os.path.exists("/etc/docker/key.json"):
            os.remove("/etc/docker/key.json")  # dockerd's trust key, written on its first start
        return problems


def all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def pid_is(pid, comm):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip() == comm
    except OSError:
        return False


def stop_pid(pid, grace=10.0):
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and os.path.exists("/proc/%d" % pid):
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# ---------------------------------------------------------------------------
# the measures
# ---------------------------------------------------------------------------


def cpu_idle_share(seconds):
    """The share of this machine's CPU time that was idle over `seconds`."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return v[3] + v[4], sum(v[:8])
    i0, t0 = sample()
    time.sleep(seconds)
    i1, t1 = sample()
    return (i1 - i0) / max(1, t1 - t0)


def settle(limit=60.0, idle=0.85, window=2.0):
    """Waits until the machine is quiet (`idle` of its CPU over `window`
    seconds), at most `limit` seconds: a system just started (dockerd and
    containerd after swarm init, agents after joining) keeps working for a
    while, and that must not land on the other system's first round.
    Returns the seconds waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit and cpu_idle_share(window) < idle:
        pass
    return time.monotonic() - t0


def measure(system, rnd):
    r = {"system": system.label, "round": rnd, "settled_s": settle(), "loadavg_before": mb.loadavg()}
    r["deploy_10"] = system.deploy(10, "deploy 10")
    r["update_10"], r["update_done"], r["update_batched"] = system.update(10, "2")
    r["update_fast"], r["update_fast_done"], r["update_fast_batched"] = system.update(10, "3", FAST_MONITOR)
    r["kill_10"] = system.kill_one(10)
    system.remove()
    if isinstance(system, Swarm):
        r["deploy_50"] = system.deploy(50, "deploy 50", restart_delay="1s")
    else:
        r["deploy_50"] = system.deploy(50, "deploy 50")
    r["scale_100"] = system.scale(100)
    r["kill_100"] = system.kill_one(100)
    system.remove()
    r["loadavg_after"] = mb.loadavg()
    return r


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return None if n == 0 else (xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2)


def summarize(rounds):
    rows = []
    for key, what in MEASURES:
        t = median([r[key] for r in rounds if r["system"] == "Troupe"])
        s = median([r[key] for r in rounds if r["system"] == "Swarm"])
        ratio = s / t if t and s else None
        rows.append({"measure": key, "what": what, "troupe_s": t, "swarm_s": s, "swarm_over_troupe": ratio})
    return rows


def print_summary(rows, rounds, n):
    print("\nmedians of %d rounds (Swarm / Troupe > 1: Troupe is faster; the issue's goal is >= 3x)" % n)
    print("%-66s %9s %9s %14s" % ("measure", "Troupe", "Swarm", "Swarm/Troupe"))
    for r in rows:
        ratio = r["swarm_over_troupe"]
        goal = "" if r["measure"].endswith("_done") else (" goal met" if ratio and ratio >= 3 else " goal NOT met")
        if r["measure"].startswith("update"):
            flag = "update_fast_batched" if r["measure"].startswith("update_fast") else "update_batched"
            unbatched = sorted({x["system"] for x in rounds if not x[flag]})
            if unbatched:
                goal = " NOT COMPARABLE: %s replaced all at once (no batches seen)" % "/".join(unbatched)
        print("%-66s %8.2fs %8.2fs %13.2fx%s" % (r["what"], r["troupe_s"], r["swarm_s"], ratio or 0, goal))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--troupe", default=os.path.join(repo, "build/release/tools/troupe"))
    ap.add_argument("--troupectl", default=os.path.join(repo, "build/release/tools/troupectl"))
    ap.add_argument("--docker", default="/usr/bin/docker", help="docker CLI of Debian's docker.io")
    ap.add_argument("--dockerd", default="/usr/sbin/dockerd")
    ap.add_argument("--runc", default=shutil.which("runc") or "/usr/sbin/runc")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per system (3)")
    ap.add_argument("--agents", type=int, default=3, help="Troupe agents, all Raft voters (3; Swarm runs one node)")
    ap.add_argument("--systems", default="troupe,swarm", help="troupe, swarm or both (troupe,swarm)")
    ap.add_argument("--json", help="write every sample to this file")
    ap.add_argument("--commit", help="the commit the Troupe binaries were built from, for the report "
                    "(default: this checkout's HEAD, +changes when its tracked files differ)")
    ap.add_argument("--keep-logs", help="copy the agents' and dockerd's logs into this directory")
    opts = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("swarm_bench: needs root (runc containers, overlay mounts, a network namespace)")
    want = [s.strip() for s in opts.systems.split(",") if s.strip()]
    need = []
    if "troupe" in want:
        need += [opts.troupe, opts.troupectl]
    if "swarm" in want:
        need += [opts.docker, opts.dockerd]
    for b in need + [opts.runc]:
        if not os.access(b, os.X_OK):
            sys.exit("swarm_bench: %s is missing (build Troupe; apt-get install docker.io)" % b)
    if "troupe" in want and not os.environ.get("TROUPE_SHIM"):
        shim = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(opts.troupe))),
                            "actors", "node", "runc", "troupe-shim")
        if os.access(shim, os.X_OK):
            os.environ["TROUPE_SHIM"] = shim

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    root = tempfile.mkdtemp(prefix="troupe-swarm-bench.")
    systems = []
    out = {"rounds": [], "config": {"rounds": opts.rounds, "command": COMMAND},
           "machine": {"nproc": os.cpu_count(), "kernel": os.uname().release, "loadavg_start": mb.loadavg()}}
    code = 0
    problems = []
    pulls = []
    try:
        rootfs = os.path.join(root, "rootfs")
        make_rootfs(rootfs)
        if "troupe" in want:
            systems.append(Troupe(opts, root))
        if "swarm" in want:
            systems.append(Swarm(opts, root))
        for s in systems:
            s.start(rootfs)
        if opts.commit:
            out["machine"]["commit"] = opts.commit
        else:
            commit = run(["git", "-C", repo, "rev-parse", "--short", "HEAD"])[1]
            dirty = run(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"])[1]
            out["machine"]["commit"] = commit + ("+changes" if dirty else "")
        out["machine"]["runc"] = run([opts.runc, "--version"])[1].splitlines()[0]
        for s in systems:
            out["machine"][s.label.lower()] = s.versions() if isinstance(s, Swarm) else s.version()
        print("swarm_bench: %d CPUs, kernel %s, troupe %s, %s; %s" % (
            os.cpu_count(), os.uname().release, out["machine"]["commit"], out["machine"]["runc"],
            "; ".join(out["machine"].get(s.label.lower(), "") for s in systems)), flush=True)
        for rnd in range(1, opts.rounds + 1):
            order = systems if rnd % 2 == 1 else list(reversed(systems))
            for s in order:
                t = time.monotonic()
                r = measure(s, rnd)
                out["rounds"].append(r)
                print("round %d %-6s deploy->10 %.2f s; update 10 (par 2) %.2f s, done %.2f s%s; "
                      "monitor %s: %.2f s, done %.2f s%s; kill->10 %.2f s; "
                      "deploy->50 %.2f s; scale->100 %.2f s; kill->100 %.2f s (%.0f s after %.0f s settling; load %s)" % (
                          rnd, s.label, r["deploy_10"], r["update_10"], r["update_done"],
                          "" if r["update_batched"] else " (not in batches)", FAST_MONITOR, r["update_fast"],
                          r["update_fast_done"], "" if r["update_fast_batched"] else " (not in batches)",
                          r["kill_10"],
                          r["deploy_50"], r["scale_100"], r["kill_100"], time.monotonic() - t - r["settled_s"],
                          r["settled_s"],
                          r["loadavg_after"][0] if r["loadavg_after"] else "?"), flush=True)
        if len(systems) == 2:
            out["summary"] = summarize(out["rounds"])
            print_summary(out["summary"], out["rounds"], opts.rounds)
    except (Interrupted, KeyboardInterrupt) as e:
        print("swarm_bench: interrupted (%s); cleaning up" % e, file=sys.stderr)
        code = 130
    except Exception as e:  # noqa: BLE001 - report, clean up, fail
        print("swarm_bench: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if opts.keep_logs:
            os.makedirs(opts.keep_logs, exist_ok=True)
            for s in systems:
                if isinstance(s, Troupe):
                    s.cl.keep_logs(opts.keep_logs, "troupe")
                elif os.path.exists(s.log):
                    shutil.copy(s.log, os.path.join(opts.keep_logs, "dockerd.log"))
        for s in systems:
            try:
                problems += s.stop(opts.runc)
            except Exception as e:  # noqa: BLE001 - the other system still gets cleaned up
                problems.append("%s: cleanup failed: %s" % (s.label, e))
            if isinstance(s, Swarm):
                pulls = s.pulls()
        left = unmount_all_under(root)
        if left:
            problems.append("mounts remain under %s; not removing it: %s" % (root, left))
        else:
            shutil.rmtree(root, ignore_errors=True)
    for p in problems:
        print("swarm_bench: cleanup: %s" % p, file=sys.stderr)
    out["cleanup_problems"] = problems
    out["dockerd_pull_lines"] = pulls
    if pulls:
        print("swarm_bench: FAILED: dockerd's log shows a pull or registry lookup:\n  %s" % "\n  ".join(pulls[:20]),
              file=sys.stderr)
        code = code or 1
    elif any(isinstance(s, Swarm) for s in systems):
        print("swarm_bench: dockerd's log shows no pull and no registry lookup")
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump(out, f, indent=1)
    return code


if __name__ == "__main__":
    sys.exit(main())
