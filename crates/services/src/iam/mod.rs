//! IAM (query protocol, `Version=2010-05-08`): roles and their inline policies.
//!
//! The operations the seed's scripts and `aws emr-containers update-role-trust-policy` use.
//! Roles are global (no region in their ARN); ids look like AWS's (`AROA` + 17 characters).

mod render;
pub mod store;
pub mod validate;

use axum::http::StatusCode;
use axum::response::Response;
use sparkyard_aws::Principal;

use crate::authz::{self, Authorizer, PolicyDocument, PolicyKind, RolePolicies};
use crate::db::Db;
use crate::wire::{fragment, query_response, QueryError, QueryParams, Xml};
pub use store::Role;

pub const XMLNS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

pub struct Iam {
    db: Db,
    account_id: String,
}

fn db_error(e: rusqlite::Error) -> QueryError {
    tracing::error!(error = %e, "IAM store failure");
    QueryError::internal("We encountered an internal error. Please try again.")
}

fn no_such_role(name: &str) -> QueryError {
    QueryError::new(
        StatusCode::NOT_FOUND,
        "NoSuchEntity",
        format!("The role with name {name} cannot be found."),
    )
}

fn malformed(e: authz::Malformed) -> QueryError {
    QueryError::new(StatusCode::BAD_REQUEST, "MalformedPolicyDocument", e.0)
}

/// `AROA` + 17 upper-case letters and digits, as AWS's role ids.
fn new_role_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let tail: String = (0..17)
        .map(|_| ALPHABET[rand::random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("AROA{tail}")
}

/// `Tags.member.N.Key` / `.Value`, in N order.
fn tags(params: &QueryParams) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for n in 1.. {
        let Some(key) = params.get(&format!("Tags.member.{n}.Key")) else {
            break;
        };
        let value = params.get(&format!("Tags.member.{n}.Value")).unwrap_or("");
        out.push((key.to_string(), value.to_string()));
    }
    out
}

impl Iam {
    pub fn open(db: Db, account_id: &str) -> Self {
        Self {
            db,
            account_id: account_id.to_string(),
        }
    }

    pub fn role_arn(&self, path: &str, name: &str) -> String {
        format!("arn:aws:iam::{}:role{path}{name}", self.account_id)
    }

    /// The role `name`, if it exists (a store failure reads as "no such role").
    pub async fn get_role(&self, name: &str) -> Option<Role> {
        store::get_role(&self.db, name).await.ok().flatten()
    }

    /// Serves one query-protocol request for an authenticated `principal`.
    pub async fn handle(
        &self,
        authz: &Authorizer,
        principal: &Principal,
        params: &QueryParams,
        request_id: &str,
    ) -> Response {
        let action = params.action().unwrap_or("").to_string();
        match self.dispatch(authz, principal, &action, params).await {
            Ok(result) => query_response(&action, XMLNS, result.as_deref(), request_id),
            Err(e) => e.into_response(XMLNS, request_id),
        }
    }

    fn authorize(
        &self,
        authz: &Authorizer,
        principal: &Principal,
        action: &str,
        resource: &str,
    ) -> Result<(), QueryError> {
        authz
            .authorize(principal, &format!("iam:{action}"), resource)
            .map_err(|d| QueryError::access_denied(d.message()))
    }

    /// The role's ARN for authorization: the stored one, else the one it would get.
    async fn resource_for(&self, name: &str) -> String {
        self.get_role(name)
            .await
            .map(|r| r.arn)
            .unwrap_or_else(|| self.role_arn("/", name))
    }

    async fn dispatch(
        &self,
        authz: &Authorizer,
        principal: &Principal,
        action: &str,
        p: &QueryParams,
    ) -> Result<Option<String>, QueryError> {
        match action {
            "CreateRole" => {
                let name = p.required("RoleName")?;
                validate::role_name(name)?;
                let path = p.get("Path").unwrap_or("/");
                validate::path(path)?;
                let arn = self.role_arn(path, name);
                self.authorize(authz, principal, action, &arn)?;
                let trust = p.required("AssumeRolePolicyDocument")?;
                authz::policy::parse(trust, PolicyKind::Trust).map_err(malformed)?;
                let max_session_duration = p
                    .get("MaxSessionDuration")
                    .map(validate::max_session_duration)
                    .transpose()?
                    .unwrap_or(3600);
                let role = Role {
                    name: name.to_string(),
                    role_id: new_role_id(),
                    path: path.to_string(),
                    arn,
                    create_date: chrono::Utc::now(),
                    trust_policy: trust.to_string(),
                    description: p.get("Description").map(str::to_string),
                    max_session_duration,
                    tags: tags(p),
                };
                if !store::insert_role(&self.db, &role)
                    .await
                    .map_err(db_error)?
                {
                    return Err(QueryError::new(
                        StatusCode::CONFLICT,
                        "EntityAlreadyExists",
                        format!("Role with name {name} already exists."),
                    ));
                }
                Ok(Some(fragment(|x| render::role(x, "Role", &role))))
            }
            "GetRole" => {
                let name = p.required("RoleName")?;
                validate::role_name(name)?;
                self.authorize(authz, principal, action, &self.resource_for(name).await)?;
                let role = self
                    .get_role(name)
                    .await
                    .ok_or_else(|| no_such_role(name))?;
                Ok(Some(fragment(|x| render::role(x, "Role", &role))))
            }
            "ListRoles" => {
                let prefix = p.get("PathPrefix").unwrap_or("/");
                self.authorize(
                    authz,
                    principal,
                    action,
                    &format!("arn:aws:iam::{}:role{prefix}*", self.account_id),
                )?;
                let roles = store::list_roles(&self.db, prefix)
                    .await
                    .map_err(db_error)?;
                let (page, marker) = paginate(roles, p, |r| r.name.to_lowercase())?;
                Ok(Some(fragment(|x| {
                    x.open("Roles");
                    for role in &page {
                        render::role(x, "member", role);
                    }
                    x.close("Roles");
                    truncation(x, marker.as_deref());
                })))
            }
            "DeleteRole" => {
                let name = p.required("RoleName")?;
                validate::role_name(name)?;
                self.authorize(authz, principal, action, &self.resource_for(name).await)?;
                match store::delete_role(&self.db, name).await.map_err(db_error)? {
                    store::DeleteRole::Deleted => Ok(None),
                    store::DeleteRole::NotFound => Err(no_such_role(name)),
                    store::DeleteRole::HasPolicies => Err(QueryError::new(
                        StatusCode::CONFLICT,
                        "DeleteConflict",
                        "Cannot delete entity, must delete policies first.",
                    )),
                }
            }
            "UpdateAssumeRolePolicy" => {
                let name = p.required("RoleName")?;
                validate::role_name(name)?;
                self.authorize(authz, principal, action, &self.resource_for(name).await)?;
                let document = p.required("PolicyDocument")?;
                authz::policy::parse(document, PolicyKind::Trust).map_err(malformed)?;
                if !store::update_trust_policy(&self.db, name, document)
                    .await
                    .map_err(db_error)?
                {
                    return Err(no_such_role(name));
                }
                Ok(None)
            }
            "PutRolePolicy" => {
                let name = p.required("RoleName")?;
                validate::role_name(name)?;
                let policy = p.required("PolicyName")?;
                validate::policy_name(policy)?;
                self.authorize(authz, principal, action, &self.resource_for(name).await)?;
                let document = p.required("PolicyDocument")?;
                authz::policy::parse(document, PolicyKind::Identity).map_err(malformed)?;
                validate::policy_size(document, name)?;
                if !store::put_role_policy(&self.db, name, policy, document)
                    .await
                    .map_err(db_error)?
                {
                    return Err(no_such_role(name));
                }
                Ok(None)
            }
            "GetRolePolicy" => {
                let name = p.required("RoleName")?;
                let policy = p.required("PolicyName")?;
                self.authorize(authz, principal, action, &self.resource_for(name).await)?;
                let role = self
                    .get_role(name)
                    .await
                    .ok_or_else(|| no_such_role(name))?;
                let (policy_name, document) = store::get_role_policy(&self.db, name, policy)
                    .await
                    .map_err(db_error)?
                    .ok_or_else(|| {
                        QueryError::new(
                            StatusCode::NOT_FOUND,
                            "NoSuchEntity",
                            format!("The role policy with name {policy} cannot be found."),
                        )
                    })?;
                Ok(Some(fragment(|x| {
                    x.text("RoleName", &role.name)
                        .text("PolicyName", &policy_name)
                        .text("PolicyDocument", &render::encode_policy(&document));
                })))
            }
            "ListRolePolicies" => {
                let name = p.required("RoleName")?;
                self.authorize(authz, principal, action, &self.resource_for(name).await)?;
                self.get_role(name)
                    .await
                    .ok_or_else(|| no_such_role(name))?;
                let names: Vec<String> = store::role_policies(&self.db, name)
                    .await
                    .map_err(db_error)?
                    .into_iter()
                    .map(|(n, _)| n)
                    .collect();
                let (page, marker) = paginate(names, p, |n| n.to_lowercase())?;
                Ok(Some(fragment(|x| {
                    x.open("PolicyNames");
                    for n in &page {
                        x.text("member", n);
                    }
                    x.close("PolicyNames");
                    truncation(x, marker.as_deref());
                })))
            }
            "DeleteRolePolicy" => {
                let name = p.required("RoleName")?;
                let policy = p.required("PolicyName")?;
                self.authorize(authz, principal, action, &self.resource_for(name).await)?;
                self.get_role(name)
                    .await
                    .ok_or_else(|| no_such_role(name))?;
                if !store::delete_role_policy(&self.db, name, policy)
                    .await
                    .map_err(db_error)?
                {
                    return Err(QueryError::new(
                        StatusCode::NOT_FOUND,
                        "NoSuchEntity",
                        format!("The role policy with name {policy} cannot be found."),
                    ));
                }
                Ok(None)
            }
            "" => Err(QueryError::new(
                StatusCode::BAD_REQUEST,
                "MissingAction",
                "Missing Action",
            )),
            other => Err(QueryError::new(
                StatusCode::BAD_REQUEST,
                "InvalidAction",
                format!("Could not find operation {other} for version 2010-05-08"),
            )),
        }
    }
}

/// IAM's `Marker`/`MaxItems` pagination over items sorted by `key`: the marker is the key of
/// the last item returned.
fn paginate<T>(
    items: Vec<T>,
    p: &QueryParams,
    key: impl Fn(&T) -> String,
) -> Result<(Vec<T>, Option<String>), QueryError> {
    let max_items = match p.get("MaxItems") {
        None => 100,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                return Err(validate::constraint(
                    v,
                    "maxItems",
                    "Member must have value less than or equal to 1000",
                ))
            }
        },
    };
    let after = p.get("Marker").map(str::to_string);
    let mut rest: Vec<T> = items
        .into_iter()
        .filter(|i| after.as_ref().is_none_or(|m| key(i) > *m))
        .collect();
    if rest.len() > max_items {
        rest.truncate(max_items);
        let marker = rest.last().map(&key);
        Ok((rest, marker))
    } else {
        Ok((rest, None))
    }
}

fn truncation(x: &mut Xml, marker: Option<&str>) {
    x.text(
        "IsTruncated",
        if marker.is_some() { "true" } else { "false" },
    );
    x.opt_text("Marker", marker);
}

impl RolePolicies for Iam {
    /// Synchronous (the authorizer behind `sparkyard_aws::Authorize` cannot await), so it
    /// reads on the calling thread: see `Db::read_blocking`.
    fn inline_policies(&self, role_name: &str) -> Option<Vec<PolicyDocument>> {
        let docs = store::inline_policies_blocking(&self.db, role_name).ok()??;
        // Stored documents were validated on the way in; one that no longer parses (a newer
        // grammar rule) is skipped, which can only narrow access.
        Some(
            docs.iter()
                .filter_map(|(_, d)| authz::policy::parse(d, PolicyKind::Identity).ok())
                .collect(),
        )
    }
}
