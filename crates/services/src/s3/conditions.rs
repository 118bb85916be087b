//! S3's conditional requests (pure): the `If-*` headers of GetObject and HeadObject, the
//! `x-amz-copy-source-if-*` headers of CopyObject and UploadPartCopy, and the conditional
//! writes of PutObject and CompleteMultipartUpload (`If-None-Match: *`, `If-Match`).
//!
//! Reads follow RFC 9110's order, which gives S3's documented precedence: a true `If-Match`
//! makes a false `If-Unmodified-Since` irrelevant (200), and a false `If-None-Match` answers
//! 304 whatever `If-Modified-Since` says. Clients such as S3A send `If-Match` on every read
//! to detect an object overwritten mid-read, and on every rename copy.

use s3s::dto::{ETagCondition, Timestamp};
use s3s::{s3_error, S3Error};

use super::shared::timestamp;

/// What a request's conditions allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Proceed,
    /// 304 for GetObject and HeadObject.
    NotModified,
    /// 412.
    PreconditionFailed,
}

/// The four conditions of a read (or, named `x-amz-copy-source-if-*`, of a copy's source).
#[derive(Debug, Clone, Default)]
pub struct ReadConditions {
    pub if_match: Option<ETagCondition>,
    pub if_none_match: Option<ETagCondition>,
    pub if_modified_since: Option<Timestamp>,
    pub if_unmodified_since: Option<Timestamp>,
}

/// Whether `condition` names the object whose ETag (unquoted) is `etag`. `*` names any
/// object; a weak tag compares by value, as S3 does.
fn names(condition: &ETagCondition, etag: &str) -> bool {
    match condition {
        ETagCondition::Any => true,
        ETagCondition::ETag(tag) => tag.value().trim_matches('"') == etag,
    }
}

impl ReadConditions {
    /// Evaluates the conditions against an object's ETag and modification time. Dates on the
    /// wire have whole seconds, so the object's time is truncated to the second first (an
    /// object is not "modified since" the `Last-Modified` it was served with).
    pub fn evaluate(&self, etag: &str, last_modified_ms: i64) -> Verdict {
        let modified = timestamp(last_modified_ms - last_modified_ms.rem_euclid(1000));
        if let Some(c) = &self.if_match {
            if !names(c, etag) {
                return Verdict::PreconditionFailed;
            }
        } else if let Some(t) = &self.if_unmodified_since {
            if modified > *t {
                return Verdict::PreconditionFailed;
            }
        }
        if let Some(c) = &self.if_none_match {
            if names(c, etag) {
                return Verdict::NotModified;
            }
        } else if let Some(t) = &self.if_modified_since {
            if modified <= *t {
                return Verdict::NotModified;
            }
        }
        Verdict::Proceed
    }

    /// For a copy's source, where S3 answers every unmet condition with 412.
    pub fn check_copy_source(&self, etag: &str, last_modified_ms: i64) -> Result<(), S3Error> {
        match self.evaluate(etag, last_modified_ms) {
            Verdict::Proceed => Ok(()),
            Verdict::NotModified | Verdict::PreconditionFailed => Err(precondition_failed()),
        }
    }
}

pub fn precondition_failed() -> S3Error {
    s3_error!(
        PreconditionFailed,
        "At least one of the pre-conditions you specified did not hold"
    )
}

pub fn not_modified() -> S3Error {
    s3_error!(NotModified, "Not Modified")
}

/// The conditions of a write: `If-None-Match: *` (create only) and `If-Match` (replace only
/// that version). Checked inside the index transaction that writes, so two racing
/// conditional writes cannot both succeed.
#[derive(Debug, Clone, Default)]
pub struct WriteConditions {
    pub if_match: Option<ETagCondition>,
    pub if_none_match: Option<ETagCondition>,
}

/// Why a conditional write was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteRefused {
    PreconditionFailed,
    /// `If-Match` on a key with no object: S3 answers 404 NoSuchKey.
    NoSuchKey,
}

impl WriteConditions {
    /// S3 implements `If-None-Match` on writes only as `*`.
    pub fn validate(&self) -> Result<(), S3Error> {
        match &self.if_none_match {
            Some(ETagCondition::ETag(_)) => Err(s3_error!(
                NotImplemented,
                "A header you provided implies functionality that is not implemented"
            )),
            _ => Ok(()),
        }
    }

    /// Checks the conditions against the ETag of the object the write would replace.
    pub fn check(&self, current: Option<&str>) -> Result<(), WriteRefused> {
        if self.if_none_match.is_some() && current.is_some() {
            return Err(WriteRefused::PreconditionFailed);
        }
        match (&self.if_match, current) {
            (Some(_), None) => Err(WriteRefused::NoSuchKey),
            (Some(c), Some(etag)) if !names(c, etag) => Err(WriteRefused::PreconditionFailed),
            _ => Ok(()),
        }
    }
}

impl WriteRefused {
    pub fn into_error(self) -> S3Error {
        match self {
            Self::PreconditionFailed => precondition_failed(),
            Self::NoSuchKey => super::shared::no_such_key("", ""),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use s3s::dto::ETag;

    const T: i64 = 1_700_000_000_000;

    fn tag(s: &str) -> Option<ETagCondition> {
        Some(ETagCondition::ETag(ETag::Strong(s.into())))
    }

    fn at(ms: i64) -> Option<Timestamp> {
        Some(timestamp(ms))
    }

    fn eval(c: ReadConditions) -> Verdict {
        c.evaluate("abc", T + 400)
    }

    #[test]
    fn etag_conditions() {
        let c = |m, n| ReadConditions {
            if_match: m,
            if_none_match: n,
            ..Default::default()
        };
        assert_eq!(eval(c(tag("abc"), None)), Verdict::Proceed);
        assert_eq!(eval(c(tag("xyz"), None)), Verdict::PreconditionFailed);
        assert_eq!(eval(c(Some(ETagCondition::Any), None)), Verdict::Proceed);
        assert_eq!(eval(c(None, tag("abc"))), Verdict::NotModified);
        assert_eq!(eval(c(None, tag("xyz"))), Verdict::Proceed);
        assert_eq!(
            eval(c(None, Some(ETagCondition::Any))),
            Verdict::NotModified
        );
        // 412 wins over 304.
        assert_eq!(eval(c(tag("xyz"), tag("abc"))), Verdict::PreconditionFailed);
    }

    #[test]
    fn dates_compare_in_whole_seconds() {
        let c = |since, unmodified| ReadConditions {
            if_modified_since: since,
            if_unmodified_since: unmodified,
            ..Default::default()
        };
        // The object's Last-Modified as served (T, its milliseconds dropped).
        assert_eq!(eval(c(at(T), None)), Verdict::NotModified);
        assert_eq!(eval(c(at(T - 1000), None)), Verdict::Proceed);
        assert_eq!(eval(c(None, at(T))), Verdict::Proceed);
        assert_eq!(eval(c(None, at(T - 1000))), Verdict::PreconditionFailed);
    }

    #[test]
    fn s3_precedence() {
        // If-Match true and If-Unmodified-Since false: 200.
        let c = ReadConditions {
            if_match: tag("abc"),
            if_unmodified_since: at(T - 60_000),
            ..Default::default()
        };
        assert_eq!(eval(c), Verdict::Proceed);
        // If-None-Match false and If-Modified-Since true: 304.
        let c = ReadConditions {
            if_none_match: tag("abc"),
            if_modified_since: at(T - 60_000),
            ..Default::default()
        };
        assert_eq!(eval(c), Verdict::NotModified);
        // If-None-Match true and If-Modified-Since false: the ETag decides, 200.
        let c = ReadConditions {
            if_none_match: tag("xyz"),
            if_modified_since: at(T + 60_000),
            ..Default::default()
        };
        assert_eq!(eval(c), Verdict::Proceed);
        // A copy source answers 412 where a read answers 304.
        let c = ReadConditions {
            if_none_match: tag("abc"),
            ..Default::default()
        };
        assert_eq!(
            c.check_copy_source("abc", T).unwrap_err().code().as_str(),
            "PreconditionFailed"
        );
    }

    #[test]
    fn conditional_writes() {
        let create_only = WriteConditions {
            if_none_match: Some(ETagCondition::Any),
            ..Default::default()
        };
        assert_eq!(create_only.check(None), Ok(()));
        assert_eq!(
            create_only.check(Some("abc")),
            Err(WriteRefused::PreconditionFailed)
        );
        let replace = WriteConditions {
            if_match: tag("abc"),
            ..Default::default()
        };
        assert_eq!(replace.check(Some("abc")), Ok(()));
        assert_eq!(
            replace.check(Some("def")),
            Err(WriteRefused::PreconditionFailed)
        );
        assert_eq!(replace.check(None), Err(WriteRefused::NoSuchKey));
        assert_eq!(WriteConditions::default().check(Some("abc")), Ok(()));
        let bad = WriteConditions {
            if_none_match: tag("abc"),
            ..Default::default()
        };
        assert!(bad.validate().is_err());
        assert!(create_only.validate().is_ok());
    }
}
