//! RBAC: Roles and ClusterRoles, bound by RoleBindings and ClusterRoleBindings, evaluated
//! the way the apiserver's RBAC authorizer does. `system:masters` bypasses it, as in
//! Kubernetes.

use serde_json::{json, Value};

use super::UserInfo;
use crate::error::ApiError;
use crate::registry::Registry;
use crate::resources::{CLUSTER_ROLES, CLUSTER_ROLE_BINDINGS, ROLES, ROLE_BINDINGS};

/// What a request wants to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes {
    pub verb: String,
    pub api_group: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    /// Empty for cluster-scoped requests and all-namespace lists.
    pub namespace: String,
    /// Non-resource requests (`/api`, `/healthz`); empty for resource requests.
    pub path: String,
}

fn strings(rule: &Value, key: &str) -> Vec<String> {
    rule.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether one PolicyRule allows the request.
pub fn rule_allows(rule: &Value, attrs: &Attributes) -> bool {
    let verbs = strings(rule, "verbs");
    if !verbs.iter().any(|v| v == "*" || *v == attrs.verb) {
        return false;
    }
    if !attrs.path.is_empty() {
        return strings(rule, "nonResourceURLs").iter().any(|u| {
            u == "*"
                || *u == attrs.path
                || (u.ends_with('*') && attrs.path.starts_with(u.trim_end_matches('*')))
        });
    }
    if !strings(rule, "apiGroups")
        .iter()
        .any(|g| g == "*" || *g == attrs.api_group)
    {
        return false;
    }
    let combined = if attrs.subresource.is_empty() {
        attrs.resource.clone()
    } else {
        format!("{}/{}", attrs.resource, attrs.subresource)
    };
    let resource_ok = strings(rule, "resources").iter().any(|r| {
        r == "*"
            || *r == combined
            || (!attrs.subresource.is_empty() && *r == format!("*/{}", attrs.subresource))
    });
    if !resource_ok {
        return false;
    }
    let names = strings(rule, "resourceNames");
    names.is_empty() || names.contains(&attrs.name)
}

/// Whether a binding's subject list names the user. `binding_namespace` is the default
/// namespace of ServiceAccount subjects in RoleBindings.
pub fn subjects_match(binding: &Value, user: &UserInfo, binding_namespace: &str) -> bool {
    let Some(subjects) = binding.get("subjects").and_then(Value::as_array) else {
        return false;
    };
    subjects.iter().any(|s| {
        let name = s.get("name").and_then(Value::as_str).unwrap_or_default();
        match s.get("kind").and_then(Value::as_str) {
            Some("User") => name == user.name,
            Some("Group") => user.groups.iter().any(|g| g == name),
            Some("ServiceAccount") => {
                let ns = s
                    .get("namespace")
                    .and_then(Value::as_str)
                    .filter(|n| !n.is_empty())
                    .unwrap_or(binding_namespace);
                user.name == format!("system:serviceaccount:{ns}:{name}")
            }
            _ => false,
        }
    })
}

/// The rules the binding's roleRef grants (empty when the role does not exist).
fn role_rules(registry: &Registry, binding: &Value, namespace: &str) -> Vec<Value> {
    let kind = binding
        .pointer("/roleRef/kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let name = binding
        .pointer("/roleRef/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let role = match kind {
        "ClusterRole" => registry.get(CLUSTER_ROLES.resource(), "", name),
        "Role" => registry.get(ROLES.resource(), namespace, name),
        _ => None,
    };
    role.and_then(|r| r.get("rules").and_then(Value::as_array).cloned())
        .unwrap_or_default()
}

/// Whether RBAC allows the request.
pub fn allowed(registry: &Registry, user: &UserInfo, attrs: &Attributes) -> bool {
    if user.is_master() {
        return true;
    }
    // Discovery, OpenAPI and version are readable by every authenticated user
    // (system:discovery, system:public-info-viewer).
    if !attrs.path.is_empty() && attrs.verb == "get" {
        return true;
    }
    // Like system:basic-user: anyone may ask what they may do.
    if attrs.api_group == "authorization.k8s.io"
        && attrs.resource == "selfsubjectaccessreviews"
        && attrs.verb == "create"
    {
        return true;
    }
    // EKS access policies (access entries), as EKS's authorizer grants them beside RBAC: a
    // cluster-scoped association everywhere, a namespace-scoped one in its namespaces only.
    for association in &user.access_policies {
        let in_scope = association.namespaces.is_empty()
            || (!attrs.namespace.is_empty() && association.namespaces.contains(&attrs.namespace));
        if in_scope
            && super::aws_iam::access_policy_rules(&association.policy_arn)
                .unwrap_or_default()
                .iter()
                .any(|r| rule_allows(r, attrs))
        {
            return true;
        }
    }
    let (bindings, _) = registry.list(CLUSTER_ROLE_BINDINGS.resource(), None);
    for binding in bindings {
        if subjects_match(&binding, user, "")
            && role_rules(registry, &binding, "")
                .iter()
                .any(|r| rule_allows(r, attrs))
        {
            return true;
        }
    }
    if !attrs.namespace.is_empty() {
        let (bindings, _) = registry.list(ROLE_BINDINGS.resource(), Some(&attrs.namespace));
        for binding in bindings {
            if subjects_match(&binding, user, &attrs.namespace)
                && role_rules(registry, &binding, &attrs.namespace)
                    .iter()
                    .any(|r| rule_allows(r, attrs))
            {
                return true;
            }
        }
    }
    false
}

/// The apiserver's 403 message for a denied request.
pub fn forbidden_message(user: &UserInfo, attrs: &Attributes) -> String {
    if !attrs.path.is_empty() {
        return format!(
            "forbidden: User \"{}\" cannot {} path \"{}\"",
            user.name, attrs.verb, attrs.path
        );
    }
    let mut resource = attrs.resource.clone();
    if !attrs.api_group.is_empty() {
        resource = format!("{resource}.{}", attrs.api_group);
    }
    let subject = if attrs.name.is_empty() {
        resource
    } else {
        format!("{resource} \"{}\"", attrs.name)
    };
    let combined = if attrs.subresource.is_empty() {
        attrs.resource.clone()
    } else {
        format!("{}/{}", attrs.resource, attrs.subresource)
    };
    let scope = if attrs.namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace \"{}\"", attrs.namespace)
    };
    format!(
        "{subject} is forbidden: User \"{}\" cannot {} resource \"{combined}\" in API group \"{}\" {scope}",
        user.name, attrs.verb, attrs.api_group
    )
}

/// `Ok` when allowed, else 403 Forbidden in the apiserver's words.
pub fn authorize(registry: &Registry, user: &UserInfo, attrs: &Attributes) -> Result<(), ApiError> {
    if allowed(registry, user, attrs) {
        return Ok(());
    }
    let mut err = ApiError::forbidden(forbidden_message(user, attrs));
    if attrs.path.is_empty() {
        let mut details = json!({"kind": attrs.resource});
        if !attrs.name.is_empty() {
            details["name"] = json!(attrs.name);
        }
        if !attrs.api_group.is_empty() {
            details["group"] = json!(attrs.api_group);
        }
        err.details = Some(details);
    }
    Err(err)
}

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// RBAC's escalation check, on a write of a Role, ClusterRole, RoleBinding or
/// ClusterRoleBinding (`plural` of the RBAC group; anything else passes): nobody grants
/// what they do not hold. The rules of a role written, or of the role a binding refers
/// to, must each be allowed to `user` where they would apply (`namespace`; `""` for
/// cluster-scoped objects) — unless `user` may `escalate` that role kind, or `bind` the
/// role referred to, as in kube-apiserver. A binding to a role that does not exist is
/// refused as not found (there is nothing to compare), unless `bind` is granted.
pub fn check_escalation(
    registry: &Registry,
    user: &UserInfo,
    plural: &str,
    namespace: &str,
    object: &Value,
) -> Result<(), ApiError> {
    if user.is_master() {
        return Ok(());
    }
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let may = |verb: &str, resource: &str, target: &str| {
        allowed(
            registry,
            user,
            &Attributes {
                verb: verb.into(),
                api_group: RBAC_GROUP.into(),
                resource: resource.into(),
                name: target.into(),
                namespace: namespace.into(),
                ..Default::default()
            },
        )
    };
    let rules = match plural {
        "roles" | "clusterroles" => {
            if may("escalate", plural, name) {
                return Ok(());
            }
            object
                .get("rules")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        }
        "rolebindings" | "clusterrolebindings" => {
            let kind = object
                .pointer("/roleRef/kind")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let role = object
                .pointer("/roleRef/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let (resource, role_ns) = match kind {
                "ClusterRole" => ("clusterroles", ""),
                _ => ("roles", namespace),
            };
            if may("bind", resource, role) {
                return Ok(());
            }
            let Some(stored) = registry.get(
                match resource {
                    "clusterroles" => CLUSTER_ROLES.resource(),
                    _ => ROLES.resource(),
                },
                role_ns,
                role,
            ) else {
                return Err(ApiError::not_found(RBAC_GROUP, resource, role));
            };
            stored
                .get("rules")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        }
        _ => return Ok(()),
    };
    let missing: Vec<String> = rules
        .iter()
        .flat_map(|rule| uncovered(registry, user, namespace, rule))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let groups: Vec<String> = user.groups.iter().map(|g| format!("{g:?}")).collect();
    let mut err = ApiError::forbidden(format!(
        "{plural}.{RBAC_GROUP} {name:?} is forbidden: user {:?} (groups=[{}]) is attempting to grant RBAC permissions not currently held:\n{}",
        user.name,
        groups.join(" "),
        missing.join("\n")
    ));
    err.details = Some(json!({"name": name, "group": RBAC_GROUP, "kind": plural}));
    Err(err)
}

/// The parts of `rule` that `user` does not hold in `namespace`, in kube-apiserver's
/// compact notation (`{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}`), one per
/// group, resource and name, with the verbs missing there. A `*` is held only by a `*`.
fn uncovered(registry: &Registry, user: &UserInfo, namespace: &str, rule: &Value) -> Vec<String> {
    let quoted = |items: &[String]| {
        items
            .iter()
            .map(|i| format!("{i:?}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let verbs = strings(rule, "verbs");
    let urls = strings(rule, "nonResourceURLs");
    let mut out = Vec::new();
    for url in &urls {
        let missing: Vec<String> = verbs
            .iter()
            .filter(|verb| {
                !allowed(
                    registry,
                    user,
                    &Attributes {
                        verb: verb.to_string(),
                        path: url.clone(),
                        ..Default::default()
                    },
                )
            })
            .cloned()
            .collect();
        if !missing.is_empty() {
            out.push(format!(
                "{{NonResourceURLs:[{}], Verbs:[{}]}}",
                quoted(std::slice::from_ref(url)),
                quoted(&missing)
            ));
        }
    }
    if !urls.is_empty() {
        return out;
    }
    let names = strings(rule, "resourceNames");
    let targets: Vec<String> = if names.is_empty() {
        vec![String::new()]
    } else {
        names
    };
    for group in strings(rule, "apiGroups") {
        for resource in strings(rule, "resources") {
            let (plural, sub) = resource.split_once('/').unwrap_or((&resource, ""));
            for target in &targets {
                let missing: Vec<String> = verbs
                    .iter()
                    .filter(|verb| {
                        !allowed(
                            registry,
                            user,
                            &Attributes {
                                verb: verb.to_string(),
                                api_group: group.clone(),
                                resource: plural.to_string(),
                                subresource: sub.to_string(),
                                name: target.clone(),
                                namespace: namespace.to_string(),
                                path: String::new(),
                            },
                        )
                    })
                    .cloned()
                    .collect();
                if missing.is_empty() {
                    continue;
                }
                let names = if target.is_empty() {
                    String::new()
                } else {
                    format!(" ResourceNames:[{}],", quoted(std::slice::from_ref(target)))
                };
                out.push(format!(
                    "{{APIGroups:[{}], Resources:[{}],{names} Verbs:[{}]}}",
                    quoted(std::slice::from_ref(&group)),
                    quoted(std::slice::from_ref(&resource)),
                    quoted(&missing)
                ));
            }
        }
    }
    out
}

/// The default ClusterRoles: `cluster-admin`, and the user-facing `admin`, `edit`, `view`
/// (trimmed to the resources this cluster serves).
pub fn default_cluster_roles() -> Vec<(&'static str, Value)> {
    let read = json!(["get", "list", "watch"]);
    let write = json!(["create", "delete", "deletecollection", "patch", "update"]);
    let core_view = json!([
        "configmaps",
        "endpoints",
        "events",
        // Quotas and limit ranges are readable by view, edit and admin and writable by
        // none of them (a namespace's users cannot raise their own quota).
        "limitranges",
        "persistentvolumeclaims",
        "pods",
        "pods/log",
        "pods/status",
        "resourcequotas",
        "resourcequotas/status",
        "services",
        "services/status",
        "serviceaccounts",
        "namespaces",
        "namespaces/status"
    ]);
    let core_edit = json!([
        "configmaps",
        "endpoints",
        "events",
        "persistentvolumeclaims",
        "pods",
        "secrets",
        "services",
        "serviceaccounts",
        "serviceaccounts/token"
    ]);
    let view = json!([
        {"apiGroups": [""], "resources": core_view, "verbs": read},
        {"apiGroups": ["batch"], "resources": ["jobs", "jobs/status"], "verbs": read},
        {"apiGroups": ["apps"], "resources": ["controllerrevisions", "daemonsets", "daemonsets/status",
            "deployments", "deployments/scale", "deployments/status", "replicasets", "replicasets/scale",
            "replicasets/status", "statefulsets", "statefulsets/scale", "statefulsets/status"], "verbs": read},
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": read},
        // metrics-server's `system:aggregated-metrics-reader`, aggregated into view, edit
        // and admin upstream.
        {"apiGroups": ["metrics.k8s.io"], "resources": ["pods", "nodes"], "verbs": read},
    ]);
    let mut edit = view.as_array().unwrap().clone();
    edit.push(json!({"apiGroups": [""], "resources": core_edit, "verbs": write}));
    edit.push(json!({"apiGroups": [""], "resources": ["secrets"], "verbs": read}));
    edit.push(json!({"apiGroups": ["batch"], "resources": ["jobs"], "verbs": write}));
    edit.push(json!({"apiGroups": ["apps"], "resources": ["daemonsets", "deployments", "deployments/rollback",
        "deployments/scale", "replicasets", "replicasets/scale", "statefulsets", "statefulsets/scale"], "verbs": write}));
    let mut admin = edit.clone();
    // Kubernetes' list, not `*`: that would include `escalate` and `bind`, letting a
    // namespace admin grant what it does not hold.
    admin.push(json!({"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"],
        "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]}));
    admin.push(json!({"apiGroups": ["authorization.k8s.io"], "resources": ["localsubjectaccessreviews"], "verbs": ["create"]}));
    vec![
        (
            "cluster-admin",
            json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, {"nonResourceURLs": ["*"], "verbs": ["*"]}]),
        ),
        ("admin", Value::Array(admin)),
        ("edit", Value::Array(edit)),
        ("view", view),
        (
            "system:aggregated-metrics-reader",
            json!([{"apiGroups": ["metrics.k8s.io"], "resources": ["pods", "nodes"], "verbs": ["get", "list", "watch"]}]),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(verb: &str, resource: &str, sub: &str, ns: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: ns.into(),
            ..Default::default()
        }
    }

    #[test]
    fn rules_match_verbs_groups_resources_and_names() {
        let rule =
            json!({"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list"]});
        assert!(rule_allows(&rule, &attrs("list", "pods", "", "a")));
        assert!(rule_allows(&rule, &attrs("get", "pods", "log", "a")));
        assert!(!rule_allows(&rule, &attrs("delete", "pods", "", "a")));
        assert!(!rule_allows(&rule, &attrs("get", "pods", "status", "a")));
        let mut batch = attrs("get", "jobs", "", "a");
        batch.api_group = "batch".into();
        assert!(!rule_allows(&rule, &batch));
        assert!(rule_allows(
            &json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}),
            &batch
        ));
        let named = json!({"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["x"], "verbs": ["get"]});
        let mut get_x = attrs("get", "configmaps", "", "a");
        get_x.name = "x".into();
        assert!(rule_allows(&named, &get_x));
        get_x.name = "y".into();
        assert!(!rule_allows(&named, &get_x));
        let star_sub = json!({"apiGroups": [""], "resources": ["*/status"], "verbs": ["get"]});
        assert!(rule_allows(&star_sub, &attrs("get", "pods", "status", "a")));
    }

    #[test]
    fn bindings_grant_within_their_namespace_only() {
        let registry = Registry::new();
        registry
            .create(ROLES.resource(), "a", json!({"metadata": {"name": "reader"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}]}))
            .unwrap();
        registry
            .create(ROLE_BINDINGS.resource(), "a", json!({"metadata": {"name": "b"},
                "roleRef": {"kind": "Role", "name": "reader", "apiGroup": "rbac.authorization.k8s.io"},
                "subjects": [{"kind": "ServiceAccount", "name": "default"}]}))
            .unwrap();
        let sa = UserInfo::service_account("a", "default");
        assert!(allowed(&registry, &sa, &attrs("list", "pods", "", "a")));
        assert!(!allowed(&registry, &sa, &attrs("list", "pods", "", "b")));
        assert!(!allowed(&registry, &sa, &attrs("list", "pods", "", "")));
        assert!(!allowed(
            &registry,
            &UserInfo::service_account("b", "default"),
            &attrs("list", "pods", "", "a")
        ));
        assert!(allowed(
            &registry,
            &UserInfo::admin(),
            &attrs("delete", "nodes", "", "")
        ));
    }

    /// A registry holding the ClusterRoles sparkyard creates at start.
    fn registry_with_default_cluster_roles() -> std::sync::Arc<Registry> {
        let registry = Registry::new();
        for (name, rules) in default_cluster_roles() {
            registry
                .create(
                    CLUSTER_ROLES.resource(),
                    "",
                    json!({"metadata": {"name": name}, "rules": rules}),
                )
                .unwrap();
        }
        registry
    }

    #[test]
    fn cluster_role_bindings_and_groups() {
        let registry = registry_with_default_cluster_roles();
        registry
            .create(
                CLUSTER_ROLE_BINDINGS.resource(),
                "",
                json!({"metadata": {"name": "v"},
                "roleRef": {"kind": "ClusterRole", "name": "view"},
                "subjects": [{"kind": "Group", "name": "system:serviceaccounts:ops"}]}),
            )
            .unwrap();
        assert!(allowed(
            &registry,
            &UserInfo::service_account("ops", "x"),
            &attrs("watch", "pods", "", "any")
        ));
        assert!(!allowed(
            &registry,
            &UserInfo::service_account("ops", "x"),
            &attrs("create", "pods", "", "any")
        ));
        assert!(!allowed(
            &registry,
            &UserInfo::service_account("dev", "x"),
            &attrs("get", "pods", "", "any")
        ));
    }

    #[test]
    fn nobody_grants_what_they_do_not_hold() {
        let registry = registry_with_default_cluster_roles();
        // a:default may manage roles and role bindings and read pods in a, nothing more
        // (not `*`, which would include `escalate` and `bind`).
        registry
            .create(
                ROLES.resource(),
                "a",
                json!({"metadata": {"name": "binder"}, "rules": [
                {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["rolebindings", "roles"],
                 "verbs": ["create", "get", "list", "update", "patch", "delete"]},
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}]}),
            )
            .unwrap();
        registry
            .create(ROLE_BINDINGS.resource(), "a", json!({"metadata": {"name": "binder"},
                "roleRef": {"kind": "Role", "name": "binder", "apiGroup": "rbac.authorization.k8s.io"},
                "subjects": [{"kind": "ServiceAccount", "name": "default"}]}))
            .unwrap();
        let sa = UserInfo::service_account("a", "default");
        let binding = |kind: &str, role: &str| {
            json!({"metadata": {"name": "mine"}, "roleRef": {"kind": kind, "name": role, "apiGroup": RBAC_GROUP},
                "subjects": [{"kind": "ServiceAccount", "name": "default"}]})
        };
        let err = check_escalation(
            &registry,
            &sa,
            "rolebindings",
            "a",
            &binding("ClusterRole", "cluster-admin"),
        )
        .unwrap_err();
        assert_eq!((err.code, err.reason), (403, "Forbidden"));
        assert_eq!(
            err.message,
            "rolebindings.rbac.authorization.k8s.io \"mine\" is forbidden: user \"system:serviceaccount:a:default\" (groups=[\"system:serviceaccounts\" \"system:serviceaccounts:a\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"*\"], Resources:[\"*\"], Verbs:[\"*\"]}\n{NonResourceURLs:[\"*\"], Verbs:[\"*\"]}"
        );
        // What it holds it may pass on; a role with more it may neither write nor bind.
        let reader = json!({"metadata": {"name": "reader"}, "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]});
        assert_eq!(
            check_escalation(&registry, &sa, "roles", "a", &reader),
            Ok(())
        );
        assert_eq!(
            check_escalation(
                &registry,
                &sa,
                "rolebindings",
                "a",
                &binding("Role", "binder")
            ),
            Ok(())
        );
        let secrets = json!({"metadata": {"name": "s"}, "rules": [{"apiGroups": [""], "resources": ["secrets", "pods"],
            "resourceNames": ["x"], "verbs": ["get", "delete"]}]});
        let err = check_escalation(&registry, &sa, "roles", "a", &secrets).unwrap_err();
        assert!(err.message.ends_with(":\n{APIGroups:[\"\"], Resources:[\"secrets\"], ResourceNames:[\"x\"], Verbs:[\"get\" \"delete\"]}\n{APIGroups:[\"\"], Resources:[\"pods\"], ResourceNames:[\"x\"], Verbs:[\"delete\"]}"), "{}", err.message);
        // Not in another namespace, nor cluster-wide; a role that is not there cannot be
        // compared (unless `bind` is granted).
        assert!(check_escalation(&registry, &sa, "roles", "b", &reader).is_err());
        assert!(check_escalation(&registry, &sa, "clusterroles", "", &reader).is_err());
        assert_eq!(
            check_escalation(
                &registry,
                &sa,
                "rolebindings",
                "a",
                &binding("Role", "ghost")
            )
            .unwrap_err()
            .code,
            404
        );
        // `escalate` and `bind` lift the check; masters are never checked.
        registry
            .create(ROLES.resource(), "a", json!({"metadata": {"name": "lift"}, "rules": [
                {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles"], "verbs": ["escalate"]},
                {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["clusterroles"], "resourceNames": ["admin"], "verbs": ["bind"]}]}))
            .unwrap();
        registry
            .create(ROLE_BINDINGS.resource(), "a", json!({"metadata": {"name": "lift"},
                "roleRef": {"kind": "Role", "name": "lift", "apiGroup": "rbac.authorization.k8s.io"},
                "subjects": [{"kind": "ServiceAccount", "name": "default"}]}))
            .unwrap();
        assert_eq!(
            check_escalation(&registry, &sa, "roles", "a", &secrets),
            Ok(())
        );
        assert_eq!(
            check_escalation(
                &registry,
                &sa,
                "rolebindings",
                "a",
                &binding("ClusterRole", "admin")
            ),
            Ok(())
        );
        assert!(check_escalation(
            &registry,
            &sa,
            "rolebindings",
            "a",
            &binding("ClusterRole", "cluster-admin")
        )
        .is_err());
        assert_eq!(
            check_escalation(
                &registry,
                &UserInfo::admin(),
                "clusterrolebindings",
                "",
                &binding("ClusterRole", "cluster-admin")
            ),
            Ok(())
        );
    }

    #[test]
    fn forbidden_messages_match_the_apiserver() {
        let user = UserInfo::service_account("a", "default");
        assert_eq!(
            forbidden_message(&user, &attrs("list", "pods", "", "b")),
            "pods is forbidden: User \"system:serviceaccount:a:default\" cannot list resource \"pods\" in API group \"\" in the namespace \"b\""
        );
        let mut get = attrs("get", "pods", "log", "b");
        get.name = "x".into();
        assert_eq!(
            forbidden_message(&user, &get),
            "pods \"x\" is forbidden: User \"system:serviceaccount:a:default\" cannot get resource \"pods/log\" in API group \"\" in the namespace \"b\""
        );
        let mut pc = attrs("list", "priorityclasses", "", "");
        pc.api_group = "scheduling.k8s.io".into();
        assert_eq!(
            forbidden_message(&user, &pc),
            "priorityclasses.scheduling.k8s.io is forbidden: User \"system:serviceaccount:a:default\" cannot list resource \"priorityclasses\" in API group \"scheduling.k8s.io\" at the cluster scope"
        );
    }
}
