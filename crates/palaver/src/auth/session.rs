//! Server-side sessions: an opaque random token in the `palaver_session`
//! cookie, stored by its SHA-256, expiring and sliding, revocable.
//!
//! Validating a session must not cost a database round trip per request (the
//! read hot path): validated sessions are kept in a [`SessionCache`] of at
//! most [`CACHE_CAPACITY`] entries, each for at most [`CACHE_TTL`]. Logout,
//! suspension and revocation remove entries locally at once and on other
//! replicas through the access events ([`super::events`]); the TTL bounds how
//! long a lost event could keep a revoked session alive. Sliding expiry
//! writes at most once per [`EXTEND_EVERY`] per session.

use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderValue};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use moka::sync::Cache;
use rand::RngCore;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::identity::{User, UserId};

/// The cookie's name.
pub const COOKIE: &str = "palaver_session";
/// How long a session lives without being used.
pub const SESSION_TTL: Duration = Duration::from_secs(14 * 24 * 3600);
/// A used session's expiry is pushed back when it is older than this.
pub const EXTEND_EVERY: Duration = Duration::from_secs(5 * 60);
/// Most sessions held in memory per process.
pub const CACHE_CAPACITY: u64 = 100_000;
/// Longest a validated session is trusted without reading the database.
pub const CACHE_TTL: Duration = Duration::from_secs(30);
/// Token length in bytes before encoding (256 bits).
const TOKEN_BYTES: usize = 32;
/// An encoded token is 43 characters; anything much longer is not ours.
const MAX_COOKIE_VALUE: usize = 128;

/// A new session token (to hand to the client) and its id (to store).
pub struct NewToken {
    pub token: String,
    pub id: SessionId,
}

/// The stored identity of a session: hex SHA-256 of its token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionId(String);

impl SessionId {
    pub fn of_token(token: &str) -> Self {
        Self(hex(&Sha256::digest(token.as_bytes())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn from_event(id: String) -> Self {
        Self(id)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn new_token() -> NewToken {
    let mut bytes = [0u8; TOKEN_BYTES];
    rand::rng().fill_bytes(&mut bytes);
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let id = SessionId::of_token(&token);
    NewToken { token, id }
}

/// The session token from the request's cookies, if it has a well-formed one.
pub fn token_from(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim().trim_matches('"'))
        .filter(|v| {
            !v.is_empty()
                && v.len() <= MAX_COOKIE_VALUE
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .map(str::to_owned)
}

/// `Set-Cookie` for a new session.
pub fn set_cookie(token: &str, secure: bool) -> HeaderValue {
    cookie(token, SESSION_TTL.as_secs(), secure)
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_cookie(secure: bool) -> HeaderValue {
    cookie("", 0, secure)
}

fn cookie(value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text =
        format!("{COOKIE}={value}; HttpOnly; SameSite=Lax; Path=/; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("palaver_session="))
}

/// A validated session as the cache holds it.
#[derive(Debug, Clone)]
pub struct CachedSession {
    pub user: User,
    pub expires_at: OffsetDateTime,
}

impl CachedSession {
    /// Whether the sliding expiry is due to be pushed back at `now`.
    pub fn due_for_extension(&self, now: OffsetDateTime) -> bool {
        self.expires_at - now < SESSION_TTL - EXTEND_EVERY
    }
}

/// Validated sessions, bounded in count and age (see the module docs).
#[derive(Clone)]
pub struct SessionCache {
    entries: Cache<SessionId, CachedSession>,
}

impl Default for SessionCache {
    fn default() -> Self {
        Self::with_bounds(CACHE_CAPACITY, CACHE_TTL)
    }
}

impl SessionCache {
    pub fn with_bounds(capacity: u64, ttl: Duration) -> Self {
        Self {
            entries: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                // Invalidating by user needs a scan; keep it available.
                .support_invalidation_closures()
                .build(),
        }
    }

    pub fn get(&self, id: &SessionId) -> Option<CachedSession> {
        self.entries.get(id)
    }

    pub fn insert(&self, id: SessionId, session: CachedSession) {
        self.entries.insert(id, session);
    }

    pub fn remove(&self, id: &SessionId) {
        self.entries.invalidate(id);
    }

    /// Forgets every session of `user` (suspension, role change).
    pub fn remove_user(&self, user: &UserId) {
        let user = user.clone();
        // Fails only when closures are unsupported, which they are not.
        let _ = self
            .entries
            .invalidate_entries_if(move |_, session| session.user.id == user);
    }

    pub fn clear(&self) {
        self.entries.invalidate_all();
    }

    /// Entries held (after pending maintenance), for tests and metrics.
    pub fn len(&self) -> u64 {
        self.entries.run_pending_tasks();
        self.entries.entry_count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{Role, Username};

    fn user(id: &str) -> User {
        User {
            id: UserId::from_stored(id.into()),
            username: Username::parse("ada").unwrap(),
            display_name: "Ada".into(),
            role: Role::Member,
            suspended: false,
        }
    }

    fn session(id: &str) -> CachedSession {
        CachedSession {
            user: user(id),
            expires_at: OffsetDateTime::now_utc() + SESSION_TTL,
        }
    }

    #[test]
    fn tokens_are_random_and_stored_only_as_their_hash() {
        let a = new_token();
        let b = new_token();
        assert_ne!(a.token, b.token);
        assert_eq!(a.token.len(), 43);
        assert_eq!(a.id, SessionId::of_token(&a.token));
        assert_eq!(a.id.as_str().len(), 64);
        assert!(!a.id.as_str().contains(&a.token));
    }

    #[test]
    fn the_cookie_is_http_only_lax_and_secure_only_over_https() {
        let plain = set_cookie("tok", false);
        let plain = plain.to_str().unwrap();
        assert!(plain.starts_with("palaver_session=tok; "));
        for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=1209600"] {
            assert!(plain.contains(attr), "{plain}");
        }
        assert!(!plain.contains("Secure"));
        assert!(set_cookie("tok", true)
            .to_str()
            .unwrap()
            .ends_with("; Secure"));
        assert!(clear_cookie(false).to_str().unwrap().contains("Max-Age=0"));
    }

    #[test]
    fn malformed_cookies_yield_no_token() {
        let mut headers = HeaderMap::new();
        for bad in [
            "palaver_session=",
            "palaver_session=a b",
            "other=abc",
            "palaver_session=a;b=c=d",
        ] {
            headers.insert(header::COOKIE, HeaderValue::from_str(bad).unwrap());
            let token = token_from(&headers);
            assert!(token.is_none() || token.as_deref() == Some("a"), "{bad}");
        }
        let huge = format!("palaver_session={}", "a".repeat(4096));
        headers.insert(header::COOKIE, HeaderValue::from_str(&huge).unwrap());
        assert_eq!(token_from(&headers), None);
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; palaver_session=abc_-9"),
        );
        assert_eq!(token_from(&headers).as_deref(), Some("abc_-9"));
    }

    #[test]
    fn the_cache_holds_at_most_its_capacity() {
        let cache = SessionCache::with_bounds(100, Duration::from_secs(60));
        for i in 0..1_000 {
            cache.insert(SessionId(format!("{i}")), session("u"));
        }
        assert!(cache.len() <= 100, "{} entries", cache.len());
    }

    #[test]
    fn cached_sessions_expire_after_the_ttl() {
        let cache = SessionCache::with_bounds(100, Duration::from_millis(50));
        let id = SessionId("x".into());
        cache.insert(id.clone(), session("u"));
        assert!(cache.get(&id).is_some());
        std::thread::sleep(Duration::from_millis(120));
        assert!(cache.get(&id).is_none());
    }

    #[test]
    fn removing_a_user_forgets_all_their_sessions_only() {
        let cache = SessionCache::with_bounds(100, Duration::from_secs(60));
        cache.insert(SessionId("a1".into()), session("a"));
        cache.insert(SessionId("a2".into()), session("a"));
        cache.insert(SessionId("b1".into()), session("b"));
        cache.remove_user(&UserId::from_stored("a".into()));
        assert!(cache.get(&SessionId("a1".into())).is_none());
        assert!(cache.get(&SessionId("a2".into())).is_none());
        assert!(cache.get(&SessionId("b1".into())).is_some());
    }

    #[test]
    fn sliding_expiry_is_due_only_after_extend_every() {
        let now = OffsetDateTime::now_utc();
        let mut s = session("u");
        s.expires_at = now + SESSION_TTL;
        assert!(!s.due_for_extension(now));
        assert!(!s.due_for_extension(now + EXTEND_EVERY / 2));
        assert!(s.due_for_extension(now + EXTEND_EVERY + Duration::from_secs(1)));
    }
}
