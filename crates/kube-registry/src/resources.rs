//! The resource table: every kind the embedded API server serves, with the names discovery
//! publishes. One place, so routing, discovery, OpenAPI, RBAC and tables agree.

use crate::registry::Resource;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceInfo {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    /// Subresources served under `<plural>/<name>/<sub>`.
    pub subresources: &'static [&'static str],
    /// Virtual resources (reviews) accept only `create` and store nothing.
    pub create_only: bool,
}

impl ResourceInfo {
    pub const fn resource(&self) -> Resource {
        Resource::new(self.group, self.plural)
    }

    /// `v1` or `<group>/<version>`, as in an object's `apiVersion`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// `pods` or `priorityclasses.scheduling.k8s.io`, as error messages name resources.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    pub fn verbs(&self) -> &'static [&'static str] {
        if self.create_only {
            &["create"]
        } else {
            &[
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ]
        }
    }

    /// Whether the resource keeps `status` apart from `spec` (a `status` subresource).
    pub fn has_status(&self) -> bool {
        self.subresources.contains(&"status")
    }
}

const fn r(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    singular: &'static str,
    namespaced: bool,
) -> ResourceInfo {
    ResourceInfo {
        group,
        version,
        kind,
        plural,
        singular,
        namespaced,
        short_names: &[],
        categories: &[],
        subresources: &[],
        create_only: false,
    }
}

const fn short(mut info: ResourceInfo, names: &'static [&'static str]) -> ResourceInfo {
    info.short_names = names;
    info
}

const fn subs(mut info: ResourceInfo, subresources: &'static [&'static str]) -> ResourceInfo {
    info.subresources = subresources;
    info
}

const fn all(mut info: ResourceInfo) -> ResourceInfo {
    info.categories = &["all"];
    info
}

const fn create_only(mut info: ResourceInfo) -> ResourceInfo {
    info.create_only = true;
    info
}

pub const PODS: ResourceInfo = all(subs(
    short(r("", "v1", "Pod", "pods", "pod", true), &["po"]),
    &["binding", "log", "status"],
));
pub const NAMESPACES: ResourceInfo = subs(
    short(
        r("", "v1", "Namespace", "namespaces", "namespace", false),
        &["ns"],
    ),
    &["finalize", "status"],
);
pub const NODES: ResourceInfo = subs(
    short(r("", "v1", "Node", "nodes", "node", false), &["no"]),
    &["status"],
);
pub const CONFIGMAPS: ResourceInfo = short(
    r("", "v1", "ConfigMap", "configmaps", "configmap", true),
    &["cm"],
);
pub const SECRETS: ResourceInfo = r("", "v1", "Secret", "secrets", "secret", true);
pub const SERVICES: ResourceInfo = all(subs(
    short(
        r("", "v1", "Service", "services", "service", true),
        &["svc"],
    ),
    &["status"],
));
pub const ENDPOINTS: ResourceInfo = short(
    r("", "v1", "Endpoints", "endpoints", "endpoints", true),
    &["ep"],
);
pub const SERVICE_ACCOUNTS: ResourceInfo = subs(
    short(
        r(
            "",
            "v1",
            "ServiceAccount",
            "serviceaccounts",
            "serviceaccount",
            true,
        ),
        &["sa"],
    ),
    &["token"],
);
pub const PVCS: ResourceInfo = subs(
    short(
        r(
            "",
            "v1",
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            "persistentvolumeclaim",
            true,
        ),
        &["pvc"],
    ),
    &["status"],
);
pub const EVENTS: ResourceInfo = short(r("", "v1", "Event", "events", "event", true), &["ev"]);
pub const EVENTS_V1: ResourceInfo = short(
    r("events.k8s.io", "v1", "Event", "events", "event", true),
    &["ev"],
);
pub const PRIORITY_CLASSES: ResourceInfo = short(
    r(
        "scheduling.k8s.io",
        "v1",
        "PriorityClass",
        "priorityclasses",
        "priorityclass",
        false,
    ),
    &["pc"],
);
pub const JOBS: ResourceInfo = all(subs(
    r("batch", "v1", "Job", "jobs", "job", true),
    &["status"],
));
pub const LEASES: ResourceInfo = r(
    "coordination.k8s.io",
    "v1",
    "Lease",
    "leases",
    "lease",
    true,
);
pub const ROLES: ResourceInfo = r(
    "rbac.authorization.k8s.io",
    "v1",
    "Role",
    "roles",
    "role",
    true,
);
pub const ROLE_BINDINGS: ResourceInfo = r(
    "rbac.authorization.k8s.io",
    "v1",
    "RoleBinding",
    "rolebindings",
    "rolebinding",
    true,
);
pub const CLUSTER_ROLES: ResourceInfo = r(
    "rbac.authorization.k8s.io",
    "v1",
    "ClusterRole",
    "clusterroles",
    "clusterrole",
    false,
);
pub const CLUSTER_ROLE_BINDINGS: ResourceInfo = r(
    "rbac.authorization.k8s.io",
    "v1",
    "ClusterRoleBinding",
    "clusterrolebindings",
    "clusterrolebinding",
    false,
);
pub const SELF_SUBJECT_ACCESS_REVIEWS: ResourceInfo = create_only(r(
    "authorization.k8s.io",
    "v1",
    "SelfSubjectAccessReview",
    "selfsubjectaccessreviews",
    "",
    false,
));
pub const SUBJECT_ACCESS_REVIEWS: ResourceInfo = create_only(r(
    "authorization.k8s.io",
    "v1",
    "SubjectAccessReview",
    "subjectaccessreviews",
    "",
    false,
));
pub const TOKEN_REVIEWS: ResourceInfo = create_only(r(
    "authentication.k8s.io",
    "v1",
    "TokenReview",
    "tokenreviews",
    "",
    false,
));

/// Every served resource, core first, then groups in discovery order.
pub const RESOURCES: &[ResourceInfo] = &[
    CONFIGMAPS,
    ENDPOINTS,
    EVENTS,
    NAMESPACES,
    NODES,
    PVCS,
    PODS,
    SECRETS,
    SERVICE_ACCOUNTS,
    SERVICES,
    JOBS,
    PRIORITY_CLASSES,
    LEASES,
    EVENTS_V1,
    ROLES,
    ROLE_BINDINGS,
    CLUSTER_ROLES,
    CLUSTER_ROLE_BINDINGS,
    SELF_SUBJECT_ACCESS_REVIEWS,
    SUBJECT_ACCESS_REVIEWS,
    TOKEN_REVIEWS,
];

/// The API groups, in the order `/apis` lists them (core `""` is served at `/api`).
pub fn groups() -> Vec<(&'static str, &'static str)> {
    let mut groups: Vec<(&'static str, &'static str)> = Vec::new();
    for info in RESOURCES {
        if !info.group.is_empty() && !groups.iter().any(|(g, _)| *g == info.group) {
            groups.push((info.group, info.version));
        }
    }
    groups
}

pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

pub fn in_group_version<'a>(
    group: &'a str,
    version: &'a str,
) -> impl Iterator<Item = &'static ResourceInfo> + 'a {
    RESOURCES
        .iter()
        .filter(move |r| r.group == group && r.version == version)
}

pub fn by_resource(resource: Resource) -> Option<&'static ResourceInfo> {
    RESOURCES.iter().find(|r| r.resource() == resource)
}

/// Looks a resource up by its `apiVersion` and `kind` (as objects and ownerReferences name it).
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| r.kind == kind && r.api_version() == api_version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        assert_eq!(find("", "v1", "pods").unwrap().short_names, &["po"]);
        assert_eq!(
            by_kind("scheduling.k8s.io/v1", "PriorityClass")
                .unwrap()
                .plural,
            "priorityclasses"
        );
        assert_eq!(
            PRIORITY_CLASSES.qualified(),
            "priorityclasses.scheduling.k8s.io"
        );
        assert!(groups().contains(&("batch", "v1")));
        assert!(PODS.has_status() && !CONFIGMAPS.has_status());
    }
}
