//! Wire helpers shared by the services: the AWS query protocol (IAM, STS: form-encoded
//! `Action=…` requests, XML responses and `<ErrorResponse>` errors) and the JSON protocols'
//! error bodies.
//!
//! Pure functions and small types; the services render through them so every XML response
//! is escaped the same way.

use std::collections::BTreeMap;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Escapes text for an XML element body or attribute value.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A tiny XML builder: enough for the flat, well-known shapes the query protocol returns.
/// Element names are trusted (they come from our code); text is always escaped.
#[derive(Debug, Default)]
pub struct Xml {
    out: String,
}

impl Xml {
    pub fn new() -> Self {
        Self {
            out: String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"),
        }
    }

    pub fn open(&mut self, name: &str) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        self.out.push('>');
        self.out.push('\n');
        self
    }

    /// Opens an element with an `xmlns` attribute (the response's root).
    pub fn open_ns(&mut self, name: &str, xmlns: &str) -> &mut Self {
        self.out
            .push_str(&format!("<{name} xmlns=\"{}\">\n", xml_escape(xmlns)));
        self
    }

    pub fn close(&mut self, name: &str) -> &mut Self {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push_str(">\n");
        self
    }

    pub fn text(&mut self, name: &str, value: &str) -> &mut Self {
        self.out
            .push_str(&format!("<{name}>{}</{name}>\n", xml_escape(value)));
        self
    }

    pub fn opt_text(&mut self, name: &str, value: Option<&str>) -> &mut Self {
        if let Some(value) = value {
            self.text(name, value);
        }
        self
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// The parameters of a query-protocol request (`Action=…&Version=…&…`), from the form body
/// or, for GET, the query string. Repeated keys keep the last value, as AWS does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryParams(pub BTreeMap<String, String>);

impl QueryParams {
    pub fn parse(form: &[u8]) -> Self {
        Self(form_urlencoded::parse(form).into_owned().collect())
    }

    /// Merges the URL query string and the form body (body wins), as AWS accepts both.
    pub fn from_parts(query: Option<&str>, body: &[u8]) -> Self {
        let mut params = query.map(|q| Self::parse(q.as_bytes())).unwrap_or_default();
        params.0.extend(Self::parse(body).0);
        params
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    pub fn action(&self) -> Option<&str> {
        self.get("Action")
    }

    /// A required parameter, or the query protocol's `ValidationError` naming it as AWS does.
    pub fn required(&self, key: &str) -> Result<&str, QueryError> {
        self.get(key).ok_or_else(|| {
            QueryError::validation(format!(
                "1 validation error detected: Value null at '{}' failed to satisfy constraint: Member must not be null",
                lower_first(key)
            ))
        })
    }
}

/// `RoleName` → `roleName`, the member name AWS's validation messages use.
pub fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A query-protocol error: `<ErrorResponse><Error><Type>…` (IAM, STS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    pub status: StatusCode,
    /// `Sender` (the caller's fault) or `Receiver` (ours).
    pub kind: &'static str,
    pub code: String,
    pub message: String,
}

impl QueryError {
    pub fn new(status: StatusCode, code: impl Into<String>, message: impl Into<String>) -> Self {
        let kind = if status.is_server_error() {
            "Receiver"
        } else {
            "Sender"
        };
        Self {
            status,
            kind,
            code: code.into(),
            message: message.into(),
        }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "ValidationError", message)
    }

    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "AccessDenied", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "ServiceFailure", message)
    }

    /// The XML body, with `request_id` and the service's namespace.
    pub fn to_xml(&self, xmlns: &str, request_id: &str) -> String {
        let mut xml = Xml::new();
        xml.open_ns("ErrorResponse", xmlns)
            .open("Error")
            .text("Type", self.kind)
            .text("Code", &self.code)
            .text("Message", &self.message)
            .close("Error")
            .text("RequestId", request_id)
            .close("ErrorResponse");
        xml.finish()
    }

    pub fn into_response(self, xmlns: &str, request_id: &str) -> Response {
        xml_response(self.status, self.to_xml(xmlns, request_id), request_id)
    }
}

/// `text/xml` with `x-amzn-RequestId`, as IAM and STS answer.
pub fn xml_response(status: StatusCode, body: String, request_id: &str) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert(sparkyard_aws::request_id::HEADER, id);
    }
    response
}

/// A successful query-protocol response: `<{Action}Response><{Action}Result>…</…>` with the
/// request id in `ResponseMetadata`. `result` is the already-rendered inner XML (may be empty
/// for actions without a result element).
pub fn query_response(
    action: &str,
    xmlns: &str,
    result: Option<&str>,
    request_id: &str,
) -> Response {
    let mut xml = Xml::new();
    xml.open_ns(&format!("{action}Response"), xmlns);
    if let Some(result) = result {
        xml.open(&format!("{action}Result"));
        xml.out.push_str(result);
        xml.close(&format!("{action}Result"));
    }
    xml.open("ResponseMetadata")
        .text("RequestId", request_id)
        .close("ResponseMetadata");
    xml.close(&format!("{action}Response"));
    xml_response(StatusCode::OK, xml.finish(), request_id)
}

/// Renders child elements into a fragment (no XML declaration) for [`query_response`].
pub fn fragment(build: impl FnOnce(&mut Xml)) -> String {
    let mut xml = Xml::default();
    build(&mut xml);
    xml.finish()
}

/// The request id the request-id middleware assigned, or a fresh one.
pub fn request_id(extensions: &http::Extensions) -> String {
    extensions
        .get::<sparkyard_aws::request_id::RequestId>()
        .map(|r| r.0.clone())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string())
}

/// ISO 8601 with milliseconds and `Z`, as the query protocol's timestamps look.
pub fn iso8601(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_xml_specials() {
        assert_eq!(xml_escape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&apos;");
    }

    #[test]
    fn error_response_has_aws_shape() {
        let e = QueryError::new(
            StatusCode::NOT_FOUND,
            "NoSuchEntity",
            "The role with name x cannot be found.",
        );
        let xml = e.to_xml("https://iam.amazonaws.com/doc/2010-05-08/", "rid");
        assert!(xml.contains("<ErrorResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">"));
        assert!(xml.contains("<Error>\n<Type>Sender</Type>\n<Code>NoSuchEntity</Code>\n<Message>The role with name x cannot be found.</Message>\n</Error>\n<RequestId>rid</RequestId>"));
    }

    #[test]
    fn params_merge_query_and_body() {
        let p = QueryParams::from_parts(
            Some("Action=GetRole&RoleName=a"),
            b"RoleName=b%2Bc&Version=2010-05-08",
        );
        assert_eq!(p.action(), Some("GetRole"));
        assert_eq!(p.get("RoleName"), Some("b+c"));
        assert_eq!(p.required("Nope").unwrap_err().code, "ValidationError");
    }
}
