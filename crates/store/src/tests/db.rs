//! The backend a test body runs on, and raw access to its database (to stage old schemas,
//! triggers and version numbers the store itself would never write).

use std::path::PathBuf;

use rusqlite::Connection;

use crate::testing::TestPostgres;
use crate::{migrations, Store, SCHEMA_VERSION};

enum Backend {
    Sqlite {
        _dir: tempfile::TempDir,
        path: PathBuf,
    },
    Postgres(TestPostgres),
}

pub struct Db {
    pub url: String,
    backend: Backend,
}

impl Db {
    pub fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        Db {
            url: format!("sqlite://{}", path.display()),
            backend: Backend::Sqlite { _dir: dir, path },
        }
    }

    pub fn postgres() -> Db {
        Self::on(TestPostgres::start())
    }

    pub fn on(pg: TestPostgres) -> Db {
        Db {
            url: pg.url().to_string(),
            backend: Backend::Postgres(pg),
        }
    }

    pub fn open(&self) -> Store {
        Store::connect(&self.url).unwrap_or_else(|e| panic!("cannot open {}: {e}", self.url))
    }

    pub fn postgres_server(&mut self) -> &mut TestPostgres {
        match &mut self.backend {
            Backend::Postgres(pg) => pg,
            Backend::Sqlite { .. } => panic!("not a PostgreSQL test"),
        }
    }

    /// Runs `sqlite` or `pg` (several statements allowed) directly on the database.
    pub fn sql(&self, sqlite: &str, pg: &str) {
        match &self.backend {
            Backend::Sqlite { path, .. } => Connection::open(path)
                .unwrap()
                .execute_batch(sqlite)
                .unwrap(),
            Backend::Postgres(_) => {
                let pg = pg.to_string();
                self.with_pg(move |c| c.batch_execute(&pg).unwrap());
            }
        }
    }

    /// The version the migrations recorded.
    pub fn schema_version(&self) -> i64 {
        match &self.backend {
            Backend::Sqlite { path, .. } => {
                migrations::version(&Connection::open(path).unwrap()).unwrap()
            }
            Backend::Postgres(_) => self.with_pg(|c| migrations::pg_version(c).unwrap()),
        }
    }

    pub fn set_schema_version(&self, v: i64) {
        self.sql(
            &format!("PRAGMA user_version = {v};"),
            &format!("UPDATE schema_version SET version = {v};"),
        );
    }

    /// A database as a binary of schema version 1 left it, holding `docs`.
    pub fn create_v1(&self, docs: &[(&str, &str, &str)]) {
        match &self.backend {
            Backend::Sqlite { path, .. } => {
                let mut conn = Connection::open(path).unwrap();
                migrations::migrate_sqlite(&mut conn, "v1", 1).unwrap();
                for (kind, id, body) in docs {
                    conn.execute(
                        "INSERT INTO docs (kind, id, body) VALUES (?1, ?2, ?3)",
                        (kind, id, body),
                    )
                    .unwrap();
                }
            }
            Backend::Postgres(_) => {
                let docs: Vec<[String; 3]> = docs
                    .iter()
                    .map(|(k, i, b)| [k.to_string(), i.to_string(), b.to_string()])
                    .collect();
                self.with_pg(move |c| {
                    migrations::migrate_pg(c, "v1", 1).unwrap();
                    for [kind, id, body] in &docs {
                        c.execute(
                            "INSERT INTO docs (kind, id, body) VALUES ($1, $2, $3)",
                            &[kind, id, body],
                        )
                        .unwrap();
                    }
                });
            }
        }
        assert_eq!(self.schema_version(), 1);
        const { assert!(SCHEMA_VERSION > 1) };
    }

    /// A PostgreSQL client on its own thread: the sync client must not run on the test's
    /// tokio runtime.
    fn with_pg<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut postgres::Client) -> R + Send + 'static,
    ) -> R {
        let url = self.url.clone();
        std::thread::spawn(move || {
            let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            f(&mut client)
        })
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
    }
}
