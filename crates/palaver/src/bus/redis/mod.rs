//! The Redis/Valkey side of the bus: the committed messages themselves ride
//! the broker, so a gateway delivers without reading the database.
//!
//! - **Publishing** (`api` role): after a batch commits, the writer encodes it
//!   ([`encode`]) and queues it; one publisher task per process sends what is
//!   queued as one pipeline of `PUBLISH`es (one per batch and room) on a
//!   multiplexed connection. Writes never wait for the broker: a publish that
//!   is lost (broker down, queue over its byte budget, the process killed
//!   between commit and publish) is repaired by the subscribers.
//! - **Subscribing** (`gateway` role): one pub/sub connection per process,
//!   subscribed to `palaver:room:<name>` for exactly the rooms with local
//!   subscribers ([`Hub::active_rooms`]): at once when a room gains its first
//!   subscriber or loses its last ([`Hub::rooms_changed`]).
//! - **Repair**, because PostgreSQL stays the truth: the subscriber remembers
//!   the last seq it delivered per room. A batch that skips ahead is preceded
//!   by the missing rows read from the table; every `--bus-repair-interval-ms`
//!   one query reads the heads (`rooms.last_seq`) of all subscribed rooms, and
//!   a head still ahead of what was delivered at the next check is read back
//!   and delivered. So a message whose publish never happened reaches every
//!   subscriber within two intervals (2 s by default). After a reconnect the
//!   same check runs at once for every room.
//!
//! - **Cluster mode** ([`cluster`]): when the endpoint says
//!   `cluster_enabled:1` (asked on every connect), the same publisher and
//!   subscriber use sharded pub/sub — `SPUBLISH`, and `SSUBSCRIBE` on the
//!   shard owning each room's slot — through redis-rs's cluster client.
//!   A lost node turns its rooms unconfirmed and the process unready; the
//!   heads check serves them meanwhile, and once their subscriptions are
//!   confirmed again they are checked against the table at once.
//!
//! Payloads are versioned JSON ([`PAYLOAD_VERSION`]); anything else on a
//! channel — another version, another application, a room that does not
//! match its channel, a malformed or out-of-bounds message — is ignored and
//! counted in `palaver_bus_payloads_rejected_total`, never delivered.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubSink, PubSubStream};
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, PushInfo, RedisError};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Bus, History, Hub, Observer};
use crate::config::BusUrl;
use crate::domain::{
    Author, ClientId, DeleteEvent, EditEvent, Emoji, FileRef, Message, MessageText, ReactionEvent,
    RoomEvent, RoomName,
};
use crate::telemetry::metrics as m;

pub(crate) mod cluster;

/// Channel names are this prefix and the room name (`[a-z0-9_-]`, so no
/// `{…}` hash tag can sneak in).
pub const CHANNEL_PREFIX: &str = "palaver:room:";
/// The payload format this build writes and reads.
pub const PAYLOAD_VERSION: u32 = 2;
/// Largest payload accepted from the broker (a full batch of 256 messages of
/// 4,000 characters is about 4 MiB of JSON).
const MAX_PAYLOAD_BYTES: usize = 8 << 20;
/// Most messages one payload may carry.
const MAX_PAYLOAD_MESSAGES: usize = 10_000;
/// Bytes of encoded batches that may wait for the publisher; beyond it
/// batches are dropped (and repaired by the subscribers).
const QUEUE_BYTES: usize = 32 << 20;
/// Batches the publisher sends per pipeline.
const PIPELINE: usize = 256;
/// How long connecting, a command, or a repair query may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);
/// Idle connections are pinged this often, so a dead broker is noticed.
const PING_EVERY: Duration = Duration::from_secs(5);
/// Channels per `SUBSCRIBE` / `UNSUBSCRIBE` command.
const SUBSCRIBE_CHUNK: usize = 256;
/// Rows a repair reads at most for one room; a longer gap sends the room's
/// subscribers to the table themselves (they page through it).
const REPAIR_MAX_ROWS: i64 = 256;

pub fn channel(room: &RoomName) -> String {
    format!("{CHANNEL_PREFIX}{room}")
}

fn room_of(channel: &str) -> Option<RoomName> {
    RoomName::parse(channel.strip_prefix(CHANNEL_PREFIX)?).ok()
}

// ---------------------------------------------------------------------------
// Payload format

#[derive(Serialize)]
struct PayloadOut<'a> {
    v: u32,
    room: &'a str,
    events: Vec<WireOut<'a>>,
}

/// One event on the wire: the fields of its kind, with times in
/// milliseconds since the epoch.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum WireOut<'a> {
    Message {
        seq: i64,
        author: &'a str,
        author_id: Option<&'a str>,
        text: &'a str,
        sent_at_ms: i64,
        client_id: Option<&'a str>,
        client_ip: &'a str,
        reply_to: Option<i64>,
        mentions: &'a [String],
        files: &'a [FileRef],
    },
    Edit {
        seq: i64,
        target: i64,
        text: &'a str,
        at_ms: i64,
        mentions: &'a [String],
        user_id: &'a str,
    },
    Delete {
        seq: i64,
        target: i64,
        at_ms: i64,
        user_id: &'a str,
    },
    Reaction {
        seq: i64,
        target: i64,
        emoji: &'a str,
        user_id: &'a str,
        on: bool,
        at_ms: i64,
    },
}

#[derive(Deserialize)]
struct PayloadIn {
    v: u32,
    room: String,
    events: Vec<WireIn>,
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum WireIn {
    Message {
        seq: i64,
        author: String,
        #[serde(default)]
        author_id: Option<String>,
        text: String,
        sent_at_ms: i64,
        client_id: Option<String>,
        client_ip: String,
        #[serde(default)]
        reply_to: Option<i64>,
        #[serde(default)]
        mentions: Vec<String>,
        #[serde(default)]
        files: Vec<FileRef>,
    },
    Edit {
        seq: i64,
        target: i64,
        text: String,
        at_ms: i64,
        mentions: Vec<String>,
        user_id: String,
    },
    Delete {
        seq: i64,
        target: i64,
        at_ms: i64,
        user_id: String,
    },
    Reaction {
        seq: i64,
        target: i64,
        emoji: String,
        user_id: String,
        on: bool,
        at_ms: i64,
    },
}

impl WireIn {
    fn seq(&self) -> i64 {
        match self {
            WireIn::Message { seq, .. }
            | WireIn::Edit { seq, .. }
            | WireIn::Delete { seq, .. }
            | WireIn::Reaction { seq, .. } => *seq,
        }
    }
}

fn millis(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

fn from_millis(ms: i64) -> Result<OffsetDateTime, Rejected> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|_| Rejected::BadField)
}

/// Encodes one room's committed events (in seq order) as one payload.
pub fn encode(room: &RoomName, events: &[Arc<RoomEvent>]) -> Vec<u8> {
    let payload = PayloadOut {
        v: PAYLOAD_VERSION,
        room: room.as_str(),
        events: events
            .iter()
            .map(|e| match e.as_ref() {
                RoomEvent::Message(m) => WireOut::Message {
                    seq: m.seq,
                    author: &m.author,
                    author_id: m.author_id.as_deref(),
                    text: &m.text,
                    sent_at_ms: millis(m.sent_at),
                    client_id: m.client_id.as_deref(),
                    client_ip: &m.client_ip,
                    reply_to: m.reply_to,
                    mentions: &m.mentions,
                    files: &m.files,
                },
                RoomEvent::Edit(e) => WireOut::Edit {
                    seq: e.seq,
                    target: e.target,
                    text: &e.text,
                    at_ms: millis(e.edited_at),
                    mentions: &e.mentions,
                    user_id: &e.user_id,
                },
                RoomEvent::Delete(e) => WireOut::Delete {
                    seq: e.seq,
                    target: e.target,
                    at_ms: millis(e.at),
                    user_id: &e.user_id,
                },
                RoomEvent::Reaction(e) => WireOut::Reaction {
                    seq: e.seq,
                    target: e.target,
                    emoji: &e.emoji,
                    user_id: &e.user_id,
                    on: e.on,
                    at_ms: millis(e.at),
                },
            })
            .collect(),
    };
    // Serialising our own plain structs cannot fail.
    serde_json::to_vec(&payload).unwrap_or_default()
}

/// Why a broker payload was ignored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("payload of {0} bytes is over the limit")]
    TooLarge(usize),
    #[error("not a palaver payload")]
    Malformed,
    #[error("payload version {0} is not {PAYLOAD_VERSION}")]
    Version(u32),
    #[error("payload names another room than its channel")]
    WrongRoom,
    #[error("payload seqs are empty, too many, or not consecutive from 1 up")]
    BadSeqs,
    #[error("an event field is out of bounds")]
    BadField,
}

/// Most user ids in a mention list, and most files on a message, accepted
/// from the broker.
const MAX_LIST: usize = 1000;

fn id_ok(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64
}

/// Decodes and checks a payload heard on `room`'s channel: the events must
/// be that room's, consecutive, and every field within the bounds the API
/// itself enforces. Anything else is rejected whole.
pub fn decode(room: &RoomName, bytes: &[u8]) -> Result<Vec<RoomEvent>, Rejected> {
    if bytes.len() > MAX_PAYLOAD_BYTES {
        return Err(Rejected::TooLarge(bytes.len()));
    }
    let payload: PayloadIn = serde_json::from_slice(bytes).map_err(|_| Rejected::Malformed)?;
    if payload.v != PAYLOAD_VERSION {
        return Err(Rejected::Version(payload.v));
    }
    if payload.room != room.as_str() {
        return Err(Rejected::WrongRoom);
    }
    let first = payload.events.first().map(WireIn::seq).unwrap_or(0);
    let consecutive = payload
        .events
        .iter()
        .zip(first..)
        .all(|(e, seq)| e.seq() == seq);
    if first < 1 || !consecutive || payload.events.len() > MAX_PAYLOAD_MESSAGES {
        return Err(Rejected::BadSeqs);
    }
    let text_ok = |text: &str| {
        MessageText::parse(text, MessageText::MAX_CHARS).is_ok_and(|t| t.as_str() == text)
    };
    let list_ok = |ids: &[String]| ids.len() <= MAX_LIST && ids.iter().all(|i| id_ok(i));
    payload
        .events
        .into_iter()
        .map(|e| match e {
            WireIn::Message {
                seq,
                author,
                author_id,
                text,
                sent_at_ms,
                client_id,
                client_ip,
                reply_to,
                mentions,
                files,
            } => {
                let valid = Author::parse(&author).is_ok_and(|a| a.as_str() == author)
                    && text_ok(&text)
                    && client_id
                        .as_deref()
                        .is_none_or(|c| ClientId::parse(c).is_ok())
                    && author_id.as_deref().is_none_or(id_ok)
                    && client_ip.len() <= 64
                    && reply_to.is_none_or(|r| (1..seq).contains(&r))
                    && list_ok(&mentions)
                    && files.len() <= MAX_LIST;
                if !valid {
                    return Err(Rejected::BadField);
                }
                Ok(RoomEvent::Message(Arc::new(Message {
                    room: room.clone(),
                    seq,
                    author,
                    author_id,
                    text,
                    sent_at: from_millis(sent_at_ms)?,
                    client_id,
                    client_ip,
                    edited_at: None,
                    deleted: false,
                    reply_to,
                    reactions: Vec::new(),
                    mentions,
                    files,
                    as_of: seq,
                    frame: Default::default(),
                })))
            }
            WireIn::Edit {
                seq,
                target,
                text,
                at_ms,
                mentions,
                user_id,
            } => {
                // A replayed edit of a deleted message has an empty text.
                if !(1..seq).contains(&target)
                    || !(text.is_empty() || text_ok(&text))
                    || !list_ok(&mentions)
                    || !id_ok(&user_id)
                {
                    return Err(Rejected::BadField);
                }
                Ok(RoomEvent::Edit(EditEvent {
                    room: room.clone(),
                    seq,
                    target,
                    text,
                    edited_at: from_millis(at_ms)?,
                    mentions,
                    user_id,
                    frame: Default::default(),
                }))
            }
            WireIn::Delete {
                seq,
                target,
                at_ms,
                user_id,
            } => {
                if !(1..seq).contains(&target) || !id_ok(&user_id) {
                    return Err(Rejected::BadField);
                }
                Ok(RoomEvent::Delete(DeleteEvent {
                    room: room.clone(),
                    seq,
                    target,
                    at: from_millis(at_ms)?,
                    user_id,
                    frame: Default::default(),
                }))
            }
            WireIn::Reaction {
                seq,
                target,
                emoji,
                user_id,
                on,
                at_ms,
            } => {
                if !(1..seq).contains(&target) || Emoji::parse(&emoji).is_err() || !id_ok(&user_id)
                {
                    return Err(Rejected::BadField);
                }
                Ok(RoomEvent::Reaction(ReactionEvent {
                    room: room.clone(),
                    seq,
                    target,
                    emoji,
                    user_id,
                    on,
                    at: from_millis(at_ms)?,
                    frame: Default::default(),
                }))
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------
// Health

/// What `/readyz` and `palaver_bus_up` say about the broker.
#[derive(Default)]
struct Health {
    /// `Some` when this process publishes: whether it is connected now.
    publisher: Option<AtomicBool>,
    /// Whether the publisher has connected at least once.
    publisher_started: AtomicBool,
    /// `Some` when this process subscribes: connected and subscribed.
    subscriber: Option<AtomicBool>,
    /// Whether readiness waits for the subscriber (it serves streams); a
    /// writer that subscribes only for its read cache stays ready without,
    /// its cache then answers from the table.
    subscriber_gates: bool,
}

impl Health {
    /// Ready once a publisher has reached the broker (a wrong URL, password
    /// or TLS setting keeps a new pod out of service) and while the
    /// subscriber is connected. A writer stays ready through a later broker
    /// outage: its writes commit to PostgreSQL and the subscribers repair
    /// what it could not publish.
    fn ready(&self) -> bool {
        let publisher = self.publisher.is_none() || self.publisher_started.load(Ordering::Relaxed);
        let subscriber = !self.subscriber_gates
            || self
                .subscriber
                .as_ref()
                .is_none_or(|s| s.load(Ordering::Relaxed));
        publisher && subscriber
    }

    /// Whether every connection this process needs is up now.
    fn up(&self) -> bool {
        [&self.publisher, &self.subscriber]
            .into_iter()
            .flatten()
            .all(|up| up.load(Ordering::Relaxed))
    }

    fn publisher_up(&self) -> bool {
        self.publisher
            .as_ref()
            .is_some_and(|p| p.load(Ordering::Relaxed))
    }

    fn set_publisher(&self, up: bool) {
        if let Some(p) = &self.publisher {
            p.store(up, Ordering::Relaxed);
        }
        if up {
            self.publisher_started.store(true, Ordering::Relaxed);
        }
        super::report_up(self.up());
    }

    fn set_subscriber(&self, up: bool) {
        if let Some(s) = &self.subscriber {
            s.store(up, Ordering::Relaxed);
        }
        super::report_up(self.up());
    }
}

// ---------------------------------------------------------------------------
// The bus

struct Outgoing {
    channel: String,
    payload: Vec<u8>,
}

/// The `Bus` of a process on the Redis bus.
pub struct RedisBus {
    queue: Option<mpsc::UnboundedSender<Outgoing>>,
    queued_bytes: Arc<AtomicUsize>,
    health: Arc<Health>,
}

impl Bus for RedisBus {
    fn committed(&self, events: &[Arc<RoomEvent>]) {
        for room in events.chunk_by(|a, b| a.room() == b.room()) {
            self.queue_batch(room[0].room(), room);
        }
    }

    fn is_ready(&self) -> bool {
        self.health.ready()
    }
}

impl RedisBus {
    /// Queues one room's batch for the publisher.
    fn queue_batch(&self, room: &RoomName, events: &[Arc<RoomEvent>]) {
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

/// What a process does on the Redis bus.
#[derive(Debug, Clone, Copy)]
pub struct Sides {
    /// It writes: publish what commits.
    pub publish: bool,
    /// It serves streams: subscribe for the hub (readiness waits for it).
    pub streams: bool,
    /// Its read cache is on: subscribe to the rooms it holds.
    pub cache: bool,
}

/// Starts the Redis bus for a process: a publisher when it writes, a
/// subscriber feeding `hub` and `observer` (the read cache) when it serves
/// streams or caches. Tasks run on `tasks` until `shutdown`.
#[allow(clippy::too_many_arguments)]
pub fn start(
    url: &BusUrl,
    sides: Sides,
    history: Arc<dyn History>,
    hub: Arc<Hub>,
    observer: Arc<dyn Observer>,
    repair_every: Duration,
    tasks: &tokio_util::task::TaskTracker,
    shutdown: CancellationToken,
) -> Result<RedisBus, RedisError> {
    let client = redis::Client::open(url.expose())?;
    let (publish, subscribe) = (sides.publish, sides.streams || sides.cache);
    let health = Arc::new(Health {
        publisher: publish.then(|| AtomicBool::new(false)),
        publisher_started: AtomicBool::new(false),
        subscriber: subscribe.then(|| AtomicBool::new(false)),
        subscriber_gates: sides.streams,
    });
    super::report_up(false);
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    let queue = publish.then(|| {
        let (tx, rx) = mpsc::unbounded_channel();
        tasks.spawn(run_publisher(
            client.clone(),
            url.expose().to_owned(),
            rx,
            queued_bytes.clone(),
            health.clone(),
            shutdown.clone(),
        ));
        tx
    });
    if subscribe {
        let subscriber = Subscriber {
            hub,
            observer,
            history,
            repair_every,
            rooms: HashMap::new(),
            unconfirmed: HashSet::new(),
            overflowed: Arc::new(AtomicBool::new(false)),
            subscribed_once: false,
        };
        tasks.spawn(subscriber.run(client, url.expose().to_owned(), health.clone(), shutdown));
    }
    Ok(RedisBus {
        queue,
        queued_bytes,
        health,
    })
}

/// A log line's worth of advice for a connection error.
fn hint(error: &RedisError) -> &'static str {
    if error.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(error.code(), Some("WRONGPASS" | "NOAUTH" | "NOPERM"))
    {
        "authentication failed: check the password (or user) in --bus"
    } else if error.is_connection_refusal() {
        "connection refused: is the broker running at that address and port?"
    } else if error.is_timeout() {
        "no answer in time: network, security group, or TLS mismatch"
    } else if error.kind() == redis::ErrorKind::Io {
        "connection failed: network, or TLS mismatch (rediss:// needs a TLS port, redis:// a plain one)"
    } else {
        "the broker refused the connection"
    }
}

async fn backoff_or_stop(backoff: &mut Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => return false,
        _ = tokio::time::sleep(*backoff) => {}
    }
    *backoff = (*backoff * 2).min(Duration::from_secs(5));
    true
}

// ---------------------------------------------------------------------------
// Publisher

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

/// Connects, and asks the server whether it is a cluster (see [`cluster`]).
async fn connect_single(
    client: &redis::Client,
) -> Result<(MultiplexedConnection, bool), RedisError> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    // The handshake authenticates; a PING proves the connection serves.
    redis::cmd("PING").query_async::<()>(&mut conn).await?;
    let cluster = cluster::enabled(&mut conn).await?;
    Ok((conn, cluster))
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

async fn run_publisher(
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

// ---------------------------------------------------------------------------
// Subscriber

/// What the subscriber knows of one subscribed room.
#[derive(Debug, Clone, Copy, Default)]
struct RoomState {
    /// The newest seq delivered to the hub (or known to be in the table
    /// when the room was subscribed).
    delivered: i64,
    /// The room's head at the last check, when it was ahead of `delivered`.
    suspect: Option<i64>,
}

/// The subscribing side. `rooms` holds exactly the subscribed rooms; its
/// owner is this task, its bound the hub's rooms with subscribers (each
/// needs an open stream, so at most `--max-streams`) plus the rooms the read
/// cache holds (bounded by `--read-cache-bytes`).
struct Subscriber {
    hub: Arc<Hub>,
    /// The read cache: fed what arrives, and its rooms are subscribed too.
    observer: Arc<dyn Observer>,
    history: Arc<dyn History>,
    repair_every: Duration,
    rooms: HashMap<RoomName, RoomState>,
    /// Cluster mode: the rooms of `rooms` whose subscription is not
    /// confirmed (their shard is down, or a node was lost since). The heads
    /// check serves them meanwhile; once confirmed they are checked at once.
    unconfirmed: HashSet<RoomName>,
    /// Set by the cluster client when a push frame had to be dropped.
    overflowed: Arc<AtomicBool>,
    /// Whether a subscription ever held (a later one repairs at once).
    subscribed_once: bool,
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

/// Runs a command with the response timeout.
async fn timed<T>(
    command: impl std::future::Future<Output = Result<T, RedisError>>,
) -> Result<T, RedisError> {
    tokio::time::timeout(RESPONSE_TIMEOUT, command)
        .await
        .map_err(|_| RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut)))?
}

fn reset() -> RedisError {
    std::io::Error::from(std::io::ErrorKind::ConnectionReset).into()
}

impl Subscriber {
    async fn run(
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

    /// Rooms' newest seqs in one query; `None` when the database does not
    /// answer (the next check tries again).
    async fn heads(&self, rooms: &[RoomName]) -> Option<HashMap<RoomName, i64>> {
        match tokio::time::timeout(RESPONSE_TIMEOUT, self.history.heads(rooms)).await {
            Ok(Ok(heads)) => Some(heads),
            Ok(Err(error)) => {
                tracing::warn!(%error, "bus: cannot read room heads");
                None
            }
            Err(_) => {
                tracing::warn!("bus: reading room heads timed out");
                None
            }
        }
    }

    /// [`Subscriber::check_rooms`] for every subscribed room.
    async fn check_heads(&mut self, now: bool) {
        let rooms: Vec<RoomName> = self.rooms.keys().cloned().collect();
        self.check_rooms(rooms, now).await;
    }

    /// Compares `rooms`' heads with what was delivered and reads back what
    /// a publish missed: at once after a reconnect (`now`), otherwise once
    /// the same shortfall is seen at two checks in a row (a publish in
    /// flight is not a loss).
    async fn check_rooms(&mut self, rooms: Vec<RoomName>, now: bool) {
        if rooms.is_empty() {
            return;
        }
        let Some(heads) = self.heads(&rooms).await else {
            return;
        };
        for room in rooms {
            let head = heads.get(&room).copied().unwrap_or(0);
            let Some(state) = self.rooms.get_mut(&room) else {
                continue;
            };
            let upto = if head <= state.delivered {
                state.suspect = None;
                None
            } else if now {
                Some(head)
            } else {
                match state.suspect {
                    // Still short of what the last check saw: lost.
                    Some(seen) if seen > state.delivered => Some(seen),
                    _ => {
                        state.suspect = Some(head);
                        None
                    }
                }
            };
            if let Some(upto) = upto {
                self.repair(&room, upto).await;
            }
        }
    }

    /// Delivers `room`'s messages after the last delivered one up to `upto`
    /// from the table, once for all of this process's subscribers.
    async fn repair(&mut self, room: &RoomName, upto: i64) {
        let Some(state) = self.rooms.get(room).copied() else {
            return;
        };
        if upto <= state.delivered {
            return;
        }
        metrics::counter!(m::BUS_REPAIRS).increment(1);
        let from = state.delivered + 1;
        if upto - from >= REPAIR_MAX_ROWS {
            self.hub.resync(room);
            self.observer.forget(room);
            self.mark(room, upto);
            return;
        }
        match tokio::time::timeout(RESPONSE_TIMEOUT, self.history.range(room, from, upto)).await {
            Ok(Ok(rows)) => {
                let rows: Vec<Arc<RoomEvent>> = rows.into_iter().map(Arc::new).collect();
                self.hub.publish(room, &rows);
                self.observer.committed(&rows);
            }
            _ => {
                tracing::warn!(room = %room, "bus: cannot read missed rows; subscribers re-read");
                self.hub.resync(room);
                self.observer.forget(room);
            }
        }
        self.mark(room, upto);
    }

    fn mark(&mut self, room: &RoomName, delivered: i64) {
        if let Some(state) = self.rooms.get_mut(room) {
            state.delivered = state.delivered.max(delivered);
            state.suspect = None;
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::now_millis;

    fn room() -> RoomName {
        RoomName::parse("general").unwrap()
    }

    fn message(seq: i64, text: &str) -> Arc<RoomEvent> {
        Arc::new(RoomEvent::Message(Arc::new(Message {
            room: room(),
            seq,
            author: "ada".into(),
            author_id: (seq % 3 == 0).then(|| format!("user-{seq}")),
            text: text.into(),
            sent_at: now_millis(),
            client_id: (seq % 2 == 0).then(|| format!("c{seq}")),
            client_ip: "10.0.0.1".into(),
            edited_at: None,
            deleted: false,
            reply_to: None,
            reactions: Vec::new(),
            mentions: Vec::new(),
            files: Vec::new(),
            as_of: seq,
            frame: Default::default(),
        })))
    }

    #[test]
    fn a_batch_survives_the_round_trip() {
        let at = now_millis();
        let batch = vec![
            message(7, "hi"),
            message(8, "line\nbreak \"quoted\""),
            Arc::new(RoomEvent::Edit(EditEvent {
                room: room(),
                seq: 9,
                target: 7,
                text: "hello".into(),
                edited_at: at,
                mentions: vec!["u1".into()],
                user_id: "u0".into(),
                frame: Default::default(),
            })),
            Arc::new(RoomEvent::Reaction(ReactionEvent {
                room: room(),
                seq: 10,
                target: 8,
                emoji: "👍".into(),
                user_id: "u1".into(),
                on: true,
                at,
                frame: Default::default(),
            })),
            Arc::new(RoomEvent::Delete(DeleteEvent {
                room: room(),
                seq: 11,
                target: 7,
                at,
                user_id: "u0".into(),
                frame: Default::default(),
            })),
        ];
        let decoded = decode(&room(), &encode(&room(), &batch)).unwrap();
        let expected: Vec<RoomEvent> = batch.iter().map(|e| (**e).clone()).collect();
        assert_eq!(decoded, expected);
        assert!(matches!(&decoded[1], RoomEvent::Message(m) if m.client_ip == "10.0.0.1"));
    }

    #[test]
    fn foreign_and_malformed_payloads_are_rejected_with_a_reason() {
        let good = encode(&room(), &[message(1, "x")]);
        let other = RoomName::parse("other").unwrap();
        assert_eq!(decode(&other, &good), Err(Rejected::WrongRoom));
        assert_eq!(decode(&room(), b"hello"), Err(Rejected::Malformed));
        assert_eq!(decode(&room(), b"{\"v\":2}"), Err(Rejected::Malformed));
        let v3 = String::from_utf8(good.clone())
            .unwrap()
            .replace("\"v\":2", "\"v\":3");
        assert_eq!(decode(&room(), v3.as_bytes()), Err(Rejected::Version(3)));
        let empty = br#"{"v":2,"room":"general","events":[]}"#;
        assert_eq!(decode(&room(), empty), Err(Rejected::BadSeqs));
        let gap = encode(&room(), &[message(1, "a"), message(3, "b")]);
        assert_eq!(decode(&room(), &gap), Err(Rejected::BadSeqs));
        let zero = encode(&room(), &[message(0, "a")]);
        assert_eq!(decode(&room(), &zero), Err(Rejected::BadSeqs));
        let control = encode(&room(), &[message(1, "bell\u{7}")]);
        assert_eq!(decode(&room(), &control), Err(Rejected::BadField));
        let long = encode(&room(), &[message(1, &"x".repeat(4001))]);
        assert_eq!(decode(&room(), &long), Err(Rejected::BadField));
        let bad_emoji = br#"{"v":2,"room":"general","events":[{"kind":"reaction","seq":2,"target":1,"emoji":"ok","user_id":"u","on":true,"at_ms":0}]}"#;
        assert_eq!(decode(&room(), bad_emoji), Err(Rejected::BadField));
        let future_target = br#"{"v":2,"room":"general","events":[{"kind":"delete","seq":2,"target":2,"user_id":"u","at_ms":0}]}"#;
        assert_eq!(decode(&room(), future_target), Err(Rejected::BadField));
        let huge = vec![b' '; MAX_PAYLOAD_BYTES + 1];
        assert!(matches!(decode(&room(), &huge), Err(Rejected::TooLarge(_))));
    }

    #[test]
    fn channels_name_their_room_and_nothing_else_parses() {
        assert_eq!(channel(&room()), "palaver:room:general");
        assert_eq!(room_of("palaver:room:general"), Some(room()));
        assert_eq!(room_of("palaver:room:Not A Room"), None);
        assert_eq!(room_of("other:general"), None);
    }

    #[test]
    fn a_writer_is_ready_once_it_reached_the_broker_and_stays_ready() {
        let health = Health {
            publisher: Some(AtomicBool::new(false)),
            ..Health::default()
        };
        assert!(!health.ready(), "a writer that never reached the broker");
        health.set_publisher(true);
        assert!(health.ready() && health.up());
        health.set_publisher(false);
        assert!(health.ready(), "writes go on while the broker is away");
        assert!(!health.up());
    }

    #[test]
    fn a_gateway_is_ready_only_while_subscribed() {
        let health = Health {
            subscriber: Some(AtomicBool::new(false)),
            subscriber_gates: true,
            ..Health::default()
        };
        assert!(!health.ready());
        health.set_subscriber(true);
        assert!(health.ready() && health.up());
        health.set_subscriber(false);
        assert!(!health.ready() && !health.up());
    }

    #[test]
    fn a_writer_subscribed_for_its_cache_stays_ready_without_the_subscription() {
        let health = Health {
            publisher: Some(AtomicBool::new(false)),
            subscriber: Some(AtomicBool::new(false)),
            ..Health::default()
        };
        health.set_publisher(true);
        assert!(health.ready(), "the cache answers from the table meanwhile");
        assert!(!health.up());
        health.set_subscriber(true);
        assert!(health.up());
    }
}
