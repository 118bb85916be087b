//! EKS (rest-json): `ListClusters` and `DescribeCluster` for the embedded cluster — what
//! `aws emr-containers update-role-trust-policy` reads (the cluster ARN's account and
//! `identity.oidc.issuer`) and what `aws eks describe-cluster` shows.

pub mod pod_identity;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sparkyard_aws::{AwsError, Principal};

use crate::authz::Authorizer;

/// What sparkyard reports about its one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInfo {
    /// `eks-emr-cluster` by default (config `services.cluster-name`).
    pub name: String,
    /// Kubernetes version (`major.minor`).
    pub version: String,
    /// The API server URL, when the embedded cluster runs.
    pub endpoint: Option<String>,
    /// Base64 of the cluster CA's PEM, as EKS reports `certificateAuthority.data`.
    pub certificate_authority: Option<String>,
    /// The OIDC issuer of service-account tokens (`https://…`).
    pub oidc_issuer: String,
    pub created_at: DateTime<Utc>,
}

pub struct Eks {
    region: String,
    account_id: String,
    cluster: ClusterInfo,
}

impl Eks {
    pub fn new(region: &str, account_id: &str, cluster: ClusterInfo) -> Self {
        Self {
            region: region.to_string(),
            account_id: account_id.to_string(),
            cluster,
        }
    }

    pub fn cluster_arn(&self) -> String {
        format!(
            "arn:aws:eks:{}:{}:cluster/{}",
            self.region, self.account_id, self.cluster.name
        )
    }

    /// Serves `GET /clusters` and `GET /clusters/<name>`.
    pub fn handle(
        &self,
        authz: &Authorizer,
        principal: &Principal,
        method: &http::Method,
        path: &str,
    ) -> Response {
        let result = match (method, path.trim_end_matches('/').strip_prefix("/clusters")) {
            (&http::Method::GET, Some("")) => self.list_clusters(authz, principal),
            (&http::Method::GET, Some(rest)) if rest.starts_with('/') && !rest[1..].contains('/') => {
                let name = percent_encoding::percent_decode_str(&rest[1..]).decode_utf8_lossy().to_string();
                self.describe_cluster(authz, principal, &name)
            }
            _ => Err(AwsError::new(
                StatusCode::NOT_FOUND,
                "UnknownOperationException",
                format!("{method} {path} is not an EKS operation sparkyard serves (ListClusters, DescribeCluster)."),
            )),
        };
        match result {
            Ok(body) => axum::Json(body).into_response(),
            Err(e) => e.into_response(),
        }
    }

    fn authorize(
        &self,
        authz: &Authorizer,
        principal: &Principal,
        op: &str,
        resource: &str,
    ) -> Result<(), AwsError> {
        authz
            .authorize(principal, &format!("eks:{op}"), resource)
            .map_err(|d| AwsError::new(StatusCode::FORBIDDEN, "AccessDeniedException", d.message()))
    }

    fn list_clusters(&self, authz: &Authorizer, principal: &Principal) -> Result<Value, AwsError> {
        self.authorize(
            authz,
            principal,
            "ListClusters",
            &format!("arn:aws:eks:{}:{}:cluster/*", self.region, self.account_id),
        )?;
        Ok(json!({ "clusters": [self.cluster.name] }))
    }

    fn describe_cluster(
        &self,
        authz: &Authorizer,
        principal: &Principal,
        name: &str,
    ) -> Result<Value, AwsError> {
        self.authorize(
            authz,
            principal,
            "DescribeCluster",
            &format!(
                "arn:aws:eks:{}:{}:cluster/{name}",
                self.region, self.account_id
            ),
        )?;
        if name != self.cluster.name {
            return Err(AwsError::new(
                StatusCode::NOT_FOUND,
                "ResourceNotFoundException",
                format!("No cluster found for name: {name}."),
            ));
        }
        Ok(json!({ "cluster": describe(&self.cluster, &self.cluster_arn()) }))
    }
}

/// The `cluster` object of DescribeCluster (pure).
pub fn describe(c: &ClusterInfo, arn: &str) -> Value {
    let mut cluster = json!({
        "name": c.name,
        "arn": arn,
        "createdAt": c.created_at.timestamp_millis() as f64 / 1000.0,
        "version": c.version,
        "status": "ACTIVE",
        "platformVersion": "eks.1",
        "identity": { "oidc": { "issuer": c.oidc_issuer } },
        "kubernetesNetworkConfig": { "serviceIpv4Cidr": "10.100.0.0/16", "ipFamily": "ipv4" },
        "resourcesVpcConfig": { "subnetIds": [], "securityGroupIds": [], "endpointPublicAccess": false, "endpointPrivateAccess": true },
        "logging": { "clusterLogging": [] },
        "tags": { "karpenter.sh/discovery": c.name },
    });
    if let Some(endpoint) = &c.endpoint {
        cluster["endpoint"] = json!(endpoint);
    }
    if let Some(ca) = &c.certificate_authority {
        cluster["certificateAuthority"] = json!({ "data": ca });
    }
    cluster
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_has_what_update_role_trust_policy_reads() {
        let info = ClusterInfo {
            name: "eks-emr-cluster".into(),
            version: "1.22".into(),
            endpoint: None,
            certificate_authority: None,
            oidc_issuer: "https://127.0.0.1:6443".into(),
            created_at: Utc::now(),
        };
        let v = describe(
            &info,
            "arn:aws:eks:us-east-2:123456789012:cluster/eks-emr-cluster",
        );
        // The CLI takes the account from the ARN's 5th field and the provider after https://.
        assert_eq!(
            v["arn"].as_str().unwrap().split(':').nth(4),
            Some("123456789012")
        );
        assert_eq!(
            v["identity"]["oidc"]["issuer"]
                .as_str()
                .unwrap()
                .split("https://")
                .nth(1),
            Some("127.0.0.1:6443")
        );
    }
}
