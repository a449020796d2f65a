//! Nothing unbounded per client action: stream churn over ever new room
//! names, per-client stream limits, the descriptor budget under a low
//! `ulimit -n`, and a stalled SSE reader.
//!
//! Memory and descriptors are measured on a `palaver serve` child process
//! (tests in one binary share an address space).

use std::process::{Command, Stdio};
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;

use crate::fault_helpers::{metric_sum, metrics, open_sockets, rss_kib, wait_until};
use crate::helpers::{
    client_with_cookie, close_ws, connect_ws, free_port, message, read_until_caught_up,
    refused_status, sign_up, spawn_app_with, try_connect_ws, Backend, ServerProcess, TestDb,
    DEFAULT_USER,
};

fn base(server: &ServerProcess) -> String {
    format!("http://127.0.0.1:{}", server.port)
}

async fn streams_open(client: &reqwest::Client, base: &str) -> Option<f64> {
    metric_sum(&metrics(client, base).await, "palaver_stream_connections")
}

/// Streams are opened and closed on 5,000 distinct room names (WebSocket,
/// and every fifth one SSE). The server keeps no state for a room nobody
/// streams: its RSS grows by less than 25 MiB (a broadcast channel of
/// `--stream-buffer` slots left behind per room would be ~240 MiB), and the
/// open-streams gauge returns to 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_on_5000_room_names_leave_no_memory_behind() {
    const ROOMS: usize = 5000;
    let db = TestDb::new(Backend::Sqlite).await;
    let server = ServerProcess::start(&db.url, &[]).await;
    let pid = server.child.id();
    let client = server.client.clone();
    let base = base(&server);

    let churn = |range: std::ops::Range<usize>| {
        let (server_ws, server_http, client) = (
            server.ws_url("/api/v1/rooms"),
            server.url("/api/v1/rooms"),
            client.clone(),
        );
        async move {
            futures::stream::iter(range)
                .for_each_concurrent(16, |i| {
                    let (server_ws, server_http, client) =
                        (server_ws.clone(), server_http.clone(), client.clone());
                    async move {
                        if i % 5 == 0 {
                            let response = client
                                .get(format!("{server_http}/churn-{i}/stream"))
                                .header("accept", "text/event-stream")
                                .send()
                                .await
                                .expect("SSE stream");
                            assert_eq!(response.status(), 200);
                            let mut sse = crate::helpers::Sse::new(response);
                            let event = sse.next_event().await.expect("caught_up");
                            assert_eq!(event.event.as_deref(), Some("caught_up"));
                        } else {
                            let mut ws = connect_ws(&format!("{server_ws}/churn-{i}/stream")).await;
                            read_until_caught_up(&mut ws).await;
                            close_ws(ws).await;
                        }
                    }
                })
                .await;
        }
    };

    // Warm up the allocator, the pools and lazily built state.
    churn(0..300).await;
    wait_until("no stream open", Duration::from_secs(30), || async {
        streams_open(&client, &base).await == Some(0.0)
    })
    .await;
    let baseline = rss_kib(pid);

    let running = tokio::spawn(churn(300..300 + ROOMS));
    let mut peak = baseline;
    while !running.is_finished() {
        peak = peak.max(rss_kib(pid));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.await.unwrap();
    wait_until("every stream closed", Duration::from_secs(60), || async {
        streams_open(&client, &base).await == Some(0.0)
    })
    .await;
    peak = peak.max(rss_kib(pid));
    let growth = peak.saturating_sub(baseline);
    assert!(
        growth < 25 * 1024,
        "RSS grew by {growth} KiB over {ROOMS} room names (baseline {baseline} KiB, peak {peak} KiB)"
    );
}

/// A client at its concurrent-stream cap gets 429 with Retry-After in the
/// JSON error shape, others are unaffected, and a closed stream frees its
/// slot; opening faster than the rate is 429 `rate_limited`.
#[tokio::test]
async fn per_client_stream_limits_answer_429_with_retry_after() {
    let app = spawn_app_with(Backend::Sqlite, &["--max-streams-per-ip", "2"]).await;
    let url = app.ws_url("/api/v1/rooms/capped/stream");
    let first = connect_ws(&url).await;
    let _second = connect_ws(&url).await;
    let refused = app
        .client
        .get(app.url("/api/v1/rooms/capped/stream"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_many_client_streams");
    close_ws(first).await;
    wait_until(
        "the slot is free again",
        Duration::from_secs(10),
        || async {
            crate::helpers::try_connect_ws(&url, app.cookie.as_deref(), None)
                .await
                .is_ok()
        },
    )
    .await;

    let app = spawn_app_with(
        Backend::Sqlite,
        &["--stream-open-rate", "1", "--stream-open-burst", "3"],
    )
    .await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let response = app
            .client
            .get(app.url("/api/v1/rooms/rated/stream"))
            .header("accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            assert!(response.headers().contains_key("retry-after"));
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "rate_limited");
        }
    }
    assert_eq!(&statuses[..3], &[200, 200, 200], "the burst: {statuses:?}");
    assert!(statuses[3..].contains(&429), "then refused: {statuses:?}");
}

/// Stream limits count the signed-in user, not the address (DESIGN §5a):
/// two users on the same 127.0.0.1 each get their own concurrent cap and
/// their own open rate, while one user's two sessions share one cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_limits_count_each_signed_in_user_not_their_shared_address() {
    let app = spawn_app_with(Backend::Sqlite, &["--max-streams-per-ip", "2"]).await;
    let url = app.ws_url("/api/v1/rooms/shared/stream");
    let first_session = app.cookie.clone().expect("the default user's session");
    // Signing in again as the same user opens a second session.
    let second_session = sign_up(&app.address, DEFAULT_USER, DEFAULT_USER).await;
    assert_ne!(first_session, second_session);
    let ada = sign_up(&app.address, "ada", "Ada").await;

    let _t1 = try_connect_ws(&url, Some(&first_session), None)
        .await
        .expect("the user's first stream");
    let _t2 = try_connect_ws(&url, Some(&second_session), None)
        .await
        .expect("the user's second stream, from another session");
    for session in [&first_session, &second_session] {
        let refused = try_connect_ws(&url, Some(session), None).await.err();
        assert_eq!(
            refused_status(&refused),
            Some(429),
            "the user is at its cap whichever session asks"
        );
    }
    let _a1 = try_connect_ws(&url, Some(&ada), None)
        .await
        .expect("another user from the same address has a cap of its own");
    let _a2 = try_connect_ws(&url, Some(&ada), None)
        .await
        .expect("another user's second stream");
    let refused = try_connect_ws(&url, Some(&ada), None).await.err();
    assert_eq!(refused_status(&refused), Some(429), "and reaches it");

    let app = spawn_app_with(
        Backend::Sqlite,
        &["--stream-open-rate", "1", "--stream-open-burst", "2"],
    )
    .await;
    let ada = sign_up(&app.address, "ada", "Ada").await;
    let open = |client: reqwest::Client| {
        let url = app.url("/api/v1/rooms/rated/stream");
        async move {
            client
                .get(url)
                .header("accept", "text/event-stream")
                .send()
                .await
                .expect("a stream request is answered")
                .status()
                .as_u16()
        }
    };
    let mut tester = Vec::new();
    for _ in 0..3 {
        tester.push(open(app.client.clone()).await);
    }
    assert_eq!(
        tester,
        [200, 200, 429],
        "the default user's burst, then refused"
    );
    let mut other = Vec::new();
    for _ in 0..2 {
        other.push(open(client_with_cookie(&ada)).await);
    }
    assert_eq!(
        other,
        [200, 200],
        "another user from the same address opens at its own rate"
    );
}

/// Under `ulimit -n 200` (soft and hard, so it cannot be raised) and
/// `--reserved-fds 64`, the stream cap is 136, not --max-streams: with
/// every stream slot taken, one more stream is 503 `too_many_streams`, and
/// health checks and the REST API still answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_stream_cap_under_a_low_ulimit_health_and_the_api_still_answer() {
    const LIMIT: u64 = 200;
    const RESERVED: u64 = 64;
    const CAP: usize = (LIMIT - RESERVED) as usize;
    let db = TestDb::new(Backend::Sqlite).await;
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -n {LIMIT} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_palaver"))
        .args(["serve", "--listen", &listen, "--database-url", &db.url])
        .args([
            "--rate-limit",
            "0",
            "--stream-open-rate",
            "0",
            "--max-streams-per-ip",
            "0",
        ])
        .args([
            "--reserved-fds",
            &RESERVED.to_string(),
            "--log-format",
            "json",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn palaver under ulimit");
    let mut server = ServerProcess {
        child,
        port,
        client: reqwest::Client::new(),
        cookie: None,
    };
    let base = base(&server);
    let anonymous = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    wait_until("ready", Duration::from_secs(30), || async {
        anonymous
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    // Signed in as the default user, like every test server.
    let cookie = crate::helpers::default_cookie(&base, port, &db.url)
        .await
        .expect("sign-up");
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::COOKIE, cookie.parse().unwrap());
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .default_headers(headers)
        .build()
        .unwrap();
    server.client = client.clone();
    server.cookie = Some(cookie);
    let page = metrics(&client, &base).await;
    assert_eq!(
        metric_sum(&page, "palaver_stream_max_connections"),
        Some(CAP as f64),
        "the effective cap is the descriptor budget"
    );

    let url = server.ws_url("/api/v1/rooms/full/stream");
    let streams: Vec<_> = futures::stream::iter(0..CAP)
        .map(|_| {
            let url = url.clone();
            async move {
                let mut ws = connect_ws(&url).await;
                read_until_caught_up(&mut ws).await;
                ws
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    assert_eq!(streams_open(&client, &base).await, Some(CAP as f64));
    assert!(
        open_sockets(server.child.id()) as u64 > CAP as u64,
        "the streams hold descriptors"
    );

    for _ in 0..3 {
        let refused = client
            .get(server.url("/api/v1/rooms/full/stream"))
            .header("accept", "text/event-stream")
            .send()
            .await
            .expect("a stream over the cap is answered");
        assert_eq!(refused.status(), 503);
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["error"]["code"], "too_many_streams");
    }
    // Health checks and the REST API, each on a fresh connection.
    for _ in 0..5 {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::COOKIE,
            server.cookie.as_deref().unwrap().parse().unwrap(),
        );
        let fresh = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .default_headers(headers)
            .build()
            .unwrap();
        let health = fresh
            .get(format!("{base}/healthz"))
            .send()
            .await
            .expect("healthz answers");
        assert_eq!(health.status(), 200);
        let ready = fresh
            .get(format!("{base}/readyz"))
            .send()
            .await
            .expect("readyz answers");
        assert_eq!(ready.status(), 200);
        let sent = fresh
            .post(server.url("/api/v1/rooms/full/messages"))
            .json(&message("ada", "still answering", None))
            .send()
            .await
            .expect("a send answers");
        assert_eq!(sent.status(), 201);
        let read = fresh
            .get(server.url("/api/v1/rooms/full/messages?limit=5"))
            .send()
            .await
            .expect("a read answers");
        assert_eq!(read.status(), 200);
    }
    drop(streams);
    wait_until("every stream closed", Duration::from_secs(60), || async {
        streams_open(&client, &base).await == Some(0.0)
    })
    .await;
}

/// An SSE client that stops reading while messages flood its room is cut
/// off by the write timeout: its stream closes as `lagging`, the server drops
/// the connection, and the open-streams gauge returns to 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_sse_reader_is_closed_by_the_write_timeout() {
    let db = TestDb::new(Backend::Sqlite).await;
    let server = ServerProcess::start(&db.url, &["--stream-write-timeout", "1"]).await;
    let client = server.client.clone();
    let base = base(&server);
    // A raw SSE request from a socket with a tiny receive buffer, never read.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket
        .connect(format!("127.0.0.1:{}", server.port).parse().unwrap())
        .await
        .unwrap();
    use tokio::io::AsyncWriteExt;
    let request = format!(
        "GET /api/v1/rooms/stall/stream HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\nCookie: {}\r\n\r\n",
        server.cookie.as_deref().unwrap()
    );
    stalled.write_all(request.as_bytes()).await.unwrap();
    wait_until(
        "the SSE stream is open",
        Duration::from_secs(10),
        || async { streams_open(&client, &base).await == Some(1.0) },
    )
    .await;

    let text = "x".repeat(3000);
    let url = server.url("/api/v1/rooms/stall/messages");
    let mut sent = 0;
    let closed = loop {
        let page = metrics(&client, &base).await;
        let lagging =
            crate::helpers::counted(&page, "palaver_stream_closed_total", r#"reason="lagging""#);
        if lagging {
            break true;
        }
        if sent >= 4000 {
            break false;
        }
        let posts = futures::stream::iter(0..50)
            .map(|_| {
                client
                    .post(&url)
                    .json(&message("flood", &text, None))
                    .send()
            })
            .buffer_unordered(8)
            .collect::<Vec<_>>()
            .await;
        for r in posts {
            assert_eq!(r.unwrap().status(), 201);
        }
        sent += 50;
    };
    assert!(
        closed,
        "the stalled SSE stream was not closed as lagging after {sent} messages"
    );
    wait_until("the stream is gone", Duration::from_secs(30), || async {
        streams_open(&client, &base).await == Some(0.0)
    })
    .await;
    // The server dropped the connection: reading what it had sent ends in
    // EOF or a reset, not in waiting for more.
    let ended = tokio::time::timeout(Duration::from_secs(30), async {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match stalled.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the server still holds the stalled connection"
    );
}

/// A request slower than `--request-timeout` is answered 408 in the JSON
/// error shape. The timeout wraps the whole handler, body extraction
/// included, so a body that stops arriving (a `Content-Length` promising
/// more than is ever sent) holds the request until it fires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_over_the_request_timeout_answers_408_with_the_json_error() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(Backend::Sqlite, &["--request-timeout", "1"]).await;
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .expect("connect");
    let partial = r#"{"message":"#;
    let head = format!(
        "PUT /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: 64\r\nConnection: close\r\n\r\n{partial}"
    );
    let started = std::time::Instant::now();
    socket.write_all(head.as_bytes()).await.expect("send head");

    // Read the answer: its head, then as many body bytes as it announces
    // (or up to EOF), within 10 s.
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let complete = |answer: &[u8]| {
        let text = String::from_utf8_lossy(answer);
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            return false;
        };
        head.lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())?
            })
            .is_some_and(|length| body.len() >= length)
    };
    while !complete(&answer) {
        match tokio::time::timeout(Duration::from_secs(10), socket.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            Err(_) => panic!("no answer within 10 s of a stalled body"),
        }
    }
    let elapsed = started.elapsed();
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("a complete answer head, got {text:?}"));
    assert!(
        head.starts_with("HTTP/1.1 408"),
        "expected 408 after the request timeout, got {head:?}"
    );
    assert!(
        elapsed >= Duration::from_millis(900),
        "answered after {elapsed:?}: before the 1 s timeout could fire"
    );
    assert!(
        head.lines().any(|l| l
            .to_ascii_lowercase()
            .starts_with("content-type: application/json")),
        "the 408 is JSON: {head}"
    );
    let body: Value = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("the 408 body is the JSON error ({e}): {body:?}"));
    assert_eq!(body["error"]["code"], "timeout", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "the error says why: {body}"
    );
    let (status, stored) = app.get_json("/chat?size=10").await;
    assert_eq!(
        (status, stored),
        (200, serde_json::json!([])),
        "nothing stored"
    );
}
