//! Object names: the DNS-1123 / DNS-1035 rules each resource's registry applies to
//! `metadata.name` (apimachinery's `validation` package), and `generateName`'s suffix.

use crate::resources::ResourceInfo;

pub const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
pub(super) const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
pub const DNS1035_MSG: &str = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

pub fn is_dns1123_label(s: &str) -> bool {
    s.len() <= 63 && matches_label_pattern(s)
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?` without a length limit.
fn matches_label_pattern(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Kubernetes' `IsDNS1123Subdomain`: at most 253 characters matching the subdomain
/// pattern. Unlike DNS, its parts have no 63-character limit — EMR's service-account names
/// (`emr-containers-sa-spark-client-<account>-<base36 role>`) are often longer than 63.
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(matches_label_pattern)
}

/// Kubernetes' `IsDNS1035Label`: a DNS-1123 label starting with a letter.
pub fn is_dns1035_label(s: &str) -> bool {
    is_dns1123_label(s) && s.as_bytes()[0].is_ascii_lowercase()
}

/// The object-name rule of each resource, as its registry validates it.
pub fn validate_name(info: &ResourceInfo, name: &str) -> Option<String> {
    let (ok, msg) = match (info.group, info.plural) {
        ("", "namespaces") => (is_dns1123_label(name), LABEL_MSG),
        ("", "services") => (is_dns1035_label(name), DNS1035_MSG),
        ("rbac.authorization.k8s.io", _) | ("coordination.k8s.io", _) => {
            let ok = !name.is_empty()
                && name != "."
                && name != ".."
                && !name.contains('/')
                && !name.contains('%');
            (ok, "may not contain '/' or '%'")
        }
        _ => (is_dns1123_subdomain(name), SUBDOMAIN_MSG),
    };
    if ok {
        None
    } else {
        Some(format!("Invalid value: \"{name}\": {msg}"))
    }
}

/// Five random characters from the apiserver's `generateName` alphabet: no vowels, no
/// confusable characters (also the `kube-api-access-<suffix>` volume's).
pub(crate) fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut bytes = [0u8; 5];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .expect("randomness");
    bytes
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources;

    #[test]
    fn subdomain_parts_may_exceed_63_characters() {
        let long = format!(
            "emr-containers-sa-spark-client-123456789012-{}",
            "a".repeat(47)
        );
        assert!(long.len() > 63);
        assert!(is_dns1123_subdomain(&long));
        assert!(!is_dns1123_label(&long));
        assert!(!is_dns1123_subdomain(&"a".repeat(254)));
        assert!(!is_dns1123_subdomain("a..b"));
        assert!(!is_dns1123_subdomain("-a"));
    }

    #[test]
    fn names() {
        assert!(validate_name(&resources::PODS, "spark-pi-1.driver").is_none());
        assert!(validate_name(&resources::PODS, "Bad_Name")
            .unwrap()
            .contains("RFC 1123 subdomain"));
        assert!(validate_name(&resources::NAMESPACES, "a.b").is_some());
        assert!(validate_name(&resources::SERVICES, "1abc").is_some());
        assert!(validate_name(&resources::CLUSTER_ROLES, "system:controller:x").is_none());
    }
}
