//! The object registry: what etcd plus the generic registry are in real Kubernetes.
//!
//! It stores every object as JSON, keyed by resource, namespace and name, assigns
//! `uid`/`resourceVersion`/`creationTimestamp`/`generation`, enforces optimistic concurrency,
//! and publishes an ordered event log that watches replay from any recent resourceVersion.
//!
//! It knows nothing of HTTP, admission, graceful deletion or garbage collection; those sit
//! above it (the API server, controllers and kubelet all go through the same calls).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use futures::Stream;
use serde_json::{json, Value};
use tokio::sync::broadcast;

use crate::error::ApiError;

mod durable;

/// A resource as the registry keys it: API group (`""` for core) and plural name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Resource {
    pub group: &'static str,
    pub plural: &'static str,
}

impl Resource {
    pub const fn new(group: &'static str, plural: &'static str) -> Self {
        Self { group, plural }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    /// The `type` of a Kubernetes watch event.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, in commit order. `object` is the state after the change (for DELETED, the
/// last state, with the deletion's resourceVersion).
#[derive(Debug, Clone)]
pub struct Event {
    pub resource_version: u64,
    pub event_type: EventType,
    pub resource: Resource,
    pub namespace: String,
    pub object: Arc<Value>,
    /// For MODIFIED, the state before the change: filtered watches need it to tell an object
    /// that stopped matching a selector (sent as DELETED) from one that started (ADDED).
    pub previous: Option<Arc<Value>>,
}

type Key = (Resource, String, String);

struct State {
    objects: BTreeMap<Key, Arc<Value>>,
    /// Last issued resourceVersion; one global counter, like etcd's revision.
    revision: u64,
    history: VecDeque<Event>,
    /// When each event of `history` was delivered (same order and length).
    delivered: VecDeque<std::time::Instant>,
    /// Watches cannot resume from before this revision: a restart loaded the objects but
    /// not the events that led to them (the API server then replays the current state).
    floor: u64,
}

/// Shared handle to the registry.
pub struct Registry {
    state: Mutex<State>,
    live: broadcast::Sender<Event>,
    history_limit: usize,
    /// The on-disk copy (`[cluster] persistence`); `None` keeps everything in memory.
    durable: Option<durable::Durable>,
}

/// How many past events are kept for resuming watches at most: kube-apiserver's watch
/// cache upper bound (`defaultUpperBoundCapacity`, 100 × 1024). Below it, a quiet
/// cluster keeps minutes of history (clients resuming from a resourceVersion a few minutes
/// old — fabric8, kube-rs reflectors — get no 410); at it, a burst of writes (a
/// scheduling wave writes 15,000 a second) reuses the memory of superseded objects
/// instead of holding 250,000 of them (the earlier bound: gigabytes).
pub const DEFAULT_HISTORY: usize = 102_400;

/// Beyond [`HISTORY_ALWAYS`] events, events older than this are dropped: kube-apiserver's
/// watch cache keeps at least 75 s of events (`eventFreshDuration`). Without it a busy
/// cluster (a thousand job runs a minute write ~30,000 events a minute, each holding a
/// whole object and its previous version) would hold gigabytes of superseded objects.
pub const HISTORY_FRESH: std::time::Duration = std::time::Duration::from_secs(75);

/// Events kept whatever their age (a quiet cluster's history costs little).
pub const HISTORY_ALWAYS: usize = 10_000;

/// Whether the oldest of `held` history events (delivered `oldest_age` ago) goes.
fn drop_oldest(held: usize, limit: usize, oldest_age: Option<std::time::Duration>) -> bool {
    held > limit || (held > HISTORY_ALWAYS && oldest_age.is_some_and(|age| age > HISTORY_FRESH))
}

impl Registry {
    pub fn new() -> Arc<Self> {
        Self::with_history(DEFAULT_HISTORY)
    }

    pub fn with_history(history_limit: usize) -> Arc<Self> {
        let (live, _) = broadcast::channel(16_384);
        Arc::new(Self {
            state: Mutex::new(State {
                objects: BTreeMap::new(),
                revision: 1,
                history: VecDeque::new(),
                delivered: VecDeque::new(),
                floor: 0,
            }),
            live,
            history_limit,
            durable: None,
        })
    }

    /// A registry kept in the SQLite database at `path` (created if missing): every object
    /// stored there is loaded, and the resourceVersion counter continues from the last one
    /// issued. Changes are written by a group-committing writer thread; watchers see a
    /// change only once it is on disk, and [`Registry::wait_durable`] is what the API server
    /// awaits before it acknowledges a write.
    pub fn open(path: &std::path::Path) -> anyhow::Result<Arc<Self>> {
        durable::open(path, DEFAULT_HISTORY)
    }

    /// Resolves once every change up to `revision` is durable (at once without persistence).
    /// Fails when the database could not be written: the change is then only in memory.
    pub async fn wait_durable(&self, revision: u64) -> Result<(), ApiError> {
        match &self.durable {
            Some(durable) => durable.wait(revision).await,
            None => Ok(()),
        }
    }

    /// Why changes cannot be persisted right now (the disk is full, say), if they cannot:
    /// the API server then refuses writes instead of applying them in memory only.
    pub fn persistence_failure(&self) -> Option<String> {
        self.durable.as_ref().and_then(|d| d.failing())
    }

    /// Blocks until everything changed so far is durable (tests, shutdown).
    pub fn sync(&self) -> Result<(), ApiError> {
        let revision = self.revision();
        futures::executor::block_on(self.wait_durable(revision))
    }

    /// The newest resourceVersion issued.
    pub fn revision(&self) -> u64 {
        self.state.lock().unwrap().revision
    }

    pub fn get(&self, resource: Resource, namespace: &str, name: &str) -> Option<Arc<Value>> {
        let state = self.state.lock().unwrap();
        state
            .objects
            .get(&(resource, namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// All objects of a resource, in one namespace or (with `None`) across all, sorted by
    /// namespace then name as the apiserver lists them, with the list's resourceVersion.
    pub fn list(&self, resource: Resource, namespace: Option<&str>) -> (Vec<Arc<Value>>, u64) {
        let state = self.state.lock().unwrap();
        let items = match namespace {
            Some(ns) => {
                let start = (resource, ns.to_string(), String::new());
                state
                    .objects
                    .range(start..)
                    .take_while(|((r, n, _), _)| *r == resource && n == ns)
                    .map(|(_, v)| v.clone())
                    .collect()
            }
            None => {
                let start = (resource, String::new(), String::new());
                state
                    .objects
                    .range(start..)
                    .take_while(|((r, _, _), _)| *r == resource)
                    .map(|(_, v)| v.clone())
                    .collect()
            }
        };
        (items, state.revision)
    }

    /// Stores a new object. Sets `metadata.namespace` (for namespaced resources, pass the
    /// namespace; `""` for cluster-scoped), `uid` (unless already set), `resourceVersion`,
    /// `creationTimestamp` and `generation`. The name must already be set (generateName is resolved above).
    pub fn create(
        &self,
        resource: Resource,
        namespace: &str,
        mut object: Value,
    ) -> Result<Arc<Value>, ApiError> {
        let name = object_name(&object)
            .ok_or_else(|| ApiError::bad_request("metadata.name is required"))?
            .to_string();
        let mut state = self.state.lock().unwrap();
        let key = (resource, namespace.to_string(), name.clone());
        if state.objects.contains_key(&key) {
            return Err(ApiError::already_exists(
                resource.group,
                resource.plural,
                &name,
            ));
        }
        state.revision += 1;
        let revision = state.revision;
        let meta = metadata_mut(&mut object);
        if !namespace.is_empty() {
            meta.insert("namespace".into(), json!(namespace));
        }
        // A uid chosen above (admission names Job selectors after it) is kept.
        if meta
            .get("uid")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        }
        meta.insert("resourceVersion".into(), json!(revision.to_string()));
        meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
        meta.insert("generation".into(), json!(1));
        meta.remove("deletionTimestamp");
        let object = Arc::new(object);
        state.objects.insert(key, object.clone());
        self.publish(
            &mut state,
            EventType::Added,
            resource,
            namespace,
            object.clone(),
            None,
        );
        Ok(object)
    }

    /// Replaces an object. When the new object carries `metadata.resourceVersion`, it must
    /// equal the stored one (409 Conflict otherwise). `uid` and `creationTimestamp` are kept;
    /// `generation` is bumped when anything outside `metadata` and `status` changed.
    /// An update that changes nothing issues no new resourceVersion and no event.
    pub fn update(
        &self,
        resource: Resource,
        namespace: &str,
        name: &str,
        object: Value,
    ) -> Result<Arc<Value>, ApiError> {
        let mut state = self.state.lock().unwrap();
        let (key, current) = stored(&state, resource, namespace, name)?;
        if let Some(rv) = object
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
        {
            if !rv.is_empty()
                && Some(rv)
                    != current
                        .pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str)
            {
                return Err(ApiError::conflict(resource.group, resource.plural, name));
            }
        }
        self.commit(&mut state, key, current, object)
    }

    /// Atomic read-modify-write: `change` edits the stored object in place under the lock.
    /// Identity fields (`name`, `namespace`, `uid`, `creationTimestamp`) cannot be changed.
    pub fn modify(
        &self,
        resource: Resource,
        namespace: &str,
        name: &str,
        change: impl FnOnce(&mut Value) -> Result<(), ApiError>,
    ) -> Result<Arc<Value>, ApiError> {
        let mut state = self.state.lock().unwrap();
        let (key, current) = stored(&state, resource, namespace, name)?;
        let mut next = (*current).clone();
        change(&mut next)?;
        self.commit(&mut state, key, current, next)
    }

    /// Stores `next` over `current` (under the lock): identity fields kept, a new
    /// resourceVersion (none when nothing changed), `generation` bumped when anything
    /// outside `metadata` and `status` changed, and the MODIFIED event.
    fn commit(
        &self,
        state: &mut State,
        key: Key,
        current: Arc<Value>,
        mut next: Value,
    ) -> Result<Arc<Value>, ApiError> {
        if next.get("metadata").map(|m| !m.is_object()).unwrap_or(true) {
            return Err(ApiError::bad_request("metadata must be an object"));
        }
        for field in [
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "resourceVersion",
            "generation",
        ] {
            let old = current.pointer(&format!("/metadata/{field}")).cloned();
            let meta = metadata_mut(&mut next);
            match old {
                Some(v) => meta.insert(field.into(), v),
                None => meta.remove(field),
            };
        }
        if next == *current {
            return Ok(current);
        }
        let spec_changed = !same_outside_meta_and_status(&next, &current);
        state.revision += 1;
        let revision = state.revision;
        let meta = metadata_mut(&mut next);
        meta.insert("resourceVersion".into(), json!(revision.to_string()));
        if spec_changed {
            let generation = current
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            meta.insert("generation".into(), json!(generation + 1));
        }
        let next = Arc::new(next);
        let (resource, namespace) = (key.0, key.1.clone());
        state.objects.insert(key, next.clone());
        self.publish(
            state,
            EventType::Modified,
            resource,
            &namespace,
            next.clone(),
            Some(current),
        );
        Ok(next)
    }

    /// Removes an object for good (the last step of a deletion) and emits DELETED.
    pub fn remove(
        &self,
        resource: Resource,
        namespace: &str,
        name: &str,
    ) -> Result<Arc<Value>, ApiError> {
        let mut state = self.state.lock().unwrap();
        let key = (resource, namespace.to_string(), name.to_string());
        let removed = state
            .objects
            .remove(&key)
            .ok_or_else(|| ApiError::not_found(resource.group, resource.plural, name))?;
        state.revision += 1;
        let revision = state.revision;
        let mut last = (*removed).clone();
        metadata_mut(&mut last).insert("resourceVersion".into(), json!(revision.to_string()));
        let last = Arc::new(last);
        self.publish(
            &mut state,
            EventType::Deleted,
            resource,
            namespace,
            last.clone(),
            None,
        );
        Ok(last)
    }

    fn publish(
        &self,
        state: &mut State,
        event_type: EventType,
        resource: Resource,
        namespace: &str,
        object: Arc<Value>,
        previous: Option<Arc<Value>>,
    ) {
        let event = Event {
            resource_version: state.revision,
            event_type,
            resource,
            namespace: namespace.to_string(),
            object,
            previous,
        };
        match &self.durable {
            // Queued in commit order (we hold the lock); the writer delivers it once durable.
            Some(durable) => durable.queue(event),
            None => self.deliver(state, event),
        }
    }

    /// Makes an event visible to watches: history for resuming ones, the channel for live ones.
    fn deliver(&self, state: &mut State, event: Event) {
        let now = std::time::Instant::now();
        state.history.push_back(event.clone());
        state.delivered.push_back(now);
        while drop_oldest(
            state.history.len(),
            self.history_limit,
            state.delivered.front().map(|at| now.duration_since(*at)),
        ) {
            state.history.pop_front();
            state.delivered.pop_front();
        }
        // No receivers is fine: nobody is watching.
        let _ = self.live.send(event);
    }

    /// Every event after `since` (exclusive) for the resource, then live events, in order.
    /// `since = None` starts from now. Fails with 410 Gone when `since` is older than the
    /// kept history. Filtering by namespace, labels and fields is the caller's job.
    ///
    /// A watcher that falls more than the live channel's capacity behind sees its stream
    /// end; it resumes from its last resourceVersion, as clients of real watches do.
    pub fn watch(
        &self,
        resource: Resource,
        since: Option<u64>,
    ) -> Result<impl Stream<Item = Event> + Send + 'static, ApiError> {
        // Subscribe and snapshot under one lock so that no event falls between the two.
        let state = self.state.lock().unwrap();
        let receiver = self.live.subscribe();
        let start = since.unwrap_or(state.revision);
        if start < state.floor {
            return Err(ApiError::gone(format!(
                "too old resource version: {start} ({})",
                state.floor
            )));
        }
        if let Some(oldest) = state.history.front() {
            if start + 1 < oldest.resource_version {
                return Err(ApiError::gone(format!(
                    "too old resource version: {start} ({})",
                    oldest.resource_version - 1
                )));
            }
        }
        // History is in resourceVersion order: skip to `start` instead of scanning it all
        // (controllers re-subscribe often; the history holds up to 102,400 events).
        let first = state
            .history
            .partition_point(|e| e.resource_version <= start);
        let backlog: Vec<Event> = state
            .history
            .range(first..)
            .filter(|e| e.resource == resource)
            .cloned()
            .collect();
        drop(state);
        let initial = (backlog.into_iter(), receiver, start);
        Ok(futures::stream::unfold(
            initial,
            move |(mut backlog, mut live, last)| async move {
                if let Some(event) = backlog.next() {
                    let seen = event.resource_version;
                    return Some((event, (backlog, live, seen)));
                }
                loop {
                    match live.recv().await {
                        Ok(event)
                            if event.resource_version > last && event.resource == resource =>
                        {
                            let seen = event.resource_version;
                            return Some((event, (backlog, live, seen)));
                        }
                        Ok(_) => continue,
                        Err(_) => return None,
                    }
                }
            },
        ))
    }
}

pub fn object_name(object: &Value) -> Option<&str> {
    object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
}

fn metadata_mut(object: &mut Value) -> &mut serde_json::Map<String, Value> {
    if !object.is_object() {
        *object = json!({});
    }
    let map = object.as_object_mut().unwrap();
    let meta = map.entry("metadata").or_insert_with(|| json!({}));
    if !meta.is_object() {
        *meta = json!({});
    }
    meta.as_object_mut().unwrap()
}

/// The stored object under `resource`/`namespace`/`name`, with its key (404 when absent).
fn stored(
    state: &State,
    resource: Resource,
    namespace: &str,
    name: &str,
) -> Result<(Key, Arc<Value>), ApiError> {
    let key = (resource, namespace.to_string(), name.to_string());
    let current = state
        .objects
        .get(&key)
        .ok_or_else(|| ApiError::not_found(resource.group, resource.plural, name))?
        .clone();
    Ok((key, current))
}

/// Whether `a` and `b` agree on everything but `metadata` and `status` (compared in
/// place: no copies on every write).
fn same_outside_meta_and_status(a: &Value, b: &Value) -> bool {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    let outside = |k: &&String| k.as_str() != "metadata" && k.as_str() != "status";
    a.keys().filter(outside).count() == b.keys().filter(outside).count()
        && a.iter()
            .filter(|(k, _)| outside(k))
            .all(|(k, v)| b.get(k) == Some(v))
}

/// RFC 3339 with second precision and `Z`, as Kubernetes writes timestamps.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use std::time::Duration;

    const PODS: Resource = Resource::new("", "pods");

    fn pod(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": []}})
    }

    #[test]
    fn create_assigns_identity_and_rejects_duplicates() {
        let registry = Registry::new();
        let created = registry.create(PODS, "ns", pod("a")).unwrap();
        assert_eq!(created["metadata"]["namespace"], "ns");
        assert_eq!(created["metadata"]["generation"], 1);
        assert!(created["metadata"]["uid"].as_str().unwrap().len() == 36);
        let err = registry.create(PODS, "ns", pod("a")).unwrap_err();
        assert_eq!((err.code, err.reason), (409, "AlreadyExists"));
        assert_eq!(err.message, "pods \"a\" already exists");
    }

    #[test]
    fn update_with_stale_resource_version_conflicts() {
        let registry = Registry::new();
        let created = registry.create(PODS, "ns", pod("a")).unwrap();
        let mut first = (*created).clone();
        first["metadata"]["labels"] = json!({"x": "1"});
        registry.update(PODS, "ns", "a", first).unwrap();
        let mut stale = (*created).clone();
        stale["metadata"]["labels"] = json!({"x": "2"});
        let err = registry.update(PODS, "ns", "a", stale).unwrap_err();
        assert_eq!(err.code, 409);
        assert_eq!(err.reason, "Conflict");
    }

    #[test]
    fn generation_moves_with_spec_not_status() {
        let registry = Registry::new();
        registry.create(PODS, "ns", pod("a")).unwrap();
        let after_status = registry
            .modify(PODS, "ns", "a", |p| {
                p["status"] = json!({"phase": "Running"});
                Ok(())
            })
            .unwrap();
        assert_eq!(after_status["metadata"]["generation"], 1);
        let after_spec = registry
            .modify(PODS, "ns", "a", |p| {
                p["spec"]["nodeName"] = json!("n1");
                Ok(())
            })
            .unwrap();
        assert_eq!(after_spec["metadata"]["generation"], 2);
    }

    #[test]
    fn unchanged_update_issues_no_revision() {
        let registry = Registry::new();
        registry.create(PODS, "ns", pod("a")).unwrap();
        let before = registry.revision();
        registry.modify(PODS, "ns", "a", |_| Ok(())).unwrap();
        assert_eq!(registry.revision(), before);
    }

    #[test]
    fn list_is_scoped_and_sorted() {
        let registry = Registry::new();
        registry.create(PODS, "b", pod("z")).unwrap();
        registry.create(PODS, "a", pod("y")).unwrap();
        registry.create(PODS, "a", pod("x")).unwrap();
        registry
            .create(Resource::new("", "configmaps"), "a", pod("cm"))
            .unwrap();
        let names = |items: Vec<Arc<Value>>| -> Vec<String> {
            items
                .iter()
                .map(|o| object_name(o).unwrap().to_string())
                .collect()
        };
        assert_eq!(names(registry.list(PODS, Some("a")).0), ["x", "y"]);
        assert_eq!(names(registry.list(PODS, None).0), ["x", "y", "z"]);
    }

    #[tokio::test]
    async fn watch_replays_from_a_resource_version_then_goes_live() {
        let registry = Registry::new();
        let first = registry.create(PODS, "ns", pod("a")).unwrap();
        let rv: u64 = first["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        registry.create(PODS, "ns", pod("b")).unwrap();
        let mut stream = Box::pin(registry.watch(PODS, Some(rv)).unwrap());
        let replayed = stream.next().await.unwrap();
        assert_eq!(object_name(&replayed.object), Some("b"));
        registry.remove(PODS, "ns", "a").unwrap();
        let live = stream.next().await.unwrap();
        assert_eq!(live.event_type, EventType::Deleted);
        assert_eq!(object_name(&live.object), Some("a"));
    }

    #[test]
    fn history_keeps_75_seconds_beyond_its_floor_and_never_more_than_its_limit() {
        let (fresh, stale) = (Duration::from_secs(74), Duration::from_secs(76));
        assert!(!drop_oldest(HISTORY_ALWAYS, DEFAULT_HISTORY, Some(stale)));
        assert!(drop_oldest(
            HISTORY_ALWAYS + 1,
            DEFAULT_HISTORY,
            Some(stale)
        ));
        assert!(!drop_oldest(
            HISTORY_ALWAYS + 1,
            DEFAULT_HISTORY,
            Some(fresh)
        ));
        assert!(drop_oldest(
            DEFAULT_HISTORY + 1,
            DEFAULT_HISTORY,
            Some(fresh)
        ));
        assert!(drop_oldest(3, 2, None));
    }

    #[test]
    fn watch_from_before_history_is_gone() {
        let registry = Registry::with_history(2);
        for name in ["a", "b", "c", "d"] {
            registry.create(PODS, "ns", pod(name)).unwrap();
        }
        let err = registry.watch(PODS, Some(1)).err().unwrap();
        assert_eq!(err.code, 410);
    }
}
