//! Spot interruption (Karpenter's `interruption` controller, fed on AWS by an SQS queue of
//! EventBridge events; here by the embedded EC2's event stream). A 2-minute warning
//! makes the spot offering unavailable for 3 minutes and deletes the NodeClaim, which
//! taints and drains the node while the next provisioning pass launches a replacement for
//! the evicted pods.

use std::sync::Arc;

use serde_json::{json, Value};
use sparkyard_ec2::Ec2Event;
use sparkyard_kube_apiserver::events::{self, Kind};
use sparkyard_kube_apiserver::{conditions, registry::now_rfc3339, Propagation};
use sparkyard_scheduling::node::CapacityType;
use tokio::sync::broadcast::error::RecvError;

use crate::{Context, NODECLAIMS, NODES};

const CONTROLLER: &str = "interruption";

pub async fn run(ctx: Arc<Context>) {
    let mut events = ctx.ec2.subscribe();
    loop {
        match events.recv().await {
            Ok(Ec2Event::SpotInterruptionWarning { instance_id, .. }) => {
                ctx.metrics
                    .interruption_messages
                    .get_or_create(&crate::metrics::MessageLabels {
                        message_type: "spot_interrupted".into(),
                    })
                    .inc();
                handle(&ctx, &instance_id);
            }
            Ok(_) => {}
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return,
        }
    }
}

fn handle(ctx: &Context, instance_id: &str) {
    let Some(instance) = ctx.ec2.instance(instance_id) else {
        return;
    };
    let (claims, _) = ctx.client.list(NODECLAIMS, None);
    let Some(claim) = claims
        .iter()
        .find(|c| c["status"]["providerID"] == instance.provider_id.as_str())
    else {
        // Not Karpenter's (a node-group instance): EC2 will end it; nothing to pre-empt.
        return;
    };
    let name = claim["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let node = claim["status"]["nodeName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    ctx.offerings
        .mark(&instance.instance_type, &instance.zone, CapacityType::Spot);
    ctx.log.info(CONTROLLER, "initiating delete from interruption message", json!({
        "messageKind": "SpotInterruptionKind", "NodeClaim": {"name": name}, "action": "CordonAndDrain",
        "Node": {"name": node}}));
    let reason = "SpotInterrupted";
    let _ = ctx.client.update_status(NODECLAIMS, "", &name, |c| {
        conditions::set(
            c,
            json!({"type": "DisruptionReason", "status": "True", "reason": "Interrupted",
            "message": "spot interruption warning", "lastTransitionTime": now_rfc3339()}),
        );
        Ok(())
    });
    if let Some(node_obj) = ctx.client.get(NODES, "", &node) {
        events::record(
            &ctx.client,
            &node_obj,
            Kind::Warning,
            reason,
            "Spot interruption warning was triggered",
            &ctx.source(),
        );
    }
    events::record(
        &ctx.client,
        claim as &Value,
        Kind::Warning,
        reason,
        "Spot interruption warning was triggered",
        &ctx.source(),
    );
    let _ = ctx
        .client
        .delete(NODECLAIMS, "", &name, Propagation::Background, None);
}
