//! The resource table: every kind the embedded API server serves, with the names discovery
//! publishes. One place, so routing, discovery, OpenAPI, RBAC and tables agree.
//!
//! Two parts: the built-in kinds ([`RESOURCES`], static) and the served versions of
//! CustomResourceDefinitions ([`set_custom`], [`remove_custom`]), which the API server
//! keeps in step with the stored CRDs. Lookups ([`find`], [`by_resource`], [`by_kind`],
//! [`all`]) see both, so callers keep handling `&'static ResourceInfo`.

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};

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

const fn in_all(mut info: ResourceInfo) -> ResourceInfo {
    info.categories = &["all"];
    info
}

const fn create_only(mut info: ResourceInfo) -> ResourceInfo {
    info.create_only = true;
    info
}

pub const PODS: ResourceInfo = in_all(subs(
    short(r("", "v1", "Pod", "pods", "pod", true), &["po"]),
    &["binding", "eviction", "log", "status"],
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
pub const SERVICES: ResourceInfo = in_all(subs(
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
pub const RESOURCE_QUOTAS: ResourceInfo = subs(
    short(
        r(
            "",
            "v1",
            "ResourceQuota",
            "resourcequotas",
            "resourcequota",
            true,
        ),
        &["quota"],
    ),
    &["status"],
);
pub const LIMIT_RANGES: ResourceInfo = short(
    r("", "v1", "LimitRange", "limitranges", "limitrange", true),
    &["limits"],
);
pub const PERSISTENT_VOLUMES: ResourceInfo = subs(
    short(
        r(
            "",
            "v1",
            "PersistentVolume",
            "persistentvolumes",
            "persistentvolume",
            false,
        ),
        &["pv"],
    ),
    &["status"],
);
pub const DEPLOYMENTS: ResourceInfo = in_all(subs(
    short(
        r(
            "apps",
            "v1",
            "Deployment",
            "deployments",
            "deployment",
            true,
        ),
        &["deploy"],
    ),
    &["scale", "status"],
));
pub const REPLICA_SETS: ResourceInfo = in_all(subs(
    short(
        r(
            "apps",
            "v1",
            "ReplicaSet",
            "replicasets",
            "replicaset",
            true,
        ),
        &["rs"],
    ),
    &["scale", "status"],
));
pub const STATEFUL_SETS: ResourceInfo = in_all(subs(
    short(
        r(
            "apps",
            "v1",
            "StatefulSet",
            "statefulsets",
            "statefulset",
            true,
        ),
        &["sts"],
    ),
    &["scale", "status"],
));
pub const DAEMON_SETS: ResourceInfo = in_all(subs(
    short(
        r("apps", "v1", "DaemonSet", "daemonsets", "daemonset", true),
        &["ds"],
    ),
    &["status"],
));
pub const CONTROLLER_REVISIONS: ResourceInfo = r(
    "apps",
    "v1",
    "ControllerRevision",
    "controllerrevisions",
    "controllerrevision",
    true,
);
pub const ENDPOINT_SLICES: ResourceInfo = r(
    "discovery.k8s.io",
    "v1",
    "EndpointSlice",
    "endpointslices",
    "endpointslice",
    true,
);
pub const STORAGE_CLASSES: ResourceInfo = short(
    r(
        "storage.k8s.io",
        "v1",
        "StorageClass",
        "storageclasses",
        "storageclass",
        false,
    ),
    &["sc"],
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
pub const JOBS: ResourceInfo = in_all(subs(
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

pub const POD_DISRUPTION_BUDGETS: ResourceInfo = subs(
    short(
        r(
            "policy",
            "v1",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
            "poddisruptionbudget",
            true,
        ),
        &["pdb"],
    ),
    &["status"],
);
pub const CUSTOM_RESOURCE_DEFINITIONS: ResourceInfo = ResourceInfo {
    categories: &["api-extensions"],
    ..subs(
        short(
            r(
                "apiextensions.k8s.io",
                "v1",
                "CustomResourceDefinition",
                "customresourcedefinitions",
                "customresourcedefinition",
                false,
            ),
            &["crd", "crds"],
        ),
        &["status"],
    )
};

/// Every built-in resource, core first, then groups in discovery order.
pub const RESOURCES: &[ResourceInfo] = &[
    CONFIGMAPS,
    ENDPOINTS,
    EVENTS,
    LIMIT_RANGES,
    NAMESPACES,
    NODES,
    PVCS,
    PERSISTENT_VOLUMES,
    PODS,
    RESOURCE_QUOTAS,
    SECRETS,
    SERVICE_ACCOUNTS,
    SERVICES,
    CONTROLLER_REVISIONS,
    DAEMON_SETS,
    DEPLOYMENTS,
    REPLICA_SETS,
    STATEFUL_SETS,
    JOBS,
    POD_DISRUPTION_BUDGETS,
    PRIORITY_CLASSES,
    LEASES,
    ENDPOINT_SLICES,
    EVENTS_V1,
    STORAGE_CLASSES,
    ROLES,
    ROLE_BINDINGS,
    CLUSTER_ROLES,
    CLUSTER_ROLE_BINDINGS,
    SELF_SUBJECT_ACCESS_REVIEWS,
    SUBJECT_ACCESS_REVIEWS,
    TOKEN_REVIEWS,
    CUSTOM_RESOURCE_DEFINITIONS,
];

/// The served versions of custom resources, storage version first for each resource (so
/// [`by_resource`] answers with the version objects are stored in). Each entry is leaked:
/// CRDs are few and change rarely, and a `&'static` lets every caller keep the signatures
/// the built-in table has; an unchanged entry is reused rather than leaked again.
static CUSTOM: RwLock<Vec<&'static ResourceInfo>> = RwLock::new(Vec::new());

/// Leaked strings and name lists, shared between entries (see [`CUSTOM`]).
static INTERNED: Mutex<Option<HashMap<String, &'static str>>> = Mutex::new(None);
static INTERNED_LISTS: Mutex<Option<HashMap<Vec<String>, &'static [&'static str]>>> =
    Mutex::new(None);

/// A `&'static str` equal to `text`, leaked once per distinct text.
pub fn intern(text: &str) -> &'static str {
    let mut guard = INTERNED.lock().unwrap();
    let map = guard.get_or_insert_with(HashMap::new);
    if let Some(s) = map.get(text) {
        return s;
    }
    let leaked: &'static str = Box::leak(text.to_string().into_boxed_str());
    map.insert(text.to_string(), leaked);
    leaked
}

/// A `&'static` list equal to `items`, leaked once per distinct list.
pub fn intern_list(items: &[String]) -> &'static [&'static str] {
    let mut guard = INTERNED_LISTS.lock().unwrap();
    let map = guard.get_or_insert_with(HashMap::new);
    if let Some(list) = map.get(items) {
        return list;
    }
    let leaked: &'static [&'static str] = Box::leak(
        items
            .iter()
            .map(|s| intern(s))
            .collect::<Vec<_>>()
            .into_boxed_slice(),
    );
    map.insert(items.to_vec(), leaked);
    leaked
}

/// Serves `versions` (storage version first) of the custom resource `group`/`plural`,
/// replacing what was served for it before.
pub fn set_custom(group: &str, plural: &str, versions: &[ResourceInfo]) {
    let mut table = CUSTOM.write().unwrap();
    let previous: Vec<&'static ResourceInfo> = table
        .iter()
        .copied()
        .filter(|r| r.group == group && r.plural == plural)
        .collect();
    let entries: Vec<&'static ResourceInfo> = versions
        .iter()
        .map(|v| {
            previous
                .iter()
                .copied()
                .find(|p| **p == *v)
                .unwrap_or_else(|| Box::leak(Box::new(*v)))
        })
        .collect();
    let at = table
        .iter()
        .position(|r| r.group == group && r.plural == plural)
        .unwrap_or(table.len());
    table.retain(|r| !(r.group == group && r.plural == plural));
    let at = at.min(table.len());
    table.splice(at..at, entries);
}

/// Stops serving the custom resource `group`/`plural` (its CRD is gone).
pub fn remove_custom(group: &str, plural: &str) {
    CUSTOM
        .write()
        .unwrap()
        .retain(|r| !(r.group == group && r.plural == plural));
}

/// The served custom resource versions.
pub fn custom() -> Vec<&'static ResourceInfo> {
    CUSTOM.read().unwrap().clone()
}

/// Whether `info` is a version of a custom resource (served from a CRD).
pub fn is_custom(info: &ResourceInfo) -> bool {
    CUSTOM
        .read()
        .unwrap()
        .iter()
        .any(|r| r.group == info.group && r.plural == info.plural)
}

/// Every served resource: the built-in ones, then the custom ones.
pub fn all() -> Vec<&'static ResourceInfo> {
    RESOURCES.iter().chain(custom()).collect()
}

fn search(matches: impl Fn(&ResourceInfo) -> bool) -> Option<&'static ResourceInfo> {
    RESOURCES
        .iter()
        .find(|r| matches(r))
        .or_else(|| CUSTOM.read().unwrap().iter().copied().find(|r| matches(r)))
}

/// Kubernetes' version order: GA before beta before alpha, higher numbers first, then
/// anything else alphabetically (as discovery orders a group's versions).
pub fn version_order(a: &str, b: &str) -> std::cmp::Ordering {
    fn key(v: &str) -> (u8, i64, i64, String) {
        let parse = || -> Option<(u8, i64, i64)> {
            let rest = v.strip_prefix('v')?;
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let major: i64 = digits.parse().ok()?;
            let tail = &rest[digits.len()..];
            if tail.is_empty() {
                return Some((0, -major, 0));
            }
            for (tier, word) in [(1u8, "beta"), (2, "alpha")] {
                if let Some(n) = tail.strip_prefix(word) {
                    let minor: i64 = n.parse().ok()?;
                    return Some((tier, -major, -minor));
                }
            }
            None
        };
        match parse() {
            Some((tier, major, minor)) => (tier, major, minor, String::new()),
            None => (3, 0, 0, v.to_string()),
        }
    }
    key(a).cmp(&key(b))
}

/// The versions served for `group`, preferred first.
pub fn group_versions(group: &str) -> Vec<&'static str> {
    let mut versions: Vec<&'static str> = Vec::new();
    for info in all() {
        if info.group == group && !versions.contains(&info.version) {
            versions.push(info.version);
        }
    }
    versions.sort_by(|a, b| version_order(a, b));
    versions
}

/// The API groups with their preferred version, in the order `/apis` lists them (core `""`
/// is served at `/api`): built-in groups first, then custom ones as their CRDs came.
pub fn groups() -> Vec<(&'static str, &'static str)> {
    let mut groups: Vec<(&'static str, &'static str)> = Vec::new();
    for info in all() {
        if !info.group.is_empty() && !groups.iter().any(|(g, _)| *g == info.group) {
            groups.push((info.group, group_versions(info.group)[0]));
        }
    }
    groups
}

pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static ResourceInfo> {
    search(|r| r.group == group && r.version == version && r.plural == plural)
}

pub fn in_group_version(group: &str, version: &str) -> Vec<&'static ResourceInfo> {
    all()
        .into_iter()
        .filter(|r| r.group == group && r.version == version)
        .collect()
}

/// The resource's entry; for a custom resource, its storage version.
pub fn by_resource(resource: Resource) -> Option<&'static ResourceInfo> {
    search(|r| r.resource() == resource)
}

/// Looks a resource up by its `apiVersion` and `kind` (as objects and ownerReferences name it).
pub fn by_kind(api_version: &str, kind: &str) -> Option<&'static ResourceInfo> {
    search(|r| r.kind == kind && r.api_version() == api_version)
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

    #[test]
    fn custom_resources_come_and_go() {
        let mut v1 = r(
            "widgets.example.com",
            "v1",
            "Widget",
            "widgets",
            "widget",
            true,
        );
        v1.short_names = intern_list(&["wd".to_string()]);
        let v1beta1 = ResourceInfo {
            version: "v1beta1",
            ..v1
        };
        set_custom("widgets.example.com", "widgets", &[v1beta1, v1]);
        assert_eq!(
            by_resource(Resource::new("widgets.example.com", "widgets"))
                .unwrap()
                .version,
            "v1beta1",
            "the storage version answers for the resource"
        );
        assert_eq!(group_versions("widgets.example.com"), vec!["v1", "v1beta1"]);
        assert!(groups().contains(&("widgets.example.com", "v1")));
        assert!(find("widgets.example.com", "v1", "widgets").is_some());
        assert!(is_custom(&v1) && !is_custom(&PODS));
        let first = find("widgets.example.com", "v1", "widgets").unwrap() as *const _;
        set_custom("widgets.example.com", "widgets", &[v1beta1, v1]);
        let again = find("widgets.example.com", "v1", "widgets").unwrap() as *const _;
        assert_eq!(first, again, "an unchanged entry is not leaked again");
        remove_custom("widgets.example.com", "widgets");
        assert!(find("widgets.example.com", "v1", "widgets").is_none());
        assert!(!groups().iter().any(|(g, _)| *g == "widgets.example.com"));
    }

    #[test]
    fn versions_sort_as_kubernetes_sorts_them() {
        let mut v = vec!["v1alpha5", "v1", "v2beta1", "v1beta1", "foo", "v2"];
        v.sort_by(|a, b| version_order(a, b));
        assert_eq!(v, vec!["v2", "v1", "v2beta1", "v1beta1", "v1alpha5", "foo"]);
    }
}
