//! The job runner's command line: `spark-submit --deploy-mode cluster` as EMR on EKS runs it.
//!
//! Precedence, as EMR documents it: SparkSession conf > `sparkSubmitParameters --conf` >
//! `applicationConfiguration` (`spark-defaults`, passed as `--properties-file`) > defaults.
//! Confs that EMR manages itself (namespace, service accounts, driver pod name, pull policy)
//! are removed from the user's input and set by sparkyard, as EMR overrides them too;
//! `spark.kubernetes.container.image` stays the user's when given (custom images).
//!
//! Remote inputs: `--py-files`/`--jars`/`--files`/`--archives` entries in `s3://` go to Spark
//! unchanged, which reads them through S3A with the run's role (crate::s3a). The entry point
//! and pod templates are fetched ahead instead — spark-submit reads pod templates before any
//! pod exists — and rewritten to a local path under [`REMOTE_DIR`]; the returned
//! [`RemoteFile`] list says what the job runner (and the driver and executor pods, through
//! their pod templates) must fetch there with the run's role before Spark starts.

use std::collections::BTreeMap;

use crate::names;

/// Where fetched `s3://` inputs live inside the runner, driver and executor pods.
pub const REMOTE_DIR: &str = "/var/sparkyard/remote";

/// Confs EMR on EKS sets itself; a user value is dropped (and reported) rather than obeyed.
pub const MANAGED_CONFS: &[&str] = &[
    "spark.kubernetes.namespace",
    "spark.kubernetes.authenticate.driver.serviceAccountName",
    "spark.kubernetes.authenticate.executor.serviceAccountName",
    "spark.kubernetes.driver.pod.name",
    "spark.kubernetes.container.image.pullPolicy",
    "spark.master",
    "spark.submit.deployMode",
    "spark.app.id",
    "spark.kubernetes.driver.master",
];

/// The driver feature step (spark-runtime/, installed beside Spark by scripts/setup.sh) that
/// makes Spark use the submitted `spark.app.id`, so the application is `spark-<jobRunId>` as
/// on EMR: labels, event log and History Server address included.
pub const APP_ID_STEP: &str = "io.sparkyard.spark.EmrApplicationIdStep";
/// The main class that runs a `sparkSqlJobDriver` entry point's statements in cluster mode
/// (spark-runtime/).
pub const SQL_RUNNER: &str = "io.sparkyard.spark.SqlFileRunner";
/// `sparkSqlParameters` options that define variables for the SQL file, as spark-sql's.
const SQL_VARIABLE_OPTIONS: &[&str] = &["-d", "--define", "--hivevar"];
/// Spark's list of custom driver feature steps; a user's list is kept and [`APP_ID_STEP`]
/// added to it.
pub const DRIVER_FEATURE_STEPS: &str = "spark.kubernetes.driver.pod.featureSteps";

/// A comma-separated list of feature-step classes with `step` in it once, at the end.
pub fn with_feature_step(list: Option<&str>, step: &str) -> String {
    let mut steps: Vec<&str> = list
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty() && *s != step)
        .collect();
    steps.push(step);
    steps.join(",")
}

/// spark-submit options EMR decides; given in `sparkSubmitParameters` they are dropped.
const MANAGED_OPTIONS: &[&str] = &["--master", "--deploy-mode", "--kill", "--status"];

#[derive(Debug, Clone, PartialEq)]
pub enum JobDriver {
    SparkSubmit {
        entry_point: String,
        entry_point_arguments: Vec<String>,
        spark_submit_parameters: Option<String>,
    },
    SparkSql {
        entry_point: Option<String>,
        spark_sql_parameters: Option<String>,
    },
}

/// What the builder needs to know about one attempt of a run.
#[derive(Debug, Clone)]
pub struct SubmitInput<'a> {
    pub job_run_id: &'a str,
    pub virtual_cluster_id: &'a str,
    pub namespace: &'a str,
    pub account_id: &'a str,
    pub role_name: &'a str,
    /// The Spark image for the run's release label.
    pub image: &'a str,
    /// `SPARK_HOME` inside the image (`/usr/lib/spark` on EMR images).
    pub spark_home: &'a str,
    /// The API server as pods reach it.
    pub master: &'a str,
    /// Path of the runner's `spark-defaults.conf` (from `spark-defaults`).
    pub properties_file: &'a str,
    /// `Some(n)` when the run has a retry policy: driver names get a per-attempt suffix.
    pub attempt: Option<u32>,
    pub driver: &'a JobDriver,
    /// Whether the run's Spark has sparkyard's spark-runtime jar, with [`APP_ID_STEP`] and
    /// [`SQL_RUNNER`] (the embedded cluster's does).
    pub spark_runtime: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteFile {
    pub uri: String,
    /// Absolute path inside the pods.
    pub local_path: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SubmitCommand {
    pub argv: Vec<String>,
    pub remote_files: Vec<RemoteFile>,
    /// When there are remote files: the driver and executor pod-template paths (inside the
    /// runner) that the runner's fetch step rewrites — or creates — so that the driver and
    /// executor pods fetch the same inputs before Spark starts.
    pub pod_templates: Vec<String>,
    /// Managed confs or options the user set that sparkyard replaced.
    pub overridden: Vec<String>,
    pub driver_pod_name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    #[error("sparkSubmitParameters could not be parsed: {0}")]
    Unparsable(String),
    #[error("sparkSubmitParameters: {0} needs a value")]
    MissingValue(String),
}

/// Options whose value is a comma-separated list of files to ship (passed through).
const FILE_LIST_OPTIONS: &[&str] = &["--py-files", "--jars", "--files", "--archives"];
const TEMPLATE_CONFS: &[&str] = &[
    "spark.kubernetes.driver.podTemplateFile",
    "spark.kubernetes.executor.podTemplateFile",
];

/// Builds the job runner's command.
pub fn build(input: &SubmitInput<'_>) -> Result<SubmitCommand, SubmitError> {
    let mut remote = RemoteFiles::default();
    let mut overridden = Vec::new();
    let driver_pod_name = names::driver_pod_name(input.job_run_id, input.attempt);
    let app_id = names::spark_app_id(input.job_run_id, input.attempt);

    let (user_params, primary) = match input.driver {
        JobDriver::SparkSubmit {
            spark_submit_parameters,
            entry_point,
            ..
        } => (
            spark_submit_parameters.as_deref(),
            Some(entry_point.as_str()),
        ),
        JobDriver::SparkSql {
            spark_sql_parameters,
            ..
        } => (spark_sql_parameters.as_deref(), None),
    };
    let tokens = match user_params {
        Some(text) => {
            shell_words::split(text).map_err(|e| SubmitError::Unparsable(e.to_string()))?
        }
        None => Vec::new(),
    };

    let is_sql = matches!(input.driver, JobDriver::SparkSql { .. });
    let mut sql_variables: Vec<String> = Vec::new();
    let mut user_confs: BTreeMap<String, String> = BTreeMap::new();
    let mut passthrough: Vec<String> = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let token = &tokens[i];
        let (option, inline_value) = match token.split_once('=') {
            Some((o, v)) if o.starts_with("--") => (o.to_string(), Some(v.to_string())),
            _ => (token.clone(), None),
        };
        let sql_variable = is_sql && SQL_VARIABLE_OPTIONS.contains(&option.as_str());
        let takes_value = option == "--conf"
            || option == "-c"
            || sql_variable
            || FILE_LIST_OPTIONS.contains(&option.as_str())
            || MANAGED_OPTIONS.contains(&option.as_str());
        let value = if takes_value && inline_value.is_none() {
            i += 1;
            Some(
                tokens
                    .get(i)
                    .cloned()
                    .ok_or_else(|| SubmitError::MissingValue(option.clone()))?,
            )
        } else {
            inline_value
        };
        i += 1;
        match option.as_str() {
            "--conf" | "-c" => {
                let value = value.unwrap_or_default();
                let (key, conf_value) = value.split_once('=').unwrap_or((value.as_str(), ""));
                let conf_value = conf_value.trim_matches('"').to_string();
                if MANAGED_CONFS.contains(&key) {
                    overridden.push(key.to_string());
                } else if TEMPLATE_CONFS.contains(&key) {
                    user_confs.insert(key.to_string(), remote.localize(&conf_value));
                } else if key == DRIVER_FEATURE_STEPS && input.spark_runtime {
                    // A user's `--conf` list replaces spark-defaults' one: it carries ours too.
                    user_confs.insert(
                        key.to_string(),
                        with_feature_step(Some(&conf_value), APP_ID_STEP),
                    );
                } else {
                    user_confs.insert(key.to_string(), conf_value);
                }
            }
            o if MANAGED_OPTIONS.contains(&o) => overridden.push(o.to_string()),
            // Variables are the SQL runner's arguments, after the file.
            _ if sql_variable => {
                sql_variables.extend(["--hivevar".to_string(), value.unwrap_or_default()])
            }
            // `s3://` entries stay as they are: Spark reads them through S3A with the run's
            // role (the driver downloads them and serves them to executors), as EMR's Spark
            // does through EMRFS. Fetching them ahead would break `SparkFiles.get`.
            _ => {
                passthrough.push(token.clone());
                if let Some(v) = value {
                    passthrough.push(v);
                }
            }
        }
    }

    let mut argv = vec![format!("{}/bin/spark-submit", input.spark_home)];
    argv.extend(["--master".into(), format!("k8s://{}", input.master)]);
    argv.extend(["--deploy-mode".into(), "cluster".into()]);
    argv.extend([
        "--properties-file".into(),
        input.properties_file.to_string(),
    ]);
    argv.extend(passthrough);
    for (key, value) in &user_confs {
        argv.extend(["--conf".into(), format!("{key}={value}")]);
    }
    let mut managed = vec![
        ("spark.kubernetes.namespace", input.namespace.to_string()),
        ("spark.app.id", app_id.clone()),
        // The driver reaches the API server at the same address as the runner; Spark's
        // default (`https://kubernetes.default.svc`) is wrong when the API is not on 443.
        ("spark.kubernetes.driver.master", input.master.to_string()),
        ("spark.kubernetes.driver.pod.name", driver_pod_name.clone()),
        (
            "spark.kubernetes.authenticate.driver.serviceAccountName",
            names::service_account(names::SparkRole::Driver, input.account_id, input.role_name),
        ),
        (
            "spark.kubernetes.authenticate.executor.serviceAccountName",
            names::service_account(
                names::SparkRole::Executor,
                input.account_id,
                input.role_name,
            ),
        ),
        (
            "spark.kubernetes.submission.waitAppCompletion",
            "true".to_string(),
        ),
        (
            "spark.kubernetes.driver.label.emr-containers.amazonaws.com/job.id",
            input.job_run_id.to_string(),
        ),
        (
            "spark.kubernetes.driver.label.emr-containers.amazonaws.com/virtual-cluster-id",
            input.virtual_cluster_id.to_string(),
        ),
        (
            "spark.kubernetes.executor.label.emr-containers.amazonaws.com/job.id",
            input.job_run_id.to_string(),
        ),
        (
            "spark.kubernetes.executor.label.emr-containers.amazonaws.com/virtual-cluster-id",
            input.virtual_cluster_id.to_string(),
        ),
    ];
    // The entry point is localized first, so that it counts among the remote files below.
    let entry = match input.driver {
        JobDriver::SparkSubmit { .. } => {
            Some(remote.localize_for_pods(primary.unwrap_or_default()))
        }
        // The SQL CLI reads its `-f` file through Hadoop's FileSystem, which knows no
        // `local:` scheme: a plain path in the driver pod.
        JobDriver::SparkSql { entry_point, .. } => {
            entry_point.as_deref().map(|file| remote.localize(file))
        }
    };
    // Pods must fetch the inputs too: their templates (the user's, fetched, or fresh ones)
    // get the fetch step, written by the runner's fetch init container.
    let mut pod_templates = Vec::new();
    if !remote.files.is_empty() {
        for (conf, fresh) in [
            (
                "spark.kubernetes.driver.podTemplateFile",
                "driver-pod-template.yml",
            ),
            (
                "spark.kubernetes.executor.podTemplateFile",
                "executor-pod-template.yml",
            ),
        ] {
            let path = match user_confs.get(conf) {
                Some(path) => path.clone(),
                None => {
                    let path = format!("{REMOTE_DIR}/{fresh}");
                    argv.extend(["--conf".into(), format!("{conf}={path}")]);
                    path
                }
            };
            pod_templates.push(path);
        }
    }
    if !user_confs.contains_key("spark.kubernetes.container.image") {
        managed.push(("spark.kubernetes.container.image", input.image.to_string()));
    }
    for (key, value) in managed {
        argv.extend(["--conf".into(), format!("{key}={value}")]);
    }

    match input.driver {
        JobDriver::SparkSubmit {
            entry_point_arguments,
            ..
        } => {
            argv.extend(entry);
            argv.extend(entry_point_arguments.iter().cloned());
        }
        JobDriver::SparkSql { .. } => {
            // Spark's SQL shell refuses cluster mode; sparkyard's runner runs the file's
            // statements as an application instead, so a driver pod exists as on EMR.
            let class = if input.spark_runtime {
                SQL_RUNNER
            } else {
                "org.apache.spark.sql.hive.thriftserver.SparkSQLCLIDriver"
            };
            argv.extend(["--class".into(), class.into(), "spark-internal".into()]);
            if let Some(file) = entry {
                argv.extend(["-f".into(), file]);
            }
            argv.extend(sql_variables);
        }
    }

    Ok(SubmitCommand {
        argv,
        remote_files: remote.files,
        pod_templates,
        overridden,
        driver_pod_name,
    })
}

#[derive(Default)]
struct RemoteFiles {
    files: Vec<RemoteFile>,
}

impl RemoteFiles {
    /// `s3://b/k/x.py` → `/var/sparkyard/remote/<n>/x.py`; anything else unchanged.
    /// The index keeps two inputs with the same file name apart.
    fn localize(&mut self, uri: &str) -> String {
        let uri = uri.trim();
        if !(uri.starts_with("s3://") || uri.starts_with("s3a://") || uri.starts_with("s3n://")) {
            return uri.to_string();
        }
        if let Some(existing) = self.files.iter().find(|f| f.uri == uri) {
            return existing.local_path.clone();
        }
        let file_name = uri
            .rsplit('/')
            .next()
            .filter(|n| !n.is_empty())
            .unwrap_or("file");
        let local_path = format!("{REMOTE_DIR}/{}/{file_name}", self.files.len());
        self.files.push(RemoteFile {
            uri: uri.to_string(),
            local_path: local_path.clone(),
        });
        local_path
    }

    /// A fetched input as a file every pod has (`local://`), as the primary resource must be:
    /// a plain path would be a file of spark-submit's machine, which cluster mode uploads to
    /// `spark.kubernetes.file.upload.path` or refuses.
    fn localize_for_pods(&mut self, uri: &str) -> String {
        let localized = self.localize(uri);
        if localized == uri.trim() {
            localized
        } else {
            format!("local://{localized}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed_pi() -> JobDriver {
        JobDriver::SparkSubmit {
            entry_point: "local:///usr/lib/spark/examples/src/main/python/pi.py".into(),
            entry_point_arguments: vec![],
            spark_submit_parameters: Some("--conf spark.executor.instances=2 --conf spark.executor.memory=2G --conf spark.executor.cores=1 --conf spark.driver.cores=1".into()),
        }
    }

    fn input(driver: &JobDriver) -> SubmitInput<'_> {
        SubmitInput {
            job_run_id: "0000000327fe50tosa4",
            virtual_cluster_id: "949wt7zuphox1beiv0i30v65i",
            namespace: "monthly-batch",
            account_id: "123456789012",
            role_name: "monthly-batch-JobExecutionRole",
            image: "public.ecr.aws/emr-on-eks/spark/emr-6.3.0:latest",
            spark_home: "/usr/lib/spark",
            master: "https://kubernetes.default.svc:443",
            properties_file: "/etc/spark/conf/spark-defaults.conf",
            attempt: None,
            driver,
            spark_runtime: true,
        }
    }

    fn conf_value<'a>(argv: &'a [String], key: &str) -> Vec<&'a str> {
        argv.windows(2)
            .filter(|w| w[0] == "--conf")
            .filter_map(|w| w[1].strip_prefix(&format!("{key}=")))
            .collect()
    }

    #[test]
    fn sql_job_drivers_run_the_sql_runner_with_their_variables() {
        let driver = JobDriver::SparkSql {
            entry_point: Some("s3://code/q.sql".into()),
            spark_sql_parameters: Some(
                "--conf spark.executor.instances=1 -d day=2026-12-04 --hivevar=bucket=b".into(),
            ),
        };
        let cmd = build(&input(&driver)).unwrap();
        let class = cmd.argv.iter().position(|a| a == "--class").unwrap();
        assert_eq!(
            &cmd.argv[class..],
            [
                "--class",
                SQL_RUNNER,
                "spark-internal",
                "-f",
                "/var/sparkyard/remote/0/q.sql",
                "--hivevar",
                "day=2026-12-04",
                "--hivevar",
                "bucket=b"
            ]
        );
        assert_eq!(cmd.remote_files[0].uri, "s3://code/q.sql");
        assert_eq!(conf_value(&cmd.argv, "spark.executor.instances"), vec!["1"]);
    }

    #[test]
    fn a_users_feature_steps_keep_theirs_and_get_the_app_id_step() {
        let driver = JobDriver::SparkSubmit {
            entry_point: "local:///app.py".into(),
            entry_point_arguments: vec![],
            spark_submit_parameters: Some(format!(
                "--conf {DRIVER_FEATURE_STEPS}=com.example.Mine,{APP_ID_STEP}"
            )),
        };
        let cmd = build(&input(&driver)).unwrap();
        assert_eq!(
            conf_value(&cmd.argv, DRIVER_FEATURE_STEPS),
            vec![format!("com.example.Mine,{APP_ID_STEP}").as_str()]
        );
        // Without a user list, spark-defaults carries the step (validate.rs), not --conf.
        let plain = build(&input(&seed_pi())).unwrap();
        assert!(conf_value(&plain.argv, DRIVER_FEATURE_STEPS).is_empty());
        assert_eq!(with_feature_step(None, APP_ID_STEP), APP_ID_STEP);
        assert_eq!(
            with_feature_step(Some(" a , ,b"), APP_ID_STEP),
            format!("a,b,{APP_ID_STEP}")
        );
    }

    #[test]
    fn seed_pi_job_becomes_a_cluster_mode_submit() {
        let driver = seed_pi();
        let command = build(&input(&driver)).unwrap();
        let argv = &command.argv;
        assert_eq!(argv[0], "/usr/lib/spark/bin/spark-submit");
        assert_eq!(
            &argv[1..5],
            [
                "--master",
                "k8s://https://kubernetes.default.svc:443",
                "--deploy-mode",
                "cluster"
            ]
        );
        assert_eq!(conf_value(argv, "spark.executor.instances"), ["2"]);
        assert_eq!(
            conf_value(argv, "spark.app.id"),
            ["spark-0000000327fe50tosa4"]
        );
        assert_eq!(
            conf_value(argv, "spark.kubernetes.driver.pod.name"),
            ["spark-0000000327fe50tosa4-driver"]
        );
        assert_eq!(
            conf_value(argv, "spark.kubernetes.namespace"),
            ["monthly-batch"]
        );
        assert!(conf_value(
            argv,
            "spark.kubernetes.authenticate.driver.serviceAccountName"
        )[0]
        .starts_with("emr-containers-sa-spark-driver-123456789012-"));
        assert_eq!(
            argv.last().unwrap(),
            "local:///usr/lib/spark/examples/src/main/python/pi.py"
        );
        assert!(command.remote_files.is_empty());
    }

    #[test]
    fn managed_confs_from_the_user_are_replaced() {
        let driver = JobDriver::SparkSubmit {
            entry_point: "local:///app.py".into(),
            entry_point_arguments: vec!["10".into()],
            spark_submit_parameters: Some("--master local[2] --conf spark.kubernetes.namespace=other --conf spark.kubernetes.container.image=my/image:1".into()),
        };
        let command = build(&input(&driver)).unwrap();
        assert_eq!(
            conf_value(&command.argv, "spark.kubernetes.namespace"),
            ["monthly-batch"]
        );
        assert_eq!(
            conf_value(&command.argv, "spark.kubernetes.container.image"),
            ["my/image:1"]
        );
        assert!(!command.argv.contains(&"local[2]".to_string()));
        assert_eq!(
            command.overridden,
            ["--master", "spark.kubernetes.namespace"]
        );
        assert_eq!(
            &command.argv[command.argv.len() - 2..],
            ["local:///app.py", "10"]
        );
    }

    #[test]
    fn seed_priority_job_fetches_its_script_and_templates() {
        let driver = JobDriver::SparkSubmit {
            entry_point: "s3://eks-emr-cluster-demojobs-123456789012-us-east-1/low-priority-threadsleeper.py".into(),
            entry_point_arguments: vec![],
            spark_submit_parameters: Some(
                "--conf spark.kubernetes.driver.podTemplateFile=\"s3://tpl/spark_driver_pod_template.yml\" --conf spark.kubernetes.executor.podTemplateFile=\"s3://tpl/lp_spark_executor_pod_template.yml\" --conf spark.executor.instances=2 --py-files s3://lib/deps.zip,local:///opt/x.zip".into(),
            ),
        };
        let command = build(&input(&driver)).unwrap();
        let argv = &command.argv;
        assert_eq!(
            conf_value(argv, "spark.kubernetes.driver.podTemplateFile"),
            ["/var/sparkyard/remote/0/spark_driver_pod_template.yml"]
        );
        assert_eq!(
            conf_value(argv, "spark.kubernetes.executor.podTemplateFile"),
            ["/var/sparkyard/remote/1/lp_spark_executor_pod_template.yml"]
        );
        // Spark reads these itself, through S3A.
        let py_files = argv.iter().position(|a| a == "--py-files").unwrap();
        assert_eq!(argv[py_files + 1], "s3://lib/deps.zip,local:///opt/x.zip");
        assert_eq!(
            argv.last().unwrap(),
            "local:///var/sparkyard/remote/2/low-priority-threadsleeper.py"
        );
        assert_eq!(command.remote_files.len(), 3);
        assert_eq!(
            command.remote_files[2].uri,
            "s3://eks-emr-cluster-demojobs-123456789012-us-east-1/low-priority-threadsleeper.py"
        );
    }

    #[test]
    fn retry_policy_gives_the_driver_a_per_attempt_name() {
        let driver = seed_pi();
        let mut with_retry = input(&driver);
        with_retry.attempt = Some(2);
        let command = build(&with_retry).unwrap();
        assert!(command
            .driver_pod_name
            .starts_with("spark-0000000327fe50tosa4-driver-"));
        assert_eq!(
            conf_value(&command.argv, "spark.kubernetes.driver.pod.name"),
            [command.driver_pod_name.as_str()]
        );
        // Each attempt is its own application, with an event log of its own.
        assert_eq!(
            conf_value(&command.argv, "spark.app.id"),
            ["spark-0000000327fe50tosa4-2"]
        );
        with_retry.attempt = Some(1);
        let first = build(&with_retry).unwrap();
        assert_eq!(
            conf_value(&first.argv, "spark.app.id"),
            ["spark-0000000327fe50tosa4"]
        );
    }

    #[test]
    fn a_dangling_option_is_an_error() {
        let driver = JobDriver::SparkSubmit {
            entry_point: "local:///app.py".into(),
            entry_point_arguments: vec![],
            spark_submit_parameters: Some("--conf".into()),
        };
        assert_eq!(
            build(&input(&driver)).unwrap_err(),
            SubmitError::MissingValue("--conf".into())
        );
    }
}
