//! IAM's XML shapes (pure).

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::store::Role;
use crate::wire::{iso8601, Xml};

/// IAM returns policy documents URL-encoded (RFC 3986); botocore decodes them back to JSON.
const POLICY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

pub fn encode_policy(document: &str) -> String {
    utf8_percent_encode(document, POLICY_ENCODE).to_string()
}

/// `<Role>` (or `<member>` in lists) children.
pub fn role(xml: &mut Xml, element: &str, role: &Role) {
    xml.open(element)
        .text("Path", &role.path)
        .text("RoleName", &role.name)
        .text("RoleId", &role.role_id)
        .text("Arn", &role.arn)
        .text("CreateDate", &iso8601(role.create_date))
        .text(
            "AssumeRolePolicyDocument",
            &encode_policy(&role.trust_policy),
        )
        .opt_text("Description", role.description.as_deref())
        .text("MaxSessionDuration", &role.max_session_duration.to_string());
    if !role.tags.is_empty() {
        xml.open("Tags");
        for (key, value) in &role.tags {
            xml.open("member")
                .text("Key", key)
                .text("Value", value)
                .close("member");
        }
        xml.close("Tags");
    }
    xml.close(element);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_are_url_encoded_like_iam() {
        assert_eq!(
            encode_policy(r#"{"Version": "2012-10-17"}"#),
            "%7B%22Version%22%3A%20%222012-10-17%22%7D"
        );
    }
}
