//! Which database a store URL names.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use postgres::config::{Host, SslMode};

use crate::StoreError;

/// A store's database: a SQLite file or a PostgreSQL database.
#[derive(Clone)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres(PgTarget),
}

/// A parsed PostgreSQL URL; shown without its password.
#[derive(Clone)]
pub struct PgTarget {
    /// Boxed: the parsed configuration is ten times the size of a path.
    pub(crate) config: Box<postgres::Config>,
}

/// Without a bound, a connection to an unreachable host waits for TCP's own timeout
/// (minutes) before `serve` can say what is wrong.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl Location {
    /// `sqlite:///abs/path` or a plain path (SQLite); `postgres://…` or `postgresql://…`.
    pub fn parse(url: &str) -> Result<Location, StoreError> {
        let bad = |reason: &str| StoreError::Url {
            url: redact(url),
            reason: reason.into(),
        };
        let Some((scheme, rest)) = url.split_once("://") else {
            if url.is_empty() {
                return Err(bad("empty"));
            }
            return Ok(Location::Sqlite(PathBuf::from(url)));
        };
        match scheme {
            "sqlite" => {
                if !rest.starts_with('/') || rest.len() < 2 {
                    return Err(bad(
                        "a SQLite URL names an absolute path: sqlite:///var/lib/sparkyard/sparkyard.db",
                    ));
                }
                Ok(Location::Sqlite(PathBuf::from(rest)))
            }
            "postgres" | "postgresql" => {
                let mut config =
                    postgres::Config::from_str(url).map_err(|e| bad(&e.to_string()))?;
                // `prefer` (the default) falls back to plain text; anything stricter would
                // need TLS, which the store does not speak yet.
                if !matches!(config.get_ssl_mode(), SslMode::Disable | SslMode::Prefer) {
                    return Err(bad("sslmode=require: TLS connections to PostgreSQL are not supported yet; use sslmode=disable or prefer (no TLS) over a private network, a unix socket or a TLS-terminating proxy"));
                }
                if config.get_connect_timeout().is_none() {
                    config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
                }
                if config.get_application_name().is_none() {
                    config.application_name("sparkyard");
                }
                Ok(Location::Postgres(PgTarget {
                    config: Box::new(config),
                }))
            }
            other => Err(bad(&format!(
                "unknown scheme {other:?}: use sqlite:///path/to/sparkyard.db or postgres://user:password@host:port/database"
            ))),
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Sqlite(path) => write!(f, "{}", path.display()),
            Location::Postgres(t) => write!(f, "{t}"),
        }
    }
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

impl std::fmt::Display for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let c = &self.config;
        write!(f, "postgres://{}@", c.get_user().unwrap_or(""))?;
        let ports = c.get_ports();
        for (i, host) in c.get_hosts().iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            match host {
                Host::Tcp(name) => f.write_str(name)?,
                Host::Unix(dir) => write!(f, "[{}]", dir.display())?,
            }
            if let Some(port) = ports.get(i).or(ports.first()) {
                write!(f, ":{port}")?;
            }
        }
        write!(f, "/{}", c.get_dbname().unwrap_or(""))
    }
}

/// The URL with any password replaced, for error messages.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.into();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{tail}"),
            None => url.into(),
        },
        None => url.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_backend() {
        assert!(matches!(
            Location::parse("/var/lib/s.db").unwrap(),
            Location::Sqlite(p) if p == std::path::Path::new("/var/lib/s.db")
        ));
        assert!(matches!(
            Location::parse("sqlite:///var/lib/s.db").unwrap(),
            Location::Sqlite(p) if p == std::path::Path::new("/var/lib/s.db")
        ));
        let pg = Location::parse("postgres://sy:secret@db.internal:5433/sparkyard").unwrap();
        assert_eq!(pg.to_string(), "postgres://sy@db.internal:5433/sparkyard");
        let failover = Location::parse(
            "postgres://sy:pw@db1:5432,db2:5433/sparkyard?target_session_attrs=read-write",
        )
        .unwrap();
        assert_eq!(
            failover.to_string(),
            "postgres://sy@db1:5432,db2:5433/sparkyard"
        );
        let sock = Location::parse("postgresql://sy@/sparkyard?host=/run/postgresql").unwrap();
        assert_eq!(
            sock.to_string(),
            "postgres://sy@[/run/postgresql]/sparkyard"
        );
    }

    #[test]
    fn bad_urls_are_refused_readably_without_the_password() {
        let err = Location::parse("mysql://u:hunter2@h/db")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "invalid store URL \"mysql://u:***@h/db\": unknown scheme \"mysql\": use sqlite:///path/to/sparkyard.db or postgres://user:password@host:port/database"
        );
        let err = Location::parse("sqlite://relative.db")
            .unwrap_err()
            .to_string();
        assert!(err.contains("absolute path"), "{err}");
        let err = Location::parse("postgres://u:hunter2@h/db?sslmode=require")
            .unwrap_err()
            .to_string();
        assert!(err.contains("sslmode=require"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }
}
