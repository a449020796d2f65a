//! Publishing (`api` role): the writer queues each committed batch, encoded,
//! within a byte budget; one task per process sends what is queued as one
//! pipeline of `PUBLISH`es (`SPUBLISH` per slot on a cluster) and never
//! makes a write wait for the broker.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::cluster_async::ClusterConnection;
use redis::RedisError;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::connection::{backoff_or_stop, connect_single, hint, PING_EVERY};
use super::payload::{channel, encode};
use super::{cluster, Health, RedisBus};
use crate::domain::{RoomEvent, RoomName};
use crate::telemetry::metrics as m;

/// Bytes of encoded batches that may wait for the publisher; beyond it
/// batches are dropped (and repaired by the subscribers).
const QUEUE_BYTES: usize = 32 << 20;
/// Batches the publisher sends per pipeline.
const PIPELINE: usize = 256;

/// One queued batch: its room's channel and the encoded payload.
pub(super) struct Outgoing {
    pub(super) channel: String,
    pub(super) payload: Vec<u8>,
}

impl RedisBus {
    /// Queues one room's batch for the publisher.
    pub(super) fn queue_batch(&self, room: &RoomName, events: &[Arc<RoomEvent>]) {
        let Some(queue) = &self.queue else { return };
        let payload = encode(room, events);
        let size = payload.len();
        // The byte budget bounds the queue; over it the batch is dropped and
        // the subscribers' repair delivers it from the table.
        if self.queued_bytes.fetch_add(size, Ordering::Relaxed) + size > QUEUE_BYTES {
            self.queued_bytes.fetch_sub(size, Ordering::Relaxed);
            metrics::counter!(m::BUS_PUBLISHES_DROPPED).increment(1);
            return;
        }
        let outgoing = Outgoing {
            channel: channel(room),
            payload,
        };
        if queue.send(outgoing).is_err() {
            self.queued_bytes.fetch_sub(size, Ordering::Relaxed);
            metrics::counter!(m::BUS_PUBLISHES_DROPPED).increment(1);
        }
    }
}

/// The publishing connection: one node, or the cluster's primaries.
enum Publishing {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl Publishing {
    async fn ping(&mut self) -> Result<(), RedisError> {
        match self {
            Publishing::Single(conn) => redis::cmd("PING").query_async::<()>(conn).await,
            Publishing::Cluster(conn) => cluster::ping_primaries(conn).await,
        }
    }
}

async fn connect_publisher(client: &redis::Client, url: &str) -> Result<Publishing, RedisError> {
    match connect_single(client).await? {
        (conn, false) => Ok(Publishing::Single(conn)),
        (_, true) => {
            // Not every primary need answer: batches for a shard that is
            // down fail alone, and the subscribers repair them.
            let (conn, _) = cluster::connect(url, None).await?;
            Ok(Publishing::Cluster(conn))
        }
    }
}

/// Test-only fault hook (debug builds): a batch holding a message whose text
/// is `PALAVER_FAULT_HOLD_PUBLISH` is committed but never published, and the
/// publisher stops, as if the process died between commit and publish.
#[cfg(debug_assertions)]
fn hold_marker() -> Option<String> {
    std::env::var("PALAVER_FAULT_HOLD_PUBLISH")
        .ok()
        .filter(|v| !v.is_empty())
}

pub(super) async fn run_publisher(
    client: redis::Client,
    url: String,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    queued_bytes: Arc<AtomicUsize>,
    health: Arc<Health>,
    shutdown: CancellationToken,
) {
    #[cfg(debug_assertions)]
    let hold = hold_marker().map(|marker| serde_json::to_string(&marker).unwrap_or_default());
    let mut backoff = Duration::from_millis(100);
    let mut batch: Vec<Outgoing> = Vec::with_capacity(PIPELINE);
    loop {
        let connected = tokio::select! {
            _ = shutdown.cancelled() => return,
            connected = connect_publisher(&client, &url) => connected,
        };
        let mut conn = match connected {
            Ok(conn) => conn,
            Err(error) => {
                tracing::error!(%error, hint = hint(&error), retry_in = ?backoff, "bus: cannot reach the Redis broker to publish");
                if !backoff_or_stop(&mut backoff, &shutdown).await {
                    return;
                }
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        health.set_publisher(true);
        let clustered = matches!(conn, Publishing::Cluster(_));
        tracing::info!(cluster = clustered, "bus: publishing to the Redis broker");
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        loop {
            let alive = tokio::select! {
                _ = shutdown.cancelled() => {
                    // Publish what is queued now, briefly; later commits are
                    // left to the subscribers' repair.
                    while let Ok(outgoing) = rx.try_recv() {
                        batch.push(outgoing);
                    }
                    let _ = tokio::time::timeout(
                        Duration::from_secs(1),
                        send_pipeline(&mut conn, &mut batch, &queued_bytes),
                    )
                    .await;
                    return;
                }
                received = rx.recv_many(&mut batch, PIPELINE) => {
                    if received == 0 {
                        return;
                    }
                    #[cfg(debug_assertions)]
                    if let Some(marker) = &hold {
                        let needle = format!("\"text\":{marker}");
                        if batch.iter().any(|o| {
                            String::from_utf8_lossy(&o.payload).contains(&needle)
                        }) {
                            tracing::warn!("bus: test fault hook: holding this publish for good");
                            std::future::pending::<()>().await;
                        }
                    }
                    send_pipeline(&mut conn, &mut batch, &queued_bytes).await
                }
                _ = ping.tick() => conn.ping().await,
            };
            match alive {
                Ok(()) => {
                    if clustered && !health.publisher_up() {
                        tracing::info!("bus: every Redis cluster node takes publishes again");
                    }
                    health.set_publisher(true);
                }
                // The cluster client repairs its node connections itself:
                // a shard that is down fails its own batches only.
                Err(error) if clustered => {
                    if health.publisher_up() {
                        tracing::warn!(%error, "bus: a Redis cluster node does not take publishes");
                        metrics::counter!(m::BUS_RECONNECTS).increment(1);
                    }
                    health.set_publisher(false);
                }
                Err(error) => {
                    health.set_publisher(false);
                    metrics::counter!(m::BUS_RECONNECTS).increment(1);
                    tracing::warn!(%error, "bus: lost the Redis publishing connection; reconnecting");
                    break;
                }
            }
        }
    }
}

/// One `PUBLISH` (`SPUBLISH` on a cluster) per queued batch, sent as one
/// pipeline (per slot on a cluster). Failed batches are not retried: the
/// subscribers repair them from the table.
async fn send_pipeline(
    conn: &mut Publishing,
    batch: &mut Vec<Outgoing>,
    queued_bytes: &AtomicUsize,
) -> Result<(), RedisError> {
    let bytes: usize = batch.iter().map(|o| o.payload.len()).sum();
    let result = match conn {
        Publishing::Single(conn) => {
            let mut pipe = redis::pipe();
            for outgoing in batch.iter() {
                pipe.cmd("PUBLISH")
                    .arg(&outgoing.channel)
                    .arg(&outgoing.payload)
                    .ignore();
            }
            let result = pipe.query_async::<()>(conn).await;
            if result.is_err() {
                metrics::counter!(m::BUS_PUBLISHES_DROPPED).increment(batch.len() as u64);
            }
            result
        }
        Publishing::Cluster(conn) => {
            let (failed, error) = cluster::publish(conn, batch).await;
            metrics::counter!(m::BUS_PUBLISHES_DROPPED).increment(failed as u64);
            error.map_or(Ok(()), Err)
        }
    };
    queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
    batch.clear();
    result
}
