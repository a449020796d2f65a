//! The write path's batch, driven directly against each store: one
//! transaction mixing sends and every kind of change gives the same
//! outcomes and events on SQLite (statement by statement) and PostgreSQL
//! (sends in one statement, changes in one call of
//! `palaver_apply_changes`, with and without the bus's notification).

use std::sync::Arc;

use palaver::domain::{Author, Change, Emoji, MessageText, NewMessage, RoomEvent, RoomName};
use palaver::store::{Applied, Entry, MessageStore, NotifySql, Outcome, Refused};

use crate::both_backends;
use crate::helpers::{Backend, TestDb};

both_backends!(one_batch_of_sends_and_changes_applies_each_in_order_with_gapless_seqs);

fn send(room: &RoomName, user: &str, text: &str) -> Entry {
    (
        room.clone(),
        Change::Send(NewMessage {
            author: Author::parse(user).expect("author"),
            author_id: Some(user.to_owned()),
            text: MessageText::parse(text, 4000).expect("text"),
            client_id: None,
            client_ip: "127.0.0.1".into(),
            reply_to: None,
            mentions: Vec::new(),
            files: Vec::new(),
        }),
    )
}

fn react(room: &RoomName, user: &str, target: i64, emoji: &str, on: bool) -> Entry {
    (
        room.clone(),
        Change::React {
            target,
            user_id: user.to_owned(),
            emoji: Emoji::parse(emoji).expect("emoji"),
            on,
        },
    )
}

fn edit(room: &RoomName, user: &str, target: i64, text: &str) -> Entry {
    (
        room.clone(),
        Change::Edit {
            target,
            user_id: user.to_owned(),
            text: MessageText::parse(text, 4000).expect("text"),
            mentions: vec!["bob".to_owned()],
        },
    )
}

fn delete(room: &RoomName, user: &str, target: i64, moderator: bool) -> Entry {
    (
        room.clone(),
        Change::Delete {
            target,
            user_id: user.to_owned(),
            moderator,
        },
    )
}

/// An outcome as a short word and the seq it took, for comparison.
fn shape(outcome: &Outcome) -> (String, Option<i64>) {
    match outcome {
        Ok(Applied::Sent(a)) => ("sent".into(), Some(a.message.seq)),
        Ok(Applied::Changed(Some(event))) => (
            match event.as_ref() {
                RoomEvent::Message(_) => "message",
                RoomEvent::Edit(_) => "edit",
                RoomEvent::Delete(_) => "delete",
                RoomEvent::Reaction(_) => "reaction",
            }
            .into(),
            Some(event.seq()),
        ),
        Ok(Applied::Changed(None)) => ("unchanged".into(), None),
        Err(Refused::NoMessage) => ("no_message".into(), None),
        Err(Refused::Forbidden) => ("forbidden".into(), None),
        Err(Refused::Deleted) => ("deleted".into(), None),
        Err(Refused::TooManyReactions) => ("too_many".into(), None),
    }
}

async fn one_batch_of_sends_and_changes_applies_each_in_order_with_gapless_seqs(backend: Backend) {
    let db = TestDb::new(backend).await;
    let config =
        palaver::config::Config::from_args(["palaver", "--database-url", &db.url]).expect("config");
    let store: Arc<dyn MessageStore> = palaver::store::connect(&config).await.expect("store");
    let now = time::OffsetDateTime::now_utc();
    // PostgreSQL runs the batch with the bus's notification in it, as a
    // server on the PostgreSQL bus does; SQLite has none.
    let notify = matches!(backend, Backend::Postgres).then_some(NotifySql {
        channel: palaver::bus::postgres::CHANNEL,
        payloads: palaver::bus::postgres::PAYLOADS_SQL,
    });
    let room = RoomName::parse("mixed").expect("room");
    let first = store
        .append_batch(
            &[send(&room, "ada", "one"), send(&room, "bob", "two")],
            now,
            notify,
        )
        .await
        .expect("first batch");
    assert_eq!(
        first.iter().map(shape).collect::<Vec<_>>(),
        [("sent".into(), Some(1)), ("sent".into(), Some(2))]
    );

    let batch = [
        send(&room, "ada", "three"),
        react(&room, "bob", 1, "👍", true),
        react(&room, "bob", 1, "👍", true),
        edit(&room, "ada", 1, "one, edited"),
        edit(&room, "ada", 2, "not mine"),
        delete(&room, "ada", 2, false),
        delete(&room, "bob", 2, false),
        react(&room, "ada", 2, "👍", true),
        edit(&room, "ada", 99, "nothing there"),
        // The message sent earlier in this very batch.
        react(&room, "ada", 3, "🎉", true),
        react(&room, "bob", 1, "❤️", false),
        delete(&room, "carol", 3, true),
        send(&room, "bob", "four"),
    ];
    let outcomes = store
        .append_batch(&batch, now, notify)
        .await
        .expect("mixed batch");
    let expected: Vec<(String, Option<i64>)> = [
        ("sent", Some(3)),
        ("reaction", Some(5)),
        ("unchanged", None),
        ("edit", Some(6)),
        ("forbidden", None),
        ("forbidden", None),
        ("delete", Some(7)),
        ("deleted", None),
        ("no_message", None),
        ("reaction", Some(8)),
        ("unchanged", None),
        ("delete", Some(9)),
        ("sent", Some(4)),
    ]
    .into_iter()
    .map(|(kind, seq)| (kind.to_owned(), seq))
    .collect();
    assert_eq!(outcomes.iter().map(shape).collect::<Vec<_>>(), expected);

    // The table holds the same events, gapless, and the current state.
    let events = store.range(&room, 1, 9).await.expect("range");
    assert_eq!(
        events.iter().map(|e| e.seq()).collect::<Vec<_>>(),
        (1..=9).collect::<Vec<_>>()
    );
    let page = store
        .page(&room, palaver::store::Cursor::Latest, 10)
        .await
        .expect("page")
        .expect("room");
    let by_seq = |seq: i64| {
        page.messages
            .iter()
            .find(|m| m.seq == seq)
            .unwrap_or_else(|| panic!("message {seq} on the page"))
    };
    assert_eq!(by_seq(1).text, "one, edited");
    assert!(by_seq(1).edited_at.is_some());
    assert_eq!(by_seq(1).reactions.len(), 1, "bob's 👍 once");
    assert!(by_seq(2).deleted && by_seq(2).text.is_empty());
    assert!(
        by_seq(3).deleted,
        "deleted by a moderator in the same batch"
    );
    assert!(
        by_seq(3).reactions.is_empty(),
        "its reaction erased with it"
    );
    assert_eq!(by_seq(4).text, "four");

    // The 21st distinct emoji on one message is refused; the 20th is not.
    let mut many = Vec::new();
    for (i, code) in (0x1F600u32..0x1F615).enumerate() {
        let emoji = char::from_u32(code).expect("emoji").to_string();
        let user = if i % 2 == 0 { "ada" } else { "bob" };
        many.push(react(&room, user, 4, &emoji, true));
    }
    let outcomes = store
        .append_batch(&many, now, notify)
        .await
        .expect("emoji batch");
    let kinds: Vec<String> = outcomes.iter().map(|o| shape(o).0).collect();
    assert_eq!(kinds[..20], vec!["reaction".to_owned(); 20][..]);
    assert_eq!(kinds[20], "too_many");
    assert_eq!(
        outcomes.iter().filter_map(|o| shape(o).1).max(),
        Some(29),
        "20 reactions numbered 10–29, the refusal took none"
    );
    drop(db);
}
