//! CreateSecurityConfiguration, DescribeSecurityConfiguration, ListSecurityConfigurations,
//! DeleteSecurityConfiguration.

use serde_json::{json, Value};
use sparkyard_aws::AwsError;
use sparkyard_store::Batch;

use super::listing::ListParams;
use super::{check, describe_record, execute_once, query, tags_of, Req, ID_LABEL};
use crate::emr::{store_error, Outcome};
use crate::records::SecurityConfigurationRecord;
use crate::routes::Op;
use crate::state::State;
use crate::{ids, shapes, time, Emr};

pub fn not_found(id: &str) -> AwsError {
    AwsError::not_found(format!("Security configuration {id} doesn't exist."))
}

pub(crate) fn get<'s>(
    st: &'s State,
    id: &str,
) -> Result<&'s SecurityConfigurationRecord, AwsError> {
    st.security_configurations
        .get(id)
        .ok_or_else(|| not_found(id))
}

pub async fn create(emr: &Emr, req: &Req) -> Result<Value, AwsError> {
    check(req, &[], Some(&shapes::CREATE_SECURITY_CONFIGURATION))?;
    execute_once(
        emr,
        req,
        Op::CreateSecurityConfiguration,
        &[],
        |st, batch| {
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
            st.put_security_configuration(record, batch)
                .map_err(store_error)?;
            Ok((response, None))
        },
    )
    .await
}

pub fn describe(emr: &Emr, req: &Req) -> Result<Value, AwsError> {
    describe_record(emr, req, &ID_LABEL, "securityConfiguration", |st| {
        get(st, req.label(0)).map(SecurityConfigurationRecord::to_wire)
    })
}

pub fn list(emr: &Emr, req: &Req) -> Result<Value, AwsError> {
    let doc = query(req, &shapes::LIST_CREATED)?;
    let params = ListParams::from(&doc)?;
    let st = emr.lock();
    Ok(params.newest_first(
        "securityConfigurations",
        st.security_configurations.values(),
        SecurityConfigurationRecord::to_wire,
    ))
}

/// A configuration still named by a virtual cluster that is not TERMINATED cannot be
/// deleted (that cluster's jobs would lose their security settings).
pub async fn delete(emr: &Emr, req: &Req) -> Result<Value, AwsError> {
    check(req, &ID_LABEL, None)?;
    let id = req.label(0).to_string();
    emr.execute(|st| {
        get(st, &id)?;
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
