//! The PostgreSQL bus's payload SQL, run by a real PostgreSQL: what the
//! storing statement notifies is what the listener decodes, under the
//! server's payload limit, no room lost; and a send's one statement does
//! notify a listener on the channel.

use palaver::bus::postgres::{Notification, CHANNEL, PAYLOADS_SQL, ROOMS_PER_PAYLOAD};
use sqlx::postgres::PgListener;
use sqlx::PgPool;

use crate::helpers::{spawn_app_on, Backend, TestDb};

async fn payloads(pool: &PgPool, rooms: &[(String, i64, i64)]) -> Vec<String> {
    let names: Vec<&str> = rooms.iter().map(|r| r.0.as_str()).collect();
    let firsts: Vec<i64> = rooms.iter().map(|r| r.1).collect();
    let lasts: Vec<i64> = rooms.iter().map(|r| r.2).collect();
    let sql = format!(
        "WITH announced AS (SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[]) \
         AS a(room, first, last)) {PAYLOADS_SQL}"
    );
    sqlx::query_scalar(&sql)
        .bind(names)
        .bind(firsts)
        .bind(lasts)
        .fetch_all(pool)
        .await
        .expect("payload query")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_decode_stay_under_the_limit_and_lose_no_room() {
    let db = TestDb::new(Backend::Postgres).await;
    let pool = PgPool::connect(&db.url).await.expect("connect");

    assert!(
        payloads(&pool, &[]).await.is_empty(),
        "no rooms, no payload"
    );

    let few = vec![("a".to_owned(), 3, 4), ("b".to_owned(), 1, 1)];
    let got = payloads(&pool, &few).await;
    assert_eq!(got.len(), 1);
    let note: Notification = serde_json::from_str(&got[0]).expect("decodes");
    let rooms: Vec<(String, i64, i64)> = note
        .rooms
        .into_iter()
        .map(|a| (a.room, a.first, a.last))
        .collect();
    assert_eq!(rooms, few);

    // The widest rooms there can be: 64-byte names, 19-digit seqs.
    let wide: Vec<(String, i64, i64)> = (0..1000)
        .map(|i| (format!("{i:0>64}"), i64::MAX - 1, i64::MAX))
        .collect();
    let got = payloads(&pool, &wide).await;
    assert_eq!(got.len(), 1000_usize.div_ceil(ROOMS_PER_PAYLOAD));
    let mut seen = Vec::new();
    for payload in &got {
        assert!(payload.len() < 8000, "{} bytes", payload.len());
        let note: Notification = serde_json::from_str(payload).expect("decodes");
        seen.extend(note.rooms.into_iter().map(|a| (a.room, a.first, a.last)));
    }
    seen.sort();
    assert_eq!(seen, wide);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_notifies_from_its_one_statement() {
    let db = TestDb::new(Backend::Postgres).await;
    let app = spawn_app_on(db, &[]).await;
    let mut listener = PgListener::connect(&app.db_url).await.expect("listen");
    listener.listen(CHANNEL).await.expect("listen");

    let message = app.send("notified", "hello").await;
    let seq = message["seq"].as_i64().expect("seq");
    let note = tokio::time::timeout(std::time::Duration::from_secs(10), listener.recv())
        .await
        .expect("a notification within 10 s")
        .expect("notification");
    let note: Notification = serde_json::from_str(note.payload()).expect("decodes");
    let rooms: Vec<(String, i64, i64)> = note
        .rooms
        .into_iter()
        .map(|a| (a.room, a.first, a.last))
        .collect();
    assert_eq!(rooms, vec![("notified".to_owned(), seq, seq)]);
}
