//! The EKS area of the console: the cluster overview, Compute (node groups, Karpenter,
//! nodes), Resources (every resource type the API server serves) and Events — the EKS
//! console's tabs, read as the signed-in principal: EKS through the AWS API
//! (`crate::api`), Kubernetes with the principal's own EKS token (`crate::kube`), so IAM
//! and RBAC decide what each part shows. A part the principal may not read says so and
//! the rest of the page still renders.

mod capacity;
mod compute;
mod events;
mod format;
mod karpenter;
mod node;
mod object;
mod resources;
mod tree;

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::Value;

use crate::api::ApiError;
use crate::kube::KubeError;
use crate::pages::{self, nav, page, session_or_redirect, text};
use crate::sessions::Session;
use crate::views::Nav;
use crate::Console;

pub(crate) fn routes() -> Router<Console> {
    Router::new()
        .route("/eks", get(overview))
        .route("/eks/compute", get(compute::page_handler))
        .route(
            "/eks/compute/node-groups/{nodegroup}/scale",
            get(compute::scale_page).post(compute::scale),
        )
        .route("/eks/nodes/{name}", get(node::page_handler))
        .route("/eks/resources", get(resources::index))
        .route(
            "/eks/resources/{group}/{version}/{plural}",
            get(resources::list),
        )
        .route(
            "/eks/resources/{group}/{version}/{plural}/{namespace}/{name}",
            get(object::page_handler),
        )
        .route("/eks/events", get(events::page_handler))
}

/// The signed-in principal's view of the cluster: every read of a page goes through it.
pub(crate) struct Reader<'a> {
    console: &'a Console,
    session: &'a Session,
}

impl<'a> Reader<'a> {
    fn new(console: &'a Console, session: &'a Session) -> Self {
        Reader { console, session }
    }

    fn cluster_name(&self) -> &str {
        &self.console.inner.settings.cluster_name
    }

    async fn kube_get(&self, path: &str) -> Result<Value, KubeError> {
        let inner = &self.console.inner;
        inner
            .kube
            .get(&inner.keyring, &self.session.principal, path)
            .await
    }

    async fn kube_list(&self, path: &str) -> Result<Vec<Value>, KubeError> {
        let inner = &self.console.inner;
        inner
            .kube
            .list(&inner.keyring, &self.session.principal, path)
            .await
    }

    async fn kube_table(&self, path: &str) -> Result<Value, KubeError> {
        let inner = &self.console.inner;
        inner
            .kube
            .get_table(&inner.keyring, &self.session.principal, path)
            .await
    }

    /// An EKS REST-JSON call (`/clusters/<name>…`).
    async fn eks(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ApiError> {
        self.console
            .inner
            .api
            .rest(&self.session.principal, "eks", method, path, body)
            .await
    }

    fn nav(&self) -> Option<Nav> {
        nav(self.session)
    }
}

/// What a page says about a Kubernetes read that failed: "not authorized" for RBAC's
/// refusals, the API server's reason otherwise.
pub(crate) fn kube_note(what: &str, e: &KubeError) -> String {
    if e.denied() {
        format!("Not authorized to {what}: {}", e.message)
    } else {
        format!("Could not {what}: {} ({})", e.message, e.reason)
    }
}

/// The same for an AWS API call.
pub(crate) fn api_note(what: &str, e: &ApiError) -> String {
    if e.denied() {
        format!("Not authorized to {what}: {} ({})", e.message, e.code)
    } else {
        format!("Could not {what}: {} ({})", e.message, e.code)
    }
}

/// A `?namespace=` filter, kept only when it is a namespace name.
#[derive(serde::Deserialize, Default)]
pub(crate) struct NamespaceQuery {
    #[serde(default)]
    namespace: Option<String>,
}

impl NamespaceQuery {
    /// The valid namespace asked for (empty: all), or the refusal to show.
    fn namespace(&self) -> Result<String, String> {
        match self.namespace.as_deref().map(str::trim) {
            None | Some("") => Ok(String::new()),
            Some(ns) if format::valid_dns_label(ns) => Ok(ns.to_string()),
            Some(ns) => Err(format!("\u{201c}{ns}\u{201d} is not a namespace name.")),
        }
    }
}

// ---- overview ---------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "eks_overview.html")]
struct Overview {
    nav: Option<Nav>,
    title: String,
    tab: &'static str,
    cluster_name: String,
    status: String,
    version: String,
    platform_version: String,
    endpoint: String,
    arn: String,
    created: String,
    role_arn: String,
    cluster_error: String,
    counts: Vec<Count>,
}

/// One of the overview's object counts, or why it is missing.
struct Count {
    id: &'static str,
    label: &'static str,
    href: &'static str,
    value: String,
    note: String,
}

async fn overview(State(console): State<Console>, headers: HeaderMap) -> Response {
    let session = match session_or_redirect(&console, &headers) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let reader = Reader::new(&console, &session);
    let name = reader.cluster_name().to_string();
    let describe_path = format!("/clusters/{name}");
    let (cluster, nodes, pods, namespaces) = tokio::join!(
        reader.eks(Method::GET, &describe_path, None),
        reader.kube_list("/api/v1/nodes"),
        reader.kube_list("/api/v1/pods"),
        reader.kube_list("/api/v1/namespaces"),
    );
    let count = |id, label, href, what, r: Result<Vec<Value>, KubeError>| match r {
        Ok(items) => Count {
            id,
            label,
            href,
            value: items.len().to_string(),
            note: String::new(),
        },
        Err(e) => Count {
            id,
            label,
            href,
            value: "—".into(),
            note: kube_note(what, &e),
        },
    };
    let counts = vec![
        count("count-nodes", "Nodes", "/eks/compute", "list nodes", nodes),
        count(
            "count-pods",
            "Pods",
            "/eks/resources/core/v1/pods",
            "list pods in all namespaces",
            pods,
        ),
        count(
            "count-namespaces",
            "Namespaces",
            "/eks/resources/core/v1/namespaces",
            "list namespaces",
            namespaces,
        ),
    ];
    let (c, cluster_error) = match cluster {
        Ok(v) => (
            v.get("cluster").cloned().unwrap_or(Value::Null),
            String::new(),
        ),
        Err(e) => (Value::Null, api_note("describe the cluster", &e)),
    };
    let field = |p: &str| pages::or_dash(text(&c, p));
    page(
        StatusCode::OK,
        &Overview {
            nav: reader.nav(),
            title: format!("EKS · {name}"),
            tab: "overview",
            status: field("/status"),
            version: field("/version"),
            platform_version: field("/platformVersion"),
            endpoint: field("/endpoint"),
            arn: field("/arn"),
            created: pages::shown_time(pages::timestamp(&c, "/createdAt")),
            role_arn: field("/roleArn"),
            cluster_name: name,
            cluster_error,
            counts,
        },
    )
}
