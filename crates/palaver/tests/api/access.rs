//! Rooms with visibility, members, private-room isolation (on one server
//! and across two replicas of one PostgreSQL), suspension, per-user limits.

use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{
    client_with_cookie, create_room, person_on, refused_status, sign_up, spawn_app, spawn_app_with,
    status, try_connect_ws, until_status, Backend, Person, ServerProcess, TestDb, TEST_PASSWORD,
};

both_backends!(
    creating_rooms_is_201_for_new_names_409_for_taken_and_400_for_bad_input,
    a_private_room_is_404_for_non_members_everywhere_and_unlisted,
    members_are_managed_by_the_owner_or_an_admin_only,
    an_admin_suspends_a_user_and_their_sessions_logins_and_sends_end,
    send_limits_are_per_user_when_signed_in,
);

fn assert_error(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
}

async fn creating_rooms_is_201_for_new_names_409_for_taken_and_400_for_bad_input(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = create_room(
        &app.client,
        &app.address,
        &json!({"name": "design", "visibility": "private"}),
    )
    .await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"room": {"name": "design", "last_seq": 0, "visibility": "private", "topic": "",
                        "owner": "tester", "joined": true, "read_seq": 0, "unread": 0,
                        "mentions": 0}})
    );
    let public = create_room(&app.client, &app.address, &json!({"name": "lobby"})).await;
    assert_eq!(public.status(), 201);
    let body: Value = public.json().await.unwrap();
    assert_eq!(body["room"]["visibility"], "public");

    for taken in ["design", "general", "lobby"] {
        let response = create_room(&app.client, &app.address, &json!({"name": taken})).await;
        assert_eq!(response.status(), 409, "{taken}");
        assert_error(&response.json().await.unwrap(), "room_exists");
    }
    for bad in [
        json!({"name": "Bad Name"}),
        json!({"name": ""}),
        json!({"name": "x".repeat(65)}),
        json!({"name": "ok", "visibility": "secret"}),
        json!({"visibility": "private"}),
    ] {
        let response = create_room(&app.client, &app.address, &bad).await;
        assert_eq!(response.status(), 400, "{bad}");
    }
    let (_, rooms) = app.get_json("/api/v1/rooms").await;
    let listed: Vec<Value> = rooms["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            json!([
                r["name"],
                r["last_seq"],
                r["visibility"],
                r["joined"],
                r["owner"]
            ])
        })
        .collect();
    // The creator joined and owns the rooms it created; `general` was made
    // by the server, so nobody owns it.
    assert_eq!(
        listed,
        vec![
            json!(["design", 0, "private", true, "tester"]),
            json!(["general", 0, "public", false, null]),
            json!(["lobby", 0, "public", true, "tester"]),
        ]
    );
    app.stop().await;
}

/// Every way `outsider` could learn of or touch room `room` on the server at
/// `base` answers 404 (a missing room's answer), and the room is unlisted.
async fn assert_hidden(outsider: &Person, base: &str, room: &str) {
    let client = &outsider.client;
    let missing = "no-such-room-at-all";
    for name in [room, missing] {
        let history = client
            .get(format!("{base}/api/v1/rooms/{name}/messages"))
            .send()
            .await
            .unwrap();
        assert_eq!(history.status(), 404, "history of {name}");
        let body: Value = history.json().await.unwrap();
        assert_eq!(body["error"]["message"], format!("no room named {name}"));
        let members = client
            .get(format!("{base}/api/v1/rooms/{name}/members"))
            .send()
            .await
            .unwrap();
        assert_eq!(members.status(), 404, "members of {name}");
        let put = client
            .put(format!("{base}/api/v1/rooms/{name}/members/tester"))
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 404, "PUT member of {name}");
    }
    let post = client
        .post(format!("{base}/api/v1/rooms/{room}/messages"))
        .json(&json!({"text": "let me in"}))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 404, "post");
    let sse = client
        .get(format!("{base}/api/v1/rooms/{room}/stream"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), 404, "SSE");
    let ws_base = base.replacen("http://", "ws://", 1);
    let ws = try_connect_ws(
        &format!("{ws_base}/api/v1/rooms/{room}/stream"),
        Some(&outsider.cookie),
        None,
    )
    .await;
    assert_eq!(refused_status(&ws.err()), Some(404), "WebSocket");
    let listed: Value = client
        .get(format!("{base}/api/v1/rooms"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = listed["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert!(!names.contains(&room), "{names:?}");
}

async fn a_private_room_is_404_for_non_members_everywhere_and_unlisted(backend: Backend) {
    let app = spawn_app(backend).await;
    let response = create_room(
        &app.client,
        &app.address,
        &json!({"name": "secret", "visibility": "private"}),
    )
    .await;
    assert_eq!(response.status(), 201);
    app.send("secret", "for members only").await;

    let bob = app.person("bob").await;
    assert_hidden(&bob, &app.address, "secret").await;
    // Creating it again does not reveal more than any taken name does.
    let again = create_room(&bob.client, &app.address, &json!({"name": "secret"})).await;
    assert_eq!(again.status(), 409);

    // Added, bob reads, posts and streams; removed, it is gone again.
    let add = app
        .client
        .put(app.url("/api/v1/rooms/secret/members/bob"))
        .send()
        .await
        .unwrap();
    assert_eq!(add.status(), 204);
    let (status, page) = {
        let r = bob
            .client
            .get(app.url("/api/v1/rooms/secret/messages"))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(status, 200);
    assert_eq!(page["messages"][0]["text"], "for members only");
    let post = bob
        .client
        .post(app.url("/api/v1/rooms/secret/messages"))
        .json(&json!({"text": "thanks"}))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 201);
    let members: Value = bob
        .client
        .get(app.url("/api/v1/rooms/secret/members"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bob", "tester"]);
    let listed: Value = bob
        .client
        .get(app.url("/api/v1/rooms"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(listed["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == "secret" && r["visibility"] == "private"));

    let remove = app
        .client
        .delete(app.url("/api/v1/rooms/secret/members/bob"))
        .send()
        .await
        .unwrap();
    assert_eq!(remove.status(), 204);
    assert_hidden(&bob, &app.address, "secret").await;
    app.stop().await;
}

async fn members_are_managed_by_the_owner_or_an_admin_only(backend: Backend) {
    // tester is the first account: admin. carol owns a room; bob does not.
    let app = spawn_app(backend).await;
    let carol = app.person("carol").await;
    let bob = app.person("bob").await;
    let created = create_room(
        &carol.client,
        &app.address,
        &json!({"name": "carols", "visibility": "private"}),
    )
    .await;
    assert_eq!(created.status(), 201);
    let url = |who: &str| app.url(&format!("/api/v1/rooms/carols/members/{who}"));

    // A member who is not the owner may not manage.
    assert_eq!(status(carol.client.put(url("bob"))).await, 204);
    let refused = bob.client.put(url("dave")).send().await.unwrap();
    assert_eq!(refused.status(), 403);
    assert_error(&refused.json().await.unwrap(), "not_owner");
    assert_eq!(status(bob.client.delete(url("carol"))).await, 403);
    // Unknown and invalid usernames.
    assert_eq!(status(carol.client.put(url("nobody"))).await, 404);
    assert_eq!(status(carol.client.put(url("Not%20Valid!"))).await, 400);
    // The owner cannot be removed, nor leave her private room.
    let owner = carol.client.delete(url("carol")).send().await.unwrap();
    assert_eq!(owner.status(), 409);
    assert_error(&owner.json().await.unwrap(), "owner_cannot_leave");
    let owner = app.client.delete(url("carol")).send().await.unwrap();
    assert_eq!(owner.status(), 409);
    assert_error(&owner.json().await.unwrap(), "owner_cannot_be_removed");
    // The admin, not a member, manages it all the same, but still cannot
    // read it.
    assert_eq!(status(app.client.delete(url("bob"))).await, 204);
    assert_eq!(status(app.client.put(url("bob"))).await, 204);
    assert_eq!(
        status(app.client.get(app.url("/api/v1/rooms/carols/members"))).await,
        200
    );
    assert_eq!(
        status(app.client.get(app.url("/api/v1/rooms/carols/messages"))).await,
        404
    );
    // Repeats are idempotent.
    assert_eq!(status(carol.client.put(url("bob"))).await, 204);
    assert_eq!(status(carol.client.delete(url("tester"))).await, 204);
    assert_eq!(status(carol.client.delete(url("tester"))).await, 204);
    app.stop().await;
}

async fn an_admin_suspends_a_user_and_their_sessions_logins_and_sends_end(backend: Backend) {
    let app = spawn_app(backend).await;
    let bob = app.person("bob").await;
    let suspend = |who: &str| {
        app.client
            .post(app.url(&format!("/api/v1/users/{who}/suspend")))
    };

    // Only admins; not oneself; not unknown users.
    let refused = bob
        .client
        .post(app.url("/api/v1/users/tester/suspend"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert_error(&refused.json().await.unwrap(), "not_admin");
    assert_eq!(status(suspend("tester")).await, 409);
    assert_eq!(status(suspend("nobody")).await, 404);
    assert_eq!(status(suspend("NOT VALID")).await, 400);

    assert_eq!(status(suspend("bob")).await, 204);
    // The session is gone, the login refused, the sends refused.
    assert_eq!(status(bob.client.get(app.url("/api/v1/me"))).await, 401);
    let send = bob
        .client
        .post(app.url("/api/v1/rooms/general/messages"))
        .json(&json!({"text": "still here?"}))
        .send()
        .await
        .unwrap();
    assert!(matches!(send.status().as_u16(), 401 | 403));
    let login = app
        .anonymous
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": "bob", "password": TEST_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 403);
    assert_error(&login.json().await.unwrap(), "suspended");
    // A wrong password still gets the plain 401: suspension is no oracle.
    let wrong = app
        .anonymous
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": "bob", "password": "not his password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    assert_eq!(
        status(app.client.post(app.url("/api/v1/users/bob/unsuspend"))).await,
        204
    );
    let back = sign_up(&app.address, "bob", "bob").await;
    let send = client_with_cookie(&back)
        .post(app.url("/api/v1/rooms/general/messages"))
        .json(&json!({"text": "back"}))
        .send()
        .await
        .unwrap();
    assert_eq!(send.status(), 201);
    app.stop().await;
}

async fn send_limits_are_per_user_when_signed_in(backend: Backend) {
    let app = spawn_app_with(backend, &["--rate-limit", "1", "--rate-limit-burst", "2"]).await;
    let bob = app.person("bob").await;
    let send = |client: &reqwest::Client| {
        client
            .post(app.url("/api/v1/rooms/general/messages"))
            .json(&json!({"text": "x"}))
            .send()
    };
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(send(&app.client).await.unwrap().status().as_u16());
    }
    assert_eq!(&statuses[..2], &[201, 201]);
    assert_eq!(statuses[3], 429, "{statuses:?}");
    // Same address, another user: their own budget.
    assert_eq!(send(&bob.client).await.unwrap().status(), 201);
    app.stop().await;
}

/// Two replicas on one PostgreSQL: isolation holds on the replica that did
/// not make the change, and membership changes reach it at once (the access
/// events), not after a cache expires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_rooms_stay_hidden_on_a_second_replica_and_membership_changes_reach_it() {
    let db = TestDb::new(Backend::Postgres).await;
    let a = ServerProcess::start(&db.url, &[]).await;
    let b = ServerProcess::start(&db.url, &[]).await;
    let created = create_room(
        &a.client,
        &a.url(""),
        &json!({"name": "vault", "visibility": "private"}),
    )
    .await;
    assert_eq!(created.status(), 201);
    let bob = person_on(&a.url(""), "bob", "bob").await;
    // B learns bob is not a member (and caches it).
    assert_hidden(&bob, &b.url(""), "vault").await;
    // Added on A: B lets him in straight away.
    assert_eq!(
        status(a.client.put(a.url("/api/v1/rooms/vault/members/bob"))).await,
        204
    );
    until_status(200, || {
        bob.client.get(b.url("/api/v1/rooms/vault/messages"))
    })
    .await;
    // Removed on A: hidden on B again, well within the cache TTL.
    assert_eq!(
        status(a.client.delete(a.url("/api/v1/rooms/vault/members/bob"))).await,
        204
    );
    until_status(404, || {
        bob.client.get(b.url("/api/v1/rooms/vault/messages"))
    })
    .await;
    assert_hidden(&bob, &b.url(""), "vault").await;
}

/// The close frame's reason, waiting up to 10 s and skipping other frames.
async fn close_reason(ws: &mut crate::helpers::Ws) -> Option<String> {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let next = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("the stream closes within 10 s");
        match next {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| f.reason.as_str().to_owned()),
            Some(Ok(_)) => continue,
            _ => return None,
        }
    }
}

both_backends!(
    a_removed_members_stream_closes_with_removed,
    signing_out_ends_the_sessions_streams,
);

async fn a_removed_members_stream_closes_with_removed(backend: Backend) {
    let app = spawn_app(backend).await;
    let created = create_room(
        &app.client,
        &app.address,
        &json!({"name": "inner", "visibility": "private"}),
    )
    .await;
    assert_eq!(created.status(), 201);
    let bob = app.person("bob").await;
    assert_eq!(
        status(app.client.put(app.url("/api/v1/rooms/inner/members/bob"))).await,
        204
    );
    let url = app.ws_url("/api/v1/rooms/inner/stream?since=0");
    let mut ws = try_connect_ws(&url, Some(&bob.cookie), None).await.unwrap();
    crate::helpers::read_until_caught_up(&mut ws).await;
    // A stream on a public room is not affected by the removal.
    let general = app.ws_url("/api/v1/rooms/general/stream");
    let mut other = try_connect_ws(&general, Some(&bob.cookie), None)
        .await
        .unwrap();
    crate::helpers::read_until_caught_up(&mut other).await;

    assert_eq!(
        status(
            app.client
                .delete(app.url("/api/v1/rooms/inner/members/bob"))
        )
        .await,
        204
    );
    assert_eq!(close_reason(&mut ws).await.as_deref(), Some("removed"));
    app.send("general", "still here").await;
    let got = crate::helpers::read_messages(&mut other, 1).await;
    assert_eq!(got[0].1, "still here");
    app.stop().await;
}

async fn signing_out_ends_the_sessions_streams(backend: Backend) {
    let app = spawn_app(backend).await;
    let bob = app.person("bob").await;
    let url = app.ws_url("/api/v1/rooms/general/stream");
    let mut ws = try_connect_ws(&url, Some(&bob.cookie), None).await.unwrap();
    crate::helpers::read_until_caught_up(&mut ws).await;
    let out = bob
        .client
        .post(app.url("/api/v1/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 204);
    assert_eq!(close_reason(&mut ws).await.as_deref(), Some("signed_out"));
    app.stop().await;
}

/// Suspension on replica A closes the user's stream on replica B (the access
/// event crosses over PostgreSQL) and their next send there is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspension_closes_streams_and_refuses_sends_on_another_replica() {
    let db = TestDb::new(Backend::Postgres).await;
    let a = ServerProcess::start(&db.url, &[]).await;
    let b = ServerProcess::start(&db.url, &[]).await;
    let cookie = sign_up(&a.url(""), "bob", "bob").await;
    let bob = client_with_cookie(&cookie);
    // B has validated (and cached) bob's session.
    assert_eq!(status(bob.get(b.url("/api/v1/me"))).await, 200);
    let mut ws = try_connect_ws(
        &b.ws_url("/api/v1/rooms/general/stream"),
        Some(&cookie),
        None,
    )
    .await
    .unwrap();
    crate::helpers::read_until_caught_up(&mut ws).await;

    assert_eq!(
        status(a.client.post(a.url("/api/v1/users/bob/suspend"))).await,
        204
    );
    assert_eq!(close_reason(&mut ws).await.as_deref(), Some("suspended"));
    let send = bob
        .post(b.url("/api/v1/rooms/general/messages"))
        .json(&json!({"text": "after suspension"}))
        .send()
        .await
        .unwrap();
    assert!(
        matches!(send.status().as_u16(), 401 | 403),
        "{}",
        send.status()
    );
}
