use super::*;

fn temp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    (dir, path)
}

#[tokio::test]
async fn put_get_scan_delete() {
    let (_d, path) = temp();
    let store = Store::open(&path).unwrap();
    let mut b = Batch::new();
    b.put("vc", "b", &serde_json::json!({"n": 2})).unwrap();
    b.put("vc", "a", &serde_json::json!({"n": 1})).unwrap();
    b.put("run", "x", &serde_json::json!({"n": 3})).unwrap();
    store.commit(b).await.unwrap();
    assert_eq!(store.get("vc", "a").unwrap().unwrap(), r#"{"n":1}"#);
    let ids: Vec<_> = store
        .scan("vc")
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids, ["a", "b"]);
    let mut b = Batch::new();
    b.delete("vc", "a");
    store.commit(b).await.unwrap();
    assert!(store.get("vc", "a").unwrap().is_none());
}

#[tokio::test]
async fn survives_reopen() {
    let (_d, path) = temp();
    {
        let store = Store::open(&path).unwrap();
        let mut b = Batch::new();
        b.put("k", "1", &"one").unwrap();
        store.commit(b).await.unwrap();
    }
    let store = Store::open(&path).unwrap();
    assert_eq!(store.scan_as::<String>("k").unwrap(), ["one"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commits_are_all_durable() {
    let (_d, path) = temp();
    let store = Store::open(&path).unwrap();
    let mut tasks = Vec::new();
    for i in 0..500 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut b = Batch::new();
            b.put("k", &format!("{i:04}"), &i).unwrap();
            s.commit(b).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(store.scan("k").unwrap().len(), 500);
}

#[test]
fn pragmas_are_durable() {
    let (_d, path) = temp();
    let _store = Store::open(&path).unwrap();
    let conn = Connection::open(&path).unwrap();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let reader = _store.inner.reader.lock().unwrap();
    let sync: i64 = reader
        .pragma_query_value(None, "synchronous", |r| r.get(0))
        .unwrap();
    assert_eq!(sync, 2, "synchronous=FULL");
}

#[test]
fn v0_database_migrates() {
    let (_d, path) = temp();
    {
        // A v0 database: a file SQLite created but that has no schema yet.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE unrelated (x INTEGER);")
            .unwrap();
        assert_eq!(migrations::version(&conn).unwrap(), 0);
    }
    let _store = Store::open(&path).unwrap();
    let conn = Connection::open(&path).unwrap();
    assert_eq!(migrations::version(&conn).unwrap(), SCHEMA_VERSION);
    let n: i64 = conn
        .query_row("SELECT count(*) FROM docs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
    // Opening again is a no-op.
    drop(_store);
    Store::open(&path).unwrap();
}

#[test]
fn newer_schema_is_refused() {
    let (_d, path) = temp();
    {
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
    }
    assert!(matches!(Store::open(&path), Err(StoreError::TooNew { .. })));
}

#[tokio::test]
async fn failed_batch_does_not_fail_neighbours() {
    let (_d, path) = temp();
    let store = Store::open(&path).unwrap();
    {
        // Make every write to kind "bad" fail with a trigger, to exercise the retry path.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TRIGGER no_bad BEFORE INSERT ON docs WHEN NEW.kind = 'bad'
             BEGIN SELECT RAISE(ABORT, 'bad kind'); END;",
        )
        .unwrap();
    }
    let mut good = Batch::new();
    good.put("good", "1", &1).unwrap();
    let mut bad = Batch::new();
    bad.put("bad", "1", &1).unwrap();
    let a = store.enqueue(good).unwrap();
    let b = store.enqueue(bad).unwrap();
    assert!(a.await.unwrap().is_ok());
    assert!(b.await.unwrap().is_err());
    assert!(store.get("good", "1").unwrap().is_some());
}
