//! IAM policy evaluation (pure): explicit Deny wins, then any Allow, else the default deny.

use std::collections::HashMap;

use super::policy::{
    base_operator, Condition, Effect, Patterns, PolicyDocument, Principals, Statement,
};

/// IAM's wildcard match: `*` any run of characters, `?` exactly one.
pub fn glob(pattern: &str, value: &str, case_insensitive: bool) -> bool {
    let norm = |s: &str| {
        if case_insensitive {
            s.to_ascii_lowercase()
        } else {
            s.to_string()
        }
    };
    let p: Vec<char> = norm(pattern).chars().collect();
    let v: Vec<char> = norm(value).chars().collect();
    // Iterative matcher with backtracking to the last `*`: linear in practice, no recursion.
    let (mut pi, mut vi) = (0, 0);
    let (mut star, mut star_v) = (None, 0);
    while vi < v.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == v[vi]) {
            pi += 1;
            vi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            star_v = vi;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            star_v += 1;
            vi = star_v;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// What a request is, for evaluation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    /// `service:Operation`, e.g. `s3:GetObject`.
    pub action: String,
    /// The resource's ARN (`*` for actions without one, such as `s3:ListAllMyBuckets`).
    pub resource: String,
    /// Condition keys by lower-cased name (`aws:principalarn` → …).
    pub keys: HashMap<String, String>,
}

impl RequestContext {
    pub fn new(action: &str, resource: &str) -> Self {
        Self {
            action: action.to_string(),
            resource: resource.to_string(),
            keys: HashMap::new(),
        }
    }

    pub fn with_key(mut self, key: &str, value: &str) -> Self {
        self.keys
            .insert(key.to_ascii_lowercase(), value.to_string());
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// A statement denied it.
    ExplicitDeny,
    /// No statement allowed it.
    ImplicitDeny,
}

fn matches_patterns(patterns: &Patterns, value: &str, case_insensitive: bool) -> bool {
    match patterns {
        Patterns::Only(list) => list.iter().any(|p| glob(p, value, case_insensitive)),
        Patterns::Not(list) => !list.iter().any(|p| glob(p, value, case_insensitive)),
    }
}

/// One condition against the context's keys, with IAM's rules for missing keys: a negated
/// operator is satisfied by an absent key, a positive one is not, `…IfExists` always is.
pub fn condition_holds(condition: &Condition, keys: &HashMap<String, String>) -> bool {
    let (operator, if_exists) = base_operator(&condition.operator);
    let Some(actual) = keys.get(&condition.key.to_ascii_lowercase()) else {
        return if_exists || operator.starts_with("StringNot");
    };
    let any = |f: &dyn Fn(&str) -> bool| condition.values.iter().any(|v| f(v));
    match operator {
        "StringEquals" => any(&|v| v == actual),
        "StringNotEquals" => !any(&|v| v == actual),
        "StringLike" => any(&|v| glob(v, actual, false)),
        "StringNotLike" => !any(&|v| glob(v, actual, false)),
        // Unknown operators never reach here (refused at parse time); fail closed anyway.
        _ => false,
    }
}

fn statement_applies(statement: &Statement, ctx: &RequestContext) -> bool {
    // Actions are case-insensitive in IAM; resources (ARNs) are not.
    matches_patterns(&statement.actions, &ctx.action, true)
        && statement
            .resources
            .as_ref()
            .is_none_or(|r| matches_patterns(r, &ctx.resource, false))
        && statement
            .conditions
            .iter()
            .all(|c| condition_holds(c, &ctx.keys))
}

/// Evaluates identity policies for one request.
pub fn evaluate(policies: &[PolicyDocument], ctx: &RequestContext) -> Decision {
    let mut allowed = false;
    for statement in policies.iter().flat_map(|p| &p.statements) {
        if statement_applies(statement, ctx) {
            match statement.effect {
                Effect::Deny => return Decision::ExplicitDeny,
                Effect::Allow => allowed = true,
            }
        }
    }
    if allowed {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}

/// Does `principals` name `(kind, value)` (e.g. `("Federated", "arn:…:oidc-provider/…")`)?
fn names_principal(principals: &Principals, kind: &str, value: &str) -> bool {
    match principals {
        Principals::Any => true,
        Principals::Typed(list) => list
            .iter()
            .any(|(k, values)| k == kind && values.iter().any(|v| v == value || v == "*")),
    }
}

/// Evaluates a trust policy for `action` by the principal `(kind, value)`, with the
/// condition keys in `ctx.keys` (for web identity: `<provider>:sub`, `<provider>:aud`).
pub fn trust_allows(
    trust: &PolicyDocument,
    principal_kind: &str,
    principal: &str,
    ctx: &RequestContext,
) -> Decision {
    let mut allowed = false;
    for statement in &trust.statements {
        let names = statement
            .principals
            .as_ref()
            .is_some_and(|p| names_principal(p, principal_kind, principal));
        if names && statement_applies(statement, ctx) {
            match statement.effect {
                Effect::Deny => return Decision::ExplicitDeny,
                Effect::Allow => allowed = true,
            }
        }
    }
    if allowed {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}

#[cfg(test)]
mod tests {
    use super::super::policy::{parse, PolicyKind};
    use super::*;

    #[test]
    fn glob_semantics() {
        assert!(glob("*", "", false));
        assert!(glob("s3:Get*", "s3:GetObject", false));
        assert!(glob("s3:get*", "s3:GetObject", true));
        assert!(!glob("s3:get*", "s3:GetObject", false));
        assert!(glob("arn:aws:s3:::b/*", "arn:aws:s3:::b/a/b/c", false));
        assert!(!glob("arn:aws:s3:::b/*", "arn:aws:s3:::b", false));
        assert!(glob("a?c", "abc", false));
        assert!(!glob("a?c", "ac", false));
        assert!(glob(
            "emr-containers-sa-*-*-123-x",
            "emr-containers-sa-spark-driver-abc-123-x",
            false
        ));
        assert!(glob("a*b*c", "aXbYbZc", false));
        assert!(!glob("a*b*c", "aXbYbZ", false));
    }

    fn doc(text: &str) -> PolicyDocument {
        parse(text, PolicyKind::Identity).unwrap()
    }

    #[test]
    fn default_deny_allow_and_explicit_deny_wins() {
        let allow = doc(
            r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::data/*"}}"#,
        );
        let deny = doc(
            r#"{"Statement":{"Effect":"Deny","Action":"s3:*","Resource":"arn:aws:s3:::data/secret*"}}"#,
        );
        let ctx = |a: &str, r: &str| RequestContext::new(a, r);
        assert_eq!(
            evaluate(&[], &ctx("s3:GetObject", "arn:aws:s3:::data/x")),
            Decision::ImplicitDeny
        );
        assert_eq!(
            evaluate(
                std::slice::from_ref(&allow),
                &ctx("s3:GetObject", "arn:aws:s3:::data/x")
            ),
            Decision::Allow
        );
        assert_eq!(
            evaluate(
                std::slice::from_ref(&allow),
                &ctx("s3:PutObject", "arn:aws:s3:::data/x")
            ),
            Decision::ImplicitDeny
        );
        assert_eq!(
            evaluate(
                std::slice::from_ref(&allow),
                &ctx("s3:GetObject", "arn:aws:s3:::other/x")
            ),
            Decision::ImplicitDeny
        );
        assert_eq!(
            evaluate(
                &[allow, deny],
                &ctx("s3:GetObject", "arn:aws:s3:::data/secret.txt")
            ),
            Decision::ExplicitDeny
        );
    }

    #[test]
    fn not_action_and_not_resource() {
        let p = doc(
            r#"{"Statement":{"Effect":"Allow","NotAction":"iam:*","NotResource":"arn:aws:s3:::private/*"}}"#,
        );
        assert_eq!(
            evaluate(
                std::slice::from_ref(&p),
                &RequestContext::new("s3:GetObject", "arn:aws:s3:::pub/x")
            ),
            Decision::Allow
        );
        assert_eq!(
            evaluate(
                std::slice::from_ref(&p),
                &RequestContext::new("iam:GetRole", "*")
            ),
            Decision::ImplicitDeny
        );
        assert_eq!(
            evaluate(
                &[p],
                &RequestContext::new("s3:GetObject", "arn:aws:s3:::private/x")
            ),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn conditions_on_global_keys() {
        let p = doc(
            r#"{"Statement":{"Effect":"Allow","Action":"logs:*","Resource":"*","Condition":{"StringEquals":{"aws:RequestedRegion":"us-east-2"}}}}"#,
        );
        let ctx = RequestContext::new("logs:PutLogEvents", "arn:aws:logs:us-east-2:1:log-group:g");
        assert_eq!(
            evaluate(
                std::slice::from_ref(&p),
                &ctx.clone().with_key("aws:RequestedRegion", "us-east-2")
            ),
            Decision::Allow
        );
        assert_eq!(
            evaluate(
                std::slice::from_ref(&p),
                &ctx.clone().with_key("aws:RequestedRegion", "eu-west-1")
            ),
            Decision::ImplicitDeny
        );
        assert_eq!(
            evaluate(&[p], &ctx),
            Decision::ImplicitDeny,
            "absent key fails a positive operator"
        );
    }

    #[test]
    fn web_identity_trust() {
        let trust = parse(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"elasticmapreduce.amazonaws.com"},"Action":"sts:AssumeRole"},
            {"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/issuer.example/id/X"},"Action":"sts:AssumeRoleWithWebIdentity",
             "Condition":{"StringLike":{"issuer.example/id/X:sub":"system:serviceaccount:ns:emr-containers-sa-*-*-123456789012-abc"}}}]}"#,
            PolicyKind::Trust,
        )
        .unwrap();
        let provider = "arn:aws:iam::123456789012:oidc-provider/issuer.example/id/X";
        let ctx = |sub: &str| {
            RequestContext::new("sts:AssumeRoleWithWebIdentity", "*")
                .with_key("issuer.example/id/X:sub", sub)
                .with_key("issuer.example/id/X:aud", "sts.amazonaws.com")
        };
        let ok = ctx("system:serviceaccount:ns:emr-containers-sa-spark-driver-42-123456789012-abc");
        assert_eq!(
            trust_allows(&trust, "Federated", provider, &ok),
            Decision::Allow
        );
        let other_ns =
            ctx("system:serviceaccount:other:emr-containers-sa-spark-driver-42-123456789012-abc");
        assert_eq!(
            trust_allows(&trust, "Federated", provider, &other_ns),
            Decision::ImplicitDeny
        );
        assert_eq!(
            trust_allows(
                &trust,
                "Federated",
                "arn:aws:iam::123456789012:oidc-provider/evil",
                &ok
            ),
            Decision::ImplicitDeny
        );
    }
}
