//! OIDC bearer tokens (`--oidc-issuer`, `--oidc-audience`): JWTs verified
//! against the issuer's published keys.
//!
//! - Keys: `<issuer>/.well-known/openid-configuration` names the `jwks_uri`;
//!   the key set is cached for [`JWKS_MAX_AGE`] and refetched early when a
//!   token names a `kid` we do not hold (key rotation), at most once per
//!   [`REFETCH_EVERY`] so that tokens with made-up `kid`s cannot make us
//!   hammer the issuer.
//! - Algorithms: RS256 and ES256 only. `alg: none` and HMAC are refused
//!   before any key is looked at (an HMAC "signed" with the public key is the
//!   classic confusion attack), and the key's type must match the algorithm.
//! - Claims: `iss` must be the issuer, `exp` and `nbf` are checked with
//!   [`LEEWAY_SECS`] of clock leeway, and the audience must be named by
//!   `aud` or, for Cognito access tokens (which carry none), `client_id`.
//! - Users are provisioned on first sight from `sub` (stored as
//!   `"<issuer> <sub>"`), with a username from `preferred_username`,
//!   `cognito:username`, `email` or `nickname`, normalised like a local one;
//!   on a clash or an unusable claim a suffix from the subject's hash makes
//!   it unique.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use moka::sync::Cache;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::sync::RwLock;

use crate::domain::now_millis;
use crate::identity::{DisplayName, User, UserId, Username};
use crate::store::accounts::{AccountStore, CreateError, NewUser};
use crate::store::StoreError;

/// How long a fetched key set is used before it is fetched again.
pub const JWKS_MAX_AGE: Duration = Duration::from_secs(3600);
/// Least time between two fetches caused by unknown `kid`s.
pub const REFETCH_EVERY: Duration = Duration::from_secs(30);
/// Clock leeway for `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 30;
/// Most provisioned users remembered by subject, and for how long.
pub const USERS_CAPACITY: u64 = 100_000;
pub const USERS_TTL: Duration = Duration::from_secs(30);
/// Fetch timeout for discovery and keys.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest discovery document or key set read.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// Why a token was refused; the message is safe to show.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's algorithm is not accepted (RS256 and ES256 only)")]
    Algorithm,
    #[error("the token is signed by an unknown key")]
    UnknownKey,
    #[error("the token is invalid: {0}")]
    Invalid(String),
    #[error("the issuer's keys cannot be fetched")]
    KeysUnavailable,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    aud: Option<Audience>,
    client_id: Option<String>,
    preferred_username: Option<String>,
    #[serde(rename = "cognito:username")]
    cognito_username: Option<String>,
    email: Option<String>,
    nickname: Option<String>,
    name: Option<String>,
}

struct Keys {
    set: JwkSet,
    fetched: Instant,
}

pub struct Oidc {
    issuer: String,
    audience: String,
    http: reqwest012::Client,
    keys: RwLock<Option<Keys>>,
    /// When an unknown `kid` last caused a fetch.
    last_refetch: Mutex<Option<Instant>>,
    users: Cache<String, User>,
}

impl Oidc {
    pub fn new(issuer: &str, audience: &str) -> Self {
        let http = reqwest012::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest012::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Self {
            issuer: issuer.trim_end_matches('/').to_owned(),
            audience: audience.to_owned(),
            http,
            keys: RwLock::new(None),
            last_refetch: Mutex::new(None),
            users: Cache::builder()
                .max_capacity(USERS_CAPACITY)
                .time_to_live(USERS_TTL)
                .support_invalidation_closures()
                .build(),
        }
    }

    /// The user a token names, provisioned on first sight.
    pub async fn user(&self, token: &str, accounts: &dyn AccountStore) -> Result<User, TokenError> {
        let claims = self.verify(token).await?;
        let subject = format!("{} {}", self.issuer, claims.sub);
        if let Some(user) = self.users.get(&subject) {
            return Ok(user);
        }
        let user = match accounts.user_by_oidc_subject(&subject).await? {
            Some(user) => user,
            None => self.provision(&subject, &claims, accounts).await?,
        };
        self.users.insert(subject, user.clone());
        Ok(user)
    }

    /// Forgets what is cached about `user` (suspension, role change).
    pub fn forget(&self, user: &UserId) {
        let user = user.clone();
        let _ = self.users.invalidate_entries_if(move |_, u| u.id == user);
    }

    pub fn forget_all(&self) {
        self.users.invalidate_all();
    }

    async fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        let alg = header.alg;
        if !matches!(alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(TokenError::Algorithm);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let jwk = self.key(&kid).await?;
        let key_fits = matches!(
            (&jwk.algorithm, alg),
            (AlgorithmParameters::RSA(_), Algorithm::RS256)
                | (AlgorithmParameters::EllipticCurve(_), Algorithm::ES256)
        );
        if !key_fits {
            return Err(TokenError::Algorithm);
        }
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| TokenError::UnknownKey)?;
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[&self.issuer]);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .map_err(|e| TokenError::Invalid(e.to_string()))?;
        let claims = data.claims;
        let audience_ok = match &claims.aud {
            Some(Audience::One(aud)) => *aud == self.audience,
            Some(Audience::Many(auds)) => auds.contains(&self.audience),
            None => claims.client_id.as_deref() == Some(self.audience.as_str()),
        };
        if !audience_ok {
            return Err(TokenError::Invalid("wrong audience".into()));
        }
        if claims.sub.is_empty() || claims.sub.len() > 255 {
            return Err(TokenError::Invalid("unusable sub".into()));
        }
        Ok(claims)
    }

    /// The key named `kid`, fetching the key set when it is stale or does
    /// not hold `kid` (the latter at most once per [`REFETCH_EVERY`]).
    async fn key(&self, kid: &str) -> Result<Jwk, TokenError> {
        let seen = {
            let keys = self.keys.read().await;
            match keys.as_ref() {
                Some(keys) if keys.fetched.elapsed() < JWKS_MAX_AGE => {
                    if let Some(jwk) = keys.set.find(kid) {
                        return Ok(jwk.clone());
                    }
                    if !self.may_refetch() {
                        return Err(TokenError::UnknownKey);
                    }
                    Some(keys.fetched)
                }
                Some(keys) => Some(keys.fetched),
                None => None,
            }
        };
        let mut keys = self.keys.write().await;
        // Another request may have fetched while we waited for the lock.
        if let Some(current) = keys.as_ref() {
            if seen.is_none_or(|seen| current.fetched > seen) {
                return current.set.find(kid).cloned().ok_or(TokenError::UnknownKey);
            }
        }
        let set = self.fetch_keys().await?;
        let found = set.find(kid).cloned();
        *keys = Some(Keys {
            set,
            fetched: Instant::now(),
        });
        found.ok_or(TokenError::UnknownKey)
    }

    fn may_refetch(&self) -> bool {
        let mut last = self.last_refetch.lock().unwrap_or_else(|e| e.into_inner());
        match *last {
            Some(at) if at.elapsed() < REFETCH_EVERY => false,
            _ => {
                *last = Some(Instant::now());
                true
            }
        }
    }

    async fn fetch_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, TokenError> {
        let response = self
            .http
            .get(url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|error| {
                tracing::warn!(%error, url, "OIDC fetch failed");
                TokenError::KeysUnavailable
            })?;
        let bytes = response
            .bytes()
            .await
            .map_err(|_| TokenError::KeysUnavailable)?;
        if bytes.len() > MAX_DOCUMENT_BYTES {
            return Err(TokenError::KeysUnavailable);
        }
        serde_json::from_slice(&bytes).map_err(|error| {
            tracing::warn!(%error, url, "OIDC document malformed");
            TokenError::KeysUnavailable
        })
    }

    async fn fetch_keys(&self) -> Result<JwkSet, TokenError> {
        let discovery: Discovery = self
            .fetch_json(&format!("{}/.well-known/openid-configuration", self.issuer))
            .await?;
        if discovery.issuer.trim_end_matches('/') != self.issuer {
            tracing::warn!(
                expected = %self.issuer,
                found = %discovery.issuer,
                "OIDC discovery names another issuer"
            );
            return Err(TokenError::KeysUnavailable);
        }
        self.fetch_json(&discovery.jwks_uri).await
    }

    async fn provision(
        &self,
        subject: &str,
        claims: &Claims,
        accounts: &dyn AccountStore,
    ) -> Result<User, TokenError> {
        let wanted = [
            claims.preferred_username.as_deref(),
            claims.cognito_username.as_deref(),
            claims.email.as_deref().and_then(|e| e.split('@').next()),
            claims.nickname.as_deref(),
        ];
        let base = wanted
            .into_iter()
            .flatten()
            .find_map(|raw| Username::parse(raw).ok());
        let digest = Sha256::digest(subject.as_bytes());
        let suffix: String = digest.iter().take(3).map(|b| format!("{b:02x}")).collect();
        let mut candidates = Vec::new();
        if let Some(base) = &base {
            candidates.push(base.as_str().to_owned());
            let stem: String = base.as_str().chars().take(Username::MAX_LEN - 7).collect();
            candidates.push(format!("{stem}-{suffix}"));
        }
        candidates.push(format!("user-{suffix}"));
        let long: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
        candidates.push(format!("user-{long}"));
        for candidate in candidates {
            let Ok(username) = Username::parse(&candidate) else {
                continue;
            };
            let display_name = claims
                .name
                .as_deref()
                .and_then(|n| DisplayName::parse(n).ok())
                .map(|n| n.as_str().to_owned())
                .unwrap_or_else(|| username.as_str().to_owned());
            let created = accounts
                .create_user(
                    NewUser {
                        username,
                        display_name,
                        role: Some(crate::identity::Role::Member),
                        password_hash: None,
                        oidc_subject: Some(subject.to_owned()),
                    },
                    now_millis(),
                )
                .await;
            match created {
                Ok(user) => return Ok(user),
                Err(CreateError::Taken) => {
                    // The same subject provisioned concurrently elsewhere?
                    if let Some(user) = accounts.user_by_oidc_subject(subject).await? {
                        return Ok(user);
                    }
                }
                Err(CreateError::Store(e)) => return Err(e.into()),
            }
        }
        Err(TokenError::Invalid("no username available".into()))
    }
}
