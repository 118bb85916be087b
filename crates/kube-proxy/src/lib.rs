//! kube-proxy for the embedded cluster, in userspace mode: every Service's cluster IP
//! (a loopback address of the service CIDR, `127.10.96.0/20` by default) and node port
//! reach the Service's ready endpoints. For each TCP port of a Service with a cluster IP it
//! listens on `clusterIP:port`, and for a `NodePort` (or `LoadBalancer`) Service on the
//! node's address at `nodePort`; each connection goes to a ready endpoint, round-robin,
//! skipping one that refuses. A port with no ready endpoint has no listener, so a client's
//! connection is refused, as kube-proxy's `REJECT` rule makes it.
//!
//! Userspace mode because iptables/IPVS need root and a network namespace of their own,
//! and pods here share the host's: listening on loopback addresses needs neither.
//!
//! **Owns:** the proxy rules (`rules`: Services + EndpointSlices → frontends, pure) and
//! the listeners and connection copying (`proxy`).
//!
//! **Must not touch:** the registry or the API server's internals: it only lists and
//! watches Services and EndpointSlices through the API server's `Client`, as kube-proxy
//! watches a real API server. It writes nothing. Which endpoints are ready is the
//! EndpointSlice controller's (`sparkyard-kube-controllers`); names are the kubelet's
//! (`/etc/hosts`). UDP and SCTP ports are not proxied; `sessionAffinity: ClientIP` is not
//! honoured (every pod's connections come from the same loopback source address).
//!
//! **Entry point:** [`start`].

pub mod proxy;
pub mod rules;

use std::net::IpAddr;
use std::time::Duration;

use futures::StreamExt;
use sparkyard_kube_apiserver::registry::Resource;
use sparkyard_kube_apiserver::Client;

const SERVICES: Resource = Resource::new("", "services");
const ENDPOINT_SLICES: Resource = Resource::new("discovery.k8s.io", "endpointslices");
/// A burst of changes (a Service and its first slice, a rollout) is applied at once.
const COALESCE: Duration = Duration::from_millis(20);

/// Starts the proxy on the current runtime. Node ports listen on `node_address` (the
/// node's InternalIP, `127.0.0.1`, unless configured otherwise).
pub fn start(client: &Client, node_address: IpAddr) {
    tokio::spawn(run(client.clone(), node_address));
}

async fn run(client: Client, node_address: IpAddr) {
    let mut listeners = proxy::Listeners::default();
    loop {
        let revision = client.revision();
        sync(&client, &mut listeners, node_address).await;
        let (Ok(services), Ok(slices)) = (
            client.watch(SERVICES, Some(revision)),
            client.watch(ENDPOINT_SLICES, Some(revision)),
        ) else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        // Either stream ending (it fell behind) means a fresh list and watch.
        let ended = || futures::stream::once(async { None });
        let mut merged = futures::stream::select(
            Box::pin(services.map(Some).chain(ended())),
            Box::pin(slices.map(Some).chain(ended())),
        );
        'watch: while let Some(Some(_)) = merged.next().await {
            tokio::time::sleep(COALESCE).await;
            loop {
                match futures::FutureExt::now_or_never(merged.next()) {
                    Some(Some(Some(_))) => continue,
                    Some(_) => break 'watch,
                    None => break,
                }
            }
            sync(&client, &mut listeners, node_address).await;
        }
    }
}

async fn sync(client: &Client, listeners: &mut proxy::Listeners, node_address: IpAddr) {
    let (services, _) = client.list(SERVICES, None);
    let (slices, _) = client.list(ENDPOINT_SLICES, None);
    let table = rules::table(&services, &slices, node_address);
    listeners.sync(&table).await;
}
