//! The account store: users, sessions, room visibility and membership.
//!
//! Like the message reads, the SQL is written once for both databases and
//! expanded into an [`AccountStore`] impl per store by [`impl_accounts`].
//! Sessions are stored by the SHA-256 of their token, never the token.

use async_trait::async_trait;
use sqlx::FromRow;
use time::OffsetDateTime;

use super::{RoomSummary, StoreError};
use crate::domain::RoomName;
use crate::identity::{Role, User, UserId, Username, Visibility};

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub username: Username,
    pub display_name: String,
    /// `None`: `admin` when this is the first account, else `member`.
    pub role: Option<Role>,
    pub password_hash: Option<String>,
    pub oidc_subject: Option<String>,
}

/// Why a user or room could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("already taken")]
    Taken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for CreateError {
    fn from(e: sqlx::Error) -> Self {
        let e = StoreError::from(e);
        if e.is_unique_violation() {
            CreateError::Taken
        } else {
            CreateError::Store(e)
        }
    }
}

/// A room's access facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomInfo {
    pub visibility: Visibility,
    pub owner_id: Option<UserId>,
}

/// A live session and whose it is.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub user: User,
    pub expires_at: OffsetDateTime,
}

#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    async fn create_user(&self, user: NewUser, now: OffsetDateTime) -> Result<User, CreateError>;
    /// The user and their password hash (if they have one).
    async fn user_by_username(
        &self,
        username: &Username,
    ) -> Result<Option<(User, Option<String>)>, StoreError>;
    async fn user_by_oidc_subject(&self, subject: &str) -> Result<Option<User>, StoreError>;
    /// Returns the updated user, or `None` when there is no such user.
    async fn set_role(&self, username: &Username, role: Role) -> Result<Option<User>, StoreError>;
    async fn set_password_hash(
        &self,
        username: &Username,
        hash: &str,
    ) -> Result<Option<User>, StoreError>;
    /// Sets the flag; when suspending, deletes the user's sessions in the same
    /// transaction.
    async fn set_suspended(
        &self,
        username: &Username,
        suspended: bool,
    ) -> Result<Option<User>, StoreError>;

    async fn create_session(
        &self,
        id: &str,
        user: &UserId,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError>;
    async fn session(&self, id: &str) -> Result<Option<SessionRow>, StoreError>;
    async fn extend_session(&self, id: &str, expires_at: OffsetDateTime) -> Result<(), StoreError>;
    async fn delete_session(&self, id: &str) -> Result<(), StoreError>;
    /// Deletes every session of `user`.
    async fn revoke_sessions(&self, user: &UserId) -> Result<(), StoreError>;
    /// Deletes expired sessions; returns how many.
    async fn delete_expired_sessions(&self, now: OffsetDateTime) -> Result<u64, StoreError>;

    async fn room_info(&self, room: &RoomName) -> Result<Option<RoomInfo>, StoreError>;
    /// Creates a room owned (and joined) by `owner`.
    async fn create_room(
        &self,
        room: &RoomName,
        visibility: Visibility,
        owner: &UserId,
        now: OffsetDateTime,
    ) -> Result<RoomSummary, CreateError>;
    async fn is_member(&self, room: &RoomName, user: &UserId) -> Result<bool, StoreError>;
    async fn members(&self, room: &RoomName) -> Result<Vec<User>, StoreError>;
    async fn add_member(
        &self,
        room: &RoomName,
        user: &UserId,
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
    async fn remove_member(&self, room: &RoomName, user: &UserId) -> Result<(), StoreError>;
    /// Public rooms and the private rooms `user` belongs to, by name.
    async fn rooms_visible_to(&self, user: &UserId) -> Result<Vec<RoomSummary>, StoreError>;
    /// Sets a user's display name; `None` when the user does not exist.
    async fn set_display_name(&self, user: &UserId, name: &str)
        -> Result<Option<User>, StoreError>;
    /// Deletes every session of `user` but `keep`; returns the deleted ids.
    async fn delete_other_sessions(
        &self,
        user: &UserId,
        keep: &str,
    ) -> Result<Vec<String>, StoreError>;
    /// Sets a room's topic; `None` when the room does not exist.
    async fn set_topic(
        &self,
        room: &RoomName,
        topic: &str,
    ) -> Result<Option<RoomTopic>, StoreError>;
}

/// A room with its topic, as `PATCH /api/v1/rooms/{room}` answers it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct RoomTopic {
    #[schema(value_type = String, example = "general")]
    pub name: RoomName,
    /// Sequence number of the newest message (0 when the room is empty).
    pub last_seq: i64,
    pub visibility: Visibility,
    /// At most 250 characters; empty when none is set.
    pub topic: String,
}

pub(super) fn room_topic(row: (String, i64, String, String)) -> Option<RoomTopic> {
    Some(RoomTopic {
        name: RoomName::parse(&row.0).ok()?,
        last_seq: row.1,
        visibility: Visibility::from_stored(&row.2),
        topic: row.3,
    })
}

#[derive(Debug, FromRow)]
pub(super) struct UserRow {
    id: String,
    username: String,
    display_name: String,
    role: String,
    suspended: bool,
    password_hash: Option<String>,
}

impl UserRow {
    fn into_user(self) -> (User, Option<String>) {
        let user = User {
            id: UserId::from_stored(self.id),
            username: Username::from_stored(self.username),
            display_name: self.display_name,
            role: self.role.parse().unwrap_or(Role::Member),
            suspended: self.suspended,
        };
        (user, self.password_hash)
    }
}

#[derive(Debug, FromRow)]
pub(super) struct SessionJoin {
    #[sqlx(flatten)]
    user: UserRow,
    expires_at: OffsetDateTime,
}

pub(super) fn session_row(row: SessionJoin) -> SessionRow {
    SessionRow {
        user: row.user.into_user().0,
        expires_at: row.expires_at,
    }
}

pub(super) fn user_of(row: UserRow) -> User {
    row.into_user().0
}

pub(super) fn with_hash(row: UserRow) -> (User, Option<String>) {
    row.into_user()
}

/// How a database reads [`AccountStore::rooms_visible_to`]'s rows: one
/// statement either way.
#[async_trait]
pub(super) trait RoomsQuery {
    async fn rooms_rows(&self, user: &str) -> Result<Vec<RoomRow>, sqlx::Error>;
}

#[async_trait]
impl RoomsQuery for sqlx::SqlitePool {
    async fn rooms_rows(&self, user: &str) -> Result<Vec<RoomRow>, sqlx::Error> {
        sqlx::query_as(sql::ROOMS_VISIBLE_TO)
            .bind(user)
            .fetch_all(self)
            .await
    }
}

#[async_trait]
impl RoomsQuery for sqlx::PgPool {
    /// In a transaction that sets two planner settings for it alone: JIT
    /// off (the plan's estimate, 100 unread rows per room, crosses
    /// `jit_above_cost` for a member of about 250 rooms, and compiling it
    /// took 55 ms where running it takes about 10), and bitmap scans off
    /// (the probes walk the primary key in order either way; a plain index
    /// scan spent 9.5 ms of CPU where the bitmap scan the planner prefers
    /// spent 12.5, at 10 million messages).
    async fn rooms_rows(&self, user: &str) -> Result<Vec<RoomRow>, sqlx::Error> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "SELECT set_config('jit', 'off', true), set_config('enable_bitmapscan', 'off', true)",
        )
        .execute(&mut *tx)
        .await?;
        let rows = sqlx::query_as(sql::ROOMS_VISIBLE_TO_PG)
            .bind(user)
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(rows)
    }
}

/// A row of [`sql::ROOMS_VISIBLE_TO`] (or [`sql::ROOMS_VISIBLE_TO_PG`]).
#[derive(Debug, FromRow)]
pub(super) struct RoomRow {
    name: String,
    last_seq: i64,
    visibility: String,
    topic: String,
    pub(super) direct: bool,
    owner: Option<String>,
    joined: bool,
    read_seq: i64,
    unread: i64,
    mentions: i64,
}

/// A row of [`sql::DIRECT_MEMBERS`].
#[derive(Debug, FromRow)]
pub(super) struct DirectMember {
    room: String,
    #[sqlx(flatten)]
    user: UserRow,
}

pub(super) fn room_summaries(
    rows: Vec<RoomRow>,
    members: Vec<DirectMember>,
) -> Vec<crate::store::RoomSummary> {
    let mut by_room: std::collections::HashMap<String, Vec<User>> = Default::default();
    for m in members {
        by_room
            .entry(m.room)
            .or_default()
            .push(m.user.into_user().0);
    }
    rows.into_iter()
        .filter_map(|r| {
            let name = crate::domain::RoomName::parse(&r.name).ok()?;
            let visibility = if r.direct {
                Visibility::Direct
            } else {
                Visibility::from_stored(&r.visibility)
            };
            Some(crate::store::RoomSummary {
                members: r
                    .direct
                    .then(|| by_room.remove(&r.name).unwrap_or_default()),
                name,
                last_seq: r.last_seq,
                visibility,
                topic: r.topic,
                owner: r.owner,
                joined: r.joined,
                read_seq: r.read_seq,
                unread: r.unread,
                mentions: r.mentions,
            })
        })
        .collect()
}

pub(super) fn room_info(row: (String, Option<String>)) -> RoomInfo {
    RoomInfo {
        visibility: Visibility::from_stored(&row.0),
        owner_id: row.1.map(UserId::from_stored),
    }
}

pub(super) mod sql {
    pub const INSERT_USER: &str = "INSERT INTO users \
        (id, username, display_name, role, password_hash, oidc_subject, created_at) \
        VALUES ($1, $2, $3, \
        COALESCE($4, CASE WHEN EXISTS (SELECT 1 FROM users) THEN 'member' ELSE 'admin' END), \
        $5, $6, $7) \
        RETURNING id, username, display_name, role, suspended, password_hash";
    pub const BY_USERNAME: &str = "SELECT id, username, display_name, role, suspended, \
        password_hash FROM users WHERE username = $1";
    pub const BY_SUBJECT: &str = "SELECT id, username, display_name, role, suspended, \
        password_hash FROM users WHERE oidc_subject = $1";
    pub const SET_ROLE: &str = "UPDATE users SET role = $2 WHERE username = $1 \
        RETURNING id, username, display_name, role, suspended, password_hash";
    pub const SET_HASH: &str = "UPDATE users SET password_hash = $2 WHERE username = $1 \
        RETURNING id, username, display_name, role, suspended, password_hash";
    pub const SET_SUSPENDED: &str = "UPDATE users SET suspended = $2 WHERE username = $1 \
        RETURNING id, username, display_name, role, suspended, password_hash";
    pub const DELETE_SESSIONS_OF: &str = "DELETE FROM sessions WHERE user_id = $1";
    pub const INSERT_SESSION: &str =
        "INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)";
    pub const SESSION: &str = "SELECT u.id, u.username, u.display_name, u.role, u.suspended, \
        u.password_hash, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id \
        WHERE s.id = $1";
    pub const EXTEND_SESSION: &str = "UPDATE sessions SET expires_at = $2 WHERE id = $1";
    pub const DELETE_SESSION: &str = "DELETE FROM sessions WHERE id = $1";
    pub const DELETE_EXPIRED: &str = "DELETE FROM sessions WHERE expires_at < $1";
    pub const ROOM_INFO: &str = "SELECT visibility, owner_id FROM rooms WHERE name = $1";
    pub const INSERT_ROOM: &str = "INSERT INTO rooms (name, last_seq, created_at, visibility, \
        owner_id) VALUES ($1, 0, $2, $3, $4)";
    pub const IS_MEMBER: &str = "SELECT 1 FROM room_members WHERE room = $1 AND user_id = $2";
    pub const MEMBERS: &str = "SELECT u.id, u.username, u.display_name, u.role, u.suspended, \
        u.password_hash FROM room_members m JOIN users u ON u.id = m.user_id \
        WHERE m.room = $1 ORDER BY u.username";
    pub const ADD_MEMBER: &str = "INSERT INTO room_members (room, user_id, added_at) \
        VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
    pub const REMOVE_MEMBER: &str = "DELETE FROM room_members WHERE room = $1 AND user_id = $2";
    pub const SET_DISPLAY_NAME: &str = "UPDATE users SET display_name = $2 WHERE id = $1 \
        RETURNING id, username, display_name, role, suspended, password_hash";
    pub const DELETE_OTHER_SESSIONS: &str =
        "DELETE FROM sessions WHERE user_id = $1 AND id <> $2 RETURNING id";
    pub const SET_TOPIC: &str = "UPDATE rooms SET topic = $2 WHERE name = $1 \
        RETURNING name, last_seq, visibility, topic";
    /// The rooms `$1` may read with their reading state, in one query (the
    /// SQLite statement): the unread messages of every room are counted by
    /// one join over the messages after each read marker (the primary key's
    /// range), not by a query per room.
    pub const ROOMS_VISIBLE_TO: &str = "SELECT r.name, r.last_seq, r.visibility, r.topic, \
        r.direct_key IS NOT NULL AS direct, \
        (SELECT o.username FROM users o WHERE o.id = r.owner_id) AS owner, \
        EXISTS (SELECT 1 FROM room_members j WHERE j.room = r.name AND j.user_id = $1) AS joined, \
        coalesce(rm.read_seq, 0) AS read_seq, count(m.seq) AS unread, \
        count(m.seq) FILTER (WHERE r.direct_key IS NOT NULL \
            OR m.mentions LIKE '%\"' || $1 || '\"%') AS mentions \
        FROM rooms r \
        LEFT JOIN read_markers rm ON rm.room = r.name AND rm.user_id = $1 \
        LEFT JOIN messages m ON m.room = r.name AND m.seq > coalesce(rm.read_seq, 0) \
            AND NOT m.deleted AND coalesce(m.author_id, '') <> $1 \
        WHERE r.visibility = 'public' \
            OR EXISTS (SELECT 1 FROM room_members v WHERE v.room = r.name AND v.user_id = $1) \
        GROUP BY r.name, r.last_seq, r.visibility, r.topic, r.direct_key, r.owner_id, rm.read_seq \
        ORDER BY r.name";
    /// [`ROOMS_VISIBLE_TO`] for PostgreSQL, same rows: the counts of each
    /// room come from one probe of the primary key between its read marker
    /// and its head (a `LATERAL` subquery), so the cost follows the unread
    /// messages, not all messages (a join was planned as a hash join over
    /// the whole table: 12 s at 10 million messages). `m.seq <= r.last_seq`
    /// holds for every message (the seq comes from `last_seq`, bumped in the
    /// storing transaction) and bounds the range on both sides, which
    /// narrows the planner's estimate of unread rows per room.
    pub const ROOMS_VISIBLE_TO_PG: &str = "SELECT r.name, r.last_seq, r.visibility, r.topic, \
        r.direct_key IS NOT NULL AS direct, \
        (SELECT o.username FROM users o WHERE o.id = r.owner_id) AS owner, \
        EXISTS (SELECT 1 FROM room_members j WHERE j.room = r.name AND j.user_id = $1) AS joined, \
        coalesce(rm.read_seq, 0) AS read_seq, c.unread, c.mentions \
        FROM rooms r \
        LEFT JOIN read_markers rm ON rm.room = r.name AND rm.user_id = $1 \
        CROSS JOIN LATERAL (SELECT count(*) AS unread, \
            count(*) FILTER (WHERE r.direct_key IS NOT NULL \
                OR m.mentions LIKE '%\"' || $1 || '\"%') AS mentions \
            FROM messages m WHERE m.room = r.name \
            AND m.seq > coalesce(rm.read_seq, 0) AND m.seq <= r.last_seq \
            AND NOT m.deleted AND coalesce(m.author_id, '') <> $1) c \
        WHERE r.visibility = 'public' \
            OR EXISTS (SELECT 1 FROM room_members v WHERE v.room = r.name AND v.user_id = $1) \
        ORDER BY r.name";
    /// The members of the direct rooms `$1` is in.
    pub const DIRECT_MEMBERS: &str = "SELECT dm.room, u.id, u.username, u.display_name, u.role, \
        u.suspended, NULL AS password_hash \
        FROM room_members dm JOIN rooms r ON r.name = dm.room AND r.direct_key IS NOT NULL \
        JOIN users u ON u.id = dm.user_id \
        WHERE dm.room IN (SELECT room FROM room_members WHERE user_id = $1) \
        ORDER BY dm.room, u.username";
}

/// Implements [`AccountStore`] for `$store`, writing through `self.$writer`
/// and reading through `self.$reader`. `$lock_users` runs first in the
/// transaction that creates a user, so that two first registrations cannot
/// both become admin.
macro_rules! impl_accounts {
    ($store:ty, $writer:ident, $reader:ident, $lock_users:expr) => {
        #[async_trait::async_trait]
        impl $crate::store::accounts::AccountStore for $store {
            async fn create_user(
                &self,
                user: $crate::store::accounts::NewUser,
                now: time::OffsetDateTime,
            ) -> Result<$crate::identity::User, $crate::store::accounts::CreateError> {
                use $crate::store::accounts::{sql, user_of, UserRow};
                let mut tx = self.$writer.begin().await?;
                if let Some(lock) = $lock_users {
                    sqlx::query(lock).execute(&mut *tx).await?;
                }
                let row: UserRow = sqlx::query_as(sql::INSERT_USER)
                    .bind($crate::identity::UserId::generate().as_str())
                    .bind(user.username.as_str())
                    .bind(&user.display_name)
                    .bind(user.role.map(|r| r.as_str()))
                    .bind(&user.password_hash)
                    .bind(&user.oidc_subject)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(user_of(row))
            }

            async fn user_by_username(
                &self,
                username: &$crate::identity::Username,
            ) -> Result<Option<($crate::identity::User, Option<String>)>, $crate::store::StoreError>
            {
                use $crate::store::accounts::{sql, with_hash, UserRow};
                let row: Option<UserRow> = sqlx::query_as(sql::BY_USERNAME)
                    .bind(username.as_str())
                    .fetch_optional(&self.$reader)
                    .await?;
                Ok(row.map(with_hash))
            }

            async fn user_by_oidc_subject(
                &self,
                subject: &str,
            ) -> Result<Option<$crate::identity::User>, $crate::store::StoreError> {
                use $crate::store::accounts::{sql, user_of, UserRow};
                let row: Option<UserRow> = sqlx::query_as(sql::BY_SUBJECT)
                    .bind(subject)
                    .fetch_optional(&self.$reader)
                    .await?;
                Ok(row.map(user_of))
            }

            async fn set_role(
                &self,
                username: &$crate::identity::Username,
                role: $crate::identity::Role,
            ) -> Result<Option<$crate::identity::User>, $crate::store::StoreError> {
                use $crate::store::accounts::{sql, user_of, UserRow};
                let row: Option<UserRow> = sqlx::query_as(sql::SET_ROLE)
                    .bind(username.as_str())
                    .bind(role.as_str())
                    .fetch_optional(&self.$writer)
                    .await?;
                Ok(row.map(user_of))
            }

            async fn set_password_hash(
                &self,
                username: &$crate::identity::Username,
                hash: &str,
            ) -> Result<Option<$crate::identity::User>, $crate::store::StoreError> {
                use $crate::store::accounts::{sql, user_of, UserRow};
                let row: Option<UserRow> = sqlx::query_as(sql::SET_HASH)
                    .bind(username.as_str())
                    .bind(hash)
                    .fetch_optional(&self.$writer)
                    .await?;
                Ok(row.map(user_of))
            }

            async fn set_suspended(
                &self,
                username: &$crate::identity::Username,
                suspended: bool,
            ) -> Result<Option<$crate::identity::User>, $crate::store::StoreError> {
                use $crate::store::accounts::{sql, user_of, UserRow};
                let mut tx = self.$writer.begin().await?;
                let row: Option<UserRow> = sqlx::query_as(sql::SET_SUSPENDED)
                    .bind(username.as_str())
                    .bind(suspended)
                    .fetch_optional(&mut *tx)
                    .await?;
                let user = row.map(user_of);
                if let (Some(user), true) = (&user, suspended) {
                    sqlx::query(sql::DELETE_SESSIONS_OF)
                        .bind(user.id.as_str())
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(user)
            }

            async fn create_session(
                &self,
                id: &str,
                user: &$crate::identity::UserId,
                now: time::OffsetDateTime,
                expires_at: time::OffsetDateTime,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query($crate::store::accounts::sql::INSERT_SESSION)
                    .bind(id)
                    .bind(user.as_str())
                    .bind(now)
                    .bind(expires_at)
                    .execute(&self.$writer)
                    .await?;
                Ok(())
            }

            async fn session(
                &self,
                id: &str,
            ) -> Result<Option<$crate::store::accounts::SessionRow>, $crate::store::StoreError>
            {
                use $crate::store::accounts::{session_row, sql, SessionJoin};
                let row: Option<SessionJoin> = sqlx::query_as(sql::SESSION)
                    .bind(id)
                    .fetch_optional(&self.$reader)
                    .await?;
                Ok(row.map(session_row))
            }

            async fn extend_session(
                &self,
                id: &str,
                expires_at: time::OffsetDateTime,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query($crate::store::accounts::sql::EXTEND_SESSION)
                    .bind(id)
                    .bind(expires_at)
                    .execute(&self.$writer)
                    .await?;
                Ok(())
            }

            async fn delete_session(&self, id: &str) -> Result<(), $crate::store::StoreError> {
                sqlx::query($crate::store::accounts::sql::DELETE_SESSION)
                    .bind(id)
                    .execute(&self.$writer)
                    .await?;
                Ok(())
            }

            async fn revoke_sessions(
                &self,
                user: &$crate::identity::UserId,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query($crate::store::accounts::sql::DELETE_SESSIONS_OF)
                    .bind(user.as_str())
                    .execute(&self.$writer)
                    .await?;
                Ok(())
            }

            async fn delete_expired_sessions(
                &self,
                now: time::OffsetDateTime,
            ) -> Result<u64, $crate::store::StoreError> {
                let done = sqlx::query($crate::store::accounts::sql::DELETE_EXPIRED)
                    .bind(now)
                    .execute(&self.$writer)
                    .await?;
                Ok(done.rows_affected())
            }

            async fn room_info(
                &self,
                room: &$crate::domain::RoomName,
            ) -> Result<Option<$crate::store::accounts::RoomInfo>, $crate::store::StoreError> {
                let row: Option<(String, Option<String>)> =
                    sqlx::query_as($crate::store::accounts::sql::ROOM_INFO)
                        .bind(room.as_str())
                        .fetch_optional(&self.$reader)
                        .await?;
                Ok(row.map($crate::store::accounts::room_info))
            }

            async fn create_room(
                &self,
                room: &$crate::domain::RoomName,
                visibility: $crate::identity::Visibility,
                owner: &$crate::identity::UserId,
                now: time::OffsetDateTime,
            ) -> Result<$crate::store::RoomSummary, $crate::store::accounts::CreateError> {
                use $crate::store::accounts::sql;
                let mut tx = self.$writer.begin().await?;
                sqlx::query(sql::INSERT_ROOM)
                    .bind(room.as_str())
                    .bind(now)
                    .bind(visibility.as_str())
                    .bind(owner.as_str())
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(sql::ADD_MEMBER)
                    .bind(room.as_str())
                    .bind(owner.as_str())
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok($crate::store::RoomSummary {
                    name: room.clone(),
                    last_seq: 0,
                    visibility,
                    topic: String::new(),
                    owner: None,
                    joined: true,
                    read_seq: 0,
                    unread: 0,
                    mentions: 0,
                    members: None,
                })
            }

            async fn is_member(
                &self,
                room: &$crate::domain::RoomName,
                user: &$crate::identity::UserId,
            ) -> Result<bool, $crate::store::StoreError> {
                let row: Option<i32> = sqlx::query_scalar($crate::store::accounts::sql::IS_MEMBER)
                    .bind(room.as_str())
                    .bind(user.as_str())
                    .fetch_optional(&self.$reader)
                    .await?;
                Ok(row.is_some())
            }

            async fn members(
                &self,
                room: &$crate::domain::RoomName,
            ) -> Result<Vec<$crate::identity::User>, $crate::store::StoreError> {
                use $crate::store::accounts::{sql, user_of, UserRow};
                let rows: Vec<UserRow> = sqlx::query_as(sql::MEMBERS)
                    .bind(room.as_str())
                    .fetch_all(&self.$reader)
                    .await?;
                Ok(rows.into_iter().map(user_of).collect())
            }

            async fn add_member(
                &self,
                room: &$crate::domain::RoomName,
                user: &$crate::identity::UserId,
                now: time::OffsetDateTime,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query($crate::store::accounts::sql::ADD_MEMBER)
                    .bind(room.as_str())
                    .bind(user.as_str())
                    .bind(now)
                    .execute(&self.$writer)
                    .await?;
                Ok(())
            }

            async fn remove_member(
                &self,
                room: &$crate::domain::RoomName,
                user: &$crate::identity::UserId,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query($crate::store::accounts::sql::REMOVE_MEMBER)
                    .bind(room.as_str())
                    .bind(user.as_str())
                    .execute(&self.$writer)
                    .await?;
                Ok(())
            }

            async fn rooms_visible_to(
                &self,
                user: &$crate::identity::UserId,
            ) -> Result<Vec<$crate::store::RoomSummary>, $crate::store::StoreError> {
                use $crate::store::accounts::RoomsQuery;
                use $crate::store::accounts::{sql, DirectMember};
                let rows = self.$reader.rooms_rows(user.as_str()).await?;
                let members: Vec<DirectMember> = if rows.iter().any(|r| r.direct) {
                    sqlx::query_as(sql::DIRECT_MEMBERS)
                        .bind(user.as_str())
                        .fetch_all(&self.$reader)
                        .await?
                } else {
                    Vec::new()
                };
                Ok($crate::store::accounts::room_summaries(rows, members))
            }

            async fn set_display_name(
                &self,
                user: &$crate::identity::UserId,
                name: &str,
            ) -> Result<Option<$crate::identity::User>, $crate::store::StoreError> {
                use $crate::store::accounts::{sql, user_of, UserRow};
                let row: Option<UserRow> = sqlx::query_as(sql::SET_DISPLAY_NAME)
                    .bind(user.as_str())
                    .bind(name)
                    .fetch_optional(&self.$writer)
                    .await?;
                Ok(row.map(user_of))
            }

            async fn delete_other_sessions(
                &self,
                user: &$crate::identity::UserId,
                keep: &str,
            ) -> Result<Vec<String>, $crate::store::StoreError> {
                let ids: Vec<(String,)> =
                    sqlx::query_as($crate::store::accounts::sql::DELETE_OTHER_SESSIONS)
                        .bind(user.as_str())
                        .bind(keep)
                        .fetch_all(&self.$writer)
                        .await?;
                Ok(ids.into_iter().map(|(id,)| id).collect())
            }

            async fn set_topic(
                &self,
                room: &$crate::domain::RoomName,
                topic: &str,
            ) -> Result<Option<$crate::store::accounts::RoomTopic>, $crate::store::StoreError> {
                let row: Option<(String, i64, String, String)> =
                    sqlx::query_as($crate::store::accounts::sql::SET_TOPIC)
                        .bind(room.as_str())
                        .bind(topic)
                        .fetch_optional(&self.$writer)
                        .await?;
                Ok(row.and_then($crate::store::accounts::room_topic))
            }
        }
    };
}
pub(crate) use impl_accounts;
