//! Resource vectors as the scheduler counts them: CPU in millicores, memory and
//! ephemeral storage in bytes, plus scalar resources (extended resources such as
//! `nvidia.com/gpu`, and `hugepages-*`) as whole units.
//!
//! The three core resources are plain fields so the per-node fit check, which runs
//! millions of times in a busy scheduling loop, is three integer comparisons; scalar
//! resources live in a (usually empty) sorted vector.

use serde_json::Value;

use super::quantity::{self, QuantityError};

pub const CPU: &str = "cpu";
pub const MEMORY: &str = "memory";
pub const EPHEMERAL_STORAGE: &str = "ephemeral-storage";
pub const PODS: &str = "pods";

/// Requests the scheduler assumes, for *scoring only*, for a container that states none
/// (kube-scheduler's `DefaultMilliCPURequest` / `DefaultMemoryRequest`), so that many
/// request-less pods do not all pile onto one node.
pub const DEFAULT_MILLI_CPU_REQUEST: i64 = 100;
pub const DEFAULT_MEMORY_REQUEST: i64 = 200 * 1024 * 1024;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub milli_cpu: i64,
    pub memory: i64,
    pub ephemeral_storage: i64,
    /// Sorted by name, no duplicates, no zero entries.
    pub scalars: Vec<(String, i64)>,
}

/// Whether a resource name is one the scheduler counts beyond cpu/memory/storage:
/// extended resources (a domain outside `kubernetes.io`) and huge pages, as
/// `schedutil.IsScalarResourceName` decides.
pub fn is_scalar_resource(name: &str) -> bool {
    if name.starts_with("hugepages-") || name.starts_with("attachable-volumes-") {
        return true;
    }
    match name.split_once('/') {
        Some((domain, _)) => {
            !(domain == "kubernetes.io"
                || domain.ends_with(".kubernetes.io")
                || domain == "requests")
        }
        None => false,
    }
}

impl Resources {
    pub fn is_zero(&self) -> bool {
        self.milli_cpu == 0
            && self.memory == 0
            && self.ephemeral_storage == 0
            && self.scalars.is_empty()
    }

    pub fn scalar(&self, name: &str) -> i64 {
        self.scalars
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .map(|i| self.scalars[i].1)
            .unwrap_or(0)
    }

    fn scalar_entry(&mut self, name: &str) -> &mut i64 {
        let i = match self.scalars.binary_search_by(|(n, _)| n.as_str().cmp(name)) {
            Ok(i) => i,
            Err(i) => {
                self.scalars.insert(i, (name.to_string(), 0));
                i
            }
        };
        &mut self.scalars[i].1
    }

    fn tidy(&mut self) {
        self.scalars.retain(|(_, v)| *v != 0);
    }

    pub fn add(&mut self, other: &Resources) {
        self.milli_cpu += other.milli_cpu;
        self.memory += other.memory;
        self.ephemeral_storage += other.ephemeral_storage;
        // Most pods request no scalar resource: skip the bookkeeping (hot in preemption).
        if !other.scalars.is_empty() {
            for (name, v) in &other.scalars {
                *self.scalar_entry(name) += v;
            }
            self.tidy();
        }
    }

    pub fn sub(&mut self, other: &Resources) {
        self.milli_cpu -= other.milli_cpu;
        self.memory -= other.memory;
        self.ephemeral_storage -= other.ephemeral_storage;
        // Most pods request no scalar resource: skip the bookkeeping (hot in preemption).
        if !other.scalars.is_empty() {
            for (name, v) in &other.scalars {
                *self.scalar_entry(name) -= v;
            }
            self.tidy();
        }
    }

    /// Per-resource maximum (init containers run one at a time, so the pod needs the
    /// largest of them, not their sum).
    pub fn max_with(&mut self, other: &Resources) {
        self.milli_cpu = self.milli_cpu.max(other.milli_cpu);
        self.memory = self.memory.max(other.memory);
        self.ephemeral_storage = self.ephemeral_storage.max(other.ephemeral_storage);
        for (name, v) in &other.scalars {
            let e = self.scalar_entry(name);
            *e = (*e).max(*v);
        }
        self.tidy();
    }

    /// A `ResourceList` object (`{"cpu": "500m", "memory": "1Gi", …}`). Names the scheduler
    /// does not count are skipped; a malformed quantity is an error.
    pub fn from_resource_list(list: &Value) -> Result<Resources, QuantityError> {
        let mut r = Resources::default();
        let Some(map) = list.as_object() else {
            return Ok(r);
        };
        for (name, value) in map {
            let text = quantity::json_text(value).ok_or_else(|| QuantityError {
                text: value.to_string(),
                why: "is not a string",
            })?;
            match name.as_str() {
                CPU => r.milli_cpu = quantity::millis(&text)?,
                MEMORY => r.memory = quantity::units(&text)?,
                EPHEMERAL_STORAGE => r.ephemeral_storage = quantity::units(&text)?,
                n if is_scalar_resource(n) => *r.scalar_entry(n) = quantity::units(&text)?,
                _ => {}
            }
        }
        r.tidy();
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resource_lists_parse_and_combine() {
        let a = Resources::from_resource_list(
            &json!({"cpu": "1", "memory": "2432Mi", "nvidia.com/gpu": "1", "pods": "3"}),
        )
        .unwrap();
        assert_eq!(
            (a.milli_cpu, a.memory, a.scalar("nvidia.com/gpu")),
            (1000, 2432 << 20, 1)
        );
        let mut b =
            Resources::from_resource_list(&json!({"cpu": "250m", "hugepages-2Mi": "4Mi"})).unwrap();
        b.add(&a);
        assert_eq!(b.milli_cpu, 1250);
        assert_eq!(b.scalar("hugepages-2Mi"), 4 << 20);
        b.sub(&a);
        assert_eq!(b.scalar("nvidia.com/gpu"), 0);
        assert_eq!(b.scalars.len(), 1, "zero entries are dropped");
        b.max_with(&a);
        assert_eq!((b.milli_cpu, b.memory), (1000, 2432 << 20));
        assert!(Resources::from_resource_list(&json!({"cpu": "lots"})).is_err());
    }

    #[test]
    fn scalar_names() {
        assert!(is_scalar_resource("nvidia.com/gpu"));
        assert!(is_scalar_resource("hugepages-1Gi"));
        assert!(!is_scalar_resource("cpu"));
        assert!(!is_scalar_resource("kubernetes.io/something"));
        assert!(!is_scalar_resource("foo"));
    }
}
