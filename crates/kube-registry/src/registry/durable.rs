//! The registry on disk: what etcd's write-ahead log is to a real API server.
//!
//! One SQLite database (`<cluster data dir>/registry.db`, WAL, `synchronous=FULL`) holds
//! every object as JSON keyed by (group, resource, namespace, name), plus the last issued
//! revision (a deletion removes the newest object, so the counter cannot be derived from
//! the objects). The same durability recipe as `sparkyard-store`, written here because the
//! registry commits under its own lock and synchronously: a registry call only *queues*
//! its event (cheap, in revision order), and one writer thread commits whatever has queued
//! in one transaction ("group commit"), then delivers those events to watchers and
//! advances the durable revision that [`Durable::wait`] (the API server's acknowledgement)
//! awaits. Internal callers (scheduler, kubelet, controllers) never wait for the disk, so
//! their loops run at memory speed; what they cause becomes visible to watchers only once
//! durable, like etcd's watch, which only reports committed revisions.

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex, Weak};

use anyhow::Context;
use rusqlite::{Connection, OptionalExtension};
use serde_json::Value;
use tokio::sync::broadcast;

use super::{Event, EventType, Key, Registry, Resource, State};
use crate::error::ApiError;

/// Events per transaction at most, so that one burst cannot delay every acknowledgement.
const MAX_GROUP: usize = 8192;

/// `STEPS[i]` migrates schema version `i` to `i + 1` (`PRAGMA user_version`). Append only.
const STEPS: &[&str] = &["CREATE TABLE objects (
         api_group TEXT NOT NULL,
         resource  TEXT NOT NULL,
         namespace TEXT NOT NULL,
         name      TEXT NOT NULL,
         revision  INTEGER NOT NULL,
         body      TEXT NOT NULL,
         PRIMARY KEY (api_group, resource, namespace, name)
     ) WITHOUT ROWID;
     CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"];

#[derive(Clone, Debug, Default)]
struct Committed {
    revision: u64,
    /// Set while the writer cannot commit (a full disk, say): it keeps the changes it could
    /// not write and retries them, with whatever queues meanwhile, until a commit succeeds
    /// and this is cleared. Until then nothing new is acknowledged.
    error: Option<String>,
}

pub(super) struct Durable {
    queue: mpsc::Sender<Event>,
    committed: tokio::sync::watch::Sender<Committed>,
}

impl Durable {
    pub(super) fn queue(&self, event: Event) {
        // The writer only stops when the registry is dropped, so a send cannot fail while
        // a caller holds the registry.
        let _ = self.queue.send(event);
    }

    pub(super) async fn wait(&self, revision: u64) -> Result<(), ApiError> {
        let mut rx = self.committed.subscribe();
        let result = rx
            .wait_for(|c| c.revision >= revision || c.error.is_some())
            .await
            .map(|c| c.error.clone());
        match result {
            Ok(None) => Ok(()),
            // Applied in memory, not yet on disk: the outcome is unknown to the client
            // (as with etcd's request timeouts); the writer persists it once it can.
            Ok(Some(error)) => Err(ApiError::internal(format!(
                "the change was applied but is not yet persisted ({error}); it will be once the store can write again"
            ))),
            Err(_) => Err(ApiError::internal("the registry's writer has stopped")),
        }
    }

    /// Why the store cannot persist changes right now, if it cannot.
    pub(super) fn failing(&self) -> Option<String> {
        self.committed.borrow().error.clone()
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    // WAL: one fsync per commit, readers never block; FULL: the WAL is fsynced at every
    // commit, so an acknowledged change survives kill -9 and power loss.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // A busy cluster rewrites the same rows (a pod's status) many times a second: a
    // larger page cache keeps the index and hot pages in memory (32 MiB rather than
    // 2 MiB), and checkpointing every 32 MiB of WAL rather than 4 MiB copies each hot
    // page back once per checkpoint instead of eight times.
    conn.pragma_update(None, "cache_size", -32_768)?;
    conn.pragma_update(None, "wal_autocheckpoint", 8_192)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(())
}

fn migrate(conn: &mut Connection, path: &Path) -> anyhow::Result<()> {
    let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    anyhow::ensure!(
        found <= STEPS.len() as i64,
        "{} has registry schema version {found}, newer than this binary's {}",
        path.display(),
        STEPS.len()
    );
    for (from, step) in STEPS.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", from as i64 + 1)?;
        tx.commit()?;
    }
    Ok(())
}

/// The registry's key for a stored (group, resource): the built-in resources' own
/// `&'static` names; a resource this binary does not know (written by a newer one) is
/// interned once.
fn resource_of(group: &str, plural: &str) -> Resource {
    if let Some(info) = crate::resources::RESOURCES
        .iter()
        .find(|r| r.group == group && r.plural == plural)
    {
        return info.resource();
    }
    let leak = |s: &str| -> &'static str { Box::leak(s.to_string().into_boxed_str()) };
    Resource::new(leak(group), leak(plural))
}

type Loaded = (BTreeMap<Key, Arc<Value>>, u64);

fn load(conn: &Connection) -> anyhow::Result<Loaded> {
    let mut objects = BTreeMap::new();
    let mut highest = 0u64;
    let mut stmt =
        conn.prepare("SELECT api_group, resource, namespace, name, revision, body FROM objects")?;
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let (group, plural, namespace, name): (String, String, String, String) =
            (row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?);
        let revision: i64 = row.get(4)?;
        let body: String = row.get(5)?;
        let object: Value = serde_json::from_str(&body)
            .with_context(|| format!("stored {plural} {namespace}/{name} is not JSON"))?;
        highest = highest.max(revision as u64);
        objects.insert(
            (resource_of(&group, &plural), namespace, name),
            Arc::new(object),
        );
    }
    let stored: Option<i64> = conn
        .query_row("SELECT value FROM meta WHERE key = 'revision'", [], |r| {
            r.get(0)
        })
        .optional()?;
    Ok((objects, highest.max(stored.unwrap_or(0) as u64).max(1)))
}

pub(super) fn open(path: &Path, history_limit: usize) -> anyhow::Result<Arc<Registry>> {
    open_with(path, history_limit, |_| Ok(()))
}

/// [`open`], with `limit` applied to the writer's connection (tests bound the database's
/// size with `max_page_count` to see a full disk without one).
fn open_with(
    path: &Path,
    history_limit: usize,
    limit: impl FnOnce(&Connection) -> rusqlite::Result<()>,
) -> anyhow::Result<Arc<Registry>> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut conn = Connection::open(path)
        .with_context(|| format!("cannot open the registry database {}", path.display()))?;
    configure(&conn)?;
    limit(&conn)?;
    migrate(&mut conn, path)?;
    let (objects, revision) = load(&conn)?;
    tracing::info!(
        objects = objects.len(),
        revision,
        path = %path.display(),
        "loaded the cluster's objects"
    );
    let (queue, rx) = mpsc::channel::<Event>();
    let (committed, _) = tokio::sync::watch::channel(Committed {
        revision,
        error: None,
    });
    let (live, _) = broadcast::channel(16_384);
    let registry = Arc::new(Registry {
        state: Mutex::new(State {
            objects,
            revision,
            history: VecDeque::new(),
            delivered: VecDeque::new(),
            floor: revision,
        }),
        live,
        history_limit,
        durable: Some(Durable {
            queue,
            committed: committed.clone(),
        }),
    });
    let weak = Arc::downgrade(&registry);
    std::thread::Builder::new()
        .name("registry-writer".into())
        .spawn(move || run(conn, rx, weak, committed))
        .context("cannot start the registry's writer thread")?;
    Ok(registry)
}

fn run(
    mut conn: Connection,
    rx: mpsc::Receiver<Event>,
    registry: Weak<Registry>,
    committed: tokio::sync::watch::Sender<Committed>,
) {
    // Ends when the registry (and with it the queue's sender) is dropped.
    while let Ok(first) = rx.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(event) => group.push(event),
                Err(_) => break,
            }
        }
        // A failed commit (a full disk) is retried, with what queues meanwhile, until it
        // succeeds: the changes stay in memory and reach the disk, in order, once it has
        // room. Meanwhile `committed.error` refuses new API writes and answers waiters.
        let mut backoff = std::time::Duration::from_millis(100);
        while let Err(e) = write(&mut conn, &group) {
            if committed.borrow().error.is_none() {
                tracing::error!(error = %e, pending = group.len(), "cannot persist cluster objects; API writes are refused until the store can write again");
                committed.send_modify(|c| c.error = Some(e.to_string()));
            }
            if registry.strong_count() == 0 {
                return;
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(std::time::Duration::from_secs(2));
            group.extend(rx.try_iter());
        }
        let Some(registry) = registry.upgrade() else {
            return;
        };
        let last = group.last().map(|e| e.resource_version).unwrap_or(0);
        {
            let mut state = registry.state.lock().unwrap();
            for event in group {
                registry.deliver(&mut state, event);
            }
        }
        committed.send_modify(|c| {
            c.revision = c.revision.max(last);
            if c.error.take().is_some() {
                tracing::info!("the cluster's store persists again; API writes are accepted");
            }
        });
    }
}

fn write<'a>(conn: &mut Connection, events: &'a [Event]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut put = tx.prepare_cached(
            "INSERT INTO objects (api_group, resource, namespace, name, revision, body)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (api_group, resource, namespace, name)
             DO UPDATE SET revision = excluded.revision, body = excluded.body",
        )?;
        let mut delete = tx.prepare_cached(
            "DELETE FROM objects WHERE api_group = ?1 AND resource = ?2 AND namespace = ?3 AND name = ?4",
        )?;
        // A row's end state is its last event in the group: an object that changed
        // several times in one group (a pod deleted gracefully: condition, deletion,
        // terminal status, removal) is written once.
        let key_of = |event: &'a Event| {
            (
                event.resource.group,
                event.resource.plural,
                event.namespace.as_str(),
                super::object_name(&event.object).unwrap_or_default(),
            )
        };
        let mut last = std::collections::HashMap::with_capacity(events.len());
        for (i, event) in events.iter().enumerate() {
            last.insert(key_of(event), i);
        }
        for (i, event) in events.iter().enumerate() {
            let key = key_of(event);
            if last.get(&key) != Some(&i) {
                continue;
            }
            match event.event_type {
                EventType::Added | EventType::Modified => {
                    let body = serde_json::to_string(&*event.object)
                        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
                    put.execute((
                        key.0,
                        key.1,
                        key.2,
                        key.3,
                        event.resource_version as i64,
                        body,
                    ))?;
                }
                EventType::Deleted => {
                    delete.execute(key)?;
                }
            }
        }
        if let Some(last) = events.last() {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('revision', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [last.resource_version as i64],
            )?;
        }
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Instant;

    const PODS: Resource = Resource::new("", "pods");

    fn pod(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": []}})
    }

    /// A full store (here: a database capped at a few pages) refuses nothing already
    /// applied, reports itself failing, keeps retrying, and persists everything in order
    /// once there is room again (here: the big objects deleted before the retry).
    #[test]
    fn a_full_store_retries_until_it_has_room_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.db");
        let (kept, revision) = {
            let registry = open_with(&path, super::super::DEFAULT_HISTORY, |c| {
                c.pragma_update(None, "max_page_count", 64)
            })
            .unwrap();
            let kept = registry.create(PODS, "ns", pod("kept")).unwrap();
            registry.sync().unwrap();
            assert!(registry.persistence_failure().is_none());
            // 64 pages of 4 KiB: a few 100 KB objects do not fit.
            let mut big = pod("big");
            big["metadata"]["annotations"] = json!({"blob": "x".repeat(100_000)});
            for i in 0..4 {
                let mut b = big.clone();
                b["metadata"]["name"] = json!(format!("big-{i}"));
                registry.create(PODS, "ns", b).unwrap();
            }
            let error = registry.sync().unwrap_err();
            assert!(
                error.message.contains("not yet persisted"),
                "{}",
                error.message
            );
            let cause = registry.persistence_failure().expect("failing");
            assert!(cause.contains("full"), "{cause}");
            // Room again: what is left to write fits.
            for i in 0..4 {
                registry.remove(PODS, "ns", &format!("big-{i}")).unwrap();
            }
            let small = registry.create(PODS, "ns", pod("after")).unwrap();
            // The writer's next retry (its back-off) commits it all and clears the failure.
            let revision = registry.revision();
            let mut committed = registry.durable.as_ref().unwrap().committed.subscribe();
            futures::executor::block_on(
                committed.wait_for(|c| c.revision >= revision && c.error.is_none()),
            )
            .unwrap();
            registry.sync().unwrap();
            assert!(registry.persistence_failure().is_none());
            (
                kept,
                small["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        };
        let registry = Registry::open(&path).unwrap();
        assert_eq!(registry.get(PODS, "ns", "kept").unwrap(), kept);
        assert!(registry.get(PODS, "ns", "big-0").is_none());
        assert_eq!(
            registry.get(PODS, "ns", "after").unwrap()["metadata"]["resourceVersion"],
            revision.as_str()
        );
    }

    #[test]
    fn objects_and_revision_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("registry.db");
        let (a, b_rv, after_delete) = {
            let registry = Registry::open(&path).unwrap();
            registry.create(PODS, "ns", pod("a")).unwrap();
            let b = registry.create(PODS, "ns", pod("b")).unwrap();
            registry.create(PODS, "ns", pod("c")).unwrap();
            let a = registry
                .modify(PODS, "ns", "a", |p| {
                    p["status"] = json!({"phase": "Running"});
                    Ok(())
                })
                .unwrap();
            // The newest change is a deletion: the counter must not go back after a reopen.
            registry.remove(PODS, "ns", "c").unwrap();
            registry.sync().unwrap();
            (
                a,
                b["metadata"]["resourceVersion"].clone(),
                registry.revision(),
            )
        };
        let registry = Registry::open(&path).unwrap();
        assert_eq!(registry.get(PODS, "ns", "a").unwrap(), a);
        assert_eq!(
            registry.get(PODS, "ns", "b").unwrap()["metadata"]["resourceVersion"],
            b_rv
        );
        assert!(registry.get(PODS, "ns", "c").is_none());
        assert_eq!(registry.revision(), after_delete);
        let d = registry.create(PODS, "ns", pod("d")).unwrap();
        assert_eq!(
            d["metadata"]["resourceVersion"],
            (after_delete + 1).to_string()
        );
        // History is gone: resuming from before the restart is 410 (the API server then
        // replays the current state); from the loaded revision on it works.
        assert_eq!(registry.watch(PODS, Some(2)).err().unwrap().code, 410);
        assert!(registry.watch(PODS, Some(after_delete)).is_ok());
    }

    #[tokio::test]
    async fn watchers_see_a_change_once_it_is_durable() {
        use futures::StreamExt;
        let dir = tempfile::tempdir().unwrap();
        let registry = Registry::open(&dir.path().join("r.db")).unwrap();
        let mut stream = Box::pin(registry.watch(PODS, None).unwrap());
        let created = registry.create(PODS, "ns", pod("a")).unwrap();
        let event = stream.next().await.unwrap();
        assert_eq!(event.object, created);
        let rv = registry.revision();
        registry.wait_durable(rv).await.unwrap();
    }

    /// Timing of N creates in memory and on disk (`cargo test -p sparkyard-cluster --release
    /// durable::tests::timing -- --ignored --nocapture`).
    #[test]
    #[ignore]
    fn timing() {
        let n = 20_000;
        let memory = Registry::new();
        let t = Instant::now();
        for i in 0..n {
            memory.create(PODS, "ns", pod(&format!("p{i}"))).unwrap();
        }
        let in_memory = t.elapsed();
        let dir = tempfile::tempdir().unwrap();
        let disk = Registry::open(&dir.path().join("r.db")).unwrap();
        let t = Instant::now();
        for i in 0..n {
            disk.create(PODS, "ns", pod(&format!("p{i}"))).unwrap();
        }
        let queued = t.elapsed();
        disk.sync().unwrap();
        let durable = t.elapsed();
        // One client that waits for every write (an API client's worst case).
        let t = Instant::now();
        let m = 300;
        for i in 0..m {
            disk.create(PODS, "one", pod(&format!("p{i}"))).unwrap();
            disk.sync().unwrap();
        }
        let one_by_one = t.elapsed();
        // 16 such clients at once: group commit shares the fsyncs.
        let t = Instant::now();
        std::thread::scope(|s| {
            for c in 0..16 {
                let disk = &disk;
                s.spawn(move || {
                    for i in 0..m {
                        disk.create(PODS, "many", pod(&format!("c{c}-{i}")))
                            .unwrap();
                        disk.sync().unwrap();
                    }
                });
            }
        });
        let sixteen = t.elapsed();
        let rate = |count: usize, d: std::time::Duration| count as f64 / d.as_secs_f64();
        println!(
            "creates/s: in memory {:.0}; persisted, not awaited {:.0}; persisted, all durable {:.0}; \
             one waiting client {:.0}; 16 waiting clients {:.0}",
            rate(n, in_memory),
            rate(n, queued),
            rate(n, durable),
            rate(m, one_by_one),
            rate(16 * m, sixteen)
        );
    }
}
