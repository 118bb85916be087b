//! CreateJobTemplate, DescribeJobTemplate, ListJobTemplates, DeleteJobTemplate.
//! (There is no UpdateJobTemplate in the API.)

use serde_json::{json, Value};
use sparkyard_aws::AwsError;
use sparkyard_store::Batch;

use super::{check, list_response, query, remember, replay, tags_of, ListParams, Req};
use crate::emr::{store_error, Outcome};
use crate::idempotency::fingerprint;
use crate::pagination::created_key;
use crate::records::JobTemplateRecord;
use crate::routes::Op;
use crate::{ids, shapes, time, Emr};

pub fn not_found(id: &str) -> AwsError {
    AwsError::not_found(format!("Job template {id} doesn't exist."))
}

pub async fn create(emr: &Emr, req: &Req) -> Result<Value, AwsError> {
    check(req, &[], Some(&shapes::CREATE_JOB_TEMPLATE))?;
    let fp = fingerprint(&[], &req.body);
    let token = req.client_token().to_string();
    emr.execute(|st| {
        if let Some(r) = replay(st, Op::CreateJobTemplate, &token, &fp)? {
            return Ok(Outcome::Read(r));
        }
        let id = ids::job_template_id();
        let record = JobTemplateRecord {
            arn: emr.inner.arns.job_template(&id),
            id,
            name: req.str("name").unwrap_or_default().into(),
            created_at: time::now(),
            created_by: req.caller.arn.clone(),
            tags: tags_of(&req.body, "tags"),
            job_template_data: req.body["jobTemplateData"].clone(),
            kms_key_arn: req.str("kmsKeyArn").map(str::to_string),
        };
        let response = json!({
            "id": record.id, "name": record.name, "arn": record.arn,
            "createdAt": time::wire(&record.created_at),
        });
        let mut batch = Batch::new();
        st.put_template(record, &mut batch).map_err(store_error)?;
        remember(st, &mut batch, Op::CreateJobTemplate, &token, fp, &response)?;
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
    let t = st
        .templates
        .get(req.label(0))
        .ok_or_else(|| not_found(req.label(0)))?;
    Ok(json!({"jobTemplate": t.to_wire()}))
}

pub fn list(emr: &Emr, req: &Req) -> Result<Value, AwsError> {
    let doc = query(req, &shapes::LIST_CREATED)?;
    let params = ListParams::from(&doc)?;
    let st = emr.lock();
    let items = st
        .templates
        .values()
        .filter(|t| params.created_ok(&t.created_at))
        .map(|t| (created_key(t.created_at.timestamp_millis(), &t.id), t))
        .collect();
    let (page, next) = params.page(items);
    Ok(list_response(
        "templates",
        page.into_iter().map(JobTemplateRecord::to_wire).collect(),
        next,
    ))
}

/// Deleting removes the template; runs started from it keep their resolved values.
pub async fn delete(emr: &Emr, req: &Req) -> Result<Value, AwsError> {
    check(req, &[("id", &shapes::RESOURCE_ID)], None)?;
    let id = req.label(0).to_string();
    emr.execute(|st| {
        if !st.templates.contains_key(&id) {
            return Err(not_found(&id));
        }
        let mut batch = Batch::new();
        st.delete_template(&id, &mut batch);
        Ok(Outcome::Write {
            response: json!({"id": id}),
            batch,
            after: None,
        })
    })
    .await
}
