#!/usr/bin/env python3
"""S3A throughput: a Spark job on sparkyard's S3 vs the same job on local files vs MinIO
(docs/benchmarks.md, "S3A throughput").

    source scripts/setup.sh                                  # .venv, Java, the S3A jars
    cargo build --release -p sparkyard --bin sparkyard
    .venv/bin/python scripts/bench-s3a.py

What it does:

1. generates a CSV dataset once (S3A_BENCH_MIB MiB in S3A_BENCH_FILES files; columns id,
   category, amount, ts, note) under $BENCH_DIR/data/ with Spark, kept for later runs;
2. starts the release `sparkyard serve --no-cluster --no-controller` on a fresh data
   directory under $BENCH_DIR/run/ (same disk as the local files) and, if a `minio` binary
   is found ($S3A_BENCH_MINIO, default $BENCH_DIR/bin/minio), a single-node MinIO on a
   fresh directory there too; creates a bucket on each and copies the dataset in with
   `aws s3 cp --recursive` (timed, for information);
3. starts one Spark session (`local[S3A_BENCH_CORES]`, the venv's pyspark, S3A configured
   per bucket: path style, plain HTTP, SimpleAWSCredentialsProvider) and measures, in
   S3A_BENCH_RUNS rounds with the targets taking turns (the order rotates each round):
     - read CSV: `spark.read.csv(dataset, schema).groupBy(category).agg(...)`, a full scan;
     - read raw: `binaryFile` + `sum(length(content))`, every byte through S3A with no parsing;
     - write Parquet / write CSV: a 1 GiB-class DataFrame read from the LOCAL dataset and
       cached in memory first, written to the target (`errorifexists` into a fresh path),
       once per S3A committer in S3A_BENCH_COMMITTERS (`file`: Spark's default
       FileOutputCommitter v1, commit by rename = COPY + DELETE; `magic`: Hadoop's magic
       committer through spark-hadoop-cloud's PathOutputCommitProtocol).
   Throughput = bytes read or written (the data files' sizes) / wall seconds of the action;
4. prints min / median / max MiB/s per cell, the ratios of the medians, and the servers'
   CPU seconds (from /proc) per cell; then stops everything it started.

Knobs (defaults): SPARKYARD_BIN ($CARGO_TARGET_DIR/release/sparkyard), BENCH_DIR
(~/.cache/sparkyard/bench), S3A_BENCH_MIB (1024), S3A_BENCH_FILES (8), S3A_BENCH_RUNS (3), S3A_BENCH_WARMUP (1 round, not counted),
S3A_BENCH_CORES (2), S3A_BENCH_TARGETS (local,sparkyard,minio), S3A_BENCH_OPS
(read-csv,read-raw,write-parquet,write-csv), S3A_BENCH_COMMITTERS (file,magic),
S3A_BENCH_MINIO ($BENCH_DIR/bin/minio), S3A_BENCH_DRIVER_MEMORY (4g), S3A_BENCH_KEEP=1
keeps the servers' data directories.
"""

import configparser
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGET_DIR = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/sparkyard/target"))
BIN = os.environ.get("SPARKYARD_BIN", os.path.join(TARGET_DIR, "release", "sparkyard"))
BENCH_DIR = os.environ.get("BENCH_DIR", os.path.expanduser("~/.cache/sparkyard/bench"))
MIB = int(os.environ.get("S3A_BENCH_MIB", "1024"))
FILES = int(os.environ.get("S3A_BENCH_FILES", "8"))
RUNS = int(os.environ.get("S3A_BENCH_RUNS", "3"))
WARMUP = int(os.environ.get("S3A_BENCH_WARMUP", "1"))
CORES = int(os.environ.get("S3A_BENCH_CORES", "2"))
TARGETS = os.environ.get("S3A_BENCH_TARGETS", "local,sparkyard,minio").split(",")
OPS = os.environ.get("S3A_BENCH_OPS", "read-csv,read-raw,write-parquet,write-csv").split(",")
COMMITTERS = os.environ.get("S3A_BENCH_COMMITTERS", "file,magic").split(",")
MINIO = os.environ.get("S3A_BENCH_MINIO", os.path.join(BENCH_DIR, "bin", "minio"))
DRIVER_MEMORY = os.environ.get("S3A_BENCH_DRIVER_MEMORY", "4g")
KEEP = os.environ.get("S3A_BENCH_KEEP") == "1"

BUCKET = {"sparkyard": "bench-sparkyard", "minio": "bench-minio"}
MINIO_USER, MINIO_PASSWORD = "benchadmin", "benchadmin-secret-key"
SCHEMA = "id BIGINT, category STRING, amount DOUBLE, ts STRING, note STRING"
# One generated row is about 79 bytes of CSV.
ROW_BYTES = 79


def say(msg):
    print(f"==> {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check, what, seconds=120):
    deadline = time.time() + seconds
    while True:
        try:
            if check():
                return
        except Exception:
            pass
        if time.time() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.25)


def cpu_seconds(pid):
    """utime + stime of a process, from /proc (clock ticks)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Server:
    """A started S3 server: endpoint, keys, the environment its aws CLI calls use."""

    def __init__(self, name, proc, endpoint, access_key, secret_key, region, env, data):
        self.name, self.proc, self.endpoint = name, proc, endpoint
        self.access_key, self.secret_key, self.region = access_key, secret_key, region
        self.env, self.data = env, data

    def aws(self, *args, capture=False):
        cmd = ["aws", "--endpoint-url", self.endpoint, "--region", self.region, *args]
        return subprocess.run(cmd, env=self.env, check=True, text=True,
                              stdout=subprocess.PIPE if capture else subprocess.DEVNULL)

    def cpu(self):
        return cpu_seconds(self.proc.pid)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if not KEEP:
            shutil.rmtree(self.data, ignore_errors=True)


def fresh_dir(path):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)
    return path


def start_sparkyard():
    if not os.path.exists(BIN):
        sys.exit(f"no binary at {BIN}: cargo build --release -p sparkyard --bin sparkyard (or set SPARKYARD_BIN)")
    data = fresh_dir(os.path.join(BENCH_DIR, "run", "sparkyard"))
    port = free_port()
    log = open(os.path.join(BENCH_DIR, "run", "sparkyard.log"), "w")
    proc = subprocess.Popen(
        [BIN, "serve", "--data-dir", data, "--listen", f"127.0.0.1:{port}", "--no-cluster", "--no-controller"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    creds = os.path.join(data, "aws", "credentials")
    config = os.path.join(data, "aws", "config")
    wait_until(lambda: proc.poll() is None and os.path.exists(config) and os.path.getsize(creds) > 0,
               "sparkyard's AWS profile")
    wait_until(lambda: socket.create_connection(("127.0.0.1", port), 1).close() is None, "sparkyard's port")
    c = configparser.ConfigParser()
    c.read(creds)
    cfg = configparser.ConfigParser()
    cfg.read(config)
    region = cfg.get("profile sparkyard", "region", fallback="us-east-1")
    env = dict(os.environ, AWS_CONFIG_FILE=config, AWS_SHARED_CREDENTIALS_FILE=creds, AWS_PROFILE="sparkyard")
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        env.pop(k, None)
    return Server("sparkyard", proc, f"http://127.0.0.1:{port}",
                  c.get("sparkyard", "aws_access_key_id"), c.get("sparkyard", "aws_secret_access_key"),
                  region, env, data)


def minio_version():
    try:
        return subprocess.run([MINIO, "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    except Exception:
        return "?"


def start_minio():
    data = fresh_dir(os.path.join(BENCH_DIR, "run", "minio"))
    port, console = free_port(), free_port()
    log = open(os.path.join(BENCH_DIR, "run", "minio.log"), "w")
    env = dict(os.environ, MINIO_ROOT_USER=MINIO_USER, MINIO_ROOT_PASSWORD=MINIO_PASSWORD,
               MINIO_BROWSER="off", MINIO_UPDATE="off")
    proc = subprocess.Popen(
        [MINIO, "server", data, "--address", f"127.0.0.1:{port}", "--console-address", f"127.0.0.1:{console}",
         "--quiet"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    wait_until(lambda: proc.poll() is None
               and urllib.request.urlopen(f"{endpoint}/minio/health/live", timeout=2).status == 200,
               "MinIO")
    aws_env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    aws_env.update(AWS_ACCESS_KEY_ID=MINIO_USER, AWS_SECRET_ACCESS_KEY=MINIO_PASSWORD,
                   AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    return Server("minio", proc, endpoint, MINIO_USER, MINIO_PASSWORD, "us-east-1", aws_env, data)


def data_files(directory):
    return sorted(f for f in os.listdir(directory) if f.startswith("part-"))


def dataset_dir():
    return os.path.join(BENCH_DIR, "data", f"csv-{MIB}mib-{FILES}files")


def generate_dataset(spark):
    """The dataset, made once: FILES CSV files, MIB MiB in all, deterministic."""
    out = dataset_dir()
    if os.path.exists(os.path.join(out, "DONE")):
        return out
    say(f"generating {MIB} MiB of CSV in {FILES} files under {out}")
    staging = out + ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(out, ignore_errors=True)
    rows = MIB * 1024 * 1024 // ROW_BYTES
    (spark.range(0, rows, 1, FILES)
        .selectExpr(
            "id",
            "concat('category-', cast(pmod(hash(id, 1), 40) as string)) as category",
            "round(pmod(hash(id, 2), 1000000) / 100.0, 2) as amount",
            "date_format(timestamp_seconds(1767225600 + pmod(hash(id, 3), 31536000)), "
            "'yyyy-MM-dd HH:mm:ss') as ts",
            "substr(sha2(cast(id as string), 256), 1, 28 + pmod(hash(id, 4), 8)) as note")
        .write.csv("file://" + staging))
    # Only the data files: no _SUCCESS, no .crc (local reads would verify them, S3 has none).
    os.makedirs(out)
    for f in data_files(staging):
        os.rename(os.path.join(staging, f), os.path.join(out, f))
    shutil.rmtree(staging)
    open(os.path.join(out, "DONE"), "w").close()
    return out


def spark_session(servers):
    from pyspark.sql import SparkSession

    b = (SparkSession.builder.master(f"local[{CORES}]").appName("bench-s3a")
         .config("spark.driver.memory", DRIVER_MEMORY)
         .config("spark.ui.enabled", "false")
         .config("spark.ui.showConsoleProgress", "false")
         .config("spark.sql.shuffle.partitions", str(CORES))
         .config("spark.hadoop.fs.s3a.path.style.access", "true")
         .config("spark.hadoop.fs.s3a.connection.ssl.enabled", "false")
         .config("spark.hadoop.fs.s3a.aws.credentials.provider",
                 "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider")
         # The magic committer, when a cell asks for it (PathOutputCommitProtocol binds it).
         .config("spark.hadoop.fs.s3a.committer.magic.enabled", "true"))
    for s in servers:
        p = f"spark.hadoop.fs.s3a.bucket.{BUCKET[s.name]}."
        b = (b.config(p + "endpoint", s.endpoint)
             .config(p + "endpoint.region", s.region)
             .config(p + "access.key", s.access_key)
             .config(p + "secret.key", s.secret_key))
    spark = b.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


class Hadoop:
    """The JVM's Hadoop FileSystem, for sizes and deletes outside the timed actions."""

    def __init__(self, spark):
        self.jvm = spark.sparkContext._jvm
        self.conf = spark.sparkContext._jsc.hadoopConfiguration()

    def fs(self, url):
        p = self.jvm.org.apache.hadoop.fs.Path(url)
        return p.getFileSystem(self.conf), p

    def delete(self, url):
        fs, p = self.fs(url)
        fs.delete(p, True)

    def data_bytes(self, url):
        """Sum of the `part-*` files' sizes under `url` (no _SUCCESS, no .crc)."""
        fs, p = self.fs(url)
        it = fs.listFiles(p, True)
        total = n = 0
        while it.hasNext():
            st = it.next()
            if st.getPath().getName().startswith("part-"):
                total += st.getLen()
                n += 1
        return total, n


def url_of(target, path):
    if target == "local":
        return "file://" + os.path.join(BENCH_DIR, "run", "local", path)
    return f"s3a://{BUCKET[target]}/{path}"


def fmt_rate(b, s):
    return b / s / (1 << 20)


def main():
    os.makedirs(os.path.join(BENCH_DIR, "run"), exist_ok=True)
    targets = [t for t in TARGETS if t]
    if "minio" in targets and not os.path.exists(MINIO):
        say(f"no MinIO binary at {MINIO}: skipping that target")
        targets.remove("minio")
    servers = {}
    spark = None
    try:
        for t in targets:
            if t == "sparkyard":
                servers[t] = start_sparkyard()
            elif t == "minio":
                servers[t] = start_minio()
            elif t != "local":
                sys.exit(f"unknown target {t}")
            if t in servers:
                say(f"{t} at {servers[t].endpoint}")
        spark = spark_session(list(servers.values()))
        import pyspark
        from pyspark.sql import functions as F

        hadoop = Hadoop(spark)
        data = generate_dataset(spark)
        files = data_files(data)
        dataset_bytes = sum(os.path.getsize(os.path.join(data, f)) for f in files)
        say(f"dataset: {len(files)} files, {dataset_bytes / (1 << 20):.1f} MiB")

        # Put the dataset in place: a local copy (same disk), and each server's bucket.
        local_in = fresh_dir(os.path.join(BENCH_DIR, "run", "local", "input"))
        for f in files:
            shutil.copyfile(os.path.join(data, f), os.path.join(local_in, f))
        uploads = {}
        for name, s in servers.items():
            s.aws("s3", "mb", f"s3://{BUCKET[name]}")
            t0 = time.perf_counter()
            s.aws("s3", "cp", "--recursive", "--exclude", "*", "--include", "part-*",
                  data, f"s3://{BUCKET[name]}/input/")
            uploads[name] = time.perf_counter() - t0
            listed = s.aws("s3", "ls", "--recursive", f"s3://{BUCKET[name]}/input/", capture=True).stdout
            got = sum(int(line.split()[2]) for line in listed.splitlines() if line.strip())
            if got != dataset_bytes:
                raise RuntimeError(f"{name}: {got} bytes listed after upload, expected {dataset_bytes}")
            say(f"aws s3 cp --recursive into {name}: {uploads[name]:.1f} s "
                f"({fmt_rate(dataset_bytes, uploads[name]):.0f} MiB/s)")

        # A tiny round trip first on each S3 target: fail fast on configuration.
        for name in servers:
            u = url_of(name, "smoke")
            hadoop.delete(u)
            spark.range(10).write.parquet(u)
            assert spark.read.parquet(u).count() == 10
            hadoop.delete(u)

        results = {}  # (op label, target) -> [(bytes, seconds, server cpu)]

        def measure(label, target, action, nbytes_of, counted=True):
            server = servers.get(target)
            cpu0 = server.cpu() if server else 0.0
            t0 = time.perf_counter()
            action()
            dt = time.perf_counter() - t0
            cpu = (server.cpu() - cpu0) if server else 0.0
            nbytes = nbytes_of()
            if counted:
                results.setdefault((label, target), []).append((nbytes, dt, cpu))
            say(f"{'' if counted else '(warm-up) '}{label:24} {target:10} {nbytes / (1 << 20):8.1f} MiB {dt:7.2f} s "
                f"{fmt_rate(nbytes, dt):7.1f} MiB/s  server CPU {cpu:6.2f} s")

        def rounds():
            """(round, counted, targets in this round's order); warm-up rounds come first."""
            for r in range(WARMUP + RUNS):
                yield r, r >= WARMUP, targets[r % len(targets):] + targets[:r % len(targets)]

        if "read-csv" in OPS or "read-raw" in OPS:
            for r, counted, order in rounds():
                for t in order:
                    src = url_of(t, "input")
                    if "read-csv" in OPS:
                        measure("read CSV (scan + agg)", t, lambda: spark.read.csv(src, schema=SCHEMA)
                                .groupBy("category").agg(F.sum("amount"), F.count("*"), F.max("ts")).collect(),
                                lambda: dataset_bytes, counted)
                    if "read-raw" in OPS:
                        def raw():
                            n = (spark.read.format("binaryFile").load(src)
                                 .select(F.sum(F.length("content"))).collect()[0][0])
                            if n != dataset_bytes:
                                raise RuntimeError(f"{t}: read {n} bytes, expected {dataset_bytes}")
                        measure("read raw (binaryFile)", t, raw, lambda: dataset_bytes, counted)

        writes = [op.split("-", 1)[1] for op in OPS if op.startswith("write-")]
        if writes:
            source = spark.read.csv("file://" + data, schema=SCHEMA).cache()
            rows = source.count()
            say(f"write source: {rows} rows from the local dataset, cached")
            cells = []
            for fmt in writes:
                for t in targets:
                    for c in (["file"] if t == "local" else COMMITTERS):
                        cells.append((fmt, t, c))
            for r, counted, _ in rounds():
                order = cells[r % len(cells):] + cells[:r % len(cells)]
                for fmt, t, committer in order:
                    out = url_of(t, f"out/{fmt}-{committer}-{r}")
                    hadoop.delete(out)
                    label = f"write {fmt} ({committer})" if t != "local" else f"write {fmt}"

                    def write():
                        w = source.write.format(fmt)
                        if t != "local":
                            w = w.option("fs.s3a.committer.name", committer)
                        if committer == "magic" and t != "local":
                            spark.conf.set("spark.sql.sources.commitProtocolClass",
                                           "org.apache.spark.internal.io.cloud.PathOutputCommitProtocol")
                            spark.conf.set("spark.sql.parquet.output.committer.class",
                                           "org.apache.spark.internal.io.cloud.BindingParquetOutputCommitter")
                        try:
                            w.save(out)
                        finally:
                            spark.conf.unset("spark.sql.sources.commitProtocolClass")
                            spark.conf.unset("spark.sql.parquet.output.committer.class")

                    measure(label, t, write, lambda: hadoop.data_bytes(out)[0], counted)
                    hadoop.delete(out)
            source.unpersist()

        # ---- report ----
        print()
        print(f"S3A throughput, {time.strftime('%Y-%m-%d %H:%M')} local time, {os.cpu_count()} CPUs, "
              f"local[{CORES}], pyspark {pyspark.__version__}, {RUNS} runs per cell; "
              f"dataset {len(files)} CSV files, {dataset_bytes / (1 << 20):.0f} MiB")
        if "minio" in servers:
            print(f"MinIO: {minio_version()}")
        for name, secs in uploads.items():
            print(f"aws s3 cp --recursive of the dataset into {name}: {secs:.1f} s "
                  f"({fmt_rate(dataset_bytes, secs):.0f} MiB/s)")
        print()
        print("| operation | target | MiB | MiB/s min | median | max | median s | server CPU s (median) |")
        print("|---|---|---:|---:|---:|---:|---:|---:|")
        labels = []
        for (label, _t) in results:
            if label not in labels:
                labels.append(label)
        medians = {}
        for label in labels:
            for t in targets:
                runs = results.get((label, t))
                if not runs:
                    continue
                rates = sorted(fmt_rate(b, s) for b, s, _ in runs)
                med = statistics.median(rates)
                medians[(label, t)] = med
                cpu = statistics.median(c for _, _, c in runs) if t in servers else None
                print(f"| {label} | {t} | {statistics.median(b for b, _, _ in runs) / (1 << 20):.0f} | "
                      f"{rates[0]:.1f} | **{med:.1f}** | {rates[-1]:.1f} | "
                      f"{statistics.median(s for _, s, _ in runs):.2f} | "
                      f"{'' if cpu is None else f'{cpu:.1f}'} |")
        print()
        print("| operation | sparkyard / local | sparkyard / minio |")
        print("|---|---:|---:|")
        for label in labels:
            sy = medians.get((label, "sparkyard"))
            if sy is None:
                continue
            # Local has one committer: compare every S3 committer cell with local's cell.
            base = label.split(" (")[0]
            loc = medians.get((label, "local")) or medians.get((base, "local"))
            mio = medians.get((label, "minio"))
            print(f"| {label} | {'' if loc is None else f'{sy / loc:.2f}'} | "
                  f"{'' if mio is None else f'{sy / mio:.2f}'} |")
    finally:
        if spark is not None:
            spark.stop()
        for s in servers.values():
            s.stop()
        if not KEEP:
            shutil.rmtree(os.path.join(BENCH_DIR, "run", "local"), ignore_errors=True)


if __name__ == "__main__":
    main()
