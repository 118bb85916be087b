"""StartJobRun in a burst through one replica, printing each acknowledged run.

Usage: replica_burst.py ENDPOINT VIRTUAL_CLUSTER_ID COUNT

Each run has its own clientToken, so a retry after the leader died mid-request is
answered with the run the token already made (or makes it once). boto3's standard retry
mode retries the 503s a follower answers while no replica leads.
Prints `ACK <token> <id>` per acknowledged run, flushed, so the caller can act mid-burst.
"""

import sys

import boto3
from botocore.config import Config

endpoint, vc, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
client = boto3.client(
    "emr-containers",
    endpoint_url=endpoint,
    config=Config(retries={"mode": "standard", "max_attempts": 40}, read_timeout=30),
)
for i in range(count):
    token = f"burst-{i}"
    run = client.start_job_run(
        virtualClusterId=vc,
        name=f"burst-{i}",
        clientToken=token,
        executionRoleArn="arn:aws:iam::123456789012:role/burst",
        releaseLabel="emr-7.2.0-latest",
        jobDriver={"sparkSubmitJobDriver": {"entryPoint": "local:///opt/spark/examples/src/main/python/pi.py"}},
    )
    assert run["virtualClusterId"] == vc, run
    print("ACK", token, run["id"], flush=True)
