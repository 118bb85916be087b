//! IAM policy documents: parsing and validation (pure).
//!
//! Two kinds share the grammar: identity policies (a role's inline policies: no `Principal`)
//! and trust policies (a role's `AssumeRolePolicyDocument`: `Principal` required). A
//! condition key we cannot evaluate is refused when the policy is stored, rather than
//! silently ignored at evaluation time, where it would widen or narrow access unnoticed.

use serde_json::Value;

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// `Action`/`Resource` (the listed patterns) or `NotAction`/`NotResource` (everything else).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Patterns {
    Only(Vec<String>),
    Not(Vec<String>),
}

/// One condition test: `"StringLike": {"key": ["v1", "v2"]}` → operator, key, values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub operator: String,
    pub key: String,
    pub values: Vec<String>,
}

/// `Principal` of a trust policy: `"*"` or a map of principal types to values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principals {
    Any,
    Typed(Vec<(String, Vec<String>)>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    pub actions: Patterns,
    /// Absent in trust policies.
    pub resources: Option<Patterns>,
    pub principals: Option<Principals>,
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDocument {
    pub version: Option<String>,
    pub statements: Vec<Statement>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyKind {
    /// A role's inline (identity-based) policy.
    Identity,
    /// A role's trust policy.
    Trust,
}

/// Condition operators the evaluator implements (each also with `IfExists`).
pub const SUPPORTED_OPERATORS: &[&str] = &[
    "StringEquals",
    "StringNotEquals",
    "StringLike",
    "StringNotLike",
];

/// Global condition keys an identity policy may test (the evaluator knows their values).
pub const SUPPORTED_IDENTITY_KEYS: &[&str] = &[
    "aws:PrincipalAccount",
    "aws:PrincipalArn",
    "aws:RequestedRegion",
];

/// Why a document was refused; the message becomes `MalformedPolicyDocument`'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub String);

fn malformed(message: impl Into<String>) -> Malformed {
    Malformed(message.into())
}

/// A string or a list of strings, as IAM accepts for most fields.
fn strings(value: &Value, field: &str) -> Result<Vec<String>, Malformed> {
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|v| {
                v.as_str().map(str::to_string).ok_or_else(|| {
                    malformed(format!(
                        "Syntax errors in policy: {field} must be a string or a list of strings."
                    ))
                })
            })
            .collect(),
        _ => Err(malformed(format!(
            "Syntax errors in policy: {field} must be a string or a list of strings."
        ))),
    }
}

/// Parses and validates `text` as a policy of `kind`.
pub fn parse(text: &str, kind: PolicyKind) -> Result<PolicyDocument, Malformed> {
    let value: Value =
        serde_json::from_str(text).map_err(|_| malformed("This policy contains invalid Json"))?;
    let Value::Object(doc) = value else {
        return Err(malformed("This policy contains invalid Json"));
    };
    for key in doc.keys() {
        if !["Version", "Id", "Statement"].contains(&key.as_str()) {
            return Err(malformed(format!(
                "Syntax errors in policy: unknown field {key}."
            )));
        }
    }
    let version = match doc.get("Version") {
        None => None,
        Some(Value::String(v)) if v == "2012-10-17" || v == "2008-10-17" => Some(v.clone()),
        Some(_) => return Err(malformed("The policy must contain a valid version string")),
    };
    let statements = match doc.get("Statement") {
        Some(Value::Array(items)) => items.iter().collect::<Vec<_>>(),
        Some(v @ Value::Object(_)) => vec![v],
        _ => return Err(malformed("Syntax errors in policy: Statement is missing.")),
    };
    if statements.is_empty() {
        return Err(malformed("Syntax errors in policy: Statement is missing."));
    }
    let statements = statements
        .into_iter()
        .map(|s| parse_statement(s, kind))
        .collect::<Result<_, _>>()?;
    Ok(PolicyDocument {
        version,
        statements,
    })
}

fn parse_statement(value: &Value, kind: PolicyKind) -> Result<Statement, Malformed> {
    let Value::Object(st) = value else {
        return Err(malformed(
            "Syntax errors in policy: each Statement must be an object.",
        ));
    };
    for key in st.keys() {
        if ![
            "Sid",
            "Effect",
            "Action",
            "NotAction",
            "Resource",
            "NotResource",
            "Principal",
            "NotPrincipal",
            "Condition",
        ]
        .contains(&key.as_str())
        {
            return Err(malformed(format!(
                "Syntax errors in policy: unknown field {key}."
            )));
        }
    }
    let effect = match st.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        _ => {
            return Err(malformed(
                "Syntax errors in policy: Effect must be Allow or Deny.",
            ))
        }
    };
    let actions = match (st.get("Action"), st.get("NotAction")) {
        (Some(a), None) => Patterns::Only(strings(a, "Action")?),
        (None, Some(a)) => Patterns::Not(strings(a, "NotAction")?),
        _ => return Err(malformed("Policy statement must contain actions.")),
    };
    for action in match &actions {
        Patterns::Only(a) | Patterns::Not(a) => a,
    } {
        if action != "*" && !action.contains(':') {
            return Err(malformed(format!("Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.: {action}")));
        }
    }
    let resources = match (st.get("Resource"), st.get("NotResource")) {
        (Some(r), None) => Some(Patterns::Only(strings(r, "Resource")?)),
        (None, Some(r)) => Some(Patterns::Not(strings(r, "NotResource")?)),
        (None, None) => None,
        _ => {
            return Err(malformed(
                "Syntax errors in policy: Resource and NotResource together.",
            ))
        }
    };
    if st.contains_key("NotPrincipal") {
        return Err(malformed(
            "Syntax errors in policy: NotPrincipal is not supported.",
        ));
    }
    let principals = st.get("Principal").map(parse_principals).transpose()?;
    match kind {
        PolicyKind::Identity => {
            if principals.is_some() {
                return Err(malformed("Policy document should not specify a principal."));
            }
            if resources.is_none() {
                return Err(malformed("Policy statement must contain resources."));
            }
        }
        PolicyKind::Trust => {
            if principals.is_none() {
                return Err(malformed("Missing required field Principal"));
            }
            if resources.is_some() {
                return Err(malformed("Has prohibited field Resource"));
            }
        }
    }
    let conditions = match st.get("Condition") {
        None => vec![],
        Some(c) => parse_conditions(c, kind)?,
    };
    Ok(Statement {
        sid: st.get("Sid").and_then(Value::as_str).map(str::to_string),
        effect,
        actions,
        resources,
        principals,
        conditions,
    })
}

fn parse_principals(value: &Value) -> Result<Principals, Malformed> {
    match value {
        Value::String(s) if s == "*" => Ok(Principals::Any),
        Value::Object(map) => map
            .iter()
            .map(|(kind, v)| {
                if !["AWS", "Service", "Federated", "CanonicalUser"].contains(&kind.as_str()) {
                    return Err(malformed(format!(
                        "Invalid principal in policy: \"{kind}\""
                    )));
                }
                Ok((kind.clone(), strings(v, "Principal")?))
            })
            .collect::<Result<_, _>>()
            .map(Principals::Typed),
        _ => Err(malformed("Invalid principal in policy")),
    }
}

/// Splits `StringLikeIfExists` into (`StringLike`, true).
pub fn base_operator(operator: &str) -> (&str, bool) {
    match operator.strip_suffix("IfExists") {
        Some(base) => (base, true),
        None => (operator, false),
    }
}

fn parse_conditions(value: &Value, kind: PolicyKind) -> Result<Vec<Condition>, Malformed> {
    let Value::Object(ops) = value else {
        return Err(malformed(
            "Syntax errors in policy: Condition must be an object.",
        ));
    };
    let mut out = Vec::new();
    for (operator, tests) in ops {
        let (base, _) = base_operator(operator);
        if !SUPPORTED_OPERATORS.contains(&base) {
            return Err(malformed(format!(
                "Condition operator {operator} is not supported by sparkyard (supported: {}).",
                SUPPORTED_OPERATORS.join(", ")
            )));
        }
        let Value::Object(tests) = tests else {
            return Err(malformed(
                "Syntax errors in policy: a condition operator must map keys to values.",
            ));
        };
        for (key, values) in tests {
            let supported = match kind {
                PolicyKind::Identity => SUPPORTED_IDENTITY_KEYS
                    .iter()
                    .any(|k| k.eq_ignore_ascii_case(key)),
                // Web-identity keys are `<provider>:sub|aud|amr`, checked against the token.
                PolicyKind::Trust => {
                    key.ends_with(":sub")
                        || key.ends_with(":aud")
                        || SUPPORTED_IDENTITY_KEYS
                            .iter()
                            .any(|k| k.eq_ignore_ascii_case(key))
                }
            };
            if !supported {
                return Err(malformed(format!(
                    "Condition key {key} is not supported by sparkyard; supported keys: {}.",
                    match kind {
                        PolicyKind::Identity => SUPPORTED_IDENTITY_KEYS.join(", "),
                        PolicyKind::Trust => format!(
                            "<oidc-provider>:sub, <oidc-provider>:aud, {}",
                            SUPPORTED_IDENTITY_KEYS.join(", ")
                        ),
                    }
                )));
            }
            out.push(Condition {
                operator: operator.clone(),
                key: key.clone(),
                values: strings(values, "Condition")?,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[
        {"Effect":"Allow","Action":["s3:PutObject","s3:GetObject","s3:ListBucket"],"Resource":"*"},
        {"Effect":"Allow","Action":["logs:PutLogEvents","logs:CreateLogStream","logs:DescribeLogGroups","logs:DescribeLogStreams"],"Resource":["arn:aws:logs:*:*:*"]}]}"#;

    #[test]
    fn parses_the_seed_policy() {
        let doc = parse(SEED_POLICY, PolicyKind::Identity).unwrap();
        assert_eq!(doc.statements.len(), 2);
        assert_eq!(
            doc.statements[1].resources,
            Some(Patterns::Only(vec!["arn:aws:logs:*:*:*".into()]))
        );
    }

    #[test]
    fn parses_the_seed_trust_policy_and_emr_statement() {
        let doc = parse(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"elasticmapreduce.amazonaws.com"},"Action":"sts:AssumeRole"},
            {"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:oidc-provider/oidc.example/id/AB"},"Action":"sts:AssumeRoleWithWebIdentity",
             "Condition":{"StringLike":{"oidc.example/id/AB:sub":"system:serviceaccount:ns:emr-containers-sa-*-*-123456789012-abc"}}}]}"#,
            PolicyKind::Trust,
        )
        .unwrap();
        assert_eq!(
            doc.statements[1].conditions[0].key,
            "oidc.example/id/AB:sub"
        );
    }

    #[test]
    fn refuses_bad_documents_with_reasons() {
        assert_eq!(
            parse("{", PolicyKind::Identity).unwrap_err().0,
            "This policy contains invalid Json"
        );
        assert!(parse(r#"{"Statement":[]}"#, PolicyKind::Identity).is_err());
        assert!(parse(
            r#"{"Statement":{"Effect":"Maybe","Action":"s3:*","Resource":"*"}}"#,
            PolicyKind::Identity
        )
        .is_err());
        assert!(parse(
            r#"{"Statement":{"Effect":"Allow","Action":"GetObject","Resource":"*"}}"#,
            PolicyKind::Identity
        )
        .is_err());
        assert!(parse(
            r#"{"Statement":{"Effect":"Allow","Action":"s3:*"}}"#,
            PolicyKind::Identity
        )
        .is_err());
        assert!(parse(
            r#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}}"#,
            PolicyKind::Identity
        )
        .is_err());
        assert!(parse(
            r#"{"Statement":{"Effect":"Allow","Action":"sts:AssumeRole"}}"#,
            PolicyKind::Trust
        )
        .is_err());
    }

    #[test]
    fn unsupported_condition_keys_are_refused_not_ignored() {
        let err = parse(
            r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}}"#,
            PolicyKind::Identity,
        )
        .unwrap_err();
        assert!(err.0.contains("IpAddress is not supported"), "{err}");
        let err = parse(
            r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEquals":{"s3:prefix":"a/"}}}}"#,
            PolicyKind::Identity,
        )
        .unwrap_err();
        assert!(err.0.contains("s3:prefix is not supported"), "{err}");
        parse(
            r#"{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringEqualsIfExists":{"aws:RequestedRegion":"us-east-2"}}}}"#,
            PolicyKind::Identity,
        )
        .unwrap();
    }
}
