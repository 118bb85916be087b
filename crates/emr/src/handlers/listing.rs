//! The List operations' common parameters and response, and the one listing order most
//! resources share: newest first by creation time (see [`crate::pagination`]).

use serde_json::{Map, Value};
use sparkyard_aws::AwsError;

use crate::pagination::{self, created_key};
use crate::records::{
    EndpointRecord, JobTemplateRecord, SecurityConfigurationRecord, VirtualClusterRecord,
};
use crate::time::{self, Timestamp};

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

    /// The list response `{"<key>": [...], "nextToken": …}` for one page of `records`
    /// (already narrowed by the operation's own filters), newest first: records outside
    /// the `createdAfter`/`createdBefore` bounds are dropped and each one on the page is
    /// rendered by `wire`.
    pub fn newest_first<'r, R: Created + 'r>(
        &self,
        key: &str,
        records: impl Iterator<Item = &'r R>,
        wire: impl Fn(&R) -> Value,
    ) -> Value {
        let items = records
            .filter(|r| self.created_ok(r.created_at()))
            .map(|r| (created_key(r.created_at().timestamp_millis(), r.id()), r))
            .collect();
        let (page, next) = self.page(items);
        list_response(key, page.into_iter().map(wire).collect(), next)
    }

    /// Pages `items` (any order) newest first by their keys.
    fn page<T>(&self, mut items: Vec<(String, T)>) -> (Vec<T>, Option<String>) {
        items.sort_by(|a, b| b.0.cmp(&a.0));
        let after = self.after.clone();
        let iter = items
            .into_iter()
            .filter(move |(k, _)| after.as_ref().is_none_or(|a| k < a));
        pagination::page(iter, self.size)
    }
}

/// A record listed by [`ListParams::newest_first`]: its sort key is its creation time,
/// then its id.
pub(crate) trait Created {
    fn id(&self) -> &str;
    fn created_at(&self) -> &Timestamp;
}

/// The records listed newest first all name these fields alike.
macro_rules! created {
    ($($record:ty),+) => {$(
        impl Created for $record {
            fn id(&self) -> &str {
                &self.id
            }
            fn created_at(&self) -> &Timestamp {
                &self.created_at
            }
        }
    )+};
}

created!(
    VirtualClusterRecord,
    EndpointRecord,
    JobTemplateRecord,
    SecurityConfigurationRecord
);

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
