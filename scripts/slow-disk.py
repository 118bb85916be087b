#!/usr/bin/env python3
"""Slow-disk campaign (issue 16): sparkyard whose every fsync takes SLOW_DISK_SYNC_MS longer.

No device-mapper (dm-delay) or cgroup io controller is needed: an LD_PRELOAD shim, compiled
here from the C source below, makes `fsync` and `fdatasync` sleep the configured latency
before calling the real function. Everything sparkyard makes durable goes through them
(SQLite's WAL commits and checkpoints, S3 blobs and their directory, key files); the binary
imports no other sync call (`nm -D` is printed as evidence). The shim counts the calls and the
time spent in them in a file mapped into memory, so the count is read live and survives
kill -9; it takes LD_PRELOAD out of the environment, so only `serve` itself is slowed.

For each latency (default 0 ms = the real disk, 20 ms, 100 ms), on a fresh data directory,
with the real clients over loopback:

1. Kubernetes: 300 ConfigMap creates from 8 concurrent clients (HTTPS, the kubeconfig's
   admin token, one keep-alive connection each): latency p50/p99, writes/s, and the
   registry's group commit measured as ConfigMaps per fsync;
2. emr-containers: 100 CreateVirtualCluster (boto3, 8 threads, a namespace each);
3. S3: 50 PutObject of 64 KiB (boto3, 8 threads);
   all along, a bystander reads one object from the Kubernetes API every 100 ms: a slow
   disk should slow writes only, never reads;
4. kill -9 the moment the last write is acknowledged, restart WITHOUT the shim, and read
   everything back: every acknowledged ConfigMap (with its data), virtual cluster and object
   (byte for byte) must be there.

A request that errors or times out (30 s) is a finding: a slow disk should only add latency.
Prints the figures; exits non-zero on any violation. Usage (after `source scripts/setup.sh`):

    .venv/bin/python scripts/slow-disk.py [--sync-ms 0,20,100] [--configmaps 300]
                                          [--clusters 100] [--objects 50] [--binary PATH]
"""

import argparse
import hashlib
import http.client
import importlib.util
import json
import os
import queue
import shutil
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time

import boto3
import botocore.config

HERE = os.path.dirname(os.path.abspath(__file__))


def _load(name):
    spec = importlib.util.spec_from_file_location(name.replace("-", "_"), os.path.join(HERE, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


disk_full = _load("disk-full")  # Serve, free_port, clients, error_of
chaos = _load("chaos")  # read_kubeconfig, percentile

SHIM_C = r"""
/* slowsync.c (written and compiled by scripts/slow-disk.py): an LD_PRELOAD shim whose fsync
 * and fdatasync sleep SLOW_DISK_SYNC_MS before calling the real one (dlsym RTLD_NEXT). Calls
 * and nanoseconds spent inside are added to the file SLOW_DISK_COUNTERS, mapped shared, so a
 * reader sees them live and they survive kill -9. LD_PRELOAD is then unset: only this process
 * is slowed, not the ones it starts. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static long delay_ms;
static uint64_t *counters; /* [0] fsync calls, [1] fdatasync calls, [2] ns inside either */

__attribute__((constructor)) static void init(void) {
    const char *ms = getenv("SLOW_DISK_SYNC_MS"), *path = getenv("SLOW_DISK_COUNTERS");
    delay_ms = ms ? atol(ms) : 0;
    int fd = path ? open(path, O_RDWR) : -1;
    if (fd >= 0) {
        void *p = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p != MAP_FAILED) counters = p;
        close(fd);
    }
    unsetenv("LD_PRELOAD");
}

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int slow(const char *name, int fd, int which) {
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, name);
    uint64_t t0 = now_ns();
    struct timespec d = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};
    while (delay_ms > 0 && nanosleep(&d, &d) == -1 && errno == EINTR) {}
    int rc = real(fd);
    if (counters) {
        int saved = errno;
        __atomic_add_fetch(&counters[which], 1, __ATOMIC_RELAXED);
        __atomic_add_fetch(&counters[2], now_ns() - t0, __ATOMIC_RELAXED);
        errno = saved;
    }
    return rc;
}

int fsync(int fd) { return slow("fsync", fd, 0); }
int fdatasync(int fd) { return slow("fdatasync", fd, 1); }
"""

NS = "slow"
TIMEOUT = 30


def build_shim(work):
    src, lib = os.path.join(work, "slowsync.c"), os.path.join(work, "slowsync.so")
    with open(src, "w") as f:
        f.write(SHIM_C)
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-Wall", "-o", lib, src, "-ldl"], check=True)
    return lib


class Counters:
    """The shim's counters file: fsync calls, fdatasync calls, ns inside them."""

    def __init__(self, path):
        self.path = path
        with open(path, "wb") as f:
            f.write(b"\0" * 4096)

    def read(self):
        with open(self.path, "rb") as f:
            fsyncs, fdatasyncs, ns = struct.unpack("<QQQ", f.read(24))
        return {"calls": fsyncs + fdatasyncs, "fsync": fsyncs, "fdatasync": fdatasyncs, "ns": ns}


def sync_imports(binary):
    """The sync-family functions the binary imports (evidence that the shim covers them all)."""
    try:
        out = subprocess.run(["nm", "-D", "--undefined-only", binary], capture_output=True, text=True).stdout
    except OSError:
        return "(nm not found)"
    names = sorted({line.split()[-1].split("@")[0] for line in out.splitlines()
                    if "sync" in line.split()[-1]})
    return ", ".join(names) or "(none)"


class Kube:
    """One keep-alive HTTPS connection to the cluster API with the kubeconfig's admin token."""

    def __init__(self, kubeconfig):
        self.kc = chaos.read_kubeconfig(kubeconfig)
        self.ctx = ssl.create_default_context(cadata=self.kc["ca"])
        self.conn = None

    def request(self, method, path, body=None):
        headers = {"Authorization": f"Bearer {self.kc['token']}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        reused = self.conn is not None
        if self.conn is None:
            self.conn = http.client.HTTPSConnection(self.kc["host"], self.kc["port"],
                                                    context=self.ctx, timeout=TIMEOUT)
        try:
            self.conn.request(method, path, body=data, headers=headers)
            r = self.conn.getresponse()
            return r.status, r.read()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            self.conn.close()
            self.conn = None
            if not reused:
                raise
            # A keep-alive connection the server had closed while idle: once more on a new
            # one (a create that did arrive the first time would answer 409: an error here).
            return self.request(method, path, body)
        except Exception:
            self.conn.close()
            self.conn = None
            raise


def run_concurrently(items, clients, make_client, write, on_last=None):
    """`write(client, item)` for every item from `clients` threads, each with its own client.
    Returns ([latency s of each acknowledged write], {item: result}, [(item, error)], seconds).
    `on_last` runs in the thread that finishes the last item, the moment it does."""
    todo = queue.Queue()
    for item in items:
        todo.put(item)
    lock = threading.Lock()
    latencies, results, errors = [], {}, []
    left = [len(items)]

    def worker(client):
        while True:
            try:
                item = todo.get_nowait()
            except queue.Empty:
                return
            t = time.monotonic()
            try:
                result = write(client, item)
                ok = True
            except Exception as e:  # noqa: BLE001 - every error is a finding
                result, ok = disk_full.error_of(e), False
            dt = time.monotonic() - t
            with lock:
                if ok:
                    latencies.append(dt)
                    results[item] = result
                else:
                    errors.append((item, f"after {dt:.2f} s: {result}"))
                left[0] -= 1
                last = left[0] == 0
            if last and on_last:
                on_last()

    made = [make_client() for _ in range(clients)]  # boto3 clients take a while: not timed
    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(c,)) for c in made]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, results, errors, time.monotonic() - t0


class Probe(threading.Thread):
    """A bystander: GETs the namespace every 100 ms and records (phase, latency)."""

    def __init__(self, kubeconfig):
        super().__init__(daemon=True)
        self.kube = Kube(kubeconfig)
        self.phase = None
        self.samples = {}
        self.errors = []
        self.stopped = threading.Event()

    def run(self):
        while not self.stopped.is_set():
            phase = self.phase
            t = time.monotonic()
            try:
                status, body = self.kube.request("GET", f"/api/v1/namespaces/{NS}")
                if status != 200:
                    self.errors.append(f"{phase}: GET namespace {status}: {body[:200]!r}")
            except Exception as e:  # noqa: BLE001
                if not self.stopped.is_set():
                    self.errors.append(f"{phase}: GET namespace: {type(e).__name__}: {e}")
            if phase:
                self.samples.setdefault(phase, []).append(time.monotonic() - t)
            self.stopped.wait(0.1)


def ms(seconds):
    return f"{seconds * 1000:.0f}" if seconds == seconds else "-"


def campaign(args, lib, work, sync_ms):
    """One latency setting; returns its figures."""
    base = os.path.join(work, f"sync-{sync_ms}ms")
    data = os.path.join(base, "data")
    os.makedirs(data)
    counters = Counters(os.path.join(base, "counters"))
    env = dict(os.environ, LD_PRELOAD=lib, SLOW_DISK_SYNC_MS=str(sync_ms),
               SLOW_DISK_COUNTERS=counters.path)
    serve = disk_full.Serve(args.binary, data, f"127.0.0.1:{disk_full.free_port()}",
                            f"127.0.0.1:{disk_full.free_port()}", env=env)
    fig = {"sync_ms": sync_ms, "errors": [], "violations": []}
    kubeconfig = os.path.join(data, "cluster", "kubeconfig")
    try:
        t0 = time.monotonic()
        serve.start()
        fig["start_s"] = time.monotonic() - t0
        fig["start_syncs"] = counters.read()
        print(f"[{sync_ms} ms] sparkyard up in {fig['start_s']:.1f} s "
              f"({fig['start_syncs']['calls']} fsyncs through the shim so far)", flush=True)
        kube = Kube(kubeconfig)
        status, body = kube.request("POST", "/api/v1/namespaces",
                                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        if status != 201:
            sys.exit(f"namespace: {status} {body[:300]!r}")
        config = botocore.config.Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"},
                                        connect_timeout=5, read_timeout=TIMEOUT)

        def aws(service):
            return client_with(serve, service, config)

        aws("s3").create_bucket(Bucket=NS)
        probe = Probe(kubeconfig)
        probe.start()

        def phase(name, items, make_client, write, on_last=None):
            probe.phase = name
            before = counters.read()
            lat, results, errors, wall = run_concurrently(items, args.clients, make_client, write, on_last)
            after = counters.read()
            probe.phase = None
            calls = after["calls"] - before["calls"]
            fig[name] = {
                "p50": chaos.percentile(lat, 50), "p99": chaos.percentile(lat, 99),
                "rate": len(results) / wall, "acked": len(results), "syncs": calls,
                "sync_mean": (after["ns"] - before["ns"]) / calls / 1e9 if calls else float("nan"),
                "per_sync": len(results) / calls if calls else float("nan"),
            }
            fig["errors"] += [f"{name} {item}: {e}" for item, e in errors]
            print(f"[{sync_ms} ms] {name}: {len(results)}/{len(items)} acknowledged in {wall:.1f} s, "
                  f"p50 {ms(fig[name]['p50'])} ms, p99 {ms(fig[name]['p99'])} ms, {calls} fsyncs "
                  f"(mean {ms(fig[name]['sync_mean'])} ms each)", flush=True)
            return results

        # 1. Kubernetes.
        def create_cm(k, i):
            body = {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": f"cm-{i:04}", "namespace": NS}, "data": {"i": str(i)}}
            status, payload = k.request("POST", f"/api/v1/namespaces/{NS}/configmaps", body)
            if status != 201:
                raise RuntimeError(f"HTTP {status}: {payload[:300].decode(errors='replace')}")
            return str(i)

        def warm_kube():  # TLS handshake done before the clock starts
            k = Kube(kubeconfig)
            k.request("GET", f"/api/v1/namespaces/{NS}")
            return k

        cms = phase("kubernetes", list(range(args.configmaps)), warm_kube, create_cm)

        # 2. emr-containers.
        def create_vc(emr, i):
            return emr.create_virtual_cluster(
                name=f"vc-{i:04}",
                containerProvider={"id": "eks-emr-cluster", "type": "EKS",
                                   "info": {"eksInfo": {"namespace": f"{NS}-{i:04}"}}})["id"]

        vcs = phase("emr-containers", list(range(args.clusters)), lambda: aws("emr-containers"), create_vc)

        # 3. S3, then 4. kill -9 the moment the last PutObject is acknowledged.
        def put(s3, i):
            body = hashlib.sha256(f"{sync_ms}/{i}".encode()).digest() * (64 * 1024 // 32)
            s3.put_object(Bucket=NS, Key=f"obj-{i:04}", Body=body)
            return hashlib.md5(body).hexdigest()

        def kill():
            probe.stopped.set()
            serve.kill9()

        objs = phase("s3", list(range(args.objects)), lambda: aws("s3"), put, on_last=kill)
        probe.stopped.set()
        fig["probe"] = {name: (chaos.percentile(s, 50), max(s)) for name, s in probe.samples.items()}
        fig["errors"] += probe.errors
        fig["syncs"] = counters.read()

        serve.env = None  # restarted on the real disk, without the shim
        serve.start()
        after_restart = counters.read()["calls"]
        if after_restart != fig["syncs"]["calls"]:
            fig["violations"].append("the shim is still loaded after the restart")
        kube = Kube(kubeconfig)
        status, payload = kube.request("GET", f"/api/v1/namespaces/{NS}/configmaps?limit=100000")
        present = {item["metadata"]["name"]: item.get("data", {})
                   for item in json.loads(payload)["items"]} if status == 200 else {}
        cms_ok = sum(1 for i in cms if present.get(f"cm-{i:04}") == {"i": str(i)})
        emr = client_with(serve, "emr-containers", config)
        listed, token = {}, None
        while True:
            page = emr.list_virtual_clusters(**({"nextToken": token} if token else {}))
            listed.update({v["id"]: v for v in page["virtualClusters"]})
            token = page.get("nextToken")
            if not token:
                break
        vcs_ok = sum(1 for i, vid in vcs.items()
                     if vid in listed and listed[vid]["name"] == f"vc-{i:04}" and listed[vid]["state"] == "RUNNING")
        s3 = client_with(serve, "s3", config)
        objs_ok = 0
        for i, md5 in objs.items():
            try:
                got = s3.get_object(Bucket=NS, Key=f"obj-{i:04}")["Body"].read()
                objs_ok += hashlib.md5(got).hexdigest() == md5
            except Exception:  # noqa: BLE001 - counted as missing
                pass
        fig["acked"] = len(cms) + len(vcs) + len(objs)
        fig["present"] = cms_ok + vcs_ok + objs_ok
        for what, acked, ok in [("ConfigMaps", len(cms), cms_ok), ("virtual clusters", len(vcs), vcs_ok),
                                ("S3 objects", len(objs), objs_ok)]:
            if ok != acked:
                fig["violations"].append(f"{acked - ok} of {acked} acknowledged {what} missing or changed")
        print(f"[{sync_ms} ms] after kill -9 and a restart without the shim: ConfigMaps {cms_ok}/{len(cms)}, "
              f"virtual clusters {vcs_ok}/{len(vcs)}, S3 objects {objs_ok}/{len(objs)} intact", flush=True)
    finally:
        serve.stop()
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return fig


def client_with(serve, service, config):
    session = boto3.Session(aws_access_key_id=disk_full.read_key(serve, "aws_access_key_id"),
                            aws_secret_access_key=disk_full.read_key(serve, "aws_secret_access_key"),
                            region_name="us-east-1")
    return session.client(service, endpoint_url=f"http://{serve.listen}", config=config)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sync-ms", default="0,20,100", help="comma-separated fsync latencies to add")
    parser.add_argument("--configmaps", type=int, default=300)
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument("--objects", type=int, default=50)
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients per service")
    parser.add_argument("--binary", default=os.environ.get("SPARKYARD_BIN"))
    parser.add_argument("--keep", action="store_true", help="keep the data directories and logs")
    args = parser.parse_args()
    if not args.binary:
        sys.exit("no sparkyard binary: source scripts/setup.sh or pass --binary")

    work = tempfile.mkdtemp(prefix="sparkyard-slow-disk-", dir="/var/tmp")
    lib = build_shim(work)
    build = "debug" if "/debug/" in args.binary else "release" if "/release/" in args.binary else "?"
    print(f"binary {args.binary} ({build} build); sync calls it imports: {sync_imports(args.binary)}; shim {lib}")
    figs = [campaign(args, lib, work, int(v)) for v in args.sync_ms.split(",")]

    print()
    print("| added fsync latency | fsyncs in the run (mean duration) | start | Kubernetes ConfigMap create p50 / p99 | writes/s | ConfigMaps per fsync "
          "| CreateVirtualCluster p50 / p99 | writes/s | PutObject 64 KiB p50 / p99 | writes/s "
          "| bystander GET p50 / max during ConfigMaps, VCs, S3 | acknowledged → present after kill -9 | errors | violations |")
    print("|" + "---|" * 14)
    for f in figs:
        k, e, s, syncs = f["kubernetes"], f["emr-containers"], f["s3"], f["syncs"]
        probe = " · ".join(f"{ms(f['probe'][p][0])}/{ms(f['probe'][p][1])}" if p in f["probe"] else "-"
                           for p in ["kubernetes", "emr-containers", "s3"])
        print(f"| {f['sync_ms']} ms | {syncs['calls']} ({syncs['ns'] / max(syncs['calls'], 1) / 1e6:.1f} ms) "
              f"| {f['start_s']:.1f} s "
              f"| {ms(k['p50'])} / {ms(k['p99'])} ms | {k['rate']:.0f} | {k['per_sync']:.1f} "
              f"| {ms(e['p50'])} / {ms(e['p99'])} ms | {e['rate']:.0f} "
              f"| {ms(s['p50'])} / {ms(s['p99'])} ms | {s['rate']:.1f} "
              f"| {probe} ms | {f['acked']} → {f['present']} | {len(f['errors'])} | **{len(f['violations'])}** |")
    for f in figs:
        for e in f["errors"]:
            print(f"error at {f['sync_ms']} ms: {e}")
    violations = [f"{f['sync_ms']} ms: {v}" for f in figs for v in f["violations"]]
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"kept {work}")
    print(json.dumps({"violations": violations, "errors": sum(len(f["errors"]) for f in figs)}, indent=1))
    sys.exit(1 if violations or any(f["errors"] for f in figs) else 0)


if __name__ == "__main__":
    main()
