//! CreateManagedEndpoint, DescribeManagedEndpoint, ListManagedEndpoints,
//! DeleteManagedEndpoint, GetManagedEndpointSessionCredentials.
//!
//! sparkyard cannot run managed endpoints (Jupyter Enterprise Gateway) yet. Rather than
//! pretend, a created endpoint is stored with its full shape, answered as CREATING, and
//! then moved by a background step to TERMINATED_WITH_ERRORS with `failureReason`
//! INTERNAL_ERROR and a `stateDetails` saying why. It never becomes ACTIVE, so session
//! credentials are refused with a clear ValidationException.

use serde_json::{json, Value};
use sparkyard_aws::AwsError;
use sparkyard_store::Batch;

use super::listing::{str_list, ListParams};
use super::virtual_clusters;
use super::{
    check, describe_record, execute_once, query, tags_of, Req, VC_AND_ID_LABELS, VC_LABEL,
};
use crate::emr::{store_error, After, Outcome};
use crate::records::{wire_name, EndpointRecord, EndpointState};
use crate::routes::Op;
use crate::state::State;
use crate::{ids, shapes, time, Emr};

pub fn not_found(id: &str) -> AwsError {
    AwsError::not_found(format!("Endpoint {id} doesn't exist."))
}

fn get<'s>(st: &'s State, vc: &str, id: &str) -> Result<&'s EndpointRecord, AwsError> {
    st.endpoints
        .get(id)
        .filter(|e| e.virtual_cluster_id == vc)
        .ok_or_else(|| not_found(id))
}

pub async fn create(emr: &Emr, req: &Req) -> Result<Value, AwsError> {
    check(req, &VC_LABEL, Some(&shapes::CREATE_MANAGED_ENDPOINT))?;
    let vc_id = req.label(0);
    execute_once(emr, req, Op::CreateManagedEndpoint, &[vc_id], |st, batch| {
        let vc = virtual_clusters::get(st, vc_id)?;
        virtual_clusters::require_running(vc, "create resource Endpoint")?;
        let label = req.str("releaseLabel").unwrap_or_default();
        if !emr.inner.releases.accepts(label) {
            return Err(AwsError::not_found(format!(
                "Release {label} doesn't exist."
            )));
        }
        let id = ids::endpoint_id();
        let record = EndpointRecord {
            arn: emr.inner.arns.endpoint(vc_id, &id),
            id: id.clone(),
            name: req.str("name").unwrap_or_default().into(),
            virtual_cluster_id: vc_id.into(),
            endpoint_type: req.str("type").unwrap_or_default().into(),
            state: EndpointState::Creating,
            release_label: label.into(),
            execution_role_arn: req.str("executionRoleArn").unwrap_or_default().into(),
            certificate_arn: req.str("certificateArn").map(str::to_string),
            configuration_overrides: req
                .body
                .get("configurationOverrides")
                .filter(|v| !v.is_null())
                .cloned(),
            session_idle_timeout_in_minutes: req
                .body
                .get("sessionIdleTimeoutInMinutes")
                .and_then(Value::as_i64),
            created_at: time::now(),
            created_by: req.caller.arn.clone(),
            state_details: None,
            failure_reason: None,
            tags: tags_of(&req.body, "tags"),
        };
        let response =
            json!({"id": id, "name": record.name, "arn": record.arn, "virtualClusterId": vc_id});
        st.put_endpoint(record, batch).map_err(store_error)?;
        Ok((response, Some(After::FailEndpoint(id))))
    })
    .await
}

pub fn describe(emr: &Emr, req: &Req) -> Result<Value, AwsError> {
    describe_record(emr, req, &VC_AND_ID_LABELS, "endpoint", |st| {
        get(st, req.label(0), req.label(1)).map(EndpointRecord::to_wire)
    })
}

pub fn list(emr: &Emr, req: &Req) -> Result<Value, AwsError> {
    check(req, &VC_LABEL, None)?;
    let doc = query(req, &shapes::LIST_MANAGED_ENDPOINTS)?;
    let params = ListParams::from(&doc)?;
    let types = str_list(&doc, "types");
    let states = str_list(&doc, "states");
    let vc = req.label(0);
    let st = emr.lock();
    let matching = st
        .endpoints
        .values()
        .filter(|e| e.virtual_cluster_id == vc)
        .filter(|e| types.as_ref().is_none_or(|t| t.contains(&e.endpoint_type)))
        .filter(|e| {
            states
                .as_ref()
                .is_none_or(|s| s.contains(&wire_name(&e.state)))
        });
    Ok(params.newest_first("endpoints", matching, EndpointRecord::to_wire))
}

/// Deleting moves the endpoint to TERMINATED (there is nothing running to tear down);
/// deleting a terminated endpoint succeeds and changes nothing.
pub async fn delete(emr: &Emr, req: &Req) -> Result<Value, AwsError> {
    check(req, &VC_AND_ID_LABELS, None)?;
    let (vc_id, id) = (req.label(0).to_string(), req.label(1).to_string());
    emr.execute(|st| {
        let mut e = get(st, &vc_id, &id)?.clone();
        let response = json!({"id": id, "virtualClusterId": vc_id});
        if e.state == EndpointState::Terminated {
            return Ok(Outcome::Read(response));
        }
        e.state = EndpointState::Terminated;
        let mut batch = Batch::new();
        st.put_endpoint(e, &mut batch).map_err(store_error)?;
        Ok(Outcome::Write {
            response,
            batch,
            after: None,
        })
    })
    .await
}

pub fn credentials(emr: &Emr, req: &Req) -> Result<Value, AwsError> {
    check(
        req,
        &[
            ("virtualClusterIdentifier", &shapes::STRING2048),
            ("endpointIdentifier", &shapes::STRING2048),
        ],
        Some(&shapes::GET_SESSION_CREDENTIALS),
    )?;
    if let Some(d) = req.body.get("durationInSeconds").and_then(Value::as_i64) {
        if !(1..=43_200).contains(&d) {
            return Err(AwsError::validation(format!(
                "durationInSeconds {d} is invalid: it must be between 1 and 43200 (12 hours)."
            )));
        }
    }
    let st = emr.lock();
    let (vc_id, id) = (req.label(0), req.label(1));
    virtual_clusters::get(&st, vc_id)?;
    let e = get(&st, vc_id, id)?;
    // Only ACTIVE endpoints have a gateway to authenticate against, and sparkyard never
    // starts one (see the module comment).
    Err(AwsError::validation(format!(
        "Endpoint {id} is in state {}; session credentials are only issued for ACTIVE endpoints. {}",
        wire_name(&e.state),
        e.state_details.as_deref().unwrap_or("")
    )
    .trim_end()
    .to_string()))
}
