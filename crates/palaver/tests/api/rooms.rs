//! The v1 rooms API: sends, paging, validation and every error status.

use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{message, spawn_app, spawn_app_with, Backend};

both_backends!(
    send_returns_201_with_the_stored_message,
    sending_the_same_client_id_twice_returns_the_stored_message_once,
    rooms_are_listed_with_their_last_seq,
    paging_before_and_after_walks_the_history_in_order,
    paging_rejects_bad_limits_and_cursors,
    reading_an_unknown_room_is_404_and_an_invalid_name_is_400,
    invalid_texts_are_400_and_store_nothing,
    oversized_bodies_are_413_and_wrong_content_types_415,
    malformed_json_is_400_in_the_error_shape,
    unknown_routes_are_404_and_wrong_methods_405,
    sends_over_the_rate_limit_get_429_with_retry_after,
    client_ip_comes_from_x_forwarded_for_only_behind_trusted_proxies,
);

fn assert_error(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
}

async fn send_returns_201_with_the_stored_message(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .post_message(
            "dev",
            &json!({"author": "  ada ", "text": "hi\nthere", "client_id": "c-1"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let stored: Value = response.json().await.unwrap();
    assert_eq!(stored["room"], "dev");
    assert_eq!(stored["seq"], 1);
    assert_eq!(
        stored["author"], "tester",
        "the signed-in user, not the body's"
    );
    assert!(stored["author_id"]
        .as_str()
        .is_some_and(|id| id.len() == 36));
    assert_eq!(stored["text"], "hi\nthere");
    assert_eq!(stored["client_id"], "c-1");
    let sent_at = stored["sent_at"].as_str().unwrap();
    assert!(sent_at.ends_with('Z') && sent_at.len() == 24, "{sent_at}");
    let second = app.send("dev", "again").await;
    assert_eq!(second["seq"], 2);
    assert_eq!(second["client_id"], Value::Null);
    app.stop().await;
}

async fn sending_the_same_client_id_twice_returns_the_stored_message_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = message("ada", "once", Some("key-1"));
    let first: Value = app.post_message("dev", &body).await.json().await.unwrap();
    let again = app.post_message("dev", &body).await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(first, again);
    // The same key in another room is another message.
    let other: Value = app.post_message("other", &body).await.json().await.unwrap();
    assert_eq!(other["seq"], 1);
    assert_eq!(app.all_messages("dev").await.len(), 1);
    app.stop().await;
}

async fn rooms_are_listed_with_their_last_seq(backend: Backend) {
    let app = spawn_app(backend).await;
    app.send("zeta", "1").await;
    app.send("zeta", "2").await;
    app.send("alpha", "1").await;
    let (status, body) = app.get_json("/api/v1/rooms").await;
    assert_eq!(status, 200);
    // The caller sent every message: nothing is unread, and posting joined
    // the rooms it posted in (DESIGN §5a); rooms created by posting have no
    // owner.
    let room = |name: &str, last_seq: i64, joined: bool| {
        json!({"name": name, "last_seq": last_seq, "visibility": "public", "topic": "",
               "owner": null, "joined": joined, "read_seq": 0, "unread": 0, "mentions": 0})
    };
    assert_eq!(
        body["rooms"],
        json!([
            room("alpha", 1, true),
            room("general", 0, false),
            room("zeta", 2, true)
        ])
    );
    app.stop().await;
}

fn seqs(page: &Value) -> Vec<i64> {
    page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect()
}

async fn paging_before_and_after_walks_the_history_in_order(backend: Backend) {
    let app = spawn_app(backend).await;
    for i in 1..=120 {
        app.send("dev", &format!("m{i}")).await;
    }
    let (_, newest) = app.get_json("/api/v1/rooms/dev/messages").await;
    assert_eq!(seqs(&newest), (71..=120).rev().collect::<Vec<_>>());
    assert_eq!(newest["has_more"], true);

    let (_, older) = app
        .get_json("/api/v1/rooms/dev/messages?before=71&limit=50")
        .await;
    assert_eq!(seqs(&older), (21..=70).rev().collect::<Vec<_>>());
    assert_eq!(older["has_more"], true);
    let (_, oldest) = app
        .get_json("/api/v1/rooms/dev/messages?before=21&limit=50")
        .await;
    assert_eq!(seqs(&oldest), (1..=20).rev().collect::<Vec<_>>());
    assert_eq!(oldest["has_more"], false);

    let (_, after) = app
        .get_json("/api/v1/rooms/dev/messages?after=100&limit=10")
        .await;
    assert_eq!(seqs(&after), (101..=110).collect::<Vec<_>>());
    assert_eq!(after["has_more"], true);
    let (_, tail) = app
        .get_json("/api/v1/rooms/dev/messages?after=110&limit=200")
        .await;
    assert_eq!(seqs(&tail), (111..=120).collect::<Vec<_>>());
    assert_eq!(tail["has_more"], false);
    app.stop().await;
}

async fn paging_rejects_bad_limits_and_cursors(backend: Backend) {
    let app = spawn_app(backend).await;
    for query in [
        "limit=0",
        "limit=201",
        "limit=-5",
        "limit=ten",
        "before=-1",
        "after=-1",
        "before=5&after=1",
        "after=1e3",
        "limit=99999999999999999999999",
    ] {
        let (status, body) = app
            .get_json(&format!("/api/v1/rooms/general/messages?{query}"))
            .await;
        assert_eq!(status, 400, "{query}");
        assert!(body["error"]["code"].is_string(), "{query}");
    }
    let (status, _) = app
        .get_json("/api/v1/rooms/general/messages?limit=200")
        .await;
    assert_eq!(status, 200);
    app.stop().await;
}

async fn reading_an_unknown_room_is_404_and_an_invalid_name_is_400(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, body) = app.get_json("/api/v1/rooms/nobody-here/messages").await;
    assert_eq!(status, 404);
    assert_error(&body, "not_found");
    for room in ["Caps", "-dash", "a%20b", &"x".repeat(65)] {
        let (status, body) = app
            .get_json(&format!("/api/v1/rooms/{room}/messages"))
            .await;
        assert_eq!(status, 400, "{room}");
        assert_error(&body, "invalid_room");
        let response = app.post_message(room, &message("a", "b", None)).await;
        assert_eq!(response.status(), 400, "{room}");
    }
    app.stop().await;
}

async fn invalid_texts_are_400_and_store_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    // The author is the signed-in user; an `author` field is ignored,
    // whatever it holds.
    let cases = [
        (json!({"author": "a", "text": ""}), "invalid_text"),
        (json!({"author": "a", "text": " \n "}), "invalid_text"),
        (
            json!({"author": "a", "text": "x".repeat(4001)}),
            "invalid_text",
        ),
        (
            json!({"author": "a", "text": "nul\u{0}byte"}),
            "invalid_text",
        ),
        (json!({"author": "a", "text": "esc\u{1b}"}), "invalid_text"),
        (
            json!({"author": "a", "text": "x", "client_id": ""}),
            "invalid_client_id",
        ),
        (
            json!({"author": "a", "text": "x", "client_id": "with space"}),
            "invalid_client_id",
        ),
        (json!({"text": 5}), "invalid_json"),
        (json!({"author": "a"}), "invalid_json"),
    ];
    for (body, code) in cases {
        let response = app.post_message("dev", &body).await;
        assert_eq!(response.status(), 400, "{body}");
        assert_error(&response.json().await.unwrap(), code);
    }
    // Exactly at the limit is fine, and the ignored author may be anything.
    let ok = app
        .post_message(
            "dev",
            &json!({"author": "\u{0}".repeat(65), "text": "é".repeat(4000)}),
        )
        .await;
    assert_eq!(ok.status(), 201);
    assert_eq!(app.all_messages("dev").await.len(), 1);
    app.stop().await;
}

async fn oversized_bodies_are_413_and_wrong_content_types_415(backend: Backend) {
    let app = spawn_app(backend).await;
    let huge = json!({"author": "a", "text": "x".repeat(65 * 1024)});
    let response = app.post_message("dev", &huge).await;
    assert_eq!(response.status(), 413);
    assert_error(&response.json().await.unwrap(), "payload_too_large");

    let response = app
        .client
        .post(app.url("/api/v1/rooms/dev/messages"))
        .header("content-type", "text/plain")
        .body(r#"{"author":"a","text":"b"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    assert_error(&response.json().await.unwrap(), "unsupported_media_type");

    let response = app
        .client
        .put(app.url("/chat"))
        .body(r#"{"message":"no content type"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    let (status, _) = app.get_json("/api/v1/rooms/dev/messages").await;
    assert_eq!(
        status, 404,
        "nothing was stored, so the room does not exist"
    );
    app.stop().await;
}

async fn malformed_json_is_400_in_the_error_shape(backend: Backend) {
    let app = spawn_app(backend).await;
    // Deep nesting under the body limit: the parser's depth limit answers.
    let deep = "[".repeat(5_000) + &"]".repeat(5_000);
    let bodies: Vec<Vec<u8>> = vec![
        b"{".to_vec(),
        b"not json".to_vec(),
        vec![0xff, 0xfe, 0x7b, 0x7d],
        deep.into_bytes(),
        br#"{"author":"a","text":"b\u0000"}"#.to_vec(),
    ];
    for body in bodies {
        let response = app
            .client
            .post(app.url("/api/v1/rooms/dev/messages"))
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            400,
            "{:.60}",
            String::from_utf8_lossy(&body)
        );
        let body: Value = response.json().await.unwrap();
        assert!(body["error"]["code"].is_string());
    }
    app.stop().await;
}

async fn unknown_routes_are_404_and_wrong_methods_405(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, body) = app.get_json("/api/v2/nothing").await;
    assert_eq!(status, 404);
    assert_error(&body, "not_found");
    for (method, path) in [
        ("DELETE", "/chat"),
        ("POST", "/chat"),
        ("PUT", "/api/v1/rooms/dev/messages"),
        ("DELETE", "/api/v1/rooms"),
    ] {
        let response = app
            .client
            .request(method.parse().unwrap(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{method} {path}");
        assert_error(&response.json().await.unwrap(), "method_not_allowed");
    }
    app.stop().await;
}

async fn sends_over_the_rate_limit_get_429_with_retry_after(backend: Backend) {
    let app = spawn_app_with(backend, &["--rate-limit", "1", "--rate-limit-burst", "3"]).await;
    let mut statuses = Vec::new();
    for i in 0..6 {
        let response = app
            .post_message("dev", &message("a", &format!("m{i}"), None))
            .await;
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            let retry: u64 = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=60).contains(&retry));
            assert_error(&response.json().await.unwrap(), "rate_limited");
        }
    }
    assert_eq!(&statuses[..3], &[201, 201, 201]);
    assert!(statuses[3..].contains(&429), "{statuses:?}");
    // Signed in, the limit is the user's; the anonymous seed endpoint is
    // limited per address, with its own budget.
    let mut seed = Vec::new();
    for _ in 0..5 {
        let response = app
            .anonymous
            .put(app.url("/chat"))
            .json(&json!({"message": "x"}))
            .send()
            .await
            .unwrap();
        seed.push(response.status().as_u16());
    }
    assert_eq!(&seed[..3], &[201, 201, 201], "{seed:?}");
    assert!(seed[3..].contains(&429), "{seed:?}");
    // Reads are not limited.
    let (status, _) = app.get_json("/api/v1/rooms/dev/messages").await;
    assert_eq!(status, 200);
    app.stop().await;
}

async fn client_ip_comes_from_x_forwarded_for_only_behind_trusted_proxies(backend: Backend) {
    let untrusted = spawn_app(backend).await;
    let put = |app: &crate::helpers::TestApp| {
        app.client
            .put(app.url("/chat"))
            .header("x-forwarded-for", "198.51.100.7")
            .json(&json!({"message": "who am i"}))
            .send()
    };
    assert_eq!(put(&untrusted).await.unwrap().status(), 201);
    let (_, body) = untrusted.get_json("/chat?size=1").await;
    assert_eq!(body[0]["ip"], "127.0.0.1", "spoofed header ignored");
    untrusted.stop().await;

    let trusted = spawn_app_with(backend, &["--trusted-proxies", "127.0.0.1/32"]).await;
    assert_eq!(put(&trusted).await.unwrap().status(), 201);
    let (_, body) = trusted.get_json("/chat?size=1").await;
    assert_eq!(body[0]["ip"], "198.51.100.7");
    trusted.stop().await;
}
