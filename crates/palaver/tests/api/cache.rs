//! The read cache against the table: two replicas on one PostgreSQL, sends,
//! reads and a replica restart interleaved, every page read compared with
//! what is committed.

use std::time::Duration;

use serde_json::Value;

use crate::fault_helpers::{metric_sum, metrics};
use crate::helpers::{message, Backend, ServerProcess, TestDb};

const LIMIT: i64 = 20;

/// `(seq, text)` of a v1 page, newest first.
async fn page(client: &reqwest::Client, server: &ServerProcess, room: &str) -> Vec<(i64, String)> {
    let r = client
        .get(server.url(&format!("/api/v1/rooms/{room}/messages?limit={LIMIT}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["seq"].as_i64().unwrap(),
                m["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// The newest committed rows of `room` up to `top` (all when `None`).
async fn table(pool: &sqlx::PgPool, room: &str, top: Option<i64>) -> Vec<(i64, String)> {
    sqlx::query_as(
        "SELECT seq, text FROM messages WHERE room = $1 AND seq <= $2 ORDER BY seq DESC LIMIT $3",
    )
    .bind(room)
    .bind(top.unwrap_or(i64::MAX))
    .bind(LIMIT)
    .fetch_all(pool)
    .await
    .unwrap()
}

/// A page a replica served must be the table as it was at some commit: the
/// newest rows up to its top seq, exactly (nothing uncommitted, nothing
/// missing in between).
async fn assert_committed_snapshot(pool: &sqlx::PgPool, room: &str, got: &[(i64, String)]) {
    let top = got.first().map(|(seq, _)| *seq);
    let want = table(pool, room, top).await;
    assert_eq!(got, want, "room {room}: a page that never was in the table");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_pages_match_the_table_through_sends_on_two_replicas_and_a_restart() {
    let db = TestDb::new(Backend::Postgres).await;
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let a = ServerProcess::start(&db.url, &[]).await;
    let mut b = ServerProcess::start(&db.url, &[]).await;
    // Signed in as the default user (one session serves both replicas).
    let client = a.client.clone();
    let rooms = ["c1", "c2", "c3"];

    for round in 0..60 {
        if round == 30 {
            // A replica restarts: its successor starts with an empty cache.
            drop(b);
            b = ServerProcess::start(&db.url, &[]).await;
        }
        let room = rooms[round % rooms.len()];
        let (writer, other) = if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
        // Warm both caches, then write through one replica.
        for server in [&a, &b] {
            let r = client
                .get(server.url(&format!("/api/v1/rooms/{room}/messages?limit={LIMIT}")))
                .send()
                .await
                .unwrap();
            assert!(r.status() == 200 || r.status() == 404);
        }
        let text = format!("round {round}");
        let r = client
            .post(writer.url(&format!("/api/v1/rooms/{room}/messages")))
            .json(&message("ada", &text, None))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let sent: Value = r.json().await.unwrap();
        let seq = sent["seq"].as_i64().unwrap();

        // Read-your-writes on the replica that answered the 201.
        let mine = page(&client, writer, room).await;
        assert_eq!(mine.first(), Some(&(seq, text.clone())), "read-your-writes");
        assert_eq!(mine, table(&pool, room, None).await);

        // The other replica: always a committed snapshot, current within
        // the bus delay.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let theirs = page(&client, other, room).await;
            assert_committed_snapshot(&pool, room, &theirs).await;
            if theirs.first().map(|(s, _)| *s) == Some(seq) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "room {room}: seq {seq} not on the other replica after 5 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    // The pages above came from the cache, not only from the table.
    let page = metrics(&client, &a.url("")).await;
    let hits = metric_sum(&page, "palaver_read_cache_hits_total").unwrap_or(0.0);
    assert!(hits > 30.0, "{hits} cache hits");
}

/// A batch that fails at COMMIT (a deferred constraint refuses it) has run
/// its statement and its NOTIFY, yet no replica's cache may show it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_whose_commit_fails_is_never_served() {
    let db = TestDb::new(Backend::Postgres).await;
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let a = ServerProcess::start(&db.url, &[]).await;
    let b = ServerProcess::start(&db.url, &[]).await;
    // Signed in as the default user (one session serves both replicas).
    let client = a.client.clone();
    sqlx::raw_sql(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS \
           $$ BEGIN RAISE EXCEPTION 'refused at commit'; END $$; \
         CREATE CONSTRAINT TRIGGER poison AFTER INSERT ON messages \
           DEFERRABLE INITIALLY DEFERRED FOR EACH ROW \
           WHEN (NEW.text = 'poison') EXECUTE FUNCTION refuse();",
    )
    .execute(&pool)
    .await
    .unwrap();

    let post = |server: &ServerProcess, text: &str| {
        client
            .post(server.url("/api/v1/rooms/p/messages"))
            .json(&message("ada", text, None))
            .send()
    };
    assert_eq!(post(&a, "before").await.unwrap().status(), 201);
    // Both caches hold the room.
    for server in [&a, &b] {
        assert_eq!(page(&client, server, "p").await.len(), 1);
    }
    let refused = post(&a, "poison").await.unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(post(&a, "after").await.unwrap().status(), 201);
    tokio::time::sleep(Duration::from_millis(200)).await;
    for server in [&a, &b] {
        let got = page(&client, server, "p").await;
        assert!(got.iter().all(|(_, text)| text != "poison"), "{got:?}");
        assert_eq!(got, table(&pool, "p", None).await);
    }
}

/// The read cache on the Redis bus: each replica's cache subscribes to the
/// rooms it holds, so pages read on one replica follow sends on the other
/// (within the bus delay), are served from the cache, and are always a
/// committed snapshot — also across a broker restart, which drops every
/// entry until the subscriptions hold again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_pages_on_the_redis_bus_follow_the_other_replica_and_match_the_table() {
    let db = TestDb::new(Backend::Postgres).await;
    let pool = sqlx::PgPool::connect(&db.url).await.unwrap();
    let mut redis = crate::broker::RedisServer::start();
    let bus = redis.url();
    let flags = ["--bus", bus.as_str(), "--bus-repair-interval-ms", "200"];
    let a = crate::broker::spawn_ready(&db.url, &flags, &[]).await;
    let b = crate::broker::spawn_ready(&db.url, &flags, &[]).await;
    let client = a.client.clone();
    let rooms = ["r1", "r2", "r3"];
    let hits = |server: &ServerProcess| {
        let client = client.clone();
        let base = server.url("");
        async move {
            let page = metrics(&client, &base).await;
            metric_sum(&page, "palaver_read_cache_hits_total").unwrap_or(0.0)
        }
    };

    for round in 0..60 {
        if round == 30 {
            redis.restart();
        }
        let room = rooms[round % rooms.len()];
        let (writer, other) = if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
        for server in [&a, &b] {
            let r = client
                .get(server.url(&format!("/api/v1/rooms/{room}/messages?limit={LIMIT}")))
                .send()
                .await
                .unwrap();
            assert!(r.status() == 200 || r.status() == 404);
        }
        let text = format!("round {round}");
        let r = client
            .post(writer.url(&format!("/api/v1/rooms/{room}/messages")))
            .json(&message("ada", &text, None))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let sent: Value = r.json().await.unwrap();
        let seq = sent["seq"].as_i64().unwrap();

        let mine = page(&client, writer, room).await;
        assert_eq!(mine.first(), Some(&(seq, text.clone())), "read-your-writes");
        assert_eq!(mine, table(&pool, room, None).await);

        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let theirs = page(&client, other, room).await;
            assert_committed_snapshot(&pool, room, &theirs).await;
            if theirs.first().map(|(s, _)| *s) == Some(seq) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "room {room}: seq {seq} not on the other replica after 5 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    // Both replicas served pages from their caches, not only from the table.
    for server in [&a, &b] {
        let hits = hits(server).await;
        assert!(hits > 30.0, "{hits} cache hits on port {}", server.port);
    }
}
