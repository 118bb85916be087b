"""S3 semantics through boto3: listing (prefix, delimiter, continuation), HeadObject, ranged
GET, checksums, errors. Run by tests/services_s3.rs with the sparkyard profile."""

import hashlib
import base64
import zlib

import boto3
import botocore.exceptions

s3 = boto3.Session(profile_name="sparkyard").client("s3")


def code_of(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    raise AssertionError("expected an error")


B = "listing-bucket"
s3.create_bucket(Bucket=B)
assert code_of(s3.create_bucket, Bucket=B) == ("BucketAlreadyOwnedByYou", 409)

keys = ["a.txt", "logs/1/x", "logs/1/y", "logs/2/z", "logs/top", "z"]
for k in keys:
    s3.put_object(Bucket=B, Key=k, Body=k.encode())

# Flat, paged by two.
seen, token = [], None
while True:
    kw = {"Bucket": B, "MaxKeys": 2}
    if token:
        kw["ContinuationToken"] = token
    page = s3.list_objects_v2(**kw)
    assert page["KeyCount"] == len(page.get("Contents", []))
    seen += [o["Key"] for o in page.get("Contents", [])]
    if not page["IsTruncated"]:
        break
    token = page["NextContinuationToken"]
assert seen == keys, seen

# Delimiter: common prefixes count as entries and paging skips past them.
page = s3.list_objects_v2(Bucket=B, Delimiter="/")
assert [o["Key"] for o in page["Contents"]] == ["a.txt", "z"]
assert [p["Prefix"] for p in page["CommonPrefixes"]] == ["logs/"]
entries, token = [], None
while True:
    kw = {"Bucket": B, "Prefix": "logs/", "Delimiter": "/", "MaxKeys": 1}
    if token:
        kw["ContinuationToken"] = token
    page = s3.list_objects_v2(**kw)
    entries += [p["Prefix"] for p in page.get("CommonPrefixes", [])] + [o["Key"] for o in page.get("Contents", [])]
    if not page["IsTruncated"]:
        break
    token = page["NextContinuationToken"]
assert entries == ["logs/1/", "logs/2/", "logs/top"], entries

# StartAfter and V1.
assert [o["Key"] for o in s3.list_objects_v2(Bucket=B, StartAfter="logs/2/z")["Contents"]] == ["logs/top", "z"]
v1 = s3.list_objects(Bucket=B, Prefix="logs/1/")
assert [o["Key"] for o in v1["Contents"]] == ["logs/1/x", "logs/1/y"]

# HeadObject, ETag = MD5, ranged GET.
body = bytes(range(256)) * 40
put = s3.put_object(Bucket=B, Key="bin", Body=body, ContentType="application/x-test", Metadata={"job": "pi"})
md5 = hashlib.md5(body).hexdigest()
assert put["ETag"] == f'"{md5}"', put["ETag"]
head = s3.head_object(Bucket=B, Key="bin")
assert head["ContentLength"] == len(body)
assert head["ETag"] == f'"{md5}"'
assert head["ContentType"] == "application/x-test"
assert head["Metadata"] == {"job": "pi"}
part = s3.get_object(Bucket=B, Key="bin", Range="bytes=10-19")
assert part["ResponseMetadata"]["HTTPStatusCode"] == 206
assert part["ContentRange"] == f"bytes 10-19/{len(body)}"
assert part["Body"].read() == body[10:20]
assert s3.get_object(Bucket=B, Key="bin", Range="bytes=-5")["Body"].read() == body[-5:]
assert code_of(s3.get_object, Bucket=B, Key="bin", Range=f"bytes={len(body) + 10}-")[0] == "InvalidRange"

# Checksums as S3 computes them: SHA256 requested, returned with ChecksumMode=ENABLED.
s3.put_object(Bucket=B, Key="summed", Body=b"hello", ChecksumAlgorithm="SHA256")
got = s3.get_object(Bucket=B, Key="summed", ChecksumMode="ENABLED")
assert got["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(b"hello").digest()).decode(), got
got = s3.head_object(Bucket=B, Key="summed", ChecksumMode="ENABLED")
assert got["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(b"hello").digest()).decode()
s3.put_object(Bucket=B, Key="crc", Body=b"123456789", ChecksumAlgorithm="CRC32")
crc = s3.head_object(Bucket=B, Key="crc", ChecksumMode="ENABLED")["ChecksumCRC32"]
assert base64.b64decode(crc) == zlib.crc32(b"123456789").to_bytes(4, "big"), crc
# A wrong declared checksum is refused and stores nothing.
bad = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
assert code_of(s3.put_object, Bucket=B, Key="bad", Body=b"hello", ChecksumSHA256=bad)[0] in ("BadDigest", "InvalidRequest")
assert code_of(s3.head_object, Bucket=B, Key="bad")[1] == 404

# Errors.
assert code_of(s3.get_object, Bucket=B, Key="missing") == ("NoSuchKey", 404)
assert code_of(s3.get_object, Bucket="no-such-bucket", Key="x") == ("NoSuchBucket", 404)
assert code_of(s3.list_objects_v2, Bucket="no-such-bucket")[0] == "NoSuchBucket"
assert code_of(s3.delete_bucket, Bucket=B) == ("BucketNotEmpty", 409)

# Copy, then batch delete empties the bucket.
s3.copy_object(Bucket=B, Key="copy", CopySource={"Bucket": B, "Key": "bin"})
assert s3.get_object(Bucket=B, Key="copy")["Body"].read() == body
all_keys = [o["Key"] for o in s3.list_objects_v2(Bucket=B)["Contents"]]
s3.delete_objects(Bucket=B, Delete={"Objects": [{"Key": k} for k in all_keys]})
assert s3.list_objects_v2(Bucket=B)["KeyCount"] == 0
s3.delete_bucket(Bucket=B)
assert B not in [b["Name"] for b in s3.list_buckets()["Buckets"]]
print("ok")
