//! The pod's directory on the host (`volumes/`, `tmp/`, `etc/hosts`, `etc/hostname`,
//! `home/`, `containers/`) and its volumes: plain directories (`emptyDir`, `hostPath`…),
//! claims (the directory of the PersistentVolume bound to the claim)
//! and image volumes (the image's local directory), and files written from ConfigMaps,
//! Secrets, the downward API and projected
//! service-account tokens (TokenRequest through the API server's client). Setup is retried
//! until every source exists; the scratch directories go in the worker's teardown.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;
use sparkyard_kube_apiserver::registry::Resource;

use super::Worker;
use crate::volumes::{self, VolumeSources};
use crate::SERVICE_ACCOUNTS;

const PVCS: Resource = Resource::new("", "persistentvolumeclaims");
const PVS: Resource = Resource::new("", "persistentvolumes");

impl Worker {
    /// The pod's volumes, with the service-account token volume a kubelet adds when the
    /// pod automounts one.
    pub(super) fn volume_specs(&self) -> Vec<Value> {
        let mut specs: Vec<Value> = self.pod["spec"]["volumes"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let account = self.pod["spec"]["serviceAccountName"]
            .as_str()
            .unwrap_or("default");
        let account = self
            .k
            .client
            .get(SERVICE_ACCOUNTS, &self.namespace, account);
        if volumes::wants_auto_service_account(&self.pod, account.as_deref()) {
            specs.push(volumes::auto_service_account_volume());
        }
        specs
    }

    pub(super) fn prepare_volumes(&mut self) -> Result<(), String> {
        let service_account = self.pod["spec"]["serviceAccountName"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        let (pod_name, pod_uid) = (self.name.clone(), self.uid.clone());
        let (client, ns) = (self.k.client.clone(), self.namespace.clone());
        let token = |audience: Option<&str>, expiration: i64| {
            let audiences: Vec<String> = audience.map(|a| vec![a.to_string()]).unwrap_or_default();
            client.service_account_token(
                &ns,
                &service_account,
                &audiences,
                Some((&pod_name, &pod_uid)),
                expiration,
            )
        };
        let dirs = self.with_env_sources(|env| {
            let src = VolumeSources {
                env,
                token: &token,
                ca_pem: &self.k.config.ca_pem,
            };
            let mut dirs = BTreeMap::new();
            for volume in &self.volume_specs() {
                let name = volume["name"].as_str().unwrap_or("").to_string();
                if let Some(why) = volumes::unsafe_name(volume) {
                    return Err(format!("MountVolume.SetUp failed for volume \"{name}\" : {why}"));
                }
                // An image volume (`volumes[].image`) is the image's directory, as a
                // container of that image would see it; mounted read-only.
                if let Some(reference) = volume["image"]["reference"].as_str() {
                    let dir = self
                        .k
                        .resolve_image(reference)
                        .ok()
                        .and_then(|image| image.mounts.first().map(|(dir, _)| dir.clone()))
                        .ok_or_else(|| {
                            format!("MountVolume.SetUp failed for volume \"{name}\" : image {reference:?} maps to no local directory ([cluster.images] rules)")
                        })?;
                    dirs.insert(name, dir);
                    continue;
                }
                if let Some(claim) = volume.get("persistentVolumeClaim") {
                    let claim = claim["claimName"].as_str().unwrap_or(&name);
                    dirs.insert(name.clone(), self.claim_dir(&name, claim)?);
                    continue;
                }
                if let Some(dir) = volumes::plain_dir(volume, &self.dir) {
                    std::fs::create_dir_all(&dir).map_err(|e| {
                        format!("MountVolume.SetUp failed for volume \"{name}\" : {e}")
                    })?;
                    dirs.insert(name, dir);
                    continue;
                }
                match volumes::volume_files(volume, &src).map_err(|volumes::NotReady(m)| m)? {
                    Some(files) => {
                        let dir = self.dir.join("volumes").join(&name);
                        volumes::write_files(&dir, &files).map_err(|e| {
                            format!("MountVolume.SetUp failed for volume \"{name}\" : {e}")
                        })?;
                        dirs.insert(name, dir);
                    }
                    None => {
                        // Unsupported volume type: an empty directory keeps the pod runnable.
                        let dir = self.dir.join("volumes").join(&name);
                        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
                        dirs.insert(name, dir);
                    }
                }
            }
            Ok::<_, String>(dirs)
        })?;
        self.volume_dirs = dirs;
        Ok(())
    }

    /// The host directory of the volume bound to claim `claim` (the pod's volume `volume`):
    /// kube's volume manager waits until the claim is bound, then mounts its
    /// PersistentVolume — a `hostPath` one (created first when its type is
    /// `DirectoryOrCreate`, as the local-path provisioner's are) or a `local` one, which
    /// must exist.
    pub(super) fn claim_dir(&self, volume: &str, claim: &str) -> Result<PathBuf, String> {
        let ns = &self.namespace;
        let Some(pvc) = self.k.client.get(PVCS, ns, claim) else {
            return Err(format!(
                "MountVolume.SetUp failed for volume \"{volume}\" : persistentvolumeclaim \"{claim}\" not found"
            ));
        };
        let bound_to = pvc
            .pointer("/spec/volumeName")
            .and_then(Value::as_str)
            .unwrap_or("");
        if bound_to.is_empty()
            || pvc.pointer("/status/phase").and_then(Value::as_str) != Some("Bound")
        {
            return Err(format!(
                "error processing PVC {ns}/{claim}: PVC is not bound"
            ));
        }
        let Some(pv) = self.k.client.get(PVS, "", bound_to) else {
            return Err(format!(
                "error processing PVC {ns}/{claim}: failed to fetch PV {bound_to} from API server: persistentvolumes \"{bound_to}\" not found"
            ));
        };
        let host_path = pv.pointer("/spec/hostPath/path").and_then(Value::as_str);
        let local_path = pv.pointer("/spec/local/path").and_then(Value::as_str);
        match (host_path, local_path) {
            (Some(path), _) => {
                let dir = PathBuf::from(path);
                let kind = pv.pointer("/spec/hostPath/type").and_then(Value::as_str).unwrap_or("");
                if kind == "DirectoryOrCreate" {
                    std::fs::create_dir_all(&dir).map_err(|e| {
                        format!("MountVolume.SetUp failed for volume \"{bound_to}\" : {e}")
                    })?;
                } else if !dir.exists() {
                    return Err(format!(
                        "MountVolume.SetUp failed for volume \"{bound_to}\" : hostPath type check failed: {path} is not a directory"
                    ));
                }
                Ok(dir)
            }
            (None, Some(path)) => {
                let dir = PathBuf::from(path);
                if !dir.is_dir() {
                    return Err(format!(
                        "MountVolume.NewMounter initialization failed for volume \"{bound_to}\" : path \"{path}\" does not exist"
                    ));
                }
                Ok(dir)
            }
            (None, None) => Err(format!(
                "MountVolume.SetUp failed for volume \"{bound_to}\" : this cluster mounts hostPath and local PersistentVolumes only"
            )),
        }
    }

    pub(super) fn create_dirs(&self) -> std::io::Result<()> {
        for sub in ["volumes", "tmp", "etc", "home", "containers"] {
            std::fs::create_dir_all(self.dir.join(sub))?;
        }
        std::fs::set_permissions(
            self.dir.join("tmp"),
            std::os::unix::fs::PermissionsExt::from_mode(0o1777),
        )?;
        std::fs::write(
            self.dir.join("etc/hostname"),
            format!("{}\n", self.hostname),
        )?;
        if !self.dir.join("etc/hosts").exists() {
            std::fs::write(self.dir.join("etc/hosts"), "127.0.0.1\tlocalhost\n")?;
        }
        Ok(())
    }
}
