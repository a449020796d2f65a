//! The PostgreSQL bus: the storing transaction `NOTIFY`s, every gateway
//! `LISTEN`s and reads the announced rows.
//!
//! The channel and the payload live here, with the one layer that speaks
//! them; the store only runs the `pg_notify` the write path hands it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

use super::{Bus, History, Hub};
use crate::domain::{Message, RoomName};
use crate::telemetry::metrics as m;

/// The channel every writer notifies and every gateway listens on.
pub const CHANNEL: &str = "palaver_messages";

/// The `NOTIFY` payload: which rows of which room were just committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub room: String,
    pub first: i64,
    pub last: i64,
}

impl Notification {
    /// The payload announcing `messages` (one room's, in seq order).
    fn payload(messages: &[Arc<Message>]) -> Option<String> {
        let (first, last) = (messages.first()?, messages.last()?);
        serde_json::to_string(&Notification {
            room: first.room.as_str().to_owned(),
            first: first.seq,
            last: last.seq,
        })
        .ok()
    }
}

/// The bus of a PostgreSQL install. Delivery happens in the listener task
/// ([`listen`]); `committed` does nothing because the storing transaction
/// already notified. Its readiness follows the listener's connection.
#[derive(Default)]
pub struct NotifyBus {
    ready: Arc<AtomicBool>,
    listening: bool,
}

impl NotifyBus {
    /// A bus for a process that writes but does not listen (role `api`):
    /// always ready, as its notifications ride in its transactions.
    pub fn writer_only() -> Self {
        super::report_up(true);
        Self {
            ready: Arc::new(AtomicBool::new(true)),
            listening: false,
        }
    }

    /// A bus whose readiness follows the listener's connection.
    pub fn listening() -> (Self, Arc<AtomicBool>) {
        super::report_up(false);
        let ready = Arc::new(AtomicBool::new(false));
        (
            Self {
                ready: ready.clone(),
                listening: true,
            },
            ready,
        )
    }
}

impl Bus for NotifyBus {
    fn notify_in_transaction(&self, messages: &[Arc<Message>]) -> Option<(&'static str, String)> {
        Notification::payload(messages).map(|payload| (CHANNEL, payload))
    }

    fn committed(&self, _messages: &[Arc<Message>]) {}

    fn is_ready(&self) -> bool {
        !self.listening || self.ready.load(Ordering::Relaxed)
    }
}

/// Listens for committed batches and publishes their rows to the local hub
/// until `shutdown`. Reconnects with backoff whenever the connection drops;
/// after each (re)connect every room is told to resynchronise from the table,
/// which repairs whatever was committed while nobody listened.
pub async fn listen(
    pool: &PgPool,
    history: Arc<dyn History>,
    hub: Arc<Hub>,
    ready: Arc<AtomicBool>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let connected = async {
            let mut listener = PgListener::connect_with(pool).await?;
            listener.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = tokio::select! {
            _ = shutdown.cancelled() => return,
            result = connected => match result {
                Ok(listener) => listener,
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?backoff, "bus: cannot listen");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            }
        };
        backoff = Duration::from_millis(100);
        ready.store(true, Ordering::Relaxed);
        super::report_up(true);
        tracing::info!("bus: listening on {CHANNEL}");
        let resynced = hub.resync_all();
        metrics::counter!(m::BUS_REPAIRS).increment(resynced as u64);

        loop {
            let received = tokio::select! {
                _ = shutdown.cancelled() => return,
                received = listener.try_recv() => received,
            };
            match received {
                Ok(Some(notification)) => {
                    deliver(notification.payload(), history.as_ref(), &hub).await;
                }
                Ok(None) | Err(_) => {
                    ready.store(false, Ordering::Relaxed);
                    super::report_up(false);
                    metrics::counter!(m::BUS_RECONNECTS).increment(1);
                    tracing::warn!("bus: listening connection lost; reconnecting");
                    break;
                }
            }
        }
    }
}

/// Reads the rows a notification announces and publishes them, if anyone in
/// this process watches the room.
async fn deliver(payload: &str, history: &dyn History, hub: &Hub) {
    let Ok(note) = serde_json::from_str::<Notification>(payload) else {
        metrics::counter!(m::BUS_PAYLOADS_REJECTED).increment(1);
        tracing::warn!(payload, "bus: ignoring a malformed notification");
        return;
    };
    let Ok(room) = RoomName::parse(&note.room) else {
        metrics::counter!(m::BUS_PAYLOADS_REJECTED).increment(1);
        return;
    };
    if !hub.has_subscribers(&room) {
        return;
    }
    match history.range(&room, note.first, note.last).await {
        Ok(rows) => {
            let rows: Vec<_> = rows.into_iter().map(Arc::new).collect();
            hub.publish(&room, &rows);
        }
        Err(error) => {
            // The subscribers will read the table themselves.
            tracing::warn!(%error, room = %room, "bus: cannot read notified rows");
            metrics::counter!(m::BUS_REPAIRS).increment(1);
            hub.resync(&room);
        }
    }
}
