//! The PostgreSQL backend: a writer thread and a reader thread, each with its own
//! connection (the sync `postgres` client may not run on a caller's tokio runtime, so
//! callers hand work to these threads and block on the answer, as a SQLite read blocks).
//! A connection found closed is made again before the next use: a database restart or a
//! failover costs the requests in flight at that moment, never later ones.

use std::sync::{mpsc, Mutex};

use postgres::{Client, NoTls, Statement};

use crate::location::PgTarget;
use crate::migrations::{self, PG_LOCK, SCHEMA_VERSION};
use crate::writer::{self, Entry, Target};
use crate::{Change, Op, Revision, StoreError};

/// A connection that reconnects when the server went away.
struct Conn {
    target: PgTarget,
    client: Option<Client>,
}

impl Conn {
    fn new(target: &PgTarget) -> Result<Conn, StoreError> {
        let mut conn = Conn {
            target: target.clone(),
            client: None,
        };
        conn.client()?;
        Ok(conn)
    }

    fn client(&mut self) -> Result<&mut Client, StoreError> {
        if self.client.as_ref().is_some_and(Client::is_closed) {
            tracing::warn!(store = %self.target, "the PostgreSQL connection closed; reconnecting");
            self.client = None;
        }
        if self.client.is_none() {
            self.client = Some(self.target.config.connect(NoTls)?);
        }
        Ok(self.client.as_mut().expect("connected above"))
    }
}

/// Connects, migrates and starts the writer thread.
pub(crate) fn open_writer(target: &PgTarget) -> Result<mpsc::Sender<writer::Request>, StoreError> {
    let target = target.clone();
    writer::spawn(move || {
        let mut conn = Conn::new(&target)?;
        migrations::migrate_pg(conn.client()?, &target.to_string(), SCHEMA_VERSION)?;
        Ok(Writer {
            conn,
            statements: None,
        })
    })
}

struct Writer {
    conn: Conn,
    /// Prepared on the current connection; dropped with it.
    statements: Option<Statements>,
}

struct Statements {
    put: Statement,
    delete: Statement,
}

impl Target for Writer {
    fn apply(
        &mut self,
        group: &[Entry<'_>],
    ) -> Result<Vec<Result<Revision, StoreError>>, StoreError> {
        let reconnected = self.conn.client.as_ref().is_none_or(Client::is_closed);
        let client = self.conn.client()?;
        if reconnected || self.statements.is_none() {
            self.statements = Some(Statements {
                put: client.prepare(
                    "INSERT INTO docs (kind, id, body, revision, updated_at)
                     VALUES ($1, $2, $3, $4, now())
                     ON CONFLICT (kind, id) DO UPDATE SET body = EXCLUDED.body,
                         revision = EXCLUDED.revision, updated_at = EXCLUDED.updated_at",
                )?,
                delete: client.prepare(
                    "UPDATE docs SET body = NULL, revision = $3, updated_at = now()
                     WHERE kind = $1 AND id = $2 AND body IS NOT NULL",
                )?,
            });
        }
        let st = self.statements.as_ref().expect("prepared above");
        let mut tx = client.transaction()?;
        // Every writer (every replica) takes this lock first, so transactions commit in
        // revision order: no reader can see revision N+1 before N.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PG_LOCK])?;
        let start: Revision = tx
            .query_one("SELECT value FROM meta WHERE key = 'revision'", &[])?
            .get(0);
        let (end, results) = writer::assign(start, group, |op, rev| {
            Ok(match op {
                Op::Put { kind, id, body } => tx.execute(&st.put, &[kind, id, body, &rev])? > 0,
                Op::Delete { kind, id } => tx.execute(&st.delete, &[kind, id, &rev])? > 0,
            })
        })?;
        if end != start {
            tx.execute("UPDATE meta SET value = $1 WHERE key = 'revision'", &[&end])?;
        }
        // Acknowledgement = COMMIT returned (durable as `synchronous_commit` promises).
        tx.commit()?;
        Ok(results)
    }
}

type Job = Box<dyn FnOnce(&mut Conn) + Send>;

fn run<R>(
    conn: &mut Conn,
    read: &impl Fn(&mut Client) -> Result<R, postgres::Error>,
) -> Result<R, StoreError> {
    Ok(read(conn.client()?)?)
}

/// The reader thread's queue. Each read is one statement, so it sees one consistent
/// snapshot of the database.
pub(crate) struct Reader {
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl Reader {
    pub(crate) fn start(target: &PgTarget) -> Result<Reader, StoreError> {
        let (tx, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let target = target.clone();
        std::thread::Builder::new()
            .name("store-reader".into())
            .spawn(move || match Conn::new(&target) {
                Ok(mut conn) => {
                    let _ = ready_tx.send(Ok(()));
                    while let Ok(job) = rx.recv() {
                        job(&mut conn);
                    }
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .map_err(|e| StoreError::Write(format!("cannot start the reader thread: {e}")))?;
        ready_rx.recv().map_err(|_| StoreError::ReaderGone)??;
        Ok(Reader {
            jobs: Mutex::new(tx),
        })
    }

    /// Runs `read` on the reader thread. A read that failed because the connection broke
    /// is tried once more on a new one: reads change nothing, so that is always safe.
    fn call<R: Send + 'static>(
        &self,
        read: impl Fn(&mut Client) -> Result<R, postgres::Error> + Send + 'static,
    ) -> Result<R, StoreError> {
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |conn: &mut Conn| {
            let result = match run(conn, &read) {
                Err(StoreError::Postgres(e)) if e.as_db_error().is_none() => {
                    tracing::warn!(error = %e, "a PostgreSQL read failed; retrying on a new connection");
                    conn.client = None;
                    run(conn, &read)
                }
                other => other,
            };
            let _ = tx.send(result);
        });
        self.jobs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(job)
            .map_err(|_| StoreError::ReaderGone)?;
        rx.recv().map_err(|_| StoreError::ReaderGone)?
    }

    pub(crate) fn scan(&self, kind: &str) -> Result<Vec<(String, String)>, StoreError> {
        let kind = kind.to_string();
        self.call(move |c| {
            let rows = c.query(
                "SELECT id, body FROM docs WHERE kind = $1 AND body IS NOT NULL ORDER BY id",
                &[&kind],
            )?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    pub(crate) fn get(&self, kind: &str, id: &str) -> Result<Option<String>, StoreError> {
        let (kind, id) = (kind.to_string(), id.to_string());
        self.call(move |c| {
            let row = c.query_opt(
                "SELECT body FROM docs WHERE kind = $1 AND id = $2",
                &[&kind, &id],
            )?;
            Ok(row.and_then(|r| r.get::<_, Option<String>>(0)))
        })
    }

    pub(crate) fn revision(&self) -> Result<Revision, StoreError> {
        self.call(|c| {
            let row = c.query_opt("SELECT value FROM meta WHERE key = 'revision'", &[])?;
            Ok(row.map_or(0, |r| r.get(0)))
        })
    }

    pub(crate) fn changes_since(&self, since: Revision) -> Result<Vec<Change>, StoreError> {
        self.call(move |c| {
            let rows = c.query(
                "SELECT revision, kind, id, body FROM docs WHERE revision > $1 ORDER BY revision",
                &[&since],
            )?;
            Ok(rows
                .iter()
                .map(|r| Change {
                    revision: r.get(0),
                    kind: r.get(1),
                    id: r.get(2),
                    body: r.get(3),
                })
                .collect())
        })
    }
}
