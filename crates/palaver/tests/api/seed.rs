//! The seed-compatible `/chat` endpoint: exact statuses, bodies and fields.

use serde_json::json;

use crate::both_backends;
use crate::helpers::{spawn_app, Backend};

both_backends!(
    put_chat_answers_201_message_sent,
    put_chat_without_a_message_answers_400_message_is_required,
    get_chat_returns_ip_datetime_message_newest_first,
    get_chat_without_size_returns_at_most_1000,
    get_chat_rejects_a_size_that_is_not_a_small_number,
);

async fn put_chat_answers_201_message_sent(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = app
        .client
        .put(app.url("/chat"))
        .json(&json!({"message": "hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.text().await.unwrap(), "Message sent");
    // It lands in room general, visible on the v1 API too.
    let (_, page) = app.get_json("/api/v1/rooms/general/messages").await;
    assert_eq!(page["messages"][0]["text"], "hello");
    app.stop().await;
}

async fn put_chat_without_a_message_answers_400_message_is_required(backend: Backend) {
    let app = spawn_app(backend).await;
    for body in [
        json!({}),
        json!({"message": ""}),
        json!({"message": "   "}),
        json!({"message": null}),
    ] {
        let response = app
            .client
            .put(app.url("/chat"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
        assert_eq!(
            response.text().await.unwrap(),
            "Message is required",
            "{body}"
        );
    }
    let (_, all) = app.get_json("/chat").await;
    assert_eq!(all, json!([]), "nothing was stored");
    app.stop().await;
}

async fn get_chat_returns_ip_datetime_message_newest_first(backend: Backend) {
    let app = spawn_app(backend).await;
    for text in ["one", "two", "three"] {
        let r = app
            .client
            .put(app.url("/chat"))
            .json(&json!({"message": text}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let (status, body) = app.get_json("/chat?size=2").await;
    assert_eq!(status, 200);
    let items = body.as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["message"], "three");
    assert_eq!(items[1]["message"], "two");
    let first = items[0].as_object().unwrap();
    let mut keys: Vec<_> = first.keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["datetime", "ip", "message"]);
    assert_eq!(first["ip"], "127.0.0.1");
    let datetime = first["datetime"].as_str().unwrap();
    assert!(
        time::OffsetDateTime::parse(datetime, &time::format_description::well_known::Rfc3339)
            .is_ok(),
        "{datetime} is RFC 3339"
    );
    app.stop().await;
}

async fn get_chat_without_size_returns_at_most_1000(backend: Backend) {
    let app = spawn_app(backend).await;
    let sends = (0..1005).map(|i| {
        let app = &app;
        async move {
            let r = app
                .client
                .put(app.url("/chat"))
                .json(&json!({"message": format!("m{i}")}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
        }
    });
    futures::future::join_all(sends).await;
    let (_, body) = app.get_json("/chat").await;
    assert_eq!(body.as_array().unwrap().len(), 1000);
    let (_, body) = app.get_json("/chat?size=1000").await;
    assert_eq!(body.as_array().unwrap().len(), 1000);
    app.stop().await;
}

async fn get_chat_rejects_a_size_that_is_not_a_small_number(backend: Backend) {
    let app = spawn_app(backend).await;
    for query in [
        "size=abc",
        "size=-1",
        "size=1001",
        "size=99999999999999999999",
    ] {
        let (status, body) = app.get_json(&format!("/chat?{query}")).await;
        assert_eq!(status, 400, "{query}");
        assert!(body["error"]["code"].is_string(), "{query}: {body}");
    }
    let (status, body) = app.get_json("/chat?size=0").await;
    assert_eq!((status, body), (200, json!([])));
    app.stop().await;
}
