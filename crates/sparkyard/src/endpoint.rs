//! The AWS endpoint: one listener for every AWS-shaped service sparkyard serves.
//!
//! Every request is stamped with a request id. S3 requests go to the S3 service, which
//! verifies S3's SigV4 variants itself (streaming `aws-chunked` bodies, trailers); STS
//! `AssumeRoleWithWebIdentity` is served unsigned, as in AWS; everything else is
//! authenticated (SigV4) and dispatched by the credential scope's service: IAM, STS, Logs
//! and EKS to `sparkyard-services`, the rest to emr-containers. The composition itself lives
//! in [`sparkyard_services::router`] so the services crate's tests exercise the same path.

use std::sync::Arc;

use axum::Router;

/// The services behind the endpoint.
pub struct Services {
    pub keyring: Arc<sparkyard_aws::auth::Keyring>,
    pub emr: sparkyard_emr::Emr,
    pub aws: sparkyard_services::Services,
}

pub fn router(services: Services) -> Router {
    // Role sessions are held to their IAM policies on emr-containers too.
    let authorizer: Arc<dyn sparkyard_aws::Authorize> = Arc::new(services.aws.authorizer());
    sparkyard_services::router(
        services.aws,
        services.keyring,
        sparkyard_emr::router_with(services.emr, Some(authorizer)),
    )
}

/// The embedded cluster's service-account token issuer as STS's web-identity verifier
/// (IRSA): signature, issuer and expiry are the issuer's to check; STS checks the audience
/// and the role's trust policy.
struct ClusterTokens(Arc<sparkyard_cluster::TokenIssuer>);

impl sparkyard_services::WebIdentityVerifier for ClusterTokens {
    fn issuer(&self) -> String {
        self.0.issuer().to_string()
    }

    fn verify(
        &self,
        token: &str,
    ) -> Result<sparkyard_services::WebIdentity, sparkyard_services::sts::VerifyError> {
        use sparkyard_cluster::auth::tokens::TokenError;
        use sparkyard_services::sts::VerifyError;
        let claims = self.0.verify(token, None).map_err(|e| match e {
            TokenError::Expired => VerifyError::Expired,
            other => VerifyError::Invalid(format!("The web identity token is invalid: {other}.")),
        })?;
        Ok(sparkyard_services::WebIdentity {
            issuer: self.0.issuer().to_string(),
            subject: claims.subject(),
            audiences: claims.audiences,
            expires_at: claims.expires_at,
        })
    }
}

pub fn web_identity_verifier(
    tokens: Arc<sparkyard_cluster::TokenIssuer>,
) -> Arc<dyn sparkyard_services::WebIdentityVerifier> {
    Arc::new(ClusterTokens(tokens))
}

/// The EKS pod-identity webhook as the embedded cluster's pod admission: pods whose service
/// account names a role (`eks.amazonaws.com/role-arn`) get `AWS_ROLE_ARN`, a projected
/// token for STS, the region, and `AWS_ENDPOINT_URL` pointing at this endpoint, so SDKs in
/// the pod (and `sparkyard fetch`) act with the role against sparkyard's S3/Logs/STS.
struct PodIdentity(sparkyard_services::pod_identity::WebhookConfig);

impl sparkyard_cluster::PodMutator for PodIdentity {
    fn mutate(&self, pod: &mut serde_json::Value, service_account: Option<&serde_json::Value>) {
        let (Some(account), Ok(typed)) = (service_account, serde_json::from_value(pod.clone()))
        else {
            return;
        };
        let Ok(account) = serde_json::from_value(account.clone()) else {
            return;
        };
        if let Some(mutated) = sparkyard_services::pod_identity::mutate(&typed, &account, &self.0) {
            if let Ok(value) = serde_json::to_value(mutated) {
                *pod = value;
            }
        }
    }
}

pub fn install_pod_identity(
    cluster: &sparkyard_cluster::Cluster,
    region: &str,
    endpoint_url: &str,
) {
    let webhook = PodIdentity(sparkyard_services::pod_identity::WebhookConfig {
        region: Some(region.to_string()),
        endpoint_url: Some(endpoint_url.to_string()),
    });
    // Set once per process; a second call would be a wiring bug, not a runtime condition.
    let _ = cluster.pod_mutator.set(Arc::new(webhook));
}

/// The embedded API server's IAM authentication (`aws eks get-token` tokens, as EKS's
/// authenticator): signatures are checked by sparkyard's STS against the keyring, access
/// entries come from sparkyard's EKS; the API server itself maps the caller (creator,
/// access entry, `aws-auth`).
struct AwsIam {
    services: sparkyard_services::Services,
    cluster_name: String,
    endpoint_host: Option<String>,
    creator_arn: String,
}

use sparkyard_cluster::auth::aws_iam as iam_auth;

impl iam_auth::AwsTokenVerifier for AwsIam {
    fn cluster_name(&self) -> String {
        self.cluster_name.clone()
    }

    fn endpoint_host(&self) -> Option<String> {
        self.endpoint_host.clone()
    }

    fn cluster_creator_arn(&self) -> String {
        self.creator_arn.clone()
    }

    fn verify<'a>(
        &'a self,
        request: &'a iam_auth::PresignedRequest,
    ) -> futures::future::BoxFuture<'a, Result<iam_auth::CallerIdentity, String>> {
        Box::pin(async move {
            let url = format!(
                "{}://{}{}?{}",
                request.scheme, request.host, request.path, request.raw_query
            );
            let uri: http::Uri = url.parse().map_err(|e| format!("{e}"))?;
            let mut headers = http::HeaderMap::new();
            let value = |v: &str| {
                http::HeaderValue::from_str(v).map_err(|e| format!("bad header value: {e}"))
            };
            headers.insert(http::header::HOST, value(&request.host)?);
            headers.insert(iam_auth::CLUSTER_ID_HEADER, value(&request.cluster_id)?);
            let caller = self
                .services
                .verify_presigned_caller_identity(&uri, &headers)
                .await?;
            Ok(iam_auth::CallerIdentity {
                arn: caller.arn,
                account: caller.account,
                user_id: caller.user_id,
            })
        })
    }

    fn access_entry<'a>(
        &'a self,
        principal_arn: &'a str,
    ) -> futures::future::BoxFuture<'a, Option<iam_auth::AccessEntry>> {
        Box::pin(async move {
            let entry = self.services.access_entry(principal_arn).await?;
            Some(iam_auth::AccessEntry {
                username: entry.username,
                groups: entry.groups,
                policies: entry
                    .policies
                    .into_iter()
                    .map(|(policy_arn, namespaces)| iam_auth::PolicyAssociation {
                        policy_arn,
                        namespaces,
                    })
                    .collect(),
            })
        })
    }
}

/// Has the embedded API server accept `aws eks get-token` tokens for `cluster_name`,
/// presigned for this endpoint (`endpoint_url`), the bootstrap key's principal being the
/// cluster creator.
pub fn install_aws_iam(
    cluster: &sparkyard_cluster::Cluster,
    services: &sparkyard_services::Services,
    cluster_name: &str,
    endpoint_url: &str,
    creator_arn: &str,
) {
    let endpoint_host = endpoint_url
        .parse::<http::Uri>()
        .ok()
        .and_then(|u| u.authority().map(|a| a.as_str().to_string()));
    cluster.set_aws_token_verifier(Arc::new(AwsIam {
        services: services.clone(),
        cluster_name: cluster_name.to_string(),
        endpoint_host,
        creator_arn: creator_arn.to_string(),
    }));
}
