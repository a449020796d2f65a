//! Identity and access (DESIGN §5a): who is asking, and what they may see.
//!
//! - [`password`]: argon2id hashing off the async workers;
//! - [`session`]: the session cookie, tokens and the session cache;
//! - [`access`]: room visibility and membership, cached;
//! - [`throttle`]: login throttling per username and per IP;
//! - [`events`]: access changes carried to every replica;
//! - [`oidc`]: bearer JWTs from an OIDC issuer, users provisioned from `sub`;
//! - [`origin`]: where a request comes from: HTTPS, and the Origin check.
//!
//! [`Auth`] holds them together; handlers reach it through `AppState`.

pub mod access;
pub mod cli;
pub mod events;
pub mod oidc;
pub mod origin;
pub mod password;
pub mod session;
pub mod throttle;

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::broadcast;

use crate::domain::{now_millis, RoomName};
use crate::identity::{Password, Role, User, UserId, Username, Visibility};
use crate::store::accounts::{AccountStore, CreateError, NewUser, RoomInfo};
use crate::store::StoreError;
use access::{AccessCache, RoomAccess};
use events::{AccessEvent, Transport};
use password::{HashError, Passwords};
use session::{CachedSession, SessionCache, SessionId, SESSION_TTL};
use throttle::LoginThrottle;

/// How sign-in and the seed API are configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub registration_open: bool,
    pub local_accounts: bool,
    pub seed_api: bool,
    /// Per-address sign-in and registration limits.
    pub limits: throttle::Limits,
}

/// Why an account operation failed, in the API's terms.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("wrong username or password")]
    BadCredentials,
    #[error("this account is suspended")]
    Suspended,
    #[error("username is taken")]
    Taken,
    #[error("too many attempts")]
    Throttled { retry_after_secs: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hash(#[from] HashError),
}

impl From<CreateError> for AuthError {
    fn from(e: CreateError) -> Self {
        match e {
            CreateError::Taken => AuthError::Taken,
            CreateError::Store(e) => AuthError::Store(e),
        }
    }
}

/// A signed-in session: its token goes into the cookie.
pub struct SignedIn {
    pub user: User,
    pub token: String,
}

/// Stream-side view of access events: every stream on this process listens.
pub type AccessFeed = broadcast::Receiver<AccessEvent>;

/// Buffer of the in-process access feed; a stream that lags behind it
/// rechecks its access (see the stream loop).
const FEED_CAPACITY: usize = 1024;

pub struct Auth {
    pub accounts: Arc<dyn AccountStore>,
    pub passwords: Passwords,
    pub sessions: SessionCache,
    pub access: AccessCache,
    pub throttle: LoginThrottle,
    pub settings: Settings,
    /// Bearer tokens, when `--oidc-issuer` is set.
    pub oidc: Option<oidc::Oidc>,
    transport: Transport,
    feed: broadcast::Sender<AccessEvent>,
}

impl Auth {
    pub fn new(
        accounts: Arc<dyn AccountStore>,
        transport: Transport,
        settings: Settings,
        oidc: Option<oidc::Oidc>,
    ) -> Self {
        Self {
            accounts,
            oidc,
            passwords: Passwords::default(),
            sessions: SessionCache::default(),
            access: AccessCache::default(),
            throttle: LoginThrottle::new(settings.limits),
            settings,
            transport,
            feed: broadcast::channel(FEED_CAPACITY).0,
        }
    }

    /// The access events applied on this process, for streams.
    pub fn feed(&self) -> AccessFeed {
        self.feed.subscribe()
    }

    // -- accounts ---------------------------------------------------------

    /// Creates a local account (the first one becomes admin unless `role`
    /// says otherwise).
    pub async fn create_local_user(
        &self,
        username: Username,
        display_name: String,
        password: &Password,
        role: Option<Role>,
    ) -> Result<User, AuthError> {
        let hash = self.passwords.hash(password).await?;
        let user = self
            .accounts
            .create_user(
                NewUser {
                    username,
                    display_name,
                    role,
                    password_hash: Some(hash),
                    oidc_subject: None,
                },
                now_millis(),
            )
            .await?;
        Ok(user)
    }

    /// Checks a username and password. Unknown users cost the same hash as
    /// known ones, and get the same answer as a wrong password.
    pub async fn check_password(&self, username: &str, password: &str) -> Result<User, AuthError> {
        let found = match Username::parse(username) {
            Ok(name) => self.accounts.user_by_username(&name).await?,
            Err(_) => None,
        };
        let (user, hash) = match found {
            Some((user, hash)) => (Some(user), hash),
            None => (None, None),
        };
        let ok = self.passwords.verify(password, hash).await?;
        match user {
            Some(user) if ok && user.suspended => Err(AuthError::Suspended),
            Some(user) if ok => Ok(user),
            _ => Err(AuthError::BadCredentials),
        }
    }

    /// Opens a session for `user`.
    pub async fn start_session(&self, user: User) -> Result<SignedIn, StoreError> {
        let new = session::new_token();
        let now = now_millis();
        let expires_at = now + SESSION_TTL;
        self.accounts
            .create_session(new.id.as_str(), &user.id, now, expires_at)
            .await?;
        self.sessions.insert(
            new.id,
            CachedSession {
                user: user.clone(),
                expires_at,
            },
        );
        Ok(SignedIn {
            user,
            token: new.token,
        })
    }

    /// The user behind a session token, from the cache when it can be.
    pub async fn session_user(&self, id: &SessionId) -> Result<Option<User>, StoreError> {
        let now = OffsetDateTime::now_utc();
        let cached = match self.sessions.get(id) {
            Some(cached) => cached,
            None => {
                let Some(row) = self.accounts.session(id.as_str()).await? else {
                    return Ok(None);
                };
                let cached = CachedSession {
                    user: row.user,
                    expires_at: row.expires_at,
                };
                self.sessions.insert(id.clone(), cached.clone());
                cached
            }
        };
        if cached.expires_at <= now || cached.user.suspended {
            self.sessions.remove(id);
            return Ok(None);
        }
        if cached.due_for_extension(now) {
            let expires_at = now + SESSION_TTL;
            self.accounts
                .extend_session(id.as_str(), expires_at)
                .await?;
            self.sessions.insert(
                id.clone(),
                CachedSession {
                    user: cached.user.clone(),
                    expires_at,
                },
            );
        }
        Ok(Some(cached.user))
    }

    /// Revokes one session everywhere.
    pub async fn end_session(&self, id: &SessionId) -> Result<(), StoreError> {
        self.accounts.delete_session(id.as_str()).await?;
        self.publish(AccessEvent::SessionRevoked {
            session_id: id.as_str().to_owned(),
        })
        .await;
        Ok(())
    }

    /// Suspends or reinstates `username`; suspension revokes their sessions
    /// and closes their streams on every replica.
    pub async fn set_suspended(
        &self,
        username: &Username,
        suspended: bool,
    ) -> Result<Option<User>, StoreError> {
        let user = self.accounts.set_suspended(username, suspended).await?;
        if let Some(user) = &user {
            self.publish(AccessEvent::UserChanged {
                user_id: user.id.as_str().to_owned(),
                suspended,
            })
            .await;
        }
        Ok(user)
    }

    /// Sets `user`'s display name. Every replica drops its cached sessions
    /// of the user, so later requests (and messages) carry the new name.
    pub async fn set_display_name(
        &self,
        user: &User,
        name: &str,
    ) -> Result<Option<User>, StoreError> {
        let updated = self.accounts.set_display_name(&user.id, name).await?;
        if let Some(updated) = &updated {
            self.publish(AccessEvent::UserChanged {
                user_id: updated.id.as_str().to_owned(),
                suspended: updated.suspended,
            })
            .await;
        }
        Ok(updated)
    }

    /// Changes `user`'s password once `current` proves it is theirs
    /// ([`AuthError::BadCredentials`] otherwise), then revokes every other
    /// session of the user on every replica; `keep` (the session the change
    /// came from, if any) stays.
    pub async fn change_password(
        &self,
        user: &User,
        keep: Option<&SessionId>,
        current: &str,
        new: &Password,
    ) -> Result<(), AuthError> {
        let checked = self.check_password(user.username.as_str(), current).await?;
        if checked.id != user.id {
            return Err(AuthError::BadCredentials);
        }
        let hash = self.passwords.hash(new).await?;
        self.accounts
            .set_password_hash(&user.username, &hash)
            .await?;
        let revoked = self
            .accounts
            .delete_other_sessions(&user.id, keep.map_or("", |id| id.as_str()))
            .await?;
        for session_id in revoked {
            self.publish(AccessEvent::SessionRevoked { session_id })
                .await;
        }
        Ok(())
    }

    // -- rooms ------------------------------------------------------------

    /// What `user` may do with `room`.
    pub async fn room_access(
        &self,
        room: &RoomName,
        user: &User,
    ) -> Result<RoomAccess, StoreError> {
        let info = match self.access.room(room) {
            Some(info) => info,
            None => match self.accounts.room_info(room).await? {
                Some(info) => {
                    self.access.put_room(room.clone(), info.clone());
                    info
                }
                None => return Ok(RoomAccess::Missing),
            },
        };
        if info.visibility == Visibility::Public {
            return Ok(RoomAccess::Allowed(info));
        }
        if self.is_member(room, &user.id).await? {
            Ok(RoomAccess::Allowed(info))
        } else {
            Ok(RoomAccess::Hidden(info))
        }
    }

    pub async fn is_member(&self, room: &RoomName, user: &UserId) -> Result<bool, StoreError> {
        if let Some(answer) = self.access.member(room, user) {
            return Ok(answer);
        }
        let answer = self.accounts.is_member(room, user).await?;
        self.access.put_member(room.clone(), user.clone(), answer);
        Ok(answer)
    }

    pub async fn create_room(
        &self,
        room: &RoomName,
        visibility: Visibility,
        owner: &User,
    ) -> Result<crate::store::RoomSummary, CreateError> {
        let summary = self
            .accounts
            .create_room(room, visibility, &owner.id, now_millis())
            .await?;
        self.access.put_room(
            room.clone(),
            RoomInfo {
                visibility,
                owner_id: Some(owner.id.clone()),
            },
        );
        self.access.forget_member(room, &owner.id);
        Ok(summary)
    }

    pub async fn add_member(&self, room: &RoomName, user: &UserId) -> Result<(), StoreError> {
        self.accounts.add_member(room, user, now_millis()).await?;
        self.member_changed(room, user).await;
        Ok(())
    }

    pub async fn remove_member(&self, room: &RoomName, user: &UserId) -> Result<(), StoreError> {
        self.accounts.remove_member(room, user).await?;
        self.member_changed(room, user).await;
        Ok(())
    }

    /// Tells the user's streams on every replica that a read marker moved.
    /// It changes no cache, so on PostgreSQL it is only notified: this
    /// replica hears it back like the others, and its streams get one
    /// `read` frame, not two.
    pub async fn read_moved(&self, user: &UserId, room: &RoomName, read_seq: i64) {
        let event = AccessEvent::ReadMoved {
            user_id: user.as_str().to_owned(),
            room: room.as_str().to_owned(),
            read_seq,
        };
        if matches!(self.transport, Transport::Local) {
            self.apply(&event);
        }
        self.transport.notify(&event).await;
    }

    async fn member_changed(&self, room: &RoomName, user: &UserId) {
        self.publish(AccessEvent::MemberChanged {
            room: room.as_str().to_owned(),
            user_id: user.as_str().to_owned(),
        })
        .await;
    }

    // -- events -----------------------------------------------------------

    async fn publish(&self, event: AccessEvent) {
        self.apply(&event);
        self.transport.notify(&event).await;
    }

    /// Applies an access event on this process: drops what the caches knew
    /// and tells the streams.
    pub fn apply(&self, event: &AccessEvent) {
        match event {
            AccessEvent::MemberChanged { room, user_id } => {
                if let Ok(room) = RoomName::parse(room) {
                    self.access
                        .forget_member(&room, &UserId::from_stored(user_id.clone()));
                }
            }
            AccessEvent::UserChanged { user_id, .. } => {
                let user = UserId::from_stored(user_id.clone());
                self.sessions.remove_user(&user);
                if let Some(oidc) = &self.oidc {
                    oidc.forget(&user);
                }
            }
            AccessEvent::SessionRevoked { session_id } => {
                self.sessions
                    .remove(&SessionId::from_event(session_id.clone()));
            }
            AccessEvent::ReadMoved { .. } => {}
        }
        // No stream listening is fine.
        let _ = self.feed.send(event.clone());
    }

    pub fn clear_caches(&self) {
        self.sessions.clear();
        self.access.clear();
        if let Some(oidc) = &self.oidc {
            oidc.forget_all();
        }
    }

    /// Drops idle throttle keys and expired sessions, every minute.
    pub async fn housekeeping(self: Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = every.tick() => {
                    self.throttle.forget_idle();
                    if let Err(error) = self.accounts.delete_expired_sessions(OffsetDateTime::now_utc()).await {
                        tracing::warn!(%error, "could not delete expired sessions");
                    }
                }
            }
        }
    }
}
