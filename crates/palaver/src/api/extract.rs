//! Extractors whose rejections come back in our error shape: bodies, paths
//! and queries, the client address, and the signed-in user.
//!
//! A request is signed in by its `palaver_session` cookie or, with OIDC on,
//! by `Authorization: Bearer <JWT>`. A cookie-authenticated write or
//! WebSocket upgrade must come from this site's own pages
//! ([`crate::auth::origin`] says why and how it is told).

use std::net::IpAddr;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, Method, StatusCode};
use ipnet::IpNet;

use super::error::ApiError;
use crate::auth::oidc::TokenError;
use crate::auth::origin::{canonical, is_https, peer, same_site};
use crate::auth::session::{self, SessionId};
use crate::identity::User;
use crate::AppState;

/// `axum::Json`, with bad JSON, wrong content type and oversized bodies
/// answered as [`ApiError`].
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

/// `axum::extract::Query`, rejecting as [`ApiError`].
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// `axum::extract::Path`, rejecting as [`ApiError`].
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        match rejection.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType,
            _ => ApiError::bad_request("invalid_json", rejection.body_text()),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::bad_request("invalid_query", rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::bad_request("invalid_path", rejection.body_text())
    }
}

/// The client's address: the socket peer, or, when the peer is a trusted
/// proxy, the nearest untrusted address in `X-Forwarded-For`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = peer(parts);
        let forwarded = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",");
        Ok(ClientIp(client_ip(
            peer,
            &forwarded,
            &state.trusted_proxies,
        )))
    }
}

/// Walks `X-Forwarded-For` from the right (the entry our proxy added) and
/// returns the first address that is not a trusted proxy. Entries a client
/// wrote itself sit further left and are only reached through trusted hops.
pub fn client_ip(peer: IpAddr, forwarded_for: &str, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(&canonical(*ip)));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    for entry in forwarded_for.rsplit(',') {
        let Ok(ip) = entry.trim().parse::<IpAddr>() else {
            break;
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    canonical(client)
}

/// Longest `Authorization` header looked at; longer ones are refused (401).
pub const MAX_AUTHORIZATION: usize = 8 * 1024;

/// How the request proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Session(SessionId),
    Bearer,
}

/// The signed-in user; rejects with 401 (not signed in), 403 (suspended, or
/// a cross-site cookie write).
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: User,
    pub credential: Credential,
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let auth = &state.auth;
        if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
            if value.len() > MAX_AUTHORIZATION {
                return Err(ApiError::unauthorized(
                    "invalid_token",
                    "the token is malformed",
                ));
            }
            let token = value
                .to_str()
                .ok()
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                })
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .ok_or_else(|| {
                    ApiError::unauthorized(
                        "invalid_token",
                        "expected Authorization: Bearer <token>",
                    )
                })?;
            let user = bearer_user(state, token).await?;
            if user.suspended {
                return Err(ApiError::forbidden(
                    "suspended",
                    "this account is suspended",
                ));
            }
            return Ok(CurrentUser {
                user,
                credential: Credential::Bearer,
            });
        }
        let token = session::token_from(&parts.headers)
            .ok_or_else(|| ApiError::unauthorized("unauthenticated", "sign in first"))?;
        let id = SessionId::of_token(&token);
        let user = auth.session_user(&id).await?.ok_or_else(|| {
            ApiError::unauthorized("unauthenticated", "the session has ended; sign in again")
        })?;
        let writes = !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        let upgrade = parts.headers.contains_key(header::UPGRADE);
        if (writes || upgrade) && !same_site(parts, &state.trusted_proxies) {
            return Err(ApiError::forbidden(
                "cross_origin",
                "cookie-authenticated requests must come from this site",
            ));
        }
        Ok(CurrentUser {
            user,
            credential: Credential::Session(id),
        })
    }
}

/// Whether the request arrived over HTTPS (for the cookie's `Secure`).
#[derive(Debug, Clone, Copy)]
pub struct Https(pub bool);

impl FromRequestParts<AppState> for Https {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Https(is_https(parts, &state.trusted_proxies)))
    }
}

/// Refuses (403) a request the browser says comes from another site; for
/// sign-in and registration, which set a cookie without sending one.
#[derive(Debug, Clone, Copy)]
pub struct SameSiteOnly;

impl FromRequestParts<AppState> for SameSiteOnly {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if same_site(parts, &state.trusted_proxies) {
            Ok(SameSiteOnly)
        } else {
            Err(ApiError::forbidden(
                "cross_origin",
                "sign-in must come from this site",
            ))
        }
    }
}

/// The user a bearer token names, when OIDC is on.
async fn bearer_user(state: &AppState, token: &str) -> Result<User, ApiError> {
    let Some(oidc) = &state.auth.oidc else {
        return Err(ApiError::unauthorized(
            "invalid_token",
            "bearer tokens are not accepted here (OIDC is off)",
        ));
    };
    oidc.user(token, state.auth.accounts.as_ref())
        .await
        .map_err(|error| match error {
            TokenError::Store(e) => e.into(),
            TokenError::KeysUnavailable => ApiError::OidcUnavailable,
            refused => ApiError::unauthorized("invalid_token", refused.to_string()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn untrusted_peers_cannot_spoof_their_address() {
        let peer: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(client_ip(peer, "1.2.3.4", &nets(&["10.0.0.0/8"])), peer);
        assert_eq!(client_ip(peer, "1.2.3.4", &[]), peer);
    }

    #[test]
    fn behind_a_trusted_proxy_the_nearest_untrusted_hop_is_the_client() {
        let proxy: IpAddr = "10.0.0.5".parse().unwrap();
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            client_ip(proxy, "6.6.6.6, 198.51.100.7, 10.0.0.9", &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_ip(proxy, "garbage, 198.51.100.7", &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_ip(proxy, "", &trusted), proxy);
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_networks() {
        let peer: IpAddr = "::ffff:10.0.0.5".parse().unwrap();
        assert_eq!(
            client_ip(peer, "198.51.100.7", &nets(&["10.0.0.0/8"])),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
    }
}
