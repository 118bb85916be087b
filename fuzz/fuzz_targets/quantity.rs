//! Kubernetes resource quantities (`500m`, `1.5Gi`, `2e3`) as the scheduler reads them.
//!
//! Input: UTF-8 text. The first byte picks the mode:
//! - `{` — the input is a JSON object: a pod (`PodRequirements::from_pod`, which sums the
//!   containers' requests and limits, init containers and overhead) and, taken as a
//!   `ResourceList`, `Resources::from_resource_list`;
//! - anything else — the whole text is one quantity for `quantity::millis` (CPU) and
//!   `quantity::units` (memory, storage, counts).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sparkyard_scheduling::quantity;
use sparkyard_scheduling::{PodRequirements, Resources};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if text.starts_with('{') {
        let Ok(value) = serde_json::from_str::<Value>(text) else {
            return;
        };
        if let Ok(pod) = PodRequirements::from_pod(&value) {
            let _ = pod.wants_scheduling();
        }
        let _ = Resources::from_resource_list(&value);
        return;
    }
    let millis = quantity::millis(text);
    let units = quantity::units(text);
    // Both round the same magnitude up at different scales: one whole unit is 1000 milli.
    if let (Ok(m), Ok(u)) = (millis, units) {
        if u >= 0 {
            assert!(
                m <= u.saturating_mul(1000),
                "{text:?}: millis {m} > 1000 × units {u}"
            );
        }
    }
});
