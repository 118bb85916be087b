//! Native submission is proven equal to JVM `spark-submit` (issue 15): for each case of the
//! matrix, the real `spark-submit --deploy-mode cluster` (pyspark 4.0.1) creates its driver
//! Pod, Service and ConfigMaps in one namespace, `sparkyard_spark_submit` builds them from the
//! same command line with the same generated ids (read back from the JVM's objects) and they
//! are created in another namespace as the native client creates them; both are read back
//! from the API and must be equal field by field once namespaces, uids, resource versions,
//! timestamps and token-volume suffixes are normalised.
//!
//! The drivers select a node label no node has, so no driver ever starts: the objects are
//! what is compared, not the application.

#[path = "support/cluster.rs"]
mod cluster_support;
mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use cluster_support::{kubectl, ClusterServer};
use serde_json::{json, Value};
use sparkyard_spark_submit::{args, driver, MainResource, Submission};
use support::walkthrough::{DRIVER_TEMPLATE, LP_EXECUTOR_TEMPLATE, POD_TEMPLATES};

/// SPARK_CONF_DIR for every case: spark-defaults.conf (comments only, so both clients'
/// confs stay the command line's) and a template stay behind; the rest go to the driver.
const CONF_DIR_FILES: &[(&str, &str)] = &[
    ("spark-defaults.conf", "# nothing: the command line carries the conf\n"),
    ("log4j2.properties", "rootLogger.level = info\nrootLogger.appenderRef.stdout.ref = console\n"),
    ("core-site.xml", "<configuration>\n  <property><name>fs.s3a.connection.maximum</name><value>64</value></property>\n</configuration>\n"),
    ("spark-env.sh.template", "# template\n"),
];

/// Keeps every driver Pending: no node has this label.
const NEVER_SCHEDULED: &str = "spark.kubernetes.driver.node.selector.sparkyard-conformance=never";
const PI: &str = "local:///opt/spark/examples/src/main/python/pi.py";

struct Case {
    name: &'static str,
    /// spark-submit's arguments after `--master`/`--deploy-mode` and before the resource.
    options: Vec<String>,
    resource: &'static str,
    app_args: &'static [&'static str],
}

fn conf(pairs: &[&str]) -> Vec<String> {
    pairs
        .iter()
        .flat_map(|p| ["--conf".to_string(), p.to_string()])
        .collect()
}

fn cases(templates: &Path) -> Vec<Case> {
    let template = |name: &str| templates.join(name).display().to_string();
    vec![
        Case {
            name: "pi",
            options: conf(&[
                "spark.driver.memory=512m",
                "spark.kubernetes.driver.request.cores=100m",
            ]),
            resource: PI,
            app_args: &["10"],
        },
        Case {
            name: "seed-templates",
            options: conf(&[
                &format!(
                    "spark.kubernetes.driver.podTemplateFile={}",
                    template(DRIVER_TEMPLATE)
                ),
                &format!(
                    "spark.kubernetes.executor.podTemplateFile={}",
                    template(LP_EXECUTOR_TEMPLATE)
                ),
                "spark.executor.instances=2",
            ]),
            resource: PI,
            app_args: &[],
        },
        Case {
            name: "metadata",
            options: [
                conf(&[
                    "spark.kubernetes.driver.label.team=data",
                    "spark.kubernetes.driver.annotation.owner=run-{{APP_ID}}",
                    "spark.kubernetes.node.selector.topology.kubernetes.io/zone=us-east-2a",
                    "spark.kubernetes.driverEnv.STAGE=test",
                    "spark.kubernetes.container.image.pullSecrets=regcred",
                    "spark.kubernetes.driver.limit.cores=2",
                    "spark.driver.memoryOverhead=500m",
                    // Dropped by SparkSubmit in cluster mode.
                    "spark.driver.host=somewhere",
                ]),
                vec![
                    "--name".into(),
                    "Metadata Case".into(),
                    "--driver-memory".into(),
                    "2g".into(),
                ],
            ]
            .concat(),
            resource: PI,
            app_args: &["3"],
        },
        Case {
            // As sparkyard's event logs mount: one hostPath volume, with a sub-path.
            name: "host-path-volume",
            options: conf(&[
                "spark.kubernetes.driver.volumes.hostPath.events.mount.path=/var/log/spark-events",
                "spark.kubernetes.driver.volumes.hostPath.events.mount.readOnly=false",
                "spark.kubernetes.driver.volumes.hostPath.events.mount.subPath=runs",
                "spark.kubernetes.driver.volumes.hostPath.events.options.path=/tmp/events",
                "spark.kubernetes.driver.volumes.hostPath.events.options.type=DirectoryOrCreate",
            ]),
            resource: PI,
            app_args: &[],
        },
        Case {
            name: "claim-volume",
            options: conf(&[
                "spark.kubernetes.driver.volumes.persistentVolumeClaim.data.mount.path=/data",
                "spark.kubernetes.driver.volumes.persistentVolumeClaim.data.mount.readOnly=true",
                "spark.kubernetes.driver.volumes.persistentVolumeClaim.data.options.claimName=shared-data",
            ]),
            resource: PI,
            app_args: &[],
        },
        Case {
            name: "java",
            options: vec![
                "--class".into(),
                "org.apache.spark.examples.SparkPi".into(),
                "--conf".into(),
                "spark.kubernetes.memoryOverheadFactor=0.2".into(),
                "--jars".into(),
                "local:///opt/spark/jars/extra.jar".into(),
            ],
            resource: "local:///opt/spark/examples/jars/spark-examples_2.13-4.0.1.jar",
            app_args: &["100"],
        },
        Case {
            name: "py-files",
            options: vec![
                "--py-files".into(),
                "local:///opt/spark/examples/src/main/python/sql/basic.py".into(),
                "--files".into(),
                "local:///opt/spark/examples/src/main/resources/people.csv".into(),
            ],
            resource: PI,
            app_args: &[],
        },
    ]
}

#[test]
fn native_driver_objects_equal_spark_submits() {
    let cluster = ClusterServer::start();
    let templates = tempfile::tempdir().unwrap();
    for (name, text) in POD_TEMPLATES {
        std::fs::write(templates.path().join(name), text).unwrap();
    }
    // The seed's templates name priority classes; admission refuses unknown ones.
    for (file, manifest) in support::walkthrough::priority_classes() {
        let path = templates.path().join(file);
        std::fs::write(&path, manifest).unwrap();
        kubectl_ok(&cluster, &["apply", "-f", path.to_str().unwrap()]);
    }
    // The client's SPARK_CONF_DIR, as the job runner has it: its files (not spark-defaults
    // or templates) travel to the driver in its ConfigMap.
    let conf_dir = tempfile::tempdir().unwrap();
    for (name, text) in CONF_DIR_FILES {
        std::fs::write(conf_dir.path().join(name), text).unwrap();
    }
    let mut failures = Vec::new();
    for case in cases(templates.path()) {
        let jvm_ns = format!("jvm-{}", case.name);
        let native_ns = format!("native-{}", case.name);
        for ns in [&jvm_ns, &native_ns] {
            let path = templates.path().join(format!("{ns}.yaml"));
            std::fs::write(&path, cluster_support::spark_namespace_manifest(ns)).unwrap();
            kubectl_ok(&cluster, &["apply", "-f", path.to_str().unwrap()]);
        }
        let argv = submit_args(&cluster, &case, &jvm_ns);
        let out = Command::new(support::venv_tool("spark-submit"))
            .args(&argv)
            .env("KUBECONFIG", cluster.kubeconfig())
            .env("PATH", cluster_support::venv_path())
            .env_remove("SPARK_HOME")
            .env("SPARK_CONF_DIR", conf_dir.path())
            .output()
            .expect("run spark-submit");
        assert!(
            out.status.success(),
            "{}: spark-submit failed:\n{}",
            case.name,
            String::from_utf8_lossy(&out.stderr)
        );
        let jvm = read_back(&cluster, &jvm_ns);

        let native = build_native(&argv, &jvm, &native_ns);
        create_as_native_client(&cluster, &native, &native_ns);
        let ours = read_back(&cluster, &native_ns);

        for (kind, theirs, mine) in [
            ("driver Pod", &jvm.pod, &ours.pod),
            ("Service", &jvm.service, &ours.service),
        ] {
            let (theirs, mine) = (normalise(theirs, &jvm_ns), normalise(mine, &native_ns));
            if theirs != mine {
                failures.push(format!(
                    "{}: {kind} differs\nspark-submit: {theirs:#}\nnative: {mine:#}",
                    case.name
                ));
            }
        }
        if jvm.config_maps.len() != ours.config_maps.len() {
            failures.push(format!(
                "{}: ConfigMaps {:?} vs {:?}",
                case.name,
                names(&jvm.config_maps),
                names(&ours.config_maps)
            ));
        }
        for (theirs, mine) in jvm.config_maps.iter().zip(&ours.config_maps) {
            let (mut theirs, mut mine) = (normalise(theirs, &jvm_ns), normalise(mine, &native_ns));
            // spark.properties: the same entries (Java writes them in hash order).
            let (a, b) = (
                properties_of(&mut theirs, "spark.properties"),
                properties_of(&mut mine, "spark.properties"),
            );
            if a != b {
                failures.push(format!(
                    "{}: spark.properties differs\nspark-submit: {a:#?}\nnative: {b:#?}",
                    case.name
                ));
            }
            if theirs != mine {
                failures.push(format!(
                    "{}: ConfigMap differs\nspark-submit: {theirs:#}\nnative: {mine:#}",
                    case.name
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));

    // `sparkyard spark-submit` itself: the same objects, created without a JVM.
    let ns = "cli-pi";
    let path = templates.path().join("cli.yaml");
    std::fs::write(&path, cluster_support::spark_namespace_manifest(ns)).unwrap();
    kubectl_ok(&cluster, &["apply", "-f", path.to_str().unwrap()]);
    let case = &cases(templates.path())[0];
    let out = Command::new(env!("CARGO_BIN_EXE_sparkyard"))
        .arg("spark-submit")
        .args(submit_args(&cluster, case, ns))
        .env("KUBECONFIG", cluster.kubeconfig())
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{printed}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        printed.contains("Deployed Spark application pi.py with application ID spark-"),
        "{printed}"
    );
    let native = read_back(&cluster, ns);
    assert_eq!(native.pod["metadata"]["labels"]["spark-role"], "driver");
    assert_eq!(
        names(&native.config_maps)
            .iter()
            .filter(|n| n.starts_with("spark-drv-"))
            .count(),
        1
    );
    let owner = &native.service["metadata"]["ownerReferences"][0];
    assert_eq!(
        owner["uid"], native.pod["metadata"]["uid"],
        "{:#}",
        native.service
    );
}

/// Conf values Spark refuses: the native client prints the JVM's exception line (which the
/// controller turns into the run's stateDetails) and creates nothing.
#[test]
fn refused_confs_get_spark_submits_error() {
    let cluster = ClusterServer::start();
    let dir = tempfile::tempdir().unwrap();
    let ns = "refusals";
    let path = dir.path().join("ns.yaml");
    std::fs::write(&path, cluster_support::spark_namespace_manifest(ns)).unwrap();
    kubectl_ok(&cluster, &["apply", "-f", path.to_str().unwrap()]);
    let exception = |stderr: &[u8]| {
        String::from_utf8_lossy(stderr)
            .lines()
            .find(|l| l.starts_with("Exception in thread \"main\""))
            .map(str::to_string)
    };
    for bad in [
        "spark.driver.memory=12x",
        "spark.driver.memoryOverhead=12x",
        "spark.driver.port=seven",
        "spark.ui.port=seven",
        "spark.driver.bindAddress=0.0.0.0",
        "spark.kubernetes.driver.label.spark-role=other",
    ] {
        let case = Case {
            name: "refused",
            options: conf(&[bad]),
            resource: PI,
            app_args: &[],
        };
        let argv = submit_args(&cluster, &case, ns);
        let jvm = Command::new(support::venv_tool("spark-submit"))
            .args(&argv)
            .env("KUBECONFIG", cluster.kubeconfig())
            .env("PATH", cluster_support::venv_path())
            .env_remove("SPARK_HOME")
            .output()
            .unwrap();
        let native = Command::new(env!("CARGO_BIN_EXE_sparkyard"))
            .arg("spark-submit")
            .args(&argv)
            .env("KUBECONFIG", cluster.kubeconfig())
            .output()
            .unwrap();
        assert!(
            !jvm.status.success() && !native.status.success(),
            "{bad}: spark-submit {:?} {}\nnative {:?} {}",
            jvm.status,
            String::from_utf8_lossy(&jvm.stderr),
            native.status,
            String::from_utf8_lossy(&native.stderr)
        );
        let theirs = exception(&jvm.stderr);
        assert!(
            theirs.is_some(),
            "{bad}: {}",
            String::from_utf8_lossy(&jvm.stderr)
        );
        assert_eq!(
            theirs,
            exception(&native.stderr),
            "{bad}: native stderr {}",
            String::from_utf8_lossy(&native.stderr)
        );
    }
    let left = kubectl_ok(
        &cluster,
        &["get", "pods,services,configmaps", "-n", ns, "-o", "name"],
    );
    assert_eq!(left.trim(), "configmap/kube-root-ca.crt", "nothing created");
}

fn kubectl_ok(cluster: &ClusterServer, args: &[&str]) -> String {
    let out = kubectl(&cluster.kubeconfig(), args);
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The whole command line, as a JVM spark-submit and the native path both take it.
fn submit_args(cluster: &ClusterServer, case: &Case, ns: &str) -> Vec<String> {
    let mut argv: Vec<String> = vec![
        "--master".into(),
        format!("k8s://https://127.0.0.1:{}", cluster.api_port),
        "--deploy-mode".into(),
        "cluster".into(),
    ];
    argv.extend(conf(&[
        "spark.kubernetes.container.image=apache/spark:4.0.1",
        "spark.kubernetes.authenticate.driver.serviceAccountName=spark",
        &format!("spark.kubernetes.namespace={ns}"),
        "spark.kubernetes.submission.waitAppCompletion=false",
        NEVER_SCHEDULED,
    ]));
    argv.extend(case.options.iter().cloned());
    argv.push(case.resource.into());
    argv.extend(case.app_args.iter().map(|a| a.to_string()));
    argv
}

struct Objects {
    pod: Value,
    service: Value,
    /// Spark's ConfigMaps (not the namespace's `kube-root-ca.crt`), by name.
    config_maps: Vec<Value>,
}

fn read_back(cluster: &ClusterServer, ns: &str) -> Objects {
    let list = |kind: &str| -> Vec<Value> {
        let out = kubectl_ok(cluster, &["get", kind, "-n", ns, "-o", "json"]);
        serde_json::from_str::<Value>(&out).unwrap()["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let mut pods = list("pods");
    assert_eq!(pods.len(), 1, "{ns}: {pods:#?}");
    let mut services = list("services");
    assert_eq!(services.len(), 1, "{ns}: {services:#?}");
    let mut config_maps: Vec<Value> = list("configmaps")
        .into_iter()
        .filter(|c| c["metadata"]["name"] != "kube-root-ca.crt")
        .collect();
    config_maps.sort_by_key(|c| c["metadata"]["name"].as_str().unwrap_or("").to_string());
    Objects {
        pod: pods.remove(0),
        service: services.remove(0),
        config_maps,
    }
}

fn names(objects: &[Value]) -> Vec<String> {
    objects
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap_or("").to_string())
        .collect()
}

/// The native objects for the same command line, with the JVM's generated ids.
fn build_native(argv: &[String], jvm: &Objects, ns: &str) -> driver::DriverObjects {
    let parsed = args::parse(argv).expect("the native path takes the case");
    let pod_name = jvm.pod["metadata"]["name"].as_str().unwrap();
    let prefix_id = pod_name
        .trim_end_matches("-driver")
        .rsplit('-')
        .next()
        .unwrap()
        .to_string();
    let conf_map = names(&jvm.config_maps)
        .into_iter()
        .find(|n| n.starts_with("spark-drv-"))
        .unwrap();
    let conf_map_id = conf_map
        .trim_start_matches("spark-drv-")
        .trim_end_matches("-conf-map")
        .to_string();
    let container = &jvm.pod["spec"]["containers"][0];
    let env = |name: &str| -> String {
        container["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .and_then(|e| e["value"].as_str())
            .unwrap_or_default()
            .to_string()
    };
    let properties = jvm
        .config_maps
        .iter()
        .find(|c| c["metadata"]["name"] == conf_map.as_str())
        .and_then(|c| c["data"]["spark.properties"].as_str())
        .unwrap();
    let date = properties.lines().nth(1).unwrap().trim_start_matches('#');
    let template = |key: &str| {
        parsed
            .conf
            .get(key)
            .map(|path| std::fs::read_to_string(path).unwrap())
    };
    let mut conf = parsed.conf.clone();
    conf.set("spark.kubernetes.namespace", ns);
    let submission = Submission {
        conf,
        main_resource: parsed.main_resource.clone(),
        main_class: parsed.main_class.clone(),
        app_args: parsed.app_args.clone(),
        namespace: ns.to_string(),
        app_id: jvm.pod["metadata"]["labels"]["spark-app-selector"]
            .as_str()
            .unwrap()
            .to_string(),
        driver_template: template("spark.kubernetes.driver.podTemplateFile")
            .map(|t| serde_yaml::from_str(&t).unwrap()),
        executor_template: template("spark.kubernetes.executor.podTemplateFile"),
        user: env("SPARK_USER"),
        ids: [prefix_id, conf_map_id, String::new()],
        local_dir_uuid: env("SPARK_LOCAL_DIRS")
            .trim_start_matches("/var/data/spark-")
            .to_string(),
        date: date.to_string(),
        submit_time_millis: 0,
        conf_files: driver::conf_dir_files(
            CONF_DIR_FILES
                .iter()
                .map(|(n, t)| (n.to_string(), t.to_string()))
                .collect(),
            1_572_864,
        ),
    };
    assert!(
        !matches!(submission.main_resource, MainResource::R(_)),
        "R is not in the matrix"
    );
    driver::build(&submission).expect("the native build")
}

/// The pod first, then the other objects owned by it, as Spark's client creates them.
fn create_as_native_client(cluster: &ClusterServer, objects: &driver::DriverObjects, ns: &str) {
    let dir = tempfile::tempdir().unwrap();
    let create = |name: &str, object: &Value| -> Value {
        let path = dir.path().join(name);
        std::fs::write(&path, object.to_string()).unwrap();
        serde_json::from_str(&kubectl_ok(
            cluster,
            &[
                "create",
                "-n",
                ns,
                "-f",
                path.to_str().unwrap(),
                "-o",
                "json",
            ],
        ))
        .unwrap()
    };
    let pod = create("pod.json", &objects.pod);
    let owner = json!([{"apiVersion": "v1", "kind": "Pod", "controller": true,
        "name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]}]);
    let mut service = objects.service.clone();
    service["metadata"]["ownerReferences"] = owner.clone();
    create("service.json", &service);
    for (i, config_map) in objects.config_maps.iter().enumerate() {
        let mut config_map = config_map.clone();
        config_map["metadata"]["ownerReferences"] = owner.clone();
        create(&format!("cm-{i}.json"), &config_map);
    }
}

/// What differs between two namespaces by nature: the namespace itself, identities and
/// times the API server assigns, and the suffix of the service-account token volume.
fn normalise(object: &Value, ns: &str) -> Value {
    let text = object.to_string().replace(ns, "NAMESPACE");
    let token_volume = regex::Regex::new("kube-api-access-[a-z0-9]+").unwrap();
    let text = token_volume.replace_all(&text, "kube-api-access-X");
    let mut value: Value = serde_json::from_str(&text).unwrap();
    if let Some(metadata) = value["metadata"].as_object_mut() {
        for key in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "managedFields",
            "generation",
        ] {
            metadata.remove(key);
        }
        if let Some(owners) = metadata
            .get_mut("ownerReferences")
            .and_then(Value::as_array_mut)
        {
            for owner in owners {
                owner.as_object_mut().unwrap().remove("uid");
            }
        }
    }
    if let Some(object) = value.as_object_mut() {
        object.remove("status");
    }
    if let Some(spec) = value["spec"].as_object_mut() {
        spec.remove("clusterIPs");
    }
    value
}

/// Removes a `.properties` data key and returns its entries (date line excluded).
fn properties_of(config_map: &mut Value, key: &str) -> BTreeMap<String, String> {
    let text = config_map["data"]
        .as_object_mut()
        .and_then(|d| d.remove(key))
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default();
    let mut entries = args::read_properties(&text);
    // A time, set when each client ran.
    if let Some(v) = entries.get_mut("spark.app.submitTime") {
        *v = "TIME".into();
    }
    entries
}
