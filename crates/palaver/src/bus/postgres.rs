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

use super::{Bus, History, Hub, Observer};
use crate::domain::{Message, RoomName};
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

/// PostgreSQL refuses payloads of 8,000 bytes or more.
const MAX_PAYLOAD: usize = 7_900;

impl Notification {
    /// The payloads announcing `messages` (ordered by room, then seq): one
    /// unless the rooms do not fit in one payload.
    pub fn payloads(messages: &[Arc<Message>]) -> Vec<String> {
        let mut payloads = Vec::new();
        let mut current = Notification { rooms: Vec::new() };
        let mut size = 0;
        for room in messages.chunk_by(|a, b| a.room == b.room) {
            let announced = Announced {
                room: room[0].room.as_str().to_owned(),
                first: room[0].seq,
                last: room[room.len() - 1].seq,
            };
            // Room names are at most 64 bytes of [a-z0-9_-]: no escaping.
            let cost = announced.room.len() + 64;
            if size + cost > MAX_PAYLOAD && !current.rooms.is_empty() {
                payloads.extend(serde_json::to_string(&current).ok());
                current.rooms.clear();
                size = 0;
            }
            size += cost;
            current.rooms.push(announced);
        }
        if !current.rooms.is_empty() {
            payloads.extend(serde_json::to_string(&current).ok());
        }
        payloads
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
    fn notify_in_transaction(
        &self,
        messages: &[Arc<Message>],
    ) -> Option<(&'static str, Vec<String>)> {
        let payloads = Notification::payloads(messages);
        (!payloads.is_empty()).then_some((CHANNEL, payloads))
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
    use crate::domain::now_millis;

    fn message(room: &str, seq: i64) -> Arc<Message> {
        Arc::new(Message {
            room: RoomName::parse(room).unwrap(),
            seq,
            author: "a".into(),
            author_id: None,
            text: "t".into(),
            sent_at: now_millis(),
            client_id: None,
            client_ip: "127.0.0.1".into(),
            frame: Default::default(),
        })
    }

    #[test]
    fn one_payload_announces_every_room_of_a_batch() {
        let batch = [message("a", 3), message("a", 4), message("b", 1)];
        let payloads = Notification::payloads(&batch);
        assert_eq!(payloads.len(), 1);
        let note: Notification = serde_json::from_str(&payloads[0]).unwrap();
        assert_eq!(
            note.rooms,
            vec![
                Announced {
                    room: "a".into(),
                    first: 3,
                    last: 4
                },
                Announced {
                    room: "b".into(),
                    first: 1,
                    last: 1
                },
            ]
        );
    }

    #[test]
    fn payloads_stay_under_the_postgres_limit_and_lose_no_room() {
        let batch: Vec<_> = (0..1000)
            .map(|i| message(&format!("{i:0>64}"), 1))
            .collect();
        let payloads = Notification::payloads(&batch);
        assert!(payloads.len() > 1);
        let mut rooms = 0;
        for payload in &payloads {
            assert!(payload.len() < 8000, "{} bytes", payload.len());
            rooms += serde_json::from_str::<Notification>(payload)
                .unwrap()
                .rooms
                .len();
        }
        assert_eq!(rooms, 1000);
    }
}
