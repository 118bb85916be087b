"""Shared helpers for the boto3 acceptance scripts (imported by boto3_*.py and durability.py).

The scripts are run by the Rust tests through `support::Server::python`, which points
AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE at the profile sparkyard writes into its data
directory and sets SPARKYARD_ENDPOINT. Nothing here talks to anything but that endpoint.
"""

import datetime
import os
import re
import sys
import time
import traceback

import boto3
from botocore.exceptions import ClientError

ACCOUNT = "123456789012"
REGION = "us-east-1"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/monthly-batch-JobExecutionRole"
RELEASE = "emr-6.3.0-latest"
PI = "local:///usr/lib/spark/examples/src/main/python/pi.py"
SPARK_PARAMS = (
    "--conf spark.executor.instances=2 --conf spark.executor.memory=2G "
    "--conf spark.executor.cores=1 --conf spark.driver.cores=1"
)

JOB_RUN_ID = re.compile(r"^0{7}[0-9a-z]{12}$")
RESOURCE_ID = re.compile(r"^[0-9a-z]{1,64}$")
CREATED_BY = re.compile(r"^arn:aws:(iam|sts)::123456789012:[\w/+=,.@-]+$")

JOB_RUN_STATES = {"PENDING", "SUBMITTED", "RUNNING", "FAILED", "CANCELLED", "CANCEL_PENDING", "COMPLETED"}

# Every operation a client made (successful or not), recorded from botocore's after-call event.
CALLED = {}


def _record(http_response=None, parsed=None, model=None, **_kwargs):
    status = getattr(http_response, "status_code", None)
    CALLED.setdefault(model.name, []).append(status)


def client():
    """An emr-containers client from the `sparkyard` profile, exactly as a user would make one."""
    session = boto3.session.Session(profile_name="sparkyard")
    c = session.client("emr-containers")
    expected = os.environ["SPARKYARD_ENDPOINT"].rstrip("/")
    got = c.meta.endpoint_url.rstrip("/")
    assert got == expected, (
        f"the sparkyard profile should carry endpoint_url={expected} (boto3 honours it), "
        f"but the client resolved {got}"
    )
    assert session.region_name == REGION, f"profile region {session.region_name!r}, expected {REGION}"
    c.meta.events.register("after-call.emr-containers", _record)
    return c


def now():
    return datetime.datetime.now(datetime.timezone.utc)


def assert_recent(ts, what):
    assert isinstance(ts, datetime.datetime), f"{what} should parse as a timestamp, got {ts!r}"
    assert ts.tzinfo is not None, f"{what} should carry a time zone: {ts!r}"
    age = abs((now() - ts).total_seconds())
    assert age < 300, f"{what} {ts} is not within 5 minutes of now"


def expect_error(code, fn, *args, **kwargs):
    """Calls fn and asserts it raises a ClientError with the given code; returns the error."""
    try:
        result = fn(*args, **kwargs)
    except ClientError as e:
        err = e.response["Error"]
        assert err["Code"] == code, (
            f"{fn.__name__}({kwargs}) raised {err['Code']} ({err.get('Message')!r}), expected {code}"
        )
        assert err.get("Message"), f"{code} from {fn.__name__} has no message: {e.response}"
        status = e.response["ResponseMetadata"]["HTTPStatusCode"]
        if code in ("ValidationException", "ResourceNotFoundException"):
            assert status == 400, f"{code} should be HTTP 400, got {status}"
        return e
    raise AssertionError(f"{fn.__name__}({kwargs}) succeeded with {result!r}, expected {code}")


def error_of(fn, **kwargs):
    """Calls fn, which must fail; returns its (error code, HTTP status)."""
    try:
        fn(**kwargs)
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    raise AssertionError(f"expected an error from {fn.__name__}")


def provider(namespace, cluster="eks-emr-cluster"):
    return {"id": cluster, "type": "EKS", "info": {"eksInfo": {"namespace": namespace}}}


def create_vc(c, namespace, name=None, **kwargs):
    name = name or f"{namespace}-emr-cluster"
    out = c.create_virtual_cluster(name=name, containerProvider=provider(namespace), **kwargs)
    assert RESOURCE_ID.match(out["id"]), f"virtual cluster id {out['id']!r}"
    assert out["name"] == name, f"create_virtual_cluster name {out['name']!r}"
    assert out["arn"] == vc_arn(out["id"]), f"create_virtual_cluster arn {out['arn']!r}"
    return out["id"]


def vc_arn(vc):
    return f"arn:aws:emr-containers:{REGION}:{ACCOUNT}:/virtualclusters/{vc}"


def job_run_arn(vc, run):
    return f"{vc_arn(vc)}/jobruns/{run}"


def job_request(name="pi", **overrides):
    req = {
        "name": name,
        "executionRoleArn": ROLE,
        "releaseLabel": RELEASE,
        "jobDriver": {
            "sparkSubmitJobDriver": {
                "entryPoint": PI,
                "entryPointArguments": ["10"],
                "sparkSubmitParameters": SPARK_PARAMS,
            }
        },
        "configurationOverrides": {
            "applicationConfiguration": [
                {
                    "classification": "spark-defaults",
                    "properties": {
                        "spark.dynamicAllocation.enabled": "false",
                        "spark.kubernetes.executor.deleteOnTermination": "true",
                    },
                }
            ],
            "monitoringConfiguration": {
                "cloudWatchMonitoringConfiguration": {
                    "logGroupName": "/emr-on-eks/eks-emr-cluster/monthly-batch",
                    "logStreamNamePrefix": "pi",
                },
                "s3MonitoringConfiguration": {"logUri": f"s3://monthly-batch-logs-{ACCOUNT}-{REGION}/"},
            },
        },
    }
    req.update(overrides)
    return req


def start_run(c, vc, name="pi", **overrides):
    out = c.start_job_run(virtualClusterId=vc, **job_request(name, **overrides))
    assert JOB_RUN_ID.match(out["id"]), f"job run id {out['id']!r} should match ^0{{7}}[0-9a-z]{{12}}$"
    assert out["virtualClusterId"] == vc, f"start_job_run virtualClusterId {out['virtualClusterId']!r}"
    assert out["arn"] == job_run_arn(vc, out["id"]), f"start_job_run arn {out['arn']!r}"
    assert out["name"] == name, f"start_job_run name {out['name']!r}"
    return out["id"]


def all_job_runs(c, vc, **filters):
    pages = c.get_paginator("list_job_runs").paginate(virtualClusterId=vc, **filters)
    return [r for page in pages for r in page["jobRuns"]]


def poll(what, fn, timeout=60.0, interval=0.25):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def strip_metadata(response):
    return {k: v for k, v in response.items() if k != "ResponseMetadata"}


def run_groups(groups):
    """Runs the groups named on the command line; exits 1 on the first failure.

    Groups assume a fresh server (their list assertions count what they created), so run
    each against its own `sparkyard serve`."""
    names = sys.argv[1:]
    if not names:
        print(f"usage: {sys.argv[0]} GROUP...; groups: {', '.join(groups)}", file=sys.stderr)
        sys.exit(2)
    for name in names:
        if name not in groups:
            print(f"unknown group {name!r}; known: {', '.join(groups)}", file=sys.stderr)
            sys.exit(2)
    for name in names:
        started = time.monotonic()
        try:
            groups[name]()
        except Exception:  # noqa: BLE001 - report any failure with its traceback
            print(f"FAIL {name}", file=sys.stderr)
            traceback.print_exc()
            sys.exit(1)
        print(f"ok {name} ({time.monotonic() - started:.1f}s)")
