//! Per execution role: the three Spark service accounts EMR creates in the namespace,
//! annotated for IRSA, and the namespace-scoped RBAC Spark needs — nothing cluster-wide.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::ANNOTATION_ROLE_ARN;
use crate::names::{self, SparkRole};

const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "sparkyard");

/// The objects that let a run with this role act in its namespace.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleObjects {
    pub service_accounts: Vec<ServiceAccount>,
    pub role: Role,
    pub role_binding: RoleBinding,
}

pub fn build(namespace: &str, account_id: &str, role_arn: &str, role_name: &str) -> RoleObjects {
    let service_accounts = [SparkRole::Client, SparkRole::Driver, SparkRole::Executor]
        .into_iter()
        .map(|role| ServiceAccount {
            metadata: ObjectMeta {
                name: Some(names::service_account(role, account_id, role_name)),
                namespace: Some(namespace.to_string()),
                annotations: Some(BTreeMap::from([(
                    ANNOTATION_ROLE_ARN.to_string(),
                    role_arn.to_string(),
                )])),
                labels: Some(BTreeMap::from([(
                    MANAGED_BY.0.to_string(),
                    MANAGED_BY.1.to_string(),
                )])),
                ..ObjectMeta::default()
            },
            ..ServiceAccount::default()
        })
        .collect();

    // One Role for the job runner (spark-submit creates the driver pod, its service and
    // config maps) and the driver (creates and watches executors, their config map, PVCs).
    let rbac_name = format!(
        "emr-containers-spark-{account_id}-{}",
        names::base36(role_name.as_bytes())
    );
    let rule = |resources: &[&str], verbs: &[&str]| PolicyRule {
        api_groups: Some(vec![String::new()]),
        resources: Some(resources.iter().map(|r| r.to_string()).collect()),
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
        ..PolicyRule::default()
    };
    let all = [
        "get",
        "list",
        "watch",
        "create",
        "update",
        "patch",
        "delete",
        "deletecollection",
    ];
    let role = Role {
        metadata: ObjectMeta {
            name: Some(rbac_name.clone()),
            namespace: Some(namespace.to_string()),
            labels: Some(BTreeMap::from([(
                MANAGED_BY.0.to_string(),
                MANAGED_BY.1.to_string(),
            )])),
            ..ObjectMeta::default()
        },
        rules: Some(vec![
            rule(
                &["pods", "services", "configmaps", "persistentvolumeclaims"],
                &all,
            ),
            rule(&["pods/log"], &["get", "list", "watch"]),
            rule(&["events"], &["get", "list", "watch"]),
        ]),
    };
    let role_binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some(rbac_name.clone()),
            namespace: Some(namespace.to_string()),
            labels: Some(BTreeMap::from([(
                MANAGED_BY.0.to_string(),
                MANAGED_BY.1.to_string(),
            )])),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "Role".into(),
            name: rbac_name,
        },
        subjects: Some(
            [SparkRole::Client, SparkRole::Driver]
                .into_iter()
                .map(|role| Subject {
                    kind: "ServiceAccount".into(),
                    name: names::service_account(role, account_id, role_name),
                    namespace: Some(namespace.to_string()),
                    ..Subject::default()
                })
                .collect(),
        ),
    };
    RoleObjects {
        service_accounts,
        role,
        role_binding,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_annotated_accounts_and_a_namespaced_binding() {
        let arn = "arn:aws:iam::123456789012:role/monthly-batch-JobExecutionRole";
        let objects = build(
            "monthly-batch",
            "123456789012",
            arn,
            "monthly-batch-JobExecutionRole",
        );
        let names: Vec<_> = objects
            .service_accounts
            .iter()
            .map(|sa| sa.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names.len(), 3);
        for (name, role) in names.iter().zip(["client", "driver", "executor"]) {
            assert!(
                name.starts_with(&format!("emr-containers-sa-spark-{role}-123456789012-")),
                "{name}"
            );
        }
        for sa in &objects.service_accounts {
            assert_eq!(
                sa.metadata.annotations.as_ref().unwrap()[ANNOTATION_ROLE_ARN],
                arn
            );
            assert_eq!(sa.metadata.namespace.as_deref(), Some("monthly-batch"));
        }
        let subjects = objects.role_binding.subjects.unwrap();
        assert_eq!(subjects.len(), 2, "executors need no API access");
        assert!(subjects
            .iter()
            .all(|s| s.namespace.as_deref() == Some("monthly-batch")));
        assert_eq!(
            objects.role_binding.role_ref.name,
            objects.role.metadata.name.unwrap()
        );
    }
}
