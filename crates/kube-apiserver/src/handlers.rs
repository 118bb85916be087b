//! The verbs: get, list, create, update, patch, delete, deletecollection, plus the
//! subresources (`status`, `log`, `binding`, `token`, `finalize`) and the review APIs.
//!
//! The `*_internal` functions are the API semantics without HTTP (admission, defaulting,
//! deletion rules); in-process callers that want apiserver behaviour use them directly.

use std::sync::Arc;

use axum::response::Response;
use base64::Engine;
use http::Method;
use serde_json::{json, Value};

use super::selectors::{FieldSelector, LabelSelector, Selectors};
use super::{
    admission, deletion, error_response, json_response, patch, table_response, tables, wants_table,
    ApiRequest,
};
use crate::error::ApiError;
use crate::registry::{now_rfc3339, object_name};
use crate::resources::{self, ResourceInfo};
use crate::ApiServer;

#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    pub dry_run: bool,
    /// `fieldValidation=Strict`: unknown fields of a custom object are an error, not pruned.
    pub strict: bool,
    /// Who asked, for RBAC's escalation check on writes of roles and bindings; `None` for
    /// the cluster's own components (in-process callers), which are trusted.
    pub requester: Option<crate::auth::UserInfo>,
}

impl CreateOptions {
    fn from_request(request: &ApiRequest) -> Self {
        Self {
            dry_run: request.query.get("dryRun") == Some("All"),
            strict: request.query.get("fieldValidation") == Some("Strict"),
            requester: Some(request.user.clone()),
        }
    }

    /// RBAC's escalation check ([`crate::auth::rbac::check_escalation`]) of `object`, about
    /// to be stored, when a client (not the cluster itself) writes it.
    fn check_escalation(
        &self,
        server: &ApiServer,
        info: &ResourceInfo,
        ns: &str,
        object: &Value,
    ) -> Result<(), ApiError> {
        match &self.requester {
            Some(user) if info.group == "rbac.authorization.k8s.io" => {
                let ns = if info.namespaced { ns } else { "" };
                crate::auth::rbac::check_escalation(&server.registry, user, info.plural, ns, object)
            }
            _ => Ok(()),
        }
    }
}

pub async fn handle(server: ApiServer, request: ApiRequest) -> Response {
    match handle_inner(&server, request).await {
        Ok(response) => response,
        Err(err) => error_response(&err),
    }
}

fn method_not_allowed(request: &ApiRequest) -> ApiError {
    ApiError::method_not_allowed(format!(
        "the server does not allow this method on the requested resource ({} {})",
        request.method, request.path.info.plural
    ))
}

async fn handle_inner(server: &ApiServer, request: ApiRequest) -> Result<Response, ApiError> {
    let info = request.path.info;
    if info.create_only {
        return if request.method == Method::POST {
            Ok(json_response(201, &reviews(server, &request)?))
        } else {
            Err(method_not_allowed(&request))
        };
    }
    let ns = request.namespace().to_string();
    let name = request.path.name.clone();
    let sub = request.path.subresource.clone();
    let table = wants_table(request.accept());
    match (&request.method, name.as_deref(), sub.as_deref()) {
        (&Method::GET, None, None) if request.is_watch() => super::watch::http(server, &request),
        (&Method::GET, Some(name), None) if request.is_watch() => {
            // `/api/v1/watch/namespaces/ns/pods/name`: a watch of one object.
            let mut request = request;
            request
                .query
                .0
                .push(("fieldSelector".into(), format!("metadata.name={name}")));
            request.path.name = None;
            super::watch::http(server, &request)
        }
        (&Method::GET, None, None) => {
            let list = list(server, info, request.path.namespace.as_deref(), &request)?;
            if table {
                let rv = list["metadata"]["resourceVersion"].clone();
                let items = list["items"].as_array().cloned().unwrap_or_default();
                let mut t =
                    tables::table(info, &items, &include_object(&request), chrono::Utc::now());
                t["metadata"] = json!({"resourceVersion": rv});
                if let Some(c) = list["metadata"].get("continue") {
                    t["metadata"]["continue"] = c.clone();
                }
                Ok(table_response(&t))
            } else {
                Ok(json_response(200, &list))
            }
        }
        (&Method::GET, Some(name), None | Some("status")) => {
            let object = get(server, info, &ns, name)?;
            Ok(object_response(
                200,
                &presented(server, info, &object),
                table,
                &request,
            ))
        }
        (&Method::GET, Some(name), Some("scale")) if info.subresources.contains(&"scale") => Ok(
            json_response(200, &crate::scale::get_scale(server, info, &ns, name)?),
        ),
        (&Method::PUT, Some(name), Some("scale")) if info.subresources.contains(&"scale") => {
            let body = parse_body(&request.body, request.content_type())?;
            let opts = CreateOptions::from_request(&request);
            let scale = crate::scale::put_scale(server, info, &ns, name, body, &opts)?;
            Ok(json_response(200, &scale))
        }
        (&Method::PATCH, Some(name), Some("scale")) if info.subresources.contains(&"scale") => {
            let opts = CreateOptions::from_request(&request);
            let scale = crate::scale::patch_scale(
                server,
                info,
                &ns,
                name,
                request.content_type(),
                &request.body,
                &opts,
            )?;
            Ok(json_response(200, &scale))
        }
        (&Method::GET, Some(name), Some("log")) => {
            super::pod_log::get(server, &ns, name, &request).await
        }
        (&Method::POST, None, None) => {
            let body = parse_body(&request.body, request.content_type())?;
            let created = create_internal(
                server,
                info,
                &ns,
                body,
                &CreateOptions::from_request(&request),
            )?;
            Ok(object_response(
                201,
                &presented(server, info, &created),
                table,
                &request,
            ))
        }
        (&Method::POST, Some(name), Some("token")) => Ok(json_response(
            201,
            &token_request(server, &ns, name, &request)?,
        )),
        (&Method::POST, Some(name), Some("binding")) => {
            Ok(json_response(201, &binding(server, &ns, name, &request)?))
        }
        (&Method::POST, Some(name), Some("eviction")) => {
            Ok(json_response(201, &eviction(server, &ns, name, &request)?))
        }
        (&Method::PUT, Some(name), None | Some("status") | Some("finalize")) => {
            let body = parse_body(&request.body, request.content_type())?;
            let opts = CreateOptions::from_request(&request);
            let updated = update_internal(server, info, &ns, name, sub.as_deref(), body, &opts)?;
            Ok(object_response(
                200,
                &presented(server, info, &updated),
                table,
                &request,
            ))
        }
        (&Method::PATCH, Some(name), None | Some("status")) => {
            let opts = CreateOptions::from_request(&request);
            let (object, code) = patch_internal(
                server,
                info,
                &ns,
                name,
                sub.as_deref(),
                request.content_type(),
                &request.body,
                request.query.flag("force"),
                &opts,
            )?;
            Ok(object_response(
                code,
                &presented(server, info, &object),
                table,
                &request,
            ))
        }
        (&Method::DELETE, Some(name), None) => {
            let opts = deletion::DeleteOptions::parse(&request.query, &request.body)?;
            let deleted = deletion::delete_internal(server, info, &ns, name, &opts)?;
            Ok(object_response(
                200,
                &presented(server, info, &deleted),
                table,
                &request,
            ))
        }
        (&Method::DELETE, None, None) => {
            let opts = deletion::DeleteOptions::parse(&request.query, &request.body)?;
            let selectors = selectors(info, &request)?;
            let (items, rv) = server
                .registry
                .list(info.resource(), request.path.namespace.as_deref());
            let mut deleted = Vec::new();
            for item in items.iter().filter(|o| selectors.matches(info, o)) {
                let item_ns = item
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let Some(item_name) = object_name(item) else {
                    continue;
                };
                match deletion::delete_internal(server, info, item_ns, item_name, &opts) {
                    Ok(object) => deleted.push(Value::clone(&object)),
                    Err(e) if e.code == 404 => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(json_response(
                200,
                &json!({"kind": info.list_kind(), "apiVersion": info.api_version(),
                        "metadata": {"resourceVersion": rv.to_string()}, "items": deleted}),
            ))
        }
        _ => Err(method_not_allowed(&request)),
    }
}

/// `includeObject` for Table rows: `Metadata` (default), `Object` or `None`.
fn include_object(request: &ApiRequest) -> String {
    request
        .query
        .get("includeObject")
        .unwrap_or("Metadata")
        .to_string()
}

/// An object as a response shows it: a custom resource in the requested version, a
/// PodDisruptionBudget with its status computed now; anything else as stored, uncopied.
fn presented<'a>(
    server: &ApiServer,
    info: &ResourceInfo,
    object: &'a Value,
) -> std::borrow::Cow<'a, Value> {
    let pdb = info.group == "policy" && info.plural == "poddisruptionbudgets";
    if object.get("kind").and_then(Value::as_str) == Some("Status")
        || !(pdb || crate::crd::served(info).is_some())
    {
        return std::borrow::Cow::Borrowed(object);
    }
    let mut object = object.clone();
    crate::crd::present(info, &mut object);
    if pdb {
        crate::pdb::present(server, &mut object);
    }
    std::borrow::Cow::Owned(object)
}

fn object_response(code: u16, object: &Value, table: bool, request: &ApiRequest) -> Response {
    if table && object.get("kind").and_then(Value::as_str) != Some("Status") {
        let t = tables::table(
            request.path.info,
            std::slice::from_ref(object),
            &include_object(request),
            chrono::Utc::now(),
        );
        let mut response = table_response(&t);
        *response.status_mut() = http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::OK);
        response
    } else {
        json_response(code, object)
    }
}

/// JSON, or YAML when the client says so.
pub fn parse_body(body: &[u8], content_type: &str) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    if content_type.contains("protobuf") {
        return super::protobuf::decode(body);
    }
    if content_type.contains("cbor") {
        return Err(ApiError::unsupported_media_type(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {content_type})"
        )));
    }
    let value: Value = if content_type.contains("yaml") {
        serde_yaml::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?
    } else {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!("couldn't get version/kind; json parse error: {e}"))
        })?
    };
    if !value.is_object() {
        return Err(ApiError::bad_request("the request body must be an object"));
    }
    Ok(value)
}

pub fn selectors(info: &ResourceInfo, request: &ApiRequest) -> Result<Selectors, ApiError> {
    Ok(Selectors {
        labels: LabelSelector::parse(request.query.get("labelSelector").unwrap_or_default())?,
        fields: FieldSelector::parse(request.query.get("fieldSelector").unwrap_or_default(), info)?,
    })
}

pub fn get(
    server: &ApiServer,
    info: &ResourceInfo,
    ns: &str,
    name: &str,
) -> Result<Value, ApiError> {
    server
        .registry
        .get(info.resource(), ns, name)
        .map(|o| (*o).clone())
        .ok_or_else(|| ApiError::not_found(info.group, info.plural, name))
}

fn encode_continue(ns: &str, name: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(json!({"ns": ns, "name": name}).to_string())
}

fn decode_continue(token: &str) -> Result<(String, String), ApiError> {
    let bad = || {
        ApiError::bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| bad())?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    Ok((
        value["ns"].as_str().ok_or_else(bad)?.to_string(),
        value["name"].as_str().ok_or_else(bad)?.to_string(),
    ))
}

/// A `<Kind>List`, filtered by selectors, paged by `limit`/`continue`.
pub fn list(
    server: &ApiServer,
    info: &ResourceInfo,
    ns: Option<&str>,
    request: &ApiRequest,
) -> Result<Value, ApiError> {
    let selectors = selectors(info, request)?;
    let (items, rv) = server.registry.list(info.resource(), ns);
    let limit: usize = request
        .query
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|l| *l > 0)
        .unwrap_or(usize::MAX);
    let after = request
        .query
        .get("continue")
        .filter(|c| !c.is_empty())
        .map(decode_continue)
        .transpose()?;
    let key = |o: &Value| -> (String, String) {
        (
            o.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            object_name(o).unwrap_or_default().to_string(),
        )
    };
    let mut matching = items
        .iter()
        .filter(|o| after.as_ref().is_none_or(|a| key(o) > *a))
        .filter(|o| selectors.matches(info, o));
    let page: Vec<std::borrow::Cow<Value>> = matching
        .by_ref()
        .take(limit)
        .map(|o| presented(server, info, o))
        .collect();
    let remaining = matching.count();
    let mut metadata = json!({"resourceVersion": rv.to_string()});
    if remaining > 0 {
        if let Some(last) = page.last() {
            let (lns, lname) = key(last);
            metadata["continue"] = json!(encode_continue(&lns, &lname));
            metadata["remainingItemCount"] = json!(remaining);
        }
    }
    Ok(
        json!({"kind": info.list_kind(), "apiVersion": info.api_version(), "metadata": metadata, "items": page}),
    )
}

/// Sets `kind`/`apiVersion` and checks or fills `metadata.namespace` against the path.
fn normalize_identity(info: &ResourceInfo, ns: &str, object: &mut Value) -> Result<(), ApiError> {
    if let Some(kind) = object.get("kind").and_then(Value::as_str) {
        if !kind.is_empty() && kind != info.kind {
            return Err(ApiError::bad_request(format!(
                "the kind of the provided object ({kind}) does not match the resource ({})",
                info.kind
            )));
        }
    }
    object["kind"] = json!(info.kind);
    object["apiVersion"] = json!(info.api_version());
    if !object.get("metadata").is_some_and(Value::is_object) {
        object["metadata"] = json!({});
    }
    let meta = object["metadata"].as_object_mut().unwrap();
    if info.namespaced {
        match meta.get("namespace").and_then(Value::as_str) {
            Some(body_ns) if !body_ns.is_empty() && body_ns != ns => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ => {
                meta.insert("namespace".into(), json!(ns));
            }
        }
    } else {
        meta.remove("namespace");
    }
    Ok(())
}

/// Creates an object with the apiserver's semantics: identity, generateName, admission
/// (validation, defaulting, priority, service accounts), then storage.
pub fn create_internal(
    server: &ApiServer,
    info: &'static ResourceInfo,
    ns: &str,
    mut object: Value,
    opts: &CreateOptions,
) -> Result<Arc<Value>, ApiError> {
    normalize_identity(info, ns, &mut object)?;
    let meta = object["metadata"].as_object_mut().unwrap();
    if meta
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .is_empty()
    {
        match meta
            .get("generateName")
            .and_then(Value::as_str)
            .filter(|g| !g.is_empty())
        {
            Some(prefix) => {
                let name = format!("{prefix}{}", admission::random_suffix());
                meta.insert("name".into(), json!(name));
            }
            None => {
                return Err(ApiError::invalid(
                    info.group,
                    info.kind,
                    "",
                    &[(
                        "metadata.name".into(),
                        "Required value: name or generateName is required".into(),
                    )],
                ))
            }
        }
    }
    for field in [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "selfLink",
    ] {
        meta.remove(field);
    }
    if opts.strict {
        crate::crd::check_strict(info, &object)?;
    }
    admission::admit_create(server, info, ns, &mut object)?;
    opts.check_escalation(server, info, ns, &object)?;
    // ResourceQuota, the last plugin: its guard is held until the object is stored, so two
    // creates cannot both take a quota's last slot (`admission::quota`).
    let _quota = admission::quota::admit_create(server, info, ns, &object)?;
    // `fieldManager` is accepted; managedFields are not tracked.
    if opts.dry_run {
        let meta = object["metadata"].as_object_mut().unwrap();
        meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
        meta.insert("creationTimestamp".into(), json!(now_rfc3339()));
        return Ok(Arc::new(object));
    }
    let store_ns = if info.namespaced { ns } else { "" };
    crate::crd::to_storage(info, &mut object);
    let created = server
        .registry
        .create(info.resource(), store_ns, object)
        .map_err(|e| rename_error(e, info))?;
    admission::after_create(server, info, &created)?;
    Ok(created)
}

/// The registry names resources by plural only; errors name them as the apiserver does.
fn rename_error(mut err: ApiError, info: &ResourceInfo) -> ApiError {
    if !info.group.is_empty() && err.code != 422 {
        let plain = format!("{} \"", info.plural);
        if err.message.starts_with(&plain) {
            err.message = err
                .message
                .replacen(&plain, &format!("{} \"", info.qualified()), 1);
        }
    }
    err
}

/// A write to the status subresource: `next`'s status and resourceVersion over `current`'s
/// everything else. `next` is reused, and a part is copied from `current` only where the
/// two differ: status writes are most of a busy cluster's writes (every kubelet report),
/// and they rarely touch anything but the status.
fn status_update(current: &Value, mut next: Value) -> Value {
    let (Some(old), Some(new)) = (current.as_object(), next.as_object_mut()) else {
        let mut merged = current.clone();
        merged["status"] = next.get("status").cloned().unwrap_or(json!({}));
        return merged;
    };
    new.retain(|key, _| key == "status" || old.contains_key(key));
    for (key, value) in old {
        match key.as_str() {
            "status" => {}
            "metadata" => {
                let rv = new
                    .get("metadata")
                    .and_then(|m| m.get("resourceVersion"))
                    .cloned();
                let same = rv.is_some()
                    && new
                        .get("metadata")
                        .is_some_and(|m| same_except(m, value, "resourceVersion"));
                if !same {
                    let mut metadata = value.clone();
                    if let Some(rv) = rv {
                        metadata["resourceVersion"] = rv;
                    }
                    new.insert(key.clone(), metadata);
                }
            }
            _ => {
                if new.get(key) != Some(value) {
                    new.insert(key.clone(), value.clone());
                }
            }
        }
    }
    new.entry("status").or_insert_with(|| json!({}));
    next
}

/// Whether two objects are equal but for the field `except`.
fn same_except(a: &Value, b: &Value, except: &str) -> bool {
    match (a.as_object(), b.as_object()) {
        (Some(a), Some(b)) => {
            let len =
                |m: &serde_json::Map<String, Value>| m.len() - usize::from(m.contains_key(except));
            len(a) == len(b)
                && a.iter()
                    .filter(|(k, _)| *k != except)
                    .all(|(k, v)| b.get(k) == Some(v))
        }
        _ => a == b,
    }
}

/// Builds the object an update stores from the current one and the client's: the main
/// resource keeps the stored status, the `status` subresource keeps everything else, and
/// system metadata (deletion state) is never taken from the client.
pub fn merge_for_update(
    info: &ResourceInfo,
    current: &Value,
    mut next: Value,
    sub: Option<&str>,
) -> Value {
    match sub {
        Some("status") => return status_update(current, next),
        Some("finalize") => {
            let mut merged = current.clone();
            merged["spec"]["finalizers"] = next
                .pointer("/spec/finalizers")
                .cloned()
                .unwrap_or(json!([]));
            if let Some(rv) = next.pointer("/metadata/resourceVersion") {
                merged["metadata"]["resourceVersion"] = rv.clone();
            }
            return merged;
        }
        _ => {}
    }
    if info.has_status() {
        match current.get("status") {
            Some(status) => next["status"] = status.clone(),
            None => {
                if let Some(map) = next.as_object_mut() {
                    map.remove("status");
                }
            }
        }
    }
    if info.plural == "namespaces" && info.group.is_empty() {
        // spec.finalizers changes only through the finalize subresource.
        next["spec"]["finalizers"] = current
            .pointer("/spec/finalizers")
            .cloned()
            .unwrap_or(json!([]));
    }
    for field in ["deletionTimestamp", "deletionGracePeriodSeconds"] {
        match current.pointer(&format!("/metadata/{field}")) {
            Some(v) => next["metadata"][field] = v.clone(),
            None => {
                if let Some(meta) = next.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.remove(field);
                }
            }
        }
    }
    next
}

fn stored_rv(object: &Value) -> String {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// Validates, admits and stores `next` over `current` (compare-and-swap on the current
/// resourceVersion), then completes a deletion the update made possible.
#[allow(clippy::too_many_arguments)]
pub(crate) fn store_update(
    server: &ApiServer,
    info: &'static ResourceInfo,
    ns: &str,
    name: &str,
    sub: Option<&str>,
    current: &Value,
    mut next: Value,
    opts: &CreateOptions,
) -> Result<std::sync::Arc<Value>, ApiError> {
    if let Some(body_name) = next.pointer("/metadata/name").and_then(Value::as_str) {
        if body_name != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
    }
    next["metadata"]["name"] = json!(name);
    // A status update keeps the stored spec (`merge_for_update`), so the spec's defaulting
    // and immutability rules have nothing to check, as kube-apiserver's status strategies
    // validate only the status.
    if opts.strict {
        crate::crd::check_strict(info, &next)?;
    }
    if sub != Some("status") {
        admission::admit_update(server, info, current, &mut next)?;
        opts.check_escalation(server, info, ns, &next)?;
    } else {
        // A custom resource's status is checked against its schema too.
        crate::crd::admit_object(info, false, &mut next)?;
    }
    if opts.dry_run {
        return Ok(std::sync::Arc::new(next));
    }
    let store_ns = if info.namespaced { ns } else { "" };
    crate::crd::to_storage(info, &mut next);
    let stored = server
        .registry
        .update(info.resource(), store_ns, name, next)
        .map_err(|e| rename_error(e, info))?;
    if crate::crd::is_crd(info) {
        crate::crd::install(&stored);
    }
    deletion::remove_if_finalized(server, info, store_ns, &stored)
}

/// PUT: replace the object (or its status / namespace finalizers).
pub fn update_internal(
    server: &ApiServer,
    info: &'static ResourceInfo,
    ns: &str,
    name: &str,
    sub: Option<&str>,
    mut body: Value,
    opts: &CreateOptions,
) -> Result<Value, ApiError> {
    normalize_identity(info, ns, &mut body)?;
    let client_rv = stored_rv(&body);
    for _ in 0..16 {
        let current = get(server, info, ns, name)?;
        let mut next = merge_for_update(info, &current, body.clone(), sub);
        if client_rv.is_empty() {
            // Unconditional update: compare-and-swap on what we read, retry on a race.
            next["metadata"]["resourceVersion"] = json!(stored_rv(&current));
        }
        match store_update(server, info, ns, name, sub, &current, next, opts) {
            Err(e) if e.reason == "Conflict" && client_rv.is_empty() => continue,
            other => return other.map(std::sync::Arc::unwrap_or_clone),
        }
    }
    Err(ApiError::conflict(info.group, info.plural, name))
}

/// PATCH in any of the four patch types. Returns the object and the HTTP code (201 when
/// server-side apply created it).
#[allow(clippy::too_many_arguments)]
pub fn patch_internal(
    server: &ApiServer,
    info: &'static ResourceInfo,
    ns: &str,
    name: &str,
    sub: Option<&str>,
    content_type: &str,
    body: &[u8],
    force: bool,
    opts: &CreateOptions,
) -> Result<(Value, u16), ApiError> {
    let _ = force; // without field ownership tracking there are no conflicts to force
    let kind = patch::PatchType::from_content_type(content_type)?;
    if kind == patch::PatchType::Strategic && crate::crd::served(info).is_some() {
        // Custom resources have no patch strategies, as in kube-apiserver.
        return Err(ApiError::unsupported_media_type(
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
        ));
    }
    for _ in 0..16 {
        let Some(current) = server.registry.get(info.resource(), ns, name) else {
            if kind == patch::PatchType::Apply {
                let mut object = patch::parse_apply_body(body)?;
                let body_name = object
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or(name)
                    .to_string();
                if body_name != name {
                    return Err(ApiError::bad_request(format!(
                        "the name of the object ({body_name}) does not match the name on the URL ({name})"
                    )));
                }
                object["metadata"]["name"] = json!(name);
                return match create_internal(server, info, ns, object, opts) {
                    Ok(created) => Ok((Value::clone(&created), 201)),
                    Err(e) if e.reason == "AlreadyExists" => continue,
                    Err(e) => Err(e),
                };
            }
            return Err(ApiError::not_found(info.group, info.plural, name))
                .map_err(|e| rename_error(e, info));
        };
        let current = (*current).clone();
        let mut patched = patch::apply(kind, &current, body, info)?;
        if kind == patch::PatchType::Apply {
            normalize_identity(info, ns, &mut patched)?;
        }
        let current_rv = stored_rv(&current);
        let patched_rv = stored_rv(&patched);
        // A patch that sets resourceVersion is the client's precondition (Spark's JSON patch).
        let precondition = !patched_rv.is_empty() && patched_rv != current_rv;
        if precondition {
            return Err(rename_error(
                ApiError::conflict(info.group, info.plural, name),
                info,
            ));
        }
        patched["metadata"]["resourceVersion"] = json!(current_rv);
        let next = merge_for_update(info, &current, patched, sub);
        match store_update(server, info, ns, name, sub, &current, next, opts) {
            Err(e) if e.reason == "Conflict" => continue,
            Ok(object) => return Ok((std::sync::Arc::unwrap_or_clone(object), 200)),
            Err(e) => return Err(e),
        }
    }
    Err(ApiError::conflict(info.group, info.plural, name))
}

/// `POST serviceaccounts/<name>/token` (TokenRequest).
fn token_request(
    server: &ApiServer,
    ns: &str,
    name: &str,
    request: &ApiRequest,
) -> Result<Value, ApiError> {
    let sa = get(server, &resources::SERVICE_ACCOUNTS, ns, name)?;
    let body = if request.body.is_empty() {
        json!({})
    } else {
        parse_body(&request.body, request.content_type())?
    };
    let audiences: Vec<String> = body
        .pointer("/spec/audiences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let expiration = body
        .pointer("/spec/expirationSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(3600);
    if expiration < 600 {
        return Err(ApiError::invalid(
            "authentication.k8s.io",
            "TokenRequest",
            name,
            &[(
                "spec.expirationSeconds".into(),
                "Invalid value: may not specify a duration less than 10 minutes".into(),
            )],
        ));
    }
    let bound = body
        .pointer("/spec/boundObjectRef")
        .filter(|r| r.get("kind").and_then(Value::as_str) == Some("Pod"));
    let bound_pod = match bound {
        Some(reference) => {
            let pod_name = reference
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let pod = get(server, &resources::PODS, ns, pod_name)?;
            let uid = pod
                .pointer("/metadata/uid")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            Some((pod_name.to_string(), uid))
        }
        None => None,
    };
    let sa_uid = sa.pointer("/metadata/uid").and_then(Value::as_str);
    let token = server.tokens.issue_with_uid(
        ns,
        name,
        sa_uid,
        &audiences,
        bound_pod.as_ref().map(|(n, u)| (n.as_str(), u.as_str())),
        expiration,
    );
    let expires = chrono::Utc::now() + chrono::Duration::seconds(expiration);
    let mut spec = body.get("spec").cloned().unwrap_or(json!({}));
    spec["audiences"] = json!(if audiences.is_empty() {
        vec![server.tokens.issuer().to_string()]
    } else {
        audiences
    });
    spec["expirationSeconds"] = json!(expiration);
    Ok(json!({
        "kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": null},
        "spec": spec,
        "status": {"token": token, "expirationTimestamp": expires.format("%Y-%m-%dT%H:%M:%SZ").to_string()}
    }))
}

/// `POST pods/<name>/binding`: assigns a node, as a scheduler does.
fn binding(
    server: &ApiServer,
    ns: &str,
    name: &str,
    request: &ApiRequest,
) -> Result<Value, ApiError> {
    let body = parse_body(&request.body, request.content_type())?;
    let node = body
        .pointer("/target/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if node.is_empty() {
        return Err(ApiError::invalid(
            "",
            "Binding",
            name,
            &[("target.name".into(), "Required value".into())],
        ));
    }
    let uid = body.pointer("/metadata/uid").and_then(Value::as_str);
    bind_pod(server, ns, name, uid, &node)?;
    Ok(
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    )
}

/// The binding REST's effect: `spec.nodeName` set once (never on a pod being deleted, and
/// only on the pod with `uid` when given), the `PodScheduled=True` condition, a pending
/// nomination cleared and the phase `Pending` until the kubelet reports.
pub(crate) fn bind_pod(
    server: &ApiServer,
    ns: &str,
    name: &str,
    uid: Option<&str>,
    node: &str,
) -> Result<Arc<Value>, ApiError> {
    let now = now_rfc3339();
    let bound = server.registry.modify(resources::PODS.resource(), ns, name, |pod| {
        if let Some(uid) = uid {
            if pod.pointer("/metadata/uid").and_then(Value::as_str) != Some(uid) {
                let mut err = ApiError::conflict("", "pods", name);
                err.message = format!("Operation cannot be fulfilled on pods/binding \"{name}\": Precondition failed: UID in precondition: {uid}");
                return Err(err);
            }
        }
        if let Some(existing) = pod.pointer("/spec/nodeName").and_then(Value::as_str).filter(|n| !n.is_empty()) {
            let mut err = ApiError::conflict("", "pods", name);
            err.message = format!("Operation cannot be fulfilled on pods/binding \"{name}\": pod {name} is already assigned to node \"{existing}\"");
            return Err(err);
        }
        if pod.pointer("/metadata/deletionTimestamp").is_some() {
            let mut err = ApiError::conflict("", "pods", name);
            err.message = format!("Operation cannot be fulfilled on pods/binding \"{name}\": pod {name} is being deleted, cannot be assigned to a host");
            return Err(err);
        }
        pod["spec"]["nodeName"] = json!(node);
        crate::conditions::set(
            pod,
            json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now}),
        );
        if let Some(status) = pod["status"].as_object_mut() {
            status.remove("nominatedNodeName");
        }
        if pod["status"]["phase"].is_null() {
            pod["status"]["phase"] = json!("Pending");
        }
        Ok(())
    })?;
    Ok(bound)
}

/// `POST pods/<name>/eviction` (a policy/v1 Eviction): see [`crate::pdb::evict`].
fn eviction(
    server: &ApiServer,
    ns: &str,
    name: &str,
    request: &ApiRequest,
) -> Result<Value, ApiError> {
    let body = parse_body(&request.body, request.content_type())?;
    if let Some(body_name) = body.pointer("/metadata/name").and_then(Value::as_str) {
        if body_name != name {
            return Err(ApiError::bad_request(
                "name in URL does not match name in Eviction object",
            ));
        }
    }
    let options = body
        .get("deleteOptions")
        .filter(|o| o.is_object())
        .map(|o| o.to_string())
        .unwrap_or_default();
    let opts = deletion::DeleteOptions::parse(&super::Query::default(), options.as_bytes())?;
    crate::pdb::evict(server, ns, name, None, &opts)?;
    Ok(
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
    )
}

/// SelfSubjectAccessReview, SubjectAccessReview and TokenReview.
fn reviews(server: &ApiServer, request: &ApiRequest) -> Result<Value, ApiError> {
    use crate::auth::rbac::{allowed, Attributes};
    let mut body = parse_body(&request.body, request.content_type())?;
    let info = request.path.info;
    body["kind"] = json!(info.kind);
    body["apiVersion"] = json!(info.api_version());
    if info.plural == "tokenreviews" {
        let token = body
            .pointer("/spec/token")
            .and_then(Value::as_str)
            .unwrap_or_default();
        body["status"] = match super::authenticate_token(server, token) {
            Ok(user) => {
                json!({"authenticated": true, "user": {"username": user.name, "groups": user.groups},
                               "audiences": [server.tokens.issuer()]})
            }
            Err(_) => json!({"authenticated": false, "error": "invalid bearer token"}),
        };
        return Ok(body);
    }
    let user = if info.plural == "subjectaccessreviews" {
        crate::auth::UserInfo {
            name: body
                .pointer("/spec/user")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            groups: body
                .pointer("/spec/groups")
                .and_then(Value::as_array)
                .map(|g| {
                    g.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
            ..Default::default()
        }
    } else {
        request.user.clone()
    };
    let text = |p: &str| {
        body.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let attrs = if body.pointer("/spec/nonResourceAttributes").is_some() {
        Attributes {
            verb: text("/spec/nonResourceAttributes/verb"),
            path: text("/spec/nonResourceAttributes/path"),
            ..Default::default()
        }
    } else {
        Attributes {
            verb: text("/spec/resourceAttributes/verb"),
            api_group: text("/spec/resourceAttributes/group"),
            resource: text("/spec/resourceAttributes/resource"),
            subresource: text("/spec/resourceAttributes/subresource"),
            name: text("/spec/resourceAttributes/name"),
            namespace: text("/spec/resourceAttributes/namespace"),
            path: String::new(),
        }
    };
    let ok = allowed(&server.registry, &user, &attrs);
    body["status"] = if ok {
        json!({"allowed": true, "reason": "allowed by RBAC"})
    } else {
        json!({"allowed": false})
    };
    Ok(body)
}

/// An mpsc receiver as a Stream.
pub fn tokio_stream_from<T: Send + 'static>(
    rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send {
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_keeps_status_and_deletion_state() {
        let current = json!({"metadata": {"name": "p", "deletionTimestamp": "t"}, "spec": {"a": 1}, "status": {"phase": "Running"}});
        let next =
            json!({"metadata": {"name": "p"}, "spec": {"a": 2}, "status": {"phase": "Failed"}});
        let merged = merge_for_update(&resources::PODS, &current, next.clone(), None);
        assert_eq!(merged["status"]["phase"], "Running");
        assert_eq!(merged["spec"]["a"], 2);
        assert_eq!(merged["metadata"]["deletionTimestamp"], "t");
        let status = merge_for_update(&resources::PODS, &current, next, Some("status"));
        assert_eq!(status["status"]["phase"], "Failed");
        assert_eq!(status["spec"]["a"], 1);
    }

    #[test]
    fn continue_tokens_round_trip() {
        assert_eq!(
            decode_continue(&encode_continue("ns", "x")).unwrap(),
            ("ns".into(), "x".into())
        );
        assert_eq!(decode_continue("%%%").unwrap_err().code, 400);
    }
}
