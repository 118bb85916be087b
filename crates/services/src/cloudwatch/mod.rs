//! CloudWatch metrics and alarms (AWS service `monitoring`): `PutMetricData`, `ListMetrics`,
//! `GetMetricStatistics`, `GetMetricData` (with metric math), metric alarms and their
//! history, and the background task that evaluates alarms and expires old datapoints.
//!
//! Served over all three protocols the `cloudwatch` model lists ([`codec`]): botocore ≥ 1.36
//! speaks smithy-rpc-v2-cbor, other SDKs JSON 1.0, older ones the query protocol. Every
//! operation authorizes `cloudwatch:<Operation>` ([`crate::authz`]): resource `*` for metric
//! operations, the alarm's ARN for alarm operations.
//!
//! Owns: this module's SQLite tables (`cw_*`, [`store`]). The pure parts — metric math
//! ([`math`]) and the alarm decision ([`alarm_rules`]) — are separate modules it calls.

pub mod alarm_rules;
pub mod alarms;
pub mod codec;
pub mod emf;
pub mod math;
pub mod metrics;
pub mod model;
pub mod store;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::response::Response;
use chrono::Utc;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sparkyard_aws::Principal;

use crate::authz::Authorizer;
use crate::db::Db;
pub use codec::{CwError, Protocol, TARGET_PREFIX};
use model::*;

/// How often buckets past their tier's retention are dropped.
const EXPIRY_INTERVAL: Duration = Duration::from_secs(300);

pub struct CloudWatch {
    db: Db,
    region: String,
    account_id: String,
}

/// Sets an alarm's state and reason, with a `StateUpdate` history item when the state
/// changes. `only_from`: apply only if the alarm is still in that state (the evaluator's
/// guard against a concurrent change). Returns whether the alarm was found and updated.
fn set_state(
    tx: &rusqlite::Transaction<'_>,
    name: &str,
    only_from: Option<&str>,
    state: &str,
    reason: String,
    data: Option<String>,
    now: chrono::DateTime<Utc>,
) -> rusqlite::Result<bool> {
    let Some(mut alarm) = store::get_alarm(tx, name)?.and_then(|b| alarms::decode(&b)) else {
        return Ok(false);
    };
    if only_from.is_some_and(|from| alarm.state_value != from) {
        return Ok(false);
    }
    let changed = alarm.state_value != state;
    let (summary, history) = alarms::transition(&mut alarm, state, reason, data, now);
    store::put_alarm(tx, name, &alarms::encode(&alarm))?;
    if changed {
        store::add_history(
            tx,
            name,
            alarm.state_updated_timestamp.0,
            "StateUpdate",
            &summary,
            &history,
        )?;
    }
    Ok(true)
}

fn db_error(e: rusqlite::Error) -> CwError {
    tracing::error!(error = %e, "cloudwatch store failure");
    CwError::internal()
}

fn decode<T: DeserializeOwned>(tree: ciborium::Value) -> Result<T, CwError> {
    codec::from_value(tree)
        .map_err(|e| CwError::invalid_value(format!("The request could not be read: {e}.")))
}

fn out<T: Serialize>(output: &T) -> Option<ciborium::Value> {
    Some(codec::to_value(output))
}

/// Largest request body after `Content-Encoding: gzip` is undone (a full PutMetricData is
/// well under this; the cap stops a compression bomb).
const MAX_INFLATED_BODY: u64 = 16 * 1024 * 1024;

/// The request body with `Content-Encoding: gzip` undone: botocore compresses
/// `PutMetricData` bodies of 10 KiB or more (the model's `requestcompression` trait).
pub fn request_body(
    headers: &http::HeaderMap,
    body: bytes::Bytes,
) -> Result<bytes::Bytes, CwError> {
    let gzip = headers
        .get(http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().eq_ignore_ascii_case("gzip")));
    if !gzip {
        return Ok(body);
    }
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&body[..])
        .take(MAX_INFLATED_BODY + 1)
        .read_to_end(&mut out)
        .map_err(|e| {
            CwError::invalid_value(format!("The gzip request body could not be read: {e}."))
        })?;
    if out.len() as u64 > MAX_INFLATED_BODY {
        return Err(CwError::new(
            http::StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLarge",
            "RequestEntityTooLarge",
            "Request size exceeded the limit after decompression.",
        ));
    }
    Ok(out.into())
}

/// Which protocol a signed `monitoring` request speaks and its operation: the CBOR path
/// `/service/GraniteServiceVersion20100801/operation/<Op>`, JSON's `X-Amz-Target`, or the
/// query protocol's `Action` (body or URL).
pub fn classify(uri: &http::Uri, headers: &http::HeaderMap, body: &[u8]) -> (Protocol, String) {
    if let Some(op) = uri
        .path()
        .strip_prefix("/service/")
        .and_then(|rest| rest.strip_prefix(TARGET_PREFIX))
        .and_then(|rest| rest.strip_prefix("/operation/"))
    {
        return (Protocol::Cbor, op.to_string());
    }
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        let op = target
            .strip_prefix(TARGET_PREFIX)
            .and_then(|t| t.strip_prefix('.'))
            .unwrap_or(target);
        return (Protocol::Json, op.to_string());
    }
    let params = crate::wire::QueryParams::from_parts(uri.query(), body);
    (
        Protocol::Query,
        params.action().unwrap_or_default().to_string(),
    )
}

impl CloudWatch {
    pub fn open(db: Db, region: &str, account_id: &str) -> Self {
        Self {
            db,
            region: region.to_string(),
            account_id: account_id.to_string(),
        }
    }

    /// Opens a store of its own at `path` (benchmarks and tools; the service shares
    /// `services.db`).
    pub fn open_path(path: &Path, region: &str, account_id: &str) -> rusqlite::Result<Self> {
        let db = Db::open(path, store::SCHEMA)?;
        Ok(Self::open(db, region, account_id))
    }

    fn alarm_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:cloudwatch:{}:{}:alarm:{name}",
            self.region, self.account_id
        )
    }

    /// Stores already-checked points (the write `PutMetricData` ends in; bulk loads).
    pub async fn put_points(&self, points: Vec<store::Point>, now: i64) -> rusqlite::Result<()> {
        self.db
            .write(move |tx| {
                // A larger page cache keeps the 1,000-series working set of a bulk write in
                // memory (the writer connection is the services' shared one; 64 MiB is cheap).
                tx.execute_batch("PRAGMA cache_size = -65536")?;
                store::put(tx, &points, now)
            })
            .await
    }

    /// The metrics of Embedded Metric Format log events (CloudWatch Logs calls this for
    /// every `PutLogEvents` it accepts). Invalid EMF is skipped, as CloudWatch skips it;
    /// a namespace whose data `PutMetricData` would refuse is dropped whole.
    pub async fn ingest_emf(&self, messages: &[String]) {
        let now = Utc::now().timestamp();
        let mut points = Vec::new();
        for message in messages {
            for input in emf::extract(message) {
                match metrics::put_metric_data(input, now) {
                    Ok(mut p) => points.append(&mut p),
                    Err(e) => tracing::debug!(error = %e.message, "EMF metrics skipped"),
                }
            }
        }
        if !points.is_empty() {
            if let Err(e) = self.put_points(points, now).await {
                tracing::warn!(error = %e, "cannot store EMF metrics");
            }
        }
    }

    /// Drops datapoints past their tier's retention.
    pub async fn expire(&self, now: i64) -> rusqlite::Result<usize> {
        self.db.write(move |tx| store::expire(tx, now)).await
    }

    /// Evaluates every alarm once; returns how many changed state.
    pub async fn evaluate_alarms(&self, now: chrono::DateTime<Utc>) -> rusqlite::Result<usize> {
        let changes = self
            .db
            .read(move |conn| {
                let mut changes = Vec::new();
                for (name, body) in store::alarms(conn)? {
                    let Some(alarm) = alarms::decode(&body) else {
                        continue;
                    };
                    if let Some(change) = alarms::evaluate_one(conn, &alarm, now) {
                        changes.push((name, alarm.state_value.clone(), change));
                    }
                }
                Ok(changes)
            })
            .await?;
        let mut changed = 0;
        for (name, from, (state, reason, data)) in changes {
            let did = self
                .db
                .write(move |tx| {
                    // Re-read: a PutMetricAlarm, DeleteAlarms or SetAlarmState since the read
                    // wins over this evaluation.
                    set_state(tx, &name, Some(&from), &state, reason, Some(data), now)
                })
                .await?;
            changed += usize::from(did);
        }
        Ok(changed)
    }

    /// Starts the alarm evaluator (every `interval`) and the retention job on the current
    /// tokio runtime; they stop when the runtime does.
    pub fn start_background(self: &Arc<Self>, interval: Duration) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            tracing::warn!("no tokio runtime: CloudWatch alarms are not evaluated");
            return;
        };
        let cw = self.clone();
        handle.spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = cw.evaluate_alarms(Utc::now()).await {
                    tracing::warn!(error = %e, "alarm evaluation failed");
                }
            }
        });
        let cw = self.clone();
        handle.spawn(async move {
            let mut tick = tokio::time::interval(EXPIRY_INTERVAL);
            loop {
                tick.tick().await;
                match cw.expire(Utc::now().timestamp()).await {
                    Ok(n) if n > 0 => tracing::debug!(rows = n, "expired CloudWatch datapoints"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "CloudWatch expiry failed"),
                }
            }
        });
    }

    /// Serves one request of `protocol` for operation `op`.
    pub async fn handle(
        &self,
        authz: &Authorizer,
        principal: &Principal,
        protocol: Protocol,
        op: &str,
        body: &[u8],
        request_id: &str,
    ) -> Response {
        let tree = match codec::parse_body(protocol, body) {
            Ok(t) => t,
            Err(e) => {
                return CwError::new(
                    http::StatusCode::BAD_REQUEST,
                    "SerializationException",
                    "SerializationException",
                    e.0,
                )
                .render(protocol, request_id)
            }
        };
        match self.dispatch(authz, principal, op, tree).await {
            Ok(output) => codec::render_ok(protocol, op, output, request_id),
            Err(e) => e.render(protocol, request_id),
        }
    }

    fn authorize(
        &self,
        authz: &Authorizer,
        principal: &Principal,
        op: &str,
        resource: &str,
    ) -> Result<(), CwError> {
        authz
            .authorize(principal, &format!("cloudwatch:{op}"), resource)
            .map_err(|d| CwError::access_denied(d.message()))
    }

    async fn all_alarms(&self) -> Result<Vec<MetricAlarm>, CwError> {
        let rows = self.db.read(store::alarms).await.map_err(db_error)?;
        Ok(rows
            .into_iter()
            .filter_map(|(_, body)| alarms::decode(&body))
            .collect())
    }

    async fn dispatch(
        &self,
        authz: &Authorizer,
        principal: &Principal,
        op: &str,
        tree: ciborium::Value,
    ) -> Result<Option<ciborium::Value>, CwError> {
        let now = Utc::now();
        let secs = now.timestamp();
        match op {
            "PutMetricData" => {
                self.authorize(authz, principal, op, "*")?;
                let input: PutMetricDataInput = decode(tree)?;
                let points = metrics::put_metric_data(input, secs)?;
                self.put_points(points, secs).await.map_err(db_error)?;
                Ok(None)
            }
            "ListMetrics" => {
                self.authorize(authz, principal, op, "*")?;
                let input: ListMetricsInput = decode(tree)?;
                let output = self
                    .db
                    .read(move |conn| Ok(metrics::list_metrics(conn, &input, secs)))
                    .await
                    .map_err(db_error)??;
                Ok(out(&output))
            }
            "GetMetricStatistics" => {
                self.authorize(authz, principal, op, "*")?;
                let q = metrics::check_statistics(decode(tree)?)?;
                let output = self
                    .db
                    .read(move |conn| metrics::get_metric_statistics(conn, &q, secs))
                    .await
                    .map_err(db_error)?;
                Ok(out(&output))
            }
            "GetMetricData" => {
                self.authorize(authz, principal, op, "*")?;
                let req = Arc::new(metrics::check_data_request(decode(tree)?)?);
                let read = req.clone();
                let stats = self
                    .db
                    .read(move |conn| metrics::fetch_stats(conn, &read, secs))
                    .await
                    .map_err(db_error)?;
                let evaluated = metrics::evaluate(&req, stats, secs)?;
                Ok(out(&metrics::data_output(&req, evaluated)))
            }
            "PutMetricAlarm" => {
                let input: PutMetricAlarmInput = decode(tree)?;
                let name = input
                    .alarm_name
                    .clone()
                    .ok_or_else(|| CwError::missing("AlarmName"))?;
                let arn = self.alarm_arn(&name);
                self.authorize(authz, principal, op, &arn)?;
                // Check before writing; the write re-reads the existing alarm so its state
                // is kept even if the evaluator moved it meanwhile.
                alarms::check_alarm(input.clone(), arn.clone(), None, now)?;
                self.db
                    .write(move |tx| {
                        let existing =
                            store::get_alarm(tx, &name)?.and_then(|b| alarms::decode(&b));
                        let alarm = match alarms::check_alarm(input, arn, existing.as_ref(), now) {
                            Ok(a) => a,
                            Err(_) => return Ok(()),
                        };
                        store::put_alarm(tx, &name, &alarms::encode(&alarm))?;
                        let (summary, data) =
                            alarms::configuration_history(existing.as_ref(), &alarm);
                        store::add_history(
                            tx,
                            &name,
                            alarm.alarm_configuration_updated_timestamp.0,
                            "ConfigurationUpdate",
                            &summary,
                            &data,
                        )
                    })
                    .await
                    .map_err(db_error)?;
                Ok(None)
            }
            "DescribeAlarms" => {
                self.authorize(authz, principal, op, &self.alarm_arn("*"))?;
                let input: DescribeAlarmsInput = decode(tree)?;
                let all = self.all_alarms().await?;
                Ok(out(&alarms::describe(all, &input)?))
            }
            "DescribeAlarmsForMetric" => {
                self.authorize(authz, principal, op, &self.alarm_arn("*"))?;
                let input: DescribeAlarmsForMetricInput = decode(tree)?;
                let all = self.all_alarms().await?;
                Ok(out(&alarms::for_metric(all, &input)?))
            }
            "DescribeAlarmHistory" => {
                let input: DescribeAlarmHistoryInput = decode(tree)?;
                let resource = self.alarm_arn(input.alarm_name.as_deref().unwrap_or("*"));
                self.authorize(authz, principal, op, &resource)?;
                let descending = alarms::check_history_input(&input)?;
                let (name, kind) = (input.alarm_name.clone(), input.history_item_type.clone());
                let (start, end) = (input.start_date.map(|t| t.0), input.end_date.map(|t| t.0));
                let rows = self
                    .db
                    .read(move |conn| {
                        store::history(
                            conn,
                            name.as_deref(),
                            kind.as_deref(),
                            start,
                            end,
                            descending,
                        )
                    })
                    .await
                    .map_err(db_error)?;
                Ok(out(&alarms::history_page(rows, &input)?))
            }
            "DeleteAlarms" => {
                let input: AlarmNamesInput = decode(tree)?;
                let names = input.alarm_names.unwrap_or_default();
                if names.len() > 100 {
                    return Err(CwError::invalid_value(
                        "The collection AlarmNames must not have a size greater than 100.",
                    ));
                }
                for name in &names {
                    self.authorize(authz, principal, op, &self.alarm_arn(name))?;
                }
                let now_f = now.timestamp_millis() as f64 / 1000.0;
                let missing = self
                    .db
                    .write(move |tx| {
                        let mut found = Vec::new();
                        let mut missing = Vec::new();
                        for name in &names {
                            match store::get_alarm(tx, name)?.and_then(|b| alarms::decode(&b)) {
                                Some(a) => found.push(a),
                                None => missing.push(name.clone()),
                            }
                        }
                        // All or nothing, as CloudWatch: one unknown name deletes none.
                        if !missing.is_empty() {
                            return Ok(missing);
                        }
                        for alarm in found {
                            store::delete_alarm(tx, &alarm.alarm_name)?;
                            let (summary, data) = alarms::deletion_history(&alarm);
                            store::add_history(
                                tx,
                                &alarm.alarm_name,
                                now_f,
                                "ConfigurationUpdate",
                                &summary,
                                &data,
                            )?;
                        }
                        Ok(missing)
                    })
                    .await
                    .map_err(db_error)?;
                if !missing.is_empty() {
                    return Err(CwError::not_found(format!(
                        "{} alarm(s) not found: [{}]",
                        missing.len(),
                        missing.join(", ")
                    )));
                }
                Ok(None)
            }
            "SetAlarmState" => {
                let input: SetAlarmStateInput = decode(tree)?;
                let name = input
                    .alarm_name
                    .clone()
                    .ok_or_else(|| CwError::missing("AlarmName"))?;
                self.authorize(authz, principal, op, &self.alarm_arn(&name))?;
                let state = input
                    .state_value
                    .clone()
                    .ok_or_else(|| CwError::missing("StateValue"))?;
                state
                    .parse::<alarm_rules::AlarmState>()
                    .map_err(CwError::validation)?;
                let reason = input
                    .state_reason
                    .clone()
                    .ok_or_else(|| CwError::missing("StateReason"))?;
                if reason.len() > 1023 {
                    return Err(CwError::invalid_value(
                        "The parameter StateReason must be at most 1023 characters.",
                    ));
                }
                if let Some(data) = &input.state_reason_data {
                    if serde_json::from_str::<serde_json::Value>(data).is_err() {
                        return Err(CwError::invalid_format(
                            "The value for parameter StateReasonData is not valid JSON.",
                        ));
                    }
                }
                let data = input.state_reason_data.clone();
                let found = self
                    .db
                    .write(move |tx| set_state(tx, &name, None, &state, reason, data, now))
                    .await
                    .map_err(db_error)?;
                if !found {
                    return Err(CwError::not_found(format!(
                        "Alarm {} not found",
                        input.alarm_name.unwrap_or_default()
                    )));
                }
                Ok(None)
            }
            "EnableAlarmActions" | "DisableAlarmActions" => {
                let input: AlarmNamesInput = decode(tree)?;
                let names = input.alarm_names.unwrap_or_default();
                if names.len() > 100 {
                    return Err(CwError::invalid_value(
                        "The collection AlarmNames must not have a size greater than 100.",
                    ));
                }
                for name in &names {
                    self.authorize(authz, principal, op, &self.alarm_arn(name))?;
                }
                let enabled = op == "EnableAlarmActions";
                self.db
                    .write(move |tx| {
                        // Unknown names are skipped, as CloudWatch does.
                        for name in &names {
                            if let Some(mut alarm) =
                                store::get_alarm(tx, name)?.and_then(|b| alarms::decode(&b))
                            {
                                alarm.actions_enabled = enabled;
                                store::put_alarm(tx, name, &alarms::encode(&alarm))?;
                            }
                        }
                        Ok(())
                    })
                    .await
                    .map_err(db_error)?;
                Ok(None)
            }
            other => Err(CwError::unknown_operation(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authz::{policy, PolicyDocument, RolePolicies};

    /// A role that may read metrics and manage the alarm `mine`, nothing else.
    struct OneRole;

    impl RolePolicies for OneRole {
        fn inline_policies(&self, role_name: &str) -> Option<Vec<PolicyDocument>> {
            (role_name == "reader").then(|| {
                vec![policy::parse(
                    r#"{"Version":"2012-10-17","Statement":[
                        {"Effect":"Allow","Action":["cloudwatch:GetMetricData","cloudwatch:ListMetrics"],"Resource":"*"},
                        {"Effect":"Allow","Action":"cloudwatch:PutMetricAlarm","Resource":"arn:aws:cloudwatch:us-east-1:123456789012:alarm:mine"}]}"#,
                    policy::PolicyKind::Identity,
                )
                .unwrap()]
            })
        }
    }

    fn principal() -> Principal {
        Principal {
            access_key_id: "ASIAX".into(),
            account_id: "123456789012".into(),
            arn: "arn:aws:sts::123456789012:assumed-role/reader/s".into(),
            region: "us-east-1".into(),
            service: "monitoring".into(),
        }
    }

    async fn call(cw: &CloudWatch, op: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let authz = Authorizer::new(Arc::new(OneRole));
        let response = cw
            .handle(
                &authz,
                &principal(),
                Protocol::Json,
                op,
                body.to_string().as_bytes(),
                "rid",
            )
            .await;
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or_default())
    }

    #[tokio::test]
    async fn iam_policies_limit_operations_and_refused_writes_store_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cw =
            CloudWatch::open_path(&dir.path().join("cw.db"), "us-east-1", "123456789012").unwrap();
        let (status, body) = call(
            &cw,
            "PutMetricData",
            serde_json::json!({"Namespace": "App", "MetricData": [{"MetricName": "m", "Value": 1}]}),
        )
        .await;
        assert_eq!(status, 403);
        assert_eq!(
            body["message"],
            "User: arn:aws:sts::123456789012:assumed-role/reader/s is not authorized to perform: cloudwatch:PutMetricData on resource: * because no identity-based policy allows the cloudwatch:PutMetricData action"
        );
        let (status, body) = call(&cw, "ListMetrics", serde_json::json!({})).await;
        assert_eq!(status, 200);
        assert_eq!(
            body["Metrics"],
            serde_json::json!([]),
            "the refused put stored data"
        );

        let alarm = |name: &str| {
            serde_json::json!({"AlarmName": name, "Namespace": "App", "MetricName": "m", "Statistic": "Sum",
                "Period": 60, "EvaluationPeriods": 1, "Threshold": 1, "ComparisonOperator": "GreaterThanThreshold"})
        };
        assert_eq!(call(&cw, "PutMetricAlarm", alarm("mine")).await.0, 200);
        let (status, body) = call(&cw, "PutMetricAlarm", alarm("theirs")).await;
        assert_eq!(status, 403);
        assert!(body["message"]
            .as_str()
            .unwrap()
            .contains("on resource: arn:aws:cloudwatch:us-east-1:123456789012:alarm:theirs"));
        let names: Vec<String> = cw
            .all_alarms()
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.alarm_name)
            .collect();
        assert_eq!(names, ["mine"]);
    }
}
