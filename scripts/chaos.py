#!/usr/bin/env python3
"""Crash campaign: job runs while `sparkyard serve` is killed with SIGKILL again and again.

Starts `sparkyard serve` (one real node for job runners and the real Spark runs, a few
simulated nodes for the other drivers, as `benches/jobs/load.rs` does) on a fresh data
directory under .sparkyard/chaos/ in the repository, sets up what the seed's walkthrough sets up (namespace,
virtual cluster, execution role with `update-role-trust-policy`, log group, log bucket) and
then, at the same time:

- submits `--runs` job runs at a steady `--rate` (StartJobRun with boto3, every call with a
  clientToken; a call is retried, with the same token, only when it got no answer);
  `--real-fraction` of them are real tiny Spark pi runs, the rest have simulated drivers
  (some of them with `retryPolicyConfiguration`, so that retries happen under crashes);
- kills the `serve` process (that process only: containers under their shims survive by
  design) with SIGKILL every `--kill-every MIN-MAX` seconds and restarts it on the same data
  directory, timing until its AWS endpoint and Kubernetes API answer again;
- watches the namespace's pods through the Kubernetes API (reconnecting after each restart,
  re-listing to see what was deleted meanwhile) and polls ListJobRuns.

Once every run has been submitted it stops killing, waits until every acknowledged run is
terminal (hang guard `--hang-guard`), then checks the invariants:

  1. every acknowledged id exists, is terminal, its state never changed once terminal;
     ListJobRuns lists each id once; no run beyond the acknowledged ones except for
     submissions that never got an answer; replaying every acknowledged StartJobRun with its
     clientToken returns the same id and creates nothing. Non-COMPLETED runs are printed.
  2. no run ever had two live driver pods at once (nor two live job-runner pods).
  3. real runs: driver and executor (and runner) stdout/stderr in S3 (gz) and CloudWatch in
     EMR's layout; driver stdout says "Pi is roughly"; per stream, the CloudWatch events are
     exactly the S3 copy's non-empty lines (nothing missing, nothing duplicated). The
     runners of the simulated runs are checked the same way.
  4. after a final SIGTERM: no process left that belongs to the campaign's data directory
     (cmdline, environment or mounts), no listening socket of it, no new entry in /tmp.

Prints the figures and violations; writes everything to <campaign dir>/report.json.
Exit status 0 only with no violation. Usage (after `source scripts/setup.sh` and
`cargo build --release --bin sparkyard`):

    .venv/bin/python scripts/chaos.py [--runs 200] [--real-fraction 0.1] [--kill-every 20-60]
                                      [--rate 10] [--seed S] [--binary PATH]
"""

import argparse
import base64
import collections
import datetime
import gzip
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time
import uuid

import boto3
import botocore.config
import botocore.exceptions

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NS = "chaos"
ROLE = "chaos-JobExecutionRole"
PI = "local:///usr/lib/spark/examples/src/main/python/pi.py"
# benches/jobs.rs TINY: the smallest requests Spark accepts.
TINY = ("--conf spark.executor.instances=1 --conf spark.executor.memory=512m "
        "--conf spark.executor.cores=1 --conf spark.driver.cores=1 --conf spark.driver.memory=512m "
        "--conf spark.kubernetes.driver.request.cores=100m --conf spark.kubernetes.executor.request.cores=100m")
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED"}
JOB_ID_LABEL = "emr-containers.amazonaws.com/job.id"


def now():
    return time.time()


def log(msg):
    print(f"{datetime.datetime.now().strftime('%H:%M:%S')} {msg}", flush=True)


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def parse_ts(value):
    if not value:
        return None
    value = value.replace("Z", "+00:00")
    try:
        return datetime.datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def percentile(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    k = (len(values) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


# --------------------------------------------------------------------------------------
# sparkyard serve


class Serve:
    """`sparkyard serve` on the campaign's data directory; restartable."""

    def __init__(self, binary, camp_dir, config_path, listen, cluster_listen, service_addr):
        self.binary, self.camp_dir, self.config = binary, camp_dir, config_path
        self.data = os.path.join(camp_dir, "data")
        self.listen, self.cluster_listen, self.service_addr = listen, cluster_listen, service_addr
        self.proc = None
        self.log_path = os.path.join(camp_dir, "serve.log")
        self.starts = 0

    def spawn(self):
        self.starts += 1
        logf = open(self.log_path, "ab")
        logf.write(f"\n===== chaos.py: start #{self.starts} at {datetime.datetime.now().isoformat()} =====\n".encode())
        logf.flush()
        env = dict(os.environ)
        env.setdefault("SPARKYARD_LOG", "info,s3s=off")
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--data-dir", self.data, "--config", self.config,
             "--listen", self.listen, "--cluster-listen", self.cluster_listen,
             "--cluster-service-address", self.service_addr],
            stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=ROOT,  # so the checkout's .venv is the Spark runtime (docs/configuration.md)
            start_new_session=True)
        logf.close()
        return self.proc

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill9(self):
        # The serve process only, as a crash would: not its process group, not the shims.
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def terminate(self, timeout=90):
        if not self.alive():
            return None
        t0 = now()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
            return now() - t0
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            return None

    def kubeconfig_path(self):
        return os.path.join(self.data, "cluster", "kubeconfig")


def read_kubeconfig(path):
    text = open(path).read()
    server = re.search(r"server:\s*(\S+)", text).group(1)
    ca = base64.b64decode(re.search(r"certificate-authority-data:\s*(\S+)", text).group(1)).decode()
    token = re.search(r"token:\s*(\S+)", text).group(1)
    m = re.match(r"https://([^:/]+):(\d+)", server)
    return {"server": server, "host": m.group(1), "port": int(m.group(2)), "ca": ca, "token": token}


class Kube:
    """A minimal Kubernetes API client (bearer token and CA from the kubeconfig)."""

    def __init__(self, kubeconfig_path):
        self.path = kubeconfig_path
        self.reload()

    def reload(self):
        self.kc = read_kubeconfig(self.path)
        self.ctx = ssl.create_default_context(cadata=self.kc["ca"])

    def conn(self, timeout=10):
        return http.client.HTTPSConnection(self.kc["host"], self.kc["port"], context=self.ctx, timeout=timeout)

    def request(self, method, path, body=None, timeout=10):
        c = self.conn(timeout)
        try:
            headers = {"Authorization": f"Bearer {self.kc['token']}", "Accept": "application/json"}
            data = None
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            c.request(method, path, body=data, headers=headers)
            r = c.getresponse()
            payload = r.read()
            return r.status, (json.loads(payload) if payload else None)
        finally:
            c.close()


# --------------------------------------------------------------------------------------
# Pod watch: every pod of the namespace, across restarts


class PodRecord:
    def __init__(self, uid, name, run_id, role):
        self.uid, self.name, self.run_id, self.role = uid, name, run_id, role
        self.created = None          # creationTimestamp (server clock = this machine's, 1 s)
        self.first_seen = None       # when the watch first saw it (local)
        self.terminal_seen = None    # first time seen Succeeded/Failed
        self.finished = None         # latest terminated.finishedAt of its containers
        self.deleted_seen = None     # DELETED event
        self.gone_seen = None        # absent from a re-list (deleted while we were not watching)
        self.node = None
        self.phases = []
        self.max_restarts = 0
        self.simulated = None

    def end(self):
        """When the pod stopped being live, as early as the evidence allows (None: still live)."""
        candidates = [t for t in (self.terminal_seen, self.deleted_seen, self.gone_seen) if t]
        if self.finished is not None:
            candidates.append(self.finished + 1.0)  # finishedAt has 1 s resolution
        return min(candidates) if candidates else None

    def as_dict(self):
        return {k: v for k, v in self.__dict__.items()}


def pod_role(pod):
    labels = pod["metadata"].get("labels") or {}
    role = labels.get("spark-role")
    if role in ("driver", "executor"):
        return role
    name = pod["metadata"]["name"]
    if "-driver" in name and name.startswith("spark-"):
        return "driver"
    if "-exec-" in name:
        return "executor"
    return "runner"


class PodWatcher(threading.Thread):
    def __init__(self, kubeconfig_path, ns, events_path):
        super().__init__(daemon=True)
        self.kubeconfig_path, self.ns = kubeconfig_path, ns
        self.pods = {}
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.connects = 0
        self.errors = collections.Counter()
        self.events_file = open(events_path, "a")
        self.api_ports = set()

    def observe(self, pod, how, t):
        meta = pod["metadata"]
        uid = meta["uid"]
        with self.lock:
            rec = self.pods.get(uid)
            if rec is None:
                labels = meta.get("labels") or {}
                run_id = labels.get(JOB_ID_LABEL)
                rec = PodRecord(uid, meta["name"], run_id, pod_role(pod))
                rec.first_seen = t
                self.pods[uid] = rec
            rec.created = parse_ts(meta.get("creationTimestamp"))
            spec, status = pod.get("spec") or {}, pod.get("status") or {}
            rec.node = spec.get("nodeName") or rec.node
            phase = status.get("phase")
            if phase and (not rec.phases or rec.phases[-1] != phase):
                rec.phases.append(phase)
            finished = []
            for cs in (status.get("containerStatuses") or []):
                rec.max_restarts = max(rec.max_restarts, cs.get("restartCount", 0))
                term = (cs.get("state") or {}).get("terminated")
                if term and term.get("finishedAt"):
                    finished.append(parse_ts(term["finishedAt"]))
            if phase in ("Succeeded", "Failed"):
                if rec.terminal_seen is None:
                    rec.terminal_seen = t
                if finished:
                    rec.finished = max(f for f in finished if f)
            if how == "DELETED" and rec.deleted_seen is None:
                rec.deleted_seen = t
        self.events_file.write(json.dumps({
            "t": round(t, 3), "how": how, "uid": uid, "name": meta["name"],
            "rv": meta.get("resourceVersion"), "phase": (pod.get("status") or {}).get("phase"),
            "node": (pod.get("spec") or {}).get("nodeName"),
            "deletionTimestamp": meta.get("deletionTimestamp")}) + "\n")

    def run(self):
        while not self.stop_flag.is_set():
            try:
                self.session()
            except Exception as e:  # the server was killed, or is starting
                self.errors[type(e).__name__] += 1
            if not self.stop_flag.is_set():
                time.sleep(0.3)

    def session(self):
        kube = Kube(self.kubeconfig_path)
        self.api_ports.add(kube.kc["port"])
        status, body = kube.request("GET", f"/api/v1/namespaces/{self.ns}/pods", timeout=15)
        if status != 200:
            raise RuntimeError(f"list pods: {status}")
        t = now()
        self.connects += 1
        listed = set()
        for pod in body.get("items", []):
            listed.add(pod["metadata"]["uid"])
            self.observe(pod, "LIST", t)
        with self.lock:
            for uid, rec in self.pods.items():
                if uid not in listed and rec.deleted_seen is None and rec.gone_seen is None:
                    rec.gone_seen = t
                    self.events_file.write(json.dumps({"t": round(t, 3), "how": "GONE", "uid": uid, "name": rec.name}) + "\n")
        rv = body["metadata"]["resourceVersion"]
        c = kube.conn(timeout=60)
        try:
            c.request("GET", f"/api/v1/namespaces/{self.ns}/pods?watch=1&allowWatchBookmarks=true"
                      f"&timeoutSeconds=240&resourceVersion={rv}",
                      headers={"Authorization": f"Bearer {kube.kc['token']}", "Accept": "application/json"})
            r = c.getresponse()
            if r.status != 200:
                raise RuntimeError(f"watch pods: {r.status}")
            while not self.stop_flag.is_set():
                line = r.readline()
                if not line:
                    return
                line = line.strip()
                if not line:
                    continue
                ev = json.loads(line)
                kind = ev.get("type")
                if kind == "ERROR":
                    return  # e.g. 410: re-list
                if kind == "BOOKMARK":
                    continue
                self.observe(ev["object"], kind, now())
        finally:
            c.close()

    def snapshot(self):
        with self.lock:
            return dict(self.pods)


# --------------------------------------------------------------------------------------
# The campaign


class Campaign:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.dir = os.path.abspath(args.dir or os.path.join(ROOT, ".sparkyard", "chaos", f"campaign-{stamp}"))
        os.makedirs(os.path.join(self.dir, "data"), exist_ok=False)
        self.lock = threading.Lock()
        self.submissions = []         # one per logical StartJobRun
        self.kills = []               # {at, down_s, restart_s (spawn->ready), kill_to_ready_s}
        self.state_history = collections.defaultdict(list)   # id -> [(t, state)]
        self.terminal_flips = []
        self.stop_killing = threading.Event()
        self.serve_lock = threading.Lock()
        self.violations = collections.defaultdict(list)
        self.info = {}
        self.campaign_pids = {}
        self.kill_request = None      # a kill the driver deleter asks for (time)
        self.deletions = []

    # -- setup --------------------------------------------------------------------------
    def config_text(self, ports, octet):
        c = (f"[cluster]\npod-cidr = \"127.{octet}.0.0/16\"\n"
             f"event-ttl = \"30m\"\n\n"
             f"[[cluster.nodes]]\nname = \"chaos-real\"\ncpu = \"64\"\nmemory = \"256Gi\"\npods = 2000\n"
             f"labels = {{ \"sparkyard.dev/pool\" = \"real\" }}\n")
        for i in range(self.args.sim_nodes):
            c += (f"\n[[cluster.nodes]]\nname = \"sim-{i}\"\nsimulated = true\n"
                  f"labels = {{ \"sparkyard.dev/pool\" = \"simulated\" }}\n")
        c += (f"\n[controller]\nttl-seconds-after-finished = {self.args.ttl}\n"
              f"\n[history]\nport = {ports['history']}\n"
              f"\n[console]\nlisten = \"127.0.0.1:{ports['console']}\"\n"
              f"\n[metrics]\nlisten = \"127.0.0.1:{ports['metrics']}\"\n")
        return c

    def clients(self):
        creds = {}
        for line in open(os.path.join(self.serve.data, "aws", "credentials")):
            k, _, v = line.partition("=")
            creds[k.strip()] = v.strip()
        session = boto3.Session(aws_access_key_id=creds["aws_access_key_id"],
                                aws_secret_access_key=creds["aws_secret_access_key"],
                                region_name="us-east-1")
        endpoint = f"http://{self.serve.listen}"
        cfg = botocore.config.Config(retries={"total_max_attempts": 1}, connect_timeout=5,
                                     read_timeout=30, max_pool_connections=64,
                                     s3={"addressing_style": "path"})
        return {name: session.client(name, endpoint_url=endpoint, config=cfg)
                for name in ("emr-containers", "s3", "logs", "iam", "sts")}

    def aws_cli(self, *args):
        env = dict(os.environ)
        for v in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL",
                  "AWS_DEFAULT_REGION", "AWS_REGION"):
            env.pop(v, None)
        env.update(AWS_CONFIG_FILE=os.path.join(self.serve.data, "aws", "config"),
                   AWS_SHARED_CREDENTIALS_FILE=os.path.join(self.serve.data, "aws", "credentials"),
                   AWS_PROFILE="sparkyard", AWS_PAGER="")
        exe = os.path.join(ROOT, ".venv", "bin", "aws")
        out = subprocess.run([exe if os.path.exists(exe) else "aws", *args], env=env,
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"aws {' '.join(args)}: {out.stderr}")
        return out.stdout

    def kubectl(self, *args, check=True):
        exe = os.path.join(ROOT, ".venv", "bin", "kubectl")
        exe = exe if os.path.exists(exe) else "kubectl"
        out = subprocess.run([exe, "--kubeconfig", self.serve.kubeconfig_path(), *args],
                             capture_output=True, text=True)
        if check and out.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {out.stderr}")
        return out

    def wait_ready(self, timeout=180):
        """Until ListVirtualClusters answers and the Kubernetes API lists namespaces."""
        deadline = now() + timeout
        aws_ok = kube_ok = None
        t0 = now()
        while now() < deadline:
            if not self.serve.alive():
                raise RuntimeError(f"sparkyard exited ({self.serve.proc.returncode}): see {self.serve.log_path}")
            if aws_ok is None:
                try:
                    if hasattr(self, "emr"):
                        self.emr.list_virtual_clusters(maxResults=1)
                        aws_ok = now() - t0
                    else:
                        socket.create_connection(tuple([self.serve.listen.split(":")[0],
                                                        int(self.serve.listen.split(":")[1])]), timeout=0.5).close()
                        if os.path.exists(os.path.join(self.serve.data, "aws", "credentials")):
                            aws_ok = now() - t0
                except Exception:
                    pass
            if kube_ok is None and os.path.exists(self.serve.kubeconfig_path()):
                try:
                    status, _ = Kube(self.serve.kubeconfig_path()).request("GET", "/api/v1/namespaces?limit=1", timeout=3)
                    if status == 200:
                        kube_ok = now() - t0
                except Exception:
                    pass
            if aws_ok is not None and kube_ok is not None:
                return aws_ok, kube_ok
            time.sleep(0.05)
        raise RuntimeError(f"sparkyard did not answer within {timeout} s")

    def setup(self):
        a = self.args
        self.octet = 30 + os.getpid() % 200
        self.ports = {"listen": free_port(), "cluster": free_port(), "history": free_port(),
                      "console": free_port(), "metrics": free_port()}
        self.service_addr = f"127.15.{self.octet}.1:443"
        config_path = os.path.join(self.dir, "sparkyard.toml")
        with open(config_path, "w") as f:
            f.write(self.config_text(self.ports, self.octet))
        self.serve = Serve(a.binary, self.dir, config_path, f"127.0.0.1:{self.ports['listen']}",
                           f"127.0.0.1:{self.ports['cluster']}", self.service_addr)
        self.serve.spawn()
        self.wait_ready()
        cl = self.clients()
        self.emr, self.s3, self.logs = cl["emr-containers"], cl["s3"], cl["logs"]
        iam, sts = cl["iam"], cl["sts"]
        account = sts.get_caller_identity()["Account"]
        self.kubectl("create", "namespace", NS)
        self.vc = self.emr.create_virtual_cluster(
            name=f"{NS}-emr-cluster",
            containerProvider={"id": "eks-emr-cluster", "type": "EKS", "info": {"eksInfo": {"namespace": NS}}})["id"]
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
            "Service": "elasticmapreduce.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
        policy = {"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject", "s3:ListBucket"], "Resource": "*"},
            {"Effect": "Allow", "Action": ["logs:PutLogEvents", "logs:CreateLogStream", "logs:DescribeLogGroups",
                                           "logs:DescribeLogStreams"], "Resource": ["arn:aws:logs:*:*:*"]}]}
        self.role_arn = iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        iam.put_role_policy(RoleName=ROLE, PolicyName="EMR-Containers-Job-Execution", PolicyDocument=json.dumps(policy))
        self.aws_cli("emr-containers", "update-role-trust-policy", "--cluster-name", "eks-emr-cluster",
                     "--namespace", NS, "--role-name", ROLE)
        self.log_group = f"/emr-on-eks/eks-emr-cluster/{NS}"
        self.logs.create_log_group(logGroupName=self.log_group)
        self.bucket = f"{NS}-logs-{account}-us-east-1"
        self.s3.create_bucket(Bucket=self.bucket)
        self.stream_prefix = "chaos"
        self.plan_runs()

    def plan_runs(self):
        a = self.args
        n_real = round(a.runs * a.real_fraction)
        kinds = ["real"] * n_real + ["sim"] * (a.runs - n_real)
        self.rng.shuffle(kinds)
        for i, kind in enumerate(kinds):
            retry = (kind == "sim" or a.retry_real) and self.rng.random() < a.retry_fraction
            duration = self.rng.randint(a.sim_seconds[0], a.sim_seconds[1])
            self.submissions.append({
                "index": i, "kind": kind, "name": f"chaos-{i:04d}-{kind}", "token": str(uuid.uuid4()),
                "retry_policy": retry, "sim_duration": duration if kind == "sim" else None,
                "attempts": [], "id": None, "acked_at": None, "answer_error": None, "gave_up": False})

    def request_of(self, sub):
        if sub["kind"] == "real":
            params = f"{TINY} --conf spark.kubernetes.node.selector.sparkyard.dev/pool=real"
        else:
            params = (f"{TINY} --conf spark.kubernetes.driver.node.selector.sparkyard.dev/pool=simulated "
                      f"--conf spark.kubernetes.driver.annotation.sparkyard.dev/simulated-duration={sub['sim_duration']}s")
        req = {
            "name": sub["name"], "virtualClusterId": self.vc, "clientToken": sub["token"],
            "executionRoleArn": self.role_arn, "releaseLabel": "emr-6.3.0-latest",
            "jobDriver": {"sparkSubmitJobDriver": {"entryPoint": PI, "sparkSubmitParameters": params}},
            "configurationOverrides": {
                "applicationConfiguration": [
                    {"classification": "emr-job-submitter",
                     "properties": {"jobsubmitter.node.selector.sparkyard.dev/pool": "real"}},
                    {"classification": "spark-defaults",
                     "properties": {"spark.dynamicAllocation.enabled": "false",
                                    "spark.kubernetes.executor.deleteOnTermination": "true"}}],
                "monitoringConfiguration": {
                    "cloudWatchMonitoringConfiguration": {"logGroupName": self.log_group,
                                                          "logStreamNamePrefix": self.stream_prefix},
                    "s3MonitoringConfiguration": {"logUri": f"s3://{self.bucket}/"}}},
        }
        if sub["retry_policy"]:
            req["retryPolicyConfiguration"] = {"maxAttempts": 2}
        return req

    # -- submission ---------------------------------------------------------------------
    def submit(self, sub):
        req = self.request_of(sub)
        deadline = now() + self.args.submit_deadline
        while True:
            t = now()
            try:
                out = self.emr.start_job_run(**req)
                with self.lock:
                    sub["attempts"].append({"t": t, "result": "answered", "s": now() - t})
                    sub["id"], sub["acked_at"] = out["id"], now()
                return
            except botocore.exceptions.ClientError as e:
                # An answer: recorded, never retried.
                err = e.response.get("Error", {})
                with self.lock:
                    sub["attempts"].append({"t": t, "result": "error-answer", "s": now() - t})
                    sub["answer_error"] = (f"{e.response['ResponseMetadata'].get('HTTPStatusCode')} "
                                           f"{err.get('Code')}: {err.get('Message')}")
                return
            except botocore.exceptions.ParamValidationError:
                raise
            except botocore.exceptions.BotoCoreError as e:  # no answer: connection refused, reset, timeout
                with self.lock:
                    sub["attempts"].append({"t": t, "result": f"no answer ({type(e).__name__})", "s": now() - t})
                if now() > deadline:
                    sub["gave_up"] = True
                    return
                time.sleep(0.5)

    def submitter(self):
        a = self.args
        interval = 60.0 / a.rate
        threads = []
        self.submit_started = now()
        for sub in self.submissions:
            at = self.submit_started + sub["index"] * interval
            delay = at - now()
            if delay > 0:
                time.sleep(delay)
            sub["scheduled"] = at
            th = threading.Thread(target=self.submit, args=(sub,), daemon=True)
            th.start()
            threads.append(th)
        for th in threads:
            th.join()
        self.submit_finished = now()

    # -- killing ------------------------------------------------------------------------
    def killer(self):
        lo, hi = self.args.kill_every
        while not self.stop_killing.is_set():
            due = now() + self.rng.uniform(lo, hi)
            while now() < due and not self.stop_killing.is_set():
                with self.lock:
                    asked = self.kill_request
                if asked is not None and asked <= now():
                    with self.lock:
                        self.kill_request = None
                    break
                self.stop_killing.wait(0.1)
            if self.stop_killing.is_set():
                return
            down = self.rng.uniform(0, self.args.max_down)
            with self.lock:
                active = sum(1 for h in self.state_history.values() if h and h[-1][1] not in TERMINAL)
            sandboxes, spark_sandboxes = count_sandboxes(self.serve.data)
            with self.serve_lock:
                t_kill = now()
                self.serve.kill9()
                time.sleep(down)
                t_spawn = now()
                self.serve.spawn()
                try:
                    aws_s, kube_s = self.wait_ready()
                except RuntimeError as e:
                    log(f"restart failed: {e}")
                    self.violations["restart"].append(str(e))
                    # try once more
                    self.serve.spawn()
                    aws_s, kube_s = self.wait_ready()
                ready = now()
                k = {"at": t_kill - self.t0, "t_kill": t_kill, "down_s": down, "active_runs": active,
                     "sandboxes": sandboxes, "spark_sandboxes": spark_sandboxes, "aws_s": aws_s, "kube_s": kube_s,
                     "spawn_to_ready_s": ready - t_spawn, "kill_to_ready_s": ready - t_kill}
                self.kills.append(k)
            log(f"kill #{len(self.kills)} ({active} runs active, {sandboxes} sandboxes running, {spark_sandboxes} of Spark): down {down:.1f} s, answering {k['spawn_to_ready_s']:.2f} s after restart "
                f"(AWS {aws_s:.2f} s, Kubernetes {kube_s:.2f} s)")

    # -- driver deletions (optional): retries that straddle crashes ------------------------
    def deleter(self):
        """Deletes the first-attempt driver of a random running run that has a retry policy,
        and half of the time asks for a kill 0-12 s later (the retry back-off is 10 s), so that
        attempt 2 is decided, or created, around a crash."""
        lo, hi = self.args.delete_every
        rng = random.Random(self.args.seed + 1)
        retrying = {s["id"]: s for s in self.submissions if s["retry_policy"] and s["id"]}
        done = set()
        while not self.stop_killing.wait(rng.uniform(lo, hi)):
            with self.lock:
                retrying = {s["id"]: s for s in self.submissions if s["retry_policy"] and s["id"]}
            # The run's first driver (with a retry policy it is spark-<id>-driver-<suffix>):
            # the only driver the watch has seen for that run, still running.
            drivers = collections.defaultdict(list)
            for r in self.watcher.snapshot().values():
                if r.role == "driver" and r.run_id in retrying:
                    drivers[r.run_id].append(r)
            live = [ds[0] for rid, ds in drivers.items()
                    if rid not in done and len(ds) == 1 and ds[0].end() is None and "Running" in ds[0].phases]
            if not live:
                continue
            victim = rng.choice(live)
            try:
                status, _ = Kube(self.serve.kubeconfig_path()).request(
                    "DELETE", f"/api/v1/namespaces/{NS}/pods/{victim.name}", timeout=5)
            except Exception as e:
                status = f"no answer ({type(e).__name__})"
            t = now()
            entry = {"t": t - self.t0, "run": victim.run_id, "pod": victim.name, "uid": victim.uid,
                     "status": status, "kind": retrying[victim.run_id]["kind"]}
            if status in (200, 202):
                done.add(victim.run_id)
                if rng.random() < 0.5:
                    entry["kill_after_s"] = rng.uniform(0, 12)
                    with self.lock:
                        self.kill_request = t + entry["kill_after_s"]
            self.deletions.append(entry)
            log(f"deleted driver {victim.name} ({entry['kind']} run): {status}"
                + (f"; kill in {entry['kill_after_s']:.1f} s" if "kill_after_s" in entry else ""))

    # -- polling ------------------------------------------------------------------------
    def list_runs(self):
        runs, token = [], None
        while True:
            kw = {"virtualClusterId": self.vc, "maxResults": 50}
            if token:
                kw["nextToken"] = token
            page = self.emr.list_job_runs(**kw)
            runs.extend(page.get("jobRuns", []))
            token = page.get("nextToken")
            if not token:
                return runs

    def poll_states(self):
        try:
            runs = self.list_runs()
        except Exception:
            return None
        t = now()
        with self.lock:
            for r in runs:
                hist = self.state_history[r["id"]]
                if not hist or hist[-1][1] != r["state"]:
                    if hist and hist[-1][1] in TERMINAL:
                        self.terminal_flips.append({"id": r["id"], "from": hist[-1][1], "to": r["state"], "t": t - self.t0})
                    hist.append((t, r["state"]))
        return runs

    def poller(self):
        last_print = 0
        last_sample = 0
        while not self.stop_polling.is_set():
            runs = self.poll_states()
            if now() - last_sample > 20:
                last_sample = now()
                for pid, cmd in campaign_processes(self.serve.data, exclude={os.getpid()}):
                    self.campaign_pids[pid] = cmd[:200]
            if runs is not None and now() - last_print > 30:
                last_print = now()
                acked = sum(1 for s in self.submissions if s["id"])
                states = collections.Counter(r["state"] for r in runs)
                log(f"t={now() - self.t0:.0f}s acked {acked}/{len(self.submissions)} kills {len(self.kills)} "
                    f"watch (re)connects {self.watcher.connects} states {dict(states)}")
            self.stop_polling.wait(self.args.poll_interval)

    # -- leak baseline ------------------------------------------------------------------
    def tmp_listing(self):
        entries = set()
        for name in os.listdir("/tmp"):
            entries.add(name)
            if name.startswith("hsperfdata_"):
                try:
                    for sub in os.listdir(os.path.join("/tmp", name)):
                        entries.add(f"{name}/{sub}")
                except OSError:
                    pass
        return entries

    def run(self):
        a = self.args
        self.tmp_before = self.tmp_listing()
        self.listeners_before = listening_sockets()
        self.t0 = now()
        log(f"campaign directory {self.dir}")
        self.setup()
        log(f"serve up (pid {self.serve.proc.pid}); virtual cluster {self.vc}; {a.runs} runs at {a.rate}/min, "
            f"{sum(1 for s in self.submissions if s['kind'] == 'real')} real, kill every {lo_hi(a.kill_every)} s")
        self.watcher = PodWatcher(self.serve.kubeconfig_path(), NS, os.path.join(self.dir, "pod-events.jsonl"))
        self.watcher.start()
        self.stop_polling = threading.Event()
        poller = threading.Thread(target=self.poller, daemon=True)
        poller.start()
        killer = threading.Thread(target=self.killer, daemon=True)
        killer.start()
        if a.delete_every:
            threading.Thread(target=self.deleter, daemon=True).start()
        self.t_submit0 = now()
        self.submitter()
        log(f"all {len(self.submissions)} submissions answered or given up at t={now() - self.t0:.0f}s; stop killing")
        self.stop_killing.set()
        killer.join()
        if not self.serve.alive():
            self.violations["restart"].append("serve not alive after the last kill")
        # Wait until every acknowledged run is terminal.
        acked = {s["id"]: s for s in self.submissions if s["id"]}
        deadline = now() + a.hang_guard
        while True:
            runs = self.poll_states()
            if runs is not None:
                by_id = {r["id"]: r["state"] for r in runs}
                active = [i for i in acked if by_id.get(i) not in TERMINAL]
                if not active:
                    break
                if now() > deadline:
                    self.stuck = active
                    log(f"hang guard: {len(active)} runs not terminal after {a.hang_guard} s")
                    break
            time.sleep(2)
        self.t_terminal = now()
        log(f"all acknowledged runs terminal at t={self.t_terminal - self.t0:.0f}s")
        self.stop_polling.set()
        poller.join()
        # Let the shipper finish (logs are written within seconds of a container's exit).
        time.sleep(a.settle)
        self.check_runs(acked)
        self.check_drivers(acked)
        self.check_logs(acked)
        self.watcher.stop_flag.set()
        self.final_stop()
        self.check_leaks()
        self.t_end = now()
        self.report()

    # -- invariant 1 --------------------------------------------------------------------
    def check_runs(self, acked):
        v = self.violations
        self.describes = {}
        for rid, sub in acked.items():
            try:
                jr = self.emr.describe_job_run(virtualClusterId=self.vc, id=rid)["jobRun"]
                self.describes[rid] = jr
            except botocore.exceptions.ClientError as e:
                v["1 acknowledged run missing"].append(f"{rid} ({sub['name']}): {e}")
                continue
            if jr["state"] not in TERMINAL:
                v["1 run not terminal (hang guard)"].append(
                    f"{rid} ({sub['name']}) {jr['state']} {jr.get('stateDetails', '')}")
            elif jr["state"] != "COMPLETED" and not jr.get("stateDetails"):
                v["1 unexplained non-COMPLETED"].append(f"{rid} ({sub['name']}) {jr['state']} (no stateDetails)")
        for flip in self.terminal_flips:
            v["1 terminal state changed"].append(json.dumps(flip))
        runs = self.list_runs()
        counts = collections.Counter(r["id"] for r in runs)
        for rid, n in counts.items():
            if n > 1:
                v["1 listed more than once"].append(f"{rid} x{n}")
        listed = {r["id"]: r for r in runs}
        for rid in acked:
            if rid not in listed:
                v["1 acknowledged run not listed"].append(rid)
            elif rid in self.describes and listed[rid]["state"] != self.describes[rid]["state"]:
                v["1 list/describe state differ"].append(
                    f"{rid}: list {listed[rid]['state']} describe {self.describes[rid]['state']}")
        by_name = {s["name"]: s for s in self.submissions}
        self.unanswered_applied = []
        for rid, r in listed.items():
            if rid in acked:
                continue
            sub = by_name.get(r.get("name"))
            if sub is not None and sub["id"] is None:
                self.unanswered_applied.append(f"{rid} ({r['name']}) {r['state']}")  # never answered: allowed
            else:
                v["1 unacknowledged extra run"].append(
                    f"{rid} name={r.get('name')} state={r['state']} (acknowledged id of that name: {sub and sub['id']})")
        # Replay every acknowledged StartJobRun with its clientToken: same id, nothing new.
        mism = 0
        for sub in self.submissions:
            if not sub["id"]:
                continue
            try:
                out = self.emr.start_job_run(**self.request_of(sub))
                if out["id"] != sub["id"]:
                    mism += 1
                    v["1 clientToken replay gave another id"].append(f"{sub['name']}: {sub['id']} then {out['id']}")
            except botocore.exceptions.ClientError as e:
                v["1 clientToken replay refused"].append(f"{sub['name']}: {e}")
        after = self.list_runs()
        if len(after) != len(runs):
            v["1 replay created runs"].append(f"{len(runs)} listed before the replay, {len(after)} after")
        self.states = collections.Counter(jr["state"] for jr in self.describes.values())
        self.non_completed = [
            f"{rid} ({acked[rid]['name']}) {jr['state']} {jr.get('failureReason', '')}: {jr.get('stateDetails', '')}"
            for rid, jr in self.describes.items() if jr["state"] != "COMPLETED"]
        self.retried_runs = [rid for rid, jr in self.describes.items()
                             if (jr.get("retryPolicyExecution") or {}).get("currentAttemptCount", 1) > 1]

    # -- invariant 2 --------------------------------------------------------------------
    def check_drivers(self, acked):
        pods = self.watcher.snapshot()
        by_run = collections.defaultdict(lambda: collections.defaultdict(list))
        for rec in pods.values():
            rid = rec.run_id
            if rid is None:
                m = re.match(r"spark-([0-9a-z]+)-driver", rec.name)
                rid = m.group(1) if m else None
            by_run[rid][rec.role].append(rec)
        self.pod_counts = collections.Counter()
        self.min_gap = None
        self.never_seen_driver = []
        for rid in acked:
            roles = by_run.get(rid, {})
            for role, recs in roles.items():
                self.pod_counts[role] += len(recs)
            drivers = roles.get("driver", [])
            if not drivers and self.describes.get(rid, {}).get("state") == "COMPLETED":
                self.never_seen_driver.append(rid)
            for role, kind in (("driver", "2 two live drivers"), ("runner", "2b two live job runners")):
                recs = sorted(roles.get(role, []), key=lambda r: r.created or r.first_seen)
                for i, x in enumerate(recs):
                    for y in recs[i + 1:]:
                        x_end = x.end()
                        y_start = y.created if y.created is not None else y.first_seen
                        gap = (y_start - x_end) if x_end is not None else float("-inf")
                        if role == "driver" and x_end is not None:
                            self.min_gap = gap if self.min_gap is None else min(self.min_gap, gap)
                        # creationTimestamp has 1 s resolution: overlap only if certain.
                        if x_end is None or y_start + 1.0 < x_end:
                            self.violations[kind].append(
                                f"run {rid}: {x.name} (uid {x.uid[:8]}, created {fmt_t(x.created)}, ended "
                                f"{fmt_t(x_end)}) and {y.name} (uid {y.uid[:8]}, created {fmt_t(y.created)}, "
                                f"ended {fmt_t(y.end())})")
        self.runs_with_two_drivers = sum(1 for rid in acked if len(by_run.get(rid, {}).get("driver", [])) > 1)
        self.driver_restarts = [f"{r.name} restartCount {r.max_restarts}" for r in pods.values()
                                if r.role == "driver" and r.max_restarts > 0]
        self.pods_by_run = by_run

    # -- invariant 3 --------------------------------------------------------------------
    def s3_lines(self, key):
        body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        text = gzip.decompress(body).decode("utf-8", "replace")
        return [l for l in text.split("\n") if l != ""]

    def cw_messages(self, stream):
        msgs, token = [], None
        while True:
            kw = {"logGroupName": self.log_group, "logStreamName": stream, "startFromHead": True, "limit": 10000}
            if token:
                kw["nextToken"] = token
            try:
                out = self.logs.get_log_events(**kw)
            except botocore.exceptions.ClientError as e:
                if e.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                    return None
                raise
            msgs.extend(ev["message"] for ev in out.get("events", []))
            if not out.get("events") or out.get("nextForwardToken") == token:
                return msgs
            token = out.get("nextForwardToken")

    def compare_stream(self, rid, rel, stream_name, kind_prefix):
        """S3 object vs CloudWatch stream of one container stream. Returns (s3_lines, cw_events)."""
        key = f"{self.vc}/jobs/{rid}/containers/{rel}/{stream_name}.gz"
        cw_name = f"{self.stream_prefix}/{self.vc}/jobs/{rid}/containers/{rel}/{stream_name}"
        try:
            s3 = self.s3_lines(key)
        except botocore.exceptions.ClientError:
            self.violations[f"{kind_prefix} missing in S3"].append(f"s3://{self.bucket}/{key}")
            return None, None
        cw = self.cw_messages(cw_name)
        if cw is None:
            if s3:
                self.violations[f"{kind_prefix} missing in CloudWatch"].append(f"{cw_name} (S3 has {len(s3)} lines)")
            return s3, []
        s3c, cwc = collections.Counter(s3), collections.Counter(cw)
        dup = {m: (cwc[m], s3c[m]) for m in cwc if cwc[m] > s3c[m]}
        missing = {m: (cwc[m], s3c[m]) for m in s3c if cwc[m] < s3c[m]}
        if dup:
            ex = next(iter(dup.items()))
            self.violations[f"{kind_prefix} duplicated in CloudWatch"].append(
                f"{cw_name}: {sum(c - s for c, s in dup.values())} extra events over {len(dup)} messages "
                f"(CW {len(cw)} vs S3 {len(s3)} lines); e.g. {ex[0][:120]!r} x{ex[1][0]} in CW, x{ex[1][1]} in S3")
        if missing:
            ex = next(iter(missing.items()))
            self.violations[f"{kind_prefix} missing from CloudWatch"].append(
                f"{cw_name}: {sum(s - c for c, s in missing.values())} lines missing (CW {len(cw)} vs S3 {len(s3)}); "
                f"e.g. {ex[0][:120]!r}")
        if not dup and not missing and cw != s3:
            self.violations[f"{kind_prefix} order differs"].append(cw_name)
        return s3, cw

    def container_dirs(self, rid):
        prefix = f"{self.vc}/jobs/{rid}/containers/"
        dirs = collections.defaultdict(set)
        token = None
        while True:
            kw = {"Bucket": self.bucket, "Prefix": prefix}
            if token:
                kw["ContinuationToken"] = token
            out = self.s3.list_objects_v2(**kw)
            for o in out.get("Contents", []):
                rel = o["Key"][len(prefix):]
                d, _, f = rel.rpartition("/")
                dirs[d].add(f)
            if not out.get("IsTruncated"):
                return dirs
            token = out["NextContinuationToken"]

    def check_logs(self, acked, second_chance=True):
        self.log_stats = collections.Counter()
        for attempt in (1, 2):
            saved = {k: list(v) for k, v in self.violations.items()}
            self.log_stats = collections.Counter()
            self._check_logs(acked)
            log_kinds = [k for k in self.violations if k.startswith("3") and self.violations[k]]
            if not log_kinds or attempt == 2:
                if attempt == 2:
                    self.info["log check repeated"] = "after 60 s, because the first pass found differences"
                return
            log(f"log check found {sum(len(self.violations[k]) for k in log_kinds)} differences; again in 60 s")
            self.violations.clear()
            self.violations.update(saved)
            time.sleep(60)

    def _check_logs(self, acked):
        pods = self.pods_by_run
        for rid, sub in acked.items():
            state = self.describes.get(rid, {}).get("state")
            if state not in TERMINAL:
                continue
            dirs = self.container_dirs(rid)
            real = sub["kind"] == "real"
            kp = "3 real run:" if real else "3b sim run runner:"
            # The containers that ran on the real node (simulated pods run no process).
            expected = []
            for role, recs in pods.get(rid, {}).items():
                for r in recs:
                    if r.node != "chaos-real" or "Running" not in r.phases and "Succeeded" not in r.phases \
                            and "Failed" not in r.phases:
                        continue
                    rel = r.name if role == "runner" else f"spark-{rid}/{r.name}"
                    expected.append((role, rel))
            for role, rel in expected:
                for stream in ("stdout", "stderr"):
                    if f"{stream}.gz" not in dirs.get(rel, set()):
                        self.violations[f"{kp} missing in S3"].append(
                            f"{rid} {role} {rel}/{stream}.gz (objects there: {sorted(dirs.get(rel, []))})")
            if real and state == "COMPLETED":
                if not any(re.search(r"-driver", d) for d in dirs):
                    self.violations["3 real run: no driver log"].append(f"{rid} dirs {sorted(dirs)}")
                if not any("-exec-" in d for d in dirs):
                    self.violations["3 real run: no executor log"].append(f"{rid} dirs {sorted(dirs)}")
            pi_found, driver_stdouts = False, []
            for d, files in sorted(dirs.items()):
                if not real and d.startswith("spark-"):
                    continue
                for f in sorted(files):
                    if not f.endswith(".gz"):
                        continue
                    s3, cw = self.compare_stream(rid, d, f[:-3], kp)
                    if s3 is None:
                        continue
                    self.log_stats[f"{'real' if real else 'sim'} streams"] += 1
                    self.log_stats[f"{'real' if real else 'sim'} lines"] += len(s3)
                    if real and re.search(r"-driver(-\w+)?$", d) and f == "stdout.gz":
                        driver_stdouts.append(f"{d}: {len(s3)} lines")
                        pi_found = pi_found or any("Pi is roughly" in l for l in s3)
            # A retried run's earlier drivers did not finish: one driver of the run must.
            if real and state == "COMPLETED":
                if pi_found:
                    self.log_stats["COMPLETED real runs with 'Pi is roughly'"] += 1
                else:
                    self.violations["3 real run: driver stdout without 'Pi is roughly'"].append(
                        f"{rid}: {driver_stdouts}")

    # -- invariant 4 --------------------------------------------------------------------
    def final_stop(self):
        before_stop = campaign_processes(self.serve.data, exclude={os.getpid()})
        self.info["campaign processes just before the final stop"] = [f"{p} {c[:160]}" for p, c in before_stop]
        t = self.serve.terminate(timeout=90)
        if t is None:
            self.violations["4 serve did not stop on SIGTERM within 90 s"].append(f"pid {self.serve.proc.pid}")
        self.stop_seconds = t
        time.sleep(5)

    def check_leaks(self):
        v = self.violations
        for pid, cmd in campaign_processes(self.serve.data, exclude={os.getpid()}):
            v["4 leftover process"].append(f"pid {pid}: {cmd[:300]}")
        ours = {self.ports[k] for k in self.ports} | {int(self.service_addr.split(':')[1])}
        after = listening_sockets()
        for key, owner in after.items():
            if key in self.listeners_before:
                continue
            addr, port = key
            mine = (port in ours and addr.startswith("127.")) or addr.startswith(f"127.{self.octet}.") \
                or addr == self.service_addr.split(":")[0] or (owner and self.serve.data in owner)
            if mine:
                v["4 listening socket left"].append(f"{addr}:{port} owner {owner}")
            else:
                self.info.setdefault("new listeners not attributed to the campaign", []).append(
                    f"{addr}:{port} owner {owner}")
        new_tmp = sorted(self.tmp_listing() - self.tmp_before)
        self.new_tmp = new_tmp
        for name in new_tmp:
            path = os.path.join("/tmp", name)
            why = tmp_attribution(path, self.serve.data, self.campaign_pids)
            if why:
                v["4 new entry under /tmp"].append(f"{path} ({describe_path(path)}; {why})")
            else:
                self.info.setdefault("new /tmp entries not attributed to the campaign", []).append(
                    f"{path} ({describe_path(path)})")

    # -- report -------------------------------------------------------------------------
    def report(self):
        a = self.args
        subs = self.submissions
        acked = [s for s in subs if s["id"]]
        retried_calls = [s for s in subs if len(s["attempts"]) > 1]
        no_answer = sum(1 for s in subs for at in s["attempts"] if at["result"].startswith("no answer"))
        restart = [k["spawn_to_ready_s"] for k in self.kills]
        outage = [k["kill_to_ready_s"] for k in self.kills]
        lines = []
        p = lines.append
        p("")
        p("== crash campaign figures")
        p(f"command: scripts/chaos.py {' '.join(sys.argv[1:])}")
        p(f"seed {a.seed}; campaign dir {self.dir}")
        p(f"duration: {self.t_end - self.t0:.0f} s (submitting {self.submit_finished - self.t_submit0:.0f} s, "
          f"then {self.t_terminal - self.submit_finished:.0f} s until all terminal, checks and stop "
          f"{self.t_end - self.t_terminal:.0f} s)")
        p(f"runs: planned {len(subs)} ({sum(1 for s in subs if s['kind'] == 'real')} real, "
          f"{sum(1 for s in subs if s['kind'] == 'sim')} simulated, {sum(1 for s in subs if s['retry_policy'])} with maxAttempts 2)")
        p(f"StartJobRun: acknowledged {len(acked)}, answered with an error {sum(1 for s in subs if s['answer_error'])}, "
          f"given up unanswered {sum(1 for s in subs if s['gave_up'])}; calls without an answer {no_answer} "
          f"(retried with the same clientToken: {len(retried_calls)} submissions)")
        for s in subs:
            if s["answer_error"]:
                p(f"  error answer: {s['name']}: {s['answer_error']}")
        p(f"terminal by state: {dict(self.states)}; runs that used a 2nd attempt: {len(self.retried_runs)}")
        for line in self.non_completed:
            p(f"  non-COMPLETED: {line}")
        for line in self.unanswered_applied:
            p(f"  applied but never answered (allowed): {line}")
        p(f"kills (SIGKILL of serve): {len(self.kills)}; restart to both APIs answering p50 {percentile(restart, 50):.2f} s, "
          f"max {max(restart) if restart else float('nan'):.2f} s; kill to answering (incl. 0-{a.max_down:.0f} s down) "
          f"p50 {percentile(outage, 50):.2f} s, max {max(outage) if outage else float('nan'):.2f} s")
        # Runs alive (acknowledged, not yet seen terminal) across at least one kill.
        spans = {}
        for s in subs:
            if not s["id"]:
                continue
            hist = self.state_history.get(s["id"], [])
            end = next((t for t, st in hist if st in TERMINAL), None)
            spans[s["id"]] = (s["kind"], s["acked_at"], end)
        crossed = collections.Counter()
        kills_per_run = []
        for rid, (kind, start, end) in spans.items():
            n = sum(1 for k in self.kills if start <= k["t_kill"] and (end is None or k["t_kill"] <= end))
            kills_per_run.append(n)
            if n:
                crossed[kind] += 1
        p(f"runs alive across at least one kill: {sum(crossed.values())} ({crossed['real']} real, {crossed['sim']} simulated); "
          f"kills per run max {max(kills_per_run, default=0)}; sandboxes running at a kill: "
          f"median {percentile([k['sandboxes'] for k in self.kills], 50):.0f}, max {max((k['sandboxes'] for k in self.kills), default=0)}; "
          f"kills while a real Spark driver or executor ran: {sum(1 for k in self.kills if k['spark_sandboxes'] > 0)}")
        if self.deletions:
            ok = [d for d in self.deletions if d["status"] in (200, 202)]
            rescued = sum(1 for d in ok if self.describes.get(d["run"], {}).get("state") == "COMPLETED")
            p(f"driver deletions: {len(ok)} first-attempt drivers deleted ({sum(1 for d in ok if d['kind'] == 'real')} real), "
              f"{sum(1 for d in ok if 'kill_after_s' in d)} followed by a kill 0-12 s later; "
              f"{rescued} of those runs COMPLETED on a later attempt; failed deletes {len(self.deletions) - len(ok)}")
        p(f"pod watch: {self.watcher.connects} (re)connections, kube API ports seen {sorted(self.watcher.api_ports)}; "
          f"pods seen {dict(self.pod_counts)}; runs with more than one driver pod {self.runs_with_two_drivers}; "
          f"smallest gap between a run's consecutive drivers {fmt_gap(self.min_gap)}")
        if self.driver_restarts:
            p(f"  drivers with container restarts: {self.driver_restarts}")
        if self.never_seen_driver:
            p(f"  COMPLETED runs whose driver pod the watch never saw: {len(self.never_seen_driver)}")
        p(f"logs checked: {dict(self.log_stats)}")
        p(f"final SIGTERM: serve exited in {self.stop_seconds if self.stop_seconds is None else round(self.stop_seconds, 2)} s")
        for k, val in self.info.items():
            p(f"info: {k}: {val}")
        kinds = ["1 acknowledged run missing", "1 run not terminal (hang guard)", "1 unexplained non-COMPLETED",
                 "1 terminal state changed", "1 listed more than once", "1 acknowledged run not listed",
                 "1 list/describe state differ", "1 unacknowledged extra run", "1 clientToken replay gave another id",
                 "1 clientToken replay refused", "1 replay created runs", "2 two live drivers", "2b two live job runners",
                 "3 real run: missing in S3", "3 real run: missing in CloudWatch", "3 real run: duplicated in CloudWatch",
                 "3 real run: missing from CloudWatch", "3 real run: no driver log", "3 real run: no executor log",
                 "3 real run: driver stdout without 'Pi is roughly'", "3b sim run runner: missing in S3",
                 "3b sim run runner: duplicated in CloudWatch", "3b sim run runner: missing from CloudWatch",
                 "4 leftover process", "4 listening socket left", "4 new entry under /tmp", "restart"]
        for k in self.violations:
            if k not in kinds:
                kinds.append(k)
        p("violations:")
        total = 0
        for k in kinds:
            n = len(self.violations.get(k, []))
            total += n
            p(f"  {k:<55} {n}")
        for k in kinds:
            for item in self.violations.get(k, [])[:20]:
                p(f"  [{k}] {item}")
            if len(self.violations.get(k, [])) > 20:
                p(f"  [{k}] … {len(self.violations[k]) - 20} more in report.json")
        p(f"total violations: {total}")
        print("\n".join(lines), flush=True)
        report = {
            "args": vars(a), "dir": self.dir, "ports": self.ports, "vc": self.vc, "deletions": self.deletions,
            "duration_s": self.t_end - self.t0, "submissions": subs, "kills": self.kills,
            "states": dict(self.states), "non_completed": self.non_completed,
            "unanswered_applied": self.unanswered_applied, "violations": self.violations,
            "pods": {uid: r.as_dict() for uid, r in self.watcher.snapshot().items()},
            "state_history": {k: v for k, v in self.state_history.items()}, "log_stats": self.log_stats,
            "info": self.info, "summary": lines,
        }
        with open(os.path.join(self.dir, "report.json"), "w") as f:
            json.dump(report, f, indent=1, default=str)
        self.total_violations = total


def fmt_t(t):
    if t is None:
        return "never"
    return datetime.datetime.fromtimestamp(t).strftime("%H:%M:%S.%f")[:-3]


def fmt_gap(g):
    return "n/a" if g is None else f"{g:.1f} s"


def lo_hi(pair):
    return f"{pair[0]:g}-{pair[1]:g}"


def describe_path(path):
    try:
        st = os.lstat(path)
        kind = "dir" if os.path.isdir(path) else "file"
        return f"{kind}, modified {datetime.datetime.fromtimestamp(st.st_mtime).strftime('%H:%M:%S')}"
    except OSError:
        return "gone"


def tmp_attribution(path, data_dir, campaign_pids):
    """Why a new /tmp entry is the campaign's (None: no evidence it is)."""
    needle = data_dir.encode()
    m = re.match(r"/tmp/hsperfdata_[^/]+/(\d+)$", path)
    if m and int(m.group(1)) in campaign_pids:
        return f"perf data of campaign process {m.group(1)}: {campaign_pids[int(m.group(1))][:120]}"
    files = [path]
    if os.path.isdir(path):
        files = []
        for base, _, names in os.walk(path):
            files.extend(os.path.join(base, n) for n in names)
            if len(files) > 200:
                break
    for f in files[:200]:
        try:
            with open(f, "rb") as fh:
                if needle in fh.read(4 << 20):
                    return f"{f} names the campaign's data directory"
        except OSError:
            continue
    if re.search(r"spark|sparkyard|blockmgr|bwrap", os.path.basename(path), re.I):
        return "a Spark/sparkyard name"
    return None


def count_sandboxes(data_dir):
    """The campaign's running containers: one `sparkyard shim` each, its command line naming
    the container's log under the data directory. Returns (all, Spark driver or executor)."""
    n = spark = 0
    needle = data_dir.encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
        except OSError:
            continue
        if len(argv) > 2 and argv[1] == b"shim" and any(needle in a for a in argv):
            n += 1
            cmd = b" ".join(argv)
            if b"-driver_" in cmd or re.search(rb"-exec-\d+_", cmd):
                spark += 1
    return n, spark


def campaign_processes(data_dir, exclude=()):
    """Processes whose cmdline, environment or mounts name the campaign's data directory."""
    found = []
    needle = data_dir.encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) in exclude:
            continue
        base = f"/proc/{pid}"
        try:
            with open(f"{base}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
            cmd = open(f"{base}/cmdline", "rb").read()
            hit = needle in cmd
            if not hit:
                try:
                    hit = needle in open(f"{base}/environ", "rb").read()
                except OSError:
                    pass
            if not hit:
                try:
                    hit = needle in open(f"{base}/mountinfo", "rb").read()
                except OSError:
                    pass
            if hit:
                found.append((int(pid), cmd.replace(b"\0", b" ").decode("utf-8", "replace")))
        except (OSError, IndexError):
            continue
    return found


def listening_sockets():
    """{(addr, port): owner} of every listening TCP socket."""
    inodes = {}
    for fname, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        try:
            lines = open(fname).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[3] != "0A":
                continue
            hexaddr, hexport = f[1].split(":")
            if v6:
                addr = "v6:" + hexaddr
            else:
                addr = socket.inet_ntoa(bytes.fromhex(hexaddr)[::-1])
            inodes[f[9]] = (addr, int(hexport, 16))
    owners = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if target.startswith("socket:["):
                    ino = target[8:-1]
                    if ino in inodes and ino not in owners:
                        cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode("utf-8", "replace")
                        owners[ino] = f"pid {pid} {cmd[:200]}"
        except OSError:
            continue
    return {key: owners.get(ino) for ino, key in inodes.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--real-fraction", type=float, default=0.1)
    parser.add_argument("--kill-every", default="20-60", help="MIN-MAX seconds between kills")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--rate", type=float, default=10.0, help="StartJobRun per minute")
    parser.add_argument("--retry-fraction", type=float, default=0.3,
                        help="share of simulated runs with retryPolicyConfiguration maxAttempts 2")
    parser.add_argument("--retry-real", action="store_true",
                        help="real runs get the retry policy too (with --retry-fraction)")
    parser.add_argument("--delete-every", default=None,
                        help="MIN-MAX seconds: delete a running first-attempt driver of a run with a retry "
                             "policy, half of the time followed by a kill 0-12 s later (default: never)")
    parser.add_argument("--sim-seconds", default="5-30", help="MIN-MAX simulated driver duration")
    parser.add_argument("--sim-nodes", type=int, default=4)
    parser.add_argument("--max-down", type=float, default=1.0,
                        help="serve stays down a random 0..this many seconds before the restart")
    parser.add_argument("--ttl", type=int, default=120, help="[controller] ttl-seconds-after-finished")
    parser.add_argument("--hang-guard", type=float, default=1500.0,
                        help="seconds after the last submission before unfinished runs are reported stuck")
    parser.add_argument("--submit-deadline", type=float, default=600.0,
                        help="give up a StartJobRun that got no answer for this long")
    parser.add_argument("--poll-interval", type=float, default=5.0)
    parser.add_argument("--settle", type=float, default=20.0, help="seconds to wait for the shipper at the end")
    parser.add_argument("--dir", help="campaign directory (default .sparkyard/chaos/campaign-<time>)")
    parser.add_argument("--binary", default=os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/sparkyard/target")), "release", "sparkyard"))
    args = parser.parse_args()
    args.kill_every = tuple(float(x) for x in args.kill_every.split("-"))
    args.sim_seconds = tuple(int(x) for x in args.sim_seconds.split("-"))
    if args.delete_every:
        args.delete_every = tuple(float(x) for x in args.delete_every.split("-"))
    if args.seed is None:
        args.seed = random.randrange(1 << 31)
    if not os.path.exists(args.binary):
        sys.exit(f"no sparkyard binary at {args.binary}: cargo build --release --bin sparkyard, or --binary")
    if shutil.which("bwrap") is None:
        sys.exit("bubblewrap (bwrap) is not installed: source scripts/setup.sh")
    camp = Campaign(args)
    try:
        camp.run()
    except BaseException:
        if getattr(camp, "serve", None) is not None and camp.serve.alive():
            camp.serve.terminate(timeout=30)
        raise
    sys.exit(0 if camp.total_violations == 0 else 1)


if __name__ == "__main__":
    main()
