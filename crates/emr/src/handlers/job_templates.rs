//! CreateJobTemplate, DescribeJobTemplate, ListJobTemplates, DeleteJobTemplate.
//! (There is no UpdateJobTemplate in the API.)

use serde_json::{json, Value};
use sparkyard_aws::AwsError;
use sparkyard_store::Batch;

use super::listing::ListParams;
use super::{check, describe_record, execute_once, query, tags_of, Req, ID_LABEL};
use crate::emr::{store_error, Outcome};
use crate::records::JobTemplateRecord;
use crate::routes::Op;
use crate::state::State;
use crate::{ids, shapes, time, Emr};

pub fn not_found(id: &str) -> AwsError {
    AwsError::not_found(format!("Job template {id} doesn't exist."))
}

pub(crate) fn get<'s>(st: &'s State, id: &str) -> Result<&'s JobTemplateRecord, AwsError> {
    st.templates.get(id).ok_or_else(|| not_found(id))
}

pub async fn create(emr: &Emr, req: &Req) -> Result<Value, AwsError> {
    check(req, &[], Some(&shapes::CREATE_JOB_TEMPLATE))?;
    execute_once(emr, req, Op::CreateJobTemplate, &[], |st, batch| {
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
        st.put_template(record, batch).map_err(store_error)?;
        Ok((response, None))
    })
    .await
}

pub fn describe(emr: &Emr, req: &Req) -> Result<Value, AwsError> {
    describe_record(emr, req, &ID_LABEL, "jobTemplate", |st| {
        get(st, req.label(0)).map(JobTemplateRecord::to_wire)
    })
}

pub fn list(emr: &Emr, req: &Req) -> Result<Value, AwsError> {
    let doc = query(req, &shapes::LIST_CREATED)?;
    let params = ListParams::from(&doc)?;
    let st = emr.lock();
    Ok(params.newest_first(
        "templates",
        st.templates.values(),
        JobTemplateRecord::to_wire,
    ))
}

/// Deleting removes the template; runs started from it keep their resolved values.
pub async fn delete(emr: &Emr, req: &Req) -> Result<Value, AwsError> {
    check(req, &ID_LABEL, None)?;
    let id = req.label(0).to_string();
    emr.execute(|st| {
        get(st, &id)?;
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
