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

use super::accounts::AccountStore;
use super::events::{
    event_of, is_send, json_list, Applied, Outcome, Refused, MAX_EMOJI_PER_MESSAGE,
};
use super::{
    answer, sends_of, Appended, Cursor, Entry, MessageStore, Notify, NotifySql, Page, PoolStats,
    RoomSummary, SendRef, StoreError,
};
use crate::config::{Config, DatabaseUrl};
use crate::domain::{Change, Message, RoomEvent, RoomName};

pub struct PgStore {
    pool: PgPool,
    max: u32,
    /// The append statement with the bus's notification (one bus per
    /// process, so one text, built once).
    notifying: std::sync::OnceLock<String>,
    plain: String,
    /// The changes statement with the bus's notification (built once, as
    /// above), and without.
    changes_notifying: std::sync::OnceLock<String>,
    changes_plain: String,
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
            notifying: std::sync::OnceLock::new(),
            plain: append_statement(None),
            changes_notifying: std::sync::OnceLock::new(),
            changes_plain: changes_statement(None),
        })
    }

    fn statement(&self, notify: Notify) -> &str {
        match notify {
            None => &self.plain,
            Some(n) => self.notifying.get_or_init(|| append_statement(Some(n))),
        }
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

    super::impl_reads!(pool, super::events::sql::postgres);

    /// Stores `sends` with the one-statement append, through `executor`
    /// (the pool: its own implicit transaction; or a batch's transaction).
    async fn store_sends<'e, E>(
        &self,
        executor: E,
        batch: &[SendRef<'_>],
        sent_at: OffsetDateTime,
        notify: Notify,
    ) -> Result<Vec<Appended>, StoreError>
    where
        E: sqlx::Executor<'e, Database = sqlx::Postgres>,
    {
        let column = |f: for<'a> fn(&'a SendRef<'a>) -> Option<&'a str>| {
            batch.iter().map(f).collect::<Vec<_>>()
        };
        let statement = self.statement(notify);
        let lists = |f: fn(&SendRef) -> Option<String>| batch.iter().map(f).collect::<Vec<_>>();
        let query = sqlx::query_as(statement)
            .bind(column(|(room, _)| Some(room.as_str())))
            .bind(column(|(_, m)| Some(m.author.as_str())))
            .bind(column(|(_, m)| Some(m.text.as_str())))
            .bind(column(|(_, m)| m.client_id.as_ref().map(|c| c.as_str())))
            .bind(column(|(_, m)| Some(m.client_ip.as_str())))
            .bind(sent_at)
            .bind(column(|(_, m)| m.author_id.as_deref()))
            .bind(batch.iter().map(|(_, m)| m.reply_to).collect::<Vec<_>>())
            .bind(lists(|(_, m)| super::events::json_list(&m.mentions)))
            .bind(lists(|(_, m)| super::events::json_list(&m.files)));
        let query = match notify {
            Some(n) => query.bind(n.channel),
            None => query,
        };
        let rows: Vec<BatchRow> = query.fetch_all(executor).await?;
        let mut new_seqs = HashMap::new();
        let mut stored = HashMap::new();
        for row in rows {
            match row.ord {
                Some(ord) => {
                    new_seqs.insert((ord - 1) as usize, row.seq);
                }
                None => {
                    let (Some(room), Some(client_id)) = (row.room, row.client_id) else {
                        return Err(StoreError::Inconsistent);
                    };
                    let message = Message {
                        room: RoomName::parse(&room).map_err(|_| StoreError::Inconsistent)?,
                        seq: row.seq,
                        author: row.author.unwrap_or_default(),
                        author_id: row.author_id,
                        text: row.text.unwrap_or_default(),
                        sent_at: row.sent_at.unwrap_or(sent_at),
                        client_id: Some(client_id.clone()),
                        client_ip: row.client_ip.unwrap_or_default(),
                        edited_at: row.edited_at,
                        deleted: row.deleted.unwrap_or(false),
                        reply_to: row.reply_to,
                        reactions: Vec::new(),
                        mentions: row
                            .mentions
                            .and_then(|m| serde_json::from_str(&m).ok())
                            .unwrap_or_default(),
                        files: row
                            .files
                            .and_then(|f| serde_json::from_str(&f).ok())
                            .unwrap_or_default(),
                        as_of: row.seq,
                        frame: Default::default(),
                    };
                    stored.insert((room, client_id), message);
                }
            }
        }
        answer(batch, &new_seqs, stored, sent_at)
    }

    /// Applies a batch's changes (`changes`: their indices in the batch)
    /// with one statement through `executor`, and answers each one's
    /// outcome in order.
    async fn store_changes<'e, E>(
        &self,
        executor: E,
        batch: &[Entry],
        changes: &[usize],
        at: OffsetDateTime,
        notify: Notify,
    ) -> Result<Vec<Outcome>, StoreError>
    where
        E: sqlx::Executor<'e, Database = sqlx::Postgres>,
    {
        let mut columns = ChangeColumns::default();
        for &i in changes {
            let (room, change) = &batch[i];
            columns.push(room, change);
        }
        let statement = match notify {
            None => self.changes_plain.as_str(),
            Some(n) => self
                .changes_notifying
                .get_or_init(|| changes_statement(Some(n))),
        };
        let query = sqlx::query_as(statement)
            .bind(columns.room)
            .bind(columns.kind)
            .bind(columns.target)
            .bind(columns.user)
            .bind(columns.moderator)
            .bind(columns.text)
            .bind(columns.mentions)
            .bind(columns.emoji)
            .bind(columns.on)
            .bind(at)
            .bind(MAX_EMOJI_PER_MESSAGE as i32);
        let query = match notify {
            Some(n) => query.bind(n.channel),
            None => query,
        };
        let rows: Vec<(Option<i32>, Option<String>, Option<i64>)> =
            query.fetch_all(executor).await?;
        let mut outcomes = Vec::with_capacity(changes.len());
        for (ord, outcome, seq) in rows {
            let Some(ord) = ord else { continue };
            let index = usize::try_from(ord - 1).map_err(|_| StoreError::Inconsistent)?;
            let &i = changes.get(index).ok_or(StoreError::Inconsistent)?;
            let (room, change) = &batch[i];
            outcomes.push(match (outcome.as_deref(), seq) {
                (Some("applied"), Some(seq)) => Ok(Applied::Changed(Some(
                    event_of(room, change, seq, at).ok_or(StoreError::Inconsistent)?,
                ))),
                (Some("unchanged"), _) => Ok(Applied::Changed(None)),
                (Some("no_message"), _) => Err(Refused::NoMessage),
                (Some("forbidden"), _) => Err(Refused::Forbidden),
                (Some("deleted"), _) => Err(Refused::Deleted),
                (Some("too_many_reactions"), _) => Err(Refused::TooManyReactions),
                _ => return Err(StoreError::Inconsistent),
            });
        }
        if outcomes.len() != changes.len() {
            return Err(StoreError::Inconsistent);
        }
        Ok(outcomes)
    }
}

/// Stores a whole batch, any number of rooms, in one statement — and, with
/// its notification, in one round trip: the statement runs in its own
/// implicit transaction, so there is no `BEGIN` or `COMMIT` to wait for.
/// Each room's
/// row is created or locked (in name order, so concurrent batches cannot
/// deadlock) and bumped by the number of new messages in one upsert, whose
/// `RETURNING` gives the latest committed `last_seq` even when the statement
/// waited for another writer's lock. Client ids already stored are looked
/// up in the statement's snapshot: a concurrent writer that stored one of
/// them after that snapshot makes the insert fail with a unique violation,
/// and the write path runs the batch again, which then finds the row.
///
/// Answers rows of two kinds: `ord` (1-based index into the batch) and `seq`
/// for each new message, and the whole stored row (`ord` null) for each
/// `client_id` already stored.
const APPEND_BATCH: &str = "\
WITH input AS (
    SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $7::text[],
                         $8::bigint[], $9::text[], $10::text[])
        WITH ORDINALITY AS i(room, author, text, client_id, client_ip, author_id, reply_to,
                             mentions, files, ord)
), stored AS (
    SELECT m.room, m.seq, m.author, m.author_id, m.text, m.client_id, m.client_ip, m.sent_at,
           m.edited_at, m.deleted, m.reply_to, m.mentions, m.files
    FROM messages m
    WHERE (m.room, m.client_id) IN (SELECT room, client_id FROM input WHERE client_id IS NOT NULL)
), fresh AS (
    SELECT i.*, row_number() OVER (PARTITION BY i.room ORDER BY i.ord) AS n
    FROM input i
    WHERE i.client_id IS NULL
       OR (NOT EXISTS (SELECT 1 FROM stored s WHERE s.room = i.room AND s.client_id = i.client_id)
           AND NOT EXISTS (SELECT 1 FROM input j
                           WHERE j.room = i.room AND j.client_id = i.client_id AND j.ord < i.ord))
), counts AS (
    SELECT r.room, count(f.ord) AS added
    FROM (SELECT DISTINCT room FROM input) r LEFT JOIN fresh f ON f.room = r.room
    GROUP BY r.room
), locked AS (
    INSERT INTO rooms AS r (name, last_seq)
    SELECT room, added FROM counts ORDER BY room
    ON CONFLICT (name) DO UPDATE SET last_seq = r.last_seq + EXCLUDED.last_seq
    RETURNING r.name, r.last_seq
), numbered AS (
    SELECT f.ord, f.room, l.last_seq - c.added + f.n AS seq,
           f.author, f.author_id, f.text, f.client_id, f.client_ip, f.reply_to, f.mentions, f.files
    FROM fresh f JOIN locked l ON l.name = f.room JOIN counts c ON c.room = f.room
), inserted AS (
    INSERT INTO messages (room, seq, author, author_id, text, client_id, client_ip, sent_at,
                          reply_to, mentions, files)
    SELECT room, seq, author, author_id, text, client_id, client_ip, $6, reply_to, mentions, files
    FROM numbered
)";

/// The answer of [`APPEND_BATCH`].
const ANSWER: &str = "\
SELECT ord, seq, NULL::text AS room, NULL::text AS author, NULL::text AS author_id, NULL::text AS text,
       NULL::text AS client_id, NULL::text AS client_ip, NULL::timestamptz AS sent_at,
       NULL::timestamptz AS edited_at, NULL::boolean AS deleted, NULL::bigint AS reply_to,
       NULL::text AS mentions, NULL::text AS files
FROM numbered
UNION ALL
SELECT NULL, seq, room, author, author_id, text, client_id, client_ip, sent_at,
       edited_at, deleted, reply_to, mentions, files FROM stored";

/// [`APPEND_BATCH`] with the bus's notification in the same statement: the
/// payloads are computed from the seqs just assigned, and the CTE holding
/// the `pg_notify` calls (volatile, so materialised and never inlined) is
/// scanned to the end by a `count(*)` whose branch yields no row.
fn append_statement(notify: Option<NotifySql>) -> String {
    match notify {
        None => format!("{APPEND_BATCH}{ANSWER}"),
        Some(n) => format!(
            "{APPEND_BATCH}, announced AS (
    SELECT room, min(seq) AS first, max(seq) AS last FROM numbered GROUP BY room
), notified AS (
    SELECT pg_notify($11, p.payload) AS done FROM ({payloads}) p
)
{ANSWER}
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
FROM (SELECT count(*) AS n FROM notified) x WHERE x.n < 0",
            payloads = n.payloads
        ),
    }
}

/// A row of [`APPEND_BATCH`]'s answer.
#[derive(sqlx::FromRow)]
struct BatchRow {
    ord: Option<i64>,
    seq: i64,
    room: Option<String>,
    author: Option<String>,
    author_id: Option<String>,
    text: Option<String>,
    client_id: Option<String>,
    client_ip: Option<String>,
    sent_at: Option<OffsetDateTime>,
    edited_at: Option<OffsetDateTime>,
    deleted: Option<bool>,
    reply_to: Option<i64>,
    mentions: Option<String>,
    files: Option<String>,
}

/// A batch's changes in one statement: `palaver_apply_changes` (migration
/// 0005) applies them in order inside the statement, each as the SQLite
/// store's statements do, so a batch of changes costs one round trip
/// instead of three to six per change.
const APPLY_CHANGES: &str = "\
WITH applied AS MATERIALIZED (
    SELECT * FROM palaver_apply_changes($1::text[], $2::text[], $3::bigint[], $4::text[],
                                        $5::boolean[], $6::text[], $7::text[], $8::text[],
                                        $9::boolean[], $10, $11)
)";

/// The answer of [`APPLY_CHANGES`]: one row per change, in order.
const CHANGES_ANSWER: &str =
    "SELECT change_ord, change_outcome, change_seq FROM applied ORDER BY change_ord";

/// [`APPLY_CHANGES`] with the bus's notification in the same statement, a
/// range per room (a room's changes in one batch take consecutive seqs),
/// run as [`append_statement`] runs its own.
fn changes_statement(notify: Option<NotifySql>) -> String {
    match notify {
        None => format!("{APPLY_CHANGES}\n{CHANGES_ANSWER}"),
        Some(n) => format!(
            "{APPLY_CHANGES}, announced AS (
    SELECT ($1::text[])[change_ord] AS room, min(change_seq) AS first, max(change_seq) AS last
    FROM applied WHERE change_seq IS NOT NULL GROUP BY 1
), notified AS (
    SELECT pg_notify($12, p.payload) AS done FROM ({payloads}) p
), answer AS ({CHANGES_ANSWER})
SELECT * FROM answer
UNION ALL
SELECT NULL, NULL, NULL FROM (SELECT count(*) AS n FROM notified) x WHERE x.n < 0",
            payloads = n.payloads
        ),
    }
}

/// The bound columns of [`APPLY_CHANGES`], one entry per change.
#[derive(Default)]
struct ChangeColumns<'a> {
    room: Vec<&'a str>,
    kind: Vec<&'static str>,
    target: Vec<i64>,
    user: Vec<&'a str>,
    moderator: Vec<bool>,
    text: Vec<Option<&'a str>>,
    mentions: Vec<Option<String>>,
    emoji: Vec<Option<&'a str>>,
    on: Vec<bool>,
}

impl<'a> ChangeColumns<'a> {
    fn push(&mut self, room: &'a RoomName, change: &'a Change) {
        let (kind, target, user) = match change {
            // Never pushed: sends take the append statement.
            Change::Send(_) => return,
            Change::Edit {
                target, user_id, ..
            } => ("edit", *target, user_id),
            Change::Delete {
                target, user_id, ..
            } => ("delete", *target, user_id),
            Change::React {
                target, user_id, ..
            } => ("reaction", *target, user_id),
        };
        self.room.push(room.as_str());
        self.kind.push(kind);
        self.target.push(target);
        self.user.push(user.as_str());
        self.moderator.push(matches!(
            change,
            Change::Delete {
                moderator: true,
                ..
            }
        ));
        let (text, mentions) = match change {
            Change::Edit { text, mentions, .. } => (Some(text.as_str()), json_list(mentions)),
            _ => (None, None),
        };
        self.text.push(text);
        self.mentions.push(mentions);
        let (emoji, on) = match change {
            Change::React { emoji, on, .. } => (Some(emoji.as_str()), *on),
            _ => (None, false),
        };
        self.emoji.push(emoji);
        self.on.push(on);
    }
}

/// Moves a read marker forward, never past the room's last event.
const SET_READ: &str = "\
INSERT INTO read_markers (user_id, room, read_seq)
SELECT $1, r.name, $3 FROM rooms r WHERE r.name = $2 AND $3 <= r.last_seq
ON CONFLICT (user_id, room) DO UPDATE SET read_seq = GREATEST(read_markers.read_seq, EXCLUDED.read_seq)
RETURNING read_seq";
/// Sets a read marker to exactly the given seq (`mark_unread`).
const SET_READ_EXACT: &str = "\
INSERT INTO read_markers (user_id, room, read_seq)
SELECT $1, r.name, $3 FROM rooms r WHERE r.name = $2 AND $3 <= r.last_seq
ON CONFLICT (user_id, room) DO UPDATE SET read_seq = EXCLUDED.read_seq
RETURNING read_seq";
/// Users who may read the room: any for a public room (or one the send
/// is about to create), members for a private or direct one.
const MENTIONABLE: &str = "SELECT u.id FROM users u \
    WHERE u.username = ANY($2) AND NOT u.suspended \
    AND (NOT EXISTS (SELECT 1 FROM rooms r WHERE r.name = $1 AND r.visibility <> 'public') \
         OR EXISTS (SELECT 1 FROM room_members rm WHERE rm.room = $1 AND rm.user_id = u.id))";

// Registrations take the table lock so that the first-account-is-admin rule
// holds under concurrent sign-ups (they are rare; sign-ins do not lock).
super::search::impl_search!(PgStore, pool, pool, super::search::pg_search);
super::accounts::impl_accounts!(
    PgStore,
    pool,
    pool,
    Some("LOCK TABLE users IN SHARE ROW EXCLUSIVE MODE")
);

#[async_trait]
impl MessageStore for PgStore {
    async fn append_batch(
        &self,
        batch: &[Entry],
        sent_at: OffsetDateTime,
        notify: Notify,
    ) -> Result<Vec<Outcome>, StoreError> {
        let (indices, sends) = sends_of(batch);
        if indices.len() == batch.len() {
            // Sends only: one statement, its own implicit transaction.
            let appended = self
                .store_sends(&self.pool, &sends, sent_at, notify)
                .await?;
            return Ok(appended.into_iter().map(|a| Ok(Applied::Sent(a))).collect());
        }
        let changes: Vec<usize> = (0..batch.len())
            .filter(|&i| !is_send(&batch[i].1))
            .collect();
        if sends.is_empty() {
            // Changes only: one statement, its own implicit transaction.
            return self
                .store_changes(&self.pool, batch, &changes, sent_at, notify)
                .await;
        }
        // Sends first (a change may name a message sent in the same batch),
        // then the changes, in one transaction.
        let mut tx = self.pool.begin().await?;
        let appended = self.store_sends(&mut *tx, &sends, sent_at, notify).await?;
        let changed = self
            .store_changes(&mut *tx, batch, &changes, sent_at, notify)
            .await?;
        tx.commit().await?;
        let mut outcomes: Vec<Option<Outcome>> = vec![None; batch.len()];
        for (&i, a) in indices.iter().zip(appended) {
            outcomes[i] = Some(Ok(Applied::Sent(a)));
        }
        for (&i, outcome) in changes.iter().zip(changed) {
            outcomes[i] = Some(outcome);
        }
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
            .fetch_optional(&self.pool)
            .await?)
    }

    async fn mentionable(
        &self,
        room: &RoomName,
        usernames: &[String],
    ) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(MENTIONABLE)
            .bind(room.as_str())
            .bind(usernames)
            .fetch_all(&self.pool)
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

    fn pool_stats(&self) -> PoolStats {
        PoolStats {
            size: self.pool.size(),
            idle: self.pool.num_idle() as u32,
            max: self.max,
        }
    }

    fn accounts(self: std::sync::Arc<Self>) -> Option<std::sync::Arc<dyn AccountStore>> {
        Some(self)
    }

    fn search(
        self: std::sync::Arc<Self>,
    ) -> Option<std::sync::Arc<dyn super::search::SearchStore>> {
        Some(self)
    }

    fn postgres(&self) -> Option<&PgStore> {
        Some(self)
    }
}
