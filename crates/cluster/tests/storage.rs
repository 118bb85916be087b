//! Storage (issue 17) against a real embedded cluster, through kube-rs and kubectl: the
//! default `local-path` StorageClass; a claim that waits for its first consumer, is
//! provisioned on the node its pod was scheduled to and bound; data that outlives the pod
//! that wrote it; the pvc-protection finalizer holding a claim while a pod uses it, then the
//! volume and its directory going with the claim (reclaim `Delete`); static volumes bound
//! by smallest fit and kept `Released` (reclaim `Retain`); a pod whose claim does not exist;
//! and invalid claims and claim updates refused with kube's messages.
//!
//! One cluster serves every scenario (each in its own namespace): starting one costs more
//! than the scenarios themselves.

mod support;
use support::{kube_client, rand_u32};

use std::path::{Path, PathBuf};
use std::process::Command;

use futures::TryStreamExt;
use k8s_openapi::api::core::v1::{Event, PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::conditions::is_deleted;
use kube::runtime::{wait::await_condition, watcher, WatchStreamExt};
use serde_json::{json, Value};
use sparkyard_cluster::scheduling::NodeConfig;
use sparkyard_cluster::{Cluster, ClusterConfig};

async fn cluster() -> (Cluster, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let octet = |n: u32| (rand_u32() % n) as u8;
    // Its own service range and in-cluster API address in it: clusters of tests running
    // side by side must not want the same addresses.
    let range = octet(250);
    let config = ClusterConfig {
        api_listen: "127.0.0.1:0".parse().unwrap(),
        service_address: format!("127.12.{range}.1:443").parse().unwrap(),
        service_cidr: format!("127.12.{range}.0/24"),
        pod_cidr: format!("127.{}.0.0/16", 20 + octet(200)),
        // Two nodes: a volume's node affinity has a node to rule out.
        nodes: vec![
            NodeConfig::default(),
            NodeConfig {
                name: "sparkyard-node-2".into(),
                ..NodeConfig::default()
            },
        ],
        ..ClusterConfig::default()
    };
    let cluster = sparkyard_cluster::cluster::start(config, dir.path())
        .await
        .unwrap();
    (cluster, dir)
}

/// kubectl against the cluster (a private discovery cache), its stdout; fails on failure.
fn kubectl(cluster: &Cluster, args: &[&str]) -> String {
    let output = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig_path)
        .arg("--cache-dir")
        .arg(cluster.data_dir.join("kube-cache"))
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .expect("run kubectl");
    assert!(
        output.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

async fn create<K>(api: &Api<K>, object: Value) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let object: K = serde_json::from_value(object).unwrap();
    api.create(&PostParams::default(), &object).await.unwrap()
}

async fn namespace(client: &kube::Client, name: &str) {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    create(&api, json!({"metadata": {"name": name}})).await;
}

fn claim(name: &str, size: &str, class: Option<&str>) -> Value {
    let mut c = json!({"metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}});
    if let Some(class) = class {
        c["spec"]["storageClassName"] = json!(class);
    }
    c
}

fn pod(name: &str, claim: &str, script: &str, restart: &str) -> Value {
    json!({"metadata": {"name": name},
        "spec": {"restartPolicy": restart, "terminationGracePeriodSeconds": 0,
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}],
            "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", script],
                "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}})
}

fn phase_of(pvc: Option<&PersistentVolumeClaim>) -> Option<&str> {
    pvc.and_then(|c| c.status.as_ref())
        .and_then(|s| s.phase.as_deref())
}

async fn claim_phase(
    api: &Api<PersistentVolumeClaim>,
    name: &str,
    phase: &'static str,
) -> PersistentVolumeClaim {
    await_condition(
        api.clone(),
        name,
        move |c: Option<&PersistentVolumeClaim>| phase_of(c) == Some(phase),
    )
    .await
    .unwrap()
    .unwrap()
}

async fn pod_phase(api: &Api<Pod>, name: &str, phases: &'static [&'static str]) -> Pod {
    await_condition(api.clone(), name, move |p: Option<&Pod>| {
        p.and_then(|p| p.status.as_ref())
            .and_then(|s| s.phase.as_deref())
            .is_some_and(|ph| phases.contains(&ph))
    })
    .await
    .unwrap()
    .unwrap()
}

/// The first Event about `object` with `reason` (on a watch).
async fn event(client: &kube::Client, ns: &str, object: &str, reason: &str) -> Event {
    let api: Api<Event> = Api::namespaced(client.clone(), ns);
    let config = watcher::Config::default().fields(&format!("involvedObject.name={object}"));
    let mut stream = Box::pin(watcher(api, config).applied_objects());
    while let Some(e) = stream.try_next().await.unwrap() {
        if e.reason.as_deref() == Some(reason) {
            return e;
        }
    }
    unreachable!("watch streams do not end")
}

fn annotation<'a>(meta: &'a kube::api::ObjectMeta, key: &str) -> Option<&'a str> {
    meta.annotations.as_ref()?.get(key).map(String::as_str)
}

fn api_error(result: Result<impl std::fmt::Debug, kube::Error>) -> kube::core::Status {
    match result {
        Err(kube::Error::Api(status)) => *status,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_bind_mount_survive_pods_and_go_with_their_volume() {
    let (cluster, dir) = cluster().await;
    let client = kube_client(&cluster).await;

    the_default_class_is_local_path(&cluster);
    let path = a_claim_waits_for_its_pod_then_binds(&cluster, &client).await;
    data_outlives_the_pod_and_the_claim_is_protected_while_used(&cluster, &client, &path).await;
    static_volumes_bind_by_smallest_fit_and_are_retained(&client, dir.path()).await;
    a_pod_without_its_claim_stays_pending(&client).await;
    a_volume_pins_its_pods_to_its_node(&client, dir.path()).await;
    // Last: it changes the cluster's default class.
    a_claim_made_without_a_default_gets_one_later(&cluster, &client).await;
    invalid_claims_are_refused_and_nothing_is_stored(&client).await;
}

fn the_default_class_is_local_path(cluster: &Cluster) {
    let out = kubectl(cluster, &["get", "sc"]);
    let mut lines = out.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "PROVISIONER",
            "RECLAIMPOLICY",
            "VOLUMEBINDINGMODE",
            "ALLOWVOLUMEEXPANSION",
            "AGE"
        ]
    );
    let row = lines.next().unwrap();
    assert!(row.starts_with("local-path (default)"), "{out}");
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(
        &cells[2..6],
        [
            "rancher.io/local-path",
            "Delete",
            "WaitForFirstConsumer",
            "false"
        ],
        "{out}"
    );
}

/// Returns the directory of the provisioned volume.
async fn a_claim_waits_for_its_pod_then_binds(cluster: &Cluster, client: &kube::Client) -> PathBuf {
    namespace(client, "store").await;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "store");
    let created = create(&claims, claim("data", "64Mi", None)).await;
    let spec = created.spec.as_ref().unwrap();
    assert_eq!(
        spec.storage_class_name.as_deref(),
        Some("local-path"),
        "DefaultStorageClass"
    );
    assert_eq!(
        created.metadata.finalizers.as_deref(),
        Some(&["kubernetes.io/pvc-protection".to_string()][..])
    );
    let waiting = event(client, "store", "data", "WaitForFirstConsumer").await;
    assert_eq!(
        waiting.message.as_deref(),
        Some("waiting for first consumer to be created before binding")
    );
    let now = claims.get("data").await.unwrap();
    assert_eq!(phase_of(Some(&now)), Some("Pending"), "no pod uses it yet");
    assert_eq!(now.spec.unwrap().volume_name, None);

    let pods: Api<Pod> = Api::namespaced(client.clone(), "store");
    create(
        &pods,
        pod(
            "writer",
            "data",
            "echo written-by-writer > /data/file",
            "Never",
        ),
    )
    .await;
    let writer = pod_phase(&pods, "writer", &["Succeeded", "Failed"]).await;
    assert_eq!(
        writer.status.as_ref().unwrap().phase.as_deref(),
        Some("Succeeded")
    );
    let node = writer.spec.as_ref().unwrap().node_name.clone().unwrap();

    let bound = claim_phase(&claims, "data", "Bound").await;
    let uid = bound.metadata.uid.clone().unwrap();
    let volume_name = format!("pvc-{uid}");
    assert_eq!(
        bound.spec.as_ref().unwrap().volume_name.as_deref(),
        Some(volume_name.as_str())
    );
    assert_eq!(
        annotation(&bound.metadata, "volume.kubernetes.io/selected-node"),
        Some(node.as_str())
    );
    assert_eq!(
        annotation(&bound.metadata, "pv.kubernetes.io/bind-completed"),
        Some("yes")
    );
    assert_eq!(
        annotation(&bound.metadata, "pv.kubernetes.io/bound-by-controller"),
        Some("yes")
    );
    let status = bound.status.as_ref().unwrap();
    assert_eq!(status.capacity.as_ref().unwrap()["storage"].0, "64Mi");
    assert_eq!(
        status.access_modes.as_deref(),
        Some(&["ReadWriteOnce".to_string()][..])
    );
    let provisioned = event(client, "store", "data", "ProvisioningSucceeded").await;
    assert_eq!(
        provisioned.message.as_deref(),
        Some(format!("Successfully provisioned volume {volume_name}").as_str())
    );

    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    let pv = volumes.get(&volume_name).await.unwrap();
    let pv_json = serde_json::to_value(&pv).unwrap();
    assert_eq!(pv_json["spec"]["capacity"]["storage"], "64Mi");
    assert_eq!(pv_json["spec"]["persistentVolumeReclaimPolicy"], "Delete");
    assert_eq!(pv_json["spec"]["storageClassName"], "local-path");
    assert_eq!(pv_json["spec"]["claimRef"]["name"], "data");
    assert_eq!(pv_json["spec"]["claimRef"]["uid"], uid.as_str());
    assert_eq!(
        pv_json["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0],
        json!({"key": "kubernetes.io/hostname", "operator": "In", "values": [node]})
    );
    assert_eq!(pv_json["status"]["phase"], "Bound");
    assert_eq!(
        pv_json["metadata"]["finalizers"],
        json!(["kubernetes.io/pv-protection"])
    );
    let path = PathBuf::from(pv_json["spec"]["hostPath"]["path"].as_str().unwrap());
    assert!(
        path.starts_with(cluster.data_dir.join("local-path").join(&node)),
        "{path:?}"
    );
    assert_eq!(
        std::fs::read_to_string(path.join("file")).unwrap(),
        "written-by-writer\n",
        "the pod wrote into the volume's directory"
    );

    let out = kubectl(cluster, &["get", "pvc", "-n", "store"]);
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "STATUS",
            "VOLUME",
            "CAPACITY",
            "ACCESS",
            "MODES",
            "STORAGECLASS",
            "VOLUMEATTRIBUTESCLASS",
            "AGE"
        ]
    );
    let row: Vec<&str> = out.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        &row[..7],
        [
            "data",
            "Bound",
            volume_name.as_str(),
            "64Mi",
            "RWO",
            "local-path",
            "<unset>"
        ],
        "{out}"
    );
    let out = kubectl(cluster, &["get", "pv", volume_name.as_str()]);
    let row: Vec<&str> = out.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        &row[..8],
        [
            volume_name.as_str(),
            "64Mi",
            "RWO",
            "Delete",
            "Bound",
            "store/data",
            "local-path",
            "<unset>"
        ],
        "{out}"
    );
    path
}

async fn data_outlives_the_pod_and_the_claim_is_protected_while_used(
    cluster: &Cluster,
    client: &kube::Client,
    path: &Path,
) {
    let pods: Api<Pod> = Api::namespaced(client.clone(), "store");
    pods.delete("writer", &DeleteParams::default())
        .await
        .unwrap();
    create(
        &pods,
        pod(
            "reader",
            "data",
            "cat /data/file && exec sleep 600",
            "Never",
        ),
    )
    .await;
    let reader = pod_phase(&pods, "reader", &["Running", "Succeeded", "Failed"]).await;
    assert_eq!(reader.status.unwrap().phase.as_deref(), Some("Running"));
    // Its first line is the file the writer left (the log stream waits for it).
    let mut lines = pods
        .log_stream(
            "reader",
            &kube::api::LogParams {
                follow: true,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .lines();
    use futures::AsyncBufReadExt;
    let first = lines.try_next().await.unwrap();
    assert_eq!(first.as_deref(), Some("written-by-writer"));

    // Deleting the claim while the reader uses it: held by pvc-protection, volume kept.
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "store");
    let uid = claims.get("data").await.unwrap().metadata.uid.unwrap();
    claims
        .delete("data", &DeleteParams::default())
        .await
        .unwrap();
    let held = claims.get("data").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some());
    let out = kubectl(
        cluster,
        &["get", "pvc", "data", "-n", "store", "--no-headers"],
    );
    assert_eq!(out.split_whitespace().nth(1), Some("Terminating"), "{out}");
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    let volume_name = format!("pvc-{uid}");
    // A claim created after the deletion, which the controller answers with an event: the
    // controller decides deletions first in a pass, so once that event exists, it has
    // seen the deletion and kept the claim for the reader.
    create(&claims, claim("marker", "1Mi", Some(""))).await;
    event(client, "store", "marker", "FailedBinding").await;
    let again = claims.get("data").await.unwrap();
    assert!(again
        .metadata
        .finalizers
        .unwrap()
        .contains(&"kubernetes.io/pvc-protection".to_string()));
    assert!(volumes.get_opt(&volume_name).await.unwrap().is_some());
    assert!(path.exists());

    // The reader goes: the claim goes, then its volume and the volume's directory.
    let reader_uid = pods.get("reader").await.unwrap().metadata.uid.unwrap();
    pods.delete(
        "reader",
        &DeleteParams {
            grace_period_seconds: Some(0),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    await_condition(pods.clone(), "reader", is_deleted(&reader_uid))
        .await
        .unwrap();
    await_condition(claims.clone(), "data", is_deleted(&uid))
        .await
        .unwrap();
    let pv_uid = match volumes.get_opt(&volume_name).await.unwrap() {
        Some(pv) => pv.metadata.uid.unwrap(),
        None => String::new(),
    };
    if !pv_uid.is_empty() {
        await_condition(volumes.clone(), &volume_name, is_deleted(&pv_uid))
            .await
            .unwrap();
    }
    assert!(!path.exists(), "reclaim Delete removes {path:?}");
}

async fn static_volumes_bind_by_smallest_fit_and_are_retained(client: &kube::Client, dir: &Path) {
    namespace(client, "manual").await;
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    for (name, size) in [
        ("manual-big", "5Gi"),
        ("manual-small", "1Gi"),
        ("manual-tiny", "100Mi"),
    ] {
        let host = dir.join(name);
        std::fs::create_dir_all(&host).unwrap();
        create(
            &volumes,
            json!({"metadata": {"name": name},
                "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                         "storageClassName": "manual", "hostPath": {"path": host.to_string_lossy()}}}),
        )
        .await;
    }
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "manual");
    create(&claims, claim("logs", "500Mi", Some("manual"))).await;
    let bound = claim_phase(&claims, "logs", "Bound").await;
    assert_eq!(
        bound.spec.as_ref().unwrap().volume_name.as_deref(),
        Some("manual-small"),
        "the smallest volume that fits"
    );
    assert_eq!(bound.status.unwrap().capacity.unwrap()["storage"].0, "1Gi");
    let pv = volumes.get("manual-small").await.unwrap();
    assert_eq!(
        annotation(&pv.metadata, "pv.kubernetes.io/bound-by-controller"),
        Some("yes")
    );
    assert_eq!(
        pv.spec
            .as_ref()
            .unwrap()
            .persistent_volume_reclaim_policy
            .as_deref(),
        Some("Retain")
    );

    let uid = bound.metadata.uid.unwrap();
    claims
        .delete("logs", &DeleteParams::default())
        .await
        .unwrap();
    await_condition(claims.clone(), "logs", is_deleted(&uid))
        .await
        .unwrap();
    let released = await_condition(
        volumes.clone(),
        "manual-small",
        |v: Option<&PersistentVolume>| {
            v.and_then(|v| v.status.as_ref())
                .and_then(|s| s.phase.as_deref())
                == Some("Released")
        },
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        released.spec.unwrap().claim_ref.unwrap().name.as_deref(),
        Some("logs")
    );
    assert!(dir.join("manual-small").exists(), "Retain keeps the data");
    let free = volumes.get("manual-tiny").await.unwrap();
    assert_eq!(free.status.unwrap().phase.as_deref(), Some("Available"));
}

async fn a_pod_without_its_claim_stays_pending(client: &kube::Client) {
    namespace(client, "orphans").await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "orphans");
    create(&pods, pod("lonely", "nope", "true", "Never")).await;
    let unschedulable = await_condition(pods.clone(), "lonely", |p: Option<&Pod>| {
        p.and_then(|p| p.status.as_ref())
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c.type_ == "PodScheduled" && c.status == "False")
            })
    })
    .await
    .unwrap()
    .unwrap();
    let status = unschedulable.status.unwrap();
    assert_eq!(status.phase.as_deref(), Some("Pending"));
    let condition = status
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "PodScheduled")
        .unwrap();
    assert_eq!(condition.reason.as_deref(), Some("Unschedulable"));
    assert_eq!(
        condition.message.as_deref(),
        Some("0/2 nodes are available: persistentvolumeclaim \"nope\" not found. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.")
    );
    assert_eq!(unschedulable.spec.unwrap().node_name, None);
}

async fn invalid_claims_are_refused_and_nothing_is_stored(client: &kube::Client) {
    namespace(client, "refused").await;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "refused");
    let empty: PersistentVolumeClaim =
        serde_json::from_value(json!({"metadata": {"name": "bad"}, "spec": {}})).unwrap();
    let status = api_error(claims.create(&PostParams::default(), &empty).await);
    assert_eq!(status.code, 422);
    assert_eq!(
        status.message,
        "PersistentVolumeClaim \"bad\" is invalid: [spec.accessModes: Required value: at least 1 access mode is required, spec.resources[storage]: Required value]"
    );
    assert!(
        claims.get_opt("bad").await.unwrap().is_none(),
        "nothing stored"
    );

    // A bound claim keeps its spec; growing it needs a class that allows expansion.
    create(&claims, claim("fixed", "10Mi", Some(""))).await;
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    create(
        &volumes,
        json!({"metadata": {"name": "refused-fixed"},
            "spec": {"capacity": {"storage": "10Mi"}, "accessModes": ["ReadWriteOnce", "ReadOnlyMany"],
                     "storageClassName": "", "hostPath": {"path": "/tmp/sparkyard-refused-fixed", "type": "DirectoryOrCreate"},
                     "claimRef": {"namespace": "refused", "name": "fixed"}}}),
    )
    .await;
    let bound = claim_phase(&claims, "fixed", "Bound").await;
    assert_eq!(
        bound.spec.as_ref().unwrap().volume_name.as_deref(),
        Some("refused-fixed")
    );
    let patch = |body: Value| {
        let claims = claims.clone();
        async move {
            claims
                .patch("fixed", &PatchParams::default(), &Patch::Merge(body))
                .await
        }
    };
    let status = api_error(patch(json!({"spec": {"accessModes": ["ReadOnlyMany"]}})).await);
    assert_eq!(status.code, 422);
    assert_eq!(
        status.message,
        "PersistentVolumeClaim \"fixed\" is invalid: spec: Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"
    );
    let status =
        api_error(patch(json!({"spec": {"resources": {"requests": {"storage": "20Mi"}}}})).await);
    assert_eq!(status.code, 403);
    assert_eq!(
        status.message,
        "persistentvolumeclaims \"fixed\" is forbidden: only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize"
    );
    let after = claims.get("fixed").await.unwrap();
    assert_eq!(
        after.metadata.resource_version, bound.metadata.resource_version,
        "unchanged"
    );
}

async fn a_volume_pins_its_pods_to_its_node(client: &kube::Client, dir: &Path) {
    namespace(client, "pinned").await;
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    create(
        &volumes,
        json!({"metadata": {"name": "pinned-data"},
            "spec": {"capacity": {"storage": "10Mi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "",
                     "hostPath": {"path": dir.join("pinned").to_string_lossy(), "type": "DirectoryOrCreate"},
                     "claimRef": {"namespace": "pinned", "name": "data"},
                     "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                         {"key": "kubernetes.io/hostname", "operator": "In", "values": ["sparkyard-node-2"]}]}]}}}}),
    )
    .await;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "pinned");
    create(&claims, claim("data", "10Mi", Some(""))).await;
    claim_phase(&claims, "data", "Bound").await;

    let pods: Api<Pod> = Api::namespaced(client.clone(), "pinned");
    let mut elsewhere = pod("elsewhere", "data", "true", "Never");
    elsewhere["spec"]["nodeSelector"] = json!({"kubernetes.io/hostname": "sparkyard-node-1"});
    create(&pods, elsewhere).await;
    let refused = await_condition(pods.clone(), "elsewhere", |p: Option<&Pod>| {
        p.and_then(|p| p.status.as_ref())
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c.type_ == "PodScheduled" && c.status == "False")
            })
    })
    .await
    .unwrap()
    .unwrap();
    let condition = refused
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "PodScheduled")
        .unwrap();
    assert_eq!(
        condition.message.as_deref(),
        Some("0/2 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 1 node(s) had volume node affinity conflict. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.")
    );

    create(
        &pods,
        pod("follower", "data", "echo pinned > /data/where", "Never"),
    )
    .await;
    let follower = pod_phase(&pods, "follower", &["Succeeded", "Failed"]).await;
    assert_eq!(
        follower.spec.unwrap().node_name.as_deref(),
        Some("sparkyard-node-2")
    );
    assert_eq!(follower.status.unwrap().phase.as_deref(), Some("Succeeded"));
    assert_eq!(
        std::fs::read_to_string(dir.join("pinned/where")).unwrap(),
        "pinned\n",
        "DirectoryOrCreate: the kubelet made the directory"
    );
}

async fn a_claim_made_without_a_default_gets_one_later(cluster: &Cluster, client: &kube::Client) {
    let annotate = |value: &str| {
        kubectl(
            cluster,
            &[
                "annotate",
                "sc",
                "local-path",
                &format!("storageclass.kubernetes.io/is-default-class={value}"),
                "--overwrite",
            ],
        )
    };
    annotate("false");
    let out = kubectl(cluster, &["get", "sc", "--no-headers"]);
    assert_eq!(out.split_whitespace().next(), Some("local-path"), "{out}");
    assert_eq!(
        out.split_whitespace().nth(1),
        Some("rancher.io/local-path"),
        "no longer the default: {out}"
    );

    namespace(client, "late").await;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "late");
    let created = create(&claims, claim("data", "1Mi", None)).await;
    assert_eq!(
        created.spec.unwrap().storage_class_name,
        None,
        "no default to give"
    );

    // Retroactive default StorageClass assignment, once there is a default again.
    annotate("true");
    await_condition(
        claims.clone(),
        "data",
        |c: Option<&PersistentVolumeClaim>| {
            c.and_then(|c| c.spec.as_ref())
                .and_then(|s| s.storage_class_name.as_deref())
                == Some("local-path")
        },
    )
    .await
    .unwrap();
    assert!(kubectl(cluster, &["get", "sc"]).contains("local-path (default)"));
}
