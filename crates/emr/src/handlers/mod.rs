//! One module per resource. Handlers translate the wire (labels, query, body) into checks
//! and changes on the model's [`State`], through [`Emr::execute`].

pub mod endpoints;
pub mod job_runs;
pub mod job_templates;
pub mod security_configurations;
pub mod tags;
pub mod virtual_clusters;

use serde_json::{Map, Value};
use sparkyard_aws::AwsError;
use sparkyard_store::Batch;

use crate::emr::store_error;
use crate::idempotency::{self, TokenRecord};
use crate::pagination;
use crate::records::{Submitter, Tags};
use crate::routes::{query_document, Op};
use crate::state::State;
use crate::time::{self, Timestamp};
use crate::validate::{Problems, Shape};
use crate::Emr;

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
    }
}

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

/// Idempotency: `Ok(Some(response))` to replay, `Ok(None)` for a new request.
pub(crate) fn replay(
    st: &State,
    op: Op,
    token: &str,
    fingerprint: &str,
) -> Result<Option<Value>, AwsError> {
    match st.tokens.get(&idempotency::key(op.name(), token)) {
        Some(t) if t.fingerprint == fingerprint => Ok(Some(t.response.clone())),
        Some(_) => Err(idempotency::mismatch(op.name(), token)),
        None => Ok(None),
    }
}

/// Records the token with the response, in the same batch as the change.
pub(crate) fn remember(
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

/// Common list parameters.
pub(crate) struct ListParams {
    pub created_after: Option<Timestamp>,
    pub created_before: Option<Timestamp>,
    pub size: usize,
    /// Decoded `nextToken`: the key of the last item already returned.
    pub after: Option<String>,
}

impl ListParams {
    pub fn from(doc: &Value) -> Result<Self, AwsError> {
        Ok(Self {
            created_after: doc.get("createdAfter").and_then(time::parse_timestamp),
            created_before: doc.get("createdBefore").and_then(time::parse_timestamp),
            size: pagination::page_size(doc.get("maxResults").and_then(Value::as_i64))?,
            after: doc
                .get("nextToken")
                .and_then(Value::as_str)
                .map(pagination::decode_token)
                .transpose()?,
        })
    }

    /// `createdAfter`/`createdBefore` are inclusive bounds.
    pub fn created_ok(&self, t: &Timestamp) -> bool {
        self.created_after.is_none_or(|a| *t >= a) && self.created_before.is_none_or(|b| *t <= b)
    }

    /// Pages `items` (any order) newest first by their keys.
    pub fn page<T>(&self, mut items: Vec<(String, T)>) -> (Vec<T>, Option<String>) {
        items.sort_by(|a, b| b.0.cmp(&a.0));
        let after = self.after.clone();
        let iter = items
            .into_iter()
            .filter(move |(k, _)| after.as_ref().is_none_or(|a| k < a));
        pagination::page(iter, self.size)
    }
}

pub(crate) fn str_list(doc: &Value, key: &str) -> Option<Vec<String>> {
    doc.get(key)?.as_array().map(|a| {
        a.iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect()
    })
}

/// `{"<key>": [items], "nextToken": …}` with the token omitted on the last page.
pub(crate) fn list_response(key: &str, items: Vec<Value>, next: Option<String>) -> Value {
    let mut m = Map::new();
    m.insert(key.into(), Value::Array(items));
    if let Some(t) = next {
        m.insert("nextToken".into(), Value::String(t));
    }
    Value::Object(m)
}
