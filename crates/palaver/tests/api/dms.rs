//! Direct rooms (DESIGN §5d).

use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{client_with_cookie, sign_up, spawn_app, Backend, TestApp};

async fn open(app: &TestApp, client: &reqwest::Client, usernames: Value) -> (u16, Value) {
    let r = client
        .post(app.url("/api/v1/dms"))
        .json(&json!({ "usernames": usernames }))
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn status(r: reqwest::RequestBuilder) -> u16 {
    r.send().await.expect("request").status().as_u16()
}

async fn a_direct_room_is_one_per_set_of_people_and_hidden_from_everyone_else(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = client_with_cookie(&sign_up(&app.address, "ada", "Ada").await);
    let grace = client_with_cookie(&sign_up(&app.address, "grace", "Grace").await);
    let eve = client_with_cookie(&sign_up(&app.address, "eve", "Eve").await);
    sign_up(&app.address, "linus", "Linus").await;

    let (code, body) = open(&app, &ada, json!(["grace"])).await;
    assert_eq!(code, 201, "{body}");
    let room = body["room"]["name"].as_str().expect("name").to_owned();
    assert!(room.starts_with("dm-") && room.len() == 35, "{room}");
    assert_eq!(body["room"]["visibility"], "direct");
    let members: Vec<&str> = body["room"]["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| m["username"].as_str().expect("username"))
        .collect();
    assert_eq!(members, ["ada", "grace"]);

    // The same people, whoever asks and however they are listed.
    let (code, again) = open(&app, &grace, json!(["ada", "grace", "ADA"])).await;
    assert_eq!(code, 200);
    assert_eq!(again["room"]["name"], room.as_str());
    // Another set of people is another room.
    let (code, three) = open(&app, &ada, json!(["grace", "linus"])).await;
    assert_eq!(code, 201);
    assert_ne!(three["room"]["name"], room.as_str());

    let messages = app.url(&format!("/api/v1/rooms/{room}/messages"));
    assert_eq!(
        status(ada.post(&messages).json(&json!({"text": "hi"}))).await,
        201
    );
    assert_eq!(status(grace.get(&messages)).await, 200);
    assert_eq!(status(eve.get(&messages)).await, 404);
    assert_eq!(
        status(eve.post(&messages).json(&json!({"text": "hi"}))).await,
        404
    );
    let members = app.url(&format!("/api/v1/rooms/{room}/members"));
    assert_eq!(status(eve.get(&members)).await, 404);
    assert_eq!(status(grace.get(&members)).await, 200);
    // Fixed members: 409 for the members and for an admin alike.
    assert_eq!(status(ada.put(format!("{members}/eve"))).await, 409);
    assert_eq!(status(ada.delete(format!("{members}/grace"))).await, 409);
    assert_eq!(status(app.client.put(format!("{members}/eve"))).await, 409);
    assert_eq!(status(eve.put(format!("{members}/eve"))).await, 404);

    // Bad input.
    assert_eq!(open(&app, &ada, json!([])).await.0, 400);
    assert_eq!(open(&app, &ada, json!(["ada"])).await.0, 400);
    let nine: Vec<String> = (1..=9).map(|i| format!("user{i}")).collect();
    assert_eq!(open(&app, &ada, json!(nine)).await.0, 400);
    assert_eq!(open(&app, &ada, json!(["no body"])).await.0, 400);
    assert_eq!(open(&app, &ada, json!(["nobody"])).await.0, 404);
    let suspend = app.client.post(app.url("/api/v1/users/eve/suspend"));
    assert_eq!(status(suspend).await, 204);
    assert_eq!(open(&app, &ada, json!(["eve"])).await.0, 409);
    assert_eq!(
        status(
            ada.post(app.url("/api/v1/dms"))
                .json(&json!({"usernames": "grace"}))
        )
        .await,
        400
    );
    let direct = ada
        .post(app.url("/api/v1/rooms"))
        .json(&json!({"name": "sneaky", "visibility": "direct"}));
    assert_eq!(status(direct).await, 400);
    app.stop().await;
}

async fn two_people_opening_their_direct_room_at_once_get_the_same_one(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = client_with_cookie(&sign_up(&app.address, "ada", "Ada").await);
    let grace = client_with_cookie(&sign_up(&app.address, "grace", "Grace").await);
    let mut calls = Vec::new();
    for i in 0..8 {
        let (client, other) = if i % 2 == 0 {
            (ada.clone(), "grace")
        } else {
            (grace.clone(), "ada")
        };
        let url = app.url("/api/v1/dms");
        calls.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .json(&json!({ "usernames": [other] }))
                .send()
                .await
                .expect("request");
            let status = r.status().as_u16();
            let body: Value = r.json().await.expect("json");
            (status, body["room"]["name"].as_str().map(str::to_owned))
        }));
    }
    let mut created = 0;
    let mut names = std::collections::HashSet::new();
    for call in calls {
        let (status, name) = call.await.expect("task");
        assert!(status == 200 || status == 201, "{status}");
        created += usize::from(status == 201);
        names.insert(name.expect("a room"));
    }
    assert_eq!(created, 1);
    assert_eq!(names.len(), 1);
    app.stop().await;
}

both_backends!(
    a_direct_room_is_one_per_set_of_people_and_hidden_from_everyone_else,
    two_people_opening_their_direct_room_at_once_get_the_same_one,
);
