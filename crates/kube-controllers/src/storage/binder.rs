//! The PersistentVolume controller's decisions as pure functions: which volume a claim
//! binds to (kube's `findBestMatchForClaim`: same class, every requested access mode,
//! enough capacity, smallest fit), what the bound pair looks like, what the local-path
//! provisioner's volume for a claim is, and when a claim is still in use.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};

use sparkyard_scheduling::quantity;

pub const ANNOTATION_BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
pub const ANNOTATION_BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
pub const ANNOTATION_PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
pub const ANNOTATION_STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
pub const ANNOTATION_BETA_STORAGE_PROVISIONER: &str =
    "volume.beta.kubernetes.io/storage-provisioner";
/// Where rancher's local-path provisioner records the node of a volume it made.
pub const ANNOTATION_LOCAL_PATH_NODE: &str = "local.path.provisioner/selected-node";
pub const LABEL_HOSTNAME: &str = "kubernetes.io/hostname";

pub fn text<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("")
}

pub fn annotation<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

fn storage(object: &Value, pointer: &str) -> Option<i64> {
    object
        .pointer(pointer)
        .and_then(quantity::json_text)
        .and_then(|t| quantity::units(&t).ok())
}

fn modes(object: &Value, pointer: &str) -> Vec<String> {
    object
        .pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|m| m.as_str().map(String::from))
        .collect()
}

/// The claim's storage class name (`""`: none), as `GetPersistentVolumeClaimClass` reads it.
pub fn claim_class(claim: &Value) -> &str {
    annotation(claim, "volume.beta.kubernetes.io/storage-class")
        .unwrap_or_else(|| text(claim, "/spec/storageClassName"))
}

fn volume_class(volume: &Value) -> &str {
    annotation(volume, "volume.beta.kubernetes.io/storage-class")
        .unwrap_or_else(|| text(volume, "/spec/storageClassName"))
}

/// Whether `volume`'s `claimRef` names `claim` (by namespace and name, and by uid when
/// the reference has one: a reference without uid is a volume pre-bound by a user).
pub fn refers_to(volume: &Value, claim: &Value) -> bool {
    let Some(r) = volume.pointer("/spec/claimRef").filter(|r| r.is_object()) else {
        return false;
    };
    text(r, "/namespace") == text(claim, "/metadata/namespace")
        && text(r, "/name") == text(claim, "/metadata/name")
        && (text(r, "/uid").is_empty() || text(r, "/uid") == text(claim, "/metadata/uid"))
}

/// `findBestMatchForClaim`: among volumes that are free (no `claimRef`, not being
/// deleted, not `Released` or `Failed`) or pre-bound to this claim, the one of the claim's class and
/// volume mode that offers every requested access mode and at least the requested
/// storage; the smallest such. A volume pre-bound to the claim wins outright.
/// With `pre_bound_only` (a `WaitForFirstConsumer` claim whose node is not chosen yet),
/// only a pre-bound volume matches: the rest wait for the scheduler.
pub fn best_match<'a>(
    claim: &Value,
    volumes: &'a [Arc<Value>],
    pre_bound_only: bool,
) -> Option<&'a Arc<Value>> {
    if let Some(pre_bound) = volumes
        .iter()
        .find(|v| refers_to(v, claim) && v.pointer("/metadata/deletionTimestamp").is_none())
    {
        return Some(pre_bound);
    }
    if pre_bound_only {
        return None;
    }
    let wanted = storage(claim, "/spec/resources/requests/storage")?;
    let wanted_modes = modes(claim, "/spec/accessModes");
    let class = claim_class(claim);
    let mode = |o: &Value| match text(o, "/spec/volumeMode") {
        "" => "Filesystem".to_string(),
        m => m.to_string(),
    };
    volumes
        .iter()
        .filter(|v| {
            v.pointer("/spec/claimRef").is_none_or(Value::is_null)
                && v.pointer("/metadata/deletionTimestamp").is_none()
                // A new volume is `Pending` until a pass makes it `Available`; kube's
                // matcher does not wait for that either.
                && !matches!(text(v, "/status/phase"), "Released" | "Failed")
                && volume_class(v) == class
                && mode(v) == mode(claim)
        })
        .filter_map(|v| {
            let offered = modes(v, "/spec/accessModes");
            let size = storage(v, "/spec/capacity/storage")?;
            (size >= wanted && wanted_modes.iter().all(|m| offered.contains(m)))
                .then_some((size, v))
        })
        .min_by(|(a, va), (b, vb)| {
            a.cmp(b)
                .then_with(|| text(va, "/metadata/name").cmp(text(vb, "/metadata/name")))
        })
        .map(|(_, v)| v)
}

/// The `claimRef` a volume bound to `claim` carries.
pub fn claim_ref(claim: &Value) -> Value {
    json!({
        "kind": "PersistentVolumeClaim",
        "namespace": text(claim, "/metadata/namespace"),
        "name": text(claim, "/metadata/name"),
        "uid": text(claim, "/metadata/uid"),
        "apiVersion": "v1",
        "resourceVersion": text(claim, "/metadata/resourceVersion"),
    })
}

/// Where the local-path provisioner keeps a claim's data on `node`: rancher's
/// `pvc-<uid>_<namespace>_<name>` under a directory per node (every node of the embedded
/// cluster is this machine; the directory says whose data it is).
pub fn local_path(root: &Path, node: &str, claim: &Value) -> PathBuf {
    root.join(node).join(format!(
        "pvc-{}_{}_{}",
        text(claim, "/metadata/uid"),
        text(claim, "/metadata/namespace"),
        text(claim, "/metadata/name")
    ))
}

/// The PersistentVolume the local-path provisioner creates for `claim` of `class` on
/// `node` (`hostname`: the node's `kubernetes.io/hostname` label): a `hostPath` volume of
/// type `DirectoryOrCreate` — the kubelet creates the directory when it first mounts it —
/// pinned to the node, pre-bound to the claim, sized as requested.
pub fn provisioned_volume(
    claim: &Value,
    class: &Value,
    provisioner: &str,
    node: &str,
    hostname: &str,
    path: &Path,
) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {
            "name": format!("pvc-{}", text(claim, "/metadata/uid")),
            "annotations": {
                ANNOTATION_PROVISIONED_BY: provisioner,
                ANNOTATION_LOCAL_PATH_NODE: node,
            },
        },
        "spec": {
            "capacity": {"storage": claim.pointer("/spec/resources/requests/storage").cloned().unwrap_or(json!("0"))},
            "accessModes": claim.pointer("/spec/accessModes").cloned().unwrap_or(json!([])),
            "persistentVolumeReclaimPolicy": match text(class, "/reclaimPolicy") { "" => "Delete", p => p },
            "storageClassName": text(class, "/metadata/name"),
            "volumeMode": match text(claim, "/spec/volumeMode") { "" => "Filesystem", m => m },
            "hostPath": {"path": path.to_string_lossy(), "type": "DirectoryOrCreate"},
            "claimRef": claim_ref(claim),
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": LABEL_HOSTNAME, "operator": "In", "values": [hostname]}]}]}},
        },
    })
}

/// Whether a pod still uses the claim `name` of namespace `ns`: it mounts it and has not
/// finished (kube's pvc-protection controller lets a claim go once its pods are
/// `Succeeded`, `Failed` or gone).
pub fn pod_uses(pod: &Value, ns: &str, name: &str) -> bool {
    text(pod, "/metadata/namespace") == ns
        && !matches!(text(pod, "/status/phase"), "Succeeded" | "Failed")
        && pod
            .pointer("/spec/volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|v| text(v, "/persistentVolumeClaim/claimName") == name)
}

/// The directory of a volume this provisioner made, if it is one it may remove: under
/// `root`, with no `..` in it.
pub fn removable_path(volume: &Value, root: &Path) -> Option<PathBuf> {
    let path = PathBuf::from(text(volume, "/spec/hostPath/path"));
    let clean = path.components().all(|c| {
        matches!(
            c,
            std::path::Component::RootDir | std::path::Component::Normal(_)
        )
    });
    (clean && path.starts_with(root) && path != root).then_some(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pv(name: &str, size: &str, modes: &[&str], class: &str) -> Arc<Value> {
        Arc::new(
            json!({"metadata": {"name": name}, "spec": {"capacity": {"storage": size},
            "accessModes": modes, "storageClassName": class}, "status": {"phase": "Available"}}),
        )
    }

    fn claim(size: &str, modes: &[&str], class: &str) -> Value {
        json!({"metadata": {"name": "data", "namespace": "ns", "uid": "u1"},
               "spec": {"accessModes": modes, "resources": {"requests": {"storage": size}}, "storageClassName": class}})
    }

    #[test]
    fn the_smallest_volume_that_fits_wins() {
        let volumes = vec![
            pv("big", "10Gi", &["ReadWriteOnce"], "manual"),
            pv("small", "1Gi", &["ReadWriteOnce"], "manual"),
            pv("fits", "2Gi", &["ReadWriteOnce", "ReadOnlyMany"], "manual"),
            pv("other-class", "2Gi", &["ReadWriteOnce"], ""),
            pv("rox-only", "2Gi", &["ReadOnlyMany"], "manual"),
        ];
        let name = |c: &Value| {
            best_match(c, &volumes, false).map(|v| text(v, "/metadata/name").to_string())
        };
        assert_eq!(
            name(&claim("1500Mi", &["ReadWriteOnce"], "manual")).as_deref(),
            Some("fits")
        );
        assert_eq!(
            name(&claim("1Gi", &["ReadWriteOnce"], "manual")).as_deref(),
            Some("small")
        );
        assert_eq!(name(&claim("20Gi", &["ReadWriteOnce"], "manual")), None);
        assert_eq!(name(&claim("1Gi", &["ReadWriteMany"], "manual")), None);
        assert_eq!(
            name(&claim("1Gi", &["ReadWriteOnce"], "")).as_deref(),
            Some("other-class")
        );
        assert_eq!(
            best_match(&claim("1Gi", &["ReadWriteOnce"], "manual"), &volumes, true),
            None
        );
        let mut taken = (*volumes[1]).clone();
        taken["spec"]["claimRef"] = json!({"namespace": "ns", "name": "other"});
        let volumes = vec![Arc::new(taken)];
        assert_eq!(
            best_match(&claim("1Gi", &["ReadWriteOnce"], "manual"), &volumes, false).cloned(),
            None
        );
    }

    #[test]
    fn provisioned_volumes_are_pinned_and_pre_bound() {
        let c = claim("3Gi", &["ReadWriteOnce"], "local-path");
        let class = json!({"metadata": {"name": "local-path"}, "reclaimPolicy": "Retain"});
        let path = local_path(Path::new("/data/local-path"), "node-a", &c);
        assert_eq!(path, Path::new("/data/local-path/node-a/pvc-u1_ns_data"));
        let v = provisioned_volume(
            &c,
            &class,
            "rancher.io/local-path",
            "node-a",
            "node-a",
            &path,
        );
        assert_eq!(v["metadata"]["name"], "pvc-u1");
        assert_eq!(v["spec"]["capacity"]["storage"], "3Gi");
        assert_eq!(v["spec"]["persistentVolumeReclaimPolicy"], "Retain");
        assert_eq!(v["spec"]["claimRef"]["uid"], "u1");
        assert!(refers_to(&v, &c));
        assert_eq!(
            removable_path(&v, Path::new("/data/local-path")),
            Some(path)
        );
        assert_eq!(removable_path(&v, Path::new("/elsewhere")), None);
        let mut sneaky = v.clone();
        sneaky["spec"]["hostPath"]["path"] = json!("/data/local-path/../../etc");
        assert_eq!(removable_path(&sneaky, Path::new("/data/local-path")), None);
    }

    #[test]
    fn finished_pods_release_their_claims() {
        let pod = |phase: &str| {
            json!({"metadata": {"namespace": "ns"}, "status": {"phase": phase},
            "spec": {"volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "data"}}]}})
        };
        assert!(pod_uses(&pod("Running"), "ns", "data"));
        assert!(pod_uses(&pod("Pending"), "ns", "data"));
        assert!(!pod_uses(&pod("Succeeded"), "ns", "data"));
        assert!(!pod_uses(&pod("Running"), "other", "data"));
    }
}
