//! Protobuf request bodies (`application/vnd.kubernetes.protobuf`).
//!
//! kubectl's typed subcommands (`kubectl create namespace|serviceaccount|role|rolebinding|
//! clusterrole|clusterrolebinding|configmap|secret|priorityclass|token`, `kubectl auth
//! can-i`) send protobuf and do not fall back to JSON, and the seed itself runs `kubectl create namespace`. Responses stay
//! JSON, which client-go accepts. The wire types come from `k8s-pb` (kube-rs's generated
//! Kubernetes protobuf bindings); this module maps the kinds those subcommands send to the
//! same JSON the rest of the API server stores. Other kinds get 415 with a message naming
//! the JSON alternative.

use std::collections::BTreeMap;

use k8s_pb::api::{authentication, authorization, core, rbac, scheduling};
use k8s_pb::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_pb::apimachinery::pkg::runtime::Unknown;
use prost::Message;
use serde_json::{json, Map, Value};

use crate::error::ApiError;

/// Every Kubernetes protobuf body starts with these four bytes, then a `runtime.Unknown`.
const MAGIC: &[u8] = b"k8s\0";

pub fn decode(body: &[u8]) -> Result<Value, ApiError> {
    let envelope = body.strip_prefix(MAGIC).ok_or_else(|| {
        ApiError::bad_request("protobuf body does not start with the Kubernetes magic number")
    })?;
    let unknown = Unknown::decode(envelope)
        .map_err(|e| ApiError::bad_request(format!("invalid protobuf envelope: {e}")))?;
    let type_meta = unknown.type_meta.unwrap_or_default();
    let api_version = type_meta.api_version.unwrap_or_default();
    let kind = type_meta.kind.unwrap_or_default();
    let raw = unknown.raw.unwrap_or_default();
    let bad =
        |e: prost::DecodeError| ApiError::bad_request(format!("invalid protobuf {kind}: {e}"));
    let mut object = match (api_version.as_str(), kind.as_str()) {
        ("v1", "Namespace") => {
            let ns = core::v1::Namespace::decode(raw.as_slice()).map_err(bad)?;
            let finalizers = ns.spec.map(|s| s.finalizers).unwrap_or_default();
            with_meta(ns.metadata, [("spec", non_empty_object([("finalizers", strings(finalizers))]))])
        }
        ("v1", "ServiceAccount") => {
            let sa = core::v1::ServiceAccount::decode(raw.as_slice()).map_err(bad)?;
            let secrets: Vec<Value> = sa
                .secrets
                .into_iter()
                .map(|r| non_empty_object([("name", opt(r.name)), ("namespace", opt(r.namespace)), ("kind", opt(r.kind))]))
                .collect();
            let pull: Vec<Value> = sa.image_pull_secrets.into_iter().map(|r| non_empty_object([("name", opt(r.name))])).collect();
            with_meta(
                sa.metadata,
                [
                    ("secrets", array(secrets)),
                    ("imagePullSecrets", array(pull)),
                    ("automountServiceAccountToken", opt(sa.automount_service_account_token)),
                ],
            )
        }
        ("v1", "ConfigMap") => {
            let cm = core::v1::ConfigMap::decode(raw.as_slice()).map_err(bad)?;
            with_meta(
                cm.metadata,
                [
                    ("data", string_map(cm.data)),
                    ("binaryData", bytes_map(cm.binary_data)),
                    ("immutable", opt(cm.immutable)),
                ],
            )
        }
        ("v1", "Secret") => {
            let secret = core::v1::Secret::decode(raw.as_slice()).map_err(bad)?;
            with_meta(
                secret.metadata,
                [
                    ("data", bytes_map(secret.data)),
                    ("stringData", string_map(secret.string_data)),
                    ("type", opt(secret.r#type)),
                    ("immutable", opt(secret.immutable)),
                ],
            )
        }
        ("rbac.authorization.k8s.io/v1", "Role") => {
            let role = rbac::v1::Role::decode(raw.as_slice()).map_err(bad)?;
            with_meta(role.metadata, [("rules", rules(role.rules))])
        }
        ("rbac.authorization.k8s.io/v1", "ClusterRole") => {
            let role = rbac::v1::ClusterRole::decode(raw.as_slice()).map_err(bad)?;
            with_meta(role.metadata, [("rules", rules(role.rules))])
        }
        ("rbac.authorization.k8s.io/v1", "RoleBinding") => {
            let binding = rbac::v1::RoleBinding::decode(raw.as_slice()).map_err(bad)?;
            with_meta(binding.metadata, [("subjects", subjects(binding.subjects)), ("roleRef", role_ref(binding.role_ref))])
        }
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => {
            let binding = rbac::v1::ClusterRoleBinding::decode(raw.as_slice()).map_err(bad)?;
            with_meta(binding.metadata, [("subjects", subjects(binding.subjects)), ("roleRef", role_ref(binding.role_ref))])
        }
        ("scheduling.k8s.io/v1", "PriorityClass") => {
            let pc = scheduling::v1::PriorityClass::decode(raw.as_slice()).map_err(bad)?;
            with_meta(
                pc.metadata,
                [
                    ("value", opt(pc.value)),
                    ("globalDefault", opt(pc.global_default)),
                    ("description", opt(pc.description)),
                    ("preemptionPolicy", opt(pc.preemption_policy)),
                ],
            )
        }
        ("authentication.k8s.io/v1", "TokenRequest") => {
            let request = authentication::v1::TokenRequest::decode(raw.as_slice()).map_err(bad)?;
            let spec = request.spec.unwrap_or_default();
            let bound = spec.bound_object_ref.map(|r| {
                non_empty_object([("kind", opt(r.kind)), ("apiVersion", opt(r.api_version)), ("name", opt(r.name)), ("uid", opt(r.u_id))])
            });
            with_meta(
                request.metadata,
                [(
                    "spec",
                    non_empty_object([
                        ("audiences", strings(spec.audiences)),
                        ("expirationSeconds", opt(spec.expiration_seconds)),
                        ("boundObjectRef", bound.unwrap_or(Value::Null)),
                    ]),
                )],
            )
        }
        // `kubectl auth can-i` asks in protobuf.
        ("authorization.k8s.io/v1", "SelfSubjectAccessReview") => {
            let review = authorization::v1::SelfSubjectAccessReview::decode(raw.as_slice()).map_err(bad)?;
            let spec = review.spec.unwrap_or_default();
            let resource = spec.resource_attributes.map(|a| {
                non_empty_object([
                    ("namespace", opt(a.namespace)),
                    ("verb", opt(a.verb)),
                    ("group", opt(a.group)),
                    ("version", opt(a.version)),
                    ("resource", opt(a.resource)),
                    ("subresource", opt(a.subresource)),
                    ("name", opt(a.name)),
                ])
            });
            let non_resource = spec
                .non_resource_attributes
                .map(|a| non_empty_object([("path", opt(a.path)), ("verb", opt(a.verb))]));
            with_meta(
                review.metadata,
                [(
                    "spec",
                    non_empty_object([
                        ("resourceAttributes", resource.unwrap_or(Value::Null)),
                        ("nonResourceAttributes", non_resource.unwrap_or(Value::Null)),
                    ]),
                )],
            )
        }
        _ => {
            return Err(ApiError::unsupported_media_type(format!(
                "protobuf bodies of {api_version} {kind} are not supported; send JSON or YAML instead (kubectl apply -f / create -f)"
            )))
        }
    };
    object["apiVersion"] = json!(api_version);
    object["kind"] = json!(kind);
    Ok(object)
}

fn with_meta<const N: usize>(meta: Option<ObjectMeta>, fields: [(&str, Value); N]) -> Value {
    let mut object = non_empty_object(fields);
    object["metadata"] = metadata(meta.unwrap_or_default());
    object
}

fn metadata(meta: ObjectMeta) -> Value {
    let owners: Vec<Value> = meta
        .owner_references
        .into_iter()
        .map(|o| {
            non_empty_object([
                ("apiVersion", opt(o.api_version)),
                ("kind", opt(o.kind)),
                ("name", opt(o.name)),
                ("uid", opt(o.uid)),
                ("controller", opt(o.controller)),
                ("blockOwnerDeletion", opt(o.block_owner_deletion)),
            ])
        })
        .collect();
    non_empty_object([
        ("name", opt(meta.name)),
        ("generateName", opt(meta.generate_name)),
        ("namespace", opt(meta.namespace)),
        ("resourceVersion", opt(meta.resource_version)),
        ("labels", string_map(meta.labels)),
        ("annotations", string_map(meta.annotations)),
        ("ownerReferences", array(owners)),
        ("finalizers", strings(meta.finalizers)),
    ])
}

fn rules(rules: Vec<rbac::v1::PolicyRule>) -> Value {
    array(
        rules
            .into_iter()
            .map(|r| {
                non_empty_object([
                    ("verbs", json!(r.verbs)),
                    ("apiGroups", strings(r.api_groups)),
                    ("resources", strings(r.resources)),
                    ("resourceNames", strings(r.resource_names)),
                    ("nonResourceURLs", strings(r.non_resource_ur_ls)),
                ])
            })
            .collect(),
    )
}

fn subjects(subjects: Vec<rbac::v1::Subject>) -> Value {
    array(
        subjects
            .into_iter()
            .map(|s| {
                non_empty_object([
                    ("kind", opt(s.kind)),
                    ("apiGroup", opt(s.api_group)),
                    ("name", opt(s.name)),
                    ("namespace", opt(s.namespace)),
                ])
            })
            .collect(),
    )
}

fn role_ref(role_ref: Option<rbac::v1::RoleRef>) -> Value {
    let r = role_ref.unwrap_or_default();
    non_empty_object([
        ("apiGroup", opt(r.api_group)),
        ("kind", opt(r.kind)),
        ("name", opt(r.name)),
    ])
}

/// An object without the members that are null, empty or `""`: protobuf cannot tell an
/// unset string from an empty one, and the Go types omit both from JSON (`omitempty`), so
/// defaulting (e.g. a Secret's `type`) sees them as unset, as in the real apiserver.
fn non_empty_object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    let mut map = Map::new();
    for (key, value) in fields {
        let empty = match &value {
            Value::Null => true,
            Value::String(text) => text.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            _ => false,
        };
        if !empty {
            map.insert(key.to_string(), value);
        }
    }
    Value::Object(map)
}

fn opt<T: Into<Value>>(value: Option<T>) -> Value {
    value.map(Into::into).unwrap_or(Value::Null)
}

fn strings(values: Vec<String>) -> Value {
    json!(values)
}

fn array(values: Vec<Value>) -> Value {
    Value::Array(values)
}

fn string_map(map: BTreeMap<String, String>) -> Value {
    json!(map)
}

/// `[]byte` fields are base64 in JSON.
fn bytes_map(map: BTreeMap<String, Vec<u8>>) -> Value {
    use base64::Engine;
    let encoded: BTreeMap<String, String> = map
        .into_iter()
        .map(|(k, v)| (k, base64::engine::general_purpose::STANDARD.encode(v)))
        .collect();
    json!(encoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_pb::apimachinery::pkg::runtime::TypeMeta;

    fn envelope(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
        let unknown = Unknown {
            type_meta: Some(TypeMeta {
                api_version: Some(api_version.into()),
                kind: Some(kind.into()),
            }),
            raw: Some(raw),
            content_encoding: Some(String::new()),
            content_type: Some(String::new()),
        };
        let mut body = MAGIC.to_vec();
        body.extend(unknown.encode_to_vec());
        body
    }

    #[test]
    fn kubectl_create_namespace_body_becomes_json() {
        let ns = core::v1::Namespace {
            metadata: Some(ObjectMeta {
                name: Some("monthly-batch".into()),
                ..Default::default()
            }),
            spec: Some(Default::default()),
            status: Some(Default::default()),
        };
        let object = decode(&envelope("v1", "Namespace", ns.encode_to_vec())).unwrap();
        assert_eq!(
            object,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "monthly-batch"}})
        );
    }

    #[test]
    fn role_bindings_keep_subjects_and_role_ref() {
        let binding = rbac::v1::RoleBinding {
            metadata: Some(ObjectMeta {
                name: Some("spark".into()),
                namespace: Some("a".into()),
                ..Default::default()
            }),
            subjects: vec![rbac::v1::Subject {
                kind: Some("ServiceAccount".into()),
                name: Some("spark".into()),
                namespace: Some("a".into()),
                api_group: Some(String::new()),
            }],
            role_ref: Some(rbac::v1::RoleRef {
                api_group: Some("rbac.authorization.k8s.io".into()),
                kind: Some("ClusterRole".into()),
                name: Some("edit".into()),
            }),
        };
        let object = decode(&envelope(
            "rbac.authorization.k8s.io/v1",
            "RoleBinding",
            binding.encode_to_vec(),
        ))
        .unwrap();
        assert_eq!(object["subjects"][0]["kind"], "ServiceAccount");
        assert_eq!(object["roleRef"]["name"], "edit");
        assert_eq!(object["metadata"]["namespace"], "a");
    }

    #[test]
    fn secret_bytes_become_base64() {
        let secret = core::v1::Secret {
            metadata: Some(ObjectMeta {
                name: Some("s".into()),
                ..Default::default()
            }),
            data: BTreeMap::from([("k".to_string(), b"v".to_vec())]),
            r#type: Some(String::new()),
            ..Default::default()
        };
        let object = decode(&envelope("v1", "Secret", secret.encode_to_vec())).unwrap();
        assert_eq!(object["data"]["k"], "dg==");
        assert!(
            object.get("type").is_none(),
            "an empty type is unset, so admission defaults it"
        );
    }

    #[test]
    fn access_reviews_keep_their_attributes() {
        use k8s_pb::api::authorization::v1 as authz;
        let review = authz::SelfSubjectAccessReview {
            spec: Some(authz::SelfSubjectAccessReviewSpec {
                resource_attributes: Some(authz::ResourceAttributes {
                    namespace: Some("a".into()),
                    verb: Some("create".into()),
                    resource: Some("pods".into()),
                    subresource: Some("exec".into()),
                    group: Some(String::new()),
                    ..Default::default()
                }),
                non_resource_attributes: None,
            }),
            ..Default::default()
        };
        let object = decode(&envelope(
            "authorization.k8s.io/v1",
            "SelfSubjectAccessReview",
            review.encode_to_vec(),
        ))
        .unwrap();
        assert_eq!(
            object["spec"],
            json!({"resourceAttributes": {"namespace": "a", "verb": "create", "resource": "pods", "subresource": "exec"}})
        );
    }

    #[test]
    fn other_kinds_and_garbage_are_refused_clearly() {
        let err = decode(&envelope("apps/v1", "Deployment", vec![])).unwrap_err();
        assert_eq!(err.code, 415);
        assert!(err.message.contains("send JSON or YAML"));
        assert_eq!(decode(b"{\"kind\":\"Pod\"}").unwrap_err().code, 400);
    }
}
