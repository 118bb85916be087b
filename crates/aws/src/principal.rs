/// The authenticated caller of a request, put into the request extensions by the SigV4 layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The access key id the request was signed with.
    pub access_key_id: String,
    /// 12-digit AWS account id the caller belongs to.
    pub account_id: String,
    /// IAM or STS ARN of the caller (`createdBy` in emr-containers responses), e.g.
    /// `arn:aws:iam::123456789012:root` or `arn:aws:sts::123456789012:assumed-role/r/s`.
    pub arn: String,
    /// Region taken from the request's credential scope.
    pub region: String,
    /// Service taken from the request's credential scope (`emr-containers`, `s3`, `logs`, …).
    pub service: String,
}
