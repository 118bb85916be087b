//! Test helpers: aws-sigv4, the SDK's own signer, as an independent implementation to check
//! the verifier against.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
    UriPathNormalizationMode,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::Request;

pub const AKID: &str = "AKIDEXAMPLE";
pub const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

pub struct Signed {
    pub request: Request<Vec<u8>>,
}

/// How aws-sigv4 signs a test request.
#[derive(Clone)]
pub struct How<'a> {
    pub key: (&'a str, &'a str),
    pub service: &'a str,
    pub token: Option<&'a str>,
    pub settings: SigningSettings,
    /// Sign `UNSIGNED-PAYLOAD` instead of the body hash (S3).
    pub unsigned_payload: bool,
    pub time: SystemTime,
}

pub fn emr(token: Option<&str>) -> How<'_> {
    How {
        key: (AKID, SECRET),
        service: "emr-containers",
        token,
        settings: SigningSettings::default(),
        unsigned_payload: false,
        time: SystemTime::now(),
    }
}

/// Signs with aws-sigv4 and returns the request as a server would see it (origin-form URI).
pub fn sign_with_sdk(
    method: &str,
    url: &str,
    extra_headers: &[(&str, &str)],
    body: &[u8],
    how: How<'_>,
) -> Signed {
    let uri: http::Uri = url.parse().unwrap();
    let mut builder = Request::builder()
        .method(method)
        .uri(url)
        .header("host", uri.authority().unwrap().as_str());
    for (k, v) in extra_headers {
        builder = builder.header(*k, *v);
    }
    let mut request = builder.body(body.to_vec()).unwrap();
    let identity: Identity = Credentials::new(
        how.key.0,
        how.key.1,
        how.token.map(str::to_string),
        None,
        "test",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name(how.service)
        .time(how.time)
        .settings(how.settings)
        .build()
        .unwrap()
        .into();
    let header_pairs: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap().to_string()))
        .collect();
    let signable_body = if how.unsigned_payload {
        SignableBody::UnsignedPayload
    } else {
        SignableBody::Bytes(body)
    };
    let signable = SignableRequest::new(
        method,
        url,
        header_pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        signable_body,
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    instructions.apply_to_request_http1x(&mut request);
    let origin: http::Uri = request
        .uri()
        .path_and_query()
        .unwrap()
        .as_str()
        .parse()
        .unwrap();
    *request.uri_mut() = origin;
    Signed { request }
}

pub fn s3(token: Option<&str>) -> How<'_> {
    let mut settings = SigningSettings::default();
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    How {
        service: "s3",
        settings,
        ..emr(token)
    }
}
