//! The AWS CLI profile sparkyard writes into its data directory, so that the real `aws` CLI and
//! boto3 reach this server with the bootstrap key and nothing else to configure.
//!
//! The files live in `<data_dir>/aws/` rather than `~/.aws/`: sparkyard never edits the user's
//! own AWS configuration. They are rewritten on every start because the endpoint (listen
//! address) may have changed.

use std::io;
use std::path::{Path, PathBuf};

use crate::auth::AccessKey;
use crate::keyring::write_atomically;

/// Profile name in both files.
pub const PROFILE: &str = "sparkyard";

/// Where the profile was written, and what it points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliProfile {
    pub name: String,
    /// `<data_dir>/aws/config`, for `AWS_CONFIG_FILE`.
    pub config_file: PathBuf,
    /// `<data_dir>/aws/credentials`, for `AWS_SHARED_CREDENTIALS_FILE`.
    pub credentials_file: PathBuf,
    pub region: String,
    pub endpoint: String,
}

impl CliProfile {
    /// Human instructions printed at start-up. The secret is not printed: it is in the
    /// credentials file, which only the owner can read.
    pub fn usage(&self) -> String {
        let config = shell_quote(&self.config_file.display().to_string());
        let credentials = shell_quote(&self.credentials_file.display().to_string());
        format!(
            "sparkyard: AWS endpoint {endpoint} (region {region}).\n\
             The AWS CLI profile '{name}' with the administrator key is in {config} and {credentials}.\n\
             To use it from a shell:\n\
             \n    export AWS_CONFIG_FILE={config} AWS_SHARED_CREDENTIALS_FILE={credentials}\n\
             \x20   aws --profile {name} emr-containers list-virtual-clusters\n\
             \nboto3 reads the same variables: boto3.Session(profile_name=\"{name}\").client(\"emr-containers\").",
            endpoint = self.endpoint,
            region = self.region,
            name = self.name,
        )
    }
}

/// Writes `[sparkyard]` into `<data_dir>/aws/credentials` and `[profile sparkyard]` (region,
/// `output = json`, `endpoint_url`) into `<data_dir>/aws/config`, both mode 0600, replacing
/// whatever was there.
pub fn write_cli_profile(
    data_dir: &Path,
    key: &AccessKey,
    region: &str,
    endpoint: &str,
) -> io::Result<CliProfile> {
    let dir = data_dir.join("aws");
    std::fs::create_dir_all(&dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    }
    let endpoint = client_endpoint(endpoint);
    let header = "# Written by sparkyard at every start; changes here are overwritten.\n";
    let credentials = format!(
        "{header}[{PROFILE}]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
        key.access_key_id, key.secret_access_key
    );
    // Path-style S3: sparkyard serves every bucket on one host, so virtual-hosted names
    // (`bucket.127.0.0.1`) would not resolve when the endpoint is a host name.
    let config = format!(
        "{header}[profile {PROFILE}]\nregion = {region}\noutput = json\nendpoint_url = {endpoint}\ns3 =\n    addressing_style = path\n"
    );
    let profile = CliProfile {
        name: PROFILE.to_string(),
        config_file: dir.join("config"),
        credentials_file: dir.join("credentials"),
        region: region.to_string(),
        endpoint,
    };
    write_atomically(&profile.credentials_file, credentials.as_bytes())?;
    write_atomically(&profile.config_file, config.as_bytes())?;
    Ok(profile)
}

/// A server listening on every interface is reached by local clients over loopback.
fn client_endpoint(endpoint: &str) -> String {
    endpoint
        .replacen("://0.0.0.0:", "://127.0.0.1:", 1)
        .replacen("://[::]:", "://[::1]:", 1)
}

/// Single-quotes a path for a POSIX shell when it needs it.
fn shell_quote(s: &str) -> String {
    if s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/._-+:@%,=".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> AccessKey {
        AccessKey {
            access_key_id: "AKIAABCDEFGHIJKLMNOP".into(),
            secret_access_key: "abcdEFGH/ijkl+MNOP0123456789abcdefghijkl".into(),
        }
    }

    #[test]
    fn writes_profile_files_at_the_documented_paths() {
        let dir = tempfile::tempdir().unwrap();
        let profile =
            write_cli_profile(dir.path(), &key(), "us-east-2", "http://127.0.0.1:18777").unwrap();
        assert_eq!(profile.config_file, dir.path().join("aws/config"));
        assert_eq!(profile.credentials_file, dir.path().join("aws/credentials"));
        let credentials = std::fs::read_to_string(dir.path().join("aws/credentials")).unwrap();
        assert!(credentials.contains(
            "[sparkyard]\naws_access_key_id = AKIAABCDEFGHIJKLMNOP\naws_secret_access_key = abcdEFGH/ijkl+MNOP0123456789abcdefghijkl\n"
        ));
        let config = std::fs::read_to_string(dir.path().join("aws/config")).unwrap();
        assert!(config.contains(
            "[profile sparkyard]\nregion = us-east-2\noutput = json\nendpoint_url = http://127.0.0.1:18777\ns3 =\n    addressing_style = path\n"
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for file in ["aws/config", "aws/credentials"] {
                let mode = std::fs::metadata(dir.path().join(file))
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o777, 0o600, "{file}");
            }
        }
    }

    #[test]
    fn rewritten_with_new_endpoint_on_every_start() {
        let dir = tempfile::tempdir().unwrap();
        write_cli_profile(dir.path(), &key(), "us-east-2", "http://127.0.0.1:1").unwrap();
        write_cli_profile(dir.path(), &key(), "eu-west-1", "http://0.0.0.0:2").unwrap();
        let config = std::fs::read_to_string(dir.path().join("aws/config")).unwrap();
        assert!(config.contains("region = eu-west-1\n"));
        assert!(
            config.contains("endpoint_url = http://127.0.0.1:2\n"),
            "{config}"
        );
        assert!(!config.contains(":1\n"));
        let entries = std::fs::read_dir(dir.path().join("aws")).unwrap().count();
        assert_eq!(entries, 2, "no temporary files left behind");
    }

    #[test]
    fn usage_names_the_files_and_a_working_command() {
        let dir = tempfile::tempdir().unwrap();
        let profile =
            write_cli_profile(dir.path(), &key(), "us-east-2", "http://127.0.0.1:18777").unwrap();
        let usage = profile.usage();
        assert!(usage.contains(&format!(
            "export AWS_CONFIG_FILE={} AWS_SHARED_CREDENTIALS_FILE={}",
            profile.config_file.display(),
            profile.credentials_file.display()
        )));
        assert!(usage.contains("aws --profile sparkyard emr-containers list-virtual-clusters"));
        assert!(
            !usage.contains(&key().secret_access_key),
            "the secret stays in the file"
        );
    }

    #[test]
    fn paths_with_spaces_are_quoted() {
        assert_eq!(shell_quote("/tmp/a b/it's"), r"'/tmp/a b/it'\''s'");
        assert_eq!(shell_quote("/tmp/x.y"), "/tmp/x.y");
    }
}
