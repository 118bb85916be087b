//! The cluster's certificates and keys, generated on first start and kept in `<data_dir>/pki`.
//!
//! - `ca.crt`/`ca.key`: the cluster CA; clients trust it (kubeconfig, each pod's `ca.crt`).
//! - `apiserver.crt`/`apiserver.key`: the serving certificate, signed by the CA. It is
//!   re-issued only when the wanted SANs change (say, a new in-cluster service IP), so a
//!   restart keeps what clients already pinned.
//! - `sa.key`: the P-256 key that signs service-account tokens.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

pub struct Pki {
    pub ca_pem: String,
    pub serving_cert_pem: String,
    pub serving_key_pem: String,
    pub sa_key_pem: String,
}

const CA_NAME: &str = "sparkyard-ca";

/// The CA's parameters. They are rebuilt identically on every start so that the CA can sign
/// again from its stored key without parsing its certificate: the issuer name and the
/// authority key identifier (derived from the key) come out the same.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, CA_NAME);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2124, 1, 1);
    params
}

/// The SANs the serving certificate carries: every name a client may use for the API.
pub fn serving_sans(extra_ips: &[std::net::IpAddr]) -> Vec<String> {
    let mut sans: Vec<String> = [
        "localhost",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "127.0.0.1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for ip in extra_ips {
        let ip = ip.to_string();
        if !sans.contains(&ip) {
            sans.push(ip);
        }
    }
    sans
}

/// Writes a file only its owner can read (keys, tokens, kubeconfigs), through a rename.
pub fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn read_or_create_key(path: &Path) -> anyhow::Result<(KeyPair, String)> {
    if let Ok(pem) = std::fs::read_to_string(path) {
        let key =
            KeyPair::from_pem(&pem).with_context(|| format!("bad key in {}", path.display()))?;
        return Ok((key, pem));
    }
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let pem = key.serialize_pem();
    write_private(path, &pem)?;
    Ok((key, pem))
}

/// Loads the PKI from `dir`, creating whatever is missing.
pub fn load_or_create(dir: &Path, sans: &[String]) -> anyhow::Result<Pki> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = |name: &str| -> PathBuf { dir.join(name) };

    let (ca_key, _) = read_or_create_key(&path("ca.key"))?;
    let ca_pem = match std::fs::read_to_string(path("ca.crt")) {
        Ok(pem) => pem,
        Err(_) => {
            let pem = ca_params().self_signed(&ca_key)?.pem();
            std::fs::write(path("ca.crt"), &pem)?;
            pem
        }
    };

    let (serving_key, serving_key_pem) = read_or_create_key(&path("apiserver.key"))?;
    let wanted_sans = sans.join("\n");
    let current_sans = std::fs::read_to_string(path("apiserver.sans")).unwrap_or_default();
    let serving_cert_pem = match std::fs::read_to_string(path("apiserver.crt")) {
        Ok(pem) if current_sans == wanted_sans => pem,
        _ => {
            let issuer = Issuer::new(ca_params(), &ca_key);
            let mut params = CertificateParams::new(sans.to_vec())?;
            let mut dn = DistinguishedName::new();
            dn.push(DnType::CommonName, "kube-apiserver");
            params.distinguished_name = dn;
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            params.not_before = rcgen::date_time_ymd(2024, 1, 1);
            params.not_after = rcgen::date_time_ymd(2124, 1, 1);
            let pem = params.signed_by(&serving_key, &issuer)?.pem();
            std::fs::write(path("apiserver.crt"), &pem)?;
            std::fs::write(path("apiserver.sans"), &wanted_sans)?;
            pem
        }
    };

    let (_, sa_key_pem) = read_or_create_key(&path("sa.key"))?;
    Ok(Pki {
        ca_pem,
        serving_cert_pem,
        serving_key_pem,
        sa_key_pem,
    })
}

/// Reads a secret string from `path`, or creates it with 32 random bytes (hex).
pub fn read_or_create_secret(path: &Path) -> anyhow::Result<String> {
    if let Ok(text) = std::fs::read_to_string(path) {
        let text = text.trim().to_string();
        if !text.is_empty() {
            return Ok(text);
        }
    }
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| anyhow::anyhow!("no randomness"))?;
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_private(path, &secret)?;
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pki_is_created_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let sans = serving_sans(&["127.10.96.1".parse().unwrap()]);
        let first = load_or_create(dir.path(), &sans).unwrap();
        let second = load_or_create(dir.path(), &sans).unwrap();
        assert_eq!(first.ca_pem, second.ca_pem);
        assert_eq!(first.serving_cert_pem, second.serving_cert_pem);
        assert_eq!(first.sa_key_pem, second.sa_key_pem);
        // A new SAN re-issues the serving certificate under the same CA.
        let third =
            load_or_create(dir.path(), &serving_sans(&["127.10.96.2".parse().unwrap()])).unwrap();
        assert_eq!(first.ca_pem, third.ca_pem);
        assert_ne!(first.serving_cert_pem, third.serving_cert_pem);
    }
}
