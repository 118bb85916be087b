//! EKS access entries and access policies: `CreateAccessEntry`, `DescribeAccessEntry`,
//! `ListAccessEntries`, `UpdateAccessEntry`, `DeleteAccessEntry`, `AssociateAccessPolicy`,
//! `DisassociateAccessPolicy`, `ListAssociatedAccessPolicies` and `ListAccessPolicies`.
//!
//! Entries are durable (`eks_access_entries` in `services.db`, one JSON record per
//! principal). The embedded API server reads them through [`AccessEntries::lookup`] when it
//! maps an IAM caller to a Kubernetes user (the binary wires it; see `docs/access.md`).
//! An entry is keyed by its principal's canonical ARN (a role's without its path, lower
//! case), as EKS's authenticator matches callers.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sparkyard_aws::AwsError;

use crate::db::Db;

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS eks_access_entries (
    cluster TEXT NOT NULL,
    match_key TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (cluster, match_key)
);
";

/// The access policies EKS offers (those sparkyard evaluates).
pub const ACCESS_POLICIES: &[&str] = &[
    "AmazonEKSAdminPolicy",
    "AmazonEKSClusterAdminPolicy",
    "AmazonEKSEditPolicy",
    "AmazonEKSViewPolicy",
    "AmazonEMRJobPolicy",
];

pub const POLICY_ARN_PREFIX: &str = "arn:aws:eks::aws:cluster-access-policy/";

const ENTRY_TYPES: &[&str] = &[
    "STANDARD",
    "EC2_LINUX",
    "EC2_WINDOWS",
    "FARGATE_LINUX",
    "EC2",
    "HYBRID_LINUX",
    "HYPERPOD_LINUX",
];

const RESERVED_PREFIXES: &[&str] = &["system:", "eks:", "aws:", "amazon:", "iam:"];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessScope {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub namespaces: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssociatedPolicy {
    pub policy_arn: String,
    pub access_scope: AccessScope,
    pub associated_at: DateTime<Utc>,
    pub modified_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessEntryRecord {
    pub cluster_name: String,
    pub principal_arn: String,
    pub kubernetes_groups: Vec<String>,
    pub access_entry_arn: String,
    pub created_at: DateTime<Utc>,
    pub modified_at: DateTime<Utc>,
    pub tags: BTreeMap<String, String>,
    pub username: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub policies: Vec<AssociatedPolicy>,
}

/// What the authenticator needs of an entry: user name (templates unexpanded), groups and
/// `(policy ARN, namespaces)` — no namespaces meaning cluster scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryGrant {
    pub username: String,
    pub groups: Vec<String>,
    pub policies: Vec<(String, Vec<String>)>,
}

/// The canonical form of a principal ARN: an assumed-role session as its role, a role
/// without its path, lower case.
pub fn match_key(arn: &str) -> String {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let canonical = match parts.as_slice() {
        ["arn", partition, "sts", "", account, resource] => match resource
            .strip_prefix("assumed-role/")
            .and_then(|r| r.split_once('/'))
        {
            Some((role, _)) => format!("arn:{partition}:iam::{account}:role/{role}"),
            None => arn.to_string(),
        },
        ["arn", partition, "iam", "", account, resource] => match resource.strip_prefix("role/") {
            Some(rest) => format!(
                "arn:{partition}:iam::{account}:role/{}",
                rest.rsplit('/').next().unwrap_or(rest)
            ),
            None => arn.to_string(),
        },
        _ => arn.to_string(),
    };
    canonical.to_ascii_lowercase()
}

fn invalid(message: impl Into<String>) -> AwsError {
    AwsError::new(
        StatusCode::BAD_REQUEST,
        "InvalidParameterException",
        message,
    )
}

fn not_found(message: impl Into<String>) -> AwsError {
    AwsError::new(StatusCode::NOT_FOUND, "ResourceNotFoundException", message)
}

fn no_entry() -> AwsError {
    not_found("The specified principalArn could not be found. You can view your available access entries with 'list-access-entries'.")
}

fn db_error(e: rusqlite::Error) -> AwsError {
    tracing::error!(error = %e, "EKS access entry store failed");
    AwsError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "ServerException",
        "An internal error occurred.",
    )
}

fn decode(text: String) -> rusqlite::Result<AccessEntryRecord> {
    serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn get(c: &Connection, cluster: &str, key: &str) -> rusqlite::Result<Option<AccessEntryRecord>> {
    let text: Option<String> = c
        .query_row(
            "SELECT record FROM eks_access_entries WHERE cluster = ?1 AND match_key = ?2",
            params![cluster, key],
            |r| r.get(0),
        )
        .optional()?;
    text.map(decode).transpose()
}

fn put(c: &Connection, r: &AccessEntryRecord) -> rusqlite::Result<()> {
    c.execute(
        "INSERT OR REPLACE INTO eks_access_entries (cluster, match_key, record) VALUES (?1, ?2, ?3)",
        params![
            r.cluster_name,
            match_key(&r.principal_arn),
            serde_json::to_string(r).expect("records serialize")
        ],
    )?;
    Ok(())
}

fn list(c: &Connection, cluster: &str) -> rusqlite::Result<Vec<AccessEntryRecord>> {
    let mut stmt =
        c.prepare("SELECT record FROM eks_access_entries WHERE cluster = ?1 ORDER BY match_key")?;
    let rows = stmt.query_map(params![cluster], |r| r.get::<_, String>(0))?;
    rows.map(|r| r.and_then(decode)).collect()
}

fn time(t: &DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

fn render(r: &AccessEntryRecord) -> Value {
    json!({
        "clusterName": r.cluster_name,
        "principalArn": r.principal_arn,
        "kubernetesGroups": r.kubernetes_groups,
        "accessEntryArn": r.access_entry_arn,
        "createdAt": time(&r.created_at),
        "modifiedAt": time(&r.modified_at),
        "tags": r.tags,
        "username": r.username,
        "type": r.kind,
    })
}

fn render_policy(p: &AssociatedPolicy) -> Value {
    json!({
        "policyArn": p.policy_arn,
        "accessScope": {"type": p.access_scope.kind, "namespaces": p.access_scope.namespaces},
        "associatedAt": time(&p.associated_at),
        "modifiedAt": time(&p.modified_at),
    })
}

fn strings(body: &Value, key: &str) -> Result<Option<Vec<String>>, AwsError> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(String::from)
                    .ok_or_else(|| invalid(format!("{key} must be a list of strings")))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(invalid(format!("{key} must be a list of strings"))),
    }
}

fn check_groups(groups: &[String]) -> Result<(), AwsError> {
    for g in groups {
        if let Some(p) = RESERVED_PREFIXES.iter().find(|p| g.starts_with(*p)) {
            return Err(invalid(format!(
                "The kubernetes group name {g} is invalid, it cannot start with {p}"
            )));
        }
        if g.is_empty() {
            return Err(invalid("Kubernetes group names cannot be empty"));
        }
    }
    Ok(())
}

fn check_username(name: &str) -> Result<(), AwsError> {
    if let Some(p) = RESERVED_PREFIXES.iter().find(|p| name.starts_with(*p)) {
        return Err(invalid(format!(
            "The username {name} is invalid, it cannot start with {p}"
        )));
    }
    Ok(())
}

/// `(account, kind, name)` of an IAM role or user ARN.
fn parse_principal(arn: &str) -> Result<(String, &'static str, String), AwsError> {
    let bad = || invalid(format!("The specified principalArn is invalid: {arn}"));
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ["arn", "aws", "iam", "", account, resource] = parts.as_slice() else {
        return Err(bad());
    };
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let (kind, rest) = if let Some(rest) = resource.strip_prefix("role/") {
        ("role", rest)
    } else if let Some(rest) = resource.strip_prefix("user/") {
        ("user", rest)
    } else {
        return Err(bad());
    };
    let name = rest.rsplit('/').next().unwrap_or_default();
    if name.is_empty() {
        return Err(bad());
    }
    Ok((account.to_string(), kind, name.to_string()))
}

/// The access entries of sparkyard's one cluster.
pub struct AccessEntries {
    db: Db,
    region: String,
    account_id: String,
    cluster: String,
}

impl AccessEntries {
    pub fn new(db: Db, region: &str, account_id: &str, cluster: &str) -> Self {
        Self {
            db,
            region: region.into(),
            account_id: account_id.into(),
            cluster: cluster.into(),
        }
    }

    fn check_cluster(&self, cluster: &str) -> Result<(), AwsError> {
        if cluster == self.cluster {
            Ok(())
        } else {
            Err(not_found(format!("No cluster found for name: {cluster}.")))
        }
    }

    async fn read_entry(&self, key: String) -> Result<Option<AccessEntryRecord>, AwsError> {
        let cluster = self.cluster.clone();
        self.db
            .read(move |c| get(c, &cluster, &key))
            .await
            .map_err(db_error)
    }

    async fn entry(
        &self,
        cluster: &str,
        principal_arn: &str,
    ) -> Result<AccessEntryRecord, AwsError> {
        self.check_cluster(cluster)?;
        self.read_entry(match_key(principal_arn))
            .await?
            .ok_or_else(no_entry)
    }

    /// The authenticator's view of the entry whose canonical principal is `principal_arn`.
    pub async fn lookup(&self, principal_arn: &str) -> Option<EntryGrant> {
        let record = self.read_entry(match_key(principal_arn)).await.ok()??;
        if record.kind != "STANDARD" {
            return None;
        }
        Some(EntryGrant {
            username: record.username,
            groups: record.kubernetes_groups,
            policies: record
                .policies
                .into_iter()
                .map(|p| (p.policy_arn, p.access_scope.namespaces))
                .collect(),
        })
    }

    /// `CreateAccessEntry`.
    pub async fn create(&self, cluster: &str, body: &Value) -> Result<Value, AwsError> {
        self.check_cluster(cluster)?;
        let principal_arn = body
            .get("principalArn")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("principalArn is required"))?
            .to_string();
        let (account, kind, name) = parse_principal(&principal_arn)?;
        let entry_type = body
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("STANDARD")
            .to_string();
        if !ENTRY_TYPES.contains(&entry_type.as_str()) {
            return Err(invalid(format!(
                "The specified type {entry_type} is invalid. Valid types: {}",
                ENTRY_TYPES.join(", ")
            )));
        }
        let groups = strings(body, "kubernetesGroups")?.unwrap_or_default();
        let username = body
            .get("username")
            .and_then(Value::as_str)
            .map(String::from);
        if entry_type != "STANDARD" && (username.is_some() || !groups.is_empty()) {
            return Err(invalid(format!(
                "username and kubernetesGroups cannot be specified for access entries of type {entry_type}"
            )));
        }
        check_groups(&groups)?;
        if let Some(u) = &username {
            check_username(u)?;
        }
        let (username, groups) = match entry_type.as_str() {
            "STANDARD" => (
                username.unwrap_or_else(|| match kind {
                    "role" => {
                        format!("arn:aws:sts::{account}:assumed-role/{name}/{{{{SessionName}}}}")
                    }
                    _ => principal_arn.clone(),
                }),
                groups,
            ),
            "EC2_WINDOWS" => (
                "system:node:{{EC2PrivateDNSName}}".to_string(),
                vec!["system:nodes".into(), "eks:kube-proxy-windows".into()],
            ),
            "FARGATE_LINUX" => (
                "system:node:{{SessionName}}".to_string(),
                vec!["system:nodes".into(), "system:node-proxier".into()],
            ),
            _ => (
                "system:node:{{EC2PrivateDNSName}}".to_string(),
                vec!["system:nodes".into()],
            ),
        };
        let tags: BTreeMap<String, String> = body
            .get("tags")
            .and_then(|t| serde_json::from_value(t.clone()).ok())
            .unwrap_or_default();
        let now = Utc::now();
        let id = uuid::Uuid::new_v4().to_string();
        let record = AccessEntryRecord {
            cluster_name: self.cluster.clone(),
            access_entry_arn: format!(
                "arn:aws:eks:{}:{}:access-entry/{}/{kind}/{account}/{name}/{}",
                self.region,
                self.account_id,
                self.cluster,
                &id[..8]
            ),
            principal_arn,
            kubernetes_groups: groups,
            created_at: now,
            modified_at: now,
            tags,
            username,
            kind: entry_type,
            policies: vec![],
        };
        let stored = record.clone();
        let created = self
            .db
            .write(move |tx| {
                if get(tx, &stored.cluster_name, &match_key(&stored.principal_arn))?.is_some() {
                    return Ok(false);
                }
                put(tx, &stored)?;
                Ok(true)
            })
            .await
            .map_err(db_error)?;
        if !created {
            return Err(AwsError::new(
                StatusCode::CONFLICT,
                "ResourceInUseException",
                "The specified access entry resource is already in use on this cluster.",
            ));
        }
        Ok(json!({ "accessEntry": render(&record) }))
    }

    /// `DescribeAccessEntry`.
    pub async fn describe(&self, cluster: &str, principal_arn: &str) -> Result<Value, AwsError> {
        let record = self.entry(cluster, principal_arn).await?;
        Ok(json!({ "accessEntry": render(&record) }))
    }

    /// `ListAccessEntries` (optionally only those with `associatedPolicyArn`).
    pub async fn list(
        &self,
        cluster: &str,
        associated_policy: Option<&str>,
        max_results: Option<&str>,
        next_token: Option<&str>,
    ) -> Result<Value, AwsError> {
        self.check_cluster(cluster)?;
        let c = self.cluster.clone();
        let records = self
            .db
            .read(move |conn| list(conn, &c))
            .await
            .map_err(db_error)?;
        let arns: Vec<String> = records
            .into_iter()
            .filter(|r| {
                associated_policy.is_none_or(|p| r.policies.iter().any(|a| a.policy_arn == p))
            })
            .map(|r| r.principal_arn)
            .collect();
        paginate(
            "accessEntries",
            arns.into_iter().map(Value::from).collect(),
            max_results,
            next_token,
        )
    }

    /// `UpdateAccessEntry`.
    pub async fn update(
        &self,
        cluster: &str,
        principal_arn: &str,
        body: &Value,
    ) -> Result<Value, AwsError> {
        let mut record = self.entry(cluster, principal_arn).await?;
        let groups = strings(body, "kubernetesGroups")?;
        let username = body
            .get("username")
            .and_then(Value::as_str)
            .map(String::from);
        if record.kind != "STANDARD" && (groups.is_some() || username.is_some()) {
            return Err(invalid(format!(
                "username and kubernetesGroups cannot be updated for access entries of type {}",
                record.kind
            )));
        }
        if let Some(groups) = groups {
            check_groups(&groups)?;
            record.kubernetes_groups = groups;
        }
        if let Some(username) = username {
            check_username(&username)?;
            record.username = username;
        }
        record.modified_at = Utc::now();
        self.store(record).await
    }

    async fn store(&self, record: AccessEntryRecord) -> Result<Value, AwsError> {
        let stored = record.clone();
        let kept = self
            .db
            .write(move |tx| {
                // Only if the entry still exists (a concurrent delete wins).
                if get(tx, &stored.cluster_name, &match_key(&stored.principal_arn))?.is_none() {
                    return Ok(false);
                }
                put(tx, &stored)?;
                Ok(true)
            })
            .await
            .map_err(db_error)?;
        if !kept {
            return Err(no_entry());
        }
        Ok(json!({ "accessEntry": render(&record) }))
    }

    /// `DeleteAccessEntry` (its policy associations go with it).
    pub async fn delete(&self, cluster: &str, principal_arn: &str) -> Result<Value, AwsError> {
        self.check_cluster(cluster)?;
        let (c, key) = (self.cluster.clone(), match_key(principal_arn));
        let removed = self
            .db
            .write(move |tx| {
                tx.execute(
                    "DELETE FROM eks_access_entries WHERE cluster = ?1 AND match_key = ?2",
                    params![c, key],
                )
            })
            .await
            .map_err(db_error)?;
        if removed == 0 {
            return Err(no_entry());
        }
        Ok(json!({}))
    }

    /// `AssociateAccessPolicy`: adds the policy, or replaces its scope when associated.
    pub async fn associate(
        &self,
        cluster: &str,
        principal_arn: &str,
        body: &Value,
    ) -> Result<Value, AwsError> {
        let mut record = self.entry(cluster, principal_arn).await?;
        let policy_arn = body
            .get("policyArn")
            .and_then(Value::as_str)
            .ok_or_else(|| invalid("policyArn is required"))?
            .to_string();
        let known = policy_arn
            .strip_prefix(POLICY_ARN_PREFIX)
            .is_some_and(|n| ACCESS_POLICIES.contains(&n));
        if !known {
            return Err(not_found(format!(
                "The specified policy {policy_arn} could not be found. You can view available policies with 'list-access-policies'."
            )));
        }
        let scope: AccessScope = body
            .get("accessScope")
            .cloned()
            .and_then(|s| serde_json::from_value(s).ok())
            .ok_or_else(|| invalid("accessScope is required, with type cluster or namespace"))?;
        match scope.kind.as_str() {
            "cluster" if !scope.namespaces.is_empty() => {
                return Err(invalid(
                    "Namespaces cannot be specified for cluster access scope type",
                ))
            }
            "namespace" if scope.namespaces.is_empty() => {
                return Err(invalid(
                    "Namespaces must be specified for namespace access scope type",
                ))
            }
            "cluster" | "namespace" => {}
            other => {
                return Err(invalid(format!(
                    "The access scope type {other} is invalid. Valid types: cluster, namespace"
                )))
            }
        }
        if record.kind != "STANDARD" {
            return Err(invalid(format!(
                "Access policies cannot be associated with access entries of type {}",
                record.kind
            )));
        }
        let now = Utc::now();
        let association = match record
            .policies
            .iter_mut()
            .find(|p| p.policy_arn == policy_arn)
        {
            Some(existing) => {
                existing.access_scope = scope;
                existing.modified_at = now;
                existing.clone()
            }
            None => {
                let added = AssociatedPolicy {
                    policy_arn,
                    access_scope: scope,
                    associated_at: now,
                    modified_at: now,
                };
                record.policies.push(added.clone());
                added
            }
        };
        record.modified_at = now;
        let principal = record.principal_arn.clone();
        self.store(record).await?;
        Ok(json!({
            "clusterName": self.cluster,
            "principalArn": principal,
            "associatedAccessPolicy": render_policy(&association),
        }))
    }

    /// `DisassociateAccessPolicy`.
    pub async fn disassociate(
        &self,
        cluster: &str,
        principal_arn: &str,
        policy_arn: &str,
    ) -> Result<Value, AwsError> {
        let mut record = self.entry(cluster, principal_arn).await?;
        let before = record.policies.len();
        record.policies.retain(|p| p.policy_arn != policy_arn);
        if record.policies.len() == before {
            return Err(not_found(format!(
                "The specified policy {policy_arn} is not associated with the access entry."
            )));
        }
        record.modified_at = Utc::now();
        self.store(record).await?;
        Ok(json!({}))
    }

    /// `ListAssociatedAccessPolicies`.
    pub async fn list_associated(
        &self,
        cluster: &str,
        principal_arn: &str,
        max_results: Option<&str>,
        next_token: Option<&str>,
    ) -> Result<Value, AwsError> {
        let record = self.entry(cluster, principal_arn).await?;
        let items = record.policies.iter().map(render_policy).collect();
        let mut out = paginate("associatedAccessPolicies", items, max_results, next_token)?;
        out["clusterName"] = json!(self.cluster);
        out["principalArn"] = json!(record.principal_arn);
        Ok(out)
    }
}

/// `ListAccessPolicies`.
pub fn list_access_policies(
    max_results: Option<&str>,
    next_token: Option<&str>,
) -> Result<Value, AwsError> {
    let items = ACCESS_POLICIES
        .iter()
        .map(|n| json!({"name": n, "arn": format!("{POLICY_ARN_PREFIX}{n}")}))
        .collect();
    paginate("accessPolicies", items, max_results, next_token)
}

/// A page of `items` (`nextToken` is the decimal offset of the next item).
fn paginate(
    key: &str,
    items: Vec<Value>,
    max_results: Option<&str>,
    next_token: Option<&str>,
) -> Result<Value, AwsError> {
    let max = match max_results {
        None => 100,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => n,
            _ => return Err(invalid(
                "1 validation error detected: Value at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 100 and greater than or equal to 1",
            )),
        },
    };
    let start = match next_token.filter(|t| !t.is_empty()) {
        None => 0,
        Some(t) => t
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= items.len())
            .ok_or_else(|| invalid("The nextToken is not valid."))?,
    };
    let page: Vec<Value> = items.iter().skip(start).take(max).cloned().collect();
    let mut out = json!({ key: page });
    if start + max < items.len() {
        out["nextToken"] = json!((start + max).to_string());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_and_keys() {
        assert_eq!(
            match_key("arn:aws:iam::123456789012:role/team/Viewer"),
            "arn:aws:iam::123456789012:role/viewer"
        );
        assert_eq!(
            match_key("arn:aws:sts::123456789012:assumed-role/Viewer/s"),
            "arn:aws:iam::123456789012:role/viewer"
        );
        assert_eq!(
            parse_principal("arn:aws:iam::123456789012:role/team/viewer").unwrap(),
            ("123456789012".into(), "role", "viewer".into())
        );
        assert!(parse_principal("arn:aws:sts::123456789012:assumed-role/r/s").is_err());
        assert!(parse_principal("arn:aws:iam::12345:user/u").is_err());
    }

    #[test]
    fn pages() {
        let items: Vec<Value> = (0..5).map(Value::from).collect();
        let first = paginate("x", items.clone(), Some("2"), None).unwrap();
        assert_eq!(first["x"], json!([0, 1]));
        let second = paginate("x", items.clone(), Some("2"), first["nextToken"].as_str()).unwrap();
        assert_eq!(second["x"], json!([2, 3]));
        let last = paginate("x", items, Some("2"), second["nextToken"].as_str()).unwrap();
        assert_eq!(last["x"], json!([4]));
        assert!(last.get("nextToken").is_none());
    }

    #[tokio::test]
    async fn entries_are_durable_and_refuse_like_eks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("services.db");
        let role = "arn:aws:iam::123456789012:role/viewer";
        {
            let db = Db::open(&path, SCHEMA).unwrap();
            let entries = AccessEntries::new(db, "us-east-2", "123456789012", "c");
            let created = entries
                .create("c", &json!({"principalArn": role}))
                .await
                .unwrap();
            assert_eq!(
                created["accessEntry"]["username"],
                "arn:aws:sts::123456789012:assumed-role/viewer/{{SessionName}}"
            );
            let again = entries
                .create("c", &json!({"principalArn": role}))
                .await
                .unwrap_err();
            assert_eq!(again.code, "ResourceInUseException");
            let bad = entries
                .create("c", &json!({"principalArn": "arn:aws:iam::123456789012:role/x", "kubernetesGroups": ["system:masters"]}))
                .await
                .unwrap_err();
            assert_eq!(bad.code, "InvalidParameterException");
            let scope = json!({"policyArn": format!("{POLICY_ARN_PREFIX}AmazonEKSViewPolicy"),
                "accessScope": {"type": "namespace", "namespaces": ["monthly-batch"]}});
            entries.associate("c", role, &scope).await.unwrap();
            let no_ns = json!({"policyArn": format!("{POLICY_ARN_PREFIX}AmazonEKSViewPolicy"),
                "accessScope": {"type": "namespace"}});
            assert_eq!(
                entries.associate("c", role, &no_ns).await.unwrap_err().code,
                "InvalidParameterException"
            );
            assert_eq!(
                entries
                    .describe("c", "arn:aws:iam::123456789012:role/nobody")
                    .await
                    .unwrap_err()
                    .code,
                "ResourceNotFoundException"
            );
        }
        let db = Db::open(&path, SCHEMA).unwrap();
        let entries = AccessEntries::new(db, "us-east-2", "123456789012", "c");
        let grant = entries
            .lookup("arn:aws:sts::123456789012:assumed-role/Viewer/s")
            .await
            .unwrap();
        assert_eq!(
            grant.policies,
            vec![(
                format!("{POLICY_ARN_PREFIX}AmazonEKSViewPolicy"),
                vec!["monthly-batch".to_string()]
            )]
        );
        entries.delete("c", role).await.unwrap();
        assert!(entries.lookup(role).await.is_none());
        assert_eq!(
            entries.delete("c", role).await.unwrap_err().code,
            "ResourceNotFoundException"
        );
    }
}
