"""What Hadoop's S3A needs beyond plain reads and writes, through boto3: UploadPartCopy,
ListMultipartUploads, conditional GET/HEAD, CopyObject source conditions, conditional
writes (PutObject and CompleteMultipartUpload) and the self-copy refusal; UploadPartCopy's
IAM (s3:GetObject on the source). Every refused write is followed by a read showing nothing
changed. Run by tests/services_s3.rs with the sparkyard profile."""

import datetime
import hashlib
import json
import time

import boto3
import botocore.exceptions

from emr_common import error_of

session = boto3.Session(profile_name="sparkyard")
s3 = session.client("s3")
MiB = 1024 * 1024


def message_of(fn, **kwargs):
    try:
        fn(**kwargs)
    except botocore.exceptions.ClientError as e:
        return e.response["Error"].get("Message")
    raise AssertionError("expected an error")


def body(key, bucket="cond"):
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def pseudo_random(n, seed):
    out = bytearray()
    block = hashlib.sha256(seed).digest()
    while len(out) < n:
        out += block
        block = hashlib.sha256(block).digest()
    return bytes(out[:n])


B = "cond"
s3.create_bucket(Bucket=B)

# --- GetObject / HeadObject conditions -------------------------------------------------
etag = s3.put_object(Bucket=B, Key="obj", Body=b"version one")["ETag"]
head = s3.head_object(Bucket=B, Key="obj")
modified = head["LastModified"]
before = modified - datetime.timedelta(hours=1)
after = modified + datetime.timedelta(hours=1)
other = '"0123456789abcdef0123456789abcdef"'

assert body("obj") == b"version one"
assert s3.get_object(Bucket=B, Key="obj", IfMatch=etag)["Body"].read() == b"version one"
assert error_of(s3.get_object, Bucket=B, Key="obj", IfMatch=other) == ("PreconditionFailed", 412)
assert error_of(s3.head_object, Bucket=B, Key="obj", IfMatch=other) == ("412", 412)
assert error_of(s3.get_object, Bucket=B, Key="obj", IfNoneMatch=etag) == ("304", 304)
assert error_of(s3.head_object, Bucket=B, Key="obj", IfNoneMatch=etag) == ("304", 304)
assert s3.get_object(Bucket=B, Key="obj", IfNoneMatch=other)["Body"].read() == b"version one"
assert error_of(s3.get_object, Bucket=B, Key="obj", IfModifiedSince=after) == ("304", 304)
# Not modified since its own Last-Modified (whole seconds on the wire).
assert error_of(s3.get_object, Bucket=B, Key="obj", IfModifiedSince=modified) == ("304", 304)
assert s3.get_object(Bucket=B, Key="obj", IfModifiedSince=before)["ContentLength"] == 11
assert error_of(s3.get_object, Bucket=B, Key="obj", IfUnmodifiedSince=before) == ("PreconditionFailed", 412)
assert s3.head_object(Bucket=B, Key="obj", IfUnmodifiedSince=after)["ETag"] == etag
# S3's precedence: If-Match true wins over If-Unmodified-Since false ...
assert s3.get_object(Bucket=B, Key="obj", IfMatch=etag, IfUnmodifiedSince=before)["Body"].read() == b"version one"
# ... and If-None-Match false answers 304 even with If-Modified-Since true.
assert error_of(s3.get_object, Bucket=B, Key="obj", IfNoneMatch=etag, IfModifiedSince=before) == ("304", 304)
# A ranged read with a stale If-Match (S3A's change detection) is refused too.
assert error_of(s3.get_object, Bucket=B, Key="obj", IfMatch=other, Range="bytes=0-3") == ("PreconditionFailed", 412)
assert message_of(s3.get_object, Bucket=B, Key="obj", IfMatch=other) == \
    "At least one of the pre-conditions you specified did not hold"

# --- PutObject conditional writes ------------------------------------------------------
assert error_of(s3.put_object, Bucket=B, Key="obj", Body=b"clobbered", IfNoneMatch="*") == ("PreconditionFailed", 412)
assert body("obj") == b"version one" and s3.head_object(Bucket=B, Key="obj")["ETag"] == etag
assert error_of(s3.put_object, Bucket=B, Key="obj", Body=b"clobbered", IfMatch=other) == ("PreconditionFailed", 412)
assert body("obj") == b"version one"
assert error_of(s3.put_object, Bucket=B, Key="absent", Body=b"x", IfMatch=etag) == ("NoSuchKey", 404)
assert error_of(s3.head_object, Bucket=B, Key="absent") == ("404", 404)
# The conditions that hold let the write through.
s3.put_object(Bucket=B, Key="new", Body=b"created", IfNoneMatch="*")
assert body("new") == b"created"
etag2 = s3.put_object(Bucket=B, Key="obj", Body=b"version two", IfMatch=etag)["ETag"]
assert etag2 != etag and body("obj") == b"version two"

# --- CopyObject source conditions and the self-copy rule --------------------------------
src = {"Bucket": B, "Key": "obj"}
assert error_of(s3.copy_object, Bucket=B, Key="copy", CopySource=src, CopySourceIfMatch=etag) == ("PreconditionFailed", 412)
assert error_of(s3.copy_object, Bucket=B, Key="copy", CopySource=src, CopySourceIfNoneMatch=etag2) == ("PreconditionFailed", 412)
assert error_of(s3.copy_object, Bucket=B, Key="copy", CopySource=src, CopySourceIfModifiedSince=after) == ("PreconditionFailed", 412)
assert error_of(s3.copy_object, Bucket=B, Key="copy", CopySource=src, CopySourceIfUnmodifiedSince=before) == ("PreconditionFailed", 412)
assert error_of(s3.head_object, Bucket=B, Key="copy") == ("404", 404)
s3.copy_object(Bucket=B, Key="copy", CopySource=src, CopySourceIfMatch=etag2, CopySourceIfModifiedSince=before)
assert body("copy") == b"version two"

s3.put_object(Bucket=B, Key="self", Body=b"same", Metadata={"a": "1"})
assert error_of(s3.copy_object, Bucket=B, Key="self", CopySource={"Bucket": B, "Key": "self"}) == ("InvalidRequest", 400)
assert message_of(s3.copy_object, Bucket=B, Key="self", CopySource={"Bucket": B, "Key": "self"}) == (
    "This copy request is illegal because it is trying to copy an object to itself without changing "
    "the object's metadata, storage class, website redirect location or encryption attributes."
)
assert s3.head_object(Bucket=B, Key="self")["Metadata"] == {"a": "1"}
s3.copy_object(Bucket=B, Key="self", CopySource={"Bucket": B, "Key": "self"},
               MetadataDirective="REPLACE", Metadata={"a": "2"})
assert s3.head_object(Bucket=B, Key="self")["Metadata"] == {"a": "2"} and body("self") == b"same"

# --- UploadPartCopy ---------------------------------------------------------------------
data = pseudo_random(10 * MiB + 123, b"source")
src_etag = s3.put_object(Bucket=B, Key="big-src", Body=data)["ETag"]
up = s3.create_multipart_upload(Bucket=B, Key="big-dst")["UploadId"]
p1 = s3.upload_part_copy(Bucket=B, Key="big-dst", UploadId=up, PartNumber=1,
                         CopySource={"Bucket": B, "Key": "big-src"},
                         CopySourceRange=f"bytes=0-{5 * MiB - 1}", CopySourceIfMatch=src_etag)
assert p1["CopyPartResult"]["ETag"] == '"%s"' % hashlib.md5(data[:5 * MiB]).hexdigest(), p1
assert "LastModified" in p1["CopyPartResult"]
p2 = s3.upload_part_copy(Bucket=B, Key="big-dst", UploadId=up, PartNumber=2,
                         CopySource={"Bucket": B, "Key": "big-src"},
                         CopySourceRange=f"bytes={5 * MiB}-{len(data) - 1}")
# A part sent in a body may follow copied ones.
p3 = s3.upload_part(Bucket=B, Key="big-dst", UploadId=up, PartNumber=3, Body=b"tail")
parts = s3.list_parts(Bucket=B, Key="big-dst", UploadId=up)["Parts"]
assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, 5 * MiB), (2, len(data) - 5 * MiB), (3, 4)], parts

# Refused copies leave the upload's parts as they were.
copy = {"Bucket": B, "Key": "big-dst", "UploadId": up, "PartNumber": 4, "CopySource": {"Bucket": B, "Key": "big-src"}}
assert error_of(s3.upload_part_copy, **copy, CopySourceRange="bytes=0-") == ("InvalidArgument", 400)
assert error_of(s3.upload_part_copy, **copy, CopySourceRange="bytes=9-3") == ("InvalidArgument", 400)
assert error_of(s3.upload_part_copy, **copy, CopySourceRange=f"bytes=0-{len(data)}") == ("InvalidArgument", 400)
assert message_of(s3.upload_part_copy, **copy, CopySourceRange=f"bytes=0-{len(data)}") == \
    f"Range specified is not valid for source object of size: {len(data)}"
assert error_of(s3.upload_part_copy, **copy, CopySourceRange=f"bytes={len(data)}-{len(data) + 5}") == ("InvalidRequest", 400)
assert error_of(s3.upload_part_copy, **copy, CopySourceIfMatch=other) == ("PreconditionFailed", 412)
assert error_of(s3.upload_part_copy, **copy, CopySourceIfNoneMatch=src_etag) == ("PreconditionFailed", 412)
assert error_of(s3.upload_part_copy, **copy, CopySourceIfUnmodifiedSince=before) == ("PreconditionFailed", 412)
assert error_of(s3.upload_part_copy, **{**copy, "CopySource": {"Bucket": B, "Key": "missing"}}) == ("NoSuchKey", 404)
assert error_of(s3.upload_part_copy, **{**copy, "UploadId": "nope"}) == ("NoSuchUpload", 404)
assert len(s3.list_parts(Bucket=B, Key="big-dst", UploadId=up)["Parts"]) == 3

# Complete with If-None-Match: * while the key is free: it succeeds ...
done = s3.complete_multipart_upload(
    Bucket=B, Key="big-dst", UploadId=up, IfNoneMatch="*",
    MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": p1["CopyPartResult"]["ETag"]},
                               {"PartNumber": 2, "ETag": p2["CopyPartResult"]["ETag"]},
                               {"PartNumber": 3, "ETag": p3["ETag"]}]})
assert done["ETag"].strip('"').endswith("-3"), done
assert body("big-dst") == data + b"tail"
# ... and a second upload to the now existing key is refused, the object unchanged and the
# upload still there to retry or abort.
up2 = s3.create_multipart_upload(Bucket=B, Key="big-dst")["UploadId"]
e = s3.upload_part(Bucket=B, Key="big-dst", UploadId=up2, PartNumber=1, Body=b"other")["ETag"]
assert error_of(s3.complete_multipart_upload, Bucket=B, Key="big-dst", UploadId=up2, IfNoneMatch="*",
                MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": e}]}) == ("PreconditionFailed", 412)
assert body("big-dst") == data + b"tail"
assert [u["UploadId"] for u in s3.list_multipart_uploads(Bucket=B)["Uploads"]] == [up2]
s3.abort_multipart_upload(Bucket=B, Key="big-dst", UploadId=up2)

# A multipart object is read across its parts; a copy of it survives the source's deletion
# (the copy shares no file the deletion could take away).
whole = data + b"tail"
across = s3.get_object(Bucket=B, Key="big-dst", Range=f"bytes={5 * MiB - 3}-{5 * MiB + 2}")
assert across["Body"].read() == whole[5 * MiB - 3:5 * MiB + 3]
tail = s3.get_object(Bucket=B, Key="big-dst", Range="bytes=-6")["Body"].read()
assert tail == whole[-6:], tail
s3.copy_object(Bucket=B, Key="big-copy", CopySource={"Bucket": B, "Key": "big-dst"})
assert s3.head_object(Bucket=B, Key="big-copy")["ETag"] == done["ETag"]
s3.delete_object(Bucket=B, Key="big-dst")
assert body("big-copy") == whole
s3.delete_object(Bucket=B, Key="big-copy")

# A FULL_OBJECT checksum of a multipart upload is over the whole object.
up3 = s3.create_multipart_upload(Bucket=B, Key="crc", ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT")["UploadId"]
c1 = s3.upload_part(Bucket=B, Key="crc", UploadId=up3, PartNumber=1, Body=data[:5 * MiB], ChecksumAlgorithm="CRC32")
c2 = s3.upload_part(Bucket=B, Key="crc", UploadId=up3, PartNumber=2, Body=b"end", ChecksumAlgorithm="CRC32")
crc = s3.complete_multipart_upload(
    Bucket=B, Key="crc", UploadId=up3,
    MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": c1["ETag"], "ChecksumCRC32": c1["ChecksumCRC32"]},
                               {"PartNumber": 2, "ETag": c2["ETag"], "ChecksumCRC32": c2["ChecksumCRC32"]}]})
one = s3.put_object(Bucket=B, Key="crc-one", Body=data[:5 * MiB] + b"end", ChecksumAlgorithm="CRC32")
assert crc["ChecksumType"] == "FULL_OBJECT" and crc["ChecksumCRC32"] == one["ChecksumCRC32"], (crc, one)
assert body("crc") == data[:5 * MiB] + b"end"

# --- ListMultipartUploads ----------------------------------------------------------------
L = "uploads"
s3.create_bucket(Bucket=L)
assert s3.list_multipart_uploads(Bucket=L).get("Uploads", []) == []
started = []
for key in ["b", "a", "dir/x", "b", "dir/y", "c"]:
    started.append((key, s3.create_multipart_upload(Bucket=L, Key=key)["UploadId"]))
    time.sleep(0.01)  # distinct initiation times
# By key, then by initiation.
order = sorted(started, key=lambda kv: (kv[0], started.index(kv)))
listed = s3.list_multipart_uploads(Bucket=L)
assert [(u["Key"], u["UploadId"]) for u in listed["Uploads"]] == order, listed["Uploads"]
assert listed["IsTruncated"] is False
assert all(u["StorageClass"] == "STANDARD" and "Initiated" in u for u in listed["Uploads"])
# Paged by two with the markers.
seen, km, um = [], None, None
while True:
    kw = {"Bucket": L, "MaxUploads": 2}
    if km is not None:
        kw.update(KeyMarker=km, UploadIdMarker=um or "")
    page = s3.list_multipart_uploads(**kw)
    seen += [(u["Key"], u["UploadId"]) for u in page.get("Uploads", [])]
    if not page["IsTruncated"]:
        break
    km, um = page["NextKeyMarker"], page.get("NextUploadIdMarker")
assert seen == order, seen
# Prefix and delimiter.
page = s3.list_multipart_uploads(Bucket=L, Delimiter="/")
assert [u["Key"] for u in page["Uploads"]] == ["a", "b", "b", "c"]
assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["dir/"]
page = s3.list_multipart_uploads(Bucket=L, Prefix="dir/", Delimiter="/")
assert [u["Key"] for u in page["Uploads"]] == ["dir/x", "dir/y"] and "CommonPrefixes" not in page
# A key marker alone skips that key's uploads.
page = s3.list_multipart_uploads(Bucket=L, KeyMarker="b")
assert [u["Key"] for u in page["Uploads"]] == ["c", "dir/x", "dir/y"]
# Completed and aborted uploads leave the listing.
for key, uid in started:
    s3.abort_multipart_upload(Bucket=L, Key=key, UploadId=uid)
assert s3.list_multipart_uploads(Bucket=L).get("Uploads", []) == []
assert error_of(s3.list_multipart_uploads, Bucket="no-such-bucket") == ("NoSuchBucket", 404)

# --- IAM: a copy needs s3:GetObject on its source --------------------------------------
iam, sts = session.client("iam"), session.client("sts")
account = sts.get_caller_identity()["Account"]
iam.create_role(RoleName="copier", AssumeRolePolicyDocument=json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                   "Action": "sts:AssumeRole"}]}))
iam.put_role_policy(RoleName="copier", PolicyName="p", PolicyDocument=json.dumps({
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"], "Resource": f"arn:aws:s3:::{B}/open/*"},
        {"Effect": "Allow", "Action": "s3:PutObject", "Resource": f"arn:aws:s3:::{B}/dst/*"},
    ]}))
s3.put_object(Bucket=B, Key="open/src", Body=b"readable")
s3.put_object(Bucket=B, Key="secret", Body=b"not for the copier")
c = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/copier", RoleSessionName="copy")["Credentials"]
role = boto3.Session(profile_name="sparkyard", aws_access_key_id=c["AccessKeyId"],
                     aws_secret_access_key=c["SecretAccessKey"], aws_session_token=c["SessionToken"]).client("s3")
rup = role.create_multipart_upload(Bucket=B, Key="dst/x")["UploadId"]
assert error_of(role.upload_part_copy, Bucket=B, Key="dst/x", UploadId=rup, PartNumber=1,
                CopySource={"Bucket": B, "Key": "secret"}) == ("AccessDenied", 403)
assert error_of(role.copy_object, Bucket=B, Key="dst/y", CopySource={"Bucket": B, "Key": "secret"}) == ("AccessDenied", 403)
assert error_of(s3.head_object, Bucket=B, Key="dst/y") == ("404", 404)
assert s3.list_parts(Bucket=B, Key="dst/x", UploadId=rup).get("Parts", []) == []
# Allowed on both sides, it works.
role.upload_part_copy(Bucket=B, Key="dst/x", UploadId=rup, PartNumber=1, CopySource={"Bucket": B, "Key": "open/src"})
role.copy_object(Bucket=B, Key="dst/y", CopySource={"Bucket": B, "Key": "open/src"})
assert body("dst/y") == b"readable"
assert [p["Size"] for p in s3.list_parts(Bucket=B, Key="dst/x", UploadId=rup)["Parts"]] == [8]

print("ok")
