//! One-time sign-in links for the administrator.
//!
//! `sparkyard console` runs on the server's machine with access to its data directory —
//! the directory that already holds the administrator's key (`keys.json`, mode 0600).
//! It mints a random 256-bit token and writes `<data-dir>/console/signin/<sha256(token)>`
//! (mode 0600, in a 0700 directory) holding the link's expiry; the link it prints carries
//! the token itself. The server redeems a token by hashing it, reading that file and
//! removing it: only one request can remove a file, so a link works once even when two
//! requests race, and one that is not used within [`LINK_TTL`] is refused. Only hashes
//! are on disk, so a listing of the directory does not reveal a usable link, and the
//! server holds no state for links that were never used.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};

/// How long a sign-in link may wait to be used.
pub const LINK_TTL: Duration = Duration::minutes(5);

/// `<data-dir>/console/signin`.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("console").join("signin")
}

/// Creates the links directory, readable by the owner only.
pub fn prepare_dir(data_dir: &Path) -> io::Result<()> {
    let dir = dir(data_dir);
    fs::create_dir_all(&dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(data_dir.join("console"), fs::Permissions::from_mode(0o700))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

fn sha256_hex(token: &str) -> String {
    hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        token.as_bytes(),
    ))
}

/// Mints a one-time sign-in token valid for [`LINK_TTL`] from `now`; returns the token
/// (the link's `token` query parameter).
pub fn issue(data_dir: &Path, now: DateTime<Utc>) -> io::Result<String> {
    prepare_dir(data_dir)?;
    let token = hex::encode(crate::sessions::random_bytes());
    let path = dir(data_dir).join(sha256_hex(&token));
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&path)?;
    file.write_all((now + LINK_TTL).to_rfc3339().as_bytes())?;
    file.sync_all()?;
    prune(data_dir, now);
    Ok(token)
}

/// Why a link was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// Unknown, malformed or already used.
    Invalid,
    /// Used after [`LINK_TTL`].
    Expired,
}

/// Redeems `token` once: `Ok` the first time, within its lifetime; never again.
pub fn redeem(data_dir: &Path, token: &str, now: DateTime<Utc>) -> Result<(), LinkError> {
    // Only 64 hex digits reach the file system: nothing else can name a path.
    if token.len() != 64 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(LinkError::Invalid);
    }
    let path = dir(data_dir).join(sha256_hex(&token.to_ascii_lowercase()));
    let text = fs::read_to_string(&path).map_err(|_| LinkError::Invalid)?;
    // The one request that removes the file is the one that signs in.
    fs::remove_file(&path).map_err(|_| LinkError::Invalid)?;
    let expires = DateTime::parse_from_rfc3339(text.trim()).map_err(|_| LinkError::Invalid)?;
    if now >= expires {
        return Err(LinkError::Expired);
    }
    Ok(())
}

/// Removes links that expired unused.
pub fn prune(data_dir: &Path, now: DateTime<Utc>) {
    let Ok(entries) = fs::read_dir(dir(data_dir)) else {
        return;
    };
    for entry in entries.flatten() {
        let expired = fs::read_to_string(entry.path())
            .ok()
            .and_then(|t| DateTime::parse_from_rfc3339(t.trim()).ok())
            .is_none_or(|e| now >= e);
        if expired {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_works_once_and_only_in_time() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let token = issue(dir.path(), now).unwrap();
        assert_eq!(token.len(), 64);
        assert_eq!(redeem(dir.path(), &token, now), Ok(()));
        assert_eq!(redeem(dir.path(), &token, now), Err(LinkError::Invalid));

        let late = issue(dir.path(), now).unwrap();
        assert_eq!(
            redeem(dir.path(), &late, now + LINK_TTL),
            Err(LinkError::Expired)
        );
        assert_eq!(redeem(dir.path(), &late, now), Err(LinkError::Invalid));
    }

    #[test]
    fn malformed_tokens_never_reach_the_file_system() {
        let dir = tempfile::tempdir().unwrap();
        let (g, a) = ("g".repeat(64), "a".repeat(63));
        for bad in ["", "../../keys.json", g.as_str(), a.as_str()] {
            assert_eq!(redeem(dir.path(), bad, Utc::now()), Err(LinkError::Invalid));
        }
    }

    #[test]
    fn only_hashes_are_stored_and_expired_links_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let token = issue(dir.path(), now - LINK_TTL * 2).unwrap();
        let names: Vec<String> = fs::read_dir(super::dir(dir.path()))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec![sha256_hex(&token)]);
        let _fresh = issue(dir.path(), now).unwrap();
        assert_eq!(fs::read_dir(super::dir(dir.path())).unwrap().count(), 1);
    }
}
