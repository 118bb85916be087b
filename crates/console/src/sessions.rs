//! Console sessions: a server-side table keyed by a random cookie value, each session
//! with its principal, its expiry and its own CSRF token.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use sparkyard_aws::Principal;

/// The session cookie.
pub const COOKIE: &str = "sparkyard_console";
/// The cookie that ties the sign-in form's anti-forgery token to one browser before there
/// is a session.
pub const PRE_COOKIE: &str = "sparkyard_console_pre";

/// 32 bytes from the operating system's generator.
pub fn random_bytes() -> [u8; 32] {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the operating system's random generator failed");
    bytes
}

/// A fresh 256-bit value as 64 hex digits.
pub fn random_token() -> String {
    hex::encode(random_bytes())
}

/// Equality whose time does not depend on where the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// How a session was signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInMethod {
    /// A one-time link from `sparkyard console` (the administrator).
    Link,
    /// An access key id and secret (and session token), checked against the keyring.
    AccessKey,
}

#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Principal,
    /// Sent with every form; a POST without it is refused.
    pub csrf: String,
    pub expires: DateTime<Utc>,
    pub method: SignInMethod,
}

/// The session table. Sessions live in memory: a restart of the server signs everyone
/// out, which is the safe direction.
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// A new session; returns its id (the cookie value).
    pub fn create(
        &self,
        principal: Principal,
        expires: DateTime<Utc>,
        method: SignInMethod,
    ) -> (String, Session) {
        let id = random_token();
        let session = Session {
            principal,
            csrf: random_token(),
            expires,
            method,
        };
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let now = Utc::now();
        map.retain(|_, s| s.expires > now);
        map.insert(id.clone(), session.clone());
        (id, session)
    }

    /// The live session with this id; an expired one is dropped.
    pub fn get(&self, id: &str, now: DateTime<Utc>) -> Option<Session> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(id) {
            Some(s) if s.expires > now => Some(s.clone()),
            Some(_) => {
                map.remove(id);
                None
            }
            None => None,
        }
    }

    pub fn remove(&self, id: &str) {
        self.map
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'h>(headers: &'h http::HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// `Set-Cookie` for a session cookie: not readable by scripts, never sent cross-site.
pub fn set_cookie(name: &str, value: &str, max_age_secs: i64) -> String {
    format!("{name}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age_secs}")
}

/// `Set-Cookie` that removes a cookie.
pub fn clear_cookie(name: &str) -> String {
    format!("{name}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal() -> Principal {
        Principal {
            access_key_id: "AKIAEXAMPLE".into(),
            account_id: "123456789012".into(),
            arn: "arn:aws:iam::123456789012:root".into(),
            region: "us-east-1".into(),
            service: "emr-containers".into(),
        }
    }

    #[test]
    fn sessions_expire_and_sign_out() {
        let sessions = Sessions::default();
        let now = Utc::now();
        let (id, s) = sessions.create(
            principal(),
            now + chrono::Duration::hours(1),
            SignInMethod::Link,
        );
        assert_eq!(id.len(), 64);
        assert_ne!(s.csrf, id);
        assert!(sessions.get(&id, now).is_some());
        assert!(sessions
            .get(&id, now + chrono::Duration::hours(2))
            .is_none());
        assert!(sessions.get(&id, now).is_none(), "dropped once expired");
        let (id, _) = sessions.create(
            principal(),
            now + chrono::Duration::hours(1),
            SignInMethod::Link,
        );
        sessions.remove(&id);
        assert!(sessions.get(&id, now).is_none());
    }

    #[test]
    fn cookies_are_parsed_and_set_strictly() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::COOKIE,
            "a=1; sparkyard_console=abc; b=2".parse().unwrap(),
        );
        assert_eq!(cookie(&headers, COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "c"), None);
        let set = set_cookie(COOKIE, "v", 60);
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/")
        );
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
