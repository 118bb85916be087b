//! `meta.k8s.io/v1` Tables, with the columns and cell values the real apiserver's
//! printers produce, so `kubectl get` looks as it does against Kubernetes.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::resources::ResourceInfo;

/// Kubernetes' `duration.HumanDuration`: `45s`, `3m12s`, `2h5m`, `4d`, …
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let d = (hours / 24) % 365;
        return if d == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{d}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

fn parse_time(v: Option<&Value>) -> Option<DateTime<Utc>> {
    v.and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn age(object: &Value, now: DateTime<Utc>) -> String {
    match parse_time(object.pointer("/metadata/creationTimestamp")) {
        Some(t) => human_duration((now - t).num_seconds()),
        None => "<unknown>".into(),
    }
}

fn s<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn or_none(text: String) -> String {
    if text.is_empty() {
        "<none>".into()
    } else {
        text
    }
}

/// A column: (name, type, format, priority, description).
type Column = (&'static str, &'static str, &'static str, u8, &'static str);

const NAME: Column = ("Name", "string", "name", 0, "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names");
const AGE: Column = ("Age", "string", "", 0, "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.");

fn columns(info: &ResourceInfo) -> Vec<Column> {
    match (info.group, info.plural) {
        ("", "pods") => vec![
            NAME,
            ("Ready", "string", "", 0, "The aggregate readiness state of this pod for accepting traffic."),
            ("Status", "string", "", 0, "The aggregate status of the containers in this pod."),
            ("Restarts", "string", "", 0, "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
            AGE,
            ("IP", "string", "", 1, "IP address allocated to the pod. Routable at least within the server. Empty if not yet allocated."),
            ("Node", "string", "", 1, "NodeName is a request to schedule this pod onto a specific node."),
            ("Nominated Node", "string", "", 1, "nominatedNodeName is set only when this pod preempts other pods on the node."),
            ("Readiness Gates", "string", "", 1, "If specified, all readiness gates will be evaluated for pod readiness."),
        ],
        ("", "nodes") => vec![
            NAME,
            ("Status", "string", "", 0, "The status of the node"),
            ("Roles", "string", "", 0, "The roles of the node"),
            AGE,
            ("Version", "string", "", 0, "Kubelet Version reported by the node."),
            ("Internal-IP", "string", "", 1, "List of addresses reachable to the node. Queried from cloud provider, if available."),
            ("External-IP", "string", "", 1, "List of addresses reachable to the node. Queried from cloud provider, if available."),
            ("OS-Image", "string", "", 1, "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy))."),
            ("Kernel-Version", "string", "", 1, "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64)."),
            ("Container-Runtime", "string", "", 1, "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2)."),
        ],
        ("", "namespaces") => vec![NAME, ("Status", "string", "", 0, "The status of the namespace"), AGE],
        ("scheduling.k8s.io", "priorityclasses") => vec![
            NAME,
            ("Value", "integer", "", 0, "The value of this priority class. This is the actual priority that pods receive when they have the name of this class in their pod spec."),
            ("Global-Default", "boolean", "", 0, "globalDefault specifies whether this PriorityClass should be considered as the default priority for pods that do not have any priority class. Only one PriorityClass can be marked as `globalDefault`. However, if more than one PriorityClasses exists with their `globalDefault` field set to true, the smallest value of such global default PriorityClasses will be used as the default priority."),
            AGE,
            ("PreemptionPolicy", "string", "", 0, "PreemptionPolicy is the Policy for preempting pods with lower priority. One of Never, PreemptLowerPriority. Defaults to PreemptLowerPriority if unset."),
        ],
        ("apps", "deployments") => vec![
            NAME,
            ("Ready", "string", "", 0, "Number of the pod with ready state"),
            ("Up-to-date", "string", "", 0, "Total number of non-terminated pods targeted by this deployment that have the desired template spec."),
            ("Available", "string", "", 0, "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment."),
            AGE,
            CONTAINERS,
            IMAGES,
            SELECTOR,
        ],
        ("apps", "replicasets") => vec![
            NAME,
            ("Desired", "integer", "", 0, "Replicas is the number of desired replicas."),
            ("Current", "integer", "", 0, "Replicas is the most recently observed number of replicas."),
            ("Ready", "integer", "", 0, "The number of ready replicas for this replica set."),
            AGE,
            CONTAINERS,
            IMAGES,
            SELECTOR,
        ],
        ("apps", "statefulsets") => vec![
            NAME,
            ("Ready", "string", "", 0, "Number of the pod with ready state"),
            AGE,
            CONTAINERS,
            IMAGES,
        ],
        ("apps", "daemonsets") => vec![
            NAME,
            ("Desired", "integer", "", 0, "The total number of nodes that should be running the daemon pod (including nodes correctly running the daemon pod)."),
            ("Current", "integer", "", 0, "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod."),
            ("Ready", "integer", "", 0, "numberReady is the number of nodes that should be running the daemon pod and have one or more of the daemon pod running with a Ready Condition."),
            ("Up-to-date", "integer", "", 0, "The total number of nodes that are running updated daemon pod"),
            ("Available", "integer", "", 0, "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)"),
            ("Node Selector", "string", "", 0, "NodeSelector is a selector which must be true for the pod to fit on a node. Selector which must match a node's labels for the pod to be scheduled on that node. More info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/"),
            AGE,
            CONTAINERS,
            IMAGES,
            SELECTOR,
        ],
        ("apps", "controllerrevisions") => vec![
            NAME,
            ("Controller", "string", "", 0, "Controller of the object"),
            ("Revision", "string", "", 0, "Revision is the revision number of the object."),
            AGE,
        ],
        ("batch", "jobs") => vec![
            NAME,
            ("Status", "string", "", 0, "Status of the job."),
            ("Completions", "string", "", 0, "The completion status of the job"),
            ("Duration", "string", "", 0, "Time required to complete the job."),
            AGE,
            ("Containers", "string", "", 1, "Names of each container in the template."),
            ("Images", "string", "", 1, "Images referenced by each container in the template."),
            ("Selector", "string", "", 1, "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors"),
        ],
        ("", "events") | ("events.k8s.io", "events") => vec![
            ("Last Seen", "string", "", 0, "Time when last this event has been seen"),
            ("Type", "string", "", 0, "Type of this event (Normal, Warning), new types could be added in the future."),
            ("Reason", "string", "", 0, "This should be a short, machine understandable string that gives the reason for this event being generated. This should be less than 128 characters."),
            ("Object", "string", "", 0, "The object that this event is about"),
            ("Subobject", "string", "", 1, "The subobject that this event is about"),
            ("Source", "string", "", 1, "The component reporting this event. Should be a short machine understandable string."),
            ("Message", "string", "", 0, "A human-readable description of the status of this operation."),
            ("First Seen", "string", "", 1, "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)"),
            ("Count", "string", "", 1, "The number of times this event has occurred."),
            ("Name", "string", "name", 1, "Name of the event"),
        ],
        ("", "services") => vec![
            NAME,
            ("Type", "string", "", 0, "type determines how the Service is exposed."),
            ("Cluster-IP", "string", "", 0, "clusterIP is the IP address of the service and is usually assigned randomly by the master."),
            ("External-IP", "string", "", 0, "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service."),
            ("Port(s)", "string", "", 0, "The ports that are exposed by this service."),
            AGE,
            ("Selector", "string", "", 1, "Route service traffic to pods with label keys and values matching this selector."),
        ],
        ("", "configmaps") => vec![NAME, ("Data", "string", "", 0, "Data contains the configuration data."), AGE],
        ("", "resourcequotas") => vec![
            NAME,
            AGE,
            ("Request", "string", "", 0, "Request represents a minimum amount of cpu/memory that a container may consume."),
            ("Limit", "string", "", 0, "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node."),
        ],
        ("", "limitranges") => vec![NAME, ("Created At", "date", "", 0, AGE.4)],
        ("", "secrets") => vec![
            NAME,
            ("Type", "string", "", 0, "The type of secret"),
            ("Data", "string", "", 0, "Data contains the secret data."),
            AGE,
        ],
        ("", "serviceaccounts") => vec![NAME, ("Secrets", "string", "", 0, "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use."), AGE],
        ("", "persistentvolumeclaims") => vec![
            NAME,
            ("Status", "string", "", 0, "The status of the claim"),
            ("Volume", "string", "", 0, "The volume bound to the claim"),
            ("Capacity", "string", "", 0, "The capacity of the volume"),
            ("Access Modes", "string", "", 0, "The access modes of the volume"),
            ("StorageClass", "string", "", 0, "The storage class of the claim"),
            ("VolumeAttributesClass", "string", "", 0, "The volume attributes class of the claim"),
            AGE,
            ("VolumeMode", "string", "", 1, "The volume mode of the claim"),
        ],
        ("", "persistentvolumes") => vec![
            NAME,
            ("Capacity", "string", "", 0, "capacity is the description of the persistent volume's resources and capacity. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#capacity"),
            ("Access Modes", "string", "", 0, "accessModes contains all ways the volume can be mounted. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#access-modes"),
            ("Reclaim Policy", "string", "", 0, "persistentVolumeReclaimPolicy defines what happens to a persistent volume when released from its claim. Valid options are Retain (default for manually created PersistentVolumes), Delete (default for dynamically provisioned PersistentVolumes), and Recycle (deprecated). Recycle must be supported by the volume plugin underlying this PersistentVolume. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#reclaiming"),
            ("Status", "string", "", 0, "phase indicates if a volume is available, bound to a claim, or released by a claim. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#phase"),
            ("Claim", "string", "", 0, "claimRef is part of a bi-directional binding between PersistentVolume and PersistentVolumeClaim. Expected to be non-nil when bound. claim.VolumeName is the authoritative bind between PV and PVC. More info: https://kubernetes.io/docs/concepts/storage/persistent-volumes#binding"),
            ("StorageClass", "string", "", 0, "StorageClass of the pv"),
            ("VolumeAttributesClass", "string", "", 0, "VolumeAttributesClass of the pv"),
            ("Reason", "string", "", 0, "reason is a brief CamelCase string that describes any failure and is meant for machine parsing and tidy display in the CLI."),
            AGE,
            ("VolumeMode", "string", "", 1, "volumeMode defines if a volume is intended to be used with a formatted filesystem or to remain in raw block state. Value of Filesystem is implied when not included in spec."),
        ],
        ("storage.k8s.io", "storageclasses") => vec![
            NAME,
            ("Provisioner", "string", "", 0, "provisioner indicates the type of the provisioner."),
            ("ReclaimPolicy", "string", "", 0, "reclaimPolicy controls the reclaimPolicy for dynamically provisioned PersistentVolumes of this storage class. Defaults to Delete."),
            ("VolumeBindingMode", "string", "", 0, "volumeBindingMode indicates how PersistentVolumeClaims should be provisioned and bound.  When unset, VolumeBindingImmediate is used. This field is only honored by servers that enable the VolumeScheduling feature."),
            ("AllowVolumeExpansion", "string", "", 0, "allowVolumeExpansion shows whether the storage class allow volume expand."),
            AGE,
        ],
        ("rbac.authorization.k8s.io", _) | ("apiextensions.k8s.io", _) => {
            vec![NAME, ("Created At", "date", "", 0, "CreationTimestamp is a timestamp representing the server time when this object was created.")]
        }
        ("policy", "poddisruptionbudgets") => vec![
            NAME,
            ("Min Available", "string", "", 0, "The minimum number or percentage of available pods this budget requires."),
            ("Max Unavailable", "string", "", 0, "The maximum number or percentage of unavailable pods this budget requires."),
            ("Allowed Disruptions", "integer", "", 0, "Calculated number of pods that may be disrupted at this time."),
            AGE,
        ],
        _ => vec![NAME, AGE],
    }
}

/// A PDB's MIN AVAILABLE / MAX UNAVAILABLE cell: the int or percent, else `N/A`.
fn int_or_percent(object: &Value, pointer: &str) -> Value {
    match object.pointer(pointer) {
        Some(Value::String(s)) => json!(s),
        Some(Value::Number(n)) => json!(n.to_string()),
        _ => json!("N/A"),
    }
}

/// The pod STATUS column, as kubectl's pod printer computes it.
pub fn pod_status(pod: &Value) -> String {
    let mut reason = s(pod, "/status/phase").to_string();
    if !s(pod, "/status/reason").is_empty() {
        reason = s(pod, "/status/reason").to_string();
    }
    if let Some(conditions) = pod.pointer("/status/conditions").and_then(Value::as_array) {
        if conditions
            .iter()
            .any(|c| s(c, "/type") == "PodScheduled" && s(c, "/reason") == "SchedulingGated")
        {
            reason = "SchedulingGated".into();
        }
    }
    let init_statuses = pod
        .pointer("/status/initContainerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let init_count = pod
        .pointer("/spec/initContainers")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let mut initializing = false;
    for (i, c) in init_statuses.iter().enumerate() {
        let exit = c
            .pointer("/state/terminated/exitCode")
            .and_then(Value::as_i64);
        if exit == Some(0) {
            continue;
        }
        if c.pointer("/state/terminated").is_some() {
            let r = s(c, "/state/terminated/reason");
            reason = if !r.is_empty() {
                format!("Init:{r}")
            } else if let Some(sig) = c
                .pointer("/state/terminated/signal")
                .and_then(Value::as_i64)
                .filter(|s| *s != 0)
            {
                format!("Init:Signal:{sig}")
            } else {
                format!("Init:ExitCode:{}", exit.unwrap_or(0))
            };
        } else if !s(c, "/state/waiting/reason").is_empty()
            && s(c, "/state/waiting/reason") != "PodInitializing"
        {
            reason = format!("Init:{}", s(c, "/state/waiting/reason"));
        } else {
            reason = format!("Init:{i}/{init_count}");
        }
        initializing = true;
        break;
    }
    if !initializing {
        let mut has_running = false;
        let statuses = pod
            .pointer("/status/containerStatuses")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for c in statuses.iter().rev() {
            if !s(c, "/state/waiting/reason").is_empty() {
                reason = s(c, "/state/waiting/reason").to_string();
            } else if !s(c, "/state/terminated/reason").is_empty() {
                reason = s(c, "/state/terminated/reason").to_string();
            } else if c.pointer("/state/terminated").is_some() {
                reason = match c
                    .pointer("/state/terminated/signal")
                    .and_then(Value::as_i64)
                    .filter(|s| *s != 0)
                {
                    Some(sig) => format!("Signal:{sig}"),
                    None => format!(
                        "ExitCode:{}",
                        c.pointer("/state/terminated/exitCode")
                            .and_then(Value::as_i64)
                            .unwrap_or(0)
                    ),
                };
            } else if c.get("ready").and_then(Value::as_bool) == Some(true)
                && c.pointer("/state/running").is_some()
            {
                has_running = true;
            }
        }
        if reason == "Completed" && has_running {
            let ready = pod
                .pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| s(c, "/type") == "Ready" && s(c, "/status") == "True")
                });
            reason = if ready {
                "Running".into()
            } else {
                "NotReady".into()
            };
        }
    }
    if pod.pointer("/metadata/deletionTimestamp").is_some() {
        reason = if s(pod, "/status/reason") == "NodeLost" {
            "Unknown".into()
        } else {
            "Terminating".into()
        };
    }
    reason
}

fn pod_cells(pod: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let total = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let statuses = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let ready = statuses
        .iter()
        .filter(|c| c.get("ready").and_then(Value::as_bool) == Some(true))
        .count();
    let restarts: i64 = statuses
        .iter()
        .chain(
            pod.pointer("/status/initContainerStatuses")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        )
        .map(|c| c.get("restartCount").and_then(Value::as_i64).unwrap_or(0))
        .sum();
    let last_restart = statuses
        .iter()
        .filter_map(|c| parse_time(c.pointer("/lastState/terminated/finishedAt")))
        .max();
    let restarts_cell = match last_restart {
        Some(t) if restarts > 0 => format!(
            "{restarts} ({} ago)",
            human_duration((now - t).num_seconds())
        ),
        _ => restarts.to_string(),
    };
    let gates = pod
        .pointer("/spec/readinessGates")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let gates_cell = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let conditions = pod
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let true_count = gates
            .iter()
            .filter(|g| {
                conditions
                    .iter()
                    .any(|c| c["type"] == g["conditionType"] && c["status"] == "True")
            })
            .count();
        format!("{true_count}/{}", gates.len())
    };
    vec![
        json!(s(pod, "/metadata/name")),
        json!(format!("{ready}/{total}")),
        json!(pod_status(pod)),
        json!(restarts_cell),
        json!(age(pod, now)),
        json!(or_none(s(pod, "/status/podIP").to_string())),
        json!(or_none(s(pod, "/spec/nodeName").to_string())),
        json!(or_none(s(pod, "/status/nominatedNodeName").to_string())),
        json!(gates_cell),
    ]
}

fn node_cells(node: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let conditions = node
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut status = match conditions
        .iter()
        .find(|c| s(c, "/type") == "Ready")
        .map(|c| s(c, "/status"))
    {
        Some("True") => "Ready".to_string(),
        Some("False") => "NotReady".to_string(),
        _ => "Unknown".to_string(),
    };
    if node.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push_str(",SchedulingDisabled");
    }
    let mut roles: Vec<String> = node
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .map(|labels| {
            labels
                .iter()
                .filter_map(|(k, v)| {
                    k.strip_prefix("node-role.kubernetes.io/")
                        .map(String::from)
                        .or_else(|| {
                            (k == "kubernetes.io/role")
                                .then(|| v.as_str().unwrap_or_default().to_string())
                        })
                })
                .filter(|r| !r.is_empty())
                .collect()
        })
        .unwrap_or_default();
    roles.sort();
    let address = |kind: &str| {
        node.pointer("/status/addresses")
            .and_then(Value::as_array)
            .and_then(|a| a.iter().find(|x| s(x, "/type") == kind))
            .map(|x| s(x, "/address").to_string())
            .unwrap_or_default()
    };
    vec![
        json!(s(node, "/metadata/name")),
        json!(status),
        json!(or_none(roles.join(","))),
        json!(age(node, now)),
        json!(s(node, "/status/nodeInfo/kubeletVersion")),
        json!(or_none(address("InternalIP"))),
        json!(or_none(address("ExternalIP"))),
        json!(or_none(s(node, "/status/nodeInfo/osImage").to_string())),
        json!(or_none(
            s(node, "/status/nodeInfo/kernelVersion").to_string()
        )),
        json!(or_none(
            s(node, "/status/nodeInfo/containerRuntimeVersion").to_string()
        )),
    ]
}

fn condition_true(object: &Value, kind: &str) -> bool {
    object
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| s(c, "/type") == kind && s(c, "/status") == "True")
        })
}

const CONTAINERS: Column = (
    "Containers",
    "string",
    "",
    1,
    "Names of each container in the template.",
);
const IMAGES: Column = (
    "Images",
    "string",
    "",
    1,
    "Images referenced by each container in the template.",
);
const SELECTOR: Column = ("Selector", "string", "", 1, "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.");

/// The rows of `kubectl get deploy|rs|sts|ds` (kubectl's printers, wide columns last).
fn workload_cells(plural: &str, object: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let int = |p: &str| object.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    let containers: Vec<&Value> = object
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .map(|c| c.iter().collect())
        .unwrap_or_default();
    let names = containers
        .iter()
        .map(|c| s(c, "/name"))
        .collect::<Vec<_>>()
        .join(",");
    let images = containers
        .iter()
        .map(|c| s(c, "/image"))
        .collect::<Vec<_>>()
        .join(",");
    let selector = crate::scale::selector_text(&object["spec"]["selector"]);
    let name = json!(s(object, "/metadata/name"));
    let age = json!(age(object, now));
    let replicas = object
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    match plural {
        "deployments" => vec![
            name,
            json!(format!("{}/{replicas}", int("/status/readyReplicas"))),
            json!(int("/status/updatedReplicas")),
            json!(int("/status/availableReplicas")),
            age,
            json!(names),
            json!(images),
            json!(selector),
        ],
        "replicasets" => vec![
            name,
            json!(replicas),
            json!(int("/status/replicas")),
            json!(int("/status/readyReplicas")),
            age,
            json!(names),
            json!(images),
            json!(selector),
        ],
        "statefulsets" => vec![
            name,
            json!(format!("{}/{replicas}", int("/status/readyReplicas"))),
            age,
            json!(names),
            json!(images),
        ],
        _ => {
            let node_selector = object
                .pointer("/spec/template/spec/nodeSelector")
                .and_then(Value::as_object)
                .filter(|m| !m.is_empty())
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_else(|| "<none>".into());
            vec![
                name,
                json!(int("/status/desiredNumberScheduled")),
                json!(int("/status/currentNumberScheduled")),
                json!(int("/status/numberReady")),
                json!(int("/status/updatedNumberScheduled")),
                json!(int("/status/numberAvailable")),
                json!(node_selector),
                age,
                json!(names),
                json!(images),
                json!(selector),
            ]
        }
    }
}

fn or<'a>(text: &'a str, fallback: &'a str) -> &'a str {
    if text.is_empty() {
        fallback
    } else {
        text
    }
}

/// kubectl's `GetAccessModesAsString`: the short forms in a fixed order.
fn access_modes(modes: Option<&Value>) -> String {
    let modes: Vec<&str> = modes
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(long, _)| modes.contains(long))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// `printPersistentVolumeClaim`: capacity and access modes only once the claim has a
/// volume; `Terminating` while it is being deleted.
fn claim_cells(object: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let deleting = object.pointer("/metadata/deletionTimestamp").is_some();
    let volume = s(object, "/spec/volumeName");
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            s(object, "/status/capacity/storage").to_string(),
            access_modes(object.pointer("/status/accessModes")),
        )
    };
    vec![
        json!(s(object, "/metadata/name")),
        json!(if deleting {
            "Terminating"
        } else {
            s(object, "/status/phase")
        }),
        json!(volume),
        json!(capacity),
        json!(modes),
        json!(s(object, "/spec/storageClassName")),
        json!(or(s(object, "/spec/volumeAttributesClassName"), "<unset>")),
        json!(age(object, now)),
        json!(or(s(object, "/spec/volumeMode"), "<unset>")),
    ]
}

/// `printPersistentVolume`.
fn volume_cells(object: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let deleting = object.pointer("/metadata/deletionTimestamp").is_some();
    let claim = match object.pointer("/spec/claimRef") {
        Some(r) if r.is_object() => format!("{}/{}", s(r, "/namespace"), s(r, "/name")),
        _ => String::new(),
    };
    vec![
        json!(s(object, "/metadata/name")),
        json!(s(object, "/spec/capacity/storage")),
        json!(access_modes(object.pointer("/spec/accessModes"))),
        json!(s(object, "/spec/persistentVolumeReclaimPolicy")),
        json!(if deleting {
            "Terminating"
        } else {
            s(object, "/status/phase")
        }),
        json!(claim),
        json!(s(object, "/spec/storageClassName")),
        json!(or(s(object, "/spec/volumeAttributesClassName"), "<unset>")),
        json!(s(object, "/status/reason")),
        json!(age(object, now)),
        json!(or(s(object, "/spec/volumeMode"), "<unset>")),
    ]
}

fn job_cells(job: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let status = if condition_true(job, "Complete") {
        "Complete"
    } else if condition_true(job, "Failed") {
        "Failed"
    } else if job.pointer("/metadata/deletionTimestamp").is_some() {
        "Terminating"
    } else if condition_true(job, "SuccessCriteriaMet") {
        "SuccessCriteriaMet"
    } else if condition_true(job, "FailureTarget") {
        "FailureTarget"
    } else if condition_true(job, "Suspended") {
        "Suspended"
    } else {
        "Running"
    };
    let succeeded = job
        .pointer("/status/succeeded")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let completions = match job.pointer("/spec/completions").and_then(Value::as_i64) {
        Some(c) => format!("{succeeded}/{c}"),
        None => {
            let parallelism = job
                .pointer("/spec/parallelism")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if parallelism > 1 {
                format!("{succeeded}/1 of {parallelism}")
            } else {
                format!("{succeeded}/1")
            }
        }
    };
    let start = parse_time(job.pointer("/status/startTime"));
    let end = parse_time(job.pointer("/status/completionTime"));
    let duration = match (start, end) {
        (Some(a), Some(b)) => human_duration((b - a).num_seconds()),
        (Some(a), None) => human_duration((now - a).num_seconds()),
        _ => String::new(),
    };
    let containers: Vec<&Value> = job
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .map(|c| c.iter().collect())
        .unwrap_or_default();
    let names: Vec<&str> = containers.iter().map(|c| s(c, "/name")).collect();
    let images: Vec<&str> = containers.iter().map(|c| s(c, "/image")).collect();
    let selector = job
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    vec![
        json!(s(job, "/metadata/name")),
        json!(status),
        json!(completions),
        json!(duration),
        json!(age(job, now)),
        json!(names.join(",")),
        json!(images.join(",")),
        json!(or_none(selector)),
    ]
}

fn event_cells(event: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let last = parse_time(event.pointer("/lastTimestamp"))
        .or_else(|| parse_time(event.pointer("/eventTime")))
        .or_else(|| parse_time(event.pointer("/series/lastObservedTime")))
        .or_else(|| parse_time(event.pointer("/metadata/creationTimestamp")));
    let first = parse_time(event.pointer("/firstTimestamp")).or(last);
    let since = |t: Option<DateTime<Utc>>| {
        t.map_or("<unknown>".to_string(), |t| {
            human_duration((now - t).num_seconds())
        })
    };
    let object = if event.get("involvedObject").is_some() {
        "/involvedObject"
    } else {
        "/regarding"
    };
    let kind = s(event, &format!("{object}/kind")).to_lowercase();
    let name = s(event, &format!("{object}/name"));
    let source = {
        let component = s(event, "/source/component");
        let component = if component.is_empty() {
            s(event, "/reportingComponent")
        } else {
            component
        };
        let host = s(event, "/source/host");
        if host.is_empty() {
            component.to_string()
        } else {
            format!("{component}, {host}")
        }
    };
    let message = if event.get("message").is_some() {
        s(event, "/message")
    } else {
        s(event, "/note")
    };
    vec![
        json!(since(last)),
        json!(s(event, "/type")),
        json!(s(event, "/reason")),
        json!(format!("{kind}/{name}")),
        json!(s(event, &format!("{object}/fieldPath"))),
        json!(source),
        json!(message.trim()),
        json!(since(first)),
        json!(event
            .get("count")
            .and_then(Value::as_i64)
            .unwrap_or(1)
            .to_string()),
        json!(s(event, "/metadata/name")),
    ]
}

fn service_cells(svc: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let kind = s(svc, "/spec/type");
    let external = match kind {
        "ExternalName" => s(svc, "/spec/externalName").to_string(),
        "LoadBalancer" => {
            let ips: Vec<String> = svc
                .pointer("/status/loadBalancer/ingress")
                .and_then(Value::as_array)
                .map(|a| a.iter().map(|i| s(i, "/ip").to_string()).collect())
                .unwrap_or_default();
            if ips.is_empty() {
                "<pending>".into()
            } else {
                ips.join(",")
            }
        }
        _ => {
            let ips: Vec<String> = svc
                .pointer("/spec/externalIPs")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            or_none(ips.join(","))
        }
    };
    let ports: Vec<String> = svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    let port = p.get("port").and_then(Value::as_i64).unwrap_or(0);
                    let proto = p.get("protocol").and_then(Value::as_str).unwrap_or("TCP");
                    match p.get("nodePort").and_then(Value::as_i64) {
                        Some(np) => format!("{port}:{np}/{proto}"),
                        None => format!("{port}/{proto}"),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let selector = svc
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .map(|m| {
            let mut pairs: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect();
            pairs.sort();
            pairs.join(",")
        })
        .unwrap_or_default();
    vec![
        json!(s(svc, "/metadata/name")),
        json!(kind),
        json!(or_none(s(svc, "/spec/clusterIP").to_string())),
        json!(external),
        json!(or_none(ports.join(","))),
        json!(age(svc, now)),
        json!(or_none(selector)),
    ]
}

/// `printResourceQuota`: `<resource>: <used>/<hard>` in name order, `limits.*` in the
/// LIMIT column and the rest in REQUEST.
fn quota_cells(quota: &Value) -> [String; 2] {
    let (mut request, mut limit) = (Vec::new(), Vec::new());
    let used = &quota["status"]["used"];
    let mut hard: Vec<(&String, &Value)> = quota["status"]["hard"]
        .as_object()
        .into_iter()
        .flatten()
        .collect();
    hard.sort_by(|a, b| a.0.cmp(b.0));
    for (name, value) in hard {
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            Value::Null => "0".into(),
            other => other.to_string(),
        };
        let cell = format!("{name}: {}/{}", text(&used[name]), text(value));
        if name.split('.').next() == Some("limits") && name.contains('.') {
            limit.push(cell);
        } else {
            request.push(cell);
        }
    }
    [request.join(", "), limit.join(", ")]
}

fn count(object: &Value, keys: &[&str]) -> usize {
    keys.iter()
        .map(|k| {
            object
                .get(*k)
                .and_then(Value::as_object)
                .map_or(0, |m| m.len())
        })
        .sum()
}

fn cells(info: &ResourceInfo, object: &Value, now: DateTime<Utc>) -> Vec<Value> {
    let name = json!(s(object, "/metadata/name"));
    match (info.group, info.plural) {
        ("", "pods") => pod_cells(object, now),
        ("", "nodes") => node_cells(object, now),
        ("", "namespaces") => vec![
            name,
            json!(s(object, "/status/phase")),
            json!(age(object, now)),
        ],
        ("scheduling.k8s.io", "priorityclasses") => vec![
            name,
            json!(object.get("value").and_then(Value::as_i64).unwrap_or(0)),
            json!(object
                .get("globalDefault")
                .and_then(Value::as_bool)
                .unwrap_or(false)),
            json!(age(object, now)),
            json!(object
                .get("preemptionPolicy")
                .and_then(Value::as_str)
                .unwrap_or("PreemptLowerPriority")),
        ],
        ("apps", "deployments" | "replicasets" | "statefulsets" | "daemonsets") => {
            workload_cells(info.plural, object, now)
        }
        ("apps", "controllerrevisions") => {
            let owner = object
                .pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .and_then(|o| o.iter().find(|r| r["controller"] == true))
                .map(|r| format!("{}.apps/{}", s(r, "/kind").to_lowercase(), s(r, "/name")))
                .unwrap_or_else(|| "<none>".into());
            vec![
                name,
                json!(owner),
                json!(object.get("revision").and_then(Value::as_i64).unwrap_or(0)),
                json!(age(object, now)),
            ]
        }
        ("batch", "jobs") => job_cells(object, now),
        ("", "events") | ("events.k8s.io", "events") => event_cells(object, now),
        ("", "services") => service_cells(object, now),
        ("", "resourcequotas") => {
            let [request, limit] = quota_cells(object);
            vec![name, json!(age(object, now)), json!(request), json!(limit)]
        }
        ("", "limitranges") => vec![
            name,
            json!(parse_time(object.pointer("/metadata/creationTimestamp"))
                .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                .unwrap_or_default()),
        ],
        ("", "configmaps") => vec![
            name,
            json!(count(object, &["data", "binaryData"])),
            json!(age(object, now)),
        ],
        ("", "secrets") => vec![
            name,
            json!(s(object, "/type")),
            json!(count(object, &["data"])),
            json!(age(object, now)),
        ],
        ("", "serviceaccounts") => vec![
            name,
            json!(object
                .get("secrets")
                .and_then(Value::as_array)
                .map_or(0, Vec::len)),
            json!(age(object, now)),
        ],
        ("", "persistentvolumeclaims") => claim_cells(object, now),
        ("", "persistentvolumes") => volume_cells(object, now),
        ("storage.k8s.io", "storageclasses") => {
            let mut name = s(object, "/metadata/name").to_string();
            if crate::admission::storage::is_default_class(object) {
                name.push_str(" (default)");
            }
            vec![
                json!(name),
                json!(s(object, "/provisioner")),
                json!(or(s(object, "/reclaimPolicy"), "Delete")),
                json!(or(s(object, "/volumeBindingMode"), "Immediate")),
                json!(object["allowVolumeExpansion"] == true),
                json!(age(object, now)),
            ]
        }
        ("rbac.authorization.k8s.io", _) | ("apiextensions.k8s.io", _) => {
            vec![name, json!(s(object, "/metadata/creationTimestamp"))]
        }
        ("policy", "poddisruptionbudgets") => vec![
            name,
            int_or_percent(object, "/spec/minAvailable"),
            int_or_percent(object, "/spec/maxUnavailable"),
            json!(object
                .pointer("/status/disruptionsAllowed")
                .and_then(Value::as_i64)
                .unwrap_or(0)),
            json!(age(object, now)),
        ],
        _ => vec![name, json!(age(object, now))],
    }
}

/// A Table of `objects`; each row's `object` per `includeObject` (`Metadata`, `Object`, `None`).
pub fn table(
    info: &ResourceInfo,
    objects: &[Value],
    include_object: &str,
    now: DateTime<Utc>,
) -> Value {
    // A custom resource shows its CRD's additionalPrinterColumns.
    let custom = crate::crd::served(info).map(|s| s.columns.clone());
    let column_definitions: Vec<Value> = match &custom {
        Some(columns) => crate::crd::columns::definitions(columns),
        None => columns(info)
            .iter()
            .map(|(name, kind, format, priority, description)| {
                json!({"name": name, "type": kind, "format": format, "description": description, "priority": priority})
            })
            .collect(),
    };
    let rows: Vec<Value> = objects
        .iter()
        .map(|object| {
            let cells = match &custom {
                Some(columns) => crate::crd::columns::cells(columns, object, now),
                None => cells(info, object, now),
            };
            let mut row = json!({"cells": cells});
            match include_object {
                "None" => {}
                "Object" => row["object"] = object.clone(),
                _ => {
                    row["object"] = json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                           "metadata": object.get("metadata").cloned().unwrap_or(json!({}))})
                }
            }
            row
        })
        .collect();
    let rv = objects
        .last()
        .and_then(|o| o.pointer("/metadata/resourceVersion"))
        .cloned()
        .unwrap_or(json!(""));
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": rv},
           "columnDefinitions": column_definitions, "rows": rows})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::{JOBS, NODES, PODS, PRIORITY_CLASSES, SERVICES};

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-01-01T01:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn durations() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(119), "119s");
        assert_eq!(human_duration(192), "3m12s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(3 * 3600 + 5 * 60), "3h5m");
        assert_eq!(human_duration(30 * 3600), "30h");
        assert_eq!(human_duration(3 * 86400 + 3600), "3d1h");
        assert_eq!(human_duration(100 * 86400), "100d");
    }

    #[test]
    fn pod_rows() {
        let pod = json!({"metadata": {"name": "p", "creationTimestamp": "2025-01-01T00:59:00Z"},
            "spec": {"containers": [{"name": "c"}], "nodeName": "n1"},
            "status": {"phase": "Pending", "podIP": "127.0.0.12", "containerStatuses": [{"name": "c", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]}});
        let t = table(&PODS, std::slice::from_ref(&pod), "Metadata", now());
        assert_eq!(
            t["rows"][0]["cells"],
            json!([
                "p",
                "0/1",
                "ContainerCreating",
                "0",
                "60s",
                "127.0.0.12",
                "n1",
                "<none>",
                "<none>"
            ])
        );
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(t["columnDefinitions"].as_array().unwrap().len(), 9);
        let mut done = pod.clone();
        done["status"] = json!({"phase": "Succeeded", "containerStatuses": [{"name": "c", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}]});
        assert_eq!(pod_status(&done), "Completed");
        done["status"]["containerStatuses"][0]["state"] =
            json!({"terminated": {"exitCode": 1, "reason": "Error"}});
        assert_eq!(pod_status(&done), "Error");
        done["status"]["containerStatuses"][0]["state"] = json!({"terminated": {"exitCode": 137}});
        assert_eq!(pod_status(&done), "ExitCode:137");
        let mut deleting = pod;
        deleting["metadata"]["deletionTimestamp"] = json!("2025-01-01T01:00:00Z");
        assert_eq!(pod_status(&deleting), "Terminating");
        let plain = json!({"metadata": {"name": "q"}, "spec": {"containers": [{"name": "c"}]}, "status": {"phase": "Pending"}});
        assert_eq!(pod_status(&plain), "Pending");
    }

    #[test]
    fn other_rows() {
        let node = json!({"metadata": {"name": "n", "labels": {"node-role.kubernetes.io/control-plane": ""}, "creationTimestamp": "2025-01-01T00:00:00Z"},
            "status": {"conditions": [{"type": "Ready", "status": "True"}], "nodeInfo": {"kubeletVersion": "v1.32.0"}, "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}]}});
        assert_eq!(
            table(&NODES, &[node], "None", now())["rows"][0]["cells"]
                .as_array()
                .unwrap()[0..5],
            json!(["n", "Ready", "control-plane", "60m", "v1.32.0"])
                .as_array()
                .unwrap()[..]
        );
        let pc = json!({"metadata": {"name": "high"}, "value": 200, "globalDefault": false});
        assert_eq!(
            table(&PRIORITY_CLASSES, &[pc], "None", now())["rows"][0]["cells"],
            json!(["high", 200, false, "<unknown>", "PreemptLowerPriority"])
        );
        let svc = json!({"metadata": {"name": "s"}, "spec": {"type": "ClusterIP", "clusterIP": "None", "ports": [{"port": 7078, "protocol": "TCP"}], "selector": {"b": "2", "a": "1"}}});
        assert_eq!(
            table(&SERVICES, &[svc], "None", now())["rows"][0]["cells"],
            json!([
                "s",
                "ClusterIP",
                "None",
                "<none>",
                "7078/TCP",
                "<unknown>",
                "a=1,b=2"
            ])
        );
        let job = json!({"metadata": {"name": "j"}, "spec": {"completions": 1, "template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}},
            "status": {"succeeded": 1, "startTime": "2025-01-01T00:00:00Z", "completionTime": "2025-01-01T00:00:30Z", "conditions": [{"type": "Complete", "status": "True"}]}});
        assert_eq!(
            table(&JOBS, &[job], "None", now())["rows"][0]["cells"]
                .as_array()
                .unwrap()[0..4],
            json!(["j", "Complete", "1/1", "30s"]).as_array().unwrap()[..]
        );
    }
}
