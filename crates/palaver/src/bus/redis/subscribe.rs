//! Subscribing (`gateway` role, and a writer's read cache): one connection
//! per process, subscribed to exactly the rooms with local subscribers or
//! in the read cache; what arrives is checked, gap-repaired (see
//! [`super::repair`]) and handed to the hub and the cache.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use redis::aio::{PubSubSink, PubSubStream};
use redis::cluster_async::ClusterConnection;
use redis::{PushInfo, RedisError};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::connection::{
    backoff_or_stop, connect_single, hint, reset, timed, CONNECT_TIMEOUT, PING_EVERY,
};
use super::payload::{channel, decode, room_of, Rejected};
use super::{cluster, Health};
use crate::bus::{History, Hub, Observer};
use crate::domain::{RoomEvent, RoomName};
use crate::telemetry::metrics as m;

/// Channels per `SUBSCRIBE` / `UNSUBSCRIBE` command.
const SUBSCRIBE_CHUNK: usize = 256;

/// What the subscriber knows of one subscribed room.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct RoomState {
    /// The newest seq delivered to the hub (or known to be in the table
    /// when the room was subscribed).
    pub(super) delivered: i64,
    /// The room's head at the last check, when it was ahead of `delivered`.
    pub(super) suspect: Option<i64>,
}

/// The subscribing side. `rooms` holds exactly the subscribed rooms; its
/// owner is this task, its bound the hub's rooms with subscribers (each
/// needs an open stream, so at most `--max-streams`) plus the rooms the read
/// cache holds (bounded by `--read-cache-bytes`).
pub(super) struct Subscriber {
    pub(super) hub: Arc<Hub>,
    /// The read cache: fed what arrives, and its rooms are subscribed too.
    pub(super) observer: Arc<dyn Observer>,
    pub(super) history: Arc<dyn History>,
    pub(super) repair_every: Duration,
    pub(super) rooms: HashMap<RoomName, RoomState>,
    /// Cluster mode: the rooms of `rooms` whose subscription is not
    /// confirmed (their shard is down, or a node was lost since). The heads
    /// check serves them meanwhile; once confirmed they are checked at once.
    pub(super) unconfirmed: HashSet<RoomName>,
    /// Set by the cluster client when a push frame had to be dropped.
    pub(super) overflowed: Arc<AtomicBool>,
    /// Whether a subscription ever held (a later one repairs at once).
    pub(super) subscribed_once: bool,
}

/// The subscribing side of a broker connection.
enum Subscription {
    /// `SUBSCRIBE` on one node's pub/sub connection.
    Single(PubSubSink),
    /// `SSUBSCRIBE`, routed by slot, on the cluster client.
    Cluster(ClusterConnection),
}

impl Subscription {
    /// Subscribes to `channels`; returns those whose subscription was not
    /// confirmed (a cluster shard that is down). A single node confirms
    /// them all or fails.
    async fn subscribe(&mut self, channels: &[String]) -> Result<HashSet<String>, RedisError> {
        match self {
            Subscription::Single(sink) => timed(sink.subscribe(channels))
                .await
                .map(|()| HashSet::new()),
            Subscription::Cluster(conn) => Ok(cluster::ssubscribe(conn, channels).await),
        }
    }

    async fn unsubscribe(&mut self, channels: &[String]) -> Result<(), RedisError> {
        match self {
            Subscription::Single(sink) => timed(sink.unsubscribe(channels)).await,
            Subscription::Cluster(conn) => {
                cluster::sunsubscribe(conn, channels).await;
                Ok(())
            }
        }
    }

    async fn ping(&mut self) -> Result<(), RedisError> {
        match self {
            Subscription::Single(sink) => timed(sink.ping::<redis::Value>()).await.map(drop),
            Subscription::Cluster(conn) => cluster::ping_primaries(conn).await,
        }
    }
}

/// A fresh subscribing connection.
enum Connected {
    Single(PubSubSink, PubSubStream),
    Cluster(ClusterConnection, mpsc::Receiver<PushInfo>),
}

/// How a session on one connection ended.
enum Ended {
    Shutdown,
    /// The subscriptions could not be set up: retry after a backoff.
    Refused(RedisError),
    /// A working connection was lost: reconnect at once.
    Lost(RedisError),
}

async fn connect_subscriber(
    client: &redis::Client,
    url: &str,
    overflowed: &Arc<AtomicBool>,
) -> Result<Connected, RedisError> {
    if connect_single(client).await?.1 {
        let (conn, pushes) = cluster::connect(url, Some(overflowed.clone())).await?;
        let pushes = pushes.ok_or_else(|| {
            RedisError::from(std::io::Error::other(
                "cluster client without a push channel",
            ))
        })?;
        return Ok(Connected::Cluster(conn, pushes));
    }
    let pubsub = tokio::time::timeout(CONNECT_TIMEOUT, client.get_async_pubsub())
        .await
        .map_err(|_| RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut)))??;
    let (mut sink, stream) = pubsub.split();
    timed(sink.ping::<redis::Value>()).await?;
    Ok(Connected::Single(sink, stream))
}

impl Subscriber {
    pub(super) async fn run(
        mut self,
        client: redis::Client,
        url: String,
        health: Arc<Health>,
        shutdown: CancellationToken,
    ) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let connected = tokio::select! {
                _ = shutdown.cancelled() => return,
                connected = connect_subscriber(&client, &url, &self.overflowed) => connected,
            };
            let connected = match connected {
                Ok(connected) => connected,
                Err(error) => {
                    tracing::error!(%error, hint = hint(&error), retry_in = ?backoff, "bus: cannot reach the Redis broker to subscribe");
                    // While the broker is away, the table is polled between
                    // attempts, so open streams still receive (slower).
                    self.check_heads(true).await;
                    if !backoff_or_stop(&mut backoff, &shutdown).await {
                        return;
                    }
                    continue;
                }
            };
            let ended = match connected {
                Connected::Single(sink, stream) => {
                    self.single(sink, stream, &health, &shutdown).await
                }
                Connected::Cluster(conn, pushes) => {
                    self.cluster(conn, pushes, &health, &shutdown).await
                }
            };
            health.set_subscriber(false);
            // Publishes may be missed from now on: no cache entry is current.
            self.observer.forget_all();
            match ended {
                Ended::Shutdown => return,
                Ended::Refused(error) => {
                    tracing::warn!(%error, "bus: cannot subscribe; reconnecting");
                    metrics::counter!(m::BUS_RECONNECTS).increment(1);
                    if !backoff_or_stop(&mut backoff, &shutdown).await {
                        return;
                    }
                }
                Ended::Lost(error) => {
                    backoff = Duration::from_millis(100);
                    metrics::counter!(m::BUS_RECONNECTS).increment(1);
                    tracing::warn!(%error, "bus: lost the Redis subscribing connection; reconnecting");
                }
            }
        }
    }

    /// A session on one node: `SUBSCRIBE` on its pub/sub connection.
    async fn single(
        &mut self,
        sink: PubSubSink,
        mut stream: PubSubStream,
        health: &Health,
        shutdown: &CancellationToken,
    ) -> Ended {
        let mut sub = Subscription::Single(sink);
        // Everything subscribed before is subscribed again; what was
        // published meanwhile is read back by the check below.
        let previous: Vec<RoomName> = self.rooms.keys().cloned().collect();
        let subscribed = match self.subscribe(&mut sub, &previous, false).await {
            Ok(()) => self.reconcile(&mut sub).await,
            Err(error) => Err(error),
        };
        if let Err(error) = subscribed {
            return Ended::Refused(error);
        }
        if self.subscribed_once {
            // Repair now rather than at the next interval.
            self.check_heads(true).await;
        }
        self.subscribed_once = true;
        health.set_subscriber(true);
        tracing::info!(
            rooms = self.rooms.len(),
            "bus: subscribed on the Redis broker"
        );

        let (mut check, mut ping) = self.intervals().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ended::Shutdown,
                received = stream.next() => match received {
                    Some(message) => self.deliver(&message).await,
                    None => return Ended::Lost(reset()),
                },
                _ = self.hub.rooms_changed() => {
                    if let Err(error) = self.reconcile(&mut sub).await {
                        return Ended::Lost(error);
                    }
                }
                _ = self.observer.held_changed() => {
                    if let Err(error) = self.reconcile(&mut sub).await {
                        return Ended::Lost(error);
                    }
                }
                _ = check.tick() => {
                    if let Err(error) = self.reconcile(&mut sub).await {
                        return Ended::Lost(error);
                    }
                    self.check_heads(false).await;
                }
                _ = ping.tick() => {
                    if let Err(error) = sub.ping().await {
                        return Ended::Lost(error);
                    }
                }
            }
        }
    }

    /// A session on a cluster: `SSUBSCRIBE` per room on the shard owning its
    /// slot. A node that is lost does not end the session (the cluster
    /// client reconnects to it): its rooms turn unconfirmed, the process
    /// unready, and the heads check serves them until the node confirms
    /// their subscriptions again.
    async fn cluster(
        &mut self,
        conn: ClusterConnection,
        mut pushes: mpsc::Receiver<PushInfo>,
        health: &Health,
        shutdown: &CancellationToken,
    ) -> Ended {
        let mut sub = Subscription::Cluster(conn);
        self.overflowed.store(false, Ordering::Relaxed);
        self.unconfirmed.extend(self.rooms.keys().cloned());
        let mut degraded = sub.ping().await.is_err();
        if !degraded {
            self.confirm(&mut sub).await;
        }
        if let Err(error) = self.reconcile(&mut sub).await {
            return Ended::Refused(error);
        }
        self.subscribed_once = true;
        let ready = |this: &Self, degraded: bool| !degraded && this.unconfirmed.is_empty();
        health.set_subscriber(ready(self, degraded));
        tracing::info!(
            rooms = self.rooms.len(),
            unconfirmed = self.unconfirmed.len(),
            "bus: subscribed on the Redis cluster (sharded pub/sub)"
        );

        let (mut check, mut ping) = self.intervals().await;
        loop {
            let mut lost = None;
            tokio::select! {
                _ = shutdown.cancelled() => return Ended::Shutdown,
                push = pushes.recv() => {
                    let Some(push) = push else {
                        return Ended::Lost(reset());
                    };
                    match push.kind {
                        redis::PushKind::SMessage => {
                            if let Some(message) = redis::Msg::from_push_info(push) {
                                self.deliver(&message).await;
                            }
                        }
                        redis::PushKind::Disconnection => lost = Some("a node's connection dropped"),
                        // The server ends shard subscriptions whose slot
                        // moved to another shard: subscribe there again.
                        // (Our own SUNSUBSCRIBEs are confirmed after the
                        // room left `rooms`.)
                        redis::PushKind::SUnsubscribe => {
                            let room = push.data.first().and_then(|c| {
                                redis::from_redis_value_ref::<String>(c).ok()
                            }).and_then(|c| room_of(&c));
                            if let Some(room) = room.filter(|r| self.rooms.contains_key(r)) {
                                self.observer.forget(&room);
                                self.unconfirmed.insert(room);
                            }
                        }
                        _ => {}
                    }
                    if self.overflowed.swap(false, Ordering::Relaxed) {
                        lost = Some("the subscriber fell behind the broker's pushes");
                    }
                }
                _ = self.hub.rooms_changed() => {
                    let _ = self.reconcile(&mut sub).await;
                }
                _ = self.observer.held_changed() => {
                    let _ = self.reconcile(&mut sub).await;
                }
                _ = check.tick() => {
                    if degraded || !self.unconfirmed.is_empty() {
                        degraded = sub.ping().await.is_err();
                        if !degraded {
                            self.confirm(&mut sub).await;
                        }
                    }
                    let _ = self.reconcile(&mut sub).await;
                    self.check_heads(false).await;
                }
                _ = ping.tick() => {
                    if sub.ping().await.is_err() {
                        lost = Some("a primary does not answer PING");
                    }
                }
            }
            if let Some(why) = lost {
                if !degraded {
                    tracing::warn!(why, "bus: a Redis cluster node was lost; its rooms are served from the table until it is back");
                    metrics::counter!(m::BUS_RECONNECTS).increment(1);
                }
                degraded = true;
                // Whatever that node carried may have been missed.
                self.unconfirmed.extend(self.rooms.keys().cloned());
                self.observer.forget_all();
            }
            health.set_subscriber(ready(self, degraded));
        }
    }

    /// The repair and ping intervals, their first (immediate) ticks taken.
    async fn intervals(&self) -> (tokio::time::Interval, tokio::time::Interval) {
        let mut check = tokio::time::interval(self.repair_every);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut ping = tokio::time::interval(PING_EVERY);
        check.tick().await;
        ping.tick().await;
        (check, ping)
    }

    /// Subscribes the unconfirmed rooms again; those confirmed now are
    /// checked against the table at once, for what was missed meanwhile.
    async fn confirm(&mut self, sub: &mut Subscription) {
        let rooms: Vec<RoomName> = self.unconfirmed.iter().cloned().collect();
        if rooms.is_empty() || self.subscribe(sub, &rooms, false).await.is_err() {
            return;
        }
        let confirmed: Vec<RoomName> = rooms
            .into_iter()
            .filter(|room| !self.unconfirmed.contains(room))
            .collect();
        if !confirmed.is_empty() {
            tracing::info!(
                rooms = confirmed.len(),
                left = self.unconfirmed.len(),
                "bus: cluster subscriptions confirmed again"
            );
        }
        self.check_rooms(confirmed, true).await;
    }

    /// Subscribes to rooms that gained local subscribers or entered the read
    /// cache, unsubscribes from rooms that have neither any more, and tells
    /// the cache the heads of its rooms whose subscription holds.
    async fn reconcile(&mut self, sub: &mut Subscription) -> Result<(), RedisError> {
        let mut active = self.hub.active_rooms();
        let held = self.observer.held();
        let mut wanted: HashSet<&RoomName> = active.iter().collect();
        let cached: Vec<RoomName> = held
            .iter()
            .filter(|(room, _)| !wanted.contains(room))
            .map(|(room, _)| room.clone())
            .collect();
        active.extend(cached);
        wanted = active.iter().collect();
        let gone: Vec<RoomName> = self
            .rooms
            .keys()
            .filter(|room| !wanted.contains(room))
            .cloned()
            .collect();
        for chunk in gone.chunks(SUBSCRIBE_CHUNK) {
            let channels: Vec<String> = chunk.iter().map(channel).collect();
            sub.unsubscribe(&channels).await?;
            for room in chunk {
                self.rooms.remove(room);
                self.unconfirmed.remove(room);
            }
        }
        let new: Vec<RoomName> = active
            .iter()
            .filter(|room| !self.rooms.contains_key(*room))
            .cloned()
            .collect();
        self.subscribe(sub, &new, true).await?;
        let new: HashSet<RoomName> = new.into_iter().collect();
        // Cached rooms subscribed before they were cached (or refilled
        // since): their heads now, read after the subscription held.
        let waiting: Vec<RoomName> = held
            .into_iter()
            .filter(|(room, waits)| {
                *waits && self.rooms.contains_key(room) && !self.unconfirmed.contains(room)
            })
            .map(|(room, _)| room)
            .filter(|room| !new.contains(room))
            .collect();
        for chunk in waiting.chunks(SUBSCRIBE_CHUNK) {
            if let Some(heads) = self.heads(chunk).await {
                for room in chunk {
                    let head = heads.get(room).copied().unwrap_or(0);
                    self.observer.subscribed(room, head);
                }
            }
        }
        Ok(())
    }

    /// Subscribes to `rooms`. For rooms new to this process, the heads are
    /// read after the subscription holds, and their subscribers told to
    /// re-read the table: whatever was committed before the broker sent us
    /// the room's publishes is in the table by then. A room whose cluster
    /// shard did not confirm is kept as unconfirmed.
    async fn subscribe(
        &mut self,
        sub: &mut Subscription,
        rooms: &[RoomName],
        new: bool,
    ) -> Result<(), RedisError> {
        for chunk in rooms.chunks(SUBSCRIBE_CHUNK) {
            let channels: Vec<String> = chunk.iter().map(channel).collect();
            let failed = sub.subscribe(&channels).await?;
            for (room, channel) in chunk.iter().zip(&channels) {
                if failed.contains(channel) {
                    self.unconfirmed.insert(room.clone());
                } else {
                    self.unconfirmed.remove(room);
                }
            }
            if !new {
                continue;
            }
            let heads = self.heads(chunk).await;
            for room in chunk {
                let delivered = heads
                    .as_ref()
                    .map_or(0, |h| h.get(room).copied().unwrap_or(0));
                if heads.is_some() && !self.unconfirmed.contains(room) {
                    self.observer.subscribed(room, delivered);
                }
                self.rooms.insert(
                    room.clone(),
                    RoomState {
                        delivered,
                        suspect: None,
                    },
                );
                self.hub.resync(room);
            }
        }
        Ok(())
    }

    /// One broker message: checked, gap-repaired, delivered.
    async fn deliver(&mut self, message: &redis::Msg) {
        let Some(room) = room_of(message.get_channel_name()) else {
            reject(message.get_channel_name(), &Rejected::WrongRoom);
            return;
        };
        let Some(state) = self.rooms.get(&room).copied() else {
            return; // unsubscribed meanwhile
        };
        let batch = match decode(&room, message.get_payload_bytes()) {
            Ok(batch) => batch,
            Err(why) => {
                reject(message.get_channel_name(), &why);
                return;
            }
        };
        let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
            return;
        };
        let (first, last) = (first.seq(), last.seq());
        if last <= state.delivered {
            return; // already delivered (repaired before its publish arrived)
        }
        if first > state.delivered + 1 {
            // A publish was lost or overtaken: fill the gap from the table.
            self.repair(&room, first - 1).await;
        }
        let delivered = self.rooms.get(&room).map_or(0, |s| s.delivered);
        let fresh: Vec<Arc<RoomEvent>> = batch
            .into_iter()
            .filter(|e| e.seq() > delivered)
            .map(Arc::new)
            .collect();
        self.hub.publish(&room, &fresh);
        self.observer.committed(&fresh);
        self.mark(&room, last);
    }
}

fn reject(channel: &str, why: &Rejected) {
    metrics::counter!(m::BUS_PAYLOADS_REJECTED).increment(1);
    tracing::warn!(channel, reason = %why, "bus: ignoring a broker payload");
}
