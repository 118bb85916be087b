//! StartJobRun, DescribeJobRun, ListJobRuns, CancelJobRun.

use serde_json::{json, Value};
use sparkyard_aws::AwsError;
use sparkyard_store::Batch;

use super::listing::{list_response, str_list, ListParams};
use super::{
    check, describe_record, execute_once, query, tags_of, Req, VC_AND_ID_LABELS, VC_LABEL,
};
use super::{job_templates, virtual_clusters};
use crate::config::release_version;
use crate::emr::{store_error, Outcome};
use crate::pagination;
use crate::records::{JobRunRecord, JobRunState};
use crate::routes::Op;
use crate::shapes;
use crate::state::State;
use crate::validate::Problems;
use crate::{ids, templates, time, Emr};

pub fn not_found(id: &str) -> AwsError {
    AwsError::not_found(format!("Job run {id} doesn't exist."))
}

/// The job-run id checks AWS applies before looking anything up.
fn check_run_id(id: &str) -> Result<(), AwsError> {
    if ids::is_job_run_id(id) {
        Ok(())
    } else {
        Err(AwsError::validation("Invalid job run short id"))
    }
}

fn get<'s>(st: &'s State, vc: &str, id: &str) -> Result<&'s JobRunRecord, AwsError> {
    st.runs
        .get(id)
        .filter(|r| r.virtual_cluster_id == vc)
        .ok_or_else(|| not_found(id))
}

/// Semantic checks on an effective (template-resolved) StartJobRun body, after the shape
/// checks: mandatory members, one driver, release allow-list and feature gates.
pub(crate) fn check_effective(
    emr: &Emr,
    body: &Value,
    from_template: bool,
) -> Result<(), AwsError> {
    let mut p = Problems::new();
    if from_template {
        // A template's values were validated only as parametric strings; the resolved
        // values must satisfy the plain StartJobRun shapes.
        p.check(body, &shapes::START_JOB_RUN, "");
    }
    p.check_required(
        body.get("executionRoleArn"),
        &shapes::IAM_ROLE_ARN,
        "executionRoleArn",
    );
    p.check_required(
        body.get("releaseLabel"),
        &shapes::RELEASE_LABEL,
        "releaseLabel",
    );
    p.check_required(body.get("jobDriver"), &shapes::JOB_DRIVER, "jobDriver");
    p.into_result()?;

    let driver = &body["jobDriver"];
    let submit = driver.get("sparkSubmitJobDriver").filter(|v| !v.is_null());
    let sql = driver.get("sparkSqlJobDriver").filter(|v| !v.is_null());
    if submit.is_some() == sql.is_some() {
        return Err(AwsError::validation(
            "Exactly one of sparkSubmitJobDriver or sparkSqlJobDriver must be specified in jobDriver.",
        ));
    }
    let label = body["releaseLabel"].as_str().unwrap_or_default();
    if !emr.inner.releases.accepts(label) {
        return Err(AwsError::not_found(format!(
            "Release {label} doesn't exist."
        )));
    }
    if sql.is_some() && release_version(label).is_some_and(|v| v < (6, 7, 0)) {
        return Err(AwsError::validation(format!(
            "The sparkSqlJobDriver requires release emr-6.7.0 or later; {label} does not support it."
        )));
    }
    // Logs are shipped to S3 only; any other scheme would silently lose them.
    if let Some(uri) = body
        .pointer("/configurationOverrides/monitoringConfiguration/s3MonitoringConfiguration/logUri")
        .and_then(Value::as_str)
    {
        if !uri.starts_with("s3://") || uri.len() <= "s3://".len() {
            return Err(AwsError::validation(format!(
                "configurationOverrides.monitoringConfiguration.s3MonitoringConfiguration.logUri failed to satisfy constraint : {uri} is not a valid S3 URI. It must start with s3://"
            )));
        }
    }
    if let Some(n) = body
        .pointer("/retryPolicyConfiguration/maxAttempts")
        .and_then(Value::as_i64)
    {
        if n < 1 {
            return Err(AwsError::validation(
                "Retry policy configuration's parameter value of maxAttempts is invalid",
            ));
        }
    }
    Ok(())
}

pub async fn start(emr: &Emr, req: &Req) -> Result<Value, AwsError> {
    check(req, &VC_LABEL, Some(&shapes::START_JOB_RUN))?;
    let vc_id = req.label(0);
    let token = req.client_token();
    let started = execute_once(emr, req, Op::StartJobRun, &[vc_id], |st, batch| {
        let vc = virtual_clusters::get(st, vc_id)?.clone();
        virtual_clusters::require_running(&vc, "create resource JobRun")?;
        let template_id = req.str("jobTemplateId").map(str::to_string);
        let effective = match &template_id {
            Some(tid) => {
                let t = job_templates::get(st, tid)?;
                let resolved = templates::resolve(
                    tid,
                    &t.job_template_data,
                    req.body.get("jobTemplateParameters").and_then(Value::as_object),
                )?;
                templates::merge(&resolved, &req.body)
            }
            None => req.body.clone(),
        };
        check_effective(emr, &effective, template_id.is_some())?;
        if let Some(max) = vc.max_in_queue() {
            if st.counts(vc_id).in_queue >= max {
                return Err(AwsError::validation(format!(
                    "Virtual cluster {vc_id} has reached its limit of {max} queued job runs (maxInQueueJobRuns). Retry after some job runs have started."
                )));
            }
        }
        let now = time::now();
        let id = emr.inner.run_ids.next(now.timestamp_millis().max(0) as u64);
        let record = JobRunRecord {
            arn: emr.inner.arns.job_run(vc_id, &id),
            id: id.clone(),
            virtual_cluster_id: vc_id.into(),
            name: effective.get("name").and_then(Value::as_str).map(str::to_string),
            state: JobRunState::Pending,
            client_token: token.into(),
            execution_role_arn: effective["executionRoleArn"].as_str().unwrap_or_default().into(),
            release_label: effective["releaseLabel"].as_str().unwrap_or_default().into(),
            configuration_overrides: effective.get("configurationOverrides").filter(|v| !v.is_null()).cloned(),
            job_driver: effective["jobDriver"].clone(),
            created_at: now,
            created_by: req.caller.arn.clone(),
            finished_at: None,
            state_details: None,
            failure_reason: None,
            tags: tags_of(&effective, "tags"),
            retry_policy_configuration: effective.get("retryPolicyConfiguration").filter(|v| !v.is_null()).cloned(),
            attempt_count: 1,
            cluster_id: vc.cluster_id.clone(),
            namespace: vc.namespace.clone(),
            submitter: req.caller.clone(),
            job_template_id: template_id,
            job_template_parameters: req.body.get("jobTemplateParameters").cloned(),
            updated_at: now,
            cost: None,
        };
        let mut response = serde_json::Map::new();
        response.insert("id".into(), json!(id));
        if let Some(n) = &record.name {
            response.insert("name".into(), json!(n));
        }
        response.insert("arn".into(), json!(record.arn));
        response.insert("virtualClusterId".into(), json!(vc_id));
        let response = Value::Object(response);
        st.put_run(record, batch).map_err(store_error)?;
        Ok((response, None))
    })
    .await;
    if started.is_ok() {
        emr.inner.runs_requested.send_modify(|n| *n += 1);
    }
    started
}

pub fn describe(emr: &Emr, req: &Req) -> Result<Value, AwsError> {
    describe_record(emr, req, &VC_AND_ID_LABELS, "jobRun", |st| {
        check_run_id(req.label(1))?;
        get(st, req.label(0), req.label(1)).map(JobRunRecord::to_wire)
    })
}

/// Newest first (ids are time-ordered); `name` is an exact match. An unknown virtual
/// cluster has no runs (the model lists no ResourceNotFoundException here).
pub fn list(emr: &Emr, req: &Req) -> Result<Value, AwsError> {
    list_as(emr, req, "jobRuns", JobRunRecord::to_wire)
}

/// GetJobRunCost: the run's cost record with every pod (docs/cost.md).
pub fn cost(emr: &Emr, req: &Req) -> Result<Value, AwsError> {
    describe_record(emr, req, &VC_AND_ID_LABELS, "jobRunCost", |st| {
        check_run_id(req.label(1))?;
        get(st, req.label(0), req.label(1)).map(|r| cost_of(r, true))
    })
}

/// ListJobRunCosts: ListJobRuns' paging and filters, each run's totals without its pods.
pub fn list_costs(emr: &Emr, req: &Req) -> Result<Value, AwsError> {
    list_as(emr, req, "jobRunCosts", |r| cost_of(r, false))
}

/// A run's identity and its cost record (absent until the run has ended).
fn cost_of(run: &JobRunRecord, with_pods: bool) -> Value {
    let mut out = json!({
        "id": run.id, "virtualClusterId": run.virtual_cluster_id, "state": run.state.as_str(),
        "createdAt": time::wire(&run.created_at), "tags": run.tags,
    });
    if let Some(name) = &run.name {
        out["name"] = json!(name);
    }
    if let Some(finished) = &run.finished_at {
        out["finishedAt"] = json!(time::wire(finished));
    }
    if let Some(cost) = &run.cost {
        let mut cost = serde_json::to_value(cost).unwrap_or_default();
        if !with_pods {
            if let Some(c) = cost.as_object_mut() {
                c.remove("pods");
            }
        }
        out["cost"] = cost;
    }
    out
}

fn list_as(
    emr: &Emr,
    req: &Req,
    key: &str,
    render: impl Fn(&JobRunRecord) -> Value,
) -> Result<Value, AwsError> {
    check(req, &VC_LABEL, None)?;
    let doc = query(req, &shapes::LIST_JOB_RUNS)?;
    let params = ListParams::from(&doc)?;
    let name = doc.get("name").and_then(Value::as_str);
    let states: Option<Vec<JobRunState>> =
        str_list(&doc, "states").map(|l| l.iter().filter_map(|s| JobRunState::parse(s)).collect());
    let st = emr.lock();
    let Some(ids) = st.runs_by_vc.get(req.label(0)) else {
        return Ok(list_response(key, Vec::new(), None));
    };
    let upper = params.after.clone();
    let range = match &upper {
        Some(after) => ids.range::<String, _>(..after.clone()),
        None => ids.range::<String, _>(..),
    };
    let iter = range
        .rev()
        .filter_map(|id| st.runs.get(id))
        .filter(|r| params.created_ok(&r.created_at))
        .filter(|r| name.is_none_or(|n| r.name.as_deref() == Some(n)))
        .filter(|r| states.as_ref().is_none_or(|s| s.contains(&r.state)))
        .map(|r| (r.id.clone(), render(r)));
    let (items, next) = pagination::page(iter, params.size);
    Ok(list_response(key, items, next))
}

/// CancelJobRun: a PENDING run (never handed to Kubernetes) is CANCELLED at once;
/// SUBMITTED and RUNNING runs become CANCEL_PENDING until the controller has stopped
/// them. Other states are not cancellable.
pub async fn cancel(emr: &Emr, req: &Req) -> Result<Value, AwsError> {
    check(req, &VC_AND_ID_LABELS, None)?;
    check_run_id(req.label(1))?;
    let (vc_id, id) = (req.label(0).to_string(), req.label(1).to_string());
    let cancelled = emr
        .execute(|st| {
            let mut run = get(st, &vc_id, &id)?.clone();
            let now = time::now();
            match run.state {
                JobRunState::Pending => {
                    run.state = JobRunState::Cancelled;
                    run.finished_at = Some(now);
                    run.state_details = Some("JobRun CANCELLED successfully.".into());
                }
                JobRunState::Submitted | JobRunState::Running => {
                    run.state = JobRunState::CancelPending
                }
                _ => {
                    return Err(AwsError::validation(format!(
                        "Job run {id} is not in a cancellable state"
                    )))
                }
            }
            run.updated_at = now;
            let mut batch = Batch::new();
            st.put_run(run, &mut batch).map_err(store_error)?;
            Ok(Outcome::Write {
                response: json!({"id": id, "virtualClusterId": vc_id}),
                batch,
                after: None,
            })
        })
        .await;
    if cancelled.is_ok() {
        emr.inner.runs_requested.send_modify(|n| *n += 1);
    }
    cancelled
}
