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
//!
//! The files follow what the bus does: [`payload`] (the format),
//! [`connection`] and [`cluster`] (reaching the broker and its topology),
//! [`publish`], [`subscribe`] and [`repair`].

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redis::RedisError;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{Bus, History, Hub, Observer};
use crate::config::BusUrl;
use crate::domain::RoomEvent;
use publish::{run_publisher, Outgoing};
use subscribe::Subscriber;

pub(crate) mod cluster;
mod connection;
mod payload;
mod publish;
mod repair;
mod subscribe;

pub use payload::{channel, decode, encode, Rejected, CHANNEL_PREFIX, PAYLOAD_VERSION};

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

#[cfg(test)]
mod tests {
    use super::*;

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
