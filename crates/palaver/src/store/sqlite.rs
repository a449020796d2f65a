//! SQLite: the embedded store for a laptop or a single node.
//!
//! One writer connection (SQLite allows one writer at a time anyway, and a
//! single connection avoids `SQLITE_BUSY` between our own transactions) and a
//! small pool of readers; WAL mode lets readers run beside the writer.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use time::OffsetDateTime;

use super::accounts::AccountStore;
use super::events::{is_send, Applied, Outcome};
use super::{
    answer, fresh_items, sends_of, Appended, Cursor, Entry, MessageRow, MessageStore, Notify, Page,
    PoolStats, RoomSummary, SendRef, StoreError,
};
use crate::config::{Config, DatabaseUrl};
use crate::domain::{Change, RoomEvent, RoomName};

pub struct SqliteStore {
    writer: SqlitePool,
    readers: SqlitePool,
}

const READERS: u32 = 4;

impl SqliteStore {
    pub async fn connect(url: &DatabaseUrl, config: &Config) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url.expose())?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a message acknowledged with 201 survives power loss, not
            // just a crash. Group commit pays one fsync per batch.
            .synchronous(SqliteSynchronous::Full)
            // A deleted message's text is overwritten on disk, not just
            // unlinked from the b-tree (DESIGN §5b: erased from storage).
            .pragma("secure_delete", "ON")
            .busy_timeout(Duration::from_secs(5))
            .foreign_keys(true);
        if let Some(parent) = Path::new(options.get_filename()).parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(sqlx::Error::Io)?;
            }
        }
        let acquire = Duration::from_secs(config.db_acquire_timeout);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(acquire)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        // An in-memory database exists once per connection: share the writer.
        let in_memory = options.get_filename().as_os_str() == ":memory:"
            || url.expose().contains("mode=memory");
        let readers = if in_memory {
            writer.clone()
        } else {
            SqlitePoolOptions::new()
                .max_connections(READERS)
                .acquire_timeout(acquire)
                .connect_with(options.read_only(true))
                .await?
        };
        Ok(Self { writer, readers })
    }

    super::impl_reads!(readers, super::events::sql::sqlite);
}

super::accounts::impl_accounts!(SqliteStore, writer, readers, None::<&str>);
super::search::impl_search!(SqliteStore, writer, readers, super::search::sqlite_search);

#[async_trait]
impl MessageStore for SqliteStore {
    /// One transaction on the one writer connection: the sends first,
    /// then the changes, each change taking the room's next seq.
    async fn append_batch(
        &self,
        batch: &[Entry],
        sent_at: OffsetDateTime,
        _notify: Notify,
    ) -> Result<Vec<Outcome>, StoreError> {
        let (indices, sends) = sends_of(batch);
        let mut tx = self.writer.begin().await?;
        let mut outcomes: Vec<Option<Outcome>> = vec![None; batch.len()];
        if !sends.is_empty() {
            let appended = store_sends(&mut tx, &sends, sent_at).await?;
            for (&i, a) in indices.iter().zip(appended) {
                outcomes[i] = Some(Ok(Applied::Sent(a)));
            }
        }
        for (i, (room, change)) in batch.iter().enumerate() {
            if !is_send(change) {
                outcomes[i] = Some(apply(&mut tx, room, change, sent_at).await?);
            }
        }
        tx.commit().await?;
        outcomes
            .into_iter()
            .map(|o| o.ok_or(StoreError::Inconsistent))
            .collect()
    }

    async fn set_read(
        &self,
        user: &str,
        room: &RoomName,
        seq: i64,
        exact: bool,
    ) -> Result<Option<i64>, StoreError> {
        let statement = if exact { SET_READ_EXACT } else { SET_READ };
        Ok(sqlx::query_scalar(statement)
            .bind(user)
            .bind(room.as_str())
            .bind(seq)
            .fetch_optional(&self.writer)
            .await?)
    }

    async fn mentionable(
        &self,
        room: &RoomName,
        usernames: &[String],
    ) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(MENTIONABLE)
            .bind(room.as_str())
            .bind(json(&usernames)?)
            .fetch_all(&self.readers)
            .await?)
    }

    async fn page(
        &self,
        room: &RoomName,
        cursor: Cursor,
        limit: u32,
    ) -> Result<Option<Page>, StoreError> {
        self.read_page(room, cursor, limit).await
    }

    async fn range(
        &self,
        room: &RoomName,
        first: i64,
        last: i64,
    ) -> Result<Vec<RoomEvent>, StoreError> {
        self.read_range(room, first, last).await
    }

    async fn last_seq(&self, room: &RoomName) -> Result<i64, StoreError> {
        self.read_last_seq(room).await
    }

    async fn rooms(&self) -> Result<Vec<RoomSummary>, StoreError> {
        self.read_rooms().await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.read_ping().await
    }

    fn accounts(self: std::sync::Arc<Self>) -> Option<std::sync::Arc<dyn AccountStore>> {
        Some(self)
    }

    fn search(
        self: std::sync::Arc<Self>,
    ) -> Option<std::sync::Arc<dyn super::search::SearchStore>> {
        Some(self)
    }

    fn pool_stats(&self) -> PoolStats {
        PoolStats {
            size: self.writer.size() + self.readers.size(),
            idle: (self.writer.num_idle() + self.readers.num_idle()) as u32,
            max: 1 + READERS,
        }
    }
}

/// Stores a batch's sends in `tx` with a statement count that does not grow
/// with the batch or its rooms: the batch travels as JSON and `json_each`
/// unpacks it (a lookup of stored client ids when there are any, one upsert
/// bumping every room, one insert).
async fn store_sends(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    batch: &[SendRef<'_>],
    sent_at: OffsetDateTime,
) -> Result<Vec<Appended>, StoreError> {
    let ids: Vec<(&str, &str)> = batch
        .iter()
        .filter_map(|(room, m)| m.client_id.as_ref().map(|c| (room.as_str(), c.as_str())))
        .collect();
    let mut stored = HashMap::new();
    if !ids.is_empty() {
        let rows: Vec<MessageRow> = sqlx::query_as(
            "SELECT room, seq, author, author_id, text, client_id, client_ip, sent_at, \
             edited_at, deleted, reply_to, mentions, files FROM messages WHERE (room, client_id) IN (SELECT value ->> 0, value ->> 1 FROM json_each($1))",
        )
        .bind(json(&ids)?)
        .fetch_all(&mut **tx)
        .await?;
        for row in rows {
            let room = RoomName::parse(&row.room).map_err(|_| StoreError::Inconsistent)?;
            if let Some(id) = row.client_id.clone() {
                stored.insert((room.as_str().to_owned(), id), row.into_message(&room));
            }
        }
    }

    let fresh = fresh_items(batch, &stored);
    let mut added: BTreeMap<&str, i64> = BTreeMap::new();
    for (room, _) in batch {
        added.entry(room.as_str()).or_insert(0);
    }
    for &i in &fresh {
        *added.entry(batch[i].0.as_str()).or_insert(0) += 1;
    }
    let counts: Vec<(&str, i64)> = added.iter().map(|(r, n)| (*r, *n)).collect();
    let bumped: Vec<(String, i64)> = sqlx::query_as(
        "INSERT INTO rooms (name, last_seq, created_at) \
         SELECT value ->> 0, value ->> 1, $2 FROM json_each($1) WHERE true \
         ON CONFLICT (name) DO UPDATE SET last_seq = last_seq + excluded.last_seq \
         RETURNING name, last_seq",
    )
    .bind(json(&counts)?)
    .bind(sent_at)
    .fetch_all(&mut **tx)
    .await?;
    // The seq before this batch's first, per room.
    let mut next: HashMap<String, i64> = bumped
        .into_iter()
        .map(|(name, last)| {
            let base = last - added.get(name.as_str()).copied().unwrap_or(0);
            (name, base)
        })
        .collect();
    let mut new_seqs = HashMap::with_capacity(fresh.len());
    for &i in &fresh {
        let seq = next
            .get_mut(batch[i].0.as_str())
            .ok_or(StoreError::Inconsistent)?;
        *seq += 1;
        new_seqs.insert(i, *seq);
    }

    if !fresh.is_empty() {
        let rows: Vec<_> = fresh
            .iter()
            .map(|&i| {
                let (room, m) = &batch[i];
                serde_json::json!([
                    room.as_str(),
                    new_seqs[&i],
                    m.author.as_str(),
                    m.text.as_str(),
                    m.client_id.as_ref().map(|c| c.as_str()),
                    m.client_ip,
                    m.author_id.as_deref(),
                    m.reply_to,
                    super::events::json_list(&m.mentions),
                    super::events::json_list(&m.files),
                ])
            })
            .collect();
        sqlx::query(
            "INSERT INTO messages \
             (room, seq, author, text, client_id, client_ip, sent_at, author_id, \
              reply_to, mentions, files) \
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, \
                    value ->> 5, $2, value ->> 6, value ->> 7, value ->> 8, value ->> 9 \
             FROM json_each($1)",
        )
        .bind(json(&rows)?)
        .bind(sent_at)
        .execute(&mut **tx)
        .await?;
    }
    answer(batch, &new_seqs, stored, sent_at)
}

/// Applies one change of a batch in its transaction.
async fn apply(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    room: &RoomName,
    change: &Change,
    at: OffsetDateTime,
) -> Result<Outcome, StoreError> {
    Ok(super::events::apply_change!(tx, room, change, at))
}

/// Moves a read marker forward, never past the room's last event.
const SET_READ: &str = "INSERT INTO read_markers (user_id, room, read_seq) \
    SELECT $1, r.name, $3 FROM rooms r WHERE r.name = $2 AND $3 <= r.last_seq \
    ON CONFLICT (user_id, room) DO UPDATE SET read_seq = max(read_seq, excluded.read_seq) \
    RETURNING read_seq";
/// Sets a read marker to exactly the given seq (`mark_unread`).
const SET_READ_EXACT: &str = "INSERT INTO read_markers (user_id, room, read_seq) \
    SELECT $1, r.name, $3 FROM rooms r WHERE r.name = $2 AND $3 <= r.last_seq \
    ON CONFLICT (user_id, room) DO UPDATE SET read_seq = excluded.read_seq \
    RETURNING read_seq";
/// Users who may read the room: any for a public room (or one the send
/// is about to create), members for a private or direct one.
const MENTIONABLE: &str = "SELECT u.id FROM users u \
    WHERE u.username IN (SELECT value FROM json_each($2)) AND NOT u.suspended \
    AND (NOT EXISTS (SELECT 1 FROM rooms r WHERE r.name = $1 AND r.visibility <> 'public') \
         OR EXISTS (SELECT 1 FROM room_members rm WHERE rm.room = $1 AND rm.user_id = u.id))";

/// A value as the JSON text `json_each` unpacks.
fn json(value: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Database(sqlx::Error::Encode(Box::new(e))))
}
