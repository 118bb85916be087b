//! Presigned STS `GetCallerIdentity` URLs, as EKS's authenticator has STS answer them: the
//! SigV4 query signature over `GET`, the URL's path and query, and the signed headers the
//! authenticator sends (`host`, `x-k8s-aws-id`).
//!
//! The time window is not STS's `X-Amz-Expires` (the CLI signs for 60 s but kubectl keeps a
//! token for 14 minutes): the authenticator's 15 minutes, checked by the API server.

use chrono::{DateTime, Utc};
use sparkyard_aws::keyring::{KeyOwner, Keyring};
use sparkyard_aws::sigv4::{self, Location, RequestParts, SignatureClaim};

/// What STS says about a verified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallerIdentity {
    pub arn: String,
    pub account: String,
    pub user_id: String,
}

/// Verifies the presigned `GET uri` (with `headers` as sent) against the keyring at `now`;
/// the key's owner on success, the reason otherwise.
pub fn verify(
    keyring: &Keyring,
    uri: &http::Uri,
    headers: &http::HeaderMap,
    now: DateTime<Utc>,
) -> Result<KeyOwner, String> {
    let claim = SignatureClaim::from_request(uri, headers).map_err(|f| format!("{f:?}"))?;
    if !matches!(claim.location, Location::Query { .. }) {
        return Err("not a presigned request".into());
    }
    if claim.scope.service != "sts" {
        return Err(format!("signed for {}, not sts", claim.scope.service));
    }
    let record = keyring
        .lookup(&claim.access_key_id)
        .ok_or("The security token included in the request is invalid.")?;
    match (&record.session, claim.session_token.as_deref()) {
        (None, None) => {}
        (Some(session), Some(token)) => {
            if !sigv4::constant_time_eq(session.token.as_bytes(), token.as_bytes()) {
                return Err("The security token included in the request is invalid.".into());
            }
            if session.expiration <= now {
                return Err("The security token included in the request is expired".into());
            }
        }
        _ => return Err("The security token included in the request is invalid.".into()),
    }
    let host = uri.authority().map(|a| a.as_str().to_string());
    let parts = RequestParts {
        method: "GET",
        raw_path: uri.path(),
        raw_query: uri.query().unwrap_or(""),
        headers,
        host_fallback: host.as_deref(),
    };
    let key = sigv4::signing_key(&record.secret_access_key, &claim.scope);
    // botocore and the Go SDKs hash the empty body; a signer may also declare it unsigned.
    let signed = [sigv4::sha256_hex(b""), sigv4::UNSIGNED_PAYLOAD.to_string()]
        .iter()
        .any(|payload| {
            let canonical =
                sigv4::canonical_request(&parts, "sts", &claim.signed_headers, true, payload);
            let to_sign = sigv4::string_to_sign(&claim.amz_date, &claim.scope, &canonical);
            sigv4::verify_signature(&key, &to_sign, &claim.signature)
        });
    if !signed {
        return Err(
            "The request signature we calculated does not match the signature you provided.".into(),
        );
    }
    Ok(record.owner)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Presigns `GetCallerIdentity` as botocore does (payload: the empty body's hash).
    fn presign(
        keyring: &Keyring,
        cluster: &str,
        now: DateTime<Utc>,
    ) -> (http::Uri, http::HeaderMap) {
        let key = keyring.bootstrap().clone();
        let amz_date = sigv4::format_amz_date(now);
        let scope = sigv4::CredentialScope::new(&amz_date[..8], "us-east-2", "sts");
        let query = format!(
            "Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={}%2F{}%2Fus-east-2%2Fsts%2Faws4_request&X-Amz-Date={amz_date}&X-Amz-Expires=60&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id",
            key.access_key_id, scope.date
        );
        let mut headers = http::HeaderMap::new();
        headers.insert(http::header::HOST, "127.0.0.1:4566".parse().unwrap());
        headers.insert("x-k8s-aws-id", cluster.parse().unwrap());
        let parts = RequestParts {
            method: "GET",
            raw_path: "/",
            raw_query: &query,
            headers: &headers,
            host_fallback: None,
        };
        let canonical = sigv4::canonical_request(
            &parts,
            "sts",
            "host;x-k8s-aws-id",
            true,
            &sigv4::sha256_hex(b""),
        );
        let to_sign = sigv4::string_to_sign(&amz_date, &scope, &canonical);
        let signature = sigv4::signature(
            &sigv4::signing_key(&key.secret_access_key, &scope),
            &to_sign,
        );
        let uri = format!("http://127.0.0.1:4566/?{query}&X-Amz-Signature={signature}")
            .parse()
            .unwrap();
        (uri, headers)
    }

    #[test]
    fn signatures_bind_the_cluster_name() {
        let dir = tempfile::tempdir().unwrap();
        let keyring = Keyring::load_or_bootstrap(dir.path(), "123456789012").unwrap();
        let now = Utc::now();
        let (uri, headers) = presign(&keyring, "eks-emr-cluster", now);
        let owner = verify(&keyring, &uri, &headers, now).unwrap();
        assert_eq!(owner.arn, "arn:aws:iam::123456789012:root");
        // The same URL presented for another cluster: the signed header differs.
        let mut other = headers.clone();
        other.insert("x-k8s-aws-id", "another-cluster".parse().unwrap());
        assert!(verify(&keyring, &uri, &other, now).is_err());
        // A key this keyring never issued.
        let stranger =
            Keyring::load_or_bootstrap(tempfile::tempdir().unwrap().path(), "123456789012")
                .unwrap();
        assert!(verify(&stranger, &uri, &headers, now).is_err());
    }
}
