//! Container probes as the kubelet's prober runs them: `httpGet`, `tcpSocket` and `exec`
//! actions against the pod's IP, with `initialDelaySeconds`, `periodSeconds`,
//! `timeoutSeconds` and the success/failure thresholds that turn single results into a
//! container's state. Parsing and the thresholds are pure; [`check`] does one probe.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;

/// Which probe (its name is the one events use: "Readiness probe failed: …").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Liveness,
    Readiness,
    Startup,
}

impl Kind {
    pub fn field(self) -> &'static str {
        match self {
            Kind::Liveness => "livenessProbe",
            Kind::Readiness => "readinessProbe",
            Kind::Startup => "startupProbe",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Liveness => "Liveness",
            Kind::Readiness => "Readiness",
            Kind::Startup => "Startup",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Http {
        https: bool,
        address: SocketAddr,
        path: String,
        headers: Vec<(String, String)>,
    },
    Tcp(SocketAddr),
    /// The command, run in a sandbox of the container's (the caller supplies how).
    Exec(Vec<String>),
    /// An action this kubelet cannot run (`grpc`), with the reason; the probe fails.
    Unsupported(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub kind: Kind,
    pub action: Action,
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
    /// `terminationGracePeriodSeconds` of the probe (liveness, startup), if set.
    pub termination_grace: Option<i64>,
}

fn seconds(probe: &Value, key: &str, default: u64) -> u64 {
    probe[key].as_u64().unwrap_or(default)
}

/// A port given by number or by the name of one of the container's ports.
fn resolve_port(port: &Value, container: &Value) -> Result<u16, String> {
    if let Some(n) = port.as_u64() {
        return u16::try_from(n).map_err(|_| format!("invalid port number: {n}"));
    }
    let name = port.as_str().unwrap_or("");
    if let Ok(n) = name.parse::<u16>() {
        return Ok(n);
    }
    container["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|p| p["name"] == name)
        .and_then(|p| p["containerPort"].as_u64())
        .and_then(|p| u16::try_from(p).ok())
        .ok_or_else(|| {
            format!(
                "couldn't find port: {name} in {}",
                container["name"].as_str().unwrap_or("")
            )
        })
}

fn address(host: &Value, pod_ip: &str, port: u16) -> Result<SocketAddr, String> {
    let host = host.as_str().filter(|h| !h.is_empty()).unwrap_or(pod_ip);
    let ip: std::net::IpAddr = host
        .parse()
        .map_err(|_| format!("probe host {host:?} is not an IP address"))?;
    Ok(SocketAddr::new(ip, port))
}

/// The container's `kind` probe with kube's defaults (period 10 s, timeout 1 s, success
/// threshold 1, failure threshold 3), addressed to `pod_ip`; `None` when it has none.
pub fn parse(kind: Kind, container: &Value, pod_ip: &str) -> Option<Probe> {
    let probe = container.get(kind.field()).filter(|p| p.is_object())?;
    let action = if let Some(http) = probe.get("httpGet").filter(|h| h.is_object()) {
        resolve_port(&http["port"], container)
            .and_then(|port| address(&http["host"], pod_ip, port))
            .map(|address| Action::Http {
                https: http["scheme"] == "HTTPS",
                address,
                path: http["path"].as_str().unwrap_or("/").to_string(),
                headers: http["httpHeaders"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|h| {
                        Some((
                            h["name"].as_str()?.to_string(),
                            h["value"].as_str().unwrap_or("").to_string(),
                        ))
                    })
                    .collect(),
            })
            .unwrap_or_else(Action::Unsupported)
    } else if let Some(tcp) = probe.get("tcpSocket").filter(|t| t.is_object()) {
        resolve_port(&tcp["port"], container)
            .and_then(|port| address(&tcp["host"], pod_ip, port))
            .map(Action::Tcp)
            .unwrap_or_else(Action::Unsupported)
    } else if let Some(exec) = probe.get("exec").filter(|e| e.is_object()) {
        Action::Exec(
            exec["command"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str().map(String::from))
                .collect(),
        )
    } else {
        Action::Unsupported("unsupported probe action (grpc probes are not supported)".into())
    };
    // Liveness and startup need exactly one success (kube's validation enforces it).
    let success_threshold = match kind {
        Kind::Readiness => seconds(probe, "successThreshold", 1).max(1) as u32,
        _ => 1,
    };
    Some(Probe {
        kind,
        action,
        initial_delay: Duration::from_secs(seconds(probe, "initialDelaySeconds", 0)),
        period: Duration::from_secs(seconds(probe, "periodSeconds", 10).max(1)),
        timeout: Duration::from_secs(seconds(probe, "timeoutSeconds", 1).max(1)),
        success_threshold,
        failure_threshold: seconds(probe, "failureThreshold", 3).max(1) as u32,
        termination_grace: probe["terminationGracePeriodSeconds"].as_i64(),
    })
}

/// Consecutive results → the probe's state, as the prober worker keeps it: the state flips
/// after `success_threshold` successes in a row, or `failure_threshold` failures in a row.
#[derive(Debug, Clone, Default)]
pub struct Thresholds {
    successes: u32,
    failures: u32,
    state: Option<bool>,
}

impl Thresholds {
    /// Records one result; returns the new state when it changed.
    pub fn record(&mut self, probe: &Probe, ok: bool) -> Option<bool> {
        if ok {
            self.successes += 1;
            self.failures = 0;
        } else {
            self.failures += 1;
            self.successes = 0;
        }
        let next = if ok && self.successes >= probe.success_threshold {
            Some(true)
        } else if !ok && self.failures >= probe.failure_threshold {
            Some(false)
        } else {
            None
        };
        match next {
            Some(state) if self.state != Some(state) => {
                self.state = Some(state);
                Some(state)
            }
            _ => None,
        }
    }
}

/// One probe's result: `Ok` or the failure's message (what follows "… probe failed: ").
pub type Outcome = Result<(), String>;

/// Runs `exec` probes: the command in the container's sandbox, its output on failure.
pub type ExecRunner = std::sync::Arc<
    dyn Fn(Vec<String>, Duration) -> futures::future::BoxFuture<'static, Outcome> + Send + Sync,
>;

/// Runs one probe of `action` within `timeout`.
pub async fn check(action: &Action, timeout: Duration, exec: Option<&ExecRunner>) -> Outcome {
    match action {
        Action::Tcp(address) => {
            match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(address)).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(format!("dial tcp {address}: connect: {}", io_text(&e))),
                Err(_) => Err(format!("dial tcp {address}: i/o timeout")),
            }
        }
        Action::Http {
            https,
            address,
            path,
            headers,
        } => http_get(*https, *address, path, headers, timeout).await,
        Action::Exec(command) => match exec {
            Some(run) => run(command.clone(), timeout).await,
            None => Err("exec probes are not available for this container".into()),
        },
        Action::Unsupported(reason) => Err(reason.clone()),
    }
}

/// Go's wording of the common connect errors, which kube's messages carry.
fn io_text(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => "connection refused".into(),
        std::io::ErrorKind::ConnectionReset => "connection reset by peer".into(),
        _ => e.to_string(),
    }
}

async fn http_get(
    https: bool,
    address: SocketAddr,
    path: &str,
    headers: &[(String, String)],
    timeout: Duration,
) -> Outcome {
    let scheme = if https { "https" } else { "http" };
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let url = format!("{scheme}://{address}{path}");
    // kube's prober skips certificate verification and follows redirects.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::limited(10))
        .build()
        .map_err(|e| e.to_string())?;
    let mut request = client
        .get(&url)
        .header("User-Agent", format!("kube-probe/{}", probe_version()))
        .header("Accept", "*/*");
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    match request.send().await {
        Ok(response) => {
            let code = response.status().as_u16();
            if (200..400).contains(&code) {
                Ok(())
            } else {
                Err(format!("HTTP probe failed with statuscode: {code}"))
            }
        }
        Err(e) if e.is_timeout() => Err(format!(
            "Get \"{url}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        )),
        Err(e) if e.is_connect() => {
            let refused = std::error::Error::source(&e)
                .map(|s| s.to_string())
                .unwrap_or_default();
            let cause = if refused.contains("refused") {
                "connection refused".to_string()
            } else {
                refused
            };
            Err(format!("Get \"{url}\": dial tcp {address}: connect: {cause}"))
        }
        Err(e) => Err(format!("Get \"{url}\": {e}")),
    }
}

/// `major.minor` of the Kubernetes version served (kube-probe's User-Agent).
fn probe_version() -> String {
    let version = sparkyard_kube_apiserver::discovery::KUBE_VERSION.trim_start_matches('v');
    version.split('.').take(2).collect::<Vec<_>>().join(".")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_named_ports_and_the_pod_ip() {
        let container = json!({
            "name": "web",
            "ports": [{"name": "http", "containerPort": 8080}],
            "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 2},
            "livenessProbe": {"tcpSocket": {"port": 8080}, "successThreshold": 5},
        });
        let ready = parse(Kind::Readiness, &container, "127.1.0.5").unwrap();
        assert_eq!(ready.period, Duration::from_secs(2));
        assert_eq!(ready.timeout, Duration::from_secs(1));
        assert_eq!((ready.success_threshold, ready.failure_threshold), (1, 3));
        match &ready.action {
            Action::Http { address, path, .. } => {
                assert_eq!(address.to_string(), "127.1.0.5:8080");
                assert_eq!(path, "/ready");
            }
            other => panic!("{other:?}"),
        }
        let live = parse(Kind::Liveness, &container, "127.1.0.5").unwrap();
        assert_eq!(live.action, Action::Tcp("127.1.0.5:8080".parse().unwrap()));
        assert_eq!(live.success_threshold, 1, "liveness needs one success");
        assert!(parse(Kind::Startup, &container, "127.1.0.5").is_none());
        let unknown = json!({"name": "c", "readinessProbe": {"tcpSocket": {"port": "nope"}}});
        assert_eq!(
            parse(Kind::Readiness, &unknown, "127.1.0.5")
                .unwrap()
                .action,
            Action::Unsupported("couldn't find port: nope in c".into())
        );
    }

    #[test]
    fn thresholds_flip_after_consecutive_results() {
        let container = json!({"name": "c", "readinessProbe": {"exec": {"command": ["true"]}, "successThreshold": 2, "failureThreshold": 2}});
        let probe = parse(Kind::Readiness, &container, "127.1.0.5").unwrap();
        let mut t = Thresholds::default();
        assert_eq!(t.record(&probe, true), None);
        assert_eq!(t.record(&probe, true), Some(true));
        assert_eq!(t.record(&probe, true), None, "no change, no transition");
        assert_eq!(t.record(&probe, false), None);
        assert_eq!(
            t.record(&probe, true),
            None,
            "a success resets the failures"
        );
        assert_eq!(t.record(&probe, false), None);
        assert_eq!(t.record(&probe, false), Some(false));
    }

    #[tokio::test]
    async fn tcp_probe_reports_refusal_like_go() {
        let dead = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let outcome = check(&Action::Tcp(dead), Duration::from_secs(1), None).await;
        assert_eq!(
            outcome,
            Err(format!("dial tcp {dead}: connect: connection refused"))
        );
        let live = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = live.local_addr().unwrap();
        assert_eq!(
            check(&Action::Tcp(address), Duration::from_secs(1), None).await,
            Ok(())
        );
    }
}
