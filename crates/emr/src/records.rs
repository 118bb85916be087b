//! The durable records of every resource, and their wire (response) shapes.
//!
//! Records keep nested request objects (`containerProvider`, `jobDriver`,
//! `configurationOverrides`, `securityConfigurationData`, …) as the JSON the client sent,
//! so responses echo them exactly, unknown members included.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::time::{self, Timestamp};

pub type Tags = Map<String, Value>;

/// Store kinds (the `kind` column of the document store).
pub mod kind {
    pub const VIRTUAL_CLUSTER: &str = "virtual-cluster";
    pub const JOB_RUN: &str = "job-run";
    pub const ENDPOINT: &str = "endpoint";
    pub const JOB_TEMPLATE: &str = "job-template";
    pub const SECURITY_CONFIGURATION: &str = "security-configuration";
    pub const CLIENT_TOKEN: &str = "client-token";
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum VirtualClusterState {
    Running,
    Terminating,
    Terminated,
    Arrested,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JobRunState {
    Pending,
    Submitted,
    Running,
    Failed,
    Cancelled,
    CancelPending,
    Completed,
}

impl JobRunState {
    pub const ALL: [JobRunState; 7] = [
        Self::Pending,
        Self::Submitted,
        Self::Running,
        Self::Failed,
        Self::Cancelled,
        Self::CancelPending,
        Self::Completed,
    ];

    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Failed | Self::Cancelled | Self::Completed)
    }

    /// Counted in `schedulerStatus.currentInQueueJobRuns`.
    pub fn is_queued(self) -> bool {
        matches!(self, Self::Pending | Self::Submitted)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Submitted => "SUBMITTED",
            Self::Running => "RUNNING",
            Self::Failed => "FAILED",
            Self::Cancelled => "CANCELLED",
            Self::CancelPending => "CANCEL_PENDING",
            Self::Completed => "COMPLETED",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FailureReason {
    InternalError,
    UserError,
    ValidationError,
    ClusterUnavailable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EndpointState {
    Creating,
    Active,
    Terminating,
    Terminated,
    TerminatedWithErrors,
}

fn enum_str<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// A state's wire name (`RUNNING`, `TERMINATED_WITH_ERRORS`, …), for messages and filters.
pub fn wire_name<T: Serialize>(v: &T) -> String {
    enum_str(v).as_str().unwrap_or_default().to_string()
}

/// Inserts `value` under `key` unless it is absent (AWS omits members without a value).
fn put<T: Serialize>(map: &mut Map<String, Value>, key: &str, value: Option<T>) {
    if let Some(v) = value {
        if let Ok(v) = serde_json::to_value(v) {
            map.insert(key.into(), v);
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualClusterRecord {
    pub id: String,
    pub name: String,
    pub arn: String,
    pub state: VirtualClusterState,
    /// As submitted.
    pub container_provider: Value,
    /// `containerProvider.id`, the EKS cluster name.
    pub cluster_id: String,
    /// `containerProvider.info.eksInfo.namespace`, or `default` when absent.
    pub namespace: String,
    pub created_at: Timestamp,
    pub created_by: String,
    #[serde(default)]
    pub tags: Tags,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_configuration_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_enabled: Option<bool>,
    /// As last set by Create or UpdateVirtualCluster; `None` when never set or cleared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduler_configuration: Option<Value>,
    /// sparkyard creates the namespace RBAC itself, the way EKS access entries let EMR do
    /// it, so every virtual cluster is recorded as integrated.
    #[serde(default)]
    pub eks_access_entry_integrated: bool,
}

/// Counts for `schedulerStatus`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedulerCounts {
    pub in_queue: u64,
    pub running: u64,
}

impl VirtualClusterRecord {
    pub fn max_in_queue(&self) -> Option<u64> {
        self.scheduler_configuration
            .as_ref()?
            .get("maxInQueueJobRuns")?
            .as_u64()
    }

    pub fn max_concurrent(&self) -> Option<u64> {
        self.scheduler_configuration
            .as_ref()?
            .get("maxConcurrentJobRuns")?
            .as_u64()
    }

    pub fn to_wire(&self, counts: SchedulerCounts) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("name".into(), json!(self.name));
        m.insert("arn".into(), json!(self.arn));
        m.insert("state".into(), enum_str(&self.state));
        m.insert("containerProvider".into(), self.container_provider.clone());
        m.insert("createdAt".into(), json!(time::wire(&self.created_at)));
        m.insert("tags".into(), Value::Object(self.tags.clone()));
        put(
            &mut m,
            "securityConfigurationId",
            self.security_configuration_id.as_ref(),
        );
        put(&mut m, "sessionEnabled", self.session_enabled);
        put(
            &mut m,
            "schedulerConfiguration",
            self.scheduler_configuration.as_ref(),
        );
        m.insert(
            "schedulerStatus".into(),
            json!({"currentInQueueJobRuns": counts.in_queue, "currentConcurrentJobRuns": counts.running}),
        );
        Value::Object(m)
    }
}

/// Who submitted a job run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Submitter {
    pub arn: String,
    pub account_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
}

/// A job run: everything the API shows, plus what the execution controller needs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobRunRecord {
    pub id: String,
    pub virtual_cluster_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub arn: String,
    pub state: JobRunState,
    pub client_token: String,
    /// Resolved (after template substitution and merge).
    pub execution_role_arn: String,
    pub release_label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration_overrides: Option<Value>,
    pub job_driver: Value,
    pub created_at: Timestamp,
    pub created_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_details: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<FailureReason>,
    #[serde(default)]
    pub tags: Tags,
    /// As submitted; `None` means the default of one attempt (no retry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_policy_configuration: Option<Value>,
    /// Driver attempts made so far (`retryPolicyExecution.currentAttemptCount`); 1 from
    /// submission, incremented by the controller for each new driver.
    pub attempt_count: u32,
    // ---- execution context (not on the wire) ----
    /// The EKS cluster (`containerProvider.id`) and namespace of the virtual cluster at
    /// submission time.
    pub cluster_id: String,
    pub namespace: String,
    pub submitter: Submitter,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_template_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_template_parameters: Option<Value>,
    pub updated_at: Timestamp,
    /// What the run's pods cost, written by the controller when the run ends
    /// (docs/cost.md); not on the emr-containers wire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<sparkyard_cost::RunCost>,
}

impl JobRunRecord {
    /// `retryPolicyConfiguration.maxAttempts`, 1 when not set.
    pub fn max_attempts(&self) -> u32 {
        self.retry_policy_configuration
            .as_ref()
            .and_then(|r| r.get("maxAttempts"))
            .and_then(Value::as_u64)
            .map(|n| n.min(u32::MAX as u64) as u32)
            .unwrap_or(1)
    }

    pub fn to_wire(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        put(&mut m, "name", self.name.as_ref());
        m.insert("virtualClusterId".into(), json!(self.virtual_cluster_id));
        m.insert("arn".into(), json!(self.arn));
        m.insert("state".into(), json!(self.state.as_str()));
        m.insert("clientToken".into(), json!(self.client_token));
        m.insert("executionRoleArn".into(), json!(self.execution_role_arn));
        m.insert("releaseLabel".into(), json!(self.release_label));
        put(
            &mut m,
            "configurationOverrides",
            self.configuration_overrides.as_ref(),
        );
        m.insert("jobDriver".into(), self.job_driver.clone());
        m.insert("createdAt".into(), json!(time::wire(&self.created_at)));
        m.insert("createdBy".into(), json!(self.created_by));
        put(
            &mut m,
            "finishedAt",
            self.finished_at.as_ref().map(time::wire),
        );
        put(&mut m, "stateDetails", self.state_details.as_ref());
        put(&mut m, "failureReason", self.failure_reason.as_ref());
        m.insert("tags".into(), Value::Object(self.tags.clone()));
        // Shown only while retries are configured (reference §6.1).
        if let Some(r) = &self.retry_policy_configuration {
            m.insert("retryPolicyConfiguration".into(), r.clone());
            m.insert(
                "retryPolicyExecution".into(),
                json!({"currentAttemptCount": self.attempt_count}),
            );
        }
        Value::Object(m)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointRecord {
    pub id: String,
    pub name: String,
    pub arn: String,
    pub virtual_cluster_id: String,
    #[serde(rename = "type")]
    pub endpoint_type: String,
    pub state: EndpointState,
    pub release_label: String,
    pub execution_role_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration_overrides: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_idle_timeout_in_minutes: Option<i64>,
    pub created_at: Timestamp,
    pub created_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_details: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<FailureReason>,
    #[serde(default)]
    pub tags: Tags,
}

impl EndpointRecord {
    pub fn to_wire(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("name".into(), json!(self.name));
        m.insert("arn".into(), json!(self.arn));
        m.insert("virtualClusterId".into(), json!(self.virtual_cluster_id));
        m.insert("type".into(), json!(self.endpoint_type));
        m.insert("state".into(), enum_str(&self.state));
        m.insert("releaseLabel".into(), json!(self.release_label));
        m.insert("executionRoleArn".into(), json!(self.execution_role_arn));
        put(&mut m, "certificateArn", self.certificate_arn.as_ref());
        put(
            &mut m,
            "configurationOverrides",
            self.configuration_overrides.as_ref(),
        );
        m.insert("createdAt".into(), json!(time::wire(&self.created_at)));
        put(&mut m, "stateDetails", self.state_details.as_ref());
        put(&mut m, "failureReason", self.failure_reason.as_ref());
        m.insert("tags".into(), Value::Object(self.tags.clone()));
        Value::Object(m)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobTemplateRecord {
    pub id: String,
    pub name: String,
    pub arn: String,
    pub created_at: Timestamp,
    pub created_by: String,
    #[serde(default)]
    pub tags: Tags,
    /// As submitted (placeholders unresolved).
    pub job_template_data: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<String>,
}

impl JobTemplateRecord {
    pub fn to_wire(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), json!(self.name));
        m.insert("id".into(), json!(self.id));
        m.insert("arn".into(), json!(self.arn));
        m.insert("createdAt".into(), json!(time::wire(&self.created_at)));
        m.insert("createdBy".into(), json!(self.created_by));
        m.insert("tags".into(), Value::Object(self.tags.clone()));
        m.insert("jobTemplateData".into(), self.job_template_data.clone());
        put(&mut m, "kmsKeyArn", self.kms_key_arn.as_ref());
        Value::Object(m)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityConfigurationRecord {
    pub id: String,
    pub name: String,
    pub arn: String,
    pub created_at: Timestamp,
    pub created_by: String,
    /// Accepted by Create but absent from the response shape; kept for the controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_provider: Option<Value>,
    pub security_configuration_data: Value,
    #[serde(default)]
    pub tags: Tags,
}

impl SecurityConfigurationRecord {
    pub fn to_wire(&self) -> Value {
        let mut m = Map::new();
        m.insert("id".into(), json!(self.id));
        m.insert("name".into(), json!(self.name));
        m.insert("arn".into(), json!(self.arn));
        m.insert("createdAt".into(), json!(time::wire(&self.created_at)));
        m.insert("createdBy".into(), json!(self.created_by));
        m.insert(
            "securityConfigurationData".into(),
            self.security_configuration_data.clone(),
        );
        m.insert("tags".into(), Value::Object(self.tags.clone()));
        Value::Object(m)
    }
}
