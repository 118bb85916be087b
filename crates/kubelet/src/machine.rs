//! A configured node's machine: the shape fields a `[[cluster.nodes]]` entry leaves out
//! come from its instance type, as a real kubelet reads capacity from the machine it runs
//! on (and EKS's bootstrap computes max-pods and reservations for its type).

use sparkyard_scheduling::node::UnsetShape;
use sparkyard_scheduling::NodeConfig;

/// Fills each entry's unset shape fields from the catalog's instance type. An unknown
/// type is an error unless the entry sets both `cpu` and `memory` itself.
pub fn resolve_nodes(nodes: &[NodeConfig]) -> Result<Vec<NodeConfig>, String> {
    nodes.iter().map(resolve_node).collect()
}

pub fn resolve_node(node: &NodeConfig) -> Result<NodeConfig, String> {
    let unset = node.from_instance_type;
    let mut out = node.clone();
    out.from_instance_type = UnsetShape::default();
    if !unset.any() {
        return Ok(out);
    }
    let Some(instance_type) = sparkyard_instance_types::get(&node.instance_type) else {
        if unset.cpu || unset.memory {
            return Err(format!(
                "node {:?}: instance type {:?} is not in the catalog, so its cpu and memory are unknown; \
                 set cpu and memory in the entry, or use a known instance type",
                node.name, node.instance_type
            ));
        }
        return Ok(out);
    };
    let mut machine = node.clone();
    instance_type.apply_to(&mut machine);
    if unset.cpu {
        out.cpu = machine.cpu;
    }
    if unset.memory {
        out.memory = machine.memory;
    }
    if unset.pods {
        out.pods = machine.pods;
    }
    if unset.ephemeral_storage {
        out.ephemeral_storage = machine.ephemeral_storage;
    }
    if unset.capacity {
        out.capacity = machine.capacity;
    }
    // The type's own labels (family, generation…) unless the entry sets them.
    for (key, value) in machine.labels {
        out.labels.entry(key).or_insert(value);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(text: &str) -> NodeConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn an_instance_type_gives_the_shape_the_entry_leaves_out() {
        let c5 = resolve_node(&entry("name = \"a\"\ninstance-type = \"c5.xlarge\"")).unwrap();
        let mut expected = NodeConfig::default();
        sparkyard_instance_types::get("c5.xlarge")
            .unwrap()
            .apply_to(&mut expected);
        assert_eq!(c5.cpu, expected.cpu);
        assert_eq!(c5.memory, expected.memory);
        assert_eq!(c5.pods, expected.pods);
        assert_eq!(c5.capacity, expected.capacity);
        assert!(!c5.from_instance_type.any());

        let sized = resolve_node(&entry(
            "name = \"b\"\ninstance-type = \"c5.xlarge\"\ncpu = \"2\"\npods = 7",
        ))
        .unwrap();
        assert_eq!(sized.cpu, "2", "explicit values win");
        assert_eq!(sized.pods, 7);
        assert_eq!(sized.memory, expected.memory);
    }

    #[test]
    fn an_unknown_type_needs_an_explicit_shape() {
        let err = resolve_node(&entry("name = \"odd\"\ninstance-type = \"q9.huge\"")).unwrap_err();
        assert!(err.contains("\"odd\"") && err.contains("q9.huge"), "{err}");
        let sized = resolve_node(&entry(
            "name = \"odd\"\ninstance-type = \"q9.huge\"\ncpu = \"4\"\nmemory = \"8Gi\"",
        ))
        .unwrap();
        assert_eq!(sized.cpu, "4");
        assert_eq!(sized.instance_type, "q9.huge");
    }

    #[test]
    fn nodes_built_in_code_are_taken_as_given() {
        let node = NodeConfig {
            cpu: "3".into(),
            ..NodeConfig::default()
        };
        assert_eq!(resolve_node(&node).unwrap(), node);
    }
}
