"""boto3 against sparkyard's SigV4 layer: the profile works, and bad credentials surface as the
error codes boto3 users catch on AWS (run by tests/auth.rs through support::Server::python)."""

import os

import boto3
from botocore.exceptions import ClientError

ENDPOINT = os.environ["SPARKYARD_ENDPOINT"]


def expect_refusal(client, code, message=None):
    try:
        client.list_virtual_clusters()
    except ClientError as e:
        err = e.response["Error"]
        meta = e.response["ResponseMetadata"]
        assert err["Code"] == code, f"expected {code}, got {e.response}"
        if message is not None:
            assert err["Message"] == message, f"{code}: {err['Message']!r}"
        assert meta["HTTPStatusCode"] == 403, meta
        assert meta.get("RequestId"), f"no x-amzn-RequestId: {meta}"
        return
    raise AssertionError(f"expected {code}, but the call succeeded")


session = boto3.session.Session(profile_name="sparkyard")
good = session.client("emr-containers")
assert good.meta.endpoint_url.rstrip("/") == ENDPOINT.rstrip("/"), good.meta.endpoint_url
result = good.list_virtual_clusters()
assert result["ResponseMetadata"]["HTTPStatusCode"] == 200
assert len(result["ResponseMetadata"]["RequestId"]) == 36, result["ResponseMetadata"]

creds = session.get_credentials()


def client(access_key, secret_key, token=None):
    return boto3.client(
        "emr-containers",
        region_name=session.region_name,
        endpoint_url=ENDPOINT,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        aws_session_token=token,
    )


expect_refusal(
    client(creds.access_key, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
    "InvalidSignatureException",
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
)
expect_refusal(
    client("AKIAIOSFODNN7EXAMPLE", creds.secret_key),
    "UnrecognizedClientException",
    "The security token included in the request is invalid.",
)
expect_refusal(
    client(creds.access_key, creds.secret_key, token="FwoGZXIvYXdzEXAMPLE"),
    "UnrecognizedClientException",
)
print("ok")
