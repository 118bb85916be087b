//! EC2 (query protocol, XML) for the embedded cluster's instances: `DescribeInstances`, so
//! `aws ec2 describe-instances --filters Name=tag:karpenter.sh/nodepool,Values=…` works, and
//! `SendSpotInstanceInterruptions`, sparkyard's own action behind
//! `sparkyard ec2 send-spot-interruption` — named after AWS FIS's
//! `aws:ec2:send-spot-instance-interruptions`, which EC2 itself does not offer as an API:
//! it gives each Spot instance the two-minute interruption notice, then terminates it.
//!
//! The instances are the [`Ec2Backend`]'s (the binary implements it over the embedded EC2);
//! without one there are none.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use sparkyard_aws::Principal;

use crate::authz::Authorizer;
use crate::wire::{self, xml_escape, QueryParams, Xml};

pub const XMLNS: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

/// One instance as `DescribeInstances` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceView {
    pub instance_id: String,
    pub instance_type: String,
    pub zone: String,
    /// `pending`, `running`, `shutting-down`, `terminated`, `stopping`, `stopped`.
    pub state: String,
    pub private_ip: String,
    /// The node's name (`ip-192-168-…`), which is the instance's private DNS name on EKS.
    pub private_dns_name: String,
    pub launch_time: DateTime<Utc>,
    /// When `state` last changed: a terminated instance's `stateTransitionReason` names it.
    pub state_changed_at: DateTime<Utc>,
    pub spot: bool,
    pub tags: BTreeMap<String, String>,
}

/// What provides the instances.
pub trait Ec2Backend: Send + Sync {
    fn instances(&self) -> Vec<InstanceView>;
    /// Sends the interruption notice; the time the instance will be terminated, or the
    /// error code and message (`InvalidInstanceID.NotFound`, `UnsupportedOperation`).
    fn send_spot_interruption(&self, instance_id: &str) -> Result<DateTime<Utc>, (String, String)>;
}

/// EC2's error body: `<Response><Errors><Error>…</Error></Errors><RequestID>`.
fn error(status: StatusCode, code: &str, message: &str, request_id: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>{}</RequestID></Response>",
        xml_escape(code),
        xml_escape(message),
        xml_escape(request_id)
    );
    wire::xml_response(status, body, request_id)
}

fn state_code(state: &str) -> u16 {
    match state {
        "pending" => 0,
        "running" => 16,
        "shutting-down" => 32,
        "terminated" => 48,
        "stopping" => 64,
        _ => 80,
    }
}

/// `Filter.N.Name` / `Filter.N.Value.M` and `InstanceId.N`.
fn filters(params: &QueryParams) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for n in 1.. {
        let Some(name) = params.get(&format!("Filter.{n}.Name")) else {
            break;
        };
        let values: Vec<String> = (1..)
            .map_while(|m| {
                params
                    .get(&format!("Filter.{n}.Value.{m}"))
                    .map(str::to_string)
            })
            .collect();
        out.push((name.to_string(), values));
    }
    out
}

fn numbered(params: &QueryParams, prefix: &str) -> Vec<String> {
    (1..)
        .map_while(|n| params.get(&format!("{prefix}.{n}")).map(str::to_string))
        .collect()
}

/// EC2 filter values take `*` and `?` wildcards.
fn wildcard(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    go(&p, &t)
}

/// Whether an instance passes one filter; `None` for a filter name sparkyard does not know.
fn passes(i: &InstanceView, name: &str, values: &[String]) -> Option<bool> {
    let any = |field: &str| values.iter().any(|v| wildcard(v, field));
    Some(match name {
        "instance-id" => any(&i.instance_id),
        "instance-type" => any(&i.instance_type),
        "instance-state-name" => any(&i.state),
        "private-dns-name" => any(&i.private_dns_name),
        "private-ip-address" => any(&i.private_ip),
        "availability-zone" => any(&i.zone),
        "instance-lifecycle" => i.spot && any("spot"),
        "tag-key" => i.tags.keys().any(|k| any(k)),
        _ => match name.strip_prefix("tag:") {
            Some(key) => i.tags.get(key).is_some_and(|v| any(v)),
            None => return None,
        },
    })
}

/// `StateTransitionReason` as EC2 words it for an instance stopped or terminated on request
/// (Karpenter, Auto Scaling and a user's TerminateInstances alike): `User initiated
/// (2026-12-05 10:00:00 GMT)`; empty while it runs.
fn state_transition_reason(i: &InstanceView) -> String {
    match i.state.as_str() {
        "shutting-down" | "terminated" | "stopping" | "stopped" => format!(
            "User initiated ({} GMT)",
            i.state_changed_at.format("%Y-%m-%d %H:%M:%S")
        ),
        _ => String::new(),
    }
}

fn render_instance(xml: &mut Xml, i: &InstanceView) {
    xml.open("item")
        .text("instanceId", &i.instance_id)
        .text("imageId", "ami-0sparkyard000000")
        .open("instanceState")
        .text("code", &state_code(&i.state).to_string())
        .text("name", &i.state)
        .close("instanceState")
        .text("privateDnsName", &i.private_dns_name)
        .text("dnsName", "")
        .text("reason", &state_transition_reason(i))
        .text("amiLaunchIndex", "0")
        .text("instanceType", &i.instance_type)
        .text("launchTime", &wire::iso8601(i.launch_time))
        .open("placement")
        .text("availabilityZone", &i.zone)
        .text("tenancy", "default")
        .close("placement")
        .text("privateIpAddress", &i.private_ip)
        .text("architecture", "x86_64")
        .text("rootDeviceType", "ebs")
        .text("hypervisor", "xen");
    if i.spot {
        xml.text("instanceLifecycle", "spot");
    }
    xml.open("tagSet");
    for (k, v) in &i.tags {
        xml.open("item")
            .text("key", k)
            .text("value", v)
            .close("item");
    }
    xml.close("tagSet").close("item");
}

/// The EC2 service on the endpoint.
pub struct Ec2 {
    backend: Option<Arc<dyn Ec2Backend>>,
    region: String,
    account_id: String,
}

impl Ec2 {
    pub fn new(backend: Option<Arc<dyn Ec2Backend>>, region: &str, account_id: &str) -> Self {
        Self {
            backend,
            region: region.into(),
            account_id: account_id.into(),
        }
    }

    pub fn handle(
        &self,
        authz: &Authorizer,
        principal: &Principal,
        params: &QueryParams,
        request_id: &str,
    ) -> Response {
        let action = params.action().unwrap_or_default();
        // The refusal, rendered, or `None` when allowed.
        let denied = |op: &str, resource: &str| {
            authz
                .authorize(principal, &format!("ec2:{op}"), resource)
                .err()
                .map(|d| {
                    error(
                        StatusCode::FORBIDDEN,
                        "UnauthorizedOperation",
                        &d.message(),
                        request_id,
                    )
                })
        };
        match action {
            "DescribeInstances" => {
                if let Some(refusal) = denied("DescribeInstances", "*") {
                    return refusal;
                }
                self.describe_instances(params, request_id)
            }
            "SendSpotInstanceInterruptions" => {
                let ids = numbered(params, "InstanceId");
                if ids.is_empty() {
                    return error(StatusCode::BAD_REQUEST, "MissingParameter", "The request must contain the parameter InstanceId", request_id);
                }
                for id in &ids {
                    let arn = format!("arn:aws:ec2:{}:{}:instance/{id}", self.region, self.account_id);
                    if let Some(refusal) = denied("SendSpotInstanceInterruptions", &arn) {
                        return refusal;
                    }
                }
                self.send_interruptions(&ids, request_id)
            }
            other => error(
                StatusCode::BAD_REQUEST,
                "InvalidAction",
                &format!("The action {other} is not valid for this web service (sparkyard serves DescribeInstances and SendSpotInstanceInterruptions)."),
                request_id,
            ),
        }
    }

    fn instances(&self) -> Vec<InstanceView> {
        self.backend
            .as_ref()
            .map(|b| b.instances())
            .unwrap_or_default()
    }

    fn describe_instances(&self, params: &QueryParams, request_id: &str) -> Response {
        let ids = numbered(params, "InstanceId");
        let all = self.instances();
        for id in &ids {
            if !id.starts_with("i-") {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidInstanceID.Malformed",
                    &format!("Invalid id: \"{id}\""),
                    request_id,
                );
            }
            if !all.iter().any(|i| &i.instance_id == id) {
                return error(
                    StatusCode::BAD_REQUEST,
                    "InvalidInstanceID.NotFound",
                    &format!("The instance ID '{id}' does not exist"),
                    request_id,
                );
            }
        }
        let filters = filters(params);
        let mut matching = Vec::new();
        for i in all
            .iter()
            .filter(|i| ids.is_empty() || ids.contains(&i.instance_id))
        {
            let mut keep = true;
            for (name, values) in &filters {
                match passes(i, name, values) {
                    Some(ok) => keep &= ok,
                    None => {
                        return error(
                            StatusCode::BAD_REQUEST,
                            "InvalidParameterValue",
                            &format!("The filter '{name}' is invalid"),
                            request_id,
                        )
                    }
                }
            }
            if keep {
                matching.push(i);
            }
        }
        let mut xml = Xml::new();
        xml.open_ns("DescribeInstancesResponse", XMLNS)
            .text("requestId", request_id)
            .open("reservationSet");
        // One reservation per instance, as separate launches make.
        for i in matching {
            xml.open("item")
                .text(
                    "reservationId",
                    &format!("r-{}", i.instance_id.trim_start_matches("i-")),
                )
                .text("ownerId", &self.account_id)
                .text("groupSet", "")
                .open("instancesSet");
            render_instance(&mut xml, i);
            xml.close("instancesSet").close("item");
        }
        xml.close("reservationSet")
            .close("DescribeInstancesResponse");
        wire::xml_response(StatusCode::OK, xml.finish(), request_id)
    }

    fn send_interruptions(&self, ids: &[String], request_id: &str) -> Response {
        let Some(backend) = &self.backend else {
            return error(
                StatusCode::BAD_REQUEST,
                "InvalidInstanceID.NotFound",
                &format!("The instance ID '{}' does not exist", ids[0]),
                request_id,
            );
        };
        let mut done = Vec::new();
        for id in ids {
            match backend.send_spot_interruption(id) {
                Ok(at) => done.push((id.clone(), at)),
                Err((code, message)) => {
                    return error(StatusCode::BAD_REQUEST, &code, &message, request_id)
                }
            }
        }
        let mut xml = Xml::new();
        xml.open_ns("SendSpotInstanceInterruptionsResponse", XMLNS)
            .text("requestId", request_id)
            .open("instancesSet");
        for (id, at) in done {
            xml.open("item")
                .text("instanceId", &id)
                .text("interruptionTime", &wire::iso8601(at))
                .close("item");
        }
        xml.close("instancesSet")
            .close("SendSpotInstanceInterruptionsResponse");
        wire::xml_response(StatusCode::OK, xml.finish(), request_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inst(id: &str, spot: bool, pool: &str) -> InstanceView {
        InstanceView {
            instance_id: id.into(),
            instance_type: "m5.large".into(),
            zone: "us-east-2a".into(),
            state: "running".into(),
            private_ip: "192.168.1.2".into(),
            private_dns_name: "ip-192-168-1-2.us-east-2.compute.internal".into(),
            launch_time: Utc::now(),
            state_changed_at: Utc::now(),
            spot,
            tags: BTreeMap::from([("karpenter.sh/nodepool".into(), pool.into())]),
        }
    }

    #[test]
    fn filters_match_like_ec2() {
        let i = inst("i-1", true, "default");
        assert_eq!(
            passes(&i, "tag:karpenter.sh/nodepool", &["def*".into()]),
            Some(true)
        );
        assert_eq!(
            passes(&i, "tag:karpenter.sh/nodepool", &["other".into()]),
            Some(false)
        );
        assert_eq!(
            passes(&i, "private-dns-name", &["ip-192-168-1-2.*".into()]),
            Some(true)
        );
        assert_eq!(
            passes(
                &i,
                "instance-state-name",
                &["stopped".into(), "running".into()]
            ),
            Some(true)
        );
        assert_eq!(passes(&i, "no-such-filter", &[]), None);
        let p = QueryParams::parse(b"Action=DescribeInstances&Filter.1.Name=tag%3Aa&Filter.1.Value.1=x&Filter.1.Value.2=y&InstanceId.1=i-1");
        assert_eq!(
            filters(&p),
            vec![("tag:a".to_string(), vec!["x".to_string(), "y".to_string()])]
        );
        assert_eq!(numbered(&p, "InstanceId"), ["i-1"]);
    }

    #[test]
    fn renders_spot_lifecycle_and_tags() {
        let mut xml = Xml::default();
        render_instance(&mut xml, &inst("i-1", true, "default"));
        let text = xml.finish();
        assert!(text.contains("<instanceLifecycle>spot</instanceLifecycle>"));
        assert!(text.contains("<key>karpenter.sh/nodepool</key>"));
        assert!(text.contains("<code>16</code>"));
    }
}
