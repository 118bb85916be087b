//! Pure helpers of the EKS pages: Kubernetes quantities, ages, path-segment checks and
//! the kind → resource guess, each the way Kubernetes itself does it, so the console's
//! numbers read like `kubectl describe node` and `kubectl get`.

use chrono::{DateTime, Utc};

/// A CPU quantity (`250m`, `2`, `0.5`, `1500000n`) in cores.
pub(crate) fn parse_cpu(text: &str) -> Option<f64> {
    let text = text.trim();
    let (number, scale) = match text.char_indices().last()? {
        (i, 'm') => (&text[..i], 1e-3),
        (i, 'u') => (&text[..i], 1e-6),
        (i, 'n') => (&text[..i], 1e-9),
        (i, 'k') => (&text[..i], 1e3),
        _ => (text, 1.0),
    };
    number.parse::<f64>().ok().map(|n| n * scale)
}

/// A memory quantity (`512Mi`, `1Gi`, `1G`, `128974848`, `1e3`) in bytes.
pub(crate) fn parse_memory(text: &str) -> Option<f64> {
    const SUFFIXES: [(&str, f64); 12] = [
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("Pi", 1125899906842624.0),
        ("Ei", 1152921504606846976.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    let text = text.trim();
    for (suffix, scale) in SUFFIXES {
        if let Some(number) = text.strip_suffix(suffix) {
            return number.parse::<f64>().ok().map(|n| n * scale);
        }
    }
    if let Some(number) = text.strip_suffix('m') {
        return number.parse::<f64>().ok().map(|n| n / 1e3);
    }
    text.parse::<f64>().ok()
}

/// Cores as `kubectl describe node` shows them: whole cores as `4`, the rest in
/// millicores (`1250m`).
pub(crate) fn show_cpu(cores: f64) -> String {
    let milli = (cores * 1000.0).round() as i64;
    if milli % 1000 == 0 {
        format!("{}", milli / 1000)
    } else {
        format!("{milli}m")
    }
}

/// Bytes in the largest binary unit that keeps one digit before the point: `512Mi`,
/// `3.2Gi`, `0`.
pub(crate) fn show_memory(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["Ki", "Mi", "Gi", "Ti", "Pi"];
    if bytes < 1024.0 {
        return format!("{}", bytes.round() as i64);
    }
    let mut value = bytes;
    let mut unit = "";
    for u in UNITS {
        if value < 1024.0 {
            break;
        }
        value /= 1024.0;
        unit = u;
    }
    if value >= 100.0 || (value - value.round()).abs() < 0.05 {
        format!("{}{unit}", value.round() as i64)
    } else {
        format!("{value:.1}{unit}")
    }
}

/// `part` of `whole` in percent, rounded to the nearest 5 % step (0…100) for the bars'
/// `pct-N` classes (the CSP allows no inline widths).
pub(crate) fn percent_step(part: f64, whole: f64) -> u32 {
    if whole <= 0.0 || !part.is_finite() {
        return 0;
    }
    let pct = (part / whole * 100.0).clamp(0.0, 100.0);
    ((pct / 5.0).round() as u32) * 5
}

/// `part` of `whole` in whole percent, as `kubectl describe node` prints it.
pub(crate) fn percent(part: f64, whole: f64) -> u32 {
    if whole <= 0.0 {
        return 0;
    }
    (part / whole * 100.0).round().max(0.0) as u32
}

/// Kubernetes' human duration (`kubectl get`'s AGE): `45s`, `3m12s`, `25m`, `2h5m`,
/// `30h`, `3d4h`, `12d`.
pub(crate) fn age(since: Option<DateTime<Utc>>, now: DateTime<Utc>) -> String {
    let Some(since) = since else {
        return "—".into();
    };
    let seconds = (now - since).num_seconds().max(0);
    let minutes = seconds / 60;
    let hours = minutes / 60;
    let days = hours / 24;
    let pair = |a: i64, ua: &str, b: i64, ub: &str| {
        if b == 0 {
            format!("{a}{ua}")
        } else {
            format!("{a}{ua}{b}{ub}")
        }
    };
    if seconds < 120 {
        format!("{seconds}s")
    } else if minutes < 10 {
        pair(minutes, "m", seconds % 60, "s")
    } else if minutes < 180 {
        format!("{minutes}m")
    } else if hours < 8 {
        pair(hours, "h", minutes % 60, "m")
    } else if hours < 48 {
        format!("{hours}h")
    } else if days < 8 {
        pair(days, "d", hours % 24, "h")
    } else {
        format!("{days}d")
    }
}

/// A DNS subdomain (RFC 1123): object names, nodes, API groups.
pub(crate) fn valid_dns_subdomain(name: &str) -> bool {
    (1..=253).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// A DNS label (RFC 1123): namespaces.
pub(crate) fn valid_dns_label(name: &str) -> bool {
    name.len() <= 63 && !name.contains('.') && valid_dns_subdomain(name)
}

/// A resource's plural name (`pods`, `nodeclaims`) or an API version (`v1`, `v1beta1`).
pub(crate) fn valid_token(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// The resource a kind is served as, by the rule client-go's `UnsafeGuessKindToResource`
/// uses (`Pod` → `pods`, `Policy` → `policies`, `Ingress` → `ingresses`), for links
/// from events and owner references without a discovery round trip.
pub(crate) fn guess_plural(kind: &str) -> String {
    let lower = kind.to_ascii_lowercase();
    if lower == "endpoints" {
        return lower;
    }
    if lower.ends_with('s') {
        format!("{lower}es")
    } else if let Some(stem) = lower.strip_suffix('y') {
        format!("{stem}ies")
    } else {
        format!("{lower}s")
    }
}

/// `group/version` or `version` (an `apiVersion`) → the console's path segments
/// `(group-or-core, version)`.
pub(crate) fn split_api_version(api_version: &str) -> (String, String) {
    match api_version.split_once('/') {
        Some((group, version)) => (group.to_string(), version.to_string()),
        None => ("core".to_string(), api_version.to_string()),
    }
}

/// The console's page of one object.
pub(crate) fn object_href(api_version: &str, kind: &str, namespace: &str, name: &str) -> String {
    let (group, version) = split_api_version(api_version);
    let namespace = if namespace.is_empty() { "_" } else { namespace };
    format!(
        "/eks/resources/{group}/{version}/{}/{namespace}/{name}",
        guess_plural(kind)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_like_kubernetes() {
        assert_eq!(parse_cpu("250m"), Some(0.25));
        assert_eq!(parse_cpu("2"), Some(2.0));
        assert_eq!(parse_cpu("0.5"), Some(0.5));
        assert!((parse_cpu("1500000n").unwrap() - 0.0015).abs() < 1e-12);
        assert_eq!(parse_cpu(""), None);
        assert_eq!(parse_memory("512Mi"), Some(536870912.0));
        assert_eq!(parse_memory("1G"), Some(1e9));
        assert_eq!(parse_memory("128974848"), Some(128974848.0));
        assert_eq!(parse_memory("1e3"), Some(1000.0));
        assert_eq!(parse_memory("32Gi"), Some(34359738368.0));
        assert_eq!(parse_memory("lots"), None);
    }

    #[test]
    fn quantities_show_like_kubectl() {
        assert_eq!(show_cpu(4.0), "4");
        assert_eq!(show_cpu(1.25), "1250m");
        assert_eq!(show_cpu(0.0), "0");
        assert_eq!(show_memory(536870912.0), "512Mi");
        assert_eq!(show_memory(3.2 * 1073741824.0), "3.2Gi");
        assert_eq!(show_memory(0.0), "0");
        assert_eq!(show_memory(32.0 * 1073741824.0), "32Gi");
    }

    #[test]
    fn percentages_step_by_five() {
        assert_eq!(percent_step(0.0, 8.0), 0);
        assert_eq!(percent_step(1.0, 8.0), 15); // 12.5 % rounds up
        assert_eq!(percent_step(9.0, 8.0), 100);
        assert_eq!(percent_step(1.0, 0.0), 0);
        assert_eq!(percent(1.0, 8.0), 13);
    }

    #[test]
    fn ages_read_like_kubectl_get() {
        let now = Utc::now();
        let ago = |s: i64| age(Some(now - chrono::Duration::seconds(s)), now);
        assert_eq!(ago(45), "45s");
        assert_eq!(ago(192), "3m12s");
        assert_eq!(ago(25 * 60), "25m");
        assert_eq!(ago(2 * 3600 + 300), "125m");
        assert_eq!(ago(4 * 3600 + 300), "4h5m");
        assert_eq!(ago(30 * 3600), "30h");
        assert_eq!(ago(3 * 86400 + 4 * 3600), "3d4h");
        assert_eq!(ago(12 * 86400), "12d");
        assert_eq!(age(None, now), "—");
    }

    #[test]
    fn path_segments_are_checked() {
        assert!(valid_dns_subdomain(
            "ip-192-168-1-2.us-east-2.compute.internal"
        ));
        assert!(valid_dns_subdomain("karpenter.sh"));
        assert!(!valid_dns_subdomain("../etc"));
        assert!(!valid_dns_subdomain("a/b"));
        assert!(!valid_dns_subdomain("-a"));
        assert!(!valid_dns_subdomain("A"));
        assert!(valid_dns_label("emr-jobs"));
        assert!(!valid_dns_label("a.b"));
        assert!(valid_token("nodeclaims"));
        assert!(valid_token("v1beta1"));
        assert!(!valid_token("pods/log"));
        assert!(!valid_token("Pods"));
    }

    #[test]
    fn kinds_map_to_resources_like_client_go() {
        assert_eq!(guess_plural("Pod"), "pods");
        assert_eq!(guess_plural("NodeClaim"), "nodeclaims");
        assert_eq!(guess_plural("NetworkPolicy"), "networkpolicies");
        assert_eq!(guess_plural("Ingress"), "ingresses");
        assert_eq!(guess_plural("Endpoints"), "endpoints");
        assert_eq!(
            object_href("v1", "Pod", "default", "p"),
            "/eks/resources/core/v1/pods/default/p"
        );
        assert_eq!(
            object_href("karpenter.sh/v1", "NodePool", "", "emr"),
            "/eks/resources/karpenter.sh/v1/nodepools/_/emr"
        );
    }
}
