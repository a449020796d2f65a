//! Profile and room endpoints of DESIGN §5a: display name, password change,
//! room topic, joining and leaving. Each status on both databases.

use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::{sign_up, spawn_app, Backend, TestApp, TEST_PASSWORD};

both_backends!(
    changing_the_display_name_shows_in_me_and_in_later_messages,
    changing_the_password_revokes_every_other_session,
    the_topic_is_set_by_the_owner_or_an_admin_only,
    members_join_public_rooms_and_leave_any_room_but_their_own_private_one,
);

async fn login(app: &TestApp, username: &str, password: &str) -> (u16, Option<String>) {
    let response = app
        .anonymous
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .expect("login");
    (
        response.status().as_u16(),
        crate::helpers::session_cookie(&response),
    )
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

async fn changing_the_display_name_shows_in_me_and_in_later_messages(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = sign_up(&app.address, "ada", "Ada").await;
    let (status, body) = app
        .call(
            &ada,
            "PATCH",
            "/api/v1/me",
            Some(json!({"display_name": "  Ada Lovelace "})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["display_name"], "Ada Lovelace");
    assert_eq!(body["user"]["username"], "ada");
    let (_, me) = app.call(&ada, "GET", "/api/v1/me", None).await;
    assert_eq!(me["user"]["display_name"], "Ada Lovelace");
    let (status, sent) = app
        .call(
            &ada,
            "POST",
            "/api/v1/rooms/dev/messages",
            Some(json!({"text": "hi"})),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(
        sent["author"], "Ada Lovelace",
        "later messages carry the new name"
    );

    for bad in [
        json!({"display_name": "   "}),
        json!({"display_name": "x".repeat(65)}),
        json!({"display_name": "a\u{7}b"}),
        json!({}),
    ] {
        let (status, body) = app
            .call(&ada, "PATCH", "/api/v1/me", Some(bad.clone()))
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (_, me) = app.call(&ada, "GET", "/api/v1/me", None).await;
    assert_eq!(
        me["user"]["display_name"], "Ada Lovelace",
        "nothing stored on a 400"
    );
    let response = app
        .anonymous
        .patch(app.url("/api/v1/me"))
        .json(&json!({"display_name": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    app.stop().await;
}

async fn changing_the_password_revokes_every_other_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = sign_up(&app.address, "bob", "Bob").await;
    let (status, second) = login(&app, "bob", TEST_PASSWORD).await;
    assert_eq!(status, 200);
    let second = second.expect("cookie");
    let new_password = "a-new-password-456";

    let (status, body) = app
        .call(
            &first,
            "POST",
            "/api/v1/me/password",
            Some(json!({"current_password": "wrong-password-0", "new_password": new_password})),
        )
        .await;
    assert_eq!((status, code(&body)), (401, "bad_credentials"), "{body}");
    let (status, body) = app
        .call(
            &first,
            "POST",
            "/api/v1/me/password",
            Some(json!({"current_password": TEST_PASSWORD, "new_password": "short"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        app.call(&second, "GET", "/api/v1/me", None).await.0,
        200,
        "refusals change nothing"
    );

    let (status, body) = app
        .call(
            &first,
            "POST",
            "/api/v1/me/password",
            Some(json!({"current_password": TEST_PASSWORD, "new_password": new_password})),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(
        app.call(&first, "GET", "/api/v1/me", None).await.0,
        200,
        "this session stays"
    );
    assert_eq!(
        app.call(&second, "GET", "/api/v1/me", None).await.0,
        401,
        "the other one is revoked"
    );
    assert_eq!(login(&app, "bob", TEST_PASSWORD).await.0, 401);
    assert_eq!(login(&app, "bob", new_password).await.0, 200);
    let response = app
        .anonymous
        .post(app.url("/api/v1/me/password"))
        .json(&json!({"current_password": new_password, "new_password": TEST_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    app.stop().await;
}

async fn the_topic_is_set_by_the_owner_or_an_admin_only(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.cookie.clone().expect("the default user is the admin");
    let owner = sign_up(&app.address, "owner", "Owner").await;
    let member = sign_up(&app.address, "member", "Member").await;
    let outsider = sign_up(&app.address, "outsider", "Outsider").await;
    let (status, _) = app
        .call(
            &owner,
            "POST",
            "/api/v1/rooms",
            Some(json!({"name": "secret", "visibility": "private"})),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(
        app.call(&owner, "PUT", "/api/v1/rooms/secret/members/member", None)
            .await
            .0,
        204
    );

    let topic = "t".repeat(250);
    let (status, body) = app
        .call(
            &owner,
            "PATCH",
            "/api/v1/rooms/secret",
            Some(json!({"topic": topic})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["room"]["topic"], topic.as_str());
    assert_eq!(body["room"]["name"], "secret");
    assert_eq!(body["room"]["visibility"], "private");
    let (status, body) = app
        .call(
            &owner,
            "PATCH",
            "/api/v1/rooms/secret",
            Some(json!({"topic": "t".repeat(251)})),
        )
        .await;
    assert_eq!((status, code(&body)), (400, "invalid_topic"));
    let (status, _) = app
        .call(
            &owner,
            "PATCH",
            "/api/v1/rooms/secret",
            Some(json!({"topic": "a\nb"})),
        )
        .await;
    assert_eq!(status, 400);
    let (status, body) = app
        .call(
            &member,
            "PATCH",
            "/api/v1/rooms/secret",
            Some(json!({"topic": "mine"})),
        )
        .await;
    assert_eq!((status, code(&body)), (403, "not_owner"));
    let (status, _) = app
        .call(
            &outsider,
            "PATCH",
            "/api/v1/rooms/secret",
            Some(json!({"topic": "mine"})),
        )
        .await;
    assert_eq!(status, 404, "a private room does not exist to a non-member");
    let (status, _) = app
        .call(
            &owner,
            "PATCH",
            "/api/v1/rooms/nowhere",
            Some(json!({"topic": "x"})),
        )
        .await;
    assert_eq!(status, 404);
    let (status, body) = app
        .call(
            &admin,
            "PATCH",
            "/api/v1/rooms/secret",
            Some(json!({"topic": " Reviews "})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["room"]["topic"], "Reviews");

    // A public room made by posting has no owner: members may not set its topic.
    app.send("open", "hello").await;
    let (status, _) = app
        .call(
            &member,
            "PATCH",
            "/api/v1/rooms/open",
            Some(json!({"topic": "x"})),
        )
        .await;
    assert_eq!(status, 403);
    let (status, body) = app
        .call(
            &admin,
            "PATCH",
            "/api/v1/rooms/open",
            Some(json!({"topic": ""})),
        )
        .await;
    assert_eq!((status, body["room"]["topic"].as_str()), (200, Some("")));
    let response = app
        .anonymous
        .patch(app.url("/api/v1/rooms/open"))
        .json(&json!({"topic": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    app.stop().await;
}

async fn member_names(app: &TestApp, cookie: &str, room: &str) -> Vec<String> {
    let (status, body) = app
        .call(
            cookie,
            "GET",
            &format!("/api/v1/rooms/{room}/members"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter_map(|m| m["username"].as_str().map(str::to_owned))
        .collect()
}

async fn members_join_public_rooms_and_leave_any_room_but_their_own_private_one(backend: Backend) {
    let app = spawn_app(backend).await;
    let owner = sign_up(&app.address, "owner", "Owner").await;
    let joiner = sign_up(&app.address, "joiner", "Joiner").await;
    assert_eq!(
        app.call(
            &owner,
            "POST",
            "/api/v1/rooms",
            Some(json!({"name": "lobby"}))
        )
        .await
        .0,
        201
    );
    assert_eq!(
        app.call(
            &owner,
            "POST",
            "/api/v1/rooms",
            Some(json!({"name": "secret", "visibility": "private"}))
        )
        .await
        .0,
        201
    );

    // Joining a public room: naming yourself (any spelling of your name).
    assert_eq!(
        app.call(&joiner, "PUT", "/api/v1/rooms/lobby/members/Joiner", None)
            .await
            .0,
        204
    );
    assert_eq!(
        app.call(&joiner, "PUT", "/api/v1/rooms/lobby/members/joiner", None)
            .await
            .0,
        204,
        "again: still 204"
    );
    assert_eq!(
        member_names(&app, &owner, "lobby").await,
        ["joiner", "owner"]
    );
    // Naming someone else is still the owner's call.
    let (status, body) = app
        .call(&joiner, "PUT", "/api/v1/rooms/lobby/members/tester", None)
        .await;
    assert_eq!((status, code(&body)), (403, "not_owner"));
    // A private room cannot be joined: it does not exist to a non-member.
    assert_eq!(
        app.call(&joiner, "PUT", "/api/v1/rooms/secret/members/joiner", None)
            .await
            .0,
        404
    );
    assert_eq!(
        app.call(&joiner, "PUT", "/api/v1/rooms/nowhere/members/joiner", None)
            .await
            .0,
        404
    );

    // Leaving.
    assert_eq!(
        app.call(
            &joiner,
            "DELETE",
            "/api/v1/rooms/lobby/members/joiner",
            None
        )
        .await
        .0,
        204
    );
    assert_eq!(member_names(&app, &owner, "lobby").await, ["owner"]);
    assert_eq!(
        app.call(&owner, "PUT", "/api/v1/rooms/secret/members/joiner", None)
            .await
            .0,
        204
    );
    assert_eq!(
        app.call(
            &joiner,
            "DELETE",
            "/api/v1/rooms/secret/members/joiner",
            None
        )
        .await
        .0,
        204
    );
    assert_eq!(
        app.call(&joiner, "GET", "/api/v1/rooms/secret/messages", None)
            .await
            .0,
        404,
        "gone once left"
    );
    let (status, body) = app
        .call(&owner, "DELETE", "/api/v1/rooms/secret/members/owner", None)
        .await;
    assert_eq!((status, code(&body)), (409, "owner_cannot_leave"));
    assert_eq!(member_names(&app, &owner, "secret").await, ["owner"]);
    // The owner of a public room may leave it.
    assert_eq!(
        app.call(&owner, "DELETE", "/api/v1/rooms/lobby/members/owner", None)
            .await
            .0,
        204
    );
    // Another member's removal is still the owner's call.
    assert_eq!(
        app.call(&joiner, "PUT", "/api/v1/rooms/lobby/members/joiner", None)
            .await
            .0,
        204
    );
    let other = sign_up(&app.address, "other", "Other").await;
    let (status, _) = app
        .call(&other, "DELETE", "/api/v1/rooms/lobby/members/joiner", None)
        .await;
    assert_eq!(status, 403);
    app.stop().await;
}
