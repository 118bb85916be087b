//! Each pod's `/etc/hosts`: the cluster DNS of a single machine. Pods share the host's
//! network (each on its own loopback IP), so names are resolved by a hosts file per pod,
//! rewritten in place whenever services or pods change.
//!
//! The records are cluster DNS's: a Service with a cluster IP resolves to it (kube-proxy
//! listens there); a headless Service to the IPs of the pods it publishes, and each of
//! those with `hostname` and `subdomain` (a StatefulSet's pods) to
//! `<hostname>.<service>.<ns>.svc.cluster.local` as well.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{Map, Value};

pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// What a Service's names resolve to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceRecords {
    /// The cluster IP, or a headless Service's published pod IPs.
    pub ips: Vec<String>,
    /// A headless Service's pods with a hostname in its subdomain: (hostname, pod IP).
    pub hosts: Vec<(String, String)>,
}

/// Service (namespace, name) → its records.
pub type ServiceIps = BTreeMap<(String, String), ServiceRecords>;

/// Whether a headless Service's name resolves to `pod` (live, see [`pod_is_live`]): when
/// it is Ready, when the Service publishes not-ready addresses, or when no container has
/// a readiness probe. The last keeps today's rule for probe-less pods — they resolve from
/// the moment they have an IP, before their Ready condition is posted — because a Spark
/// driver resolves its own headless Service while it starts, and Spark's Service does not
/// set `publishNotReadyAddresses`. A pod with a readiness probe resolves only once ready,
/// as cluster DNS answers from the EndpointSlices.
fn published(pod: &Value, publish_not_ready: bool) -> bool {
    let ready = pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True");
    let probed = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c.get("readinessProbe").is_some_and(|p| !p.is_null()));
    ready || publish_not_ready || !probed
}

/// The records of each Service (namespace, name): its cluster IP, or for a headless one
/// the IPs of the live pods its selector matches that it publishes ([`published`]).
///
/// Live pods are indexed by (namespace, label, value) first, so a Service looks only at
/// the pods carrying one of its selector's labels: this runs on every burst of pod changes,
/// with thousands of pods and hundreds of driver services on a busy node.
pub fn service_ips(services: &[Arc<Value>], pods: &[Arc<Value>]) -> ServiceIps {
    let mut by_label: HashMap<(&str, &str, &str), Vec<usize>> = HashMap::new();
    let mut live: Vec<(&Map<String, Value>, &str, &Value)> = Vec::new();
    for pod in pods.iter().filter(|pod| pod_is_live(pod)) {
        let (Some(ip), Some(ns)) = (
            pod["status"]["podIP"].as_str(),
            pod["metadata"]["namespace"].as_str(),
        ) else {
            continue;
        };
        let Some(labels) = pod["metadata"]["labels"].as_object() else {
            continue;
        };
        for (key, value) in labels {
            if let Some(value) = value.as_str() {
                by_label
                    .entry((ns, key.as_str(), value))
                    .or_default()
                    .push(live.len());
            }
        }
        live.push((labels, ip, pod));
    }
    let mut out = BTreeMap::new();
    for service in services {
        let ns = service["metadata"]["namespace"].as_str().unwrap_or("");
        let name = service["metadata"]["name"].as_str().unwrap_or("");
        let key = (ns.to_string(), name.to_string());
        let spec = &service["spec"];
        if spec["type"] == "ExternalName" {
            continue;
        }
        let cluster_ip = spec["clusterIP"].as_str().unwrap_or("");
        if !cluster_ip.is_empty() && cluster_ip != "None" {
            out.insert(
                key,
                ServiceRecords {
                    ips: vec![cluster_ip.to_string()],
                    hosts: vec![],
                },
            );
            continue;
        }
        let Some(selector) = spec["selector"].as_object().filter(|s| !s.is_empty()) else {
            out.insert(key, ServiceRecords::default());
            continue;
        };
        let publish_not_ready = spec["publishNotReadyAddresses"] == true;
        // The pods with the selector's rarest pair, then the rest of the selector.
        let candidates = selector
            .iter()
            .map(|(k, v)| {
                v.as_str()
                    .and_then(|v| by_label.get(&(ns, k.as_str(), v)))
                    .map_or(&[][..], Vec::as_slice)
            })
            .min_by_key(|c| c.len())
            .unwrap_or(&[]);
        let mut records = ServiceRecords::default();
        for &(labels, ip, pod) in candidates.iter().map(|&i| &live[i]) {
            if !selector.iter().all(|(k, v)| labels.get(k) == Some(v))
                || !published(pod, publish_not_ready)
            {
                continue;
            }
            records.ips.push(ip.to_string());
            let hostname = pod["spec"]["hostname"].as_str().filter(|h| !h.is_empty());
            if let (Some(hostname), true) = (hostname, pod["spec"]["subdomain"] == name) {
                records.hosts.push((hostname.to_string(), ip.to_string()));
            }
        }
        records.ips.sort();
        records.ips.dedup();
        records.hosts.sort();
        out.insert(key, records);
    }
    out
}

fn pod_is_live(pod: &Value) -> bool {
    let phase = pod["status"]["phase"].as_str().unwrap_or("");
    pod["metadata"]["deletionTimestamp"].is_null() && phase != "Succeeded" && phase != "Failed"
}

/// The hosts file of one pod.
pub fn render(
    pod_namespace: &str,
    pod_ip: &str,
    hostname: &str,
    fqdn: Option<&str>,
    api_ip: &str,
    services: &ServiceIps,
) -> String {
    own_lines(pod_ip, hostname, fqdn) + &services_block(pod_namespace, api_ip, services)
}

/// The lines about the pod itself.
pub fn own_lines(pod_ip: &str, hostname: &str, fqdn: Option<&str>) -> String {
    let own = match fqdn {
        Some(fqdn) => format!("{pod_ip}\t{fqdn}\t{hostname}"),
        None => format!("{pod_ip}\t{hostname}"),
    };
    format!(
        "# Kubernetes-managed hosts file (sparkyard kubelet).\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{own}\n"
    )
}

/// The API server's and the Services' lines, the same for every pod of `pod_namespace`
/// (rendered once per namespace on each refresh).
pub fn services_block(pod_namespace: &str, api_ip: &str, services: &ServiceIps) -> String {
    let mut lines = Vec::new();
    // `kubernetes` alone resolves through the search path of pods in `default` only, but
    // clients expect it everywhere unless the namespace has its own `kubernetes` service.
    let own_kubernetes =
        services.contains_key(&(pod_namespace.to_string(), "kubernetes".to_string()));
    let mut api_names = vec![];
    if !own_kubernetes {
        api_names.push("kubernetes".to_string());
    }
    api_names.extend(["kubernetes.default", "kubernetes.default.svc"].map(String::from));
    api_names.push(format!("kubernetes.default.svc.{CLUSTER_DOMAIN}"));
    lines.push(format!("{api_ip}\t{}", api_names.join(" ")));
    // Short names resolve in the pod's own namespace, as its DNS search path makes them.
    let names = |name: &str, ns: &str| {
        let mut names = Vec::new();
        if ns == pod_namespace {
            names.push(name.to_string());
        }
        names.push(format!("{name}.{ns}"));
        names.push(format!("{name}.{ns}.svc"));
        names.push(format!("{name}.{ns}.svc.{CLUSTER_DOMAIN}"));
        names.join(" ")
    };
    for ((ns, name), records) in services {
        if ns == "default" && name == "kubernetes" {
            continue;
        }
        let service_names = names(name, ns);
        for ip in &records.ips {
            lines.push(format!("{ip}\t{service_names}"));
        }
        for (hostname, ip) in &records.hosts {
            lines.push(format!(
                "{ip}\t{}",
                names(&format!("{hostname}.{name}"), ns)
            ));
        }
    }
    lines.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn services_resolve_to_their_live_pods_per_namespace() {
        let svc = Arc::new(
            json!({"metadata": {"name": "drv-svc", "namespace": "a"}, "spec": {"clusterIP": "None", "selector": {"role": "driver"}}}),
        );
        let pods = vec![
            Arc::new(
                json!({"metadata": {"name": "d", "namespace": "a", "labels": {"role": "driver"}}, "status": {"phase": "Running", "podIP": "127.1.0.3"}}),
            ),
            Arc::new(
                json!({"metadata": {"name": "old", "namespace": "a", "labels": {"role": "driver"}}, "status": {"phase": "Succeeded", "podIP": "127.1.0.2"}}),
            ),
            Arc::new(
                json!({"metadata": {"name": "other", "namespace": "b", "labels": {"role": "driver"}}, "status": {"phase": "Running", "podIP": "127.1.0.4"}}),
            ),
        ];
        let narrower = Arc::new(
            json!({"metadata": {"name": "app-svc", "namespace": "a"}, "spec": {"selector": {"role": "driver", "app": "x"}}}),
        );
        let ips = service_ips(&[svc, narrower], &pods);
        assert!(
            ips[&("a".to_string(), "app-svc".to_string())]
                .ips
                .is_empty(),
            "every selector label must match"
        );
        assert_eq!(
            ips[&("a".to_string(), "drv-svc".to_string())].ips,
            ["127.1.0.3"]
        );
        let in_a = render("a", "127.1.0.9", "exec-1", None, "127.10.96.1", &ips);
        assert!(in_a
            .contains("127.1.0.3\tdrv-svc drv-svc.a drv-svc.a.svc drv-svc.a.svc.cluster.local\n"));
        assert!(in_a.contains("127.10.96.1\tkubernetes kubernetes.default kubernetes.default.svc kubernetes.default.svc.cluster.local\n"));
        assert!(in_a.contains("127.1.0.9\texec-1\n"));
        assert!(in_a.contains("127.0.0.1\tlocalhost\n"));
        let in_b = render("b", "127.1.0.4", "other", None, "127.10.96.1", &ips);
        assert!(
            in_b.contains("127.1.0.3\tdrv-svc.a drv-svc.a.svc"),
            "no short name across namespaces"
        );
    }

    #[test]
    fn cluster_ips_readiness_and_statefulset_pod_names() {
        let web = Arc::new(
            json!({"metadata": {"name": "web", "namespace": "a"}, "spec": {"clusterIP": "127.10.96.20", "selector": {"app": "web"}}}),
        );
        let db = Arc::new(
            json!({"metadata": {"name": "db", "namespace": "a"}, "spec": {"clusterIP": "None", "selector": {"app": "db"}}}),
        );
        let probed = |name: &str, ip: &str, ready: bool| {
            Arc::new(json!({
                "metadata": {"name": name, "namespace": "a", "labels": {"app": "db"}},
                "spec": {"hostname": name, "subdomain": "db",
                         "containers": [{"name": "c", "readinessProbe": {"tcpSocket": {"port": 5432}}}]},
                "status": {"phase": "Running", "podIP": ip,
                           "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
            }))
        };
        let pods = vec![
            probed("db-0", "127.1.0.5", true),
            probed("db-1", "127.1.0.6", false),
        ];
        let ips = service_ips(&[web, db.clone()], &pods);
        let text = services_block("a", "127.10.96.1", &ips);
        assert!(text.contains("127.10.96.20\tweb web.a web.a.svc web.a.svc.cluster.local\n"));
        assert!(text.contains("127.1.0.5\tdb db.a db.a.svc db.a.svc.cluster.local\n"));
        assert!(
            !text.contains("127.1.0.6"),
            "an unready pod with a readiness probe is not published"
        );
        assert!(text
            .contains("127.1.0.5\tdb-0.db db-0.db.a db-0.db.a.svc db-0.db.a.svc.cluster.local\n"));
        let mut publishing = (*db).clone();
        publishing["spec"]["publishNotReadyAddresses"] = json!(true);
        let ips = service_ips(&[Arc::new(publishing)], &pods);
        assert_eq!(
            ips[&("a".to_string(), "db".to_string())].ips,
            ["127.1.0.5", "127.1.0.6"]
        );
    }
}
