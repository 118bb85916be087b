//! Services: defaulting, the ClusterIP allocator (the service CIDR, by default
//! `127.10.96.0/20`: loopback addresses kube-proxy can bind without root) and the NodePort
//! allocator (30000-32767), with kube-apiserver's validation messages, as the Service REST
//! storage does on create and update.

use std::net::Ipv4Addr;

use serde_json::{json, Value};

use super::{invalid, set_default, Causes};
use crate::error::ApiError;
use crate::resources;
use crate::ApiServer;

/// The default `--service-cluster-ip-range` (`[cluster] service-cidr`).
pub const DEFAULT_SERVICE_CIDR: &str = "127.10.96.0/20";
/// kube-apiserver's default `--service-node-port-range`.
pub const NODE_PORT_RANGE: std::ops::RangeInclusive<u16> = 30000..=32767;

/// An IPv4 range in CIDR notation (the service CIDR).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Cidr {
    base: u32,
    bits: u8,
}

impl Ipv4Cidr {
    /// Parses `a.b.c.d/n` (the host bits must be zero; at least 4 addresses).
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad =
            || format!("invalid CIDR {text:?}: expected an IPv4 range such as 127.10.96.0/20");
        let (ip, bits) = text.split_once('/').ok_or_else(bad)?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
        let bits: u8 = bits.parse().map_err(|_| bad())?;
        if bits > 30 {
            return Err(bad());
        }
        let base = u32::from(ip);
        if base & !Self::mask(bits) != 0 {
            return Err(format!("invalid CIDR {text:?}: host bits are set"));
        }
        Ok(Self { base, bits })
    }

    fn mask(bits: u8) -> u32 {
        if bits == 0 {
            0
        } else {
            u32::MAX << (32 - bits)
        }
    }

    fn size(&self) -> u32 {
        1u32 << (32 - self.bits)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & Self::mask(self.bits) == self.base
    }

    /// Whether `ip` may be a Service's address: inside, and neither the network nor the
    /// broadcast address (kube's allocator reserves both).
    pub fn usable(&self, ip: Ipv4Addr) -> bool {
        let offset = u32::from(ip).wrapping_sub(self.base);
        self.contains(ip) && offset != 0 && offset != self.size() - 1
    }
}

impl Default for Ipv4Cidr {
    fn default() -> Self {
        Self::parse(DEFAULT_SERVICE_CIDR).expect("the default service CIDR parses")
    }
}

impl std::fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", Ipv4Addr::from(self.base), self.bits)
    }
}

/// Service defaults that need no allocation.
pub fn default_service(service: &mut Value) {
    if !service.get("spec").is_some_and(Value::is_object) {
        service["spec"] = json!({});
    }
    let spec = &mut service["spec"];
    set_default(spec, "type", json!("ClusterIP"));
    set_default(spec, "sessionAffinity", json!("None"));
    if spec["type"] != "ExternalName" {
        set_default(spec, "ipFamilies", json!(["IPv4"]));
        set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
        set_default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if matches!(spec["type"].as_str(), Some("NodePort" | "LoadBalancer")) {
        set_default(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports {
            set_default(port, "protocol", json!("TCP"));
            if port.get("targetPort").is_none() {
                port["targetPort"] = port.get("port").cloned().unwrap_or(json!(0));
            }
        }
    }
    set_default(service, "status", json!({"loadBalancer": {}}));
}

/// A free IP of `cidr` (never its network or broadcast address), given the IPs in use.
pub fn allocate_cluster_ip(cidr: &Ipv4Cidr, used: &[String]) -> Option<String> {
    let size = cidr.size();
    // Random probes first (as kube's allocator spreads its picks), then a scan, so a
    // nearly full range still finds its last free address.
    let start = rand::random::<u32>() % size;
    let probes = (0..64)
        .map(|_| rand::random::<u32>() % size)
        .chain((0..size).map(|i| (start + i) % size));
    for offset in probes {
        let ip = Ipv4Addr::from(cidr.base + offset);
        if cidr.usable(ip) && !used.iter().any(|u| *u == ip.to_string()) {
            return Some(ip.to_string());
        }
    }
    None
}

/// A free node port of 30000-32767, given the ports in use.
pub fn allocate_node_port(used: &[u16]) -> Option<u16> {
    let size = (NODE_PORT_RANGE.end() - NODE_PORT_RANGE.start() + 1) as u32;
    let start = rand::random::<u32>() % size;
    (0..size)
        .map(|i| NODE_PORT_RANGE.start() + ((start + i) % size) as u16)
        .find(|p| !used.contains(p))
}

/// The cluster IPs in use, leaving out the service `skip` (namespace, name) itself.
fn used_cluster_ips(server: &ApiServer, skip: Option<(&str, &str)>) -> Vec<String> {
    let (services, _) = server.registry.list(resources::SERVICES.resource(), None);
    services
        .iter()
        .filter(|s| skip.is_none_or(|skip| key_of(s) != skip))
        .flat_map(|s| {
            let mut ips: Vec<String> = s
                .pointer("/spec/clusterIPs")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|ip| ip.as_str().map(String::from))
                .collect();
            ips.extend(
                s.pointer("/spec/clusterIP")
                    .and_then(Value::as_str)
                    .map(String::from),
            );
            ips
        })
        .collect()
}

fn key_of(service: &Value) -> (&str, &str) {
    (
        service
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or(""),
        service
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or(""),
    )
}

/// The node ports in use, leaving out the service `skip` (namespace, name) itself.
fn used_node_ports(server: &ApiServer, skip: Option<(&str, &str)>) -> Vec<u16> {
    let (services, _) = server.registry.list(resources::SERVICES.resource(), None);
    services
        .iter()
        .filter(|s| skip.is_none_or(|skip| key_of(s) != skip))
        .flat_map(|s| {
            s.pointer("/spec/ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|p| p["nodePort"].as_u64())
                .filter_map(|p| u16::try_from(p).ok())
                .collect::<Vec<_>>()
        })
        .collect()
}

pub(super) fn admit_service_create(
    server: &ApiServer,
    ns: &str,
    service: &mut Value,
) -> Result<(), ApiError> {
    default_service(service);
    let mut causes = Causes::new();
    let kind = service["spec"]["type"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if !matches!(
        kind.as_str(),
        "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName"
    ) {
        causes.push(("spec.type".into(), format!("Unsupported value: \"{kind}\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"")));
    }
    let requested = service
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let headless = requested == "None";
    if !headless
        && kind != "ExternalName"
        && service
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .is_none_or(|p| p.is_empty())
    {
        causes.push(("spec.ports".into(), "Required value".into()));
    }
    if headless && matches!(kind.as_str(), "NodePort" | "LoadBalancer") {
        causes.push((
            "spec.clusterIPs[0]".into(),
            format!("Invalid value: \"None\": may not be set to 'None' for {kind} services"),
        ));
    }
    invalid(&resources::SERVICES, service, causes)?;
    if kind == "ExternalName" || headless {
        if headless {
            service["spec"]["clusterIPs"] = json!(["None"]);
        }
        return Ok(());
    }
    let cidr = server.service_cidr();
    let used = used_cluster_ips(server, None);
    let ip = if requested.is_empty() {
        allocate_cluster_ip(&cidr, &used)
            .ok_or_else(|| ApiError::internal("failed to allocate a serviceIP: range is full"))?
    } else {
        let failed = |why: &str| {
            invalid(&resources::SERVICES, service, vec![(
                "spec.clusterIPs".into(),
                format!("Invalid value: []string{{\"{requested}\"}}: failed to allocate IP {requested}: {why}"),
            )])
        };
        // `default/kubernetes` is the in-cluster API address (`[cluster] service-address`),
        // which the API server itself listens on and need not lie in the range (kube's
        // bootstrap controller takes its IP from the range's start; here it is configured).
        let api_service = ns == "default" && service["metadata"]["name"] == "kubernetes";
        let in_range = api_service || requested.parse().is_ok_and(|ip| cidr.usable(ip));
        if !in_range {
            failed(&format!(
                "provided IP is not in the valid range. The range of valid IPs is {cidr}"
            ))?;
        }
        if used.contains(&requested) {
            failed("provided IP is already allocated")?;
        }
        requested
    };
    service["spec"]["clusterIP"] = json!(ip);
    service["spec"]["clusterIPs"] = json!([ip]);
    assign_node_ports(server, None, service)
}

/// An update: a Service that becomes (or stays) `NodePort`/`LoadBalancer` keeps its node
/// ports and gets one for each new port; one that becomes `ClusterIP` gives them back.
pub(super) fn admit_service_update(
    server: &ApiServer,
    old: &Value,
    service: &mut Value,
) -> Result<(), ApiError> {
    let kind = service["spec"]["type"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if !matches!(kind.as_str(), "NodePort" | "LoadBalancer") {
        if let Some(ports) = service["spec"]["ports"].as_array_mut() {
            for port in ports {
                if let Some(port) = port.as_object_mut() {
                    port.remove("nodePort");
                }
            }
        }
        return Ok(());
    }
    let (ns, name) = key_of(old);
    let (ns, name) = (ns.to_string(), name.to_string());
    // A port that had a node port and comes back without one keeps it (kubectl apply
    // of a manifest that never named one).
    let old_ports = old
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(ports) = service["spec"]["ports"].as_array_mut() {
        for port in ports.iter_mut() {
            if port.get("nodePort").is_none_or(Value::is_null) {
                let same = old_ports
                    .iter()
                    .find(|o| o["port"] == port["port"] && o["protocol"] == port["protocol"]);
                if let Some(node_port) = same.and_then(|o| o.get("nodePort")) {
                    port["nodePort"] = node_port.clone();
                }
            }
        }
    }
    assign_node_ports(server, Some((&ns, &name)), service)
}

/// Validates requested node ports (range, already allocated) and allocates the missing
/// ones of a `NodePort`/`LoadBalancer` Service.
fn assign_node_ports(
    server: &ApiServer,
    this: Option<(&str, &str)>,
    service: &mut Value,
) -> Result<(), ApiError> {
    if !matches!(
        service["spec"]["type"].as_str(),
        Some("NodePort" | "LoadBalancer")
    ) {
        return Ok(());
    }
    let mut used = used_node_ports(server, this);
    let mut causes = Causes::new();
    let ports = service["spec"]["ports"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut assigned = ports.clone();
    for (i, port) in ports.iter().enumerate() {
        let Some(requested) = port.get("nodePort").filter(|p| !p.is_null()) else {
            continue;
        };
        let value = requested.as_u64().unwrap_or(0);
        let field = format!("spec.ports[{i}].nodePort");
        match u16::try_from(value).ok().filter(|p| NODE_PORT_RANGE.contains(p)) {
            None => causes.push((field, format!("Invalid value: {value}: provided port is not in the valid range. The range of valid ports is {}-{}", NODE_PORT_RANGE.start(), NODE_PORT_RANGE.end()))),
            Some(p) if used.contains(&p) => causes.push((field, format!("Invalid value: {value}: provided port is already allocated"))),
            Some(p) => used.push(p),
        }
    }
    invalid(&resources::SERVICES, service, causes)?;
    for port in assigned.iter_mut() {
        if port.get("nodePort").is_none_or(Value::is_null) {
            let p = allocate_node_port(&used).ok_or_else(|| {
                ApiError::internal("failed to allocate a nodePort: range is full")
            })?;
            used.push(p);
            port["nodePort"] = json!(p);
        }
    }
    service["spec"]["ports"] = Value::Array(assigned);
    Ok(())
}

/// The Services whose cluster IP lies outside `cidr` (stored by an earlier run with another
/// range, e.g. 10.96.0.0/12 before the loopback range), with a fresh address for each:
/// kube-proxy could never bind the old one. Leaves out `default/kubernetes`, which its own
/// repair points at the in-cluster API address.
pub(crate) fn out_of_range_repairs(server: &ApiServer) -> Vec<(String, String, String)> {
    let cidr = server.service_cidr();
    let (services, _) = server.registry.list(resources::SERVICES.resource(), None);
    let mut used = used_cluster_ips(server, None);
    let mut repairs = Vec::new();
    for service in &services {
        let (ns, name) = key_of(service);
        let ip = service
            .pointer("/spec/clusterIP")
            .and_then(Value::as_str)
            .unwrap_or("");
        if (ns, name) == ("default", "kubernetes") || ip.is_empty() || ip == "None" {
            continue;
        }
        if ip.parse().is_ok_and(|ip| cidr.usable(ip)) {
            continue;
        }
        if let Some(fresh) = allocate_cluster_ip(&cidr, &used) {
            used.push(fresh.clone());
            repairs.push((ns.to_string(), name.to_string(), fresh));
        }
    }
    repairs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_defaults_and_ip_allocation() {
        let mut svc = json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}});
        default_service(&mut svc);
        assert_eq!(svc["spec"]["type"], "ClusterIP");
        assert_eq!(svc["spec"]["sessionAffinity"], "None");
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], 80);
        let cidr = Ipv4Cidr::default();
        let ip: Ipv4Addr = allocate_cluster_ip(&cidr, &[]).unwrap().parse().unwrap();
        assert!(cidr.contains(ip) && cidr.usable(ip));
    }

    #[test]
    fn cidr_parsing_and_the_last_free_address() {
        let cidr = Ipv4Cidr::parse("127.10.96.0/30").unwrap();
        assert_eq!(cidr.to_string(), "127.10.96.0/30");
        assert!(
            !cidr.usable("127.10.96.0".parse().unwrap()),
            "network address"
        );
        assert!(
            !cidr.usable("127.10.96.3".parse().unwrap()),
            "broadcast address"
        );
        assert!(!cidr.contains("127.10.97.1".parse().unwrap()));
        let used = vec!["127.10.96.1".to_string()];
        assert_eq!(
            allocate_cluster_ip(&cidr, &used).as_deref(),
            Some("127.10.96.2")
        );
        let full = vec!["127.10.96.1".to_string(), "127.10.96.2".to_string()];
        assert_eq!(allocate_cluster_ip(&cidr, &full), None);
        assert!(Ipv4Cidr::parse("127.10.96.1/20").is_err(), "host bits set");
        assert!(Ipv4Cidr::parse("nonsense").is_err());
    }

    #[test]
    fn node_ports_come_from_the_range_and_skip_used_ones() {
        let used: Vec<u16> = (30000..=32766).collect();
        assert_eq!(allocate_node_port(&used), Some(32767));
        let all: Vec<u16> = NODE_PORT_RANGE.collect();
        assert_eq!(allocate_node_port(&all), None);
    }

    fn server(dir: &std::path::Path) -> ApiServer {
        let pki = crate::pki::load_or_create(&dir.join("pki"), &[]).unwrap();
        let tokens = crate::TokenIssuer::new("https://kubernetes.default.svc", &pki.sa_key_pem);
        ApiServer::new(
            crate::registry::Registry::new(),
            std::sync::Arc::new(tokens.unwrap()),
            &pki.ca_pem,
            "admin",
            Default::default(),
            dir.to_path_buf(),
        )
    }

    #[test]
    fn node_ports_follow_the_type_and_old_addresses_are_repaired_into_a_new_range() {
        use crate::Subresource;
        let dir = tempfile::tempdir().unwrap();
        let api = server(dir.path());
        let client = api.client();
        let services = resources::SERVICES.resource();
        let ns = resources::NAMESPACES.resource();
        client
            .create(ns, "", json!({"metadata": {"name": "a"}}))
            .unwrap();
        let created = client
            .create(
                services,
                "a",
                json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}),
            )
            .unwrap();
        let ip: Ipv4Addr = created["spec"]["clusterIP"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(Ipv4Cidr::default().usable(ip));
        assert!(created["spec"]["ports"][0].get("nodePort").is_none());

        // ClusterIP → NodePort allocates a node port; → ClusterIP gives it back.
        let node_port = client
            .modify(services, "a", "s", Subresource::Main, |s| {
                s["spec"]["type"] = json!("NodePort");
                Ok(())
            })
            .unwrap()["spec"]["ports"][0]["nodePort"]
            .as_u64()
            .unwrap();
        assert!(NODE_PORT_RANGE.contains(&(node_port as u16)));
        let back = client
            .modify(services, "a", "s", Subresource::Main, |s| {
                s["spec"]["type"] = json!("ClusterIP");
                Ok(())
            })
            .unwrap();
        assert!(back["spec"]["ports"][0].get("nodePort").is_none());

        // A headless NodePort is refused with kube's message, and nothing is stored.
        let err = client
            .create(services, "a", json!({"metadata": {"name": "h"}, "spec": {"type": "NodePort", "clusterIP": "None", "ports": [{"port": 80}]}}))
            .unwrap_err();
        assert!(err.message.contains("spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services"), "{}", err.message);
        assert!(client.get(services, "a", "h").is_none());

        // A new range (an older data directory's 10.96 addresses, say): repaired into it.
        let narrow = Ipv4Cidr::parse("127.13.0.0/28").unwrap();
        api.set_service_cidr(narrow);
        let moved = api.repair_cluster_ips();
        assert_eq!(moved.len(), 1);
        let repaired = client.get(services, "a", "s").unwrap();
        let ip: Ipv4Addr = repaired["spec"]["clusterIP"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(narrow.usable(ip), "{ip}");
        assert_eq!(repaired["spec"]["clusterIPs"], json!([ip.to_string()]));
        assert!(api.repair_cluster_ips().is_empty(), "nothing left to move");
    }
}
