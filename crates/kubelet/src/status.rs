//! Pod status as the kubelet reports it, built from the pod worker's view (pure).

use serde_json::{json, Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub enum State {
    Waiting {
        reason: String,
        message: Option<String>,
    },
    Running {
        started_at: String,
    },
    Terminated {
        exit_code: i32,
        reason: String,
        message: Option<String>,
        started_at: String,
        finished_at: String,
        container_id: String,
    },
}

impl State {
    pub fn waiting(reason: &str) -> Self {
        State::Waiting {
            reason: reason.into(),
            message: None,
        }
    }

    fn to_json(&self) -> Value {
        match self {
            State::Waiting { reason, message } => {
                let mut w = json!({"reason": reason});
                if let Some(m) = message {
                    w["message"] = json!(m);
                }
                json!({"waiting": w})
            }
            State::Running { started_at } => json!({"running": {"startedAt": started_at}}),
            State::Terminated {
                exit_code,
                reason,
                message,
                started_at,
                finished_at,
                container_id,
            } => {
                let mut t = json!({"exitCode": exit_code, "reason": reason, "startedAt": started_at,
                                   "finishedAt": finished_at, "containerID": container_id});
                if let Some(m) = message.as_ref().filter(|m| !m.is_empty()) {
                    t["message"] = json!(m);
                }
                json!({"terminated": t})
            }
        }
    }
}

/// Kubernetes' reason for a terminated container.
/// A failed container's message under `FallbackToLogsOnError`: the last 80 lines of its
/// log, cut to the last 2,048 bytes, whichever is smaller (Kubernetes' limits).
pub fn log_tail_message(log: &[u8]) -> String {
    let tail = crate::logs::tail_lines(log, 80);
    let tail = &tail[tail.len().saturating_sub(2048)..];
    String::from_utf8_lossy(tail).into_owned()
}

pub fn exit_reason(exit_code: i32) -> &'static str {
    if exit_code == 0 {
        "Completed"
    } else {
        "Error"
    }
}

#[derive(Debug, Clone)]
pub struct ContainerView {
    pub name: String,
    pub image: String,
    pub image_id: String,
    pub container_id: Option<String>,
    pub state: State,
    pub last_state: Option<State>,
    pub restart_count: u32,
    /// The readiness probe's verdict (`true` without one).
    pub probe_ready: bool,
    /// Whether the startup probe succeeded (`true` without one).
    pub probe_started: bool,
}

impl ContainerView {
    pub fn new(container: &Value, image_id: &str, initial: State) -> Self {
        Self {
            name: container["name"].as_str().unwrap_or("").into(),
            image: container["image"].as_str().unwrap_or("").into(),
            image_id: image_id.into(),
            container_id: None,
            state: initial,
            last_state: None,
            restart_count: 0,
            probe_ready: true,
            probe_started: true,
        }
    }

    pub fn is_running(&self) -> bool {
        matches!(self.state, State::Running { .. })
    }

    /// Running, started (startup probe) and ready (readiness probe).
    pub fn is_ready(&self) -> bool {
        self.is_running() && self.probe_started && self.probe_ready
    }

    pub fn exit_code(&self) -> Option<i32> {
        match self.state {
            State::Terminated { exit_code, .. } => Some(exit_code),
            _ => None,
        }
    }

    /// Without probes a running container is ready.
    pub fn to_json(&self) -> Value {
        let running = self.is_running();
        let mut v = json!({
            "name": self.name, "image": self.image, "imageID": self.image_id,
            "ready": self.is_ready(), "started": running && self.probe_started, "restartCount": self.restart_count,
            "state": self.state.to_json(),
            "lastState": self.last_state.as_ref().map(State::to_json).unwrap_or_else(|| json!({})),
        });
        if let Some(id) = &self.container_id {
            v["containerID"] = json!(id);
        }
        v
    }
}

#[derive(Debug, Clone)]
pub struct PodView {
    pub phase: &'static str,
    pub pod_ip: String,
    pub host_ip: String,
    pub start_time: String,
    pub sandbox_ready: bool,
    pub init: Vec<ContainerView>,
    pub containers: Vec<ContainerView>,
    pub reason: Option<String>,
    pub message: Option<String>,
}

/// Replaces the kubelet-owned fields of `status` from `view`, keeping conditions the
/// scheduler owns (`PodScheduled`) and transition times of conditions that did not change.
pub fn apply(pod: &Value, status: &mut Value, view: &PodView, now: &str) {
    if !status.is_object() {
        *status = json!({});
    }
    let old_conditions: Vec<Value> = status["conditions"].as_array().cloned().unwrap_or_default();
    let initialized = view.init.iter().all(|c| c.exit_code() == Some(0));
    let unready: Vec<&str> = view
        .containers
        .iter()
        .filter(|c| !c.is_ready())
        .map(|c| c.name.as_str())
        .collect();
    let uninitialized: Vec<&str> = view
        .init
        .iter()
        .filter(|c| c.exit_code() != Some(0))
        .map(|c| c.name.as_str())
        .collect();
    let terminal = view.phase == "Succeeded" || view.phase == "Failed";
    let ready_reason = if terminal {
        "PodCompleted"
    } else {
        "ContainersNotReady"
    };
    let mut conditions = vec![
        condition(
            "PodReadyToStartContainers",
            view.sandbox_ready && !terminal,
            None,
            None,
        ),
        if initialized {
            condition(
                "Initialized",
                true,
                terminal.then_some("PodCompleted"),
                None,
            )
        } else {
            condition(
                "Initialized",
                false,
                Some("ContainersNotInitialized"),
                Some(format!(
                    "containers with incomplete status: [{}]",
                    uninitialized.join(" ")
                )),
            )
        },
        if unready.is_empty() {
            condition("Ready", true, None, None)
        } else {
            condition(
                "Ready",
                false,
                Some(ready_reason),
                Some(format!(
                    "containers with unready status: [{}]",
                    unready.join(" ")
                )),
            )
        },
        if unready.is_empty() {
            condition("ContainersReady", true, None, None)
        } else {
            condition(
                "ContainersReady",
                false,
                Some(ready_reason),
                Some(format!(
                    "containers with unready status: [{}]",
                    unready.join(" ")
                )),
            )
        },
    ];
    for old in &old_conditions {
        if !conditions.iter().any(|c| c["type"] == old["type"]) {
            conditions.push(old.clone());
        }
    }
    for c in conditions.iter_mut() {
        let previous = old_conditions.iter().find(|o| o["type"] == c["type"]);
        c["lastTransitionTime"] = match previous {
            Some(p) if p["status"] == c["status"] && !p["lastTransitionTime"].is_null() => {
                p["lastTransitionTime"].clone()
            }
            _ => json!(now),
        };
        c["lastProbeTime"] = Value::Null;
    }
    // PodScheduled first, as the API shows it.
    conditions.sort_by_key(|c| match c["type"].as_str().unwrap_or("") {
        "PodReadyToStartContainers" => 0,
        "Initialized" => 1,
        "Ready" => 2,
        "ContainersReady" => 3,
        "PodScheduled" => 4,
        _ => 5,
    });
    let map: &mut Map<String, Value> = status.as_object_mut().unwrap();
    map.insert("phase".into(), json!(view.phase));
    map.insert("conditions".into(), json!(conditions));
    map.insert("hostIP".into(), json!(view.host_ip));
    map.insert("hostIPs".into(), json!([{"ip": view.host_ip}]));
    if !view.pod_ip.is_empty() {
        map.insert("podIP".into(), json!(view.pod_ip));
        map.insert("podIPs".into(), json!([{"ip": view.pod_ip}]));
    }
    map.insert("startTime".into(), json!(view.start_time));
    if !view.init.is_empty() {
        map.insert(
            "initContainerStatuses".into(),
            view.init.iter().map(ContainerView::to_json).collect(),
        );
    }
    map.insert(
        "containerStatuses".into(),
        view.containers.iter().map(ContainerView::to_json).collect(),
    );
    map.insert("qosClass".into(), json!(qos_class(pod)));
    match &view.reason {
        Some(r) => map.insert("reason".into(), json!(r)),
        None => map.remove("reason"),
    };
    match &view.message {
        Some(m) => map.insert("message".into(), json!(m)),
        None => map.remove("message"),
    };
}

fn condition(kind: &str, ok: bool, reason: Option<&str>, message: Option<String>) -> Value {
    let mut c = json!({"type": kind, "status": if ok { "True" } else { "False" }});
    if let Some(r) = reason {
        c["reason"] = json!(r);
    }
    if let Some(m) = message {
        c["message"] = json!(m);
    }
    c
}

/// `Guaranteed` when every container sets equal cpu and memory requests and limits,
/// `BestEffort` when none sets any, `Burstable` otherwise.
pub fn qos_class(pod: &Value) -> &'static str {
    let containers: Vec<&Value> = ["initContainers", "containers"]
        .iter()
        .flat_map(|k| pod["spec"][k].as_array().into_iter().flatten())
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &containers {
        let requests = &c["resources"]["requests"];
        let limits = &c["resources"]["limits"];
        for r in ["cpu", "memory"] {
            let (req, lim) = (&requests[r], &limits[r]);
            if !req.is_null() || !lim.is_null() {
                any = true;
            }
            // Requests default to limits.
            let req = if req.is_null() { lim } else { req };
            if lim.is_null() || req != lim {
                guaranteed = false;
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_tail_message_keeps_80_lines_and_2048_bytes() {
        let lines: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let message = log_tail_message(lines.as_bytes());
        assert!(message.starts_with("line 20\n") && message.ends_with("line 99\n"));
        let long = "x".repeat(5000);
        assert_eq!(log_tail_message(long.as_bytes()).len(), 2048);
    }

    #[test]
    fn qos_classes() {
        assert_eq!(
            qos_class(&json!({"spec": {"containers": [{}]}})),
            "BestEffort"
        );
        assert_eq!(
            qos_class(
                &json!({"spec": {"containers": [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}})
            ),
            "Guaranteed"
        );
        assert_eq!(
            qos_class(
                &json!({"spec": {"containers": [{"resources": {"requests": {"cpu": "1"}, "limits": {"memory": "896Mi"}}}]}})
            ),
            "Burstable"
        );
    }

    #[test]
    fn running_pod_is_ready_and_keeps_pod_scheduled() {
        let pod = json!({"spec": {"containers": [{"name": "c"}]}});
        let mut status = json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": "t0"}]});
        let mut c = ContainerView::new(
            &json!({"name": "c", "image": "busybox"}),
            "id",
            State::Running {
                started_at: "t1".into(),
            },
        );
        c.container_id = Some("sparkyard://1".into());
        let view = PodView {
            phase: "Running",
            pod_ip: "127.1.0.2".into(),
            host_ip: "127.0.0.1".into(),
            start_time: "t1".into(),
            sandbox_ready: true,
            init: vec![],
            containers: vec![c],
            reason: None,
            message: None,
        };
        apply(&pod, &mut status, &view, "t2");
        assert_eq!(status["phase"], "Running");
        assert_eq!(status["podIP"], "127.1.0.2");
        let cond = |t: &str| {
            status["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["type"] == t)
                .unwrap()
                .clone()
        };
        assert_eq!(cond("Ready")["status"], "True");
        assert_eq!(cond("PodScheduled")["lastTransitionTime"], "t0");
        assert_eq!(
            status["containerStatuses"][0]["state"]["running"]["startedAt"],
            "t1"
        );
        assert_eq!(status["containerStatuses"][0]["ready"], true);
        assert_eq!(status["qosClass"], "BestEffort");
        // A failing readiness probe: not Ready, with kube's reason and message.
        let mut unready = view.clone();
        unready.containers[0].probe_ready = false;
        apply(&pod, &mut status, &unready, "t3");
        assert_eq!(status["containerStatuses"][0]["ready"], false);
        assert_eq!(status["containerStatuses"][0]["started"], true);
        let ready = status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap();
        assert_eq!(ready["status"], "False");
        assert_eq!(ready["reason"], "ContainersNotReady");
        assert_eq!(ready["message"], "containers with unready status: [c]");
    }
}
