//! The default body limit (`--max-body-bytes`) against the longest valid
//! message: 4000 characters are accepted whatever their script and however
//! the client spells them in JSON.

use serde_json::Value;

use crate::both_backends;
use crate::helpers::{spawn_app, Backend, TestApp};

both_backends!(the_longest_valid_message_is_accepted_in_every_encoding);

/// A character outside the Basic Multilingual Plane (U+1F600): 4 bytes in
/// UTF-8, 12 as a JSON-escaped surrogate pair.
const ASTRAL: char = '\u{1F600}';
const MAX_CHARS: usize = 4000;

/// Each character of `text` as a JSON `\u` escape (surrogate pairs above
/// U+FFFF): the longest spelling JSON allows.
fn escaped(text: &str) -> String {
    let mut units = [0u16; 2];
    text.chars()
        .flat_map(|c| c.encode_utf16(&mut units).to_vec())
        .map(|unit| format!("\\u{unit:04x}"))
        .collect()
}

async fn post_raw(
    app: &TestApp,
    path: &str,
    method: reqwest::Method,
    body: String,
) -> (u16, Value) {
    let response = app
        .client
        .request(method, app.url(path))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn the_longest_valid_message_is_accepted_in_every_encoding(backend: Backend) {
    let app = spawn_app(backend).await;
    let astral: String = std::iter::repeat_n(ASTRAL, MAX_CHARS).collect();
    let ascii = "x".repeat(MAX_CHARS);
    let client_id = |n: usize| format!("{n}-").repeat(64)[..64].to_owned();
    // (what, the text as the server should store it, its JSON spelling)
    let cases = [
        ("raw UTF-8 astral", astral.clone(), astral.clone()),
        ("escaped surrogate pairs", astral.clone(), escaped(&astral)),
        ("ASCII", ascii.clone(), ascii.clone()),
        ("escaped ASCII", ascii.clone(), escaped(&ascii)),
    ];
    for (n, (what, text, spelled)) in cases.iter().enumerate() {
        let id = client_id(n);
        let body = format!(r#"{{"text":"{spelled}","client_id":"{}"}}"#, escaped(&id));
        if *what == "escaped surrogate pairs" {
            // The longest text and client_id; the bound also leaves room
            // for `reply_to` and ten escaped file ids, which this body
            // does not carry.
            assert_eq!(body.len(), 48_410, "the longest text and client_id");
            assert_eq!(
                body.len() + 2_232,
                palaver::config::LONGEST_VALID_SEND_BYTES
            );
        }
        let (status, stored) = post_raw(
            &app,
            "/api/v1/rooms/dev/messages",
            reqwest::Method::POST,
            body,
        )
        .await;
        assert_eq!(status, 201, "{what}: {stored}");
        assert_eq!(stored["text"].as_str(), Some(text.as_str()), "{what}");
        assert_eq!(stored["client_id"].as_str(), Some(id.as_str()), "{what}");

        // The seed-compatible send takes the same text.
        let body = format!(r#"{{"message":"{spelled}"}}"#);
        let (status, answer) = post_raw(&app, "/chat", reqwest::Method::PUT, body).await;
        assert_eq!(status, 201, "PUT /chat, {what}: {answer}");
    }
    // One character more is refused for its length (400), not its size.
    let body = format!(r#"{{"text":"{}"}}"#, escaped(&format!("{astral}{ASTRAL}")));
    let (status, answer) = post_raw(
        &app,
        "/api/v1/rooms/dev/messages",
        reqwest::Method::POST,
        body,
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    let stored = app.all_messages("dev").await;
    assert_eq!(stored.len(), 4);
    app.stop().await;
}
