//! Room events (DESIGN §5b) and reading state (§5c): edits, deletions,
//! reactions, replies and mentions on both databases; a client that was away
//! resumes every event once, in order, on another replica; read markers and
//! unread counts; the multiplexed stream.

use futures::SinkExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::both_backends;
use crate::helpers::{
    client_with_cookie, connect_ws, next_frame, send_only, sign_up, spawn_app, spawn_app_with,
    status, try_connect_ws, Backend, ServerProcess, TestApp, TestDb, Ws,
};

both_backends!(
    edits_deletions_and_reactions_answer_their_documented_statuses,
    reactions_are_idempotent_counted_per_emoji_and_capped_at_20,
    replies_and_mentions_are_checked_and_resolved_on_send_and_edit,
    a_deleted_text_is_found_nowhere_in_the_database,
    pages_show_current_state_and_around_centres_on_a_message,
    a_stream_resuming_after_changes_applies_each_event_once_in_order,
    a_replayed_message_and_its_replayed_reactions_count_once,
    read_markers_move_forward_unless_marked_unread_and_drive_unread_counts,
    the_multiplexed_stream_follows_many_rooms_and_refuses_with_error_frames,
    the_seed_api_shows_current_texts_and_leaves_deleted_messages_out,
    readers_of_one_cached_page_each_see_their_own_reactions,
);

fn message_url(app: &TestApp, room: &str, seq: i64) -> String {
    app.url(&format!("/api/v1/rooms/{room}/messages/{seq}"))
}

fn reaction_url(app: &TestApp, room: &str, seq: i64, emoji: &str) -> String {
    let encoded: String = emoji
        .bytes()
        .map(|b| format!("%{b:02X}"))
        .collect::<Vec<_>>()
        .concat();
    app.url(&format!(
        "/api/v1/rooms/{room}/messages/{seq}/reactions/{encoded}"
    ))
}

async fn last_seq(app: &TestApp, client: &reqwest::Client, room: &str) -> i64 {
    let body: Value = client
        .get(app.url("/api/v1/rooms"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == room)
        .map(|r| r["last_seq"].as_i64().unwrap())
        .unwrap_or(0)
}

async fn newest(app: &TestApp, client: &reqwest::Client, room: &str) -> Vec<Value> {
    let body: Value = client
        .get(app.url(&format!("/api/v1/rooms/{room}/messages?limit=200")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["messages"].as_array().unwrap().clone()
}

async fn edits_deletions_and_reactions_answer_their_documented_statuses(backend: Backend) {
    let app = spawn_app(backend).await;
    let bob = app.person("bob").await;
    let sent = app.send("talk", "helo").await;
    let seq = sent["seq"].as_i64().unwrap();

    // The author edits: 200 with the message as it is now.
    let edited = app
        .client
        .patch(message_url(&app, "talk", seq))
        .json(&json!({"text": "hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(edited.status(), 200);
    let edited: Value = edited.json().await.unwrap();
    assert_eq!(edited["text"], "hello");
    assert_eq!(edited["seq"], seq);
    assert!(edited["edited_at"].is_string());
    assert_eq!(edited["deleted"], false);

    // Someone else may not edit (403) or delete (403) it.
    let patch = |c: &reqwest::Client, s: i64, body: Value| {
        c.patch(message_url(&app, "talk", s)).json(&body)
    };
    assert_eq!(
        status(patch(&bob.client, seq, json!({"text": "mine"}))).await,
        403
    );
    assert_eq!(
        status(bob.client.delete(message_url(&app, "talk", seq))).await,
        403
    );
    // Bad input: an empty text, a seq that is no number, a room not there.
    assert_eq!(
        status(patch(&app.client, seq, json!({"text": "  "}))).await,
        400
    );
    assert_eq!(
        status(
            app.client
                .patch(app.url("/api/v1/rooms/talk/messages/x"))
                .json(&json!({"text": "a"}))
        )
        .await,
        400
    );
    assert_eq!(
        status(
            app.client
                .patch(app.url("/api/v1/rooms/nowhere/messages/1"))
                .json(&json!({"text": "a"}))
        )
        .await,
        404
    );
    // The edit took seq 2: a seq that is an event, not a message, is 404;
    // so is one past the end.
    assert_eq!(
        status(patch(&app.client, seq + 1, json!({"text": "x"}))).await,
        404
    );
    assert_eq!(
        status(patch(&app.client, 999, json!({"text": "x"}))).await,
        404
    );

    // The author deletes: 204; then editing (409), deleting again (409)
    // and reacting (409) are refused.
    assert_eq!(
        status(app.client.delete(message_url(&app, "talk", seq))).await,
        204
    );
    assert_eq!(
        status(patch(&app.client, seq, json!({"text": "back"}))).await,
        409
    );
    assert_eq!(
        status(app.client.delete(message_url(&app, "talk", seq))).await,
        409
    );
    assert_eq!(
        status(bob.client.put(reaction_url(&app, "talk", seq, "👍"))).await,
        409
    );

    // The room's owner or an admin deletes anyone's message: the default
    // user is the first account (admin).
    let by_bob: Value = bob
        .client
        .post(app.url("/api/v1/rooms/talk/messages"))
        .json(&json!({"text": "bob's"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bob_seq = by_bob["seq"].as_i64().unwrap();
    assert_eq!(
        status(app.client.delete(message_url(&app, "talk", bob_seq))).await,
        204
    );

    // A private room is 404 to a non-member for every change.
    let created = app
        .client
        .post(app.url("/api/v1/rooms"))
        .json(&json!({"name": "vault", "visibility": "private"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let secret = app.send("vault", "secret").await["seq"].as_i64().unwrap();
    assert_eq!(
        status(
            bob.client
                .patch(message_url(&app, "vault", secret))
                .json(&json!({"text": "x"}))
        )
        .await,
        404
    );
    assert_eq!(
        status(bob.client.delete(message_url(&app, "vault", secret))).await,
        404
    );
    assert_eq!(
        status(bob.client.put(reaction_url(&app, "vault", secret, "👍"))).await,
        404
    );
    assert_eq!(
        status(
            bob.client
                .put(app.url("/api/v1/rooms/vault/read"))
                .json(&json!({"seq": 1}))
        )
        .await,
        404
    );
    app.stop().await;
}

async fn reactions_are_idempotent_counted_per_emoji_and_capped_at_20(backend: Backend) {
    let app = spawn_app(backend).await;
    let bob = app.person("bob").await;
    let seq = app.send("fun", "react to me").await["seq"]
        .as_i64()
        .unwrap();
    let put = |c: &reqwest::Client, emoji: &str| c.put(reaction_url(&app, "fun", seq, emoji));

    assert_eq!(status(put(&app.client, "👍")).await, 204);
    let after_one = last_seq(&app, &app.client, "fun").await;
    // A second PUT adds no event.
    assert_eq!(status(put(&app.client, "👍")).await, 204);
    assert_eq!(last_seq(&app, &app.client, "fun").await, after_one);
    assert_eq!(status(put(&bob.client, "👍")).await, 204);
    assert_eq!(status(put(&bob.client, "🎉")).await, 204);

    let page = newest(&app, &app.client, "fun").await;
    let reactions = &page[0]["reactions"];
    assert_eq!(
        reactions,
        &json!([{"emoji": "👍", "count": 2, "me": true}, {"emoji": "🎉", "count": 1, "me": false}])
    );
    let seen_by_bob = newest(&app, &bob.client, "fun").await;
    assert_eq!(
        seen_by_bob[0]["reactions"][1],
        json!({"emoji": "🎉", "count": 1, "me": true})
    );

    // Taking one back: 204 whether or not it was there.
    assert_eq!(
        status(bob.client.delete(reaction_url(&app, "fun", seq, "🎉"))).await,
        204
    );
    let before = last_seq(&app, &app.client, "fun").await;
    assert_eq!(
        status(bob.client.delete(reaction_url(&app, "fun", seq, "🎉"))).await,
        204
    );
    assert_eq!(last_seq(&app, &app.client, "fun").await, before);

    // Not an emoji: text, two emoji, 1,000 bytes.
    let long = "😀".repeat(250);
    for bad in ["ok", "👍👍", ":+1:", long.as_str()] {
        assert_eq!(status(put(&app.client, bad)).await, 400, "{bad}");
    }
    // 20 distinct emoji at most (👍 and 19 more): the 21st new one is 409, an existing one
    // may still be added by someone else.
    let emoji = [
        "😀", "😂", "😍", "🤔", "😎", "😢", "😡", "👏", "🙏", "🔥", "💯", "✅", "❌", "👀", "🚀",
        "🍕", "☕", "🎂", "🌈",
    ];
    for e in emoji {
        assert_eq!(status(put(&app.client, e)).await, 204, "{e}");
    }
    assert_eq!(status(put(&app.client, "🐛")).await, 409);
    assert_eq!(status(put(&bob.client, "🔥")).await, 204);
    let page = newest(&app, &app.client, "fun").await;
    assert_eq!(page[0]["reactions"].as_array().unwrap().len(), 20);
    app.stop().await;
}

async fn replies_and_mentions_are_checked_and_resolved_on_send_and_edit(backend: Backend) {
    let app = spawn_app(backend).await;
    let bob = app.person("bob").await;
    let first = app.send("chat", "question?").await["seq"].as_i64().unwrap();
    let other = app.send("elsewhere", "x").await["seq"].as_i64().unwrap();
    assert_eq!(other, 1);

    let reply = bob
        .client
        .post(app.url("/api/v1/rooms/chat/messages"))
        .json(&json!({"text": "answer, cc @Tester and @nobody", "reply_to": first}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 201);
    let reply: Value = reply.json().await.unwrap();
    assert_eq!(reply["reply_to"], first);
    let ada_id = app.get_json("/api/v1/me").await.1["user"]["id"].clone();
    // The default user is `tester`: mentioned; an unknown name is not.
    assert_eq!(reply["mentions"], json!([ada_id]));

    // reply_to must be a message of this room that is not deleted.
    let post = |body: Value| {
        bob.client
            .post(app.url("/api/v1/rooms/chat/messages"))
            .json(&body)
    };
    for bad in [json!(0), json!(99), json!(-1), json!("1")] {
        assert_eq!(
            status(post(json!({"text": "r", "reply_to": bad}))).await,
            400,
            "{bad}"
        );
    }
    let edit_seq = reply["seq"].as_i64().unwrap() + 1;
    send_only(
        app.client
            .patch(message_url(&app, "chat", first))
            .json(&json!({"text": "question, @bob?"})),
    )
    .await;
    assert_eq!(
        status(post(json!({"text": "r", "reply_to": edit_seq}))).await,
        400,
        "an edit's seq is not a message"
    );
    let page = newest(&app, &app.client, "chat").await;
    let question = page.iter().find(|m| m["seq"] == first).unwrap();
    assert_eq!(
        question["mentions"],
        json!([bob.id]),
        "resolved again on edit"
    );
    assert_eq!(
        status(app.client.delete(message_url(&app, "chat", first))).await,
        204
    );
    assert_eq!(
        status(post(json!({"text": "r", "reply_to": first}))).await,
        400
    );

    // In a private room only its members can be mentioned.
    app.client
        .post(app.url("/api/v1/rooms"))
        .json(&json!({"name": "inner", "visibility": "private"}))
        .send()
        .await
        .unwrap();
    let inner = app.send("inner", "hey @bob").await;
    assert_eq!(inner["mentions"], json!([]));
    app.stop().await;
}

async fn a_deleted_text_is_found_nowhere_in_the_database(backend: Backend) {
    let app = spawn_app(backend).await;
    let seq = app.send("gone", "first-version-zq").await["seq"]
        .as_i64()
        .unwrap();
    send_only(
        app.client
            .patch(message_url(&app, "gone", seq))
            .json(&json!({"text": "second-version-zq"})),
    )
    .await;
    assert_eq!(
        status(app.client.delete(message_url(&app, "gone", seq))).await,
        204
    );

    let page = newest(&app, &app.client, "gone").await;
    assert_eq!(page[0]["deleted"], true);
    assert_eq!(page[0]["text"], "");

    let count = |n: i64| n;
    let found: i64 = if backend == Backend::Postgres {
        let pool = sqlx::PgPool::connect(&app.db_url).await.unwrap();
        let n: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM messages WHERE text LIKE '%-zq%' OR mentions LIKE '%-zq%') \
                  + (SELECT count(*) FROM room_events WHERE text LIKE '%-zq%')",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        pool.close().await;
        n
    } else {
        let pool = sqlx::SqlitePool::connect(&app.db_url).await.unwrap();
        let n: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM messages WHERE text LIKE '%-zq%') \
                  + (SELECT count(*) FROM room_events WHERE text LIKE '%-zq%')",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        pool.close().await;
        n
    };
    assert_eq!(count(found), 0, "no version of the text is stored");
    app.stop().await;
}

async fn pages_show_current_state_and_around_centres_on_a_message(backend: Backend) {
    let app = spawn_app(backend).await;
    for i in 1..=30 {
        app.send("long", &format!("m{i}")).await;
    }
    let around = |query: &str| {
        let path = format!("/api/v1/rooms/long/messages?{query}");
        let app = &app;
        async move { app.get_json(&path).await }
    };
    let (code, page) = around("around=15&limit=5").await;
    assert_eq!(code, 200);
    let seqs: Vec<i64> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![13, 14, 15, 16, 17]);
    // Near the start history runs out before: the rest comes after.
    let (_, page) = around("around=1&limit=4").await;
    let seqs: Vec<i64> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![1, 2, 3, 4]);
    let (_, page) = around("around=30&limit=4").await;
    let seqs: Vec<i64> = page["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![27, 28, 29, 30]);
    assert_eq!(around("around=3&before=4").await.0, 400);
    assert_eq!(around("around=-1").await.0, 400);

    // The newest page (cached) and an older page (the table) agree on the
    // current state after an edit, a reaction and a deletion.
    send_only(
        app.client
            .patch(message_url(&app, "long", 30))
            .json(&json!({"text": "m30!"})),
    )
    .await;
    send_only(app.client.put(reaction_url(&app, "long", 29, "👍"))).await;
    send_only(app.client.delete(message_url(&app, "long", 28))).await;
    for query in ["limit=3", "before=31&limit=3"] {
        let (_, page) = around(query).await;
        let m = page["messages"].as_array().unwrap();
        assert_eq!(
            (m[0]["seq"].as_i64(), m[0]["text"].as_str()),
            (Some(30), Some("m30!")),
            "{query}"
        );
        assert!(m[0]["edited_at"].is_string());
        assert_eq!(m[1]["reactions"][0]["count"], 1, "{query}");
        assert_eq!(
            (m[2]["deleted"].as_bool(), m[2]["text"].as_str()),
            (Some(true), Some(""))
        );
    }
    app.stop().await;
}

/// The newest page is memoised once for every reader: each still sees
/// `me` on their own reactions only, as the table's page of the same
/// messages says, before and after a reaction is taken back.
async fn readers_of_one_cached_page_each_see_their_own_reactions(backend: Backend) {
    let app = spawn_app(backend).await;
    let bob = app.person("bob").await;
    let carol = app.person("carol").await;
    let mut seqs = Vec::new();
    for i in 1..=4 {
        seqs.push(
            app.send("fun", &format!("m{i}")).await["seq"]
                .as_i64()
                .unwrap(),
        );
    }
    let react =
        |c: &reqwest::Client, seq: i64, emoji: &str| c.put(reaction_url(&app, "fun", seq, emoji));
    assert_eq!(status(react(&app.client, seqs[0], "👍")).await, 204);
    assert_eq!(status(react(&bob.client, seqs[0], "👍")).await, 204);
    assert_eq!(status(react(&bob.client, seqs[1], "🎉")).await, 204);
    assert_eq!(status(react(&carol.client, seqs[3], "👀")).await, 204);

    // (reader, then for m1..m4 the `me` of each reaction).
    let check = |expected: Vec<(&'static str, Vec<Vec<bool>>)>| {
        let app = &app;
        let clients = [
            ("ada", &app.client),
            ("bob", &bob.client),
            ("carol", &carol.client),
        ];
        async move {
            let head = last_seq(app, &app.client, "fun").await;
            for (who, me) in expected {
                let client = clients.iter().find(|(n, _)| *n == who).unwrap().1;
                // The page's messages; `as_of` left out: a cached message
                // carries the last event applied to it, the table's the head.
                let get = |path: String| async move {
                    let body: Value = client
                        .get(app.url(&path))
                        .send()
                        .await
                        .unwrap()
                        .json()
                        .await
                        .unwrap();
                    let mut messages = body["messages"].as_array().unwrap().clone();
                    for m in &mut messages {
                        m.as_object_mut().unwrap().remove("as_of");
                    }
                    Value::Array(messages)
                };
                // Twice from the cache (the second read is the memoised body),
                // once from the table.
                let cached = get("/api/v1/rooms/fun/messages?limit=4".into()).await;
                assert_eq!(
                    get("/api/v1/rooms/fun/messages?limit=4".into()).await,
                    cached,
                    "{who}"
                );
                let table = get(format!(
                    "/api/v1/rooms/fun/messages?before={}&limit=4",
                    head + 1
                ))
                .await;
                assert_eq!(cached, table, "{who}: cached and table pages agree");
                let seen: Vec<Vec<bool>> = cached
                    .as_array()
                    .unwrap()
                    .iter()
                    .rev()
                    .map(|m| {
                        m["reactions"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|r| r["me"].as_bool().unwrap())
                            .collect()
                    })
                    .collect();
                assert_eq!(seen, me, "{who}");
            }
        }
    };
    check(vec![
        ("ada", vec![vec![true], vec![false], vec![], vec![false]]),
        ("bob", vec![vec![true], vec![true], vec![], vec![false]]),
        ("carol", vec![vec![false], vec![false], vec![], vec![true]]),
    ])
    .await;
    assert_eq!(
        status(bob.client.delete(reaction_url(&app, "fun", seqs[0], "👍"))).await,
        204
    );
    check(vec![
        ("bob", vec![vec![false], vec![true], vec![], vec![false]]),
        ("ada", vec![vec![true], vec![false], vec![], vec![false]]),
        ("carol", vec![vec![false], vec![false], vec![], vec![true]]),
    ])
    .await;
    app.stop().await;
}

/// Applies a stream frame to a client's copy of the room, the way a client
/// would: a change applies only to a message whose `as_of` is before it
/// (DESIGN §5b), so applying a frame twice, or a replayed change that the
/// message's state already holds, is harmless. Returns the frame's seq.
fn apply(state: &mut Vec<Value>, frame: &Value) -> Option<i64> {
    let seq = frame["seq"].as_i64();
    if frame["type"] == "message" {
        let m = frame["message"].clone();
        let seq = m["seq"].as_i64();
        match state.iter().position(|x| x["seq"] == m["seq"]) {
            Some(i) => state[i] = m,
            None => state.push(m),
        }
        return seq;
    }
    let Some(m) = state.iter_mut().find(|m| m["seq"] == frame["target"]) else {
        return seq;
    };
    if m["as_of"].as_i64() >= seq {
        return seq;
    }
    m["as_of"] = json!(seq);
    match frame["type"].as_str()? {
        "edit" if m["deleted"] != true => {
            m["text"] = frame["text"].clone();
            m["edited_at"] = frame["edited_at"].clone();
            m["mentions"] = frame["mentions"].clone();
        }
        "delete" => {
            m["deleted"] = json!(true);
            m["text"] = json!("");
            m["reactions"] = json!([]);
            m["mentions"] = json!([]);
        }
        "reaction" if m["deleted"] != true => {
            let step = if frame["on"] == true { 1 } else { -1 };
            let reactions = m["reactions"].as_array_mut()?;
            match reactions.iter().position(|r| r["emoji"] == frame["emoji"]) {
                Some(i) => {
                    let count = reactions[i]["count"].as_i64().unwrap_or(0) + step;
                    if count <= 0 {
                        reactions.remove(i);
                    } else {
                        reactions[i]["count"] = json!(count);
                    }
                }
                None if step > 0 => {
                    reactions.push(json!({"emoji": frame["emoji"], "count": 1, "me": false}))
                }
                None => {}
            }
        }
        _ => {}
    }
    seq
}

/// Each message's seq with its reactions as `(emoji, count)`.
fn reaction_counts(messages: &[Value]) -> Vec<(i64, Vec<(String, i64)>)> {
    messages
        .iter()
        .map(|m| {
            let counts = m["reactions"]
                .as_array()
                .map(|rs| {
                    rs.iter()
                        .map(|r| {
                            let emoji = r["emoji"].as_str().unwrap_or_default().to_owned();
                            (emoji, r["count"].as_i64().unwrap_or(0))
                        })
                        .collect()
                })
                .unwrap_or_default();
            (m["seq"].as_i64().unwrap_or(0), counts)
        })
        .collect()
}

async fn a_replayed_message_and_its_replayed_reactions_count_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let grace = app.person("grace").await;
    app.send("react", "first").await;
    send_only(app.client.put(reaction_url(&app, "react", 1, "👍"))).await;
    send_only(grace.client.put(reaction_url(&app, "react", 1, "👍"))).await;
    send_only(app.client.put(reaction_url(&app, "react", 1, "🎉"))).await;
    send_only(app.client.delete(reaction_url(&app, "react", 1, "🎉"))).await;

    // A page is as of the room's head: the four reactions are in it.
    let page = newest(&app, &app.client, "react").await;
    assert_eq!(page[0]["as_of"], 5, "the page's state includes seqs 2-5");
    assert_eq!(reaction_counts(&page), vec![(1, vec![("👍".into(), 2)])]);

    // A stream from the start replays the message as stored now, then the
    // four reaction events: a client that applies them by `as_of` ends
    // with the table's counts, not 👍 4.
    let mut ws = connect_ws(&app.ws_url("/api/v1/rooms/react/stream?since=0")).await;
    let frames = read_events_until(&mut ws, 5).await;
    let kinds: Vec<&str> = frames.iter().filter_map(|f| f["type"].as_str()).collect();
    assert_eq!(
        kinds,
        vec!["message", "reaction", "reaction", "reaction", "reaction"]
    );
    assert_eq!(frames[0]["message"]["as_of"], 5);
    let mut state = Vec::new();
    for frame in &frames {
        apply(&mut state, frame);
    }
    assert_eq!(reaction_counts(&state), reaction_counts(&page));

    // A live change after the snapshot applies.
    send_only(grace.client.put(reaction_url(&app, "react", 1, "🎉"))).await;
    let caught_up = next_frame(&mut ws).await;
    assert_eq!(caught_up["type"], "caught_up");
    let live = next_frame(&mut ws).await;
    assert_eq!(apply(&mut state, &live), Some(6));
    assert_eq!(
        reaction_counts(&state),
        vec![(1, vec![("👍".into(), 2), ("🎉".into(), 1)])]
    );
    let table = newest(&app, &app.client, "react").await;
    assert_eq!(reaction_counts(&state), reaction_counts(&table));
    assert_eq!(table[0]["as_of"], 6);
    app.stop().await;
}

async fn read_events_until(ws: &mut Ws, last: i64) -> Vec<Value> {
    let mut frames = Vec::new();
    loop {
        let frame = next_frame(ws).await;
        let seq = frame["seq"].as_i64().or(frame["message"]["seq"].as_i64());
        let done = frame["type"] != "caught_up" && seq == Some(last);
        frames.push(frame);
        if done {
            return frames;
        }
    }
}

async fn a_stream_resuming_after_changes_applies_each_event_once_in_order(backend: Backend) {
    let app = spawn_app(backend).await;
    for i in 1..=5 {
        app.send("away", &format!("m{i}")).await;
    }
    // The client saw everything up to 5, then went away.
    let mut state = newest(&app, &app.client, "away").await;
    state.reverse();
    for (seq, text) in [(1, "one"), (3, "three")] {
        send_only(
            app.client
                .patch(message_url(&app, "away", seq))
                .json(&json!({"text": text})),
        )
        .await;
    }
    send_only(app.client.put(reaction_url(&app, "away", 2, "👍"))).await;
    send_only(app.client.delete(message_url(&app, "away", 4))).await;
    app.send("away", "m-new").await;
    send_only(
        app.client
            .patch(message_url(&app, "away", 3))
            .json(&json!({"text": "three again"})),
    )
    .await;
    let head = last_seq(&app, &app.client, "away").await;
    assert_eq!(head, 11, "5 messages, 5 changes and one more message");

    let mut ws = connect_ws(&app.ws_url("/api/v1/rooms/away/stream?since=5")).await;
    let frames = read_events_until(&mut ws, head).await;
    let seqs: Vec<i64> = frames
        .iter()
        .filter_map(|f| f["seq"].as_i64().or(f["message"]["seq"].as_i64()))
        .collect();
    assert_eq!(
        seqs,
        (6..=11).collect::<Vec<_>>(),
        "each event once, in order"
    );
    let kinds: Vec<&str> = frames.iter().map(|f| f["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        vec!["edit", "edit", "reaction", "delete", "message", "edit"]
    );
    assert_eq!(frames[2]["emoji"], "👍");
    assert_eq!(frames[2]["on"], true);
    for frame in &frames {
        apply(&mut state, frame);
        apply(&mut state, frame); // twice is harmless
    }
    let caught_up = next_frame(&mut ws).await;
    assert_eq!(caught_up["type"], "caught_up");
    assert_eq!(
        caught_up["seq"], head,
        "caught_up carries the last event seq"
    );

    let table = {
        let mut page = newest(&app, &app.client, "away").await;
        page.reverse();
        page
    };
    let texts = |v: &[Value]| -> Vec<(i64, String, bool)> {
        v.iter()
            .map(|m| {
                (
                    m["seq"].as_i64().unwrap(),
                    m["text"].as_str().unwrap().to_owned(),
                    m["deleted"].as_bool().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(
        texts(&state),
        texts(&table),
        "the client ends where the table is"
    );
    assert_eq!(reaction_counts(&state), reaction_counts(&table));

    // Live: a change made now arrives as its frame, and over SSE too.
    send_only(app.client.put(reaction_url(&app, "away", 1, "🎉"))).await;
    let live = next_frame(&mut ws).await;
    assert_eq!(
        (live["type"].as_str(), live["seq"].as_i64()),
        (Some("reaction"), Some(12))
    );
    let sse = app
        .client
        .get(app.url("/api/v1/rooms/away/stream?since=10"))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let mut sse = crate::helpers::Sse::new(sse);
    let first = sse.next_event().await.unwrap();
    assert_eq!(
        (first.event.as_deref(), first.id.as_deref()),
        (Some("edit"), Some("11"))
    );
    let second = sse.next_event().await.unwrap();
    assert_eq!(
        (second.event.as_deref(), second.id.as_deref()),
        (Some("reaction"), Some("12"))
    );
    let data: Value = serde_json::from_str(&second.data).unwrap();
    assert_eq!(
        (data["type"].as_str(), data["target"].as_i64()),
        (Some("reaction"), Some(1))
    );
    app.stop().await;
}

async fn read_markers_move_forward_unless_marked_unread_and_drive_unread_counts(backend: Backend) {
    let app = spawn_app(backend).await;
    let bob = app.person("bob").await;
    for i in 1..=4 {
        let r = bob
            .client
            .post(app.url("/api/v1/rooms/news/messages"))
            .json(&json!({"text": format!("n{i} @tester")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    app.send("news", "my own").await; // not unread for its author
    let room = |rooms: &Value| {
        rooms["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "news")
            .cloned()
            .unwrap()
    };
    let (_, rooms) = app.get_json("/api/v1/rooms").await;
    let news = room(&rooms);
    assert_eq!(
        (
            news["read_seq"].as_i64(),
            news["unread"].as_i64(),
            news["mentions"].as_i64()
        ),
        (Some(0), Some(4), Some(4))
    );

    let read = |seq: Value| {
        app.client
            .put(app.url("/api/v1/rooms/news/read"))
            .json(&seq)
    };
    assert_eq!(status(read(json!({"seq": 2}))).await, 204);
    assert_eq!(
        status(read(json!({"seq": 1}))).await,
        204,
        "backwards is ignored"
    );
    let (_, rooms) = app.get_json("/api/v1/rooms").await;
    assert_eq!(
        (
            room(&rooms)["read_seq"].as_i64(),
            room(&rooms)["unread"].as_i64()
        ),
        (Some(2), Some(2))
    );
    assert_eq!(
        status(read(json!({"seq": 1, "mark_unread": true}))).await,
        204
    );
    let (_, rooms) = app.get_json("/api/v1/rooms").await;
    assert_eq!(
        (
            room(&rooms)["read_seq"].as_i64(),
            room(&rooms)["unread"].as_i64()
        ),
        (Some(1), Some(3))
    );
    // A deleted message is not unread any more.
    send_only(bob.client.delete(message_url(&app, "news", 4))).await;
    let (_, rooms) = app.get_json("/api/v1/rooms").await;
    assert_eq!(room(&rooms)["unread"], 2);

    // Bad markers: past the end, negative, not a number, unknown room.
    let head = last_seq(&app, &app.client, "news").await;
    assert_eq!(status(read(json!({"seq": head + 1}))).await, 400);
    assert_eq!(status(read(json!({"seq": -1}))).await, 400);
    assert_eq!(status(read(json!({"seq": "x"}))).await, 400);
    assert_eq!(
        status(
            app.client
                .put(app.url("/api/v1/rooms/nowhere/read"))
                .json(&json!({"seq": 0}))
        )
        .await,
        404
    );
    app.stop().await;
}

async fn send_text(ws: &mut Ws, frame: Value) {
    ws.send(WsMessage::Text(frame.to_string().into()))
        .await
        .unwrap();
}

async fn the_multiplexed_stream_follows_many_rooms_and_refuses_with_error_frames(backend: Backend) {
    let app = spawn_app_with(backend, &["--max-subscriptions", "2"]).await;
    let bob = app.person("bob").await;
    app.send("one", "1a").await;
    app.send("two", "2a").await;
    app.client
        .post(app.url("/api/v1/rooms"))
        .json(&json!({"name": "hidden", "visibility": "private"}))
        .send()
        .await
        .unwrap();

    let url = app.ws_url("/api/v1/stream");
    let mut ws = try_connect_ws(&url, Some(&bob.cookie), None).await.unwrap();
    send_text(
        &mut ws,
        json!({"type": "subscribe", "room": "one", "since": 0}),
    )
    .await;
    let frame = next_frame(&mut ws).await;
    assert_eq!(
        (frame["type"].as_str(), frame["room"].as_str()),
        (Some("message"), Some("one"))
    );
    assert_eq!(frame["message"]["text"], "1a");
    let frame = next_frame(&mut ws).await;
    assert_eq!(frame, json!({"type": "caught_up", "room": "one", "seq": 1}));
    send_text(&mut ws, json!({"type": "subscribe", "room": "two"})).await;
    assert_eq!(
        next_frame(&mut ws).await,
        json!({"type": "caught_up", "room": "two", "seq": 1})
    );

    // Refusals are error frames; the stream stays open.
    ws.send(WsMessage::Text("not json".into())).await.unwrap();
    assert_eq!(
        next_frame(&mut ws).await,
        json!({"type": "error", "code": "invalid_frame"})
    );
    let many: Vec<String> = (0..10_000).map(|i| format!("r{i}")).collect();
    send_text(&mut ws, json!({"type": "subscribe", "room": many})).await;
    assert_eq!(next_frame(&mut ws).await["code"], "invalid_frame");
    send_text(&mut ws, json!({"type": "subscribe", "room": "Bad Name"})).await;
    assert_eq!(next_frame(&mut ws).await["code"], "invalid_room");
    send_text(&mut ws, json!({"type": "subscribe", "room": "three"})).await;
    assert_eq!(
        next_frame(&mut ws).await,
        json!({"type": "error", "room": "three", "code": "too_many_subscriptions"})
    );
    send_text(&mut ws, json!({"type": "unsubscribe", "room": "two"})).await;
    send_text(&mut ws, json!({"type": "subscribe", "room": "hidden"})).await;
    assert_eq!(
        next_frame(&mut ws).await,
        json!({"type": "error", "room": "hidden", "code": "not_found"})
    );

    // Live frames carry their room; the unsubscribed room is silent.
    app.send("two", "2b").await;
    let sent = app.send("one", "1b").await;
    let frame = next_frame(&mut ws).await;
    assert_eq!(
        (frame["room"].as_str(), frame["message"]["seq"].as_i64()),
        (Some("one"), sent["seq"].as_i64())
    );
    send_only(
        app.client
            .patch(message_url(&app, "one", 2))
            .json(&json!({"text": "1b!"})),
    )
    .await;
    let frame = next_frame(&mut ws).await;
    assert_eq!(
        (
            frame["type"].as_str(),
            frame["room"].as_str(),
            frame["text"].as_str()
        ),
        (Some("edit"), Some("one"), Some("1b!"))
    );

    // The user's own frames: a marker moved in another session, and a room
    // opened to them.
    let other = client_with_cookie(&sign_up(&app.address, "bob", "bob").await);
    assert_eq!(
        status(
            other
                .put(app.url("/api/v1/rooms/one/read"))
                .json(&json!({"seq": 3}))
        )
        .await,
        204
    );
    assert_eq!(
        next_frame(&mut ws).await,
        json!({"type": "read", "room": "one", "read_seq": 3})
    );
    assert_eq!(
        status(app.client.put(app.url("/api/v1/rooms/hidden/members/bob"))).await,
        204
    );
    // (On PostgreSQL the member change is applied here and heard back from
    // the other replicas' channel: a second `rooms_changed` is harmless.)
    assert_eq!(next_frame(&mut ws).await, json!({"type": "rooms_changed"}));
    let _ = ws.close(None).await;
    app.stop().await;
}

async fn the_seed_api_shows_current_texts_and_leaves_deleted_messages_out(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut seqs = Vec::new();
    for i in 1..=4 {
        seqs.push(
            app.send("general", &format!("g{i}")).await["seq"]
                .as_i64()
                .unwrap(),
        );
    }
    send_only(
        app.client
            .patch(message_url(&app, "general", seqs[0]))
            .json(&json!({"text": "g1 fixed"})),
    )
    .await;
    send_only(app.client.delete(message_url(&app, "general", seqs[2]))).await;
    let (_, body) = app.get_json("/chat").await;
    let texts: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message"].as_str().unwrap())
        .collect();
    assert_eq!(texts, vec!["g4", "g2", "g1 fixed"]);
    // size counts messages shown: the deleted one does not take a place.
    let (_, body) = app.get_json("/chat?size=2").await;
    let texts: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message"].as_str().unwrap())
        .collect();
    assert_eq!(texts, vec!["g4", "g2"]);
    app.stop().await;
}

/// Two replicas on one PostgreSQL: a client away during edits, deletions
/// and reactions made on A resumes on B and applies each once, in order;
/// read markers moved on A reach the user's multiplexed stream on B; unread
/// counts agree between two sessions of one user on the two replicas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_on_one_replica_resume_and_count_the_same_on_another() {
    let db = TestDb::new(Backend::Postgres).await;
    let a = ServerProcess::start(&db.url, &[]).await;
    let b = ServerProcess::start(&db.url, &[]).await;
    let post = |text: &str| {
        a.client
            .post(a.url("/api/v1/rooms/span/messages"))
            .json(&json!({"text": text}))
    };
    for i in 1..=3 {
        assert_eq!(status(post(&format!("s{i}"))).await, 201);
    }
    let mut live = try_connect_ws(&b.ws_url("/api/v1/stream"), a.cookie.as_deref(), None)
        .await
        .unwrap();
    send_text(
        &mut live,
        json!({"type": "subscribe", "room": "span", "since": 3}),
    )
    .await;
    assert_eq!(next_frame(&mut live).await["type"], "caught_up");

    let url = |path: &str| a.url(path);
    send_only(
        a.client
            .patch(url("/api/v1/rooms/span/messages/1"))
            .json(&json!({"text": "S1"})),
    )
    .await;
    send_only(
        a.client
            .put(url("/api/v1/rooms/span/messages/2/reactions/%F0%9F%91%8D")),
    )
    .await;
    send_only(a.client.delete(url("/api/v1/rooms/span/messages/3"))).await;
    // B's live stream hears them in order.
    let kinds: Vec<(String, i64)> = {
        let mut out = Vec::new();
        while out.len() < 3 {
            let f = next_frame(&mut live).await;
            out.push((
                f["type"].as_str().unwrap().to_owned(),
                f["seq"].as_i64().unwrap(),
            ));
        }
        out
    };
    assert_eq!(
        kinds,
        vec![
            ("edit".into(), 4),
            ("reaction".into(), 5),
            ("delete".into(), 6)
        ]
    );
    // A client that was away resumes on B and gets the same.
    let mut away = try_connect_ws(
        &b.ws_url("/api/v1/rooms/span/stream?since=3"),
        a.cookie.as_deref(),
        None,
    )
    .await
    .unwrap();
    let mut seqs = Vec::new();
    loop {
        let f = next_frame(&mut away).await;
        if f["type"] == "caught_up" {
            assert_eq!(f["seq"], 6);
            break;
        }
        seqs.push(f["seq"].as_i64().unwrap());
    }
    assert_eq!(seqs, vec![4, 5, 6]);
    // B's newest page (its read cache) shows the current state.
    let page: Value = a
        .client
        .get(b.url("/api/v1/rooms/span/messages"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let m = page["messages"].as_array().unwrap();
    assert_eq!(
        (m[0]["deleted"].as_bool(), m[2]["text"].as_str()),
        (Some(true), Some("S1"))
    );

    // Unread counts: bob sends a burst; ada reads on A; both replicas and
    // both of her sessions agree.
    let bob = client_with_cookie(&sign_up(&a.url(""), "bob", "bob").await);
    for i in 0..20 {
        let r = bob
            .post(b.url("/api/v1/rooms/span/messages"))
            .json(&json!({"text": format!("b{i}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    assert_eq!(
        status(
            a.client
                .put(a.url("/api/v1/rooms/span/read"))
                .json(&json!({"seq": 16}))
        )
        .await,
        204
    );
    let read = next_frame(&mut live).await;
    let read = if read["type"] == "read" {
        read
    } else {
        // Bob's messages arrive first on the live stream.
        loop {
            let f = next_frame(&mut live).await;
            if f["type"] == "read" {
                break f;
            }
        }
    };
    assert_eq!(
        read,
        json!({"type": "read", "room": "span", "read_seq": 16})
    );
    let second_session = client_with_cookie(&sign_up(&a.url(""), "tester", "tester").await);
    let unread = |client: reqwest::Client, base: String| async move {
        let rooms: Value = client
            .get(format!("{base}/api/v1/rooms"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        rooms["rooms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "span")
            .map(|r| (r["read_seq"].as_i64(), r["unread"].as_i64()))
            .unwrap()
    };
    let on_a = unread(a.client.clone(), a.url("")).await;
    let on_b = unread(second_session, b.url("")).await;
    assert_eq!(on_a, on_b);
    assert_eq!(
        on_a,
        (Some(16), Some(10)),
        "26 events, 20 of them bob's, 10 after 16"
    );
    let _ = live.close(None).await;
    let _ = away.close(None).await;
}
