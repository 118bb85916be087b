//! Kubelet configuration: the node this machine offers and how images map to local
//! directories. Both are tables of `[cluster]` (`[cluster.node]`, `[cluster.images]`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Default of `[cluster] pod-cidr`: the loopback range pod IPs come from (Linux routes all of
/// 127/8 to `lo`, so any address in it can be bound without configuration).
pub fn default_pod_cidr() -> String {
    "127.1.0.0/16".into()
}

/// `[cluster.images]`: container images are local directories. A rule maps image names
/// (glob with `*`) to a directory mounted at in-image paths, plus the image's config
/// (entrypoint, working directory, env).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case", default)]
pub struct ImagesConfig {
    /// The Spark distribution Spark images map to. Default: `$SPARK_HOME`, else the
    /// `pyspark` package of a `.venv` found above the working directory or the binary, else
    /// the one `scripts/setup.sh` last installed ([`installed_spark_home`]).
    pub spark_home: Option<PathBuf>,
    /// `PYSPARK_PYTHON` inside Spark pods: a Python that can import pyspark. Default: the
    /// venv's `bin/python3` next to the found pyspark, else `python3`.
    pub python: Option<PathBuf>,
    /// `JAVA_HOME` inside pods. Default: `$JAVA_HOME`, else where `java` on `PATH` lives.
    pub java_home: Option<PathBuf>,
    /// Rules checked before the built-in Spark rules.
    pub rules: Vec<ImageRule>,
    /// What an image matching no rule runs on: `host` (the host's own root file system,
    /// the default, so that small utility images like `busybox` work) or `error`
    /// (the pod waits with `ErrImagePull`, as an unknown image would on a real node).
    pub unknown: UnknownImages,
}

#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum UnknownImages {
    #[default]
    Host,
    Error,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ImageRule {
    /// Image reference glob, e.g. `apache/spark:*`, `*/spark/emr-*`.
    pub pattern: String,
    /// Host directory of the image content; absent means the Spark distribution.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// In-image paths where `dir` appears.
    #[serde(default)]
    pub mount_at: Vec<String>,
    /// `spark` emulates the Spark image's `/opt/entrypoint.sh`; `none` runs `command`/`args`.
    #[serde(default)]
    pub entrypoint: EntrypointKind,
    /// The image's `WORKDIR`.
    #[serde(default)]
    pub working_dir: Option<String>,
    /// The image's `ENV` (container env overrides it).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum EntrypointKind {
    #[default]
    None,
    Spark,
    /// sparkyard's own tool image (`sparkyard fetch` in init containers): the running
    /// sparkyard binary, with `args` as its arguments.
    Sparkyard,
}

/// Where the sparkyard binary's directory appears in pods of its tool image.
pub const SPARKYARD_BIN_DIR: &str = "/opt/sparkyard/bin";

/// The built-in rules: Apache Spark images and EMR on EKS release images all become the
/// installed Spark distribution, at `/opt/spark` (Apache's `SPARK_HOME`) and at
/// `/usr/lib/spark` (EMR's).
pub fn builtin_rules() -> Vec<ImageRule> {
    [
        "apache/spark:*",
        "*/apache/spark:*",
        "spark:*",
        "*/library/spark:*",
        "*/spark/emr-*",
        "spark/emr-*",
    ]
    .iter()
    .map(|pattern| ImageRule {
        pattern: pattern.to_string(),
        dir: None,
        mount_at: vec!["/opt/spark".into(), "/usr/lib/spark".into()],
        entrypoint: EntrypointKind::Spark,
        working_dir: Some("/opt/spark/work-dir".into()),
        env: BTreeMap::from([("SPARK_HOME".to_string(), "/opt/spark".to_string())]),
    })
    .chain(
        // The job controller's default tool image (`[controller] tool-image`) and plain
        // `sparkyard:*`: the running binary, so the tools always match the server.
        [
            "sparkyard:*",
            "*/sparkyard:*",
            "sparkyard/tools:*",
            "*/sparkyard/tools:*",
        ]
        .iter()
        .map(|pattern| ImageRule {
            pattern: pattern.to_string(),
            dir: None,
            mount_at: vec![SPARKYARD_BIN_DIR.into()],
            entrypoint: EntrypointKind::Sparkyard,
            working_dir: None,
            env: BTreeMap::new(),
        }),
    )
    .collect()
}

/// `*` matches any run of characters (including `/`), everything else literally.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] != '*' && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Host paths the Spark rules need, found once at start.
#[derive(Debug, Clone)]
pub struct HostRuntime {
    pub spark_home: Option<PathBuf>,
    pub python: PathBuf,
    pub java_home: Option<PathBuf>,
}

impl HostRuntime {
    /// The runtime's host directories under `/tmp` (a checkout under `/tmp`, say): a pod's
    /// `/tmp` is its own, so the kubelet binds these back in, read-only, at the same paths —
    /// `PYSPARK_PYTHON` and friends name them. The Python is a venv's `bin/python3`: its
    /// venv goes in whole (its `site-packages`).
    pub fn dirs_under_tmp(&self) -> Vec<PathBuf> {
        let venv = self
            .python
            .parent()
            .and_then(Path::parent)
            .filter(|v| v.join("pyvenv.cfg").exists());
        let mut dirs: Vec<PathBuf> = [self.spark_home.as_deref(), venv, self.java_home.as_deref()]
            .into_iter()
            .flatten()
            .filter(|d| d.is_absolute() && d.starts_with("/tmp") && *d != Path::new("/tmp"))
            .map(Path::to_path_buf)
            .collect();
        dirs.sort();
        // A directory inside another one listed is already there.
        dirs.dedup_by(|inner, outer| inner.starts_with(outer));
        dirs
    }

    pub fn discover(config: &ImagesConfig) -> Self {
        let spark_home = config
            .spark_home
            .clone()
            .or_else(|| {
                std::env::var_os("SPARK_HOME")
                    .map(PathBuf::from)
                    .filter(|p| p.join("jars").is_dir())
            })
            .or_else(find_venv_pyspark)
            .or_else(installed_spark_home);
        let python = config
            .python
            .clone()
            .or_else(|| spark_home.as_deref().and_then(venv_python_of))
            .unwrap_or_else(|| PathBuf::from("python3"));
        let java_home = config
            .java_home
            .clone()
            .or_else(|| {
                std::env::var_os("JAVA_HOME")
                    .map(PathBuf::from)
                    .filter(|p| p.join("bin/java").exists())
            })
            .or_else(java_home_from_path);
        Self {
            spark_home,
            python,
            java_home,
        }
    }
}

/// `<dir>/.venv/lib/python3*/site-packages/pyspark` for the working directory, the binary's
/// directory and their ancestors.
fn find_venv_pyspark() -> Option<PathBuf> {
    let mut starts = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        starts.push(cwd);
    }
    if let Ok(exe) = std::env::current_exe() {
        starts.push(exe);
    }
    for start in starts {
        for dir in start.ancestors() {
            let lib = dir.join(".venv/lib");
            let Ok(entries) = std::fs::read_dir(&lib) else {
                continue;
            };
            for entry in entries.flatten() {
                let candidate = entry.path().join("site-packages/pyspark");
                if candidate.join("jars").is_dir() {
                    return Some(candidate);
                }
            }
        }
    }
    None
}

/// Where `scripts/setup.sh` records the Spark distribution it installed, so that
/// sparkyard started from any directory (and a binary built anywhere) finds it:
/// `$XDG_DATA_HOME/sparkyard/runtime/spark-home` (default `~/.local/share/…`), a symlink to
/// the venv's `pyspark`.
pub fn runtime_link() -> Option<PathBuf> {
    let data = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))?;
    Some(data.join("sparkyard/runtime/spark-home"))
}

/// The distribution [`runtime_link`] points at, resolved (a checkout under `/tmp` must be
/// seen as such to be bound into pods), if it still holds Spark's jars.
fn installed_spark_home() -> Option<PathBuf> {
    std::fs::canonicalize(runtime_link()?)
        .ok()
        .filter(|p| p.join("jars").is_dir())
}

/// `<venv>/bin/python3` for `<venv>/lib/python3.X/site-packages/pyspark`.
fn venv_python_of(pyspark: &Path) -> Option<PathBuf> {
    let venv = pyspark.ancestors().nth(4)?;
    let python = venv.join("bin/python3");
    python.exists().then_some(python)
}

fn java_home_from_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        let java = dir.join("java");
        if java.exists() {
            let real = std::fs::canonicalize(&java).ok()?;
            return real.parent()?.parent().map(Path::to_path_buf);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_dirs_under_tmp_are_bound_back() {
        let dir = tempfile::Builder::new()
            .prefix("clone")
            .tempdir_in("/tmp")
            .unwrap();
        let venv = dir.path().join(".venv");
        std::fs::create_dir_all(venv.join("bin")).unwrap();
        std::fs::write(venv.join("pyvenv.cfg"), "home = /usr/bin\n").unwrap();
        let runtime = HostRuntime {
            spark_home: Some(venv.join("lib/python3.11/site-packages/pyspark")),
            python: venv.join("bin/python3"),
            java_home: Some("/usr/lib/jvm/java-17".into()),
        };
        assert_eq!(runtime.dirs_under_tmp(), [venv]);
        let elsewhere = HostRuntime {
            spark_home: Some("/opt/spark".into()),
            python: "python3".into(),
            java_home: None,
        };
        assert!(elsewhere.dirs_under_tmp().is_empty());
    }

    #[test]
    fn globs_match_spark_and_emr_images() {
        let rules = builtin_rules();
        let matches = |image: &str| rules.iter().any(|r| glob_match(&r.pattern, image));
        assert!(matches("apache/spark:4.0.1"));
        assert!(matches("docker.io/apache/spark:4.0.1"));
        assert!(matches("spark:4.0.1-python3"));
        assert!(matches(
            "755674844232.dkr.ecr.us-east-1.amazonaws.com/spark/emr-6.3.0:latest"
        ));
        assert!(!matches("busybox:1.36"));
        assert!(!matches("apache/sparkle:1"));
        assert!(glob_match("a*b*c", "aXXbYc"));
        assert!(!glob_match("a*b", "ab c"));
    }
}
