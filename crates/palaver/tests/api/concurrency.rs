//! Group commit under concurrency: gapless seqs, each message once.

use std::collections::HashSet;

use serde_json::Value;

use crate::both_backends;
use crate::fault_helpers::{metric_sum, metrics};
use crate::helpers::{message, spawn_app, Backend, TestApp};

both_backends!(fifty_senders_times_twenty_get_seqs_1_to_1000_each_stored_once);

async fn send_all(app: &TestApp, round: &str) -> Vec<Value> {
    let senders = (0..50).map(|sender| async move {
        let mut stored = Vec::new();
        for i in 0..20 {
            let id = format!("s{sender}-m{i}");
            let response = app
                .post_message(
                    "busy",
                    &message(
                        &format!("sender{sender}"),
                        &format!("{round} {id}"),
                        Some(&id),
                    ),
                )
                .await;
            assert_eq!(response.status(), 201);
            stored.push(response.json::<Value>().await.unwrap());
        }
        stored
    });
    futures::future::join_all(senders)
        .await
        .into_iter()
        .flatten()
        .collect()
}

async fn fifty_senders_times_twenty_get_seqs_1_to_1000_each_stored_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = send_all(&app, "first").await;
    let mut seqs: Vec<i64> = first.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    seqs.sort();
    assert_eq!(seqs, (1..=1000).collect::<Vec<_>>());

    let stored = app.all_messages("busy").await;
    assert_eq!(stored.len(), 1000);
    let ids: HashSet<&str> = stored
        .iter()
        .map(|m| m["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 1000, "each client_id stored once");
    let stored_seqs: Vec<i64> = stored.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    assert_eq!(stored_seqs, (1..=1000).collect::<Vec<_>>());

    // The same sends again: every answer is the stored message, nothing new.
    let again = send_all(&app, "second").await;
    for message in &again {
        assert!(
            message["text"].as_str().unwrap().starts_with("first "),
            "{message}"
        );
    }
    assert_eq!(app.all_messages("busy").await.len(), 1000);
    let (_, rooms) = app.get_json("/api/v1/rooms").await;
    let busy = rooms["rooms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "busy")
        .unwrap();
    assert_eq!(busy["last_seq"], 1000);

    // Group commit happened: fewer transactions than messages.
    let page = metrics(&app.client, &app.address).await;
    let count = metric_sum(&page, "palaver_group_commit_batch_size_count").unwrap_or(0.0);
    assert!(count > 0.0, "{page}");
    app.stop().await;
}
