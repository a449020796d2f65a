//! Room events in the store (DESIGN §5b, §5c): the current state of
//! messages in one query per page, the events of a seq range for replay and
//! repair, changes applied in the batch's transaction, read markers.
//!
//! A message's current state lives in its `messages` row (text, `edited_at`,
//! `deleted`, mentions, files) and in `reactions`; each change also leaves a
//! row in `room_events` numbered from the room's seq counter, which is what
//! a resuming stream replays.

use std::sync::Arc;

use time::OffsetDateTime;

use super::StoreError;
use crate::domain::{
    Change, DeleteEvent, EditEvent, FileRef, Message, Reaction, ReactionEvent, RoomEvent, RoomName,
};

/// Why a change was not stored; the API maps each to its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// No message has that seq in the room (or it is another event's seq).
    NoMessage,
    /// Only the author edits; only the author, the room's owner or an admin
    /// deletes.
    Forbidden,
    /// The message is deleted.
    Deleted,
    /// The message already carries the most distinct emoji allowed.
    TooManyReactions,
}

/// What the write path did with one entry of a batch.
#[derive(Debug, Clone)]
pub enum Applied {
    /// A send: the stored message (or the copy stored under its client id).
    Sent(super::Appended),
    /// A change: its event, or `None` when it changed nothing (a reaction
    /// given twice, or taken back when it was not there).
    Changed(Option<Arc<RoomEvent>>),
}

pub type Outcome = Result<Applied, Refused>;

/// Most distinct emoji on one message.
pub const MAX_EMOJI_PER_MESSAGE: i64 = 20;

/// JSON text of a list, or NULL for an empty one.
pub(crate) fn json_list<T: serde::Serialize>(items: &[T]) -> Option<String> {
    if items.is_empty() {
        None
    } else {
        serde_json::to_string(items).ok()
    }
}

fn parse_list<T: serde::de::DeserializeOwned>(text: Option<&str>) -> Vec<T> {
    text.and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or_default()
}

/// `[[emoji, user], …]` in the order they were given, grouped by emoji in
/// the order each emoji first appeared.
fn reactions_of(pairs: Option<&str>) -> Vec<Reaction> {
    let pairs: Vec<(String, String)> = parse_list(pairs);
    let mut reactions: Vec<Reaction> = Vec::new();
    for (emoji, user) in pairs {
        match reactions.iter_mut().find(|r| r.emoji == emoji) {
            Some(r) => {
                r.users.push(user);
                r.count += 1;
            }
            None => reactions.push(Reaction {
                emoji,
                count: 1,
                me: false,
                users: vec![user],
            }),
        }
    }
    reactions
}

/// A message row with its current state, as pages and ranges read it.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct StateRow {
    pub seq: Option<i64>,
    pub author: Option<String>,
    pub author_id: Option<String>,
    pub text: Option<String>,
    pub client_id: Option<String>,
    pub client_ip: Option<String>,
    pub sent_at: Option<OffsetDateTime>,
    pub edited_at: Option<OffsetDateTime>,
    pub deleted: Option<bool>,
    pub reply_to: Option<i64>,
    pub mentions: Option<String>,
    pub files: Option<String>,
    pub reactions: Option<String>,
    /// The room's last event seq in the statement's snapshot: the state's
    /// [`Message::as_of`].
    #[sqlx(default)]
    pub head: Option<i64>,
}

impl StateRow {
    /// The message, or `None` for the all-null row of a page's empty join.
    pub fn into_message(self, room: &RoomName) -> Option<Message> {
        Some(Message {
            room: room.clone(),
            seq: self.seq?,
            author: self.author?,
            author_id: self.author_id,
            text: self.text?,
            sent_at: self.sent_at?,
            client_id: self.client_id,
            edited_at: self.edited_at,
            deleted: self.deleted.unwrap_or(false),
            reply_to: self.reply_to,
            reactions: reactions_of(self.reactions.as_deref()),
            mentions: parse_list(self.mentions.as_deref()),
            files: parse_list::<FileRef>(self.files.as_deref()),
            client_ip: self.client_ip?,
            as_of: self.head?,
            frame: Default::default(),
        })
    }
}

/// A row of `room_events`.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct EventRow {
    pub seq: i64,
    pub kind: String,
    pub target: i64,
    pub user_id: Option<String>,
    pub text: Option<String>,
    pub mentions: Option<String>,
    pub emoji: Option<String>,
    pub added: Option<bool>,
    pub at: OffsetDateTime,
}

impl EventRow {
    pub fn into_event(self, room: &RoomName) -> Result<RoomEvent, StoreError> {
        let user_id = self.user_id.unwrap_or_default();
        Ok(match self.kind.as_str() {
            "edit" => RoomEvent::Edit(EditEvent {
                room: room.clone(),
                seq: self.seq,
                target: self.target,
                text: self.text.unwrap_or_default(),
                edited_at: self.at,
                mentions: parse_list(self.mentions.as_deref()),
                user_id,
                frame: Default::default(),
            }),
            "delete" => RoomEvent::Delete(DeleteEvent {
                room: room.clone(),
                seq: self.seq,
                target: self.target,
                at: self.at,
                user_id,
                frame: Default::default(),
            }),
            "reaction" => RoomEvent::Reaction(ReactionEvent {
                room: room.clone(),
                seq: self.seq,
                target: self.target,
                emoji: self.emoji.ok_or(StoreError::Inconsistent)?,
                user_id,
                on: self.added.unwrap_or(false),
                at: self.at,
                frame: Default::default(),
            }),
            _ => return Err(StoreError::Inconsistent),
        })
    }
}

/// Merges a range's messages and change events (each in seq order) into
/// one seq-ordered list.
pub(crate) fn merge(
    room: &RoomName,
    messages: Vec<StateRow>,
    events: Vec<EventRow>,
) -> Result<Vec<RoomEvent>, StoreError> {
    let mut out: Vec<RoomEvent> = Vec::with_capacity(messages.len() + events.len());
    for row in messages {
        if let Some(m) = row.into_message(room) {
            out.push(RoomEvent::Message(Arc::new(m)));
        }
    }
    for row in events {
        out.push(row.into_event(room)?);
    }
    out.sort_by_key(RoomEvent::seq);
    Ok(out)
}

/// The SQL of this module, per database: they differ only in how a
/// message's reactions are aggregated (a JSON list of `[emoji, user]` in
/// the order given) and in row locking.
pub(crate) mod sql {
    /// The columns of a message's current state, over `messages m`.
    macro_rules! state_columns {
        ($reactions:expr) => {
            concat!(
                "m.seq, m.author, m.author_id, m.text, m.client_id, m.client_ip, m.sent_at, \
                 m.edited_at, m.deleted, m.reply_to, m.mentions, m.files, ",
                $reactions,
                " AS reactions"
            )
        };
    }

    /// A page: the room's row (its head) left-joined with the page.
    macro_rules! page {
        ($reactions:expr, $filter:literal, $order:literal, $limit:literal) => {
            concat!(
                "SELECT r.last_seq AS head, p.* FROM rooms r LEFT JOIN (SELECT ",
                state_columns!($reactions),
                " FROM messages m WHERE m.room = $1 ",
                $filter,
                " ORDER BY m.seq ",
                $order,
                " LIMIT ",
                $limit,
                ") p ON 1 = 1 WHERE r.name = $1"
            )
        };
    }

    /// Up to `$3` messages at or before `$2` and up to `$3` after it; the
    /// caller keeps the share that centres the page on `$2`.
    macro_rules! around {
        ($reactions:expr) => {
            concat!(
                "SELECT r.last_seq AS head, p.* FROM rooms r LEFT JOIN (",
                "SELECT * FROM (SELECT ",
                state_columns!($reactions),
                " FROM messages m WHERE m.room = $1 AND m.seq <= $2 ORDER BY m.seq DESC LIMIT $3) b \
                 UNION ALL SELECT * FROM (SELECT ",
                state_columns!($reactions),
                " FROM messages m WHERE m.room = $1 AND m.seq > $2 ORDER BY m.seq ASC LIMIT $3) a",
                ") p ON 1 = 1 WHERE r.name = $1"
            )
        };
    }

    macro_rules! range {
        ($reactions:expr) => {
            concat!(
                "SELECT ",
                state_columns!($reactions),
                ", (SELECT r.last_seq FROM rooms r WHERE r.name = $1) AS head \
                 FROM messages m WHERE m.room = $1 AND m.seq BETWEEN $2 AND $3 ORDER BY m.seq"
            )
        };
    }

    macro_rules! dialect {
        ($name:ident, $reactions:expr) => {
            pub mod $name {
                pub const PAGE_LATEST: &str = page!($reactions, "", "DESC", "$2");
                pub const PAGE_BEFORE: &str = page!($reactions, "AND m.seq < $2", "DESC", "$3");
                pub const PAGE_AFTER: &str = page!($reactions, "AND m.seq > $2", "ASC", "$3");
                pub const PAGE_AROUND: &str = around!($reactions);
                pub const RANGE: &str = range!($reactions);
            }
        };
    }

    dialect!(
        postgres,
        "(SELECT json_agg(json_build_array(rx.emoji, rx.user_id) ORDER BY rx.at, rx.user_id)::text \
         FROM reactions rx WHERE rx.room = m.room AND rx.seq = m.seq)"
    );
    dialect!(
        sqlite,
        "(SELECT json_group_array(json_array(rx.emoji, rx.user_id) ORDER BY rx.at, rx.user_id) \
         FROM reactions rx WHERE rx.room = m.room AND rx.seq = m.seq)"
    );

    pub const EVENTS: &str = "SELECT seq, kind, target, user_id, text, mentions, emoji, added, at \
        FROM room_events WHERE room = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq";
    /// A message's author and whether it is deleted (SQLite: its one
    /// writer needs no row lock; PostgreSQL locks it inside
    /// `palaver_apply_changes`).
    pub const TARGET: &str = "SELECT author_id, deleted FROM messages WHERE room = $1 AND seq = $2";
    pub const BUMP: &str =
        "UPDATE rooms SET last_seq = last_seq + 1 WHERE name = $1 RETURNING last_seq";
    pub const INSERT_EVENT: &str = "INSERT INTO room_events \
        (room, seq, kind, target, user_id, text, mentions, emoji, added, at) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
    pub const EDIT: &str =
        "UPDATE messages SET text = $3, edited_at = $4, mentions = $5 WHERE room = $1 AND seq = $2";
    /// Erases the text and every earlier version of it.
    pub const DELETE: &str = "UPDATE messages SET text = '', deleted = TRUE, mentions = NULL, \
        files = NULL WHERE room = $1 AND seq = $2";
    pub const ERASE_VERSIONS: &str = "UPDATE room_events SET text = '', mentions = NULL \
        WHERE room = $1 AND target = $2 AND kind = 'edit'";
    pub const DROP_REACTIONS: &str = "DELETE FROM reactions WHERE room = $1 AND seq = $2";
    pub const HAS_REACTION: &str = "SELECT count(*) FILTER (WHERE emoji = $3 AND user_id = $4), \
        count(DISTINCT emoji), count(*) FILTER (WHERE emoji = $3) \
        FROM reactions WHERE room = $1 AND seq = $2";
    pub const ADD_REACTION: &str =
        "INSERT INTO reactions (room, seq, emoji, user_id, at) VALUES ($1, $2, $3, $4, $5)";
    pub const REMOVE_REACTION: &str =
        "DELETE FROM reactions WHERE room = $1 AND seq = $2 AND emoji = $3 AND user_id = $4";
}

/// Takes the room's next seq and records the change's event row: the two
/// statements every change ends with. Evaluates to the seq.
macro_rules! record_event {
    ($tx:expr, $room:expr, $target:expr, $kind:expr, $user:expr,
     $text:expr, $mentions:expr, $emoji:expr, $added:expr, $at:expr) => {{
        let seq: i64 = sqlx::query_scalar($crate::store::events::sql::BUMP)
            .bind($room.as_str())
            .fetch_one(&mut **$tx)
            .await?;
        sqlx::query($crate::store::events::sql::INSERT_EVENT)
            .bind($room.as_str())
            .bind(seq)
            .bind($kind)
            .bind($target)
            .bind($user.as_str())
            .bind($text)
            .bind($mentions)
            .bind($emoji)
            .bind($added)
            .bind($at)
            .execute(&mut **$tx)
            .await?;
        seq
    }};
}
pub(crate) use record_event;

/// Applies one change inside the batch's transaction `$tx` (a SQLite
/// `&mut Transaction`): validates it against the message, updates the
/// current state, takes the room's next seq and records the event.
/// PostgreSQL does the same in one call of `palaver_apply_changes`
/// (migration 0005); the two are held to one behaviour by the events tests,
/// which run on both.
macro_rules! apply_change {
    ($tx:expr, $room:expr, $change:expr, $at:expr) => {{
        use $crate::domain::Change;
        use $crate::store::events::{json_list, sql as common, Applied, Refused};
        let room: &$crate::domain::RoomName = $room;
        let at: time::OffsetDateTime = $at;
        let target = match $change {
            Change::Send(_) => return Err($crate::store::StoreError::Inconsistent),
            Change::Edit { target, .. }
            | Change::Delete { target, .. }
            | Change::React { target, .. } => *target,
        };
        let row: Option<(Option<String>, bool)> = sqlx::query_as(common::TARGET)
            .bind(room.as_str())
            .bind(target)
            .fetch_optional(&mut **$tx)
            .await?;
        let outcome: $crate::store::events::Outcome = match (row, $change) {
            (None, _) => Err(Refused::NoMessage),
            (
                Some((author, deleted)),
                Change::Edit {
                    user_id,
                    text,
                    mentions,
                    ..
                },
            ) => {
                if author.as_deref() != Some(user_id.as_str()) {
                    Err(Refused::Forbidden)
                } else if deleted {
                    Err(Refused::Deleted)
                } else {
                    let mentions_json = json_list(mentions);
                    sqlx::query(common::EDIT)
                        .bind(room.as_str())
                        .bind(target)
                        .bind(text.as_str())
                        .bind(at)
                        .bind(mentions_json.as_deref())
                        .execute(&mut **$tx)
                        .await?;
                    let seq = $crate::store::events::record_event!(
                        $tx,
                        room,
                        target,
                        "edit",
                        user_id,
                        text.as_str(),
                        mentions_json.as_deref(),
                        None::<&str>,
                        None::<bool>,
                        at
                    );
                    Ok(Applied::Changed($crate::store::events::event_of(
                        room, $change, seq, at,
                    )))
                }
            }
            (
                Some((author, deleted)),
                Change::Delete {
                    user_id, moderator, ..
                },
            ) => {
                if !*moderator && author.as_deref() != Some(user_id.as_str()) {
                    Err(Refused::Forbidden)
                } else if deleted {
                    Err(Refused::Deleted)
                } else {
                    for statement in [
                        common::DELETE,
                        common::ERASE_VERSIONS,
                        common::DROP_REACTIONS,
                    ] {
                        sqlx::query(statement)
                            .bind(room.as_str())
                            .bind(target)
                            .execute(&mut **$tx)
                            .await?;
                    }
                    let seq = $crate::store::events::record_event!(
                        $tx,
                        room,
                        target,
                        "delete",
                        user_id,
                        None::<&str>,
                        None::<&str>,
                        None::<&str>,
                        None::<bool>,
                        at
                    );
                    Ok(Applied::Changed($crate::store::events::event_of(
                        room, $change, seq, at,
                    )))
                }
            }
            (
                Some((_, deleted)),
                Change::React {
                    user_id, emoji, on, ..
                },
            ) => {
                let (mine, distinct, same): (i64, i64, i64) = sqlx::query_as(common::HAS_REACTION)
                    .bind(room.as_str())
                    .bind(target)
                    .bind(emoji.as_str())
                    .bind(user_id.as_str())
                    .fetch_one(&mut **$tx)
                    .await?;
                let changes = if *on { mine == 0 } else { mine > 0 };
                if deleted {
                    Err(Refused::Deleted)
                } else if !changes {
                    Ok(Applied::Changed(None))
                } else if *on
                    && same == 0
                    && distinct >= $crate::store::events::MAX_EMOJI_PER_MESSAGE
                {
                    Err(Refused::TooManyReactions)
                } else {
                    let statement = if *on {
                        common::ADD_REACTION
                    } else {
                        common::REMOVE_REACTION
                    };
                    let query = sqlx::query(statement)
                        .bind(room.as_str())
                        .bind(target)
                        .bind(emoji.as_str())
                        .bind(user_id.as_str());
                    let query = if *on { query.bind(at) } else { query };
                    query.execute(&mut **$tx).await?;
                    let seq = $crate::store::events::record_event!(
                        $tx,
                        room,
                        target,
                        "reaction",
                        user_id,
                        None::<&str>,
                        None::<&str>,
                        emoji.as_str(),
                        Some(*on),
                        at
                    );
                    Ok(Applied::Changed($crate::store::events::event_of(
                        room, $change, seq, at,
                    )))
                }
            }
            (Some(_), Change::Send(_)) => return Err($crate::store::StoreError::Inconsistent),
        };
        outcome
    }};
}
pub(crate) use apply_change;

/// The event an applied `change` of `room` became, numbered `seq`; `None`
/// for a send (its event is the stored message).
pub(crate) fn event_of(
    room: &RoomName,
    change: &Change,
    seq: i64,
    at: OffsetDateTime,
) -> Option<Arc<RoomEvent>> {
    let event = match change {
        Change::Send(_) => return None,
        Change::Edit {
            target,
            user_id,
            text,
            mentions,
        } => RoomEvent::Edit(EditEvent {
            room: room.clone(),
            seq,
            target: *target,
            text: text.as_str().to_owned(),
            edited_at: at,
            mentions: mentions.clone(),
            user_id: user_id.clone(),
            frame: Default::default(),
        }),
        Change::Delete {
            target, user_id, ..
        } => RoomEvent::Delete(DeleteEvent {
            room: room.clone(),
            seq,
            target: *target,
            at,
            user_id: user_id.clone(),
            frame: Default::default(),
        }),
        Change::React {
            target,
            user_id,
            emoji,
            on,
        } => RoomEvent::Reaction(ReactionEvent {
            room: room.clone(),
            seq,
            target: *target,
            emoji: emoji.as_str().to_owned(),
            user_id: user_id.clone(),
            on: *on,
            at,
            frame: Default::default(),
        }),
    };
    Some(Arc::new(event))
}

/// Whether `change` is a send.
pub(crate) fn is_send(change: &Change) -> bool {
    matches!(change, Change::Send(_))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reactions_group_by_emoji_in_the_order_first_given() {
        let r = reactions_of(Some(r#"[["👍","a"],["🎉","b"],["👍","c"]]"#));
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].emoji.as_str(), r[0].count), ("👍", 2));
        assert_eq!(r[0].users, vec!["a".to_owned(), "c".to_owned()]);
        assert_eq!((r[1].emoji.as_str(), r[1].count), ("🎉", 1));
        assert!(reactions_of(None).is_empty());
        assert!(reactions_of(Some("[]")).is_empty());
    }
}
