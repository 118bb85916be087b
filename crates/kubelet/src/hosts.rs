//! Each pod's `/etc/hosts`: the cluster DNS of a single machine. Pods share the host's
//! network (each on its own loopback IP), so names are resolved by a hosts file per pod,
//! rewritten in place whenever services or pods change.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{Map, Value};

pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// Service (namespace, name) → the pod IPs it resolves to.
pub type ServiceIps = BTreeMap<(String, String), Vec<String>>;

/// The pod IPs each Service (namespace, name) resolves to: the IPs of the live pods its
/// selector matches. A pod is live once it has an IP and until it terminates, so a driver
/// already resolves its own service name while it starts.
///
/// Live pods are indexed by (namespace, label, value) first, so a Service looks only at
/// the pods carrying one of its selector's labels: this runs on every burst of pod changes,
/// with thousands of pods and hundreds of driver services on a busy node.
pub fn service_ips(services: &[Arc<Value>], pods: &[Arc<Value>]) -> ServiceIps {
    let mut by_label: HashMap<(&str, &str, &str), Vec<usize>> = HashMap::new();
    let mut live: Vec<(&Map<String, Value>, &str)> = Vec::new();
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
        live.push((labels, ip));
    }
    let mut out = BTreeMap::new();
    for service in services {
        let ns = service["metadata"]["namespace"].as_str().unwrap_or("");
        let name = service["metadata"]["name"].as_str().unwrap_or("");
        let key = (ns.to_string(), name.to_string());
        let Some(selector) = service["spec"]["selector"]
            .as_object()
            .filter(|s| !s.is_empty())
        else {
            out.insert(key, Vec::new());
            continue;
        };
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
        let mut ips: Vec<String> = candidates
            .iter()
            .map(|&i| live[i])
            .filter(|(labels, _)| selector.iter().all(|(k, v)| labels.get(k) == Some(v)))
            .map(|(_, ip)| ip.to_string())
            .collect();
        ips.sort();
        ips.dedup();
        out.insert(key, ips);
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
    for ((ns, name), ips) in services {
        if ns == "default" && name == "kubernetes" {
            continue;
        }
        let mut names = Vec::new();
        // Short names resolve in the pod's own namespace, as its DNS search path makes them.
        if ns == pod_namespace {
            names.push(name.clone());
        }
        names.push(format!("{name}.{ns}"));
        names.push(format!("{name}.{ns}.svc"));
        names.push(format!("{name}.{ns}.svc.{CLUSTER_DOMAIN}"));
        for ip in ips {
            lines.push(format!("{ip}\t{}", names.join(" ")));
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
            ips[&("a".to_string(), "app-svc".to_string())].is_empty(),
            "every selector label must match"
        );
        assert_eq!(
            ips[&("a".to_string(), "drv-svc".to_string())],
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
}
