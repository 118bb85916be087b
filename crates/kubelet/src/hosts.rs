//! Each pod's `/etc/hosts`: the cluster DNS of a single machine. Pods share the host's
//! network (each on its own loopback IP), so names are resolved by a hosts file per pod,
//! rewritten in place whenever services or pods change.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// The pod IPs each Service (namespace, name) resolves to: the IPs of the live pods its
/// selector matches. A pod is live once it has an IP and until it terminates, so a driver
/// already resolves its own service name while it starts.
pub fn service_ips(
    services: &[Arc<Value>],
    pods: &[Arc<Value>],
) -> BTreeMap<(String, String), Vec<String>> {
    let mut out = BTreeMap::new();
    for service in services {
        let ns = service["metadata"]["namespace"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let name = service["metadata"]["name"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let Some(selector) = service["spec"]["selector"]
            .as_object()
            .filter(|s| !s.is_empty())
        else {
            out.insert((ns, name), Vec::new());
            continue;
        };
        let mut ips: Vec<String> = pods
            .iter()
            .filter(|pod| pod["metadata"]["namespace"] == ns.as_str() && pod_is_live(pod))
            .filter(|pod| {
                selector
                    .iter()
                    .all(|(k, v)| pod["metadata"]["labels"][k] == *v)
            })
            .filter_map(|pod| pod["status"]["podIP"].as_str().map(str::to_string))
            .collect();
        ips.sort();
        ips.dedup();
        out.insert((ns, name), ips);
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
    services: &BTreeMap<(String, String), Vec<String>>,
) -> String {
    let mut lines = vec![
        "# Kubernetes-managed hosts file (sparkyard kubelet).".to_string(),
        "127.0.0.1\tlocalhost".to_string(),
        "::1\tlocalhost ip6-localhost ip6-loopback".to_string(),
    ];
    match fqdn {
        Some(fqdn) => lines.push(format!("{pod_ip}\t{fqdn}\t{hostname}")),
        None => lines.push(format!("{pod_ip}\t{hostname}")),
    }
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
        let ips = service_ips(&[svc], &pods);
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
