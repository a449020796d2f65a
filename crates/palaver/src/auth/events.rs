//! Access events between replicas: a member removed or added, a user
//! suspended, a session revoked.
//!
//! They are rare, and must reach every replica whatever message bus is in
//! use, so they travel on their own PostgreSQL channel ([`CHANNEL`]) with
//! `LISTEN/NOTIFY`; with SQLite (one process) they stay in-process. Each
//! event is applied locally at once (caches dropped, streams told) and then
//! notified; a replica applies what it hears, its own events included (which
//! is harmless: applying is idempotent). When the listening connection drops,
//! events may have been missed, so the caches are cleared on reconnect.

use std::sync::Weak;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::Auth;

/// The PostgreSQL channel access events travel on.
pub const CHANNEL: &str = "palaver_access";

/// What changed. Payloads carry ids only (a session id is the hash of its
/// token, never the token).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AccessEvent {
    /// `user_id` was added to or removed from `room`.
    MemberChanged { room: String, user_id: String },
    /// `user_id` was suspended (their sessions are gone) or changed role.
    UserChanged { user_id: String, suspended: bool },
    /// One session was revoked (sign-out).
    SessionRevoked { session_id: String },
    /// `user_id` moved their read marker of `room` (DESIGN §5c): their
    /// other sessions' multiplexed streams hear a `read` frame.
    ReadMoved {
        user_id: String,
        room: String,
        read_seq: i64,
    },
}

/// Sends events to the other replicas.
#[derive(Clone)]
pub enum Transport {
    Local,
    Postgres(PgPool),
}

impl Transport {
    pub async fn notify(&self, event: &AccessEvent) {
        let Transport::Postgres(pool) = self else {
            return;
        };
        let Ok(payload) = serde_json::to_string(event) else {
            return;
        };
        // A lost notify is bounded by the cache TTLs; log it and go on.
        if let Err(error) = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(payload)
            .execute(pool)
            .await
        {
            tracing::warn!(%error, "could not notify an access event; caches expire instead");
        }
    }
}

/// Listens on [`CHANNEL`] until shutdown, applying every event to `auth`.
pub async fn listen(pool: PgPool, auth: Weak<Auth>, shutdown: CancellationToken) {
    loop {
        let mut listener = tokio::select! {
            _ = shutdown.cancelled() => return,
            connected = PgListener::connect_with(&pool) => match connected {
                Ok(listener) => listener,
                Err(error) => {
                    tracing::warn!(%error, "access listener cannot connect; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        if let Err(error) = listener.listen(CHANNEL).await {
            tracing::warn!(%error, "access listener cannot LISTEN; retrying");
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        // Anything may have changed while we were not listening.
        match auth.upgrade() {
            Some(auth) => auth.clear_caches(),
            None => return,
        }
        loop {
            let next = tokio::select! {
                _ = shutdown.cancelled() => return,
                next = listener.try_recv() => next,
            };
            match next {
                Ok(Some(notification)) => {
                    let Some(auth) = auth.upgrade() else { return };
                    match serde_json::from_str::<AccessEvent>(notification.payload()) {
                        Ok(event) => auth.apply(&event),
                        Err(error) => tracing::warn!(%error, "malformed access event"),
                    }
                }
                // The connection dropped; try_recv reconnects on the next
                // call, and events in between may be lost.
                Ok(None) => {
                    let Some(auth) = auth.upgrade() else { return };
                    auth.clear_caches();
                }
                Err(error) => {
                    tracing::warn!(%error, "access listener failed; reconnecting");
                    break;
                }
            }
        }
    }
}
