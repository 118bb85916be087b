//! The EndpointSlice controller (`discovery.k8s.io/v1`) and, beside it, the endpoints
//! controller's core `v1 Endpoints`, as kube-controller-manager runs them: for each Service
//! with a selector, the pods it selects — with their IPs, readiness, node and the ports its
//! `targetPort`s resolve to in each pod — in slices of at most [`MAX_ENDPOINTS_PER_SLICE`]
//! endpoints, labelled `kubernetes.io/service-name` and
//! `endpointslice.kubernetes.io/managed-by`, owned by the Service (the garbage collector
//! removes them with it). kube-proxy reads the slices; `kubectl describe svc` the Endpoints.
//!
//! `plan` is pure: Service + its namespace's pods → the slices' and the Endpoints' content.
//! `run` watches Services, pods and slices and writes the difference through the `Client`.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Map, Value};

use sparkyard_kube_apiserver::registry::{EventType, Resource};
use sparkyard_kube_apiserver::{ApiError, Client};

pub const SERVICES: Resource = Resource::new("", "services");
pub const ENDPOINT_SLICES: Resource = Resource::new("discovery.k8s.io", "endpointslices");
pub const ENDPOINTS: Resource = Resource::new("", "endpoints");
const PODS: Resource = Resource::new("", "pods");

pub const LABEL_SERVICE_NAME: &str = "kubernetes.io/service-name";
pub const LABEL_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "endpointslice-controller.k8s.io";
/// Set on the slices of a headless Service (`clusterIP: None`).
pub const LABEL_HEADLESS: &str = "service.kubernetes.io/headless";
/// kube-controller-manager's `--max-endpoints-per-slice` default.
pub const MAX_ENDPOINTS_PER_SLICE: usize = 100;
/// A burst of pod changes (a Deployment scaling, a Spark job's executors starting) is
/// folded into one pass.
const COALESCE: Duration = Duration::from_millis(50);

/// What one Service's endpoints should be.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Each slice's `endpoints` and `ports` (labels, owner and address type are common).
    pub slices: Vec<(Vec<Value>, Vec<Value>)>,
    /// The core Endpoints' `subsets`.
    pub subsets: Vec<Value>,
}

/// The pods whose ports resolve the same way: one or more slices, one Endpoints subset.
#[derive(Default)]
struct Group {
    ports: Vec<Value>,
    endpoints: Vec<Value>,
    /// Endpoints subset addresses.
    ready: Vec<Value>,
    not_ready: Vec<Value>,
}

fn is_ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// A Service port's `targetPort` in `pod`: a number as it is, a name looked up among the
/// containers' ports; `None` when the pod has no port of that name (the pod is then left
/// out of that port, as kube does).
pub fn resolve_target_port(service_port: &Value, pod: &Value) -> Option<u64> {
    let target = &service_port["targetPort"];
    if let Some(n) = target.as_u64() {
        return Some(n);
    }
    let Some(name) = target.as_str() else {
        return service_port["port"].as_u64();
    };
    if let Ok(n) = name.parse::<u64>() {
        return Some(n);
    }
    let protocol = service_port["protocol"].as_str().unwrap_or("TCP");
    pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|c| c["ports"].as_array().into_iter().flatten())
        .find(|p| p["name"] == name && p["protocol"].as_str().unwrap_or("TCP") == protocol)
        .and_then(|p| p["containerPort"].as_u64())
}

fn selects(selector: &Map<String, Value>, pod: &Value) -> bool {
    let labels = &pod["metadata"]["labels"];
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// kube's `ShouldPodBeInEndpoints`: the pod has an IP and has not finished. Terminating
/// pods stay in slices (marked `terminating`); the core Endpoints list them only when the
/// Service publishes not-ready addresses.
fn in_endpoints(pod: &Value) -> bool {
    let phase = pod["status"]["phase"].as_str().unwrap_or("");
    pod["status"]["podIP"]
        .as_str()
        .is_some_and(|ip| !ip.is_empty())
        && phase != "Succeeded"
        && phase != "Failed"
}

/// The slices and Endpoints of `service` from the pods of its namespace (pure).
pub fn plan(service: &Value, pods: &[Arc<Value>]) -> Option<Plan> {
    let selector = service["spec"]["selector"]
        .as_object()
        .filter(|s| !s.is_empty())?;
    let service_name = service["metadata"]["name"].as_str().unwrap_or("");
    let publish_not_ready = service["spec"]["publishNotReadyAddresses"] == true;
    let service_ports: Vec<Value> = service["spec"]["ports"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    // Pods whose ports resolve the same way share slices (and Endpoints subsets).
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    let mut selected: Vec<&Arc<Value>> = pods
        .iter()
        .filter(|p| in_endpoints(p) && selects(selector, p))
        .collect();
    selected.sort_by_key(|p| p["metadata"]["name"].as_str().unwrap_or("").to_string());
    for pod in selected {
        let ports: Vec<Value> = service_ports
            .iter()
            .filter_map(|sp| {
                let port = resolve_target_port(sp, pod)?;
                let mut p = json!({
                    "name": sp["name"].as_str().unwrap_or(""),
                    "port": port,
                    "protocol": sp["protocol"].as_str().unwrap_or("TCP"),
                });
                if let Some(app) = sp.get("appProtocol").filter(|a| !a.is_null()) {
                    p["appProtocol"] = app.clone();
                }
                Some(p)
            })
            .collect();
        let meta = &pod["metadata"];
        let serving = is_ready(pod);
        let terminating = !meta["deletionTimestamp"].is_null();
        // For compatibility, "ready" is never true for a terminating pod unless the
        // Service publishes not-ready addresses.
        let ready = publish_not_ready || (serving && !terminating);
        let ip = pod["status"]["podIP"].as_str().unwrap_or("");
        let target_ref = json!({
            "kind": "Pod",
            "namespace": meta["namespace"],
            "name": meta["name"],
            "uid": meta["uid"],
        });
        let node = pod["spec"]["nodeName"].as_str().filter(|n| !n.is_empty());
        let hostname = pod["spec"]["hostname"]
            .as_str()
            .filter(|h| !h.is_empty() && pod["spec"]["subdomain"] == service_name);
        let mut endpoint = json!({
            "addresses": [ip],
            "conditions": {"ready": ready, "serving": serving, "terminating": terminating},
            "targetRef": target_ref,
        });
        let mut address = json!({"ip": ip, "targetRef": target_ref});
        if let Some(node) = node {
            endpoint["nodeName"] = json!(node);
            address["nodeName"] = json!(node);
        }
        if let Some(hostname) = hostname {
            endpoint["hostname"] = json!(hostname);
            address["hostname"] = json!(hostname);
        }
        let key = serde_json::to_string(&ports).unwrap_or_default();
        let group = groups.entry(key).or_insert_with(|| Group {
            ports,
            ..Group::default()
        });
        group.endpoints.push(endpoint);
        if ready {
            group.ready.push(address);
        } else if !terminating {
            group.not_ready.push(address);
        }
    }
    let mut slices = Vec::new();
    let mut subsets = Vec::new();
    for Group {
        ports,
        endpoints,
        ready,
        not_ready,
    } in groups.into_values()
    {
        for chunk in endpoints.chunks(MAX_ENDPOINTS_PER_SLICE) {
            slices.push((chunk.to_vec(), ports.clone()));
        }
        if ports.is_empty() || (ready.is_empty() && not_ready.is_empty()) {
            continue;
        }
        let mut subset = json!({
            "ports": ports.iter().map(|p| {
                let mut p = p.clone();
                if p["name"] == "" {
                    p.as_object_mut().unwrap().remove("name");
                }
                p
            }).collect::<Vec<_>>(),
        });
        if !ready.is_empty() {
            subset["addresses"] = json!(ready);
        }
        if !not_ready.is_empty() {
            subset["notReadyAddresses"] = json!(not_ready);
        }
        subsets.push(subset);
    }
    if slices.is_empty() {
        // A Service that selects nothing still has one (empty) slice, as kube's
        // placeholder.
        slices.push((vec![], vec![]));
    }
    Some(Plan { slices, subsets })
}

/// The labels a Service's slices carry: the Service's own, then the controller's.
fn slice_labels(service: &Value) -> Value {
    let mut labels = service["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let name = service["metadata"]["name"].as_str().unwrap_or("");
    labels.insert(LABEL_SERVICE_NAME.into(), json!(name));
    labels.insert(LABEL_MANAGED_BY.into(), json!(MANAGED_BY));
    if service["spec"]["clusterIP"] == "None" {
        labels.insert(LABEL_HEADLESS.into(), json!(""));
    } else {
        labels.remove(LABEL_HEADLESS);
    }
    Value::Object(labels)
}

fn owner_reference(service: &Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "name": service["metadata"]["name"],
        "uid": service["metadata"]["uid"],
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// Whether `slice` is this controller's slice of `service` (by label and owner uid).
fn managed_slice_of(slice: &Value, service: &Value) -> bool {
    let labels = &slice["metadata"]["labels"];
    labels[LABEL_MANAGED_BY] == MANAGED_BY
        && labels[LABEL_SERVICE_NAME] == service["metadata"]["name"]
}

/// Brings one Service's slices and Endpoints to `plan`, writing only what differs.
fn apply(client: &Client, service: &Value, plan: Plan, existing: Vec<Arc<Value>>) {
    let ns = service["metadata"]["namespace"].as_str().unwrap_or("");
    let name = service["metadata"]["name"].as_str().unwrap_or("");
    let labels = slice_labels(service);
    let owner = owner_reference(service);
    let mut existing = existing;
    existing.sort_by_key(|s| s["metadata"]["name"].as_str().unwrap_or("").to_string());
    let mut existing = existing.into_iter();
    for (endpoints, ports) in plan.slices {
        let body = |mut slice: Value| {
            slice["metadata"]["labels"] = labels.clone();
            slice["metadata"]["ownerReferences"] = json!([owner]);
            slice["addressType"] = json!("IPv4");
            slice["endpoints"] = json!(endpoints);
            slice["ports"] = json!(ports);
            slice
        };
        let result = match existing.next() {
            Some(old) => {
                let new = body((*old).clone());
                if new == *old {
                    continue;
                }
                let slice_name = old["metadata"]["name"].as_str().unwrap_or("");
                client
                    .update(ENDPOINT_SLICES, ns, slice_name, new)
                    .map(|_| ())
            }
            None => {
                let new = body(json!({
                    "apiVersion": "discovery.k8s.io/v1",
                    "kind": "EndpointSlice",
                    "metadata": {"generateName": format!("{name}-")},
                }));
                client.create(ENDPOINT_SLICES, ns, new).map(|_| ())
            }
        };
        log_failure(result, ns, name, "EndpointSlice");
    }
    for extra in existing {
        let slice_name = extra["metadata"]["name"].as_str().unwrap_or("");
        let result = client
            .delete(
                ENDPOINT_SLICES,
                ns,
                slice_name,
                sparkyard_kube_apiserver::Propagation::Background,
                None,
            )
            .map(|_| ());
        log_failure(result, ns, name, "EndpointSlice");
    }
    apply_endpoints(client, service, plan.subsets);
}

/// The core `v1 Endpoints` of the same name, as kube's endpoints controller keeps it
/// (labels copied from the Service, plus `service.kubernetes.io/headless` when headless).
fn apply_endpoints(client: &Client, service: &Value, subsets: Vec<Value>) {
    let ns = service["metadata"]["namespace"].as_str().unwrap_or("");
    let name = service["metadata"]["name"].as_str().unwrap_or("");
    let mut labels = service["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    if service["spec"]["clusterIP"] == "None" {
        labels.insert(LABEL_HEADLESS.into(), json!(""));
    }
    let result = match client.get(ENDPOINTS, ns, name) {
        Some(old) => {
            let mut new = (*old).clone();
            new["metadata"]["labels"] = Value::Object(labels);
            new["subsets"] = json!(subsets);
            if new == *old {
                return;
            }
            client.update(ENDPOINTS, ns, name, new).map(|_| ())
        }
        None => client
            .create(
                ENDPOINTS,
                ns,
                json!({"apiVersion": "v1", "kind": "Endpoints",
                       "metadata": {"name": name, "labels": labels}, "subsets": subsets}),
            )
            .map(|_| ()),
    };
    log_failure(result, ns, name, "Endpoints");
}

fn log_failure(result: Result<(), ApiError>, ns: &str, service: &str, what: &str) {
    if let Err(e) = result {
        // A conflict or a vanished object: the watch brings the next pass.
        tracing::debug!(namespace = ns, service, error = %e, "cannot write {what}");
    }
}

/// Reconciles the Services `dirty` names (namespace → names; `None` = all of it).
fn reconcile(client: &Client, dirty: &BTreeMap<String, Option<BTreeSet<String>>>) {
    for (ns, names) in dirty {
        let (services, _) = client.list(SERVICES, Some(ns));
        let wanted: Vec<&Arc<Value>> = services
            .iter()
            .filter(|s| {
                names
                    .as_ref()
                    .is_none_or(|n| n.contains(s["metadata"]["name"].as_str().unwrap_or("")))
            })
            .collect();
        // Services without a selector have their endpoints written by someone else.
        if !wanted.iter().any(|s| {
            s["spec"]["selector"]
                .as_object()
                .is_some_and(|s| !s.is_empty())
        }) {
            continue;
        }
        let (pods, _) = client.list(PODS, Some(ns));
        let index = LabelIndex::new(&pods);
        let (slices, _) = client.list(ENDPOINT_SLICES, Some(ns));
        for service in wanted {
            let Some(plan) = plan(service, &index.candidates(service)) else {
                continue;
            };
            let existing: Vec<Arc<Value>> = slices
                .iter()
                .filter(|s| managed_slice_of(s, service))
                .cloned()
                .collect();
            apply(client, service, plan, existing);
        }
    }
}

/// A namespace's pods by label (key, value): a Service looks only at the pods carrying
/// its selector's rarest pair, not at every pod — a namespace with a Spark driver Service
/// per job run has hundreds of Services and thousands of pods.
struct LabelIndex<'a> {
    pods: &'a [Arc<Value>],
    by_label: std::collections::HashMap<(&'a str, &'a str), Vec<usize>>,
}

impl<'a> LabelIndex<'a> {
    fn new(pods: &'a [Arc<Value>]) -> Self {
        let mut by_label: std::collections::HashMap<(&str, &str), Vec<usize>> =
            std::collections::HashMap::new();
        for (i, pod) in pods.iter().enumerate() {
            for (key, value) in pod["metadata"]["labels"].as_object().into_iter().flatten() {
                if let Some(value) = value.as_str() {
                    by_label.entry((key.as_str(), value)).or_default().push(i);
                }
            }
        }
        Self { pods, by_label }
    }

    /// The pods that may match `service`'s selector (`plan` checks the whole selector).
    fn candidates(&self, service: &Value) -> Vec<Arc<Value>> {
        let Some(selector) = service["spec"]["selector"].as_object() else {
            return vec![];
        };
        selector
            .iter()
            .map(|(k, v)| {
                v.as_str()
                    .and_then(|v| self.by_label.get(&(k.as_str(), v)))
                    .map_or(&[][..], Vec::as_slice)
            })
            .min_by_key(|c| c.len())
            .unwrap_or(&[])
            .iter()
            .map(|&i| self.pods[i].clone())
            .collect()
    }
}

/// The controller: a full pass at start (slices left by an earlier run are brought up to
/// date), then a pass over the Services each burst of changes touches.
pub async fn run(client: Client) {
    loop {
        let revision = client.revision();
        let (namespaces, _) = client.list(Resource::new("", "namespaces"), None);
        let everything: BTreeMap<String, Option<BTreeSet<String>>> = namespaces
            .iter()
            .filter_map(|n| n["metadata"]["name"].as_str())
            .map(|n| (n.to_string(), None))
            .collect();
        reconcile(&client, &everything);
        delete_leftover_endpoints(&client);
        let (Ok(services), Ok(pods), Ok(slices)) = (
            client.watch(SERVICES, Some(revision)),
            client.watch(PODS, Some(revision)),
            client.watch(ENDPOINT_SLICES, Some(revision)),
        ) else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        // Any stream ending (it fell behind) means a fresh list: `None` marks it.
        let ended = || futures::stream::once(async { None });
        let tagged = |source: Source| move |event| Some((source, event));
        let mut merged = futures::stream::select(
            futures::stream::select(
                Box::pin(services.map(tagged(Source::Service)).chain(ended())),
                Box::pin(pods.map(tagged(Source::Pod)).chain(ended())),
            ),
            Box::pin(slices.map(tagged(Source::Slice)).chain(ended())),
        );
        'watch: loop {
            let Some(Some(first)) = merged.next().await else {
                break 'watch;
            };
            tokio::time::sleep(COALESCE).await;
            let mut events = vec![first];
            loop {
                match futures::FutureExt::now_or_never(merged.next()) {
                    Some(Some(Some(event))) => events.push(event),
                    Some(_) => {
                        reconcile_events(&client, events);
                        break 'watch;
                    }
                    None => break,
                }
            }
            reconcile_events(&client, events);
        }
    }
}

/// Which watch an event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Service,
    Pod,
    Slice,
}

fn reconcile_events(
    client: &Client,
    events: Vec<(Source, sparkyard_kube_apiserver::registry::Event)>,
) {
    let mut dirty: BTreeMap<String, Option<BTreeSet<String>>> = BTreeMap::new();
    let mut gone: HashSet<(String, String)> = HashSet::new();
    for (source, event) in events {
        let object = &event.object;
        let ns = object["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        match source {
            // Any Service of the namespace may select the pod (before or after the change).
            Source::Pod => {
                dirty.insert(ns, None);
            }
            Source::Slice => {
                let labels = &object["metadata"]["labels"];
                if labels[LABEL_MANAGED_BY] != MANAGED_BY {
                    continue;
                }
                if let Some(service) = labels[LABEL_SERVICE_NAME].as_str() {
                    mark(&mut dirty, ns, service);
                }
            }
            Source::Service => {
                let name = object["metadata"]["name"].as_str().unwrap_or("");
                let key = (ns.clone(), name.to_string());
                if event.event_type == EventType::Deleted {
                    // Endpoints of a Service that had a selector are this controller's.
                    if object["spec"]["selector"]
                        .as_object()
                        .is_some_and(|s| !s.is_empty())
                    {
                        gone.insert(key);
                    }
                } else {
                    gone.remove(&key);
                    mark(&mut dirty, ns, name);
                }
            }
        }
    }
    reconcile(client, &dirty);
    // The endpoints controller deletes the Endpoints of a deleted Service (slices go with
    // their owner through the garbage collector).
    for (ns, name) in gone {
        if client.get(SERVICES, &ns, &name).is_some() {
            continue;
        }
        let result = client
            .delete(
                ENDPOINTS,
                &ns,
                &name,
                sparkyard_kube_apiserver::Propagation::Background,
                None,
            )
            .map(|_| ());
        match result {
            Err(e) if e.code != 404 => {
                tracing::debug!(namespace = %ns, service = %name, error = %e, "cannot delete Endpoints")
            }
            _ => {}
        }
    }
}

/// At start, as kube's endpoints controller does (`checkLeftoverEndpoints`): Endpoints
/// whose Service was deleted while no controller watched are deleted, except leader-election
/// records (which are Endpoints without a Service by design).
fn delete_leftover_endpoints(client: &Client) {
    let (endpoints, _) = client.list(ENDPOINTS, None);
    for e in endpoints {
        let ns = e["metadata"]["namespace"].as_str().unwrap_or("");
        let name = e["metadata"]["name"].as_str().unwrap_or("");
        let leader = e["metadata"]["annotations"]
            .get("control-plane.alpha.kubernetes.io/leader")
            .is_some();
        if leader || client.get(SERVICES, ns, name).is_some() {
            continue;
        }
        let _ = client.delete(
            ENDPOINTS,
            ns,
            name,
            sparkyard_kube_apiserver::Propagation::Background,
            None,
        );
    }
}

fn mark(dirty: &mut BTreeMap<String, Option<BTreeSet<String>>>, ns: String, name: &str) {
    // `None` already means every Service of the namespace.
    if let Some(names) = dirty.entry(ns).or_insert_with(|| Some(BTreeSet::new())) {
        names.insert(name.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, ip: &str, ready: bool, labels: Value) -> Arc<Value> {
        Arc::new(json!({
            "metadata": {"name": name, "namespace": "a", "uid": format!("uid-{name}"), "labels": labels},
            "spec": {"nodeName": "n1", "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"phase": "Running", "podIP": ip,
                       "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
        }))
    }

    #[test]
    fn slices_list_selected_pods_with_readiness_and_named_ports() {
        let service = json!({
            "metadata": {"name": "web", "namespace": "a", "uid": "svc-uid", "labels": {"team": "x"}},
            "spec": {"selector": {"app": "web"}, "clusterIP": "127.10.96.7",
                     "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]},
        });
        let pods = vec![
            pod("w1", "127.1.0.2", true, json!({"app": "web"})),
            pod("w2", "127.1.0.3", false, json!({"app": "web"})),
            pod("other", "127.1.0.4", true, json!({"app": "db"})),
        ];
        let plan = plan(&service, &pods).unwrap();
        assert_eq!(plan.slices.len(), 1);
        let (endpoints, ports) = &plan.slices[0];
        assert_eq!(
            ports,
            &vec![json!({"name": "http", "port": 8080, "protocol": "TCP"})]
        );
        assert_eq!(endpoints.len(), 2);
        assert_eq!(endpoints[0]["addresses"], json!(["127.1.0.2"]));
        assert_eq!(
            endpoints[0]["conditions"],
            json!({"ready": true, "serving": true, "terminating": false})
        );
        assert_eq!(endpoints[1]["conditions"]["ready"], false);
        assert_eq!(endpoints[0]["targetRef"]["name"], "w1");
        assert_eq!(endpoints[0]["nodeName"], "n1");
        assert_eq!(plan.subsets[0]["addresses"][0]["ip"], "127.1.0.2");
        assert_eq!(plan.subsets[0]["notReadyAddresses"][0]["ip"], "127.1.0.3");
        let labels = slice_labels(&service);
        assert_eq!(labels[LABEL_SERVICE_NAME], "web");
        assert_eq!(labels[LABEL_MANAGED_BY], MANAGED_BY);
        assert_eq!(labels["team"], "x");
    }

    #[test]
    fn terminating_pods_are_serving_but_not_ready_and_publish_not_ready_overrides() {
        let mut p = (*pod("w1", "127.1.0.2", true, json!({"app": "web"}))).clone();
        p["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        let mut service = json!({
            "metadata": {"name": "web", "namespace": "a", "uid": "u"},
            "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]},
        });
        let plan1 = plan(&service, &[Arc::new(p.clone())]).unwrap();
        assert_eq!(
            plan1.slices[0].0[0]["conditions"],
            json!({"ready": false, "serving": true, "terminating": true})
        );
        assert!(plan1.subsets.is_empty(), "no terminating pod in Endpoints");
        service["spec"]["publishNotReadyAddresses"] = json!(true);
        let plan2 = plan(&service, &[Arc::new(p)]).unwrap();
        assert_eq!(plan2.slices[0].0[0]["conditions"]["ready"], true);
    }

    #[test]
    fn a_pod_without_the_named_port_is_left_out_of_it_and_no_selector_means_no_plan() {
        let service = json!({
            "metadata": {"name": "web", "namespace": "a"},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"}]},
        });
        let plan1 = plan(
            &service,
            &[pod("w1", "127.1.0.2", true, json!({"app": "web"}))],
        )
        .unwrap();
        assert_eq!(plan1.slices[0].1, Vec::<Value>::new());
        let empty = plan(&service, &[]).unwrap();
        assert_eq!(
            empty.slices,
            vec![(vec![], vec![])],
            "the placeholder slice"
        );
        let manual = json!({"metadata": {"name": "m"}, "spec": {"ports": [{"port": 1}]}});
        assert!(plan(&manual, &[]).is_none());
    }

    #[test]
    fn hostnames_are_set_for_the_pods_subdomain_service_only() {
        let mut p = (*pod("web-0", "127.1.0.2", true, json!({"app": "web"}))).clone();
        p["spec"]["hostname"] = json!("web-0");
        p["spec"]["subdomain"] = json!("web");
        let service = |name: &str| {
            json!({"metadata": {"name": name, "namespace": "a"},
                   "spec": {"clusterIP": "None", "selector": {"app": "web"}, "ports": [{"port": 80, "protocol": "TCP"}]}})
        };
        let p = Arc::new(p);
        let own = plan(&service("web"), std::slice::from_ref(&p)).unwrap();
        assert_eq!(own.slices[0].0[0]["hostname"], "web-0");
        let other = plan(&service("web-lb"), &[p]).unwrap();
        assert!(other.slices[0].0[0].get("hostname").is_none());
    }
}
