//! Live streams: replay from a seq, then live, with no gap and no duplicate.

use std::time::Duration;

use serde_json::Value;

use crate::both_backends;
use crate::fault_helpers::{metric_sum, metrics, wait_until};
use crate::helpers::{
    close_ws, connect_ws, message, read_messages, read_until_caught_up, spawn_app, spawn_app_with,
    Backend, ServerProcess, Sse, TestDb,
};

both_backends!(
    websocket_subscriber_receives_live_messages_of_its_room_only,
    websocket_resume_with_since_delivers_exactly_the_missed_messages,
    sse_resume_with_last_event_id_delivers_exactly_the_missed_messages,
    stream_requests_that_are_neither_websocket_nor_sse_are_400,
    a_subscriber_that_falls_behind_is_closed_with_lagging,
);

async fn websocket_subscriber_receives_live_messages_of_its_room_only(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut ws = connect_ws(&app.ws_url("/api/v1/rooms/live/stream")).await;
    let (replayed, seq) = read_until_caught_up(&mut ws).await;
    assert!(replayed.is_empty());
    assert_eq!(seq, 0);
    app.send("elsewhere", "not for you").await;
    for i in 1..=5 {
        app.send("live", &format!("hello {i}")).await;
    }
    let got = read_messages(&mut ws, 5).await;
    assert_eq!(
        got,
        (1..=5)
            .map(|i| (i, format!("hello {i}")))
            .collect::<Vec<_>>()
    );
    close_ws(ws).await;
    app.stop().await;
}

async fn websocket_resume_with_since_delivers_exactly_the_missed_messages(backend: Backend) {
    let app = spawn_app(backend).await;
    for i in 1..=10 {
        app.send("resume", &format!("before {i}")).await;
    }
    let mut ws = connect_ws(&app.ws_url("/api/v1/rooms/resume/stream?since=0")).await;
    let (replayed, caught_up) = read_until_caught_up(&mut ws).await;
    assert_eq!(replayed, (1..=10).collect::<Vec<_>>());
    assert_eq!(caught_up, 10);
    close_ws(ws).await;

    for i in 11..=110 {
        app.send("resume", &format!("missed {i}")).await;
    }
    let mut ws = connect_ws(&app.ws_url("/api/v1/rooms/resume/stream?since=10")).await;
    let (replayed, caught_up) = read_until_caught_up(&mut ws).await;
    assert_eq!(
        replayed,
        (11..=110).collect::<Vec<_>>(),
        "exactly the 100 missed, in order"
    );
    assert_eq!(caught_up, 110);
    app.send("resume", "live after resume").await;
    assert_eq!(
        read_messages(&mut ws, 1).await,
        vec![(111, "live after resume".to_owned())]
    );
    close_ws(ws).await;
    app.stop().await;
}

async fn sse_resume_with_last_event_id_delivers_exactly_the_missed_messages(backend: Backend) {
    let app = spawn_app(backend).await;
    app.send("sse", "first").await;
    let open = |last_event_id: Option<&str>| {
        let mut request = app
            .client
            .get(app.url("/api/v1/rooms/sse/stream"))
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        request.send()
    };
    let response = open(Some("0")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut sse = Sse::new(response);
    let event = sse.next_event().await.unwrap();
    assert_eq!(event.event.as_deref(), Some("message"));
    assert_eq!(event.id.as_deref(), Some("1"));
    let data: Value = serde_json::from_str(&event.data).unwrap();
    assert_eq!(data["text"], "first");
    assert_eq!(
        sse.next_event().await.unwrap().event.as_deref(),
        Some("caught_up")
    );
    drop(sse);

    for i in 2..=101 {
        app.send("sse", &format!("missed {i}")).await;
    }
    let mut sse = Sse::new(open(Some("1")).await.unwrap());
    let mut ids = Vec::new();
    loop {
        let event = sse.next_event().await.unwrap();
        match event.event.as_deref() {
            Some("message") => ids.push(event.id.unwrap().parse::<i64>().unwrap()),
            Some("caught_up") => break,
            other => panic!("unexpected event {other:?}"),
        }
    }
    assert_eq!(ids, (2..=101).collect::<Vec<_>>());
    app.send("sse", "live").await;
    let event = sse.next_event().await.unwrap();
    assert_eq!(event.id.as_deref(), Some("102"));
    app.stop().await;
}

async fn stream_requests_that_are_neither_websocket_nor_sse_are_400(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, body) = app.get_json("/api/v1/rooms/general/stream").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "not_a_stream_request");
    let (status, _) = app.get_json("/api/v1/rooms/general/stream?since=-1").await;
    assert_eq!(status, 400);
    let response = app
        .client
        .get(app.url("/api/v1/rooms/general/stream"))
        .header("accept", "text/event-stream")
        .header("last-event-id", "abc")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    app.stop().await;
}

async fn a_subscriber_that_falls_behind_is_closed_with_lagging(backend: Backend) {
    use futures::StreamExt;
    let app = spawn_app_with(
        backend,
        &["--stream-buffer", "64", "--stream-write-timeout", "1"],
    )
    .await;
    // The slow client has a tiny receive buffer and never reads, so the
    // server's writes to it block once the socket buffers fill.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket
        .connect(format!("127.0.0.1:{}", app.port).parse().unwrap())
        .await
        .unwrap();
    let (mut slow, _) = tokio_tungstenite::client_async(
        crate::helpers::ws_request(&app.ws_url("/api/v1/rooms/flood/stream")),
        tokio_tungstenite::MaybeTlsStream::Plain(stream),
    )
    .await
    .unwrap();
    let mut healthy = connect_ws(&app.ws_url("/api/v1/rooms/flood/stream")).await;
    read_until_caught_up(&mut slow).await;
    read_until_caught_up(&mut healthy).await;

    let total = 2000;
    let reader = tokio::spawn(async move {
        let got = read_messages(&mut healthy, total).await;
        (got, healthy)
    });
    let body = message("a", &"x".repeat(3000), None);
    for chunk in (0..total).collect::<Vec<_>>().chunks(10) {
        let sends = chunk.iter().map(|_| app.post_message("flood", &body));
        for response in futures::future::join_all(sends).await {
            assert_eq!(response.status(), 201);
        }
    }
    let (got, healthy) = reader.await.unwrap();
    assert_eq!(
        got.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        (1..=total as i64).collect::<Vec<_>>(),
        "the healthy subscriber is unaffected"
    );

    // The server gives up on the slow one and says why in its metrics; the
    // slow client sees its stream end (a close frame, or the socket closing).
    wait_until(
        "the slow stream closed as lagging",
        Duration::from_secs(10),
        || async {
            crate::helpers::counted(
                &metrics(&app.client, &app.address).await,
                "palaver_stream_closed_total",
                r#"reason="lagging""#,
            )
        },
    )
    .await;
    let mut received = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), slow.next()).await {
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(_)))) => received += 1,
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Close(frame)))) => {
                if let Some(frame) = frame {
                    assert_eq!(frame.reason.as_str(), "lagging");
                }
                break;
            }
            Ok(Some(Ok(_))) => continue,
            Ok(None) | Ok(Some(Err(_))) => break,
            Err(_) => panic!("the slow stream was not closed"),
        }
    }
    assert!(
        received < total,
        "the slow subscriber did not get everything"
    );
    close_ws(healthy).await;
    app.stop().await;
}

/// Two server processes sharing one PostgreSQL: what is posted to one reaches
/// a subscriber of the other, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_postgres_fan_out_to_each_other() {
    let db = TestDb::new(Backend::Postgres).await;
    let a = ServerProcess::start(&db.url, &[]).await;
    let b = ServerProcess::start(&db.url, &[]).await;
    let mut ws = connect_ws(&a.ws_url("/api/v1/rooms/shared/stream")).await;
    read_until_caught_up(&mut ws).await;
    let client = b.client.clone();
    for i in 1..=50 {
        let r = client
            .post(b.url("/api/v1/rooms/shared/messages"))
            .json(&message("b", &format!("from b {i}"), None))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let got = read_messages(&mut ws, 50).await;
    assert_eq!(
        got,
        (1..=50)
            .map(|i| (i, format!("from b {i}")))
            .collect::<Vec<_>>()
    );
    close_ws(ws).await;
}

/// The gateway's LISTEN connection is killed while messages are posted: the
/// subscriber still receives every message, in order, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_listen_connection_loses_no_message() {
    let db = TestDb::new(Backend::Postgres).await;
    let gateway = ServerProcess::start(&db.url, &["--role", "gateway"]).await;
    let api = ServerProcess::start(&db.url, &["--role", "api"]).await;
    let mut ws = connect_ws(&gateway.ws_url("/api/v1/rooms/repair/stream")).await;
    read_until_caught_up(&mut ws).await;

    let admin = sqlx::PgPool::connect(&db.url).await.unwrap();
    let client = api.client.clone();
    let poster = {
        let url = api.url("/api/v1/rooms/repair/messages");
        tokio::spawn(async move {
            for i in 1..=300 {
                let r = client
                    .post(&url)
                    .json(&message("p", &format!("m{i}"), None))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    // Kill every LISTEN connection a few times while the poster runs.
    let mut killed = 0;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        let n: Vec<(bool,)> = sqlx::query_as(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND query ILIKE 'LISTEN%'",
        )
        .fetch_all(&admin)
        .await
        .unwrap();
        killed += n.len();
    }
    poster.await.unwrap();
    assert!(killed > 0, "a LISTEN connection was terminated");
    let got = read_messages(&mut ws, 300).await;
    assert_eq!(
        got.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        (1..=300).collect::<Vec<_>>()
    );
    let page = metrics(&reqwest::Client::new(), &gateway.url("")).await;
    assert!(
        metric_sum(&page, "palaver_bus_reconnects_total").unwrap_or(0.0) > 0.0,
        "the gateway noticed and reconnected"
    );
    close_ws(ws).await;
}
