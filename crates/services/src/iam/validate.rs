//! IAM input validation (pure), with AWS's constraint messages.

use crate::wire::QueryError;
use axum::http::StatusCode;

/// `1 validation error detected: Value '…' at '…' failed to satisfy constraint: …`.
pub fn constraint(value: &str, member: &str, constraint: &str) -> QueryError {
    QueryError::validation(format!(
        "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {constraint}"
    ))
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_+=,.@-".contains(c)
}

/// Role and policy names: `[\w+=,.@-]+`, length-limited.
pub fn name(value: &str, member: &str, max: usize) -> Result<(), QueryError> {
    if value.is_empty() || value.chars().count() > max {
        return Err(constraint(
            value,
            member,
            &format!("Member must have length less than or equal to {max}"),
        ));
    }
    if !value.chars().all(is_name_char) {
        return Err(constraint(
            value,
            member,
            "Member must satisfy regular expression pattern: [\\w+=,.@-]+",
        ));
    }
    Ok(())
}

pub fn role_name(value: &str) -> Result<(), QueryError> {
    name(value, "roleName", 64)
}

pub fn policy_name(value: &str) -> Result<(), QueryError> {
    name(value, "policyName", 128)
}

/// `/` or `/…/` with printable ASCII in between.
pub fn path(value: &str) -> Result<(), QueryError> {
    let ok = value.len() <= 512
        && value.starts_with('/')
        && value.ends_with('/')
        && value.chars().all(|c| ('\u{21}'..='\u{7e}').contains(&c));
    if ok {
        Ok(())
    } else {
        Err(constraint(
            value,
            "path",
            "Member must satisfy regular expression pattern: (\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F)",
        ))
    }
}

pub fn max_session_duration(value: &str) -> Result<i64, QueryError> {
    match value.parse::<i64>() {
        Ok(v) if (3600..=43200).contains(&v) => Ok(v),
        _ => Err(constraint(
            value,
            "maxSessionDuration",
            "Member must have value less than or equal to 43200",
        )),
    }
}

/// Largest inline policy IAM accepts for a role, in characters (whitespace excluded by AWS;
/// we count it, which is stricter only for heavily indented documents).
pub const MAX_ROLE_POLICY_SIZE: usize = 10_240;

pub fn policy_size(document: &str, role: &str) -> Result<(), QueryError> {
    let size = document.chars().filter(|c| !c.is_whitespace()).count();
    if size > MAX_ROLE_POLICY_SIZE {
        Err(QueryError::new(
            StatusCode::CONFLICT,
            "LimitExceeded",
            format!("Maximum policy size of {MAX_ROLE_POLICY_SIZE} bytes exceeded for role {role}"),
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        role_name("realtime-batch-JobExecutionRole").unwrap();
        assert!(role_name("bad name").is_err());
        assert!(role_name(&"x".repeat(65)).is_err());
        path("/").unwrap();
        path("/service-role/").unwrap();
        assert!(path("service-role").is_err());
        assert!(path("/a b/").is_err());
        assert_eq!(max_session_duration("3600").unwrap(), 3600);
        assert!(max_session_duration("60").is_err());
    }
}
