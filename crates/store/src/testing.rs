//! A throwaway PostgreSQL for tests: this crate's suite and any test that wants a store
//! URL (`sparkyard serve --store-url`).
//!
//! [`TestPostgres::start`] uses the server `SPARKYARD_TEST_POSTGRES_URL` names when set
//! (a fresh database is created there for each test and dropped after; the URL's user needs
//! `CREATEDB`), otherwise it starts a private cluster from Debian's `postgresql` package:
//! `initdb` in a temporary directory, `pg_ctl start` with `fsync=on`, a unix socket in that
//! directory and a free TCP port on 127.0.0.1. PostgreSQL refuses to run as root, so when
//! the tests run as root the server runs as the `postgres` user (which the package creates)
//! through `runuser`. When PostgreSQL cannot be started the test panics saying why — the
//! PostgreSQL half of a suite never passes by skipping.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

/// The environment variable naming an existing server to use instead of a private one.
pub const URL_ENV: &str = "SPARKYARD_TEST_POSTGRES_URL";
/// A directory holding `initdb` and `pg_ctl`, if not Debian's `/usr/lib/postgresql/*/bin`.
pub const BIN_ENV: &str = "SPARKYARD_TEST_POSTGRES_BIN";

const USER: &str = "sparkyard";

/// A PostgreSQL database that lives as long as this value.
pub struct TestPostgres {
    url: String,
    owned: Owned,
}

enum Owned {
    /// A database created on the server `SPARKYARD_TEST_POSTGRES_URL` names.
    Database {
        admin_url: String,
        name: String,
    },
    Cluster(Cluster),
}

struct Cluster {
    bin: PathBuf,
    /// Holds `data/`, the log and the unix socket.
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

impl TestPostgres {
    /// A fresh, empty database: on `SPARKYARD_TEST_POSTGRES_URL`'s server if set, else on a
    /// private cluster.
    pub fn start() -> TestPostgres {
        match std::env::var(URL_ENV) {
            Ok(url) if !url.is_empty() => Self::on_server(url),
            _ => Self::private(),
        }
    }

    /// Always a private cluster, for tests that stop and restart the server.
    pub fn private() -> TestPostgres {
        let cluster = Cluster::start();
        TestPostgres {
            url: cluster.url(),
            owned: Owned::Cluster(cluster),
        }
    }

    /// `postgres://…` of the database (TCP for a private cluster).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The same database through the private cluster's unix socket (`?host=/dir`).
    pub fn socket_url(&self) -> Option<String> {
        match &self.owned {
            Owned::Cluster(c) => Some(format!(
                "postgresql://{USER}@/postgres?host={}&port={}",
                c.dir.display(),
                c.port
            )),
            Owned::Database { .. } => None,
        }
    }

    /// Crashes the private cluster (`pg_ctl stop -m immediate`: no checkpoint, recovery
    /// replays the WAL) and starts it again on the same port, as a failover would look to
    /// a client.
    pub fn crash_and_restart(&mut self) {
        match &mut self.owned {
            Owned::Cluster(c) => {
                c.stop();
                c.run_pg_ctl_start()
                    .unwrap_or_else(|e| panic!("PostgreSQL did not start again: {e}"));
            }
            Owned::Database { .. } => {
                panic!("crash_and_restart needs a private cluster (TestPostgres::private)")
            }
        }
    }

    fn on_server(admin_url: String) -> TestPostgres {
        let name = unique("sparkyard_test");
        let url = with_database(&admin_url, &name);
        let sql = format!("CREATE DATABASE {name}");
        admin(&admin_url, &sql)
            .unwrap_or_else(|e| panic!("{URL_ENV} is set, but `{sql}` failed there: {e}"));
        TestPostgres {
            url,
            owned: Owned::Database { admin_url, name },
        }
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        match &self.owned {
            // Cluster's own Drop stops it.
            Owned::Cluster(_) => {}
            Owned::Database { admin_url, name } => {
                let _ = admin(
                    admin_url,
                    &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
                );
            }
        }
    }
}

/// Runs one statement with a client on its own thread (the sync client must not run on the
/// calling test's tokio runtime).
fn admin(url: &str, sql: &str) -> Result<(), String> {
    let (url, sql) = (url.to_string(), sql.to_string());
    std::thread::spawn(move || -> Result<(), String> {
        let mut client = postgres::Client::connect(&url, postgres::NoTls)
            .map_err(|e| format!("cannot connect: {e}"))?;
        client.batch_execute(&sql).map_err(|e| e.to_string())
    })
    .join()
    .unwrap_or_else(|_| Err("the admin thread panicked".into()))
}

/// `url` with its database replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let query = tail.find('?').map_or("", |q| &tail[q..]);
    format!("{scheme}://{authority}/{name}{query}")
}

impl Cluster {
    fn start() -> Cluster {
        let bin = find_bin();
        let as_postgres = is_root();
        // Under /tmp rather than $TMPDIR when root: the postgres user must reach it.
        let base = if as_postgres {
            PathBuf::from("/tmp")
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(unique("sparkyard-pg"));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let mut cluster = Cluster {
            bin,
            dir,
            port: 0,
            as_postgres,
        };
        if as_postgres {
            let out = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&cluster.dir)
                .output();
            check(out, "chown postgres:postgres (running as root: PostgreSQL runs as the postgres user, which Debian's postgresql package creates)");
        }
        let data = cluster.dir.join("data");
        let out = cluster
            .command("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-U", USER, "--auth=trust", "-E", "UTF8", "--locale=C"])
            // Only initdb's own writes skip fsync; the server runs with fsync=on.
            .arg("--no-sync")
            .output();
        check(
            out,
            &format!(
                "{} (the PostgreSQL tests need Debian's postgresql package: scripts/setup.sh installs it; or set {URL_ENV})",
                cluster.bin.join("initdb").display()
            ),
        );
        // A port picked free can be taken before the server binds it: try a few.
        let mut last = String::new();
        for _ in 0..5 {
            cluster.port = free_port();
            match cluster.run_pg_ctl_start() {
                Ok(()) => return cluster,
                Err(e) => last = e,
            }
        }
        panic!("PostgreSQL did not start: {last}");
    }

    fn url(&self) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/postgres", self.port)
    }

    fn command(&self, tool: &str) -> Command {
        let exe = self.bin.join(tool);
        let mut c = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(exe);
            c
        } else {
            Command::new(exe)
        };
        // The postgres user may not be allowed into the caller's working directory.
        c.current_dir(&self.dir);
        c
    }

    fn run_pg_ctl_start(&self) -> Result<(), String> {
        let log = self.dir.join("postgres.log");
        // Durable as a real server (fsync, synchronous_commit), small (a suite starts one
        // per test, in parallel).
        let options = format!(
            "-c fsync=on -c synchronous_commit=on -c full_page_writes=on \
             -c shared_buffers=16MB -c max_connections=30 \
             -c listen_addresses=127.0.0.1 -p {} -k {}",
            self.port,
            self.dir.display()
        );
        let out = self
            .command("pg_ctl")
            .arg("start")
            .arg("-w")
            // Wait as long as a loaded CI machine needs; a start that fails says so sooner.
            .args(["-t", "600"])
            .arg("-D")
            .arg(self.dir.join("data"))
            .arg("-l")
            .arg(&log)
            .arg("-o")
            .arg(options)
            .output();
        match out {
            Ok(o) if o.status.success() => Ok(()),
            Ok(o) => Err(format!(
                "pg_ctl start failed ({}): {}{}\n--- {}:\n{}",
                o.status,
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr),
                log.display(),
                std::fs::read_to_string(&log).unwrap_or_default()
            )),
            Err(e) => Err(format!("cannot run pg_ctl: {e}")),
        }
    }

    fn stop(&self) {
        let _ = self
            .command("pg_ctl")
            .args(["stop", "-w", "-m", "immediate", "-D"])
            .arg(self.dir.join("data"))
            .output();
    }
}

/// Also when a start failed half-way (the directory must not outlive the panic).
impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn check(out: std::io::Result<Output>, what: &str) {
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => panic!(
            "{what} failed ({}): {}{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("cannot run {what}: {e}"),
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// `$SPARKYARD_TEST_POSTGRES_BIN`, else the newest `/usr/lib/postgresql/<v>/bin` (Debian
/// keeps the server's tools off `PATH`), else `initdb` on `PATH`.
fn find_bin() -> PathBuf {
    if let Some(dir) = std::env::var_os(BIN_ENV).filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    if let Some(dir) = std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).find(|d| Path::new(d).join("initdb").exists()))
    {
        return dir;
    }
    panic!(
        "the PostgreSQL tests need a server: install Debian's postgresql package (scripts/setup.sh does), \
         set {BIN_ENV} to a directory holding initdb and pg_ctl, or set {URL_ENV}=postgres://user@host:port/db \
         to a server where that user may CREATE DATABASE"
    );
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_is_replaced_in_a_url() {
        assert_eq!(
            super::with_database("postgres://u:p@h:5/admin?sslmode=disable", "t1"),
            "postgres://u:p@h:5/t1?sslmode=disable"
        );
        assert_eq!(
            super::with_database("postgres://u@h", "t1"),
            "postgres://u@h/t1"
        );
    }
}
