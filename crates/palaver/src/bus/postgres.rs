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

use super::{Bus, History, Hub, InStatementNotify, Observer};
use crate::domain::{RoomEvent, RoomName};
use crate::telemetry::metrics as m;

/// The channel every writer notifies and every gateway listens on.
pub const CHANNEL: &str = "palaver_messages";

/// The `NOTIFY` payload: which rows of which rooms were just committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub rooms: Vec<Announced>,
}

/// Rows `first..=last` of `room`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announced {
    pub room: String,
    pub first: i64,
    pub last: i64,
}

/// Rooms announced by one payload. PostgreSQL refuses payloads of 8,000
/// bytes or more; a room is at most 64 bytes of `[a-z0-9_-]` (no escaping)
/// plus about 80 of keys and two 19-digit seqs, so 50 rooms stay under it.
pub const ROOMS_PER_PAYLOAD: usize = 50;

/// The `NOTIFY` payloads of a batch, as SQL the storing statement runs: a
/// `SELECT` over the relation `announced(room, first, last)` (one row per
/// room of the batch, the seqs it created) answering one `payload` text
/// column, a [`Notification`] of at most [`ROOMS_PER_PAYLOAD`] rooms per row.
/// No rows in, no payload out (`GROUP BY` with nothing to group).
pub const PAYLOADS_SQL: &str = "\
SELECT json_build_object('rooms', json_agg(json_build_object('room', room, 'first', first, 'last', last)
                                           ORDER BY room))::text AS payload
FROM (SELECT room, first, last, (row_number() OVER (ORDER BY room) - 1) / 50 AS part
      FROM announced) a
GROUP BY part";

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
    fn notify_in_transaction(&self) -> Option<InStatementNotify> {
        Some(InStatementNotify {
            channel: CHANNEL,
            payloads: PAYLOADS_SQL,
        })
    }

    fn committed(&self, _events: &[Arc<RoomEvent>]) {}

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
    observer: Arc<dyn Observer>,
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
        observer.forget_all();

        loop {
            let received = tokio::select! {
                _ = shutdown.cancelled() => return,
                received = listener.try_recv() => received,
            };
            match received {
                Ok(Some(notification)) => {
                    deliver(
                        notification.payload(),
                        history.as_ref(),
                        &hub,
                        observer.as_ref(),
                    )
                    .await;
                }
                Ok(None) | Err(_) => {
                    ready.store(false, Ordering::Relaxed);
                    super::report_up(false);
                    observer.forget_all();
                    metrics::counter!(m::BUS_RECONNECTS).increment(1);
                    tracing::warn!("bus: listening connection lost; reconnecting");
                    break;
                }
            }
        }
    }
}

/// Reads the rows a notification announces and publishes them, for the
/// rooms someone in this process watches (a subscriber or the observer).
async fn deliver(payload: &str, history: &dyn History, hub: &Hub, observer: &dyn Observer) {
    let Ok(note) = serde_json::from_str::<Notification>(payload) else {
        metrics::counter!(m::BUS_PAYLOADS_REJECTED).increment(1);
        tracing::warn!(payload, "bus: ignoring a malformed notification");
        return;
    };
    for announced in note.rooms {
        let Ok(room) = RoomName::parse(&announced.room) else {
            metrics::counter!(m::BUS_PAYLOADS_REJECTED).increment(1);
            continue;
        };
        let subscribed = hub.has_subscribers(&room);
        if !observer.wants(&room, announced.last) {
            observer.announced(&room);
            if !subscribed {
                continue;
            }
        }
        match history.range(&room, announced.first, announced.last).await {
            Ok(rows) => {
                let rows: Vec<_> = rows.into_iter().map(Arc::new).collect();
                if subscribed {
                    hub.publish(&room, &rows);
                }
                observer.committed(&rows);
            }
            Err(error) => {
                // The subscribers will read the table themselves.
                tracing::warn!(%error, room = %room, "bus: cannot read notified rows");
                metrics::counter!(m::BUS_REPAIRS).increment(1);
                hub.resync(&room);
                observer.forget(&room);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_sql_groups_as_many_rooms_as_the_constant_says() {
        assert!(PAYLOADS_SQL.contains(&format!("/ {ROOMS_PER_PAYLOAD} AS part")));
        // 50 rooms of the longest name and seq fit under PostgreSQL's limit
        // (the statement's own output is checked on a real PostgreSQL in
        // tests/api/notify.rs).
        let widest = Notification {
            rooms: (0..ROOMS_PER_PAYLOAD)
                .map(|_| Announced {
                    room: "x".repeat(64),
                    first: i64::MAX,
                    last: i64::MAX,
                })
                .collect(),
        };
        // json_build_object writes `"key" : value, ` where serde writes
        // `"key":value,`: three spaces more per pair.
        let bytes = serde_json::to_string(&widest).unwrap().len() + ROOMS_PER_PAYLOAD * 4 * 3;
        assert!(bytes < 7_900, "{bytes} bytes");
    }
}
