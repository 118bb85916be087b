//! What a container executes: Kubernetes' command/args rules over the image's entrypoint,
//! and an emulation of the Spark image's `/opt/entrypoint.sh` (apache/spark-docker), since
//! the image is a local Spark distribution rather than a filesystem with that script.

use std::collections::BTreeMap;

use super::config::EntrypointKind;
use super::env::expand;

/// The argv to run, after `$(VAR)` expansion of `command` and `args`.
///
/// Kubernetes: `command` replaces the image's ENTRYPOINT (and then `args` replace its CMD);
/// `args` alone are passed to the ENTRYPOINT.
pub fn argv(
    container: &serde_json::Value,
    entrypoint: EntrypointKind,
    env: &BTreeMap<String, String>,
) -> Result<Vec<String>, String> {
    let lookup = |name: &str| env.get(name).cloned();
    let list = |key: &str| -> Option<Vec<String>> {
        container[key].as_array().map(|items| {
            items
                .iter()
                .map(|v| expand(v.as_str().unwrap_or(""), &lookup))
                .collect()
        })
    };
    let (command, args) = (list("command"), list("args").unwrap_or_default());
    if let Some(command) = command.filter(|c| !c.is_empty()) {
        return Ok(command.into_iter().chain(args).collect());
    }
    let argv = match entrypoint {
        EntrypointKind::None => args,
        EntrypointKind::Spark => spark_entrypoint(&args, env),
        EntrypointKind::Sparkyard => match env.get("SPARKYARD_BIN") {
            Some(bin) => std::iter::once(bin.clone()).chain(args).collect(),
            None => return Err("the sparkyard tool image has no binary".into()),
        },
    };
    if argv.is_empty() {
        return Err("no command specified".into());
    }
    Ok(argv)
}

/// `entrypoint.sh driver|executor|<anything>` of the Spark image, as argv. Runs under the
/// image's env (`SPARK_HOME`, `JAVA_HOME`, `SPARK_CONF_DIR`, …); the working directory is
/// the image's, so `$PWD` is appended to the classpath like the script does.
pub fn spark_entrypoint(args: &[String], env: &BTreeMap<String, String>) -> Vec<String> {
    let get = |k: &str| env.get(k).cloned().unwrap_or_default();
    let spark_home = env
        .get("SPARK_HOME")
        .cloned()
        .unwrap_or_else(|| "/opt/spark".into());
    let mut classpath = match env.get("SPARK_CLASSPATH") {
        Some(cp) => format!("{cp}:{spark_home}/jars/*"),
        None => format!(":{spark_home}/jars/*"),
    };
    if let Some(extra) = env.get("SPARK_EXTRA_CLASSPATH").filter(|e| !e.is_empty()) {
        classpath = format!("{classpath}:{extra}");
    }
    if let Some(hadoop_conf) = env.get("HADOOP_CONF_DIR") {
        classpath = format!("{hadoop_conf}:{classpath}");
    }
    classpath = match env.get("SPARK_CONF_DIR") {
        Some(conf) => format!("{conf}:{classpath}"),
        None => format!("{spark_home}/conf:{classpath}"),
    };
    if let Some(pwd) = env.get("PWD") {
        classpath = format!("{classpath}:{pwd}");
    }
    match args.first().map(String::as_str) {
        Some("driver") => {
            let bind = get("SPARK_DRIVER_BIND_ADDRESS");
            let mut cmd = vec![
                format!("{spark_home}/bin/spark-submit"),
                "--conf".into(),
                format!("spark.driver.bindAddress={bind}"),
                "--conf".into(),
                format!("spark.executorEnv.SPARK_DRIVER_POD_IP={bind}"),
                "--deploy-mode".into(),
                "client".into(),
            ];
            cmd.extend(args[1..].iter().cloned());
            cmd
        }
        Some("executor") => {
            let java = match env.get("JAVA_HOME").filter(|j| !j.is_empty()) {
                Some(home) => format!("{home}/bin/java"),
                None => "java".into(),
            };
            let mut cmd = vec![java];
            cmd.extend(java_opts(env));
            let memory = get("SPARK_EXECUTOR_MEMORY");
            cmd.push(format!("-Xms{memory}"));
            cmd.push(format!("-Xmx{memory}"));
            cmd.push("-cp".into());
            cmd.push(
                match env.get("SPARK_DIST_CLASSPATH").filter(|d| !d.is_empty()) {
                    Some(dist) => format!("{classpath}:{dist}"),
                    None => classpath,
                },
            );
            cmd.push("org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend".into());
            for (flag, var) in [
                ("--driver-url", "SPARK_DRIVER_URL"),
                ("--executor-id", "SPARK_EXECUTOR_ID"),
                ("--cores", "SPARK_EXECUTOR_CORES"),
                ("--app-id", "SPARK_APPLICATION_ID"),
                ("--hostname", "SPARK_EXECUTOR_POD_IP"),
                ("--resourceProfileId", "SPARK_RESOURCE_PROFILE_ID"),
                ("--podName", "SPARK_EXECUTOR_POD_NAME"),
            ] {
                cmd.push(flag.into());
                cmd.push(get(var));
            }
            cmd
        }
        _ => args.to_vec(),
    }
}

/// `SPARK_JAVA_OPT_<n>` values in numeric order of `n` (Spark does not send them sorted).
fn java_opts(env: &BTreeMap<String, String>) -> Vec<String> {
    let mut opts: Vec<(u64, &String)> = env
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("SPARK_JAVA_OPT_")
                .and_then(|n| n.parse().ok())
                .map(|n| (n, v))
        })
        .collect();
    opts.sort_by_key(|(n, _)| *n);
    opts.into_iter().map(|(_, v)| v.clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn driver_runs_spark_submit_in_client_mode_on_the_pod_ip() {
        let container = json!({"args": ["driver", "--properties-file", "/opt/spark/conf/spark.properties",
                                        "--class", "org.apache.spark.deploy.PythonRunner", "local:///opt/spark/examples/src/main/python/pi.py", "10"]});
        let e = env(&[
            ("SPARK_HOME", "/opt/spark"),
            ("SPARK_DRIVER_BIND_ADDRESS", "127.1.0.7"),
        ]);
        let argv = argv(&container, EntrypointKind::Spark, &e).unwrap();
        assert_eq!(
            argv[..7],
            [
                "/opt/spark/bin/spark-submit",
                "--conf",
                "spark.driver.bindAddress=127.1.0.7",
                "--conf",
                "spark.executorEnv.SPARK_DRIVER_POD_IP=127.1.0.7",
                "--deploy-mode",
                "client"
            ]
        );
        assert_eq!(
            argv[7..9],
            ["--properties-file", "/opt/spark/conf/spark.properties"]
        );
        assert_eq!(argv.last().unwrap(), "10");
    }

    #[test]
    fn executor_runs_the_backend_with_sorted_java_opts() {
        let e = env(&[
            ("SPARK_HOME", "/opt/spark"),
            ("JAVA_HOME", "/usr/lib/jvm/java-17"),
            ("SPARK_CONF_DIR", "/opt/spark/conf"),
            ("PWD", "/opt/spark/work-dir"),
            ("SPARK_JAVA_OPT_10", "-Dten"),
            ("SPARK_JAVA_OPT_2", "-Dtwo"),
            ("SPARK_JAVA_OPT_0", "-Dzero"),
            ("SPARK_EXECUTOR_MEMORY", "512m"),
            (
                "SPARK_DRIVER_URL",
                "spark://CoarseGrainedScheduler@d-svc.ns.svc:7078",
            ),
            ("SPARK_EXECUTOR_ID", "1"),
            ("SPARK_EXECUTOR_CORES", "1"),
            ("SPARK_APPLICATION_ID", "spark-1"),
            ("SPARK_EXECUTOR_POD_IP", "127.1.0.8"),
            ("SPARK_RESOURCE_PROFILE_ID", "0"),
            ("SPARK_EXECUTOR_POD_NAME", "x-exec-1"),
        ]);
        let argv = argv(&json!({"args": ["executor"]}), EntrypointKind::Spark, &e).unwrap();
        assert_eq!(
            argv[..6],
            [
                "/usr/lib/jvm/java-17/bin/java",
                "-Dzero",
                "-Dtwo",
                "-Dten",
                "-Xms512m",
                "-Xmx512m"
            ]
        );
        assert_eq!(
            argv[6..8],
            [
                "-cp",
                "/opt/spark/conf::/opt/spark/jars/*:/opt/spark/work-dir"
            ]
        );
        assert_eq!(
            argv[8],
            "org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend"
        );
        assert!(argv.windows(2).any(|w| w == ["--hostname", "127.1.0.8"]));
        assert!(argv.windows(2).any(|w| w == ["--podName", "x-exec-1"]));
    }

    #[test]
    fn command_overrides_the_entrypoint_and_vars_expand() {
        let e = env(&[("WHO", "world")]);
        let c = json!({"command": ["sh", "-c"], "args": ["echo hello $(WHO) $$(WHO)"]});
        assert_eq!(
            argv(&c, EntrypointKind::Spark, &e).unwrap(),
            ["sh", "-c", "echo hello world $(WHO)"]
        );
        // Pass-through of the Spark entrypoint for anything but driver/executor.
        let c = json!({"args": ["/bin/true"]});
        assert_eq!(argv(&c, EntrypointKind::Spark, &e).unwrap(), ["/bin/true"]);
        assert!(argv(&json!({}), EntrypointKind::None, &e).is_err());
    }
}

#[cfg(test)]
mod tool_image_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_tool_image_runs_the_sparkyard_binary_with_its_args() {
        let env = BTreeMap::from([(
            "SPARKYARD_BIN".to_string(),
            "/opt/sparkyard/bin/sparkyard".to_string(),
        )]);
        let container = json!({"args": ["fetch", "s3://b/k=/var/sparkyard/remote/0/k"]});
        assert_eq!(
            argv(&container, EntrypointKind::Sparkyard, &env).unwrap(),
            [
                "/opt/sparkyard/bin/sparkyard",
                "fetch",
                "s3://b/k=/var/sparkyard/remote/0/k"
            ]
        );
        assert!(argv(&container, EntrypointKind::Sparkyard, &BTreeMap::new()).is_err());
    }
}
