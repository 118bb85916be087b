//! The driver's objects, as `KubernetesDriverBuilder` and `Client` build them in Spark 4.0.1:
//! the pod template is loaded and its Spark container chosen, then the feature steps run in
//! Spark's order (basic driver, service account, service, command, executor pod template,
//! local directories), then the client adds the `spark.properties` ConfigMap and its volume.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::conf::{ConfError, SparkConf};
use crate::names;
use crate::properties;

/// Spark's version, in the `spark-version` label.
pub const SPARK_VERSION: &str = "4.0.1";
/// Where the driver's conf is mounted (`SPARK_CONF_DIR`).
pub const SPARK_CONF_DIR: &str = "/opt/spark/conf";
const DRIVER_CONTAINER: &str = "spark-kubernetes-driver";
const POD_TEMPLATE_DIR: &str = "/opt/spark/pod-template";
const POD_TEMPLATE_FILE: &str = "pod-spec-template.yml";
const POD_TEMPLATE_KEY: &str = "podspec-configmap-key";
/// `ResourceProfile.MEMORY_OVERHEAD_MIN_MIB`.
const MIN_OVERHEAD_MIB: u64 = 384;
/// The overhead factor of Python and R drivers when none is set.
const NON_JVM_OVERHEAD_FACTOR: f64 = 0.4;

/// The application, as SparkSubmit hands it to the Kubernetes client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MainResource {
    /// A jar, or `None` for a class already on the classpath (`spark-internal`).
    Java(Option<String>),
    Python(String),
    R(String),
}

/// One submission: everything the JVM client would read, with its randomness passed in.
#[derive(Debug, Clone)]
pub struct Submission {
    /// spark-defaults, then `--conf`s (later wins), with SparkSubmit's own settings
    /// (`spark.master`, `spark.submit.deployMode`, `spark.app.name`, …) already in it.
    pub conf: SparkConf,
    pub main_resource: MainResource,
    pub main_class: String,
    pub app_args: Vec<String>,
    pub namespace: String,
    /// The application id (`spark-<jobRunId>` with sparkyard's runtime, as on EMR).
    pub app_id: String,
    /// The driver pod template, parsed (`spark.kubernetes.driver.podTemplateFile`).
    pub driver_template: Option<Value>,
    /// The executor pod template's text (`spark.kubernetes.executor.podTemplateFile`).
    pub executor_template: Option<String>,
    /// `SPARK_USER` (the submitting OS user).
    pub user: String,
    /// Spark's `uniqueID`s: for the resource name prefix, the ConfigMap, a shortened Service name.
    pub ids: [String; 3],
    /// The driver's local directory (`/var/data/spark-<uuid>`).
    pub local_dir_uuid: String,
    /// The date line of `spark.properties`.
    pub date: String,
    /// When spark-submit ran (`spark.app.submitTime`, epoch milliseconds), unless set.
    pub submit_time_millis: u64,
    /// The client's `SPARK_CONF_DIR` files that go to the driver, by name (see
    /// [`conf_dir_files`]); they join `spark.properties` in the driver's ConfigMap.
    pub conf_files: BTreeMap<String, String>,
}

/// Which of the client's `SPARK_CONF_DIR` files (name, text) go into the driver's ConfigMap,
/// as Spark's `KubernetesClientUtils.loadSparkConfDirFiles` picks them: not archives or
/// jars, not `*.template`, not Spark's own `spark*conf`/`spark*properties` (they are resolved
/// into `spark.properties`), none larger than `max_size` (`spark.kubernetes.configMap.maxSize`)
/// with its name; then smallest first (by name among equals) while the total of names and
/// texts stays under `max_size`.
pub fn conf_dir_files(files: Vec<(String, String)>, max_size: u64) -> BTreeMap<String, String> {
    let excluded = |name: &str| {
        [".gz", ".zip", ".jar", ".tar", ".template"]
            .iter()
            .any(|suffix| name.ends_with(suffix))
            || (name.starts_with("spark")
                && (name.ends_with("conf") || name.ends_with("properties")))
    };
    let weight = |(name, text): &(String, String)| (name.len() + text.len()) as u64;
    let mut files: Vec<(String, String)> = files
        .into_iter()
        .filter(|f| !excluded(&f.0) && weight(f) <= max_size)
        .collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    files.sort_by_key(weight);
    let mut total = 0;
    let mut out = BTreeMap::new();
    for file in files {
        if total + weight(&file) < max_size {
            total += weight(&file);
            out.insert(file.0, file.1);
        }
    }
    out
}

/// What the submission creates, in the order Spark creates it: the pod first, then the other
/// objects, which get an owner reference to the pod once it exists.
#[derive(Debug, Clone, PartialEq)]
pub struct DriverObjects {
    pub pod: Value,
    pub service: Value,
    pub config_maps: Vec<Value>,
    /// The driver's resolved `spark.properties`.
    pub properties: BTreeMap<String, String>,
}

/// Why a submission is not for the native path: Spark options whose objects have not been
/// proven equal to JVM spark-submit's (see the conformance test). `None`: supported.
pub fn unsupported(conf: &SparkConf, main: &MainResource) -> Option<String> {
    const PREFIXES: &[(&str, &str)] = &[
        ("spark.kubernetes.driver.secrets.", "secret volumes"),
        ("spark.kubernetes.driver.secretKeyRef.", "secret env vars"),
        (
            "spark.kubernetes.authenticate.submission.",
            "submission credentials",
        ),
        (
            "spark.kubernetes.authenticate.driver.mounted.",
            "mounted credentials",
        ),
        ("spark.kubernetes.kerberos.", "Kerberos"),
        (
            "spark.kubernetes.driver.service.",
            "driver service settings",
        ),
        (
            "spark.kubernetes.driver.resource.",
            "custom driver resources",
        ),
        ("spark.driver.resource.", "custom driver resources"),
    ];
    for (prefix, what) in PREFIXES {
        if let Some(key) = conf.entries().keys().find(|k| k.starts_with(prefix)) {
            return Some(format!("{what} ({key})"));
        }
    }
    for key in [
        "spark.kubernetes.hadoop.configMapName",
        "spark.kubernetes.driver.podTemplateContainerName",
        "spark.kubernetes.local.dirs.tmpfs",
        "spark.local.dir",
        "spark.kubernetes.file.upload.path",
        "spark.kubernetes.driver.scheduler.name",
        "spark.kubernetes.scheduler.name",
        "spark.kubernetes.driver.reusePersistentVolumeClaim",
    ] {
        if conf.contains(key) {
            return Some(format!("{key} is set"));
        }
    }
    if let Some(steps) = conf.get("spark.kubernetes.driver.pod.featureSteps") {
        if let Some(other) = steps
            .split(',')
            .map(str::trim)
            .find(|s| !s.is_empty() && *s != "io.sparkyard.spark.EmrApplicationIdStep")
        {
            return Some(format!("custom driver feature step {other}"));
        }
    }
    if matches!(main, MainResource::R(_)) {
        return Some("an R application".into());
    }
    driver_volumes(conf).err()
}

/// `spark.kubernetes.driver.volumes.<type>.<name>.*` as Spark's `MountVolumesFeatureStep`
/// turns them into a volume mount on the driver container and a pod volume, or why they are
/// not in the proven set: more than one volume (Spark orders them by its conf's hash order),
/// on-demand or provisioned claims (Spark creates the claims), or a key Spark would refuse
/// (left to the JVM, which gives its own error).
fn driver_volumes(conf: &SparkConf) -> Result<Vec<(Value, Value)>, String> {
    const PREFIX: &str = "spark.kubernetes.driver.volumes.";
    let keys = conf.with_prefix(PREFIX);
    let mut volumes: Vec<(String, String)> = keys
        .keys()
        .filter_map(|k| {
            let mut parts = k.splitn(3, '.');
            Some((parts.next()?.to_string(), parts.next()?.to_string()))
        })
        .collect();
    volumes.dedup();
    if volumes.len() > 1 {
        return Err("several driver volumes".into());
    }
    let mut out = Vec::new();
    for (kind, name) in volumes {
        let key = |suffix: &str| keys.get(&format!("{kind}.{name}.{suffix}")).cloned();
        let refused = |what: &str| Err(format!("driver volume {name}: {what}"));
        let Some(path) = key("mount.path") else {
            return refused("no mount.path");
        };
        let read_only = match key("mount.readOnly").as_deref() {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(_) => return refused("mount.readOnly is not a boolean"),
        };
        let mount = json!({
            "mountPath": path,
            "name": name,
            "readOnly": read_only,
            "subPath": key("mount.subPath").unwrap_or_default(),
            "subPathExpr": key("mount.subPathExpr").unwrap_or_default(),
        });
        let source = match kind.as_str() {
            "hostPath" => {
                let Some(host) = key("options.path") else {
                    return refused("no options.path");
                };
                json!({"hostPath": {"path": host, "type": key("options.type").unwrap_or_default()}})
            }
            "emptyDir" => {
                let mut dir = json!({"medium": key("options.medium").unwrap_or_default()});
                if let Some(limit) = key("options.sizeLimit") {
                    dir["sizeLimit"] = json!(limit);
                }
                json!({ "emptyDir": dir })
            }
            "persistentVolumeClaim" => match key("options.claimName") {
                Some(claim)
                    if claim != "OnDemand"
                        && !claim.contains("SPARK_EXECUTOR_ID")
                        && key("options.storageClass").is_none()
                        && key("options.sizeLimit").is_none() =>
                {
                    json!({"persistentVolumeClaim": {"claimName": claim, "readOnly": read_only}})
                }
                _ => return refused("a claim Spark creates or names"),
            },
            "nfs" => match (key("options.path"), key("options.server")) {
                (Some(path), Some(server)) => json!({"nfs": {"path": path, "server": server}}),
                _ => return refused("nfs needs options.path and options.server"),
            },
            other => return refused(&format!("volume type {other}")),
        };
        let mut volume = source;
        volume["name"] = json!(name);
        out.push((mount, volume));
    }
    Ok(out)
}

/// The driver's Pod, Service and ConfigMaps.
pub fn build(s: &Submission) -> Result<DriverObjects, ConfError> {
    // SparkSubmit drops `spark.driver.host` in cluster mode before any feature step runs
    // (the driver's Service name replaces it), so only the bind address is refused.
    let mut conf = s.conf.clone();
    conf.remove("spark.driver.host");
    let conf = &conf;
    if conf.contains("spark.driver.bindAddress") {
        return Err(ConfError::Requirement(
            "spark.driver.bindAddress is not supported in Kubernetes mode, as the driver's bind address is managed and set to the driver pod's IP address.".into(),
        ));
    }
    let app_name = conf.get("spark.app.name").unwrap_or("spark");
    let prefix = names::resource_name_prefix(app_name, &s.ids[0]);
    let pod_name = conf
        .get("spark.kubernetes.driver.pod.name")
        .map(String::from)
        .unwrap_or_else(|| format!("{prefix}-driver"));
    let image = conf
        .get("spark.kubernetes.driver.container.image")
        .or(conf.get("spark.kubernetes.container.image"))
        .ok_or_else(|| ConfError::Missing("Must specify the driver container image".into()))?;

    // The template, and its Spark container (the first one).
    let mut pod = s.driver_template.clone().unwrap_or_else(|| json!({}));
    let mut container = take_first_container(&mut pod);

    // Basic driver step.
    let labels = driver_labels(conf, &s.app_id, app_name)?;
    let cores = conf.get("spark.driver.cores").unwrap_or("1");
    let cpu_request = conf
        .get("spark.kubernetes.driver.request.cores")
        .unwrap_or(cores);
    let memory_mib = conf.mib("spark.driver.memory", 1024)?;
    let non_jvm = !matches!(s.main_resource, MainResource::Java(_));
    let default_factor = match (
        non_jvm,
        conf.double("spark.kubernetes.memoryOverheadFactor")?,
    ) {
        (_, Some(set)) => set,
        (true, None) => NON_JVM_OVERHEAD_FACTOR,
        (false, None) => 0.1,
    };
    let factor = conf
        .double("spark.driver.memoryOverheadFactor")?
        .unwrap_or(default_factor);
    let overhead_mib = match conf.get("spark.driver.memoryOverhead") {
        Some(_) => conf.mib("spark.driver.memoryOverhead", 0)?,
        None => ((factor * memory_mib as f64) as u64).max(MIN_OVERHEAD_MIB),
    };
    let memory = format!("{}Mi", memory_mib + overhead_mib);
    // The ports are read with `SparkConf.getInt`, the UI port as a typed entry: their
    // errors differ, as Spark's do.
    let driver_port = conf.get_int("spark.driver.port", 7078)?;
    let block_manager_port = match conf.get("spark.driver.blockManager.port") {
        Some(_) => conf.get_int("spark.driver.blockManager.port", 7079)?,
        None => conf.get_int("spark.blockManager.port", 7079)?,
    };
    let ui_port = conf.int("spark.ui.port", 4040)?;

    set_default(&mut container, "name", json!(DRIVER_CONTAINER));
    container["image"] = json!(image);
    container["imagePullPolicy"] = json!(conf
        .get("spark.kubernetes.container.image.pullPolicy")
        .unwrap_or("IfNotPresent"));
    for (name, port) in [
        ("driver-rpc-port", driver_port),
        ("blockmanager", block_manager_port),
        ("spark-ui", ui_port),
    ] {
        push(
            &mut container,
            "ports",
            json!({"containerPort": port, "name": name, "protocol": "TCP"}),
        );
    }
    push(
        &mut container,
        "env",
        json!({"name": "SPARK_USER", "value": s.user}),
    );
    push(
        &mut container,
        "env",
        json!({"name": "SPARK_APPLICATION_ID", "value": s.app_id}),
    );
    for (name, value) in conf.with_prefix("spark.kubernetes.driverEnv.") {
        push(&mut container, "env", json!({"name": name, "value": value}));
    }
    push(
        &mut container,
        "env",
        json!({"name": "SPARK_DRIVER_BIND_ADDRESS",
               "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}}),
    );
    let resources = object(as_object(&mut container), "resources");
    object(resources, "requests").insert("cpu".into(), json!(cpu_request));
    object(resources, "requests").insert("memory".into(), json!(memory));
    object(resources, "limits").insert("memory".into(), json!(memory));
    if let Some(limit) = conf.get("spark.kubernetes.driver.limit.cores") {
        object(resources, "limits").insert("cpu".into(), json!(limit));
    }

    let metadata = object(as_object(&mut pod), "metadata");
    metadata.insert("name".into(), json!(pod_name));
    for (k, v) in &labels {
        object(metadata, "labels").insert(k.clone(), json!(v));
    }
    for (k, v) in conf.with_prefix("spark.kubernetes.driver.annotation.") {
        object(metadata, "annotations").insert(k, json!(substitute_app_id(&v, &s.app_id)));
    }
    let spec = object(as_object(&mut pod), "spec");
    spec.insert("restartPolicy".into(), json!("Never"));
    let selectors = conf
        .with_prefix("spark.kubernetes.node.selector.")
        .into_iter()
        .chain(conf.with_prefix("spark.kubernetes.driver.node.selector."));
    for (k, v) in selectors {
        object(spec, "nodeSelector").insert(k, json!(v));
    }
    if let Some(secrets) = conf.get("spark.kubernetes.container.image.pullSecrets") {
        for name in secrets.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            push_map(spec, "imagePullSecrets", json!({ "name": name }));
        }
    }

    // Service account step: only where the template sets none.
    if let Some(account) = conf.get("spark.kubernetes.authenticate.driver.serviceAccountName") {
        if spec.get("serviceAccount").is_none() {
            spec.insert("serviceAccount".into(), json!(account));
            spec.insert("serviceAccountName".into(), json!(account));
        }
    }

    // Service step.
    let service_name = names::driver_service_name(&prefix, &s.ids[2]);
    let mut service_annotations = Map::new();
    for (k, v) in conf.with_prefix("spark.kubernetes.driver.service.annotation.") {
        service_annotations.insert(k, json!(substitute_app_id(&v, &s.app_id)));
    }
    let mut service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": service_name, "labels": {"spark-app-selector": s.app_id}},
        "spec": {
            "clusterIP": "None",
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "selector": labels,
            "ports": [
                {"name": "driver-rpc-port", "port": driver_port, "targetPort": driver_port},
                {"name": "blockmanager", "port": block_manager_port, "targetPort": block_manager_port},
                {"name": "spark-ui", "port": ui_port, "targetPort": ui_port},
            ],
        },
    });
    if !service_annotations.is_empty() {
        service["metadata"]["annotations"] = Value::Object(service_annotations);
    }

    // Mount volumes step.
    for (mount, volume) in driver_volumes(conf).map_err(ConfError::Missing)? {
        push(&mut container, "volumeMounts", mount);
        push_map(object(as_object(&mut pod), "spec"), "volumes", volume);
    }

    // Command step.
    let (resource, resource_type) = match &s.main_resource {
        MainResource::Java(jar) => (
            jar.clone().unwrap_or_else(|| "spark-internal".into()),
            "java",
        ),
        MainResource::Python(file) => (file.clone(), "python"),
        MainResource::R(file) => (file.clone(), "r"),
    };
    for arg in ["driver", "--properties-file"] {
        push(&mut container, "args", json!(arg));
    }
    push(
        &mut container,
        "args",
        json!(format!("{SPARK_CONF_DIR}/spark.properties")),
    );
    push(&mut container, "args", json!("--class"));
    push(&mut container, "args", json!(s.main_class));
    push(&mut container, "args", json!(resource));
    for arg in &s.app_args {
        push(&mut container, "args", json!(arg));
    }

    // Executor pod template step.
    let mut config_maps = Vec::new();
    let mut system: BTreeMap<String, String> = BTreeMap::new();
    if let Some(template) = &s.executor_template {
        let name = format!("{prefix}-driver-podspec-conf-map");
        push(
            &mut container,
            "volumeMounts",
            json!({"mountPath": POD_TEMPLATE_DIR, "name": "pod-template-volume"}),
        );
        push_map(
            object(as_object(&mut pod), "spec"),
            "volumes",
            json!({"name": "pod-template-volume", "configMap": {"name": name,
                   "items": [{"key": POD_TEMPLATE_KEY, "path": POD_TEMPLATE_FILE}]}}),
        );
        config_maps.push(json!({
            "apiVersion": "v1", "kind": "ConfigMap", "immutable": true,
            "metadata": {"name": name},
            "data": {POD_TEMPLATE_KEY: template},
        }));
        system.insert(
            "spark.kubernetes.executor.podTemplateFile".into(),
            format!("{POD_TEMPLATE_DIR}/{POD_TEMPLATE_FILE}"),
        );
    }

    // Local directories step: one emptyDir.
    let local_dir = format!("/var/data/spark-{}", s.local_dir_uuid);
    push(
        &mut container,
        "env",
        json!({"name": "SPARK_LOCAL_DIRS", "value": local_dir}),
    );
    push(
        &mut container,
        "volumeMounts",
        json!({"mountPath": local_dir, "name": "spark-local-dir-1"}),
    );
    push_map(
        object(as_object(&mut pod), "spec"),
        "volumes",
        json!({"name": "spark-local-dir-1", "emptyDir": {}}),
    );

    // The client: spark.properties in a ConfigMap, mounted as the conf directory.
    let conf_map = names::driver_config_map_name(&s.ids[1]);
    push(
        &mut container,
        "env",
        json!({"name": "SPARK_CONF_DIR", "value": SPARK_CONF_DIR}),
    );
    push(
        &mut container,
        "volumeMounts",
        json!({"mountPath": SPARK_CONF_DIR, "name": "spark-conf-volume-driver"}),
    );
    push_map(
        object(as_object(&mut pod), "spec"),
        "volumes",
        json!({"name": "spark-conf-volume-driver", "configMap": {"name": conf_map,
               "items": s.conf_files.keys().map(String::as_str).chain(["spark.properties"])
                   .collect::<std::collections::BTreeSet<_>>().into_iter()
                   .map(|key| json!({"key": key, "mode": 420, "path": key}))
                   .collect::<Vec<_>>()}}),
    );

    system.extend([
        (
            "spark.kubernetes.driver.pod.name".to_string(),
            pod_name.clone(),
        ),
        ("spark.app.id".into(), s.app_id.clone()),
        ("spark.kubernetes.submitInDriver".into(), "true".into()),
        (
            "spark.kubernetes.memoryOverheadFactor".into(),
            java_double(default_factor),
        ),
        (
            "spark.driver.host".into(),
            format!("{service_name}.{}.svc", s.namespace),
        ),
        ("spark.driver.port".into(), driver_port.to_string()),
        (
            "spark.driver.blockManager.port".into(),
            block_manager_port.to_string(),
        ),
        (
            "spark.kubernetes.resource.type".into(),
            resource_type.into(),
        ),
    ]);
    let mut properties_map = conf.entries().clone();
    properties_map
        .entry("spark.app.submitTime".into())
        .or_insert_with(|| s.submit_time_millis.to_string());
    properties_map.extend(system);
    let text = properties::store(
        &format!("Java properties built from Kubernetes config map with name: {conf_map}"),
        &s.date,
        &properties_map,
    );
    let mut data = json!(s.conf_files);
    data["spark.properties"] = json!(text);
    data["spark.kubernetes.namespace"] = json!(s.namespace);
    config_maps.push(json!({
        "apiVersion": "v1", "kind": "ConfigMap", "immutable": true,
        "metadata": {"name": conf_map, "namespace": s.namespace},
        "data": data,
    }));

    let containers = object(as_object(&mut pod), "spec")
        .entry("containers")
        .or_insert_with(|| json!([]));
    if let Value::Array(list) = containers {
        list.insert(0, container);
    }
    let pod_object = as_object(&mut pod);
    pod_object.insert("apiVersion".into(), json!("v1"));
    pod_object.insert("kind".into(), json!("Pod"));
    Ok(DriverObjects {
        pod,
        service,
        config_maps,
        properties: properties_map,
    })
}

/// Spark's preset labels, after the user's (which may not use the preset keys).
fn driver_labels(
    conf: &SparkConf,
    app_id: &str,
    app_name: &str,
) -> Result<BTreeMap<String, String>, ConfError> {
    let preset = [
        ("spark-version", SPARK_VERSION.to_string()),
        ("spark-app-selector", app_id.to_string()),
        ("spark-app-name", names::app_name_label(app_name)),
        ("spark-role", "driver".to_string()),
    ];
    let mut labels: BTreeMap<String, String> = conf
        .with_prefix("spark.kubernetes.driver.label.")
        .into_iter()
        .map(|(k, v)| (k, substitute_app_id(&v, app_id)))
        .collect();
    for (key, value) in preset {
        if labels.contains_key(key) {
            return Err(ConfError::Requirement(format!(
                "Label with key {key} is not allowed as it is reserved for Spark bookkeeping operations."
            )));
        }
        labels.insert(key.to_string(), value);
    }
    Ok(labels)
}

/// `Utils.substituteAppNExecIds` for the driver: `{{APP_ID}}`, and `{{EXECUTOR_ID}}` as empty.
fn substitute_app_id(value: &str, app_id: &str) -> String {
    value
        .replace("{{APP_ID}}", app_id)
        .replace("{{EXECUTOR_ID}}", "")
}

/// Java's `Double.toString` for the factors Spark writes (`0.1`, `0.4`, `1.0`).
fn java_double(value: f64) -> String {
    if value.fract() == 0.0 {
        format!("{value:.1}")
    } else {
        format!("{value}")
    }
}

/// The template's first container, removed from the template (Spark's container selection
/// without `podTemplateContainerName`), or a new one.
fn take_first_container(pod: &mut Value) -> Value {
    pod.get_mut("spec")
        .and_then(|spec| spec.get_mut("containers"))
        .and_then(Value::as_array_mut)
        .filter(|list| !list.is_empty())
        .map(|list| list.remove(0))
        .unwrap_or_else(|| json!({}))
}

fn as_object(value: &mut Value) -> &mut Map<String, Value> {
    if !value.is_object() {
        *value = json!({});
    }
    value.as_object_mut().expect("an object")
}

fn object<'a>(map: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    let entry = map.entry(key.to_string()).or_insert_with(|| json!({}));
    as_object(entry)
}

fn set_default(value: &mut Value, key: &str, default: Value) {
    as_object(value).entry(key.to_string()).or_insert(default);
}

fn push(value: &mut Value, key: &str, item: Value) {
    push_map(as_object(value), key, item);
}

fn push_map(map: &mut Map<String, Value>, key: &str, item: Value) {
    let entry = map.entry(key.to_string()).or_insert_with(|| json!([]));
    if !entry.is_array() {
        *entry = json!([]);
    }
    entry.as_array_mut().expect("an array").push(item);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pi() -> Submission {
        let mut conf = SparkConf::new();
        for (k, v) in [
            ("spark.app.name", "PythonPi"),
            ("spark.master", "k8s://https://kubernetes.default.svc:443"),
            ("spark.submit.deployMode", "cluster"),
            ("spark.kubernetes.container.image", "apache/spark:4.0.1"),
            ("spark.kubernetes.namespace", "test"),
            ("spark.driver.memory", "512m"),
            (
                "spark.kubernetes.authenticate.driver.serviceAccountName",
                "spark",
            ),
        ] {
            conf.set(k, v);
        }
        Submission {
            conf,
            main_resource: MainResource::Python(
                "local:///opt/spark/examples/src/main/python/pi.py".into(),
            ),
            main_class: "org.apache.spark.deploy.PythonRunner".into(),
            app_args: vec!["10".into()],
            namespace: "test".into(),
            app_id: "spark-b7c9".into(),
            driver_template: None,
            executor_template: None,
            user: "root".into(),
            ids: [
                "65b8a0a209e3aa4a".into(),
                "ede6bfa209ea6de9".into(),
                "0a0b0ca209e3aa4b".into(),
            ],
            local_dir_uuid: "69b6ed1f".into(),
            date: "Mon Nov 23 19:29:23 UTC 2026".into(),
            submit_time_millis: 1_795_462_687_391,
            conf_files: BTreeMap::new(),
        }
    }

    #[test]
    fn the_pi_driver_as_spark_builds_it() {
        let objects = build(&pi()).unwrap();
        let pod = &objects.pod;
        assert_eq!(pod["metadata"]["name"], "pythonpi-65b8a0a209e3aa4a-driver");
        assert_eq!(pod["metadata"]["labels"]["spark-app-name"], "pythonpi");
        assert_eq!(pod["metadata"]["labels"]["spark-role"], "driver");
        let c = &pod["spec"]["containers"][0];
        assert_eq!(c["name"], "spark-kubernetes-driver");
        // 512m + max(384, 0.4 × 512) for a Python app.
        assert_eq!(c["resources"]["requests"]["memory"], "896Mi");
        assert_eq!(c["resources"]["limits"]["memory"], "896Mi");
        assert_eq!(c["resources"]["requests"]["cpu"], "1");
        assert_eq!(
            c["args"],
            json!([
                "driver",
                "--properties-file",
                "/opt/spark/conf/spark.properties",
                "--class",
                "org.apache.spark.deploy.PythonRunner",
                "local:///opt/spark/examples/src/main/python/pi.py",
                "10"
            ])
        );
        assert_eq!(pod["spec"]["serviceAccountName"], "spark");
        assert_eq!(
            objects.service["metadata"]["name"],
            "pythonpi-65b8a0a209e3aa4a-driver-svc"
        );
        assert_eq!(
            objects.properties["spark.driver.host"],
            "pythonpi-65b8a0a209e3aa4a-driver-svc.test.svc"
        );
        assert_eq!(
            objects.properties["spark.kubernetes.memoryOverheadFactor"],
            "0.4"
        );
        assert_eq!(
            objects.config_maps[0]["metadata"]["name"],
            "spark-drv-ede6bfa209ea6de9-conf-map"
        );
    }

    #[test]
    fn the_template_comes_first_and_refusals_read_as_sparks() {
        let mut s = pi();
        s.driver_template = Some(json!({"metadata": {"labels": {"tpl": "driver"}},
            "spec": {"priorityClassName": "spark-high",
                     "containers": [{"name": "main", "env": [{"name": "FROM_TEMPLATE", "value": "yes"}]}]}}));
        let pod = build(&s).unwrap().pod;
        assert_eq!(pod["spec"]["priorityClassName"], "spark-high");
        assert_eq!(pod["metadata"]["labels"]["tpl"], "driver");
        let c = &pod["spec"]["containers"][0];
        assert_eq!(c["name"], "main");
        assert_eq!(c["env"][0]["name"], "FROM_TEMPLATE");

        s.conf.set("spark.kubernetes.driver.label.spark-role", "x");
        assert!(build(&s)
            .unwrap_err()
            .to_string()
            .contains("reserved for Spark bookkeeping"));
        let mut s = pi();
        s.conf.set("spark.driver.memory", "lots");
        assert!(build(&s)
            .unwrap_err()
            .to_string()
            .contains("Failed to parse byte string: lots"));
        let mut s = pi();
        s.conf.set("spark.driver.bindAddress", "0.0.0.0");
        assert!(build(&s)
            .unwrap_err()
            .to_string()
            .starts_with("requirement failed: spark.driver.bindAddress"));
    }

    #[test]
    fn what_is_not_proven_goes_to_the_jvm() {
        let mut conf = SparkConf::new();
        assert_eq!(unsupported(&conf, &MainResource::Java(None)), None);
        conf.set(
            "spark.kubernetes.driver.pod.featureSteps",
            "io.sparkyard.spark.EmrApplicationIdStep",
        );
        assert_eq!(unsupported(&conf, &MainResource::Java(None)), None);
        conf.set(
            "spark.kubernetes.driver.volumes.hostPath.x.mount.path",
            "/x",
        );
        assert_eq!(
            unsupported(&conf, &MainResource::Java(None)).unwrap(),
            "driver volume x: no options.path"
        );
        conf.set(
            "spark.kubernetes.driver.volumes.hostPath.x.options.path",
            "/h",
        );
        assert_eq!(unsupported(&conf, &MainResource::Java(None)), None);
        conf.set(
            "spark.kubernetes.driver.volumes.emptyDir.y.mount.path",
            "/y",
        );
        assert_eq!(
            unsupported(&conf, &MainResource::Java(None)).unwrap(),
            "several driver volumes"
        );
    }

    #[test]
    fn conf_dir_files_are_chosen_as_spark_chooses_them() {
        let file = |name: &str, size: usize| (name.to_string(), "x".repeat(size));
        let chosen = conf_dir_files(
            vec![
                file("spark-defaults.conf", 10),
                file("spark.properties", 10),
                file("spark-env.sh", 10),
                file("log4j2.properties", 30),
                file("log4j2.properties.template", 10),
                file("core-site.xml", 40),
                file("extra.jar", 1),
                file("big.xml", 200),
                file("b.xml", 5),
                file("a.xml", 5),
            ],
            100,
        );
        // Smallest first: a.xml (10), b.xml (10), spark-env.sh (22), log4j2 (47) = 89;
        // core-site.xml (53) no longer fits under 100; big.xml never did.
        assert_eq!(
            chosen.keys().collect::<Vec<_>>(),
            ["a.xml", "b.xml", "log4j2.properties", "spark-env.sh"]
        );
    }
}
