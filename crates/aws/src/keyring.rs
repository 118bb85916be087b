//! The access keys sparkyard accepts, persisted in `<data_dir>/keys.json`.
//!
//! The file holds secrets, so it is created with mode 0600 and replaced atomically (temporary
//! file, fsync, rename, fsync of the directory): a crash leaves either the old or the new
//! keyring, never a truncated one that would lock every client out.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// File name of the keyring inside the data directory.
pub const KEYS_FILE: &str = "keys.json";

/// An access key pair sparkyard accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKey {
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// Who a key belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyOwner {
    /// 12-digit account id.
    pub account_id: String,
    /// IAM or STS ARN of the caller, e.g. `arn:aws:iam::123456789012:root`.
    pub arn: String,
}

/// The session part of temporary credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub token: String,
    pub expiration: DateTime<Utc>,
}

/// Temporary credentials as STS hands them out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionCredentials {
    pub key: AccessKey,
    pub session_token: String,
    pub expiration: DateTime<Utc>,
}

/// What the keyring knows about one access key id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRecord {
    pub secret_access_key: String,
    pub owner: KeyOwner,
    /// `Some` for temporary credentials: requests must carry this token and arrive before
    /// the expiration.
    pub session: Option<Session>,
}

/// The on-disk form. Versioned so a later layout can migrate it.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KeysFile {
    version: u32,
    keys: Vec<StoredKey>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredKey {
    access_key_id: String,
    secret_access_key: String,
    kind: KeyKind,
    created_at: DateTime<Utc>,
    /// Absent for the bootstrap key, whose owner follows the configured account id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner: Option<KeyOwner>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    session_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expiration: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum KeyKind {
    /// The administrator key created on first start.
    Bootstrap,
    /// Temporary credentials with a session token.
    Session,
}

/// The access keys sparkyard accepts, persisted in the data directory.
pub struct Keyring {
    path: PathBuf,
    account_id: String,
    bootstrap: AccessKey,
    /// Every key by id, the bootstrap key included. Guarded by a lock because STS adds keys
    /// while requests are being verified; `persisted` keeps the file in step with it.
    keys: RwLock<HashMap<String, KeyRecord>>,
    persisted: RwLock<Vec<StoredKey>>,
}

const KEY_ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/+";

fn random_string(alphabet: &[u8], len: usize) -> String {
    // rand's thread RNG is a CSPRNG seeded from the OS, fit for secrets.
    (0..len)
        .map(|_| alphabet[rand::random_range(0..alphabet.len())] as char)
        .collect()
}

/// A fresh access key id: `prefix` (`AKIA` long-term, `ASIA` temporary) + 16 characters.
fn new_access_key_id(prefix: &str) -> String {
    format!("{prefix}{}", random_string(KEY_ID_ALPHABET, 16))
}

fn new_secret() -> String {
    random_string(SECRET_ALPHABET, 40)
}

impl Keyring {
    /// Loads `<data_dir>/keys.json`, or creates it with a new bootstrap administrator key on
    /// first start. A file that exists but cannot be read is an error, never overwritten:
    /// replacing it would silently invalidate every configured client.
    pub fn load_or_bootstrap(data_dir: &Path, account_id: &str) -> io::Result<Self> {
        Self::load_or_bootstrap_with(data_dir, account_id, None)
    }

    /// [`Keyring::load_or_bootstrap`] with the bootstrap key given rather than generated:
    /// replicas of one deployment (`serve --leader-elect`) take it from one Secret, so a
    /// client's signature verifies on whichever replica leads. A given key replaces a stored
    /// bootstrap key that differs (the Secret is the source of truth).
    pub fn load_or_bootstrap_with(
        data_dir: &Path,
        account_id: &str,
        given: Option<AccessKey>,
    ) -> io::Result<Self> {
        let path = data_dir.join(KEYS_FILE);
        let stored = match fs::read(&path) {
            Ok(bytes) => {
                let file: KeysFile = serde_json::from_slice(&bytes).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: {e}", path.display()),
                    )
                })?;
                if file.version != 1 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: unsupported version {}", path.display(), file.version),
                    ));
                }
                Some(file.keys)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let mut dirty = stored.is_none();
        let mut stored = stored.unwrap_or_default();
        if let Some(given) = &given {
            let same = stored.iter().any(|k| {
                k.kind == KeyKind::Bootstrap
                    && k.access_key_id == given.access_key_id
                    && k.secret_access_key == given.secret_access_key
            });
            if !same {
                dirty = true;
                stored.retain(|k| k.kind != KeyKind::Bootstrap);
                stored.push(StoredKey {
                    access_key_id: given.access_key_id.clone(),
                    secret_access_key: given.secret_access_key.clone(),
                    kind: KeyKind::Bootstrap,
                    created_at: Utc::now(),
                    owner: None,
                    session_token: None,
                    expiration: None,
                });
            }
        }
        if !stored.iter().any(|k| k.kind == KeyKind::Bootstrap) {
            dirty = true;
            stored.push(StoredKey {
                access_key_id: new_access_key_id("AKIA"),
                secret_access_key: new_secret(),
                kind: KeyKind::Bootstrap,
                created_at: Utc::now(),
                owner: None,
                session_token: None,
                expiration: None,
            });
        }
        let bootstrap_owner = KeyOwner {
            account_id: account_id.to_string(),
            arn: format!("arn:aws:iam::{account_id}:root"),
        };
        let mut keys = HashMap::new();
        let mut bootstrap = None;
        for key in &stored {
            let owner = match key.kind {
                KeyKind::Bootstrap => {
                    bootstrap = Some(AccessKey {
                        access_key_id: key.access_key_id.clone(),
                        secret_access_key: key.secret_access_key.clone(),
                    });
                    bootstrap_owner.clone()
                }
                KeyKind::Session => match &key.owner {
                    Some(owner) => owner.clone(),
                    None => continue,
                },
            };
            let session = match (&key.session_token, key.expiration) {
                (Some(token), Some(expiration)) => Some(Session {
                    token: token.clone(),
                    expiration,
                }),
                _ if key.kind == KeyKind::Session => continue,
                _ => None,
            };
            keys.insert(
                key.access_key_id.clone(),
                KeyRecord {
                    secret_access_key: key.secret_access_key.clone(),
                    owner,
                    session,
                },
            );
        }
        let keyring = Self {
            path,
            account_id: account_id.to_string(),
            bootstrap: bootstrap.expect("a bootstrap key was ensured above"),
            keys: RwLock::new(keys),
            persisted: RwLock::new(stored),
        };
        if dirty {
            keyring.save()?;
        }
        Ok(keyring)
    }

    /// The administrator key created on first start.
    pub fn bootstrap(&self) -> &AccessKey {
        &self.bootstrap
    }

    /// The account the bootstrap key belongs to.
    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    /// What the keyring knows about `access_key_id`, if anything.
    pub fn lookup(&self, access_key_id: &str) -> Option<KeyRecord> {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(access_key_id)
            .cloned()
    }

    /// Issues temporary credentials (`ASIA…` key, secret and session token) for `owner`,
    /// valid until `expiration`, and persists them so they survive a restart as STS
    /// credentials do. This is the hook for STS (`AssumeRole`, `GetSessionToken`,
    /// `AssumeRoleWithWebIdentity`): it decides who the caller becomes and for how long; the
    /// SigV4 layer then accepts the key only together with its token and only until it
    /// expires. Expired sessions are dropped from the file on the way.
    pub fn issue_session(
        &self,
        owner: KeyOwner,
        expiration: DateTime<Utc>,
    ) -> io::Result<SessionCredentials> {
        let key = AccessKey {
            access_key_id: new_access_key_id("ASIA"),
            secret_access_key: new_secret(),
        };
        // Real tokens are long opaque blobs; length only matters for realism in clients.
        let session_token = random_string(SECRET_ALPHABET, 256);
        let now = Utc::now();
        {
            let mut persisted = self.persisted.write().unwrap_or_else(|e| e.into_inner());
            let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
            persisted.retain(|k| k.expiration.is_none_or(|e| e > now));
            keys.retain(|_, k| k.session.as_ref().is_none_or(|s| s.expiration > now));
            persisted.push(StoredKey {
                access_key_id: key.access_key_id.clone(),
                secret_access_key: key.secret_access_key.clone(),
                kind: KeyKind::Session,
                created_at: now,
                owner: Some(owner.clone()),
                session_token: Some(session_token.clone()),
                expiration: Some(expiration),
            });
            keys.insert(
                key.access_key_id.clone(),
                KeyRecord {
                    secret_access_key: key.secret_access_key.clone(),
                    owner,
                    session: Some(Session {
                        token: session_token.clone(),
                        expiration,
                    }),
                },
            );
            write_atomically(&self.path, &serialize(&persisted)?)?;
        }
        Ok(SessionCredentials {
            key,
            session_token,
            expiration,
        })
    }

    fn save(&self) -> io::Result<()> {
        let persisted = self.persisted.read().unwrap_or_else(|e| e.into_inner());
        write_atomically(&self.path, &serialize(&persisted)?)
    }
}

fn serialize(keys: &[StoredKey]) -> io::Result<Vec<u8>> {
    let file = KeysFile {
        version: 1,
        keys: keys.to_vec(),
    };
    let mut bytes = serde_json::to_vec_pretty(&file).map_err(io::Error::other)?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// Writes `contents` to `path` with mode 0600 so that readers see the old file or the new
/// one, never a partial write.
pub(crate) fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        random_string(KEY_ID_ALPHABET, 8)
    ));
    let result = (|| {
        let mut options = fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)?;
        // The rename is durable only once the directory entry is.
        fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_key_has_aws_shape_and_is_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = Keyring::load_or_bootstrap(dir.path(), "123456789012").unwrap();
        let key = first.bootstrap().clone();
        assert!(key.access_key_id.starts_with("AKIA"));
        assert_eq!(key.access_key_id.len(), 20);
        assert!(key.access_key_id[4..]
            .bytes()
            .all(|b| KEY_ID_ALPHABET.contains(&b)));
        assert_eq!(key.secret_access_key.len(), 40);
        assert!(key
            .secret_access_key
            .bytes()
            .all(|b| SECRET_ALPHABET.contains(&b)));

        let second = Keyring::load_or_bootstrap(dir.path(), "123456789012").unwrap();
        assert_eq!(second.bootstrap(), &key);
        let record = second.lookup(&key.access_key_id).unwrap();
        assert_eq!(record.owner.arn, "arn:aws:iam::123456789012:root");
        assert_eq!(record.session, None);
    }

    #[test]
    fn bootstrap_owner_follows_configured_account() {
        let dir = tempfile::tempdir().unwrap();
        let key = Keyring::load_or_bootstrap(dir.path(), "111111111111")
            .unwrap()
            .bootstrap()
            .clone();
        let again = Keyring::load_or_bootstrap(dir.path(), "222222222222").unwrap();
        assert_eq!(again.bootstrap(), &key);
        assert_eq!(
            again.lookup(&key.access_key_id).unwrap().owner.arn,
            "arn:aws:iam::222222222222:root"
        );
    }

    #[test]
    fn keys_file_is_private_and_no_temp_files_remain() {
        let dir = tempfile::tempdir().unwrap();
        Keyring::load_or_bootstrap(dir.path(), "123456789012").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(KEYS_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(KEYS_FILE)]);
    }

    #[test]
    fn corrupt_keys_file_is_an_error_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(KEYS_FILE), b"{not json").unwrap();
        let err = Keyring::load_or_bootstrap(dir.path(), "123456789012")
            .err()
            .unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(fs::read(dir.path().join(KEYS_FILE)).unwrap(), b"{not json");
    }

    #[test]
    fn sessions_are_persisted_and_expired_ones_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let ring = Keyring::load_or_bootstrap(dir.path(), "123456789012").unwrap();
        let owner = KeyOwner {
            account_id: "123456789012".into(),
            arn: "arn:aws:sts::123456789012:assumed-role/r/s".into(),
        };
        let expired = ring
            .issue_session(owner.clone(), Utc::now() - chrono::Duration::seconds(1))
            .unwrap();
        let live = ring
            .issue_session(owner.clone(), Utc::now() + chrono::Duration::hours(1))
            .unwrap();
        assert!(live.key.access_key_id.starts_with("ASIA"));
        assert!(
            ring.lookup(&expired.key.access_key_id).is_none(),
            "pruned when the next session was issued"
        );

        let reloaded = Keyring::load_or_bootstrap(dir.path(), "123456789012").unwrap();
        let record = reloaded.lookup(&live.key.access_key_id).unwrap();
        assert_eq!(record.owner, owner);
        assert_eq!(record.session.unwrap().token, live.session_token);
        assert!(reloaded.lookup(&expired.key.access_key_id).is_none());
    }

    #[test]
    fn a_given_bootstrap_key_is_used_and_replaces_a_generated_one() {
        let dir = tempfile::tempdir().unwrap();
        let generated = Keyring::load_or_bootstrap(dir.path(), "123456789012").unwrap();
        let given = AccessKey {
            access_key_id: "AKIASPARKYARDREPLICA".into(),
            secret_access_key: "s3cr3t".into(),
        };
        let ring = Keyring::load_or_bootstrap_with(dir.path(), "123456789012", Some(given.clone()))
            .unwrap();
        assert_eq!(ring.bootstrap().access_key_id, given.access_key_id);
        assert!(ring.lookup(&generated.bootstrap().access_key_id).is_none());
        // Kept on disk: a later start without it keeps using it.
        let again = Keyring::load_or_bootstrap(dir.path(), "123456789012").unwrap();
        assert_eq!(again.bootstrap().access_key_id, given.access_key_id);
    }
}
