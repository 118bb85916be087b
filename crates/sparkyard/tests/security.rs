//! What sparkyard keeps on disk and writes to its log (issue 16, security): the data
//! directory is its owner's alone, files holding keys are 0600, and no secret it issues
//! or is sent appears in its log.

mod support;

use std::os::unix::fs::PermissionsExt;

use support::Server;

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn keys_stay_private_and_out_of_the_log() {
    let mut s = Server::start();
    let dir = s.data_dir.path().to_path_buf();
    // A data directory opened to others is narrowed back on start.
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    s.restart();
    assert_eq!(mode(&dir), 0o700, "the data directory");
    for file in [
        "aws/credentials",
        "cluster/kubeconfig",
        "cluster/pki/ca.key",
        "cluster/pki/apiserver.key",
        "cluster/pki/sa.key",
        "cluster/pki/admin.token",
    ] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }

    // Secrets in use: the bootstrap key (every signed call), a role session's credentials
    // and the cluster's admin token.
    s.aws_ok(&["sts", "get-caller-identity"]);
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"sts:AssumeRole"}]}"#;
    s.aws_ok(&[
        "iam",
        "create-role",
        "--role-name",
        "security-check",
        "--assume-role-policy-document",
        trust,
    ]);
    let session = s.aws_json(&[
        "sts",
        "assume-role",
        "--role-arn",
        "arn:aws:iam::123456789012:role/security-check",
        "--role-session-name",
        "check",
    ]);
    let session_secret = session["Credentials"]["SecretAccessKey"]
        .as_str()
        .unwrap()
        .to_string();
    let session_token = session["Credentials"]["SessionToken"]
        .as_str()
        .unwrap()
        .to_string();
    s.aws_ok(&["s3", "mb", "s3://security-check"]);
    let credentials = std::fs::read_to_string(dir.join("aws/credentials")).unwrap();
    let bootstrap_secret = credentials
        .lines()
        .find_map(|l| {
            l.split_once('=')
                .filter(|(k, _)| k.trim() == "aws_secret_access_key")
        })
        .map(|(_, v)| v.trim().to_string())
        .expect("aws_secret_access_key");
    let admin_token = std::fs::read_to_string(dir.join("cluster/pki/admin.token")).unwrap();
    let log = s.log();
    assert!(!log.is_empty());
    for (what, secret) in [
        ("the bootstrap secret key", bootstrap_secret.as_str()),
        ("a session's secret key", session_secret.as_str()),
        ("a session token", session_token.as_str()),
        ("the admin token", admin_token.trim()),
    ] {
        assert!(secret.len() >= 16, "{what}: {secret:?}");
        assert!(!log.contains(secret), "{what} appears in the server log");
    }
}
