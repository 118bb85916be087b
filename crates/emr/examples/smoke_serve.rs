// Temporary smoke-test server (mirrors crates/sparkyard/src/serve.rs while the binary's
// other crates are in flux). Usage: smoke_serve <addr> <data-dir>
use std::sync::Arc;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let listen: std::net::SocketAddr = args[1].parse().unwrap();
    let dir = std::path::PathBuf::from(&args[2]);
    std::fs::create_dir_all(&dir).unwrap();
    let store = sparkyard_store::Store::open(&dir.join("sparkyard.db")).unwrap();
    let keyring = Arc::new(sparkyard_aws::auth::Keyring::load_or_bootstrap(&dir, "123456789012").unwrap());
    let endpoint = format!("http://{listen}");
    let profile =
        sparkyard_aws::profile::write_cli_profile(&dir, keyring.bootstrap(), "us-east-2", &endpoint).unwrap();
    let emr = sparkyard_emr::Emr::open(
        store,
        sparkyard_emr::Settings { region: "us-east-2".into(), account_id: "123456789012".into(), config: Default::default() },
    )
    .await
    .unwrap();
    let app = sparkyard_emr::router(emr)
        .layer(axum::middleware::from_fn_with_state(keyring.clone(), sparkyard_aws::auth::authenticate))
        .layer(axum::middleware::from_fn(sparkyard_aws::request_id::stamp));
    let listener = tokio::net::TcpListener::bind(listen).await.unwrap();
    eprintln!("{}", profile.usage());
    axum::serve(listener, app).await.unwrap();
}
