//! Admission: validation, defaulting and the admission plugins this cluster runs —
//! NamespaceLifecycle, Priority, ServiceAccount (token volume injection),
//! DefaultTolerationSeconds — plus the Service IP allocator and the Job selector.
//!
//! Pure functions (`default_*`, `validate_*`) do the work; `admit_create`/`admit_update`
//! add the registry look-ups. Nothing here runs under the registry lock.

use serde_json::{json, Value};

use crate::error::ApiError;
use crate::registry::object_name;
use crate::resources::{self, ResourceInfo};
use crate::ApiServer;

pub const SERVICE_ACCOUNT_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
pub const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";

type Causes = Vec<(String, String)>;

fn is(info: &ResourceInfo, group: &str, plural: &str) -> bool {
    info.group == group && info.plural == plural
}

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

pub fn is_dns1123_label(s: &str) -> bool {
    s.len() <= 63 && matches_label_pattern(s)
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?` without a length limit.
fn matches_label_pattern(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Kubernetes' `IsDNS1123Subdomain`: at most 253 characters matching the subdomain
/// pattern. Unlike DNS, its parts have no 63-character limit — EMR's service-account names
/// (`emr-containers-sa-spark-client-<account>-<base36 role>`) are often longer than 63.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(matches_label_pattern)
}

fn is_dns1035_label(s: &str) -> bool {
    is_dns1123_label(s) && s.as_bytes()[0].is_ascii_lowercase()
}

/// The object-name rule of each resource, as its registry validates it.
pub fn validate_name(info: &ResourceInfo, name: &str) -> Option<String> {
    let (ok, msg) = match (info.group, info.plural) {
        ("", "namespaces") => (is_dns1123_label(name), LABEL_MSG),
        ("", "services") => (is_dns1035_label(name), DNS1035_MSG),
        ("rbac.authorization.k8s.io", _) | ("coordination.k8s.io", _) => {
            let ok = !name.is_empty()
                && name != "."
                && name != ".."
                && !name.contains('/')
                && !name.contains('%');
            (ok, "may not contain '/' or '%'")
        }
        _ => (is_dns1123_subdomain(name), SUBDOMAIN_MSG),
    };
    if ok {
        None
    } else {
        Some(format!("Invalid value: \"{name}\": {msg}"))
    }
}

fn invalid(info: &ResourceInfo, object: &Value, causes: Causes) -> Result<(), ApiError> {
    if causes.is_empty() {
        return Ok(());
    }
    Err(ApiError::invalid(
        info.group,
        info.kind,
        object_name(object).unwrap_or_default(),
        &causes,
    ))
}

fn set_default(object: &mut Value, key: &str, value: Value) {
    if object.get(key).is_none_or(Value::is_null) {
        object[key] = value;
    }
}

/// `Always` for `:latest` or untagged images, else `IfNotPresent` (digests count as tags).
pub fn default_pull_policy(image: &str) -> &'static str {
    let last = image.rsplit('/').next().unwrap_or(image);
    if last.contains('@') {
        return "IfNotPresent";
    }
    match last.split_once(':') {
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

fn default_container(container: &mut Value) {
    set_default(
        container,
        "terminationMessagePath",
        json!("/dev/termination-log"),
    );
    set_default(container, "terminationMessagePolicy", json!("File"));
    let image = container
        .get("image")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    set_default(
        container,
        "imagePullPolicy",
        json!(default_pull_policy(&image)),
    );
    set_default(container, "resources", json!({}));
    // Limits without requests: requests default to the limits.
    if let Some(limits) = container
        .pointer("/resources/limits")
        .and_then(Value::as_object)
        .cloned()
    {
        for (k, v) in limits {
            if container
                .pointer(&format!("/resources/requests/{k}"))
                .is_none()
            {
                if container.pointer("/resources/requests").is_none() {
                    container["resources"]["requests"] = json!({});
                }
                container["resources"]["requests"][k] = v;
            }
        }
    }
    if let Some(ports) = container.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports {
            set_default(port, "protocol", json!("TCP"));
        }
    }
}

/// Pod spec defaults, as the apiserver's defaulting sets them (also pod templates).
pub fn default_pod_spec(spec: &mut Value) {
    if !spec.is_object() {
        *spec = json!({});
    }
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "enableServiceLinks", json!(true));
    for key in ["containers", "initContainers"] {
        if let Some(containers) = spec.get_mut(key).and_then(Value::as_array_mut) {
            for c in containers {
                default_container(c);
            }
        }
    }
    if let Some(volumes) = spec.get_mut("volumes").and_then(Value::as_array_mut) {
        for v in volumes {
            if let Some(cm) = v.get_mut("configMap") {
                set_default(cm, "defaultMode", json!(420));
            }
            if let Some(secret) = v.get_mut("secret") {
                set_default(secret, "defaultMode", json!(420));
            }
        }
    }
}

/// The DefaultTolerationSeconds plugin: tolerate not-ready/unreachable nodes for 300 s.
pub fn default_tolerations(spec: &mut Value) {
    let mut tolerations = spec
        .get("tolerations")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        let present = tolerations.iter().any(|t| {
            t.get("key").and_then(Value::as_str) == Some(key)
                || (t.get("operator").and_then(Value::as_str) == Some("Exists")
                    && t.get("key").is_none())
        });
        if !present {
            tolerations.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
        }
    }
    spec["tolerations"] = Value::Array(tolerations);
}

/// `Guaranteed`, `Burstable` or `BestEffort` from the containers' requests and limits.
pub fn qos_class(spec: &Value) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|k| spec.get(*k).and_then(Value::as_array))
        .flatten()
        .collect();
    let get =
        |c: &Value, kind: &str, res: &str| c.pointer(&format!("/resources/{kind}/{res}")).cloned();
    let any = containers.iter().any(|c| {
        ["requests", "limits"]
            .iter()
            .any(|k| ["cpu", "memory"].iter().any(|r| get(c, k, r).is_some()))
    });
    if !any {
        return "BestEffort";
    }
    let guaranteed = containers.iter().all(|c| {
        ["cpu", "memory"].iter().all(|r| {
            let limit = get(c, "limits", r);
            limit.is_some() && get(c, "requests", r).is_none_or(|req| Some(req) == limit)
        })
    });
    if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

fn validate_containers(spec: &Value, prefix: &str, causes: &mut Causes) {
    let volumes: Vec<&str> = spec
        .get("volumes")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter_map(|v| v.get("name").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default();
    let mut seen: Vec<String> = Vec::new();
    for key in ["initContainers", "containers"] {
        let Some(containers) = spec.get(key).and_then(Value::as_array) else {
            continue;
        };
        for (i, c) in containers.iter().enumerate() {
            let field = format!("{prefix}.{key}[{i}]");
            match c.get("name").and_then(Value::as_str) {
                None | Some("") => causes.push((format!("{field}.name"), "Required value".into())),
                Some(n) if !is_dns1123_label(n) => causes.push((
                    format!("{field}.name"),
                    format!("Invalid value: \"{n}\": {LABEL_MSG}"),
                )),
                Some(n) if seen.iter().any(|s| s == n) => {
                    causes.push((format!("{field}.name"), format!("Duplicate value: \"{n}\"")))
                }
                Some(n) => seen.push(n.to_string()),
            }
            if c.get("image")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .trim()
                .is_empty()
            {
                causes.push((format!("{field}.image"), "Required value".into()));
            }
            if let Some(mounts) = c.get("volumeMounts").and_then(Value::as_array) {
                for (j, m) in mounts.iter().enumerate() {
                    let name = m.get("name").and_then(Value::as_str).unwrap_or_default();
                    if !volumes.contains(&name) {
                        causes.push((
                            format!("{field}.volumeMounts[{j}].name"),
                            format!("Not found: \"{name}\""),
                        ));
                    }
                }
            }
        }
    }
}

/// Pod spec validation (the common subset clients trip over).
pub fn validate_pod_spec(spec: &Value, prefix: &str, restart_policies: &[&str]) -> Causes {
    let mut causes = Causes::new();
    if spec
        .get("containers")
        .and_then(Value::as_array)
        .is_none_or(|c| c.is_empty())
    {
        causes.push((format!("{prefix}.containers"), "Required value".into()));
    }
    validate_containers(spec, prefix, &mut causes);
    let policy = spec
        .get("restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !restart_policies.contains(&policy) {
        let supported: Vec<String> = restart_policies
            .iter()
            .map(|p| format!("\"{p}\""))
            .collect();
        let what = if policy.is_empty() {
            "Required value: valid values: ".to_string()
        } else {
            format!("Unsupported value: \"{policy}\": supported values: ")
        };
        causes.push((
            format!("{prefix}.restartPolicy"),
            format!("{what}{}", supported.join(", ")),
        ));
    }
    let mut names: Vec<&str> = Vec::new();
    if let Some(volumes) = spec.get("volumes").and_then(Value::as_array) {
        for (i, v) in volumes.iter().enumerate() {
            let name = v.get("name").and_then(Value::as_str).unwrap_or_default();
            if names.contains(&name) {
                causes.push((
                    format!("{prefix}.volumes[{i}].name"),
                    format!("Duplicate value: \"{name}\""),
                ));
            }
            names.push(name);
        }
    }
    causes
}

/// The projected service-account volume the ServiceAccount plugin injects.
pub fn service_account_volume(name: &str) -> Value {
    json!({"name": name, "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
        {"configMap": {"name": ROOT_CA_CONFIGMAP, "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
    ]}})
}

/// Adds the token volume and its mount to every container (unless one already mounts the
/// path). `suffix` is the random 5 characters of `kube-api-access-<suffix>`.
pub fn inject_service_account_volume(spec: &mut Value, suffix: &str) {
    let volume_name = format!("kube-api-access-{suffix}");
    let mut injected = false;
    for key in ["initContainers", "containers"] {
        let Some(containers) = spec.get_mut(key).and_then(Value::as_array_mut) else {
            continue;
        };
        for c in containers {
            let mounts = c.get("volumeMounts").and_then(Value::as_array);
            if mounts.is_some_and(|ms| {
                ms.iter().any(|m| {
                    m.get("mountPath").and_then(Value::as_str) == Some(SERVICE_ACCOUNT_MOUNT_PATH)
                })
            }) {
                continue;
            }
            if c.get("volumeMounts").is_none_or(|m| !m.is_array()) {
                c["volumeMounts"] = json!([]);
            }
            c["volumeMounts"]
                .as_array_mut()
                .unwrap()
                .push(json!({"name": volume_name, "readOnly": true, "mountPath": SERVICE_ACCOUNT_MOUNT_PATH}));
            injected = true;
        }
    }
    if injected {
        if spec.get("volumes").is_none_or(|v| !v.is_array()) {
            spec["volumes"] = json!([]);
        }
        spec["volumes"]
            .as_array_mut()
            .unwrap()
            .push(service_account_volume(&volume_name));
    }
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut bytes = [0u8; 5];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .expect("randomness");
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// Job defaults: counts, backoff, completion mode, and the controller-uid selector/labels.
pub fn default_job(job: &mut Value, uid: &str) {
    let name = object_name(job).unwrap_or_default().to_string();
    if !job.get("spec").is_some_and(Value::is_object) {
        job["spec"] = json!({});
    }
    let spec = &mut job["spec"];
    set_default(spec, "parallelism", json!(1));
    if spec.get("completions").is_none_or(Value::is_null)
        && spec.get("parallelism") == Some(&json!(1))
    {
        spec["completions"] = json!(1);
    }
    set_default(spec, "backoffLimit", json!(6));
    set_default(spec, "completionMode", json!("NonIndexed"));
    set_default(spec, "suspend", json!(false));
    set_default(spec, "podReplacementPolicy", json!("TerminatingOrFailed"));
    let manual = spec
        .get("manualSelector")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if !manual {
        spec["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
        if !spec
            .pointer("/template/metadata")
            .is_some_and(Value::is_object)
        {
            spec["template"]["metadata"] = json!({});
        }
        let meta = &mut spec["template"]["metadata"];
        if !meta.get("labels").is_some_and(Value::is_object) {
            meta["labels"] = json!({});
        }
        let labels = &mut meta["labels"];
        labels["batch.kubernetes.io/controller-uid"] = json!(uid);
        labels["batch.kubernetes.io/job-name"] = json!(name);
        labels["controller-uid"] = json!(uid);
        labels["job-name"] = json!(name);
    }
    default_pod_spec(&mut spec["template"]["spec"]);
    let template_labels = spec.pointer("/template/metadata/labels").cloned();
    if job
        .pointer("/metadata/labels")
        .is_none_or(|l| l.as_object().is_none_or(|m| m.is_empty()))
    {
        if let Some(labels) = template_labels {
            job["metadata"]["labels"] = labels;
        }
    }
}

pub fn validate_job(job: &Value) -> Causes {
    let spec = job
        .pointer("/spec/template/spec")
        .cloned()
        .unwrap_or(json!({}));
    validate_pod_spec(&spec, "spec.template.spec", &["OnFailure", "Never"])
}

/// Service defaults that need no allocation.
pub fn default_service(service: &mut Value) {
    if !service.get("spec").is_some_and(Value::is_object) {
        service["spec"] = json!({});
    }
    let spec = &mut service["spec"];
    set_default(spec, "type", json!("ClusterIP"));
    set_default(spec, "sessionAffinity", json!("None"));
    if spec["type"] != "ExternalName" {
        set_default(spec, "ipFamilies", json!(["IPv4"]));
        set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
        set_default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
        for port in ports {
            set_default(port, "protocol", json!("TCP"));
            if port.get("targetPort").is_none() {
                port["targetPort"] = port.get("port").cloned().unwrap_or(json!(0));
            }
        }
    }
    set_default(service, "status", json!({"loadBalancer": {}}));
}

/// A free IP in 10.96.0.0/12 (skipping .0.0/.0.1), given the IPs in use.
pub fn allocate_cluster_ip(used: &[String]) -> Option<String> {
    let mut bytes = [0u8; 4];
    for _ in 0..4096 {
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).ok()?;
        let offset = u32::from_be_bytes(bytes) & 0x000f_ffff;
        if offset < 2 || offset == 0x000f_ffff {
            continue;
        }
        let ip = std::net::Ipv4Addr::from(0x0a60_0000u32 | offset).to_string();
        if !used.contains(&ip) {
            return Some(ip);
        }
    }
    None
}

fn used_cluster_ips(server: &ApiServer) -> Vec<String> {
    let (services, _) = server.registry.list(resources::SERVICES.resource(), None);
    services
        .iter()
        .filter_map(|s| {
            s.pointer("/spec/clusterIP")
                .and_then(Value::as_str)
                .map(String::from)
        })
        .collect()
}

fn admit_service_create(server: &ApiServer, service: &mut Value) -> Result<(), ApiError> {
    default_service(service);
    let mut causes = Causes::new();
    let kind = service["spec"]["type"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if !matches!(
        kind.as_str(),
        "ClusterIP" | "NodePort" | "LoadBalancer" | "ExternalName"
    ) {
        causes.push(("spec.type".into(), format!("Unsupported value: \"{kind}\": supported values: \"ClusterIP\", \"ExternalName\", \"LoadBalancer\", \"NodePort\"")));
    }
    let requested = service
        .pointer("/spec/clusterIP")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let headless = requested == "None";
    if !headless
        && kind != "ExternalName"
        && service
            .pointer("/spec/ports")
            .and_then(Value::as_array)
            .is_none_or(|p| p.is_empty())
    {
        causes.push(("spec.ports".into(), "Required value".into()));
    }
    invalid(&resources::SERVICES, service, causes)?;
    if kind == "ExternalName" || headless {
        if headless {
            service["spec"]["clusterIPs"] = json!(["None"]);
        }
        return Ok(());
    }
    let used = used_cluster_ips(server);
    let ip = if requested.is_empty() {
        allocate_cluster_ip(&used)
            .ok_or_else(|| ApiError::internal("failed to allocate a serviceIP: range is full"))?
    } else {
        if used.contains(&requested) {
            return invalid(&resources::SERVICES, service, vec![(
                "spec.clusterIPs".into(),
                format!("Invalid value: []string{{\"{requested}\"}}: failed to allocate IP {requested}: provided IP is already allocated"),
            )]);
        }
        requested
    };
    service["spec"]["clusterIP"] = json!(ip);
    service["spec"]["clusterIPs"] = json!([ip]);
    if matches!(kind.as_str(), "NodePort" | "LoadBalancer") {
        if let Some(ports) = service["spec"]["ports"].as_array_mut() {
            for port in ports {
                if port.get("nodePort").is_none() {
                    let mut b = [0u8; 2];
                    let _ =
                        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
                    port["nodePort"] = json!(30000 + (u16::from_be_bytes(b) % 2768) as u64);
                }
            }
        }
    }
    Ok(())
}

/// NamespaceLifecycle: the namespace must exist and not be terminating.
fn check_namespace(
    server: &ApiServer,
    info: &ResourceInfo,
    ns: &str,
    object: &Value,
) -> Result<(), ApiError> {
    let namespace = server
        .registry
        .get(resources::NAMESPACES.resource(), "", ns)
        .ok_or_else(|| ApiError::not_found("", "namespaces", ns))?;
    let terminating = namespace.pointer("/metadata/deletionTimestamp").is_some()
        || namespace.pointer("/status/phase").and_then(Value::as_str) == Some("Terminating");
    if terminating {
        let name = object_name(object).unwrap_or_default();
        let mut err = ApiError::forbidden(format!(
            "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
            info.qualified()
        ));
        err.details = Some(
            json!({"name": name, "kind": info.plural, "causes": [{"reason": "NamespaceTerminating", "message": format!("namespace {ns} is being terminated"), "field": "metadata.namespace"}]}),
        );
        return Err(err);
    }
    Ok(())
}

/// Priority plugin: resolve `priorityClassName` (or the global default) to `spec.priority`.
fn admit_pod_priority(server: &ApiServer, pod: &mut Value) -> Result<(), ApiError> {
    let name = object_name(pod).unwrap_or_default().to_string();
    let class_name = pod
        .pointer("/spec/priorityClassName")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let class = if class_name.is_empty() {
        let (classes, _) = server
            .registry
            .list(resources::PRIORITY_CLASSES.resource(), None);
        classes
            .into_iter()
            .find(|c| c.get("globalDefault").and_then(Value::as_bool) == Some(true))
    } else {
        Some(
            server
                .registry
                .get(resources::PRIORITY_CLASSES.resource(), "", &class_name)
                .ok_or_else(|| ApiError::forbidden(format!("pods \"{name}\" is forbidden: no PriorityClass with name {class_name} was found")))?,
        )
    };
    let (priority, policy) = match &class {
        Some(c) => (
            c.get("value").and_then(Value::as_i64).unwrap_or(0),
            c.get("preemptionPolicy")
                .and_then(Value::as_str)
                .unwrap_or("PreemptLowerPriority")
                .to_string(),
        ),
        None => (0, "PreemptLowerPriority".to_string()),
    };
    if let Some(given) = pod.pointer("/spec/priority").and_then(Value::as_i64) {
        if given != priority {
            return Err(ApiError::forbidden(format!(
                "pods \"{name}\" is forbidden: the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {priority} from the given PriorityClass name"
            )));
        }
    }
    if let Some(c) = &class {
        pod["spec"]["priorityClassName"] = json!(object_name(c).unwrap_or_default());
    }
    pod["spec"]["priority"] = json!(priority);
    pod["spec"]["preemptionPolicy"] = json!(policy);
    Ok(())
}

/// ServiceAccount plugin: default the account, require it to exist, mount its token.
fn admit_pod_service_account(
    server: &ApiServer,
    ns: &str,
    pod: &mut Value,
) -> Result<(), ApiError> {
    let name = object_name(pod).unwrap_or_default().to_string();
    let sa_name = pod
        .pointer("/spec/serviceAccountName")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .or_else(|| {
            pod.pointer("/spec/serviceAccount")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        })
        .unwrap_or("default")
        .to_string();
    pod["spec"]["serviceAccountName"] = json!(sa_name);
    pod["spec"]["serviceAccount"] = json!(sa_name);
    let sa = server
        .registry
        .get(resources::SERVICE_ACCOUNTS.resource(), ns, &sa_name)
        .ok_or_else(|| {
            ApiError::forbidden(format!(
                "pods \"{name}\" is forbidden: error looking up service account {ns}/{sa_name}: serviceaccount \"{sa_name}\" not found"
            ))
        })?;
    let automount = pod
        .pointer("/spec/automountServiceAccountToken")
        .and_then(Value::as_bool)
        .or_else(|| {
            sa.get("automountServiceAccountToken")
                .and_then(Value::as_bool)
        })
        .unwrap_or(true);
    if automount {
        inject_service_account_volume(&mut pod["spec"], &random_suffix());
    }
    Ok(())
}

fn admit_priority_class(
    server: &ApiServer,
    class: &mut Value,
    updating: Option<&Value>,
) -> Result<(), ApiError> {
    set_default(class, "preemptionPolicy", json!("PreemptLowerPriority"));
    let mut causes = Causes::new();
    match class.get("value").and_then(Value::as_i64) {
        None => causes.push(("value".into(), "Required value".into())),
        Some(v) if v > 1_000_000_000 => causes.push(("value".into(), format!("Invalid value: {v}: maximum allowed value of a user defined priority is 1000000000"))),
        Some(_) => {}
    }
    if let Some(old) = updating {
        if old.get("value") != class.get("value") {
            causes.push((
                "value".into(),
                "Forbidden: may not be changed in an update.".into(),
            ));
        }
    }
    if class.get("globalDefault").and_then(Value::as_bool) == Some(true) {
        let me = object_name(class).unwrap_or_default().to_string();
        let (classes, _) = server
            .registry
            .list(resources::PRIORITY_CLASSES.resource(), None);
        if let Some(other) = classes.iter().find(|c| {
            c.get("globalDefault").and_then(Value::as_bool) == Some(true)
                && object_name(c) != Some(me.as_str())
        }) {
            causes.push((
                "globalDefault".into(),
                format!("Invalid value: true: PriorityClass {} is already marked as default. Only one default can exist", object_name(other).unwrap_or_default()),
            ));
        }
    }
    invalid(&resources::PRIORITY_CLASSES, class, causes)
}

fn default_secret(secret: &mut Value) {
    use base64::Engine;
    set_default(secret, "type", json!("Opaque"));
    if let Some(string_data) = secret.get("stringData").and_then(Value::as_object).cloned() {
        if !secret.get("data").is_some_and(Value::is_object) {
            secret["data"] = json!({});
        }
        for (k, v) in string_data {
            let text = v.as_str().unwrap_or_default();
            secret["data"][k] = json!(base64::engine::general_purpose::STANDARD.encode(text));
        }
        secret.as_object_mut().unwrap().remove("stringData");
    }
}

/// A mutating admission step for pods being created, supplied by the embedding binary
/// (the EKS pod-identity webhook, which lives with IAM in `sparkyard-services`).
pub trait PodMutator: Send + Sync {
    /// Mutates `pod` (JSON, already defaulted) given its service account, when it exists.
    fn mutate(&self, pod: &mut serde_json::Value, service_account: Option<&serde_json::Value>);
}

/// Admission of a create: validation, defaulting and the plugins, in the apiserver's order.
pub fn admit_create(
    server: &ApiServer,
    info: &ResourceInfo,
    ns: &str,
    object: &mut Value,
) -> Result<(), ApiError> {
    let name = object_name(object).unwrap_or_default().to_string();
    if let Some(message) = validate_name(info, &name) {
        return invalid(info, object, vec![("metadata.name".into(), message)]);
    }
    if info.namespaced {
        check_namespace(server, info, ns, object)?;
    }
    match (info.group, info.plural) {
        ("", "pods") => {
            default_pod_spec(&mut object["spec"]);
            default_tolerations(&mut object["spec"]);
            admit_pod_service_account(server, ns, object)?;
            admit_pod_priority(server, object)?;
            if let Some(mutator) = server.pod_mutator.get() {
                let account = object
                    .pointer("/spec/serviceAccountName")
                    .and_then(Value::as_str)
                    .and_then(|sa| {
                        server
                            .registry
                            .get(resources::SERVICE_ACCOUNTS.resource(), ns, sa)
                    });
                mutator.mutate(object, account.as_deref());
            }
            invalid(
                info,
                object,
                validate_pod_spec(&object["spec"], "spec", &["Always", "OnFailure", "Never"]),
            )?;
            let qos = qos_class(&object["spec"]);
            object["status"] = json!({"phase": "Pending", "qosClass": qos});
        }
        ("", "namespaces") => {
            object["spec"] = json!({"finalizers": ["kubernetes"]});
            object["status"] = json!({"phase": "Active"});
            if !object
                .pointer("/metadata/labels")
                .is_some_and(Value::is_object)
            {
                object["metadata"]["labels"] = json!({});
            }
            object["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!(name);
        }
        ("", "services") => admit_service_create(server, object)?,
        ("", "secrets") => default_secret(object),
        ("", "persistentvolumeclaims") => {
            set_default(object, "status", json!({"phase": "Pending"}));
        }
        ("batch", "jobs") => {
            let uid = uuid::Uuid::new_v4().to_string();
            object["metadata"]["uid"] = json!(uid);
            default_job(object, &uid);
            invalid(info, object, validate_job(object))?;
            object["status"] = json!({});
        }
        ("scheduling.k8s.io", "priorityclasses") => admit_priority_class(server, object, None)?,
        _ => {}
    }
    Ok(())
}

/// Side effects of a create: a new namespace gets its `default` service account and the
/// `kube-root-ca.crt` ConfigMap (the controllers of a real cluster do this at once).
pub fn after_create(
    server: &ApiServer,
    info: &'static ResourceInfo,
    created: &Value,
) -> Result<(), ApiError> {
    use super::handlers::{create_internal, CreateOptions};
    if is(info, "", "namespaces") {
        let ns = object_name(created).unwrap_or_default();
        for (res, object) in [
            (
                &resources::SERVICE_ACCOUNTS,
                json!({"metadata": {"name": "default"}}),
            ),
            (
                &resources::CONFIGMAPS,
                json!({"metadata": {"name": ROOT_CA_CONFIGMAP, "annotations": {"kubernetes.io/description": "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters."}}, "data": {"ca.crt": server.ca_pem.to_string()}}),
            ),
        ] {
            match create_internal(server, res, ns, object, &CreateOptions::default()) {
                Ok(_) => {}
                Err(e) if e.code == 409 => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// The pod spec fields an update may change.
const POD_MUTABLE_MESSAGE: &str = "Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

fn strip_mutable_pod_fields(spec: &Value) -> Value {
    let mut s = spec.clone();
    if let Some(map) = s.as_object_mut() {
        for key in [
            "activeDeadlineSeconds",
            "tolerations",
            "terminationGracePeriodSeconds",
            "schedulingGates",
        ] {
            map.remove(key);
        }
        for key in ["containers", "initContainers"] {
            if let Some(containers) = map.get_mut(key).and_then(Value::as_array_mut) {
                for c in containers {
                    if let Some(c) = c.as_object_mut() {
                        c.remove("image");
                    }
                }
            }
        }
    }
    s
}

/// Whether `new` changes only what Kubernetes lets a pod update change.
pub fn pod_spec_update_allowed(old: &Value, new: &Value) -> bool {
    strip_mutable_pod_fields(old) == strip_mutable_pod_fields(new)
}

/// Admission of an update: defaulting of the new object and the immutability rules.
pub fn admit_update(
    server: &ApiServer,
    info: &ResourceInfo,
    old: &Value,
    new: &mut Value,
) -> Result<(), ApiError> {
    match (info.group, info.plural) {
        ("", "pods") => {
            default_pod_spec(&mut new["spec"]);
            if !pod_spec_update_allowed(&old["spec"], &new["spec"]) {
                return invalid(info, new, vec![("spec".into(), POD_MUTABLE_MESSAGE.into())]);
            }
        }
        ("", "services") => {
            for key in ["clusterIP", "clusterIPs"] {
                let given = new
                    .pointer(&format!("/spec/{key}"))
                    .filter(|v| !v.is_null() && *v != "");
                if given.is_none() {
                    if let Some(old_value) = old.pointer(&format!("/spec/{key}")) {
                        new["spec"][key] = old_value.clone();
                    }
                }
            }
            if new.pointer("/spec/clusterIP") != old.pointer("/spec/clusterIP") {
                let ip = new
                    .pointer("/spec/clusterIP")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                return invalid(
                    info,
                    new,
                    vec![(
                        "spec.clusterIP".into(),
                        format!("Invalid value: \"{ip}\": field is immutable"),
                    )],
                );
            }
            default_service(new);
        }
        ("", "configmaps") | ("", "secrets") => {
            if old.get("immutable").and_then(Value::as_bool) == Some(true) {
                let changed = old.get("data") != new.get("data")
                    || old.get("binaryData") != new.get("binaryData");
                if changed || new.get("immutable").and_then(Value::as_bool) != Some(true) {
                    return invalid(
                        info,
                        new,
                        vec![(
                            "data".into(),
                            "Forbidden: field is immutable when `immutable` is set".into(),
                        )],
                    );
                }
            }
            if info.plural == "secrets" {
                default_secret(new);
            }
        }
        ("batch", "jobs") => {
            let uid = old
                .pointer("/metadata/uid")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            default_job(new, &uid);
            if old.pointer("/spec/selector") != new.pointer("/spec/selector") {
                return invalid(
                    info,
                    new,
                    vec![(
                        "spec.selector".into(),
                        "Invalid value: field is immutable".into(),
                    )],
                );
            }
            invalid(info, new, validate_job(new))?;
        }
        ("scheduling.k8s.io", "priorityclasses") => admit_priority_class(server, new, Some(old))?,
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {

    #[test]
    fn subdomain_parts_may_exceed_63_characters() {
        let long = format!(
            "emr-containers-sa-spark-client-123456789012-{}",
            "a".repeat(47)
        );
        assert!(long.len() > 63);
        assert!(is_dns1123_subdomain(&long));
        assert!(!is_dns1123_label(&long));
        assert!(!is_dns1123_subdomain(&"a".repeat(254)));
        assert!(!is_dns1123_subdomain("a..b"));
        assert!(!is_dns1123_subdomain("-a"));
    }

    use super::*;

    #[test]
    fn names() {
        assert!(validate_name(&resources::PODS, "spark-pi-1.driver").is_none());
        assert!(validate_name(&resources::PODS, "Bad_Name")
            .unwrap()
            .contains("RFC 1123 subdomain"));
        assert!(validate_name(&resources::NAMESPACES, "a.b").is_some());
        assert!(validate_name(&resources::SERVICES, "1abc").is_some());
        assert!(validate_name(&resources::CLUSTER_ROLES, "system:controller:x").is_none());
    }

    #[test]
    fn pod_defaults_as_the_apiserver_sets_them() {
        let mut spec = json!({"containers": [
            {"name": "a", "image": "apache/spark:4.0.1", "resources": {"limits": {"memory": "1Gi"}}, "ports": [{"containerPort": 80}]},
            {"name": "b", "image": "busybox"}]});
        default_pod_spec(&mut spec);
        default_tolerations(&mut spec);
        assert_eq!(spec["restartPolicy"], "Always");
        assert_eq!(spec["dnsPolicy"], "ClusterFirst");
        assert_eq!(spec["schedulerName"], "default-scheduler");
        assert_eq!(spec["terminationGracePeriodSeconds"], 30);
        assert_eq!(spec["enableServiceLinks"], true);
        assert_eq!(spec["containers"][0]["imagePullPolicy"], "IfNotPresent");
        assert_eq!(spec["containers"][1]["imagePullPolicy"], "Always");
        assert_eq!(
            spec["containers"][0]["terminationMessagePath"],
            "/dev/termination-log"
        );
        assert_eq!(
            spec["containers"][0]["resources"]["requests"]["memory"],
            "1Gi"
        );
        assert_eq!(spec["containers"][0]["ports"][0]["protocol"], "TCP");
        assert_eq!(spec["tolerations"].as_array().unwrap().len(), 2);
        assert_eq!(qos_class(&spec), "Burstable");
        assert_eq!(
            qos_class(&json!({"containers": [{"name": "a"}]})),
            "BestEffort"
        );
        assert_eq!(
            qos_class(
                &json!({"containers": [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]})
            ),
            "Guaranteed"
        );
    }

    #[test]
    fn pull_policy() {
        assert_eq!(default_pull_policy("busybox"), "Always");
        assert_eq!(default_pull_policy("busybox:latest"), "Always");
        assert_eq!(default_pull_policy("localhost:5000/busybox"), "Always");
        assert_eq!(
            default_pull_policy("localhost:5000/busybox:1"),
            "IfNotPresent"
        );
        assert_eq!(default_pull_policy("busybox@sha256:abc"), "IfNotPresent");
    }

    #[test]
    fn pod_validation() {
        let causes = validate_pod_spec(
            &json!({"restartPolicy": "Always"}),
            "spec",
            &["Always", "OnFailure", "Never"],
        );
        assert_eq!(
            causes,
            vec![("spec.containers".to_string(), "Required value".to_string())]
        );
        let spec = json!({"restartPolicy": "Sometimes", "containers": [{"name": "a", "image": "x", "volumeMounts": [{"name": "v", "mountPath": "/v"}]}, {"name": "a"}]});
        let causes = validate_pod_spec(&spec, "spec", &["Always", "OnFailure", "Never"]);
        let fields: Vec<&str> = causes.iter().map(|(f, _)| f.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.containers[0].volumeMounts[0].name",
                "spec.containers[1].name",
                "spec.containers[1].image",
                "spec.restartPolicy"
            ]
        );
    }

    #[test]
    fn service_account_volume_is_mounted_everywhere() {
        let mut spec = json!({"containers": [{"name": "a"}, {"name": "b", "volumeMounts": [{"name": "x", "mountPath": "/x"}]}], "volumes": [{"name": "x", "emptyDir": {}}]});
        inject_service_account_volume(&mut spec, "abcde");
        assert_eq!(spec["volumes"][1]["name"], "kube-api-access-abcde");
        assert_eq!(
            spec["volumes"][1]["projected"]["sources"][1]["configMap"]["name"],
            "kube-root-ca.crt"
        );
        for c in spec["containers"].as_array().unwrap() {
            let mounts = c["volumeMounts"].as_array().unwrap();
            assert!(mounts
                .iter()
                .any(|m| m["mountPath"] == SERVICE_ACCOUNT_MOUNT_PATH && m["readOnly"] == true));
        }
    }

    #[test]
    fn job_defaults_and_validation() {
        let mut job = json!({"metadata": {"name": "j"}, "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}});
        default_job(&mut job, "u1");
        assert_eq!(job["spec"]["completions"], 1);
        assert_eq!(job["spec"]["parallelism"], 1);
        assert_eq!(job["spec"]["backoffLimit"], 6);
        assert_eq!(job["spec"]["completionMode"], "NonIndexed");
        assert_eq!(
            job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
            "u1"
        );
        assert_eq!(
            job["spec"]["template"]["metadata"]["labels"]["job-name"],
            "j"
        );
        assert_eq!(job["metadata"]["labels"]["controller-uid"], "u1");
        assert!(validate_job(&job).is_empty());
        job["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
        assert_eq!(validate_job(&job)[0].0, "spec.template.spec.restartPolicy");
    }

    #[test]
    fn pod_updates_change_only_mutable_fields() {
        let old = json!({"containers": [{"name": "a", "image": "x"}], "nodeName": "n"});
        assert!(pod_spec_update_allowed(
            &old,
            &json!({"containers": [{"name": "a", "image": "y"}], "nodeName": "n", "activeDeadlineSeconds": 5})
        ));
        assert!(!pod_spec_update_allowed(
            &old,
            &json!({"containers": [{"name": "b", "image": "x"}], "nodeName": "n"})
        ));
        assert!(!pod_spec_update_allowed(
            &old,
            &json!({"containers": [{"name": "a", "image": "x"}], "nodeName": "m"})
        ));
    }

    #[test]
    fn service_defaults_and_ip_allocation() {
        let mut svc = json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}});
        default_service(&mut svc);
        assert_eq!(svc["spec"]["type"], "ClusterIP");
        assert_eq!(svc["spec"]["sessionAffinity"], "None");
        assert_eq!(svc["spec"]["ports"][0]["targetPort"], 80);
        let ip = allocate_cluster_ip(&[]).unwrap();
        let parsed: std::net::Ipv4Addr = ip.parse().unwrap();
        assert_eq!(u32::from(parsed) & 0xfff0_0000, 0x0a60_0000);
    }
}
