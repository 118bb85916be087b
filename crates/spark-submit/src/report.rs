//! What `spark-submit`'s `LoggingPodStatusWatcherImpl` prints while it follows the driver, so
//! the job runner's log reads as EMR users know it (the lines they grep for).

use serde_json::Value;

/// The block after `State changed, new state: ` for a driver pod as the API returns it.
pub fn pod_state(pod: &Value) -> String {
    let text = |v: &Value| v.as_str().unwrap_or("N/A").to_string();
    let labels = pod["metadata"]["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k} -> {}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let volumes = pod["spec"]["volumes"]
        .as_array()
        .map(|vs| {
            vs.iter()
                .filter_map(|v| v["name"].as_str())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let statuses = pod["status"]["containerStatuses"]
        .as_array()
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.iter()
                .map(|c| container_status(c, "\t\t "))
                .collect::<Vec<_>>()
                .join("")
        });
    format!(
        "\n\t pod name: {}\n\t namespace: {}\n\t labels: {labels}\n\t pod uid: {}\n\t creation time: {}\n\t service account name: {}\n\t volumes: {volumes}\n\t node name: {}\n\t start time: {}\n\t phase: {}\n\t container status: {}",
        text(&pod["metadata"]["name"]),
        text(&pod["metadata"]["namespace"]),
        text(&pod["metadata"]["uid"]),
        text(&pod["metadata"]["creationTimestamp"]),
        text(&pod["spec"]["serviceAccountName"]),
        text(&pod["spec"]["nodeName"]),
        text(&pod["status"]["startTime"]),
        text(&pod["status"]["phase"]),
        statuses.unwrap_or_else(|| "N/A".into()),
    )
}

/// One container's lines, each starting with `indent` (Spark's `containersDescription`).
pub fn container_status(status: &Value, indent: &str) -> String {
    let mut out = format!(
        "\n{indent}container name: {}\n{indent}container image: {}",
        status["name"].as_str().unwrap_or(""),
        status["image"].as_str().unwrap_or("")
    );
    let state = &status["state"];
    if let Some(running) = state.get("running").filter(|v| !v.is_null()) {
        out.push_str(&format!(
            "\n{indent}container state: running\n{indent}container started at: {}",
            running["startedAt"].as_str().unwrap_or("N/A")
        ));
    } else if let Some(done) = state.get("terminated").filter(|v| !v.is_null()) {
        out.push_str(&format!(
            "\n{indent}container state: terminated\n{indent}container started at: {}\n{indent}container finished at: {}\n{indent}exit code: {}\n{indent}termination reason: {}",
            done["startedAt"].as_str().unwrap_or("N/A"),
            done["finishedAt"].as_str().unwrap_or("N/A"),
            done["exitCode"],
            done["reason"].as_str().unwrap_or("")
        ));
    } else if let Some(waiting) = state.get("waiting").filter(|v| !v.is_null()) {
        out.push_str(&format!(
            "\n{indent}container state: waiting\n{indent}pending reason: {}",
            waiting["reason"].as_str().unwrap_or("")
        ));
    } else {
        out.push_str(&format!("\n{indent}container state: N/A"));
    }
    out
}

/// `Application status for <app id> (phase: <phase>)`, printed every report interval.
pub fn application_status(app_id: &str, phase: &str) -> String {
    format!("Application status for {app_id} (phase: {phase})")
}

/// The submission id Spark prints: `<namespace>:<driver pod>`.
pub fn submission_id(namespace: &str, driver: &str) -> String {
    format!("{namespace}:{driver}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_as_the_trace() {
        let pod = json!({
            "metadata": {"name": "spark-pi-79eae0a209e1a859-driver", "namespace": "test",
                "uid": "e970934b", "creationTimestamp": "2026-11-23T19:28:35Z",
                "labels": {"spark-version": "4.0.1", "spark-role": "driver"}},
            "spec": {"serviceAccountName": "default", "nodeName": "fake-node",
                "volumes": [{"name": "spark-local-dir-1"}, {"name": "spark-conf-volume-driver"}]},
            "status": {"phase": "Succeeded", "startTime": "2026-11-23T19:28:36Z",
                "containerStatuses": [{"name": "spark-kubernetes-driver", "image": "apache/spark:4.0.1",
                    "state": {"terminated": {"startedAt": "2025-01-01T00:00:00Z",
                        "finishedAt": "2025-01-01T00:01:00Z", "exitCode": 0, "reason": "Completed"}}}]}
        });
        assert_eq!(
            pod_state(&pod),
            "\n\t pod name: spark-pi-79eae0a209e1a859-driver\n\t namespace: test\n\t labels: spark-version -> 4.0.1, spark-role -> driver\n\t pod uid: e970934b\n\t creation time: 2026-11-23T19:28:35Z\n\t service account name: default\n\t volumes: spark-local-dir-1, spark-conf-volume-driver\n\t node name: fake-node\n\t start time: 2026-11-23T19:28:36Z\n\t phase: Succeeded\n\t container status: \n\t\t container name: spark-kubernetes-driver\n\t\t container image: apache/spark:4.0.1\n\t\t container state: terminated\n\t\t container started at: 2025-01-01T00:00:00Z\n\t\t container finished at: 2025-01-01T00:01:00Z\n\t\t exit code: 0\n\t\t termination reason: Completed"
        );
        let pending = json!({"metadata": {"name": "d"}, "status": {"phase": "Pending"}});
        assert!(pod_state(&pending).ends_with("\n\t phase: Pending\n\t container status: N/A"));
        assert_eq!(
            application_status("spark-1", "Running"),
            "Application status for spark-1 (phase: Running)"
        );
    }
}
