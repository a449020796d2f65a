//! PostgreSQL (13+ and Aurora PostgreSQL): the store for scaled-out installs.
//!
//! Appending locks the room's row, so concurrent batches for one room from
//! any number of replicas are serialised and `seq` stays gapless; the same
//! transaction runs the `NOTIFY` the write path hands it, so every gateway
//! learns of the new rows when they commit.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use time::OffsetDateTime;

use super::{
    number, plan, resolve, sql, Appended, Cursor, MessageRow, MessageStore, Notify, Page,
    PoolStats, RoomSummary, StoreError,
};
use crate::config::{Config, DatabaseUrl};
use crate::domain::{Message, NewMessage, RoomName};

pub struct PgStore {
    pool: PgPool,
    max: u32,
}

impl PgStore {
    pub async fn connect(url: &DatabaseUrl, config: &Config) -> Result<Self, StoreError> {
        let options: PgConnectOptions = url.expose().parse()?;
        let options = options.application_name("palaver");
        let pool = PgPoolOptions::new()
            .max_connections(config.db_max_connections)
            .acquire_timeout(Duration::from_secs(config.db_acquire_timeout))
            .connect_with(options)
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(Self {
            pool,
            max: config.db_max_connections,
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The newest seq of each of `rooms` that exists, in one query.
    pub async fn last_seqs(
        &self,
        rooms: &[RoomName],
    ) -> Result<HashMap<RoomName, i64>, StoreError> {
        let names: Vec<&str> = rooms.iter().map(RoomName::as_str).collect();
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT name, last_seq FROM rooms WHERE name = ANY($1)")
                .bind(&names)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(name, seq)| RoomName::parse(&name).ok().map(|room| (room, seq)))
            .collect())
    }

    super::impl_reads!(pool);
}

#[async_trait]
impl MessageStore for PgStore {
    async fn append_notifying(
        &self,
        room: &RoomName,
        batch: &[NewMessage],
        sent_at: OffsetDateTime,
        notify: Notify<'_>,
    ) -> Result<Vec<Appended>, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Creates the room or locks its row until commit.
        let last: i64 = sqlx::query_scalar(
            "INSERT INTO rooms (name) VALUES ($1) \
             ON CONFLICT (name) DO UPDATE SET last_seq = rooms.last_seq RETURNING last_seq",
        )
        .bind(room.as_str())
        .fetch_one(&mut *tx)
        .await?;

        let ids: Vec<&str> = batch
            .iter()
            .filter_map(|m| m.client_id.as_ref().map(|c| c.as_str()))
            .collect();
        let mut existing = HashMap::new();
        if !ids.is_empty() {
            let rows: Vec<MessageRow> = sqlx::query_as(sql::BY_CLIENT_IDS)
                .bind(room.as_str())
                .bind(&ids)
                .fetch_all(&mut *tx)
                .await?;
            for row in rows {
                if let Some(id) = row.client_id.clone() {
                    existing.insert(id, row.into_message(room));
                }
            }
        }

        let (slots, fresh) = plan(batch, existing);
        let created = number(room, &fresh, last + 1, sent_at);
        if let Some(newest) = created.last() {
            sqlx::query(
                "INSERT INTO messages (room, seq, author, text, client_id, client_ip, sent_at) \
                 SELECT $1, s, a, t, c, ip, $7 \
                 FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[]) \
                 AS u(s, a, t, c, ip)",
            )
            .bind(room.as_str())
            .bind(created.iter().map(|m| m.seq).collect::<Vec<_>>())
            .bind(
                created
                    .iter()
                    .map(|m| m.author.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(created.iter().map(|m| m.text.as_str()).collect::<Vec<_>>())
            .bind(
                created
                    .iter()
                    .map(|m| m.client_id.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind(
                created
                    .iter()
                    .map(|m| m.client_ip.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(sent_at)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE rooms SET last_seq = $1 WHERE name = $2")
                .bind(newest.seq)
                .bind(room.as_str())
                .execute(&mut *tx)
                .await?;
            if let Some((channel, payload)) = notify(&created) {
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(channel)
                    .bind(payload)
                    .execute(&mut *tx)
                    .await?;
            }
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
            size: self.pool.size(),
            idle: self.pool.num_idle() as u32,
            max: self.max,
        }
    }

    fn postgres(&self) -> Option<&PgStore> {
        Some(self)
    }
}
