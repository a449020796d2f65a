//! Sign-in without a memory cliff, and limits that tell abuse from people
//! (issue 21): a burst of sign-ins gives its hashing memory back (measured
//! on a `palaver serve` child process: tests in one binary share an address
//! space); an office behind one address signs in freely; registrations and
//! failed sign-ins per address are bounded.

use std::net::IpAddr;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};

use crate::both_backends;
use crate::fault_helpers::rss_kib;
use crate::helpers::{spawn_bare_app, Backend, ServerProcess, TestApp, TestDb, TEST_PASSWORD};

both_backends!(
    the_eleventh_rapid_registration_from_one_address_is_refused,
    twenty_wrong_passwords_from_one_address_and_its_21st_sign_in_is_refused,
);

/// A client whose requests come from `127.0.0.<n>` (all of 127/8 is this
/// host, and the servers listen on 127.0.0.1).
fn client_from(n: u8) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from([127, 0, 0, n]))
        .build()
        .expect("client")
}

async fn post(client: &reqwest::Client, base: &str, path: &str, body: Value) -> reqwest::Response {
    client
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .expect("request")
}

async fn register(client: &reqwest::Client, base: &str, username: &str) -> reqwest::Response {
    let body = json!({"username": username, "password": TEST_PASSWORD});
    post(client, base, "/api/v1/auth/register", body).await
}

async fn login(
    client: &reqwest::Client,
    base: &str,
    username: &str,
    password: &str,
) -> reqwest::Response {
    let body = json!({"username": username, "password": password});
    post(client, base, "/api/v1/auth/login", body).await
}

async fn assert_rate_limited(response: reqwest::Response, most_secs: u64) {
    assert_eq!(response.status(), 429);
    let retry: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=most_secs).contains(&retry), "Retry-After: {retry}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
}

/// 16 accounts registered and 96 sign-ins, 8 at a time (from a dozen
/// addresses and 16 users, so no limit refuses any): 10 s later the server's
/// RSS is within 32 MiB of where it was before, and at no point did it hold
/// more than the hash slots' memory (4 × 19 MiB) plus 32 MiB. Before issue 21
/// every blocking thread that hashed kept its 19 MiB: about 200 MiB, for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_96_sign_ins_8_at_once_gives_its_memory_back() {
    const USERS: usize = 16;
    const SIGN_INS: usize = 96;
    const CONCURRENCY: usize = 8;
    const MIB: u64 = 1024;
    let db = TestDb::new(Backend::Sqlite).await;
    let server = ServerProcess::start(&db.url, &[]).await;
    let pid = server.child.id();
    let base = server.url("");
    let clients: Vec<_> = (2..14).map(client_from).collect();
    let client = move |i: usize| clients[i % clients.len()].clone();

    // Warm up what is not hashing: connections, the database, the router.
    for i in 0..20 {
        let response = client(i)
            .get(format!("{base}/readyz"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss_kib(pid);

    let mut peak = before;
    let burst_base = base.clone();
    let burst = async move {
        let base = burst_base;
        let registered: Vec<u16> = futures::stream::iter(0..USERS)
            .map(|i| {
                let (client, base) = (client(i), base.clone());
                async move {
                    register(&client, &base, &format!("burst{i}"))
                        .await
                        .status()
                        .as_u16()
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        assert!(registered.iter().all(|s| *s == 201), "{registered:?}");
        let signed_in: Vec<u16> = futures::stream::iter(0..SIGN_INS)
            .map(|i| {
                let (client, base) = (client(i), base.clone());
                async move {
                    login(
                        &client,
                        &base,
                        &format!("burst{}", i % USERS),
                        TEST_PASSWORD,
                    )
                    .await
                    .status()
                    .as_u16()
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        assert!(signed_in.iter().all(|s| *s == 200), "{signed_in:?}");
    };
    let running = tokio::spawn(burst);
    while !running.is_finished() {
        peak = peak.max(rss_kib(pid));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    running.await.unwrap();
    peak = peak.max(rss_kib(pid));
    tokio::time::sleep(Duration::from_secs(10)).await;
    let after = rss_kib(pid);

    assert!(
        after < before + 32 * MIB,
        "RSS {after} KiB 10 s after the burst, {before} KiB before it (peak {peak} KiB)"
    );
    assert!(
        peak < before + (4 * 19 + 32) * MIB,
        "RSS peaked at {peak} KiB during the burst, from {before} KiB"
    );
}

/// A hundred people behind one address (an office NAT) sign in within a
/// minute, 8 at a time: all get in, since correct sign-ins are not counted
/// against the address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_people_signing_in_from_one_address_all_get_in() {
    const PEOPLE: usize = 100;
    let app = spawn_bare_app(Backend::Sqlite, &[]).await;
    let base = app.address.clone();
    // Accounts made from ten addresses, within each one's registration burst.
    let registered: Vec<u16> = futures::stream::iter(0..PEOPLE)
        .map(|i| {
            let base = base.clone();
            async move {
                let client = client_from(2 + (i / 10) as u8);
                register(&client, &base, &format!("p{i}"))
                    .await
                    .status()
                    .as_u16()
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    assert!(registered.iter().all(|s| *s == 201), "{registered:?}");
    let office = client_from(1);
    let statuses: Vec<u16> = futures::stream::iter(0..PEOPLE)
        .map(|i| {
            let (office, base) = (office.clone(), base.clone());
            async move {
                login(&office, &base, &format!("p{i}"), TEST_PASSWORD)
                    .await
                    .status()
                    .as_u16()
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let refused = statuses.iter().filter(|s| **s != 200).count();
    assert_eq!(refused, 0, "{statuses:?}");
    app.stop().await;
}

/// Registration has a budget of its own per address: a burst of 10, then
/// 429 with Retry-After (a few an hour come back); another address, and
/// sign-in from the same one, are unaffected.
async fn the_eleventh_rapid_registration_from_one_address_is_refused(backend: Backend) {
    let app: TestApp = spawn_bare_app(backend, &[]).await;
    let base = app.address.clone();
    let one = client_from(1);
    for i in 0..10 {
        assert_eq!(register(&one, &base, &format!("r{i}")).await.status(), 201);
    }
    assert_rate_limited(register(&one, &base, "r10").await, 3600).await;
    assert_eq!(register(&client_from(2), &base, "r10").await.status(), 201);
    assert_eq!(login(&one, &base, "r0", TEST_PASSWORD).await.status(), 200);
    app.stop().await;
}

/// Credential stuffing: 20 failed sign-ins from one address (20 usernames,
/// so the per-username limit is not what refuses), and its 21st sign-in is
/// refused before any password is checked, even with the right password;
/// another address signs the same user in.
async fn twenty_wrong_passwords_from_one_address_and_its_21st_sign_in_is_refused(backend: Backend) {
    let app: TestApp = spawn_bare_app(backend, &[]).await;
    let base = app.address.clone();
    assert_eq!(register(&client_from(3), &base, "ada").await.status(), 201);
    let stuffer = client_from(1);
    for i in 0..20 {
        let name = if i == 0 {
            "ada".to_owned()
        } else {
            format!("guess{i}")
        };
        let response = login(&stuffer, &base, &name, "wrong-password-1").await;
        assert_eq!(response.status(), 401, "attempt {}", i + 1);
    }
    assert_rate_limited(login(&stuffer, &base, "ada", TEST_PASSWORD).await, 60).await;
    assert_eq!(
        login(&client_from(2), &base, "ada", TEST_PASSWORD)
            .await
            .status(),
        200
    );
    app.stop().await;
}
