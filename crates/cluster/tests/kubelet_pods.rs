//! The kubelet, scheduler and controllers against a real embedded cluster (in process):
//! pods run as bubblewrap sandboxes, see their volumes at in-image paths, go through the
//! graceful deletion sequence; Jobs retry with back-off; GC cascades.

mod support;
use support::rand_u32;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{json, Value};
use sparkyard_cluster::registry::{EventType, Resource};
use sparkyard_cluster::{resources, Cluster, ClusterConfig, Propagation};

const PODS: Resource = Resource::new("", "pods");

async fn cluster() -> (Cluster, tempfile::TempDir) {
    cluster_with(|_| {}).await
}

async fn cluster_with(configure: impl FnOnce(&mut ClusterConfig)) -> (Cluster, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let octet = |n: u32| (rand_u32() % n) as u8;
    let mut config = ClusterConfig {
        api_listen: "127.0.0.1:0".parse().unwrap(),
        service_address: format!("127.10.{}.{}:443", octet(250), 2 + octet(250))
            .parse()
            .unwrap(),
        pod_cidr: format!("127.{}.0.0/16", 20 + octet(200)),
        ..ClusterConfig::default()
    };
    configure(&mut config);
    let cluster = sparkyard_cluster::cluster::start(config, dir.path())
        .await
        .unwrap();
    (cluster, dir)
}

fn create(
    cluster: &Cluster,
    info: &'static resources::ResourceInfo,
    ns: &str,
    object: Value,
) -> Value {
    Value::clone(
        &cluster
            .client()
            .create(info.resource(), ns, object)
            .unwrap(),
    )
}

fn namespace(cluster: &Cluster, name: &str) {
    create(
        cluster,
        &resources::NAMESPACES,
        "",
        json!({"metadata": {"name": name}}),
    );
}

async fn wait_for(
    cluster: &Cluster,
    ns: &str,
    name: &str,
    timeout: Duration,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Arc<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(pod) = cluster.client().get(PODS, ns, name) {
            if check(&pod) {
                return pod;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; pod is {}",
                    serde_json::to_string_pretty(&*pod).unwrap()
                );
            }
        } else if Instant::now() > deadline {
            panic!("timed out waiting for {what}; pod {ns}/{name} does not exist");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn phase(pod: &Value) -> &str {
    pod["status"]["phase"].as_str().unwrap_or("")
}

fn log_of(cluster: &Cluster, pod: &Value, container: &str, restart: u32) -> String {
    let path = sparkyard_cluster::logs::pod_log_path(
        &cluster.data_dir,
        pod["metadata"]["namespace"].as_str().unwrap(),
        pod["metadata"]["name"].as_str().unwrap(),
        pod["metadata"]["uid"].as_str().unwrap(),
        container,
        restart,
    );
    let output = sparkyard_cluster::logs::read_output(&path, None).unwrap_or_default();
    String::from_utf8(output).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_sees_its_volumes_env_and_cluster_names() {
    let (cluster, _dir) = cluster().await;
    namespace(&cluster, "vols");
    create(
        &cluster,
        &resources::SERVICE_ACCOUNTS,
        "vols",
        json!({"metadata": {"name": "spark"}}),
    );
    create(
        &cluster,
        &resources::SECRETS,
        "vols",
        json!({"metadata": {"name": "creds"}, "data": {"password": "czNjcjN0"}}),
    );
    create(
        &cluster,
        &resources::SERVICES,
        "vols",
        json!({"metadata": {"name": "web"}, "spec": {"clusterIP": "None", "selector": {"app": "web"}}}),
    );
    // The pod is created before its configMap exists (Spark's POSTs race): it must wait.
    let script = r#"
        set -e
        echo "conf=$(cat /opt/spark/conf/spark.properties)"
        echo "mode=$(stat -c %a /opt/spark/conf/spark.properties)"
        echo "secret=$(cat /etc/creds/password) mode=$(stat -c %a /etc/creds/password)"
        echo scratch > /var/data/spark-1/file && echo "emptydir=$(cat /var/data/spark-1/file)"
        echo "jars=$(ls /opt/spark/jars | grep -c jar) emr=$(test -f /usr/lib/spark/examples/src/main/python/pi.py && echo yes)"
        echo "token=$(head -c 3 /var/run/secrets/kubernetes.io/serviceaccount/token) ns=$(cat /var/run/secrets/kubernetes.io/serviceaccount/namespace)"
        echo "ca=$(head -1 /var/run/secrets/kubernetes.io/serviceaccount/ca.crt)"
        echo "env POD=$POD NS=$NS UID_OK=$([ -n "$PUID" ] && echo yes) IP=$IP NODE=$NODE SA=$SA APP=$APP PW=$PW CM_A=$CM_A MEM=$MEM"
        echo "hostname=$(hostname) pwd=$(pwd)"
        echo "api=$(getent hosts kubernetes.default.svc | awk '{print $1}') k8s_host=$KUBERNETES_SERVICE_HOST"
        echo "web=$(getent hosts web.vols.svc.cluster.local | awk '{print $1}')"
        echo "self=$(getent hosts $(hostname) | awk '{print $1}')"
        echo "home=$HOME host_root_entries=$(ls -A /root | wc -l) datadir_hidden=$(ls $DATA_DIR 2>/dev/null | wc -l)"
        echo "pid=$$$$"
    "#;
    let pod = create(
        &cluster,
        &resources::PODS,
        "vols",
        json!({
            "metadata": {"name": "probe", "labels": {"app": "web"}},
            "spec": {
                "restartPolicy": "Never",
                "serviceAccountName": "spark",
                "containers": [{
                    "name": "main", "image": "apache/spark:4.0.1",
                    "command": ["/bin/sh", "-c", script],
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "1Gi"}},
                    "env": [
                        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                        {"name": "PUID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
                        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                        {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
                        {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                        {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
                        {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
                        {"name": "DATA_DIR", "value": cluster.data_dir.display().to_string()}
                    ],
                    "envFrom": [{"configMapRef": {"name": "conf"}, "prefix": "CM_"}],
                    "volumeMounts": [
                        {"name": "conf", "mountPath": "/opt/spark/conf"},
                        {"name": "creds", "mountPath": "/etc/creds"},
                        {"name": "local", "mountPath": "/var/data/spark-1"}
                    ]
                }],
                "volumes": [
                    {"name": "conf", "configMap": {"name": "conf", "items": [{"key": "spark.properties", "path": "spark.properties", "mode": 0o640}]}},
                    {"name": "creds", "secret": {"secretName": "creds", "defaultMode": 0o400}},
                    {"name": "local", "emptyDir": {}}
                ]
            }
        }),
    );
    let name = pod["metadata"]["name"].as_str().unwrap();
    let waiting = wait_for(
        &cluster,
        "vols",
        name,
        Duration::from_secs(10),
        "ContainerCreating",
        |p| {
            p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ContainerCreating"
        },
    )
    .await;
    assert_eq!(phase(&waiting), "Pending");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        phase(&cluster.client().get(PODS, "vols", name).unwrap()),
        "Pending",
        "waits for its configMap"
    );
    create(
        &cluster,
        &resources::CONFIGMAPS,
        "vols",
        json!({"metadata": {"name": "conf"}, "data": {"spark.properties": "spark.app.name=probe", "A": "from-cm"}}),
    );

    let done = wait_for(
        &cluster,
        "vols",
        name,
        Duration::from_secs(30),
        "Succeeded",
        |p| matches!(phase(p), "Succeeded" | "Failed"),
    )
    .await;
    let log = log_of(&cluster, &done, "main", 0);
    assert_eq!(phase(&done), "Succeeded", "log:\n{log}");
    let ip = done["status"]["podIP"].as_str().unwrap().to_string();
    assert!(ip.starts_with("127."), "{ip}");
    for expected in [
        "conf=spark.app.name=probe".to_string(),
        "mode=640".into(),
        "secret=s3cr3t mode=400".into(),
        "emptydir=scratch".into(),
        "emr=yes".into(),
        "token=eyJ ns=vols".into(),
        "ca=-----BEGIN CERTIFICATE-----".into(),
        format!("env POD=probe NS=vols UID_OK=yes IP={ip} NODE=sparkyard-node-1 SA=spark APP=web PW=s3cr3t CM_A=from-cm MEM=1024"),
        "hostname=probe pwd=/opt/spark/work-dir".into(),
        format!("api={} k8s_host={}", cluster.service_ip, cluster.service_ip),
        format!("web={ip}"),
        format!("self={ip}"),
        "datadir_hidden=0".into(),
        "pid=2".into(),
    ] {
        assert!(log.contains(&expected), "missing {expected:?} in log:\n{log}");
    }
    assert!(!log.contains("jars=0"), "{log}");
    // A private home hides the host's /root; it is the host's own (and HOME is /tmp) only
    // where the host's Python, Java or Spark live under /root (pyenv, sdkman).
    assert!(
        log.contains("home=/tmp ") || log.contains("home=/root host_root_entries=0 "),
        "{log}"
    );
    let status = &done["status"];
    let terminated = &status["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(terminated["exitCode"], 0);
    assert_eq!(terminated["reason"], "Completed");
    assert_eq!(status["qosClass"], "Burstable");
    assert_eq!(status["hostIP"], "127.0.0.1");
    let conditions: Vec<&str> = status["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].as_str().unwrap())
        .collect();
    for c in ["PodScheduled", "Initialized", "ContainersReady", "Ready"] {
        assert!(conditions.contains(&c), "{conditions:?}");
    }
    // Kubelet and scheduler events.
    let (events, _) = cluster
        .client()
        .list(Resource::new("", "events"), Some("vols"));
    let reasons: Vec<&str> = events
        .iter()
        .filter(|e| e["involvedObject"]["name"] == "probe")
        .filter_map(|e| e["reason"].as_str())
        .collect();
    for r in ["Scheduled", "FailedMount", "Pulled", "Created", "Started"] {
        assert!(reasons.contains(&r), "{reasons:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_deletion_terminates_then_reports_then_removes() {
    let (cluster, _dir) = cluster().await;
    namespace(&cluster, "grace");
    let pod = create(
        &cluster,
        &resources::PODS,
        "grace",
        json!({
            "metadata": {"name": "sleeper"},
            "spec": {"terminationGracePeriodSeconds": 20, "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "1000"]}]}
        }),
    );
    let uid = pod["metadata"]["uid"].as_str().unwrap().to_string();
    wait_for(
        &cluster,
        "grace",
        "sleeper",
        Duration::from_secs(20),
        "Running",
        |p| phase(p) == "Running",
    )
    .await;
    let rv: u64 = cluster.client().revision();
    let mut events = Box::pin(cluster.client().watch(PODS, Some(rv)).unwrap());
    cluster
        .client()
        .delete(PODS, "grace", "sleeper", Propagation::Background, None)
        .unwrap();
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let event = tokio::time::timeout_at(deadline, events.next())
            .await
            .expect("DELETED in time")
            .unwrap();
        if event.object["metadata"]["uid"] != uid.as_str() {
            continue;
        }
        let object = event.object.clone();
        let exit =
            object["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"].clone();
        seen.push((
            event.event_type,
            !object["metadata"]["deletionTimestamp"].is_null(),
            phase(&object).to_string(),
            exit,
        ));
        if event.event_type == EventType::Deleted {
            break;
        }
    }
    assert_eq!(
        seen.first().map(|s| (s.0, s.1, s.2.as_str())),
        Some((EventType::Modified, true, "Running")),
        "{seen:?}"
    );
    // 143 (SIGTERM), not 137: `sleep` ended on the TERM signal within its grace period;
    // had the kubelet waited the period out, it would have been killed.
    let terminal = seen
        .iter()
        .find(|s| s.3 == 143)
        .unwrap_or_else(|| panic!("no terminal status with exit 143 in {seen:?}"));
    assert_eq!(
        (terminal.0, terminal.1, terminal.2.as_str()),
        (EventType::Modified, true, "Failed")
    );
    assert_eq!(seen.last().unwrap().0, EventType::Deleted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_after_the_grace_period_and_restarts_count() {
    let (cluster, _dir) = cluster().await;
    namespace(&cluster, "kill");
    // Ignores SIGTERM: only SIGKILL after the grace period stops it (137).
    create(
        &cluster,
        &resources::PODS,
        "kill",
        json!({
            "metadata": {"name": "stubborn"},
            "spec": {"terminationGracePeriodSeconds": 2, "containers": [{"name": "main", "image": "busybox",
                     "command": ["sh", "-c", "trap '' TERM; echo trapped; while true; do sleep 0.2; done"]}]}
        }),
    );
    // Exits 1 at once: OnFailure restarts it after 10 s of back-off.
    create(
        &cluster,
        &resources::PODS,
        "kill",
        json!({
            "metadata": {"name": "crasher"},
            "spec": {"restartPolicy": "OnFailure", "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", "echo run; exit 1"]}]}
        }),
    );
    wait_for(
        &cluster,
        "kill",
        "stubborn",
        Duration::from_secs(20),
        "Running",
        |p| phase(p) == "Running",
    )
    .await;
    // Running means started, not that the shell has set its trap yet: a SIGTERM before that
    // ends it with 143. Its first line comes after the trap.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let pod = cluster.client().get(PODS, "kill", "stubborn").unwrap();
        if log_of(&cluster, &pod, "main", 0).contains("trapped") {
            break;
        }
        assert!(Instant::now() < deadline, "the shell never set its trap");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rv = cluster.client().revision();
    let mut events = Box::pin(cluster.client().watch(PODS, Some(rv)).unwrap());
    let started = Instant::now();
    cluster
        .client()
        .delete(PODS, "kill", "stubborn", Propagation::Background, None)
        .unwrap();
    let mut exit = None;
    loop {
        let event = tokio::time::timeout(Duration::from_secs(15), events.next())
            .await
            .expect("deleted")
            .unwrap();
        if event.object["metadata"]["name"] != "stubborn" {
            continue;
        }
        if let Some(code) = event.object["status"]["containerStatuses"][0]["state"]["terminated"]
            ["exitCode"]
            .as_i64()
        {
            exit = Some(code);
        }
        if event.event_type == EventType::Deleted {
            break;
        }
    }
    assert_eq!(exit, Some(137));
    assert!(started.elapsed() >= Duration::from_secs(2));

    let crashed = wait_for(
        &cluster,
        "kill",
        "crasher",
        Duration::from_secs(30),
        "a restart",
        |p| {
            p["status"]["containerStatuses"][0]["restartCount"]
                .as_i64()
                .unwrap_or(0)
                >= 1
        },
    )
    .await;
    assert_eq!(
        crashed["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"],
        1
    );
    assert!(log_of(&cluster, &crashed, "main", 0).contains("run"));
    wait_for(
        &cluster,
        "kill",
        "crasher",
        Duration::from_secs(5),
        "second log",
        |_| log_of(&cluster, &crashed, "main", 1).contains("run"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_retries_with_backoff_until_the_limit_then_fails() {
    let (cluster, _dir) = cluster().await;
    namespace(&cluster, "jobs");
    let started = Instant::now();
    create(
        &cluster,
        &resources::JOBS,
        "jobs",
        json!({
            "apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "failing"},
            "spec": {"backoffLimit": 1, "template": {"spec": {"restartPolicy": "Never",
                     "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", "exit 3"]}]}}}
        }),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let job = loop {
        let job = cluster
            .client()
            .get(Resource::new("batch", "jobs"), "jobs", "failing")
            .unwrap();
        if job["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == "Failed")
        {
            break job;
        }
        assert!(Instant::now() < deadline, "job did not fail: {job}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let failed = job["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Failed")
        .unwrap()
        .clone();
    assert_eq!(failed["reason"], "BackoffLimitExceeded");
    assert_eq!(job["status"]["failed"], 2);
    // The second pod came only after the 10 s back-off.
    // (finishedAt has second precision, so the wait can be up to a second shorter)
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "{:?}",
        started.elapsed()
    );
    let (pods, _) = cluster.client().list(PODS, Some("jobs"));
    assert_eq!(pods.len(), 2);
    for pod in &pods {
        let name = pod["metadata"]["name"].as_str().unwrap();
        assert!(
            name.starts_with("failing-") && name.len() == "failing-".len() + 5,
            "{name}"
        );
        assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "Job");
        assert_eq!(
            pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"],
            3
        );
    }
    // Deleting the job (background) takes its pods with it.
    cluster
        .client()
        .delete(
            Resource::new("batch", "jobs"),
            "jobs",
            "failing",
            Propagation::Background,
            None,
        )
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cluster.client().list(PODS, Some("jobs")).0.is_empty() {
        assert!(Instant::now() < deadline, "pods not collected");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unschedulable_pods_wait_and_driver_deletion_cascades() {
    let (cluster, _dir) = cluster().await;
    namespace(&cluster, "sched");
    create(
        &cluster,
        &resources::PODS,
        "sched",
        json!({
            "metadata": {"name": "huge"},
            "spec": {"containers": [{"name": "main", "image": "busybox", "command": ["true"], "resources": {"requests": {"cpu": "100"}}}]}
        }),
    );
    let huge = wait_for(
        &cluster,
        "sched",
        "huge",
        Duration::from_secs(10),
        "Unschedulable",
        |p| {
            p["status"]["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "PodScheduled" && c["reason"] == "Unschedulable")
        },
    )
    .await;
    let condition = huge["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "PodScheduled")
        .unwrap()
        .clone();
    assert_eq!(condition["status"], "False");
    assert_eq!(
        condition["message"],
        // kube-scheduler 1.32's wording: the filter histogram, then preemption's verdict.
        "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
    );
    assert!(huge["spec"]["nodeName"].is_null());

    let driver = create(
        &cluster,
        &resources::PODS,
        "sched",
        json!({
            "metadata": {"name": "driver"},
            "spec": {"containers": [{"name": "main", "image": "busybox", "command": ["sleep", "1000"]}]}
        }),
    );
    let owner = json!([{"apiVersion": "v1", "kind": "Pod", "name": "driver", "uid": driver["metadata"]["uid"], "controller": true}]);
    create(
        &cluster,
        &resources::PODS,
        "sched",
        json!({
            "metadata": {"name": "exec-1", "ownerReferences": owner},
            "spec": {"containers": [{"name": "main", "image": "busybox", "command": ["sleep", "1000"]}]}
        }),
    );
    create(
        &cluster,
        &resources::CONFIGMAPS,
        "sched",
        json!({"metadata": {"name": "exec-conf", "ownerReferences": owner}, "data": {}}),
    );
    create(
        &cluster,
        &resources::SERVICES,
        "sched",
        json!({"metadata": {"name": "driver-svc", "ownerReferences": owner}, "spec": {"clusterIP": "None", "selector": {"x": "y"}}}),
    );
    wait_for(
        &cluster,
        "sched",
        "exec-1",
        Duration::from_secs(20),
        "Running",
        |p| phase(p) == "Running",
    )
    .await;
    cluster
        .client()
        .delete(PODS, "sched", "driver", Propagation::Background, None)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left: Vec<String> = [
            PODS,
            Resource::new("", "configmaps"),
            Resource::new("", "services"),
        ]
        .iter()
        .flat_map(|r| cluster.client().list(*r, Some("sched")).0)
        .filter_map(|o| o["metadata"]["name"].as_str().map(String::from))
        .filter(|n| n != "huge" && n != "kube-root-ca.crt")
        .collect();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "not collected: {left:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The Events the kubelet records for pod `name` from revision `rv` on, as (type, reason,
/// message, fieldPath), until `done` holds for what has been seen.
async fn pod_events_until(
    cluster: &Cluster,
    rv: u64,
    name: &str,
    done: impl Fn(&[(String, String, String, String)]) -> bool,
) -> Vec<(String, String, String, String)> {
    let events_resource = Resource::new("", "events");
    let mut events = Box::pin(cluster.client().watch(events_resource, Some(rv)).unwrap());
    let mut seen = Vec::new();
    // A guard against a hang only; the kubelet's back-off puts the second attempt at 10 s.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    while !done(&seen) {
        let event = tokio::time::timeout_at(deadline, events.next())
            .await
            .unwrap_or_else(|_| panic!("events so far: {seen:#?}"))
            .unwrap();
        let e = &event.object;
        if event.event_type != EventType::Added || e["involvedObject"]["name"] != name {
            continue;
        }
        let text = |v: &Value| v.as_str().unwrap_or("").to_string();
        seen.push((
            text(&e["type"]),
            text(&e["reason"]),
            text(&e["message"]),
            text(&e["involvedObject"]["fieldPath"]),
        ));
    }
    seen
}

/// Issue 16, fault 2: an image that maps to nothing says so in the pod's Events, as a
/// kubelet's failed pull does, and backs off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_that_cannot_be_pulled_gives_kubelets_events_and_back_off() {
    let (cluster, _dir) = cluster_with(|c| {
        c.images.unknown = sparkyard_cluster::kubelet::config::UnknownImages::Error
    })
    .await;
    namespace(&cluster, "pull");
    let rv = cluster.client().revision();
    let image = "registry.example.com/nothing:1";
    create(
        &cluster,
        &resources::PODS,
        "pull",
        json!({"metadata": {"name": "puller"},
               "spec": {"containers": [{"name": "main", "image": image}]}}),
    );
    let seen = pod_events_until(&cluster, rv, "puller", |seen| {
        seen.iter().any(|e| e.2 == "Error: ImagePullBackOff")
    })
    .await;
    let has = |kind: &str, reason: &str, message: &str| {
        seen.iter().any(|e| {
            e.0 == kind
                && e.1 == reason
                && e.2.starts_with(message)
                && e.3 == "spec.containers{main}"
        })
    };
    assert!(
        has("Normal", "Pulling", &format!("Pulling image \"{image}\"")),
        "{seen:#?}"
    );
    assert!(
        has(
            "Warning",
            "Failed",
            &format!(
                "Failed to pull image \"{image}\": image \"{image}\" maps to no local directory"
            )
        ),
        "{seen:#?}"
    );
    assert!(has("Warning", "Failed", "Error: ErrImagePull"), "{seen:#?}");
    assert!(
        has(
            "Normal",
            "BackOff",
            &format!("Back-off pulling image \"{image}\"")
        ),
        "{seen:#?}"
    );
    // ErrImagePull came first, the back-off only after a second failed attempt.
    let position = |m: &str| seen.iter().position(|e| e.2 == m).unwrap();
    assert!(position("Error: ErrImagePull") < position("Error: ImagePullBackOff"));
    let pod = cluster.client().get(PODS, "pull", "puller").unwrap();
    assert_eq!(phase(&pod), "Pending");
    let waiting = &pod["status"]["containerStatuses"][0]["state"]["waiting"];
    assert!(
        ["ErrImagePull", "ImagePullBackOff"].contains(&waiting["reason"].as_str().unwrap_or("")),
        "{pod:#}"
    );
    assert!(!seen.iter().any(|e| e.1 == "Started"), "{seen:#?}");
}

/// A container whose env names a missing ConfigMap waits with CreateContainerConfigError,
/// the pod's Events say which, and it starts once the ConfigMap exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_config_map_is_an_event_and_the_pod_starts_once_it_exists() {
    let (cluster, _dir) = cluster().await;
    namespace(&cluster, "cfg");
    let rv = cluster.client().revision();
    create(
        &cluster,
        &resources::PODS,
        "cfg",
        json!({"metadata": {"name": "reader"},
               "spec": {"containers": [{"name": "main", "image": "busybox", "command": ["sleep", "1000"],
                 "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "x"}}}]}]}}),
    );
    let seen = pod_events_until(&cluster, rv, "reader", |seen| {
        seen.iter().any(|e| e.1 == "Failed")
    })
    .await;
    let failed = seen.iter().find(|e| e.1 == "Failed").unwrap();
    assert_eq!(
        (failed.0.as_str(), failed.2.as_str(), failed.3.as_str()),
        (
            "Warning",
            "Error: configmap \"settings\" not found",
            "spec.containers{main}"
        )
    );
    let waiting = wait_for(
        &cluster,
        "cfg",
        "reader",
        Duration::from_secs(120),
        "CreateContainerConfigError",
        |p| {
            p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"]
                == "CreateContainerConfigError"
        },
    )
    .await;
    assert_eq!(phase(&waiting), "Pending");
    let rv = cluster.client().revision();
    create(
        &cluster,
        &resources::CONFIGMAPS,
        "cfg",
        json!({"metadata": {"name": "settings"}, "data": {"x": "1"}}),
    );
    pod_events_until(&cluster, rv, "reader", |seen| {
        seen.iter().any(|e| e.1 == "Started")
    })
    .await;
    wait_for(
        &cluster,
        "cfg",
        "reader",
        Duration::from_secs(120),
        "Running",
        |p| phase(p) == "Running",
    )
    .await;
}
