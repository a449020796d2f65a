//! Message search (DESIGN §5d).

use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{client_with_cookie, sign_up, spawn_app, Backend, TestApp};

async fn search(app: &TestApp, client: &reqwest::Client, query: &str) -> (u16, Value) {
    let r = client
        .get(app.url(&format!("/api/v1/search?{query}")))
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn texts(body: &Value) -> Vec<String> {
    body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["message"]["text"].as_str().expect("text").to_owned())
        .collect()
}

fn q(text: &str) -> String {
    let mut out = String::from("q=");
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Runs `sql` with `binds` on the app's database directly: the changes the
/// lead's edit and delete make, to show the index follows them.
async fn execute(app: &TestApp, backend: Backend, sql: &str, binds: (&str, &str, i64)) {
    match backend {
        Backend::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&app.db_url)
                .await
                .expect("sqlite");
            sqlx::query(sql)
                .bind(binds.0)
                .bind(binds.1)
                .bind(binds.2)
                .execute(&pool)
                .await
                .expect("update");
        }
        Backend::Postgres => {
            let pool = sqlx::PgPool::connect(&app.db_url).await.expect("postgres");
            sqlx::query(sql)
                .bind(binds.0)
                .bind(binds.1)
                .bind(binds.2)
                .execute(&pool)
                .await
                .expect("update");
        }
    }
}

async fn search_finds_words_phrases_and_exclusions_newest_first(backend: Backend) {
    let app = spawn_app(backend).await;
    let c = &app.client;
    app.send("general", "the deploy finished").await;
    app.send("general", "deploy failed on staging").await;
    app.send("general", "release notes are out").await;
    app.send("general", "<script>alert(1)</script> Deploy again & again")
        .await;
    app.send("general", "unrelated chatter").await;

    let (status, body) = search(&app, c, &q("deploy")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        texts(&body),
        [
            "<script>alert(1)</script> Deploy again & again",
            "deploy failed on staging",
            "the deploy finished"
        ]
    );
    assert_eq!(
        body["results"][0]["highlight"],
        "&lt;script&gt;alert(1)&lt;/script&gt; <mark>Deploy</mark> again &amp; again"
    );
    assert_eq!(body["results"][0]["message"]["room"], "general");
    assert!(body["next"].is_null());
    assert_eq!(
        texts(&search(&app, c, &q("deploy -staging")).await.1).len(),
        2
    );
    assert_eq!(
        texts(&search(&app, c, &q("\"release notes\"")).await.1),
        ["release notes are out"]
    );
    assert!(texts(&search(&app, c, &q("\"notes release\"")).await.1).is_empty());
    assert_eq!(
        texts(&search(&app, c, &q("deploy finished")).await.1).len(),
        1
    );
    // Operators typed by the user are words, never syntax.
    assert_eq!(search(&app, c, &q("deploy AND OR NOT NEAR(")).await.0, 200);
    assert_eq!(search(&app, c, &q("deploy* ^ \"unclosed")).await.0, 200);

    // Paging: one result a page, newest first, to the end.
    let mut seen = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let cursor = next.map(|n| format!("&before={n}")).unwrap_or_default();
        let (status, page) = search(&app, c, &format!("{}&limit=1{cursor}", q("deploy"))).await;
        assert_eq!(status, 200);
        seen.extend(texts(&page));
        next = page["next"].as_str().map(str::to_owned);
        if next.is_none() {
            break;
        }
    }
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[2], "the deploy finished");

    // An edit is found by its new words; a deleted message never.
    let first = 1;
    execute(
        &app,
        backend,
        "UPDATE messages SET text = $1 WHERE room = $2 AND seq = $3",
        ("the rollout finished", "general", first),
    )
    .await;
    assert_eq!(
        texts(&search(&app, c, &q("rollout")).await.1),
        ["the rollout finished"]
    );
    assert_eq!(texts(&search(&app, c, &q("deploy")).await.1).len(), 2);
    execute(
        &app,
        backend,
        "UPDATE messages SET text = $1, deleted = TRUE WHERE room = $2 AND seq = $3",
        ("", "general", first),
    )
    .await;
    assert!(texts(&search(&app, c, &q("rollout")).await.1).is_empty());

    // Bad input: each a 4xx, never a 500.
    for bad in [
        String::new(),
        "q=".into(),
        q(&"a".repeat(2000)),
        q("-deploy"),
        q("\" * : - ( )"),
        format!("{}&limit=0", q("deploy")),
        format!("{}&limit=101", q("deploy")),
        format!("{}&before=%%%", q("deploy")),
        format!("{}&before=bm90LWEtY3Vyc29y", q("deploy")),
        format!("{}&room=Not%20A%20Room", q("deploy")),
        format!("{}&sort=old", q("deploy")),
    ] {
        assert_eq!(search(&app, c, &bad).await.0, 400, "{bad}");
    }
    assert_eq!(
        search(&app, c, &format!("{}&room=nowhere", q("deploy")))
            .await
            .0,
        404
    );
    assert_eq!(search(&app, &app.anonymous, &q("deploy")).await.0, 401);
    app.stop().await;
}

async fn search_never_finds_a_private_room_for_a_non_member(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = client_with_cookie(&sign_up(&app.address, "ada", "Ada").await);
    let eve = client_with_cookie(&sign_up(&app.address, "eve", "Eve").await);
    app.send("general", "launch party tonight").await;
    let create = ada
        .post(app.url("/api/v1/rooms"))
        .json(&json!({"name": "secret", "visibility": "private"}))
        .send()
        .await
        .expect("create");
    assert_eq!(create.status(), 201);
    for i in 0..30 {
        let sent = ada
            .post(app.url("/api/v1/rooms/secret/messages"))
            .json(&json!({ "text": format!("launch code {i}") }))
            .send()
            .await
            .expect("send");
        assert_eq!(sent.status(), 201);
    }
    // The 30 newer private matches come first in the index; the access
    // check is in the query, so eve's first page still holds hers.
    let (status, body) = search(&app, &eve, &format!("{}&limit=5", q("launch"))).await;
    assert_eq!(status, 200);
    assert_eq!(texts(&body), ["launch party tonight"]);
    assert!(body["next"].is_null());
    let (_, all) = search(&app, &ada, &format!("{}&limit=100", q("launch"))).await;
    assert_eq!(texts(&all).len(), 31);
    let (_, only) = search(
        &app,
        &ada,
        &format!("{}&room=secret&limit=100", q("launch")),
    )
    .await;
    assert_eq!(texts(&only).len(), 30);
    assert_eq!(
        search(&app, &eve, &format!("{}&room=secret", q("launch")))
            .await
            .0,
        404
    );
    app.stop().await;
}

async fn search_finds_cyrillic_greek_and_cjk(backend: Backend) {
    let app = spawn_app(backend).await;
    let c = &app.client;
    for text in [
        "привет мир",
        "καλημέρα κόσμε",
        "東京タワーに行きました",
        "北京欢迎你",
        "서울에 갑니다",
        "plain english",
    ] {
        app.send("general", text).await;
    }
    for (query, expected) in [
        ("мир", "привет мир"),
        ("καλημέρα", "καλημέρα κόσμε"),
        ("東京", "東京タワーに行きました"),
        ("タワー", "東京タワーに行きました"),
        ("京タ", "東京タワーに行きました"),
        ("欢迎", "北京欢迎你"),
        ("서울", "서울에 갑니다"),
    ] {
        let (status, body) = search(&app, c, &q(query)).await;
        assert_eq!(status, 200, "{query}");
        assert_eq!(texts(&body), [expected], "{query}");
        assert!(
            body["results"][0]["highlight"]
                .as_str()
                .expect("highlight")
                .contains(&format!("<mark>{query}</mark>")),
            "{query}: {body}"
        );
    }
    assert!(texts(&search(&app, c, &q("大阪")).await.1).is_empty());
    assert_eq!(texts(&search(&app, c, &q("東京 -欢迎")).await.1).len(), 1);
    app.stop().await;
}

both_backends!(
    search_finds_words_phrases_and_exclusions_newest_first,
    search_never_finds_a_private_room_for_a_non_member,
    search_finds_cyrillic_greek_and_cjk,
);

/// PostgreSQL picks one of two plans by its estimate of the matches (a
/// newest-first walk for a frequent word, the GIN index for a rare one):
/// with statistics gathered, one search of each kind pages through exactly
/// the readable matches, newest first, ties broken by room and seq, as a
/// plain SQL scan orders them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_postgres_search_plans_page_through_the_readable_matches_newest_first() {
    let app = spawn_app(Backend::Postgres).await;
    let ada = client_with_cookie(&sign_up(&app.address, "ada", "Ada").await);
    let eve = client_with_cookie(&sign_up(&app.address, "eve", "Eve").await);
    let create = ada
        .post(app.url("/api/v1/rooms"))
        .json(&json!({"name": "secret", "visibility": "private"}))
        .send()
        .await
        .expect("create");
    assert_eq!(create.status(), 201);
    let pool = sqlx::PgPool::connect(&app.db_url).await.expect("postgres");
    // 3,000 messages in general and 300 newer ones in the private room, three
    // to a timestamp (so the cursor's tie-break is exercised): "common" in
    // every one, "rare" in every 1,000th of general's and every 100th of
    // secret's.
    for (room, count) in [("general", 3_000_i64), ("secret", 300)] {
        sqlx::query(
            "WITH base AS (SELECT last_seq FROM rooms WHERE name = $1) \
             INSERT INTO messages (room, seq, author, text, client_ip, sent_at) \
             SELECT $1, base.last_seq + g, 'Ada', \
                    'common word' || g || CASE WHEN g % $3 = 0 THEN ' rare' ELSE '' END, \
                    '127.0.0.1', TIMESTAMPTZ '2026-01-01' + (g / 3 + $4) * INTERVAL '1 second' \
             FROM base, generate_series(1, $2) g",
        )
        .bind(room)
        .bind(count)
        .bind(if room == "general" { 1_000_i64 } else { 100 })
        // The private room's messages are the newest: a walk meets them first.
        .bind(if room == "general" { 0_i64 } else { 1_000 })
        .execute(&pool)
        .await
        .expect("fill");
        sqlx::query("UPDATE rooms SET last_seq = last_seq + $2 WHERE name = $1")
            .bind(room)
            .bind(count)
            .execute(&pool)
            .await
            .expect("bump");
    }
    sqlx::query("ANALYZE messages")
        .execute(&pool)
        .await
        .expect("analyze");
    let share = |word: &'static str| {
        let pool = pool.clone();
        async move {
            palaver::store::search::pg_estimated_share(&pool, &format!("\"{word}\""))
                .await
                .expect("estimate")
        }
    };
    let walk = palaver::store::search::WALK_FROM_SHARE;
    assert!(share("common").await >= walk, "common is walked");
    assert!(
        share("rare").await < walk,
        "rare goes through the GIN index"
    );

    for word in ["common", "rare"] {
        let expected: Vec<(String, i64)> = sqlx::query_as(
            "SELECT room, seq FROM messages WHERE room = 'general' AND text LIKE '%' || $1 || '%' \
             ORDER BY sent_at DESC, room DESC, seq DESC LIMIT 60",
        )
        .bind(word)
        .fetch_all(&pool)
        .await
        .expect("expected");
        let mut found = Vec::new();
        let mut next: Option<String> = None;
        while found.len() < expected.len() {
            let mut query = format!("{}&limit=7", q(word));
            if let Some(cursor) = &next {
                query.push_str(&format!("&before={cursor}"));
            }
            let (status, body) = search(&app, &eve, &query).await;
            assert_eq!(status, 200, "{body}");
            for hit in body["results"].as_array().expect("results") {
                let message = &hit["message"];
                found.push((
                    message["room"].as_str().expect("room").to_owned(),
                    message["seq"].as_i64().expect("seq"),
                ));
            }
            match body["next"].as_str() {
                Some(cursor) => next = Some(cursor.to_owned()),
                None => break,
            }
        }
        if expected.len() == 60 {
            found.truncate(60);
        }
        assert_eq!(found, expected, "{word}: eve's pages, newest first");
    }
    app.stop().await;
}
