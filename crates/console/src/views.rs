//! The pages' templates (`templates/*.html`, compiled in by askama, HTML-escaped) and the
//! rows they show, already formatted.

use askama::Template;

/// The signed-in bar: who, and the sign-out form's CSRF token.
pub struct Nav {
    pub arn: String,
    pub csrf: String,
}

#[derive(Template)]
#[template(path = "signin.html")]
pub struct SignIn {
    pub nav: Option<Nav>,
    pub title: String,
    pub csrf: String,
    pub error: String,
    pub access_key_id: String,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct Message {
    pub nav: Option<Nav>,
    pub title: String,
    pub text: String,
    pub link: String,
    pub link_text: String,
    /// Follow `link` at once (`<meta http-equiv="refresh">`).
    pub refresh: bool,
}

pub struct VcRow {
    pub id: String,
    pub name: String,
    pub state: String,
    pub namespace: String,
    pub created: String,
    /// RUNNING job runs, or `—` when the principal may not list them.
    pub running: String,
}

#[derive(Template)]
#[template(path = "virtual_clusters.html")]
pub struct VirtualClusters {
    pub nav: Option<Nav>,
    pub title: String,
    pub rows: Vec<VcRow>,
    pub error: String,
}

pub struct RunRow {
    pub id: String,
    pub name: String,
    pub state: String,
    pub created: String,
    pub release: String,
    pub duration: String,
    /// EC2 share + EMR charge from the run's cost record; `—` until it has one.
    pub cost: String,
}

/// One `<option>` of the state filter.
pub struct Choice {
    pub value: &'static str,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "job_runs.html")]
pub struct JobRuns {
    pub nav: Option<Nav>,
    pub title: String,
    /// The Delete form's CSRF token.
    pub csrf: String,
    /// Offer Delete (the cluster is RUNNING).
    pub deletable: bool,
    pub notice: String,
    pub vc_id: String,
    pub vc_name: String,
    pub vc_state: String,
    pub vc_namespace: String,
    pub rows: Vec<RunRow>,
    /// The listed runs' cost records summed (docs/cost.md); empty when none has one.
    pub cost_total: String,
    pub error: String,
    pub choices: Vec<Choice>,
    pub name: String,
    pub created_after: String,
    pub filtered: bool,
}
