//! `sparkyard spark-submit`: Spark's cluster-mode submission client without a JVM (issue 15).
//!
//! It takes `spark-submit`'s command line, builds the driver's objects with
//! `sparkyard-spark-submit` (Spark 4.0.1's feature steps, proven equal to the JVM client's by
//! tests/submit_conformance.rs), creates them as Spark's client does — the Pod, then the
//! Service and ConfigMaps owned by it, by server-side apply — and, unless
//! `spark.kubernetes.submission.waitAppCompletion=false`, follows the driver printing
//! `LoggingPodStatusWatcherImpl`'s lines. Anything outside the proven set runs the real
//! `$SPARK_HOME/bin/spark-submit` instead, with the reason printed first, so no job behaves
//! differently because of the fast path.
//!
//! An API server that does not answer for a while (sparkyard restarting, a control-plane
//! blip) is waited for, up to [`API_RETRY_FOR`], as client-go's and fabric8's clients do:
//! the crash campaign (docs/reliability.md) saw runs fail on one refused connection.

use std::future::Future;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Service};
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use serde_json::{json, Value};
use sparkyard_spark_submit::{args, driver, report, Submission};

const WATCHER: &str = "LoggingPodStatusWatcherImpl";

/// How long a call is retried while the API server is unreachable or answers 5xx/429.
const API_RETRY_FOR: Duration = Duration::from_secs(120);

/// Errors after which the same call may succeed: nothing reached the server, or it said so.
fn transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(status) => status.code >= 500 || status.code == 429,
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => true,
        _ => false,
    }
}

/// `call` until it succeeds, fails for good, or [`API_RETRY_FOR`] has passed.
async fn retrying<T, F, Fut>(what: &str, mut call: F) -> Result<T, kube::Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let deadline = Instant::now() + API_RETRY_FOR;
    let mut delay = Duration::from_millis(200);
    loop {
        match call().await {
            Err(e) if transient(&e) && Instant::now() < deadline => {
                log(&format!("{what}: {e}; retrying in {delay:?}"));
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            other => return other,
        }
    }
}

pub async fn run(argv: Vec<String>) -> anyhow::Result<i32> {
    let parsed = match args::parse(&argv) {
        Ok(parsed) => parsed,
        Err(e) => return fallback(&argv, &e.to_string()),
    };
    let conf_dir = spark_conf_dir();
    // Without --properties-file, spark-submit reads `$SPARK_CONF_DIR/spark-defaults.conf`.
    let default_file = conf_dir.as_ref().map(|d| d.join("spark-defaults.conf"));
    let defaults = match (&parsed.properties_file, default_file) {
        (Some(path), _) => args::read_properties(
            &std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?,
        ),
        (None, Some(path)) if path.is_file() => args::read_properties(
            &std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?,
        ),
        (None, _) => Default::default(),
    };
    let parsed = parsed.with_defaults(&defaults);
    if let Err(e) = parsed.validate() {
        eprintln!("{}", e.exception_line());
        return Ok(1);
    }
    let conf = &parsed.conf;
    let master = conf.get("spark.master").unwrap_or_default();
    let Some(api_url) = master.strip_prefix("k8s://") else {
        return fallback(&argv, &format!("the master is not Kubernetes ({master})"));
    };
    if conf.get("spark.submit.deployMode") != Some("cluster") {
        return fallback(&argv, "not cluster mode");
    }
    if let Some(reason) = driver::unsupported(conf, &parsed.main_resource) {
        return fallback(&argv, &reason);
    }
    let namespace = conf
        .get("spark.kubernetes.namespace")
        .unwrap_or("default")
        .to_string();
    let template = |key: &str| -> anyhow::Result<Option<String>> {
        conf.get(key)
            .map(|path| {
                std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))
            })
            .transpose()
    };
    let driver_template = template("spark.kubernetes.driver.podTemplateFile")?
        .map(|text| serde_yaml::from_str::<Value>(&text))
        .transpose()
        .context("the driver pod template is not YAML")?;
    let now = chrono::Utc::now();
    let millis = now.timestamp_millis() as u64;
    let id = |n: u8| {
        let random = uuid::Uuid::new_v4();
        let b = random.as_bytes();
        sparkyard_spark_submit::names::unique_id([b[0], b[1], b[2] ^ n], millis)
    };
    let app_id = conf
        .get("spark.app.id")
        .map(String::from)
        .unwrap_or_else(|| format!("spark-{}", uuid::Uuid::new_v4().simple()));
    let submission = Submission {
        conf: conf.clone(),
        main_resource: parsed.main_resource.clone(),
        main_class: parsed.main_class.clone(),
        app_args: parsed.app_args.clone(),
        namespace: namespace.clone(),
        app_id: app_id.clone(),
        driver_template,
        executor_template: template("spark.kubernetes.executor.podTemplateFile")?,
        user: std::env::var("SPARK_USER")
            .or_else(|_| std::env::var("USER"))
            .unwrap_or_else(|_| "root".into()),
        ids: [id(0), id(1), id(2)],
        local_dir_uuid: uuid::Uuid::new_v4().to_string(),
        date: now.format("%a %b %d %H:%M:%S UTC %Y").to_string(),
        submit_time_millis: millis,
        conf_files: match conf_dir_files(conf_dir.as_deref(), conf) {
            Ok(files) => files,
            Err(reason) => return fallback(&argv, &reason),
        },
    };
    let objects = match driver::build(&submission) {
        Ok(objects) => objects,
        Err(e) => {
            // As the JVM prints an uncaught exception: the first line is what
            // stateDetails shows, the rest of the message follows.
            let message = e.to_string();
            eprintln!("{}", e.exception_line());
            for line in message.lines().skip(1) {
                eprintln!("{line}");
            }
            return Ok(1);
        }
    };

    println!(
        "sparkyard: native submission (no JVM): creating driver pod {} in namespace {namespace}",
        objects.pod["metadata"]["name"].as_str().unwrap_or_default()
    );
    // rustls has two providers in this binary's graph and will not choose by itself.
    sparkyard_logs::aws::install_crypto_provider();
    let mut config = kube::Config::infer()
        .await
        .context("no Kubernetes credentials (in-cluster or kubeconfig)")?;
    config.cluster_url = api_url.parse().context("the master URL")?;
    let client = Client::try_from(config)?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let pod: Pod = serde_json::from_value(objects.pod.clone())?;
    let post = PostParams::default();
    let created = match retrying("creating the driver pod", || pods.create(&post, &pod)).await {
        Ok(created) => created,
        // A create whose answer was lost and that was retried: the pod is this submission's
        // if it carries this application's id.
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let existing = retrying("reading the driver pod", || pods.get(&name)).await?;
            let ours = existing
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("spark-app-selector"))
                == Some(&app_id);
            if !ours {
                eprintln!(
                    "Exception in thread \"main\" io.fabric8.kubernetes.client.KubernetesClientException: Failure executing: POST at: {api_url}/api/v1/namespaces/{namespace}/pods. Message: {}.",
                    status.message
                );
                return Ok(1);
            }
            existing
        }
        Err(kube::Error::Api(status)) => {
            eprintln!(
                "Exception in thread \"main\" io.fabric8.kubernetes.client.KubernetesClientException: Failure executing: POST at: {api_url}/api/v1/namespaces/{namespace}/pods. Message: {}.",
                status.message
            );
            return Ok(1);
        }
        Err(e) => return Err(e.into()),
    };
    let driver_name = created.metadata.name.clone().unwrap_or_default();
    let owner = json!([{"apiVersion": "v1", "kind": "Pod", "controller": true,
        "name": driver_name, "uid": created.metadata.uid}]);
    let apply = PatchParams::apply("fabric8").force();
    let mut service = objects.service.clone();
    service["metadata"]["ownerReferences"] = owner.clone();
    let name = service["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let services = Api::<Service>::namespaced(client.clone(), &namespace);
    let service = Patch::Apply(&service);
    retrying("applying the driver's Service", || {
        services.patch(&name, &apply, &service)
    })
    .await
    .context("the driver's Service")?;
    for config_map in &objects.config_maps {
        let mut config_map = config_map.clone();
        config_map["metadata"]["ownerReferences"] = owner.clone();
        let name = config_map["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let config_maps = Api::<ConfigMap>::namespaced(client.clone(), &namespace);
        let config_map = Patch::Apply(&config_map);
        retrying("applying a ConfigMap", || {
            config_maps.patch(&name, &apply, &config_map)
        })
        .await
        .with_context(|| format!("the ConfigMap {name}"))?;
    }
    if !conf.bool("spark.kubernetes.submission.waitAppCompletion", true)? {
        log(&format!(
            "Deployed Spark application {} with application ID {app_id} and submission ID {} into Kubernetes",
            conf.get("spark.app.name").unwrap_or_default(),
            report::submission_id(&namespace, &driver_name)
        ));
        return Ok(0);
    }
    follow(
        &pods,
        &driver_name,
        &namespace,
        conf.get("spark.app.name").unwrap_or_default(),
        &app_id,
    )
    .await?;
    Ok(0)
}

/// Prints the driver's state as it changes and its phase every second, until it ends;
/// like Spark's client, the exit is 0 whatever the driver's outcome.
async fn follow(
    pods: &Api<Pod>,
    driver: &str,
    namespace: &str,
    app_name: &str,
    app_id: &str,
) -> anyhow::Result<()> {
    let config = watcher::Config::default().fields(&format!("metadata.name={driver}"));
    // The watcher re-lists after an error; the back-off spaces its attempts while the API
    // server is away.
    let mut events = watcher::watcher(pods.clone(), config)
        .default_backoff()
        .boxed();
    let mut unreachable_since: Option<Instant> = None;
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    let mut last: Option<Value> = None;
    let mut announced = false;
    loop {
        tokio::select! {
            event = events.next() => {
                let pod = match event {
                    Some(Ok(watcher::Event::Apply(pod))) | Some(Ok(watcher::Event::InitApply(pod))) => pod,
                    Some(Ok(watcher::Event::Delete(_))) => {
                        log("The driver pod was deleted");
                        return Ok(());
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        let since = *unreachable_since.get_or_insert_with(Instant::now);
                        if since.elapsed() > API_RETRY_FOR {
                            return Err(anyhow!("watching the driver: {e}"));
                        }
                        log(&format!("watching the driver: {e}; retrying"));
                        continue;
                    }
                    None => return Ok(()),
                };
                unreachable_since = None;
                let value = serde_json::to_value(&pod)?;
                if last.as_ref().map(report::pod_state) != Some(report::pod_state(&value)) {
                    log(&format!("State changed, new state: {}", report::pod_state(&value)));
                }
                let phase = value["status"]["phase"].as_str().unwrap_or("").to_string();
                last = Some(value);
                if !announced && phase != "Pending" {
                    log(&format!(
                        "Waiting for application {app_name}}} with application ID {app_id} and submission ID {}",
                        report::submission_id(namespace, driver)
                    ));
                    announced = true;
                }
                if phase == "Succeeded" || phase == "Failed" {
                    log(&report::application_status(app_id, &phase));
                    let statuses = last.as_ref().and_then(|p| p["status"]["containerStatuses"].as_array().cloned()).unwrap_or_default();
                    let finals: String = statuses.iter().map(|c| report::container_status(c, "\t ")).collect();
                    log(&format!("Container final statuses:\n\n{finals}"));
                    log(&format!(
                        "Application {app_name} with application ID {app_id} and submission ID {} finished",
                        report::submission_id(namespace, driver)
                    ));
                    return Ok(());
                }
            }
            _ = ticker.tick() => {
                if let Some(pod) = &last {
                    log(&report::application_status(app_id, pod["status"]["phase"].as_str().unwrap_or("Pending")));
                }
            }
        }
    }
}

/// A line as Spark's log4j pattern prints it.
fn log(message: &str) {
    println!(
        "{} INFO {WATCHER}: {message}",
        chrono::Utc::now().format("%y/%m/%d %H:%M:%S")
    );
}

/// The client's configuration directory: `$SPARK_CONF_DIR`, else `$SPARK_HOME/conf`.
fn spark_conf_dir() -> Option<std::path::PathBuf> {
    std::env::var_os("SPARK_CONF_DIR")
        .map(Into::into)
        .or_else(|| std::env::var_os("SPARK_HOME").map(|h| std::path::Path::new(&h).join("conf")))
}

/// The configuration directory's files that go to the driver ([`driver::conf_dir_files`]).
/// A file that is not UTF-8 text is a reason for the JVM path (Spark's handling of binary
/// files there is not in the proven set).
fn conf_dir_files(
    dir: Option<&std::path::Path>,
    conf: &sparkyard_spark_submit::SparkConf,
) -> Result<std::collections::BTreeMap<String, String>, String> {
    let Some(entries) = dir.and_then(|d| std::fs::read_dir(d).ok()) else {
        return Ok(Default::default());
    };
    let mut files = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_file() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        match std::fs::read(&path).map(String::from_utf8) {
            Ok(Ok(text)) => files.push((name, text)),
            Ok(Err(_)) => return Err(format!("{} is not UTF-8 text", path.display())),
            Err(_) => continue, // unreadable: Spark skips it too
        }
    }
    let max_size = conf
        .get("spark.kubernetes.configMap.maxSize")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_572_864);
    Ok(driver::conf_dir_files(files, max_size))
}

/// Runs the JVM `spark-submit` with the same arguments; returns only if it cannot start.
fn fallback(argv: &[String], reason: &str) -> anyhow::Result<i32> {
    let spark_home = std::env::var("SPARK_HOME").unwrap_or_else(|_| "/usr/lib/spark".into());
    println!(
        "sparkyard: native submission not used ({reason}); running {spark_home}/bin/spark-submit"
    );
    let error = std::process::Command::new(format!("{spark_home}/bin/spark-submit"))
        .args(argv)
        .exec();
    Err(anyhow!("cannot run {spark_home}/bin/spark-submit: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(
            kube::core::Status::failure("m", "r").with_code(code),
        ))
    }

    #[test]
    fn only_what_may_succeed_next_time_is_retried() {
        assert!(transient(&status(503)));
        assert!(transient(&status(500)));
        assert!(transient(&status(429)));
        assert!(
            !transient(&status(409)),
            "AlreadyExists is settled by a read"
        );
        assert!(!transient(&status(403)));
        assert!(!transient(&status(422)));
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(transient(&kube::Error::Service(Box::new(refused))));
    }

    #[tokio::test]
    async fn a_server_that_comes_back_is_waited_for_and_one_that_refuses_is_not() {
        let mut calls = 0;
        let answer = retrying("x", || {
            calls += 1;
            let n = calls;
            async move {
                if n < 4 {
                    Err(status(503))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(answer.unwrap(), 4);
        let mut calls = 0;
        let refused: Result<(), _> = retrying("x", || {
            calls += 1;
            async { Err(status(403)) }
        })
        .await;
        assert!(refused.is_err());
        assert_eq!(calls, 1);
    }
}
