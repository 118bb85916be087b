//! Per virtual cluster: the `emr-containers` Role and RoleBinding in its namespace — what
//! `eksctl create iamidentitymapping --service-name emr-containers --namespace <ns>` creates
//! so that EMR's service-linked role (Kubernetes user `emr-containers`) can run jobs there.

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Name of the Role, the RoleBinding and the Kubernetes user they bind.
pub const EMR_CONTAINERS: &str = "emr-containers";

#[derive(Debug, Clone, PartialEq)]
pub struct NamespaceRbac {
    pub role: Role,
    pub role_binding: RoleBinding,
}

pub fn build(namespace: &str) -> NamespaceRbac {
    let meta = || ObjectMeta {
        name: Some(EMR_CONTAINERS.to_string()),
        namespace: Some(namespace.to_string()),
        labels: Some(BTreeMap::from([(
            "app.kubernetes.io/managed-by".to_string(),
            "sparkyard".to_string(),
        )])),
        ..ObjectMeta::default()
    };
    let rule = |group: &str, resources: &[&str], verbs: &[&str]| PolicyRule {
        api_groups: Some(vec![group.to_string()]),
        resources: Some(resources.iter().map(|r| r.to_string()).collect()),
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
        ..PolicyRule::default()
    };
    let manage = [
        "get",
        "list",
        "watch",
        "create",
        "update",
        "patch",
        "delete",
        "deletecollection",
    ];
    // The same resources eksctl's emr-containers Role grants: everything a job run creates
    // (runner Jobs, pods, services, config maps, service accounts, namespaced RBAC) and
    // reading events and logs to follow it.
    let role = Role {
        metadata: meta(),
        rules: Some(vec![
            rule("", &["namespaces"], &["get"]),
            rule(
                "",
                &[
                    "serviceaccounts",
                    "services",
                    "configmaps",
                    "events",
                    "pods",
                    "pods/log",
                    "persistentvolumeclaims",
                ],
                &manage,
            ),
            rule("", &["secrets"], &["create", "patch", "delete", "watch"]),
            rule("apps", &["statefulsets", "deployments"], &manage),
            rule("batch", &["jobs"], &manage),
            rule("networking.k8s.io", &["ingresses"], &manage),
            rule(
                "rbac.authorization.k8s.io",
                &["roles", "rolebindings"],
                &manage,
            ),
        ]),
    };
    let role_binding = RoleBinding {
        metadata: meta(),
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: EMR_CONTAINERS.into(),
        },
        subjects: Some(vec![Subject {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "User".into(),
            name: EMR_CONTAINERS.into(),
            namespace: None,
        }]),
    };
    NamespaceRbac { role, role_binding }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_the_emr_containers_user_in_the_namespace() {
        let rbac = build("monthly-batch");
        assert_eq!(rbac.role.metadata.name.as_deref(), Some("emr-containers"));
        assert_eq!(
            rbac.role.metadata.namespace.as_deref(),
            Some("monthly-batch")
        );
        let subjects = rbac.role_binding.subjects.unwrap();
        assert_eq!(
            (subjects[0].kind.as_str(), subjects[0].name.as_str()),
            ("User", "emr-containers")
        );
        let rules = rbac.role.rules.unwrap();
        assert!(rules.iter().any(
            |r| r.api_groups.as_deref() == Some(&["batch".to_string()][..])
                && r.verbs.contains(&"create".to_string())
        ));
    }
}
