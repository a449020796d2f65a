//! OIDC bearer tokens with real keys and real signatures: the test makes an
//! RSA and a P-256 key, serves a discovery document and a JWKS on loopback
//! (a small axum server), signs tokens, and checks what the server accepts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use axum::routing::get;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use p256::pkcs8::EncodePrivateKey;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::traits::PublicKeyParts;
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, Backend, TestApp};

const AUDIENCE: &str = "palaver-test-client";

struct Issuer {
    url: String,
    jwks: Arc<RwLock<Value>>,
    jwks_fetches: Arc<AtomicUsize>,
    _server: tokio::task::JoinHandle<()>,
}

/// Serves `/.well-known/openid-configuration` and `/jwks.json`.
async fn issuer() -> Issuer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let jwks = Arc::new(RwLock::new(json!({"keys": []})));
    let fetches = Arc::new(AtomicUsize::new(0));
    let discovery = json!({
        "issuer": url,
        "jwks_uri": format!("{url}/jwks.json"),
        "authorization_endpoint": format!("{url}/authorize"),
        "token_endpoint": format!("{url}/token"),
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
    });
    let router = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || {
                let discovery = discovery.clone();
                async move { axum::Json(discovery) }
            }),
        )
        .route(
            "/jwks.json",
            get({
                let (jwks, fetches) = (jwks.clone(), fetches.clone());
                move || {
                    let body = jwks.read().unwrap().clone();
                    fetches.fetch_add(1, Ordering::SeqCst);
                    async move { axum::Json(body) }
                }
            }),
        );
    let server = tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    Issuer {
        url,
        jwks,
        jwks_fetches: fetches,
        _server: server,
    }
}

struct RsaKey {
    kid: String,
    encoding: EncodingKey,
    public_pem: String,
    jwk: Value,
}

fn rsa_key(kid: &str) -> RsaKey {
    let private = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap();
    let public = private.to_public_key();
    let der = private.to_pkcs1_der().unwrap();
    let public_pem =
        rsa::pkcs8::EncodePublicKey::to_public_key_pem(&public, rsa::pkcs8::LineEnding::LF)
            .unwrap();
    RsaKey {
        kid: kid.to_owned(),
        encoding: EncodingKey::from_rsa_der(der.as_bytes()),
        public_pem,
        jwk: json!({
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
            "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
        }),
    }
}

fn ec_key(kid: &str) -> (EncodingKey, Value) {
    let secret = p256::SecretKey::random(&mut rand_core::OsRng);
    let der = secret.to_pkcs8_der().unwrap();
    let mut jwk: Value = serde_json::from_str(&secret.public_key().to_jwk_string()).unwrap();
    jwk["kid"] = json!(kid);
    jwk["alg"] = json!("ES256");
    jwk["use"] = json!("sig");
    (EncodingKey::from_ec_der(der.as_bytes()), jwk)
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn claims(iss: &str, sub: &str) -> Value {
    json!({
        "iss": iss, "sub": sub, "aud": AUDIENCE,
        "iat": now(), "exp": now() + 600,
        "preferred_username": "Alice.Smith", "name": "Alice Smith",
    })
}

fn sign(alg: Algorithm, kid: &str, key: &EncodingKey, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

async fn me(app: &TestApp, token: &str) -> (u16, Value) {
    let response = app
        .anonymous
        .get(app.url("/api/v1/me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_tokens_are_verified_against_the_issuers_rotating_keys() {
    let issuer = issuer().await;
    let first = rsa_key("rsa-1");
    let (ec, ec_jwk) = ec_key("ec-1");
    *issuer.jwks.write().unwrap() = json!({"keys": [first.jwk.clone(), ec_jwk]});
    let app = spawn_app_with(
        Backend::Sqlite,
        &["--oidc-issuer", &issuer.url, "--oidc-audience", AUDIENCE],
    )
    .await;
    let iss = issuer.url.as_str();

    // A valid RS256 token: the user is provisioned from sub, with a
    // normalised username from preferred_username.
    let token = sign(
        Algorithm::RS256,
        &first.kid,
        &first.encoding,
        &claims(iss, "sub-alice"),
    );
    let (status, body) = me(&app, &token).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["username"], "alice.smith");
    assert_eq!(body["user"]["display_name"], "Alice Smith");
    assert_eq!(body["user"]["role"], "member");
    let alice = body["user"]["id"].clone();
    // The same subject is the same user; sends carry their id.
    let sent = app
        .anonymous
        .post(app.url("/api/v1/rooms/general/messages"))
        .bearer_auth(&token)
        .json(&json!({"text": "via OIDC"}))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 201);
    let sent: Value = sent.json().await.unwrap();
    assert_eq!(sent["author_id"], alice);
    // Another subject wanting the same username gets a unique one.
    let other = sign(
        Algorithm::RS256,
        &first.kid,
        &first.encoding,
        &claims(iss, "sub-other"),
    );
    let (status, body) = me(&app, &other).await;
    assert_eq!(status, 200);
    assert_ne!(body["user"]["id"], alice);
    assert!(body["user"]["username"]
        .as_str()
        .unwrap()
        .starts_with("alice.smith-"));

    // ES256 works; a Cognito access token (client_id, no aud) too.
    let mut access = claims(iss, "sub-alice");
    access.as_object_mut().unwrap().remove("aud");
    access["client_id"] = json!(AUDIENCE);
    assert_eq!(
        me(
            &app,
            &sign(Algorithm::ES256, "ec-1", &ec, &claims(iss, "sub-alice"))
        )
        .await
        .0,
        200
    );
    assert_eq!(
        me(
            &app,
            &sign(Algorithm::RS256, &first.kid, &first.encoding, &access)
        )
        .await
        .0,
        200
    );

    // Refused: expired (beyond the leeway), not yet valid, wrong audience,
    // wrong issuer, wrong client_id.
    let mut expired = claims(iss, "sub-alice");
    expired["exp"] = json!(now() - 120);
    let mut early = claims(iss, "sub-alice");
    early["nbf"] = json!(now() + 600);
    let mut wrong_aud = claims(iss, "sub-alice");
    wrong_aud["aud"] = json!("someone-else");
    let wrong_iss = claims("http://127.0.0.1:1", "sub-alice");
    let mut wrong_client = access.clone();
    wrong_client["client_id"] = json!("someone-else");
    for (what, claims) in [
        ("expired", expired),
        ("not yet valid", early),
        ("wrong audience", wrong_aud),
        ("wrong issuer", wrong_iss),
        ("wrong client_id", wrong_client),
    ] {
        let token = sign(Algorithm::RS256, &first.kid, &first.encoding, &claims);
        let (status, body) = me(&app, &token).await;
        assert_eq!(status, 401, "{what}: {body}");
        assert_eq!(body["error"]["code"], "invalid_token", "{what}");
    }

    // alg none, and HMAC "signed" with the public key (algorithm confusion).
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT","kid":"rsa-1"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims(iss, "sub-alice").to_string());
    assert_eq!(me(&app, &format!("{header}.{payload}.")).await.0, 401);
    let hmac = EncodingKey::from_secret(first.public_pem.as_bytes());
    let confused = sign(
        Algorithm::HS256,
        &first.kid,
        &hmac,
        &claims(iss, "sub-alice"),
    );
    assert_eq!(me(&app, &confused).await.0, 401);
    // An RS256 header over the EC key's kid: key type must fit.
    let mismatched = sign(
        Algorithm::RS256,
        "ec-1",
        &first.encoding,
        &claims(iss, "sub-alice"),
    );
    assert_eq!(me(&app, &mismatched).await.0, 401);

    // Rotation: the issuer publishes a new key; a token signed with it names
    // a kid we do not hold, so the keys are fetched again.
    let second = rsa_key("rsa-2");
    *issuer.jwks.write().unwrap() = json!({"keys": [second.jwk.clone()]});
    let before = issuer.jwks_fetches.load(Ordering::SeqCst);
    let rotated = sign(
        Algorithm::RS256,
        &second.kid,
        &second.encoding,
        &claims(iss, "sub-alice"),
    );
    let (status, body) = me(&app, &rotated).await;
    assert_eq!(status, 200, "after rotation: {body}");
    assert_eq!(body["user"]["id"], alice);
    assert_eq!(issuer.jwks_fetches.load(Ordering::SeqCst), before + 1);
    // Made-up kids do not make us fetch again and again.
    let fetched = issuer.jwks_fetches.load(Ordering::SeqCst);
    for i in 0..10 {
        let bogus = sign(
            Algorithm::RS256,
            &format!("bogus-{i}"),
            &second.encoding,
            &claims(iss, "x"),
        );
        assert_eq!(me(&app, &bogus).await.0, 401);
    }
    assert!(issuer.jwks_fetches.load(Ordering::SeqCst) <= fetched + 1);

    // A suspended OIDC user gets 403.
    let admin = crate::helpers::client_with_cookie(app.cookie.as_ref().unwrap());
    let suspend = admin
        .post(app.url("/api/v1/users/alice.smith/suspend"))
        .send()
        .await
        .unwrap();
    assert_eq!(suspend.status(), 204);
    let (status, body) = me(&app, &rotated).await;
    assert_eq!(status, 403, "{body}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oidc_issuer_without_audience_does_not_start() {
    let config = palaver::config::Config::from_args([
        "palaver",
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        "sqlite::memory:",
        "--oidc-issuer",
        "https://issuer.example",
    ])
    .unwrap();
    assert!(palaver::Application::build(config).await.is_err());
    let config = palaver::config::Config::from_args([
        "palaver",
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        "sqlite::memory:",
        "--oidc-issuer",
        "http://issuer.example",
        "--oidc-audience",
        "x",
    ])
    .unwrap();
    assert!(
        palaver::Application::build(config).await.is_err(),
        "plain http off loopback is refused"
    );
}
