//! Service-account tokens: ES256 JWTs in the shape Kubernetes issues (bound, projected
//! tokens), signed with `<data_dir>/pki/sa.key`.
//!
//! The kubelet issues one per pod for the projected `kube-api-access-*` volume; the API
//! server verifies them on every request; the TokenRequest subresource and (later) the STS
//! `AssumeRoleWithWebIdentity` (audience `sts.amazonaws.com`) use the same issuer.

use base64::Engine;
use ring::signature::{
    EcdsaKeyPair, KeyPair as _, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED,
    ECDSA_P256_SHA256_FIXED_SIGNING,
};
use serde_json::{json, Value};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// The default issuer and API audience, as a kubeadm cluster has them.
pub const DEFAULT_ISSUER: &str = "https://kubernetes.default.svc";

pub struct TokenIssuer {
    issuer: String,
    key: EcdsaKeyPair,
    key_id: String,
    rng: ring::rand::SystemRandom,
}

/// What a verified token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccountClaims {
    pub namespace: String,
    pub service_account: String,
    pub service_account_uid: Option<String>,
    /// `(name, uid)` of the pod the token is bound to, for projected tokens.
    pub pod: Option<(String, String)>,
    pub audiences: Vec<String>,
    pub expires_at: i64,
}

impl ServiceAccountClaims {
    pub fn subject(&self) -> String {
        format!(
            "system:serviceaccount:{}:{}",
            self.namespace, self.service_account
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token is malformed")]
    Malformed,
    #[error("token signature is invalid")]
    BadSignature,
    #[error("token has expired")]
    Expired,
    #[error("token issuer is not {0}")]
    WrongIssuer(String),
    #[error("token audience does not include {0}")]
    WrongAudience(String),
}

impl TokenIssuer {
    /// `key_pem`: a PKCS#8 P-256 private key (as `pki` writes `sa.key`).
    pub fn new(issuer: &str, key_pem: &str) -> anyhow::Result<Self> {
        let der = rcgen::KeyPair::from_pem(key_pem)?.serialize_der();
        let rng = ring::rand::SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &rng)
            .map_err(|e| anyhow::anyhow!("service-account key is not a P-256 PKCS#8 key: {e}"))?;
        // Like the apiserver: the key id is a hash of the public key.
        let digest = ring::digest::digest(&ring::digest::SHA256, key.public_key().as_ref());
        let key_id = B64.encode(digest.as_ref());
        Ok(Self {
            issuer: issuer.to_string(),
            key,
            key_id,
            rng,
        })
    }

    /// The `iss` claim, also the default audience the API server accepts.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Issues a token for `system:serviceaccount:<namespace>:<service_account>`, valid for
    /// `expiration_seconds` (at least 1) and for `audiences` (empty: the API server's own).
    pub fn issue(
        &self,
        namespace: &str,
        service_account: &str,
        audiences: &[String],
        bound_pod: Option<(&str, &str)>,
        expiration_seconds: i64,
    ) -> String {
        self.issue_with_uid(
            namespace,
            service_account,
            None,
            audiences,
            bound_pod,
            expiration_seconds,
        )
    }

    /// [`issue`](Self::issue), also recording the service account's uid.
    pub fn issue_with_uid(
        &self,
        namespace: &str,
        service_account: &str,
        service_account_uid: Option<&str>,
        audiences: &[String],
        bound_pod: Option<(&str, &str)>,
        expiration_seconds: i64,
    ) -> String {
        let now = chrono::Utc::now().timestamp();
        let audiences: Vec<String> = if audiences.is_empty() {
            vec![self.issuer.clone()]
        } else {
            audiences.to_vec()
        };
        let mut k8s = json!({
            "namespace": namespace,
            "serviceaccount": { "name": service_account },
        });
        if let Some(uid) = service_account_uid {
            k8s["serviceaccount"]["uid"] = json!(uid);
        }
        if let Some((name, uid)) = bound_pod {
            k8s["pod"] = json!({ "name": name, "uid": uid });
        }
        let claims = json!({
            "aud": audiences,
            "exp": now + expiration_seconds.max(1),
            "iat": now,
            "nbf": now,
            "iss": self.issuer,
            "jti": uuid::Uuid::new_v4().to_string(),
            "sub": format!("system:serviceaccount:{namespace}:{service_account}"),
            "kubernetes.io": k8s,
        });
        let header = json!({ "alg": "ES256", "kid": self.key_id });
        let signing_input = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let signature = self
            .key
            .sign(&self.rng, signing_input.as_bytes())
            .expect("ECDSA signing does not fail with a valid key");
        format!("{signing_input}.{}", B64.encode(signature.as_ref()))
    }

    /// Verifies signature, issuer, expiry and (when given) that `audience` is among the
    /// token's audiences.
    pub fn verify(
        &self,
        token: &str,
        audience: Option<&str>,
    ) -> Result<ServiceAccountClaims, TokenError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let header: Value = decode_json(header)?;
        if header.get("alg").and_then(Value::as_str) != Some("ES256") {
            return Err(TokenError::Malformed);
        }
        let signature = B64.decode(signature).map_err(|_| TokenError::Malformed)?;
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, self.key.public_key().as_ref())
            .verify(token_prefix(token, 2).as_bytes(), &signature)
            .map_err(|_| TokenError::BadSignature)?;
        let claims: Value = decode_json(payload)?;
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(TokenError::WrongIssuer(self.issuer.clone()));
        }
        let expires_at = claims
            .get("exp")
            .and_then(Value::as_i64)
            .ok_or(TokenError::Malformed)?;
        if expires_at <= chrono::Utc::now().timestamp() {
            return Err(TokenError::Expired);
        }
        let audiences: Vec<String> = match claims.get("aud") {
            Some(Value::String(a)) => vec![a.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
            _ => vec![],
        };
        if let Some(wanted) = audience {
            if !audiences.iter().any(|a| a == wanted) {
                return Err(TokenError::WrongAudience(wanted.to_string()));
            }
        }
        let k8s = claims.get("kubernetes.io").ok_or(TokenError::Malformed)?;
        let text = |p: &str| k8s.pointer(p).and_then(Value::as_str).map(String::from);
        Ok(ServiceAccountClaims {
            namespace: text("/namespace").ok_or(TokenError::Malformed)?,
            service_account: text("/serviceaccount/name").ok_or(TokenError::Malformed)?,
            service_account_uid: text("/serviceaccount/uid"),
            pod: text("/pod/name").zip(text("/pod/uid")),
            audiences,
            expires_at,
        })
    }

    /// The JSON Web Key Set with the public key (served at `/openid/v1/jwks`), for OIDC
    /// consumers such as STS `AssumeRoleWithWebIdentity`.
    pub fn jwks(&self) -> Value {
        // Uncompressed SEC1 point: 0x04 || x || y.
        let point = self.key.public_key().as_ref();
        json!({"keys": [{
            "use": "sig", "kty": "EC", "crv": "P-256", "alg": "ES256", "kid": self.key_id,
            "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65]),
        }]})
    }

    /// The OIDC discovery document (served at `/.well-known/openid-configuration`).
    pub fn openid_configuration(&self) -> Value {
        json!({
            "issuer": self.issuer,
            "jwks_uri": format!("{}/openid/v1/jwks", self.issuer),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256"],
        })
    }
}

/// The first `n` dot-separated parts of a token, joined again.
fn token_prefix(token: &str, n: usize) -> String {
    token.split('.').take(n).collect::<Vec<_>>().join(".")
}

fn decode_json(part: &str) -> Result<Value, TokenError> {
    let bytes = B64.decode(part).map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer() -> TokenIssuer {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        TokenIssuer::new(DEFAULT_ISSUER, &key.serialize_pem()).unwrap()
    }

    #[test]
    fn issued_tokens_verify_with_their_claims() {
        let issuer = issuer();
        let token = issuer.issue("team-a", "spark", &[], Some(("driver", "uid-1")), 3600);
        let claims = issuer.verify(&token, Some(DEFAULT_ISSUER)).unwrap();
        assert_eq!(claims.subject(), "system:serviceaccount:team-a:spark");
        assert_eq!(claims.pod, Some(("driver".into(), "uid-1".into())));
        assert_eq!(claims.audiences, vec![DEFAULT_ISSUER.to_string()]);
    }

    #[test]
    fn audience_tampering_and_foreign_keys_are_refused() {
        let issuer = issuer();
        let token = issuer.issue("a", "default", &["sts.amazonaws.com".into()], None, 3600);
        assert!(issuer.verify(&token, Some("sts.amazonaws.com")).is_ok());
        assert_eq!(
            issuer.verify(&token, Some(DEFAULT_ISSUER)),
            Err(TokenError::WrongAudience(DEFAULT_ISSUER.into()))
        );
        let other = self::issuer().issue("a", "default", &[], None, 3600);
        assert_eq!(issuer.verify(&other, None), Err(TokenError::BadSignature));
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = B64.encode(r#"{"iss":"https://kubernetes.default.svc","sub":"x"}"#);
        parts[1] = &forged;
        assert_eq!(
            issuer.verify(&parts.join("."), None),
            Err(TokenError::BadSignature)
        );
        assert_eq!(issuer.verify("not-a-jwt", None), Err(TokenError::Malformed));
    }

    #[test]
    fn expired_tokens_are_refused() {
        let issuer = issuer();
        let token = issuer.issue("a", "default", &[], None, -100);
        // expiration is clamped to 1 s; wait it out.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(issuer.verify(&token, None), Err(TokenError::Expired));
    }

    #[test]
    fn jwks_publishes_the_public_point() {
        let jwks = issuer().jwks();
        assert_eq!(jwks["keys"][0]["crv"], "P-256");
        assert_eq!(
            B64.decode(jwks["keys"][0]["x"].as_str().unwrap())
                .unwrap()
                .len(),
            32
        );
    }
}
