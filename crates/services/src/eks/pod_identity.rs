//! EKS's pod-identity webhook as a pure function: a pod whose service account is annotated
//! `eks.amazonaws.com/role-arn` gets `AWS_ROLE_ARN`, `AWS_WEB_IDENTITY_TOKEN_FILE` and a
//! projected service-account token (audience `sts.amazonaws.com`) mounted at
//! `/var/run/secrets/eks.amazonaws.com/serviceaccount/token` in every container — what the
//! AWS SDKs' web-identity credential provider exchanges with STS `AssumeRoleWithWebIdentity`.
//!
//! The embedded cluster's admission calls [`mutate`] on pod creation (the cluster owns
//! admission); this module only decides what the pod becomes.

use k8s_openapi::api::core::v1::{
    Container, EnvVar, Pod, ProjectedVolumeSource, ServiceAccount, ServiceAccountTokenProjection,
    Volume, VolumeMount, VolumeProjection,
};

pub const ROLE_ARN_ANNOTATION: &str = "eks.amazonaws.com/role-arn";
pub const AUDIENCE_ANNOTATION: &str = "eks.amazonaws.com/audience";
pub const TOKEN_EXPIRATION_ANNOTATION: &str = "eks.amazonaws.com/token-expiration";
pub const REGIONAL_STS_ANNOTATION: &str = "eks.amazonaws.com/sts-regional-endpoints";

pub const VOLUME_NAME: &str = "aws-iam-token";
pub const MOUNT_PATH: &str = "/var/run/secrets/eks.amazonaws.com/serviceaccount";
pub const TOKEN_PATH: &str = "token";
pub const DEFAULT_AUDIENCE: &str = "sts.amazonaws.com";
/// The webhook's default token lifetime (24 h); the kubelet refreshes it at 80 %.
pub const DEFAULT_EXPIRATION_SECONDS: i64 = 86_400;
/// The webhook refuses shorter lifetimes (the kubelet's minimum is 10 minutes).
pub const MIN_EXPIRATION_SECONDS: i64 = 600;

/// Cluster-wide settings of the webhook.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebhookConfig {
    /// `AWS_REGION` / `AWS_DEFAULT_REGION` for the pod's SDKs.
    pub region: Option<String>,
    /// sparkyard addition: `AWS_ENDPOINT_URL`, so the SDKs in the pod reach sparkyard's
    /// endpoint instead of AWS.
    pub endpoint_url: Option<String>,
}

/// The pod as the webhook would admit it, or `None` when the service account is not
/// annotated with a role (the pod is admitted unchanged). Idempotent: variables, mounts and
/// the volume already present are left as they are.
pub fn mutate(pod: &Pod, service_account: &ServiceAccount, config: &WebhookConfig) -> Option<Pod> {
    let annotations = service_account.metadata.annotations.as_ref()?;
    let role_arn = annotations
        .get(ROLE_ARN_ANNOTATION)
        .filter(|a| !a.is_empty())?;
    let audience = annotations
        .get(AUDIENCE_ANNOTATION)
        .cloned()
        .unwrap_or_else(|| DEFAULT_AUDIENCE.to_string());
    let expiration = annotations
        .get(TOKEN_EXPIRATION_ANNOTATION)
        .and_then(|v| v.parse::<i64>().ok())
        .map(|v| v.max(MIN_EXPIRATION_SECONDS))
        .unwrap_or(DEFAULT_EXPIRATION_SECONDS);
    let regional_sts = annotations
        .get(REGIONAL_STS_ANNOTATION)
        .is_some_and(|v| v == "true");

    let mut env = vec![
        ("AWS_ROLE_ARN".to_string(), role_arn.clone()),
        (
            "AWS_WEB_IDENTITY_TOKEN_FILE".to_string(),
            format!("{MOUNT_PATH}/{TOKEN_PATH}"),
        ),
    ];
    if let Some(region) = &config.region {
        env.push(("AWS_REGION".into(), region.clone()));
        env.push(("AWS_DEFAULT_REGION".into(), region.clone()));
    }
    if regional_sts {
        env.push(("AWS_STS_REGIONAL_ENDPOINTS".into(), "regional".into()));
    }
    if let Some(url) = &config.endpoint_url {
        env.push(("AWS_ENDPOINT_URL".into(), url.clone()));
    }

    let mut pod = pod.clone();
    let spec = pod.spec.get_or_insert_with(Default::default);
    for container in spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
    {
        inject(container, &env);
    }
    let volumes = spec.volumes.get_or_insert_with(Vec::new);
    if !volumes.iter().any(|v| v.name == VOLUME_NAME) {
        volumes.push(Volume {
            name: VOLUME_NAME.to_string(),
            projected: Some(ProjectedVolumeSource {
                sources: Some(vec![VolumeProjection {
                    service_account_token: Some(ServiceAccountTokenProjection {
                        audience: Some(audience),
                        expiration_seconds: Some(expiration),
                        path: TOKEN_PATH.to_string(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    Some(pod)
}

fn inject(container: &mut Container, env: &[(String, String)]) {
    let vars = container.env.get_or_insert_with(Vec::new);
    for (name, value) in env {
        // A value the pod sets itself wins, as with the real webhook.
        if !vars.iter().any(|v| &v.name == name) {
            vars.push(EnvVar {
                name: name.clone(),
                value: Some(value.clone()),
                value_from: None,
            });
        }
    }
    let mounts = container.volume_mounts.get_or_insert_with(Vec::new);
    if !mounts
        .iter()
        .any(|m| m.name == VOLUME_NAME || m.mount_path == MOUNT_PATH)
    {
        mounts.push(VolumeMount {
            name: VOLUME_NAME.to_string(),
            mount_path: MOUNT_PATH.to_string(),
            read_only: Some(true),
            ..Default::default()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn pod() -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "spark-driver", "namespace": "nightly-batch"},
            "spec": {
                "serviceAccountName": "emr-containers-sa-spark-driver-1-123456789012-abc",
                "containers": [{"name": "spark-kubernetes-driver", "env": [{"name": "AWS_REGION", "value": "eu-west-1"}]}],
                "initContainers": [{"name": "init"}]
            }
        }))
        .unwrap()
    }

    fn sa(annotations: &[(&str, &str)]) -> ServiceAccount {
        let mut sa = ServiceAccount::default();
        sa.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        );
        sa
    }

    fn env(c: &Container, name: &str) -> Option<String> {
        c.env
            .as_ref()?
            .iter()
            .find(|e| e.name == name)?
            .value
            .clone()
    }

    #[test]
    fn unannotated_service_accounts_leave_the_pod_alone() {
        assert!(mutate(
            &pod(),
            &ServiceAccount::default(),
            &WebhookConfig::default()
        )
        .is_none());
        assert!(mutate(&pod(), &sa(&[("other", "x")]), &WebhookConfig::default()).is_none());
    }

    #[test]
    fn injects_env_volume_and_mounts() {
        let config = WebhookConfig {
            region: Some("us-east-2".into()),
            endpoint_url: Some("http://127.0.0.1:4750".into()),
        };
        let role = "arn:aws:iam::123456789012:role/nightly-batch-JobExecutionRole";
        let out = mutate(&pod(), &sa(&[(ROLE_ARN_ANNOTATION, role)]), &config).unwrap();
        let spec = out.spec.as_ref().unwrap();
        for c in spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
        {
            assert_eq!(env(c, "AWS_ROLE_ARN").as_deref(), Some(role));
            assert_eq!(
                env(c, "AWS_WEB_IDENTITY_TOKEN_FILE").as_deref(),
                Some("/var/run/secrets/eks.amazonaws.com/serviceaccount/token")
            );
            assert_eq!(
                env(c, "AWS_ENDPOINT_URL").as_deref(),
                Some("http://127.0.0.1:4750")
            );
            let mount = c
                .volume_mounts
                .as_ref()
                .unwrap()
                .iter()
                .find(|m| m.name == VOLUME_NAME)
                .unwrap();
            assert_eq!(mount.mount_path, MOUNT_PATH);
            assert_eq!(mount.read_only, Some(true));
        }
        // The pod's own setting wins.
        assert_eq!(
            env(&spec.containers[0], "AWS_REGION").as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            env(&spec.init_containers.as_ref().unwrap()[0], "AWS_REGION").as_deref(),
            Some("us-east-2")
        );
        let volume = spec
            .volumes
            .as_ref()
            .unwrap()
            .iter()
            .find(|v| v.name == VOLUME_NAME)
            .unwrap();
        let token = volume.projected.as_ref().unwrap().sources.as_ref().unwrap()[0]
            .service_account_token
            .as_ref()
            .unwrap();
        assert_eq!(token.audience.as_deref(), Some("sts.amazonaws.com"));
        assert_eq!(token.expiration_seconds, Some(86_400));
        assert_eq!(token.path, "token");
        // Idempotent.
        let again = mutate(&out, &sa(&[(ROLE_ARN_ANNOTATION, role)]), &config).unwrap();
        assert_eq!(again, out);
    }

    #[test]
    fn honours_audience_and_expiration_annotations() {
        let out = mutate(
            &pod(),
            &sa(&[
                (ROLE_ARN_ANNOTATION, "arn:aws:iam::1:role/r"),
                (AUDIENCE_ANNOTATION, "custom"),
                (TOKEN_EXPIRATION_ANNOTATION, "60"),
            ]),
            &WebhookConfig::default(),
        )
        .unwrap();
        let volume = &out.spec.unwrap().volumes.unwrap()[0];
        let token = volume.projected.as_ref().unwrap().sources.as_ref().unwrap()[0]
            .service_account_token
            .clone()
            .unwrap();
        assert_eq!(token.audience.as_deref(), Some("custom"));
        assert_eq!(token.expiration_seconds, Some(MIN_EXPIRATION_SECONDS));
    }
}
