//! SQLite: the embedded store for a laptop or a single node.
//!
//! One writer connection (SQLite allows one writer at a time anyway, and a
//! single connection avoids `SQLITE_BUSY` between our own transactions) and a
//! small pool of readers; WAL mode lets readers run beside the writer.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use time::OffsetDateTime;

use super::{
    number, plan, resolve, sql, Appended, Cursor, MessageRow, MessageStore, Notify, Page,
    PoolStats, RoomSummary, StoreError,
};
use crate::config::{Config, DatabaseUrl};
use crate::domain::{Message, NewMessage, RoomName};

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

    super::impl_reads!(readers);
}

#[async_trait]
impl MessageStore for SqliteStore {
    async fn append_notifying(
        &self,
        room: &RoomName,
        batch: &[NewMessage],
        sent_at: OffsetDateTime,
        _notify: Notify<'_>,
    ) -> Result<Vec<Appended>, StoreError> {
        let mut tx = self.writer.begin().await?;
        let last: i64 = sqlx::query_scalar(
            "INSERT INTO rooms (name, last_seq, created_at) VALUES ($1, 0, $2) \
             ON CONFLICT (name) DO UPDATE SET last_seq = last_seq RETURNING last_seq",
        )
        .bind(room.as_str())
        .bind(sent_at)
        .fetch_one(&mut *tx)
        .await?;

        let mut existing = HashMap::new();
        for id in batch.iter().filter_map(|m| m.client_id.as_ref()) {
            let row: Option<MessageRow> = sqlx::query_as(sql::BY_CLIENT_ID)
                .bind(room.as_str())
                .bind(id.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(row) = row {
                existing.insert(id.as_str().to_owned(), row.into_message(room));
            }
        }

        let (slots, fresh) = plan(batch, existing);
        let created = number(room, &fresh, last + 1, sent_at);
        for m in &created {
            sqlx::query(
                "INSERT INTO messages (room, seq, author, text, client_id, client_ip, sent_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(room.as_str())
            .bind(m.seq)
            .bind(&m.author)
            .bind(&m.text)
            .bind(&m.client_id)
            .bind(&m.client_ip)
            .bind(m.sent_at)
            .execute(&mut *tx)
            .await?;
        }
        if !created.is_empty() {
            sqlx::query("UPDATE rooms SET last_seq = $1 WHERE name = $2")
                .bind(last + created.len() as i64)
                .bind(room.as_str())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(resolve(slots, &created))
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
    ) -> Result<Vec<Message>, StoreError> {
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

    fn pool_stats(&self) -> PoolStats {
        PoolStats {
            size: self.writer.size() + self.readers.size(),
            idle: (self.writer.num_idle() + self.readers.num_idle()) as u32,
            max: 1 + READERS,
        }
    }
}
