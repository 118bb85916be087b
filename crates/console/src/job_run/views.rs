//! The job-run area's templates and their already formatted rows.

use askama::Template;

use super::timeline::Bar;
use crate::views::Nav;

/// One row of the pod chain.
pub struct PodRow {
    pub name: String,
    pub role: &'static str,
    pub exec_id: String,
    pub phase: String,
    pub node: String,
    pub restarts: String,
    pub started: String,
    pub ended: String,
    pub preempted: bool,
    /// Where the console knows the pod from when the API no longer has it.
    pub source: &'static str,
    /// Offer stdout/stderr links (the run ships CloudWatch logs).
    pub logs: bool,
}

/// One pod of the run's cost record (docs/cost.md).
pub struct CostRow {
    pub pod: String,
    pub role: String,
    pub instance: String,
    pub seconds: u64,
    pub vcpu_hours: String,
    pub gb_hours: String,
    pub ec2: String,
    pub emr: String,
    pub total: String,
}

pub struct TimelineRow {
    pub time: String,
    pub kind: &'static str,
    pub event_type: String,
    pub object: String,
    pub reason: String,
    pub message: String,
}

#[derive(Template)]
#[template(path = "job_run.html")]
pub struct JobRun {
    pub nav: Option<Nav>,
    pub title: String,
    pub csrf: String,
    pub vc_id: String,
    pub id: String,
    pub name: String,
    pub state: String,
    pub state_details: String,
    pub failure_reason: String,
    pub release: String,
    pub created: String,
    pub finished: String,
    pub duration: String,
    pub created_by: String,
    pub role: String,
    pub arn: String,
    /// The job driver, overrides and retry policy as indented JSON.
    pub configuration: String,
    pub cancellable: bool,
    pub notice: String,
    pub error: String,
    pub namespace: String,
    pub app_id: String,
    /// The Spark UI: the live driver UI while RUNNING, the History Server's page after.
    pub spark_ui: String,
    pub spark_ui_note: String,
    pub pods: Vec<PodRow>,
    pub pods_error: String,
    pub timeline: Vec<TimelineRow>,
    pub timeline_error: String,
    pub spark_note: String,
    pub bars: Vec<Bar>,
    pub chart_height: u32,
    pub chart_start: String,
    pub chart_end: String,
    pub logs_note: String,
    /// The cost record's totals, or why there is none yet.
    pub cost_total: String,
    pub cost_rows: Vec<CostRow>,
}

#[derive(Template)]
#[template(path = "run_log.html")]
pub struct LogPage {
    pub nav: Option<Nav>,
    pub title: String,
    pub vc_id: String,
    pub id: String,
    pub run_name: String,
    pub pod: String,
    pub stream: String,
    pub other_stream: String,
    pub text: String,
    pub shown_kib: usize,
    pub truncated: bool,
    pub source: String,
    pub error: String,
}

/// The Start job run form, with what was typed kept across an error.
#[derive(Template, Default)]
#[template(path = "run_start.html")]
pub struct StartForm {
    pub nav: Option<Nav>,
    pub title: String,
    pub csrf: String,
    pub vc_id: String,
    pub vc_name: String,
    pub error: String,
    pub name: String,
    pub role_arn: String,
    pub release: String,
    pub entry_point: String,
    pub arguments: String,
    pub spark_params: String,
    pub log_uri: String,
    pub log_group: String,
    pub stream_prefix: String,
}
