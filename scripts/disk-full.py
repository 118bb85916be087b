#!/usr/bin/env python3
"""Disk-full campaign (issue 16): sparkyard on a data directory that fills up.

Mounts a small tmpfs (needs root) as the data directory, starts `sparkyard serve` on it,
and then, with the real clients (boto3 for S3 and emr-containers, kubectl for Kubernetes):

1. writes 1 MiB S3 objects until S3 refuses one, recording every acknowledged key and the
   refusal's error code and message;
2. while full: a ConfigMap create (kubectl) and a CreateVirtualCluster (boto3) must be
   refused with a clear error, and a read-back must show that nothing was created;
3. grows the tmpfs (`mount -o remount,size=`) and measures how long until each service
   accepts writes again;
4. kill -9s sparkyard, restarts it on the same directory, and checks that every
   acknowledged object reads back byte for byte and every acknowledged ConfigMap exists.

Prints the figures; exits non-zero on any violation. Usage (from the repository, after
`source scripts/setup.sh`, as root):

    .venv/bin/python scripts/disk-full.py [--size-mb 48] [--binary PATH]
"""

import argparse
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

import boto3
import botocore.config
import botocore.exceptions

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Serve:
    def __init__(self, binary, data, listen, cluster_listen, env=None):
        self.binary, self.data = binary, data
        self.listen, self.cluster_listen = listen, cluster_listen
        self.env = env  # None: this process's environment (scripts/slow-disk.py sets LD_PRELOAD)
        self.data_log_dir = os.path.dirname(data)
        self.proc = None

    def start(self):
        log = open(os.path.join(self.data_log_dir, "serve.log"), "ab")
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--data-dir", self.data, "--listen", self.listen,
             "--cluster-listen", self.cluster_listen],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self.env)
        host, port = self.listen.split(":")
        for _ in range(600):
            try:
                socket.create_connection((host, int(port)), timeout=0.2).close()
                break
            except OSError:
                if self.proc.poll() is not None:
                    sys.exit(f"sparkyard exited: see {log.name}")
                time.sleep(0.1)
        kubeconfig = os.path.join(self.data, "cluster", "kubeconfig")
        for _ in range(600):
            if os.path.exists(kubeconfig) and kubectl(self, "get", "ns", check=False).returncode == 0:
                return
            time.sleep(0.1)
        sys.exit("the cluster API did not answer")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)


def kubectl(serve, *args, check=True, stdin=None):
    exe = os.path.join(ROOT, ".venv", "bin", "kubectl")
    exe = exe if os.path.exists(exe) else "kubectl"
    out = subprocess.run(
        [exe, "--kubeconfig", os.path.join(serve.data, "cluster", "kubeconfig"), *args],
        capture_output=True, text=True, input=stdin)
    if check and out.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {out.stderr}")
    return out


def clients(serve):
    endpoint = f"http://{serve.listen}"
    session = boto3.Session(aws_access_key_id=read_key(serve, "aws_access_key_id"),
                            aws_secret_access_key=read_key(serve, "aws_secret_access_key"),
                            region_name="us-east-1")
    config = botocore.config.Config(retries={"max_attempts": 1},
                                    s3={"addressing_style": "path"})
    return (session.client("s3", endpoint_url=endpoint, config=config),
            session.client("emr-containers", endpoint_url=endpoint, config=config))


def read_key(serve, name):
    with open(os.path.join(serve.data, "aws", "credentials")) as f:
        for line in f:
            key, _, value = line.partition("=")
            if key.strip() == name:
                return value.strip()
    raise KeyError(name)


def error_of(e):
    if isinstance(e, botocore.exceptions.ClientError):
        err = e.response.get("Error", {})
        return f"{e.response['ResponseMetadata'].get('HTTPStatusCode')} {err.get('Code')}: {err.get('Message')}"
    return f"{type(e).__name__}: {e}"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=48)
    parser.add_argument("--grow-mb", type=int, default=512)
    parser.add_argument("--binary", default=os.environ.get("SPARKYARD_BIN"))
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("disk-full.py mounts a tmpfs: run it as root")
    if not args.binary:
        sys.exit("no sparkyard binary: source scripts/setup.sh or pass --binary")

    work = tempfile.mkdtemp(prefix="sparkyard-disk-full-", dir="/var/tmp")
    data = os.path.join(work, "data")
    os.makedirs(data)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={args.size_mb}m", "tmpfs", data], check=True)
    violations = []
    serve = Serve(args.binary, data, f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}")
    serve.data_log_dir = work
    try:
        t0 = time.time()
        serve.start()
        print(f"sparkyard up on a {args.size_mb} MiB tmpfs in {time.time() - t0:.1f} s")
        s3, emr = clients(serve)
        s3.create_bucket(Bucket="fill")
        kubectl(serve, "create", "namespace", "fill")

        # 1. Fill with S3 objects until refused.
        acknowledged = {}
        refusal = None
        for i in range(100_000):
            body = hashlib.sha256(str(i).encode()).digest() * (1024 * 1024 // 32)
            try:
                s3.put_object(Bucket="fill", Key=f"obj-{i:05}", Body=body)
                acknowledged[f"obj-{i:05}"] = hashlib.md5(body).hexdigest()
            except Exception as e:  # noqa: BLE001 - any refusal is what we are after
                refusal = error_of(e)
                refused_key = f"obj-{i:05}"
                break
        print(f"S3 accepted {len(acknowledged)} objects of 1 MiB, then: {refusal}")
        if refusal is None:
            violations.append("S3 never refused a write")
        else:
            try:
                s3.head_object(Bucket="fill", Key=refused_key)
                violations.append(f"the refused object {refused_key} exists")
            except botocore.exceptions.ClientError:
                pass
        # Whatever space is left, take it with small objects, so the store cannot write.
        filler = 0
        while True:
            try:
                s3.put_object(Bucket="fill", Key=f"small-{filler:06}", Body=b"x" * 4096)
                acknowledged[f"small-{filler:06}"] = hashlib.md5(b"x" * 4096).hexdigest()
                filler += 1
            except Exception:  # noqa: BLE001
                break
        print(f"  then {filler} objects of 4 KiB")

        # 2. While full: Kubernetes and emr-containers writes.
        configmaps = []
        big = os.path.join(work, "big-value")
        with open(big, "w") as f:
            f.write("v" * 200_000)
        cm = kubectl(serve, "create", "configmap", "while-full", "-n", "fill",
                     f"--from-file=k={big}", check=False)
        print(f"kubectl create configmap while full: exit {cm.returncode}: {cm.stderr.strip()[:300]}")
        # The write that finds the disk full was applied in memory before the disk refused
        # it: its outcome is unknown to the client (as with etcd's timeouts), and it is
        # persisted once there is room. Every write after it is refused up front.
        if cm.returncode == 0 or "not yet persisted" in cm.stderr:
            configmaps.append("while-full")
        second = kubectl(serve, "create", "configmap", "while-full-2", "-n", "fill",
                         f"--from-file=k={big}", check=False)
        print(f"kubectl create configmap again: exit {second.returncode}: {second.stderr.strip()[:300]}")
        if second.returncode == 0:
            violations.append("a ConfigMap was acknowledged while the store cannot write")
        elif kubectl(serve, "get", "configmap", "while-full-2", "-n", "fill", check=False).returncode == 0:
            violations.append("a refused ConfigMap exists")
        try:
            vc = emr.create_virtual_cluster(
                name="while-full",
                containerProvider={"id": "eks-emr-cluster", "type": "EKS",
                                   "info": {"eksInfo": {"namespace": "fill"}}})
            print(f"CreateVirtualCluster while full: accepted ({vc['id']})")
        except Exception as e:  # noqa: BLE001
            print(f"CreateVirtualCluster while full: {error_of(e)}")
            listed = emr.list_virtual_clusters()["virtualClusters"]
            if any(v["name"] == "while-full" for v in listed):
                violations.append("a refused virtual cluster is listed")

        # 3. Room again.
        subprocess.run(["mount", "-o", f"remount,size={args.grow_mb}m", data], check=True)
        grown = time.time()
        recovered = {}
        while len(recovered) < 3 and time.time() - grown < 120:
            if "s3" not in recovered:
                try:
                    s3.put_object(Bucket="fill", Key="after", Body=b"after")
                    acknowledged["after"] = hashlib.md5(b"after").hexdigest()
                    recovered["s3"] = time.time() - grown
                except Exception:  # noqa: BLE001
                    pass
            if "kubernetes" not in recovered:
                if kubectl(serve, "create", "configmap", "after", "-n", "fill", check=False).returncode == 0:
                    configmaps.append("after")
                    recovered["kubernetes"] = time.time() - grown
            if "emr-containers" not in recovered:
                try:
                    emr.create_virtual_cluster(
                        name="after",
                        containerProvider={"id": "eks-emr-cluster", "type": "EKS",
                                           "info": {"eksInfo": {"namespace": "fill"}}})
                    recovered["emr-containers"] = time.time() - grown
                except Exception:  # noqa: BLE001
                    pass
            time.sleep(0.05)
        for service in ["s3", "kubernetes", "emr-containers"]:
            if service in recovered:
                print(f"{service} accepts writes again {recovered[service]:.2f} s after the disk has room")
            else:
                violations.append(f"{service} did not accept writes within 120 s of the disk having room")

        # 4. Nothing acknowledged is lost across kill -9.
        serve.kill9()
        serve.start()
        s3, emr = clients(serve)
        lost = [k for k, md5 in acknowledged.items()
                if hashlib.md5(s3.get_object(Bucket="fill", Key=k)["Body"].read()).hexdigest() != md5]
        missing_cms = [c for c in configmaps
                       if kubectl(serve, "get", "configmap", c, "-n", "fill", check=False).returncode != 0]
        print(f"after kill -9 and restart: {len(acknowledged) - len(lost)}/{len(acknowledged)} acknowledged objects intact, "
              f"{len(configmaps) - len(missing_cms)}/{len(configmaps)} acknowledged ConfigMaps present")
        if lost:
            violations.append(f"objects lost or changed: {lost[:5]}")
        if missing_cms:
            violations.append(f"ConfigMaps lost: {missing_cms}")
    finally:
        serve.stop()
        subprocess.run(["umount", "-l", data], check=False)
    print(json.dumps({"violations": violations}, indent=1))
    sys.exit(1 if violations else 0)


if __name__ == "__main__":
    main()
