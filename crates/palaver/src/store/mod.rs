//! The message store: one trait, two implementations (SQLite and PostgreSQL).
//!
//! The HTTP layer never sees SQL; it calls [`MessageStore`] through the write
//! path (`write::GroupCommit`, above this module) for writes and directly for reads.

pub mod accounts;
pub mod events;
mod postgres;
pub mod search;
mod sqlite;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use sqlx::FromRow;
use time::OffsetDateTime;
use utoipa::ToSchema;

use crate::config::Config;
use crate::domain::{Change, Message, RoomEvent, RoomName};

pub use events::{Applied, Outcome, Refused};

pub use postgres::PgStore;

/// The read side of a store: the same code on both databases over each
/// store's read pool (`self.$pool`) and SQL dialect (`$sql`, a module of
/// [`events::sql`]), expanded into each store's inherent impl. The trait
/// impls delegate to these.
macro_rules! impl_reads {
    ($pool:ident, $sql:path) => {
        async fn read_page(
            &self,
            room: &$crate::domain::RoomName,
            cursor: $crate::store::Cursor,
            limit: u32,
        ) -> Result<Option<$crate::store::Page>, $crate::store::StoreError> {
            use $crate::store::Cursor;
            use $sql as dialect;
            // One query: the room's row joined with its page, so a room
            // with no messages in range still answers one (empty) row and
            // an unknown room none.
            let fetch = i64::from(limit) + 1;
            let query = match cursor {
                Cursor::Latest => sqlx::query_as(dialect::PAGE_LATEST)
                    .bind(room.as_str())
                    .bind(fetch),
                Cursor::Before(seq) => sqlx::query_as(dialect::PAGE_BEFORE)
                    .bind(room.as_str())
                    .bind(seq)
                    .bind(fetch),
                Cursor::After(seq) => sqlx::query_as(dialect::PAGE_AFTER)
                    .bind(room.as_str())
                    .bind(seq)
                    .bind(fetch),
                Cursor::Around(seq) => sqlx::query_as(dialect::PAGE_AROUND)
                    .bind(room.as_str())
                    .bind(seq)
                    .bind(i64::from(limit)),
            };
            let rows: Vec<$crate::store::PageRow> = query.fetch_all(&self.$pool).await?;
            Ok($crate::store::page_from_rows(room, rows, cursor, limit))
        }

        async fn read_range(
            &self,
            room: &$crate::domain::RoomName,
            first: i64,
            last: i64,
        ) -> Result<Vec<$crate::domain::RoomEvent>, $crate::store::StoreError> {
            use $sql as dialect;
            let messages: Vec<$crate::store::events::StateRow> = sqlx::query_as(dialect::RANGE)
                .bind(room.as_str())
                .bind(first)
                .bind(last)
                .fetch_all(&self.$pool)
                .await?;
            let events: Vec<$crate::store::events::EventRow> =
                sqlx::query_as($crate::store::events::sql::EVENTS)
                    .bind(room.as_str())
                    .bind(first)
                    .bind(last)
                    .fetch_all(&self.$pool)
                    .await?;
            $crate::store::events::merge(room, messages, events)
        }

        async fn read_last_seq(
            &self,
            room: &$crate::domain::RoomName,
        ) -> Result<i64, $crate::store::StoreError> {
            let last: Option<i64> = sqlx::query_scalar($crate::store::sql::ROOM_EXISTS)
                .bind(room.as_str())
                .fetch_optional(&self.$pool)
                .await?;
            Ok(last.unwrap_or(0))
        }

        async fn read_rooms(
            &self,
        ) -> Result<Vec<$crate::store::RoomSummary>, $crate::store::StoreError> {
            let rows: Vec<(String, i64, String)> = sqlx::query_as($crate::store::sql::ROOMS)
                .fetch_all(&self.$pool)
                .await?;
            Ok($crate::store::summaries(rows))
        }

        async fn read_ping(&self) -> Result<(), $crate::store::StoreError> {
            sqlx::query("SELECT 1").execute(&self.$pool).await?;
            Ok(())
        }
    };
}
use impl_reads;

pub use sqlite::SqliteStore;

/// Why the store could not answer. Every variant is the server's problem, not
/// the client's: the API turns it into a 503 and logs the cause.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the writer has stopped")]
    WriterGone,
    #[error("the database answered a batch with rows that do not match it")]
    Inconsistent,
}

impl StoreError {
    /// True when the error is a unique-constraint violation: a concurrent
    /// writer stored the same `(room, client_id)` or `(room, seq)` first.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Database(sqlx::Error::Database(e)) if e.is_unique_violation())
    }

    /// True when running the same batch again may succeed: a concurrent
    /// writer stored one of its `client_id`s first (the retry finds that
    /// row), or PostgreSQL broke a deadlock or a serialization conflict.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Database(sqlx::Error::Database(e)) => {
                e.is_unique_violation() || matches!(e.code().as_deref(), Some("40P01" | "40001"))
            }
            _ => false,
        }
    }
}

/// Where a page of history starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    /// The newest messages, newest first.
    Latest,
    /// Messages with `seq < n`, newest first.
    Before(i64),
    /// Messages with `seq > n`, oldest first.
    After(i64),
    /// Up to the limit around message `n` (itself included), oldest first,
    /// split as evenly as history allows.
    Around(i64),
}

/// One page of a room's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Page {
    pub messages: Vec<Message>,
    /// Whether more messages exist beyond this page in the paging direction.
    pub has_more: bool,
    /// The room's last event seq when the page was read.
    #[serde(skip)]
    pub head: i64,
}

/// A room as listed by `GET /api/v1/rooms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RoomSummary {
    #[schema(value_type = String, example = "general")]
    pub name: RoomName,
    /// Seq of the room's newest event (0 when the room is empty).
    pub last_seq: i64,
    pub visibility: crate::identity::Visibility,
    /// Set by the owner or an admin; empty when none.
    pub topic: String,
    /// The owner's username: the room's creator (null for rooms created by
    /// posting, by the seed API, or before accounts existed).
    #[schema(example = "ada")]
    pub owner: Option<String>,
    /// Whether the caller is a member (joined, or added to a private room).
    pub joined: bool,
    /// The caller's read marker (0 when never read).
    pub read_seq: i64,
    /// Messages by others after the read marker, not deleted.
    pub unread: i64,
    /// Those of them that mention the caller (in a direct room, all).
    pub mentions: i64,
    /// A direct room's members.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<crate::identity::User>>,
}

/// The result of storing one message.
#[derive(Debug, Clone)]
pub struct Appended {
    pub message: Arc<Message>,
    /// False when the `client_id` was already stored: `message` is the copy
    /// stored earlier and nothing new was written.
    pub created: bool,
}

/// Connection pool figures for the metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolStats {
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

/// A notification the storing statement sends (PostgreSQL): `pg_notify(channel,
/// payload)` for each row of `payloads`, a `SELECT` over the relation
/// `announced(room, first, last)` — a row per room of the batch with the
/// seqs it created — answering one text column `payload`. The write path
/// gets it from the bus; the store runs it in the statement that stores the
/// batch, without knowing what it says. SQLite has no use for it.
#[derive(Debug, Clone, Copy)]
pub struct NotifySql {
    pub channel: &'static str,
    pub payloads: &'static str,
}

pub type Notify = Option<NotifySql>;

/// One entry of a batch: a send to a room, or a change to one of its
/// messages.
pub type Entry = (RoomName, Change);

/// Storage for rooms and messages.
#[async_trait]
pub trait MessageStore: Send + Sync + 'static {
    /// Stores `batch` in one transaction: sends to any number of rooms
    /// (creating rooms that are new), then changes to their messages. Each
    /// new message and each change that changes something gets the next
    /// seq of its room; a send whose `client_id` is already stored in the
    /// room (or repeats within the batch) answers the stored message. A
    /// change that is refused (no such message, not allowed, deleted) takes
    /// no seq and leaves the rest of the batch alone. Outcomes are in input
    /// order. `notify` runs in the same transaction, for the events it
    /// created.
    async fn append_batch(
        &self,
        batch: &[Entry],
        sent_at: OffsetDateTime,
        notify: Notify,
    ) -> Result<Vec<Outcome>, StoreError>;

    /// Stores sends to `room` without a notification: for seeding and
    /// tests, where no listener needs to hear of the rows.
    async fn append(
        &self,
        room: &RoomName,
        batch: &[crate::domain::NewMessage],
        sent_at: OffsetDateTime,
    ) -> Result<Vec<Appended>, StoreError> {
        let batch: Vec<Entry> = batch
            .iter()
            .map(|m| (room.clone(), Change::Send(m.clone())))
            .collect();
        let outcomes = self.append_batch(&batch, sent_at, None).await?;
        outcomes
            .into_iter()
            .map(|o| match o {
                Ok(Applied::Sent(a)) => Ok(a),
                _ => Err(StoreError::Inconsistent),
            })
            .collect()
    }

    /// A page of history, or `None` when the room does not exist.
    async fn page(
        &self,
        room: &RoomName,
        cursor: Cursor,
        limit: u32,
    ) -> Result<Option<Page>, StoreError>;

    /// The events with `first <= seq <= last`, oldest first: messages as
    /// they are now, and every change made to them.
    async fn range(
        &self,
        room: &RoomName,
        first: i64,
        last: i64,
    ) -> Result<Vec<RoomEvent>, StoreError>;

    /// Moves `user`'s read marker of `room` to `seq`: forward only, or to
    /// exactly `seq` with `exact`. Answers the marker now, or `None` when
    /// the room does not exist or `seq` is past its last event.
    async fn set_read(
        &self,
        user: &str,
        room: &RoomName,
        seq: i64,
        exact: bool,
    ) -> Result<Option<i64>, StoreError>;

    /// Of `usernames`, the ids of the users who may read `room` (not
    /// suspended): whom a text's `@username`s mention.
    async fn mentionable(
        &self,
        room: &RoomName,
        usernames: &[String],
    ) -> Result<Vec<String>, StoreError>;

    /// The newest sequence number in `room` (0 for an empty or unknown room).
    async fn last_seq(&self, room: &RoomName) -> Result<i64, StoreError>;

    /// All rooms, by name.
    async fn rooms(&self) -> Result<Vec<RoomSummary>, StoreError>;

    /// Checks that the database answers.
    async fn ping(&self) -> Result<(), StoreError>;

    fn pool_stats(&self) -> PoolStats;

    /// The same database's users, sessions and room membership (`None` only
    /// for test doubles).
    fn accounts(self: Arc<Self>) -> Option<Arc<dyn accounts::AccountStore>> {
        None
    }

    /// The same database's people, direct rooms, search and file rows
    /// (DESIGN §5d; `None` only for test doubles).
    fn search(self: Arc<Self>) -> Option<Arc<dyn search::SearchStore>> {
        None
    }

    /// The PostgreSQL pool when this store is PostgreSQL: the fan-out bus
    /// listens on it.
    fn postgres(&self) -> Option<&PgStore> {
        None
    }
}

/// Opens the store named by the configuration and applies the migrations.
pub async fn connect(config: &Config) -> Result<Arc<dyn MessageStore>, StoreError> {
    let url = config.database_url();
    if url.is_postgres() {
        Ok(Arc::new(PgStore::connect(&url, config).await?))
    } else {
        Ok(Arc::new(SqliteStore::connect(&url, config).await?))
    }
}

/// One row of `messages`, as both databases return it.
#[derive(Debug, FromRow)]
struct MessageRow {
    room: String,
    seq: i64,
    author: String,
    author_id: Option<String>,
    text: String,
    client_id: Option<String>,
    client_ip: String,
    sent_at: OffsetDateTime,
    edited_at: Option<OffsetDateTime>,
    deleted: bool,
    reply_to: Option<i64>,
    mentions: Option<String>,
    files: Option<String>,
}

impl MessageRow {
    fn into_message(self, room: &RoomName) -> Message {
        debug_assert_eq!(self.room, room.as_str());
        Message {
            room: room.clone(),
            seq: self.seq,
            author: self.author,
            author_id: self.author_id,
            text: self.text,
            sent_at: self.sent_at,
            client_id: self.client_id,
            client_ip: self.client_ip,
            edited_at: self.edited_at,
            deleted: self.deleted,
            reply_to: self.reply_to,
            reactions: Vec::new(),
            mentions: self
                .mentions
                .and_then(|m| serde_json::from_str(&m).ok())
                .unwrap_or_default(),
            files: self
                .files
                .and_then(|f| serde_json::from_str(&f).ok())
                .unwrap_or_default(),
            as_of: self.seq,
            frame: Default::default(),
        }
    }
}

/// A row of a page query: the room's head, and one of its messages unless
/// the room has none in range (then every message column is null).
#[derive(sqlx::FromRow)]
struct PageRow {
    head: i64,
    #[sqlx(flatten)]
    state: events::StateRow,
}

/// Builds a page from rows fetched with `limit + 1` (the extra row only says
/// whether there is more; `around` fetches up to `limit` on each side), in
/// the cursor's order; `None` when not even the room's row came back.
fn page_from_rows(room: &RoomName, rows: Vec<PageRow>, cursor: Cursor, limit: u32) -> Option<Page> {
    let head = rows.first()?.head;
    let mut messages: Vec<Message> = rows
        .into_iter()
        .filter_map(|r| r.state.into_message(room))
        .collect();
    let limit = limit as usize;
    // A join keeps no order of its own.
    let has_more = match cursor {
        Cursor::After(_) => {
            messages.sort_unstable_by_key(|m| m.seq);
            let more = messages.len() > limit;
            messages.truncate(limit);
            more
        }
        Cursor::Latest | Cursor::Before(_) => {
            messages.sort_unstable_by_key(|m| std::cmp::Reverse(m.seq));
            let more = messages.len() > limit;
            messages.truncate(limit);
            more
        }
        Cursor::Around(seq) => {
            messages.sort_unstable_by_key(|m| m.seq);
            let before = messages.iter().filter(|m| m.seq <= seq).count();
            let after = messages.len() - before;
            // Half the page (the message itself included) before, the rest
            // after; a side that runs out gives its share to the other.
            let take_before = before.min(limit.div_ceil(2).max(limit.saturating_sub(after)));
            let take_after = after.min(limit - take_before);
            let more = before > take_before || after > take_after;
            messages.drain(..before - take_before);
            messages.truncate(take_before + take_after);
            more
        }
    };
    Some(Page {
        messages,
        has_more,
        head,
    })
}

/// SQL shared by both implementations (both accept `$n` placeholders).
pub(crate) mod sql {
    pub const ROOM_EXISTS: &str = "SELECT last_seq FROM rooms WHERE name = $1";
    pub const ROOMS: &str = "SELECT name, last_seq, visibility FROM rooms ORDER BY name";
}

/// Room rows into summaries; a name that no longer parses is skipped.
fn summaries(rows: Vec<(String, i64, String)>) -> Vec<RoomSummary> {
    rows.into_iter()
        .filter_map(|(name, last_seq, visibility)| {
            RoomName::parse(&name).ok().map(|name| RoomSummary {
                name,
                last_seq,
                visibility: crate::identity::Visibility::from_stored(&visibility),
                topic: String::new(),
                owner: None,
                joined: false,
                read_seq: 0,
                unread: 0,
                mentions: 0,
                members: None,
            })
        })
        .collect()
}

/// A send of a batch: its room and message.
type SendRef<'a> = (&'a RoomName, &'a crate::domain::NewMessage);

/// Splits a batch into its sends (with their indices in the batch) and the
/// rest.
fn sends_of(batch: &[Entry]) -> (Vec<usize>, Vec<SendRef<'_>>) {
    batch
        .iter()
        .enumerate()
        .filter_map(|(i, (room, change))| match change {
            Change::Send(m) => Some((i, (room, m))),
            _ => None,
        })
        .unzip()
}

/// The items of `batch` to insert, by index: those whose `client_id` is
/// neither stored already (`stored`) nor repeated from an earlier item of the
/// same room.
fn fresh_items(batch: &[SendRef<'_>], stored: &HashMap<(String, String), Message>) -> Vec<usize> {
    let mut seen: HashSet<(&str, &str)> = HashSet::new();
    let mut fresh = Vec::with_capacity(batch.len());
    for (i, (room, m)) in batch.iter().enumerate() {
        match &m.client_id {
            None => fresh.push(i),
            Some(id) => {
                let key = (room.as_str(), id.as_str());
                if seen.insert(key) && !stored.contains_key(&(key.0.to_owned(), key.1.to_owned())) {
                    fresh.push(i);
                }
            }
        }
    }
    fresh
}

/// Answers every item of `batch`: items in `new_seqs` (index → seq) were
/// stored now; an item repeating an earlier item's `client_id` gets that
/// item's message; the rest get the copy stored before (`stored`). Also
/// returns the created messages, ordered by room and seq.
fn answer(
    batch: &[SendRef<'_>],
    new_seqs: &HashMap<usize, i64>,
    mut stored: HashMap<(String, String), Message>,
    sent_at: OffsetDateTime,
) -> Result<Vec<Appended>, StoreError> {
    let mut answers: Vec<Appended> = Vec::with_capacity(batch.len());
    let mut first: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, (room, m)) in batch.iter().enumerate() {
        let key = m.client_id.as_ref().map(|id| (room.as_str(), id.as_str()));
        if let Some(&j) = key.as_ref().and_then(|k| first.get(k)) {
            let message = answers[j].message.clone();
            answers.push(Appended {
                message,
                created: false,
            });
            continue;
        }
        if let Some(k) = key {
            first.insert(k, i);
        }
        let appended = if let Some(&seq) = new_seqs.get(&i) {
            let message = Arc::new(Message {
                room: (*room).clone(),
                seq,
                author: m.author.as_str().to_owned(),
                author_id: m.author_id.clone(),
                text: m.text.as_str().to_owned(),
                sent_at,
                client_id: m.client_id.as_ref().map(|c| c.as_str().to_owned()),
                client_ip: m.client_ip.clone(),
                edited_at: None,
                deleted: false,
                reply_to: m.reply_to,
                reactions: Vec::new(),
                mentions: m.mentions.clone(),
                files: m.files.clone(),
                as_of: seq,
                frame: Default::default(),
            });
            Appended {
                message,
                created: true,
            }
        } else {
            let message = key
                .and_then(|(r, c)| stored.remove(&(r.to_owned(), c.to_owned())))
                .ok_or(StoreError::Inconsistent)?;
            Appended {
                message: Arc::new(message),
                created: false,
            }
        };
        answers.push(appended);
    }
    Ok(answers)
}
