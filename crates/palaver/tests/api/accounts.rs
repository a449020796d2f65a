//! Local accounts (DESIGN §5a): register, login, logout, me, the cookie,
//! throttling, cross-site refusals, the seed API's anonymity, the CLI, and
//! hostile input.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{
    client_with_cookie, refused_status, session_cookie, sign_up, spawn_app, spawn_app_with,
    spawn_bare_app, try_connect_ws, Backend, TestApp, TEST_PASSWORD,
};

both_backends!(
    the_first_account_is_admin_and_register_signs_in_with_the_documented_cookie,
    invalid_registrations_are_400_taken_usernames_409_and_nothing_is_stored,
    closed_registration_is_403_and_local_accounts_off_removes_the_routes,
    login_answers_the_same_401_for_a_wrong_password_and_an_unknown_user,
    repeated_login_failures_are_429_with_retry_after,
    logout_revokes_the_session_on_the_server,
    v1_needs_a_signed_in_user_and_the_author_is_that_user,
    the_seed_api_stays_anonymous_and_seed_api_off_removes_it,
    cookie_writes_and_websocket_upgrades_from_another_origin_are_403,
    malformed_cookies_and_tokens_and_huge_authorization_headers_are_401,
    the_stored_hash_is_argon2id,
    the_cookie_is_secure_behind_a_trusted_https_proxy_only,
    the_user_command_adds_users_sets_roles_and_resets_passwords,
);

fn assert_error(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
}

async fn post(app: &TestApp, path: &str, body: &Value) -> reqwest::Response {
    app.anonymous
        .post(app.url(path))
        .json(body)
        .send()
        .await
        .expect("request")
}

async fn register(app: &TestApp, username: &str, display_name: Option<&str>) -> reqwest::Response {
    let mut body = json!({"username": username, "password": TEST_PASSWORD});
    if let Some(name) = display_name {
        body["display_name"] = json!(name);
    }
    post(app, "/api/v1/auth/register", &body).await
}

async fn login(app: &TestApp, username: &str, password: &str) -> reqwest::Response {
    post(
        app,
        "/api/v1/auth/login",
        &json!({"username": username, "password": password}),
    )
    .await
}

async fn me(app: &TestApp, cookie: &str) -> (u16, Value) {
    app.call(cookie, "GET", "/api/v1/me", None).await
}

async fn the_first_account_is_admin_and_register_signs_in_with_the_documented_cookie(
    backend: Backend,
) {
    let app = spawn_bare_app(backend, &[]).await;
    let response = register(&app, "Ada", Some("Ada Lovelace")).await;
    assert_eq!(response.status(), 201);
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    for attr in ["palaver_session=", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set_cookie.contains(attr), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain HTTP: {set_cookie}");
    let cookie = session_cookie(&response).unwrap();
    let body: Value = response.json().await.unwrap();
    let user = &body["user"];
    assert_eq!(user["username"], "ada", "normalised to lower case");
    assert_eq!(user["display_name"], "Ada Lovelace");
    assert_eq!(user["role"], "admin");
    assert!(user["id"].as_str().is_some_and(|id| id.len() == 36));
    assert!(user.get("password_hash").is_none() && user.get("suspended").is_none());

    let (status, body) = me(&app, &cookie).await;
    assert_eq!(status, 200);
    assert_eq!(body["user"], *user);

    let second = register(&app, "bob", None).await;
    assert_eq!(second.status(), 201);
    let body: Value = second.json().await.unwrap();
    assert_eq!(body["user"]["role"], "member");
    assert_eq!(
        body["user"]["display_name"], "bob",
        "defaults to the username"
    );
    app.stop().await;
}

async fn invalid_registrations_are_400_taken_usernames_409_and_nothing_is_stored(backend: Backend) {
    let app = spawn_bare_app(backend, &[]).await;
    let long_name = "a".repeat(33);
    let long_display = "d".repeat(65);
    let long_password = "p".repeat(1025);
    let cases = [
        (
            json!({"username": "a", "password": TEST_PASSWORD}),
            "invalid_username",
        ),
        (
            json!({"username": long_name, "password": TEST_PASSWORD}),
            "invalid_username",
        ),
        (
            json!({"username": "ad\u{0}a", "password": TEST_PASSWORD}),
            "invalid_username",
        ),
        (
            json!({"username": "ad\u{1b}a", "password": TEST_PASSWORD}),
            "invalid_username",
        ),
        // Cyrillic а posing as Latin a, and a zero-width joiner.
        (
            json!({"username": "\u{430}da", "password": TEST_PASSWORD}),
            "invalid_username",
        ),
        (
            json!({"username": "ad\u{200d}a", "password": TEST_PASSWORD}),
            "invalid_username",
        ),
        (
            json!({"username": "-ada", "password": TEST_PASSWORD}),
            "invalid_username",
        ),
        (
            json!({"username": "ada", "password": "short"}),
            "invalid_password",
        ),
        (
            json!({"username": "ada", "password": long_password}),
            "invalid_password",
        ),
        (
            json!({"username": "ada", "password": "0123456789\u{7}"}),
            "invalid_password",
        ),
        (
            json!({"username": "ada", "password": TEST_PASSWORD, "display_name": "a\nb"}),
            "invalid_author",
        ),
        (
            json!({"username": "ada", "password": TEST_PASSWORD, "display_name": long_display}),
            "invalid_author",
        ),
        (
            json!({"username": "ada", "password": TEST_PASSWORD, "display_name": "  "}),
            "invalid_author",
        ),
        (json!({"username": "ada"}), "invalid_json"),
        (
            json!({"username": 5, "password": TEST_PASSWORD}),
            "invalid_json",
        ),
    ];
    for (body, code) in cases {
        let response = post(&app, "/api/v1/auth/register", &body).await;
        assert_eq!(response.status(), 400, "{body}");
        assert!(response.headers().get("set-cookie").is_none());
        assert_error(&response.json().await.unwrap(), code);
    }
    // Nothing was stored: the first valid account is still the admin.
    let first = register(&app, "ada", None).await;
    assert_eq!(first.status(), 201);
    let body: Value = first.json().await.unwrap();
    assert_eq!(body["user"]["role"], "admin");

    // Taken, also when spelled with other case or full-width letters.
    for taken in ["ada", "ADA", "\u{ff41}\u{ff44}\u{ff41}"] {
        let response = register(&app, taken, None).await;
        assert_eq!(response.status(), 409, "{taken}");
        assert_error(&response.json().await.unwrap(), "username_taken");
    }
    // And the full-width spelling signs in to the same account.
    assert_eq!(login(&app, "\u{ff21}DA", TEST_PASSWORD).await.status(), 200);
    app.stop().await;
}

async fn closed_registration_is_403_and_local_accounts_off_removes_the_routes(backend: Backend) {
    let app = spawn_bare_app(backend, &["--registration", "closed"]).await;
    let response = register(&app, "ada", None).await;
    assert_eq!(response.status(), 403);
    assert_error(&response.json().await.unwrap(), "registration_closed");
    // Login still works for accounts made by an operator (none here: 401).
    assert_eq!(login(&app, "ada", TEST_PASSWORD).await.status(), 401);
    app.stop().await;

    let app = spawn_bare_app(backend, &["--local-accounts", "off"]).await;
    assert_eq!(register(&app, "ada", None).await.status(), 404);
    assert_eq!(login(&app, "ada", TEST_PASSWORD).await.status(), 404);
    let (status, _) = me(&app, "palaver_session=abc").await;
    assert_eq!(status, 401);
    app.stop().await;
}

async fn login_answers_the_same_401_for_a_wrong_password_and_an_unknown_user(backend: Backend) {
    let app = spawn_bare_app(backend, &[]).await;
    assert_eq!(register(&app, "ada", None).await.status(), 201);

    let ok = login(&app, "ada", TEST_PASSWORD).await;
    assert_eq!(ok.status(), 200);
    let cookie = session_cookie(&ok).unwrap();
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["user"]["username"], "ada");
    assert_eq!(me(&app, &cookie).await.0, 200);

    let wrong = login(&app, "ada", "not the password").await;
    let unknown = login(&app, "nobody", TEST_PASSWORD).await;
    let malformed = login(&app, "no such name!", TEST_PASSWORD).await;
    for response in [wrong, unknown, malformed] {
        assert_eq!(response.status(), 401);
        assert!(response.headers().get("set-cookie").is_none());
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body,
            json!({"error": {"code": "bad_credentials", "message": "wrong username or password"}})
        );
    }
    let missing = post(&app, "/api/v1/auth/login", &json!({"username": "ada"})).await;
    assert_eq!(missing.status(), 400);
    app.stop().await;
}

async fn repeated_login_failures_are_429_with_retry_after(backend: Backend) {
    let app = spawn_bare_app(backend, &[]).await;
    assert_eq!(register(&app, "ada", None).await.status(), 201);
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let response = login(&app, "ada", "wrong password!").await;
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            let retry: u64 = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=60).contains(&retry), "{retry}");
            assert_error(&response.json().await.unwrap(), "rate_limited");
        }
    }
    assert!(statuses[..10].iter().all(|s| *s == 401), "{statuses:?}");
    assert_eq!(&statuses[10..], &[429, 429]);
    // The right password is throttled too while the username is hot, and
    // another username is not.
    assert_eq!(login(&app, "ada", TEST_PASSWORD).await.status(), 429);
    assert_eq!(login(&app, "bob", TEST_PASSWORD).await.status(), 401);
    app.stop().await;
}

async fn logout_revokes_the_session_on_the_server(backend: Backend) {
    let app = spawn_app(backend).await;
    let cookie = app.cookie.clone().unwrap();
    let client = client_with_cookie(&cookie);
    // Two sessions of one user: logging out of one leaves the other.
    let other = sign_up(&app.address, "tester", "tester").await;
    assert_ne!(other, cookie);

    let response = client
        .post(app.url("/api/v1/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let cleared = response.headers()["set-cookie"].to_str().unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    // The old cookie, replayed, is dead on the server.
    assert_eq!(me(&app, &cookie).await.0, 401);
    let again = client
        .post(app.url("/api/v1/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 401);
    assert_eq!(me(&app, &other).await.0, 200);
    let anonymous = app
        .anonymous
        .post(app.url("/api/v1/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    app.stop().await;
}

async fn v1_needs_a_signed_in_user_and_the_author_is_that_user(backend: Backend) {
    let app = spawn_app(backend).await;
    for (method, path) in [
        ("GET", "/api/v1/rooms"),
        ("GET", "/api/v1/rooms/general/messages"),
        ("POST", "/api/v1/rooms/general/messages"),
        ("GET", "/api/v1/me"),
        ("POST", "/api/v1/rooms"),
        ("GET", "/api/v1/rooms/general/members"),
    ] {
        let response = app
            .anonymous
            .request(method.parse().unwrap(), app.url(path))
            .json(&json!({"text": "hi", "name": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{method} {path}");
        assert_error(&response.json().await.unwrap(), "unauthenticated");
    }
    let sse = app
        .anonymous
        .get(app.url("/api/v1/rooms/general/stream"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), 401);
    let ws = try_connect_ws(&app.ws_url("/api/v1/rooms/general/stream"), None, None).await;
    assert_eq!(refused_status(&ws.err()), Some(401));

    // The author is the signed-in user; a body cannot choose it.
    let ada = sign_up(&app.address, "ada", "Ada L.").await;
    let response = client_with_cookie(&ada)
        .post(app.url("/api/v1/rooms/general/messages"))
        .json(&json!({"author": "Mallory", "text": "hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let stored: Value = response.json().await.unwrap();
    let (_, me_body) = me(&app, &ada).await;
    assert_eq!(stored["author"], "Ada L.");
    assert_eq!(stored["author_id"], me_body["user"]["id"]);
    let (_, page) = app.get_json("/api/v1/rooms/general/messages").await;
    assert_eq!(page["messages"][0], stored);
    app.stop().await;
}

async fn the_seed_api_stays_anonymous_and_seed_api_off_removes_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .anonymous
        .put(app.url("/chat"))
        .json(&json!({"message": "from the seed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let seed = app.anonymous.get(app.url("/chat")).send().await.unwrap();
    assert_eq!(seed.status(), 200);
    let (_, page) = app.get_json("/api/v1/rooms/general/messages").await;
    assert_eq!(page["messages"][0]["author"], "anonymous");
    assert_eq!(page["messages"][0]["author_id"], Value::Null);
    app.stop().await;

    let app = spawn_app_with(backend, &["--seed-api", "off"]).await;
    let put = app
        .anonymous
        .put(app.url("/chat"))
        .json(&json!({"message": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 404);
    assert_eq!(
        app.anonymous
            .get(app.url("/chat"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    app.stop().await;
}

async fn cookie_writes_and_websocket_upgrades_from_another_origin_are_403(backend: Backend) {
    let app = spawn_app(backend).await;
    let cookie = app.cookie.clone().unwrap();
    let own = app.address.clone();
    let send = |origin: Option<&'static str>, site: Option<&'static str>| {
        let mut request = app
            .client
            .post(app.url("/api/v1/rooms/general/messages"))
            .json(&json!({"text": "csrf?"}));
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if let Some(site) = site {
            request = request.header("sec-fetch-site", site);
        }
        request.send()
    };
    let foreign = send(Some("http://evil.example"), None).await.unwrap();
    assert_eq!(foreign.status(), 403);
    assert_error(&foreign.json().await.unwrap(), "cross_origin");
    assert_eq!(send(None, Some("cross-site")).await.unwrap().status(), 403);
    assert_eq!(send(Some("null"), None).await.unwrap().status(), 403);
    let same = app
        .client
        .post(app.url("/api/v1/rooms/general/messages"))
        .header("origin", &own)
        .header("sec-fetch-site", "same-origin")
        .json(&json!({"text": "fine"}))
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), 201);
    // Reads with a foreign Origin are not writes; CORS keeps their answers
    // from the foreign page.
    let read = app
        .client
        .get(app.url("/api/v1/rooms/general/messages"))
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    assert!(read.headers().get("access-control-allow-origin").is_none());
    let messages: Value = read.json().await.unwrap();
    assert_eq!(
        messages["messages"].as_array().unwrap().len(),
        1,
        "the refused sends stored nothing"
    );

    let url = app.ws_url("/api/v1/rooms/general/stream");
    let hijack = try_connect_ws(&url, Some(&cookie), Some("http://evil.example")).await;
    assert_eq!(refused_status(&hijack.err()), Some(403));
    let ok = try_connect_ws(&url, Some(&cookie), Some(&own)).await;
    assert!(ok.is_ok(), "same-origin upgrade: {:?}", ok.err());
    // Sign-in from another site is refused too (login CSRF).
    let response = app
        .anonymous
        .post(app.url("/api/v1/auth/login"))
        .header("origin", "http://evil.example")
        .json(&json!({"username": "tester", "password": TEST_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    app.stop().await;
}

async fn malformed_cookies_and_tokens_and_huge_authorization_headers_are_401(backend: Backend) {
    let app = spawn_app(backend).await;
    let huge_cookie = format!("palaver_session={}", "a".repeat(6000));
    let cookies = [
        "palaver_session=",
        "palaver_session=not-a-session",
        "palaver_session=%00%01",
        "palaver_session=\"quoted\"",
        "palaver_session=a=b=c",
        huge_cookie.as_str(),
        "palaver_session",
        ";;;",
    ];
    for cookie in cookies {
        let response = app
            .anonymous
            .get(app.url("/api/v1/me"))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{cookie:.40}");
        assert_error(&response.json().await.unwrap(), "unauthenticated");
    }
    let huge = format!("Bearer {}", "x".repeat(12 * 1024));
    let authorizations = [
        "Bearer",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer not.a.jwt",
        "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
        huge.as_str(),
    ];
    for authorization in authorizations {
        let response = app
            .anonymous
            .get(app.url("/api/v1/rooms"))
            .header("authorization", authorization)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{authorization:.40}");
        assert_error(&response.json().await.unwrap(), "invalid_token");
    }
    // Beyond the server's header limit hyper answers 431 itself: still 4xx.
    let enormous = format!("Bearer {}", "x".repeat(200 * 1024));
    let response = app
        .anonymous
        .get(app.url("/api/v1/rooms"))
        .header("authorization", enormous)
        .send()
        .await;
    if let Ok(response) = response {
        assert!(response.status().is_client_error(), "{}", response.status());
    }
    app.stop().await;
}

async fn the_stored_hash_is_argon2id(backend: Backend) {
    let app = spawn_app(backend).await;
    let hash: String = match backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&app.db_url).await.unwrap();
            sqlx::query_scalar("SELECT password_hash FROM users WHERE username = 'tester'")
                .fetch_one(&pool)
                .await
                .unwrap()
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&app.db_url).await.unwrap();
            sqlx::query_scalar("SELECT password_hash FROM users WHERE username = 'tester'")
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert!(
        hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{hash}"
    );
    assert!(!hash.contains(TEST_PASSWORD));
    app.stop().await;
}

async fn the_cookie_is_secure_behind_a_trusted_https_proxy_only(backend: Backend) {
    let app = spawn_bare_app(backend, &["--trusted-proxies", "127.0.0.1/32"]).await;
    let response = app
        .anonymous
        .post(app.url("/api/v1/auth/register"))
        .header("x-forwarded-proto", "https")
        .json(&json!({"username": "ada", "password": TEST_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let set_cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(set_cookie.ends_with("; Secure"), "{set_cookie}");
    app.stop().await;

    let app = spawn_bare_app(backend, &[]).await;
    let response = app
        .anonymous
        .post(app.url("/api/v1/auth/register"))
        .header("x-forwarded-proto", "https")
        .json(&json!({"username": "ada", "password": TEST_PASSWORD}))
        .send()
        .await
        .unwrap();
    let set_cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(
        !set_cookie.contains("Secure"),
        "untrusted peer: {set_cookie}"
    );
    app.stop().await;
}

fn user_command(db_url: &str, args: &[&str], stdin: &str) -> (bool, String, String) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_palaver"))
        .arg("user")
        .args(args)
        .args(["--database-url", db_url])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn palaver user");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn the_user_command_adds_users_sets_roles_and_resets_passwords(backend: Backend) {
    let app = spawn_bare_app(backend, &["--registration", "closed"]).await;
    let db = app.db_url.clone();
    let (ok, out, err) = user_command(
        &db,
        &["add", "Grace", "--display-name", "Grace H.", "--admin"],
        "first-password-1\n",
    );
    assert!(ok, "{err}");
    let user: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(user["username"], "grace");
    assert_eq!(user["role"], "admin");
    assert!(!out.contains("first-password-1") && !err.contains("first-password-1"));

    let first = login(&app, "grace", "first-password-1").await;
    assert_eq!(first.status(), 200);
    let old_session = session_cookie(&first).unwrap();

    let (ok, out, _) = user_command(&db, &["set-role", "grace", "member"], "");
    assert!(ok);
    assert_eq!(
        serde_json::from_str::<Value>(out.trim()).unwrap()["role"],
        "member"
    );

    let (ok, _, err) = user_command(&db, &["reset-password", "grace"], "second-password-2\n");
    assert!(ok, "{err}");
    assert_eq!(login(&app, "grace", "first-password-1").await.status(), 401);
    assert_eq!(
        login(&app, "grace", "second-password-2").await.status(),
        200
    );
    // Resetting signs the account out everywhere (the server's cache
    // forgets it within its TTL; the database row is gone at once).
    let _ = old_session;

    for (args, stdin) in [
        (vec!["add", "grace"], "another-password\n"),
        (vec!["add", "\u{430}da"], "another-password\n"),
        (vec!["add", "newbie"], "short\n"),
        (vec!["set-role", "nobody", "admin"], ""),
        (vec!["set-role", "grace", "root"], ""),
        (vec!["reset-password", "nobody"], "another-password\n"),
    ] {
        let (ok, _, err) = user_command(&db, &args, stdin);
        assert!(!ok, "{args:?} should fail");
        assert!(!err.is_empty());
    }
    app.stop().await;
}

/// Login timing must not tell whether a username exists: the same work
/// (one argon2id verification) is done either way. Many interleaved
/// attempts of each kind, compared by median, within a tolerance for the
/// noise of a shared machine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_timing_for_unknown_and_known_users_differs_by_no_more_than_noise() {
    const ROUNDS: usize = 30;
    // Distinct client addresses via a trusted proxy, so the per-IP
    // throttle stays out of the measurement; the accounts come from one.
    let app = spawn_bare_app(
        Backend::Sqlite,
        &[
            "--trusted-proxies",
            "127.0.0.1/32",
            "--registrations-per-ip-burst",
            "100",
        ],
    )
    .await;
    for i in 0..ROUNDS {
        assert_eq!(
            register(&app, &format!("known{i}"), None).await.status(),
            201
        );
    }
    let attempt = |username: String, n: usize| {
        let client = app.anonymous.clone();
        let url = app.url("/api/v1/auth/login");
        async move {
            let started = Instant::now();
            let response = client
                .post(url)
                .header("x-forwarded-for", format!("198.51.100.{}", n % 250))
                .json(&json!({"username": username, "password": "wrong-password-x"}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 401);
            started.elapsed()
        }
    };
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for i in 0..ROUNDS {
        // Alternate which goes first, so drift hits both alike.
        if i % 2 == 0 {
            known.push(attempt(format!("known{i}"), i).await);
            unknown.push(attempt(format!("unknown{i}"), i + ROUNDS).await);
        } else {
            unknown.push(attempt(format!("unknown{i}"), i + ROUNDS).await);
            known.push(attempt(format!("known{i}"), i).await);
        }
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (k, u) = (median(&mut known), median(&mut unknown));
    let ratio = k.as_secs_f64() / u.as_secs_f64();
    assert!(
        (0.7..=1.0 / 0.7).contains(&ratio),
        "median known {k:?} vs unknown {u:?} (ratio {ratio:.2})"
    );
    // A real hash was computed for the unknown users too: no fast path.
    assert!(
        u > Duration::from_millis(2),
        "unknown users answered in {u:?}"
    );
    app.stop().await;
}
