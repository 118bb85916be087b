//! One suite, two backends: every body below takes a [`Db`] and `both!` runs it as
//! `tests::sqlite::<name>` and `tests::postgres::<name>`. The PostgreSQL half starts a
//! throwaway server per test ([`crate::testing::TestPostgres`]) and fails, never skips,
//! when it cannot.

mod db;
mod kill;

use std::collections::HashSet;

use db::Db;

use super::*;

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Db::sqlite()).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Db::postgres()).await
                }
            )*
        }
    };
}

both!(
    round_trip,
    batch_is_atomic,
    failed_batch_does_not_fail_neighbours,
    survives_reopen,
    concurrent_commits_are_all_durable,
    revisions_are_ordered,
    changes_since_reports_deletes,
    conflict_between_two_handles,
    racing_conditional_commits_one_wins,
    readers_never_see_a_revision_before_its_predecessor,
    empty_database_migrates,
    v1_database_migrates,
    newer_schema_is_refused,
    kill_9_loses_no_acknowledged_write,
);

use kill::kill_9_loses_no_acknowledged_write;

fn put(kind: &str, id: &str, value: impl serde::Serialize) -> Batch {
    let mut b = Batch::new();
    b.put(kind, id, &value).unwrap();
    b
}

fn ids(store: &Store, kind: &str) -> Vec<String> {
    store
        .scan(kind)
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

async fn round_trip(db: Db) {
    let store = db.open();
    let mut b = Batch::new();
    b.put("vc", "b", &serde_json::json!({"n": 2})).unwrap();
    b.put("vc", "a", &serde_json::json!({"n": 1})).unwrap();
    b.put("vc", "B", &serde_json::json!({"n": 0})).unwrap();
    b.put("run", "x", &serde_json::json!({"n": 3})).unwrap();
    store.commit(b).await.unwrap();
    assert_eq!(store.get("vc", "a").unwrap().unwrap(), r#"{"n":1}"#);
    assert_eq!(store.get("vc", "zz").unwrap(), None);
    // Bytewise order on both backends: "B" < "a" < "b".
    assert_eq!(ids(&store, "vc"), ["B", "a", "b"]);
    assert_eq!(
        store.scan_as::<serde_json::Value>("run").unwrap(),
        [serde_json::json!({"n": 3})]
    );
    let mut b = Batch::new();
    b.delete("vc", "a");
    store.commit(b).await.unwrap();
    assert!(store.get("vc", "a").unwrap().is_none());
    assert_eq!(ids(&store, "vc"), ["B", "b"]);
}

/// Makes every insert of kind "bad" fail inside the database.
fn refuse_kind_bad(db: &Db) {
    db.sql(
        "CREATE TRIGGER no_bad BEFORE INSERT ON docs WHEN NEW.kind = 'bad'
         BEGIN SELECT RAISE(ABORT, 'bad kind'); END;",
        "CREATE FUNCTION no_bad() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN IF NEW.kind = 'bad' THEN RAISE EXCEPTION 'bad kind'; END IF; RETURN NEW; END $$;
         CREATE TRIGGER no_bad BEFORE INSERT ON docs FOR EACH ROW EXECUTE FUNCTION no_bad();",
    );
}

async fn batch_is_atomic(db: Db) {
    let store = db.open();
    store.commit(put("good", "0", 0)).await.unwrap();
    refuse_kind_bad(&db);
    let before = store.revision().unwrap();
    let mut b = Batch::new();
    b.put("good", "1", &1).unwrap();
    b.delete("good", "0");
    b.put("bad", "1", &1).unwrap();
    let err = store.commit(b).await.unwrap_err();
    assert!(err.to_string().contains("bad kind"), "{err}");
    // Nothing of the batch happened.
    assert_eq!(store.get("good", "1").unwrap(), None);
    assert_eq!(store.get("good", "0").unwrap().as_deref(), Some("0"));
    assert_eq!(store.revision().unwrap(), before);
    assert!(store.changes_since(before).unwrap().is_empty());
}

async fn failed_batch_does_not_fail_neighbours(db: Db) {
    let store = db.open();
    refuse_kind_bad(&db);
    let a = store.enqueue(put("good", "1", 1)).unwrap();
    let b = store.enqueue(put("bad", "1", 1)).unwrap();
    let c = store.enqueue(put("good", "2", 2)).unwrap();
    assert!(a.await.unwrap().is_ok());
    assert!(b.await.unwrap().is_err());
    assert!(c.await.unwrap().is_ok());
    assert_eq!(ids(&store, "good"), ["1", "2"]);
    assert_eq!(store.get("bad", "1").unwrap(), None);
    assert_eq!(store.revision().unwrap(), 2);
}

async fn survives_reopen(db: Db) {
    {
        let store = db.open();
        store.commit(put("k", "1", "one")).await.unwrap();
        let mut b = Batch::new();
        b.put("k", "2", &"two").unwrap().delete("k", "1");
        store.commit(b).await.unwrap();
    }
    let store = db.open();
    assert_eq!(store.scan_as::<String>("k").unwrap(), ["two"]);
    assert_eq!(store.revision().unwrap(), 3);
    let changes = store.changes_since(0).unwrap();
    assert_eq!(
        changes
            .iter()
            .map(|c| (c.revision, c.id.as_str(), c.body.as_deref()))
            .collect::<Vec<_>>(),
        [(2, "2", Some("\"two\"")), (3, "1", None)]
    );
}

async fn concurrent_commits_are_all_durable(db: Db) {
    let store = db.open();
    let mut tasks = Vec::new();
    for i in 0..500 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.commit(put("k", &format!("{i:04}"), i)).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    drop(store);
    let store = db.open();
    assert_eq!(store.scan("k").unwrap().len(), 500);
    let revs: Vec<Revision> = store
        .changes_since(0)
        .unwrap()
        .iter()
        .map(|c| c.revision)
        .collect();
    assert_eq!(revs, (1..=500).collect::<Vec<_>>());
    assert_eq!(store.revision().unwrap(), 500);
}

async fn revisions_are_ordered(db: Db) {
    let store = db.open();
    assert_eq!(store.revision().unwrap(), 0);
    // Each operation takes the next revision; a conditional commit says where it ended.
    let mut b = Batch::new();
    b.put("k", "a", &1).unwrap().put("k", "b", &1).unwrap();
    b.put("k", "c", &1).unwrap();
    assert_eq!(store.commit_if_unchanged(0, b).await.unwrap(), 3);
    assert_eq!(store.revision().unwrap(), 3);
    // Rewriting "a" moves it to the newest revision.
    store.commit(put("k", "a", 2)).await.unwrap();
    assert_eq!(store.revision().unwrap(), 4);
    let order: Vec<(Revision, String)> = store
        .changes_since(0)
        .unwrap()
        .into_iter()
        .map(|c| (c.revision, c.id))
        .collect();
    assert_eq!(order, [(2, "b".into()), (3, "c".into()), (4, "a".into())]);
    // Deleting what is absent changes nothing and takes no revision.
    let mut b = Batch::new();
    b.delete("k", "nope");
    assert_eq!(store.commit_if_unchanged(4, b).await.unwrap(), 4);
    // An empty conditional commit only checks.
    assert_eq!(store.commit_if_unchanged(4, Batch::new()).await.unwrap(), 4);
    assert!(matches!(
        store.commit_if_unchanged(3, Batch::new()).await,
        Err(StoreError::Conflict {
            expected: 3,
            current: 4
        })
    ));
}

async fn changes_since_reports_deletes(db: Db) {
    let store = db.open();
    let mut b = Batch::new();
    b.put("t", "a", &"A").unwrap().put("t", "b", &"B").unwrap();
    store.commit(b).await.unwrap();
    let seen = store.revision().unwrap();
    let mut b = Batch::new();
    b.delete("t", "a");
    b.put("t", "c", &"C").unwrap();
    store.commit(b).await.unwrap();
    let changes = store.changes_since(seen).unwrap();
    assert_eq!(
        changes,
        [
            Change {
                revision: 3,
                kind: "t".into(),
                id: "a".into(),
                body: None
            },
            Change {
                revision: 4,
                kind: "t".into(),
                id: "c".into(),
                body: Some("\"C\"".into())
            },
        ]
    );
    // The tombstone is not a document.
    assert_eq!(store.get("t", "a").unwrap(), None);
    assert_eq!(ids(&store, "t"), ["b", "c"]);
    // A replica that saw nothing learns the delete too; one that saw everything, nothing.
    assert!(store
        .changes_since(0)
        .unwrap()
        .iter()
        .any(|c| c.id == "a" && c.body.is_none()));
    assert!(store.changes_since(4).unwrap().is_empty());
    // Putting it back revives it at a new revision.
    store.commit(put("t", "a", "again")).await.unwrap();
    assert_eq!(store.get("t", "a").unwrap().as_deref(), Some("\"again\""));
    let last = store.changes_since(4).unwrap();
    assert_eq!(last.len(), 1);
    assert_eq!((last[0].revision, last[0].id.as_str()), (5, "a"));
}

/// Two handles on one database stand for two processes (replicas): each sees the other's
/// writes, and a conditional commit based on a stale revision is refused.
async fn conflict_between_two_handles(db: Db) {
    let a = db.open();
    let b = db.open();
    a.commit(put("vc", "1", "first")).await.unwrap();
    let seen_by_a = a.revision().unwrap();
    assert_eq!(b.revision().unwrap(), seen_by_a);
    b.commit(put("vc", "2", "by b")).await.unwrap();
    let err = a
        .commit_if_unchanged(seen_by_a, put("vc", "3", "by a"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { expected, current } if expected == seen_by_a && current == seen_by_a + 1),
        "{err:?}"
    );
    // The refused write left nothing behind, seen from either handle.
    assert_eq!(a.get("vc", "3").unwrap(), None);
    assert_eq!(b.get("vc", "3").unwrap(), None);
    assert_eq!(b.revision().unwrap(), seen_by_a + 1);
    // Caught up, it goes through.
    let now = a.revision().unwrap();
    assert_eq!(
        a.commit_if_unchanged(now, put("vc", "3", "by a"))
            .await
            .unwrap(),
        now + 1
    );
    assert_eq!(b.get("vc", "3").unwrap().as_deref(), Some("\"by a\""));
}

async fn racing_conditional_commits_one_wins(db: Db) {
    let a = db.open();
    let b = db.open();
    for round in 0..20 {
        let rev = a.revision().unwrap();
        let (ra, rb) = tokio::join!(
            a.commit_if_unchanged(rev, put("race", &format!("{round}"), "a")),
            b.commit_if_unchanged(rev, put("race", &format!("{round}"), "b")),
        );
        let (winner, loser) = match (ra, rb) {
            (Ok(w), Err(l)) => (w, l),
            (Err(l), Ok(w)) => (w, l),
            other => panic!("round {round}: exactly one must win, got {other:?}"),
        };
        assert_eq!(winner, rev + 1);
        assert!(
            matches!(loser, StoreError::Conflict { expected, current } if expected == rev && current == rev + 1),
            "{loser:?}"
        );
    }
    assert_eq!(a.revision().unwrap(), 20);
    assert_eq!(b.scan("race").unwrap().len(), 20);
}

/// Two writers (two connections) commit distinct documents as fast as they can while a
/// third handle polls `changes_since`: every revision it sees must directly follow the
/// last one, or a reader could have seen N+1 before N and skipped N for good.
async fn readers_never_see_a_revision_before_its_predecessor(db: Db) {
    const PER_WRITER: usize = 150;
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let store = db.open();
            tokio::spawn(async move {
                let mut acks = Vec::new();
                for i in 0..PER_WRITER {
                    acks.push(store.enqueue(put("w", &format!("{w}-{i:04}"), i)).unwrap());
                }
                for ack in acks {
                    ack.await.unwrap().unwrap();
                }
            })
        })
        .collect();
    let reader = db.open();
    let mut seen: Revision = 0;
    let mut ids = HashSet::new();
    loop {
        let done = writers.iter().all(|w| w.is_finished());
        let changes = reader.changes_since(seen).unwrap();
        for c in &changes {
            assert_eq!(
                c.revision,
                seen + 1,
                "revision {} seen right after {seen}",
                c.revision
            );
            seen = c.revision;
            assert!(ids.insert(c.id.clone()), "{} seen twice", c.id);
        }
        if done && changes.is_empty() {
            break;
        }
        tokio::task::yield_now().await;
    }
    for w in writers {
        w.await.unwrap();
    }
    assert_eq!(seen as usize, 2 * PER_WRITER);
    assert_eq!(ids.len(), 2 * PER_WRITER);
}

async fn empty_database_migrates(db: Db) {
    db.sql(
        "CREATE TABLE unrelated (x INTEGER);",
        "CREATE TABLE unrelated (x integer);",
    );
    let store = db.open();
    assert_eq!(db.schema_version(), SCHEMA_VERSION);
    assert_eq!(store.revision().unwrap(), 0);
    assert!(store.changes_since(0).unwrap().is_empty());
    drop(store);
    // Opening again is a no-op.
    db.open();
    assert_eq!(db.schema_version(), SCHEMA_VERSION);
}

async fn v1_database_migrates(db: Db) {
    db.create_v1(&[("vc", "b", "2"), ("vc", "a", "1"), ("run", "x", "3")]);
    let store = db.open();
    assert_eq!(db.schema_version(), SCHEMA_VERSION);
    assert_eq!(ids(&store, "vc"), ["a", "b"]);
    assert_eq!(store.get("run", "x").unwrap().as_deref(), Some("3"));
    // The old documents were numbered 1..=3; new writes continue from there.
    assert_eq!(store.revision().unwrap(), 3);
    let mut revs: Vec<Revision> = store
        .changes_since(0)
        .unwrap()
        .iter()
        .map(|c| c.revision)
        .collect();
    revs.sort();
    assert_eq!(revs, [1, 2, 3]);
    store.commit(put("vc", "c", 4)).await.unwrap();
    assert_eq!(store.revision().unwrap(), 4);
    let mut b = Batch::new();
    b.delete("vc", "a");
    store.commit(b).await.unwrap();
    assert_eq!(store.changes_since(4).unwrap()[0].body, None);
}

async fn newer_schema_is_refused(db: Db) {
    drop(db.open());
    db.set_schema_version(SCHEMA_VERSION + 1);
    match Store::connect(&db.url) {
        Err(StoreError::TooNew {
            found, supported, ..
        }) => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("expected TooNew, got {other:?}"),
    }
    // Refused means untouched.
    assert_eq!(db.schema_version(), SCHEMA_VERSION + 1);
}

#[tokio::test]
async fn sqlite_pragmas_are_durable() {
    let db = Db::sqlite();
    let store = db.open();
    let Reader::Sqlite(reader) = &store.inner.reader else {
        panic!("a SQLite store")
    };
    let reader = reader.lock().unwrap();
    let mode: String = reader
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let sync: i64 = reader
        .pragma_query_value(None, "synchronous", |r| r.get(0))
        .unwrap();
    assert_eq!(sync, 2, "synchronous=FULL");
}

#[tokio::test]
async fn sqlite_plain_path_is_today_s_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sparkyard.db");
    let store = Store::connect(path.to_str().unwrap()).unwrap();
    store.commit(put("k", "1", 1)).await.unwrap();
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.get("k", "1").unwrap().as_deref(), Some("1"));
}

/// The same database over the private cluster's unix socket (`?host=/dir`) and over TCP.
#[tokio::test]
async fn postgres_socket_and_tcp_urls_reach_one_database() {
    let pg = crate::testing::TestPostgres::private();
    let tcp = Store::connect(pg.url()).unwrap();
    let socket = Store::connect(&pg.socket_url().unwrap()).unwrap();
    tcp.commit(put("k", "1", "over tcp")).await.unwrap();
    assert_eq!(
        socket.get("k", "1").unwrap().as_deref(),
        Some("\"over tcp\"")
    );
}

/// The database server crashes (immediate stop: recovery replays the WAL) and comes back,
/// as a failover looks to a client: everything acknowledged before is there, and the store
/// reconnects by itself. At most the first write after the crash may fail (its connection
/// died under it; it was never acknowledged).
#[tokio::test]
async fn postgres_crash_loses_no_acknowledged_write() {
    let mut db = Db::on(crate::testing::TestPostgres::private());
    let store = db.open();
    for i in 0..50 {
        store.commit(put("k", &format!("{i:02}"), i)).await.unwrap();
    }
    db.postgres_server().crash_and_restart();
    let mut failures = Vec::new();
    while let Err(e) = store.commit(put("k", "after", "crash")).await {
        failures.push(e.to_string());
        assert!(
            failures.len() < 2,
            "the store did not reconnect: {failures:?}"
        );
    }
    assert_eq!(store.scan("k").unwrap().len(), 51);
    assert_eq!(store.revision().unwrap(), 51);
    drop(store);
    let fresh = db.open();
    assert_eq!(fresh.get("k", "49").unwrap().as_deref(), Some("49"));
}
