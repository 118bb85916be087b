//! PATCH bodies: JSON patch (RFC 6902), JSON merge patch (RFC 7386), strategic merge patch
//! and server-side apply, as `PATCH /api/v1/...` applies them to the stored object.
//!
//! Input (bytes):
//! ```text
//! <selector byte> <object JSON> 0x00 <patch body>
//! ```
//! The selector's low 2 bits pick the patch type (Json, Merge, Strategic, Apply) and the
//! next bits the resource (pods, configmaps, nodes, services, jobs, namespaces), which only
//! changes how errors are worded. The object must be JSON (it is what the registry stores);
//! the patch body is passed as raw bytes, exactly as it arrives (YAML is accepted for
//! apply). Feeds `patch::apply`, then `patch::strategic_merge` directly with the object and
//! the patch body as JSON, and `PatchType::from_content_type` with the patch body's first
//! line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sparkyard_kube_apiserver::patch::{self, PatchType};
use sparkyard_kube_apiserver::resources::{
    ResourceInfo, CONFIGMAPS, JOBS, NAMESPACES, NODES, PODS, SERVICES,
};

const KINDS: [PatchType; 4] = [
    PatchType::Json,
    PatchType::Merge,
    PatchType::Strategic,
    PatchType::Apply,
];
const INFOS: [ResourceInfo; 6] = [PODS, CONFIGMAPS, NODES, SERVICES, JOBS, NAMESPACES];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let Some(split) = rest.iter().position(|b| *b == 0) else {
        return;
    };
    let (object, body) = (&rest[..split], &rest[split + 1..]);
    let Ok(current) = serde_json::from_slice::<Value>(object) else {
        return;
    };
    let kind = KINDS[usize::from(selector & 3)];
    let info = &INFOS[usize::from(selector >> 2) % INFOS.len()];

    if let Ok(patched) = patch::apply(kind, &current, body, info) {
        // A patched object is stored and served as JSON: it must serialise.
        serde_json::to_vec(&patched).expect("patched object serialises");
    }
    if let Ok(p) = serde_json::from_slice::<Value>(body) {
        let field = ["", "spec", "containers", "metadata", "ports"][usize::from(selector) % 5];
        let _ = patch::strategic_merge(&current, &p, field);
    }
    if let Ok(text) = std::str::from_utf8(body) {
        let _ = PatchType::from_content_type(text.lines().next().unwrap_or_default());
    }
});
