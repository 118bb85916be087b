//! `spark-submit`'s command line, read as `SparkSubmitArguments` reads it for a Kubernetes
//! cluster-mode submission: options become confs, a properties file gives the defaults, and
//! the main resource decides the application's type and default name.

use std::collections::BTreeMap;

use crate::conf::{ConfError, SparkConf};
use crate::driver::MainResource;

/// The main class Spark runs Python applications with.
pub const PYTHON_RUNNER: &str = "org.apache.spark.deploy.PythonRunner";
/// The main class of R applications.
pub const R_RUNNER: &str = "org.apache.spark.deploy.RRunner";
/// The primary resource meaning "no user jar, the class is on the classpath".
pub const NO_RESOURCE: &str = "spark-internal";

/// A parsed command line.
#[derive(Debug, Clone, PartialEq)]
pub struct SubmitArgs {
    pub conf: SparkConf,
    pub main_resource: MainResource,
    pub main_class: String,
    pub app_args: Vec<String>,
    /// `--properties-file`, to be read by the caller and passed to [`SubmitArgs::with_defaults`].
    pub properties_file: Option<String>,
}

/// A command line the native path does not take, with the reason (for the runner's log).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    /// Spark would refuse it too, with this message.
    #[error("{0}")]
    Invalid(String),
    /// Valid, but outside what the native path has been proven to build.
    #[error("{0}")]
    Unsupported(String),
}

/// Options that set one conf each.
const CONF_OPTIONS: &[(&str, &str)] = &[
    ("--name", "spark.app.name"),
    ("--master", "spark.master"),
    ("--deploy-mode", "spark.submit.deployMode"),
    ("--driver-memory", "spark.driver.memory"),
    ("--driver-cores", "spark.driver.cores"),
    ("--executor-memory", "spark.executor.memory"),
    ("--executor-cores", "spark.executor.cores"),
    ("--num-executors", "spark.executor.instances"),
    ("--total-executor-cores", "spark.cores.max"),
    ("--jars", "spark.jars"),
    ("--files", "spark.files"),
    ("--py-files", "spark.submit.pyFiles"),
    ("--archives", "spark.archives"),
    ("--driver-java-options", "spark.driver.extraJavaOptions"),
    ("--driver-class-path", "spark.driver.extraClassPath"),
    ("--driver-library-path", "spark.driver.extraLibraryPath"),
];

/// Options the native path leaves to the JVM (dependency resolution, impersonation, …).
const JVM_ONLY: &[&str] = &[
    "--packages",
    "--exclude-packages",
    "--repositories",
    "--proxy-user",
    "--principal",
    "--keytab",
    "--kill",
    "--status",
    "--supervise",
];

/// Parses `spark-submit`'s arguments (without the program name).
pub fn parse(args: &[String]) -> Result<SubmitArgs, ArgsError> {
    let mut conf = SparkConf::new();
    let mut main_class: Option<String> = None;
    let mut properties_file = None;
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if !arg.starts_with("--") || arg == "--" {
            break;
        }
        let (option, inline) = match arg.split_once('=') {
            Some((o, v)) => (o, Some(v.to_string())),
            None => (arg.as_str(), None),
        };
        if option == "--verbose" || option == "-v" {
            i += 1;
            continue;
        }
        if JVM_ONLY.contains(&option) {
            return Err(ArgsError::Unsupported(format!("{option} is set")));
        }
        let value = match inline {
            Some(v) => v,
            None => {
                i += 1;
                args.get(i).cloned().ok_or_else(|| {
                    ArgsError::Invalid(format!("Missing argument for option '{option}'"))
                })?
            }
        };
        i += 1;
        match option {
            "--conf" | "-c" => {
                let (key, value) = value.split_once('=').ok_or_else(|| {
                    ArgsError::Invalid(format!("Spark config without '=': {value}"))
                })?;
                conf.set(key, value.trim_matches('"'));
            }
            "--class" => main_class = Some(value),
            "--properties-file" => properties_file = Some(value),
            other => match CONF_OPTIONS.iter().find(|(o, _)| *o == other) {
                Some((_, key)) => conf.set(*key, value),
                None => return Err(ArgsError::Invalid(format!("Unrecognized option '{other}'"))),
            },
        }
    }
    let resource = args.get(i).cloned().ok_or_else(|| {
        ArgsError::Invalid("Must specify a primary resource (JAR or Python or R file)".into())
    })?;
    let app_args = args[i + 1..].to_vec();
    let (main_resource, main_class) = if resource.ends_with(".py") {
        (
            MainResource::Python(resource.clone()),
            PYTHON_RUNNER.to_string(),
        )
    } else if resource.to_lowercase().ends_with(".r") {
        (MainResource::R(resource.clone()), R_RUNNER.to_string())
    } else {
        let class = main_class.clone().ok_or_else(|| {
            ArgsError::Invalid("No main class set in JAR; please specify one with --class.".into())
        })?;
        let jar = (resource != NO_RESOURCE).then(|| resource.clone());
        (MainResource::Java(jar), class)
    };
    // SparkSubmit always passes the Python files, even none, and adds a Java application's
    // jar to `spark.jars` after the `--jars`.
    if !conf.contains("spark.submit.pyFiles") {
        conf.set("spark.submit.pyFiles", "");
    }
    if let MainResource::Java(Some(jar)) = &main_resource {
        let jars = match conf.get("spark.jars").filter(|j| !j.is_empty()) {
            Some(jars) => format!("{jars},{jar}"),
            None => jar.clone(),
        };
        conf.set("spark.jars", jars);
    }
    // SparkSubmitArguments: the name defaults to the main class, else the resource's file name.
    if !conf.contains("spark.app.name") {
        let name = match (&main_resource, &main_class) {
            (MainResource::Java(_), class) => class.clone(),
            _ => resource.rsplit('/').next().unwrap_or(&resource).to_string(),
        };
        conf.set("spark.app.name", name);
    }
    Ok(SubmitArgs {
        conf,
        main_resource,
        main_class,
        app_args,
        properties_file,
    })
}

impl SubmitArgs {
    /// Adds a properties file's `spark.*` entries where the command line set nothing, as
    /// spark-submit does with `--properties-file` (other keys are ignored, with a warning).
    pub fn with_defaults(mut self, defaults: &BTreeMap<String, String>) -> Self {
        for (key, value) in defaults {
            if key.starts_with("spark.") && !self.conf.contains(key) {
                self.conf.set(key.clone(), value.trim());
            }
        }
        self
    }

    /// `SparkSubmitArguments.validateSubmitArguments`' checks of the merged conf (command
    /// line over defaults), with its `SparkException` messages.
    pub fn validate(&self) -> Result<(), ConfError> {
        let conf = &self.conf;
        let refused = |message: &str| Err(ConfError::Missing(message.into()));
        for (key, what) in [
            ("spark.driver.memory", "Driver memory"),
            ("spark.executor.memory", "Executor memory"),
        ] {
            if conf.get(key).is_some_and(|v| !positive_byte_string(v)) {
                return refused(&format!("{what} must be a positive number"));
            }
        }
        let positive_int = |v: &str| v.parse::<i32>().is_ok_and(|n| n > 0);
        let dynamic = conf
            .get("spark.dynamicAllocation.enabled")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        for (key, what, checked) in [
            ("spark.driver.cores", "Driver cores", true),
            ("spark.executor.cores", "Executor cores", true),
            ("spark.cores.max", "Total executor cores", true),
            ("spark.executor.instances", "Number of executors", !dynamic),
        ] {
            if checked && conf.get(key).is_some_and(|v| !positive_int(v)) {
                return refused(&format!("{what} must be a positive number"));
            }
        }
        Ok(())
    }
}

/// `JavaUtils.byteStringAsBytes(value) > 0`: digits and an optional unit, more than zero.
fn positive_byte_string(value: &str) -> bool {
    let lower = value.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (digits, unit) = lower.split_at(split);
    let units = [
        "", "b", "k", "kb", "m", "mb", "g", "gb", "t", "tb", "p", "pb",
    ];
    digits.parse::<u64>().is_ok_and(|n| n > 0) && units.contains(&unit)
}

/// A `.properties` file's entries as `java.util.Properties.load` reads them: `key=value`,
/// `key:value` or `key value`, `#`/`!` comments, backslash escapes (`\:`, `\=`, `\ `, `\t`,
/// `\n`, `\\`, `\uXXXX`). Line continuations are not handled: spark-defaults files and
/// Spark's own `spark.properties` do not use them.
pub fn read_properties(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .map(str::trim_start)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .map(|line| {
            let (key, rest) = split_key(line);
            let rest = rest.trim_start();
            let rest = rest
                .strip_prefix('=')
                .or_else(|| rest.strip_prefix(':'))
                .unwrap_or(rest)
                .trim_start();
            (unescape(key), unescape(rest))
        })
        .collect()
}

/// The key (up to the first unescaped `=`, `:` or blank) and the rest.
fn split_key(line: &str) -> (&str, &str) {
    let mut escaped = false;
    for (i, ch) in line.char_indices() {
        match ch {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '=' | ':' | ' ' | '\t' => return (&line[..i], &line[i..]),
            _ => {}
        }
    }
    (line, "")
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(ch) = chars.next() {
        if ch != '\\' {
            out.push(ch);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\x0c'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                if let Some(c) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    out.push(c);
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_python_submission_as_emrs_runner_sends_it() {
        let parsed = parse(&strings(&[
            "--master",
            "k8s://https://kubernetes.default.svc:443",
            "--deploy-mode",
            "cluster",
            "--properties-file",
            "/etc/spark/conf/spark-defaults.conf",
            "--py-files",
            "s3://b/deps.zip",
            "--conf",
            "spark.executor.instances=2",
            "--conf=spark.app.id=spark-0000000327fe50tosa4",
            "local:///usr/lib/spark/examples/src/main/python/pi.py",
            "10",
        ]))
        .unwrap();
        assert_eq!(parsed.main_class, PYTHON_RUNNER);
        assert_eq!(parsed.app_args, ["10"]);
        assert_eq!(
            parsed.conf.get("spark.submit.pyFiles"),
            Some("s3://b/deps.zip")
        );
        assert_eq!(parsed.conf.get("spark.app.name"), Some("pi.py"));
        assert_eq!(
            parsed.conf.get("spark.app.id"),
            Some("spark-0000000327fe50tosa4")
        );
        assert_eq!(
            parsed.properties_file.as_deref(),
            Some("/etc/spark/conf/spark-defaults.conf")
        );
        let defaults = read_properties(
            "# EMR\nspark.executor.instances 5\nspark.executor.memory=2G\nnot.spark=x\n",
        );
        let escaped =
            read_properties("spark.master=k8s\\://https\\://h\\:443\nspark.app.name=\\ a\\=b\n");
        assert_eq!(escaped["spark.master"], "k8s://https://h:443");
        assert_eq!(escaped["spark.app.name"], " a=b");
        let merged = parsed.with_defaults(&defaults);
        assert_eq!(merged.conf.get("spark.executor.instances"), Some("2"));
        assert_eq!(merged.conf.get("spark.executor.memory"), Some("2G"));
        assert_eq!(merged.conf.get("not.spark"), None);
    }

    #[test]
    fn java_sql_and_refusals() {
        let sql = parse(&strings(&[
            "--class",
            "io.sparkyard.spark.SqlFileRunner",
            "spark-internal",
            "-f",
            "/q.sql",
        ]))
        .unwrap();
        assert_eq!(sql.main_resource, MainResource::Java(None));
        assert_eq!(
            sql.conf.get("spark.app.name"),
            Some("io.sparkyard.spark.SqlFileRunner")
        );
        assert_eq!(sql.app_args, ["-f", "/q.sql"]);
        assert_eq!(
            parse(&strings(&["app.jar"])).unwrap_err().to_string(),
            "No main class set in JAR; please specify one with --class."
        );
        assert!(matches!(
            parse(&strings(&["--packages", "a:b:1", "x.py"])),
            Err(ArgsError::Unsupported(_))
        ));
        assert_eq!(
            parse(&strings(&["--bogus", "1", "x.py"]))
                .unwrap_err()
                .to_string(),
            "Unrecognized option '--bogus'"
        );
    }

    #[test]
    fn submit_arguments_are_validated_as_spark_submit_does() {
        let parsed = |confs: &[&str]| {
            let mut argv: Vec<String> = Vec::new();
            for c in confs {
                argv.extend(["--conf".to_string(), c.to_string()]);
            }
            argv.push("local:///pi.py".into());
            parse(&argv).unwrap()
        };
        assert_eq!(parsed(&["spark.driver.memory=2g"]).validate(), Ok(()));
        assert_eq!(
            parsed(&["spark.driver.memory=12x"])
                .validate()
                .unwrap_err()
                .to_string(),
            "Driver memory must be a positive number"
        );
        assert_eq!(
            parsed(&["spark.executor.memory=0"])
                .validate()
                .unwrap_err()
                .to_string(),
            "Executor memory must be a positive number"
        );
        assert_eq!(
            parsed(&["spark.executor.instances=-1"])
                .validate()
                .unwrap_err()
                .to_string(),
            "Number of executors must be a positive number"
        );
        let dynamic = parsed(&[
            "spark.executor.instances=0",
            "spark.dynamicAllocation.enabled=true",
        ]);
        assert_eq!(dynamic.validate(), Ok(()));
    }
}
