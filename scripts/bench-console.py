#!/usr/bin/env python3
"""Console page times with 1,000 job runs and 200 pods (docs/benchmarks.md, "Console").

    cargo build --release -p sparkyard
    .venv/bin/python scripts/bench-console.py            # SPARKYARD_BIN=… to pick a binary

Starts `sparkyard serve --no-controller` on a fresh data directory with four simulated
nodes (no processes run for their pods), creates one virtual cluster with 1,000 job runs
(boto3, as the administrator; they stay PENDING without the controller) and 200 pods
(kubectl), signs in with a one-time link and requests every console page REPEAT times.
It prints the console's own `Server-Timing` (render time, the API calls it makes
included) and the client's wall time per page: min / median / max in milliseconds.
"""

import http.cookiejar
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get(
    "SPARKYARD_BIN",
    os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release", "sparkyard"),
)
RUNS = int(os.environ.get("BENCH_RUNS", "1000"))
PODS = int(os.environ.get("BENCH_PODS", "200"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "20"))
PORT = int(os.environ.get("BENCH_PORT", "4890"))

CONFIG = """
[cluster]
""" + "".join(
    f"""
[[cluster.nodes]]
name = "sim-{i}"
simulated = true
instance-type = "m5.4xlarge"
nodegroup = "bench"
pods = 110
"""
    for i in range(4)
)


def wait_for(path, seconds=120):
    deadline = time.time() + seconds
    while not os.path.exists(path):
        if time.time() > deadline:
            sys.exit(f"timed out waiting for {path}")
        time.sleep(0.2)


def main():
    if not os.path.exists(BIN):
        sys.exit(f"no binary at {BIN}: cargo build --release -p sparkyard (or set SPARKYARD_BIN)")
    data = tempfile.mkdtemp(prefix="sparkyard-bench-console-")
    with open(os.path.join(data, "bench.toml"), "w") as f:
        f.write(CONFIG)
    log = open(os.path.join(data, "serve.log"), "w")
    server = subprocess.Popen(
        [BIN, "serve", "--data-dir", data, "--listen", f"127.0.0.1:{PORT}",
         "--config", os.path.join(data, "bench.toml"), "--no-controller"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        wait_for(os.path.join(data, "console.addr"))
        wait_for(os.path.join(data, "cluster", "kubeconfig"))
        env = dict(os.environ,
                   AWS_CONFIG_FILE=os.path.join(data, "aws", "config"),
                   AWS_SHARED_CREDENTIALS_FILE=os.path.join(data, "aws", "credentials"),
                   AWS_PROFILE="sparkyard",
                   KUBECONFIG=os.path.join(data, "cluster", "kubeconfig"))
        os.environ.update(env)
        import boto3  # noqa: E402  (after the profile exists)

        emr = boto3.client("emr-containers")
        vc = emr.create_virtual_cluster(
            name="bench",
            containerProvider={"id": "eks-emr-cluster", "type": "EKS",
                               "info": {"eksInfo": {"namespace": "bench"}}},
        )["id"]
        started = time.time()
        run_id = None
        for i in range(RUNS):
            run_id = emr.start_job_run(
                virtualClusterId=vc, name=f"pi-{i}",
                executionRoleArn="arn:aws:iam::000000000000:role/bench",
                releaseLabel="emr-7.2.0-latest",
                jobDriver={"sparkSubmitJobDriver": {"entryPoint": "local:///usr/lib/spark/examples/src/main/python/pi.py"}},
            )["id"]
        print(f"created {RUNS} job runs in {time.time() - started:.1f} s")
        pods = {"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": f"bench-{i}", "namespace": "bench",
                          "labels": {"app": "bench"}},
             "spec": {"containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"],
                                      "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}
            for i in range(PODS)]}
        subprocess.run(["kubectl", "create", "namespace", "bench"], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        subprocess.run(["kubectl", "create", "--validate=false", "-f", "-"],
                       input=json.dumps(pods).encode(),
                       check=True, env=env, stdout=subprocess.DEVNULL)
        print(f"created {PODS} pods")

        link = subprocess.run([BIN, "console", "--url", "--data-dir", data],
                              check=True, capture_output=True, text=True).stdout.strip()
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        opener.open(link).read()
        base = link.split("/signin")[0]
        pages = [
            ("virtual clusters", "/virtual-clusters"),
            (f"job runs ({RUNS})", f"/virtual-clusters/{vc}"),
            ("job run", f"/virtual-clusters/{vc}/job-runs/{run_id}"),
            ("EKS overview", "/eks"),
            (f"EKS compute ({PODS} pods)", "/eks/compute"),
            ("EKS node", "/eks/nodes/sim-0"),
            ("EKS resource types", "/eks/resources"),
            (f"EKS pods list ({PODS})", "/eks/resources/core/v1/pods?namespace=bench"),
            ("EKS events", "/eks/events"),
            ("Container Insights (cluster, 1h)", "/container-insights"),
        ]
        print(f"\n{'page':36} {'server ms (min/median/max)':>28} {'wall ms (median)':>18}")
        for name, path in pages:
            server_ms, wall_ms = [], []
            for _ in range(REPEAT):
                t = time.perf_counter()
                with opener.open(base + path) as r:
                    r.read()
                    timing = r.headers.get("server-timing", "app;dur=nan")
                wall_ms.append((time.perf_counter() - t) * 1000)
                server_ms.append(float(timing.split("dur=")[1]))
            print(f"{name:36} {min(server_ms):8.1f} {statistics.median(server_ms):8.1f} "
                  f"{max(server_ms):8.1f} {statistics.median(wall_ms):18.1f}")
    finally:
        server.terminate()
        server.wait()
        subprocess.run(["pkill", "-f", data], check=False)
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
