//! Test harness: runs the real `sparkyard` binary on a free port with a fresh data directory,
//! and runs the real clients (`aws` CLI, `python3` with boto3) against it.
//!
//! The clients come from the project venv (`.venv/`, made by `scripts/setup.sh`), falling back
//! to `PATH`.
#![allow(dead_code)]

pub mod console;
pub mod eks;
pub mod walkthrough;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// `<repo>/.venv/bin/<tool>` if it exists, else the bare name (found on `PATH`).
pub fn venv_tool(tool: &str) -> PathBuf {
    let candidate = repo_root().join(".venv/bin").join(tool);
    if candidate.exists() {
        candidate
    } else {
        PathBuf::from(tool)
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Server {
    pub data_dir: tempfile::TempDir,
    pub port: u16,
    pub extra_args: Vec<String>,
    child: Option<Child>,
}

impl Server {
    /// Starts `sparkyard serve` on a fresh data directory and waits until it accepts connections.
    pub fn start() -> Server {
        Self::start_with(&[])
    }

    pub fn start_with(extra_args: &[&str]) -> Server {
        Self::start_in(&std::env::temp_dir(), extra_args)
    }

    /// Like [`Server::start_with`], with the data directory made below `parent` rather than
    /// the system's temporary directory (which pods see as their own `/tmp`): for tests that
    /// need it where a default one would be, in a host path pods can name.
    pub fn start_in(parent: &Path, extra_args: &[&str]) -> Server {
        let mut server = Server {
            data_dir: tempfile::tempdir_in(parent).unwrap(),
            port: free_port(),
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            child: None,
        };
        server.spawn();
        server
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data_dir.path().join("server.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_sparkyard"))
            .arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--data-dir")
            .arg(self.data_dir.path())
            .args(&self.extra_args)
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawn sparkyard");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("sparkyard exited early ({status}):\n{}", self.log());
            }
            // Listening, and it is this server: the port was free when it was picked, so
            // another test's sparkyard may have been given it since (its cluster binds any
            // free port). Ours writes its CLI profile (or, serving the cluster alone, its
            // kubeconfig) before it listens.
            let dir = self.data_dir.path();
            let started =
                dir.join("aws/config").exists() || dir.join("cluster/kubeconfig").exists();
            if started && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("sparkyard did not start listening:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data_dir.path().join("server.log")).unwrap_or_default()
    }

    /// SIGKILL, as a crash would: no shutdown code runs.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Starts the binary again on the same port and data directory.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// Environment that points the AWS CLI and boto3 at this server through the profile
    /// sparkyard wrote into its data directory, and nothing else.
    pub fn client_env(&self) -> Vec<(String, String)> {
        let aws = self.data_dir.path().join("aws");
        vec![
            (
                "AWS_CONFIG_FILE".into(),
                aws.join("config").display().to_string(),
            ),
            (
                "AWS_SHARED_CREDENTIALS_FILE".into(),
                aws.join("credentials").display().to_string(),
            ),
            ("AWS_PROFILE".into(), "sparkyard".into()),
            ("AWS_PAGER".into(), String::new()),
        ]
    }

    /// Runs the real `aws` CLI with the sparkyard profile.
    pub fn aws(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(venv_tool("aws"));
        cmd.args(args);
        for var in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_ENDPOINT_URL",
            "AWS_DEFAULT_REGION",
            "AWS_REGION",
        ] {
            cmd.env_remove(var);
        }
        cmd.envs(self.client_env());
        cmd.output().expect("run aws CLI")
    }

    /// Runs `aws …`, asserts success and returns stdout.
    pub fn aws_ok(&self, args: &[&str]) -> String {
        let out = self.aws(args);
        assert!(
            out.status.success(),
            "aws {args:?} failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs `aws … --output json` and parses stdout.
    pub fn aws_json(&self, args: &[&str]) -> serde_json::Value {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--output", "json"]);
        serde_json::from_str(&self.aws_ok(&all)).unwrap()
    }

    /// Runs a Python script (with boto3) from `crates/sparkyard/tests/python/`, passing the
    /// endpoint in `SPARKYARD_ENDPOINT`; asserts it exits 0 and returns stdout.
    pub fn python(&self, script: &str, args: &[&str]) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/python")
            .join(script);
        let mut cmd = Command::new(venv_tool("python3"));
        // The scripts check with `assert`, which `-O` (PYTHONOPTIMIZE) would strip.
        cmd.arg(&path).args(args).env_remove("PYTHONOPTIMIZE");
        for var in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_ENDPOINT_URL",
        ] {
            cmd.env_remove(var);
        }
        cmd.envs(self.client_env())
            .env("SPARKYARD_ENDPOINT", self.endpoint());
        let out = cmd.output().expect("run python");
        assert!(
            out.status.success(),
            "{script} failed:\nstdout: {}\nstderr: {}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
