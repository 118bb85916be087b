#!/usr/bin/env python3
"""Replica failover: how long the emr-containers API is unavailable when the leader of two
`serve --leader-elect` replicas dies (SIGKILL) or is stopped (SIGTERM, as `kubectl delete pod`
does). docs/benchmarks.md, "Replica failover".

    source scripts/setup.sh
    cargo build --release -p sparkyard --bin sparkyard
    .venv/bin/python scripts/bench-failover.py

What it does:

1. starts `sparkyard serve --cluster-only` (the cluster the Lease lives in) and a throwaway
   PostgreSQL from Debian's package (run as the `postgres` user when this is root);
2. starts two replicas (`--no-cluster --no-controller --leader-elect` on that store, one
   bootstrap key), with kube-controller-manager's defaults unless FAILOVER_LEASE,
   FAILOVER_RENEW and FAILOVER_RETRY say otherwise (15s, 10s, 2s);
3. creates a virtual cluster, then FAILOVER_ROUNDS times per signal (KILL, TERM): sends the
   signal to the leader and polls DescribeVirtualCluster through the other replica every
   20 ms with retries off; the gap is the time from the signal to the first success. The
   stopped replica is restarted as a follower before the next round;
4. prints min / median / max per signal.

SPARKYARD_BIN defaults to $CARGO_TARGET_DIR/release/sparkyard.
"""

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import boto3
from botocore.config import Config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
BIN = os.environ.get("SPARKYARD_BIN", os.path.join(TARGET, "release", "sparkyard"))
LEASE = os.environ.get("FAILOVER_LEASE", "15s")
RENEW = os.environ.get("FAILOVER_RENEW", "10s")
RETRY = os.environ.get("FAILOVER_RETRY", "2s")
ROUNDS = int(os.environ.get("FAILOVER_ROUNDS", "5"))
KEY, SECRET = "AKIAFAILOVERBENCH001", "failover-bench-secret"
PG_BIN = "/usr/lib/postgresql/15/bin"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, proc):
    while True:
        if proc.poll() is not None:
            sys.exit(f"a server exited early ({proc.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)


def as_postgres(args):
    return (["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []) + args


def start_postgres(work):
    data = os.path.join(work, "pg")
    os.makedirs(data)
    if os.geteuid() == 0:
        shutil.chown(work, "postgres")
        shutil.chown(data, "postgres")
    port = free_port()
    subprocess.run(as_postgres([f"{PG_BIN}/initdb", "-D", data, "-A", "trust", "-U", "postgres"]),
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(as_postgres([f"{PG_BIN}/pg_ctl", "-D", data, "-w", "-l", os.path.join(data, "log"),
                                "-o", f"-p {port} -k {work} -c listen_addresses=127.0.0.1", "start"]),
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-c",
                    "create database sparkyard"], check=True, stdout=subprocess.DEVNULL)
    return data, f"postgres://postgres@127.0.0.1:{port}/sparkyard"


class Replica:
    def __init__(self, name, work, store, kubeconfig):
        self.name, self.port = name, free_port()
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir)
        self.config = os.path.join(self.dir, "config.toml")
        with open(self.config, "w") as f:
            f.write(f"[controller]\nkubeconfig = {json.dumps(kubeconfig)}\n")
        self.store, self.proc = store, None

    def start(self):
        env = dict(os.environ, POD_NAME=self.name, SPARKYARD_BOOTSTRAP_ACCESS_KEY_ID=KEY,
                   SPARKYARD_BOOTSTRAP_SECRET_ACCESS_KEY=SECRET)
        log = open(os.path.join(self.dir, "server.log"), "a")
        self.proc = subprocess.Popen(
            [BIN, "serve", "--no-cluster", "--no-controller", "--leader-elect",
             "--leader-elect-lease-duration", LEASE, "--leader-elect-renew-deadline", RENEW,
             "--leader-elect-retry-period", RETRY, "--leader-elect-resource-namespace", "default",
             "--listen", f"127.0.0.1:{self.port}", "--data-dir", os.path.join(self.dir, "data"),
             "--config", self.config, "--store-url", self.store],
            env=env, stdout=log, stderr=log)
        wait_listening(self.port, self.proc)

    def identity(self):
        return f"{self.name}_127.0.0.1:{self.port}"

    def client(self, retries):
        return boto3.client(
            "emr-containers", endpoint_url=f"http://127.0.0.1:{self.port}", region_name="us-east-1",
            aws_access_key_id=KEY, aws_secret_access_key=SECRET,
            config=Config(retries={"mode": "standard", "max_attempts": retries},
                          connect_timeout=1, read_timeout=5))


def holder(kubeconfig):
    out = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, "get", "lease", "-n", "default",
                          "sparkyard-controller", "-o", "jsonpath={.spec.holderIdentity}"],
                         capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else ""


def main():
    if not os.path.exists(BIN):
        sys.exit(f"{BIN} not found: cargo build --release -p sparkyard --bin sparkyard")
    work = tempfile.mkdtemp(prefix="sparkyard-failover-")
    os.chmod(work, 0o777)
    procs, replicas = [], []
    pg_data = None
    try:
        cluster_dir = os.path.join(work, "cluster")
        port = free_port()
        cluster = subprocess.Popen([BIN, "serve", "--cluster-only", "--listen", f"127.0.0.1:{port}",
                                    "--cluster-listen", f"127.0.0.1:{free_port()}",
                                    "--data-dir", cluster_dir],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(cluster)
        wait_listening(port, cluster)
        kubeconfig = os.path.join(cluster_dir, "cluster", "kubeconfig")
        pg_data, store = start_postgres(work)
        replicas = [Replica(n, work, store, kubeconfig) for n in ("replica-a", "replica-b")]
        for r in replicas:
            r.start()
        provider = {"id": "c", "type": "EKS", "info": {"eksInfo": {"namespace": "bench"}}}
        vc = replicas[1].client(40).create_virtual_cluster(name="bench", containerProvider=provider)["id"]
        gaps = {"KILL": [], "TERM": []}
        for sig in ("KILL", "TERM"):
            for _ in range(ROUNDS):
                while not holder(kubeconfig):
                    time.sleep(0.05)
                leader = next(r for r in replicas if r.identity() == holder(kubeconfig))
                other = next(r for r in replicas if r is not leader)
                probe = other.client(1)
                start = time.monotonic()
                leader.proc.send_signal(signal.SIGKILL if sig == "KILL" else signal.SIGTERM)
                while True:
                    try:
                        probe.describe_virtual_cluster(id=vc)
                        break
                    except Exception:
                        time.sleep(0.02)
                gaps[sig].append(time.monotonic() - start)
                leader.proc.wait()
                leader.start()
        print(f"lease {LEASE}, renew deadline {RENEW}, retry {RETRY}; {ROUNDS} rounds each")
        for sig, values in gaps.items():
            print(f"SIG{sig}: API back after min {min(values):.2f} s, median "
                  f"{statistics.median(values):.2f} s, max {max(values):.2f} s")
    finally:
        for p in procs + [r.proc for r in replicas if r.proc]:
            if p.poll() is None:
                p.kill()
                p.wait()
        if pg_data:
            subprocess.run(as_postgres([f"{PG_BIN}/pg_ctl", "-D", pg_data, "-m", "immediate", "stop"]),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
