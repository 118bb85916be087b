//! Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`), as kubectl's
//! typed subcommands (`kubectl create namespace|secret|configmap|role|…`) send them.
//!
//! Input (bytes). Two forms, so the fuzzer reaches the per-kind decoders without first
//! having to discover the envelope:
//! - starts with `k8s\0`: the whole body as it arrives, fed to `protobuf::decode` as is;
//! - otherwise `<selector byte> <raw message>`: the selector picks one of the kinds the
//!   server decodes (or an unsupported one), and the harness wraps the raw message in the
//!   `k8s\0` + `runtime.Unknown` envelope kubectl would send, then calls `protobuf::decode`.
//!
//! A decoded object must carry the envelope's `apiVersion` and `kind`, and be an object
//! (it goes on to admission and storage as JSON).
#![no_main]

use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use sparkyard_kube_apiserver::protobuf;

const KINDS: &[(&str, &str)] = &[
    ("v1", "Namespace"),
    ("v1", "ServiceAccount"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
    ("scheduling.k8s.io/v1", "PriorityClass"),
    ("authentication.k8s.io/v1", "TokenRequest"),
    ("apps/v1", "Deployment"),
];

fuzz_target!(|data: &[u8]| {
    if data.starts_with(b"k8s\0") {
        if let Ok(object) = protobuf::decode(data) {
            assert!(object.is_object());
            assert!(object.get("kind").is_some_and(|k| k.is_string()));
        }
        return;
    }
    let Some((&selector, raw)) = data.split_first() else {
        return;
    };
    let (api_version, kind) = KINDS[usize::from(selector) % KINDS.len()];
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some(api_version.into()),
            kind: Some(kind.into()),
        }),
        raw: Some(raw.to_vec()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    let mut body = b"k8s\0".to_vec();
    body.extend(unknown.encode_to_vec());
    if let Ok(object) = protobuf::decode(&body) {
        assert_eq!(object["apiVersion"], api_version);
        assert_eq!(object["kind"], kind);
    }
});
