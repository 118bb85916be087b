//! `kill -9` of `sparkyard serve --cluster-only`, then a restart on the same data directory
//! and ports: every object is still there with the same uid and resourceVersion, and a pod
//! that was running keeps running (its container was never restarted) and finishes once.

#[path = "support/cluster.rs"]
mod cluster;
mod support;

use std::time::{Duration, Instant};

use cluster::{kubectl, ClusterServer};
use serde_json::Value;

fn ok(server: &ClusterServer, args: &[&str]) -> String {
    let out = kubectl(&server.kubeconfig(), args);
    assert!(
        out.status.success(),
        "kubectl {args:?} failed:\nstdout: {}\nstderr: {}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    String::from_utf8(out.stdout).unwrap()
}

fn get(server: &ClusterServer, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    serde_json::from_str(&ok(server, &all)).unwrap()
}

const OBJECTS: &str = "\
apiVersion: v1
kind: Namespace
metadata:
  name: keep
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: keep
data: {answer: \"42\"}
---
apiVersion: v1
kind: Pod
metadata:
  name: sleeper
  namespace: keep
spec:
  restartPolicy: Never
  terminationGracePeriodSeconds: 1
  containers:
  - name: main
    image: busybox
    command: [sh, -c, \"sleep 20; echo done\"]
";

fn wait_for_phase(server: &ClusterServer, phase: &str, timeout: Duration) -> Value {
    let deadline = Instant::now() + timeout;
    loop {
        let pod = get(server, &["get", "pod", "sleeper", "-n", "keep"]);
        if pod["status"]["phase"] == phase {
            return pod;
        }
        assert!(
            Instant::now() < deadline,
            "pod never {phase}: {pod:#}\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn objects_and_running_pods_survive_kill_9() {
    let mut server = ClusterServer::start();
    let path = server.server.data_dir.path().join("objects.yaml");
    std::fs::write(&path, OBJECTS).unwrap();
    ok(&server, &["apply", "-f", path.to_str().unwrap()]);
    let running = wait_for_phase(&server, "Running", Duration::from_secs(30));
    let started_at =
        running["status"]["containerStatuses"][0]["state"]["running"]["startedAt"].clone();
    assert!(started_at.is_string(), "{running:#}");
    let namespace = get(&server, &["get", "namespace", "keep"]);
    let config_map = get(&server, &["get", "configmap", "settings", "-n", "keep"]);
    let accounts = get(&server, &["get", "serviceaccounts", "-n", "keep"]);
    let nodes = get(&server, &["get", "nodes"]);
    let old_rv = config_map["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();

    // A burst of acknowledged writes, then kill -9 the moment the last is acknowledged:
    // had the API answered before the registry's writer persisted a write, the tail of
    // the burst would be lost.
    let burst: String = (0..300)
        .map(|i| format!("---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: burst-{i}\n  namespace: keep\ndata:\n  i: \"{i}\"\n"))
        .collect();
    let burst_path = server.server.data_dir.path().join("burst.yaml");
    std::fs::write(&burst_path, burst).unwrap();
    let created = ok(&server, &["create", "-f", burst_path.to_str().unwrap()]);
    assert_eq!(created.lines().count(), 300, "{created}");
    server.server.kill9();
    // The container keeps running while sparkyard is down.
    std::thread::sleep(Duration::from_secs(3));
    server.server.restart();

    let after = |args: &[&str]| get(&server, args);
    let burst_left = after(&["get", "configmaps", "-n", "keep"])["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with("burst-")
        })
        .count();
    assert_eq!(
        burst_left, 300,
        "every acknowledged create survives kill -9"
    );
    for (before, now) in [
        (&namespace, after(&["get", "namespace", "keep"])),
        (
            &config_map,
            after(&["get", "configmap", "settings", "-n", "keep"]),
        ),
    ] {
        assert_eq!(before["metadata"]["uid"], now["metadata"]["uid"]);
        assert_eq!(
            before["metadata"]["resourceVersion"],
            now["metadata"]["resourceVersion"]
        );
        assert_eq!(
            before["metadata"]["creationTimestamp"],
            now["metadata"]["creationTimestamp"]
        );
    }
    // Built-in objects are not created twice.
    let names = |list: &Value| -> Vec<(String, String)> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["metadata"]["name"].as_str().unwrap().to_string(),
                    o["metadata"]["uid"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert_eq!(
        names(&accounts),
        names(&after(&["get", "serviceaccounts", "-n", "keep"]))
    );
    assert_eq!(names(&nodes), names(&after(&["get", "nodes"])));

    // Resuming a watch from before the restart replays the current state (no 410).
    let watched = ok(
        &server,
        &[
            "get",
            "--raw",
            &format!("/api/v1/namespaces/keep/configmaps?watch=1&resourceVersion={old_rv}&timeoutSeconds=1"),
        ],
    );
    assert!(watched.contains("\"settings\""), "{watched}");

    let pod = after(&["get", "pod", "sleeper", "-n", "keep"]);
    assert_eq!(pod["metadata"]["uid"], running["metadata"]["uid"]);
    assert_eq!(pod["status"]["podIP"], running["status"]["podIP"]);
    let finished = wait_for_phase(&server, "Succeeded", Duration::from_secs(60));
    let status = &finished["status"]["containerStatuses"][0];
    assert_eq!(status["restartCount"], 0, "{finished:#}");
    assert_eq!(status["state"]["terminated"]["exitCode"], 0, "{finished:#}");
    assert_eq!(
        status["state"]["terminated"]["startedAt"], started_at,
        "the container was started again: {finished:#}"
    );
    let logs = ok(&server, &["logs", "sleeper", "-n", "keep"]);
    assert_eq!(logs.matches("done").count(), 1, "{logs:?}");
}

/// Polls `check` (every 100 ms) until it gives a value; a guard against a hang only.
fn until<T>(what: &str, server: &ClusterServer, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "never {what}\n{}", server.log());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `<data>/cluster/pods/<ns>_<pod>_<uid>/state/main/0.<ext>`: the shim's record of the
/// container's first run (`json`: its pids) or of its exit (`exit`).
fn state_file(server: &ClusterServer, pod: &str, ext: &str) -> Option<std::path::PathBuf> {
    let pods = server.server.data_dir.path().join("cluster/pods");
    std::fs::read_dir(pods)
        .ok()?
        .flatten()
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(&format!("shim_{pod}_"))
        })
        .map(|e| e.path().join(format!("state/main/0.{ext}")))
        .filter(|p| p.exists())
}

/// The container shim, the production path (issue 16): a killed shim is a container
/// killed (137) and restarted as its policy says; a container that exits while sparkyard
/// is down has its own exit code and output reported once sparkyard is back.
#[test]
fn a_killed_shim_and_an_exit_while_down_are_reported() {
    let mut server = ClusterServer::start();
    let signal = tempfile::tempdir().unwrap();
    let pods = format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shim\n---\n\
         apiVersion: v1\nkind: Pod\nmetadata:\n  name: exiter\n  namespace: shim\nspec:\n  restartPolicy: Never\n  \
         volumes: [{{name: signal, hostPath: {{path: {}}}}}]\n  containers:\n  - name: main\n    image: busybox\n    \
         volumeMounts: [{{name: signal, mountPath: /signal}}]\n    \
         command: [sh, -c, \"until [ -e /signal/go ]; do sleep 0.1; done; echo leaving; exit 7\"]\n---\n\
         apiVersion: v1\nkind: Pod\nmetadata:\n  name: victim\n  namespace: shim\nspec:\n  restartPolicy: Always\n  \
         containers:\n  - name: main\n    image: busybox\n    command: [sh, -c, \"echo started; sleep 1000\"]\n",
        signal.path().display()
    );
    let path = server.server.data_dir.path().join("shim.yaml");
    std::fs::write(&path, pods).unwrap();
    ok(&server, &["apply", "-f", path.to_str().unwrap()]);
    let pod = |server: &ClusterServer, name: &str| get(server, &["get", "pod", name, "-n", "shim"]);
    for name in ["exiter", "victim"] {
        until(&format!("{name} Running"), &server, || {
            (pod(&server, name)["status"]["phase"] == "Running").then_some(())
        });
    }

    // Kill the victim's shim: its sandbox dies with it.
    let record: Value = serde_json::from_str(
        &std::fs::read_to_string(state_file(&server, "victim", "json").unwrap()).unwrap(),
    )
    .unwrap();
    let shim_pid = record["shimPid"].as_u64().expect("shimPid").to_string();
    let killed = std::process::Command::new("kill")
        .args(["-9", &shim_pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let restarted = until("the victim restarted", &server, || {
        let p = pod(&server, "victim");
        (p["status"]["containerStatuses"][0]["restartCount"] == 1
            && p["status"]["phase"] == "Running")
            .then_some(p)
    });
    let status = &restarted["status"]["containerStatuses"][0];
    assert_eq!(
        status["lastState"]["terminated"]["exitCode"], 137,
        "{restarted:#}"
    );

    // The exiter exits while sparkyard is down; its shim records the exit.
    server.server.kill9();
    std::fs::write(signal.path().join("go"), "").unwrap();
    until("the exiter's exit recorded by its shim", &server, || {
        state_file(&server, "exiter", "exit")
    });
    server.server.restart();
    let failed = until("the exiter Failed", &server, || {
        let p = pod(&server, "exiter");
        (p["status"]["phase"] == "Failed").then_some(p)
    });
    let terminated = &failed["status"]["containerStatuses"][0]["state"]["terminated"];
    assert_eq!(terminated["exitCode"], 7, "{failed:#}");
    assert_eq!(terminated["reason"], "Error", "{failed:#}");
    let logs = ok(&server, &["logs", "exiter", "-n", "shim"]);
    assert_eq!(logs.matches("leaving").count(), 1, "{logs:?}");
    // The victim, adopted across the restart, still runs its second container.
    let after = pod(&server, "victim");
    assert_eq!(after["status"]["containerStatuses"][0]["restartCount"], 1);
    assert_eq!(after["status"]["phase"], "Running");
}
