#!/usr/bin/env python3
"""Image pulls (issue 7): Troupe's registry client side by side with skopeo,
and what a three-node simultaneous pull costs the upstream registry.

Both sides pull from one docker-registry (Debian's, distribution 2.8) on
127.0.0.1 with a temporary storage root and its access log in a file. The
image is built here: an OCI layout of --layers uncompressed tar layers of
random (incompressible) bytes, about --size-mb in all, pushed with
`skopeo copy --preserve-digests`.

  1. Single pull, --rounds rounds (plus --warmup unrecorded ones), the two
     sides alternating which goes first:
       Troupe: POST /v1/images/pull of 127.0.0.1:P/big:1 to one agent
               (--driver process, its own data dir); then POST
               /v1/images/gc {all: true}, which removes the image and its
               blobs, and check that the blob store is empty, so that every
               round pulls afresh;
       skopeo: skopeo copy docker://127.0.0.1:P/big:1 dir:<fresh dir>.
     Wall time from request to answer (Troupe) or exec to exit (skopeo),
     bytes/s over the image's blob bytes, and the CPU each side took.
  2. Three nodes: three agents form a cluster (the first bootstraps, the
     others --seed it), an image of other random bytes is pushed, and all
     three are asked to pull it at once. The registry's access log then
     says how many bytes it served for blob GETs answered 200; divided by
     the image's blob bytes, that is the upstream ratio (goal 1.0: each
     blob crosses from the registry once, then between the nodes).

Every process it starts is stopped by PID and every temporary dir removed at
the end, also after an error, Ctrl-C or SIGTERM. Nothing asserts on a
timing; the exit status is non-zero only when a step fails.

  image_bench.py --troupe build/release/tools/troupe [--rounds 5] [--json FILE]
"""
import argparse
import hashlib
import http.client
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import membership_bench as mb  # noqa: E402 - agents, ports, process cleanup

CLK_TCK = os.sysconf("SC_CLK_TCK")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


# ---------------------------------------------------------------------------
# the image: an OCI layout of random uncompressed layers
# ---------------------------------------------------------------------------

def go_arch():
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(m, m)


def put_blob(layout, data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(layout, "blobs", "sha256", d), "wb") as f:
        f.write(data)
    return "sha256:" + d, len(data)


def build_layout(layout, tag, layers, layer_bytes):
    """An OCI layout with one image under tag: `layers` plain tar layers,
    each one file of layer_bytes random bytes. Returns the blobs' total
    size (config and layers) and the layer digests."""
    os.makedirs(os.path.join(layout, "blobs", "sha256"))
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion": "1.0.0"}')
    descs, diff_ids = [], []
    for i in range(layers):
        tmp = os.path.join(layout, "layer.tar")
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
            payload = os.urandom(layer_bytes)
            info = tarfile.TarInfo("data/layer-%d.bin" % i)
            info.size, info.mode, info.mtime = len(payload), 0o644, 0
            src = os.path.join(layout, "payload")
            with open(src, "wb") as f:
                f.write(payload)
            with open(src, "rb") as f:
                tar.addfile(info, f)
            os.unlink(src)
        with open(tmp, "rb") as f:
            data = f.read()
        os.unlink(tmp)
        digest, size = put_blob(layout, data)
        descs.append({"mediaType": OCI_LAYER, "digest": digest, "size": size})
        diff_ids.append(digest)  # uncompressed: the diff_id is the blob's digest
    config = json.dumps({"architecture": go_arch(), "os": "linux", "config": {"Cmd": ["/bin/sh"]},
                         "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode()
    cdigest, csize = put_blob(layout, config)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": OCI_CONFIG, "digest": cdigest, "size": csize},
                           "layers": descs}).encode()
    mdigest, msize = put_blob(layout, manifest)
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": OCI_MANIFEST, "digest": mdigest, "size": msize,
        "annotations": {"org.opencontainers.image.ref.name": tag}}]}
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump(index, f)
    return {"blob_bytes": csize + sum(d["size"] for d in descs), "manifest": mdigest,
            "blobs": [cdigest] + [d["digest"] for d in descs]}


# ---------------------------------------------------------------------------
# the registry
# ---------------------------------------------------------------------------

class Registry:
    def __init__(self, binary, root):
        self.dir = os.path.join(root, "registry")
        os.makedirs(os.path.join(self.dir, "storage"))
        self.port = mb.free_port(set())
        self.log = os.path.join(self.dir, "registry.log")
        self.syncs = 0
        config = os.path.join(self.dir, "config.yml")
        with open(config, "w") as f:
            f.write("version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: false\n"
                    "storage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\n"
                    "http:\n  addr: 127.0.0.1:%d\n  secret: troupe-bench-secret\n"
                    % (os.path.join(self.dir, "storage"), self.port))
        self.proc = mb.spawn_logged([binary, "serve", config], self.log, self.dir)
        if not mb.wait_until(lambda: self.status("/v2/") == 200 or self.proc.poll() is not None, 15, 0.05) \
                or self.proc.poll() is not None:
            raise RuntimeError("docker-registry did not answer on 127.0.0.1:%d:\n%s" % (self.port, mb.tail(self.log)))

    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    def status(self, path):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            r.read()
            return r.status
        except OSError:
            return 0
        finally:
            conn.close()

    def synced_log(self):
        """The access log once every request answered so far is in it (the
        registry writes a line after its response): a marker request is
        sent and waited for."""
        self.syncs += 1
        marker = "/v2/troupe-sync/%d/tags/list" % self.syncs
        self.status(marker)
        text = ""
        for _ in range(100):
            with open(self.log, errors="replace") as f:
                text = f.read()
            if marker in text:
                break
            time.sleep(0.05)
        return text

    BLOB_GET = re.compile(r'"GET /v2/(\S+)/blobs/(sha256:[0-9a-f]{64})(?:\?\S*)? HTTP/1\.[01]" (\d{3}) (\d+)')

    def blob_gets(self, text):
        """[(repo, digest, status, bytes)] of the blob GETs in text."""
        return [(m.group(1), m.group(2), int(m.group(3)), int(m.group(4))) for m in self.BLOB_GET.finditer(text)]


def skopeo(args, cwd):
    r = subprocess.run(["skopeo", "--insecure-policy"] + args, cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise RuntimeError("skopeo %s failed (%d):\n%s" % (" ".join(args), r.returncode, r.stdout))


def push(layout, tag, registry, repo, cwd):
    skopeo(["copy", "--dest-tls-verify=false", "--preserve-digests", "oci:%s:%s" % (layout, tag),
            "docker://%s/%s:%s" % (registry.host, repo, tag)], cwd)


# ---------------------------------------------------------------------------
# the agents
# ---------------------------------------------------------------------------

class LocalSide(mb.TroupeSide):
    """Agents with loopback gossip timings and the process driver."""

    def command(self, agent, seed):
        return super().command(agent, seed) + ["--gossip-profile", "local", "--log-level", "info"]


def request(agent, method, path, body=None, timeout=900.0):
    """(status, decoded JSON or text) on a new connection."""
    conn = http.client.HTTPConnection("127.0.0.1", agent.ports["http"], timeout=timeout)
    try:
        data = json.dumps(body) if body is not None else None
        headers = dict(mb.AUTH, **({"Content-Type": "application/json"} if data else {}))
        conn.request(method, path, body=data, headers=headers)
        r = conn.getresponse()
        text = r.read().decode(errors="replace")
        try:
            return r.status, json.loads(text)
        except ValueError:
            return r.status, text
    finally:
        conn.close()


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def blob_files(agent):
    d = os.path.join(agent.dir, "data", "images", "blobs")
    n = 0
    for _, _, files in os.walk(d):
        n += len(files)
    return n


def wait_ready(cl, n):
    def ready():
        cl.check_alive()
        for a in cl.agents:
            try:
                code, doc = request(a, "GET", "/v1/members", timeout=2)
            except (OSError, http.client.HTTPException):
                return False  # not listening yet
            if code != 200 or sum(1 for m in doc.get("members", []) if m.get("state") == "alive") != n:
                return False
        return True
    if not mb.wait_until(ready, 60, 0.1):
        raise RuntimeError("%d agents did not see each other alive within 60 s:\n%s" % (n, mb.tail(cl.agents[0].log)))


def pull_troupe(agent, ref):
    cpu0 = cpu_seconds(agent.pid)
    t0 = time.monotonic()
    code, doc = request(agent, "POST", "/v1/images/pull", {"image": ref})
    took = time.monotonic() - t0
    if code != 200:
        raise RuntimeError("POST /v1/images/pull %s: HTTP %d %s\n%s" % (ref, code, doc, mb.tail(agent.log)))
    return took, cpu_seconds(agent.pid) - cpu0, doc


def forget(agent):
    """Removes every image with its blobs, so that the next pull fetches
    everything again. gc --all, not DELETE then gc: a DELETE leaves the
    blobs as orphans, which gc keeps for 10 minutes (a pull in flight has
    blobs no image names yet)."""
    code, doc = request(agent, "POST", "/v1/images/gc", {"all": True}, timeout=60)
    if code != 200:
        raise RuntimeError("POST /v1/images/gc: HTTP %d %s" % (code, doc))
    left = blob_files(agent)
    if left:
        raise RuntimeError("%d files left in the blob store after gc --all: %s" % (left, doc))
    return doc


def pull_skopeo(ref, dest):
    t0 = time.monotonic()
    proc = subprocess.Popen(["skopeo", "--insecure-policy", "copy", "--src-tls-verify=false", "docker://" + ref,
                             "dir:" + dest], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    mb.PROCS.append(proc)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    took = time.monotonic() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    mb.PROCS.remove(proc)
    if proc.returncode != 0:
        raise RuntimeError("skopeo copy %s failed (%d):\n%s" % (ref, proc.returncode, out.decode(errors="replace")))
    return took, usage.ru_utime + usage.ru_stime


# ---------------------------------------------------------------------------
# the phases
# ---------------------------------------------------------------------------

def single_phase(opts, root, registry, image):
    ref = registry.host + "/big:1"
    cl = mb.Cluster(LocalSide(os.path.abspath(opts.troupe), None), 1, root)
    agent = cl.agents[0]
    samples = []
    try:
        cl.spawn(agent, None)
        wait_ready(cl, 1)
        for rnd in range(-opts.warmup + 1, opts.rounds + 1):
            order = ("troupe", "skopeo") if rnd % 2 else ("skopeo", "troupe")
            row = {"round": rnd}
            for side in order:
                if side == "troupe":
                    took, cpu, rec = pull_troupe(agent, ref)
                    if int(rec.get("sizeBytes", 0)) + 0 < image["blob_bytes"] - 1_000_000:
                        raise RuntimeError("the pulled image is %s bytes, not about %d" % (rec.get("sizeBytes"), image["blob_bytes"]))
                    gone = forget(agent)
                    if rec["name"] not in gone.get("removed", []):
                        raise RuntimeError("gc --all did not remove %s: %s" % (rec["name"], gone))
                else:
                    dest = os.path.join(root, "skopeo-%d" % (rnd + opts.warmup))
                    took, cpu = pull_skopeo(ref, dest)
                    shutil.rmtree(dest)
                row[side] = {"wall_s": took, "cpu_s": cpu}
            if rnd >= 1:
                samples.append(row)
            print("round %s: troupe %.2f s (cpu %.2f s), skopeo %.2f s (cpu %.2f s)%s"
                  % (rnd, row["troupe"]["wall_s"], row["troupe"]["cpu_s"], row["skopeo"]["wall_s"],
                     row["skopeo"]["cpu_s"], "" if rnd >= 1 else "  (warm-up, not counted)"), flush=True)
    finally:
        if opts.keep_logs:
            cl.keep_logs(opts.keep_logs, "single")
        cl.stop()
    return samples


def cluster_phase(opts, root, registry, tag_dir):
    image = build_layout(os.path.join(tag_dir, "layout2"), "1", opts.layers, opts.layer_bytes)
    push(os.path.join(tag_dir, "layout2"), "1", registry, "big3", tag_dir)
    ref = registry.host + "/big3:1"
    cl = mb.Cluster(LocalSide(os.path.abspath(opts.troupe), None), 3, root)
    try:
        cl.spawn(cl.agents[0], None)
        time.sleep(1.0)
        for a in cl.agents[1:]:
            cl.spawn(a, cl.agents[0])
        wait_ready(cl, 3)
        before = len(registry.synced_log())
        results = [None] * 3
        start = threading.Barrier(3)

        def one(i):
            start.wait()
            try:
                results[i] = pull_troupe(cl.agents[i], ref)
            except Exception as e:  # reported below
                results[i] = e
        threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i, r in enumerate(results):
            if isinstance(r, Exception):
                raise RuntimeError("node %s: %s" % (cl.agents[i].name, r))
        gets = registry.blob_gets(registry.synced_log()[before:])
        served = sum(b for repo, d, st, b in gets if st == 200)
        per_blob = {}
        for repo, d, st, b in gets:
            if st == 200:
                per_blob[d] = per_blob.get(d, 0) + 1
        out = {"blob_bytes": image["blob_bytes"], "served_bytes": served,
               "ratio": served / image["blob_bytes"],
               "gets_200": sum(1 for g in gets if g[2] == 200), "gets_other": sum(1 for g in gets if g[2] != 200),
               "max_gets_per_blob": max(per_blob.values()) if per_blob else 0,
               "wall_s": [r[0] for r in results], "sources": [r[2].get("source") for r in results]}
        print("three nodes at once: the registry served %d bytes of blobs for an image of %d: %.2fx "
              "(%d blob GETs answered 200, at most %d per blob; pulls took %s s; sources %s)"
              % (served, image["blob_bytes"], out["ratio"], out["gets_200"], out["max_gets_per_blob"],
                 ", ".join("%.2f" % w for w in out["wall_s"]), out["sources"]), flush=True)
        return out
    finally:
        if opts.keep_logs:
            cl.keep_logs(opts.keep_logs, "cluster")
        cl.stop()


def machine_info(opts):
    def first_line(args):
        try:
            return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True).stdout.splitlines()[0]
        except (OSError, IndexError):
            return "?"
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"cpus": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
            "skopeo": first_line(["skopeo", "--version"]),
            "registry": first_line([opts.registry, "--version"]),
            "troupe": first_line([opts.troupe, "--version"]),
            "load": os.getloadavg()}


def report(samples, image, cluster):
    if samples:
        mb_of = image["blob_bytes"] / 1e6
        t = statistics.median(s["troupe"]["wall_s"] for s in samples)
        s = statistics.median(s["skopeo"]["wall_s"] for s in samples)
        tc = statistics.median(x["troupe"]["cpu_s"] for x in samples)
        sc = statistics.median(x["skopeo"]["cpu_s"] for x in samples)
        print()
        print("image: %d layers, %.1f MB of blobs; %d rounds, medians" % (len(image["blobs"]) - 1, mb_of, len(samples)))
        print("| what | Troupe | skopeo | Troupe / skopeo |")
        print("| --- | ---: | ---: | ---: |")
        print("| pull, wall time (s) | %.2f | %.2f | %.2fx |" % (t, s, t / s))
        print("| pull, MB/s | %.0f | %.0f | %.2fx |" % (mb_of / t, mb_of / s, s / t))
        print("| CPU per pull (s) | %.2f | %.2f | %.2fx |" % (tc, sc, tc / sc if sc else float("nan")))
        print("| fastest / slowest round (s) | %.2f / %.2f | %.2f / %.2f | |"
              % (min(x["troupe"]["wall_s"] for x in samples), max(x["troupe"]["wall_s"] for x in samples),
                 min(x["skopeo"]["wall_s"] for x in samples), max(x["skopeo"]["wall_s"] for x in samples)))
    if cluster:
        print("| three nodes at once: upstream bytes / image bytes (goal 1.0) | %.2f | | |" % cluster["ratio"])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--troupe", default="build/release/tools/troupe")
    p.add_argument("--registry", default="/usr/bin/docker-registry")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1, help="unrecorded rounds first")
    p.add_argument("--layers", type=int, default=5)
    p.add_argument("--size-mb", type=float, default=100.0, help="about this many MB (10^6 bytes) of layers")
    p.add_argument("--phases", default="single,cluster")
    p.add_argument("--keep-logs", help="copy every agent's and the registry's log here")
    p.add_argument("--json")
    opts = p.parse_args()
    opts.layer_bytes = int(opts.size_mb * 1e6 / opts.layers)
    for b in (opts.troupe, opts.registry):
        if not os.access(b, os.X_OK):
            sys.exit("image_bench: %s is not an executable (build or install it first)" % b)
    if shutil.which("skopeo") is None:
        sys.exit("image_bench: skopeo is not installed")
    signal.signal(signal.SIGTERM, mb.on_signal)
    phases = set(opts.phases.split(","))
    root = tempfile.mkdtemp(prefix="troupe-image-bench.")
    registry = None
    info = machine_info(opts)
    print("image_bench: %d CPUs, %s, kernel %s; %s; %s; %s; load %.1f %.1f %.1f"
          % (info["cpus"], info["cpu"], info["kernel"], info["skopeo"], info["registry"], info["troupe"],
             *info["load"]), flush=True)
    samples, cluster, image = [], None, None
    try:
        registry = Registry(opts.registry, root)
        build = os.path.join(root, "build")
        os.makedirs(build)
        image = build_layout(os.path.join(build, "layout"), "1", opts.layers, opts.layer_bytes)
        push(os.path.join(build, "layout"), "1", registry, "big", build)
        shutil.rmtree(os.path.join(build, "layout"))
        if "single" in phases:
            samples = single_phase(opts, root, registry, image)
        if "cluster" in phases:
            cluster = cluster_phase(opts, root, registry, build)
    except mb.Interrupted as e:
        print("image_bench: interrupted (%s)" % e, file=sys.stderr)
        sys.exit(130)
    finally:
        if opts.keep_logs and registry is not None:
            os.makedirs(opts.keep_logs, exist_ok=True)
            shutil.copy(registry.log, os.path.join(opts.keep_logs, "registry.log"))
        mb.stop_procs(list(mb.PROCS))
        shutil.rmtree(root, ignore_errors=True)
    info["load_after"] = os.getloadavg()
    report(samples, image, cluster)
    print("load average after: %.1f %.1f %.1f" % info["load_after"])
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump({"machine": info, "image": image, "single": samples, "cluster": cluster}, f, indent=1)


if __name__ == "__main__":
    main()
