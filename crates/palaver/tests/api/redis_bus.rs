//! The Redis bus against a real `redis-server`: fan-out across replicas
//! without a database read per delivery, the broker killed and restarted,
//! a writer killed between commit and publish, hostile payloads, and start-up
//! faults (unreachable broker, wrong password, TLS mismatch, SQLite).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use palaver::config::Config;
use palaver::Application;

use crate::broker::{metric, spawn_alive, spawn_ready, wait_readyz, RedisServer};
use crate::fault_helpers::wait_until;
use crate::helpers::{
    close_ws, connect_ws, free_port, message, read_messages, read_until_caught_up, Backend,
    ServerProcess, TestDb, Ws,
};

/// Posts `text` to `room` on `server` and asserts 201.
pub(crate) async fn post(server: &ServerProcess, room: &str, text: &str) {
    // The server's own client: signed in as the default user.
    let response = server
        .client
        .post(server.url(&format!("/api/v1/rooms/{room}/messages")))
        .json(&message("tester", text, Some(text)))
        .send()
        .await
        .expect("send");
    assert_eq!(
        response.status(),
        201,
        "send {text} to port {}",
        server.port
    );
}

/// `n` WebSocket subscribers of `room` on each server, caught up.
pub(crate) async fn subscribers(servers: &[&ServerProcess], room: &str, n: usize) -> Vec<Ws> {
    let mut out = Vec::new();
    for server in servers {
        for _ in 0..n {
            let mut ws =
                connect_ws(&server.ws_url(&format!("/api/v1/rooms/{room}/stream?since=0"))).await;
            read_until_caught_up(&mut ws).await;
            out.push(ws);
        }
    }
    out
}

/// Waits until the broker has `n` subscriptions on `room`'s channel.
async fn wait_subscribed(redis: &RedisServer, room: &str, n: i64) {
    let mut conn = redis.client().await;
    let channel = format!("palaver:room:{room}");
    wait_until(
        &format!("{n} broker subscriptions on {channel}"),
        Duration::from_secs(10),
        || {
            let mut conn = conn.clone();
            let channel = channel.clone();
            async move {
                let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
                    .arg("NUMSUB")
                    .arg(&channel)
                    .query_async(&mut conn)
                    .await
                    .unwrap_or_default();
                counts.first().is_some_and(|(_, count)| *count == n)
            }
        },
    )
    .await;
    let _: () = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .expect("ping");
}

/// Every subscriber reads exactly `expected` (seq 1.. in order, each once).
pub(crate) async fn assert_all_delivered(subscribers: &mut [Ws], expected: &[String]) {
    for (i, ws) in subscribers.iter_mut().enumerate() {
        let got = read_messages(ws, expected.len()).await;
        let seqs: Vec<i64> = got.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(
            seqs,
            (1..=expected.len() as i64).collect::<Vec<_>>(),
            "subscriber {i}: every seq once, in order"
        );
        let texts: BTreeSet<&str> = got.iter().map(|(_, t)| t.as_str()).collect();
        let sent: BTreeSet<&str> = expected.iter().map(String::as_str).collect();
        assert_eq!(texts, sent, "subscriber {i}: exactly the messages sent");
    }
}

/// Three replicas on one broker, each sending and serving: each subscriber
/// sees every message sent to any replica once and in order; another room's
/// subscriber sees none; rooms without subscribers are unsubscribed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_fan_out_over_redis_every_message_once_in_order() {
    let db = TestDb::new(Backend::Postgres).await;
    let redis = RedisServer::start();
    let bus = redis.url();
    let flags = ["--bus", bus.as_str()];
    let a = spawn_ready(&db.url, &flags, &[]).await;
    let b = spawn_ready(&db.url, &flags, &[]).await;
    let c = spawn_ready(&db.url, &flags, &[]).await;
    let mut subs = subscribers(&[&a, &b, &c], "fan", 2).await;
    wait_subscribed(&redis, "fan", 3).await;
    let other = subscribers(&[&a], "elsewhere", 1).await;

    let replicas = [&a, &b, &c];
    let sends = (0..60).map(|i| {
        let server = replicas[i % 3];
        async move { post(server, "fan", &format!("m{i}")).await }
    });
    futures::future::join_all(sends).await;
    let expected: Vec<String> = (0..60).map(|i| format!("m{i}")).collect();
    assert_all_delivered(&mut subs, &expected).await;

    for server in replicas {
        assert_eq!(metric(server, "palaver_bus_up").await, 1.0);
        assert_eq!(
            metric(server, "palaver_bus_payloads_rejected_total").await,
            0.0
        );
    }
    post(&a, "elsewhere", "only-here").await;
    for mut ws in other {
        assert_eq!(
            read_messages(&mut ws, 1).await,
            vec![(1, "only-here".to_owned())],
            "the other room's first message is its own"
        );
        close_ws(ws).await;
    }
    for ws in subs {
        close_ws(ws).await;
    }
    // Rooms that lost their last subscriber are unsubscribed.
    wait_subscribed(&redis, "fan", 0).await;
}

/// `redis-server` SIGKILLed and restarted while two replicas take sends:
/// every send succeeds (PostgreSQL is the truth) and every subscriber still
/// gets every message once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_killed_and_restarted_while_posting_loses_and_repeats_nothing() {
    let db = TestDb::new(Backend::Postgres).await;
    let mut redis = RedisServer::start();
    let bus = redis.url();
    let flags = ["--bus", bus.as_str(), "--bus-repair-interval-ms", "200"];
    let a = spawn_ready(&db.url, &flags, &[]).await;
    let b = spawn_ready(&db.url, &flags, &[]).await;
    let mut subs = subscribers(&[&a, &b], "storm", 2).await;
    wait_subscribed(&redis, "storm", 2).await;

    let mut expected = Vec::new();
    for i in 0..300 {
        if i == 100 {
            redis.kill();
        }
        if i == 200 {
            redis.restart();
        }
        let text = format!("s{i}");
        post(if i % 2 == 0 { &a } else { &b }, "storm", &text).await;
        expected.push(text);
    }
    assert_all_delivered(&mut subs, &expected).await;
    wait_readyz(&a, 200).await;
    wait_readyz(&b, 200).await;
    for server in [&a, &b] {
        assert!(metric(server, "palaver_bus_reconnects_total").await >= 1.0);
        assert!(metric(server, "palaver_bus_repairs_total").await >= 1.0);
    }
    // After the restart the broker carries the traffic again.
    post(&a, "storm", "after").await;
    for ws in subs.iter_mut() {
        let got = read_messages(ws, 1).await;
        assert_eq!(got, vec![(301, "after".to_owned())]);
    }
}

/// A writer SIGKILLed after its commit and before its publish (a debug-only
/// fault hook holds the publish): the gateways' head check delivers the
/// message within two repair intervals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_whose_writer_died_before_publishing_arrives_within_the_bound() {
    let db = TestDb::new(Backend::Postgres).await;
    let redis = RedisServer::start();
    let bus = redis.url();
    let interval_ms = 500;
    let interval = interval_ms.to_string();
    let mut writer = spawn_ready(
        &db.url,
        &["--role", "api", "--bus", &bus],
        &[("PALAVER_FAULT_HOLD_PUBLISH", "doomed")],
    )
    .await;
    let gateway_flags = [
        "--role",
        "gateway",
        "--bus",
        bus.as_str(),
        "--bus-repair-interval-ms",
        interval.as_str(),
    ];
    let g1 = spawn_ready(&db.url, &gateway_flags, &[]).await;
    let g2 = spawn_ready(&db.url, &gateway_flags, &[]).await;
    let mut subs = subscribers(&[&g1, &g2], "crash", 1).await;
    wait_subscribed(&redis, "crash", 2).await;

    post(&writer, "crash", "before").await;
    for ws in subs.iter_mut() {
        assert_eq!(read_messages(ws, 1).await, vec![(1, "before".to_owned())]);
    }
    let repairs_before = metric(&g1, "palaver_bus_repairs_total").await;

    post(&writer, "crash", "doomed").await;
    let committed = Instant::now();
    writer.child.kill().expect("SIGKILL the writer");
    let _ = writer.child.wait();
    for ws in subs.iter_mut() {
        assert_eq!(read_messages(ws, 1).await, vec![(2, "doomed".to_owned())]);
    }
    let took = committed.elapsed();
    // Two intervals, plus slack for a loaded machine.
    let bound = Duration::from_millis(2 * interval_ms) + Duration::from_secs(2);
    assert!(took < bound, "delivered after {took:?}, bound {bound:?}");
    assert!(metric(&g1, "palaver_bus_repairs_total").await > repairs_before);
}

/// An edit whose writer is SIGKILLed between its commit and its publish
/// (the fault hook holds the payload carrying the edit's text) reaches the
/// gateways' subscribers within the repair bound, as a message would; the
/// reactions and deletion after it, from a live writer, follow in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_whose_writer_died_before_publishing_arrives_within_the_bound() {
    let db = TestDb::new(Backend::Postgres).await;
    let redis = RedisServer::start();
    let bus = redis.url();
    let interval_ms = 500;
    let interval = interval_ms.to_string();
    let mut writer = spawn_ready(
        &db.url,
        &["--role", "api", "--bus", &bus],
        &[("PALAVER_FAULT_HOLD_PUBLISH", "doomed edit")],
    )
    .await;
    let gateway_flags = [
        "--role",
        "gateway",
        "--bus",
        bus.as_str(),
        "--bus-repair-interval-ms",
        interval.as_str(),
    ];
    let g1 = spawn_ready(&db.url, &gateway_flags, &[]).await;
    let g2 = spawn_ready(&db.url, &gateway_flags, &[]).await;
    let mut subs = subscribers(&[&g1, &g2], "edits", 1).await;
    wait_subscribed(&redis, "edits", 2).await;

    post(&writer, "edits", "first").await;
    for ws in subs.iter_mut() {
        assert_eq!(read_messages(ws, 1).await, vec![(1, "first".to_owned())]);
    }
    let edited = writer
        .client
        .patch(writer.url("/api/v1/rooms/edits/messages/1"))
        .json(&serde_json::json!({"text": "doomed edit"}))
        .send()
        .await
        .expect("edit");
    assert_eq!(edited.status(), 200);
    let committed = Instant::now();
    writer.child.kill().expect("SIGKILL the writer");
    let _ = writer.child.wait();
    for ws in subs.iter_mut() {
        let frame = crate::helpers::next_frame(ws).await;
        assert_eq!(
            (
                frame["type"].as_str(),
                frame["seq"].as_i64(),
                frame["text"].as_str()
            ),
            (Some("edit"), Some(2), Some("doomed edit"))
        );
    }
    let took = committed.elapsed();
    let bound = Duration::from_millis(2 * interval_ms) + Duration::from_secs(2);
    assert!(took < bound, "delivered after {took:?}, bound {bound:?}");

    // A live writer's reaction and deletion follow, once each, in order.
    let live = ServerProcess::start(&db.url, &["--role", "api", "--bus", &bus]).await;
    let react = live
        .client
        .put(live.url("/api/v1/rooms/edits/messages/1/reactions/%F0%9F%91%8D"))
        .send()
        .await
        .expect("react");
    assert_eq!(react.status(), 204);
    let delete = live
        .client
        .delete(live.url("/api/v1/rooms/edits/messages/1"))
        .send()
        .await
        .expect("delete");
    assert_eq!(delete.status(), 204);
    for ws in subs.iter_mut() {
        let kinds = [
            crate::helpers::next_frame(ws).await,
            crate::helpers::next_frame(ws).await,
        ]
        .map(|f| (f["type"].as_str().map(str::to_owned), f["seq"].as_i64()));
        assert_eq!(
            kinds,
            [
                (Some("reaction".to_owned()), Some(3)),
                (Some("delete".to_owned()), Some(4))
            ]
        );
    }
}

/// Payloads that are not ours on a room's channel are ignored and counted;
/// the subscriber's next frame is the next real message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_foreign_payloads_are_ignored_counted_and_never_delivered() {
    let db = TestDb::new(Backend::Postgres).await;
    let redis = RedisServer::start();
    let bus = redis.url();
    let server = spawn_ready(&db.url, &["--bus", &bus], &[]).await;
    let mut subs = subscribers(&[&server], "noise", 1).await;
    wait_subscribed(&redis, "noise", 1).await;

    let mut conn = redis.client().await;
    let hostile: [&[u8]; 5] = [
        b"not json at all",
        br#"{"v":2,"room":"noise","messages":[]}"#,
        br#"{"v":1,"room":"other","messages":[{"seq":1,"author":"x","text":"y","sent_at_ms":0,"client_id":null,"client_ip":""}]}"#,
        br#"{"v":1,"room":"noise","messages":[{"seq":1,"author":"x","text":"bell\u0007","sent_at_ms":0,"client_id":null,"client_ip":""}]}"#,
        &[0xff, 0xfe, 0x00, 0x01],
    ];
    for payload in hostile {
        let _: i64 = redis::cmd("PUBLISH")
            .arg("palaver:room:noise")
            .arg(payload)
            .query_async(&mut conn)
            .await
            .expect("publish");
    }
    wait_until("5 rejected payloads", Duration::from_secs(10), || async {
        metric(&server, "palaver_bus_payloads_rejected_total").await == 5.0
    })
    .await;
    let client = reqwest::Client::new();
    post(&server, "noise", "real").await;
    assert_eq!(
        read_messages(&mut subs[0], 1).await,
        vec![(1, "real".to_owned())]
    );
    let status = client
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200, "hostile payloads do not make the bus unready");
}

/// A broker that cannot be used at start-up leaves the process alive and
/// retrying, with `/readyz` 503 and `palaver_bus_up` 0; once the broker
/// appears, the same process becomes ready and delivers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_wrong_password_or_tls_mismatch_is_not_ready_and_never_crashes() {
    let db = TestDb::new(Backend::Postgres).await;
    let protected = RedisServer::with_password("right-password");
    let wrong = format!("redis://:wrong-password@127.0.0.1:{}", protected.port);
    let tls_mismatch = format!("rediss://127.0.0.1:{}", protected.port);
    let absent_port = free_port();
    let absent = format!("redis://127.0.0.1:{absent_port}");

    // Each waits up to 5 s for its bus before it serves: start them at once.
    let cases = [
        (wrong.as_str(), "all"),
        (tls_mismatch.as_str(), "all"),
        (absent.as_str(), "gateway"),
        (absent.as_str(), "api"),
    ];
    let started = futures::future::join_all(cases.iter().map(|(bus, role)| {
        let url = db.url.clone();
        async move { spawn_alive(&url, &["--bus", bus, "--role", role], &[]).await }
    }))
    .await;
    let mut processes: Vec<_> = cases
        .iter()
        .zip(started)
        .map(|((bus, role), server)| (*bus, *role, server))
        .collect();
    let client = reqwest::Client::new();
    for (bus, role, server) in processes.iter_mut() {
        let response = client.get(server.url("/readyz")).send().await.unwrap();
        assert_eq!(response.status(), 503, "{role} on {bus}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "bus_unavailable", "{role} on {bus}");
        assert_eq!(
            metric(server, "palaver_bus_up").await,
            0.0,
            "{role} on {bus}"
        );
        let page = crate::fault_helpers::metrics(&client, &server.url("")).await;
        assert!(!page.contains("wrong-password"), "no secret in metrics");
    }
    // Still alive a few retries later: no crash loop.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (bus, role, server) in processes.iter_mut() {
        assert!(
            server.child.try_wait().unwrap().is_none(),
            "{role} on {bus} exited"
        );
    }

    // The broker appears: the retrying processes become ready by themselves.
    let redis = RedisServer::start_on(absent_port, None);
    let (gateway, api) = (&processes[2].2, &processes[3].2);
    wait_readyz(gateway, 200).await;
    wait_readyz(api, 200).await;
    let mut subs = subscribers(&[gateway], "late", 1).await;
    wait_subscribed(&redis, "late", 1).await;
    post(api, "late", "hello").await;
    assert_eq!(
        read_messages(&mut subs[0], 1).await,
        vec![(1, "hello".to_owned())]
    );
    assert_eq!(metric(gateway, "palaver_bus_up").await, 1.0);
}

/// SQLite serves one process: a broker bus there is refused at start-up
/// with a clear reason.
#[tokio::test]
async fn a_broker_bus_on_sqlite_is_refused_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/palaver.db", dir.path().display());
    for bus in ["redis://:s3cret@127.0.0.1:1", "postgres"] {
        let config = Config::from_args([
            "palaver",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &url,
            "--bus",
            bus,
        ])
        .unwrap();
        let error = match Application::build(config).await {
            Ok(_) => panic!("--bus {bus} on SQLite was accepted"),
            Err(error) => format!("{error:#}"),
        };
        assert!(error.contains("needs PostgreSQL"), "{error}");
        assert!(!error.contains("s3cret"), "{error}");
    }
}
