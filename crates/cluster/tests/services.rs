//! Services that route (issue 17), against a real embedded cluster through kube-rs: a
//! readiness probe gates a pod's EndpointSlice entry; kube-proxy listens on the Service's
//! cluster IP and node port only while an endpoint is ready (else connections are
//! refused); a second pod reaches the first through `<svc>.<ns>.svc.cluster.local`; a
//! failing liveness probe restarts its container with kube's events.

mod support;
use support::{kube_client, rand_u32};

use std::path::PathBuf;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Event, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ListParams, PostParams};
use kube::runtime::{wait::await_condition, watcher, WatchStreamExt};
use serde_json::json;
use sparkyard_cluster::{Cluster, ClusterConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn cluster() -> (Cluster, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let octet = |n: u32| (rand_u32() % n) as u8;
    let config = ClusterConfig {
        api_listen: "127.0.0.1:0".parse().unwrap(),
        service_address: format!("127.10.{}.{}:443", octet(250), 2 + octet(250))
            .parse()
            .unwrap(),
        // Each test cluster its own service range: kube-proxies of clusters running side
        // by side must not want the same address.
        service_cidr: format!("127.12.{}.0/24", octet(250)),
        pod_cidr: format!("127.{}.0.0/16", 20 + octet(200)),
        ..ClusterConfig::default()
    };
    let cluster = sparkyard_cluster::cluster::start(config, dir.path())
        .await
        .unwrap();
    (cluster, dir)
}

async fn create<K>(api: &Api<K>, object: serde_json::Value) -> K
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    let object: K = serde_json::from_value(object).unwrap();
    api.create(&PostParams::default(), &object).await.unwrap()
}

/// Waits (on a watch) for a slice of `service` whose endpoints satisfy `check`.
async fn slice_where(
    api: &Api<EndpointSlice>,
    service: &str,
    check: impl Fn(&EndpointSlice) -> bool,
) -> EndpointSlice {
    let config =
        watcher::Config::default().labels(&format!("kubernetes.io/service-name={service}"));
    let mut stream = Box::pin(watcher(api.clone(), config).applied_objects());
    while let Some(slice) = stream.try_next().await.unwrap() {
        if check(&slice) {
            return slice;
        }
    }
    unreachable!("watch streams do not end")
}

fn endpoint_ready(slice: &EndpointSlice) -> Option<bool> {
    slice
        .endpoints
        .as_ref()?
        .first()?
        .conditions
        .as_ref()?
        .ready
}

/// The pod's `/tmp` on the host (its sandbox's scratch directory).
fn pod_tmp(cluster: &Cluster, pod: &Pod) -> PathBuf {
    let meta = &pod.metadata;
    sparkyard_cluster::logs::pod_dir(
        &cluster.data_dir,
        meta.namespace.as_deref().unwrap(),
        meta.name.as_deref().unwrap(),
        meta.uid.as_deref().unwrap(),
    )
    .join("tmp")
}

/// `GET /index.html` over a plain TCP connection; `Err` carries the connect error.
async fn fetch(address: &str) -> std::io::Result<String> {
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    stream
        .write_all(b"GET /index.html HTTP/1.0\r\nHost: x\r\n\r\n")
        .await?;
    let mut text = String::new();
    stream.read_to_string(&mut text).await?;
    Ok(text)
}

/// Retries `fetch` while the address refuses (kube-proxy opens its listener once it has
/// seen the ready endpoint); any other outcome is returned.
async fn fetch_once_listening(address: &str) -> std::io::Result<String> {
    for _ in 0..1200 {
        match fetch(address).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await
            }
            other => return other,
        }
    }
    fetch(address).await
}

/// Retries `connect` until it is refused (kube-proxy closes its listener once it has seen
/// no endpoint is ready); returns the refusal.
async fn refused(address: &str) -> std::io::Error {
    for _ in 0..1200 {
        match tokio::net::TcpStream::connect(address).await {
            // A connection that raced into the closing listener's backlog is reset.
            Err(e) if e.kind() != std::io::ErrorKind::ConnectionReset => return e,
            _ => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    }
    panic!("{address} kept accepting connections with no ready endpoint");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_reaches_another_through_its_service_name_once_the_probe_passes() {
    let (cluster, _dir) = cluster().await;
    let client = kube_client(&cluster).await;
    let ns = "web";
    create(
        &Api::<k8s_openapi::api::core::v1::Namespace>::all(client.clone()),
        json!({"metadata": {"name": ns}}),
    )
    .await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);

    // The server binds its pod IP; it is ready once /tmp/ready.txt exists, which the test
    // creates: until then the readiness probe gets 404.
    let server = create(
        &pods,
        json!({"metadata": {"name": "server", "labels": {"app": "web"}},
               "spec": {"containers": [{
                   "name": "http", "image": "busybox",
                   "command": ["sh", "-c", "echo hello-from-server > /tmp/index.html && exec python3 -m http.server 8080 --bind \"$POD_IP\" --directory /tmp"],
                   "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
                   "ports": [{"name": "http", "containerPort": 8080}],
                   "readinessProbe": {"httpGet": {"path": "/ready.txt", "port": "http"}, "periodSeconds": 1},
               }]}}),
    )
    .await;
    let service = create(
        &services,
        json!({"metadata": {"name": "web"},
               "spec": {"type": "NodePort", "selector": {"app": "web"},
                        "ports": [{"name": "web", "port": 8090, "targetPort": "http"}]}}),
    )
    .await;
    let spec = service.spec.clone().unwrap();
    let cluster_ip = spec.cluster_ip.clone().unwrap();
    let node_port = spec.ports.as_ref().unwrap()[0].node_port.unwrap();
    assert!(
        cluster_ip.starts_with("127.12."),
        "{cluster_ip} from the service CIDR"
    );
    assert!((30000..=32767).contains(&node_port));

    // Listed, not ready: the probe has not passed.
    let slice = slice_where(&slices, "web", |s| endpoint_ready(s) == Some(false)).await;
    let labels = slice.metadata.labels.clone().unwrap();
    assert_eq!(
        labels["endpointslice.kubernetes.io/managed-by"],
        "endpointslice-controller.k8s.io"
    );
    assert_eq!(slice.address_type, "IPv4");
    assert_eq!(
        slice.metadata.owner_references.as_ref().unwrap()[0].name,
        "web"
    );
    let endpoint = &slice.endpoints.as_ref().unwrap()[0];
    assert_eq!(
        endpoint.target_ref.as_ref().unwrap().name.as_deref(),
        Some("server")
    );
    let ports = slice.ports.as_ref().unwrap();
    assert_eq!(ports[0].port, Some(8080), "the named targetPort resolved");
    // The Service refuses connections while no endpoint is ready.
    let cluster_address = format!("{cluster_ip}:8090");
    let refusal = fetch(&cluster_address).await.unwrap_err();
    assert_eq!(refusal.kind(), std::io::ErrorKind::ConnectionRefused);
    let server = await_condition(pods.clone(), "server", |p: Option<&Pod>| {
        p.and_then(|p| p.status.as_ref()?.pod_ip.clone()).is_some()
    })
    .await
    .unwrap()
    .unwrap_or(server);
    let pod_status = server.status.clone().unwrap();
    assert!(!pod_status.container_statuses.unwrap()[0].ready);

    std::fs::write(pod_tmp(&cluster, &server).join("ready.txt"), "ok").unwrap();
    let slice = slice_where(&slices, "web", |s| endpoint_ready(s) == Some(true)).await;
    let pod_ip = server.status.as_ref().unwrap().pod_ip.clone().unwrap();
    assert_eq!(slice.endpoints.as_ref().unwrap()[0].addresses, vec![pod_ip]);
    let ready = await_condition(pods.clone(), "server", |p: Option<&Pod>| {
        p.and_then(|p| p.status.as_ref()?.conditions.clone())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    })
    .await
    .unwrap()
    .unwrap();
    assert!(ready.status.unwrap().container_statuses.unwrap()[0].ready);

    // From the host: the node port, on the node's address.
    let body = fetch_once_listening(&format!("127.0.0.1:{node_port}"))
        .await
        .unwrap();
    assert!(
        body.starts_with("HTTP/1.0 200") && body.contains("hello-from-server"),
        "{body}"
    );

    // From a pod: the Service's DNS name, through kube-proxy on the cluster IP.
    create(
        &pods,
        json!({"metadata": {"name": "client"},
               "spec": {"restartPolicy": "Never", "containers": [{
                   "name": "fetch", "image": "busybox",
                   "command": ["python3", "-c", "import urllib.request; print(urllib.request.urlopen('http://web.web.svc.cluster.local:8090/index.html').read().decode().strip())"],
               }]}}),
    )
    .await;
    let done = await_condition(pods.clone(), "client", |p: Option<&Pod>| {
        p.and_then(|p| p.status.as_ref()?.phase.clone())
            .is_some_and(|phase| phase == "Succeeded" || phase == "Failed")
    })
    .await
    .unwrap()
    .unwrap();
    let log = pods.logs("client", &Default::default()).await.unwrap();
    assert_eq!(
        done.status.unwrap().phase.as_deref(),
        Some("Succeeded"),
        "{log}"
    );
    assert_eq!(log.trim(), "hello-from-server");

    // The core Endpoints, as `kubectl describe svc` shows them.
    let endpoints: Api<k8s_openapi::api::core::v1::Endpoints> = Api::namespaced(client.clone(), ns);
    let web = endpoints.get("web").await.unwrap();
    let subset = &web.subsets.unwrap()[0];
    assert_eq!(
        subset.addresses.as_ref().unwrap()[0].ip,
        slice.endpoints.as_ref().unwrap()[0].addresses[0]
    );

    // Unready again: the listener closes and connections are refused.
    std::fs::remove_file(pod_tmp(&cluster, &server).join("ready.txt")).unwrap();
    slice_where(&slices, "web", |s| endpoint_ready(s) == Some(false)).await;
    let refusal = refused(&cluster_address).await;
    assert_eq!(refusal.kind(), std::io::ErrorKind::ConnectionRefused);
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    let unhealthy = events
        .list(&ListParams::default().fields("involvedObject.name=server"))
        .await
        .unwrap();
    assert!(
        unhealthy
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("Unhealthy")
                && e.message.as_deref()
                    == Some("Readiness probe failed: HTTP probe failed with statuscode: 404")),
        "{:?}",
        unhealthy
            .items
            .iter()
            .map(|e| e.message.clone())
            .collect::<Vec<_>>()
    );

    // A ClusterIP outside the range and a taken node port are refused with kube's words.
    let outside: Service = serde_json::from_value(json!({"metadata": {"name": "outside"},
        "spec": {"clusterIP": "10.96.0.10", "ports": [{"port": 80}]}}))
    .unwrap();
    let err = services
        .create(&PostParams::default(), &outside)
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("{err:?}")
    };
    assert_eq!(status.code, 422);
    assert!(status.message.contains(&format!(
        "failed to allocate IP 10.96.0.10: provided IP is not in the valid range. The range of valid IPs is {}",
        cluster.config.service_cidr
    )), "{}", status.message);
    let taken: Service = serde_json::from_value(json!({"metadata": {"name": "taken"},
        "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": node_port}]}}))
    .unwrap();
    let err = services
        .create(&PostParams::default(), &taken)
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("{err:?}")
    };
    assert!(
        status.message.contains(&format!(
        "spec.ports[0].nodePort: Invalid value: {node_port}: provided port is already allocated"
    )),
        "{}",
        status.message
    );
    let names: Vec<String> = services
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|s| s.metadata.name)
        .collect();
    assert_eq!(
        names,
        vec!["web".to_string()],
        "refused Services were not stored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_liveness_probe_restarts_the_container_with_kubes_events() {
    let (cluster, _dir) = cluster().await;
    let client = kube_client(&cluster).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    // An exec probe, run in a sandbox of the container's: /tmp/alive never exists.
    create(
        &pods,
        json!({"metadata": {"name": "sick"},
        "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
            "name": "main", "image": "busybox", "command": ["sleep", "1000"],
            "livenessProbe": {"exec": {"command": ["cat", "/tmp/alive"]},
                              "periodSeconds": 1, "failureThreshold": 2},
        }]}}),
    )
    .await;
    let restarted = await_condition(pods.clone(), "sick", |p: Option<&Pod>| {
        p.and_then(|p| p.status.as_ref()?.container_statuses.clone())
            .is_some_and(|c| c[0].restart_count >= 1)
    })
    .await
    .unwrap()
    .unwrap();
    let status = &restarted.status.unwrap().container_statuses.unwrap()[0];
    let last = status
        .last_state
        .as_ref()
        .unwrap()
        .terminated
        .as_ref()
        .unwrap();
    assert_ne!(last.exit_code, 0, "stopped by a signal");

    let events: Api<Event> = Api::default_namespaced(client.clone());
    let mut stream = Box::pin(
        watcher(
            events,
            watcher::Config::default().fields("involvedObject.name=sick"),
        )
        .applied_objects(),
    );
    let (mut unhealthy, mut killing) = (None, None);
    while unhealthy.is_none() || killing.is_none() {
        let event = stream.next().await.unwrap().unwrap();
        match event.reason.as_deref() {
            Some("Unhealthy") => unhealthy = event.message,
            Some("Killing") => killing = event.message,
            _ => {}
        }
    }
    let unhealthy = unhealthy.unwrap();
    assert!(
        unhealthy.starts_with("Liveness probe failed: ")
            && unhealthy.contains("No such file or directory"),
        "{unhealthy}"
    );
    assert_eq!(
        killing.unwrap(),
        "Container main failed liveness probe, will be restarted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statefulset_style_pod_resolves_by_hostname_in_its_headless_service() {
    let (cluster, _dir) = cluster().await;
    let client = kube_client(&cluster).await;
    let pods: Api<Pod> = Api::default_namespaced(client.clone());
    let services: Api<Service> = Api::default_namespaced(client.clone());
    let headless = create(
        &services,
        json!({"metadata": {"name": "db"},
               "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"port": 5432}]}}),
    )
    .await;
    assert_eq!(headless.spec.unwrap().cluster_ip.as_deref(), Some("None"));
    create(
        &pods,
        json!({"metadata": {"name": "db-0", "labels": {"app": "db"}},
               "spec": {"hostname": "db-0", "subdomain": "db",
                        "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "1000"]}]}}),
    )
    .await;
    let db = await_condition(pods.clone(), "db-0", |p: Option<&Pod>| {
        p.and_then(|p| p.status.as_ref()?.pod_ip.clone()).is_some()
    })
    .await
    .unwrap()
    .unwrap();
    let db_ip = db.status.unwrap().pod_ip.unwrap();
    create(
        &pods,
        json!({"metadata": {"name": "lookup"},
               "spec": {"restartPolicy": "Never", "containers": [{
                   "name": "main", "image": "busybox",
                   "command": ["python3", "-c", "import socket; print(socket.gethostbyname('db-0.db.default.svc.cluster.local'), socket.gethostbyname('db.default.svc'))"],
               }]}}),
    )
    .await;
    let done = await_condition(pods.clone(), "lookup", |p: Option<&Pod>| {
        p.and_then(|p| p.status.as_ref()?.phase.clone())
            .is_some_and(|phase| phase == "Succeeded" || phase == "Failed")
    })
    .await
    .unwrap()
    .unwrap();
    let log = pods.logs("lookup", &Default::default()).await.unwrap();
    assert_eq!(
        done.status.unwrap().phase.as_deref(),
        Some("Succeeded"),
        "{log}"
    );
    assert_eq!(log.trim(), format!("{db_ip} {db_ip}"));
}
