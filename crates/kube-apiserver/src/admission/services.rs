//! Services: defaulting and the ClusterIP allocator (10.96.0.0/12), as the Service
//! REST storage does on create.

use serde_json::{json, Value};

use super::{invalid, set_default, Causes};
use crate::error::ApiError;
use crate::resources;
use crate::ApiServer;

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

/// A free IP in 10.96.0.0/12 (skipping .0.0/.0.1), given the IPs in use.
pub fn allocate_cluster_ip(used: &[String]) -> Option<String> {
    let mut bytes = [0u8; 4];
    for _ in 0..4096 {
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).ok()?;
        let offset = u32::from_be_bytes(bytes) & 0x000f_ffff;
        if offset < 2 || offset == 0x000f_ffff {
            continue;
        }
        let ip = std::net::Ipv4Addr::from(0x0a60_0000u32 | offset).to_string();
        if !used.contains(&ip) {
            return Some(ip);
        }
    }
    None
}

pub(super) fn used_cluster_ips(server: &ApiServer) -> Vec<String> {
    let (services, _) = server.registry.list(resources::SERVICES.resource(), None);
    services
        .iter()
        .filter_map(|s| {
            s.pointer("/spec/clusterIP")
                .and_then(Value::as_str)
                .map(String::from)
        })
        .collect()
}

pub(super) fn admit_service_create(
    server: &ApiServer,
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
    invalid(&resources::SERVICES, service, causes)?;
    if kind == "ExternalName" || headless {
        if headless {
            service["spec"]["clusterIPs"] = json!(["None"]);
        }
        return Ok(());
    }
    let used = used_cluster_ips(server);
    let ip = if requested.is_empty() {
        allocate_cluster_ip(&used)
            .ok_or_else(|| ApiError::internal("failed to allocate a serviceIP: range is full"))?
    } else {
        if used.contains(&requested) {
            return invalid(&resources::SERVICES, service, vec![(
                "spec.clusterIPs".into(),
                format!("Invalid value: []string{{\"{requested}\"}}: failed to allocate IP {requested}: provided IP is already allocated"),
            )]);
        }
        requested
    };
    service["spec"]["clusterIP"] = json!(ip);
    service["spec"]["clusterIPs"] = json!([ip]);
    if matches!(kind.as_str(), "NodePort" | "LoadBalancer") {
        if let Some(ports) = service["spec"]["ports"].as_array_mut() {
            for port in ports {
                if port.get("nodePort").is_none() {
                    let mut b = [0u8; 2];
                    let _ =
                        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
                    port["nodePort"] = json!(30000 + (u16::from_be_bytes(b) % 2768) as u64);
                }
            }
        }
    }
    Ok(())
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
        let ip = allocate_cluster_ip(&[]).unwrap();
        let parsed: std::net::Ipv4Addr = ip.parse().unwrap();
        assert_eq!(u32::from(parsed) & 0xfff0_0000, 0x0a60_0000);
    }
}
