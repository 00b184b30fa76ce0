#!/usr/bin/env python3
"""Services on a real Troupe cluster on loopback: time to deploy, and
failover after kill -9 of a client agent (issue 6: under 3 s).

Three servers and three clients (`--client`), every one a `troupe agent`
with default settings and `--driver process` (the tasks are host commands:
`sleep 1000`; no container runtime is measured), or with `--driver runc`
real runc containers of a busybox rootfs (needs root and runc). Each round:

  1. deploy 10 replicas held to the clients (node.role == client) and time
     it until all 10 run;
  2. kill -9 the client that runs the most of them and time it until 10
     run again, none on the dead client;
  3. remove the service, start the dead client again (it stops the tasks it
     still ran: the state no longer has them) and wait until no task is left.

Prints one line per round and the medians; --json FILE keeps every sample.
Every agent and task it started is gone at the end, also after an error or
Ctrl-C (the service is removed and the tasks stopped by their agents; the
agents then get SIGTERM).

  services_bench.py --troupe build/release/tools/troupe --troupectl build/release/tools/troupectl [--rounds 3]
      [--driver process|runc]
"""
import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import membership_bench as mb  # noqa: E402 - agents, ports, process cleanup
import swarm_bench as sb  # noqa: E402 - the busybox rootfs, runc and cgroup cleanup
from raft_bench import http_json  # noqa: E402

SPEC = """name: bench
image: bench:1
command: %s
replicas: 10
constraints: ['node.role == client']
resources: {cpu: 10m, memory: 16Mi}
"""


class ClientSide(mb.TroupeSide):
    """Servers s1..s3, then clients c1..c3."""
    prefix = "a"
    driver = "process"

    def command(self, agent, seed):
        cmd = super().command(agent, seed)
        cmd[cmd.index("--driver") + 1] = self.driver
        if agent.idx > 3:
            cmd.append("--client")
        return cmd


def ctl(opts, agent, *args):
    out = mb.run_quiet([opts.troupectl, "--addr", "127.0.0.1:%d" % agent.ports["http"]] + list(args))
    return out


def allocations(server):
    doc = http_json(server.ports["http"], "GET", "/v1/allocations?service=bench", None, 2.0)
    return None if doc is None else [a for a in doc.get("allocations", []) if a.get("desired") == "run"]


def running_on(server, dead=None):
    allocs = allocations(server)
    if allocs is None:
        return None
    return sum(1 for a in allocs if a.get("state") == "running" and a.get("node") != dead)


def local_tasks(agent):
    doc = http_json(agent.ports["http"], "GET", "/v1/tasks", None, 2.0)
    return None if doc is None else [t for t in doc.get("tasks", []) if t.get("name", "").startswith("bench-")]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--troupe", default="build/release/tools/troupe")
    p.add_argument("--troupectl", default="build/release/tools/troupectl")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--driver", choices=["process", "runc"], default="process")
    p.add_argument("--runc", default=shutil.which("runc") or "/usr/sbin/runc")
    p.add_argument("--json")
    opts = p.parse_args()
    if opts.driver == "runc" and (os.geteuid() != 0 or not os.access(opts.runc, os.X_OK)):
        sys.exit("services_bench: --driver runc needs root and runc (%s)" % opts.runc)
    for b in (opts.troupe, opts.troupectl):
        if not os.access(b, os.X_OK):
            sys.exit("services_bench: %s is not an executable (build it first)" % b)
    signal.signal(signal.SIGTERM, mb.on_signal)
    root = tempfile.mkdtemp(prefix="troupe-services-bench.")
    side = ClientSide(os.path.abspath(opts.troupe), None)
    side.driver = opts.driver
    cl = mb.Cluster(side, 6, root)
    node_ids = {}
    names = ["s1", "s2", "s3", "c1", "c2", "c3"]
    for a, n in zip(cl.agents, names):
        a.name = n
    servers, clients = cl.agents[:3], cl.agents[3:]
    samples = []
    try:
        cl.spawn(servers[0], None)
        time.sleep(1.0)
        for a in cl.agents[1:]:
            cl.spawn(a, servers[0])
        rootfs = os.path.join(root, "rootfs")
        if opts.driver == "runc":
            sb.make_rootfs(rootfs)
        else:
            os.makedirs(os.path.join(rootfs, "etc"))

        def ready():
            cl.check_alive()
            raft = http_json(servers[0].ports["http"], "GET", "/v1/raft", None, 1.0)
            nodes = http_json(servers[0].ports["http"], "GET", "/v1/nodes", None, 1.0)
            return raft and len(raft.get("voters", [])) == 3 and nodes and \
                sum(1 for n in nodes.get("nodes", []) if n.get("state") == "alive") == 6

        if not mb.wait_until(ready, 60, 0.2):
            raise RuntimeError("no 3 voters and 6 alive nodes within 60 s:\n" + mb.tail(servers[0].log))
        for a in cl.agents:
            st = http_json(a.ports["http"], "GET", "/v1/status", None, 2.0)
            if not st or not st.get("id"):
                raise RuntimeError("no node id from %s" % a.name)
            node_ids[a.name] = st["id"]
            out = ctl(opts, a, "image", "import", rootfs, "--name", "bench:1")
            if out[0] != 0:
                raise RuntimeError("image import on %s: %s" % (a.name, out[1]))
        spec = os.path.join(root, "bench.yaml")
        with open(spec, "w") as f:
            f.write(SPEC % ("[sleep, '1000']" if opts.driver == "process" else json.dumps(sb.COMMAND)))

        for rnd in range(1, opts.rounds + 1):
            leader = servers[0]
            t0 = time.time()
            out = ctl(opts, leader, "deploy", "-f", spec)
            if out[0] != 0:
                raise RuntimeError("deploy: %s" % out[1])
            if not mb.wait_until(lambda: running_on(leader) == 10, 30, 0.02):
                raise RuntimeError("10 did not run within 30 s: %s" % allocations(leader))
            deploy_s = time.time() - t0
            per = {}
            for a in allocations(leader):
                per[a["node"]] = per.get(a["node"], 0) + 1
            victim_name = max(sorted(per), key=lambda n: per[n])
            victim = next(a for a in clients if a.name == victim_name)
            t0 = time.time()
            victim.proc.send_signal(signal.SIGKILL)
            victim.proc.wait()
            if not mb.wait_until(lambda: running_on(leader, dead=victim_name) == 10 and
                                 all(a["node"] != victim_name for a in allocations(leader) or []), 60, 0.02):
                raise RuntimeError("the dead client's tasks did not run elsewhere within 60 s: %s" %
                                   allocations(leader))
            failover_s = time.time() - t0
            samples.append({"round": rnd, "deploy_s": deploy_s, "failover_s": failover_s,
                            "moved": per[victim_name]})
            print("round %d: deploy -> 10 running %.2f s; kill -9 of %s (%d tasks) -> 10 running elsewhere %.2f s"
                  % (rnd, deploy_s, victim_name, per[victim_name], failover_s), flush=True)
            # Clean up the round: the service goes, the dead client comes back
            # and stops what it still ran, and every node is idle again.
            ctl(opts, leader, "rm", "bench")
            cl.spawn(victim, servers[0])
            if not mb.wait_until(lambda: all(local_tasks(a) == [] for a in clients), 60, 0.2):
                raise RuntimeError("tasks left after the round: %s" % [(a.name, local_tasks(a)) for a in clients])
            if not mb.wait_until(lambda: allocations(leader) == [], 30, 0.2):
                raise RuntimeError("allocations left after the round: %s" % allocations(leader))
    finally:
        # Whatever still runs of the service stops before its agent does.
        alive = [a for a in servers if a.proc and a.proc.poll() is None]
        if alive:
            ctl(opts, alive[0], "rm", "bench")
            mb.wait_until(lambda: all(local_tasks(a) in ([], None) for a in clients), 20, 0.2)
        cl.stop()
        if opts.driver == "runc":
            for problem in sb.sweep_agents(opts.runc, cl.agents, node_ids):
                print("services_bench: " + problem, file=sys.stderr)
            left = sb.unmount_all_under(root)
            if left:
                print("services_bench: mounts left under %s: %s" % (root, left), file=sys.stderr)
        shutil.rmtree(root, ignore_errors=True)
    if samples:
        med = lambda k: sorted(s[k] for s in samples)[len(samples) // 2]  # noqa: E731
        print("median: deploy -> 10 running %.2f s; failover after kill -9 of a client %.2f s (goal < 3 s: %s)"
              % (med("deploy_s"), med("failover_s"), "met" if med("failover_s") < 3 else "NOT met"))
        if opts.json:
            with open(opts.json, "w") as f:
                json.dump(samples, f, indent=1)


if __name__ == "__main__":
    main()
