//! The CustomResourceDefinition object itself: defaults, validation with kube-apiserver's
//! messages, the status it reports (`acceptedNames`, `NamesAccepted`, `Established`) and
//! the resource-table entries of its served versions. Pure functions.

use serde_json::{json, Value};

use crate::admission::{is_dns1035_label, is_dns1123_subdomain, DNS1035_MSG, SUBDOMAIN_MSG};
use crate::resources::{intern, intern_list, ResourceInfo};

/// The finalizer that makes a CRD's deletion wait for its objects to go
/// (kube-apiserver's `customresourcecleanup.apiextensions.k8s.io`).
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn versions(crd: &Value) -> Vec<Value> {
    crd.pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Defaults kube-apiserver applies to a CRD: `listKind`, `singular`, `conversion`.
pub fn default_crd(crd: &mut Value) {
    let kind = text(crd, "/spec/names/kind").to_string();
    if !kind.is_empty() {
        let names = &mut crd["spec"]["names"];
        if text(names, "/listKind").is_empty() {
            names["listKind"] = json!(format!("{kind}List"));
        }
        if text(names, "/singular").is_empty() {
            names["singular"] = json!(kind.to_lowercase());
        }
    }
    if crd.pointer("/spec/conversion").is_none_or(Value::is_null) {
        crd["spec"]["conversion"] = json!({"strategy": "None"});
    }
}

type Causes = Vec<(String, String)>;

fn check_label(causes: &mut Causes, field: &str, value: &str) {
    if !value.is_empty() && !is_dns1035_label(value) {
        causes.push((
            field.into(),
            format!("Invalid value: {value:?}: {DNS1035_MSG}"),
        ));
    }
}

const KIND_MSG: &str =
    "may have mixed case, but should otherwise match: [a-z]([-a-z0-9]*[a-z0-9])?";

/// `ValidateCustomResourceDefinition`, for what this server supports. `old` is the stored
/// CRD on update (group, scope and plural are then immutable).
pub fn validate_crd(crd: &Value, old: Option<&Value>) -> Causes {
    let mut causes = Causes::new();
    let group = text(crd, "/spec/group");
    let plural = text(crd, "/spec/names/plural");
    let name = text(crd, "/metadata/name");
    if name != format!("{plural}.{group}") {
        causes.push((
            "metadata.name".into(),
            format!("Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group"),
        ));
    }
    if group.is_empty() {
        causes.push(("spec.group".into(), "Required value".into()));
    } else if !is_dns1123_subdomain(group) {
        causes.push((
            "spec.group".into(),
            format!("Invalid value: {group:?}: {SUBDOMAIN_MSG}"),
        ));
    } else if !group.contains('.') {
        causes.push((
            "spec.group".into(),
            format!("Invalid value: {group:?}: should be a domain with at least one dot"),
        ));
    }
    match text(crd, "/spec/scope") {
        "Namespaced" | "Cluster" => {}
        "" => causes.push(("spec.scope".into(), "Required value".into())),
        other => causes.push((
            "spec.scope".into(),
            format!("Unsupported value: {other:?}: supported values: \"Cluster\", \"Namespaced\""),
        )),
    }
    validate_names(crd, &mut causes);
    validate_versions(crd, &mut causes);
    let strategy = text(crd, "/spec/conversion/strategy");
    if !strategy.is_empty() && strategy != "None" {
        // Conversion webhooks are not supported: every version is served by rewriting
        // apiVersion, which is what `None` means.
        causes.push((
            "spec.conversion.strategy".into(),
            format!("Unsupported value: {strategy:?}: supported values: \"None\""),
        ));
    }
    if let Some(old) = old {
        for (field, pointer) in [
            ("spec.group", "/spec/group"),
            ("spec.scope", "/spec/scope"),
            ("spec.names.plural", "/spec/names/plural"),
        ] {
            let (was, now) = (text(old, pointer), text(crd, pointer));
            if was != now {
                causes.push((
                    field.into(),
                    format!("Invalid value: {now:?}: field is immutable"),
                ));
            }
        }
    }
    causes
}

fn validate_names(crd: &Value, causes: &mut Causes) {
    let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let plural = text(&names, "/plural");
    if plural.is_empty() {
        causes.push(("spec.names.plural".into(), "Required value".into()));
    }
    check_label(causes, "spec.names.plural", plural);
    check_label(causes, "spec.names.singular", text(&names, "/singular"));
    let kind = text(&names, "/kind");
    if kind.is_empty() {
        causes.push(("spec.names.kind".into(), "Required value".into()));
    } else if !is_dns1035_label(&kind.to_lowercase()) {
        causes.push((
            "spec.names.kind".into(),
            format!("Invalid value: {kind:?}: {KIND_MSG}"),
        ));
    }
    let list_kind = text(&names, "/listKind");
    if !list_kind.is_empty() && !is_dns1035_label(&list_kind.to_lowercase()) {
        causes.push((
            "spec.names.listKind".into(),
            format!("Invalid value: {list_kind:?}: {KIND_MSG}"),
        ));
    }
    if !kind.is_empty() && kind == list_kind {
        causes.push((
            "spec.names.listKind".into(),
            format!("Invalid value: {list_kind:?}: kind and listKind may not be the same"),
        ));
    }
    for (key, field) in [
        ("shortNames", "spec.names.shortNames"),
        ("categories", "spec.names.categories"),
    ] {
        for (i, item) in names
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let item = item.as_str().unwrap_or_default();
            if key == "shortNames" {
                check_label(causes, &format!("{field}[{i}]"), item);
            } else if item.is_empty() {
                causes.push((
                    format!("{field}[{i}]"),
                    "Invalid value: \"\": must not be empty".into(),
                ));
            }
        }
    }
}

fn validate_versions(crd: &Value, causes: &mut Causes) {
    let versions = versions(crd);
    if versions.is_empty() {
        causes.push((
            "spec.versions".into(),
            "Required value: must have at least one version".into(),
        ));
        return;
    }
    let storage = versions
        .iter()
        .filter(|v| v["storage"] == json!(true))
        .count();
    if storage != 1 {
        causes.push((
            "spec.versions".into(),
            format!(
                "Invalid value: {storage}: must have exactly one version marked as storage version"
            ),
        ));
    }
    if !versions.iter().any(|v| v["served"] == json!(true)) {
        causes.push((
            "spec.versions".into(),
            "Invalid value: 0: must have at least one version marked as served".into(),
        ));
    }
    let mut seen = Vec::new();
    for (i, version) in versions.iter().enumerate() {
        let field = format!("spec.versions[{i}]");
        let name = text(version, "/name");
        if name.is_empty() {
            causes.push((format!("{field}.name"), "Required value".into()));
        } else if !is_dns1035_label(name) {
            causes.push((
                format!("{field}.name"),
                format!("Invalid value: {name:?}: {DNS1035_MSG}"),
            ));
        } else if seen.contains(&name) {
            causes.push((
                format!("{field}.name"),
                format!("Duplicate value: {name:?}"),
            ));
        }
        seen.push(name);
        let schema_field = format!("{field}.schema.openAPIV3Schema");
        match version.pointer("/schema/openAPIV3Schema") {
            None | Some(Value::Null) => {
                causes.push((schema_field, "Required value: schemas are required".into()))
            }
            Some(schema) => validate_schema(schema, &schema_field, true, causes),
        }
        for (j, column) in version
            .get("additionalPrinterColumns")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let column_field = format!("{field}.additionalPrinterColumns[{j}]");
            for key in ["name", "type", "jsonPath"] {
                if text(column, &format!("/{key}")).is_empty() {
                    causes.push((format!("{column_field}.{key}"), "Required value".into()));
                }
            }
            let kind = text(column, "/type");
            if !kind.is_empty()
                && !["integer", "number", "string", "boolean", "date"].contains(&kind)
            {
                causes.push((
                    format!("{column_field}.type"),
                    format!("Unsupported value: {kind:?}: supported values: \"integer\", \"number\", \"string\", \"boolean\", \"date\""),
                ));
            }
        }
    }
}

/// The structural-schema rules this server relies on: a type everywhere (unless the
/// field preserves unknown fields or is int-or-string), `object` at the root, patterns
/// that compile.
fn validate_schema(schema: &Value, field: &str, root: bool, causes: &mut Causes) {
    let kind = text(schema, "/type");
    let open = schema.get("x-kubernetes-preserve-unknown-fields") == Some(&json!(true))
        || schema.get("x-kubernetes-int-or-string") == Some(&json!(true));
    if root && kind != "object" {
        let message = if kind.is_empty() {
            "Required value: must not be empty at the root".to_string()
        } else {
            format!("Invalid value: {kind:?}: must be object at the root")
        };
        causes.push((format!("{field}.type"), message));
    } else if kind.is_empty() && !open {
        causes.push((
            format!("{field}.type"),
            "Required value: must not be empty for specified object fields".into(),
        ));
    }
    if let Some(pattern) = schema.get("pattern").and_then(Value::as_str) {
        if let Err(e) = regex::Regex::new(pattern) {
            causes.push((
                format!("{field}.pattern"),
                format!("Invalid value: {pattern:?}: must be a valid regular expression, but isn't: {e}"),
            ));
        }
    }
    for (key, sub) in schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        validate_schema(sub, &format!("{field}.properties[{key}]"), false, causes);
    }
    if let Some(items) = schema.get("items").filter(|i| i.is_object()) {
        validate_schema(items, &format!("{field}.items"), false, causes);
    }
    if let Some(additional) = schema.get("additionalProperties").filter(|a| a.is_object()) {
        validate_schema(
            additional,
            &format!("{field}.additionalProperties"),
            false,
            causes,
        );
    }
}

/// The status kube-apiserver reports once a CRD's names are accepted and it is served.
pub fn status(crd: &Value, old_status: Option<&Value>, now: &str) -> Value {
    let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let storage = versions(crd)
        .iter()
        .find(|v| v["storage"] == json!(true))
        .map(|v| text(v, "/name").to_string())
        .unwrap_or_default();
    let mut stored: Vec<Value> = old_status
        .and_then(|s| s.get("storedVersions"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !storage.is_empty() && !stored.contains(&json!(storage)) {
        stored.push(json!(storage));
    }
    let since = |kind: &str| {
        old_status
            .and_then(|s| s.get("conditions"))
            .and_then(Value::as_array)
            .and_then(|cs| cs.iter().find(|c| c["type"] == kind))
            .and_then(|c| c.get("lastTransitionTime").cloned())
            .unwrap_or(json!(now))
    };
    json!({
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "lastTransitionTime": since("NamesAccepted"),
             "reason": "NoConflicts", "message": "no conflicts found"},
            {"type": "Established", "status": "True", "lastTransitionTime": since("Established"),
             "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"},
        ],
        "acceptedNames": names,
        "storedVersions": stored,
    })
}

/// One served version of a CRD: its table entry and what requests need of it.
pub struct ServedVersion {
    pub info: ResourceInfo,
    pub schema: Value,
    pub columns: Vec<Value>,
    pub storage: bool,
}

/// The served versions of a (valid) CRD, storage version first.
pub fn served_versions(crd: &Value) -> Vec<ServedVersion> {
    let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let strings = |key: &str| -> Vec<String> {
        names
            .get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let has_status = |v: &Value| {
        v.pointer("/subresources/status")
            .is_some_and(Value::is_object)
    };
    let mut out: Vec<ServedVersion> = versions(crd)
        .iter()
        .filter(|v| v["served"] == json!(true))
        .map(|v| {
            let subresources: &'static [&'static str] =
                if has_status(v) { &["status"] } else { &[] };
            ServedVersion {
                info: ResourceInfo {
                    group: intern(text(crd, "/spec/group")),
                    version: intern(text(v, "/name")),
                    kind: intern(text(&names, "/kind")),
                    plural: intern(text(&names, "/plural")),
                    singular: intern(text(&names, "/singular")),
                    namespaced: text(crd, "/spec/scope") == "Namespaced",
                    short_names: intern_list(&strings("shortNames")),
                    categories: intern_list(&strings("categories")),
                    subresources,
                    create_only: false,
                },
                schema: v.pointer("/schema/openAPIV3Schema").cloned().unwrap_or(
                    json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
                ),
                columns: v
                    .get("additionalPrinterColumns")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
                storage: v["storage"] == json!(true),
            }
        })
        .collect();
    out.sort_by_key(|v| !v.storage);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                     "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"], "categories": ["all"]},
                     "versions": [
                        {"name": "v1beta1", "served": true, "storage": false, "schema": {"openAPIV3Schema": {"type": "object"}}},
                        {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                         "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object"}}}}}
                     ]}
        })
    }

    #[test]
    fn a_valid_crd_is_defaulted_and_served_storage_first() {
        let mut crd = crd();
        default_crd(&mut crd);
        assert!(
            validate_crd(&crd, None).is_empty(),
            "{:?}",
            validate_crd(&crd, None)
        );
        assert_eq!(crd["spec"]["names"]["listKind"], "WidgetList");
        assert_eq!(crd["spec"]["names"]["singular"], "widget");
        let served = served_versions(&crd);
        assert_eq!(served[0].info.version, "v1");
        assert!(served[0].info.has_status() && !served[1].info.has_status());
        assert_eq!(served[1].info.short_names, &["wd"]);
        let status = status(&crd, None, "t");
        assert_eq!(status["storedVersions"], json!(["v1"]));
        assert_eq!(status["conditions"][1]["type"], "Established");
        assert_eq!(status["acceptedNames"]["kind"], "Widget");
    }

    #[test]
    fn invalid_crds_are_refused_with_kube_apiserver_messages() {
        let mut bad = crd();
        bad["metadata"]["name"] = json!("widgets.example");
        bad["spec"]["group"] = json!("example");
        bad["spec"]["names"]["plural"] = json!("Widgets");
        bad["spec"]["versions"][0]["storage"] = json!(true);
        bad["spec"]["versions"][0]["schema"] = json!(null);
        let messages: Vec<String> = validate_crd(&bad, None)
            .iter()
            .map(|(f, m)| format!("{f}: {m}"))
            .collect();
        assert_eq!(messages, vec![
            "metadata.name: Invalid value: \"widgets.example\": must be spec.names.plural+\".\"+spec.group",
            "spec.group: Invalid value: \"example\": should be a domain with at least one dot",
            format!("spec.names.plural: Invalid value: \"Widgets\": {DNS1035_MSG}").as_str(),
            "spec.versions: Invalid value: 2: must have exactly one version marked as storage version",
            "spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required",
        ]);
        let mut changed = crd();
        changed["spec"]["scope"] = json!("Cluster");
        assert_eq!(
            validate_crd(&changed, Some(&crd())),
            vec![(
                "spec.scope".to_string(),
                "Invalid value: \"Cluster\": field is immutable".to_string()
            )]
        );
    }
}
