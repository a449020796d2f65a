//! What issue 18 (DESIGN §5d) needs from the database: people, direct
//! rooms, message search and the rows of uploaded files.
//!
//! One trait, [`SearchStore`], reached through `MessageStore::search()`.
//! The SQL that is the same on both databases is expanded into each store by
//! [`impl_search`]; full-text search differs (PostgreSQL `tsvector` and GIN,
//! SQLite FTS5) and lives in [`pg_search`] and [`sqlite_search`].

use std::collections::BTreeMap;

use async_trait::async_trait;
use sqlx::{FromRow, PgPool, SqlitePool};
use time::OffsetDateTime;

use super::StoreError;
use crate::domain::{FileRef, Message, RoomName};
use crate::identity::{User, UserId};

/// A direct room as created or found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectRoom {
    pub name: RoomName,
    pub last_seq: i64,
    /// False when the room existed already.
    pub created: bool,
}

/// The row of an uploaded file.
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct FileRow {
    pub id: String,
    pub room: String,
    pub uploader_id: String,
    pub name: String,
    pub size: i64,
    pub content_type: String,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub storage_key: String,
    /// Unix milliseconds.
    pub created_at: i64,
    pub attached_seq: Option<i64>,
}

impl FileRow {
    /// The shape a message carries.
    pub fn to_ref(&self) -> FileRef {
        FileRef {
            id: self.id.clone(),
            name: self.name.clone(),
            size: self.size,
            content_type: self.content_type.clone(),
            width: self.width.and_then(|w| u32::try_from(w).ok()),
            height: self.height.and_then(|h| u32::try_from(h).ok()),
        }
    }
}

/// A parsed search, ready for the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    /// Terms that must all appear: a word, or a phrase of words.
    pub include: Vec<String>,
    /// Terms that must not appear.
    pub exclude: Vec<String>,
    /// Only this room (the caller may read it: checked in the query too).
    pub room: Option<RoomName>,
    /// The caller; rooms they may read are public rooms and their own.
    pub user: UserId,
    /// Where the previous page ended (the `cursor` of its last hit).
    pub before: Option<String>,
    pub limit: u32,
}

/// One result: the message in its current state and where it sits.
#[derive(Debug, Clone)]
pub struct Hit {
    pub message: Message,
    /// An opaque position; results continue after it when passed back as
    /// [`SearchQuery::before`].
    pub cursor: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("the cursor is not one this server made")]
    BadCursor,
    #[error("the search index cannot answer this query")]
    Unanswerable,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for SearchError {
    fn from(e: sqlx::Error) -> Self {
        SearchError::Store(e.into())
    }
}

#[async_trait]
pub trait SearchStore: Send + Sync + 'static {
    /// Users whose username or display name starts with `prefix`
    /// (lowercase), suspended users left out, by username.
    async fn people(&self, prefix: &str, limit: u32) -> Result<Vec<User>, StoreError>;

    /// The direct room of `members` (every member, the owner included,
    /// sorted, no repeats): created with their memberships in one
    /// transaction, or found when it exists (also when another replica
    /// creates it at the same instant: the unique `direct_key` decides).
    async fn direct_room(
        &self,
        members: &[UserId],
        owner: &UserId,
        now: OffsetDateTime,
    ) -> Result<DirectRoom, StoreError>;

    /// Whether `room` is a direct room (`None`: no such room).
    async fn is_direct(&self, room: &RoomName) -> Result<Option<bool>, StoreError>;

    /// Every direct room `user` is in, with its members by username: for
    /// `GET /api/v1/rooms`.
    async fn direct_members(
        &self,
        user: &UserId,
    ) -> Result<BTreeMap<RoomName, Vec<User>>, StoreError>;

    /// Messages matching `query` in rooms the caller may read, newest
    /// first, never a deleted one; at most `query.limit`.
    async fn search(&self, query: &SearchQuery) -> Result<Vec<Hit>, SearchError>;

    async fn insert_file(&self, file: &FileRow) -> Result<(), StoreError>;
    async fn file(&self, id: &str) -> Result<Option<FileRow>, StoreError>;
    /// Records that the message `seq` of `room` carries `ids`.
    async fn attach_files(&self, room: &str, seq: i64, ids: &[String]) -> Result<(), StoreError>;
    /// Files of the message `seq` of `room`.
    async fn message_files(&self, room: &str, seq: i64) -> Result<Vec<FileRow>, StoreError>;
    /// Up to `limit` uploads created before `cutoff` (Unix ms) that no
    /// message carries.
    async fn stale_uploads(&self, cutoff: i64, limit: u32) -> Result<Vec<FileRow>, StoreError>;
    /// Up to `limit` files whose message is deleted.
    async fn files_of_deleted(&self, limit: u32) -> Result<Vec<FileRow>, StoreError>;
    async fn delete_file(&self, id: &str) -> Result<(), StoreError>;
}

/// The display shape of a stored row: the room, the message columns both
/// searches return, and the SQLite position.
#[derive(Debug, FromRow)]
pub(super) struct HitRow {
    room: String,
    seq: i64,
    author: String,
    author_id: Option<String>,
    text: String,
    client_id: Option<String>,
    sent_at: OffsetDateTime,
    edited_at: Option<OffsetDateTime>,
    reply_to: Option<i64>,
    mentions: Option<String>,
    files: Option<String>,
    search_id: Option<i64>,
}

impl HitRow {
    fn into_message(self) -> Option<(Message, Option<i64>)> {
        let room = RoomName::parse(&self.room).ok()?;
        let mentions = self
            .mentions
            .and_then(|m| serde_json::from_str(&m).ok())
            .unwrap_or_default();
        let files = self
            .files
            .and_then(|f| serde_json::from_str(&f).ok())
            .unwrap_or_default();
        Some((
            Message {
                room,
                seq: self.seq,
                author: self.author,
                author_id: self.author_id,
                text: self.text,
                sent_at: self.sent_at,
                client_id: self.client_id,
                client_ip: String::new(),
                edited_at: self.edited_at,
                deleted: false,
                reply_to: self.reply_to,
                reactions: Vec::new(),
                mentions,
                files,
                as_of: self.seq,
                frame: Default::default(),
            },
            self.search_id,
        ))
    }
}

const HIT_COLUMNS: &str = "m.room, m.seq, m.author, m.author_id, m.text, m.client_id, \
    m.sent_at, m.edited_at, m.reply_to, m.mentions, m.files";

/// Whether `term` is searched by substring: it holds a Chinese, Japanese
/// or Korean character (the ranges of the migrations).
pub fn is_cjk(term: &str) -> bool {
    term.chars().any(|c| {
        matches!(c as u32,
            0x3040..=0x30ff | 0x3400..=0x4dbf | 0x4e00..=0x9fff | 0xac00..=0xd7af | 0xf900..=0xfaff)
    })
}

/// `"term"` with inner quotes doubled: a phrase to FTS5 and to
/// `websearch_to_tsquery`, whatever the user typed (operators included).
fn quoted(term: &str) -> String {
    format!("\"{}\"", term.replace('"', "\"\""))
}

/// Share of all messages (as PostgreSQL estimates both) from which
/// [`pg_search`] walks the newest-first index instead of visiting every
/// match through the GIN index: a page of 20 hits then costs about
/// `20 / (share matching × share readable)` rows, while the GIN plan visits
/// and sorts every match, readable or not. Relative, so that the planner's
/// default estimate for a word it holds no statistics on (about half the
/// rarest tracked word's share: 0.04% at 10M messages) stays below it at any
/// size.
pub const WALK_FROM_SHARE: f64 = 0.002;

/// The query text `websearch_to_tsquery` takes: every term quoted (a
/// phrase; no operator the user typed survives), exclusions prefixed by
/// '-'. Inner quotes cannot be escaped there, so they become spaces.
fn pg_query_text(q: &SearchQuery) -> String {
    let phrase = |t: &str| format!("\"{}\"", t.replace('"', " "));
    let mut text: Vec<String> = q.include.iter().map(|t| phrase(t)).collect();
    text.extend(q.exclude.iter().map(|t| format!("-{}", phrase(t))));
    text.join(" ")
}

/// PostgreSQL's own estimates of the messages matching `text` and of all
/// messages (the planner's row counts, from the column's statistics),
/// planned for these very words: an unnamed statement, never a cached
/// generic plan. One round trip, no row read.
pub async fn pg_estimated_share(pool: &PgPool, text: &str) -> Result<f64, SearchError> {
    let plan: serde_json::Value = sqlx::query_scalar(
        "EXPLAIN (FORMAT JSON) SELECT 1 FROM messages m \
         WHERE m.search @@ websearch_to_tsquery('simple', palaver_search_text($1)) \
         UNION ALL SELECT 1 FROM messages",
    )
    .bind(text)
    .persistent(false)
    .fetch_one(pool)
    .await?;
    let rows = |branch: usize| {
        plan.pointer(&format!("/0/Plan/Plans/{branch}/Plan Rows"))
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(0.0)
    };
    let (matching, all) = (rows(0), rows(1));
    Ok(if all >= 1.0 { matching / all } else { 0.0 })
}

/// PostgreSQL: `websearch_to_tsquery('simple', palaver_search_text(q))`
/// over the generated `search` column, access and deletion checked in the
/// same query, newest first by `(sent_at, room, seq)`. Two plans, chosen by
/// PostgreSQL's estimate of the matches: few, and the GIN index finds them
/// all and they are sorted (the order is on an expression, so the
/// newest-first index cannot be used); many, and the newest-first index
/// (`messages_newest`) is walked, each row checked, until the page is full.
pub async fn pg_search(pool: &PgPool, q: &SearchQuery) -> Result<Vec<Hit>, SearchError> {
    let text = pg_query_text(q);
    let cursor = match &q.before {
        None => None,
        Some(c) => Some(parse_pg_cursor(c).ok_or(SearchError::BadCursor)?),
    };
    let walk = pg_estimated_share(pool, &text).await? >= WALK_FROM_SHARE;
    let order = if walk {
        "m.sent_at DESC, m.room DESC, m.seq DESC"
    } else {
        "m.sent_at + INTERVAL '0' DESC, m.room DESC, m.seq DESC"
    };
    let after = if cursor.is_some() {
        "AND (m.sent_at, m.room, m.seq) < ($5, $6, $4)"
    } else {
        "AND $4::BIGINT IS NULL AND $5::TIMESTAMPTZ IS NULL AND $6::TEXT IS NULL"
    };
    let sql = format!(
        "SELECT {HIT_COLUMNS}, NULL::BIGINT AS search_id FROM messages m \
         JOIN rooms r ON r.name = m.room \
         WHERE m.search @@ websearch_to_tsquery('simple', palaver_search_text($1)) \
         AND NOT m.deleted \
         AND ($2::TEXT IS NULL OR m.room = $2) \
         AND (r.visibility = 'public' OR EXISTS (SELECT 1 FROM room_members rm \
              WHERE rm.room = m.room AND rm.user_id = $3)) \
         {after} ORDER BY {order} LIMIT $7"
    );
    let (ts, seq, room) = match cursor {
        None => (None, None, None),
        Some((ts, seq, room)) => {
            let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ts))
                .map_err(|_| SearchError::BadCursor)?;
            (Some(at), Some(seq), Some(room))
        }
    };
    let rows: Vec<HitRow> = sqlx::query_as(&sql)
        .bind(&text)
        .bind(q.room.as_ref().map(RoomName::as_str))
        .bind(q.user.as_str())
        .bind(seq)
        .bind(ts)
        .bind(room)
        .bind(i64::from(q.limit))
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(HitRow::into_message)
        .map(|(message, _)| {
            let nanos = message.sent_at.unix_timestamp_nanos();
            let cursor = format!("{nanos}.{}.{}", message.seq, message.room.as_str());
            Hit { message, cursor }
        })
        .collect())
}

fn parse_pg_cursor(c: &str) -> Option<(i64, i64, String)> {
    let mut parts = c.splitn(3, '.');
    let ts = parts.next()?.parse::<i64>().ok()?;
    let seq = parts.next()?.parse::<i64>().ok()?;
    let room = RoomName::parse(parts.next()?).ok()?;
    (seq != i64::MAX).then(|| (ts, seq, room.as_str().to_owned()))
}

/// SQLite: FTS5. Words go to `message_words` (one MATCH expression of
/// quoted phrases), terms in CJK scripts to `message_cjk` (GLOB substring);
/// the query is driven by the first table in rowid order, newest first, so
/// `LIMIT` stops the scan; access and deletion are checked in the same
/// query.
pub async fn sqlite_search(pool: &SqlitePool, q: &SearchQuery) -> Result<Vec<Hit>, SearchError> {
    let (words, cjk): (Vec<&String>, Vec<&String>) = q.include.iter().partition(|t| !is_cjk(t));
    let (not_words, not_cjk): (Vec<&String>, Vec<&String>) =
        q.exclude.iter().partition(|t| !is_cjk(t));
    let before = match &q.before {
        None => i64::MAX,
        Some(c) => c.parse::<i64>().map_err(|_| SearchError::BadCursor)?,
    };
    let glob = |t: &str| {
        let mut out = String::from("*");
        for c in t.chars() {
            match c {
                '*' | '?' | '[' => {
                    out.push('[');
                    out.push(c);
                    out.push(']');
                }
                _ => out.push(c),
            }
        }
        out.push('*');
        out
    };
    let mut binds: Vec<String> = Vec::new();
    let mut filters: Vec<String> = Vec::new();
    let driver = if !words.is_empty() {
        let mut expr = words
            .iter()
            .map(|t| quoted(t))
            .collect::<Vec<_>>()
            .join(" AND ");
        for t in &not_words {
            expr.push_str(" NOT ");
            expr.push_str(&quoted(t));
        }
        binds.push(expr);
        filters.push(format!("message_words MATCH ${}", binds.len()));
        for t in &cjk {
            binds.push(glob(t));
            filters.push(format!(
                "i.id IN (SELECT rowid FROM message_cjk WHERE text GLOB ${})",
                binds.len()
            ));
        }
        "message_words"
    } else {
        for t in &cjk {
            binds.push(glob(t));
            filters.push(format!("message_cjk.text GLOB ${}", binds.len()));
        }
        for t in &not_words {
            binds.push(quoted(t));
            filters.push(format!(
                "i.id NOT IN (SELECT rowid FROM message_words WHERE message_words MATCH ${})",
                binds.len()
            ));
        }
        "message_cjk"
    };
    for t in &not_cjk {
        binds.push(glob(t));
        filters.push(format!(
            "i.id NOT IN (SELECT rowid FROM message_cjk WHERE text GLOB ${})",
            binds.len()
        ));
    }
    let n = binds.len();
    let sql = format!(
        "SELECT {HIT_COLUMNS}, i.id AS search_id FROM {driver} \
         JOIN message_search_ids i ON i.id = {driver}.rowid \
         JOIN messages m ON m.room = i.room AND m.seq = i.seq \
         JOIN rooms r ON r.name = m.room \
         WHERE {filters} AND {driver}.rowid < ${b} AND NOT m.deleted \
         AND (${room} IS NULL OR m.room = ${room}) \
         AND (r.visibility = 'public' OR EXISTS (SELECT 1 FROM room_members rm \
              WHERE rm.room = m.room AND rm.user_id = ${user})) \
         ORDER BY {driver}.rowid DESC LIMIT ${limit}",
        filters = filters.join(" AND "),
        b = n + 1,
        room = n + 2,
        user = n + 3,
        limit = n + 4,
    );
    let mut query = sqlx::query_as::<_, HitRow>(&sql);
    for b in &binds {
        query = query.bind(b.as_str());
    }
    let rows: Vec<HitRow> = query
        .bind(before)
        .bind(q.room.as_ref().map(RoomName::as_str))
        .bind(q.user.as_str())
        .bind(i64::from(q.limit))
        .fetch_all(pool)
        .await
        .map_err(|e| match &e {
            // FTS5 refuses an expression it cannot parse; the terms are
            // quoted, so this is a query it cannot answer, not a fault.
            sqlx::Error::Database(d) if d.message().contains("fts5") => SearchError::Unanswerable,
            _ => SearchError::from(e),
        })?;
    Ok(rows
        .into_iter()
        .filter_map(HitRow::into_message)
        .map(|(message, id)| Hit {
            cursor: id.unwrap_or_default().to_string(),
            message,
        })
        .collect())
}

/// Whether a LIKE pattern character needs escaping with `\`.
pub fn like_prefix(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// A direct room's name: `dm-` and 32 hex characters of the SHA-256 of its
/// key; `attempt` > 0 gives a random name instead (the hashed one was taken
/// by an ordinary room).
pub fn direct_name(key: &str, attempt: u32) -> RoomName {
    use sha2::{Digest, Sha256};
    let hex: String = if attempt == 0 {
        Sha256::digest(key.as_bytes())
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect()
    } else {
        uuid::Uuid::new_v4().simple().to_string()
    };
    RoomName::parse(&format!("dm-{hex}")).expect("dm- and hex is a valid room name")
}

pub(super) mod sql {
    pub const PEOPLE: &str = "SELECT id, username, display_name, role, suspended, password_hash \
        FROM users WHERE NOT suspended \
        AND (lower(username) LIKE $1 ESCAPE '\\' OR lower(display_name) LIKE $1 ESCAPE '\\') \
        ORDER BY username LIMIT $2";
    pub const INSERT_DIRECT: &str = "INSERT INTO rooms \
        (name, last_seq, created_at, visibility, owner_id, direct_key) \
        VALUES ($1, 0, $2, 'private', $3, $4) ON CONFLICT DO NOTHING";
    pub const DIRECT_BY_KEY: &str = "SELECT name, last_seq FROM rooms WHERE direct_key = $1";
    pub const IS_DIRECT: &str = "SELECT direct_key IS NOT NULL FROM rooms WHERE name = $1";
    pub const DIRECT_MEMBERS: &str = "SELECT m.room, u.id, u.username, u.display_name, u.role, \
        u.suspended, u.password_hash FROM room_members mine \
        JOIN rooms r ON r.name = mine.room AND r.direct_key IS NOT NULL \
        JOIN room_members m ON m.room = r.name JOIN users u ON u.id = m.user_id \
        WHERE mine.user_id = $1 ORDER BY m.room, u.username";
    pub const INSERT_FILE: &str = "INSERT INTO files (id, room, uploader_id, name, size, \
        content_type, width, height, storage_key, created_at) \
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
    pub const FILE: &str = "SELECT id, room, uploader_id, name, size, content_type, width, \
        height, storage_key, created_at, attached_seq FROM files WHERE id = $1";
    pub const ATTACH: &str =
        "UPDATE files SET attached_seq = $3 WHERE id = $1 AND room = $2 AND attached_seq IS NULL";
    pub const MESSAGE_FILES: &str = "SELECT id, room, uploader_id, name, size, content_type, \
        width, height, storage_key, created_at, attached_seq FROM files \
        WHERE room = $1 AND attached_seq = $2";
    /// Not attached, and no message of its room names it (a send that
    /// stored the message but died before recording the seq).
    pub const STALE: &str = "SELECT id, room, uploader_id, name, size, content_type, width, \
        height, storage_key, created_at, attached_seq FROM files f \
        WHERE attached_seq IS NULL AND created_at < $1 \
        AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.room = f.room \
            AND m.files IS NOT NULL AND m.files LIKE '%' || f.id || '%') \
        ORDER BY created_at LIMIT $2";
    pub const OF_DELETED: &str = "SELECT f.id, f.room, f.uploader_id, f.name, f.size, \
        f.content_type, f.width, f.height, f.storage_key, f.created_at, f.attached_seq \
        FROM files f JOIN messages m ON m.room = f.room AND m.seq = f.attached_seq \
        WHERE f.attached_seq IS NOT NULL AND m.deleted LIMIT $1";
    pub const DELETE_FILE: &str = "DELETE FROM files WHERE id = $1";
}

/// Implements [`SearchStore`] for `$store`, writing through `self.$writer`,
/// reading through `self.$reader`, searching with `$search` (a function of
/// the reader pool and the query).
macro_rules! impl_search {
    ($store:ty, $writer:ident, $reader:ident, $search:path) => {
        #[async_trait::async_trait]
        impl $crate::store::search::SearchStore for $store {
            async fn people(
                &self,
                prefix: &str,
                limit: u32,
            ) -> Result<Vec<$crate::identity::User>, $crate::store::StoreError> {
                use $crate::store::accounts::{user_of, UserRow};
                let rows: Vec<UserRow> = sqlx::query_as($crate::store::search::sql::PEOPLE)
                    .bind($crate::store::search::like_prefix(prefix))
                    .bind(i64::from(limit))
                    .fetch_all(&self.$reader)
                    .await?;
                Ok(rows.into_iter().map(user_of).collect())
            }

            async fn direct_room(
                &self,
                members: &[$crate::identity::UserId],
                owner: &$crate::identity::UserId,
                now: time::OffsetDateTime,
            ) -> Result<$crate::store::search::DirectRoom, $crate::store::StoreError> {
                use $crate::store::search::{direct_name, sql, DirectRoom};
                let key = members
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(",");
                for attempt in 0..3 {
                    let name = direct_name(&key, attempt);
                    let mut tx = self.$writer.begin().await?;
                    let inserted = sqlx::query(sql::INSERT_DIRECT)
                        .bind(name.as_str())
                        .bind(now)
                        .bind(owner.as_str())
                        .bind(&key)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if inserted == 1 {
                        for member in members {
                            sqlx::query($crate::store::accounts::sql::ADD_MEMBER)
                                .bind(name.as_str())
                                .bind(member.as_str())
                                .bind(now)
                                .execute(&mut *tx)
                                .await?;
                        }
                        tx.commit().await?;
                        return Ok(DirectRoom {
                            name,
                            last_seq: 0,
                            created: true,
                        });
                    }
                    tx.rollback().await?;
                    // Either this set of people has its room (perhaps
                    // created a moment ago by another replica) or an
                    // ordinary room holds the name: try another name.
                    let found: Option<(String, i64)> = sqlx::query_as(sql::DIRECT_BY_KEY)
                        .bind(&key)
                        .fetch_optional(&self.$writer)
                        .await?;
                    if let Some((name, last_seq)) = found {
                        if let Ok(name) = $crate::domain::RoomName::parse(&name) {
                            return Ok(DirectRoom {
                                name,
                                last_seq,
                                created: false,
                            });
                        }
                    }
                }
                Err($crate::store::StoreError::Inconsistent)
            }

            async fn is_direct(
                &self,
                room: &$crate::domain::RoomName,
            ) -> Result<Option<bool>, $crate::store::StoreError> {
                Ok(sqlx::query_scalar($crate::store::search::sql::IS_DIRECT)
                    .bind(room.as_str())
                    .fetch_optional(&self.$reader)
                    .await?)
            }

            async fn direct_members(
                &self,
                user: &$crate::identity::UserId,
            ) -> Result<
                std::collections::BTreeMap<$crate::domain::RoomName, Vec<$crate::identity::User>>,
                $crate::store::StoreError,
            > {
                use $crate::store::accounts::{user_of, UserRow};
                #[derive(sqlx::FromRow)]
                struct Row {
                    room: String,
                    #[sqlx(flatten)]
                    user: UserRow,
                }
                let rows: Vec<Row> = sqlx::query_as($crate::store::search::sql::DIRECT_MEMBERS)
                    .bind(user.as_str())
                    .fetch_all(&self.$reader)
                    .await?;
                let mut out = std::collections::BTreeMap::new();
                for row in rows {
                    if let Ok(room) = $crate::domain::RoomName::parse(&row.room) {
                        out.entry(room)
                            .or_insert_with(Vec::new)
                            .push(user_of(row.user));
                    }
                }
                Ok(out)
            }

            async fn search(
                &self,
                query: &$crate::store::search::SearchQuery,
            ) -> Result<Vec<$crate::store::search::Hit>, $crate::store::search::SearchError> {
                $search(&self.$reader, query).await
            }

            async fn insert_file(
                &self,
                f: &$crate::store::search::FileRow,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query($crate::store::search::sql::INSERT_FILE)
                    .bind(&f.id)
                    .bind(&f.room)
                    .bind(&f.uploader_id)
                    .bind(&f.name)
                    .bind(f.size)
                    .bind(&f.content_type)
                    .bind(f.width)
                    .bind(f.height)
                    .bind(&f.storage_key)
                    .bind(f.created_at)
                    .execute(&self.$writer)
                    .await?;
                Ok(())
            }

            async fn file(
                &self,
                id: &str,
            ) -> Result<Option<$crate::store::search::FileRow>, $crate::store::StoreError> {
                Ok(sqlx::query_as($crate::store::search::sql::FILE)
                    .bind(id)
                    .fetch_optional(&self.$reader)
                    .await?)
            }

            async fn attach_files(
                &self,
                room: &str,
                seq: i64,
                ids: &[String],
            ) -> Result<(), $crate::store::StoreError> {
                let mut tx = self.$writer.begin().await?;
                for id in ids {
                    sqlx::query($crate::store::search::sql::ATTACH)
                        .bind(id)
                        .bind(room)
                        .bind(seq)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn message_files(
                &self,
                room: &str,
                seq: i64,
            ) -> Result<Vec<$crate::store::search::FileRow>, $crate::store::StoreError> {
                Ok(sqlx::query_as($crate::store::search::sql::MESSAGE_FILES)
                    .bind(room)
                    .bind(seq)
                    .fetch_all(&self.$writer)
                    .await?)
            }

            async fn stale_uploads(
                &self,
                cutoff: i64,
                limit: u32,
            ) -> Result<Vec<$crate::store::search::FileRow>, $crate::store::StoreError> {
                Ok(sqlx::query_as($crate::store::search::sql::STALE)
                    .bind(cutoff)
                    .bind(i64::from(limit))
                    .fetch_all(&self.$writer)
                    .await?)
            }

            async fn files_of_deleted(
                &self,
                limit: u32,
            ) -> Result<Vec<$crate::store::search::FileRow>, $crate::store::StoreError> {
                Ok(sqlx::query_as($crate::store::search::sql::OF_DELETED)
                    .bind(i64::from(limit))
                    .fetch_all(&self.$writer)
                    .await?)
            }

            async fn delete_file(&self, id: &str) -> Result<(), $crate::store::StoreError> {
                sqlx::query($crate::store::search::sql::DELETE_FILE)
                    .bind(id)
                    .execute(&self.$writer)
                    .await?;
                Ok(())
            }
        }
    };
}
pub(crate) use impl_search;
