//! The message store: one trait, two implementations (SQLite and PostgreSQL).
//!
//! The HTTP layer never sees SQL; it calls [`MessageStore`] through the write
//! path (`write::GroupCommit`, above this module) for writes and directly for reads.

mod postgres;
mod sqlite;

use std::collections::HashMap;
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
            let exists: Option<i64> = sqlx::query_scalar(sql::ROOM_EXISTS)
                .bind(room.as_str())
                .fetch_optional(&self.$pool)
                .await?;
            if exists.is_none() {
                return Ok(None);
            }
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
            let rows: Vec<$crate::store::MessageRow> = query.fetch_all(&self.$pool).await?;
            Ok(Some($crate::store::page_from_rows(room, rows, limit)))
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
            let rows: Vec<(String, i64)> = sqlx::query_as($crate::store::sql::ROOMS)
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
    #[error("the writer for this room has stopped")]
    WriterGone,
}

impl StoreError {
    /// True when the error is a unique-constraint violation: a concurrent
    /// writer stored the same `(room, client_id)` or `(room, seq)` first.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, StoreError::Database(sqlx::Error::Database(e)) if e.is_unique_violation())
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

/// Builds the `pg_notify(channel, payload)` to run in the transaction that
/// stores a batch, from the messages about to be committed (`None`: no
/// notification). The write path gets it from the bus; the store runs it
/// without knowing what it says. SQLite has no use for it.
pub type Notify<'a> = &'a (dyn Fn(&[Arc<Message>]) -> Option<(&'static str, String)> + Send + Sync);

/// Storage for rooms and messages.
#[async_trait]
pub trait MessageStore: Send + Sync + 'static {
    /// Stores `batch` in `room` in one transaction, creating the room when it
    /// is new. Each message gets the next sequence number unless its
    /// `client_id` is already stored in the room (or repeats within the batch),
    /// in which case the stored message is returned. Results are in input order.
    /// `notify` is run inside the transaction when it created messages.
    async fn append_notifying(
        &self,
        room: &RoomName,
        batch: &[NewMessage],
        sent_at: OffsetDateTime,
        notify: Notify<'_>,
    ) -> Result<Vec<Appended>, StoreError>;

    /// [`MessageStore::append_notifying`] without a notification: for seeding
    /// and tests, where no listener needs to hear of the rows.
    async fn append(
        &self,
        room: &RoomName,
        batch: &[NewMessage],
        sent_at: OffsetDateTime,
    ) -> Result<Vec<Appended>, StoreError> {
        self.append_notifying(room, batch, sent_at, &|_| None).await
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
            text: self.text,
            sent_at: self.sent_at,
            client_id: self.client_id,
            client_ip: self.client_ip,
            frame: Default::default(),
        }
    }
}

/// Builds a page from rows fetched with `limit + 1`: the extra row only says
/// whether there is more.
fn page_from_rows(room: &RoomName, mut rows: Vec<MessageRow>, limit: u32) -> Page {
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    Page {
        messages: rows.into_iter().map(|r| r.into_message(room)).collect(),
        has_more,
    }
}

/// SQL shared by both implementations (both accept `$n` placeholders).
pub(crate) mod sql {
    macro_rules! select_messages {
        ($tail:literal) => {
            concat!(
                "SELECT room, seq, author, text, client_id, client_ip, sent_at FROM messages ",
                $tail
            )
        };
    }
    pub const ROOM_EXISTS: &str = "SELECT last_seq FROM rooms WHERE name = $1";
    pub const ROOMS: &str = "SELECT name, last_seq FROM rooms ORDER BY name";
    pub const PAGE_LATEST: &str = select_messages!("WHERE room = $1 ORDER BY seq DESC LIMIT $2");
    pub const PAGE_BEFORE: &str =
        select_messages!("WHERE room = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3");
    pub const PAGE_AFTER: &str =
        select_messages!("WHERE room = $1 AND seq > $2 ORDER BY seq ASC LIMIT $3");
    pub const RANGE: &str =
        select_messages!("WHERE room = $1 AND seq BETWEEN $2 AND $3 ORDER BY seq ASC");
    pub const BY_CLIENT_ID: &str = select_messages!("WHERE room = $1 AND client_id = $2");
    pub const BY_CLIENT_IDS: &str = select_messages!("WHERE room = $1 AND client_id = ANY($2)");
}

/// Room rows into summaries; a name that no longer parses is skipped.
fn summaries(rows: Vec<(String, i64)>) -> Vec<RoomSummary> {
    rows.into_iter()
        .filter_map(|(name, last_seq)| {
            RoomName::parse(&name)
                .ok()
                .map(|name| RoomSummary { name, last_seq })
        })
        .collect()
}

/// How one item of a batch is answered.
enum Slot {
    /// Stored now, as the `n`th new message.
    New(usize),
    /// Its `client_id` was stored before: this copy.
    Existing(Arc<Message>),
    /// Its `client_id` repeats the `n`th new message of this batch.
    SameAs(usize),
}

/// Splits a batch into the messages to insert and an answer slot per item.
/// `existing` holds the messages already stored under the batch's client ids.
fn plan(
    batch: &[NewMessage],
    mut existing: HashMap<String, Message>,
) -> (Vec<Slot>, Vec<&NewMessage>) {
    let mut slots = Vec::with_capacity(batch.len());
    let mut fresh: Vec<&NewMessage> = Vec::with_capacity(batch.len());
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for item in batch {
        let slot = match &item.client_id {
            Some(id) => {
                if let Some(&n) = seen.get(id.as_str()) {
                    Slot::SameAs(n)
                } else if let Some(message) = existing.remove(id.as_str()) {
                    Slot::Existing(Arc::new(message))
                } else {
                    seen.insert(id.as_str(), fresh.len());
                    fresh.push(item);
                    Slot::New(fresh.len() - 1)
                }
            }
            None => {
                fresh.push(item);
                Slot::New(fresh.len() - 1)
            }
        };
        slots.push(slot);
    }
    (slots, fresh)
}

/// Gives the new messages their seqs, `first_seq` onwards.
fn number(
    room: &RoomName,
    fresh: &[&NewMessage],
    first_seq: i64,
    sent_at: OffsetDateTime,
) -> Vec<Arc<Message>> {
    fresh
        .iter()
        .zip(first_seq..)
        .map(|(m, seq)| {
            Arc::new(Message {
                room: room.clone(),
                seq,
                author: m.author.as_str().to_owned(),
                text: m.text.as_str().to_owned(),
                sent_at,
                client_id: m.client_id.as_ref().map(|c| c.as_str().to_owned()),
                client_ip: m.client_ip.clone(),
                frame: Default::default(),
            })
        })
        .collect()
}

fn resolve(slots: Vec<Slot>, created: &[Arc<Message>]) -> Vec<Appended> {
    slots
        .into_iter()
        .map(|slot| match slot {
            Slot::New(i) => Appended {
                message: created[i].clone(),
                created: true,
            },
            Slot::Existing(message) => Appended {
                message,
                created: false,
            },
            Slot::SameAs(i) => Appended {
                message: created[i].clone(),
                created: false,
            },
        })
        .collect()
}
