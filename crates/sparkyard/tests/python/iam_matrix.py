"""Every AWS principal is held to its IAM policies on every service sparkyard serves, and
presigned S3 URLs expire (issue 16, security). Run by tests/security_matrix.rs with the
sparkyard profile (the account's root, the administrator):

    iam_matrix.py matrix presigned

`matrix`: three roles, assumed with STS AssumeRole —
  matrix-one   allows exactly one operation per service (plus two explicit Deny carve-outs),
  matrix-none  has no policy at all,
  matrix-deny  allows `*` on `*` and denies `*` on `*`;
for each service the one allowed operation succeeds for matrix-one and fails for the other
two, and several other operations fail for matrix-one, each in the service's own
AccessDenied shape (code, HTTP status, AWS's message naming the principal, action and
resource, and whether a Deny matched). Every refused write is read back as the
administrator to show it changed nothing.

`presigned`: a presigned GET and PUT work within their lifetime; a tampered one (key,
signature, expiry) is SignatureDoesNotMatch; one whose lifetime is over is AccessDenied
"Request has expired" (signed with the client's clock two minutes back, not by waiting);
a URL presigned by a role session is held to the role's policy.

Prints `cells <n>` per group (each refused or allowed call checked is one cell), then `ok`.
"""

import contextlib
import datetime
import http.client
import json
import os
import sys
import urllib.parse

import boto3
import botocore.auth
import botocore.config
from botocore.exceptions import ClientError

ACCOUNT = "123456789012"
REGION = "us-east-1"
CLUSTER = "eks-emr-cluster"
NO_RETRIES = botocore.config.Config(retries={"max_attempts": 1})

admin = boto3.Session(profile_name="sparkyard")


def clients(session):
    names = ["s3", "logs", "emr-containers", "iam", "sts", "cloudwatch", "eks", "ec2"]
    return {n: session.client(n, config=NO_RETRIES) for n in names}


A = clients(admin)
cells = 0


def role_arn(name):
    return f"arn:aws:iam::{ACCOUNT}:role/{name}"


def session_arn(role, session):
    return f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{session}"


def allowed(fn, **kwargs):
    """One cell: the call succeeds."""
    global cells
    try:
        result = fn(**kwargs)
    except ClientError as e:
        raise AssertionError(f"{fn.__name__}({kwargs}) was refused: {e.response['Error']}") from e
    cells += 1
    return result


def refused(fn, code, status, message, **kwargs):
    """One cell: the call fails with exactly this code, HTTP status and message."""
    global cells
    try:
        result = fn(**kwargs)
    except ClientError as e:
        error = e.response["Error"]
        got = (error.get("Code"), e.response["ResponseMetadata"]["HTTPStatusCode"], error.get("Message"))
        assert got == (code, status, message), f"{fn.__name__}({kwargs}):\n got  {got}\n want {(code, status, message)}"
        cells += 1
        return
    raise AssertionError(f"{fn.__name__}({kwargs}) succeeded for a principal that may not: {result}")


def denial(principal, action, resource, explicit=False):
    """AWS's message for a refusal by identity-based policy."""
    why = ("with an explicit deny in an identity-based policy" if explicit
           else f"because no identity-based policy allows the {action} action")
    return f"User: {principal} is not authorized to perform: {action} on resource: {resource} {why}"


# The shape each service refuses in: (code, HTTP status). JSON services say
# AccessDeniedException; S3, IAM and STS answer AccessDenied in XML; CloudWatch Logs uses
# 400 for all its errors; EC2 has its own UnauthorizedOperation.
SHAPE = {
    "s3": ("AccessDenied", 403),
    "logs": ("AccessDeniedException", 400),
    "emr-containers": ("AccessDeniedException", 403),
    "iam": ("AccessDenied", 403),
    "sts": ("AccessDenied", 403),
    "cloudwatch": ("AccessDenied", 403),
    "eks": ("AccessDeniedException", 403),
    "ec2": ("UnauthorizedOperation", 403),
}


def deny(c, service, principal, fn, action, resource, explicit=False, **kwargs):
    code, status = SHAPE[service]
    refused(getattr(c[service], fn), code, status, denial(principal, action, resource, explicit), **kwargs)


def log_events(group, stream):
    return [e["message"] for e in A["logs"].get_log_events(logGroupName=group, logStreamName=stream,
                                                            startFromHead=True)["events"]]


def now_ms():
    return int(datetime.datetime.now(datetime.timezone.utc).timestamp() * 1000)


def matrix():
    s3, logs, emr, iam, cw, eks = A["s3"], A["logs"], A["emr-containers"], A["iam"], A["cloudwatch"], A["eks"]
    # CloudWatch's error code is the query protocol's whatever the wire protocol: botocore
    # reads it from x-amzn-query-error (the service is awsQueryCompatible).
    print(f"cloudwatch protocol {cw.meta.service_model.protocol}")

    # ---- What the roles will try to read or change, made by the administrator.
    for bucket in ["matrix-a", "matrix-b"]:
        s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket="matrix-a", Key="data.txt", Body=b"data")
    s3.put_object(Bucket="matrix-a", Key="private/secret.txt", Body=b"secret")
    s3.put_object(Bucket="matrix-b", Key="other.txt", Body=b"other")
    for group, streams in [("/matrix/allowed", ["s1", "locked"]), ("/matrix/other", ["s1"])]:
        logs.create_log_group(logGroupName=group)
        for stream in streams:
            logs.create_log_stream(logGroupName=group, logStreamName=stream)
    logs.put_retention_policy(logGroupName="/matrix/other", retentionInDays=7)

    def vc(namespace):
        return emr.create_virtual_cluster(name=f"{namespace}-vc", containerProvider={
            "id": CLUSTER, "type": "EKS", "info": {"eksInfo": {"namespace": namespace}}})["id"]

    vc_a, vc_b = vc("matrix-a"), vc("matrix-b")
    vc_a_arn = f"arn:aws:emr-containers:{REGION}:{ACCOUNT}:/virtualclusters/{vc_a}"
    vc_b_arn = f"arn:aws:emr-containers:{REGION}:{ACCOUNT}:/virtualclusters/{vc_b}"
    vcs_before = emr.list_virtual_clusters()["virtualClusters"]
    cw.put_metric_alarm(AlarmName="matrix-alarm", MetricName="M", Namespace="Matrix", Statistic="Sum",
                        Period=60, EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanThreshold")
    alarm_before = cw.describe_alarms(AlarmNames=["matrix-alarm"])["MetricAlarms"][0]
    entries_before = eks.list_access_entries(clusterName=CLUSTER)["accessEntries"]

    group_arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:"
    cluster_arn = f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{CLUSTER}"
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}]})
    one_policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::matrix-a/*"},
        {"Effect": "Deny", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::matrix-a/private/*"},
        {"Effect": "Allow", "Action": "logs:PutLogEvents",
         "Resource": f"{group_arn}/matrix/allowed:log-stream:*"},
        {"Effect": "Deny", "Action": "logs:PutLogEvents",
         "Resource": f"{group_arn}/matrix/allowed:log-stream:locked"},
        {"Effect": "Allow", "Action": "emr-containers:DescribeVirtualCluster", "Resource": vc_a_arn},
        {"Effect": "Allow", "Action": "iam:GetRole", "Resource": role_arn("matrix-one")},
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role_arn("matrix-target")},
        {"Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*"},
        {"Effect": "Allow", "Action": "eks:DescribeCluster", "Resource": cluster_arn},
        {"Effect": "Allow", "Action": "ec2:DescribeInstances", "Resource": "*"},
    ]}
    deny_policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "*", "Resource": "*"},
    ]}
    for name in ["matrix-one", "matrix-none", "matrix-deny", "matrix-target"]:
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)
    iam.put_role_policy(RoleName="matrix-one", PolicyName="one-per-service", PolicyDocument=json.dumps(one_policy))
    iam.put_role_policy(RoleName="matrix-deny", PolicyName="deny-beats-allow", PolicyDocument=json.dumps(deny_policy))

    def assume(c, name):
        creds = allowed(c["sts"].assume_role, RoleArn=role_arn(name), RoleSessionName="matrix")["Credentials"]
        return clients(boto3.Session(profile_name="sparkyard", aws_access_key_id=creds["AccessKeyId"],
                                     aws_secret_access_key=creds["SecretAccessKey"],
                                     aws_session_token=creds["SessionToken"]))

    one, none, denied_all = assume(A, "matrix-one"), assume(A, "matrix-none"), assume(A, "matrix-deny")
    ONE, NONE, DENY = (session_arn(r, "matrix") for r in ["matrix-one", "matrix-none", "matrix-deny"])

    # ---- STS: GetCallerIdentity needs no permission (AWS answers it even under a Deny *).
    for c, arn in [(one, ONE), (none, NONE), (denied_all, DENY)]:
        assert allowed(c["sts"].get_caller_identity)["Arn"] == arn
    # AssumeRole needs sts:AssumeRole on the role in the caller's policy, besides the trust
    # policy (which admits the whole account here). STS's message names no reason.
    target = allowed(one["sts"].assume_role, RoleArn=role_arn("matrix-target"), RoleSessionName="chain")
    assert target["AssumedRoleUser"]["Arn"] == session_arn("matrix-target", "chain"), target
    for c, arn, other in [(one, ONE, "matrix-none"), (none, NONE, "matrix-target"), (denied_all, DENY, "matrix-target")]:
        refused(c["sts"].assume_role, "AccessDenied", 403,
                f"User: {arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn(other)}",
                RoleArn=role_arn(other), RoleSessionName="escalate")

    # ---- The one allowed operation per service: allowed for matrix-one, refused for the
    # role with no policy (implicitly) and for the one whose Deny * beats its Allow *.
    metric = {"Namespace": "Matrix", "MetricData": [{"MetricName": "M", "Value": 1.0}]}
    log_event = {"logGroupName": "/matrix/allowed", "logStreamName": "s1"}
    grants = [
        ("s3", "get_object", "s3:GetObject", "arn:aws:s3:::matrix-a/data.txt", {"Bucket": "matrix-a", "Key": "data.txt"}),
        ("logs", "put_log_events", "logs:PutLogEvents", f"{group_arn}/matrix/allowed:log-stream:s1", log_event),
        ("emr-containers", "describe_virtual_cluster", "emr-containers:DescribeVirtualCluster", vc_a_arn, {"id": vc_a}),
        ("iam", "get_role", "iam:GetRole", role_arn("matrix-one"), {"RoleName": "matrix-one"}),
        ("cloudwatch", "put_metric_data", "cloudwatch:PutMetricData", "*", metric),
        ("eks", "describe_cluster", "eks:DescribeCluster", cluster_arn, {"name": CLUSTER}),
        ("ec2", "describe_instances", "ec2:DescribeInstances", "*", {}),
    ]
    for service, fn, action, resource, kwargs in grants:
        if fn == "put_log_events":
            kwargs = dict(kwargs, logEvents=[{"timestamp": now_ms(), "message": "from matrix-one"}])
        result = allowed(getattr(one[service], fn), **kwargs)
        if fn == "get_object":
            assert result["Body"].read() == b"data"
        for c, arn, explicit in [(none, NONE, False), (denied_all, DENY, True)]:
            if fn == "put_log_events":
                kwargs = dict(kwargs, logEvents=[{"timestamp": now_ms(), "message": f"from {arn}"}])
            deny(c, service, arn, fn, action, resource, explicit, **kwargs)
    assert log_events("/matrix/allowed", "s1") == ["from matrix-one"], "a refused PutLogEvents was stored"

    # ---- matrix-one beyond its grant, service by service.
    # S3: other keys, other buckets, writes, lists; a Deny carve-out inside the Allow.
    deny(one, "s3", ONE, "get_object", "s3:GetObject", "arn:aws:s3:::matrix-a/private/secret.txt", True,
         Bucket="matrix-a", Key="private/secret.txt")
    deny(one, "s3", ONE, "get_object", "s3:GetObject", "arn:aws:s3:::matrix-b/other.txt", Bucket="matrix-b", Key="other.txt")
    deny(one, "s3", ONE, "put_object", "s3:PutObject", "arn:aws:s3:::matrix-a/data.txt",
         Bucket="matrix-a", Key="data.txt", Body=b"overwritten")
    # Refused before its body is read (boto3 sends `Expect: 100-continue` and then no
    # body): the next request on the connection must still be read as a request, not as
    # the body that never came. A server that kept such connections open answered about
    # one request in a hundred with a bare 400, so the refusal is repeated on the same
    # client (one cell), and the connection is seen to end after it.
    global cells
    for _ in range(40):
        deny(one, "s3", ONE, "put_object", "s3:PutObject", "arn:aws:s3:::matrix-a/new.txt", Bucket="matrix-a", Key="new.txt",
             Body=b"x" * 100)
    cells -= 39
    endpoint = urllib.parse.urlsplit(os.environ["SPARKYARD_ENDPOINT"])
    conn = http.client.HTTPConnection(endpoint.hostname, endpoint.port)
    conn.putrequest("PUT", "/matrix-a/anonymous.txt")
    conn.putheader("Expect", "100-continue")
    conn.putheader("Content-Length", "100")
    conn.endheaders()
    response = conn.getresponse()
    assert (response.status, s3_error(response.read())[0]) == (403, "AccessDenied")
    assert response.getheader("Connection") == "close", response.getheaders()
    conn.close()
    cells += 1
    deny(one, "s3", ONE, "copy_object", "s3:PutObject", "arn:aws:s3:::matrix-a/copy.txt",
         Bucket="matrix-a", Key="copy.txt", CopySource={"Bucket": "matrix-a", "Key": "data.txt"})
    deny(one, "s3", ONE, "delete_object", "s3:DeleteObject", "arn:aws:s3:::matrix-a/data.txt", Bucket="matrix-a", Key="data.txt")
    deny(one, "s3", ONE, "delete_objects", "s3:DeleteObject", "arn:aws:s3:::matrix-a/*",
         Bucket="matrix-a", Delete={"Objects": [{"Key": "data.txt"}]})
    deny(one, "s3", ONE, "list_objects_v2", "s3:ListBucket", "arn:aws:s3:::matrix-a", Bucket="matrix-a")
    deny(one, "s3", ONE, "list_buckets", "s3:ListAllMyBuckets", "*")
    deny(one, "s3", ONE, "create_bucket", "s3:CreateBucket", "arn:aws:s3:::matrix-new", Bucket="matrix-new")
    deny(one, "s3", ONE, "delete_bucket", "s3:DeleteBucket", "arn:aws:s3:::matrix-b", Bucket="matrix-b")
    deny(one, "s3", ONE, "create_multipart_upload", "s3:PutObject", "arn:aws:s3:::matrix-a/big.bin", Bucket="matrix-a", Key="big.bin")
    # Read back: nothing written, overwritten, copied or deleted.
    assert s3.get_object(Bucket="matrix-a", Key="data.txt")["Body"].read() == b"data"
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket="matrix-a")["Contents"]) == ["data.txt", "private/secret.txt"]
    assert sorted(b["Name"] for b in s3.list_buckets()["Buckets"] if b["Name"].startswith("matrix-")) == ["matrix-a", "matrix-b"]
    assert s3.list_multipart_uploads(Bucket="matrix-a").get("Uploads", []) == []

    # CloudWatch Logs: the locked stream (Deny carve-out), other groups, reads, management.
    deny(one, "logs", ONE, "put_log_events", "logs:PutLogEvents", f"{group_arn}/matrix/allowed:log-stream:locked", True,
         logGroupName="/matrix/allowed", logStreamName="locked", logEvents=[{"timestamp": now_ms(), "message": "no"}])
    deny(one, "logs", ONE, "put_log_events", "logs:PutLogEvents", f"{group_arn}/matrix/other:log-stream:s1",
         logGroupName="/matrix/other", logStreamName="s1", logEvents=[{"timestamp": now_ms(), "message": "no"}])
    deny(one, "logs", ONE, "get_log_events", "logs:GetLogEvents", f"{group_arn}/matrix/allowed:log-stream:s1",
         logGroupName="/matrix/allowed", logStreamName="s1")
    deny(one, "logs", ONE, "describe_log_groups", "logs:DescribeLogGroups", f"{group_arn}*")
    deny(one, "logs", ONE, "create_log_group", "logs:CreateLogGroup", f"{group_arn}/matrix/new", logGroupName="/matrix/new")
    deny(one, "logs", ONE, "delete_log_group", "logs:DeleteLogGroup", f"{group_arn}/matrix/other", logGroupName="/matrix/other")
    deny(one, "logs", ONE, "create_log_stream", "logs:CreateLogStream", f"{group_arn}/matrix/allowed:log-stream:new",
         logGroupName="/matrix/allowed", logStreamName="new")
    deny(one, "logs", ONE, "delete_log_stream", "logs:DeleteLogStream", f"{group_arn}/matrix/allowed:log-stream:s1",
         logGroupName="/matrix/allowed", logStreamName="s1")
    deny(one, "logs", ONE, "put_retention_policy", "logs:PutRetentionPolicy", f"{group_arn}/matrix/other",
         logGroupName="/matrix/other", retentionInDays=1)
    groups = {g["logGroupName"]: g for g in logs.describe_log_groups(logGroupNamePrefix="/matrix/")["logGroups"]}
    assert sorted(groups) == ["/matrix/allowed", "/matrix/other"], groups
    assert groups["/matrix/other"]["retentionInDays"] == 7, groups
    streams = [s["logStreamName"] for s in logs.describe_log_streams(logGroupName="/matrix/allowed")["logStreams"]]
    assert sorted(streams) == ["locked", "s1"], streams
    assert log_events("/matrix/allowed", "locked") == [] and log_events("/matrix/other", "s1") == []
    assert log_events("/matrix/allowed", "s1") == ["from matrix-one"]

    # emr-containers: the other virtual cluster, lists, writes, job runs.
    deny(one, "emr-containers", ONE, "describe_virtual_cluster", "emr-containers:DescribeVirtualCluster", vc_b_arn, id=vc_b)
    deny(one, "emr-containers", ONE, "list_virtual_clusters", "emr-containers:ListVirtualClusters", "*")
    deny(one, "emr-containers", ONE, "delete_virtual_cluster", "emr-containers:DeleteVirtualCluster", vc_a_arn, id=vc_a)
    deny(one, "emr-containers", ONE, "create_virtual_cluster", "emr-containers:CreateVirtualCluster", "*",
         name="escalated", containerProvider={"id": CLUSTER, "type": "EKS", "info": {"eksInfo": {"namespace": "x"}}})
    deny(one, "emr-containers", ONE, "list_job_runs", "emr-containers:ListJobRuns", vc_a_arn, virtualClusterId=vc_a)
    deny(one, "emr-containers", ONE, "start_job_run", "emr-containers:StartJobRun", vc_a_arn, virtualClusterId=vc_a,
         name="pi", executionRoleArn=role_arn("matrix-target"), releaseLabel="emr-6.3.0-latest",
         jobDriver={"sparkSubmitJobDriver": {"entryPoint": "local:///usr/lib/spark/examples/src/main/python/pi.py"}})
    run_arn = f"{vc_a_arn}/jobruns/0000000abcdefghijkl"
    deny(one, "emr-containers", ONE, "describe_job_run", "emr-containers:DescribeJobRun", run_arn,
         virtualClusterId=vc_a, id="0000000abcdefghijkl")
    assert emr.describe_virtual_cluster(id=vc_a)["virtualCluster"]["state"] == "RUNNING"
    assert emr.list_virtual_clusters()["virtualClusters"] == vcs_before
    assert emr.list_job_runs(virtualClusterId=vc_a)["jobRuns"] == []

    # IAM: other roles, lists, and changing its own policy or another role's trust (the
    # ways a role would widen what it may do).
    deny(one, "iam", ONE, "get_role", "iam:GetRole", role_arn("matrix-none"), RoleName="matrix-none")
    deny(one, "iam", ONE, "list_roles", "iam:ListRoles", f"arn:aws:iam::{ACCOUNT}:role/*")
    deny(one, "iam", ONE, "get_role_policy", "iam:GetRolePolicy", role_arn("matrix-one"),
         RoleName="matrix-one", PolicyName="one-per-service")
    deny(one, "iam", ONE, "put_role_policy", "iam:PutRolePolicy", role_arn("matrix-one"),
         RoleName="matrix-one", PolicyName="escalate", PolicyDocument=json.dumps(deny_policy))
    deny(one, "iam", ONE, "delete_role_policy", "iam:DeleteRolePolicy", role_arn("matrix-one"),
         RoleName="matrix-one", PolicyName="one-per-service")
    deny(one, "iam", ONE, "update_assume_role_policy", "iam:UpdateAssumeRolePolicy", role_arn("matrix-none"),
         RoleName="matrix-none", PolicyDocument=trust.replace(":root", ":role/matrix-one"))
    deny(one, "iam", ONE, "create_role", "iam:CreateRole", role_arn("matrix-new"), RoleName="matrix-new",
         AssumeRolePolicyDocument=trust)
    deny(one, "iam", ONE, "delete_role", "iam:DeleteRole", role_arn("matrix-none"), RoleName="matrix-none")
    assert iam.list_role_policies(RoleName="matrix-one")["PolicyNames"] == ["one-per-service"]
    stored = iam.get_role_policy(RoleName="matrix-one", PolicyName="one-per-service")["PolicyDocument"]
    assert stored == one_policy, stored
    assert iam.get_role(RoleName="matrix-none")["Role"]["AssumeRolePolicyDocument"] == json.loads(trust)
    assert sorted(r["RoleName"] for r in iam.list_roles()["Roles"] if r["RoleName"].startswith("matrix-")) == [
        "matrix-deny", "matrix-none", "matrix-one", "matrix-target"]

    # CloudWatch: reads, alarms.
    alarm_arn = f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:"
    deny(one, "cloudwatch", ONE, "list_metrics", "cloudwatch:ListMetrics", "*")
    deny(one, "cloudwatch", ONE, "get_metric_statistics", "cloudwatch:GetMetricStatistics", "*", Namespace="Matrix",
         MetricName="M", StartTime=datetime.datetime(2024, 1, 1), EndTime=datetime.datetime(2024, 1, 2),
         Period=60, Statistics=["Sum"])
    deny(one, "cloudwatch", ONE, "describe_alarms", "cloudwatch:DescribeAlarms", f"{alarm_arn}*")
    deny(one, "cloudwatch", ONE, "put_metric_alarm", "cloudwatch:PutMetricAlarm", f"{alarm_arn}matrix-new",
         AlarmName="matrix-new", MetricName="M", Namespace="Matrix", Statistic="Sum", Period=60,
         EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanThreshold")
    deny(one, "cloudwatch", ONE, "put_metric_alarm", "cloudwatch:PutMetricAlarm", f"{alarm_arn}matrix-alarm",
         AlarmName="matrix-alarm", MetricName="Other", Namespace="Matrix", Statistic="Sum", Period=60,
         EvaluationPeriods=1, Threshold=99.0, ComparisonOperator="LessThanThreshold")
    deny(one, "cloudwatch", ONE, "set_alarm_state", "cloudwatch:SetAlarmState", f"{alarm_arn}matrix-alarm",
         AlarmName="matrix-alarm", StateValue="ALARM", StateReason="forced")
    deny(one, "cloudwatch", ONE, "delete_alarms", "cloudwatch:DeleteAlarms", f"{alarm_arn}matrix-alarm",
         AlarmNames=["matrix-alarm"])
    alarms = cw.describe_alarms(AlarmNamePrefix="matrix-")["MetricAlarms"]
    assert [a["AlarmName"] for a in alarms] == ["matrix-alarm"], alarms
    for key in ["MetricName", "Threshold", "ComparisonOperator", "StateValue", "AlarmConfigurationUpdatedTimestamp"]:
        assert alarms[0][key] == alarm_before[key], (key, alarms[0], alarm_before)

    # EKS: lists, another cluster's name, access entries (which would map a principal into
    # the cluster's RBAC), node groups.
    principal = role_arn("matrix-one")
    deny(one, "eks", ONE, "list_clusters", "eks:ListClusters", f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/*")
    deny(one, "eks", ONE, "describe_cluster", "eks:DescribeCluster", f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/other",
         name="other")
    deny(one, "eks", ONE, "list_access_entries", "eks:ListAccessEntries", cluster_arn, clusterName=CLUSTER)
    deny(one, "eks", ONE, "create_access_entry", "eks:CreateAccessEntry", cluster_arn, clusterName=CLUSTER,
         principalArn=principal, kubernetesGroups=["system:masters"])
    deny(one, "eks", ONE, "list_nodegroups", "eks:ListNodegroups", cluster_arn, clusterName=CLUSTER)
    assert eks.list_access_entries(clusterName=CLUSTER)["accessEntries"] == entries_before

    print(f"cells {cells}")


# ---- Presigned URLs ---------------------------------------------------------------------

def fetch(url, method="GET", data=None):
    """(status, body) of a bare HTTP request, as curl sends it: no headers but Host and
    Content-Length (urllib would add a Content-Type, which SigV2 signs)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port)
    try:
        conn.request(method, f"{parts.path}?{parts.query}", body=data)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def s3_error(body):
    """(Code, Message) of an S3 XML error body."""
    text = body.decode()
    field = lambda tag: text.split(f"<{tag}>", 1)[1].split(f"</{tag}>", 1)[0] if f"<{tag}>" in text else None
    return field("Code"), field("Message")


@contextlib.contextmanager
def clock_back(seconds):
    """The signer's clock (botocore.auth's) runs `seconds` behind: a URL presigned inside
    was made that long ago. Only the client's clock moves; the server's is untouched."""
    original = botocore.auth.get_current_datetime

    def earlier(*args, **kwargs):
        return original(*args, **kwargs) - datetime.timedelta(seconds=seconds)

    botocore.auth.get_current_datetime = earlier
    try:
        yield
    finally:
        botocore.auth.get_current_datetime = original


def with_query(url, **changes):
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    query = [(k, changes.get(k, v)) for k, v in query]
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def presigned():
    global cells
    cells = 0
    s3 = A["s3"]
    s3.create_bucket(Bucket="presigned")
    s3.put_object(Bucket="presigned", Key="k.txt", Body=b"presigned body")
    s3.put_object(Bucket="presigned", Key="other.txt", Body=b"other body")

    def check(url, status, code=None, message=None, body=None, method="GET", data=None):
        global cells
        got_status, got_body = fetch(url, method, data)
        assert got_status == status, (url, got_status, got_body)
        if code is not None:
            got = s3_error(got_body)
            assert got[0] == code, (url, got)
            if message is not None:
                assert got[1] == message, (url, got)
        if body is not None:
            assert got_body == body, (url, got_body)
        cells += 1

    # SigV4 query signing (X-Amz-Date and X-Amz-Expires, seconds from then), as most SDKs
    # presign, and SigV2 (Expires, an absolute time), which boto3's S3 client still uses
    # for presigning unless told otherwise.
    v4 = admin.client("s3", config=botocore.config.Config(signature_version="s3v4"))
    v2 = admin.client("s3")

    def url(client, method, key, expires):
        return client.generate_presigned_url(method, Params={"Bucket": "presigned", "Key": key}, ExpiresIn=expires)

    for name, signer in [("v4", v4), ("v2", v2)]:
        get = url(signer, "get_object", "k.txt", 60)
        expiry = "X-Amz-Expires" if name == "v4" else "Expires"
        signature = "X-Amz-Signature" if name == "v4" else "Signature"
        assert f"{expiry}=" in get, get
        check(get, 200, body=b"presigned body")
        # Tampered: another key under the same signature, a changed signature, a longer life.
        check(get.replace("/k.txt?", "/other.txt?"), 403, "SignatureDoesNotMatch")
        sig = urllib.parse.parse_qs(urllib.parse.urlsplit(get).query)[signature][0]
        forged = ("0" if sig[0] != "0" else "1") + sig[1:]
        check(with_query(get, **{signature: forged}), 403, "SignatureDoesNotMatch")
        longer = str(int(urllib.parse.parse_qs(urllib.parse.urlsplit(get).query)[expiry][0]) + 3600)
        check(with_query(get, **{expiry: longer}), 403, "SignatureDoesNotMatch")

        # Expired. SigV4: signed 120 s ago for 60 s; the control, signed 30 s ago for 60 s,
        # shows the clock shift alone breaks nothing. SigV2 names its expiry time itself:
        # one a minute in the past.
        if name == "v4":
            with clock_back(120):
                expired, expired_put = url(signer, "get_object", "k.txt", 60), url(signer, "put_object", "late.txt", 60)
            with clock_back(30):
                check(url(signer, "get_object", "k.txt", 60), 200, body=b"presigned body")
        else:
            expired, expired_put = url(signer, "get_object", "k.txt", -60), url(signer, "put_object", "late.txt", -60)
        check(expired, 403, "AccessDenied", "Request has expired")
        check(expired_put, 403, "AccessDenied", "Request has expired", method="PUT", data=b"too late")
        assert "Contents" not in s3.list_objects_v2(Bucket="presigned", Prefix="late"), "an expired PUT stored an object"

        # Presigned PUT within its life stores the object; its URL is for that key only.
        put = url(signer, "put_object", f"up-{name}.txt", 60)
        check(put, 200, method="PUT", data=b"uploaded")
        assert s3.get_object(Bucket="presigned", Key=f"up-{name}.txt")["Body"].read() == b"uploaded"
        check(put.replace(f"/up-{name}.txt?", "/k.txt?"), 403, "SignatureDoesNotMatch", method="PUT", data=b"overwrite")
        assert s3.get_object(Bucket="presigned", Key="k.txt")["Body"].read() == b"presigned body"

    # A week is the longest a SigV4 presigned URL may live (S3 refuses a longer one).
    check(url(v4, "get_object", "k.txt", 604800), 200, body=b"presigned body")
    check(url(v4, "get_object", "k.txt", 604801), 400, "AuthorizationQueryParametersError",
          "X-Amz-Expires must be less than a week (in seconds) that is 604800")

    # A URL presigned by a role session carries the role's identity and its policy.
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}]})
    A["iam"].create_role(RoleName="presigner", AssumeRolePolicyDocument=trust)
    A["iam"].put_role_policy(RoleName="presigner", PolicyName="one-key", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::presigned/k.txt"}]}))
    creds = A["sts"].assume_role(RoleArn=role_arn("presigner"), RoleSessionName="urls")["Credentials"]
    role_s3 = boto3.Session(profile_name="sparkyard", aws_access_key_id=creds["AccessKeyId"],
                            aws_secret_access_key=creds["SecretAccessKey"],
                            aws_session_token=creds["SessionToken"]).client(
        "s3", config=botocore.config.Config(signature_version="s3v4"))
    mine = url(role_s3, "get_object", "k.txt", 60)
    check(mine, 200, body=b"presigned body")
    other = url(role_s3, "get_object", "other.txt", 60)
    check(other, 403, "AccessDenied",
          denial(session_arn("presigner", "urls"), "s3:GetObject", "arn:aws:s3:::presigned/other.txt"))
    # The session token is signed into the URL: another one breaks the signature.
    check(with_query(mine, **{"X-Amz-Security-Token": "forged"}), 403, "SignatureDoesNotMatch")

    print(f"cells {cells}")


GROUPS = {"matrix": matrix, "presigned": presigned}
for group in sys.argv[1:]:
    GROUPS[group]()
print("ok")
