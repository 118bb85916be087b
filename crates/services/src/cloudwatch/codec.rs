//! CloudWatch's three wire protocols, so every operation is written once against typed serde
//! structs: smithy-rpc-v2-cbor (what botocore ≥ 1.36 picks), JSON 1.0 (`X-Amz-Target:
//! GraniteServiceVersion20100801.<Op>`) and the original query protocol (`Action=<Op>` forms,
//! XML answers) that older SDKs and some CLI builds still send.
//!
//! Requests of every protocol become one tree ([`ciborium::Value`]) that a lenient serde
//! deserializer ([`from_value`]) reads: the query protocol carries every scalar as text, so
//! numbers and booleans are parsed from strings where the target type asks for them, and
//! CBOR's tag 1 (epoch seconds) reads as a number. Responses are serialized into the same tree
//! ([`ciborium::Value::serialized`]); timestamps carry tag 1 ([`Timestamp`]) so each writer
//! renders them its own way: CBOR keeps the tag, JSON writes epoch seconds, XML ISO 8601.
//!
//! Errors are rendered per protocol too; the JSON and CBOR ones carry
//! `x-amzn-query-error: <QueryCode>;Sender` (CloudWatch is `awsQueryCompatible`), which is
//! how botocore reports `InvalidParameterValue` rather than the shape name.

use std::collections::BTreeMap;
use std::fmt;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ciborium::Value;
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::wire::{self, Xml};

/// The JSON protocol's `X-Amz-Target` prefix and the CBOR path's service segment.
pub const TARGET_PREFIX: &str = "GraniteServiceVersion20100801";
/// The query protocol's XML namespace.
pub const XMLNS: &str = "http://monitoring.amazonaws.com/doc/2010-08-01/";
/// The query protocol's `Version`.
pub const VERSION: &str = "2010-08-01";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Cbor,
    Json,
    Query,
}

/// A CloudWatch error: the HTTP status, the modeled shape name (`__type` in JSON and CBOR)
/// and the query-protocol code clients report (`x-amzn-query-error`).
#[derive(Debug, Clone, PartialEq)]
pub struct CwError {
    pub status: StatusCode,
    pub shape: &'static str,
    pub code: &'static str,
    pub message: String,
}

impl CwError {
    pub fn new(
        status: StatusCode,
        shape: &'static str,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            shape,
            code,
            message: message.into(),
        }
    }

    pub fn invalid_value(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            "InvalidParameterValue",
            message,
        )
    }

    /// `MissingParameter`: "The parameter X is required."
    pub fn missing(parameter: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "MissingRequiredParameterException",
            "MissingParameter",
            format!("The parameter {parameter} is required."),
        )
    }

    pub fn combination(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidParameterCombinationException",
            "InvalidParameterCombination",
            message,
        )
    }

    /// The smithy validation failure (enum and length constraints), `ValidationError`.
    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "ValidationError",
            message,
        )
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            "ResourceNotFound",
            message,
        )
    }

    pub fn limit_exceeded(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "LimitExceededFault",
            "LimitExceeded",
            message,
        )
    }

    pub fn invalid_token(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidNextToken",
            "InvalidNextToken",
            message,
        )
    }

    pub fn invalid_format(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidFormatFault",
            "InvalidFormat",
            message,
        )
    }

    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "AccessDeniedException",
            "AccessDenied",
            message,
        )
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServiceFault",
            "InternalServiceError",
            "Internal service failure.",
        )
    }

    pub fn unknown_operation(op: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            "InvalidAction",
            format!("The action {op} is not valid for this web service."),
        )
    }

    fn kind(&self) -> &'static str {
        if self.status.is_server_error() {
            "Receiver"
        } else {
            "Sender"
        }
    }

    pub fn render(&self, protocol: Protocol, request_id: &str) -> Response {
        match protocol {
            Protocol::Query => {
                let mut e = wire::QueryError::new(self.status, self.code, &self.message);
                e.kind = self.kind();
                e.into_response(XMLNS, request_id)
            }
            Protocol::Json | Protocol::Cbor => {
                let body = Value::Map(vec![
                    (
                        Value::Text("__type".into()),
                        Value::Text(format!("com.amazonaws.cloudwatch#{}", self.shape)),
                    ),
                    (
                        Value::Text("message".into()),
                        Value::Text(self.message.clone()),
                    ),
                ]);
                let mut response = encode_body(protocol, self.status, &body, request_id);
                if let Ok(v) = HeaderValue::from_str(&format!("{};{}", self.code, self.kind())) {
                    response.headers_mut().insert("x-amzn-query-error", v);
                }
                response
            }
        }
    }
}

impl fmt::Display for CwError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

/// A timestamp, epoch seconds (fractions kept: CBOR and JSON clients send them).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Timestamp(pub f64);

impl Timestamp {
    pub fn secs(self) -> i64 {
        self.0.floor() as i64
    }

    pub fn from_secs(secs: i64) -> Self {
        Timestamp(secs as f64)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Whole seconds go out as integers: every client accepts them, and they round-trip.
        if self.0.fract() == 0.0 && self.0.abs() < 1e15 {
            ciborium::tag::Required::<i64, 1>(self.0 as i64).serialize(serializer)
        } else {
            ciborium::tag::Required::<f64, 1>(self.0).serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a timestamp")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Timestamp, E> {
                Ok(Timestamp(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
                Ok(Timestamp(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
                Ok(Timestamp(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
                parse_time(v).ok_or_else(|| E::custom(format!("invalid timestamp {v:?}")))
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// ISO 8601 (what the query protocol sends), with or without fractions and offset, or epoch
/// seconds as text.
fn parse_time(v: &str) -> Option<Timestamp> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Some(Timestamp(t.timestamp_millis() as f64 / 1000.0));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(v, format) {
            return Some(Timestamp(t.and_utc().timestamp_millis() as f64 / 1000.0));
        }
        if let Ok(d) = chrono::NaiveDate::parse_from_str(v, format) {
            return Some(Timestamp::from_secs(
                d.and_hms_opt(0, 0, 0)?.and_utc().timestamp(),
            ));
        }
    }
    v.parse::<f64>().ok().map(Timestamp)
}

// ---------------------------------------------------------------------------------------------
// Requests

/// Why a request body could not be read into the operation's input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

impl de::Error for DecodeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DecodeError(msg.to_string())
    }
}

/// Parses a CBOR or JSON body into the request tree (an empty body is an empty input).
pub fn parse_body(protocol: Protocol, body: &[u8]) -> Result<Value, DecodeError> {
    if body.is_empty() {
        return Ok(Value::Map(Vec::new()));
    }
    match protocol {
        Protocol::Cbor => ciborium::de::from_reader::<Value, _>(body)
            .map_err(|e| DecodeError(format!("invalid CBOR body: {e}"))),
        Protocol::Json => serde_json::from_slice::<serde_json::Value>(body)
            .map(json_to_value)
            .map_err(|e| DecodeError(format!("invalid JSON body: {e}"))),
        Protocol::Query => Ok(query_to_value(&wire::QueryParams::parse(body))),
    }
}

fn json_to_value(v: serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Integer(i.into()),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::Text(s),
        serde_json::Value::Array(a) => Value::Array(a.into_iter().map(json_to_value).collect()),
        serde_json::Value::Object(o) => Value::Map(
            o.into_iter()
                .map(|(k, v)| (Value::Text(k), json_to_value(v)))
                .collect(),
        ),
    }
}

/// A node of the query parameters as a tree, before lists are ordered.
#[derive(Default)]
struct QNode {
    text: Option<String>,
    children: BTreeMap<String, QNode>,
}

/// Turns flat query parameters into a tree: `A.B=x` nests, `X.member.N` is a list (ordered
/// by N), `X.entry.N.key`/`.value` a map. `Action` and `Version` are not input members.
pub fn query_to_value(params: &wire::QueryParams) -> Value {
    let mut root = QNode::default();
    for (key, value) in &params.0 {
        if key == "Action" || key == "Version" {
            continue;
        }
        let mut node = &mut root;
        for segment in key.split('.') {
            node = node.children.entry(segment.to_string()).or_default();
        }
        node.text = Some(value.clone());
    }
    qnode_value(root)
}

fn indexed(children: BTreeMap<String, QNode>) -> Vec<QNode> {
    let mut items: Vec<(u64, QNode)> = children
        .into_iter()
        .filter_map(|(k, v)| k.parse::<u64>().ok().map(|n| (n, v)))
        .collect();
    items.sort_by_key(|(n, _)| *n);
    items.into_iter().map(|(_, v)| v).collect()
}

fn qnode_value(mut node: QNode) -> Value {
    if node.children.is_empty() {
        return Value::Text(node.text.unwrap_or_default());
    }
    if node.children.len() == 1 {
        if let Some(members) = node.children.remove("member") {
            return Value::Array(
                indexed(members.children)
                    .into_iter()
                    .map(qnode_value)
                    .collect(),
            );
        }
        if let Some(entries) = node.children.remove("entry") {
            return Value::Map(
                indexed(entries.children)
                    .into_iter()
                    .map(|mut e| {
                        let key = e.children.remove("key").map(qnode_value);
                        let value = e.children.remove("value").map(qnode_value);
                        (
                            key.unwrap_or(Value::Text(String::new())),
                            value.unwrap_or(Value::Null),
                        )
                    })
                    .collect(),
            );
        }
    }
    Value::Map(
        node.children
            .into_iter()
            .map(|(k, v)| (Value::Text(k), qnode_value(v)))
            .collect(),
    )
}

/// Reads the request tree into `T`, leniently: text becomes a number or boolean when `T`
/// wants one (the query protocol), an integral float an integer, tag 1 its number.
pub fn from_value<T: DeserializeOwned>(value: Value) -> Result<T, DecodeError> {
    T::deserialize(Lenient(value))
}

struct Lenient(Value);

impl<'de> IntoDeserializer<'de, DecodeError> for Lenient {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

fn untag(v: Value) -> Value {
    match v {
        Value::Tag(_, inner) => untag(*inner),
        v => v,
    }
}

impl Lenient {
    fn number(self) -> Result<f64, DecodeError> {
        match untag(self.0) {
            Value::Float(f) => Ok(f),
            Value::Integer(i) => Ok(i128::from(i) as f64),
            Value::Text(s) => match s.trim() {
                "NaN" => Ok(f64::NAN),
                "Infinity" => Ok(f64::INFINITY),
                "-Infinity" => Ok(f64::NEG_INFINITY),
                t => t
                    .parse::<f64>()
                    .map_err(|_| DecodeError(format!("{s:?} is not a number"))),
            },
            other => Err(DecodeError(format!("expected a number, got {other:?}"))),
        }
    }

    fn integer(self) -> Result<i64, DecodeError> {
        match untag(self.0) {
            Value::Integer(i) => {
                i64::try_from(i128::from(i)).map_err(|_| DecodeError("integer out of range".into()))
            }
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(f as i64),
            Value::Text(s) => s
                .trim()
                .parse::<i64>()
                .map_err(|_| DecodeError(format!("{s:?} is not an integer"))),
            other => Err(DecodeError(format!("expected an integer, got {other:?}"))),
        }
    }
}

macro_rules! lenient_int {
    ($($method:ident),*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
            visitor.visit_i64(self.integer()?)
        }
    )*};
}

impl<'de> Deserializer<'de> for Lenient {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match untag(self.0) {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Integer(i) => {
                let i = i128::from(i);
                match i64::try_from(i) {
                    Ok(i) => visitor.visit_i64(i),
                    Err(_) => visitor.visit_f64(i as f64),
                }
            }
            Value::Float(f) => visitor.visit_f64(f),
            Value::Text(s) => visitor.visit_string(s),
            Value::Bytes(b) => visitor.visit_byte_buf(b),
            Value::Array(items) => visitor.visit_seq(de::value::SeqDeserializer::new(
                items.into_iter().map(Lenient),
            )),
            Value::Map(entries) => visitor.visit_map(de::value::MapDeserializer::new(
                entries.into_iter().map(|(k, v)| (Lenient(k), Lenient(v))),
            )),
            other => Err(DecodeError(format!("unsupported value {other:?}"))),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match untag(self.0) {
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Text(s) if s.eq_ignore_ascii_case("true") => visitor.visit_bool(true),
            Value::Text(s) if s.eq_ignore_ascii_case("false") => visitor.visit_bool(false),
            other => Err(DecodeError(format!("expected a boolean, got {other:?}"))),
        }
    }

    lenient_int!(
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64
    );

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_f64(self.number()?)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_f64(self.number()?)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            v => visitor.visit_some(Lenient(v)),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match untag(self.0) {
            // The query protocol sends an empty list as `X=`.
            Value::Null => visitor.visit_seq(de::value::SeqDeserializer::new(
                Vec::<Lenient>::new().into_iter(),
            )),
            Value::Text(s) if s.is_empty() => visitor.visit_seq(de::value::SeqDeserializer::new(
                Vec::<Lenient>::new().into_iter(),
            )),
            v => Lenient(v).deserialize_any(visitor),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match untag(self.0) {
            Value::Text(s) if s.is_empty() => visitor.visit_map(de::value::MapDeserializer::new(
                Vec::<(Lenient, Lenient)>::new().into_iter(),
            )),
            v => Lenient(v).deserialize_any(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        i128 u128 char str string bytes byte_buf unit unit_struct tuple tuple_struct
        enum identifier ignored_any
    }
}

// ---------------------------------------------------------------------------------------------
// Responses

/// The response tree of `output` (`None`: an operation without output).
pub fn to_value<T: Serialize>(output: &T) -> Value {
    Value::serialized(output).unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot serialize a CloudWatch response");
        Value::Map(Vec::new())
    })
}

/// `output` as JSON (timestamps as epoch seconds).
pub fn to_json<T: Serialize>(output: &T) -> serde_json::Value {
    value_to_json(&to_value(output))
}

fn value_to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Integer(i) => {
            let i = i128::from(*i);
            i64::try_from(i)
                .map(Into::into)
                .unwrap_or_else(|_| (i as f64).into())
        }
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        Value::Text(s) => s.clone().into(),
        Value::Bytes(b) => crate::s3::blob::b64(b).into(),
        Value::Tag(_, inner) => value_to_json(inner),
        Value::Array(a) => a.iter().map(value_to_json).collect(),
        Value::Map(m) => serde_json::Value::Object(
            m.iter()
                .map(|(k, v)| (key_text(k), value_to_json(v)))
                .collect(),
        ),
        _ => serde_json::Value::Null,
    }
}

fn key_text(k: &Value) -> String {
    match k {
        Value::Text(s) => s.clone(),
        other => format!("{other:?}"),
    }
}

/// A number as the query protocol's XML writes it (`1`, `2.5`, `1.0E-5` style is not needed:
/// botocore parses any float text).
fn number_text(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

/// Writes the children of a structure as query-protocol XML: members by name, list items
/// as `<member>`, timestamps as ISO 8601. (No CloudWatch output this module serves has a map.)
fn write_xml(xml: &mut Xml, name: &str, v: &Value) {
    match v {
        Value::Null => {}
        Value::Bool(b) => {
            xml.text(name, if *b { "true" } else { "false" });
        }
        Value::Integer(i) => {
            xml.text(name, &i128::from(*i).to_string());
        }
        Value::Float(f) => {
            xml.text(name, &number_text(*f));
        }
        Value::Text(s) => {
            xml.text(name, s);
        }
        Value::Tag(1, inner) => {
            let secs = match inner.as_ref() {
                Value::Integer(i) => i128::from(*i) as f64,
                Value::Float(f) => *f,
                _ => 0.0,
            };
            let t = chrono::DateTime::from_timestamp_millis((secs * 1000.0).round() as i64)
                .unwrap_or_default();
            xml.text(
                name,
                &t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
            );
        }
        Value::Tag(_, inner) => write_xml(xml, name, inner),
        Value::Array(items) => {
            xml.open(name);
            for item in items {
                write_xml(xml, "member", item);
            }
            xml.close(name);
        }
        Value::Map(entries) => {
            xml.open(name);
            for (k, v) in entries {
                write_xml(xml, &key_text(k), v);
            }
            xml.close(name);
        }
        _ => {}
    }
}

fn encode_body(protocol: Protocol, status: StatusCode, body: &Value, request_id: &str) -> Response {
    let (bytes, content_type) = match protocol {
        Protocol::Cbor => {
            let mut out = Vec::new();
            if let Err(e) = ciborium::ser::into_writer(body, &mut out) {
                tracing::error!(error = %e, "cannot encode a CBOR response");
            }
            (out, "application/cbor")
        }
        _ => (
            value_to_json(body).to_string().into_bytes(),
            "application/x-amz-json-1.0",
        ),
    };
    let mut response = (status, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if protocol == Protocol::Cbor {
        headers.insert("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"));
    }
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert(sparkyard_aws::request_id::HEADER, id);
    }
    response
}

/// A success response for `op` (`output` `None`: an operation that returns nothing).
pub fn render_ok(
    protocol: Protocol,
    op: &str,
    output: Option<Value>,
    request_id: &str,
) -> Response {
    match protocol {
        Protocol::Query => {
            let result = output.map(|v| {
                wire::fragment(|xml| {
                    if let Value::Map(entries) = &v {
                        for (k, v) in entries {
                            write_xml(xml, &key_text(k), v);
                        }
                    }
                })
            });
            wire::query_response(op, XMLNS, result.as_deref(), request_id)
        }
        _ => encode_body(
            protocol,
            StatusCode::OK,
            &output.unwrap_or(Value::Map(Vec::new())),
            request_id,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "PascalCase")]
    struct Dim {
        name: String,
        value: String,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "PascalCase")]
    struct Datum {
        metric_name: Option<String>,
        value: Option<f64>,
        timestamp: Option<Timestamp>,
        #[serde(default)]
        dimensions: Vec<Dim>,
        storage_resolution: Option<i64>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "PascalCase")]
    struct Input {
        namespace: Option<String>,
        #[serde(default)]
        metric_data: Vec<Datum>,
        flag: Option<bool>,
    }

    #[test]
    fn query_params_read_as_typed_input() {
        let params = wire::QueryParams::parse(
            b"Action=PutMetricData&Version=2010-08-01&Namespace=App&Flag=true\
&MetricData.member.2.MetricName=b&MetricData.member.2.Value=2.5\
&MetricData.member.10.MetricName=c&MetricData.member.10.Value=3\
&MetricData.member.1.MetricName=a&MetricData.member.1.Value=1\
&MetricData.member.1.Timestamp=2024-01-02T03%3A04%3A05Z&MetricData.member.1.StorageResolution=1\
&MetricData.member.1.Dimensions.member.1.Name=Host&MetricData.member.1.Dimensions.member.1.Value=h1",
        );
        let input: Input = from_value(query_to_value(&params)).unwrap();
        assert_eq!(input.namespace.as_deref(), Some("App"));
        assert_eq!(input.flag, Some(true));
        let names: Vec<_> = input
            .metric_data
            .iter()
            .map(|d| d.metric_name.clone().unwrap())
            .collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(input.metric_data[1].value, Some(2.5));
        assert_eq!(
            input.metric_data[0].timestamp,
            Some(Timestamp(1704164645.0))
        );
        assert_eq!(input.metric_data[0].storage_resolution, Some(1));
        assert_eq!(
            input.metric_data[0].dimensions,
            [Dim {
                name: "Host".into(),
                value: "h1".into()
            }]
        );
    }

    #[test]
    fn cbor_tags_and_json_numbers_read_as_timestamps() {
        let v = Value::Map(vec![
            (Value::Text("Namespace".into()), Value::Text("N".into())),
            (
                Value::Text("MetricData".into()),
                Value::Array(vec![Value::Map(vec![
                    (
                        Value::Text("Timestamp".into()),
                        Value::Tag(1, Box::new(Value::Float(1.5))),
                    ),
                    (Value::Text("Value".into()), Value::Integer(3.into())),
                ])]),
            ),
        ]);
        let mut bytes = Vec::new();
        ciborium::ser::into_writer(&v, &mut bytes).unwrap();
        let input: Input = from_value(parse_body(Protocol::Cbor, &bytes).unwrap()).unwrap();
        assert_eq!(input.metric_data[0].timestamp, Some(Timestamp(1.5)));
        assert_eq!(input.metric_data[0].value, Some(3.0));
        let json = br#"{"Namespace":"N","MetricData":[{"Timestamp":1700000000,"Value":1.25}]}"#;
        let input: Input = from_value(parse_body(Protocol::Json, json).unwrap()).unwrap();
        assert_eq!(input.metric_data[0].timestamp, Some(Timestamp(1.7e9)));
        assert!(
            from_value::<Input>(parse_body(Protocol::Json, br#"{"Flag":"maybe"}"#).unwrap())
                .is_err()
        );
    }

    #[derive(Serialize)]
    #[serde(rename_all = "PascalCase")]
    struct Out {
        label: String,
        timestamps: Vec<Timestamp>,
        values: Vec<f64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        next_token: Option<String>,
    }

    #[test]
    fn responses_render_per_protocol() {
        let out = to_value(&Out {
            label: "a<b".into(),
            timestamps: vec![Timestamp(60.0)],
            values: vec![2.0],
            next_token: None,
        });
        let json = value_to_json(&out);
        assert_eq!(
            json,
            serde_json::json!({"Label": "a<b", "Timestamps": [60], "Values": [2.0]})
        );
        let mut xml = Xml::default();
        if let Value::Map(entries) = &out {
            for (k, v) in entries {
                write_xml(&mut xml, &key_text(k), v);
            }
        }
        let xml = xml.finish();
        assert!(xml.contains("<Label>a&lt;b</Label>"), "{xml}");
        assert!(
            xml.contains("<Timestamps>\n<member>1970-01-01T00:01:00Z</member>\n</Timestamps>"),
            "{xml}"
        );
        assert!(xml.contains("<member>2.0</member>"), "{xml}");
        assert!(!xml.contains("NextToken"));
        let mut cbor = Vec::new();
        ciborium::ser::into_writer(&out, &mut cbor).unwrap();
        let back: Value = ciborium::de::from_reader(&cbor[..]).unwrap();
        let Value::Map(entries) = back else { panic!() };
        assert!(matches!(&entries[1].1, Value::Array(a) if matches!(a[0], Value::Tag(1, _))));
    }

    #[test]
    fn errors_carry_the_query_code() {
        let r = CwError::invalid_value("bad").render(Protocol::Json, "rid");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            r.headers()["x-amzn-query-error"],
            "InvalidParameterValue;Sender"
        );
    }
}
