//! People search (DESIGN §5d).

use serde_json::Value;

use crate::both_backends;
use crate::helpers::{client_with_cookie, sign_up, spawn_app, Backend};

fn usernames(body: &Value) -> Vec<String> {
    body["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["username"].as_str().expect("username").to_owned())
        .collect()
}

async fn people_are_found_by_prefix_and_suspended_users_are_left_out(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = client_with_cookie(&sign_up(&app.address, "adalove", "Ada Lovelace").await);
    sign_up(&app.address, "grace", "Grace Hopper").await;
    sign_up(&app.address, "adams", "Zed").await;
    sign_up(&app.address, "zoe", "Adaline").await;
    let find = |q: &str| {
        let (client, url) = (ada.clone(), app.url(&format!("/api/v1/users?{q}")));
        async move {
            let r = client.get(url).send().await.expect("request");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, body) = find("query=ADA").await;
    assert_eq!(status, 200);
    assert_eq!(usernames(&body), ["adalove", "adams", "zoe"]);
    assert!(body["users"][0].get("password_hash").is_none());
    assert_eq!(usernames(&find("query=grac").await.1), ["grace"]);
    assert_eq!(
        usernames(&find("query=hopper").await.1),
        Vec::<String>::new()
    );
    assert_eq!(usernames(&find("query=a%25").await.1), Vec::<String>::new());
    assert_eq!(usernames(&find("query=ada&limit=1").await.1), ["adalove"]);

    let suspended = app
        .client
        .post(app.url("/api/v1/users/adams/suspend"))
        .send()
        .await
        .expect("suspend");
    assert_eq!(suspended.status(), 204);
    assert_eq!(usernames(&find("query=ada").await.1), ["adalove", "zoe"]);

    for bad in ["limit=0", "limit=51", "limit=x", "nope=1"] {
        assert_eq!(find(bad).await.0, 400, "{bad}");
    }
    assert_eq!(find(&format!("query={}", "a".repeat(65))).await.0, 400);
    let anonymous = app
        .anonymous
        .get(app.url("/api/v1/users?query=a"))
        .send()
        .await
        .expect("request");
    assert_eq!(anonymous.status(), 401);
    app.stop().await;
}

both_backends!(people_are_found_by_prefix_and_suspended_users_are_left_out);
