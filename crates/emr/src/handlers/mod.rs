//! One module per resource. Handlers translate the wire (labels, query, body) into checks
//! and changes on the model's [`State`], through [`Emr::execute`].

pub mod endpoints;
pub mod job_runs;
pub mod job_templates;
mod listing;
pub mod security_configurations;
pub mod tags;
pub mod virtual_clusters;

use serde_json::{json, Value};
use sparkyard_aws::AwsError;
use sparkyard_store::Batch;

use crate::emr::{store_error, After, Outcome};
use crate::idempotency::{self, fingerprint, TokenRecord};
use crate::records::{Submitter, Tags};
use crate::routes::{query_document, Op};
use crate::state::State;
use crate::validate::{Problems, Shape};
use crate::Emr;
use crate::{shapes, time};

/// A matched, decoded request.
pub struct Req {
    pub op: Op,
    /// Decoded URI labels in path order.
    pub labels: Vec<String>,
    pub query: Vec<(String, String)>,
    /// The JSON body (`{}` for operations without one).
    pub body: Value,
    pub caller: Submitter,
}

impl Req {
    pub fn label(&self, i: usize) -> &str {
        self.labels.get(i).map(String::as_str).unwrap_or_default()
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.body.get(key).and_then(Value::as_str)
    }

    pub fn client_token(&self) -> &str {
        self.str("clientToken").unwrap_or_default()
    }
}

pub(crate) async fn dispatch(emr: &Emr, req: &Req) -> Result<Value, AwsError> {
    use Op::*;
    match req.op {
        CreateVirtualCluster => virtual_clusters::create(emr, req).await,
        DescribeVirtualCluster => virtual_clusters::describe(emr, req),
        ListVirtualClusters => virtual_clusters::list(emr, req),
        UpdateVirtualCluster => virtual_clusters::update(emr, req).await,
        DeleteVirtualCluster => virtual_clusters::delete(emr, req).await,
        StartJobRun => job_runs::start(emr, req).await,
        DescribeJobRun => job_runs::describe(emr, req),
        ListJobRuns => job_runs::list(emr, req),
        CancelJobRun => job_runs::cancel(emr, req).await,
        CreateJobTemplate => job_templates::create(emr, req).await,
        DescribeJobTemplate => job_templates::describe(emr, req),
        ListJobTemplates => job_templates::list(emr, req),
        DeleteJobTemplate => job_templates::delete(emr, req).await,
        CreateManagedEndpoint => endpoints::create(emr, req).await,
        DescribeManagedEndpoint => endpoints::describe(emr, req),
        ListManagedEndpoints => endpoints::list(emr, req),
        DeleteManagedEndpoint => endpoints::delete(emr, req).await,
        GetManagedEndpointSessionCredentials => endpoints::credentials(emr, req),
        CreateSecurityConfiguration => security_configurations::create(emr, req).await,
        DescribeSecurityConfiguration => security_configurations::describe(emr, req),
        ListSecurityConfigurations => security_configurations::list(emr, req),
        DeleteSecurityConfiguration => security_configurations::delete(emr, req).await,
        TagResource => tags::tag(emr, req).await,
        UntagResource => tags::untag(emr, req).await,
        ListTagsForResource => tags::list(emr, req),
        GetJobRunCost => job_runs::cost(emr, req),
        ListJobRunCosts => job_runs::list_costs(emr, req),
    }
}

// The URI labels most operations take, for `check` and `describe_record`.
/// A resource named by its id alone.
pub(crate) static ID_LABEL: [(&str, &Shape); 1] = [("id", &shapes::RESOURCE_ID)];
/// A virtual cluster's collection (its job runs, its endpoints).
pub(crate) static VC_LABEL: [(&str, &Shape); 1] = [("virtualClusterId", &shapes::RESOURCE_ID)];
/// A resource inside a virtual cluster.
pub(crate) static VC_AND_ID_LABELS: [(&str, &Shape); 2] = [
    ("virtualClusterId", &shapes::RESOURCE_ID),
    ("id", &shapes::RESOURCE_ID),
];

/// Validates URI labels (`(member name, shape)` in path order) and, if given, the body,
/// reporting every problem in one message as AWS does.
pub(crate) fn check(
    req: &Req,
    labels: &[(&str, &Shape)],
    body: Option<&Shape>,
) -> Result<(), AwsError> {
    let mut p = Problems::new();
    for (i, (name, shape)) in labels.iter().enumerate() {
        p.check_required(
            req.labels.get(i).map(|s| Value::String(s.clone())).as_ref(),
            shape,
            name,
        );
    }
    if let Some(shape) = body {
        p.check(&req.body, shape, "");
    }
    p.into_result()
}

/// Validates and returns the query as a document shaped by `shape`.
pub(crate) fn query(req: &Req, shape: &Shape) -> Result<Value, AwsError> {
    let doc = query_document(&req.query, shape)?;
    let mut p = Problems::new();
    p.check(&doc, shape, "");
    p.into_result()?;
    Ok(doc)
}

/// Answers a Describe call: checks the URI labels (`(member name, shape)` in path order),
/// then wraps under `key` what `render` makes of the record it looks up in the state (its
/// not-found error passes through unchanged).
pub(crate) fn describe_record(
    emr: &Emr,
    req: &Req,
    labels: &[(&str, &Shape)],
    key: &str,
    render: impl FnOnce(&State) -> Result<Value, AwsError>,
) -> Result<Value, AwsError> {
    check(req, labels, None)?;
    let st = emr.lock();
    Ok(json!({ key: render(&st)? }))
}

/// Runs a Create/Start/Update call idempotently under its `clientToken`: a retry of the
/// same request (body and URI `labels`) replays the first response, a different request
/// with the token is refused, and a new one makes its change. `change` queues its writes
/// in the batch and returns the response and any follow-up step; the token and response
/// are recorded in the same batch, so they are durable exactly when the change is.
pub(crate) async fn execute_once<F>(
    emr: &Emr,
    req: &Req,
    op: Op,
    labels: &[&str],
    change: F,
) -> Result<Value, AwsError>
where
    F: FnOnce(&mut State, &mut Batch) -> Result<(Value, Option<After>), AwsError>,
{
    let fp = fingerprint(labels, &req.body);
    let token = req.client_token();
    emr.execute(|st| {
        if let Some(r) = replay(st, op, token, &fp)? {
            return Ok(Outcome::Read(r));
        }
        let mut batch = Batch::new();
        let (response, after) = change(st, &mut batch)?;
        remember(st, &mut batch, op, token, fp, &response)?;
        Ok(Outcome::Write {
            response,
            batch,
            after,
        })
    })
    .await
}

/// Idempotency: `Ok(Some(response))` to replay, `Ok(None)` for a new request.
fn replay(st: &State, op: Op, token: &str, fingerprint: &str) -> Result<Option<Value>, AwsError> {
    match st.tokens.get(&idempotency::key(op.name(), token)) {
        Some(t) if t.fingerprint == fingerprint => Ok(Some(t.response.clone())),
        Some(_) => Err(idempotency::mismatch(op.name(), token)),
        None => Ok(None),
    }
}

/// Records the token with the response, in the same batch as the change.
fn remember(
    st: &mut State,
    batch: &mut Batch,
    op: Op,
    token: &str,
    fingerprint: String,
    response: &Value,
) -> Result<(), AwsError> {
    let record = TokenRecord {
        operation: op.name().into(),
        token: token.into(),
        fingerprint,
        response: response.clone(),
        created_at: time::now(),
    };
    st.put_token(record, batch).map_err(store_error)
}

pub(crate) fn tags_of(body: &Value, key: &str) -> Tags {
    body.get(key)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}
