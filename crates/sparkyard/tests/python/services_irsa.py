"""IRSA end to end with boto3: service-account tokens minted by the embedded cluster's real
issuer are exchanged with STS AssumeRoleWithWebIdentity (unsigned, as botocore sends it) for
role credentials, which the role's inline policy then limits. Run by tests/services_irsa.rs:

    services_irsa.py <role-arn> <admitted-token-file> <other-namespace-token-file> \
        <wrong-audience-token-file> <wrong-issuer-token-file>
"""

import os
import subprocess
import sys

import boto3
import botocore.exceptions

role_arn, good_file, bad_file, audience_file, issuer_file = sys.argv[1:6]
good = open(good_file).read().strip()
bad = open(bad_file).read().strip()
wrong_audience = open(audience_file).read().strip()
wrong_issuer = open(issuer_file).read().strip()
admin = boto3.Session(profile_name="sparkyard")
sts = admin.client("sts")


def error_of(fn, **kwargs):
    try:
        fn(**kwargs)
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    raise AssertionError("expected an error")


# A service account the trust policy does not admit gets no credentials.
assert error_of(sts.assume_role_with_web_identity, RoleArn=role_arn, RoleSessionName="s1", WebIdentityToken=bad) == ("AccessDenied", 403)
assert error_of(sts.assume_role_with_web_identity, RoleArn=role_arn, RoleSessionName="s1", WebIdentityToken="not.a.jwt")[0] == "InvalidIdentityToken"
assert error_of(sts.assume_role_with_web_identity, RoleArn=role_arn, RoleSessionName="s1", WebIdentityToken=wrong_audience) == ("InvalidIdentityToken", 400)
assert error_of(sts.assume_role_with_web_identity, RoleArn=role_arn, RoleSessionName="s1", WebIdentityToken=wrong_issuer) == ("InvalidIdentityToken", 400)
other_role = role_arn.replace("nightly-batch-JobExecutionRole", "missing-role")
assert error_of(sts.assume_role_with_web_identity, RoleArn=other_role, RoleSessionName="s1", WebIdentityToken=good)[0] == "AccessDenied"

# The admitted one does.
r = sts.assume_role_with_web_identity(RoleArn=role_arn, RoleSessionName="spark-driver", WebIdentityToken=good)
c = r["Credentials"]
assert c["AccessKeyId"].startswith("ASIA"), c
assert r["AssumedRoleUser"]["Arn"] == "arn:aws:sts::123456789012:assumed-role/nightly-batch-JobExecutionRole/spark-driver"
assert r["SubjectFromWebIdentityToken"].startswith("system:serviceaccount:nightly-batch:emr-containers-sa-")
role = boto3.Session(
    profile_name="sparkyard",
    aws_access_key_id=c["AccessKeyId"],
    aws_secret_access_key=c["SecretAccessKey"],
    aws_session_token=c["SessionToken"],
)

who = role.client("sts").get_caller_identity()
assert who["Arn"] == r["AssumedRoleUser"]["Arn"] and who["UserId"] == r["AssumedRoleUser"]["AssumedRoleId"], who

s3 = role.client("s3")
assert s3.get_object(Bucket="irsa-data", Key="input.txt")["Body"].read() == b"input\n"
assert error_of(s3.put_object, Bucket="irsa-data", Key="output.txt", Body=b"x") == ("AccessDenied", 403)
assert error_of(s3.get_object, Bucket="irsa-other", Key="secret.txt") == ("AccessDenied", 403)
assert error_of(s3.list_objects_v2, Bucket="irsa-data") == ("AccessDenied", 403)
assert error_of(role.client("iam").list_roles)[0] == "AccessDenied"
assert error_of(role.client("logs").describe_log_groups)[0] == "AccessDeniedException"
# emr-containers holds role sessions to the same policies (the role grants none of it).
assert error_of(role.client("emr-containers").list_virtual_clusters) == ("AccessDeniedException", 403)
# A session token that is not the key's is refused.
forged = boto3.Session(profile_name="sparkyard", aws_access_key_id=c["AccessKeyId"],
                       aws_secret_access_key=c["SecretAccessKey"], aws_session_token="forged")
assert error_of(forged.client("s3").get_object, Bucket="irsa-data", Key="input.txt")[0] == "InvalidToken"
# IAM and STS refuse it in their own (query XML) error shape.
assert error_of(forged.client("iam").list_roles) == ("InvalidClientTokenId", 403)
assert error_of(forged.client("sts").get_caller_identity) == ("InvalidClientTokenId", 403)

# As a pod sees it after the pod-identity webhook: no keys, only AWS_ROLE_ARN,
# AWS_WEB_IDENTITY_TOKEN_FILE, the region and (sparkyard's addition) AWS_ENDPOINT_URL;
# botocore's own web-identity credential provider does the exchange.
env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
env.update(
    AWS_ROLE_ARN=role_arn,
    AWS_WEB_IDENTITY_TOKEN_FILE=good_file,
    AWS_ROLE_SESSION_NAME="pod",
    AWS_REGION="us-east-1",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_ENDPOINT_URL=os.environ["SPARKYARD_ENDPOINT"],
    AWS_CONFIG_FILE="/dev/null",
    AWS_SHARED_CREDENTIALS_FILE="/dev/null",
)
pod = subprocess.run(
    [sys.executable, "-c", (
        "import boto3;"
        "s = boto3.Session();"
        "print(s.client('sts').get_caller_identity()['Arn']);"
        "print(s.client('s3').get_object(Bucket='irsa-data', Key='input.txt')['Body'].read().decode().strip())"
    )],
    env=env, capture_output=True, text=True,
)
assert pod.returncode == 0, pod.stderr
assert pod.stdout.split() == ["arn:aws:sts::123456789012:assumed-role/nightly-batch-JobExecutionRole/pod", "input"], pod.stdout
print("ok")
