//! Spark's generated names (`KubernetesUtils.uniqueID`, `KubernetesConf.getResourceNamePrefix`).

/// `uniqueID`: three random bytes in hex, then the low 40 bits of the epoch milliseconds in
/// hex without padding (`65b8a0` + `a209e3aa4a`).
pub fn unique_id(random: [u8; 3], epoch_millis: u64) -> String {
    format!(
        "{:02x}{:02x}{:02x}{:x}",
        random[0],
        random[1],
        random[2],
        epoch_millis & 0xFF_FFFF_FFFF
    )
}

/// The prefix of the driver's resources: `<app name>-<unique id>`, lower-cased, with every run
/// of characters outside `[a-z0-9-]` made one `-`, no leading `-`, and a leading digit made
/// `x` (a DNS label must start with a letter).
pub fn resource_name_prefix(app_name: &str, unique_id: &str) -> String {
    let raw = format!("{app_name}-{unique_id}").trim().to_lowercase();
    let mut out = String::with_capacity(raw.len());
    for ch in raw.chars() {
        let ch = if ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-' {
            ch
        } else {
            '-'
        };
        if !(ch == '-' && out.ends_with('-')) {
            out.push(ch);
        }
    }
    let out = out.trim_start_matches('-').to_string();
    match out.chars().next() {
        Some(c) if c.is_ascii_digit() => format!("x{}", &out[1..]),
        _ => out,
    }
}

/// The `spark-app-name` label: lower-cased, runs of characters outside `[a-z0-9-]` made one
/// `-`, cut to 63 characters, without a leading or trailing `-`.
pub fn app_name_label(app_name: &str) -> String {
    let lowered = app_name.trim().to_lowercase();
    let mut out = String::with_capacity(lowered.len());
    for ch in lowered.chars() {
        let ch = if ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-' {
            ch
        } else {
            '-'
        };
        if !(ch == '-' && out.ends_with('-')) {
            out.push(ch);
        }
    }
    let cut: String = out.chars().take(MAX_SERVICE_NAME_LENGTH).collect();
    let cut = cut.strip_prefix('-').unwrap_or(&cut);
    cut.strip_suffix('-').unwrap_or(cut).to_string()
}

/// The longest Service name (a DNS label).
pub const MAX_SERVICE_NAME_LENGTH: usize = 63;

/// `<prefix>-driver-svc`, or `spark-<unique id>-driver-svc` when that would be too long.
pub fn driver_service_name(prefix: &str, fallback_id: &str) -> String {
    let preferred = format!("{prefix}-driver-svc");
    if preferred.len() <= MAX_SERVICE_NAME_LENGTH {
        preferred
    } else {
        format!("spark-{fallback_id}-driver-svc")
    }
}

/// The driver's `spark.properties` ConfigMap.
pub fn driver_config_map_name(unique_id: &str) -> String {
    format!("spark-drv-{unique_id}-conf-map")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_spark_makes_them() {
        // From the traces: `spark-pi-65b8a0a209e3aa4a-driver`, `spark-drv-ede6bfa209ea6de9-…`.
        assert_eq!(
            unique_id([0x65, 0xb8, 0xa0], 0x1a2_09e3_aa4a),
            "65b8a0a209e3aa4a"
        );
        assert_eq!(unique_id([0, 1, 2], 5), "0001025");
        assert_eq!(
            resource_name_prefix("spark-pi", "65b8a0a209e3aa4a"),
            "spark-pi-65b8a0a209e3aa4a"
        );
        assert_eq!(
            resource_name_prefix("etl.py", "bef703a241ce7c9e"),
            "etl-py-bef703a241ce7c9e"
        );
        assert_eq!(resource_name_prefix(" My  App__x ", "1"), "my-app-x-1");
        assert_eq!(resource_name_prefix("_9lives", "1"), "xlives-1");
        assert_eq!(
            driver_config_map_name("ede6bfa209ea6de9"),
            "spark-drv-ede6bfa209ea6de9-conf-map"
        );
        let long = "a".repeat(60);
        assert_eq!(
            driver_service_name(&long, "0a0b0c1"),
            "spark-0a0b0c1-driver-svc"
        );
        assert_eq!(driver_service_name("pi-1", "x"), "pi-1-driver-svc");
        assert_eq!(app_name_label("PythonPi"), "pythonpi");
        assert_eq!(app_name_label("-my app-"), "my-app");
    }
}
