//! EKS (rest-json): `ListClusters` and `DescribeCluster` for the embedded cluster — what
//! `aws emr-containers update-role-trust-policy` reads (the cluster ARN's account and
//! `identity.oidc.issuer`) and what `aws eks describe-cluster` shows — and its managed
//! node groups ([`nodegroups`]) and access entries ([`access_entries`]).

pub mod access_entries;
pub mod nodegroups;
pub mod pod_identity;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use sparkyard_aws::{AwsError, Principal};

use crate::authz::Authorizer;

type Query = std::collections::HashMap<String, String>;

fn query_param<'a>(query: &'a Query, key: &str) -> Option<&'a str> {
    query.get(key).map(String::as_str)
}

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
    pub tags: std::collections::BTreeMap<String, String>,
}

pub struct Eks {
    region: String,
    account_id: String,
    cluster: ClusterInfo,
    nodegroups: nodegroups::NodeGroups,
    access_entries: access_entries::AccessEntries,
}

impl Eks {
    pub fn new(
        region: &str,
        account_id: &str,
        cluster: ClusterInfo,
        nodegroups: nodegroups::NodeGroups,
        access_entries: access_entries::AccessEntries,
    ) -> Self {
        Self {
            region: region.to_string(),
            account_id: account_id.to_string(),
            cluster,
            nodegroups,
            access_entries,
        }
    }

    pub fn nodegroups(&self) -> &nodegroups::NodeGroups {
        &self.nodegroups
    }

    pub fn access_entries(&self) -> &access_entries::AccessEntries {
        &self.access_entries
    }

    pub fn cluster_arn(&self) -> String {
        format!(
            "arn:aws:eks:{}:{}:cluster/{}",
            self.region, self.account_id, self.cluster.name
        )
    }

    /// Serves the rest-json routes under `/clusters`.
    pub async fn handle(
        &self,
        authz: &Authorizer,
        principal: &Principal,
        method: &http::Method,
        uri: &http::Uri,
        body: &[u8],
    ) -> Response {
        let path = uri.path();
        let segments: Vec<String> = path
            .trim_matches('/')
            .split('/')
            .map(|s| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .to_string()
            })
            .collect();
        let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
        let query: Query = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
        let q = |k: &str| query_param(&query, k);
        use http::Method as M;
        let result = match (method, segments.as_slice()) {
            (&M::GET, ["clusters"]) => self.list_clusters(authz, principal),
            (&M::GET, ["clusters", name]) => self.describe_cluster(authz, principal, name),
            (&M::GET, ["access-policies"]) => {
                match self.authorize(authz, principal, "ListAccessPolicies", "*") {
                    Ok(()) => access_entries::list_access_policies(q("maxResults"), q("nextToken")),
                    Err(e) => Err(e),
                }
            }
            (m, ["clusters", cluster, "access-entries", rest @ ..]) => {
                self.access_entry_op(authz, principal, m, cluster, rest, body, &query)
                    .await
            }
            (m, ["clusters", cluster, "node-groups", rest @ ..]) => {
                self.nodegroup_op(authz, principal, m, cluster, rest, body, &query)
                    .await
            }
            (&M::GET, ["clusters", cluster, "updates"]) => {
                match self.authorize(authz, principal, "ListUpdates", &self.arn_of(cluster)) {
                    Ok(()) => {
                        self.nodegroups
                            .list_updates(cluster, q("nodegroupName"), q("maxResults"), q("nextToken"))
                            .await
                    }
                    Err(e) => Err(e),
                }
            }
            (&M::GET, ["clusters", cluster, "updates", id]) => {
                match self.authorize(authz, principal, "DescribeUpdate", &self.arn_of(cluster)) {
                    Ok(()) => {
                        self.nodegroups
                            .describe_update(cluster, id, q("nodegroupName"))
                            .await
                    }
                    Err(e) => Err(e),
                }
            }
            _ => Err(AwsError::new(
                StatusCode::NOT_FOUND,
                "UnknownOperationException",
                format!("{method} {path} is not an EKS operation sparkyard serves (ListClusters, DescribeCluster, CreateNodegroup, DescribeNodegroup, ListNodegroups, UpdateNodegroupConfig, DeleteNodegroup, DescribeUpdate, ListUpdates, Create/Describe/List/Update/DeleteAccessEntry, Associate/DisassociateAccessPolicy, ListAssociatedAccessPolicies, ListAccessPolicies)."),
            )),
        };
        match result {
            Ok(body) => axum::Json(body).into_response(),
            Err(e) => e.into_response(),
        }
    }

    fn arn_of(&self, cluster: &str) -> String {
        format!(
            "arn:aws:eks:{}:{}:cluster/{cluster}",
            self.region, self.account_id
        )
    }

    /// The node-group routes: `/clusters/{name}/node-groups[/{nodegroupName}[/update-config]]`.
    #[allow(clippy::too_many_arguments)]
    async fn nodegroup_op(
        &self,
        authz: &Authorizer,
        principal: &Principal,
        method: &http::Method,
        cluster: &str,
        rest: &[&str],
        body: &[u8],
        query: &Query,
    ) -> Result<Value, AwsError> {
        use http::Method as M;
        let q = |k: &str| query_param(query, k);
        let json_body = || -> Result<Value, AwsError> {
            if body.is_empty() {
                return Ok(Value::Null);
            }
            serde_json::from_slice(body).map_err(|e| {
                nodegroups::invalid(format!("The request body is not valid JSON: {e}"))
            })
        };
        let ng = &self.nodegroups;
        // Operations on one group are authorized on its ARN (as IAM does), or the cluster's
        // when there is no such group (the operation then answers ResourceNotFound).
        let group_arn = |name: &str| {
            let name = name.to_string();
            async move {
                match ng.stored(cluster, &name).await {
                    Some(r) => ng.arn(&r),
                    None => self.arn_of(cluster),
                }
            }
        };
        match (method, rest) {
            (&M::POST, []) => {
                self.authorize(authz, principal, "CreateNodegroup", &self.arn_of(cluster))?;
                ng.create(cluster, &json_body()?).await
            }
            (&M::GET, []) => {
                self.authorize(authz, principal, "ListNodegroups", &self.arn_of(cluster))?;
                ng.list(cluster, q("maxResults"), q("nextToken")).await
            }
            (&M::GET, [name]) => {
                self.authorize(authz, principal, "DescribeNodegroup", &group_arn(name).await)?;
                ng.describe(cluster, name).await
            }
            (&M::DELETE, [name]) => {
                self.authorize(authz, principal, "DeleteNodegroup", &group_arn(name).await)?;
                ng.delete(cluster, name).await
            }
            (&M::POST, [name, "update-config"]) => {
                self.authorize(authz, principal, "UpdateNodegroupConfig", &group_arn(name).await)?;
                ng.update_config(cluster, name, &json_body()?).await
            }
            _ => Err(AwsError::new(
                StatusCode::NOT_FOUND,
                "UnknownOperationException",
                format!("{method} /clusters/{cluster}/node-groups/{} is not an EKS operation sparkyard serves.", rest.join("/")),
            )),
        }
    }

    /// The access-entry routes: `/clusters/{name}/access-entries[/{principalArn}[/access-policies[/{policyArn}]]]`.
    #[allow(clippy::too_many_arguments)]
    async fn access_entry_op(
        &self,
        authz: &Authorizer,
        principal: &Principal,
        method: &http::Method,
        cluster: &str,
        rest: &[&str],
        body: &[u8],
        query: &Query,
    ) -> Result<Value, AwsError> {
        use http::Method as M;
        let q = |k: &str| query_param(query, k);
        let json_body = || -> Result<Value, AwsError> {
            if body.is_empty() {
                return Ok(json!({}));
            }
            serde_json::from_slice(body).map_err(|e| {
                nodegroups::invalid(format!("The request body is not valid JSON: {e}"))
            })
        };
        let ae = &self.access_entries;
        let arn = self.arn_of(cluster);
        let allow = |op: &str| self.authorize(authz, principal, op, &arn);
        match (method, rest) {
            (&M::POST, []) => {
                allow("CreateAccessEntry")?;
                ae.create(cluster, &json_body()?).await
            }
            (&M::GET, []) => {
                allow("ListAccessEntries")?;
                ae.list(cluster, q("associatedPolicyArn"), q("maxResults"), q("nextToken"))
                    .await
            }
            (&M::GET, [entry]) => {
                allow("DescribeAccessEntry")?;
                ae.describe(cluster, entry).await
            }
            (&M::POST, [entry]) => {
                allow("UpdateAccessEntry")?;
                ae.update(cluster, entry, &json_body()?).await
            }
            (&M::DELETE, [entry]) => {
                allow("DeleteAccessEntry")?;
                ae.delete(cluster, entry).await
            }
            (&M::POST, [entry, "access-policies"]) => {
                allow("AssociateAccessPolicy")?;
                ae.associate(cluster, entry, &json_body()?).await
            }
            (&M::GET, [entry, "access-policies"]) => {
                allow("ListAssociatedAccessPolicies")?;
                ae.list_associated(cluster, entry, q("maxResults"), q("nextToken"))
                    .await
            }
            (&M::DELETE, [entry, "access-policies", policy]) => {
                allow("DisassociateAccessPolicy")?;
                ae.disassociate(cluster, entry, policy).await
            }
            _ => Err(AwsError::new(
                StatusCode::NOT_FOUND,
                "UnknownOperationException",
                format!("{method} /clusters/{cluster}/access-entries/{} is not an EKS operation sparkyard serves.", rest.join("/")),
            )),
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
        "accessConfig": { "authenticationMode": "API_AND_CONFIG_MAP", "bootstrapClusterCreatorAdminPermissions": true },
        "tags": c.tags,
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
            tags: Default::default(),
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
