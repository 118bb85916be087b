//! Storage: kube-controller-manager's PersistentVolume controller (binding claims to
//! volumes, `Released` volumes and their reclaim policy), its pvc-protection and
//! pv-protection controllers, and the local-path provisioner (`rancher.io/local-path`, the
//! provisioner k3s and kind ship) that makes a volume for each claim of its classes once
//! the scheduler has chosen the claim's node.
//!
//! Who does what, as in Kubernetes:
//! - the API server adds the default class and the protection finalizers (admission);
//! - the scheduler records the chosen node on a `WaitForFirstConsumer` claim
//!   (`volume.kubernetes.io/selected-node`);
//! - this controller provisions (a `hostPath` PersistentVolume `pvc-<claim uid>` of type
//!   `DirectoryOrCreate` at `<local-path root>/<node>/pvc-<uid>_<ns>_<name>`, pinned to the
//!   node and pre-bound to the claim), binds claim and volume, and on reclaim `Delete`
//!   removes the directory and the volume — the helper pod rancher's provisioner runs on
//!   the node for that is this process here, since every node is this machine;
//! - the kubelet creates the directory when it first mounts the volume.
//!
//! Reconcile is level-triggered: every change to a claim, volume, class or a pod that
//! mounts a claim starts a pass over all claims and volumes.

pub mod binder;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};

use sparkyard_kube_apiserver::admission::storage::{default_class, PVC_PROTECTION, PV_PROTECTION};
use sparkyard_kube_apiserver::client::{Propagation, Subresource};
use sparkyard_kube_apiserver::events::{self, Kind, Source};
use sparkyard_kube_apiserver::registry::Resource;
use sparkyard_kube_apiserver::Client;
use sparkyard_scheduling::volumes::{ANNOTATION_SELECTED_NODE, WAIT_FOR_FIRST_CONSUMER};

use binder::*;

pub const PVCS: Resource = Resource::new("", "persistentvolumeclaims");
pub const PVS: Resource = Resource::new("", "persistentvolumes");
pub const STORAGE_CLASSES: Resource = Resource::new("storage.k8s.io", "storageclasses");
const PODS: Resource = Resource::new("", "pods");
const NODES: Resource = Resource::new("", "nodes");

/// The provisioner name of the built-in class: rancher's, so manifests written for k3s or
/// kind (`provisioner: rancher.io/local-path`) find it.
pub const LOCAL_PATH_PROVISIONER: &str = "rancher.io/local-path";
/// The built-in default StorageClass.
pub const LOCAL_PATH_CLASS: &str = "local-path";

const CONTROLLER: Source = Source {
    component: "persistentvolume-controller",
    host: None,
};
const PROVISIONER: Source = Source {
    component: LOCAL_PATH_PROVISIONER,
    host: None,
};

/// The built-in default StorageClass, as the cluster creates it when absent.
pub fn default_storage_class() -> Value {
    json!({
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {"name": LOCAL_PATH_CLASS,
                     "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
        "provisioner": LOCAL_PATH_PROVISIONER,
        "reclaimPolicy": "Delete",
        "volumeBindingMode": WAIT_FOR_FIRST_CONSUMER,
        "allowVolumeExpansion": false,
    })
}

/// Starts the controller; `local_path_root` is where provisioned volumes live.
pub fn start(client: &Client, local_path_root: PathBuf) {
    tokio::spawn(run(client.clone(), local_path_root));
}

fn uses_a_claim(pod: &Value) -> bool {
    pod.pointer("/spec/volumes")
        .and_then(Value::as_array)
        .is_some_and(|v| v.iter().any(|v| v.get("persistentVolumeClaim").is_some()))
}

async fn run(client: Client, root: PathBuf) {
    let mut state = State::default();
    loop {
        let revision = client.revision();
        reconcile_all(&client, &root, &mut state);
        let (Ok(claims), Ok(volumes), Ok(classes), Ok(pods)) = (
            client.watch(PVCS, Some(revision)),
            client.watch(PVS, Some(revision)),
            client.watch(STORAGE_CLASSES, Some(revision)),
            client.watch(PODS, Some(revision)),
        ) else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        // Only pods that mount a claim matter (pvc-protection): Spark's thousands of
        // executors must not trigger passes.
        let pods = pods.filter(|e| std::future::ready(uses_a_claim(&e.object)));
        let mut merged = futures::stream::select(
            futures::stream::select(Box::pin(claims), Box::pin(volumes)),
            futures::stream::select(Box::pin(classes), Box::pin(pods)),
        );
        // kube's PV controller resyncs every 15 s; a pass also follows every change.
        let _ = tokio::time::timeout(Duration::from_secs(15), merged.next()).await;
        // Coalesce a burst (a claim and its volume change together).
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What passes remember: the events already recorded (kube's recorder would count
/// repeats; one is enough to explain a waiting claim).
#[derive(Default)]
pub struct State {
    recorded: HashSet<(String, &'static str)>,
}

impl State {
    fn once(&mut self, object: &Value, reason: &'static str) -> bool {
        self.recorded
            .insert((text(object, "/metadata/uid").to_string(), reason))
    }
}

fn as_claim(claim: &Value) -> Value {
    let mut c = claim.clone();
    c["apiVersion"] = json!("v1");
    c["kind"] = json!("PersistentVolumeClaim");
    c
}

/// One pass over every claim and volume.
pub fn reconcile_all(client: &Client, root: &Path, state: &mut State) {
    let (claims, _) = client.list(PVCS, None);
    let (volumes, _) = client.list(PVS, None);
    if claims.is_empty() && volumes.is_empty() {
        return;
    }
    let uids: HashSet<&str> = claims.iter().map(|c| text(c, "/metadata/uid")).collect();
    state
        .recorded
        .retain(|(uid, _)| uids.contains(uid.as_str()));
    let (pods, _) = client.list(PODS, None);
    let pods: Vec<Arc<Value>> = pods.into_iter().filter(|p| uses_a_claim(p)).collect();
    // Claims being deleted first: a pass that did anything for a claim created after a
    // deletion has decided that deletion too (what the tests wait on).
    let (deleting, live): (Vec<_>, Vec<_>) = claims
        .iter()
        .partition(|c| c.pointer("/metadata/deletionTimestamp").is_some());
    for claim in deleting.into_iter().chain(live) {
        sync_claim(client, root, state, claim, &volumes, &pods);
    }
    // The pass over volumes sees the claims as they are now (some were just bound).
    let (claims, _) = client.list(PVCS, None);
    let (volumes, _) = client.list(PVS, None);
    for volume in &volumes {
        sync_volume(client, root, volume, &claims);
    }
}

fn sync_claim(
    client: &Client,
    root: &Path,
    state: &mut State,
    claim: &Arc<Value>,
    volumes: &[Arc<Value>],
    pods: &[Arc<Value>],
) {
    let ns = text(claim, "/metadata/namespace");
    let name = text(claim, "/metadata/name");
    if claim.pointer("/metadata/deletionTimestamp").is_some() {
        // pvc-protection: the claim goes once no pod uses it.
        let in_use = pods.iter().any(|p| pod_uses(p, ns, name));
        let protected = claim
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .is_some_and(|f| f.iter().any(|f| f == PVC_PROTECTION));
        if protected && !in_use {
            let _ = client.remove_finalizer(PVCS, ns, name, PVC_PROTECTION);
        }
        return;
    }
    let bound_to = text(claim, "/spec/volumeName");
    if !bound_to.is_empty() {
        match volumes
            .iter()
            .find(|v| text(v, "/metadata/name") == bound_to)
        {
            Some(volume)
                if volume.pointer("/spec/claimRef").is_none_or(Value::is_null)
                    || refers_to(volume, claim) =>
            {
                bind(client, claim, volume, false)
            }
            _ => {
                if text(claim, "/status/phase") == "Bound" {
                    set_claim_phase(client, ns, name, "Lost");
                    events::record(
                        client,
                        &as_claim(claim),
                        Kind::Warning,
                        "ClaimLost",
                        "Bound claim has lost its PersistentVolume. Data on the volume is lost!",
                        &CONTROLLER,
                    );
                }
            }
        }
        return;
    }
    if claim
        .pointer("/spec/storageClassName")
        .is_none_or(Value::is_null)
        && annotation(claim, "volume.beta.kubernetes.io/storage-class").is_none()
    {
        // Retroactive default StorageClass assignment (kube 1.28+): a claim stored before
        // a default class existed (or by an older sparkyard) gets the default now.
        let (classes, _) = client.list(STORAGE_CLASSES, None);
        if let Some(default) = default_class(classes.iter().map(|c| c.as_ref())) {
            let default = text(default, "/metadata/name").to_string();
            let _ = client.modify(PVCS, ns, name, Subresource::Main, |c| {
                if c["spec"]["storageClassName"].is_null() {
                    c["spec"]["storageClassName"] = json!(default);
                }
                Ok(())
            });
            return; // the claim's next pass binds it with its class
        }
    }
    let class_name = claim_class(claim);
    let class = (!class_name.is_empty())
        .then(|| client.get(STORAGE_CLASSES, "", class_name))
        .flatten();
    let node = annotation(claim, ANNOTATION_SELECTED_NODE)
        .unwrap_or("")
        .to_string();
    let waiting = class
        .as_ref()
        .is_some_and(|c| text(c, "/volumeBindingMode") == WAIT_FOR_FIRST_CONSUMER)
        && node.is_empty();
    if let Some(volume) = best_match(claim, volumes, waiting) {
        bind(client, claim, volume, true);
        return;
    }
    if class_name.is_empty() {
        if state.once(claim, "FailedBinding") {
            events::record(
                client,
                &as_claim(claim),
                Kind::Normal,
                "FailedBinding",
                "no persistent volumes available for this claim and no storage class is set",
                &CONTROLLER,
            );
        }
        return;
    }
    let Some(class) = class else {
        if state.once(claim, "ProvisioningFailed") {
            events::record(
                client,
                &as_claim(claim),
                Kind::Warning,
                "ProvisioningFailed",
                &format!("storageclass.storage.k8s.io \"{class_name}\" not found"),
                &CONTROLLER,
            );
        }
        return;
    };
    if waiting {
        if state.once(claim, "WaitForFirstConsumer") {
            events::record(
                client,
                &as_claim(claim),
                Kind::Normal,
                "WaitForFirstConsumer",
                "waiting for first consumer to be created before binding",
                &CONTROLLER,
            );
        }
        return;
    }
    let provisioner = text(&class, "/provisioner").to_string();
    if annotation(claim, ANNOTATION_STORAGE_PROVISIONER) != Some(provisioner.as_str()) {
        let _ = client.modify(PVCS, ns, name, Subresource::Main, |c| {
            if !c["metadata"]["annotations"].is_object() {
                c["metadata"]["annotations"] = json!({});
            }
            c["metadata"]["annotations"][ANNOTATION_STORAGE_PROVISIONER] = json!(provisioner);
            c["metadata"]["annotations"][ANNOTATION_BETA_STORAGE_PROVISIONER] = json!(provisioner);
            Ok(())
        });
    }
    if state.once(claim, "ExternalProvisioning") {
        events::record(client, &as_claim(claim), Kind::Normal, "ExternalProvisioning", &format!("Waiting for a volume to be created either by the external provisioner '{provisioner}' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered."), &CONTROLLER);
    }
    if provisioner == LOCAL_PATH_PROVISIONER {
        provision(client, root, state, claim, &class, &node);
    }
}

/// The local-path provisioner's part: a volume for the claim on its selected node.
fn provision(
    client: &Client,
    root: &Path,
    state: &mut State,
    claim: &Arc<Value>,
    class: &Value,
    node: &str,
) {
    let claim_obj = as_claim(claim);
    if node.is_empty() {
        // rancher's provisioner needs the node: an Immediate class cannot work with it.
        if state.once(claim, "ProvisioningFailed") {
            events::record(client, &claim_obj, Kind::Warning, "ProvisioningFailed", "failed to provision volume with StorageClass \"local-path\": configuration error, no node was specified", &PROVISIONER);
        }
        return;
    }
    let ns = text(claim, "/metadata/namespace");
    let name = text(claim, "/metadata/name");
    events::record(
        client,
        &claim_obj,
        Kind::Normal,
        "Provisioning",
        &format!("External provisioner is provisioning volume for claim \"{ns}/{name}\""),
        &PROVISIONER,
    );
    let hostname = client
        .get(NODES, "", node)
        .and_then(|n| annotation_free_label(&n, LABEL_HOSTNAME))
        .unwrap_or_else(|| node.to_string());
    let path = local_path(root, node, claim);
    let volume = provisioned_volume(claim, class, LOCAL_PATH_PROVISIONER, node, &hostname, &path);
    let volume_name = text(&volume, "/metadata/name").to_string();
    match client.create(PVS, "", volume) {
        Ok(created) => {
            events::record(
                client,
                &claim_obj,
                Kind::Normal,
                "ProvisioningSucceeded",
                &format!("Successfully provisioned volume {volume_name}"),
                &PROVISIONER,
            );
            bind(client, claim, &created, false);
        }
        Err(e) if e.code == 409 => {} // made by an earlier pass; the binding follows
        Err(e) => events::record(
            client,
            &claim_obj,
            Kind::Warning,
            "ProvisioningFailed",
            &format!(
                "failed to provision volume with StorageClass \"{}\": {}",
                text(class, "/metadata/name"),
                e.message
            ),
            &PROVISIONER,
        ),
    }
}

fn annotation_free_label(object: &Value, key: &str) -> Option<String> {
    object
        .pointer("/metadata/labels")
        .and_then(|l| l.get(key))
        .and_then(Value::as_str)
        .map(String::from)
}

fn set_claim_phase(client: &Client, ns: &str, name: &str, phase: &str) {
    let _ = client.update_status(PVCS, ns, name, |c| {
        c["status"]["phase"] = json!(phase);
        Ok(())
    });
}

/// Binds `claim` and `volume` both ways, as kube's `bind` does: the volume's `claimRef`
/// (annotated `bound-by-controller` when this controller chose it), the volume's phase,
/// the claim's `volumeName` and annotations, the claim's status. Each write is skipped
/// when already done, so a pass over a bound pair writes nothing.
fn bind(client: &Client, claim: &Value, volume: &Value, chosen_here: bool) {
    let ns = text(claim, "/metadata/namespace");
    let name = text(claim, "/metadata/name");
    let volume_name = text(volume, "/metadata/name").to_string();
    if !refers_to(volume, claim) || text(volume, "/spec/claimRef/uid").is_empty() {
        let reference = claim_ref(claim);
        let result = client.modify(PVS, "", &volume_name, Subresource::Main, |v| {
            v["spec"]["claimRef"] = reference.clone();
            if chosen_here {
                if !v["metadata"]["annotations"].is_object() {
                    v["metadata"]["annotations"] = json!({});
                }
                v["metadata"]["annotations"][ANNOTATION_BOUND_BY_CONTROLLER] = json!("yes");
            }
            Ok(())
        });
        if result.is_err() {
            return;
        }
    }
    if text(volume, "/status/phase") != "Bound" {
        let _ = client.update_status(PVS, "", &volume_name, |v| {
            v["status"]["phase"] = json!("Bound");
            Ok(())
        });
    }
    let by_controller = text(claim, "/spec/volumeName").is_empty();
    if by_controller || annotation(claim, ANNOTATION_BIND_COMPLETED).is_none() {
        let result = client.modify(PVCS, ns, name, Subresource::Main, |c| {
            c["spec"]["volumeName"] = json!(volume_name);
            if !c["metadata"]["annotations"].is_object() {
                c["metadata"]["annotations"] = json!({});
            }
            c["metadata"]["annotations"][ANNOTATION_BIND_COMPLETED] = json!("yes");
            if by_controller {
                c["metadata"]["annotations"][ANNOTATION_BOUND_BY_CONTROLLER] = json!("yes");
            }
            Ok(())
        });
        if result.is_err() {
            return;
        }
    }
    let capacity = volume
        .pointer("/spec/capacity")
        .cloned()
        .unwrap_or(json!({}));
    let modes = volume
        .pointer("/spec/accessModes")
        .cloned()
        .unwrap_or(json!([]));
    if text(claim, "/status/phase") != "Bound"
        || claim.pointer("/status/capacity") != Some(&capacity)
        || claim.pointer("/status/accessModes") != Some(&modes)
    {
        let _ = client.update_status(PVCS, ns, name, |c| {
            c["status"]["phase"] = json!("Bound");
            c["status"]["capacity"] = capacity.clone();
            c["status"]["accessModes"] = modes.clone();
            Ok(())
        });
    }
}

fn sync_volume(client: &Client, root: &Path, volume: &Arc<Value>, claims: &[Arc<Value>]) {
    let name = text(volume, "/metadata/name");
    let phase = text(volume, "/status/phase");
    let claim_ref = volume.pointer("/spec/claimRef").filter(|r| r.is_object());
    let claim = claim_ref.and_then(|r| {
        claims.iter().find(|c| {
            text(c, "/metadata/namespace") == text(r, "/namespace")
                && text(c, "/metadata/name") == text(r, "/name")
        })
    });
    if volume.pointer("/metadata/deletionTimestamp").is_some() {
        // pv-protection: a volume goes once no claim is bound to it.
        let bound = claim.is_some_and(|c| text(c, "/spec/volumeName") == name);
        if !bound {
            let _ = client.remove_finalizer(PVS, "", name, PV_PROTECTION);
        }
        return;
    }
    let Some(r) = claim_ref else {
        if phase != "Available" && phase != "Failed" {
            set_volume_phase(client, name, "Available", None);
        }
        return;
    };
    let claim_uid = text(r, "/uid");
    let claim_gone = match claim {
        None => true,
        Some(c) => !claim_uid.is_empty() && text(c, "/metadata/uid") != claim_uid,
    };
    if !claim_gone {
        return; // bound, or pre-bound and waiting for its claim's pass
    }
    if claim_uid.is_empty() {
        // Pre-bound by a user to a claim that does not exist yet: it waits for it.
        if phase != "Available" {
            set_volume_phase(client, name, "Available", None);
        }
        return;
    }
    // The claim it was bound to is gone: Released, then the reclaim policy.
    if phase != "Released" && phase != "Failed" {
        set_volume_phase(client, name, "Released", None);
    }
    if text(volume, "/spec/persistentVolumeReclaimPolicy") != "Delete" || phase == "Failed" {
        return; // Retain: kept, Released, for an administrator
    }
    if annotation(volume, ANNOTATION_PROVISIONED_BY) != Some(LOCAL_PATH_PROVISIONER) {
        set_volume_phase(client, name, "Failed", Some(format!("error getting deleter volume plugin for volume \"{name}\": no deletable volume plugin matched")));
        return;
    }
    if let Some(path) = removable_path(volume, root) {
        if let Err(e) = std::fs::remove_dir_all(&path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(volume = name, path = %path.display(), error = %e, "cannot remove a local-path volume's directory");
                return;
            }
        }
    }
    let _ = client.delete(PVS, "", name, Propagation::Background, None);
}

fn set_volume_phase(client: &Client, name: &str, phase: &str, message: Option<String>) {
    let _ = client.update_status(PVS, "", name, |v| {
        v["status"]["phase"] = json!(phase);
        match &message {
            Some(m) => v["status"]["message"] = json!(m),
            None => {
                if let Some(status) = v["status"].as_object_mut() {
                    status.remove("message");
                }
            }
        }
        Ok(())
    });
}
