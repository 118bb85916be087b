//! Custom resources through the in-process [`Client`]: a CRD's life, its objects'
//! validation, versions and status split, admission hooks, and eviction against a
//! PodDisruptionBudget. (The HTTP surface is driven by kubectl in
//! `crates/sparkyard/tests/crds.rs`.)

use std::sync::Arc;

use serde_json::{json, Value};

use crate::admission::{ObjectValidator, Operation};
use crate::error::ApiError;
use crate::registry::Resource;
use crate::resources::{self, ResourceInfo, CUSTOM_RESOURCE_DEFINITIONS};
use crate::{ApiServer, Client};

fn server(dir: &std::path::Path) -> ApiServer {
    let pki = crate::pki::load_or_create(&dir.join("pki"), &[]).unwrap();
    let tokens = crate::TokenIssuer::new("https://kubernetes.default.svc", &pki.sa_key_pem);
    ApiServer::new(
        crate::registry::Registry::new(),
        Arc::new(tokens.unwrap()),
        &pki.ca_pem,
        "admin",
        Arc::default(),
        dir.to_path_buf(),
    )
}

/// A CRD of its own per test (the resource table is process-wide).
fn gadget_crd(group: &str) -> Value {
    json!({
        "metadata": {"name": format!("gadgets.{group}")},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": "gadgets", "kind": "Gadget", "shortNames": ["gd"]},
                 "versions": [
                    {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                     "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                        "spec": {"type": "object", "required": ["size"], "properties": {
                            "size": {"type": "integer", "minimum": 1, "maximum": 10},
                            "mode": {"type": "string", "default": "Fast", "enum": ["Fast", "Slow"]}}},
                        "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}}}}},
                    {"name": "v1beta1", "served": true, "storage": false,
                     "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}
                 ]}
    })
}

fn setup(client: &Client, group: &'static str) -> Resource {
    let _ = client.create(
        resources::NAMESPACES.resource(),
        "",
        json!({"metadata": {"name": "a"}}),
    );
    let crd = client
        .create(
            CUSTOM_RESOURCE_DEFINITIONS.resource(),
            "",
            gadget_crd(group),
        )
        .unwrap();
    assert_eq!(crd["status"]["conditions"][1]["type"], "Established");
    assert_eq!(crd["status"]["acceptedNames"]["listKind"], "GadgetList");
    Resource::new(group, "gadgets")
}

#[test]
fn custom_objects_are_pruned_defaulted_validated_and_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let client = server(dir.path()).client();
    let gadgets = setup(&client, "one.example.com");
    let created = client
        .create(
            gadgets,
            "a",
            json!({"metadata": {"name": "g"}, "spec": {"size": 3, "junk": 1}, "status": {"ready": true}}),
        )
        .unwrap();
    assert_eq!(created["spec"], json!({"size": 3, "mode": "Fast"}));
    assert!(
        created.get("status").is_none(),
        "status is the subresource's"
    );
    assert_eq!(created["apiVersion"], "one.example.com/v1");

    let refused = client
        .create(
            gadgets,
            "a",
            json!({"metadata": {"name": "h"}, "spec": {"size": 11, "mode": "Warp"}}),
        )
        .unwrap_err();
    assert_eq!(refused.code, 422);
    assert_eq!(
        refused.message,
        "Gadget.one.example.com \"h\" is invalid: [spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10, spec.mode: Unsupported value: \"Warp\": supported values: \"Fast\", \"Slow\"]"
    );
    assert!(client.get(gadgets, "a", "h").is_none(), "nothing stored");

    // The status subresource writes status only; the main resource ignores status.
    let status = client
        .update_status(gadgets, "a", "g", |g| {
            g["status"] = json!({"ready": true});
            g["spec"]["size"] = json!(9);
            Ok(())
        })
        .unwrap();
    assert_eq!(
        (
            status["spec"]["size"].as_i64(),
            status["status"]["ready"].as_bool()
        ),
        (Some(3), Some(true))
    );
    assert_eq!(status["metadata"]["generation"], 1);
    let main = client
        .modify(gadgets, "a", "g", crate::Subresource::Main, |g| {
            g["spec"]["size"] = json!(4);
            g["status"]["ready"] = json!(false);
            Ok(())
        })
        .unwrap();
    assert_eq!(
        (
            main["spec"]["size"].as_i64(),
            main["status"]["ready"].as_bool()
        ),
        (Some(4), Some(true))
    );
    assert_eq!(main["metadata"]["generation"], 2);
}

#[test]
fn deleting_the_crd_deletes_its_objects_then_stops_serving() {
    let dir = tempfile::tempdir().unwrap();
    let client = server(dir.path()).client();
    let gadgets = setup(&client, "two.example.com");
    for name in ["x", "y"] {
        client
            .create(
                gadgets,
                "a",
                json!({"metadata": {"name": name}, "spec": {"size": 1}}),
            )
            .unwrap();
    }
    assert!(resources::find("two.example.com", "v1beta1", "gadgets").is_some());
    client
        .delete(
            CUSTOM_RESOURCE_DEFINITIONS.resource(),
            "",
            "gadgets.two.example.com",
            crate::Propagation::Background,
            None,
        )
        .unwrap();
    assert!(client
        .get(
            CUSTOM_RESOURCE_DEFINITIONS.resource(),
            "",
            "gadgets.two.example.com"
        )
        .is_none());
    assert!(client.list(gadgets, None).0.is_empty());
    assert!(resources::find("two.example.com", "v1", "gadgets").is_none());
    assert_eq!(
        client
            .create(gadgets, "a", json!({"metadata": {"name": "z"}}))
            .unwrap_err()
            .code,
        500
    );
}

#[test]
fn a_restarted_server_serves_the_stored_crds() {
    let dir = tempfile::tempdir().unwrap();
    let first = server(dir.path());
    setup(&first.client(), "three.example.com");
    resources::remove_custom("three.example.com", "gadgets");
    // A new API server over the same registry installs what is stored before serving.
    let again = ApiServer::new(
        first.registry.clone(),
        first.tokens.clone(),
        &first.ca_pem,
        "admin",
        Arc::default(),
        dir.path().to_path_buf(),
    );
    assert!(resources::find("three.example.com", "v1", "gadgets").is_some());
    assert!(again
        .client()
        .get(
            CUSTOM_RESOURCE_DEFINITIONS.resource(),
            "",
            "gadgets.three.example.com"
        )
        .is_some());
}

struct NoBigGadgets;

impl ObjectValidator for NoBigGadgets {
    fn admit(
        &self,
        resource: &ResourceInfo,
        operation: Operation,
        old: Option<&Value>,
        object: &mut Value,
    ) -> Result<(), ApiError> {
        if resource.kind != "Gadget" {
            return Ok(());
        }
        assert_eq!(old.is_some(), operation == Operation::Update);
        if object["spec"]["size"].as_i64() > Some(5) {
            return Err(ApiError::webhook_denied(
                "gadgets.example.com",
                "too big",
                None,
            ));
        }
        object["metadata"]["labels"] = json!({"checked": "yes"});
        Ok(())
    }
}

#[test]
fn admission_hooks_run_after_the_schema_and_relay_denials() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    server.add_validator(Arc::new(NoBigGadgets));
    let client = server.client();
    let gadgets = setup(&client, "four.example.com");
    let ok = client
        .create(
            gadgets,
            "a",
            json!({"metadata": {"name": "s"}, "spec": {"size": 2}}),
        )
        .unwrap();
    assert_eq!(ok["metadata"]["labels"]["checked"], "yes");
    let denied = client
        .create(
            gadgets,
            "a",
            json!({"metadata": {"name": "b"}, "spec": {"size": 6}}),
        )
        .unwrap_err();
    assert_eq!(
        (denied.code, denied.message.as_str()),
        (
            400,
            "admission webhook \"gadgets.example.com\" denied the request: too big"
        )
    );
    assert!(client.get(gadgets, "a", "b").is_none());
    let update = client
        .modify(gadgets, "a", "s", crate::Subresource::Main, |g| {
            g["spec"]["size"] = json!(7);
            Ok(())
        })
        .unwrap_err();
    assert_eq!(update.code, 400);
    assert_eq!(client.get(gadgets, "a", "s").unwrap()["spec"]["size"], 2);
}

#[test]
fn eviction_honours_the_disruption_budget() {
    let dir = tempfile::tempdir().unwrap();
    let client = server(dir.path()).client();
    let pods = resources::PODS.resource();
    let _ = client.create(
        resources::NAMESPACES.resource(),
        "",
        json!({"metadata": {"name": "a"}}),
    );
    for name in ["w1", "w2"] {
        client
            .create(
                pods,
                "a",
                json!({"metadata": {"name": name, "labels": {"app": "web"}},
                "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox"}]}}),
            )
            .unwrap();
        client
            .update_status(pods, "a", name, |p| {
                p["status"]["phase"] = json!("Running");
                p["status"]["conditions"] = json!([{"type": "Ready", "status": "True"}]);
                Ok(())
            })
            .unwrap();
    }
    let budgets = resources::POD_DISRUPTION_BUDGETS.resource();
    client
        .create(budgets, "a", json!({"metadata": {"name": "web"}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}}))
        .unwrap();
    client.evict("a", "w1", None).unwrap();
    let recorded = client.get(budgets, "a", "web").unwrap();
    assert!(
        recorded["status"]["disruptedPods"]["w1"].is_string(),
        "{recorded}"
    );
    let refused = client.evict("a", "w2", None).unwrap_err();
    assert_eq!(
        (refused.code, refused.message.as_str()),
        (
            429,
            "Cannot evict pod as it would violate the pod's disruption budget."
        )
    );
    assert_eq!(
        refused.details.unwrap()["causes"][0],
        json!({"reason": "DisruptionBudget", "message": "The disruption budget web needs 1 healthy pods and has 1 currently"})
    );
    let w2 = client.get(pods, "a", "w2").unwrap();
    assert!(w2["metadata"]["deletionTimestamp"].is_null());
    assert!(!w2["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["type"] == "DisruptionTarget"));
}
