//! Driver and executor pod templates that fetch the run's `s3://` inputs before Spark starts.
//!
//! Spark reads `local://` inputs from the pod's own file system, so when a run has remote
//! inputs, both templates get an init container (sparkyard's image, running as the pod's
//! service account and so with the run's role) that downloads them into an `emptyDir`
//! mounted at [`REMOTE_DIR`](crate::submit::REMOTE_DIR) in every container. The user's
//! template is kept as written otherwise; a run without a template gets a minimal one.

use serde_yaml::{Mapping, Value};

use crate::submit::{RemoteFile, REMOTE_DIR};

const VOLUME: &str = "sparkyard-remote-files";
const INIT_CONTAINER: &str = "sparkyard-fetch-remote-files";

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("the pod template is not valid YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("the pod template must be a Pod object (a YAML mapping)")]
    NotAMapping,
}

/// The template text with the fetch init container, volume and mounts added.
/// `template = None` builds a template holding only those.
pub fn with_remote_files(
    template: Option<&str>,
    tool_image: &str,
    files: &[RemoteFile],
) -> Result<String, TemplateError> {
    let mut pod: Value = match template {
        Some(text) if !text.trim().is_empty() => serde_yaml::from_str(text)?,
        _ => serde_yaml::from_str("apiVersion: v1\nkind: Pod\n")?,
    };
    let root = pod.as_mapping_mut().ok_or(TemplateError::NotAMapping)?;
    let spec = child_mapping(root, "spec");

    let volumes = child_sequence(spec, "volumes");
    if !volumes
        .iter()
        .any(|v| v.get("name").and_then(Value::as_str) == Some(VOLUME))
    {
        volumes.push(serde_yaml::from_str(&format!(
            "{{name: {VOLUME}, emptyDir: {{}}}}"
        ))?);
    }
    let mount: Value =
        serde_yaml::from_str(&format!("{{name: {VOLUME}, mountPath: {REMOTE_DIR}}}"))?;
    let containers = child_sequence(spec, "containers");
    if containers.is_empty() {
        // Spark takes a template's first container as the driver's or executor's own and
        // names an unnamed one itself (`spark-kubernetes-driver`, …): without one here,
        // the fetched files would reach the init container only.
        containers.push(Value::Mapping(Mapping::new()));
    }
    for container in containers.iter_mut() {
        add_mount(container, &mount);
    }
    let mut fetch = Mapping::new();
    fetch.insert("name".into(), INIT_CONTAINER.into());
    fetch.insert("image".into(), tool_image.into());
    let args: Vec<Value> = std::iter::once(Value::from("fetch"))
        .chain(
            files
                .iter()
                .map(|f| Value::from(format!("{}={}", f.uri, f.local_path))),
        )
        .collect();
    fetch.insert("args".into(), Value::Sequence(args));
    fetch.insert("volumeMounts".into(), Value::Sequence(vec![mount]));
    let init = child_sequence(spec, "initContainers");
    init.retain(|c| c.get("name").and_then(Value::as_str) != Some(INIT_CONTAINER));
    // First, so the user's own init containers already see the inputs.
    init.insert(0, Value::Mapping(fetch));
    Ok(serde_yaml::to_string(&pod)?)
}

fn add_mount(container: &mut Value, mount: &Value) {
    if let Some(map) = container.as_mapping_mut() {
        let mounts = child_sequence(map, "volumeMounts");
        if !mounts.iter().any(|m| m.get("name") == mount.get("name")) {
            mounts.push(mount.clone());
        }
    }
}

fn child_mapping<'a>(parent: &'a mut Mapping, key: &str) -> &'a mut Mapping {
    let entry = parent
        .entry(key.into())
        .or_insert_with(|| Value::Mapping(Mapping::new()));
    if !entry.is_mapping() {
        *entry = Value::Mapping(Mapping::new());
    }
    entry.as_mapping_mut().expect("just made a mapping")
}

fn child_sequence<'a>(parent: &'a mut Mapping, key: &str) -> &'a mut Vec<Value> {
    let entry = parent
        .entry(key.into())
        .or_insert_with(|| Value::Sequence(Vec::new()));
    if !entry.is_sequence() {
        *entry = Value::Sequence(Vec::new());
    }
    entry.as_sequence_mut().expect("just made a sequence")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> Vec<RemoteFile> {
        vec![RemoteFile {
            uri: "s3://jobs/app.py".into(),
            local_path: format!("{REMOTE_DIR}/0/app.py"),
        }]
    }

    const SEED_DRIVER: &str = "apiVersion: v1\nkind: Pod\nspec:\n  priorityClassName: critical-priority\n  volumes:\n    - name: source-data-volume\n      emptyDir: {}\n  nodeSelector:\n    eks.amazonaws.com/capacityType: ON_DEMAND\n  containers:\n    - name: spark-kubernetes-driver\n      volumeMounts:\n        - name: source-data-volume\n          mountPath: /data\n";

    #[test]
    fn seed_template_keeps_its_settings_and_gains_the_fetch() {
        let text = with_remote_files(Some(SEED_DRIVER), "sparkyard:dev", &files()).unwrap();
        let pod: Value = serde_yaml::from_str(&text).unwrap();
        let spec = &pod["spec"];
        assert_eq!(spec["priorityClassName"], Value::from("critical-priority"));
        assert_eq!(
            spec["nodeSelector"]["eks.amazonaws.com/capacityType"],
            Value::from("ON_DEMAND")
        );
        assert_eq!(spec["volumes"].as_sequence().unwrap().len(), 2);
        let mounts = spec["containers"][0]["volumeMounts"].as_sequence().unwrap();
        assert!(mounts.iter().any(|m| m["mountPath"] == REMOTE_DIR));
        assert!(mounts.iter().any(|m| m["mountPath"] == "/data"));
        let fetch = &spec["initContainers"][0];
        assert_eq!(fetch["image"], Value::from("sparkyard:dev"));
        assert_eq!(
            fetch["args"][1],
            Value::from("s3://jobs/app.py=/var/sparkyard/remote/0/app.py")
        );
    }

    #[test]
    fn applying_twice_changes_nothing_more() {
        let once = with_remote_files(Some(SEED_DRIVER), "sparkyard:dev", &files()).unwrap();
        let twice = with_remote_files(Some(&once), "sparkyard:dev", &files()).unwrap();
        assert_eq!(once, twice);
    }

    #[test]
    fn no_template_gives_a_minimal_pod() {
        let text = with_remote_files(None, "sparkyard:dev", &files()).unwrap();
        let pod: Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(pod["kind"], Value::from("Pod"));
        assert_eq!(
            pod["spec"]["initContainers"].as_sequence().unwrap().len(),
            1
        );
        // The Spark container (named by Spark) mounts what the init container fetched.
        let containers = pod["spec"]["containers"].as_sequence().unwrap();
        assert_eq!(containers.len(), 1);
        assert!(containers[0].get("name").is_none());
        assert_eq!(
            containers[0]["volumeMounts"][0]["mountPath"],
            Value::from(REMOTE_DIR)
        );
    }

    #[test]
    fn garbage_is_refused() {
        assert!(with_remote_files(Some("- a\n- b\n"), "i", &files()).is_err());
        assert!(with_remote_files(Some("spec: [unclosed"), "i", &files()).is_err());
    }
}
