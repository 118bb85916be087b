//! Resource lists as Karpenter prints them in messages and NodeClaim specs
//! (`{"cpu":"4","memory":"16Gi","pods":"3"}`: JSON, keys sorted, canonical quantities).

use serde_json::{Map, Value};
use sparkyard_instance_types::NodeResources;

/// `4000` → `4`, `250` → `250m`.
pub fn cpu(millis: i64) -> String {
    if millis % 1000 == 0 {
        (millis / 1000).to_string()
    } else {
        format!("{millis}m")
    }
}

/// Bytes in the largest binary unit that divides them (`16Gi`, `512Mi`, `1000`).
pub fn bytes(n: i64) -> String {
    for (suffix, shift) in [("Ti", 40), ("Gi", 30), ("Mi", 20), ("Ki", 10)] {
        if n != 0 && n % (1i64 << shift) == 0 {
            return format!("{}{suffix}", n >> shift);
        }
    }
    n.to_string()
}

/// A ResourceList object; zero entries are left out, as Karpenter's merged lists omit them.
pub fn resource_list(r: &NodeResources) -> Value {
    let mut m = Map::new();
    if r.cpu_millis != 0 {
        m.insert("cpu".into(), Value::from(cpu(r.cpu_millis)));
    }
    if r.ephemeral_bytes != 0 {
        m.insert(
            "ephemeral-storage".into(),
            Value::from(bytes(r.ephemeral_bytes)),
        );
    }
    if r.memory_bytes != 0 {
        m.insert("memory".into(), Value::from(bytes(r.memory_bytes)));
    }
    if r.pods != 0 {
        m.insert("pods".into(), Value::from(r.pods.to_string()));
    }
    Value::Object(m)
}

/// `resources.String`: the list as compact JSON (`{}` when empty).
pub fn resources_string(r: &NodeResources) -> String {
    resource_list(r).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_print_canonically() {
        assert_eq!(cpu(4000), "4");
        assert_eq!(cpu(1930), "1930m");
        assert_eq!(bytes(16 << 30), "16Gi");
        assert_eq!(bytes(1536 << 20), "1536Mi");
        assert_eq!(bytes(1000), "1000");
        let r = NodeResources {
            cpu_millis: 250,
            memory_bytes: 512 << 20,
            pods: 1,
            ephemeral_bytes: 0,
        };
        assert_eq!(
            resources_string(&r),
            r#"{"cpu":"250m","memory":"512Mi","pods":"1"}"#
        );
        assert_eq!(resources_string(&NodeResources::default()), "{}");
    }
}
