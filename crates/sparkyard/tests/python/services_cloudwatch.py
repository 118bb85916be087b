"""CloudWatch metrics and alarms through boto3, over one wire protocol (argv[1]:
smithy-rpc-v2-cbor, json or query; the client's service model is patched to speak it), with
a namespace of its own (argv[2]) so runs can share a server. Metric data, list, statistics,
metric math, CloudWatch's error codes and messages (every refused write is read back to show
nothing was stored), and alarms evaluated by the server's background task.
Run by tests/services_cloudwatch.rs."""

import copy
import datetime
import sys
import time

import boto3
import botocore.config
import botocore.exceptions

PROTOCOL = sys.argv[1]
NS = sys.argv[2]


def client(validate=True):
    session = boto3.Session(profile_name="sparkyard")
    loader = session._session.get_component("data_loader")
    original = loader.load_service_model

    def patched(service_name, type_name, api_version=None):
        model = original(service_name, type_name, api_version)
        if service_name == "cloudwatch" and type_name == "service-2":
            model = copy.deepcopy(model)
            model["metadata"]["protocol"] = PROTOCOL
            model["metadata"]["protocols"] = [PROTOCOL]
        return model

    loader.load_service_model = patched
    config = botocore.config.Config(parameter_validation=validate, retries={"max_attempts": 1})
    return session.client("cloudwatch", config=config)


cw = client()
raw = client(validate=False)  # sends what botocore's own validation would refuse
assert cw.meta.service_model.protocol == PROTOCOL, cw.meta.service_model.protocol


def error_of(fn, **kwargs):
    try:
        fn(**kwargs)
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"], e.response["Error"]["Message"]
    raise AssertionError(f"expected an error from {fn.__name__} {kwargs}")


def metrics_named(name):
    return [m for m in cw.list_metrics(Namespace=NS)["Metrics"] if m["MetricName"] == name]


now = datetime.datetime.now(datetime.timezone.utc)
minute = now.replace(second=0, microsecond=0)
m2 = minute - datetime.timedelta(minutes=2)
m3 = minute - datetime.timedelta(minutes=3)
host_a = [{"Name": "Host", "Value": "a"}, {"Name": "Stage", "Value": "prod"}]

cw.put_metric_data(Namespace=NS, MetricData=[
    {"MetricName": "Latency", "Dimensions": host_a, "Timestamp": m3 + datetime.timedelta(seconds=5), "Value": 10, "Unit": "Milliseconds"},
    {"MetricName": "Latency", "Dimensions": host_a, "Timestamp": m3 + datetime.timedelta(seconds=15), "Value": 30, "Unit": "Milliseconds"},
    {"MetricName": "Latency", "Dimensions": host_a, "Timestamp": m2, "Values": [1, 2], "Counts": [1, 3], "Unit": "Milliseconds"},
    {"MetricName": "Requests", "Dimensions": [{"Name": "Host", "Value": "b"}], "Timestamp": m2,
     "StatisticValues": {"SampleCount": 4, "Sum": 40, "Minimum": 5, "Maximum": 15}, "Unit": "Count"},
    {"MetricName": "Hires", "Timestamp": m2 + datetime.timedelta(seconds=1), "Value": 1, "StorageResolution": 1},
    {"MetricName": "Hires", "Timestamp": m2 + datetime.timedelta(seconds=2), "Value": 3, "StorageResolution": 1},
])

# ListMetrics: one metric per dimension set; dimension filters with and without value.
listed = cw.list_metrics(Namespace=NS)["Metrics"]
assert sorted(m["MetricName"] for m in listed) == ["Hires", "Latency", "Requests"], listed
lat = metrics_named("Latency")[0]
assert sorted((d["Name"], d["Value"]) for d in lat["Dimensions"]) == [("Host", "a"), ("Stage", "prod")]
assert [m["MetricName"] for m in cw.list_metrics(Namespace=NS, Dimensions=[{"Name": "Host", "Value": "b"}])["Metrics"]] == ["Requests"]
assert len(cw.list_metrics(Namespace=NS, Dimensions=[{"Name": "Host"}])["Metrics"]) == 2
assert len(cw.list_metrics(Namespace=NS, MetricName="Latency", RecentlyActive="PT3H")["Metrics"]) == 1
assert cw.list_metrics(Namespace=NS + "-none")["Metrics"] == []

# GetMetricStatistics: statistic sets aggregated per period; unit filter; label.
stats = cw.get_metric_statistics(Namespace=NS, MetricName="Latency", Dimensions=host_a,
                                 StartTime=m3, EndTime=minute, Period=60,
                                 Statistics=["SampleCount", "Sum", "Average", "Minimum", "Maximum"])
assert stats["Label"] == "Latency"
points = sorted(stats["Datapoints"], key=lambda p: p["Timestamp"])
assert [(p["SampleCount"], p["Sum"], p["Minimum"], p["Maximum"], p["Unit"]) for p in points] == [
    (2.0, 40.0, 10.0, 30.0, "Milliseconds"), (4.0, 7.0, 1.0, 2.0, "Milliseconds")], points
assert points[0]["Average"] == 20.0
wide = cw.get_metric_statistics(Namespace=NS, MetricName="Latency", Dimensions=host_a,
                                StartTime=m3, EndTime=minute, Period=300, Statistics=["Sum"])["Datapoints"]
assert sum(p["Sum"] for p in wide) == 47.0 and all("Average" not in p for p in wide), wide
assert cw.get_metric_statistics(Namespace=NS, MetricName="Latency", Dimensions=host_a, StartTime=m3,
                                EndTime=minute, Period=60, Statistics=["Sum"], Unit="Seconds")["Datapoints"] == []
hires = cw.get_metric_statistics(Namespace=NS, MetricName="Hires", StartTime=m2, EndTime=m2 + datetime.timedelta(seconds=10),
                                 Period=1, Statistics=["Sum"])["Datapoints"]
assert sorted(p["Sum"] for p in hires) == [1.0, 3.0], hires

# GetMetricData: metric stats, math, ScanBy, labels, ReturnData, MaxDatapoints paging.
q = [
    {"Id": "lat", "MetricStat": {"Metric": {"Namespace": NS, "MetricName": "Latency", "Dimensions": host_a}, "Period": 60, "Stat": "Sum"}, "ReturnData": False},
    {"Id": "req", "MetricStat": {"Metric": {"Namespace": NS, "MetricName": "Requests", "Dimensions": [{"Name": "Host", "Value": "b"}]}, "Period": 60, "Stat": "Sum"}},
    {"Id": "e1", "Expression": "lat * 2", "Label": "double"},
]
r = cw.get_metric_data(MetricDataQueries=q, StartTime=m3, EndTime=minute)
results = {x["Id"]: x for x in r["MetricDataResults"]}
assert set(results) == {"req", "e1"}, results
assert results["e1"]["Label"] == "double" and results["e1"]["Values"] == [14.0, 80.0], results["e1"]
assert results["e1"]["StatusCode"] == "Complete"
assert results["req"]["Label"] == "Requests" and results["req"]["Values"] == [40.0]
ts = [t.timestamp() if hasattr(t, "timestamp") else t for t in results["e1"]["Timestamps"]]
assert ts == [m2.timestamp(), m3.timestamp()], ts
asc = cw.get_metric_data(MetricDataQueries=q, StartTime=m3, EndTime=minute, ScanBy="TimestampAscending")
assert [x for x in asc["MetricDataResults"] if x["Id"] == "e1"][0]["Values"] == [80.0, 14.0]
page1 = cw.get_metric_data(MetricDataQueries=q[:1] + [dict(q[0], Id="lat2", ReturnData=True)], StartTime=m3, EndTime=minute, MaxDatapoints=1)
assert page1["MetricDataResults"][0]["Values"] == [7.0] and page1["MetricDataResults"][0]["StatusCode"] == "PartialData"
page2 = cw.get_metric_data(MetricDataQueries=q[:1] + [dict(q[0], Id="lat2", ReturnData=True)], StartTime=m3, EndTime=minute,
                           MaxDatapoints=1, NextToken=page1["NextToken"])
assert page2["MetricDataResults"][0]["Values"] == [40.0] and "NextToken" not in page2, page2

# Errors: CloudWatch's codes and messages; nothing is stored by a refused write.
code, msg = error_of(cw.put_metric_data, Namespace="AWS/EC2", MetricData=[{"MetricName": "X", "Value": 1}])
assert (code, msg) == ("InvalidParameterValue", "The value AWS/EC2 for parameter Namespace is invalid."), (code, msg)
dims31 = [{"Name": f"d{i}", "Value": "v"} for i in range(31)]
code, msg = error_of(raw.put_metric_data, Namespace=NS, MetricData=[
    {"MetricName": "Bad", "Value": 1}, {"MetricName": "Bad", "Value": 2, "Dimensions": dims31}])
assert code == "InvalidParameterValue" and msg == "The collection MetricData.member.2.Dimensions must not have a size greater than 30.", (code, msg)
old = now - datetime.timedelta(days=15)
code, msg = error_of(cw.put_metric_data, Namespace=NS, MetricData=[
    {"MetricName": "Bad", "Value": 1}, {"MetricName": "Bad", "Value": 2, "Timestamp": old}])
assert (code, msg) == ("InvalidParameterValue", "The parameter MetricData.member.2.Timestamp must specify a time within the past two weeks."), (code, msg)
code, msg = error_of(cw.put_metric_data, Namespace=NS, MetricData=[{"MetricName": "Bad", "Value": 1, "StatisticValues": {"SampleCount": 1, "Sum": 1, "Minimum": 1, "Maximum": 1}}])
assert code == "InvalidParameterCombination" and "mutually exclusive" in msg, (code, msg)
code, msg = error_of(cw.put_metric_data, Namespace=NS, MetricData=[{"MetricName": "Bad", "Values": [1, 2], "Counts": [1]}])
assert (code, msg) == ("InvalidParameterValue", "The parameters MetricData.member.1.Values and MetricData.member.1.Counts must be of the same size.")
code, msg = error_of(raw.put_metric_data, MetricData=[{"MetricName": "Bad", "Value": 1}])
assert (code, msg) == ("MissingParameter", "The parameter Namespace is required."), (code, msg)
code, msg = error_of(raw.put_metric_data, Namespace=NS, MetricData=[{"Value": 1}])
assert (code, msg) == ("MissingParameter", "The parameter MetricData.member.1.MetricName is required."), (code, msg)
if PROTOCOL == "smithy-rpc-v2-cbor":  # JSON has no NaN; the query protocol sends text
    code, msg = error_of(cw.put_metric_data, Namespace=NS, MetricData=[{"MetricName": "Bad", "Value": 1}, {"MetricName": "Bad", "Value": float("nan")}])
    assert (code, msg) == ("InvalidParameterValue", "The value NaN for parameter MetricData.member.2.Value is invalid."), (code, msg)
code, msg = error_of(raw.put_metric_data, Namespace=NS, MetricData=[{"MetricName": "Bad", "Value": 1}] * 1001)
assert code == "InvalidParameterValue" and "1000" in msg, (code, msg)
assert metrics_named("Bad") == [], "a refused PutMetricData stored something"

code, msg = error_of(cw.get_metric_statistics, Namespace=NS, MetricName="Latency", StartTime=m3, EndTime=minute, Period=45, Statistics=["Sum"])
assert (code, msg) == ("InvalidParameterValue", "The parameter Period must be a multiple of 60."), (code, msg)
code, msg = error_of(cw.get_metric_statistics, Namespace=NS, MetricName="Latency", StartTime=now - datetime.timedelta(days=2), EndTime=now, Period=60, Statistics=["Sum"])
assert code == "InvalidParameterCombination" and msg.startswith("You have requested up to 2,88") and "exceeds the limit of 1,440" in msg, msg
code, msg = error_of(cw.get_metric_statistics, Namespace=NS, MetricName="Latency", StartTime=m3, EndTime=minute, Period=60, Statistics=["Median"])
assert code == "InvalidParameterValue" and "Statistics.member.1" in msg, (code, msg)
code, msg = error_of(cw.get_metric_statistics, Namespace=NS, MetricName="Latency", StartTime=m3, EndTime=minute, Period=60, ExtendedStatistics=["p99"])
assert code == "InvalidParameterValue" and "p99" in msg
code, msg = error_of(raw.get_metric_statistics, MetricName="Latency", StartTime=m3, EndTime=minute, Period=60, Statistics=["Sum"])
assert (code, msg) == ("MissingParameter", "The parameter Namespace is required.")
code, msg = error_of(cw.get_metric_statistics, Namespace=NS, MetricName="Latency", StartTime=minute, EndTime=minute, Period=60, Statistics=["Sum"])
assert (code, msg) == ("InvalidParameterValue", "The parameter StartTime must not equal parameter EndTime.")
code, msg = error_of(cw.get_metric_data, MetricDataQueries=[{"Id": "Upper", "Expression": "1"}], StartTime=m3, EndTime=minute)
assert code == "ValidationError" and "Upper" in msg, (code, msg)
code, msg = error_of(cw.get_metric_data, MetricDataQueries=[{"Id": "e1", "Expression": "SUM(("}], StartTime=m3, EndTime=minute)
assert code == "ValidationError" and msg.startswith("Error in expression e1"), (code, msg)
code, msg = error_of(cw.get_metric_data, MetricDataQueries=q, StartTime=m3, EndTime=minute, NextToken="garbage")
assert code == "InvalidNextToken", (code, msg)

# Alarms.
A = NS + "-high-latency"
cw.put_metric_alarm(AlarmName=A, Namespace=NS, MetricName="Latency", Dimensions=host_a, Statistic="Maximum",
                    Period=60, EvaluationPeriods=5, DatapointsToAlarm=1, Threshold=25, ComparisonOperator="GreaterThanThreshold",
                    TreatMissingData="notBreaching", AlarmActions=["arn:aws:sns:us-east-1:123456789012:ops"])
B = NS + "-math"
cw.put_metric_alarm(AlarmName=B, EvaluationPeriods=4, Threshold=1000, ComparisonOperator="GreaterThanThreshold", Metrics=[
    {"Id": "m1", "MetricStat": {"Metric": {"Namespace": NS, "MetricName": "Requests", "Dimensions": [{"Name": "Host", "Value": "b"}]}, "Period": 60, "Stat": "Sum"}, "ReturnData": False},
    {"Id": "e1", "Expression": "m1 * 10", "ReturnData": True},
])
alarm = cw.describe_alarms(AlarmNames=[A])["MetricAlarms"][0]
assert alarm["AlarmArn"] == f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{A}"
assert alarm["ActionsEnabled"] is True and alarm["AlarmActions"] == ["arn:aws:sns:us-east-1:123456789012:ops"]
created = cw.describe_alarm_history(AlarmName=A, HistoryItemType="ConfigurationUpdate")["AlarmHistoryItems"]
assert [h["HistorySummary"] for h in created] == [f'Alarm "{A}" created']


def wait_state(name, state):
    deadline = time.time() + 120
    while time.time() < deadline:
        got = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
        if got["StateValue"] == state:
            return got
        time.sleep(0.2)
    raise AssertionError(f"{name} never reached {state}: {got}")


got = wait_state(A, "ALARM")
assert got["StateReason"].startswith("Threshold Crossed: 1 out of the last 5 datapoints [30.0"), got["StateReason"]
assert '"recentDatapoints"' in got["StateReasonData"]
wait_state(B, "OK")  # 40 * 10 = 400, not above 1000
hist = cw.describe_alarm_history(AlarmName=A, HistoryItemType="StateUpdate")["AlarmHistoryItems"]
assert hist[0]["HistorySummary"] == "Alarm updated from INSUFFICIENT_DATA to ALARM", hist
assert '"oldState"' in hist[0]["HistoryData"] and "Unchecked: Initial alarm creation" in hist[0]["HistoryData"]

assert [a["AlarmName"] for a in cw.describe_alarms(AlarmNamePrefix=NS, StateValue="ALARM")["MetricAlarms"]] == [A]
assert [a["AlarmName"] for a in cw.describe_alarms(AlarmNamePrefix=NS)["MetricAlarms"]] == sorted([A, B])
page = cw.describe_alarms(AlarmNamePrefix=NS, MaxRecords=1)
assert len(page["MetricAlarms"]) == 1 and "NextToken" in page
rest = cw.describe_alarms(AlarmNamePrefix=NS, MaxRecords=1, NextToken=page["NextToken"])
assert [a["AlarmName"] for a in page["MetricAlarms"] + rest["MetricAlarms"]] == sorted([A, B])
assert cw.describe_alarms(AlarmNamePrefix=NS, AlarmTypes=["CompositeAlarm"])["MetricAlarms"] == []
for_metric = cw.describe_alarms_for_metric(Namespace=NS, MetricName="Latency", Dimensions=host_a)["MetricAlarms"]
assert [a["AlarmName"] for a in for_metric] == [A]
assert cw.describe_alarms_for_metric(Namespace=NS, MetricName="Latency", Statistic="Minimum")["MetricAlarms"] == []

cw.disable_alarm_actions(AlarmNames=[A])
assert cw.describe_alarms(AlarmNames=[A])["MetricAlarms"][0]["ActionsEnabled"] is False
cw.enable_alarm_actions(AlarmNames=[A])
assert cw.describe_alarms(AlarmNames=[A])["MetricAlarms"][0]["ActionsEnabled"] is True

cw.set_alarm_state(AlarmName=B, StateValue="ALARM", StateReason="testing", StateReasonData='{"by": "test"}')
b = cw.describe_alarms(AlarmNames=[B])["MetricAlarms"][0]
assert b["StateReason"] == "testing" or b["StateValue"] == "OK"  # the evaluator may already have moved it back
hist = cw.describe_alarm_history(AlarmName=B, HistoryItemType="StateUpdate", ScanBy="TimestampAscending")["AlarmHistoryItems"]
assert [h["HistorySummary"] for h in hist[:2]] == ["Alarm updated from INSUFFICIENT_DATA to OK", "Alarm updated from OK to ALARM"], hist
assert error_of(cw.set_alarm_state, AlarmName=NS + "-nope", StateValue="OK", StateReason="x")[0] == "ResourceNotFound"
code, _ = error_of(cw.set_alarm_state, AlarmName=B, StateValue="OK", StateReason="x", StateReasonData="{not json")
assert code == "InvalidFormat", code

# Refused alarm writes change nothing.
code, msg = error_of(cw.put_metric_alarm, AlarmName=A, Namespace=NS, MetricName="Latency", Statistic="Maximum", Period=45,
                     EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold")
assert code == "InvalidParameterValue" and "Period" in msg, (code, msg)
code, msg = error_of(cw.put_metric_alarm, AlarmName=NS + "-two", EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanThreshold",
                     Metrics=[{"Id": "e1", "Expression": "1", "ReturnData": True}, {"Id": "e2", "Expression": "2", "ReturnData": True}])
assert code == "ValidationError", (code, msg)
assert cw.describe_alarms(AlarmNames=[A])["MetricAlarms"][0]["Period"] == 60
assert cw.describe_alarms(AlarmNames=[NS + "-two"])["MetricAlarms"] == []

code, msg = error_of(cw.delete_alarms, AlarmNames=[A, NS + "-missing"])
assert code == "ResourceNotFound", (code, msg)
assert len(cw.describe_alarms(AlarmNames=[A])["MetricAlarms"]) == 1
cw.delete_alarms(AlarmNames=[A, B])
assert cw.describe_alarms(AlarmNamePrefix=NS)["MetricAlarms"] == []
deleted = cw.describe_alarm_history(AlarmName=A, HistoryItemType="ConfigurationUpdate")["AlarmHistoryItems"]
assert deleted[0]["HistorySummary"] == f'Alarm "{A}" deleted', deleted

print("ok")
