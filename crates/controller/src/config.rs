//! The `[controller]` table of sparkyard's configuration.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// `[controller]`: where the cluster is and how releases map to images.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ControllerConfig {
    /// Kubeconfig of the cluster job runs go to. Default: the embedded cluster's
    /// (`<data_dir>/cluster/kubeconfig`), or the in-cluster service account when sparkyard
    /// itself runs in a pod and that file does not exist.
    #[serde(default)]
    pub kubeconfig: Option<PathBuf>,
    /// The API server as pods see it (spark-submit's `--master` and the driver's
    /// `spark.kubernetes.driver.master`). Default: the embedded cluster's in-cluster URL
    /// when it runs in this process; in a pod, `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`
    /// (the address the kubelet gave that pod); else `https://kubernetes.default.svc`.
    #[serde(default)]
    pub master: Option<String>,
    /// Release label → Spark image, checked before the default rule. A key is an exact
    /// label or a glob with `*` (`emr-7.*`).
    #[serde(default)]
    pub release_images: BTreeMap<String, String>,
    /// The image of every other `emr-*` label; `{release}` is the label without its
    /// `-latest` / `-YYYYMMDD` tag and `{tag}` is that tag (`latest` when absent), as EMR
    /// names its images (`…/spark/emr-6.3.0:latest`).
    #[serde(default = "default_image_template")]
    pub default_image: String,
    /// `SPARK_HOME` inside the Spark image (`/usr/lib/spark` on EMR images).
    #[serde(default = "default_spark_home")]
    pub spark_home: String,
    /// sparkyard's own image: init containers that fetch `s3://` inputs, and the job
    /// runner's `sparkyard spark-submit` (see `native_submission`).
    #[serde(default = "default_tool_image")]
    pub tool_image: String,
    /// The job runner submits with `sparkyard spark-submit` (native: no JVM, falling back
    /// to the image's JVM `spark-submit` for options outside the proven set), taking the
    /// binary from `tool-image` through an image volume. `false`: always the JVM.
    #[serde(default = "default_true")]
    pub native_submission: bool,
    /// How long a run may wait for a `maxConcurrentJobRuns` slot (EMR: 30 minutes).
    #[serde(default = "default_queue_timeout")]
    pub queue_timeout_seconds: u64,
    /// How often every active run is looked at even without a cluster event.
    #[serde(default = "default_resync")]
    pub resync_seconds: u64,
    /// How long a finished run's Kubernetes objects stay after it reaches COMPLETED, FAILED
    /// or CANCELLED (its runner Jobs and their pods, its driver pods with their executors,
    /// services and ConfigMaps, its spark-conf ConfigMap); then the controller deletes
    /// them, like a Job's `ttlSecondsAfterFinished`. The run's record and its logs in S3
    /// and CloudWatch stay. `0`: at once.
    #[serde(default = "default_ttl_after_finished")]
    pub ttl_seconds_after_finished: u64,
}

fn default_image_template() -> String {
    "public.ecr.aws/emr-on-eks/spark/{release}:{tag}".into()
}
fn default_spark_home() -> String {
    "/usr/lib/spark".into()
}
fn default_tool_image() -> String {
    "sparkyard/tools:latest".into()
}
fn default_true() -> bool {
    true
}
fn default_queue_timeout() -> u64 {
    30 * 60
}
fn default_resync() -> u64 {
    1
}
fn default_ttl_after_finished() -> u64 {
    10 * 60
}

impl Default for ControllerConfig {
    fn default() -> Self {
        ControllerConfig {
            kubeconfig: None,
            master: None,
            release_images: BTreeMap::new(),
            default_image: default_image_template(),
            spark_home: default_spark_home(),
            tool_image: default_tool_image(),
            native_submission: true,
            queue_timeout_seconds: default_queue_timeout(),
            resync_seconds: default_resync(),
            ttl_seconds_after_finished: default_ttl_after_finished(),
        }
    }
}

impl ControllerConfig {
    pub fn queue_timeout(&self) -> Duration {
        Duration::from_secs(self.queue_timeout_seconds)
    }

    pub fn resync(&self) -> Duration {
        Duration::from_secs(self.resync_seconds.max(1))
    }

    pub fn ttl_after_finished(&self) -> Duration {
        Duration::from_secs(self.ttl_seconds_after_finished)
    }

    /// The Spark image of a release label, `None` when nothing maps it.
    pub fn image_for(&self, release_label: &str) -> Option<String> {
        if let Some(image) = self.release_images.get(release_label) {
            return Some(image.clone());
        }
        if let Some((_, image)) = self
            .release_images
            .iter()
            .find(|(pattern, _)| glob_match(pattern, release_label))
        {
            return Some(image.clone());
        }
        if !release_label.starts_with("emr-") {
            return None;
        }
        let (release, tag) = split_tag(release_label);
        Some(
            self.default_image
                .replace("{release}", release)
                .replace("{tag}", tag),
        )
    }
}

/// `emr-6.3.0-latest` → (`emr-6.3.0`, `latest`); `emr-6.9.0-20221108` → (…, `20221108`);
/// `emr-7.0.0` → (…, `latest`). Variants such as `-java17` stay in the release part.
fn split_tag(label: &str) -> (&str, &str) {
    if let Some((release, tag)) = label.rsplit_once('-') {
        if tag == "latest" || (tag.len() == 8 && tag.bytes().all(|b| b.is_ascii_digit())) {
            return (release, tag);
        }
    }
    (label, "latest")
}

/// `*` matches any run of characters, everything else literally.
fn glob_match(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            let Some(remaining) = text.strip_prefix(head) else {
                return false;
            };
            (0..=remaining.len())
                .filter(|i| remaining.is_char_boundary(*i))
                .any(|i| glob_match(rest, &remaining[i..]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emr_labels_map_to_emr_image_names() {
        let config = ControllerConfig::default();
        assert_eq!(
            config.image_for("emr-6.3.0-latest").unwrap(),
            "public.ecr.aws/emr-on-eks/spark/emr-6.3.0:latest"
        );
        assert_eq!(
            config.image_for("emr-6.9.0-20221108").unwrap(),
            "public.ecr.aws/emr-on-eks/spark/emr-6.9.0:20221108"
        );
        assert_eq!(
            config.image_for("emr-7.1.0-java17-latest").unwrap(),
            "public.ecr.aws/emr-on-eks/spark/emr-7.1.0-java17:latest"
        );
        assert_eq!(config.image_for("notebook-6.2.0"), None);
    }

    #[test]
    fn configured_images_win() {
        let config: ControllerConfig = toml::from_str(
            "release-images = { \"emr-7.*\" = \"apache/spark:4.0.1\", \"emr-6.3.0-latest\" = \"my/spark:1\" }",
        )
        .unwrap();
        assert_eq!(config.image_for("emr-6.3.0-latest").unwrap(), "my/spark:1");
        assert_eq!(
            config.image_for("emr-7.2.0-latest").unwrap(),
            "apache/spark:4.0.1"
        );
        assert!(config
            .image_for("emr-6.4.0-latest")
            .unwrap()
            .ends_with("emr-6.4.0:latest"));
        assert_eq!(config.spark_home, "/usr/lib/spark");
        assert!(toml::from_str::<ControllerConfig>("nope = 1").is_err());
    }
}
