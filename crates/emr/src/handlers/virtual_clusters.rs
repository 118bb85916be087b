//! CreateVirtualCluster, DescribeVirtualCluster, ListVirtualClusters, UpdateVirtualCluster,
//! DeleteVirtualCluster.

use serde_json::{json, Value};
use sparkyard_aws::AwsError;
use sparkyard_store::Batch;

use super::listing::{str_list, ListParams};
use super::security_configurations;
use super::{check, describe_record, execute_once, query, tags_of, Req, ID_LABEL};
use crate::emr::{store_error, After, Outcome};
use crate::records::{wire_name, VirtualClusterRecord, VirtualClusterState};
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

/// The check before creating or changing anything in a virtual cluster; `action` names
/// it in the error (`create resource JobRun`).
pub(crate) fn require_running(vc: &VirtualClusterRecord, action: &str) -> Result<(), AwsError> {
    if vc.state == VirtualClusterState::Running {
        return Ok(());
    }
    Err(AwsError::validation(format!(
        "Virtual cluster state {} is not valid to {action}.",
        wire_name(&vc.state)
    )))
}

pub async fn create(emr: &Emr, req: &Req) -> Result<Value, AwsError> {
    check(req, &[], Some(&shapes::CREATE_VIRTUAL_CLUSTER))?;
    let b = &req.body;
    let arns = emr.inner.arns.clone();
    let created = execute_once(emr, req, Op::CreateVirtualCluster, &[], |st, batch| {
        if let Some(sc) = req.str("securityConfigurationId") {
            security_configurations::get(st, sc)?;
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
        st.put_vc(record, batch).map_err(store_error)?;
        Ok((response, None))
    })
    .await;
    if created.is_ok() {
        emr.inner.vc_created.send_modify(|n| *n += 1);
    }
    created
}

pub fn describe(emr: &Emr, req: &Req) -> Result<Value, AwsError> {
    describe_record(emr, req, &ID_LABEL, "virtualCluster", |st| {
        get(st, req.label(0)).map(|vc| vc.to_wire(st.counts(&vc.id)))
    })
}

pub fn list(emr: &Emr, req: &Req) -> Result<Value, AwsError> {
    let doc = query(req, &shapes::LIST_VIRTUAL_CLUSTERS)?;
    let params = ListParams::from(&doc)?;
    let provider_id = doc.get("containerProviderId").and_then(Value::as_str);
    let provider_type = doc.get("containerProviderType").and_then(Value::as_str);
    let states = str_list(&doc, "states");
    let access_entry = doc.get("eksAccessEntryIntegrated").and_then(Value::as_bool);
    let st = emr.lock();
    let matching = st
        .vcs
        .values()
        .filter(|vc| provider_id.is_none_or(|p| vc.cluster_id == p))
        .filter(|vc| {
            provider_type.is_none_or(|t| {
                vc.container_provider.get("type").and_then(Value::as_str) == Some(t)
            })
        })
        .filter(|vc| {
            states
                .as_ref()
                .is_none_or(|s| s.contains(&wire_name(&vc.state)))
        })
        .filter(|vc| access_entry.is_none_or(|a| vc.eks_access_entry_integrated == a));
    Ok(params.newest_first("virtualClusters", matching, |vc| {
        vc.to_wire(st.counts(&vc.id))
    }))
}

/// UpdateVirtualCluster edits only `schedulerConfiguration`: absent leaves it unchanged,
/// `{}` clears it, anything else replaces it whole (reference §6.2).
pub async fn update(emr: &Emr, req: &Req) -> Result<Value, AwsError> {
    check(req, &ID_LABEL, Some(&shapes::UPDATE_VIRTUAL_CLUSTER))?;
    let id = req.label(0);
    execute_once(emr, req, Op::UpdateVirtualCluster, &[id], |st, batch| {
        let mut vc = get(st, id)?.clone();
        require_running(&vc, "update resource VirtualCluster")?;
        if let Some(s) = req
            .body
            .get("schedulerConfiguration")
            .filter(|v| !v.is_null())
        {
            vc.scheduler_configuration = scheduler(Some(s));
        }
        let response = json!({"virtualCluster": vc.to_wire(st.counts(id))});
        st.put_vc(vc, batch).map_err(store_error)?;
        Ok((response, None))
    })
    .await
}

/// DeleteVirtualCluster answers once the cluster is durably TERMINATING; a background
/// step then cancels its runs and marks it TERMINATED (see `emr::finish_termination`).
/// Deleting a cluster that is already terminating or terminated succeeds and changes
/// nothing.
pub async fn delete(emr: &Emr, req: &Req) -> Result<Value, AwsError> {
    check(req, &ID_LABEL, None)?;
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
