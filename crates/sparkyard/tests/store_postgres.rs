//! `serve --store-url postgres://…`: the emr-containers records live in PostgreSQL (a
//! throwaway server from Debian's package, or `SPARKYARD_TEST_POSTGRES_URL`'s), survive a
//! restart, and a second server with its own data directory — another node — sees them.

mod support;

use std::process::Command;

use serde_json::json;
use sparkyard_store::testing::TestPostgres;
use support::Server;

fn serve_on(url: &str) -> Server {
    Server::start_with(&["--no-controller", "--no-cluster", "--store-url", url])
}

fn describe(s: &Server, id: &str) -> serde_json::Value {
    s.aws_json(&["emr-containers", "describe-virtual-cluster", "--id", id])["virtualCluster"]
        .clone()
}

#[test]
fn virtual_cluster_in_postgres_survives_restart_and_is_seen_from_another_node() {
    let pg = TestPostgres::start();
    let mut s = serve_on(pg.url());
    let provider = json!({"id": "eks-emr-cluster", "type": "EKS", "info": {"eksInfo": {"namespace": "shared-store"}}})
        .to_string();
    let created = s.aws_json(&[
        "emr-containers",
        "create-virtual-cluster",
        "--name",
        "shared-store-vc",
        "--container-provider",
        &provider,
    ]);
    let id = created["id"].as_str().unwrap().to_string();
    // Nothing went to the default SQLite file.
    assert!(!s.data_dir.path().join("sparkyard.db").exists());

    s.restart();
    let vc = describe(&s, &id);
    assert_eq!(vc["name"], "shared-store-vc");
    assert_eq!(vc["state"], "RUNNING");

    let other = serve_on(pg.url());
    let seen = describe(&other, &id);
    assert_eq!(seen["name"], "shared-store-vc");
    assert_eq!(seen["arn"], vc["arn"]);
}

#[test]
fn unknown_store_scheme_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sparkyard"))
        .args([
            "serve",
            "--no-cluster",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path())
        .args(["--store-url", "mysql://admin:hunter2@db.internal/sparkyard"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("store-url: invalid store URL \"mysql://admin:***@db.internal/sparkyard\": unknown scheme \"mysql\""),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
    // Refused before anything was written.
    assert!(!dir.path().join("sparkyard.db").exists());
}
