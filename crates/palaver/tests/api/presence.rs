//! Presence and typing (DESIGN §5e) on the multiplexed stream: typing reaches
//! the room's other subscribers once per 2 s and never its sender; presence
//! follows streams, answers `GET /api/v1/presence`, and crosses replicas on
//! both buses, a SIGKILLed replica's users going offline within 60 s.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::both_backends;
use crate::broker::{RedisCluster, RedisServer};
use crate::helpers::{
    next_frame, person_on, spawn_app, try_connect_ws, Backend, ServerProcess, TestDb, Ws,
};

both_backends!(
    typing_reaches_the_rooms_other_subscribers_at_most_every_two_seconds,
    presence_follows_streams_and_answers_by_username,
    a_change_reaches_each_stream_sharing_a_room_once_and_no_other,
);

async fn send(ws: &mut Ws, frame: Value) {
    ws.send(WsMessage::Text(frame.to_string().into()))
        .await
        .expect("send frame");
}

/// Subscribes `room` on a multiplexed stream and waits for `caught_up`,
/// skipping presence frames and the user's own `rooms_changed` (a room the
/// test just created may announce itself while the subscription replays).
async fn follow(ws: &mut Ws, room: &str) {
    send(ws, json!({"type": "subscribe", "room": room})).await;
    loop {
        let frame = next_frame(ws).await;
        match frame["type"].as_str() {
            Some("caught_up") => return,
            Some("presence" | "rooms_changed") => continue,
            _ => panic!("unexpected frame {frame}"),
        }
    }
}

/// The next frame that is not a presence frame.
async fn next_non_presence(ws: &mut Ws) -> Value {
    loop {
        let frame = next_frame(ws).await;
        if frame["type"] != "presence" {
            return frame;
        }
    }
}

/// The next presence frame, within `limit` (other frames skipped).
async fn next_presence(ws: &mut Ws, limit: Duration) -> Value {
    tokio::time::timeout(limit, async {
        loop {
            match ws.next().await {
                Some(Ok(WsMessage::Text(text))) => {
                    let frame: Value = serde_json::from_str(&text).expect("json frame");
                    if frame["type"] == "presence" {
                        return frame;
                    }
                }
                Some(Ok(WsMessage::Close(frame))) => panic!("stream closed: {frame:?}"),
                Some(Ok(_)) => continue,
                other => panic!("stream ended: {other:?}"),
            }
        }
    })
    .await
    .expect("a presence frame in time")
}

/// The (user id, status) of the presence frames `ws` hears up to and with
/// `until`'s, other frames skipped.
async fn presence_until(ws: &mut Ws, until: (&str, &str)) -> Vec<(String, String)> {
    let mut heard = Vec::new();
    loop {
        let frame = next_presence(ws, Duration::from_secs(5)).await;
        let got = (
            frame["user_id"].as_str().unwrap_or_default().to_owned(),
            frame["status"].as_str().unwrap_or_default().to_owned(),
        );
        let done = (got.0.as_str(), got.1.as_str()) == until;
        heard.push(got);
        if done {
            return heard;
        }
    }
}

/// Waits until `GET /api/v1/presence` says `username` is `status`.
async fn wait_status(base: &str, client: &reqwest::Client, username: &str, status: &str) {
    let started = Instant::now();
    loop {
        let (_, body) = presence_of(base, client, username).await;
        if body["presence"][username]["status"] == status {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{username} never {status}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(u, s)| (u.to_string(), s.to_string()))
        .collect()
}

/// Joins `room` (a public room) as `who`.
async fn join(base: &str, who: &reqwest::Client, username: &str, room: &str) {
    let response = who
        .put(format!("{base}/api/v1/rooms/{room}/members/{username}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204, "{username} joins {room}");
}

async fn presence_of(base: &str, client: &reqwest::Client, users: &str) -> (u16, Value) {
    let response = client
        .get(format!("{base}/api/v1/presence?users={users}"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn typing_reaches_the_rooms_other_subscribers_at_most_every_two_seconds(backend: Backend) {
    let app = spawn_app(backend).await;
    let base = app.address.clone();
    app.send("team", "hello").await; // creates the room; the sender joins
    let grace = person_on(&base, "grace", "Grace").await;
    join(&base, &grace.client, "grace", "team").await;

    let mut tester = crate::helpers::connect_ws(&app.ws_url("/api/v1/stream")).await;
    let mut her = try_connect_ws(&app.ws_url("/api/v1/stream"), Some(&grace.cookie), None)
        .await
        .unwrap();
    follow(&mut tester, "team").await;
    follow(&mut her, "team").await;

    // Five frames at once: one reaches the others, the rest are dropped.
    for _ in 0..5 {
        send(&mut her, json!({"type": "typing", "room": "team"})).await;
    }
    let typing = next_non_presence(&mut tester).await;
    assert_eq!(
        typing,
        json!({"type": "typing", "room": "team",
               "user": {"id": grace.id, "username": "grace", "display_name": "Grace"}})
    );
    let sent = grace
        .client
        .post(format!("{base}/api/v1/rooms/team/messages"))
        .json(&json!({"text": "answer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 201);
    let next = next_non_presence(&mut tester).await;
    assert_eq!(
        (next["type"].as_str(), next["message"]["text"].as_str()),
        (Some("message"), Some("answer")),
        "no second typing frame within 2 s"
    );
    // Never to its sender: her next frame is her own message.
    let own = next_non_presence(&mut her).await;
    assert_eq!(own["type"], "message", "{own}");

    // Refused typing frames answer an error; the stream stays open.
    send(&mut her, json!({"type": "typing", "room": "elsewhere"})).await;
    assert_eq!(
        next_non_presence(&mut her).await,
        json!({"type": "error", "room": "elsewhere", "code": "not_subscribed"})
    );
    send(&mut her, json!({"type": "typing", "room": "Not A Room"})).await;
    assert_eq!(next_non_presence(&mut her).await["code"], "invalid_room");
    send(&mut her, json!({"type": "typing"})).await;
    assert_eq!(next_non_presence(&mut her).await["code"], "invalid_frame");

    // After 2 s she may type again.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    send(&mut her, json!({"type": "typing", "room": "team"})).await;
    let again = next_non_presence(&mut tester).await;
    assert_eq!(
        (again["type"].as_str(), again["user"]["username"].as_str()),
        (Some("typing"), Some("grace"))
    );
    app.stop().await;
}

async fn presence_follows_streams_and_answers_by_username(backend: Backend) {
    let app = spawn_app(backend).await;
    let base = app.address.clone();
    app.send("team", "hello").await;
    let grace = person_on(&base, "grace", "Grace").await;
    join(&base, &grace.client, "grace", "team").await;
    let client = &app.client;

    let (status, body) = presence_of(&base, client, "tester,grace,nobody-here").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"presence": {
            "grace": {"status": "offline", "last_seen": null},
            "tester": {"status": "offline", "last_seen": null},
        }}),
        "nobody has a stream open; unknown names are left out"
    );

    let mut tester = crate::helpers::connect_ws(&app.ws_url("/api/v1/stream")).await;
    follow(&mut tester, "team").await;
    let (_, body) = presence_of(&base, client, "tester").await;
    assert_eq!(body["presence"]["tester"]["status"], "online");
    let seen = body["presence"]["tester"]["last_seen"].as_str().unwrap();
    assert!(seen.ends_with(":00.000Z"), "to the minute: {seen}");

    // Grace opens a stream: the tester, who follows a room she is in, hears it.
    let her = try_connect_ws(&app.ws_url("/api/v1/stream"), Some(&grace.cookie), None)
        .await
        .unwrap();
    let online = next_presence(&mut tester, Duration::from_secs(5)).await;
    assert_eq!(
        online,
        json!({"type": "presence", "user_id": grace.id, "status": "online"})
    );
    let (_, body) = presence_of(&base, client, "grace").await;
    assert_eq!(body["presence"]["grace"]["status"], "online");

    // She closes it: offline at once, with the minute she was last seen.
    drop(her);
    let offline = next_presence(&mut tester, Duration::from_secs(10)).await;
    assert_eq!(
        offline,
        json!({"type": "presence", "user_id": grace.id, "status": "offline"})
    );
    let (_, body) = presence_of(&base, client, "grace").await;
    assert_eq!(body["presence"]["grace"]["status"], "offline");
    assert!(body["presence"]["grace"]["last_seen"].is_string(), "{body}");

    // Bad queries: documented 400s; signed out: 401.
    let many = vec!["a1"; 201].join(",");
    let huge = (0..10_000)
        .map(|i| format!("u{i}"))
        .collect::<Vec<_>>()
        .join(",");
    for (users, code) in [
        ("", "invalid_username"),
        ("Ada!", "invalid_username"),
        (many.as_str(), "too_many_users"),
        (huge.as_str(), "too_many_users"),
    ] {
        let (status, body) = presence_of(&base, client, users).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some(code)),
            "{users:.40}"
        );
    }
    let (status, _) = presence_of(&base, client, "ada&extra=1").await;
    assert_eq!(status, 400, "unknown parameter");
    let missing = client
        .get(format!("{base}/api/v1/presence"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 400);
    let (status, _) = presence_of(&base, &reqwest::Client::new(), "tester").await;
    assert_eq!(status, 401);
    // Exactly 200 names, duplicates included, is fine.
    let two_hundred = vec!["grace"; 200].join(",");
    let (status, body) = presence_of(&base, client, &two_hundred).await;
    assert_eq!(status, 200);
    assert_eq!(body["presence"].as_object().map(|o| o.len()), Some(1));
    app.stop().await;
}

/// Two replicas of one PostgreSQL database on `flags` (a bus): typing and
/// presence cross from B to A; B is SIGKILLed and its user turns offline on
/// A within 60 s, in a frame and in `GET /api/v1/presence`.
async fn across_replicas_and_a_killed_one(db: &TestDb, flags: &[&str]) {
    let a = ServerProcess::start(&db.url, flags).await;
    let mut b = ServerProcess::start(&db.url, flags).await;
    let base_a = a.url("");
    let grace = person_on(&base_a, "grace", "Grace").await;
    let sent = a
        .client
        .post(a.url("/api/v1/rooms/span/messages"))
        .json(&json!({"text": "hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 201);
    join(&base_a, &grace.client, "grace", "span").await;

    let mut tester = try_connect_ws(&a.ws_url("/api/v1/stream"), a.cookie.as_deref(), None)
        .await
        .unwrap();
    follow(&mut tester, "span").await;
    let mut her = try_connect_ws(&b.ws_url("/api/v1/stream"), Some(&grace.cookie), None)
        .await
        .unwrap();
    follow(&mut her, "span").await;
    let online = next_presence(&mut tester, Duration::from_secs(5)).await;
    assert_eq!(
        (online["user_id"].as_str(), online["status"].as_str()),
        (Some(grace.id.as_str()), Some("online")),
        "A hears that grace came online on B"
    );

    send(&mut her, json!({"type": "typing", "room": "span"})).await;
    let typing = next_non_presence(&mut tester).await;
    assert_eq!(
        (typing["type"].as_str(), typing["user"]["username"].as_str()),
        (Some("typing"), Some("grace")),
        "typing crosses replicas"
    );
    let (_, body) = presence_of(&base_a, &a.client, "grace").await;
    assert_eq!(body["presence"]["grace"]["status"], "online");

    // B dies without a word: its claim on grace expires on A.
    b.child.kill().expect("SIGKILL replica B");
    let _ = b.child.wait();
    let killed = Instant::now();
    let offline = next_presence(&mut tester, Duration::from_secs(65)).await;
    let took = killed.elapsed();
    assert_eq!(
        (offline["user_id"].as_str(), offline["status"].as_str()),
        (Some(grace.id.as_str()), Some("offline"))
    );
    assert!(took <= Duration::from_secs(60), "offline after {took:?}");
    let (_, body) = presence_of(&base_a, &a.client, "grace").await;
    assert_eq!(body["presence"]["grace"]["status"], "offline");
    assert!(body["presence"]["grace"]["last_seen"].is_string());
    drop(her);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_and_typing_cross_postgres_replicas_and_survive_a_killed_one() {
    let db = TestDb::new(Backend::Postgres).await;
    across_replicas_and_a_killed_one(&db, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_and_typing_cross_redis_replicas_and_survive_a_killed_one() {
    let redis = RedisServer::start();
    let db = TestDb::new(Backend::Postgres).await;
    let bus = redis.url();
    across_replicas_and_a_killed_one(&db, &["--bus", &bus]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_and_typing_cross_redis_cluster_replicas_and_survive_a_killed_one() {
    // Sharded pub/sub: SPUBLISH and SSUBSCRIBE on the channel's shard.
    let cluster = RedisCluster::start();
    let db = TestDb::new(Backend::Postgres).await;
    let bus = cluster.url();
    across_replicas_and_a_killed_one(&db, &["--bus", &bus]).await;
}

/// A client that sends 1,000 typing frames a second for two seconds gets
/// one through per 2 s, and the server's throttle keeps one key for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typing_flood_is_dropped_not_queued() {
    let app = spawn_app(Backend::Sqlite).await;
    let base = app.address.clone();
    app.send("flood", "hello").await;
    let grace = person_on(&base, "grace", "Grace").await;
    join(&base, &grace.client, "grace", "flood").await;
    let mut tester = crate::helpers::connect_ws(&app.ws_url("/api/v1/stream")).await;
    follow(&mut tester, "flood").await;
    let mut her = try_connect_ws(&app.ws_url("/api/v1/stream"), Some(&grace.cookie), None)
        .await
        .unwrap();
    follow(&mut her, "flood").await;
    let started = Instant::now();
    let mut sent = 0;
    while started.elapsed() < Duration::from_millis(2500) {
        for _ in 0..100 {
            send(&mut her, json!({"type": "typing", "room": "flood"})).await;
            sent += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Then a message marks the end of what she sent.
    let end = grace
        .client
        .post(format!("{base}/api/v1/rooms/flood/messages"))
        .json(&json!({"text": "end"}))
        .send()
        .await
        .unwrap();
    assert_eq!(end.status(), 201);
    let mut typings = 0;
    loop {
        let frame = next_non_presence(&mut tester).await;
        match frame["type"].as_str() {
            Some("typing") => typings += 1,
            Some("message") => break,
            _ => panic!("unexpected {frame}"),
        }
    }
    assert!(sent >= 2000, "sent {sent}");
    assert!(
        (1..=2).contains(&typings),
        "{typings} of {sent} typing frames got through"
    );
    let metrics = reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        crate::helpers::counted(&metrics, "palaver_typing_dropped_total", ""),
        "drops are counted"
    );
    drop(her);
    app.stop().await;
}

/// A stream following three rooms that one user is in hears one frame per
/// change of theirs, not three; a stream sharing no room with them hears
/// none; someone who joins a followed room is heard from then on. Kim, in
/// a room of each stream, comes and goes after the others as a marker: her
/// frames are queued behind any that were due before.
async fn a_change_reaches_each_stream_sharing_a_room_once_and_no_other(backend: Backend) {
    let app = spawn_app(backend).await;
    let base = app.address.clone();
    for room in ["r1", "r2", "r3", "lone"] {
        app.send(room, "hello").await;
    }
    let grace = person_on(&base, "grace", "Grace").await;
    let joan = person_on(&base, "joan", "Joan").await;
    let kim = person_on(&base, "kim", "Kim").await;
    let ann = person_on(&base, "ann", "Ann").await;
    for room in ["r1", "r2", "r3"] {
        join(&base, &grace.client, "grace", room).await;
    }
    join(&base, &joan.client, "joan", "lone").await;
    join(&base, &kim.client, "kim", "r1").await;
    join(&base, &kim.client, "kim", "lone").await;

    let mut tester = crate::helpers::connect_ws(&app.ws_url("/api/v1/stream")).await;
    for room in ["r1", "r2", "r3", "lone"] {
        follow(&mut tester, room).await;
    }
    let connect = |cookie: String| {
        let url = app.ws_url("/api/v1/stream");
        async move { try_connect_ws(&url, Some(&cookie), None).await.unwrap() }
    };
    let mut outsider = connect(joan.cookie.clone()).await;
    assert_eq!(
        presence_until(&mut tester, (&joan.id, "online")).await,
        pairs(&[(&joan.id, "online")])
    );
    follow(&mut outsider, "lone").await;

    let client = &app.client;
    let her = connect(grace.cookie.clone()).await;
    wait_status(&base, client, "grace", "online").await;
    let marker = connect(kim.cookie.clone()).await;
    assert_eq!(
        presence_until(&mut tester, (&kim.id, "online")).await,
        pairs(&[(&grace.id, "online"), (&kim.id, "online")]),
        "one frame for grace though three followed rooms hold her"
    );
    assert_eq!(
        presence_until(&mut outsider, (&kim.id, "online")).await,
        pairs(&[(&kim.id, "online")]),
        "joan shares no room with grace"
    );
    drop(her);
    wait_status(&base, client, "grace", "offline").await;
    drop(marker);
    assert_eq!(
        presence_until(&mut tester, (&kim.id, "offline")).await,
        pairs(&[(&grace.id, "offline"), (&kim.id, "offline")])
    );
    assert_eq!(
        presence_until(&mut outsider, (&kim.id, "offline")).await,
        pairs(&[(&kim.id, "offline")])
    );

    // Ann joins r2 while it is followed: her presence is heard from then on.
    join(&base, &ann.client, "ann", "r2").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ann_stream = connect(ann.cookie.clone()).await;
    wait_status(&base, client, "ann", "online").await;
    let _marker = connect(kim.cookie.clone()).await;
    assert_eq!(
        presence_until(&mut tester, (&kim.id, "online")).await,
        pairs(&[(&ann.id, "online"), (&kim.id, "online")])
    );
    assert_eq!(
        presence_until(&mut outsider, (&kim.id, "online")).await,
        pairs(&[(&kim.id, "online")])
    );
    app.stop().await;
}
