//! The `[emr]` table of sparkyard's configuration file.

use regex::Regex;
use serde::Deserialize;

/// The default release-label allow-list (whole-label regexes). It accepts the forms EMR on
/// EKS publishes (reference §11): `emr-5.32.0` and later 5.x, every `emr-6.x.y` and
/// `emr-7.x.y`, and `emr-spark-8.x.y`; each with `-latest` or a `-YYYYMMDD` build date,
/// optionally preceded by the java/OS/accelerator variants (`-java11`, `-java17-al2023`,
/// `-spark-rapids`, `-flink`, …) and by the notebook/livy image prefixes used by managed
/// endpoints.
pub const DEFAULT_RELEASE_LABELS: &[&str] = &[concat!(
    r"(?:(?:notebook-spark|notebook-python|livy)/)?",
    r"emr-(?:5\.(?:3[2-9]|[4-9]\d)\.\d+|[67]\.\d+\.\d+|spark-8\.\d+\.\d+)",
    r"(?:-(?:java8|java11|java17|java21|al2023|spark-rapids|flink))*",
    r"-(?:latest|\d{8})"
)];

/// `[emr]` in `sparkyard.toml`. Example:
/// ```toml
/// [emr]
/// # Replace the default allow-list (whole-label regexes):
/// release-labels = ['emr-7\.\d+\.\d+-latest']
/// # Or keep the default and add a few:
/// extra-release-labels = ['emr-6\.15\.0-custom']
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EmrConfig {
    /// Release labels StartJobRun and CreateManagedEndpoint accept, as regexes matched
    /// against the whole label. Absent: [`DEFAULT_RELEASE_LABELS`].
    #[serde(default)]
    pub release_labels: Option<Vec<String>>,
    /// Regexes accepted in addition to `release-labels` (or to the default list).
    #[serde(default)]
    pub extra_release_labels: Vec<String>,
}

/// The compiled release-label allow-list.
#[derive(Debug, Clone)]
pub struct ReleaseLabels {
    patterns: Vec<Regex>,
}

impl ReleaseLabels {
    pub fn from_config(config: &EmrConfig) -> Result<Self, regex::Error> {
        let base: Vec<String> = match &config.release_labels {
            Some(list) => list.clone(),
            None => DEFAULT_RELEASE_LABELS
                .iter()
                .map(|s| s.to_string())
                .collect(),
        };
        let patterns = base
            .iter()
            .chain(config.extra_release_labels.iter())
            .map(|p| Regex::new(&format!("^(?:{p})$")))
            .collect::<Result<_, _>>()?;
        Ok(Self { patterns })
    }

    pub fn accepts(&self, label: &str) -> bool {
        self.patterns.iter().any(|p| p.is_match(label))
    }
}

/// `(major, minor, patch)` of a release label such as `emr-6.15.0-latest`.
pub fn release_version(label: &str) -> Option<(u32, u32, u32)> {
    static RE: std::sync::LazyLock<Regex> = std::sync::LazyLock::new(|| {
        Regex::new(r"emr-(?:spark-)?(\d+)\.(\d+)\.(\d+)").expect("valid")
    });
    let c = RE.captures(label)?;
    Some((c[1].parse().ok()?, c[2].parse().ok()?, c[3].parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_accepts_real_forms() {
        let r = ReleaseLabels::from_config(&EmrConfig::default()).unwrap();
        for ok in [
            "emr-5.32.0-latest",
            "emr-5.36.2-20240101",
            "emr-6.2.0-latest",
            "emr-6.3.0-latest",
            "emr-6.15.0-20231109",
            "emr-6.10.0-java11-latest",
            "emr-7.1.0-java8-latest",
            "emr-6.15.0-java17-al2023-latest",
            "emr-6.10.0-spark-rapids-latest",
            "emr-7.2.0-flink-latest",
            "notebook-spark/emr-6.10.0-latest",
            "livy/emr-7.0.0-latest",
            "emr-spark-8.0.0-latest",
        ] {
            assert!(r.accepts(ok), "{ok}");
        }
        for bad in [
            "emr-5.31.0-latest",
            "emr-6.3.0",
            "emr-8.0.0-latest",
            "emr-6.3.0-lates",
            "spark-3.5",
        ] {
            assert!(!r.accepts(bad), "{bad}");
        }
    }

    #[test]
    fn configurable() {
        let config: EmrConfig = toml_like(&["custom-1"], &["emr-6\\.3\\.0"]);
        let r = ReleaseLabels::from_config(&config).unwrap();
        assert!(r.accepts("custom-1"));
        assert!(r.accepts("emr-6.3.0"));
        assert!(!r.accepts("emr-6.3.0-latest"));
    }

    fn toml_like(base: &[&str], extra: &[&str]) -> EmrConfig {
        EmrConfig {
            release_labels: Some(base.iter().map(|s| s.to_string()).collect()),
            extra_release_labels: extra.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn versions() {
        assert_eq!(release_version("emr-6.15.0-latest"), Some((6, 15, 0)));
        assert_eq!(
            release_version("notebook-spark/emr-7.1.0-java17-latest"),
            Some((7, 1, 0))
        );
        assert_eq!(release_version("emr-spark-8.0.0-latest"), Some((8, 0, 0)));
        assert_eq!(release_version("custom"), None);
    }
}
