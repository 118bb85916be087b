//! CreateVirtualCluster, DescribeVirtualCluster, ListVirtualClusters, UpdateVirtualCluster,
//! DeleteVirtualCluster.

use serde_json::{json, Value};
use sparkyard_aws::AwsError;
use sparkyard_store::Batch;

use super::{check, list_response, query, remember, replay, str_list, tags_of, ListParams, Req};
use crate::emr::{store_error, After, Outcome};
use crate::idempotency::fingerprint;
use crate::pagination::created_key;
use crate::records::{VirtualClusterRecord, VirtualClusterState};
use crate::routes::Op;
use crate::shapes;
use crate::state::State;
use crate::{ids, time, Emr};

pub fn not_found(id: &str) -> AwsError {
    AwsError::not_found(format!("Virtual cluster {id} doesn't exist."))
}

pub(crate) fn get<'s>(st: &'s State, id: &str) -> Result<&'s VirtualClusterRecord, AwsError> {
    st.vcs.get(id).ok_or_else(|| not_found(id))
}

/// A scheduler configuration as stored: `{}` (or absent) means "none".
fn scheduler(v: Option<&Value>) -> Option<Value> {
    v.filter(|s| {
        s.as_object()
            .is_some_and(|o| o.values().any(|v| !v.is_null()))
    })
    .cloned()
}

pub async fn create(emr: &Emr, req: &Req) -> Result<Value, AwsError> {
    check(req, &[], Some(&shapes::CREATE_VIRTUAL_CLUSTER))?;
    let b = &req.body;
    let fp = fingerprint(&[], b);
    let token = req.client_token().to_string();
    let arns = emr.inner.arns.clone();
    emr.execute(|st| {
        if let Some(r) = replay(st, Op::CreateVirtualCluster, &token, &fp)? {
            return Ok(Outcome::Read(r));
        }
        if let Some(sc) = req.str("securityConfigurationId") {
            if !st.security_configurations.contains_key(sc) {
                return Err(AwsError::not_found(format!(
                    "Security configuration {sc} doesn't exist."
                )));
            }
        }
        let provider = b["containerProvider"].clone();
        let cluster_id = provider["id"].as_str().unwrap_or_default().to_string();
        // A virtual cluster without a namespace registers the cluster's `default` one.
        let namespace = provider
            .pointer("/info/eksInfo/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_string();
        if st.namespace_taken(&cluster_id, &namespace) {
            return Err(AwsError::validation(
                "A virtual cluster already exists in the given namespace",
            ));
        }
        let id = ids::virtual_cluster_id();
        let record = VirtualClusterRecord {
            arn: arns.virtual_cluster(&id),
            id: id.clone(),
            name: req.str("name").unwrap_or_default().into(),
            state: VirtualClusterState::Running,
            container_provider: provider,
            cluster_id,
            namespace,
            created_at: time::now(),
            created_by: req.caller.arn.clone(),
            tags: tags_of(b, "tags"),
            security_configuration_id: req.str("securityConfigurationId").map(str::to_string),
            session_enabled: b.get("sessionEnabled").and_then(Value::as_bool),
            scheduler_configuration: scheduler(b.get("schedulerConfiguration")),
            eks_access_entry_integrated: true,
        };
        let response = json!({"id": record.id, "name": record.name, "arn": record.arn});
        let mut batch = Batch::new();
        st.put_vc(record, &mut batch).map_err(store_error)?;
        remember(
            st,
            &mut batch,
            Op::CreateVirtualCluster,
            &token,
            fp,
            &response,
        )?;
        Ok(Outcome::Write {
            response,
            batch,
            after: None,
        })
    })
    .await
}

pub fn describe(emr: &Emr, req: &Req) -> Result<Value, AwsError> {
    check(req, &[("id", &shapes::RESOURCE_ID)], None)?;
    let st = emr.lock();
    let vc = get(&st, req.label(0))?;
    Ok(json!({"virtualCluster": vc.to_wire(st.counts(&vc.id))}))
}

pub fn list(emr: &Emr, req: &Req) -> Result<Value, AwsError> {
    let doc = query(req, &shapes::LIST_VIRTUAL_CLUSTERS)?;
    let params = ListParams::from(&doc)?;
    let provider_id = doc.get("containerProviderId").and_then(Value::as_str);
    let provider_type = doc.get("containerProviderType").and_then(Value::as_str);
    let states = str_list(&doc, "states");
    let access_entry = doc.get("eksAccessEntryIntegrated").and_then(Value::as_bool);
    let st = emr.lock();
    let items: Vec<(String, &VirtualClusterRecord)> = st
        .vcs
        .values()
        .filter(|vc| params.created_ok(&vc.created_at))
        .filter(|vc| provider_id.is_none_or(|p| vc.cluster_id == p))
        .filter(|vc| {
            provider_type.is_none_or(|t| {
                vc.container_provider.get("type").and_then(Value::as_str) == Some(t)
            })
        })
        .filter(|vc| {
            let s = serde_json::to_value(vc.state).ok();
            states.as_ref().is_none_or(|list| {
                list.iter()
                    .any(|x| s.as_ref().and_then(Value::as_str) == Some(x))
            })
        })
        .filter(|vc| access_entry.is_none_or(|a| vc.eks_access_entry_integrated == a))
        .map(|vc| (created_key(vc.created_at.timestamp_millis(), &vc.id), vc))
        .collect();
    let (page, next) = params.page(items);
    let wire = page
        .into_iter()
        .map(|vc| vc.to_wire(st.counts(&vc.id)))
        .collect();
    Ok(list_response("virtualClusters", wire, next))
}

/// UpdateVirtualCluster edits only `schedulerConfiguration`: absent leaves it unchanged,
/// `{}` clears it, anything else replaces it whole (reference §6.2).
pub async fn update(emr: &Emr, req: &Req) -> Result<Value, AwsError> {
    check(
        req,
        &[("id", &shapes::RESOURCE_ID)],
        Some(&shapes::UPDATE_VIRTUAL_CLUSTER),
    )?;
    let id = req.label(0).to_string();
    let fp = fingerprint(&[&id], &req.body);
    let token = req.client_token().to_string();
    emr.execute(|st| {
        if let Some(r) = replay(st, Op::UpdateVirtualCluster, &token, &fp)? {
            return Ok(Outcome::Read(r));
        }
        let mut vc = get(st, &id)?.clone();
        if vc.state != VirtualClusterState::Running {
            return Err(AwsError::validation(format!(
                "Virtual cluster state {} is not valid to update resource VirtualCluster.",
                state_name(vc.state)
            )));
        }
        if let Some(s) = req
            .body
            .get("schedulerConfiguration")
            .filter(|v| !v.is_null())
        {
            vc.scheduler_configuration = scheduler(Some(s));
        }
        let response = json!({"virtualCluster": vc.to_wire(st.counts(&id))});
        let mut batch = Batch::new();
        st.put_vc(vc, &mut batch).map_err(store_error)?;
        remember(
            st,
            &mut batch,
            Op::UpdateVirtualCluster,
            &token,
            fp,
            &response,
        )?;
        Ok(Outcome::Write {
            response,
            batch,
            after: None,
        })
    })
    .await
}

pub fn state_name(s: VirtualClusterState) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// DeleteVirtualCluster answers once the cluster is durably TERMINATING; a background
/// step then cancels its runs and marks it TERMINATED (see `emr::finish_termination`).
/// Deleting a cluster that is already terminating or terminated succeeds and changes
/// nothing.
pub async fn delete(emr: &Emr, req: &Req) -> Result<Value, AwsError> {
    check(req, &[("id", &shapes::RESOURCE_ID)], None)?;
    let id = req.label(0).to_string();
    emr.execute(|st| {
        let mut vc = get(st, &id)?.clone();
        let response = json!({"id": id});
        if matches!(
            vc.state,
            VirtualClusterState::Terminating | VirtualClusterState::Terminated
        ) {
            return Ok(Outcome::Read(response));
        }
        vc.state = VirtualClusterState::Terminating;
        let mut batch = Batch::new();
        st.put_vc(vc, &mut batch).map_err(store_error)?;
        Ok(Outcome::Write {
            response,
            batch,
            after: Some(After::TerminateVirtualCluster(id.clone())),
        })
    })
    .await
}
