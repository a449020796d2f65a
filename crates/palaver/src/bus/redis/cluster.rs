//! Cluster mode (Redis Cluster, ElastiCache "cluster mode enabled"):
//! sharded pub/sub, so that each room's channel lives on the one shard that
//! owns its slot and shards divide the broker's work.
//!
//! - **Detection**: on every (re)connect the bus asks the configured
//!   endpoint `INFO cluster`; `cluster_enabled:1` selects this module, anything
//!   else the single-node `PUBLISH`/`SUBSCRIBE` path. An endpoint that refuses
//!   `INFO` (an ACL without `+info`) is treated as a single node, which a
//!   cluster also serves correctly, only without sharding (logged).
//! - **Client**: redis-rs's cluster client, which keeps one multiplexed
//!   connection per primary, follows `MOVED`/`ASK` and topology changes, and
//!   routes `SSUBSCRIBE`/`SUNSUBSCRIBE`/`SPUBLISH` by the channel's slot. The
//!   subscriber speaks RESP3 (Valkey/Redis 7+): its shard messages arrive as
//!   push frames on a bounded channel.
//! - **Publishing**: the queued batches are grouped by slot, one pipeline of
//!   `SPUBLISH`es per slot, all sent at once; each primary's connection
//!   writes what reaches it without waiting for answers, so a flush costs one
//!   round trip per primary.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use redis::aio::MultiplexedConnection;
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{MultipleNodeRoutingInfo, ResponsePolicy, RoutingInfo, Slot};
use redis::{PushInfo, RedisError};
use tokio::sync::mpsc;

use super::connection::{timed, CONNECT_TIMEOUT, RESPONSE_TIMEOUT};
use super::publish::Outgoing;

/// Push frames (shard messages, subscription changes, disconnections) that
/// may wait for the subscriber; beyond it they are dropped, the subscriber
/// is told, and it re-checks every room against the table.
const PUSH_QUEUE: usize = 4096;

/// Whether the server behind `conn` runs in cluster mode.
pub(crate) async fn enabled(conn: &mut MultiplexedConnection) -> Result<bool, RedisError> {
    match timed(
        redis::cmd("INFO")
            .arg("cluster")
            .query_async::<String>(conn),
    )
    .await
    {
        Ok(info) => Ok(info.lines().any(|line| line.trim() == "cluster_enabled:1")),
        // The server answered, but not INFO (an ACL, a renamed command).
        Err(error) if error.code().is_some() => {
            tracing::warn!(%error, "bus: the broker refuses INFO; using classic pub/sub (no sharding)");
            Ok(false)
        }
        Err(error) => Err(error),
    }
}

/// A cluster connection through the node at `url` (its password, user and
/// TLS apply to every node). With `pushes`, the connection speaks RESP3 and
/// hands its push frames to the returned receiver; `overflowed` is set when
/// one had to be dropped.
pub(crate) async fn connect(
    url: &str,
    pushes: Option<Arc<AtomicBool>>,
) -> Result<(ClusterConnection, Option<mpsc::Receiver<PushInfo>>), RedisError> {
    let mut builder = ClusterClientBuilder::new(vec![url])
        .connection_timeout(CONNECT_TIMEOUT)
        .response_timeout(RESPONSE_TIMEOUT)
        .overall_response_timeout(Some(RESPONSE_TIMEOUT))
        // A node that is down fails its requests at once rather than after
        // the default 16 retries; the bus repairs from the table meanwhile.
        .retries(2);
    let mut receiver = None;
    if let Some(overflowed) = pushes {
        let (tx, rx) = mpsc::channel(PUSH_QUEUE);
        receiver = Some(rx);
        builder = builder
            .use_protocol(redis::ProtocolVersion::RESP3)
            .push_sender(move |info: PushInfo| {
                tx.try_send(info).map_err(|_| {
                    overflowed.store(true, Ordering::Relaxed);
                })
            });
    }
    let client = builder.build()?;
    let conn = tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_connection())
        .await
        .map_err(|_| RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut)))??;
    Ok((conn, receiver))
}

/// `PING` on every primary: whether the whole cluster answers.
pub(super) async fn ping_primaries(conn: &mut ClusterConnection) -> Result<(), RedisError> {
    let routing = RoutingInfo::MultiNode((
        MultipleNodeRoutingInfo::AllMasters,
        Some(ResponsePolicy::AllSucceeded),
    ));
    timed(conn.route_command(redis::cmd("PING"), routing))
        .await
        .map(drop)
}

/// Groups `items` by the slot of their channel.
fn by_slot<'a, T>(
    items: impl IntoIterator<Item = &'a T>,
    channel: impl Fn(&T) -> &str,
) -> HashMap<Slot, Vec<&'a T>> {
    let mut groups: HashMap<Slot, Vec<&T>> = HashMap::new();
    for item in items {
        groups
            .entry(Slot::for_key(channel(item)))
            .or_default()
            .push(item);
    }
    groups
}

/// One `SPUBLISH` per batch, one pipeline per slot, sent concurrently.
/// Returns how many batches could not be published (the subscribers repair
/// them) and the first error.
pub(super) async fn publish(
    conn: &ClusterConnection,
    batch: &[Outgoing],
) -> (usize, Option<RedisError>) {
    let groups = by_slot(batch, |o| o.channel.as_str());
    let sends = groups.into_values().map(|group| {
        let mut conn = conn.clone();
        let mut pipe = redis::pipe();
        for outgoing in &group {
            pipe.cmd("SPUBLISH")
                .arg(&outgoing.channel)
                .arg(&outgoing.payload)
                .ignore();
        }
        let count = group.len();
        async move {
            timed(pipe.query_async::<()>(&mut conn))
                .await
                .err()
                .map(|error| (count, error))
        }
    });
    let mut failed = 0;
    let mut first = None;
    for (count, error) in futures::future::join_all(sends).await.into_iter().flatten() {
        failed += count;
        first.get_or_insert(error);
    }
    (failed, first)
}

/// `SSUBSCRIBE`s `channels`, one command per slot (a command's channels must
/// share a slot), concurrently; returns the channels whose subscription
/// was not confirmed.
pub(crate) async fn ssubscribe(conn: &ClusterConnection, channels: &[String]) -> HashSet<String> {
    let groups = by_slot(channels, |c| c.as_str());
    let subscribes = groups.into_values().map(|group| {
        let mut conn = conn.clone();
        async move {
            match timed(conn.ssubscribe(&group)).await {
                Ok(()) => Vec::new(),
                Err(error) => {
                    tracing::debug!(%error, "bus: SSUBSCRIBE failed");
                    group.into_iter().cloned().collect()
                }
            }
        }
    });
    futures::future::join_all(subscribes)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// `SUNSUBSCRIBE`s `channels`, one command per slot. A failure is only
/// logged: the room is forgotten either way, and what still arrives on its
/// channel is ignored.
pub(super) async fn sunsubscribe(conn: &ClusterConnection, channels: &[String]) {
    let groups = by_slot(channels, |c| c.as_str());
    let unsubscribes = groups.into_values().map(|group| {
        let mut conn = conn.clone();
        async move {
            if let Err(error) = timed(conn.sunsubscribe(&group)).await {
                tracing::debug!(%error, "bus: SUNSUBSCRIBE failed");
            }
        }
    });
    futures::future::join_all(unsubscribes).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_are_grouped_by_their_slot() {
        let channels: Vec<String> = (0..100).map(|i| format!("palaver:room:r{i}")).collect();
        let groups = by_slot(&channels, |c| c.as_str());
        assert!(groups.len() > 50, "room channels spread over slots");
        for (slot, group) in &groups {
            assert!(group.iter().all(|c| Slot::for_key(c.as_str()) == *slot));
        }
        assert_eq!(groups.values().map(Vec::len).sum::<usize>(), 100);
    }
}
