//! The listeners: one per frontend of the [`rules::Table`], each proxying a connection to
//! one of its ready endpoints — round-robin, the next one when an endpoint refuses —
//! and copying bytes both ways until either side closes. A frontend that leaves the table
//! (no ready endpoint any more, Service deleted) has its listener closed, so new
//! connections are refused; connections already proxied carry on.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::rules::{Frontend, Table};

/// A frontend's backends, shared by its listener task (replaced in place when endpoints
/// change, so a listener survives its endpoints changing).
struct Backends {
    frontend: RwLock<Frontend>,
    next: AtomicUsize,
}

struct Listener {
    backends: Arc<Backends>,
    task: JoinHandle<()>,
}

/// The open listeners, brought to a table by [`Listeners::sync`].
#[derive(Default)]
pub struct Listeners {
    open: HashMap<SocketAddr, Listener>,
    /// Addresses that could not be bound, with the error last logged (logged once).
    failed: HashMap<SocketAddr, String>,
}

impl Listeners {
    /// Opens, updates and closes listeners so that exactly the table's frontends listen.
    pub async fn sync(&mut self, table: &Table) {
        self.open.retain(|address, listener| {
            let keep = table.contains_key(address);
            if !keep {
                tracing::debug!(%address, "no ready endpoints: closing the listener");
                listener.task.abort();
            }
            keep
        });
        self.failed.retain(|address, _| table.contains_key(address));
        for (address, frontend) in table {
            if let Some(listener) = self.open.get(address) {
                let mut current = listener.backends.frontend.write().unwrap();
                if *current != *frontend {
                    *current = frontend.clone();
                }
                continue;
            }
            match TcpListener::bind(address).await {
                Ok(socket) => {
                    self.failed.remove(address);
                    tracing::debug!(%address, service = %frontend.service, "listening");
                    let backends = Arc::new(Backends {
                        frontend: RwLock::new(frontend.clone()),
                        next: AtomicUsize::new(0),
                    });
                    let task = tokio::spawn(accept(socket, backends.clone()));
                    self.open.insert(*address, Listener { backends, task });
                }
                Err(e) => {
                    // A port below 1024 without CAP_NET_BIND_SERVICE, or an address some
                    // other process holds: retried on the next change.
                    let message = e.to_string();
                    if self.failed.get(address) != Some(&message) {
                        tracing::warn!(%address, service = %frontend.service, error = %message, "kube-proxy cannot listen for the Service");
                        self.failed.insert(*address, message);
                    }
                }
            }
        }
    }

    /// The addresses listened on now (tests, diagnostics).
    pub fn addresses(&self) -> Vec<SocketAddr> {
        let mut out: Vec<SocketAddr> = self.open.keys().copied().collect();
        out.sort();
        out
    }
}

impl Drop for Listeners {
    fn drop(&mut self) {
        for listener in self.open.values() {
            listener.task.abort();
        }
    }
}

async fn accept(socket: TcpListener, backends: Arc<Backends>) {
    loop {
        let client = match socket.accept().await {
            Ok((client, _)) => client,
            Err(e) => {
                // Out of file descriptors, most likely: back off instead of spinning.
                tracing::debug!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let backends = backends.clone();
        tokio::spawn(async move {
            let order = backends.order();
            match connect_first(&order).await {
                Some(mut upstream) => {
                    let mut client = client;
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
                None => {
                    // Every endpoint refused: reset the client's connection rather than
                    // close it cleanly, so it sees a failure and not an empty answer.
                    let _ = client.set_zero_linger();
                }
            }
        });
    }
}

impl Backends {
    /// The endpoints in the order to try them: round-robin from the next one.
    fn order(&self) -> Vec<SocketAddr> {
        let frontend = self.frontend.read().unwrap();
        rotation(
            &frontend.backends,
            self.next.fetch_add(1, Ordering::Relaxed),
        )
    }
}

/// `backends` starting at `start` (modulo their number), wrapping around.
pub fn rotation(backends: &[SocketAddr], start: usize) -> Vec<SocketAddr> {
    if backends.is_empty() {
        return vec![];
    }
    let first = start % backends.len();
    backends[first..]
        .iter()
        .chain(&backends[..first])
        .copied()
        .collect()
}

/// Connects to the first endpoint of `order` that accepts (an endpoint that refuses —
/// its process restarting — is skipped, as kube-proxy's userspace mode did).
async fn connect_first(order: &[SocketAddr]) -> Option<TcpStream> {
    for backend in order {
        match TcpStream::connect(backend).await {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                return Some(stream);
            }
            Err(e) => tracing::debug!(%backend, error = %e, "endpoint refused; trying the next"),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_wraps_from_the_start_index() {
        let b: Vec<SocketAddr> = ["127.1.0.2:1", "127.1.0.3:1", "127.1.0.4:1"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(rotation(&b, 0), b);
        assert_eq!(rotation(&b, 4), vec![b[1], b[2], b[0]]);
        assert!(rotation(&[], 3).is_empty());
    }

    #[tokio::test]
    async fn a_refusing_endpoint_is_skipped_and_an_empty_table_closes_the_listener() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        // A live backend, and one address that refuses (bound then dropped).
        let backend = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let live = backend.local_addr().unwrap();
        let dead = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        tokio::spawn(async move {
            let (mut s, _) = backend.accept().await.unwrap();
            s.write_all(b"hello").await.unwrap();
        });
        let front = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap();
        let mut table = Table::new();
        table.insert(
            front,
            Frontend {
                service: crate::rules::ServicePortName {
                    namespace: "a".into(),
                    name: "s".into(),
                    port: String::new(),
                },
                backends: vec![dead, live],
            },
        );
        let mut listeners = Listeners::default();
        listeners.sync(&table).await;
        assert_eq!(listeners.addresses(), vec![front]);
        let mut client = TcpStream::connect(front).await.unwrap();
        let mut got = String::new();
        client.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "hello");
        listeners.sync(&Table::new()).await;
        assert!(listeners.addresses().is_empty());
        // The aborted task drops the socket; connecting is then refused (a connection
        // that raced into the backlog meanwhile is reset).
        let refused = loop {
            match TcpStream::connect(front).await {
                Err(e) if e.kind() != std::io::ErrorKind::ConnectionReset => break e,
                _ => tokio::task::yield_now().await,
            }
        };
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    }
}
