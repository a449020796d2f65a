//! The PostgreSQL `LISTEN` side of the bus.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

use super::Hub;
use crate::domain::RoomName;
use crate::store::{MessageStore, Notification, PgStore, CHANNEL};
use crate::telemetry::metrics as m;

/// Listens for committed batches and publishes their rows to the local hub
/// until `shutdown`. Reconnects with backoff whenever the connection drops;
/// after each (re)connect every room is told to resynchronise from the table,
/// which repairs whatever was committed while nobody listened.
pub async fn listen(
    pg: &PgStore,
    store: Arc<dyn MessageStore>,
    hub: Arc<Hub>,
    ready: Arc<AtomicBool>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let connected = async {
            let mut listener = PgListener::connect_with(pg.pool()).await?;
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
                    deliver(notification.payload(), store.as_ref(), &hub).await;
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
async fn deliver(payload: &str, store: &dyn MessageStore, hub: &Hub) {
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
    match store.range(&room, note.first, note.last).await {
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
