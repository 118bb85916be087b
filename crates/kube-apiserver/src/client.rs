//! The one way in: how every in-process component — scheduler, kubelet, controllers, and
//! what this wave adds (Karpenter, metrics) — reads and writes objects.
//!
//! Kubernetes' rule is that controllers go through the API server, never around it to
//! etcd; this is that rule in process. Every write here runs the same code path as the
//! HTTP verb it names — identity, admission (validation, defaulting, priority, service
//! accounts, the pod mutator), immutability rules, deletion semantics, finalizers — so an
//! in-process write and a `kubectl` write cannot disagree. Only HTTP is skipped
//! (authentication, RBAC, encoding): in-process components are trusted like the
//! apiserver's loopback client. Reads come straight from the registry, as the apiserver's
//! watch cache serves them.
//!
//! | verb | HTTP equivalent |
//! |---|---|
//! | [`Client::get`], [`Client::list`], [`Client::watch`] | `GET`, `GET ?watch` |
//! | [`Client::create`] | `POST` |
//! | [`Client::update`] | `PUT` (compare-and-swap when `resourceVersion` is set) |
//! | [`Client::modify`], [`Client::update_status`] | read, change, `PUT` / `PUT …/status` / `PUT …/finalize` with the read `resourceVersion`, retried on conflict (client-go's `RetryOnConflict`) |
//! | [`Client::bind`] | `POST pods/<name>/binding` |
//! | [`Client::delete`], [`Client::delete_with`] | `DELETE` with `DeleteOptions` |
//! | [`Client::evict`] | `POST pods/<name>/eviction` (honours PodDisruptionBudgets) |
//! | [`Client::remove_finalizer`] | read, drop one finalizer, `PUT` |
//! | [`Client::service_account_token`] | `POST serviceaccounts/<name>/token` |
//!
//! Custom resources work like built-in ones (`Resource::new("karpenter.sh", "nodepools")`)
//! once their CRD is stored; the client reads and writes them in their storage version.
//!
//! The same verbs exist on a real API server (kube-rs), which is what lets a component
//! written against this client move to a real cluster.

use std::sync::Arc;

use futures::Stream;
use serde_json::Value;

use crate::deletion::{delete_internal, DeleteOptions};
use crate::error::ApiError;
use crate::handlers::{self, CreateOptions};
use crate::registry::{Event, Resource};
use crate::resources::{self, ResourceInfo};
use crate::ApiServer;

/// `metadata.finalizers` entries the garbage collector acts on.
pub const FOREGROUND: &str = "foregroundDeletion";
pub const ORPHAN: &str = "orphan";

/// `DeleteOptions.propagationPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Propagation {
    Background,
    Foreground,
    Orphan,
}

impl Propagation {
    pub fn as_str(self) -> &'static str {
        match self {
            Propagation::Background => "Background",
            Propagation::Foreground => "Foreground",
            Propagation::Orphan => "Orphan",
        }
    }
}

/// Which part of an object an update writes: the object (`PUT <name>`), its status
/// (`PUT <name>/status`: everything but `status` is kept as stored) or a namespace's
/// `spec.finalizers` (`PUT namespaces/<name>/finalize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    Main,
    Status,
    Finalize,
}

impl Subresource {
    fn path(self) -> Option<&'static str> {
        match self {
            Subresource::Main => None,
            Subresource::Status => Some("status"),
            Subresource::Finalize => Some("finalize"),
        }
    }
}

/// How many times a read-change-write is retried when another writer got in between.
const CONFLICT_RETRIES: usize = 16;

/// A handle to the API server for in-process components. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    server: ApiServer,
}

fn info(resource: Resource) -> Result<&'static ResourceInfo, ApiError> {
    resources::by_resource(resource)
        .ok_or_else(|| ApiError::internal(format!("unknown resource {}", resource.plural)))
}

fn store_namespace<'a>(info: &ResourceInfo, ns: &'a str) -> &'a str {
    if info.namespaced {
        ns
    } else {
        ""
    }
}

impl Client {
    pub(crate) fn new(server: ApiServer) -> Self {
        Self { server }
    }

    // ---- reads -------------------------------------------------------------------------

    /// `GET`: the stored object, if any (`ns` is ignored for cluster-scoped resources).
    pub fn get(&self, resource: Resource, ns: &str, name: &str) -> Option<Arc<Value>> {
        self.server.registry.get(resource, ns, name)
    }

    /// `GET` of a collection (all namespaces for `None`), with the list's resourceVersion.
    pub fn list(&self, resource: Resource, ns: Option<&str>) -> (Vec<Arc<Value>>, u64) {
        self.server.registry.list(resource, ns)
    }

    /// `GET ?watch&resourceVersion=<from>`: the changes after `from` (after now for
    /// `None`), in commit order. The stream ends when the watcher falls too far behind; the
    /// caller lists again and resumes, as a reflector does.
    pub fn watch(
        &self,
        resource: Resource,
        from: Option<u64>,
    ) -> Result<impl Stream<Item = Event> + Send + 'static, ApiError> {
        self.server.registry.watch(resource, from)
    }

    /// The newest resourceVersion issued (for "has anything changed since" loops).
    pub fn revision(&self) -> u64 {
        self.server.registry.revision()
    }

    // ---- writes ------------------------------------------------------------------------

    /// `POST`: creates `object` in `ns` with the API server's create path.
    pub fn create(
        &self,
        resource: Resource,
        ns: &str,
        object: Value,
    ) -> Result<Arc<Value>, ApiError> {
        handlers::create_internal(
            &self.server,
            info(resource)?,
            ns,
            object,
            &CreateOptions::default(),
        )
    }

    /// `PUT`: replaces the object; with `metadata.resourceVersion` set it is a
    /// compare-and-swap (409 Conflict when the object changed).
    pub fn update(
        &self,
        resource: Resource,
        ns: &str,
        name: &str,
        object: Value,
    ) -> Result<Value, ApiError> {
        handlers::update_internal(
            &self.server,
            info(resource)?,
            ns,
            name,
            None,
            object,
            &CreateOptions::default(),
        )
    }

    /// Read, `change`, write back — the write being a `PUT` of `part` carrying the read
    /// resourceVersion, retried from a fresh read on conflict. `change` may return an error
    /// (say, a 409 when the object is no longer the one it meant: another uid), which ends
    /// the call with nothing written. A change that leaves the object as it was writes
    /// nothing.
    pub fn modify(
        &self,
        resource: Resource,
        ns: &str,
        name: &str,
        part: Subresource,
        mut change: impl FnMut(&mut Value) -> Result<(), ApiError>,
    ) -> Result<Arc<Value>, ApiError> {
        let info = info(resource)?;
        let store_ns = store_namespace(info, ns);
        for _ in 0..CONFLICT_RETRIES {
            let current = self
                .server
                .registry
                .get(resource, store_ns, name)
                .ok_or_else(|| ApiError::not_found(info.group, info.plural, name))?;
            let mut next = (*current).clone();
            change(&mut next)?;
            if next == *current {
                return Ok(current);
            }
            let next = handlers::merge_for_update(info, &current, next, part.path());
            match handlers::store_update(
                &self.server,
                info,
                store_ns,
                name,
                part.path(),
                &current,
                next,
                &CreateOptions::default(),
            ) {
                Err(e) if e.reason == "Conflict" => continue,
                other => return other,
            }
        }
        Err(ApiError::conflict(info.group, info.plural, name))
    }

    /// [`Client::modify`] of the status subresource: what a controller or kubelet reports.
    pub fn update_status(
        &self,
        resource: Resource,
        ns: &str,
        name: &str,
        change: impl FnMut(&mut Value) -> Result<(), ApiError>,
    ) -> Result<Arc<Value>, ApiError> {
        self.modify(resource, ns, name, Subresource::Status, change)
    }

    /// `POST pods/<name>/binding`: assigns the pod to `node` (when `uid` is given, only
    /// if the pod is still that one), as a scheduler binds.
    pub fn bind(
        &self,
        ns: &str,
        name: &str,
        uid: Option<&str>,
        node: &str,
    ) -> Result<Arc<Value>, ApiError> {
        handlers::bind_pod(&self.server, ns, name, uid, node)
    }

    /// `DELETE` with full `DeleteOptions`: graceful pods, finalizers, preconditions,
    /// propagation. Returns the object as it is after the call.
    pub fn delete_with(
        &self,
        resource: Resource,
        ns: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Arc<Value>, ApiError> {
        delete_internal(&self.server, info(resource)?, ns, name, opts)
    }

    /// `DELETE` with a propagation policy (and, for pods, an optional grace period).
    pub fn delete(
        &self,
        resource: Resource,
        ns: &str,
        name: &str,
        propagation: Propagation,
        grace: Option<i64>,
    ) -> Result<Arc<Value>, ApiError> {
        let opts = DeleteOptions {
            grace_period_seconds: grace,
            propagation_policy: Some(propagation.as_str().into()),
            ..Default::default()
        };
        self.delete_with(resource, ns, name, &opts)
    }

    /// The kubelet's last word on a pod it stopped: `DELETE` with grace 0 for this uid,
    /// which removes it unless finalizers still hold it.
    pub fn finish_pod(&self, ns: &str, name: &str, uid: &str) -> Result<Arc<Value>, ApiError> {
        let opts = DeleteOptions {
            grace_period_seconds: Some(0),
            precondition_uid: Some(uid.into()),
            ..Default::default()
        };
        self.delete_with(resources::PODS.resource(), ns, name, &opts)
    }

    /// `POST pods/<name>/eviction` (policy/v1 Eviction): refused with 429
    /// `TooManyRequests` when it would violate the pod's PodDisruptionBudget (the
    /// disruption is recorded in the budget otherwise); then marks the pod
    /// `DisruptionTarget` (reason `EvictionByEvictionAPI`) and deletes it with its own
    /// grace period, as the apiserver's eviction REST does. See [`crate::pdb`].
    pub fn evict(&self, ns: &str, name: &str, uid: Option<&str>) -> Result<Value, ApiError> {
        crate::pdb::evict(&self.server, ns, name, uid, &DeleteOptions::default())
    }

    /// Drops one finalizer (a `PUT` of the object without it); the update completes a
    /// deletion it made possible.
    pub fn remove_finalizer(
        &self,
        resource: Resource,
        ns: &str,
        name: &str,
        finalizer: &str,
    ) -> Result<(), ApiError> {
        self.modify(resource, ns, name, Subresource::Main, |object| {
            if let Some(list) = object["metadata"]["finalizers"].as_array_mut() {
                list.retain(|f| f != finalizer);
                if list.is_empty() {
                    if let Some(meta) = object["metadata"].as_object_mut() {
                        meta.remove("finalizers");
                    }
                }
            }
            Ok(())
        })?;
        Ok(())
    }

    /// `POST serviceaccounts/<name>/token` as the kubelet makes it for a projected volume:
    /// a token for `service_account`, bound to the pod when given.
    pub fn service_account_token(
        &self,
        ns: &str,
        service_account: &str,
        audiences: &[String],
        bound_pod: Option<(&str, &str)>,
        expiration_seconds: i64,
    ) -> String {
        self.server.tokens.issue(
            ns,
            service_account,
            audiences,
            bound_pod,
            expiration_seconds,
        )
    }

    /// The API server's issuer (`iss` of service-account tokens; their default audience).
    pub fn token_issuer(&self) -> String {
        self.server.tokens.issuer().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn server(dir: &std::path::Path) -> ApiServer {
        let pki = crate::pki::load_or_create(&dir.join("pki"), &[]).unwrap();
        let tokens = crate::TokenIssuer::new("https://kubernetes.default.svc", &pki.sa_key_pem);
        ApiServer::new(
            crate::registry::Registry::new(),
            Arc::new(tokens.unwrap()),
            &pki.ca_pem,
            "admin",
            Arc::default(),
            dir.to_path_buf(),
        )
    }

    fn pod(client: &Client, node: Option<&str>) -> Value {
        let ns = resources::NAMESPACES.resource();
        let _ = client.create(ns, "", json!({"metadata": {"name": "a"}}));
        let mut spec = json!({"containers": [{"name": "c", "image": "busybox"}]});
        if let Some(node) = node {
            spec["nodeName"] = json!(node);
        }
        let pods = resources::PODS.resource();
        Value::clone(
            &client
                .create(pods, "a", json!({"metadata": {"name": "p"}, "spec": spec}))
                .unwrap(),
        )
    }

    #[test]
    fn evict_marks_the_pod_then_deletes_it_gracefully() {
        let dir = tempfile::tempdir().unwrap();
        let client = server(dir.path()).client();
        let created = pod(&client, Some("n1"));
        let uid = created["metadata"]["uid"].as_str().unwrap();
        let other = client.evict("a", "p", Some("not-the-uid")).unwrap_err();
        assert_eq!(other.code, 409);
        let untouched = client.get(resources::PODS.resource(), "a", "p").unwrap();
        assert!(untouched["metadata"]["deletionTimestamp"].is_null());
        assert!(untouched["status"]["conditions"].is_null());

        let after = client.evict("a", "p", Some(uid)).unwrap();
        assert!(!after["metadata"]["deletionTimestamp"].is_null(), "{after}");
        let conditions = after["status"]["conditions"].as_array().unwrap();
        let target = conditions
            .iter()
            .find(|c| c["type"] == "DisruptionTarget")
            .unwrap();
        assert_eq!(target["reason"], "EvictionByEvictionAPI");
        assert_eq!(target["status"], "True");
    }

    #[test]
    fn bind_sets_the_node_once_and_for_the_named_pod_only() {
        let dir = tempfile::tempdir().unwrap();
        let client = server(dir.path()).client();
        let created = pod(&client, None);
        let uid = created["metadata"]["uid"].as_str().unwrap();
        assert_eq!(
            client.bind("a", "p", Some("other"), "n1").unwrap_err().code,
            409
        );
        let bound = client.bind("a", "p", Some(uid), "n1").unwrap();
        assert_eq!(bound["spec"]["nodeName"], "n1");
        assert_eq!(bound["status"]["conditions"][0]["type"], "PodScheduled");
        assert_eq!(bound["status"]["conditions"][0]["status"], "True");
        let again = client.bind("a", "p", Some(uid), "n2").unwrap_err();
        assert!(
            again.message.contains("already assigned to node \"n1\""),
            "{}",
            again.message
        );
    }

    #[test]
    fn a_status_update_keeps_the_spec_and_a_no_op_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let client = server(dir.path()).client();
        let created = pod(&client, Some("n1"));
        let pods = resources::PODS.resource();
        let rv = created["metadata"]["resourceVersion"].clone();
        let same = client.update_status(pods, "a", "p", |_| Ok(())).unwrap();
        assert_eq!(same["metadata"]["resourceVersion"], rv);
        let updated = client
            .update_status(pods, "a", "p", |p| {
                p["status"]["phase"] = json!("Running");
                p["spec"]["nodeName"] = json!("elsewhere");
                Ok(())
            })
            .unwrap();
        assert_eq!(updated["status"]["phase"], "Running");
        assert_eq!(
            updated["spec"]["nodeName"], "n1",
            "status writes keep the spec"
        );
        assert_ne!(updated["metadata"]["resourceVersion"], rv);
    }
}
