"""Refused AWS writes change nothing (issue 16): each bad request through boto3 gets the error
code and HTTP status AWS gives, and a read-back shows nothing changed. Run by
tests/refusals.rs with the sparkyard profile."""

import json
import os
import urllib.error
import urllib.request

import boto3
import botocore.config
import botocore.exceptions

from emr_common import error_of

session = boto3.Session(profile_name="sparkyard")
iam = session.client("iam")
s3 = session.client("s3")
# Sent as given, so that the server (not botocore) judges the values.
unchecked = botocore.config.Config(parameter_validation=False)
emr = session.client("emr-containers", config=unchecked)




# IAM: NoSuchEntity, EntityAlreadyExists, MalformedPolicyDocument.
trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                    "Principal": {"Service": "elasticmapreduce.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
assert error_of(iam.get_role, RoleName="absent") == ("NoSuchEntity", 404)
role = iam.create_role(RoleName="refusals", AssumeRolePolicyDocument=trust, Description="first")["Role"]
assert error_of(iam.create_role, RoleName="refusals", AssumeRolePolicyDocument=trust,
                Description="second") == ("EntityAlreadyExists", 409)
again = iam.get_role(RoleName="refusals")["Role"]
assert (again["RoleId"], again.get("Description")) == (role["RoleId"], "first"), again
for bad in ["{not json", json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Maybe", "Action": "s3:*", "Resource": "*"}]})]:
    assert error_of(iam.put_role_policy, RoleName="refusals", PolicyName="p",
                    PolicyDocument=bad) == ("MalformedPolicyDocument", 400), bad
assert iam.list_role_policies(RoleName="refusals")["PolicyNames"] == []
assert error_of(iam.create_role, RoleName="bad-trust", AssumeRolePolicyDocument="[]") == ("MalformedPolicyDocument", 400)
assert error_of(iam.get_role, RoleName="bad-trust") == ("NoSuchEntity", 404)

# emr-containers: page sizes and tokens over HTTP.
listed = emr.list_virtual_clusters()["virtualClusters"]
# maxResults has no documented upper bound: above 50 it is capped (docs/emr-containers.md).
assert emr.list_virtual_clusters(maxResults=51)["virtualClusters"] == listed
assert error_of(emr.list_virtual_clusters, maxResults=0) == ("ValidationException", 400)
assert error_of(emr.list_virtual_clusters, nextToken="not-a-token") == ("ValidationException", 400)
assert emr.list_virtual_clusters()["virtualClusters"] == listed

# S3: invalid bucket names, multipart errors, unsigned requests.
for name in ["Upper", "a", "under_score", "-dash", "192.168.1.1", "x" * 64]:
    assert error_of(s3.create_bucket, Bucket=name) == ("InvalidBucketName", 400), name
names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
assert not any(n in names for n in ["Upper", "a", "under_score"]), names

s3.create_bucket(Bucket="multipart-errors")
up = s3.create_multipart_upload(Bucket="multipart-errors", Key="k")["UploadId"]
part = s3.upload_part(Bucket="multipart-errors", Key="k", UploadId=up, PartNumber=1, Body=b"p" * 1024)
assert error_of(s3.upload_part, Bucket="multipart-errors", Key="k", UploadId="nope", PartNumber=1,
                Body=b"x") == ("NoSuchUpload", 404)
assert error_of(s3.complete_multipart_upload, Bucket="multipart-errors", Key="k", UploadId=up,
                MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": '"00000000000000000000000000000000"'}]}) == ("InvalidPart", 400)
order = error_of(s3.complete_multipart_upload, Bucket="multipart-errors", Key="k", UploadId=up,
                 MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": part["ETag"]},
                                            {"PartNumber": 1, "ETag": part["ETag"]}]})
assert order == ("InvalidPartOrder", 400), order
assert error_of(s3.head_object, Bucket="multipart-errors", Key="k")[1] == 404
# The upload is still open and completes with the right list.
s3.complete_multipart_upload(Bucket="multipart-errors", Key="k", UploadId=up,
                             MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]})
assert s3.get_object(Bucket="multipart-errors", Key="k")["Body"].read() == b"p" * 1024

endpoint = s3.meta.endpoint_url.rstrip("/")
for method, path, body in [("PUT", "/multipart-errors/unsigned", b"x"), ("GET", "/multipart-errors/k", None),
                           ("DELETE", "/multipart-errors/k", None)]:
    request = urllib.request.Request(endpoint + path, data=body, method=method)
    try:
        urllib.request.urlopen(request)
        raise AssertionError(f"unsigned {method} {path} succeeded")
    except urllib.error.HTTPError as e:
        reply = e.read()
        assert e.code == 403, (method, path, e.code, reply)
        assert b"<Code>AccessDenied</Code>" in reply, (method, path, reply)
assert error_of(s3.head_object, Bucket="multipart-errors", Key="unsigned")[1] == 404
assert s3.get_object(Bucket="multipart-errors", Key="k")["Body"].read() == b"p" * 1024

print("ok")
