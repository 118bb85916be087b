//! Who is calling (`tokens`: bearer tokens → [`UserInfo`]; `aws_iam`: EKS-style IAM
//! tokens) and what they may do (`rbac`).

pub mod aws_iam;
pub mod rbac;
pub mod tokens;

/// The user name of the kubeconfig's administrator token.
pub const ADMIN_USER: &str = "sparkyard-admin";

/// An authenticated caller, as the apiserver's `user.Info`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub groups: Vec<String>,
    /// EKS access policies of the caller's access entry ([`aws_iam`]), evaluated by the
    /// authorizer beside RBAC as EKS's authorizer does; empty for everyone else.
    pub access_policies: Vec<aws_iam::PolicyAssociation>,
}

impl UserInfo {
    /// The cluster administrator behind the kubeconfig's token.
    pub fn admin() -> Self {
        Self {
            name: super::ADMIN_USER.to_string(),
            groups: vec!["system:masters".into(), "system:authenticated".into()],
            ..Default::default()
        }
    }

    /// A service account's user name and groups, as Kubernetes derives them.
    pub fn service_account(namespace: &str, name: &str) -> Self {
        Self {
            name: format!("system:serviceaccount:{namespace}:{name}"),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
                "system:authenticated".into(),
            ],
            ..Default::default()
        }
    }

    pub fn is_master(&self) -> bool {
        self.groups.iter().any(|g| g == "system:masters")
    }
}
