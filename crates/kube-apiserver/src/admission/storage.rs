//! Storage admission: the `DefaultStorageClass` plugin (a claim without
//! `storageClassName` gets the default class), `StorageObjectInUseProtection` (the
//! `kubernetes.io/pvc-protection` / `pv-protection` finalizers), `PersistentVolumeClaimResize`
//! (growing a bound claim needs a class with `allowVolumeExpansion`), and the validation and
//! defaults of the PersistentVolumeClaim, PersistentVolume and StorageClass strategies, with
//! kube-apiserver's messages.

use serde_json::{json, Value};

use super::{set_default, Causes};

pub const PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";
pub const PV_PROTECTION: &str = "kubernetes.io/pv-protection";
pub const DEFAULT_CLASS_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";
const BETA_DEFAULT_CLASS_ANNOTATION: &str = "storageclass.beta.kubernetes.io/is-default-class";
const BETA_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

const ACCESS_MODES: [&str; 4] = [
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];
pub const IMMUTABLE_BOUND_SPEC: &str = "Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims";
pub const RESIZE_FORBIDDEN: &str = "only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc must support resize";

fn text<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// Whether a StorageClass is marked default (either annotation, as kube reads them).
pub fn is_default_class(class: &Value) -> bool {
    [DEFAULT_CLASS_ANNOTATION, BETA_DEFAULT_CLASS_ANNOTATION]
        .iter()
        .any(|a| {
            class
                .pointer("/metadata/annotations")
                .and_then(|m| m.get(*a))
                == Some(&json!("true"))
        })
}

/// The default class among `classes`: the newest when several are marked (kube 1.26+),
/// ties broken by name.
pub fn default_class<'a>(classes: impl IntoIterator<Item = &'a Value>) -> Option<&'a Value> {
    classes
        .into_iter()
        .filter(|c| is_default_class(c))
        .max_by(|a, b| {
            text(a, "/metadata/creationTimestamp")
                .cmp(text(b, "/metadata/creationTimestamp"))
                .then_with(|| text(b, "/metadata/name").cmp(text(a, "/metadata/name")))
        })
}

/// `DefaultStorageClass`: a claim that names no class (no `storageClassName`, no beta
/// annotation) gets the default one's name. An explicit `""` means "no class" and stays.
pub fn default_claim_class(claim: &mut Value, default: Option<&Value>) {
    let annotated = claim
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(BETA_CLASS_ANNOTATION))
        .is_some();
    if claim
        .pointer("/spec/storageClassName")
        .is_some_and(|v| !v.is_null())
        || annotated
    {
        return;
    }
    if let Some(name) = default.and_then(|c| c.pointer("/metadata/name")) {
        claim["spec"]["storageClassName"] = name.clone();
    }
}

/// The PVC strategy's defaults, and the `kubernetes.io/pvc-protection` finalizer.
pub fn default_claim(claim: &mut Value) {
    if !claim.get("spec").is_some_and(Value::is_object) {
        claim["spec"] = json!({});
    }
    set_default(&mut claim["spec"], "volumeMode", json!("Filesystem"));
    add_finalizer(claim, PVC_PROTECTION);
    claim["status"] = json!({"phase": "Pending"});
}

fn add_finalizer(object: &mut Value, finalizer: &str) {
    if !object["metadata"]["finalizers"].is_array() {
        object["metadata"]["finalizers"] = json!([]);
    }
    let list = object["metadata"]["finalizers"].as_array_mut().unwrap();
    if !list.iter().any(|f| f == finalizer) {
        list.push(json!(finalizer));
    }
}

fn quoted_list(values: &[&str]) -> String {
    values
        .iter()
        .map(|v| format!("\"{v}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn access_mode_causes(modes: Option<&Value>, field: &str, required_detail: &str) -> Causes {
    let mut causes = Causes::new();
    let modes: Vec<&str> = modes
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if modes.is_empty() {
        let message = if required_detail.is_empty() {
            "Required value".to_string()
        } else {
            format!("Required value: {required_detail}")
        };
        causes.push((field.into(), message));
    }
    for mode in &modes {
        if !ACCESS_MODES.contains(mode) {
            causes.push((
                field.into(),
                format!(
                    "Unsupported value: \"{mode}\": supported values: {}",
                    quoted_list(&ACCESS_MODES)
                ),
            ));
        }
    }
    if modes.contains(&"ReadWriteOncePod") && modes.len() > 1 {
        causes.push((
            field.into(),
            "Forbidden: may not use ReadWriteOncePod with other access modes".into(),
        ));
    }
    causes
}

/// Bytes of a storage quantity (`10Gi`, `500M`, `1e9`); `None` when it is not one.
pub fn storage_bytes(text: &str) -> Option<f64> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        s if s.starts_with(['e', 'E']) => 10f64.powi(s[1..].parse().ok()?),
        _ => return None,
    };
    Some(number * factor)
}

fn quantity_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A positive storage quantity at `field` (`ValidatePositiveQuantityValue` and friends).
fn storage_causes(value: Option<&Value>, field: &str, required: &str) -> Causes {
    let Some(text) = quantity_text(value) else {
        return vec![(field.into(), required.into())];
    };
    match storage_bytes(&text) {
        None => vec![(
            field.into(),
            format!("Invalid value: \"{text}\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"),
        )],
        Some(b) if b <= 0.0 => vec![(field.into(), format!("Invalid value: \"{text}\": must be greater than zero"))],
        Some(_) => Vec::new(),
    }
}

/// `ValidatePersistentVolumeClaimSpec`.
pub fn validate_claim(claim: &Value) -> Causes {
    let spec = &claim["spec"];
    let mut causes = access_mode_causes(
        spec.get("accessModes"),
        "spec.accessModes",
        "at least 1 access mode is required",
    );
    causes.extend(storage_causes(
        spec.pointer("/resources/requests/storage"),
        "spec.resources[storage]",
        "Required value",
    ));
    if let Some(mode) = spec.get("volumeMode").and_then(Value::as_str) {
        if mode != "Filesystem" && mode != "Block" {
            causes.push((
                "spec.volumeMode".into(),
                format!(
                    "Unsupported value: \"{mode}\": supported values: \"Block\", \"Filesystem\""
                ),
            ));
        }
    }
    causes
}

/// `ValidatePersistentVolumeClaimUpdate`: a claim's spec is fixed once created, but for
/// `volumeName` (set once, by the binder) and, on a bound claim, `resources.requests`;
/// and its storage request never shrinks.
pub fn claim_update_causes(old: &Value, new: &Value) -> Causes {
    let mut old_spec = old["spec"].clone();
    let mut new_spec = new["spec"].clone();
    if text(old, "/spec/volumeName").is_empty() {
        old_spec["volumeName"] = new_spec.get("volumeName").cloned().unwrap_or(Value::Null);
        // Retroactive default class assignment: an unbound claim without a class may
        // get one (kube's `validateStorageClassUpgradeFromNil`).
        if old_spec.get("storageClassName").is_none_or(Value::is_null) {
            old_spec["storageClassName"] = new_spec
                .get("storageClassName")
                .cloned()
                .unwrap_or(Value::Null);
        }
    }
    let bound = text(new, "/status/phase") == "Bound";
    if bound {
        new_spec["resources"]["requests"] = old_spec
            .pointer("/resources/requests")
            .cloned()
            .unwrap_or(Value::Null);
        new_spec["volumeAttributesClassName"] = old_spec
            .get("volumeAttributesClassName")
            .cloned()
            .unwrap_or(Value::Null);
    }
    let strip = |spec: &mut Value| {
        if let Some(map) = spec.as_object_mut() {
            map.retain(|_, v| !v.is_null());
        }
    };
    strip(&mut old_spec);
    strip(&mut new_spec);
    let mut causes = Causes::new();
    if old_spec != new_spec {
        causes.push(("spec".into(), IMMUTABLE_BOUND_SPEC.into()));
    }
    let size = |c: &Value| {
        quantity_text(c.pointer("/spec/resources/requests/storage")).and_then(|t| storage_bytes(&t))
    };
    if let (Some(before), Some(after)) = (size(old), size(new)) {
        if after < before {
            causes.push((
                "spec.resources.requests.storage".into(),
                "Forbidden: field can not be less than previous value".into(),
            ));
        }
    }
    causes
}

/// `PersistentVolumeClaimResize`: whether growing `old` to `new` is refused (the claim is
/// bound and its class does not allow expansion); the message when it is.
pub fn resize_refusal(old: &Value, new: &Value, class: Option<&Value>) -> Option<&'static str> {
    let size = |c: &Value| {
        quantity_text(c.pointer("/spec/resources/requests/storage")).and_then(|t| storage_bytes(&t))
    };
    match (size(old), size(new)) {
        (Some(before), Some(after)) if after > before => {}
        _ => return None,
    }
    if text(old, "/status/phase") != "Bound" {
        return Some("Only bound persistent volume claims can be expanded");
    }
    let expandable = class.is_some_and(|c| c["allowVolumeExpansion"] == true);
    (!expandable).then_some(RESIZE_FORBIDDEN)
}

const VOLUME_SOURCES: [&str; 8] = [
    "hostPath",
    "local",
    "nfs",
    "csi",
    "iscsi",
    "fc",
    "cephfs",
    "awsElasticBlockStore",
];

/// The PV strategy's defaults, status and the `kubernetes.io/pv-protection` finalizer.
pub fn default_volume(volume: &mut Value) {
    if !volume.get("spec").is_some_and(Value::is_object) {
        volume["spec"] = json!({});
    }
    set_default(
        &mut volume["spec"],
        "persistentVolumeReclaimPolicy",
        json!("Retain"),
    );
    set_default(&mut volume["spec"], "volumeMode", json!("Filesystem"));
    add_finalizer(volume, PV_PROTECTION);
}

/// `ValidatePersistentVolumeSpec` for the volume types this cluster can mount.
pub fn validate_volume(volume: &Value) -> Causes {
    let spec = &volume["spec"];
    let mut causes = access_mode_causes(spec.get("accessModes"), "spec.accessModes", "");
    match spec.get("capacity").and_then(Value::as_object) {
        Some(c) if !c.is_empty() => {
            if c.keys().any(|k| k != "storage") || !c.contains_key("storage") {
                let keys: Vec<&str> = c
                    .keys()
                    .map(String::as_str)
                    .filter(|k| *k != "storage")
                    .collect();
                causes.push((
                    "spec.capacity".into(),
                    format!(
                        "Unsupported value: {}: supported values: \"storage\"",
                        quoted_list(&keys)
                    ),
                ));
            } else {
                causes.extend(storage_causes(
                    c.get("storage"),
                    "spec.capacity[storage]",
                    "Required value",
                ));
            }
        }
        _ => causes.push(("spec.capacity".into(), "Required value".into())),
    }
    let policy = text(spec, "/persistentVolumeReclaimPolicy");
    if !["Delete", "Recycle", "Retain"].contains(&policy) {
        causes.push((
            "spec.persistentVolumeReclaimPolicy".into(),
            format!("Unsupported value: \"{policy}\": supported values: \"Delete\", \"Recycle\", \"Retain\""),
        ));
    }
    let sources: Vec<&str> = VOLUME_SOURCES
        .iter()
        .copied()
        .filter(|s| spec.get(*s).is_some_and(|v| !v.is_null()))
        .collect();
    match sources.as_slice() {
        [] => causes.push((
            "spec".into(),
            "Required value: must specify a volume type".into(),
        )),
        [_] => {}
        [_, second, ..] => causes.push((
            format!("spec.{second}"),
            "Forbidden: may not specify more than 1 volume type".into(),
        )),
    }
    for source in ["hostPath", "local"] {
        if spec.get(source).is_some_and(|v| !v.is_null())
            && text(spec, &format!("/{source}/path")).is_empty()
        {
            causes.push((format!("spec.{source}.path"), "Required value".into()));
        }
    }
    if spec.get("local").is_some_and(|v| !v.is_null())
        && spec.get("nodeAffinity").is_none_or(Value::is_null)
    {
        causes.push((
            "spec.nodeAffinity".into(),
            "Required value: Local volume requires node affinity".into(),
        ));
    }
    causes
}

/// The StorageClass strategy's defaults.
pub fn default_class_fields(class: &mut Value) {
    set_default(class, "reclaimPolicy", json!("Delete"));
    set_default(class, "volumeBindingMode", json!("Immediate"));
}

/// `ValidateStorageClass`.
pub fn validate_class(class: &Value) -> Causes {
    let mut causes = Causes::new();
    if text(class, "/provisioner").is_empty() {
        causes.push(("provisioner".into(), "Required value".into()));
    }
    let policy = text(class, "/reclaimPolicy");
    if !["Delete", "Retain"].contains(&policy) {
        causes.push((
            "reclaimPolicy".into(),
            format!("Unsupported value: \"{policy}\": supported values: \"Delete\", \"Retain\""),
        ));
    }
    let mode = text(class, "/volumeBindingMode");
    if !["Immediate", "WaitForFirstConsumer"].contains(&mode) {
        causes.push((
            "volumeBindingMode".into(),
            format!("Unsupported value: \"{mode}\": supported values: \"Immediate\", \"WaitForFirstConsumer\""),
        ));
    }
    causes
}

/// `ValidateStorageClassUpdate`: what provisions a class's volumes is fixed.
pub fn class_update_causes(old: &Value, new: &Value) -> Causes {
    let mut causes = Causes::new();
    if old.get("parameters") != new.get("parameters") {
        causes.push((
            "parameters".into(),
            "Forbidden: updates to parameters are forbidden.".into(),
        ));
    }
    if old.get("provisioner") != new.get("provisioner") {
        causes.push((
            "provisioner".into(),
            "Forbidden: updates to provisioner are forbidden.".into(),
        ));
    }
    if old.get("reclaimPolicy") != new.get("reclaimPolicy") {
        causes.push((
            "reclaimPolicy".into(),
            "Forbidden: updates to reclaimPolicy are forbidden.".into(),
        ));
    }
    if old.get("volumeBindingMode") != new.get("volumeBindingMode") {
        causes.push((
            "volumeBindingMode".into(),
            format!(
                "Invalid value: \"{}\": field is immutable",
                text(new, "/volumeBindingMode")
            ),
        ));
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(spec: Value) -> Value {
        json!({"metadata": {"name": "data"}, "spec": spec})
    }

    #[test]
    fn claims_need_access_modes_and_storage() {
        assert_eq!(
            validate_claim(&claim(json!({}))),
            vec![
                (
                    "spec.accessModes".to_string(),
                    "Required value: at least 1 access mode is required".to_string()
                ),
                (
                    "spec.resources[storage]".to_string(),
                    "Required value".to_string()
                ),
            ]
        );
        let ok = claim(
            json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}),
        );
        assert!(validate_claim(&ok).is_empty());
        let bad = claim(
            json!({"accessModes": ["ReadWriteOncePod", "Sometimes"], "resources": {"requests": {"storage": "0"}}}),
        );
        let causes = validate_claim(&bad);
        assert!(causes
            .iter()
            .any(|(_, m)| m.starts_with("Unsupported value: \"Sometimes\"")));
        assert!(causes
            .iter()
            .any(|(_, m)| m == "Forbidden: may not use ReadWriteOncePod with other access modes"));
        assert!(causes.iter().any(|(f, m)| f == "spec.resources[storage]"
            && m == "Invalid value: \"0\": must be greater than zero"));
    }

    #[test]
    fn the_default_class_fills_only_an_absent_class() {
        let classes = [
            json!({"metadata": {"name": "old", "creationTimestamp": "2024-01-01T00:00:00Z", "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}}}),
            json!({"metadata": {"name": "new", "creationTimestamp": "2025-01-01T00:00:00Z", "annotations": {DEFAULT_CLASS_ANNOTATION: "true"}}}),
            json!({"metadata": {"name": "newest", "creationTimestamp": "2026-01-01T00:00:00Z"}}),
        ];
        let default = default_class(&classes);
        let mut c = claim(json!({}));
        default_claim_class(&mut c, default);
        assert_eq!(c["spec"]["storageClassName"], "new");
        let mut none = claim(json!({"storageClassName": ""}));
        default_claim_class(&mut none, default);
        assert_eq!(none["spec"]["storageClassName"], "");
    }

    #[test]
    fn bound_claims_change_only_their_request() {
        let old = json!({"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}, "storageClassName": "local-path"},
                         "status": {"phase": "Pending"}});
        let mut classless = old.clone();
        classless["spec"]
            .as_object_mut()
            .unwrap()
            .remove("storageClassName");
        assert!(
            claim_update_causes(&classless, &old).is_empty(),
            "an unbound claim without a class gets the default one"
        );
        let mut binding = old.clone();
        binding["spec"]["volumeName"] = json!("pvc-1");
        assert!(
            claim_update_causes(&old, &binding).is_empty(),
            "the binder sets volumeName once"
        );
        let mut bound = binding.clone();
        bound["status"]["phase"] = json!("Bound");
        let mut grown = bound.clone();
        grown["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
        assert!(claim_update_causes(&bound, &grown).is_empty());
        assert_eq!(
            resize_refusal(&bound, &grown, Some(&json!({}))),
            Some(RESIZE_FORBIDDEN)
        );
        assert_eq!(
            resize_refusal(&bound, &grown, Some(&json!({"allowVolumeExpansion": true}))),
            None
        );
        let mut shrunk = bound.clone();
        shrunk["spec"]["resources"]["requests"]["storage"] = json!("512Mi");
        assert_eq!(
            claim_update_causes(&bound, &shrunk)[0].1,
            "Forbidden: field can not be less than previous value"
        );
        let mut moved = bound.clone();
        moved["spec"]["volumeName"] = json!("pvc-2");
        assert_eq!(
            claim_update_causes(&bound, &moved),
            vec![("spec".to_string(), IMMUTABLE_BOUND_SPEC.to_string())]
        );
        let mut pending_grown = old.clone();
        pending_grown["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
        assert_eq!(
            claim_update_causes(&old, &pending_grown)[0].1,
            IMMUTABLE_BOUND_SPEC
        );
    }

    #[test]
    fn volumes_need_one_source_capacity_and_modes() {
        let mut pv = json!({"metadata": {"name": "pv"}, "spec": {}});
        default_volume(&mut pv);
        let fields: Vec<String> = validate_volume(&pv)
            .into_iter()
            .map(|(f, m)| format!("{f}: {m}"))
            .collect();
        assert_eq!(
            fields,
            [
                "spec.accessModes: Required value",
                "spec.capacity: Required value",
                "spec: Required value: must specify a volume type"
            ]
        );
        let local = json!({"spec": {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"},
            "persistentVolumeReclaimPolicy": "Delete", "local": {"path": "/x"}}});
        assert_eq!(
            validate_volume(&local)[0].1,
            "Required value: Local volume requires node affinity"
        );
        assert_eq!(storage_bytes("1Gi"), Some(1073741824.0));
        assert_eq!(storage_bytes("1e3"), Some(1000.0));
        assert_eq!(storage_bytes("lots"), None);
    }
}
