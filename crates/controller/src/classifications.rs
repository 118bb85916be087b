//! `configurationOverrides.applicationConfiguration`: EMR's classifications, checked and
//! turned into the files and settings a job run uses.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

/// One entry of `applicationConfiguration` (recursive, as in the API model).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Configuration {
    pub classification: String,
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    #[serde(default)]
    pub configurations: Vec<Configuration>,
}

/// Why a run's configuration cannot be used; the run fails with `VALIDATION_ERROR`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("Classification {0} not supported.")]
    Unsupported(String),
    #[error("Invalid value '{value}' for {classification} property {property}: {reason}")]
    InvalidValue {
        classification: &'static str,
        property: String,
        value: String,
        reason: &'static str,
    },
}

/// The default `job-start-timeout` of `emr-containers-defaults`: 15 minutes.
pub const DEFAULT_JOB_START_TIMEOUT: Duration = Duration::from_secs(900);

/// Everything the classifications of one run say, sorted by target.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedConfiguration {
    /// `spark-defaults`: written to the runner's `spark-defaults.conf`.
    pub spark_defaults: BTreeMap<String, String>,
    /// `spark-env` → nested `export`: environment of the runner, driver and executors.
    pub spark_env: BTreeMap<String, String>,
    /// `spark-log4j2` (or `spark-log4j` on releases before log4j2): `log4j2.properties`.
    pub log4j: BTreeMap<String, String>,
    /// Hadoop/Hive/metrics files by their file name (`core-site.xml`, …).
    pub site_files: BTreeMap<&'static str, BTreeMap<String, String>>,
    pub submitter: SubmitterSettings,
    pub container_defaults: ContainerDefaults,
}

/// `emr-job-submitter`: how the job-runner pod is placed and labelled.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SubmitterSettings {
    pub node_selector: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub tolerations: Vec<Toleration>,
    pub scheduler_name: Option<String>,
    pub logging_enabled: bool,
    pub container_image: Option<String>,
    pub image_pull_policy: Option<String>,
    /// `jobsubmitter.gracefulTermination=true`: the runner exits once the driver has
    /// started instead of following it to the end.
    pub graceful_termination: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toleration {
    pub key: String,
    /// `Some(value)` → operator `Equal`; `None` (an empty value) → operator `Exists`.
    pub value: Option<String>,
    pub effect: Option<String>,
    pub toleration_seconds: Option<i64>,
}

/// `emr-containers-defaults`.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerDefaults {
    pub job_start_timeout: Duration,
    pub executor_logging_enabled: bool,
    /// `logging.eventLog.dir`: also copy Spark event logs there.
    pub event_log_dir: Option<String>,
}

const SITE_FILES: &[(&str, &str)] = &[
    ("core-site", "core-site.xml"),
    ("emrfs-site", "emrfs-site.xml"),
    ("spark-hive-site", "hive-site.xml"),
    ("spark-metrics", "metrics.properties"),
];

/// Checks every classification of a job run and sorts the properties by target.
/// `jeg-config` and `jupyter-kernel-overrides` belong to managed endpoints, not job runs.
pub fn resolve(configurations: &[Configuration]) -> Result<ResolvedConfiguration, ConfigError> {
    let mut resolved = ResolvedConfiguration {
        spark_defaults: BTreeMap::new(),
        spark_env: BTreeMap::new(),
        log4j: BTreeMap::new(),
        site_files: BTreeMap::new(),
        submitter: SubmitterSettings {
            logging_enabled: true,
            ..SubmitterSettings::default()
        },
        container_defaults: ContainerDefaults {
            job_start_timeout: DEFAULT_JOB_START_TIMEOUT,
            executor_logging_enabled: true,
            event_log_dir: None,
        },
    };
    for configuration in configurations {
        let properties = &configuration.properties;
        match configuration.classification.as_str() {
            "spark-defaults" => resolved.spark_defaults.extend(properties.clone()),
            "spark-env" => {
                for nested in &configuration.configurations {
                    if nested.classification != "export" {
                        return Err(ConfigError::Unsupported(format!(
                            "spark-env/{}",
                            nested.classification
                        )));
                    }
                    resolved.spark_env.extend(nested.properties.clone());
                }
            }
            "spark-log4j" | "spark-log4j2" => resolved.log4j.extend(properties.clone()),
            "emr-job-submitter" => apply_submitter(&mut resolved.submitter, properties)?,
            "emr-containers-defaults" => {
                apply_container_defaults(&mut resolved.container_defaults, properties)?
            }
            other => match SITE_FILES.iter().find(|(name, _)| *name == other) {
                Some((_, file)) => resolved
                    .site_files
                    .entry(file)
                    .or_default()
                    .extend(properties.clone()),
                None => return Err(ConfigError::Unsupported(other.to_string())),
            },
        }
        if configuration.classification != "spark-env" && !configuration.configurations.is_empty() {
            return Err(ConfigError::Unsupported(format!(
                "{}/{}",
                configuration.classification, configuration.configurations[0].classification
            )));
        }
    }
    Ok(resolved)
}

fn apply_submitter(
    settings: &mut SubmitterSettings,
    properties: &BTreeMap<String, String>,
) -> Result<(), ConfigError> {
    const CLASSIFICATION: &str = "emr-job-submitter";
    // Toleration keys carry sub-properties (`.effect`, `.tolerationSeconds`), so collect
    // them first and assemble once all are known.
    let mut tolerations: BTreeMap<String, Toleration> = BTreeMap::new();
    for (key, value) in properties {
        if let Some(label) = key.strip_prefix("jobsubmitter.node.selector.") {
            settings
                .node_selector
                .insert(label.to_string(), value.clone());
        } else if let Some(label) = key.strip_prefix("jobsubmitter.label.") {
            settings.labels.insert(label.to_string(), value.clone());
        } else if let Some(annotation) = key.strip_prefix("jobsubmitter.annotation.") {
            settings
                .annotations
                .insert(annotation.to_string(), value.clone());
        } else if let Some(rest) = key.strip_prefix("jobsubmitter.node.toleration.") {
            let (toleration_key, field) = match rest.rsplit_once('.') {
                Some((k, f)) if f == "effect" || f == "tolerationSeconds" => (k, Some(f)),
                _ => (rest, None),
            };
            let entry = tolerations
                .entry(toleration_key.to_string())
                .or_insert_with(|| Toleration {
                    key: toleration_key.to_string(),
                    value: None,
                    effect: None,
                    toleration_seconds: None,
                });
            match field {
                None => entry.value = Some(value.clone()).filter(|v| !v.is_empty()),
                Some("effect") => {
                    if !["NoExecute", "NoSchedule", "PreferNoSchedule"].contains(&value.as_str()) {
                        return Err(invalid(
                            CLASSIFICATION,
                            key,
                            value,
                            "effect must be NoExecute, NoSchedule or PreferNoSchedule",
                        ));
                    }
                    entry.effect = Some(value.clone());
                }
                Some(_) => {
                    let seconds = value.parse().map_err(|_| {
                        invalid(
                            CLASSIFICATION,
                            key,
                            value,
                            "must be a whole number of seconds",
                        )
                    })?;
                    entry.toleration_seconds = Some(seconds);
                }
            }
        } else {
            match key.as_str() {
                "jobsubmitter.scheduler.name" => settings.scheduler_name = Some(value.clone()),
                "jobsubmitter.logging" => {
                    settings.logging_enabled = !value.eq_ignore_ascii_case("DISABLED")
                }
                "jobsubmitter.container.image" => settings.container_image = Some(value.clone()),
                "jobsubmitter.container.image.pullPolicy" => {
                    settings.image_pull_policy = Some(value.clone())
                }
                "jobsubmitter.gracefulTermination" => {
                    settings.graceful_termination = parse_bool(CLASSIFICATION, key, value)?
                }
                // Sidecar sizing has no effect here (logs are shipped by sparkyard itself), but
                // the keys are valid EMR configuration and must not fail the run.
                "jobsubmitter.logging.image"
                | "jobsubmitter.logging.request.cores"
                | "jobsubmitter.logging.request.memory" => {}
                _ => {
                    return Err(ConfigError::Unsupported(format!(
                        "{CLASSIFICATION} property {key}"
                    )))
                }
            }
        }
    }
    settings.tolerations = tolerations.into_values().collect();
    Ok(())
}

fn apply_container_defaults(
    defaults: &mut ContainerDefaults,
    properties: &BTreeMap<String, String>,
) -> Result<(), ConfigError> {
    const CLASSIFICATION: &str = "emr-containers-defaults";
    for (key, value) in properties {
        match key.as_str() {
            "job-start-timeout" => {
                let seconds: u64 = value.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                    invalid(
                        CLASSIFICATION,
                        key,
                        value,
                        "must be a positive number of seconds",
                    )
                })?;
                defaults.job_start_timeout = Duration::from_secs(seconds);
            }
            "executor.logging" => {
                defaults.executor_logging_enabled = !value.eq_ignore_ascii_case("DISABLED")
            }
            "logging.eventLog.dir" => defaults.event_log_dir = Some(value.clone()),
            "logging.image"
            | "logging.request.cores"
            | "logging.request.memory"
            | "logging.nativeSidecar" => {}
            _ => {
                return Err(ConfigError::Unsupported(format!(
                    "{CLASSIFICATION} property {key}"
                )))
            }
        }
    }
    Ok(())
}

fn parse_bool(classification: &'static str, key: &str, value: &str) -> Result<bool, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(classification, key, value, "must be true or false")),
    }
}

fn invalid(
    classification: &'static str,
    key: &str,
    value: &str,
    reason: &'static str,
) -> ConfigError {
    ConfigError::InvalidValue {
        classification,
        property: key.to_string(),
        value: value.to_string(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(classification: &str, properties: &[(&str, &str)]) -> Configuration {
        Configuration {
            classification: classification.into(),
            properties: properties
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            configurations: vec![],
        }
    }

    #[test]
    fn seed_spark_defaults_resolve() {
        let resolved = resolve(&[conf(
            "spark-defaults",
            &[
                ("spark.dynamicAllocation.enabled", "false"),
                ("spark.kubernetes.executor.deleteOnTermination", "true"),
            ],
        )])
        .unwrap();
        assert_eq!(
            resolved.spark_defaults["spark.dynamicAllocation.enabled"],
            "false"
        );
        assert_eq!(
            resolved.container_defaults.job_start_timeout,
            DEFAULT_JOB_START_TIMEOUT
        );
        assert!(resolved.submitter.logging_enabled);
    }

    #[test]
    fn unknown_and_endpoint_only_classifications_fail_the_run() {
        let err = resolve(&[conf("yarn-site", &[])]).unwrap_err();
        assert_eq!(err.to_string(), "Classification yarn-site not supported.");
        assert!(resolve(&[conf("jeg-config", &[])]).is_err());
    }

    #[test]
    fn spark_env_reads_the_nested_export() {
        let mut env = conf("spark-env", &[]);
        env.configurations
            .push(conf("export", &[("PYSPARK_PYTHON", "python3")]));
        let resolved = resolve(&[env]).unwrap();
        assert_eq!(resolved.spark_env["PYSPARK_PYTHON"], "python3");
    }

    #[test]
    fn job_start_timeout_is_configurable_and_checked() {
        let resolved = resolve(&[conf(
            "emr-containers-defaults",
            &[("job-start-timeout", "60")],
        )])
        .unwrap();
        assert_eq!(
            resolved.container_defaults.job_start_timeout,
            Duration::from_secs(60)
        );
        assert!(resolve(&[conf(
            "emr-containers-defaults",
            &[("job-start-timeout", "soon")]
        )])
        .is_err());
    }

    #[test]
    fn submitter_tolerations_assemble_from_sub_properties() {
        let resolved = resolve(&[conf(
            "emr-job-submitter",
            &[
                ("jobsubmitter.node.toleration.dedicated", "spark"),
                (
                    "jobsubmitter.node.toleration.dedicated.effect",
                    "NoSchedule",
                ),
                ("jobsubmitter.node.toleration.spot", ""),
                (
                    "jobsubmitter.node.selector.karpenter.sh/capacity-type",
                    "on-demand",
                ),
                ("jobsubmitter.gracefulTermination", "true"),
            ],
        )])
        .unwrap();
        let submitter = resolved.submitter;
        assert_eq!(
            submitter.node_selector["karpenter.sh/capacity-type"],
            "on-demand"
        );
        assert!(submitter.graceful_termination);
        assert_eq!(
            submitter.tolerations,
            vec![
                Toleration {
                    key: "dedicated".into(),
                    value: Some("spark".into()),
                    effect: Some("NoSchedule".into()),
                    toleration_seconds: None
                },
                Toleration {
                    key: "spot".into(),
                    value: None,
                    effect: None,
                    toleration_seconds: None
                },
            ]
        );
        assert!(resolve(&[conf(
            "emr-job-submitter",
            &[("jobsubmitter.node.toleration.x.effect", "Sometimes")]
        )])
        .is_err());
    }

    #[test]
    fn site_files_are_named_as_spark_reads_them() {
        let resolved = resolve(&[conf("core-site", &[("fs.s3a.endpoint", "http://x")])]).unwrap();
        assert_eq!(
            resolved.site_files["core-site.xml"]["fs.s3a.endpoint"],
            "http://x"
        );
    }
}
