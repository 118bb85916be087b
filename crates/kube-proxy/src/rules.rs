//! What kube-proxy serves, as a pure function of the Services and EndpointSlices: one
//! frontend (an address it listens on) per TCP port of each Service with a cluster IP, and
//! per node port, each with the ready endpoints behind it. A frontend with no ready
//! endpoint is left out: nothing listens there, so a connection is refused — what
//! kube-proxy's `REJECT` rule gives a client.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use serde_json::Value;

/// The Service port a frontend belongs to (for logs): `namespace/name:port-name`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServicePortName {
    pub namespace: String,
    pub name: String,
    pub port: String,
}

impl std::fmt::Display for ServicePortName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)?;
        if !self.port.is_empty() {
            write!(f, ":{}", self.port)?;
        }
        Ok(())
    }
}

/// One listening address and where its connections go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frontend {
    pub service: ServicePortName,
    /// The ready endpoints, in a stable order (round-robin walks it).
    pub backends: Vec<SocketAddr>,
}

/// Listening address → frontend.
pub type Table = BTreeMap<SocketAddr, Frontend>;

/// The Services kube-proxy leaves alone: `default/kubernetes`, whose cluster IP the API
/// server itself listens on (its in-cluster address).
fn served_elsewhere(service: &Value) -> bool {
    service["metadata"]["namespace"] == "default" && service["metadata"]["name"] == "kubernetes"
}

/// The ready endpoints of each (namespace, service, port name), from the slices.
fn ready_endpoints(slices: &[Arc<Value>]) -> BTreeMap<(String, String, String), Vec<SocketAddr>> {
    let mut out: BTreeMap<(String, String, String), Vec<SocketAddr>> = BTreeMap::new();
    for slice in slices {
        if slice["addressType"] != "IPv4" {
            continue;
        }
        let ns = slice["metadata"]["namespace"].as_str().unwrap_or("");
        let Some(service) = slice["metadata"]["labels"]["kubernetes.io/service-name"].as_str()
        else {
            continue;
        };
        for port in slice["ports"].as_array().into_iter().flatten() {
            if port["protocol"].as_str().unwrap_or("TCP") != "TCP" {
                continue;
            }
            let Some(number) = port["port"].as_u64().and_then(|p| u16::try_from(p).ok()) else {
                continue;
            };
            let name = port["name"].as_str().unwrap_or("").to_string();
            let entry = out
                .entry((ns.to_string(), service.to_string(), name))
                .or_default();
            for endpoint in slice["endpoints"].as_array().into_iter().flatten() {
                // An unset `ready` means ready (the API's documented default).
                if endpoint["conditions"]["ready"] == false {
                    continue;
                }
                for address in endpoint["addresses"].as_array().into_iter().flatten() {
                    if let Some(ip) = address.as_str().and_then(|a| a.parse::<IpAddr>().ok()) {
                        entry.push(SocketAddr::new(ip, number));
                    }
                }
            }
        }
    }
    for backends in out.values_mut() {
        backends.sort();
        backends.dedup();
    }
    out
}

/// The frontends for `services` and `slices`; node ports listen on `node_address`.
pub fn table(services: &[Arc<Value>], slices: &[Arc<Value>], node_address: IpAddr) -> Table {
    let endpoints = ready_endpoints(slices);
    let mut table = Table::new();
    for service in services {
        let spec = &service["spec"];
        let kind = spec["type"].as_str().unwrap_or("ClusterIP");
        if kind == "ExternalName" || served_elsewhere(service) {
            continue;
        }
        let ns = service["metadata"]["namespace"].as_str().unwrap_or("");
        let name = service["metadata"]["name"].as_str().unwrap_or("");
        let cluster_ip = spec["clusterIP"]
            .as_str()
            .and_then(|ip| ip.parse::<IpAddr>().ok());
        for port in spec["ports"].as_array().into_iter().flatten() {
            if port["protocol"].as_str().unwrap_or("TCP") != "TCP" {
                continue;
            }
            let port_name = port["name"].as_str().unwrap_or("").to_string();
            let backends = endpoints
                .get(&(ns.to_string(), name.to_string(), port_name.clone()))
                .cloned()
                .unwrap_or_default();
            if backends.is_empty() {
                continue;
            }
            let frontend = Frontend {
                service: ServicePortName {
                    namespace: ns.into(),
                    name: name.into(),
                    port: port_name,
                },
                backends,
            };
            let number = port["port"].as_u64().and_then(|p| u16::try_from(p).ok());
            if let (Some(ip), Some(number)) = (cluster_ip, number) {
                table.insert(SocketAddr::new(ip, number), frontend.clone());
            }
            let node_port = port["nodePort"]
                .as_u64()
                .and_then(|p| u16::try_from(p).ok());
            if let (true, Some(node_port)) =
                (matches!(kind, "NodePort" | "LoadBalancer"), node_port)
            {
                table.insert(SocketAddr::new(node_address, node_port), frontend);
            }
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn slice(service: &str, port_name: &str, port: u16, endpoints: Value) -> Arc<Value> {
        Arc::new(json!({
            "metadata": {"namespace": "a", "name": format!("{service}-x"), "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4",
            "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
            "endpoints": endpoints,
        }))
    }

    #[test]
    fn cluster_ips_and_node_ports_get_ready_endpoints_only() {
        let services = vec![Arc::new(json!({
            "metadata": {"namespace": "a", "name": "web"},
            "spec": {"type": "NodePort", "clusterIP": "127.10.96.9",
                     "ports": [{"name": "http", "port": 80, "nodePort": 30080, "protocol": "TCP"}]},
        }))];
        let slices = vec![slice(
            "web",
            "http",
            8080,
            json!([
                {"addresses": ["127.1.0.3"], "conditions": {"ready": true}},
                {"addresses": ["127.1.0.2"], "conditions": {"ready": false}},
                {"addresses": ["127.1.0.4"]},
            ]),
        )];
        let t = table(&services, &slices, "127.0.0.1".parse().unwrap());
        let expected: Vec<SocketAddr> = vec![
            "127.1.0.3:8080".parse().unwrap(),
            "127.1.0.4:8080".parse().unwrap(),
        ];
        assert_eq!(
            t[&"127.10.96.9:80".parse().unwrap()].backends,
            expected,
            "not-ready endpoints are skipped"
        );
        assert_eq!(t[&"127.0.0.1:30080".parse().unwrap()].backends, expected);
        assert_eq!(
            t[&"127.10.96.9:80".parse().unwrap()].service.to_string(),
            "a/web:http"
        );
    }

    #[test]
    fn no_ready_endpoint_means_no_listener_and_special_services_are_skipped() {
        let services = vec![
            Arc::new(json!({"metadata": {"namespace": "a", "name": "idle"},
                            "spec": {"clusterIP": "127.10.96.10", "ports": [{"port": 80, "protocol": "TCP"}]}})),
            Arc::new(
                json!({"metadata": {"namespace": "default", "name": "kubernetes"},
                            "spec": {"clusterIP": "127.10.96.1", "ports": [{"name": "https", "port": 443, "protocol": "TCP"}]}}),
            ),
            Arc::new(json!({"metadata": {"namespace": "a", "name": "dns"},
                            "spec": {"clusterIP": "127.10.96.11", "ports": [{"port": 53, "protocol": "UDP"}]}})),
        ];
        let slices = vec![
            slice(
                "idle",
                "",
                8080,
                json!([{"addresses": ["127.1.0.2"], "conditions": {"ready": false}}]),
            ),
            slice(
                "dns",
                "",
                53,
                json!([{"addresses": ["127.1.0.2"], "conditions": {"ready": true}}]),
            ),
        ];
        let t = table(&services, &slices, "127.0.0.1".parse().unwrap());
        assert!(t.is_empty(), "{t:?}");
    }
}
