//! CreateSecurityConfiguration, DescribeSecurityConfiguration, ListSecurityConfigurations,
//! DeleteSecurityConfiguration.

use serde_json::{json, Value};
use sparkyard_aws::AwsError;
use sparkyard_store::Batch;

use super::{check, list_response, query, remember, replay, tags_of, ListParams, Req};
use crate::emr::{store_error, Outcome};
use crate::idempotency::fingerprint;
use crate::pagination::created_key;
use crate::records::SecurityConfigurationRecord;
use crate::routes::Op;
use crate::{ids, shapes, time, Emr};

pub fn not_found(id: &str) -> AwsError {
    AwsError::not_found(format!("Security configuration {id} doesn't exist."))
}

pub async fn create(emr: &Emr, req: &Req) -> Result<Value, AwsError> {
    check(req, &[], Some(&shapes::CREATE_SECURITY_CONFIGURATION))?;
    let fp = fingerprint(&[], &req.body);
    let token = req.client_token().to_string();
    emr.execute(|st| {
        if let Some(r) = replay(st, Op::CreateSecurityConfiguration, &token, &fp)? {
            return Ok(Outcome::Read(r));
        }
        let id = ids::security_configuration_id();
        let record = SecurityConfigurationRecord {
            arn: emr.inner.arns.security_configuration(&id),
            id,
            name: req.str("name").unwrap_or_default().into(),
            created_at: time::now(),
            created_by: req.caller.arn.clone(),
            container_provider: req
                .body
                .get("containerProvider")
                .filter(|v| !v.is_null())
                .cloned(),
            security_configuration_data: req.body["securityConfigurationData"].clone(),
            tags: tags_of(&req.body, "tags"),
        };
        let response = json!({"id": record.id, "name": record.name, "arn": record.arn});
        let mut batch = Batch::new();
        st.put_security_configuration(record, &mut batch)
            .map_err(store_error)?;
        remember(
            st,
            &mut batch,
            Op::CreateSecurityConfiguration,
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
    let c = st
        .security_configurations
        .get(req.label(0))
        .ok_or_else(|| not_found(req.label(0)))?;
    Ok(json!({"securityConfiguration": c.to_wire()}))
}

pub fn list(emr: &Emr, req: &Req) -> Result<Value, AwsError> {
    let doc = query(req, &shapes::LIST_CREATED)?;
    let params = ListParams::from(&doc)?;
    let st = emr.lock();
    let items = st
        .security_configurations
        .values()
        .filter(|c| params.created_ok(&c.created_at))
        .map(|c| (created_key(c.created_at.timestamp_millis(), &c.id), c))
        .collect();
    let (page, next) = params.page(items);
    Ok(list_response(
        "securityConfigurations",
        page.into_iter()
            .map(SecurityConfigurationRecord::to_wire)
            .collect(),
        next,
    ))
}

/// A configuration still named by a virtual cluster that is not TERMINATED cannot be
/// deleted (that cluster's jobs would lose their security settings).
pub async fn delete(emr: &Emr, req: &Req) -> Result<Value, AwsError> {
    check(req, &[("id", &shapes::RESOURCE_ID)], None)?;
    let id = req.label(0).to_string();
    emr.execute(|st| {
        if !st.security_configurations.contains_key(&id) {
            return Err(not_found(&id));
        }
        if let Some(vc) = st.vcs.values().find(|vc| {
            vc.security_configuration_id.as_deref() == Some(id.as_str())
                && vc.state != crate::records::VirtualClusterState::Terminated
        }) {
            return Err(AwsError::validation(format!(
                "Security configuration {id} is in use by virtual cluster {}.",
                vc.id
            )));
        }
        let mut batch = Batch::new();
        st.delete_security_configuration(&id, &mut batch);
        Ok(Outcome::Write {
            response: json!({"id": id}),
            batch,
            after: None,
        })
    })
    .await
}
