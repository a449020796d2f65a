//! The message store: one trait, two implementations (SQLite and PostgreSQL).
//!
//! The HTTP layer never sees SQL; it calls [`MessageStore`] through the write
//! path (`write::GroupCommit`, above this module) for writes and directly for reads.

pub mod accounts;
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
use crate::domain::{Message, NewMessage, RoomName};

pub use postgres::PgStore;

/// The read side of a store: the same SQL on both databases, expanded into
/// each store's inherent impl over its read pool (`self.$pool`). The trait
/// impls delegate to these.
macro_rules! impl_reads {
    ($pool:ident) => {
        async fn read_page(
            &self,
            room: &$crate::domain::RoomName,
            cursor: $crate::store::Cursor,
            limit: u32,
        ) -> Result<Option<$crate::store::Page>, $crate::store::StoreError> {
            use $crate::store::{sql, Cursor};
            // One query: the room's row joined with its page, so a room
            // with no messages in range still answers one (empty) row and
            // an unknown room none.
            let fetch = i64::from(limit) + 1;
            let query = match cursor {
                Cursor::Latest => sqlx::query_as(sql::PAGE_LATEST)
                    .bind(room.as_str())
                    .bind(fetch),
                Cursor::Before(seq) => sqlx::query_as(sql::PAGE_BEFORE)
                    .bind(room.as_str())
                    .bind(seq)
                    .bind(fetch),
                Cursor::After(seq) => sqlx::query_as(sql::PAGE_AFTER)
                    .bind(room.as_str())
                    .bind(seq)
                    .bind(fetch),
            };
            let rows: Vec<$crate::store::PageRow> = query.fetch_all(&self.$pool).await?;
            Ok($crate::store::page_from_rows(room, rows, cursor, limit))
        }

        async fn read_range(
            &self,
            room: &$crate::domain::RoomName,
            first: i64,
            last: i64,
        ) -> Result<Vec<$crate::domain::Message>, $crate::store::StoreError> {
            let rows: Vec<$crate::store::MessageRow> = sqlx::query_as($crate::store::sql::RANGE)
                .bind(room.as_str())
                .bind(first)
                .bind(last)
                .fetch_all(&self.$pool)
                .await?;
            Ok(rows.into_iter().map(|r| r.into_message(room)).collect())
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
}

/// One page of a room's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Page {
    pub messages: Vec<Message>,
    /// Whether more messages exist beyond this page in the paging direction.
    pub has_more: bool,
}

/// A room as listed by `GET /api/v1/rooms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RoomSummary {
    #[schema(value_type = String, example = "general")]
    pub name: RoomName,
    /// Sequence number of the newest message (0 when the room is empty).
    pub last_seq: i64,
    pub visibility: crate::identity::Visibility,
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

/// One send of a batch: a message for a room.
pub type Entry = (RoomName, NewMessage);

/// Storage for rooms and messages.
#[async_trait]
pub trait MessageStore: Send + Sync + 'static {
    /// Stores `batch`, sends to any number of rooms, in one transaction,
    /// creating rooms that are new. Each message gets the next sequence
    /// number of its room unless its `client_id` is already stored in the room
    /// (or repeats within the batch), in which case the stored message is
    /// returned. Results are in input order. `notify` runs in the same
    /// transaction, for the messages it created.
    async fn append_batch(
        &self,
        batch: &[Entry],
        sent_at: OffsetDateTime,
        notify: Notify,
    ) -> Result<Vec<Appended>, StoreError>;

    /// Stores `batch` in `room` without a notification: for seeding and
    /// tests, where no listener needs to hear of the rows.
    async fn append(
        &self,
        room: &RoomName,
        batch: &[NewMessage],
        sent_at: OffsetDateTime,
    ) -> Result<Vec<Appended>, StoreError> {
        let batch: Vec<Entry> = batch.iter().map(|m| (room.clone(), m.clone())).collect();
        self.append_batch(&batch, sent_at, None).await
    }

    /// A page of history, or `None` when the room does not exist.
    async fn page(
        &self,
        room: &RoomName,
        cursor: Cursor,
        limit: u32,
    ) -> Result<Option<Page>, StoreError>;

    /// Messages with `first <= seq <= last`, oldest first.
    async fn range(
        &self,
        room: &RoomName,
        first: i64,
        last: i64,
    ) -> Result<Vec<Message>, StoreError>;

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
            edited_at: None,
            deleted: false,
            reply_to: None,
            reactions: Vec::new(),
            mentions: Vec::new(),
            files: Vec::new(),
            frame: Default::default(),
        }
    }
}

/// A row of a page query: the room's row, and one of its messages unless
/// the room has none in range (then every message column is null).
#[derive(FromRow)]
struct PageRow {
    seq: Option<i64>,
    author: Option<String>,
    author_id: Option<String>,
    text: Option<String>,
    client_id: Option<String>,
    client_ip: Option<String>,
    sent_at: Option<OffsetDateTime>,
}

/// Builds a page from rows fetched with `limit + 1` (the extra row only says
/// whether there is more), in the cursor's order; `None` when not even the
/// room's row came back.
fn page_from_rows(room: &RoomName, rows: Vec<PageRow>, cursor: Cursor, limit: u32) -> Option<Page> {
    if rows.is_empty() {
        return None;
    }
    let mut messages: Vec<Message> = rows
        .into_iter()
        .filter_map(|r| {
            Some(Message {
                room: room.clone(),
                seq: r.seq?,
                author: r.author?,
                author_id: r.author_id,
                text: r.text?,
                sent_at: r.sent_at?,
                client_id: r.client_id,
                client_ip: r.client_ip?,
                edited_at: None,
                deleted: false,
                reply_to: None,
                reactions: Vec::new(),
                mentions: Vec::new(),
                files: Vec::new(),
                frame: Default::default(),
            })
        })
        .collect();
    // A join keeps no order of its own.
    match cursor {
        Cursor::After(_) => messages.sort_unstable_by_key(|m| m.seq),
        Cursor::Latest | Cursor::Before(_) => {
            messages.sort_unstable_by_key(|m| std::cmp::Reverse(m.seq))
        }
    }
    let has_more = messages.len() > limit as usize;
    messages.truncate(limit as usize);
    Some(Page { messages, has_more })
}

/// SQL shared by both implementations (both accept `$n` placeholders).
pub(crate) mod sql {
    macro_rules! select_messages {
        ($tail:literal) => {
            concat!(
                "SELECT room, seq, author, author_id, text, client_id, client_ip, sent_at FROM messages ",
                $tail
            )
        };
    }
    pub const ROOM_EXISTS: &str = "SELECT last_seq FROM rooms WHERE name = $1";
    pub const ROOMS: &str = "SELECT name, last_seq, visibility FROM rooms ORDER BY name";
    /// A page: the room's row left-joined with the page's messages.
    macro_rules! page {
        ($filter:literal, $order:literal, $limit:literal) => {
            concat!(
                "SELECT m.seq, m.author, m.author_id, m.text, m.client_id, m.client_ip, m.sent_at \
                 FROM rooms r LEFT JOIN (SELECT seq, author, author_id, text, client_id, client_ip, sent_at \
                 FROM messages WHERE room = $1 ",
                $filter,
                " ORDER BY seq ",
                $order,
                " LIMIT ",
                $limit,
                ") m ON 1 = 1 WHERE r.name = $1"
            )
        };
    }
    pub const PAGE_LATEST: &str = page!("", "DESC", "$2");
    pub const PAGE_BEFORE: &str = page!("AND seq < $2", "DESC", "$3");
    pub const PAGE_AFTER: &str = page!("AND seq > $2", "ASC", "$3");
    pub const RANGE: &str =
        select_messages!("WHERE room = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq ASC");
}

/// Room rows into summaries; a name that no longer parses is skipped.
fn summaries(rows: Vec<(String, i64, String)>) -> Vec<RoomSummary> {
    rows.into_iter()
        .filter_map(|(name, last_seq, visibility)| {
            RoomName::parse(&name).ok().map(|name| RoomSummary {
                name,
                last_seq,
                visibility: crate::identity::Visibility::from_stored(&visibility),
            })
        })
        .collect()
}

/// The items of `batch` to insert, by index: those whose `client_id` is
/// neither stored already (`stored`) nor repeated from an earlier item of the
/// same room.
fn fresh_items(batch: &[Entry], stored: &HashMap<(String, String), Message>) -> Vec<usize> {
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
    batch: &[Entry],
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
                room: room.clone(),
                seq,
                author: m.author.as_str().to_owned(),
                author_id: m.author_id.clone(),
                text: m.text.as_str().to_owned(),
                sent_at,
                client_id: m.client_id.as_ref().map(|c| c.as_str().to_owned()),
                client_ip: m.client_ip.clone(),
                edited_at: None,
                deleted: false,
                reply_to: None,
                reactions: Vec::new(),
                mentions: Vec::new(),
                files: Vec::new(),
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
