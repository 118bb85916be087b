"""CloudWatch Logs through boto3: groups, streams, PutLogEvents limits and rejections,
GetLogEvents tokens, FilterLogEvents (what `aws logs tail --follow` polls), retention, and
AWS's error codes and messages. Run by tests/services_logs.rs."""

import time

import boto3
import botocore.exceptions

logs = boto3.Session(profile_name="sparkyard").client("logs")
G = "/emr-on-eks/eks-emr-cluster/nightly-batch"


def error_of(fn, **kwargs):
    try:
        fn(**kwargs)
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"], e.response["Error"]["Message"]
    raise AssertionError("expected an error")


logs.create_log_group(logGroupName=G)
assert error_of(logs.create_log_group, logGroupName=G) == ("ResourceAlreadyExistsException", "The specified log group already exists")
assert error_of(logs.create_log_stream, logGroupName="/nope", logStreamName="s") == ("ResourceNotFoundException", "The specified log group does not exist.")
assert error_of(logs.create_log_group, logGroupName="bad name")[0] == "InvalidParameterException"

for s in ["pi/0000000abc/spark-driver/stdout", "pi/0000000abc/spark-exec-1/stdout", "other"]:
    logs.create_log_stream(logGroupName=G, logStreamName=s)
assert error_of(logs.create_log_stream, logGroupName=G, logStreamName="other")[0] == "ResourceAlreadyExistsException"

now = int(time.time() * 1000)
driver = "pi/0000000abc/spark-driver/stdout"
r = logs.put_log_events(logGroupName=G, logStreamName=driver, logEvents=[
    {"timestamp": now - 2, "message": "INFO starting"},
    {"timestamp": now - 1, "message": "Pi is roughly 3.14"},
    {"timestamp": now, "message": "ERROR lost executor"},
])
assert "nextSequenceToken" in r and "rejectedLogEventsInfo" not in r
logs.put_log_events(logGroupName=G, logStreamName="pi/0000000abc/spark-exec-1/stdout",
                    logEvents=[{"timestamp": now - 1, "message": "ERROR task failed"}])
logs.put_log_events(logGroupName=G, logStreamName="other", logEvents=[{"timestamp": now, "message": "ERROR elsewhere"}])

# Batch rules as AWS enforces them.
code, msg = error_of(logs.put_log_events, logGroupName=G, logStreamName=driver,
                     logEvents=[{"timestamp": now, "message": "b"}, {"timestamp": now - 5, "message": "a"}])
assert (code, msg) == ("InvalidParameterException", "Log events in a single PutLogEvents request must be in chronological order.")
code, msg = error_of(logs.put_log_events, logGroupName=G, logStreamName=driver,
                     logEvents=[{"timestamp": now - 25 * 3600 * 1000, "message": "a"}, {"timestamp": now, "message": "b"}])
assert code == "InvalidParameterException" and "24 hours" in msg
big = "x" * (1048576 // 2)
code, msg = error_of(logs.put_log_events, logGroupName=G, logStreamName=driver,
                     logEvents=[{"timestamp": now, "message": big}, {"timestamp": now, "message": big}])
assert code == "InvalidParameterException" and "1048576" in msg, msg
assert error_of(logs.put_log_events, logGroupName=G, logStreamName="missing",
                logEvents=[{"timestamp": now, "message": "x"}]) == ("ResourceNotFoundException", "The specified log stream does not exist.")
r = logs.put_log_events(logGroupName=G, logStreamName="other", logEvents=[
    {"timestamp": now - 15 * 24 * 3600 * 1000 + 60_000, "message": "ancient"},
    {"timestamp": now - 15 * 24 * 3600 * 1000 + 120_000, "message": "ancient too"},
])
assert r["rejectedLogEventsInfo"] == {"tooOldLogEventEndIndex": 2}, r
r = logs.put_log_events(logGroupName=G, logStreamName="other", logEvents=[
    {"timestamp": now, "message": "fine"},
    {"timestamp": now + 3 * 3600 * 1000, "message": "future"},
])
assert r["rejectedLogEventsInfo"] == {"tooNewLogEventStartIndex": 1}, r

# GetLogEvents: newest first page, then backward; forward token repeats at the end.
page = logs.get_log_events(logGroupName=G, logStreamName=driver, limit=2)
assert [e["message"] for e in page["events"]] == ["Pi is roughly 3.14", "ERROR lost executor"]
back = logs.get_log_events(logGroupName=G, logStreamName=driver, nextToken=page["nextBackwardToken"])
assert [e["message"] for e in back["events"]] == ["INFO starting"]
end = logs.get_log_events(logGroupName=G, logStreamName=driver, nextToken=page["nextForwardToken"])
assert end["events"] == [] and end["nextForwardToken"] == page["nextForwardToken"]
head = logs.get_log_events(logGroupName=G, logStreamName=driver, startFromHead=True)
assert [e["message"] for e in head["events"]][0] == "INFO starting"
# Reading a stream to its end: follow nextForwardToken until it repeats.
all_events, token = [], None
for _ in range(10):
    kw = {"logGroupName": G, "logStreamName": driver, "startFromHead": True, "limit": 1}
    if token:
        kw["nextToken"] = token
    page = logs.get_log_events(**kw)
    all_events += page["events"]
    if page["nextForwardToken"] == token:
        break
    token = page["nextForwardToken"]
assert len(all_events) == 3, all_events

# FilterLogEvents: prefix + term pattern, across streams in time order.
r = logs.filter_log_events(logGroupName=G, logStreamNamePrefix="pi/", filterPattern="ERROR")
assert [e["message"] for e in r["events"]] == ["ERROR task failed", "ERROR lost executor"], r["events"]
assert all("eventId" in e and "logStreamName" in e for e in r["events"])
# `aws logs tail --follow` polls with a moving startTime and de-duplicates by eventId.
seen = {e["eventId"] for e in logs.filter_log_events(logGroupName=G, startTime=now - 10)["events"]}
logs.put_log_events(logGroupName=G, logStreamName=driver, logEvents=[{"timestamp": now + 5, "message": "late line"}])
new = [e for e in logs.filter_log_events(logGroupName=G, startTime=now - 10)["events"] if e["eventId"] not in seen]
assert [e["message"] for e in new] == ["late line"], new
paged = [e for p in logs.get_paginator("filter_log_events").paginate(logGroupName=G, PaginationConfig={"PageSize": 2}) for e in p["events"]]
assert len(paged) == 7, len(paged)

# Describe, retention.
streams = logs.describe_log_streams(logGroupName=G, logStreamNamePrefix="pi/")["logStreams"]
assert [s["logStreamName"] for s in streams] == ["pi/0000000abc/spark-driver/stdout", "pi/0000000abc/spark-exec-1/stdout"]
assert streams[0]["lastEventTimestamp"] == now + 5
logs.put_retention_policy(logGroupName=G, retentionInDays=7)
groups = logs.describe_log_groups(logGroupNamePrefix="/emr-on-eks/")["logGroups"]
assert groups[0]["retentionInDays"] == 7 and groups[0]["logGroupName"] == G
assert error_of(logs.put_retention_policy, logGroupName=G, retentionInDays=8)[0] == "InvalidParameterException"

logs.delete_log_group(logGroupName=G)
assert error_of(logs.delete_log_group, logGroupName=G) == ("ResourceNotFoundException", "The specified log group does not exist.")
print("ok")
