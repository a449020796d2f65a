//! Faults: the database going away, and shutting down under load.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{message, spawn_app_on, Backend, ServerProcess, TestDb};

/// PostgreSQL stopped: readiness and sends answer 503 with the JSON error and
/// nothing panics; started again: the same process recovers by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_is_503_and_the_process_recovers_without_restart() {
    let (db, cluster) = TestDb::private_postgres().await;
    let app = spawn_app_on(db, &["--db-acquire-timeout", "1"]).await;
    app.send("outage", "before").await;

    cluster.stop();
    let (status, body) = app.get_json("/readyz").await;
    assert_eq!(status, 503);
    assert_eq!(body["error"]["code"], "database_unavailable", "{body}");
    let response = app
        .post_message("outage", &message("a", "during", Some("retry-me")))
        .await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "database_unavailable");
    assert!(
        !body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("connect"),
        "no driver details leak: {body}"
    );
    let (status, _) = app.get_json("/api/v1/rooms/outage/messages").await;
    assert_eq!(status, 503);
    let (status, _) = app.get_json("/healthz").await;
    assert_eq!(status, 200, "alive even when not ready");

    cluster.start();
    let mut ready = false;
    for _ in 0..100 {
        if app.get_json("/readyz").await.0 == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "ready again without a restart");
    let response = app
        .post_message("outage", &message("a", "during", Some("retry-me")))
        .await;
    assert_eq!(response.status(), 201);
    let texts: Vec<_> = app
        .all_messages("outage")
        .await
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(texts, ["before", "during"]);
    app.stop().await;
}

/// SIGTERM while a request is in flight: the request completes, then the
/// process exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_in_flight_request_finish_and_exits_0() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let db = TestDb::new(backend).await;
        let mut server = ServerProcess::start(&db.url, &["--shutdown-grace", "10"]).await;
        let mut ws = crate::helpers::connect_ws(&server.ws_url("/api/v1/rooms/term/stream")).await;
        crate::helpers::read_until_caught_up(&mut ws).await;

        // Start a request and leave its body half-sent.
        let body = serde_json::to_vec(&message("a", "in flight", None)).unwrap();
        let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", server.port))
            .await
            .unwrap();
        let head = format!(
            "POST /api/v1/rooms/term/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nCookie: {}\r\nContent-Length: {}\r\n\r\n",
            server.cookie.as_deref().unwrap_or_default(),
            body.len()
        );
        conn.write_all(head.as_bytes()).await.unwrap();
        conn.write_all(&body[..10]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;

        server.terminate();
        // The stream is closed with a reconnect hint.
        let close = loop {
            use futures::StreamExt;
            match tokio::time::timeout(Duration::from_secs(5), ws.next())
                .await
                .unwrap()
            {
                Some(Ok(tokio_tungstenite::tungstenite::Message::Close(frame))) => break frame,
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        };
        assert_eq!(close.unwrap().reason.as_str(), "shutting_down");

        tokio::time::sleep(Duration::from_millis(300)).await;
        conn.write_all(&body[10..]).await.unwrap();
        let mut response = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut response))
            .await
            .expect("response before exit")
            .unwrap();
        let response = String::from_utf8_lossy(&response);
        assert!(
            response.starts_with("HTTP/1.1 201"),
            "{backend:?}: {response}"
        );
        assert!(response.contains("in flight"));

        let code = server.wait_exit(Duration::from_secs(10)).await;
        assert_eq!(code, Some(0), "{backend:?}: exit code");
    }
}

/// `palaver_db_up` follows the database with nothing calling `/readyz`
/// (the start-up probe pings every few seconds): 1 while PostgreSQL runs,
/// 0 within 15 s of it stopping, 1 again within 15 s of it coming back.
/// A process of its own, since tests in one binary share one metrics
/// registry; it is never asked `/readyz`, only `/healthz` and `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_up_follows_the_database_without_any_readiness_call() {
    use crate::fault_helpers::{metric_sum, metrics, wait_until};
    let (db, cluster) = TestDb::private_postgres().await;
    let server = ServerProcess::spawn(&db.url, &[]);
    let base = server.url("");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    wait_until("the server is alive", Duration::from_secs(30), || async {
        client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    let db_up = || async { metric_sum(&metrics(&client, &base).await, "palaver_db_up") };

    wait_until("palaver_db_up 1", Duration::from_secs(15), || async {
        db_up().await == Some(1.0)
    })
    .await;
    cluster.stop();
    wait_until(
        "palaver_db_up 0 after PostgreSQL stopped",
        Duration::from_secs(15),
        || async { db_up().await == Some(0.0) },
    )
    .await;
    cluster.start();
    wait_until(
        "palaver_db_up 1 after PostgreSQL came back",
        Duration::from_secs(15),
        || async { db_up().await == Some(1.0) },
    )
    .await;
    drop(server);
}
