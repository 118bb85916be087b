//! Authorization: may this caller perform this action on this resource?
//!
//! Every service (and emr-containers) calls [`Authorizer::authorize`] after authentication.
//! The bootstrap key (`arn:aws:iam::<account>:root`) is the administrator; a role session
//! (`arn:aws:sts::<account>:assumed-role/<role>/<session>`) gets what its role's inline
//! policies allow; anyone else is denied.

pub mod eval;
pub mod policy;

use std::sync::Arc;

use sparkyard_aws::Principal;

pub use eval::{Decision, RequestContext};
pub use policy::{Malformed, PolicyDocument, PolicyKind};

/// Where the authorizer reads a role's inline policies (the IAM service implements it).
pub trait RolePolicies: Send + Sync {
    /// The role's parsed inline policies, or `None` if the role does not exist.
    fn inline_policies(&self, role_name: &str) -> Option<Vec<PolicyDocument>>;
}

/// Who a caller is, from its ARN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The account's root (the bootstrap key): allowed everything.
    Root { account_id: String },
    /// A session of an assumed role.
    AssumedRole {
        account_id: String,
        role_name: String,
        session_name: String,
    },
    /// Anything else (no policies are known for it).
    Other,
}

impl Caller {
    pub fn from_arn(arn: &str) -> Self {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        match parts.as_slice() {
            ["arn", _, "iam", "", account, "root"] => Caller::Root {
                account_id: account.to_string(),
            },
            ["arn", _, "sts", "", account, resource] => match resource
                .strip_prefix("assumed-role/")
                .and_then(|r| r.split_once('/'))
            {
                Some((role, session)) => Caller::AssumedRole {
                    account_id: account.to_string(),
                    role_name: role.to_string(),
                    session_name: session.to_string(),
                },
                None => Caller::Other,
            },
            _ => Caller::Other,
        }
    }
}

/// A refused request. Each service renders it in its own error shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    pub principal_arn: String,
    pub action: String,
    pub resource: String,
    /// A Deny statement matched (rather than no Allow).
    pub explicit: bool,
}

impl Denied {
    /// AWS's wording for identity-policy denials.
    pub fn message(&self) -> String {
        let why = if self.explicit {
            "with an explicit deny in an identity-based policy".to_string()
        } else {
            format!(
                "because no identity-based policy allows the {} action",
                self.action
            )
        };
        format!(
            "User: {} is not authorized to perform: {} on resource: {} {why}",
            self.principal_arn, self.action, self.resource
        )
    }
}

impl std::fmt::Display for Denied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for Denied {}

#[derive(Clone)]
pub struct Authorizer {
    policies: Arc<dyn RolePolicies>,
}

impl Authorizer {
    pub fn new(policies: Arc<dyn RolePolicies>) -> Self {
        Self { policies }
    }

    /// Allows or denies `action` (`service:Operation`) on `resource_arn` for `principal`.
    pub fn authorize(
        &self,
        principal: &Principal,
        action: &str,
        resource_arn: &str,
    ) -> Result<(), Denied> {
        let deny = |explicit| Denied {
            principal_arn: principal.arn.clone(),
            action: action.to_string(),
            resource: resource_arn.to_string(),
            explicit,
        };
        match Caller::from_arn(&principal.arn) {
            Caller::Root { account_id } if account_id == principal.account_id => Ok(()),
            Caller::AssumedRole { role_name, .. } => {
                let Some(policies) = self.policies.inline_policies(&role_name) else {
                    return Err(deny(false));
                };
                let ctx = RequestContext::new(action, resource_arn)
                    .with_key("aws:PrincipalArn", &principal.arn)
                    .with_key("aws:PrincipalAccount", &principal.account_id)
                    .with_key("aws:RequestedRegion", &principal.region);
                match eval::evaluate(&policies, &ctx) {
                    Decision::Allow => Ok(()),
                    Decision::ExplicitDeny => Err(deny(true)),
                    Decision::ImplicitDeny => Err(deny(false)),
                }
            }
            _ => Err(deny(false)),
        }
    }
}

impl sparkyard_aws::Authorize for Authorizer {
    fn authorize(
        &self,
        principal: &Principal,
        action: &str,
        resource_arn: &str,
    ) -> Result<(), String> {
        Authorizer::authorize(self, principal, action, resource_arn)
            .map_err(|denied| denied.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct Fixed(HashMap<String, Vec<PolicyDocument>>);
    impl RolePolicies for Fixed {
        fn inline_policies(&self, role_name: &str) -> Option<Vec<PolicyDocument>> {
            self.0.get(role_name).cloned()
        }
    }

    fn principal(arn: &str) -> Principal {
        Principal {
            access_key_id: "ASIAX".into(),
            account_id: "123456789012".into(),
            arn: arn.into(),
            region: "us-east-2".into(),
            service: "s3".into(),
        }
    }

    #[test]
    fn callers_from_arns() {
        assert_eq!(
            Caller::from_arn("arn:aws:iam::123456789012:root"),
            Caller::Root {
                account_id: "123456789012".into()
            }
        );
        assert_eq!(
            Caller::from_arn("arn:aws:sts::123456789012:assumed-role/r/s-1"),
            Caller::AssumedRole {
                account_id: "123456789012".into(),
                role_name: "r".into(),
                session_name: "s-1".into()
            }
        );
        assert_eq!(
            Caller::from_arn("arn:aws:iam::123456789012:user/u"),
            Caller::Other
        );
    }

    #[test]
    fn root_is_admin_roles_follow_policies() {
        let reader = policy::parse(
            r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::data/*"}}"#,
            PolicyKind::Identity,
        )
        .unwrap();
        let authz = Authorizer::new(Arc::new(Fixed(HashMap::from([(
            "reader".to_string(),
            vec![reader],
        )]))));
        assert!(authz
            .authorize(
                &principal("arn:aws:iam::123456789012:root"),
                "iam:DeleteRole",
                "*"
            )
            .is_ok());
        let role = principal("arn:aws:sts::123456789012:assumed-role/reader/s");
        assert!(authz
            .authorize(&role, "s3:GetObject", "arn:aws:s3:::data/k")
            .is_ok());
        let denied = authz
            .authorize(&role, "s3:PutObject", "arn:aws:s3:::data/k")
            .unwrap_err();
        assert_eq!(
            denied.message(),
            "User: arn:aws:sts::123456789012:assumed-role/reader/s is not authorized to perform: s3:PutObject on resource: arn:aws:s3:::data/k because no identity-based policy allows the s3:PutObject action"
        );
        assert!(authz
            .authorize(
                &principal("arn:aws:sts::123456789012:assumed-role/gone/s"),
                "s3:GetObject",
                "arn:aws:s3:::data/k"
            )
            .is_err());
        // Root of another account is not this account's administrator.
        let mut foreign = principal("arn:aws:iam::999999999999:root");
        foreign.account_id = "123456789012".into();
        assert!(authz.authorize(&foreign, "s3:GetObject", "*").is_err());
    }
}
