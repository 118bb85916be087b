//! EKS managed node groups: `CreateNodegroup`, `DescribeNodegroup`, `ListNodegroups`,
//! `UpdateNodegroupConfig`, `DeleteNodegroup`, and the `DescribeUpdate`/`ListUpdates` of
//! their config updates.
//!
//! Records are durable (`eks_nodegroups`, `eks_updates` in `services.db`); the machines
//! are the [`NodeGroupBackend`]'s. Transitional states are settled **when read**: a
//! Describe, List or DescribeUpdate asks the backend how the group is doing and records
//! the transition ([`model::next_status`]) before answering — so what a client sees is
//! always what the backend reports at that moment, with no timer and no background task
//! to keep in step. Without a backend (`serve --no-cluster`) the same reads complete every
//! transition at once: groups go ACTIVE on the first read and deleted ones disappear.

pub mod model;
pub mod shapes;
pub mod store;
pub mod validate;

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::{json, Value};
use sparkyard_aws::AwsError;

use crate::db::Db;
use model::{Issue, UpdateRecord};
pub use model::{
    NodeGroupBackend, NodeGroupObserved, NodeGroupRecord, NodeGroupSpec, NodeTaint, Status,
};

pub(crate) fn invalid(message: impl Into<String>) -> AwsError {
    AwsError::new(
        StatusCode::BAD_REQUEST,
        "InvalidParameterException",
        message,
    )
}

pub(crate) fn not_found(message: impl Into<String>) -> AwsError {
    AwsError::new(StatusCode::NOT_FOUND, "ResourceNotFoundException", message)
}

fn in_use(message: impl Into<String>) -> AwsError {
    AwsError::new(StatusCode::CONFLICT, "ResourceInUseException", message)
}

fn db_error(e: rusqlite::Error) -> AwsError {
    tracing::error!(error = %e, "EKS node group store failed");
    AwsError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "ServerException",
        "An internal error occurred.",
    )
}

fn already_exists(r: &NodeGroupRecord) -> AwsError {
    in_use(format!(
        "NodeGroup already exists with name {} and cluster name {}",
        r.name, r.cluster
    ))
}

fn no_nodegroup(name: &str) -> AwsError {
    not_found(format!("No node group found for name: {name}."))
}

/// The node groups of sparkyard's one cluster.
pub struct NodeGroups {
    db: Db,
    backend: Option<Arc<dyn NodeGroupBackend>>,
    region: String,
    account_id: String,
    cluster: String,
    version: String,
}

/// Outcome of a write transaction that may refuse.
type Tx<T> = Result<T, AwsError>;

impl NodeGroups {
    pub fn new(
        db: Db,
        backend: Option<Arc<dyn NodeGroupBackend>>,
        region: &str,
        account_id: &str,
        cluster: &str,
        version: &str,
    ) -> Self {
        Self {
            db,
            backend,
            region: region.into(),
            account_id: account_id.into(),
            cluster: cluster.into(),
            version: version.into(),
        }
    }

    fn render(&self, r: &NodeGroupRecord) -> Value {
        shapes::nodegroup(&self.region, &self.account_id, r)
    }

    pub fn arn(&self, r: &NodeGroupRecord) -> String {
        shapes::nodegroup_arn(&self.region, &self.account_id, r)
    }

    fn check_cluster(&self, cluster: &str) -> Result<(), AwsError> {
        if cluster == self.cluster {
            Ok(())
        } else {
            Err(not_found(format!("No cluster found for name: {cluster}.")))
        }
    }

    /// Runs `f` in one write transaction. A refusal (`Ok(Err(_))`) is decided before
    /// anything is written, so committing it commits nothing.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<Tx<T>> + Send + 'static,
    ) -> Result<T, AwsError> {
        self.db.write(f).await.map_err(db_error)?
    }

    /// The group, after settling any transition the backend's report allows; `None` when
    /// there is no such group (or it has just finished deleting).
    pub async fn current(
        &self,
        cluster: &str,
        name: &str,
    ) -> Result<Option<NodeGroupRecord>, AwsError> {
        let (c, n) = (cluster.to_string(), name.to_string());
        let record = self
            .db
            .read(move |conn| store::get(conn, &c, &n))
            .await
            .map_err(db_error)?;
        match record {
            Some(r) => self.settle(r).await,
            None => Ok(None),
        }
    }

    async fn settle(&self, record: NodeGroupRecord) -> Result<Option<NodeGroupRecord>, AwsError> {
        let observed = self.backend.as_ref().map(|b| b.observe(&record.spec()));
        let Some(next) = model::next_status(&record, observed) else {
            return Ok(Some(record));
        };
        let seen = record.clone();
        self.write(move |tx| {
            // Only if nothing changed the record since it was observed.
            let Some(mut now) = store::get(tx, &seen.cluster, &seen.name)? else {
                return Ok(Ok(None));
            };
            if now != seen {
                return Ok(Ok(Some(now)));
            }
            match next {
                None => {
                    store::remove(tx, &now.cluster, &now.name)?;
                    Ok(Ok(None))
                }
                Some(status) => {
                    now.status = status;
                    now.modified_at = chrono::Utc::now();
                    if let Some(id) = now.update_id.take() {
                        if let Some(mut u) = store::get_update(tx, &now.cluster, &id)? {
                            u.status = "Successful".into();
                            store::put_update(tx, &u)?;
                        }
                    }
                    store::put(tx, &now)?;
                    Ok(Ok(Some(now)))
                }
            }
        })
        .await
    }

    /// `CreateNodegroup`.
    pub async fn create(&self, cluster: &str, body: &Value) -> Result<Value, AwsError> {
        let record = self.create_record(cluster, body).await?;
        Ok(json!({ "nodegroup": self.render(&record) }))
    }

    async fn create_record(
        &self,
        cluster: &str,
        body: &Value,
    ) -> Result<NodeGroupRecord, AwsError> {
        self.check_cluster(cluster)?;
        let record = validate::create(
            body,
            &validate::ClusterCtx {
                name: &self.cluster,
                version: &self.version,
                region: &self.region,
            },
        )
        .map_err(invalid)?;
        if self.stored(cluster, &record.name).await.is_some() {
            return Err(already_exists(&record));
        }
        if let Some(backend) = &self.backend {
            backend.check(&record.spec()).map_err(invalid)?;
        }
        let new = record.clone();
        self.write(move |tx| {
            if store::insert(tx, &new)? {
                Ok(Ok(()))
            } else {
                Ok(Err(already_exists(&new)))
            }
        })
        .await?;
        // Recorded first, then applied: a crash in between is repaired by `resume`.
        self.apply(record).await
    }

    /// Asks the backend for the record's spec; a refusal is recorded as the group's
    /// failure (CREATE_FAILED, or DEGRADED with the update Failed).
    async fn apply(&self, record: NodeGroupRecord) -> Result<NodeGroupRecord, AwsError> {
        let Some(backend) = &self.backend else {
            return Ok(record);
        };
        let Err(message) = backend.apply(&record.spec()) else {
            return Ok(record);
        };
        tracing::warn!(nodegroup = %record.name, error = %message, "node group backend refused the group");
        let mut failed = record;
        failed.status = if failed.status == Status::Creating {
            Status::CreateFailed
        } else {
            Status::Degraded
        };
        failed.health = vec![Issue {
            code: "AsgInstanceLaunchFailures".into(),
            message: message.clone(),
            resource_ids: vec![failed.asg_name()],
        }];
        let stored = failed.clone();
        self.write(move |tx| {
            if let Some(id) = &stored.update_id {
                if let Some(mut u) = store::get_update(tx, &stored.cluster, id)? {
                    u.status = "Failed".into();
                    u.errors.push(message);
                    store::put_update(tx, &u)?;
                }
            }
            let mut s = stored;
            s.update_id = None;
            store::put(tx, &s)?;
            Ok(Ok(s))
        })
        .await
    }

    /// Creates a group from a `CreateNodegroup` body unless one of that name exists (which
    /// is kept as it is: a restart must not reset a group's size). The start-up path of
    /// an eksctl ClusterConfig; `Ok(true)` when it created the group.
    pub async fn ensure(&self, body: &Value) -> Result<bool, String> {
        let name = body["nodegroupName"].as_str().unwrap_or_default();
        let exists = self
            .current(&self.cluster, name)
            .await
            .map_err(|e| e.message.clone())?
            .is_some();
        if exists {
            return Ok(false);
        }
        let cluster = self.cluster.clone();
        self.create_record(&cluster, body)
            .await
            .map(|_| true)
            .map_err(|e| e.message.clone())
    }

    /// At start: hands every recorded group to the backend again (create-or-update is
    /// idempotent), and removes again the ones being deleted — whatever a crash
    /// interrupted is carried on.
    pub fn resume(&self) {
        let Some(backend) = &self.backend else { return };
        let records = match self.db.read_blocking(|c| store::list(c, None)) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "cannot read node groups to resume them");
                return;
            }
        };
        for r in records {
            match r.status {
                Status::Deleting => backend.remove(&r.spec()),
                Status::CreateFailed | Status::DeleteFailed => {}
                _ => {
                    if let Err(e) = backend.apply(&r.spec()) {
                        tracing::warn!(nodegroup = %r.name, error = %e, "cannot resume node group");
                    }
                }
            }
        }
    }

    /// `DescribeNodegroup`.
    pub async fn describe(&self, cluster: &str, name: &str) -> Result<Value, AwsError> {
        self.check_cluster(cluster)?;
        let r = self
            .current(cluster, name)
            .await?
            .ok_or_else(|| no_nodegroup(name))?;
        Ok(json!({ "nodegroup": self.render(&r) }))
    }

    /// The record as stored (for authorization by ARN), unsettled.
    pub async fn stored(&self, cluster: &str, name: &str) -> Option<NodeGroupRecord> {
        let (c, n) = (cluster.to_string(), name.to_string());
        self.db
            .read(move |conn| store::get(conn, &c, &n))
            .await
            .ok()
            .flatten()
    }

    /// `ListNodegroups`: names in order; `nextToken` is the last name returned.
    pub async fn list(
        &self,
        cluster: &str,
        max_results: Option<&str>,
        next_token: Option<&str>,
    ) -> Result<Value, AwsError> {
        self.check_cluster(cluster)?;
        let max = page_size(max_results)?;
        let after = after_token(next_token)?;
        let c = cluster.to_string();
        let records = self
            .db
            .read(move |conn| store::list(conn, Some(&c)))
            .await
            .map_err(db_error)?;
        let mut names = Vec::new();
        for r in records {
            if after.as_deref().is_some_and(|a| r.name.as_str() <= a) {
                continue;
            }
            if let Some(r) = self.settle(r).await? {
                names.push(r.name);
            }
        }
        Ok(page("nodegroups", names, max))
    }

    /// `UpdateNodegroupConfig`.
    pub async fn update_config(
        &self,
        cluster: &str,
        name: &str,
        body: &Value,
    ) -> Result<Value, AwsError> {
        self.check_cluster(cluster)?;
        let current = self
            .current(cluster, name)
            .await?
            .ok_or_else(|| no_nodegroup(name))?;
        if current.status != Status::Active {
            return Err(in_use(
                "Nodegroup cannot be updated as it is currently not in Active State",
            ));
        }
        let (mut next, params) = validate::update(&current, body).map_err(invalid)?;
        if let Some(backend) = &self.backend {
            backend.check(&next.spec()).map_err(invalid)?;
        }
        let update = UpdateRecord {
            id: uuid::Uuid::new_v4().to_string(),
            cluster: cluster.into(),
            nodegroup: name.into(),
            status: "InProgress".into(),
            kind: "ConfigUpdate".into(),
            params,
            created_at: chrono::Utc::now(),
            errors: Vec::new(),
        };
        next.status = Status::Updating;
        next.modified_at = update.created_at;
        next.update_id = Some(update.id.clone());
        let (seen, stored, u) = (current, next.clone(), update.clone());
        self.write(move |tx| {
            // Another update won the race since the record was read.
            if store::get(tx, &seen.cluster, &seen.name)?.as_ref() != Some(&seen) {
                return Ok(Err(in_use(
                    "Nodegroup cannot be updated as it is currently not in Active State",
                )));
            }
            store::put(tx, &stored)?;
            store::put_update(tx, &u)?;
            Ok(Ok(()))
        })
        .await?;
        let applied = self.apply(next).await?;
        let update = if applied.status == Status::Degraded {
            self.update_record(cluster, &update.id)
                .await?
                .unwrap_or(update)
        } else {
            update
        };
        Ok(json!({ "update": shapes::update(&update) }))
    }

    /// `DeleteNodegroup`: DELETING now, gone once the backend has removed it.
    pub async fn delete(&self, cluster: &str, name: &str) -> Result<Value, AwsError> {
        self.check_cluster(cluster)?;
        let (c, n) = (cluster.to_string(), name.to_string());
        let record = self
            .write(move |tx| {
                let Some(mut r) = store::get(tx, &c, &n)? else {
                    return Ok(Err(no_nodegroup(&n)));
                };
                if r.status == Status::Deleting {
                    return Ok(Err(in_use(format!(
                        "Nodegroup {n} is already being deleted"
                    ))));
                }
                r.status = Status::Deleting;
                r.modified_at = chrono::Utc::now();
                r.update_id = None;
                store::put(tx, &r)?;
                Ok(Ok(r))
            })
            .await?;
        if let Some(backend) = &self.backend {
            backend.remove(&record.spec());
        }
        Ok(json!({ "nodegroup": self.render(&record) }))
    }

    async fn update_record(
        &self,
        cluster: &str,
        id: &str,
    ) -> Result<Option<UpdateRecord>, AwsError> {
        let (c, i) = (cluster.to_string(), id.to_string());
        self.db
            .read(move |conn| store::get_update(conn, &c, &i))
            .await
            .map_err(db_error)
    }

    /// `DescribeUpdate` of a node group's update (`?nodegroupName=`).
    pub async fn describe_update(
        &self,
        cluster: &str,
        id: &str,
        nodegroup: Option<&str>,
    ) -> Result<Value, AwsError> {
        self.check_cluster(cluster)?;
        let missing = || not_found(format!("No update found for ID: {id}."));
        let Some(ng) = nodegroup else {
            return Err(missing());
        };
        // Settling the group is what completes its update.
        self.current(cluster, ng).await?;
        let u = self
            .update_record(cluster, id)
            .await?
            .filter(|u| u.nodegroup == ng);
        let u = u.ok_or_else(missing)?;
        Ok(json!({ "update": shapes::update(&u) }))
    }

    /// `ListUpdates` of a node group (`?nodegroupName=`); a cluster has none of its own.
    pub async fn list_updates(
        &self,
        cluster: &str,
        nodegroup: Option<&str>,
        max_results: Option<&str>,
        next_token: Option<&str>,
    ) -> Result<Value, AwsError> {
        self.check_cluster(cluster)?;
        let max = page_size(max_results)?;
        let after = after_token(next_token)?;
        let Some(ng) = nodegroup else {
            return Ok(json!({ "updateIds": [] }));
        };
        if self.current(cluster, ng).await?.is_none() {
            return Err(no_nodegroup(ng));
        }
        let (c, n) = (cluster.to_string(), ng.to_string());
        let ids = self
            .db
            .read(move |conn| store::update_ids(conn, &c, &n))
            .await
            .map_err(db_error)?;
        let ids: Vec<String> = match after {
            Some(a) => ids.into_iter().skip_while(|i| *i != a).skip(1).collect(),
            None => ids,
        };
        Ok(page("updateIds", ids, max))
    }
}

fn page_size(max_results: Option<&str>) -> Result<usize, AwsError> {
    match max_results {
        None => Ok(100),
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=100).contains(&n) => Ok(n),
            _ => Err(invalid(
                "1 validation error detected: Value at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 100 and greater than or equal to 1",
            )),
        },
    }
}

/// `nextToken` is base64 of the last item returned.
fn after_token(token: Option<&str>) -> Result<Option<String>, AwsError> {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    crate::s3::blob::unb64(token)
        .and_then(|b| String::from_utf8(b).ok())
        .map(Some)
        .ok_or_else(|| invalid("The nextToken is not valid."))
}

fn page(key: &str, items: Vec<String>, max: usize) -> Value {
    let more = items.len() > max;
    let items: Vec<String> = items.into_iter().take(max).collect();
    let mut out = json!({ key: items });
    if more {
        if let Some(last) = items.last() {
            out["nextToken"] = json!(crate::s3::blob::b64(last.as_bytes()));
        }
    }
    out
}

#[cfg(test)]
mod tests;
