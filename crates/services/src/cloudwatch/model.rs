//! The operations' inputs and outputs as the botocore `cloudwatch` 2010-08-01 model names
//! them (PascalCase members). Inputs have every member optional so a missing one is reported
//! with CloudWatch's `MissingParameter` rather than a decoding failure; outputs leave unset
//! members out, as AWS does.

use serde::{Deserialize, Serialize};

use super::codec::Timestamp;

#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Dimension {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub value: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DimensionFilter {
    pub name: Option<String>,
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StatisticSet {
    pub sample_count: Option<f64>,
    pub sum: Option<f64>,
    pub minimum: Option<f64>,
    pub maximum: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricDatum {
    pub metric_name: Option<String>,
    pub dimensions: Option<Vec<Dimension>>,
    pub timestamp: Option<Timestamp>,
    pub value: Option<f64>,
    pub statistic_values: Option<StatisticSet>,
    pub values: Option<Vec<f64>>,
    pub counts: Option<Vec<f64>>,
    pub unit: Option<String>,
    pub storage_resolution: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutMetricDataInput {
    pub namespace: Option<String>,
    pub metric_data: Option<Vec<MetricDatum>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListMetricsInput {
    pub namespace: Option<String>,
    pub metric_name: Option<String>,
    pub dimensions: Option<Vec<DimensionFilter>>,
    pub next_token: Option<String>,
    pub recently_active: Option<String>,
    pub include_linked_accounts: Option<bool>,
    pub owning_account: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Metric {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<Vec<Dimension>>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ListMetricsOutput {
    pub metrics: Vec<Metric>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetMetricStatisticsInput {
    pub namespace: Option<String>,
    pub metric_name: Option<String>,
    pub dimensions: Option<Vec<Dimension>>,
    pub start_time: Option<Timestamp>,
    pub end_time: Option<Timestamp>,
    pub period: Option<i64>,
    pub statistics: Option<Vec<String>>,
    pub extended_statistics: Option<Vec<String>>,
    pub unit: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Datapoint {
    pub timestamp: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_count: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub average: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sum: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub minimum: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub maximum: Option<f64>,
    pub unit: String,
}

impl Default for Timestamp {
    fn default() -> Self {
        Timestamp(0.0)
    }
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetMetricStatisticsOutput {
    pub label: String,
    pub datapoints: Vec<Datapoint>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct MetricStat {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<Metric>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stat: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct MetricDataQuery {
    #[serde(default)]
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_stat: Option<MetricStat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expression: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_data: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetMetricDataInput {
    pub metric_data_queries: Option<Vec<MetricDataQuery>>,
    pub start_time: Option<Timestamp>,
    pub end_time: Option<Timestamp>,
    pub next_token: Option<String>,
    pub scan_by: Option<String>,
    pub max_datapoints: Option<i64>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MessageData {
    pub code: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct MetricDataResult {
    pub id: String,
    pub label: String,
    pub timestamps: Vec<Timestamp>,
    pub values: Vec<f64>,
    pub status_code: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<MessageData>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetMetricDataOutput {
    pub metric_data_results: Vec<MetricDataResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    pub messages: Vec<MessageData>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Tag {
    pub key: Option<String>,
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PutMetricAlarmInput {
    pub alarm_name: Option<String>,
    pub alarm_description: Option<String>,
    pub actions_enabled: Option<bool>,
    #[serde(rename = "OKActions")]
    pub ok_actions: Option<Vec<String>>,
    pub alarm_actions: Option<Vec<String>>,
    pub insufficient_data_actions: Option<Vec<String>>,
    pub metric_name: Option<String>,
    pub namespace: Option<String>,
    pub statistic: Option<String>,
    pub extended_statistic: Option<String>,
    pub dimensions: Option<Vec<Dimension>>,
    pub period: Option<i64>,
    pub unit: Option<String>,
    pub evaluation_periods: Option<i64>,
    pub datapoints_to_alarm: Option<i64>,
    pub threshold: Option<f64>,
    pub comparison_operator: Option<String>,
    pub treat_missing_data: Option<String>,
    pub evaluate_low_sample_count_percentile: Option<String>,
    pub metrics: Option<Vec<MetricDataQuery>>,
    pub tags: Option<Vec<Tag>>,
    pub threshold_metric_id: Option<String>,
}

/// A stored metric alarm, as `DescribeAlarms` returns it (and as it is kept, JSON, in the
/// `cw_alarms` table).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct MetricAlarm {
    pub alarm_name: String,
    pub alarm_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_description: Option<String>,
    pub alarm_configuration_updated_timestamp: Timestamp,
    pub actions_enabled: bool,
    #[serde(rename = "OKActions")]
    pub ok_actions: Vec<String>,
    pub alarm_actions: Vec<String>,
    pub insufficient_data_actions: Vec<String>,
    pub state_value: String,
    pub state_reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_reason_data: Option<String>,
    pub state_updated_timestamp: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statistic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extended_statistic: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<Vec<Dimension>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    pub evaluation_periods: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datapoints_to_alarm: Option<i64>,
    pub threshold: f64,
    pub comparison_operator: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub treat_missing_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Vec<MetricDataQuery>>,
    pub state_transitioned_timestamp: Timestamp,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeAlarmsInput {
    pub alarm_names: Option<Vec<String>>,
    pub alarm_name_prefix: Option<String>,
    pub alarm_types: Option<Vec<String>>,
    pub children_of_alarm_name: Option<String>,
    pub parents_of_alarm_name: Option<String>,
    pub state_value: Option<String>,
    pub action_prefix: Option<String>,
    pub max_records: Option<i64>,
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeAlarmsOutput {
    pub composite_alarms: Vec<serde_json::Value>,
    pub metric_alarms: Vec<MetricAlarm>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeAlarmsForMetricInput {
    pub metric_name: Option<String>,
    pub namespace: Option<String>,
    pub statistic: Option<String>,
    pub extended_statistic: Option<String>,
    pub dimensions: Option<Vec<Dimension>>,
    pub period: Option<i64>,
    pub unit: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeAlarmsForMetricOutput {
    pub metric_alarms: Vec<MetricAlarm>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeAlarmHistoryInput {
    pub alarm_name: Option<String>,
    pub alarm_types: Option<Vec<String>>,
    pub history_item_type: Option<String>,
    pub start_date: Option<Timestamp>,
    pub end_date: Option<Timestamp>,
    pub max_records: Option<i64>,
    pub next_token: Option<String>,
    pub scan_by: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AlarmHistoryItem {
    pub alarm_name: String,
    pub alarm_type: String,
    pub timestamp: Timestamp,
    pub history_item_type: String,
    pub history_summary: String,
    pub history_data: String,
}

#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DescribeAlarmHistoryOutput {
    pub alarm_history_items: Vec<AlarmHistoryItem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AlarmNamesInput {
    pub alarm_names: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SetAlarmStateInput {
    pub alarm_name: Option<String>,
    pub state_value: Option<String>,
    pub state_reason: Option<String>,
    pub state_reason_data: Option<String>,
}
