//! Lease-based leader election among `sparkyard serve` replicas, with client-go's
//! `leaderelection` semantics (what kube-controller-manager, the Spark operator and
//! Karpenter run): a `coordination.k8s.io/v1` Lease whose `holderIdentity` is the leader,
//! renewed every `retry-period`; another replica takes it over only once it has seen the
//! record unchanged for a whole `lease-duration` (by its own clock, so clock skew between
//! replicas does not matter); every write is an update under the read `resourceVersion`,
//! so two candidates can never both win. A leader that cannot renew within
//! `renew-deadline` stops (the process exits and its pod restarts), and a leader that shuts
//! down cleanly releases the Lease so a follower takes over at once.
//!
//! Hand-written rather than taken from a crate: the maintained Rust lease crates decide
//! conflicts with server-side apply's field ownership, which not every API server
//! enforces; the resourceVersion protocol below is client-go's and holds on any.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use tokio::sync::watch;

/// kube-controller-manager's flags and defaults.
#[derive(Debug, Clone)]
pub struct ElectionConfig {
    pub namespace: String,
    pub name: String,
    /// This replica's identity: `<pod name>_<address the API is served at>`, so followers
    /// know where the leader answers.
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_deadline: Duration,
    pub retry_period: Duration,
}

/// What a replica knows about the election.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observed {
    /// The current holder's identity, if the Lease has one.
    pub holder: Option<String>,
    pub leading: bool,
}

impl Observed {
    /// The address in the holder's identity (`<name>_<host:port>`).
    pub fn leader_address(&self) -> Option<&str> {
        self.holder.as_deref()?.rsplit_once('_').map(|(_, a)| a)
    }
}

/// Starts campaigning; the receiver follows the election. When `shutdown` resolves, a
/// leader releases the Lease and the task ends.
pub fn spawn(
    client: kube::Client,
    config: ElectionConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> (watch::Receiver<Observed>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = watch::channel(Observed::default());
    let task = tokio::spawn(async move {
        let api: Api<Lease> = Api::namespaced(client, &config.namespace);
        let mut elector = Elector::new(config);
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(elector.config.retry_period);
        tracing::info!(
            lease = %elector.lease_name(),
            "attempting to acquire leader lease {}...",
            elector.lease_name()
        );
        loop {
            tokio::select! {
                _ = &mut shutdown => {
                    if tx.borrow().leading {
                        elector.release(&api).await;
                    }
                    return;
                }
                _ = tick.tick() => {}
            }
            let observed = elector.step(&api).await;
            tx.send_if_modified(|current| {
                let changed = *current != observed;
                *current = observed;
                changed
            });
        }
    });
    (rx, task)
}

struct Elector {
    config: ElectionConfig,
    /// The Lease spec last seen and when (by this replica's clock) it last changed.
    observed_spec: Option<LeaseSpec>,
    observed_at: Instant,
    leading: bool,
    last_renewal: Instant,
    reported_holder: Option<String>,
}

impl Elector {
    fn new(config: ElectionConfig) -> Self {
        Self {
            config,
            observed_spec: None,
            observed_at: Instant::now(),
            leading: false,
            last_renewal: Instant::now(),
            reported_holder: None,
        }
    }

    fn lease_name(&self) -> String {
        format!("{}/{}", self.config.namespace, self.config.name)
    }

    async fn step(&mut self, api: &Api<Lease>) -> Observed {
        match self.try_acquire_or_renew(api).await {
            Ok(true) => {
                if !self.leading {
                    tracing::info!(lease = %self.lease_name(), "successfully acquired lease {}", self.lease_name());
                }
                self.leading = true;
                self.last_renewal = Instant::now();
            }
            Ok(false) if self.leading => self.lost("the lease is held by another replica"),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(error = %e, "error retrieving resource lock {}", self.lease_name());
                if self.leading && self.last_renewal.elapsed() > self.config.renew_deadline {
                    self.lost(&format!(
                        "failed to renew lease {}: timed out waiting for the condition",
                        self.lease_name()
                    ));
                }
            }
        }
        let holder = self
            .observed_spec
            .as_ref()
            .and_then(|s| s.holder_identity.clone())
            .filter(|h| !h.is_empty());
        if holder != self.reported_holder {
            if let Some(h) = &holder {
                tracing::info!(identity = %h, "new leader elected: {h}");
            }
            self.reported_holder = holder.clone();
        }
        Observed {
            holder,
            leading: self.leading,
        }
    }

    /// A leader that lost its Lease stops, as client-go's `OnStoppedLeading` does in
    /// kube-controller-manager: a restarted process starts clean as a follower, and nothing
    /// it began as leader goes on beside the new leader.
    fn lost(&self, why: &str) -> ! {
        tracing::error!("{why}");
        tracing::error!("leaderelection lost");
        std::process::exit(1)
    }

    async fn try_acquire_or_renew(&mut self, api: &Api<Lease>) -> Result<bool, kube::Error> {
        let now = MicroTime(now());
        let lease_seconds = self.config.lease_duration.as_secs().max(1) as i32;
        let Some(mut lease) = api.get_opt(&self.config.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.config.identity.clone()),
                    lease_duration_seconds: Some(lease_seconds),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match api.create(&PostParams::default(), &lease).await {
                Ok(created) => {
                    self.observe(created.spec);
                    Ok(true)
                }
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        self.observe(Some(spec.clone()));
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let ours = holder == self.config.identity;
        let expired = self.observed_at.elapsed()
            >= Duration::from_secs(
                spec.lease_duration_seconds.unwrap_or(lease_seconds).max(0) as u64
            );
        if !holder.is_empty() && !ours && !expired {
            return Ok(false);
        }
        let mut next = spec.clone();
        next.holder_identity = Some(self.config.identity.clone());
        next.lease_duration_seconds = Some(lease_seconds);
        next.renew_time = Some(now.clone());
        if !ours {
            next.acquire_time = Some(now);
            next.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        lease.spec = Some(next);
        match api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(updated) => {
                self.observe(updated.spec);
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn observe(&mut self, spec: Option<LeaseSpec>) {
        if spec != self.observed_spec {
            self.observed_spec = spec;
            self.observed_at = Instant::now();
        }
    }

    /// client-go's `ReleaseOnCancel`: an empty holder and a one-second duration, so a
    /// follower takes over at its next try instead of a whole lease duration later.
    async fn release(&mut self, api: &Api<Lease>) {
        let Ok(Some(mut lease)) = api.get_opt(&self.config.name).await else {
            return;
        };
        let Some(spec) = lease.spec.as_mut() else {
            return;
        };
        if spec.holder_identity.as_deref() != Some(&self.config.identity) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(now()));
        match api
            .replace(&self.config.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => {
                tracing::info!(lease = %self.lease_name(), "released lease {}", self.lease_name())
            }
            Err(e) => tracing::warn!(error = %e, "cannot release lease {}", self.lease_name()),
        }
    }
}

fn now() -> k8s_openapi::jiff::Timestamp {
    k8s_openapi::jiff::Timestamp::now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leader_address_is_the_identitys_tail() {
        let o = Observed {
            holder: Some("sparkyard-7d4b9c8f5-x2x9z_10.1.2.3:4750".into()),
            leading: false,
        };
        assert_eq!(o.leader_address(), Some("10.1.2.3:4750"));
        assert_eq!(Observed::default().leader_address(), None);
    }
}
