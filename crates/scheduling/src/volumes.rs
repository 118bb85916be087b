//! kube-scheduler's `VolumeBinding` plugin over plain data: for a pod's
//! `persistentVolumeClaim` volumes, whether any node can take it (its PreFilter: every
//! claim exists, is not being deleted, and is bound or binds at first consumer), where its
//! bound volumes can be used (their `nodeAffinity`, checked per node by the filter as
//! [`super::filter::Reason::VolumeNodeAffinityConflict`]), and which claims wait for the
//! scheduler's choice of node (`volumeBindingMode: WaitForFirstConsumer`).
//!
//! The caller looks the objects up (the live scheduler reads them through its `Client`
//! each cycle); this module only decides. Not modelled: matching unbound
//! `WaitForFirstConsumer` claims to static volumes per node and StorageClass
//! `allowedTopologies` — the embedded cluster's provisioner can provision on any node.

use std::sync::Arc;

use serde_json::Value;

use super::requirements::{parse_term, NodeSelectorTerm, PodRequirements};

/// The claim annotation naming the node the scheduler chose for a pod using it: the
/// provisioner creates the volume there.
pub const ANNOTATION_SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
pub const WAIT_FOR_FIRST_CONSUMER: &str = "WaitForFirstConsumer";
/// kube-scheduler's `ErrReasonUnboundImmediatePVC` wording (lower-cased as its status has it).
pub const UNBOUND_IMMEDIATE: &str = "pod has unbound immediate PersistentVolumeClaims";

/// What `VolumeBinding` found for one pod.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeBinding {
    /// The PreFilter's rejection: no node can take the pod until this changes.
    pub rejection: Option<String>,
    /// Each bound volume's required node selector terms (volumes without affinity add none).
    pub node_affinity: Vec<Vec<NodeSelectorTerm>>,
    /// Unbound claims of `WaitForFirstConsumer` classes: the scheduler annotates them with
    /// the chosen node ([`ANNOTATION_SELECTED_NODE`]) when it binds the pod.
    pub delayed: Vec<String>,
}

impl VolumeBinding {
    /// The pod as the filters must see it: with the rejection and the volumes' affinity.
    pub fn apply(&self, pod: &mut PodRequirements) {
        pod.volume_rejection = self.rejection.clone();
        if pod.placement.volume_node_affinity != self.node_affinity {
            Arc::make_mut(&mut pod.placement).volume_node_affinity = self.node_affinity.clone();
        }
    }
}

/// The claim names of a pod spec's `persistentVolumeClaim` volumes, in order, once each.
pub fn claim_names(spec: &Value) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for volume in spec
        .get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(claim) = volume
            .pointer("/persistentVolumeClaim/claimName")
            .and_then(Value::as_str)
        {
            if !names.iter().any(|n| n == claim) {
                names.push(claim.to_string());
            }
        }
    }
    names
}

fn text<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `VolumeBinding` for the claims `claims` of a pod: `claim`, `volume` and `class` look up
/// a PersistentVolumeClaim (in the pod's namespace), a PersistentVolume and a
/// StorageClass by name. The first claim that rules the pod out gives the rejection, in
/// kube-scheduler's words.
pub fn volume_binding(
    claims: &[String],
    claim: impl Fn(&str) -> Option<Arc<Value>>,
    volume: impl Fn(&str) -> Option<Arc<Value>>,
    class: impl Fn(&str) -> Option<Arc<Value>>,
) -> VolumeBinding {
    let mut out = VolumeBinding::default();
    for name in claims {
        let Some(pvc) = claim(name) else {
            out.rejection = Some(format!("persistentvolumeclaim \"{name}\" not found"));
            return out;
        };
        if pvc.pointer("/metadata/deletionTimestamp").is_some() {
            out.rejection = Some(format!("persistentvolumeclaim \"{name}\" is being deleted"));
            return out;
        }
        let bound_to = text(&pvc, "/spec/volumeName");
        if !bound_to.is_empty() {
            let Some(pv) = volume(bound_to) else {
                out.rejection = Some(format!("persistentvolume \"{bound_to}\" not found"));
                return out;
            };
            if let Some(terms) = pv
                .pointer("/spec/nodeAffinity/required/nodeSelectorTerms")
                .and_then(Value::as_array)
            {
                out.node_affinity
                    .push(terms.iter().map(parse_term).collect());
            }
            continue;
        }
        let class_name = text(&pvc, "/spec/storageClassName");
        if class_name.is_empty() {
            out.rejection = Some(UNBOUND_IMMEDIATE.into());
            return out;
        }
        let Some(sc) = class(class_name) else {
            out.rejection = Some(format!(
                "storageclass.storage.k8s.io \"{class_name}\" not found"
            ));
            return out;
        };
        if text(&sc, "/volumeBindingMode") == WAIT_FOR_FIRST_CONSUMER {
            out.delayed.push(name.clone());
        } else {
            out.rejection = Some(UNBOUND_IMMEDIATE.into());
            return out;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::NodeConfig;
    use crate::Snapshot;
    use serde_json::json;
    use std::collections::HashMap;

    fn objects(list: Vec<(&str, Value)>) -> HashMap<String, Arc<Value>> {
        list.into_iter()
            .map(|(k, v)| (k.to_string(), Arc::new(v)))
            .collect()
    }

    fn node(name: &str) -> crate::NodeInfo {
        NodeConfig {
            name: name.into(),
            cpu: "4".into(),
            memory: "8Gi".into(),
            ..NodeConfig::default()
        }
        .node_info()
        .unwrap()
    }

    fn pod_with_claim(claim: &str) -> PodRequirements {
        PodRequirements::from_pod(
            &json!({"metadata": {"name": "p", "namespace": "ns", "uid": "u"},
            "spec": {"volumes": [{"name": "a", "persistentVolumeClaim": {"claimName": claim}},
                                 {"name": "b", "persistentVolumeClaim": {"claimName": claim}},
                                 {"name": "c", "emptyDir": {}}],
                     "containers": [{"name": "c"}]}}),
        )
        .unwrap()
    }

    fn binding(claims: &[&str]) -> VolumeBinding {
        let pvcs = objects(vec![
            (
                "bound",
                json!({"spec": {"volumeName": "pv-a", "storageClassName": "local-path"}}),
            ),
            (
                "waiting",
                json!({"spec": {"storageClassName": "local-path"}}),
            ),
            ("immediate", json!({"spec": {"storageClassName": "fast"}})),
            ("classless", json!({"spec": {"storageClassName": ""}})),
            (
                "going",
                json!({"metadata": {"deletionTimestamp": "2025-01-01T00:00:00Z"}, "spec": {}}),
            ),
            ("orphan", json!({"spec": {"volumeName": "gone"}})),
        ]);
        let pvs = objects(vec![(
            "pv-a",
            json!({"spec": {"nodeAffinity": {"required": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-a"]}]}]}}}}),
        )]);
        let classes = objects(vec![
            (
                "local-path",
                json!({"volumeBindingMode": "WaitForFirstConsumer"}),
            ),
            ("fast", json!({"volumeBindingMode": "Immediate"})),
        ]);
        let claims: Vec<String> = claims.iter().map(|c| c.to_string()).collect();
        volume_binding(
            &claims,
            |n| pvcs.get(n).cloned(),
            |n| pvs.get(n).cloned(),
            |n| classes.get(n).cloned(),
        )
    }

    #[test]
    fn claims_are_read_once_each() {
        assert_eq!(pod_with_claim("data").claims, ["data"]);
    }

    #[test]
    fn prefilter_rejections_use_kubes_words() {
        let reject = |c: &str| binding(&[c]).rejection;
        assert_eq!(
            reject("nope").as_deref(),
            Some("persistentvolumeclaim \"nope\" not found")
        );
        assert_eq!(
            reject("going").as_deref(),
            Some("persistentvolumeclaim \"going\" is being deleted")
        );
        assert_eq!(reject("immediate").as_deref(), Some(UNBOUND_IMMEDIATE));
        assert_eq!(reject("classless").as_deref(), Some(UNBOUND_IMMEDIATE));
        assert_eq!(
            reject("orphan").as_deref(),
            Some("persistentvolume \"gone\" not found")
        );
        let wffc = binding(&["waiting", "bound"]);
        assert_eq!(wffc.rejection, None);
        assert_eq!(wffc.delayed, ["waiting"]);
        assert_eq!(wffc.node_affinity.len(), 1);
    }

    #[test]
    fn bound_volumes_pin_the_pod_to_their_node() {
        let mut snapshot = Snapshot::with_nodes([node("node-a"), node("node-b")]);
        let mut pod = pod_with_claim("bound");
        binding(&["bound"]).apply(&mut pod);
        assert_eq!(
            snapshot.schedule(&pod).node(),
            Some("node-a"),
            "only node-a satisfies the volume's affinity"
        );
        let mut elsewhere = pod_with_claim("bound");
        binding(&["bound"]).apply(&mut elsewhere);
        std::sync::Arc::make_mut(&mut elsewhere.placement).node_selector =
            vec![("kubernetes.io/hostname".into(), "node-b".into())];
        match snapshot.schedule(&elsewhere) {
            crate::Decision::Unschedulable { message, .. } => assert_eq!(
                message,
                "0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had volume node affinity conflict. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_missing_claim_rules_out_every_node() {
        let mut snapshot = Snapshot::with_nodes([node("node-a"), node("node-b")]);
        let mut pod = pod_with_claim("nope");
        binding(&["nope"]).apply(&mut pod);
        match snapshot.schedule(&pod) {
            crate::Decision::Unschedulable {
                message,
                preemption,
                ..
            } => {
                assert_eq!(
                    message,
                    "0/2 nodes are available: persistentvolumeclaim \"nope\" not found. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling."
                );
                assert!(preemption.is_none());
            }
            other => panic!("{other:?}"),
        }
    }
}
