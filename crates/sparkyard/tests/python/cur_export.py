"""Reads sparkyard's Cost and Usage Report export as a FinOps team's tools would: boto3 for
S3, pyarrow for the Parquet file, the csv module for the gzip CSV one.

Usage: cur_export.py BUCKET PREFIX EXPORT_NAME DAY RUN_ID...

Waits until the day's Parquet file holds line items of every RUN_ID (the export is
refreshed as runs end), then prints JSON: per run, the EMR rows' unblended cost, the pod
rows' split cost, the row count and the tag columns; and the CSV file's rows per run.
"""

import collections
import csv
import gzip
import io
import json
import os
import sys
import time

import boto3
import pyarrow.parquet as pq

bucket, prefix, name, day, *runs = sys.argv[1:]
s3 = boto3.client("s3", endpoint_url=os.environ["SPARKYARD_ENDPOINT"])
period = day[:7]
parquet_key = f"{prefix}/{name}/data/BILLING_PERIOD={period}/{name}-{day}.snappy.parquet"
csv_key = f"{prefix}/{name}-csv/data/BILLING_PERIOD={period}/{name}-csv-{day}.csv.gz"


def run_of(row):
    # EMR rows name the job run ARN; pod rows carry the run id in their line item id.
    return row["identity_line_item_id"].split("/")[0]


table = None
for _ in range(600):
    try:
        body = s3.get_object(Bucket=bucket, Key=parquet_key)["Body"].read()
    except s3.exceptions.NoSuchKey:
        time.sleep(0.5)
        continue
    table = pq.read_table(io.BytesIO(body))
    present = {run_of(r) for r in table.select(["identity_line_item_id"]).to_pylist()}
    if all(r in present for r in runs):
        break
    time.sleep(0.5)
assert table is not None, f"no {parquet_key}"

schema = {f.name: str(f.type) for f in table.schema}
assert schema["line_item_unblended_cost"] == "double", schema
assert schema["line_item_usage_start_date"].startswith("timestamp[ms"), schema
assert schema["line_item_resource_id"] == "string", schema

out = {"runs": {}, "csv_rows": {}, "columns": list(schema)}
for row in table.to_pylist():
    run = out["runs"].setdefault(
        run_of(row), {"emr_usd": 0.0, "ec2_usd": 0.0, "rows": 0, "emr_rows": 0, "tags": {}}
    )
    run["rows"] += 1
    if row["line_item_product_code"] == "ElasticMapReduce" and row["line_item_operation"] == "StartJobRun":
        run["emr_rows"] += 1
        run["emr_usd"] += row["line_item_unblended_cost"]
        run["virtual_cluster_id"] = row["line_item_resource_id"].split("/")[2]
    if row["line_item_operation"] == "EKSPod-EC2":
        run["ec2_usd"] += row["split_line_item_split_cost"]
        run["namespace"] = row["line_item_resource_id"].split("/")[2]
    for column, value in row.items():
        if column.startswith("resource_tags_user_") and value is not None:
            run["tags"][column] = value

gz = s3.get_object(Bucket=bucket, Key=csv_key)["Body"].read()
rows = list(csv.DictReader(io.StringIO(gzip.decompress(gz).decode())))
counts = collections.Counter(run_of(r) for r in rows)
out["csv_rows"] = dict(counts)
out["csv_emr_usd"] = {
    r: sum(float(x["line_item_unblended_cost"]) for x in rows if run_of(x) == r) for r in counts
}
print(json.dumps(out))
