#!/usr/bin/env python3
"""boto3 drives all 25 emr-containers operations against sparkyard.

Usage: boto3_all_ops.py GROUP...   (each group against a fresh server)

Each group is a small function that starts from a fresh server state of its own (it creates
what it needs under unique namespaces), so the Rust side can run groups in separate tests.
The `all_operations` group calls each of the 25 operations and checks that every one reached
the server and answered as specified.
"""

import datetime
import time

from emr_common import (
    ACCOUNT,
    CALLED,
    CREATED_BY,
    JOB_RUN_ID,
    JOB_RUN_STATES,
    PI,
    REGION,
    RESOURCE_ID,
    ROLE,
    all_job_runs,
    assert_recent,
    client,
    create_vc,
    expect_error,
    job_request,
    job_run_arn,
    now,
    poll,
    provider,
    run_groups,
    start_run,
    strip_metadata,
    vc_arn,
)

OPERATIONS = {
    "CreateVirtualCluster", "DescribeVirtualCluster", "ListVirtualClusters", "UpdateVirtualCluster",
    "DeleteVirtualCluster", "StartJobRun", "DescribeJobRun", "ListJobRuns", "CancelJobRun",
    "CreateJobTemplate", "DescribeJobTemplate", "ListJobTemplates", "DeleteJobTemplate",
    "CreateManagedEndpoint", "DescribeManagedEndpoint", "ListManagedEndpoints",
    "DeleteManagedEndpoint", "GetManagedEndpointSessionCredentials",
    "CreateSecurityConfiguration", "DescribeSecurityConfiguration", "ListSecurityConfigurations",
    "DeleteSecurityConfiguration", "TagResource", "UntagResource", "ListTagsForResource",
}
assert len(OPERATIONS) == 25

ENDPOINT_RELEASE = "emr-6.15.0-latest"

SECURITY_DATA = {
    "authorizationConfiguration": {
        "lakeFormationConfiguration": {
            "authorizedSessionTagValue": "EMR on EKS Engine",
            "secureNamespaceInfo": {"clusterId": "eks-emr-cluster", "namespace": "secure-ns"},
            "queryEngineRoleArn": f"arn:aws:iam::{ACCOUNT}:role/query-engine-role",
        },
        "encryptionConfiguration": {
            "inTransitEncryptionConfiguration": {
                "tlsCertificateConfiguration": {
                    "certificateProviderType": "PEM",
                    "publicCertificateSecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:pub-AbCdEf",
                    "privateCertificateSecretArn": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:priv-AbCdEf",
                }
            }
        },
    }
}


def template_data():
    return {
        "executionRoleArn": ROLE,
        "releaseLabel": "${Release}",
        "jobDriver": {
            "sparkSubmitJobDriver": {
                "entryPoint": "${EntryPoint}",
                "entryPointArguments": ["${Partitions}"],
                "sparkSubmitParameters": "--conf spark.executor.instances=${Executors} --conf spark.executor.memory=2G",
            }
        },
        "configurationOverrides": {
            "applicationConfiguration": [
                {"classification": "spark-defaults", "properties": {"spark.dynamicAllocation.enabled": "false"}}
            ],
            "monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": "s3://${LogBucket}/logs/"}},
        },
        "parameterConfiguration": {
            "Release": {"type": "STRING", "defaultValue": "emr-6.3.0-latest"},
            "EntryPoint": {"type": "STRING", "defaultValue": PI},
            "Executors": {"type": "NUMBER", "defaultValue": "2"},
            "Partitions": {"type": "NUMBER", "defaultValue": "10"},
            "LogBucket": {"type": "STRING"},
        },
        "jobTags": {"source": "template"},
    }


def template_arn(tid):
    return f"arn:aws:emr-containers:{REGION}:{ACCOUNT}:/jobtemplates/{tid}"


def security_arn(sid):
    return f"arn:aws:emr-containers:{REGION}:{ACCOUNT}:/securityconfigurations/{sid}"


def endpoint_arn(vc, eid):
    return f"{vc_arn(vc)}/endpoints/{eid}"


# ---------------------------------------------------------------------------------------------
# virtual clusters


def virtual_clusters():
    c = client()
    t0 = now() - datetime.timedelta(seconds=2)
    vc = create_vc(c, "vc-main", tags={"team": "data"})
    other = create_vc(c, "vc-other")
    t1 = now() + datetime.timedelta(seconds=2)

    d = c.describe_virtual_cluster(id=vc)["virtualCluster"]
    assert d["id"] == vc and d["name"] == "vc-main-emr-cluster", f"describe: {d}"
    assert d["arn"] == vc_arn(vc), f"describe arn {d['arn']}"
    assert d["state"] == "RUNNING", f"a new virtual cluster is RUNNING at once, got {d['state']}"
    assert d["containerProvider"] == provider("vc-main"), f"containerProvider echoed: {d['containerProvider']}"
    assert d.get("tags") == {"team": "data"}, f"tags on describe: {d.get('tags')}"
    assert_recent(d["createdAt"], "virtualCluster.createdAt")
    assert "schedulerConfiguration" not in d, f"schedulerConfiguration never set should be omitted: {d}"

    def listed(**filters):
        pages = c.get_paginator("list_virtual_clusters").paginate(**filters)
        return [v["id"] for p in pages for v in p["virtualClusters"]]

    assert set(listed()) == {vc, other}, f"list_virtual_clusters: {listed()}"
    assert set(listed(containerProviderId="eks-emr-cluster")) == {vc, other}
    assert listed(containerProviderId="some-other-eks") == [], "containerProviderId filter"
    assert set(listed(containerProviderType="EKS")) == {vc, other}, "containerProviderType filter"
    assert set(listed(states=["RUNNING"])) == {vc, other}, "states=RUNNING filter"
    assert listed(states=["TERMINATED", "ARRESTED"]) == [], "states filter with two values"
    assert set(listed(createdAfter=t0)) == {vc, other}, "createdAfter before both"
    assert listed(createdAfter=t1) == [], "createdAfter in the future"
    assert listed(createdBefore=t0) == [], "createdBefore before both"
    assert set(listed(createdBefore=t1)) == {vc, other}, "createdBefore after both"

    # Pagination over virtual clusters: 7 more, pages of 3, each seen once.
    more = [create_vc(c, f"vc-page-{i}") for i in range(7)]
    pages = list(c.get_paginator("list_virtual_clusters").paginate(PaginationConfig={"PageSize": 3}))
    ids = [v["id"] for p in pages for v in p["virtualClusters"]]
    assert all(len(p["virtualClusters"]) <= 3 for p in pages), "maxResults=3 must cap each page"
    assert sorted(ids) == sorted([vc, other] + more), f"each virtual cluster once: {ids}"
    assert len(pages) >= 3, f"9 clusters in pages of 3 need at least 3 pages, got {len(pages)}"

    # UpdateVirtualCluster replaces the scheduler configuration.
    out = c.update_virtual_cluster(id=vc, schedulerConfiguration={"maxConcurrentJobRuns": 10, "maxInQueueJobRuns": 200})
    assert out["virtualCluster"]["id"] == vc, f"update_virtual_cluster returns the cluster: {out}"
    sc = c.describe_virtual_cluster(id=vc)["virtualCluster"].get("schedulerConfiguration")
    assert sc == {"maxConcurrentJobRuns": 10, "maxInQueueJobRuns": 200}, f"after update: {sc}"
    c.update_virtual_cluster(id=vc, schedulerConfiguration={"maxConcurrentJobRuns": 5})
    sc = c.describe_virtual_cluster(id=vc)["virtualCluster"].get("schedulerConfiguration")
    assert sc == {"maxConcurrentJobRuns": 5}, f"update fully replaces the configuration: {sc}"
    expect_error("ResourceNotFoundException", c.update_virtual_cluster, id="ahg18jv46xeqp3jbe83pj39m1",
                 schedulerConfiguration={"maxConcurrentJobRuns": 5})

    # Delete: TERMINATING then TERMINATED; still describable and listable.
    assert c.delete_virtual_cluster(id=other)["id"] == other
    state = c.describe_virtual_cluster(id=other)["virtualCluster"]["state"]
    assert state in ("TERMINATING", "TERMINATED"), f"after delete: {state}"
    poll("TERMINATED", lambda: c.describe_virtual_cluster(id=other)["virtualCluster"]["state"] == "TERMINATED")
    assert listed(states=["TERMINATED"]) == [other], "--states TERMINATED"
    assert other not in listed(states=["RUNNING"]), "a terminated cluster is not RUNNING"

    expect_error("ResourceNotFoundException", c.describe_virtual_cluster, id="ahg18jv46xeqp3jbe83pj39m1")
    expect_error("ValidationException", c.describe_virtual_cluster, id="ABC_DEF")
    expect_error("ValidationException", c.create_virtual_cluster, name="x" * 65, containerProvider=provider("vc-long"))
    expect_error("ValidationException", c.create_virtual_cluster, name="bad name!", containerProvider=provider("vc-bad"))
    expect_error("ValidationException", c.create_virtual_cluster, name="Bad_NS",
                 containerProvider=provider("Not_A_Namespace"))
    expect_error("ValidationException", c.create_virtual_cluster, name="dup", containerProvider=provider("vc-main"))


# ---------------------------------------------------------------------------------------------
# job runs


def job_run_fields():
    c = client()
    vc = create_vc(c, "runs")
    req = job_request("pi-4", retryPolicyConfiguration={"maxAttempts": 3}, tags={"team": "data"})
    out = c.start_job_run(virtualClusterId=vc, clientToken="pi-4-token", **req)
    rid = out["id"]
    assert JOB_RUN_ID.match(rid), f"job run id {rid!r}"
    run = c.describe_job_run(virtualClusterId=vc, id=rid)["jobRun"]
    for key in ("name", "executionRoleArn", "releaseLabel", "jobDriver", "configurationOverrides",
                "retryPolicyConfiguration", "tags"):
        assert run.get(key) == req[key], f"jobRun.{key}: submitted {req[key]!r}, described {run.get(key)!r}"
    assert run["id"] == rid and run["virtualClusterId"] == vc and run["arn"] == job_run_arn(vc, rid)
    assert run["state"] == "PENDING", f"a new run waits in PENDING, got {run['state']}"
    assert run["clientToken"] == "pi-4-token", f"jobRun.clientToken {run.get('clientToken')!r}"
    assert CREATED_BY.match(run["createdBy"]), f"createdBy {run['createdBy']!r}"
    assert_recent(run["createdAt"], "jobRun.createdAt")
    assert "finishedAt" not in run, f"PENDING run has no finishedAt: {run}"
    listed = all_job_runs(c, vc)
    assert len(listed) == 1 and listed[0] == run, f"list_job_runs returns the full JobRun: {listed}"

    # sparkSqlJobDriver (EMR >= 6.7) is echoed too.
    sql = {"sparkSqlJobDriver": {"entryPoint": "s3://bucket/query.sql", "sparkSqlParameters": "--conf spark.sql.shuffle.partitions=4"}}
    rid2 = c.start_job_run(virtualClusterId=vc, **job_request("sql", releaseLabel="emr-6.15.0-latest", jobDriver=sql))["id"]
    assert c.describe_job_run(virtualClusterId=vc, id=rid2)["jobRun"]["jobDriver"] == sql

    e = expect_error("ResourceNotFoundException", c.describe_job_run, virtualClusterId=vc, id="0000000306pd7cjc3s5")
    assert e.response["Error"]["Message"] == "Job run 0000000306pd7cjc3s5 doesn't exist.", e.response["Error"]
    assert e.response["ResponseMetadata"].get("RequestId"), "x-amzn-RequestId should surface as RequestId"
    expect_error("ValidationException", c.describe_job_run, virtualClusterId=vc, id="ABC_DEF")

    # Server-side validation (botocore checks none of these).
    before = all_job_runs(c, vc)
    bad = [
        dict(job_request("x" * 65)),
        dict(job_request("bad name!")),
        dict(job_request("no-role", executionRoleArn="not-an-iam-role-arn-at-all")),
        dict(job_request("bad-retry", retryPolicyConfiguration={"maxAttempts": 0})),
        dict(job_request("bad-log", configurationOverrides={"monitoringConfiguration": {"s3MonitoringConfiguration": {"logUri": "http://not-s3/"}}})),
        dict(job_request("bad-ui", configurationOverrides={"monitoringConfiguration": {"persistentAppUI": "MAYBE"}})),
        dict(job_request("no-driver", jobDriver={})),
    ]
    for missing in ("releaseLabel", "executionRoleArn", "jobDriver"):
        r = job_request(f"missing-{missing}")
        del r[missing]
        bad.append(r)
    cases = [("ValidationException", vc, b) for b in bad] + [
        ("ResourceNotFoundException", vc, job_request("bad-release", releaseLabel="emr-99.0.0-latest")),
        ("ResourceNotFoundException", "ahg18jv46xeqp3jbe83pj39m1", job_request("no-vc")),
    ]
    accepted = []
    for code, target, b in cases:
        try:
            expect_error(code, c.start_job_run, virtualClusterId=target, **b)
        except AssertionError as e:
            accepted.append(f"{b['name']}: {str(e)[-200:]}")
    assert not accepted, "start_job_run should have been rejected:\n  " + "\n  ".join(accepted)
    assert all_job_runs(c, vc) == before, "rejected start_job_run calls changed the list"


def job_run_pagination():
    c = client()
    vc = create_vc(c, "paging")
    created = [start_run(c, vc, name=f"run-{i:02d}") for i in range(23)]
    assert len(set(created)) == 23, "23 distinct ids"
    assert created == sorted(created), f"job run ids are time-ordered (sort by creation): {created}"
    pages = list(c.get_paginator("list_job_runs").paginate(virtualClusterId=vc, PaginationConfig={"PageSize": 5}))
    sizes = [len(p["jobRuns"]) for p in pages]
    assert all(s <= 5 for s in sizes), f"PageSize 5 caps each page: {sizes}"
    assert len(pages) >= 5, f"23 runs in pages of 5 need at least 5 pages: {sizes}"
    tokens = [p.get("nextToken") for p in pages[:-1]]
    assert len(set(tokens)) == len(tokens), f"nextToken must never repeat: {tokens}"
    assert not pages[-1].get("nextToken"), "the last page carries no nextToken"
    ids = [r["id"] for p in pages for r in p["jobRuns"]]
    assert sorted(ids) == sorted(created) and len(ids) == 23, f"every run exactly once: {ids}"
    assert ids == list(reversed(created)), f"newest first: listed {ids}, created {created}"
    stamps = [r["createdAt"] for p in pages for r in p["jobRuns"]]
    assert stamps == sorted(stamps, reverse=True), "createdAt is non-increasing down the list"

    # PaginationConfig MaxItems + StartingToken resume where the last page stopped.
    first = c.get_paginator("list_job_runs").paginate(
        virtualClusterId=vc, PaginationConfig={"PageSize": 5, "MaxItems": 7}).build_full_result()
    assert [r["id"] for r in first["jobRuns"]] == ids[:7], "first 7 via MaxItems"
    rest = c.get_paginator("list_job_runs").paginate(
        virtualClusterId=vc, PaginationConfig={"PageSize": 5, "StartingToken": first["NextToken"]}).build_full_result()
    assert [r["id"] for r in rest["jobRuns"]] == ids[7:], "resumed from StartingToken"

    # Raw maxResults/nextToken.
    page = c.list_job_runs(virtualClusterId=vc, maxResults=10)
    assert len(page["jobRuns"]) == 10 and page.get("nextToken"), "maxResults=10 gives 10 and a token"


def job_run_filters():
    c = client()
    vc = create_vc(c, "filters")
    t0 = now() - datetime.timedelta(seconds=1)
    a = [start_run(c, vc, name="alpha") for _ in range(3)]
    time.sleep(1.5)
    t1 = now()
    time.sleep(1.5)
    b = [start_run(c, vc, name="beta") for _ in range(2)]
    t2 = now() + datetime.timedelta(seconds=1)

    def ids(**f):
        return sorted(r["id"] for r in all_job_runs(c, vc, **f))

    assert ids() == sorted(a + b)
    assert ids(name="alpha") == sorted(a), "name filter (exact)"
    assert ids(name="beta") == sorted(b), "name filter (exact)"
    assert ids(name="alph") == [], "name filter is an exact match, not a substring"
    assert ids(createdAfter=t1) == sorted(b), "createdAfter"
    assert ids(createdBefore=t1) == sorted(a), "createdBefore"
    assert ids(createdAfter=t0, createdBefore=t2) == sorted(a + b), "createdAfter+createdBefore"
    assert ids(createdAfter=t2) == [], "createdAfter in the future"
    assert ids(states=["PENDING"]) == sorted(a + b), "states=PENDING"
    c.cancel_job_run(virtualClusterId=vc, id=a[0])
    cancelled = ["CANCEL_PENDING", "CANCELLED"]
    assert ids(states=cancelled) == [a[0]], "states=CANCEL_PENDING,CANCELLED"
    assert ids(states=["PENDING"]) == sorted(a[1:] + b), "cancelled run leaves states=PENDING"
    assert ids(states=["PENDING"] + cancelled) == sorted(a + b), "three states"
    assert ids(states=["COMPLETED", "FAILED"]) == [], "states with no match"
    assert ids(name="alpha", states=["PENDING"], createdBefore=t1) == sorted(a[1:]), "filters combine"


def idempotency():
    c = client()
    vc = create_vc(c, "idem")
    req = job_request("idem")
    first = c.start_job_run(virtualClusterId=vc, clientToken="token-1", **req)
    second = c.start_job_run(virtualClusterId=vc, clientToken="token-1", **req)
    assert strip_metadata(first) == strip_metadata(second), f"same clientToken, same response: {first} vs {second}"
    assert len(all_job_runs(c, vc)) == 1, "same clientToken must create one run"
    third = c.start_job_run(virtualClusterId=vc, clientToken="token-2", **req)
    assert third["id"] != first["id"], "a new clientToken creates a new run"
    assert len(all_job_runs(c, vc)) == 2

    v1 = c.create_virtual_cluster(name="idem-vc", containerProvider=provider("idem-vc"), clientToken="vc-token")
    v2 = c.create_virtual_cluster(name="idem-vc", containerProvider=provider("idem-vc"), clientToken="vc-token")
    assert v1["id"] == v2["id"], "create_virtual_cluster with the same clientToken returns the same cluster"
    n = sum(1 for p in c.get_paginator("list_virtual_clusters").paginate() for v in p["virtualClusters"] if v["name"] == "idem-vc")
    assert n == 1, f"one cluster for one clientToken, found {n}"

    t1 = c.create_job_template(name="idem-template", clientToken="tpl-token", jobTemplateData=template_data())
    t2 = c.create_job_template(name="idem-template", clientToken="tpl-token", jobTemplateData=template_data())
    assert t1["id"] == t2["id"], "create_job_template with the same clientToken returns the same template"


# ---------------------------------------------------------------------------------------------
# job templates


def job_templates():
    c = client()
    vc = create_vc(c, "templates")
    data = template_data()
    out = c.create_job_template(name="pi-template", jobTemplateData=data, tags={"kind": "template"})
    tid = out["id"]
    assert RESOURCE_ID.match(tid), f"template id {tid!r}"
    assert out["name"] == "pi-template" and out["arn"] == template_arn(tid), f"create_job_template: {out}"
    assert_recent(out["createdAt"], "createJobTemplate.createdAt")

    t = c.describe_job_template(id=tid)["jobTemplate"]
    assert t["jobTemplateData"] == data, f"jobTemplateData echoed with placeholders intact: {t['jobTemplateData']}"
    assert t["id"] == tid and t["name"] == "pi-template" and t["arn"] == template_arn(tid)
    assert t.get("tags") == {"kind": "template"}, f"template tags: {t.get('tags')}"
    assert CREATED_BY.match(t["createdBy"]), f"template createdBy {t.get('createdBy')!r}"
    assert_recent(t["createdAt"], "jobTemplate.createdAt")
    listed = [x for p in c.get_paginator("list_job_templates").paginate() for x in p["templates"]]
    assert [x["id"] for x in listed] == [tid], f"list_job_templates: {listed}"
    assert listed[0]["jobTemplateData"] == data

    # Defaults plus a NUMBER parameter and a required STRING parameter.
    rid = c.start_job_run(virtualClusterId=vc, name="from-template", jobTemplateId=tid,
                          jobTemplateParameters={"LogBucket": "my-logs", "Executors": "4"}, tags={"run": "1"})["id"]
    run = c.describe_job_run(virtualClusterId=vc, id=rid)["jobRun"]
    assert run["name"] == "from-template"
    assert run["releaseLabel"] == "emr-6.3.0-latest", f"${{Release}} default: {run['releaseLabel']}"
    assert run["executionRoleArn"] == ROLE
    driver = run["jobDriver"]["sparkSubmitJobDriver"]
    assert driver["entryPoint"] == PI, f"${{EntryPoint}} default: {driver}"
    assert driver["entryPointArguments"] == ["10"], f"${{Partitions}} default: {driver}"
    assert driver["sparkSubmitParameters"] == "--conf spark.executor.instances=4 --conf spark.executor.memory=2G", (
        f"${{Executors}}=4 substituted: {driver}")
    overrides = run["configurationOverrides"]
    assert overrides["monitoringConfiguration"]["s3MonitoringConfiguration"]["logUri"] == "s3://my-logs/logs/", overrides
    assert overrides["applicationConfiguration"] == data["configurationOverrides"]["applicationConfiguration"]
    assert "${" not in repr(run), f"no placeholder left in the resolved run: {run}"
    assert run.get("tags") == {"source": "template", "run": "1"}, f"request tags merged over jobTags: {run.get('tags')}"

    before = all_job_runs(c, vc)
    for params, why in [
        ({"LogBucket": "b", "Executors": "four"}, "NUMBER parameter that is not a number"),
        ({"Executors": "3"}, "LogBucket has no default and is missing"),
        ({}, "LogBucket missing, no parameters at all"),
        ({"LogBucket": "b", "Bogus": "x"}, "undeclared parameter"),
    ]:
        try:
            expect_error("ValidationException", c.start_job_run, virtualClusterId=vc, name="bad-params",
                         jobTemplateId=tid, jobTemplateParameters=params)
        except AssertionError as e:
            raise AssertionError(f"{why}: {e}") from e
    assert all_job_runs(c, vc) == before, "rejected template runs changed the list"
    expect_error("ResourceNotFoundException", c.start_job_run, virtualClusterId=vc, name="x",
                 jobTemplateId="abcdefghijklmnop", jobTemplateParameters={"LogBucket": "b"})
    expect_error("ResourceNotFoundException", c.describe_job_template, id="abcdefghijklmnop")

    # A reference to an undeclared ${Param}: rejected at creation or at start.
    bad = template_data()
    bad["jobDriver"]["sparkSubmitJobDriver"]["entryPoint"] = "${Undeclared}"
    try:
        bad_id = c.create_job_template(name="undeclared-ref", jobTemplateData=bad)["id"]
    except Exception as e:  # noqa: BLE001
        assert getattr(e, "response", {}).get("Error", {}).get("Code") == "ValidationException", e
    else:
        expect_error("ValidationException", c.start_job_run, virtualClusterId=vc, name="undeclared",
                     jobTemplateId=bad_id, jobTemplateParameters={"LogBucket": "b"})
    assert all_job_runs(c, vc) == before, "rejected template runs changed the list"

    assert c.delete_job_template(id=tid)["id"] == tid
    expect_error("ResourceNotFoundException", c.describe_job_template, id=tid)
    expect_error("ResourceNotFoundException", c.start_job_run, virtualClusterId=vc, name="gone",
                 jobTemplateId=tid, jobTemplateParameters={"LogBucket": "b"})
    remaining = [x["id"] for p in c.get_paginator("list_job_templates").paginate() for x in p["templates"]]
    assert tid not in remaining, f"deleted template still listed: {remaining}"
    # The run started from it is untouched.
    assert c.describe_job_run(virtualClusterId=vc, id=rid)["jobRun"] == run


# ---------------------------------------------------------------------------------------------
# cancel and scheduler


def cancel():
    c = client()
    vc = create_vc(c, "cancel")
    rid = start_run(c, vc)
    out = c.cancel_job_run(virtualClusterId=vc, id=rid)
    assert strip_metadata(out) == {"id": rid, "virtualClusterId": vc}, f"cancel_job_run response: {out}"
    state = c.describe_job_run(virtualClusterId=vc, id=rid)["jobRun"]["state"]
    assert state in ("CANCEL_PENDING", "CANCELLED"), f"after cancel: {state}"
    try:
        run = poll("CANCELLED", lambda: (lambda r: r if r["state"] == "CANCELLED" else None)(
            c.describe_job_run(virtualClusterId=vc, id=rid)["jobRun"]), timeout=30)
    except AssertionError:
        run = c.describe_job_run(virtualClusterId=vc, id=rid)["jobRun"]
        raise AssertionError(f"a PENDING run that was cancelled should end CANCELLED, still {run['state']}")
    assert "finishedAt" in run, f"CANCELLED is terminal and carries finishedAt: {run}"
    assert_recent(run["finishedAt"], "jobRun.finishedAt")
    assert run["finishedAt"] >= run["createdAt"]
    e = expect_error("ValidationException", c.cancel_job_run, virtualClusterId=vc, id=rid)
    assert rid in e.response["Error"]["Message"], f"message should name the run: {e.response['Error']}"
    after = c.describe_job_run(virtualClusterId=vc, id=rid)["jobRun"]
    assert after == run, "a rejected cancel changes nothing"


def scheduler():
    c = client()
    vc = create_vc(c, "sched", schedulerConfiguration={"maxConcurrentJobRuns": 1, "maxInQueueJobRuns": 2})
    d = c.describe_virtual_cluster(id=vc)["virtualCluster"]
    assert d.get("schedulerConfiguration") == {"maxConcurrentJobRuns": 1, "maxInQueueJobRuns": 2}, d
    status = d.get("schedulerStatus")
    assert status is not None, f"schedulerStatus with a schedulerConfiguration: {d}"
    assert status.get("currentInQueueJobRuns", 0) == 0 and status.get("currentConcurrentJobRuns", 0) == 0, status

    r1 = start_run(c, vc, name="q1")
    start_run(c, vc, name="q2")
    status = c.describe_virtual_cluster(id=vc)["virtualCluster"]["schedulerStatus"]
    counts = (status.get("currentInQueueJobRuns", 0), status.get("currentConcurrentJobRuns", 0))
    assert counts == (2, 0), f"two PENDING runs queued, none running: {status}"
    before = all_job_runs(c, vc)
    e = expect_error("ValidationException", c.start_job_run, virtualClusterId=vc, **job_request("q3"))
    assert all_job_runs(c, vc) == before, "rejected (queue full) start changed the list"
    print("queue full message:", e.response["Error"]["Message"])

    c.cancel_job_run(virtualClusterId=vc, id=r1)
    poll("queue count to drop after cancel",
         lambda: c.describe_virtual_cluster(id=vc)["virtualCluster"]["schedulerStatus"].get("currentInQueueJobRuns") == 1,
         timeout=30)
    start_run(c, vc, name="q3")
    expect_error("ValidationException", c.start_job_run, virtualClusterId=vc, **job_request("q4"))

    c.update_virtual_cluster(id=vc, schedulerConfiguration={"maxConcurrentJobRuns": 1, "maxInQueueJobRuns": 5})
    start_run(c, vc, name="q4")
    status = c.describe_virtual_cluster(id=vc)["virtualCluster"]["schedulerStatus"]
    assert status["currentInQueueJobRuns"] == 3, f"three queued after raising the limit: {status}"

    # botocore rejects values below the model's min itself; max is the server's job (1..10000).
    for bad in ({"maxInQueueJobRuns": 20000}, {"maxConcurrentJobRuns": 10001}):
        expect_error("ValidationException", c.update_virtual_cluster, id=vc, schedulerConfiguration=bad)


# ---------------------------------------------------------------------------------------------
# managed endpoints


def managed_endpoints():
    c = client()
    vc = create_vc(c, "endpoints")
    overrides = {"applicationConfiguration": [{"classification": "jeg-config",
                                               "properties": {"KernelManager.cull_idle_timeout": "3600"}}]}
    out = c.create_managed_endpoint(name="studio", virtualClusterId=vc, type="JUPYTER_ENTERPRISE_GATEWAY",
                                    releaseLabel=ENDPOINT_RELEASE, executionRoleArn=ROLE,
                                    configurationOverrides=overrides, tags={"studio": "yes"})
    eid = out["id"]
    assert RESOURCE_ID.match(eid), f"endpoint id {eid!r}"
    assert out["name"] == "studio" and out["virtualClusterId"] == vc and out["arn"] == endpoint_arn(vc, eid), out

    seen = set()

    def settled():
        ep = c.describe_managed_endpoint(virtualClusterId=vc, id=eid)["endpoint"]
        seen.add(ep["state"])
        assert ep["state"] != "ACTIVE", "sparkyard cannot run endpoints: it must never report ACTIVE"
        return ep if ep["state"] == "TERMINATED_WITH_ERRORS" else None

    ep = poll("endpoint to end TERMINATED_WITH_ERRORS", settled, timeout=60)
    assert seen <= {"CREATING", "TERMINATED_WITH_ERRORS"}, f"endpoint states seen: {seen}"
    assert ep["id"] == eid and ep["arn"] == endpoint_arn(vc, eid) and ep["virtualClusterId"] == vc
    assert ep["type"] == "JUPYTER_ENTERPRISE_GATEWAY" and ep["releaseLabel"] == ENDPOINT_RELEASE
    assert ep["executionRoleArn"] == ROLE
    assert ep.get("configurationOverrides") == overrides, f"configurationOverrides echoed: {ep.get('configurationOverrides')}"
    assert ep.get("failureReason") in ("INTERNAL_ERROR", "USER_ERROR", "VALIDATION_ERROR", "CLUSTER_UNAVAILABLE"), ep
    assert ep.get("stateDetails"), f"a failed endpoint explains itself in stateDetails: {ep}"
    assert ep.get("tags") == {"studio": "yes"}
    assert_recent(ep["createdAt"], "endpoint.createdAt")

    def listed(**f):
        return [e["id"] for p in c.get_paginator("list_managed_endpoints").paginate(virtualClusterId=vc, **f)
                for e in p["endpoints"]]

    assert listed() == [eid]
    assert listed(types=["JUPYTER_ENTERPRISE_GATEWAY"]) == [eid]
    assert listed(states=["TERMINATED_WITH_ERRORS"]) == [eid]
    assert listed(states=["ACTIVE"]) == []

    expect_error("ValidationException", c.get_managed_endpoint_session_credentials, endpointIdentifier=eid,
                 virtualClusterIdentifier=vc, executionRoleArn=ROLE, credentialType="TOKEN", durationInSeconds=900)
    expect_error("ResourceNotFoundException", c.describe_managed_endpoint, virtualClusterId=vc, id="abcdefghijklm")
    expect_error("ResourceNotFoundException", c.create_managed_endpoint, name="x", virtualClusterId=vc,
                 type="JUPYTER_ENTERPRISE_GATEWAY", releaseLabel="emr-99.0.0-latest", executionRoleArn=ROLE)

    out = c.delete_managed_endpoint(virtualClusterId=vc, id=eid)
    assert strip_metadata(out) == {"id": eid, "virtualClusterId": vc}, f"delete_managed_endpoint: {out}"
    state = c.describe_managed_endpoint(virtualClusterId=vc, id=eid)["endpoint"]["state"]
    assert state in ("TERMINATING", "TERMINATED", "TERMINATED_WITH_ERRORS"), f"after delete: {state}"


# ---------------------------------------------------------------------------------------------
# security configurations


def security_configurations():
    c = client()
    t0 = now() - datetime.timedelta(seconds=2)
    out = c.create_security_configuration(name="lf-config", securityConfigurationData=SECURITY_DATA,
                                          tags={"sec": "1"})
    sid = out["id"]
    assert RESOURCE_ID.match(sid), f"security configuration id {sid!r}"
    assert out["name"] == "lf-config" and out["arn"] == security_arn(sid), out
    d = c.describe_security_configuration(id=sid)["securityConfiguration"]
    assert d["id"] == sid and d["name"] == "lf-config" and d["arn"] == security_arn(sid)
    assert d["securityConfigurationData"] == SECURITY_DATA, f"securityConfigurationData echoed: {d}"
    assert d.get("tags") == {"sec": "1"}
    assert CREATED_BY.match(d["createdBy"]), d
    assert_recent(d["createdAt"], "securityConfiguration.createdAt")

    def listed(**f):
        return [x["id"] for p in c.get_paginator("list_security_configurations").paginate(**f)
                for x in p["securityConfigurations"]]

    assert listed() == [sid]
    assert listed(createdAfter=t0) == [sid]
    assert listed(createdBefore=t0) == []

    # A virtual cluster can refer to one (a second configuration, so the first can be deleted
    # below whatever the server decides about deleting one that is in use).
    used = c.create_security_configuration(name="lf-used", securityConfigurationData=SECURITY_DATA)["id"]
    vc = create_vc(c, "secure-ns", securityConfigurationId=used)
    assert c.describe_virtual_cluster(id=vc)["virtualCluster"].get("securityConfigurationId") == used
    expect_error("ResourceNotFoundException", c.create_virtual_cluster, name="no-such-sec",
                 containerProvider=provider("no-such-sec"), securityConfigurationId="abcdefghijklmnop")

    expect_error("ResourceNotFoundException", c.describe_security_configuration, id="abcdefghijklmnop")
    expect_error("ValidationException", c.create_security_configuration, name="bad name!",
                 securityConfigurationData=SECURITY_DATA)
    assert c.delete_security_configuration(id=sid)["id"] == sid
    expect_error("ResourceNotFoundException", c.describe_security_configuration, id=sid)
    assert listed() == [used], "deleted security configuration still listed"


# ---------------------------------------------------------------------------------------------
# tags


def tags():
    c = client()
    vc = create_vc(c, "tags", tags={"created": "with-vc"})
    rid = c.start_job_run(virtualClusterId=vc, **job_request("tagged", tags={"created": "with-run"}))["id"]
    tid = c.create_job_template(name="tagged", jobTemplateData=template_data(), tags={"created": "with-template"})["id"]
    sid = c.create_security_configuration(name="tagged", securityConfigurationData=SECURITY_DATA,
                                          tags={"created": "with-sec"})["id"]
    resources = {
        vc_arn(vc): "with-vc",
        job_run_arn(vc, rid): "with-run",
        template_arn(tid): "with-template",
        security_arn(sid): "with-sec",
    }
    for arn, initial in resources.items():
        got = c.list_tags_for_resource(resourceArn=arn)["tags"]
        assert got == {"created": initial}, f"{arn}: create-time tags {got}"
        assert strip_metadata(c.tag_resource(resourceArn=arn, tags={"team": "data", "cost-center": "42", "empty": ""})) == {}
        got = c.list_tags_for_resource(resourceArn=arn)["tags"]
        assert got == {"created": initial, "team": "data", "cost-center": "42", "empty": ""}, f"{arn}: after tag {got}"
        c.tag_resource(resourceArn=arn, tags={"team": "ml"})
        assert c.list_tags_for_resource(resourceArn=arn)["tags"]["team"] == "ml", f"{arn}: tag overwrites"
        assert strip_metadata(c.untag_resource(resourceArn=arn, tagKeys=["team", "empty", "not-there"])) == {}
        got = c.list_tags_for_resource(resourceArn=arn)["tags"]
        assert got == {"created": initial, "cost-center": "42"}, f"{arn}: after untag {got}"

    # Tags read back through the resource's own Describe.
    assert c.describe_virtual_cluster(id=vc)["virtualCluster"]["tags"] == {"created": "with-vc", "cost-center": "42"}
    assert c.describe_job_run(virtualClusterId=vc, id=rid)["jobRun"]["tags"] == {"created": "with-run", "cost-center": "42"}

    missing = vc_arn("ahg18jv46xeqp3jbe83pj39m1")
    expect_error("ResourceNotFoundException", c.list_tags_for_resource, resourceArn=missing)
    expect_error("ResourceNotFoundException", c.tag_resource, resourceArn=missing, tags={"a": "b"})
    too_many = {f"k{i}": "v" for i in range(51)}
    expect_error("ValidationException", c.tag_resource, resourceArn=vc_arn(vc), tags=too_many)
    assert c.list_tags_for_resource(resourceArn=vc_arn(vc))["tags"] == {"created": "with-vc", "cost-center": "42"}, \
        "a rejected tag_resource changed the tags"


# ---------------------------------------------------------------------------------------------
# every operation once


def all_operations():
    """Calls each of the 25 operations and checks every one was answered by the server."""
    c = client()
    CALLED.clear()
    sid = c.create_security_configuration(name="all-ops", securityConfigurationData=SECURITY_DATA)["id"]
    c.describe_security_configuration(id=sid)
    c.list_security_configurations()
    vc = create_vc(c, "all-ops", securityConfigurationId=sid)
    c.describe_virtual_cluster(id=vc)
    c.list_virtual_clusters()
    c.update_virtual_cluster(id=vc, schedulerConfiguration={"maxConcurrentJobRuns": 10, "maxInQueueJobRuns": 100})
    rid = start_run(c, vc)
    c.describe_job_run(virtualClusterId=vc, id=rid)
    c.list_job_runs(virtualClusterId=vc)
    c.cancel_job_run(virtualClusterId=vc, id=rid)
    tid = c.create_job_template(name="all-ops", jobTemplateData=template_data())["id"]
    c.describe_job_template(id=tid)
    c.list_job_templates()
    eid = c.create_managed_endpoint(name="all-ops", virtualClusterId=vc, type="JUPYTER_ENTERPRISE_GATEWAY",
                                    releaseLabel=ENDPOINT_RELEASE, executionRoleArn=ROLE)["id"]
    c.describe_managed_endpoint(virtualClusterId=vc, id=eid)
    c.list_managed_endpoints(virtualClusterId=vc)
    expect_error("ValidationException", c.get_managed_endpoint_session_credentials, endpointIdentifier=eid,
                 virtualClusterIdentifier=vc, executionRoleArn=ROLE, credentialType="TOKEN")
    c.delete_managed_endpoint(virtualClusterId=vc, id=eid)
    c.tag_resource(resourceArn=vc_arn(vc), tags={"a": "b"})
    c.list_tags_for_resource(resourceArn=vc_arn(vc))
    c.untag_resource(resourceArn=vc_arn(vc), tagKeys=["a"])
    c.delete_job_template(id=tid)
    c.delete_virtual_cluster(id=vc)
    c.delete_security_configuration(id=sid)

    missing = OPERATIONS - set(CALLED)
    assert not missing, f"operations never called: {sorted(missing)}"
    for op, statuses in sorted(CALLED.items()):
        expected = 400 if op == "GetManagedEndpointSessionCredentials" else 200
        assert statuses == [expected], f"{op}: HTTP {statuses}, expected {expected}"
    print(f"all {len(OPERATIONS)} operations answered")


GROUPS = {
    "all_operations": all_operations,
    "virtual_clusters": virtual_clusters,
    "job_run_fields": job_run_fields,
    "job_run_pagination": job_run_pagination,
    "job_run_filters": job_run_filters,
    "idempotency": idempotency,
    "job_templates": job_templates,
    "cancel": cancel,
    "scheduler": scheduler,
    "managed_endpoints": managed_endpoints,
    "security_configurations": security_configurations,
    "tags": tags,
}

if __name__ == "__main__":
    run_groups(GROUPS)
