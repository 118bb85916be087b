//! Pagination: opaque `nextToken`s and the page-size cap.
//!
//! Every list is ordered by a sort key that is unique per item (newest first: the key is
//! the creation time in milliseconds followed by the id; for job runs, the time-ordered id
//! itself). A token is the base64url of `v1:<last key returned>`, and the next page holds
//! the items whose key sorts strictly after it in list order. Keys strictly advance, so a
//! token is never repeated within one pagination (botocore aborts when it sees a repeat),
//! and items created while a client pages do not shift later pages.
//!
//! Page size: `maxResults` defaults to [`DEFAULT_PAGE_SIZE`] and is capped at
//! [`MAX_PAGE_SIZE`] (larger values are served as the cap, not rejected; AWS documents no
//! bound). `maxResults < 1` is a ValidationException.

use base64::Engine;
use sparkyard_aws::AwsError;

pub const DEFAULT_PAGE_SIZE: usize = 50;
pub const MAX_PAGE_SIZE: usize = 50;

const ENGINE: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub fn encode_token(last_key: &str) -> String {
    ENGINE.encode(format!("v1:{last_key}"))
}

pub fn decode_token(token: &str) -> Result<String, AwsError> {
    ENGINE
        .decode(token.trim())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("v1:").map(str::to_string))
        .ok_or_else(|| {
            AwsError::validation("Invalid NextToken: the token was not issued by this service.")
        })
}

pub fn page_size(max_results: Option<i64>) -> Result<usize, AwsError> {
    match max_results {
        None => Ok(DEFAULT_PAGE_SIZE),
        Some(n) if n < 1 => Err(AwsError::validation(format!(
            "1 validation error detected: Value '{n}' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1"
        ))),
        Some(n) => Ok((n as usize).min(MAX_PAGE_SIZE)),
    }
}

/// One page of a list. `items` yields `(key, item)` in list order, already filtered.
/// `after` is the decoded token (items up to and including that key are skipped by the
/// caller's range query or here).
pub fn page<T>(items: impl Iterator<Item = (String, T)>, size: usize) -> (Vec<T>, Option<String>) {
    let mut out = Vec::with_capacity(size.min(64));
    let mut last_key = None;
    for (key, item) in items {
        if out.len() == size {
            // There is at least one more: hand out a token that resumes after the last one.
            return (out, last_key.map(|k: String| encode_token(&k)));
        }
        last_key = Some(key);
        out.push(item);
    }
    (out, None)
}

/// Sort key for "newest first" lists ordered by creation time: descending order is the
/// reverse of this key's ascending order.
pub fn created_key(created_ms: i64, id: &str) -> String {
    format!("{created_ms:015}/{id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_reject_garbage() {
        let t = encode_token("000001/abc");
        assert_eq!(decode_token(&t).unwrap(), "000001/abc");
        assert!(decode_token("t1").is_err());
        assert!(decode_token(&ENGINE.encode("v2:x")).is_err());
    }

    #[test]
    fn pages_never_repeat_tokens() {
        let keys: Vec<String> = (0..7).map(|i| format!("{i:03}")).collect();
        let mut seen = std::collections::HashSet::new();
        let mut after: Option<String> = None;
        let mut all = Vec::new();
        loop {
            let iter = keys
                .iter()
                .filter(|k| after.as_ref().is_none_or(|a| *k > a))
                .map(|k| (k.clone(), k.clone()));
            let (items, token) = page(iter, 3);
            all.extend(items);
            match token {
                Some(t) => {
                    assert!(seen.insert(t.clone()));
                    after = Some(decode_token(&t).unwrap());
                }
                None => break,
            }
        }
        assert_eq!(all, keys);
    }

    #[test]
    fn exact_multiple_has_no_trailing_token() {
        let (items, token) = page((0..3).map(|i| (i.to_string(), i)), 3);
        assert_eq!(items.len(), 3);
        assert!(token.is_none());
    }

    #[test]
    fn page_size_caps() {
        assert_eq!(page_size(None).unwrap(), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(Some(7)).unwrap(), 7);
        assert_eq!(page_size(Some(10_000)).unwrap(), MAX_PAGE_SIZE);
        assert!(page_size(Some(0)).is_err());
    }
}
