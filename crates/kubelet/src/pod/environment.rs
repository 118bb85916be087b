//! A container's environment: what the image sets, what a kubelet adds (`HOSTNAME`,
//! `HOME`, the `KUBERNETES_*` service variables…) and the container's own `env` and
//! `envFrom`, resolved against the pod, its node and the namespace's ConfigMaps and
//! Secrets (read through the API server's client; the pod's volumes use the same sources).

use std::collections::BTreeMap;

use serde_json::Value;

use super::start::StartError;
use super::Worker;
use crate::config::EntrypointKind;
use crate::env::{self, ConfigError, EnvSources};
use crate::{Image, CONFIGMAPS, SECRETS};

impl Worker {
    /// Runs `f` with what the downward API, `env`/`envFrom` and the pod's ConfigMap and
    /// Secret volumes are resolved from.
    pub(super) fn with_env_sources<R>(&self, f: impl FnOnce(EnvSources<'_>) -> R) -> R {
        let client = self.k.client.clone();
        let ns = self.namespace.clone();
        let cm = |name: &str| client.get(CONFIGMAPS, &ns, name).map(|o| (*o).clone());
        let secret = |name: &str| client.get(SECRETS, &ns, name).map(|o| (*o).clone());
        f(EnvSources {
            pod: &self.pod,
            pod_ip: &self.ip,
            host_ip: &self.k.host_ip,
            node_cpu_millis: self.k.shape(self.node()).cpu_millis,
            node_memory: self.k.shape(self.node()).memory,
            config_map: &cm,
            secret: &secret,
        })
    }

    /// The environment container `spec` runs with: image ENV, then what kubelet adds, then
    /// the container's own.
    pub(super) fn environment(
        &self,
        spec: &Value,
        image: &Image,
    ) -> Result<BTreeMap<String, String>, StartError> {
        let container_env = self
            .with_env_sources(|sources| env::resolve(spec, &sources))
            .map_err(|ConfigError(m)| ("CreateContainerConfigError", m))?;
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        env.insert(
            "PATH".into(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
        if let Some(java) = &self.k.host.java_home {
            env.insert("JAVA_HOME".into(), java.display().to_string());
        }
        for (key, value) in &image.env {
            env.insert(key.clone(), value.clone());
        }
        if image.entrypoint == EntrypointKind::Spark {
            env.insert(
                "PYSPARK_PYTHON".into(),
                self.k.host.python.display().to_string(),
            );
        }
        env.insert("HOSTNAME".into(), self.hostname.clone());
        // HOME is writable and private to the pod either way.
        env.insert(
            "HOME".into(),
            if self.k.private_root_home {
                "/root"
            } else {
                "/tmp"
            }
            .into(),
        );
        let (api_ip, api_port) = (
            self.k.config.service_ip.to_string(),
            self.k.config.service_port.to_string(),
        );
        env.insert("KUBERNETES_SERVICE_HOST".into(), api_ip.clone());
        env.insert("KUBERNETES_SERVICE_PORT".into(), api_port.clone());
        env.insert("KUBERNETES_SERVICE_PORT_HTTPS".into(), api_port.clone());
        env.insert(
            "KUBERNETES_PORT".into(),
            format!("tcp://{api_ip}:{api_port}"),
        );
        env.insert(
            format!("KUBERNETES_PORT_{api_port}_TCP"),
            format!("tcp://{api_ip}:{api_port}"),
        );
        env.insert(
            format!("KUBERNETES_PORT_{api_port}_TCP_PROTO"),
            "tcp".into(),
        );
        env.insert(
            format!("KUBERNETES_PORT_{api_port}_TCP_PORT"),
            api_port.clone(),
        );
        env.insert(
            format!("KUBERNETES_PORT_{api_port}_TCP_ADDR"),
            api_ip.clone(),
        );
        for (key, value) in container_env {
            env.insert(key, value);
        }
        Ok(env)
    }
}
