//! What a container's sandbox mounts: the image's directories read-only (and the host
//! runtime's directories under `/tmp`, which the pod's own `/tmp` would hide), the pod's
//! `/etc/hosts` and `/etc/hostname`, a private `/root`, the termination-message file, the
//! container's `volumeMounts` (with `subPath`) over the prepared volume directories, and
//! the automounted service-account token.

use serde_json::Value;

use super::start::StartError;
use super::Worker;
use crate::sandbox::Mount;
use crate::volumes;
use crate::Image;

impl Worker {
    /// The mounts of container `spec` (named `container_name`), in order: the image, the
    /// pod's files, then the container's volume mounts on top. Creates the container's own
    /// directory (its `work-dir` and an empty `termination-log`) on the way.
    pub(super) fn mounts(
        &self,
        spec: &Value,
        image: &Image,
        container_name: &str,
    ) -> Result<Vec<Mount>, StartError> {
        let cdir = self.dir.join("containers").join(container_name);
        let _ = std::fs::create_dir_all(cdir.join("work-dir"));
        let termination_log = cdir.join("termination-log");
        let _ = std::fs::write(&termination_log, b"");
        let mut mounts: Vec<Mount> = Vec::new();
        for (source, target) in &image.mounts {
            mounts.push(Mount {
                source: source.clone(),
                target: target.clone(),
                read_only: true,
            });
        }
        for dir in self.k.host.dirs_under_tmp() {
            mounts.push(Mount {
                source: dir.clone(),
                target: dir.to_string_lossy().into_owned(),
                read_only: true,
            });
        }
        if let Some(workdir) = &image.working_dir {
            mounts.push(Mount {
                source: cdir.join("work-dir"),
                target: workdir.clone(),
                read_only: false,
            });
        }
        mounts.push(Mount {
            source: self.dir.join("etc/hosts"),
            target: "/etc/hosts".into(),
            read_only: true,
        });
        mounts.push(Mount {
            source: self.dir.join("etc/hostname"),
            target: "/etc/hostname".into(),
            read_only: true,
        });
        // A private, writable home that also hides the host's /root.
        if self.k.private_root_home {
            mounts.push(Mount {
                source: self.dir.join("home"),
                target: "/root".into(),
                read_only: false,
            });
        }
        let termination_path = spec["terminationMessagePath"]
            .as_str()
            .unwrap_or("/dev/termination-log")
            .to_string();
        mounts.push(Mount {
            source: termination_log.clone(),
            target: termination_path,
            read_only: false,
        });
        for vm in spec["volumeMounts"].as_array().into_iter().flatten() {
            let volume = vm["name"].as_str().unwrap_or("");
            let Some(source) = self.volume_dirs.get(volume) else {
                return Err(("CreateContainerConfigError", format!("cannot find volume \"{volume}\" to mount into container \"{container_name}\"")));
            };
            let mut source = source.clone();
            if let Some(sub) = vm["subPath"]
                .as_str()
                .filter(|s| !s.is_empty() && !s.split('/').any(|c| c == ".."))
            {
                source = source.join(sub);
                if !source.exists() {
                    let _ = std::fs::create_dir_all(&source);
                }
            }
            mounts.push(Mount {
                source,
                target: vm["mountPath"].as_str().unwrap_or("/").to_string(),
                // Image volumes are read-only whatever the mount says, as in Kubernetes.
                read_only: vm["readOnly"] == true || self.is_image_volume(volume),
            });
        }
        if let Some(sa) = self.volume_dirs.get(volumes::AUTO_SA_VOLUME) {
            mounts.push(Mount {
                source: sa.clone(),
                target: volumes::SERVICE_ACCOUNT_PATH.into(),
                read_only: true,
            });
        }
        Ok(mounts)
    }

    fn is_image_volume(&self, name: &str) -> bool {
        self.pod["spec"]["volumes"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|v| v["name"] == name && v.get("image").is_some())
    }
}
