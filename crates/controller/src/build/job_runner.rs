//! The job runner: a `batch/v1` Job per attempt whose pod runs `spark-submit` in cluster
//! mode, and the ConfigMap holding the run's Spark configuration files.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, EmptyDirVolumeSource, EnvVar, ImageVolumeSource,
    PodSpec, PodTemplateSpec, Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::{properties, LABEL_JOB_ID, LABEL_VIRTUAL_CLUSTER_ID};
use crate::classifications::ResolvedConfiguration;
use crate::names::{self, SparkRole};
use crate::submit::{SubmitCommand, REMOTE_DIR};

/// Where the runner finds `spark-defaults.conf` and friends.
pub const SPARK_CONF_DIR: &str = "/etc/spark/conf";
/// The runner's main container, as EMR names it.
pub const RUNNER_CONTAINER: &str = "job-runner";

#[derive(Debug, Clone)]
pub struct RunnerInput<'a> {
    pub job_run_id: &'a str,
    pub virtual_cluster_id: &'a str,
    pub namespace: &'a str,
    pub account_id: &'a str,
    pub role_name: &'a str,
    pub attempt: u32,
    pub submit: &'a SubmitCommand,
    pub resolved: &'a ResolvedConfiguration,
    /// The Spark image of the release label (or `jobsubmitter.container.image`).
    pub spark_image: &'a str,
    /// sparkyard's own image, which fetches `s3://` inputs with the run's role.
    pub tool_image: &'a str,
    /// Submit with `sparkyard spark-submit` from `tool_image` rather than the JVM.
    pub native_submission: bool,
}

/// Where the tool image is mounted in the runner for native submission; the binary is
/// `sparkyard` at its root.
pub const TOOLS_DIR: &str = "/opt/sparkyard/tools";

/// `<jobRunId>-spark-conf`: shared by every attempt, since the configuration is the run's.
pub fn config_map_name(job_run_id: &str) -> String {
    format!("{job_run_id}-spark-conf")
}

fn run_labels(input: &RunnerInput<'_>) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_JOB_ID.to_string(), input.job_run_id.to_string()),
        (
            LABEL_VIRTUAL_CLUSTER_ID.to_string(),
            input.virtual_cluster_id.to_string(),
        ),
    ])
}

pub fn config_map(input: &RunnerInput<'_>) -> ConfigMap {
    let resolved = input.resolved;
    let mut data = BTreeMap::from([(
        "spark-defaults.conf".to_string(),
        properties::render(&resolved.spark_defaults),
    )]);
    if !resolved.log4j.is_empty() {
        data.insert(
            "log4j2.properties".to_string(),
            properties::render(&resolved.log4j),
        );
    }
    for (file, props) in &resolved.site_files {
        let text = if file.ends_with(".xml") {
            hadoop_xml(props)
        } else {
            properties::render(props)
        };
        data.insert(file.to_string(), text);
    }
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(config_map_name(input.job_run_id)),
            namespace: Some(input.namespace.to_string()),
            labels: Some(run_labels(input)),
            ..ObjectMeta::default()
        },
        data: Some(data),
        immutable: Some(true),
        ..ConfigMap::default()
    }
}

/// Hadoop's `<configuration><property>…` file format.
fn hadoop_xml(props: &BTreeMap<String, String>) -> String {
    let escape = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let mut out = String::from("<?xml version=\"1.0\"?>\n<configuration>\n");
    for (name, value) in props {
        out.push_str(&format!(
            "  <property><name>{}</name><value>{}</value></property>\n",
            escape(name),
            escape(value)
        ));
    }
    out.push_str("</configuration>\n");
    out
}

/// `sparkyard fetch`: the downloads, then the driver and executor templates to give the
/// same fetch step (see `pod_templates`).
fn fetch_args(input: &RunnerInput<'_>) -> Vec<String> {
    let mut args = vec!["fetch".to_string()];
    for template in &input.submit.pod_templates {
        args.extend(["--pod-template".to_string(), template.clone()]);
    }
    if !input.submit.pod_templates.is_empty() {
        args.extend(["--tool-image".to_string(), input.tool_image.to_string()]);
    }
    args.extend(
        input
            .submit
            .remote_files
            .iter()
            .map(|f| format!("{}={}", f.uri, f.local_path)),
    );
    args
}

pub fn job(input: &RunnerInput<'_>) -> Job {
    let submitter = &input.resolved.submitter;
    let mut labels = run_labels(input);
    labels.extend(submitter.labels.clone());
    let mut volumes = vec![Volume {
        name: "spark-conf".into(),
        config_map: Some(ConfigMapVolumeSource {
            name: config_map_name(input.job_run_id),
            ..Default::default()
        }),
        ..Volume::default()
    }];
    let mut mounts = vec![VolumeMount {
        name: "spark-conf".into(),
        mount_path: SPARK_CONF_DIR.into(),
        ..VolumeMount::default()
    }];
    let mut init_containers = Vec::new();
    if !input.submit.remote_files.is_empty() {
        volumes.push(Volume {
            name: "remote-files".into(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Volume::default()
        });
        let remote_mount = VolumeMount {
            name: "remote-files".into(),
            mount_path: REMOTE_DIR.into(),
            ..VolumeMount::default()
        };
        mounts.push(remote_mount.clone());
        init_containers.push(Container {
            name: "fetch-remote-files".into(),
            image: Some(input.tool_image.to_string()),
            args: Some(fetch_args(input)),
            volume_mounts: Some(vec![remote_mount]),
            ..Container::default()
        });
    }
    let mut env = vec![EnvVar {
        name: "SPARK_CONF_DIR".into(),
        value: Some(SPARK_CONF_DIR.into()),
        ..EnvVar::default()
    }];
    env.extend(input.resolved.spark_env.iter().map(|(name, value)| EnvVar {
        name: name.clone(),
        value: Some(value.clone()),
        ..EnvVar::default()
    }));
    let mut command = input.submit.argv.clone();
    if input.native_submission {
        // The same command line, read by sparkyard's client: the JVM's `spark-submit`
        // stays in the image, for the client to hand over to (with `SPARK_HOME`).
        let spark_submit = command[0].clone();
        command[0] = "spark-submit".into();
        command.insert(0, format!("{TOOLS_DIR}/sparkyard"));
        if let Some(home) = spark_submit.strip_suffix("/bin/spark-submit") {
            env.push(EnvVar {
                name: "SPARK_HOME".into(),
                value: Some(home.into()),
                ..EnvVar::default()
            });
        }
        volumes.push(Volume {
            name: "sparkyard-tools".into(),
            image: Some(ImageVolumeSource {
                reference: Some(input.tool_image.to_string()),
                pull_policy: Some("IfNotPresent".into()),
            }),
            ..Volume::default()
        });
        mounts.push(VolumeMount {
            name: "sparkyard-tools".into(),
            mount_path: TOOLS_DIR.into(),
            read_only: Some(true),
            ..VolumeMount::default()
        });
    }
    let runner = Container {
        name: RUNNER_CONTAINER.into(),
        image: Some(input.spark_image.to_string()),
        image_pull_policy: submitter.image_pull_policy.clone(),
        command: Some(command),
        // spark-submit's error becomes the run's stateDetails (see `status`).
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        env: Some(env),
        volume_mounts: Some(mounts),
        ..Container::default()
    };
    let tolerations: Vec<Toleration> = submitter
        .tolerations
        .iter()
        .map(|t| Toleration {
            key: Some(t.key.clone()),
            operator: Some(if t.value.is_some() { "Equal" } else { "Exists" }.into()),
            value: t.value.clone(),
            effect: t.effect.clone(),
            toleration_seconds: t.toleration_seconds,
        })
        .collect();
    let pod_spec = PodSpec {
        service_account_name: Some(names::service_account(
            SparkRole::Client,
            input.account_id,
            input.role_name,
        )),
        restart_policy: Some("Never".into()),
        containers: vec![runner],
        init_containers: (!init_containers.is_empty()).then_some(init_containers),
        volumes: Some(volumes),
        node_selector: (!submitter.node_selector.is_empty())
            .then(|| submitter.node_selector.clone()),
        tolerations: (!tolerations.is_empty()).then_some(tolerations),
        scheduler_name: submitter.scheduler_name.clone(),
        ..PodSpec::default()
    };
    Job {
        metadata: ObjectMeta {
            name: Some(names::runner_job_name(input.job_run_id, input.attempt)),
            namespace: Some(input.namespace.to_string()),
            labels: Some(run_labels(input)),
            ..ObjectMeta::default()
        },
        spec: Some(JobSpec {
            // Retries are the run's retry policy, one Job per attempt, so the Job never
            // retries by itself.
            backoff_limit: Some(0),
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    annotations: (!submitter.annotations.is_empty())
                        .then(|| submitter.annotations.clone()),
                    ..ObjectMeta::default()
                }),
                spec: Some(pod_spec),
            },
            ..JobSpec::default()
        }),
        ..Job::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classifications::{self, Configuration};
    use crate::submit::{self, JobDriver, SubmitInput};

    fn resolved(configurations: &[Configuration]) -> ResolvedConfiguration {
        classifications::resolve(configurations).unwrap()
    }

    fn submit_for(entry_point: &str) -> SubmitCommand {
        let driver = JobDriver::SparkSubmit {
            entry_point: entry_point.into(),
            entry_point_arguments: vec![],
            spark_submit_parameters: None,
        };
        submit::build(&SubmitInput {
            job_run_id: "0000000327fe50tosa4",
            virtual_cluster_id: "vc",
            namespace: "monthly-batch",
            account_id: "123456789012",
            role_name: "r",
            image: "spark:4",
            spark_home: "/usr/lib/spark",
            master: "https://kubernetes.default.svc:443",
            properties_file: "/etc/spark/conf/spark-defaults.conf",
            attempt: None,
            driver: &driver,
            spark_runtime: false,
        })
        .unwrap()
    }

    fn input<'a>(
        submit: &'a SubmitCommand,
        resolved: &'a ResolvedConfiguration,
        attempt: u32,
    ) -> RunnerInput<'a> {
        RunnerInput {
            job_run_id: "0000000327fe50tosa4",
            virtual_cluster_id: "vc",
            namespace: "monthly-batch",
            account_id: "123456789012",
            role_name: "r",
            attempt,
            submit,
            resolved,
            spark_image: "spark:4",
            tool_image: "sparkyard:dev",
            native_submission: false,
        }
    }

    #[test]
    fn runner_job_runs_spark_submit_as_the_client_account() {
        let submit = submit_for("local:///usr/lib/spark/examples/src/main/python/pi.py");
        let resolved = resolved(&[]);
        let job = job(&input(&submit, &resolved, 1));
        assert_eq!(job.metadata.name.as_deref(), Some("0000000327fe50tosa4"));
        let spec = job.spec.unwrap();
        assert_eq!(spec.backoff_limit, Some(0));
        let pod = spec.template.spec.unwrap();
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        assert_eq!(
            pod.service_account_name.unwrap(),
            "emr-containers-sa-spark-client-123456789012-36"
        );
        assert!(pod.init_containers.is_none(), "nothing to fetch");
        let runner = &pod.containers[0];
        assert_eq!(runner.name, "job-runner");
        assert_eq!(runner.command.as_ref().unwrap(), &submit.argv);
    }

    #[test]
    fn a_native_runner_runs_sparkyard_from_the_tool_image() {
        let submit = submit_for("local:///usr/lib/spark/examples/src/main/python/pi.py");
        let resolved = resolved(&[]);
        let job = job(&RunnerInput {
            native_submission: true,
            ..input(&submit, &resolved, 1)
        });
        let pod = job.spec.unwrap().template.spec.unwrap();
        let runner = &pod.containers[0];
        assert_eq!(
            runner.image.as_deref(),
            Some("spark:4"),
            "the JVM stays at hand"
        );
        let command = runner.command.as_ref().unwrap();
        assert_eq!(
            command[..2],
            ["/opt/sparkyard/tools/sparkyard", "spark-submit"]
        );
        assert_eq!(command[2..], submit.argv[1..]);
        let env = runner.env.as_ref().unwrap();
        assert!(env
            .iter()
            .any(|e| e.name == "SPARK_HOME" && e.value.as_deref() == Some("/usr/lib/spark")));
        let tools = pod
            .volumes
            .as_ref()
            .unwrap()
            .iter()
            .find(|v| v.name == "sparkyard-tools")
            .unwrap();
        assert_eq!(
            tools.image.as_ref().unwrap().reference.as_deref(),
            Some("sparkyard:dev")
        );
        let mount = runner
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.name == "sparkyard-tools")
            .unwrap();
        assert_eq!(
            (mount.mount_path.as_str(), mount.read_only),
            (TOOLS_DIR, Some(true))
        );
    }

    #[test]
    fn s3_inputs_get_a_fetch_init_container() {
        let submit = submit_for("s3://jobs/app.py");
        let resolved = resolved(&[]);
        let job = job(&input(&submit, &resolved, 2));
        assert_eq!(job.metadata.name.as_deref(), Some("0000000327fe50tosa4--2"));
        let pod = job.spec.unwrap().template.spec.unwrap();
        let fetch = &pod.init_containers.unwrap()[0];
        assert_eq!(
            fetch.args.as_ref().unwrap(),
            &[
                "fetch",
                "--pod-template",
                "/var/sparkyard/remote/driver-pod-template.yml",
                "--pod-template",
                "/var/sparkyard/remote/executor-pod-template.yml",
                "--tool-image",
                "sparkyard:dev",
                "s3://jobs/app.py=/var/sparkyard/remote/0/app.py"
            ]
        );
        assert!(pod.containers[0]
            .volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .any(|m| m.mount_path == REMOTE_DIR));
    }

    #[test]
    fn submitter_classification_places_the_runner() {
        let submit = submit_for("local:///app.py");
        let resolved = resolved(&[Configuration {
            classification: "emr-job-submitter".into(),
            properties: [
                (
                    "jobsubmitter.node.selector.eks.amazonaws.com/capacityType".to_string(),
                    "ON_DEMAND".to_string(),
                ),
                ("jobsubmitter.label.team".to_string(), "data".to_string()),
                (
                    "jobsubmitter.node.toleration.spot".to_string(),
                    String::new(),
                ),
            ]
            .into(),
            configurations: vec![],
        }]);
        let job = job(&input(&submit, &resolved, 1));
        let template = job.spec.unwrap().template;
        assert_eq!(template.metadata.unwrap().labels.unwrap()["team"], "data");
        let pod = template.spec.unwrap();
        assert_eq!(
            pod.node_selector.unwrap()["eks.amazonaws.com/capacityType"],
            "ON_DEMAND"
        );
        assert_eq!(
            pod.tolerations.unwrap()[0].operator.as_deref(),
            Some("Exists")
        );
    }

    #[test]
    fn config_map_carries_the_spark_defaults() {
        let submit = submit_for("local:///app.py");
        let resolved = resolved(&[Configuration {
            classification: "spark-defaults".into(),
            properties: [(
                "spark.dynamicAllocation.enabled".to_string(),
                "false".to_string(),
            )]
            .into(),
            configurations: vec![],
        }]);
        let cm = config_map(&input(&submit, &resolved, 1));
        assert_eq!(
            cm.metadata.name.as_deref(),
            Some("0000000327fe50tosa4-spark-conf")
        );
        assert_eq!(
            cm.data.unwrap()["spark-defaults.conf"],
            "spark.dynamicAllocation.enabled=false\n"
        );
    }
}
