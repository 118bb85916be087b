//! CloudWatch Logs (JSON 1.1, `X-Amz-Target: Logs_20140328.<Operation>`): the log groups
//! and streams EMR on EKS ships job logs to, and the reads `aws logs` and the console make.
//!
//! `aws logs tail --follow` (AWS CLI v2) polls `FilterLogEvents` with a moving `startTime`
//! and skips events whose `eventId` it has already printed; both are served here.

pub mod filter;
pub mod store;
pub mod validate;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use sparkyard_aws::{AwsError, Principal};

use crate::authz::Authorizer;
use crate::db::Db;
use filter::FilterPattern;

/// The `X-Amz-Target` prefix of every operation.
pub const TARGET_PREFIX: &str = "Logs_20140328.";

pub struct Logs {
    db: Db,
    region: String,
    account_id: String,
}

/// The `message` of each event of a `PutLogEvents` body (for Embedded Metric Format
/// extraction, once the call has been accepted).
pub fn event_messages(body: &[u8]) -> Vec<String> {
    let input: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    input["logEvents"]
        .as_array()
        .map(|events| {
            events
                .iter()
                .filter_map(|e| e["message"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn invalid(message: impl Into<String>) -> AwsError {
    AwsError::new(
        StatusCode::BAD_REQUEST,
        "InvalidParameterException",
        message,
    )
}

fn group_not_found() -> AwsError {
    AwsError::new(
        StatusCode::BAD_REQUEST,
        "ResourceNotFoundException",
        "The specified log group does not exist.",
    )
}

fn stream_not_found() -> AwsError {
    AwsError::new(
        StatusCode::BAD_REQUEST,
        "ResourceNotFoundException",
        "The specified log stream does not exist.",
    )
}

fn db_error(e: rusqlite::Error) -> AwsError {
    tracing::error!(error = %e, "logs store failure");
    AwsError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "ServiceUnavailableException",
        "The service cannot complete the request.",
    )
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A JSON 1.1 success response.
fn ok(body: Value) -> Response {
    let mut response = (StatusCode::OK, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    response
}

fn text<'a>(input: &'a Value, field: &str) -> Option<&'a str> {
    input.get(field).and_then(Value::as_str)
}

fn required<'a>(input: &'a Value, field: &str) -> Result<&'a str, AwsError> {
    text(input, field).ok_or_else(|| {
        invalid(format!(
            "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

fn int(input: &Value, field: &str) -> Result<Option<i64>, AwsError> {
    match input.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| invalid(format!("{field} must be an integer"))),
    }
}

fn limit(input: &Value, max: i64) -> Result<usize, AwsError> {
    match int(input, "limit")? {
        None => Ok(max as usize),
        Some(n) if (1..=max).contains(&n) => Ok(n as usize),
        Some(n) => Err(invalid(validate::constraint(
            &n.to_string(),
            "limit",
            &format!("Member must have value less than or equal to {max}"),
        ))),
    }
}

/// `logGroupName`, or `logGroupIdentifier` (a name or an ARN).
fn group_name(input: &Value) -> Result<String, AwsError> {
    if let Some(name) = text(input, "logGroupName") {
        return Ok(name.to_string());
    }
    let id = required(input, "logGroupIdentifier")?;
    match id.strip_prefix("arn:") {
        Some(_) => id
            .split_once(":log-group:")
            .map(|(_, rest)| rest.trim_end_matches(":*").to_string())
            .ok_or_else(|| invalid(format!("Invalid logGroupIdentifier: {id}"))),
        None => Ok(id.to_string()),
    }
}

/// Paging tokens: `f/`/`b/` + 20-digit timestamp + 20-digit id, positions between events.
fn encode_key(direction: char, (ts, id): (i64, i64)) -> String {
    format!("{direction}/{:020}{:020}", ts.max(0), id.max(0))
}

fn decode_key(token: &str) -> Option<(char, (i64, i64))> {
    let (direction, digits) = token.split_once('/')?;
    let direction = match direction {
        "f" => 'f',
        "b" => 'b',
        _ => return None,
    };
    if digits.len() != 40 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((
        direction,
        (digits[..20].parse().ok()?, digits[20..].parse().ok()?),
    ))
}

fn bad_token() -> AwsError {
    invalid("The specified nextToken is invalid.")
}

impl Logs {
    pub fn open(db: Db, region: &str, account_id: &str) -> Self {
        Self {
            db,
            region: region.to_string(),
            account_id: account_id.to_string(),
        }
    }

    fn group_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:logs:{}:{}:log-group:{name}",
            self.region, self.account_id
        )
    }

    fn stream_arn(&self, group: &str, stream: &str) -> String {
        format!("{}:log-stream:{stream}", self.group_arn(group))
    }

    /// Serves one request; `target` is the operation name after `Logs_20140328.`.
    pub async fn handle(
        &self,
        authz: &Authorizer,
        principal: &Principal,
        target: &str,
        body: &[u8],
    ) -> Response {
        let input: Value = if body.is_empty() {
            json!({})
        } else {
            match serde_json::from_slice(body) {
                Ok(v @ Value::Object(_)) => v,
                _ => {
                    return AwsError::new(
                        StatusCode::BAD_REQUEST,
                        "SerializationException",
                        "Could not parse the request body as JSON.",
                    )
                    .into_response()
                }
            }
        };
        match self.dispatch(authz, principal, target, &input).await {
            Ok(body) => ok(body),
            Err(e) => e.into_response(),
        }
    }

    fn authorize(
        &self,
        authz: &Authorizer,
        principal: &Principal,
        op: &str,
        resource: &str,
    ) -> Result<(), AwsError> {
        authz
            .authorize(principal, &format!("logs:{op}"), resource)
            .map_err(|d| {
                AwsError::new(
                    StatusCode::BAD_REQUEST,
                    "AccessDeniedException",
                    d.message(),
                )
            })
    }

    async fn require_group(&self, name: &str) -> Result<store::Group, AwsError> {
        store::get_group(&self.db, name)
            .await
            .map_err(db_error)?
            .ok_or_else(group_not_found)
    }

    async fn dispatch(
        &self,
        authz: &Authorizer,
        principal: &Principal,
        op: &str,
        input: &Value,
    ) -> Result<Value, AwsError> {
        match op {
            "CreateLogGroup" => {
                let name = required(input, "logGroupName")?;
                validate::log_group_name(name).map_err(invalid)?;
                self.authorize(authz, principal, op, &self.group_arn(name))?;
                if !store::create_group(&self.db, name, now_ms())
                    .await
                    .map_err(db_error)?
                {
                    return Err(AwsError::new(
                        StatusCode::BAD_REQUEST,
                        "ResourceAlreadyExistsException",
                        "The specified log group already exists",
                    ));
                }
                Ok(json!({}))
            }
            "DeleteLogGroup" => {
                let name = required(input, "logGroupName")?;
                self.authorize(authz, principal, op, &self.group_arn(name))?;
                if !store::delete_group(&self.db, name)
                    .await
                    .map_err(db_error)?
                {
                    return Err(group_not_found());
                }
                Ok(json!({}))
            }
            "DescribeLogGroups" => self.describe_log_groups(authz, principal, input).await,
            "PutRetentionPolicy" => {
                let name = required(input, "logGroupName")?;
                self.authorize(authz, principal, op, &self.group_arn(name))?;
                let days = int(input, "retentionInDays")?
                    .ok_or_else(|| invalid("retentionInDays is required"))?;
                validate::retention_days(days).map_err(invalid)?;
                if !store::set_retention(&self.db, name, Some(days))
                    .await
                    .map_err(db_error)?
                {
                    return Err(group_not_found());
                }
                Ok(json!({}))
            }
            "DeleteRetentionPolicy" => {
                let name = required(input, "logGroupName")?;
                self.authorize(authz, principal, op, &self.group_arn(name))?;
                if !store::set_retention(&self.db, name, None)
                    .await
                    .map_err(db_error)?
                {
                    return Err(group_not_found());
                }
                Ok(json!({}))
            }
            "CreateLogStream" => {
                let group = required(input, "logGroupName")?;
                let name = required(input, "logStreamName")?;
                validate::log_stream_name(name).map_err(invalid)?;
                self.authorize(authz, principal, op, &self.stream_arn(group, name))?;
                match store::create_stream(&self.db, group, name, now_ms())
                    .await
                    .map_err(db_error)?
                {
                    store::CreateStream::Created => Ok(json!({})),
                    store::CreateStream::NoGroup => Err(group_not_found()),
                    store::CreateStream::Exists => Err(AwsError::new(
                        StatusCode::BAD_REQUEST,
                        "ResourceAlreadyExistsException",
                        "The specified log stream already exists",
                    )),
                }
            }
            "DeleteLogStream" => {
                let group = required(input, "logGroupName")?;
                let name = required(input, "logStreamName")?;
                self.authorize(authz, principal, op, &self.stream_arn(group, name))?;
                self.require_group(group).await?;
                if !store::delete_stream(&self.db, group, name)
                    .await
                    .map_err(db_error)?
                {
                    return Err(stream_not_found());
                }
                Ok(json!({}))
            }
            "DescribeLogStreams" => self.describe_log_streams(authz, principal, input).await,
            "PutLogEvents" => self.put_log_events(authz, principal, input).await,
            "GetLogEvents" => self.get_log_events(authz, principal, input).await,
            "FilterLogEvents" => self.filter_log_events(authz, principal, input).await,
            other => Err(AwsError::new(
                StatusCode::BAD_REQUEST,
                "UnknownOperationException",
                format!("Operation {other} is not supported by sparkyard's CloudWatch Logs."),
            )),
        }
    }

    async fn describe_log_groups(
        &self,
        authz: &Authorizer,
        principal: &Principal,
        input: &Value,
    ) -> Result<Value, AwsError> {
        self.authorize(authz, principal, "DescribeLogGroups", &self.group_arn("*"))?;
        let prefix = text(input, "logGroupNamePrefix").unwrap_or("");
        let pattern = text(input, "logGroupNamePattern").map(str::to_lowercase);
        if pattern.is_some() && !prefix.is_empty() {
            return Err(invalid(
                "LogGroupNamePrefix and LogGroupNamePattern are mutually exclusive parameters.",
            ));
        }
        let limit = limit(input, 50)?;
        let mut after = text(input, "nextToken").map(str::to_string);
        let mut out = Vec::new();
        let mut next = None;
        // A pattern filters after the fact, so keep reading pages until one is full.
        'outer: loop {
            let page = store::list_groups(&self.db, prefix, after.as_deref(), limit)
                .await
                .map_err(db_error)?;
            let exhausted = page.len() <= limit;
            for group in page.into_iter().take(limit) {
                after = Some(group.name.clone());
                if pattern
                    .as_ref()
                    .is_some_and(|p| !group.name.to_lowercase().contains(p.as_str()))
                {
                    continue;
                }
                if out.len() == limit {
                    next = Some(
                        out.last()
                            .map(|g: &store::Group| g.name.clone())
                            .unwrap_or_default(),
                    );
                    break 'outer;
                }
                out.push(group);
            }
            if exhausted {
                break;
            }
        }
        let groups: Vec<Value> = out
            .iter()
            .map(|g| {
                let mut v = json!({
                    "logGroupName": g.name,
                    "creationTime": g.creation_time,
                    "metricFilterCount": 0,
                    "arn": format!("{}:*", self.group_arn(&g.name)),
                    "logGroupArn": self.group_arn(&g.name),
                    "storedBytes": 0,
                    "logGroupClass": "STANDARD",
                });
                if let Some(days) = g.retention_days {
                    v["retentionInDays"] = json!(days);
                }
                v
            })
            .collect();
        let mut body = json!({ "logGroups": groups });
        if let Some(next) = next {
            body["nextToken"] = json!(next);
        }
        Ok(body)
    }

    async fn describe_log_streams(
        &self,
        authz: &Authorizer,
        principal: &Principal,
        input: &Value,
    ) -> Result<Value, AwsError> {
        let group = group_name(input)?;
        self.authorize(
            authz,
            principal,
            "DescribeLogStreams",
            &self.stream_arn(&group, "*"),
        )?;
        self.require_group(&group).await?;
        let prefix = text(input, "logStreamNamePrefix").unwrap_or("");
        let by_time = match text(input, "orderBy") {
            None | Some("LogStreamName") => false,
            Some("LastEventTime") => true,
            Some(other) => {
                return Err(invalid(validate::constraint(
                    other,
                    "orderBy",
                    "Member must satisfy enum value set: [LogStreamName, LastEventTime]",
                )))
            }
        };
        if by_time && !prefix.is_empty() {
            return Err(invalid(
                "Cannot order by LastEventTime with a logStreamNamePrefix.",
            ));
        }
        let descending = input
            .get("descending")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let limit = limit(input, 50)?;
        let mut streams = store::list_streams(&self.db, &group, prefix)
            .await
            .map_err(db_error)?;
        if by_time {
            streams.sort_by_key(|s| (s.last_event.unwrap_or(0), s.name.clone()));
        }
        if descending {
            streams.reverse();
        }
        // The token is an offset into this (stable) ordering.
        let offset = match text(input, "nextToken") {
            None => 0,
            Some(t) => t.parse::<usize>().map_err(|_| bad_token())?,
        };
        let page: Vec<&store::Stream> = streams.iter().skip(offset).take(limit).collect();
        let values: Vec<Value> = page
            .iter()
            .map(|s| {
                let mut v = json!({
                    "logStreamName": s.name,
                    "creationTime": s.creation_time,
                    "arn": self.stream_arn(&group, &s.name),
                    "storedBytes": 0,
                    "uploadSequenceToken": format!("{:056}", s.uploads + 1),
                });
                if let Some(t) = s.first_event {
                    v["firstEventTimestamp"] = json!(t);
                }
                if let Some(t) = s.last_event {
                    v["lastEventTimestamp"] = json!(t);
                }
                if let Some(t) = s.last_ingestion {
                    v["lastIngestionTime"] = json!(t);
                }
                v
            })
            .collect();
        let mut body = json!({ "logStreams": values });
        if offset + page.len() < streams.len() {
            body["nextToken"] = json!((offset + page.len()).to_string());
        }
        Ok(body)
    }

    async fn put_log_events(
        &self,
        authz: &Authorizer,
        principal: &Principal,
        input: &Value,
    ) -> Result<Value, AwsError> {
        let group = required(input, "logGroupName")?;
        let stream = required(input, "logStreamName")?;
        self.authorize(
            authz,
            principal,
            "PutLogEvents",
            &self.stream_arn(group, stream),
        )?;
        let raw = input
            .get("logEvents")
            .and_then(Value::as_array)
            .ok_or_else(|| invalid("1 validation error detected: Value null at 'logEvents' failed to satisfy constraint: Member must not be null"))?;
        let mut events = Vec::with_capacity(raw.len());
        for (i, e) in raw.iter().enumerate() {
            let timestamp = e.get("timestamp").and_then(Value::as_i64).ok_or_else(|| {
                invalid(format!("1 validation error detected: Value null at 'logEvents.{}.member.timestamp' failed to satisfy constraint: Member must not be null", i + 1))
            })?;
            let message = e.get("message").and_then(Value::as_str).unwrap_or("");
            if message.is_empty() {
                return Err(invalid(format!(
                    "1 validation error detected: Value '' at 'logEvents.{}.member.message' failed to satisfy constraint: Member must have length greater than or equal to 1",
                    i + 1
                )));
            }
            events.push((timestamp, message));
        }
        let group_record = self.require_group(group).await?;
        store::get_stream(&self.db, group, stream)
            .await
            .map_err(db_error)?
            .ok_or_else(stream_not_found)?;
        let now = now_ms();
        let sizes: Vec<(i64, usize)> = events.iter().map(|(t, m)| (*t, m.len())).collect();
        let rejected =
            validate::check_batch(&sizes, now, group_record.retention_days).map_err(invalid)?;
        let accepted = &events[rejected.accepted(events.len())];
        let uploads = store::append(&self.db, group, stream, accepted, now)
            .await
            .map_err(db_error)?;
        let mut body = json!({ "nextSequenceToken": format!("{:056}", uploads + 1) });
        if !rejected.is_empty() {
            let mut info = json!({});
            if let Some(i) = rejected.too_old_end {
                info["tooOldLogEventEndIndex"] = json!(i);
            }
            if let Some(i) = rejected.expired_end {
                info["expiredLogEventEndIndex"] = json!(i);
            }
            if let Some(i) = rejected.too_new_start {
                info["tooNewLogEventStartIndex"] = json!(i);
            }
            body["rejectedLogEventsInfo"] = info;
        }
        Ok(body)
    }

    async fn get_log_events(
        &self,
        authz: &Authorizer,
        principal: &Principal,
        input: &Value,
    ) -> Result<Value, AwsError> {
        let group = group_name(input)?;
        let stream = required(input, "logStreamName")?.to_string();
        self.authorize(
            authz,
            principal,
            "GetLogEvents",
            &self.stream_arn(&group, &stream),
        )?;
        self.require_group(&group).await?;
        store::get_stream(&self.db, &group, &stream)
            .await
            .map_err(db_error)?
            .ok_or_else(stream_not_found)?;
        let limit = limit(input, 10_000)?;
        let start_from_head = input
            .get("startFromHead")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let token = text(input, "nextToken")
            .map(|t| decode_key(t).ok_or_else(bad_token))
            .transpose()?;
        let mut q = store::EventQuery {
            group: group.clone(),
            streams: Some(vec![stream.clone()]),
            start_time: int(input, "startTime")?,
            end_time: int(input, "endTime")?,
            ..Default::default()
        };
        // Reading backwards: from a backward token, or the newest events when neither a
        // token nor startFromHead says otherwise.
        let backwards = match token {
            Some(('f', key)) => {
                q.after = Some(key);
                false
            }
            Some((_, key)) => {
                q.before = Some(key);
                true
            }
            None => !start_from_head,
        };
        q.descending = backwards;
        let start_time = q.start_time;
        let (mut events, _) = store::find_events(&self.db, q, limit, |_| true)
            .await
            .map_err(db_error)?;
        if backwards {
            events.reverse();
        }
        let (forward, backward) = match (events.first(), events.last()) {
            (Some(first), Some(last)) => {
                (encode_key('f', last.key()), encode_key('b', first.key()))
            }
            // Nothing here: stay put, so a client polling forward sees new events later and
            // one paging until the token repeats stops.
            _ => match token {
                Some(('f', key)) => (encode_key('f', key), encode_key('b', (key.0, key.1 + 1))),
                Some((_, key)) => (encode_key('f', (key.0, key.1 - 1)), encode_key('b', key)),
                None => {
                    let origin = (start_time.unwrap_or(0), 0);
                    (encode_key('f', origin), encode_key('b', origin))
                }
            },
        };
        let events: Vec<Value> = events
            .iter()
            .map(|e| json!({ "timestamp": e.timestamp, "message": e.message, "ingestionTime": e.ingestion_time }))
            .collect();
        Ok(json!({ "events": events, "nextForwardToken": forward, "nextBackwardToken": backward }))
    }

    async fn filter_log_events(
        &self,
        authz: &Authorizer,
        principal: &Principal,
        input: &Value,
    ) -> Result<Value, AwsError> {
        let group = group_name(input)?;
        self.authorize(authz, principal, "FilterLogEvents", &self.group_arn(&group))?;
        self.require_group(&group).await?;
        let names: Option<Vec<String>> =
            input
                .get("logStreamNames")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                });
        let prefix = text(input, "logStreamNamePrefix");
        if names.is_some() && prefix.is_some() {
            return Err(invalid(
                "You cannot specify both LogStreamNames and LogStreamNamePrefix.",
            ));
        }
        let streams = match (names, prefix) {
            (Some(names), _) => Some(names),
            (None, Some(prefix)) => Some(
                store::list_streams(&self.db, &group, prefix)
                    .await
                    .map_err(db_error)?
                    .into_iter()
                    .map(|s| s.name)
                    .collect(),
            ),
            (None, None) => None,
        };
        let pattern =
            FilterPattern::parse(text(input, "filterPattern").unwrap_or("")).map_err(invalid)?;
        let limit = limit(input, 10_000)?;
        let after = match text(input, "nextToken") {
            None => None,
            Some(t) => match decode_key(t) {
                Some(('f', key)) => Some(key),
                _ => return Err(bad_token()),
            },
        };
        let q = store::EventQuery {
            group: group.clone(),
            streams: streams.clone(),
            start_time: int(input, "startTime")?,
            end_time: int(input, "endTime")?,
            after,
            ..Default::default()
        };
        let (events, more) =
            store::find_events(&self.db, q, limit, move |e| pattern.matches(&e.message))
                .await
                .map_err(db_error)?;
        let searched: Vec<Value> = match &streams {
            Some(s) => s.clone(),
            None => store::list_streams(&self.db, &group, "")
                .await
                .map_err(db_error)?
                .into_iter()
                .map(|s| s.name)
                .collect(),
        }
        .into_iter()
        .map(|name| json!({ "logStreamName": name, "searchedCompletely": !more }))
        .collect();
        let values: Vec<Value> = events
            .iter()
            .map(|e| {
                json!({
                    "logStreamName": e.stream,
                    "timestamp": e.timestamp,
                    "message": e.message,
                    "ingestionTime": e.ingestion_time,
                    // Unique and stable: what `aws logs tail --follow` dedupes on.
                    "eventId": encode_key('f', e.key())[2..].to_string(),
                })
            })
            .collect();
        let mut body = json!({ "events": values, "searchedLogStreams": searched });
        if more {
            if let Some(last) = events.last() {
                body["nextToken"] = json!(encode_key('f', last.key()));
            }
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn tokens_round_trip() {
        let t = encode_key('f', (1_700_000_000_123, 42));
        assert_eq!(t.len(), 42);
        assert_eq!(decode_key(&t), Some(('f', (1_700_000_000_123, 42))));
        assert_eq!(decode_key("x/1"), None);
        assert_eq!(decode_key("f/123"), None);
    }

    #[test]
    fn group_identifiers() {
        assert_eq!(group_name(&json!({"logGroupName": "/a"})).unwrap(), "/a");
        assert_eq!(
            group_name(&json!({"logGroupIdentifier": "arn:aws:logs:us-east-1:123456789012:log-group:/a/b:*"})).unwrap(),
            "/a/b"
        );
        assert!(group_name(&json!({})).is_err());
    }

    /// A `Logs` over a fresh database, called as the account's root.
    struct Fixture {
        _dir: tempfile::TempDir,
        logs: Logs,
        authz: Authorizer,
        principal: Principal,
    }

    impl Fixture {
        async fn call(&self, op: &str, input: Value) -> Result<Value, AwsError> {
            self.logs
                .dispatch(&self.authz, &self.principal, op, &input)
                .await
        }
    }

    fn logs() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("t.db"), store::SCHEMA).unwrap();
        struct None_;
        impl crate::authz::RolePolicies for None_ {
            fn inline_policies(&self, _: &str) -> Option<Vec<crate::authz::PolicyDocument>> {
                None
            }
        }
        let principal = Principal {
            access_key_id: "AKIA".into(),
            account_id: "123456789012".into(),
            arn: "arn:aws:iam::123456789012:root".into(),
            region: "us-east-1".into(),
            service: "logs".into(),
        };
        Fixture {
            _dir: dir,
            logs: Logs::open(db, "us-east-1", "123456789012"),
            authz: Authorizer::new(Arc::new(None_)),
            principal,
        }
    }

    #[tokio::test]
    async fn get_log_events_paging_semantics() {
        let fixture = logs();
        let call = |op: &'static str, v: Value| fixture.call(op, v);
        call("CreateLogGroup", json!({"logGroupName": "g"}))
            .await
            .unwrap();
        assert_eq!(
            call("CreateLogGroup", json!({"logGroupName": "g"}))
                .await
                .unwrap_err()
                .message,
            "The specified log group already exists"
        );
        call(
            "CreateLogStream",
            json!({"logGroupName": "g", "logStreamName": "s"}),
        )
        .await
        .unwrap();
        let now = now_ms();
        let events: Vec<Value> = (0..5)
            .map(|i| json!({"timestamp": now + i, "message": format!("m{i}")}))
            .collect();
        call(
            "PutLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "logEvents": events}),
        )
        .await
        .unwrap();

        // Default: the newest `limit` events, oldest first.
        let r = call(
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "limit": 2}),
        )
        .await
        .unwrap();
        let msgs = |r: &Value| {
            r["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["message"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(msgs(&r), ["m3", "m4"]);
        // Backwards from there.
        let back = call("GetLogEvents", json!({"logGroupName": "g", "logStreamName": "s", "limit": 2, "nextToken": r["nextBackwardToken"]})).await.unwrap();
        assert_eq!(msgs(&back), ["m1", "m2"]);
        // Forward from the end: nothing, and the same token again (end of stream).
        let fwd = call(
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "nextToken": r["nextForwardToken"]}),
        )
        .await
        .unwrap();
        assert!(msgs(&fwd).is_empty());
        assert_eq!(fwd["nextForwardToken"], r["nextForwardToken"]);
        // New events show up on the forward token.
        call("PutLogEvents", json!({"logGroupName": "g", "logStreamName": "s", "logEvents": [{"timestamp": now + 10, "message": "m5"}]})).await.unwrap();
        let fwd = call("GetLogEvents", json!({"logGroupName": "g", "logStreamName": "s", "nextToken": fwd["nextForwardToken"]})).await.unwrap();
        assert_eq!(msgs(&fwd), ["m5"]);
        // From the head.
        let head = call(
            "GetLogEvents",
            json!({"logGroupName": "g", "logStreamName": "s", "startFromHead": true, "limit": 2}),
        )
        .await
        .unwrap();
        assert_eq!(msgs(&head), ["m0", "m1"]);
        let head2 = call("GetLogEvents", json!({"logGroupName": "g", "logStreamName": "s", "limit": 2, "nextToken": head["nextForwardToken"]})).await.unwrap();
        assert_eq!(msgs(&head2), ["m2", "m3"]);
    }

    #[tokio::test]
    async fn filter_log_events_paging_and_patterns() {
        let fixture = logs();
        let call = |op: &'static str, v: Value| fixture.call(op, v);
        call("CreateLogGroup", json!({"logGroupName": "g"}))
            .await
            .unwrap();
        for s in ["pi/driver", "pi/exec-1", "other"] {
            call(
                "CreateLogStream",
                json!({"logGroupName": "g", "logStreamName": s}),
            )
            .await
            .unwrap();
        }
        let now = now_ms();
        call("PutLogEvents", json!({"logGroupName": "g", "logStreamName": "pi/driver", "logEvents": [{"timestamp": now, "message": "INFO start"}, {"timestamp": now + 2, "message": "ERROR boom"}]})).await.unwrap();
        call("PutLogEvents", json!({"logGroupName": "g", "logStreamName": "pi/exec-1", "logEvents": [{"timestamp": now + 1, "message": "ERROR exec"}]})).await.unwrap();
        call("PutLogEvents", json!({"logGroupName": "g", "logStreamName": "other", "logEvents": [{"timestamp": now + 1, "message": "ERROR other"}]})).await.unwrap();
        let r = call(
            "FilterLogEvents",
            json!({"logGroupName": "g", "logStreamNamePrefix": "pi/", "filterPattern": "ERROR"}),
        )
        .await
        .unwrap();
        let got: Vec<&str> = r["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["message"].as_str().unwrap())
            .collect();
        assert_eq!(got, ["ERROR exec", "ERROR boom"]);
        let page = call("FilterLogEvents", json!({"logGroupName": "g", "limit": 2}))
            .await
            .unwrap();
        assert_eq!(page["events"].as_array().unwrap().len(), 2);
        let rest = call(
            "FilterLogEvents",
            json!({"logGroupName": "g", "nextToken": page["nextToken"]}),
        )
        .await
        .unwrap();
        assert_eq!(rest["events"].as_array().unwrap().len(), 2);
        assert!(rest.get("nextToken").is_none());
        let rejected = call("PutLogEvents", json!({"logGroupName": "g", "logStreamName": "other", "logEvents": [{"timestamp": now + 1, "message": "a"}, {"timestamp": now, "message": "b"}]})).await.unwrap_err();
        assert_eq!(rejected.code, "InvalidParameterException");
        assert_eq!(
            call("DeleteLogGroup", json!({"logGroupName": "nope"}))
                .await
                .unwrap_err()
                .message,
            "The specified log group does not exist."
        );
    }
}
