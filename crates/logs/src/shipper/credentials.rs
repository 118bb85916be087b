//! The run's role for the shipper's writes: a service-account token from the Kubernetes
//! TokenRequest API (audience `sts.amazonaws.com`), exchanged with STS
//! `AssumeRoleWithWebIdentity` — what IRSA does inside the pod, done on its behalf. One cache
//! per (namespace, service account, role).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use async_trait::async_trait;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::api::PostParams;
use kube::Api;

use crate::aws::credentials::{CachedCredentials, TokenSource, WebIdentity};
use crate::aws::env::AwsEnv;

pub const STS_AUDIENCE: &str = "sts.amazonaws.com";

pub struct RunCredentials {
    kube: kube::Client,
    aws: AwsEnv,
    http: reqwest::Client,
    cache: Mutex<HashMap<(String, String, String), Arc<CachedCredentials>>>,
}

impl RunCredentials {
    pub fn new(kube: kube::Client, aws: AwsEnv, http: reqwest::Client) -> Self {
        Self {
            kube,
            aws,
            http,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn for_service_account(
        &self,
        namespace: &str,
        service_account: &str,
        role_arn: &str,
    ) -> Arc<CachedCredentials> {
        let key = (
            namespace.to_string(),
            service_account.to_string(),
            role_arn.to_string(),
        );
        let mut cache = self.cache.lock().expect("not poisoned");
        cache
            .entry(key)
            .or_insert_with(|| {
                CachedCredentials::new(Box::new(WebIdentity {
                    http: self.http.clone(),
                    sts_url: self.aws.sts_url(),
                    role_arn: role_arn.to_string(),
                    session_name: "sparkyard-log-shipper".into(),
                    token: Box::new(ServiceAccountToken {
                        api: Api::namespaced(self.kube.clone(), namespace),
                        name: service_account.to_string(),
                    }),
                }))
            })
            .clone()
    }
}

struct ServiceAccountToken {
    api: Api<ServiceAccount>,
    name: String,
}

#[async_trait]
impl TokenSource for ServiceAccountToken {
    async fn token(&self) -> anyhow::Result<String> {
        let request = TokenRequest {
            spec: Some(TokenRequestSpec {
                audiences: Some(vec![STS_AUDIENCE.to_string()]),
                expiration_seconds: Some(3600),
                ..Default::default()
            }),
            ..Default::default()
        };
        let response = self
            .api
            .create_token_request(&self.name, &PostParams::default(), &request)
            .await
            .with_context(|| format!("cannot mint a token for service account {}", self.name))?;
        response
            .status
            .and_then(|s| s.token)
            .context("TokenRequest answered without a token")
    }
}
