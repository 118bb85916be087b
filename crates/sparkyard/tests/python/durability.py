#!/usr/bin/env python3
"""Durability: acknowledged writes survive `kill -9`.

    durability.py write  SNAPSHOT.json   # many acknowledged writes, then a snapshot of every record
    durability.py verify SNAPSHOT.json   # after kill -9 + restart: every record, field for field

`write` ends with a burst of job runs whose acknowledgements are the last thing it sees; the
Rust test kills the server the moment this script exits, so nothing gets a quiet moment to flush.
"""

import datetime
import json
import sys

from emr_common import (
    PI,
    ROLE,
    client,
    create_vc,
    expect_error,
    job_request,
    job_run_arn,
    start_run,
    vc_arn,
)

SECURITY_DATA = {
    "authorizationConfiguration": {
        "lakeFormationConfiguration": {
            "authorizedSessionTagValue": "EMR on EKS Engine",
            "secureNamespaceInfo": {"clusterId": "eks-emr-cluster", "namespace": "secure-ns"},
            "queryEngineRoleArn": "arn:aws:iam::123456789012:role/query-engine-role",
        }
    }
}

TEMPLATE_DATA = {
    "executionRoleArn": ROLE,
    "releaseLabel": "emr-6.3.0-latest",
    "jobDriver": {"sparkSubmitJobDriver": {"entryPoint": "${EntryPoint}",
                                           "sparkSubmitParameters": "--conf spark.executor.instances=${Executors}"}},
    "configurationOverrides": {"monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": "s3://${Bucket}/"}}},
    "parameterConfiguration": {
        "EntryPoint": {"type": "STRING", "defaultValue": PI},
        "Executors": {"type": "NUMBER", "defaultValue": "2"},
        "Bucket": {"type": "STRING"},
    },
    "jobTags": {"from": "template"},
}

# State changes that may legitimately happen between the snapshot and the check (a delete or
# cancel finishing, a run advancing). Anything else must be identical.
FORWARD = {
    "virtualCluster": {("TERMINATING", "TERMINATED")},
    "endpoint": {("CREATING", "TERMINATED_WITH_ERRORS"), ("CREATING", "ACTIVE"), ("TERMINATING", "TERMINATED"),
                 ("CREATING", "TERMINATED")},
    "jobRun": {("CANCEL_PENDING", "CANCELLED"), ("PENDING", "SUBMITTED"), ("PENDING", "RUNNING"),
               ("SUBMITTED", "RUNNING"), ("PENDING", "COMPLETED"), ("SUBMITTED", "COMPLETED"),
               ("RUNNING", "COMPLETED"), ("PENDING", "FAILED"), ("SUBMITTED", "FAILED"), ("RUNNING", "FAILED")},
}
VOLATILE = {"state", "stateDetails", "finishedAt", "failureReason", "schedulerStatus", "retryPolicyExecution"}


def jsonable(value):
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


def read_all(c, ids):
    """Every record the write phase made, as the API shows it now."""
    snap = {"virtualClusters": {}, "jobRuns": {}, "templates": {}, "securityConfigurations": {},
            "endpoints": {}, "tags": {}, "lists": {}}
    for vc in ids["vcs"]:
        snap["virtualClusters"][vc] = jsonable(c.describe_virtual_cluster(id=vc)["virtualCluster"])
        runs = [r for p in c.get_paginator("list_job_runs").paginate(virtualClusterId=vc) for r in p["jobRuns"]]
        snap["lists"][f"jobRuns/{vc}"] = [r["id"] for r in runs]
        eps = [e for p in c.get_paginator("list_managed_endpoints").paginate(virtualClusterId=vc) for e in p["endpoints"]]
        snap["lists"][f"endpoints/{vc}"] = sorted(e["id"] for e in eps)
    for vc, rid in ids["runs"]:
        snap["jobRuns"][rid] = jsonable(c.describe_job_run(virtualClusterId=vc, id=rid)["jobRun"])
    for tid in ids["templates"]:
        snap["templates"][tid] = jsonable(c.describe_job_template(id=tid)["jobTemplate"])
    for sid in ids["securityConfigurations"]:
        snap["securityConfigurations"][sid] = jsonable(
            c.describe_security_configuration(id=sid)["securityConfiguration"])
    for vc, eid in ids["endpoints"]:
        snap["endpoints"][eid] = jsonable(c.describe_managed_endpoint(virtualClusterId=vc, id=eid)["endpoint"])
    for arn in ids["arns"]:
        snap["tags"][arn] = c.list_tags_for_resource(resourceArn=arn)["tags"]
    snap["lists"]["virtualClusters"] = sorted(
        v["id"] for p in c.get_paginator("list_virtual_clusters").paginate() for v in p["virtualClusters"])
    snap["lists"]["templates"] = sorted(
        t["id"] for p in c.get_paginator("list_job_templates").paginate() for t in p["templates"])
    snap["lists"]["securityConfigurations"] = sorted(
        s["id"] for p in c.get_paginator("list_security_configurations").paginate() for s in p["securityConfigurations"])
    return snap


def write(path):
    c = client()
    ids = {"vcs": [], "runs": [], "templates": [], "securityConfigurations": [], "endpoints": [], "arns": []}
    sid = c.create_security_configuration(name="durable-sec", securityConfigurationData=SECURITY_DATA,
                                          tags={"sec": "yes"})["id"]
    ids["securityConfigurations"].append(sid)
    gone_sid = c.create_security_configuration(name="gone-sec", securityConfigurationData=SECURITY_DATA)["id"]
    c.delete_security_configuration(id=gone_sid)

    main = create_vc(c, "durable-main", tags={"team": "data"},
                     schedulerConfiguration={"maxConcurrentJobRuns": 50, "maxInQueueJobRuns": 500})
    secure = create_vc(c, "durable-secure", securityConfigurationId=sid)
    deleted = create_vc(c, "durable-deleted")
    ids["vcs"] += [main, secure, deleted]
    c.update_virtual_cluster(id=main, schedulerConfiguration={"maxConcurrentJobRuns": 40, "maxInQueueJobRuns": 400})

    tid = c.create_job_template(name="durable-template", jobTemplateData=TEMPLATE_DATA, tags={"tpl": "1"})["id"]
    ids["templates"].append(tid)
    gone_tid = c.create_job_template(name="gone-template", jobTemplateData=TEMPLATE_DATA)["id"]
    c.delete_job_template(id=gone_tid)

    for i in range(10):
        rid = start_run(c, main, name=f"durable-{i}", tags={"i": str(i)},
                        retryPolicyConfiguration={"maxAttempts": 2})
        ids["runs"].append((main, rid))
    rid = c.start_job_run(virtualClusterId=main, name="tokened", clientToken="durable-token",
                          **{k: v for k, v in job_request().items() if k != "name"})["id"]
    ids["runs"].append((main, rid))
    rid = c.start_job_run(virtualClusterId=secure, name="templated", jobTemplateId=tid,
                          jobTemplateParameters={"Bucket": "durable-logs", "Executors": "3"})["id"]
    ids["runs"].append((secure, rid))
    cancelled = start_run(c, secure, name="to-cancel")
    ids["runs"].append((secure, cancelled))
    c.cancel_job_run(virtualClusterId=secure, id=cancelled)
    on_deleted = start_run(c, deleted, name="before-delete")
    ids["runs"].append((deleted, on_deleted))
    c.delete_virtual_cluster(id=deleted)

    eid = c.create_managed_endpoint(name="durable-ep", virtualClusterId=main, type="JUPYTER_ENTERPRISE_GATEWAY",
                                    releaseLabel="emr-6.15.0-latest", executionRoleArn=ROLE,
                                    tags={"ep": "1"})["id"]
    ids["endpoints"].append((main, eid))

    first_run = ids["runs"][0][1]
    ids["arns"] = [vc_arn(main), vc_arn(secure), job_run_arn(main, first_run),
                   f"arn:aws:emr-containers:us-east-1:123456789012:/jobtemplates/{tid}",
                   f"arn:aws:emr-containers:us-east-1:123456789012:/securityconfigurations/{sid}"]
    for arn in ids["arns"]:
        c.tag_resource(resourceArn=arn, tags={"durable": "true", "drop-me": "x"})
        c.untag_resource(resourceArn=arn, tagKeys=["drop-me"])

    snapshot = read_all(c, ids)

    # The burst: acknowledged writes right before the kill. Only the acknowledgements are known.
    burst = []
    for i in range(30):
        req = job_request(f"burst-{i}", tags={"burst": str(i)})
        out = c.start_job_run(virtualClusterId=main, **req)
        burst.append({"id": out["id"], "request": req})
    c.tag_resource(resourceArn=vc_arn(secure), tags={"last-write": "acknowledged"})

    with open(path, "w") as f:
        json.dump({"ids": ids, "snapshot": snapshot, "burst": burst, "gone": {"template": gone_tid,
                   "securityConfiguration": gone_sid}, "main": main, "secure": secure}, f, indent=1)
    print(f"wrote {len(ids['runs']) + len(burst)} job runs, {len(ids['vcs'])} virtual clusters")


def compare(kind, before, after, where):
    if before.get("state") == after.get("state"):
        assert before == after, f"{where} changed across kill -9:\nbefore {before}\nafter  {after}"
        return
    step = (before.get("state"), after.get("state"))
    assert step in FORWARD[kind], f"{where}: state went {step[0]} -> {step[1]} across kill -9"
    b = {k: v for k, v in before.items() if k not in VOLATILE}
    a = {k: v for k, v in after.items() if k not in VOLATILE}
    assert b == a, f"{where} changed across kill -9 (beyond its state):\nbefore {b}\nafter  {a}"


def verify(path):
    c = client()
    with open(path) as f:
        saved = json.load(f)
    ids = saved["ids"]
    ids["runs"] = [tuple(r) for r in ids["runs"]]
    ids["endpoints"] = [tuple(e) for e in ids["endpoints"]]
    main, secure = saved["main"], saved["secure"]

    # Lists first: the burst runs are listed in addition to what the snapshot saw.
    snap = saved["snapshot"]
    now = read_all(c, ids)
    burst_ids = [b["id"] for b in saved["burst"]]
    expected_main = list(reversed(burst_ids)) + snap["lists"][f"jobRuns/{main}"]
    assert now["lists"][f"jobRuns/{main}"] == expected_main, (
        f"job runs of {main} after restart:\n{now['lists'][f'jobRuns/{main}']}\nexpected\n{expected_main}")
    for key, value in snap["lists"].items():
        if key != f"jobRuns/{main}":
            assert now["lists"][key] == value, f"list {key}: before {value}, after {now['lists'][key]}"

    # The last tag write landed on `secure` after the snapshot.
    snap["virtualClusters"][secure]["tags"] = {**snap["virtualClusters"][secure].get("tags", {}),
                                               "last-write": "acknowledged"}
    # The burst queued more PENDING runs on main after the snapshot.
    status = snap["virtualClusters"][main].get("schedulerStatus")
    if status is not None:
        status["currentInQueueJobRuns"] = status.get("currentInQueueJobRuns", 0) + len(burst_ids)

    for kind, section in [("virtualCluster", "virtualClusters"), ("jobRun", "jobRuns"), ("template", "templates"),
                          ("securityConfiguration", "securityConfigurations"), ("endpoint", "endpoints")]:
        for rid, before in snap[section].items():
            compare(kind, before, now[section][rid], f"{kind} {rid}")
    expected_tags = dict(snap["tags"])
    expected_tags[vc_arn(secure)] = {**expected_tags[vc_arn(secure)], "last-write": "acknowledged"}
    for arn, tags in expected_tags.items():
        assert now["tags"][arn] == tags, f"tags of {arn}: expected {tags}, got {now['tags'][arn]}"

    for b in saved["burst"]:
        run = c.describe_job_run(virtualClusterId=main, id=b["id"])["jobRun"]
        for key, value in b["request"].items():
            assert run.get(key) == value, f"burst run {b['id']}.{key}: sent {value!r}, after restart {run.get(key)!r}"

    # Deleted things stay deleted.
    expect_error("ResourceNotFoundException", c.describe_job_template, id=saved["gone"]["template"])
    expect_error("ResourceNotFoundException", c.describe_security_configuration,
                 id=saved["gone"]["securityConfiguration"])

    # Idempotency tokens and id ordering survive the restart.
    token_run = next(r for r in snap["jobRuns"].values() if r["name"] == "tokened")
    again = c.start_job_run(virtualClusterId=main, name="tokened", clientToken="durable-token",
                            **{k: v for k, v in job_request().items() if k != "name"})
    assert again["id"] == token_run["id"], f"clientToken after restart gave {again['id']}, first {token_run['id']}"
    newest = start_run(c, main, name="after-restart")
    every = [r for _, r in ids["runs"]] + burst_ids
    assert newest not in every, "a new id after restart collides with an old one"
    assert newest > max(every), f"job run ids keep growing after restart: {newest} <= {max(every)}"
    print(f"verified {len(snap['jobRuns']) + len(burst_ids)} job runs, {len(snap['virtualClusters'])} virtual clusters")


if __name__ == "__main__":
    mode, path = sys.argv[1], sys.argv[2]
    {"write": write, "verify": verify}[mode](path)
