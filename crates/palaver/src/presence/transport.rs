//! How signals travel between processes, coalesced: a process's signals
//! wait up to [`COALESCE`] in a bounded queue ([`QUEUE`] signals; beyond it
//! they are dropped and counted, since typing is a hint and presence is
//! repeated by the next beat) and leave as one round trip of as few
//! payloads as fit ([`super::wire`]).
//!
//! - **Local** (SQLite: one process): nothing leaves the process.
//! - **PostgreSQL**: one autocommitted `SELECT pg_notify(…) FROM unnest(…)`
//!   per interval on channel [`PG_CHANNEL`], never inside the group commit's
//!   transactions, so keystrokes do not queue behind (or hold) the notify
//!   lock that commits take; at most one such commit per process every
//!   [`COALESCE`]. Every process listens on its own connection.
//! - **Redis/Valkey** (`--bus redis://…`): one pipeline of `PUBLISH`es per
//!   interval on [`REDIS_CHANNEL`], heard by a `SUBSCRIBE` on the `--bus`
//!   node; in cluster mode (asked on connect, as the bus does) `SPUBLISH`
//!   and `SSUBSCRIBE` on the shard that owns the channel's slot, so no
//!   message is broadcast over the cluster bus.
//!   Expiry is the presence table's own ([`super::CLAIM_TTL`]), the same on
//!   both buses: no key to clear, nothing that only its writer could delete.
//!
//! A listener that reconnects says `hello`, so the others beat at once and
//! its table is whole again within one round trip.

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::StreamExt;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::wire::{self, Signal};
use super::Signals;
use crate::telemetry::metrics as m;

/// The PostgreSQL notification channel of signals.
pub const PG_CHANNEL: &str = "palaver_signals";
/// The Redis/Valkey pub/sub channel of signals.
pub const REDIS_CHANNEL: &str = "palaver:signals";
/// How long a signal waits for others to share its notification.
pub const COALESCE: Duration = Duration::from_millis(50);
/// Signals waiting to leave, at most.
pub const QUEUE: usize = 8192;
/// Signals sent per round trip at most.
const BATCH: usize = 4096;

/// Where this process's signals go.
#[derive(Clone)]
pub enum Transport {
    /// One process: nowhere.
    Local,
    /// To the publisher task.
    Queue(mpsc::Sender<Signal>),
}

impl Transport {
    /// A queue to a publisher, and its receiving end.
    pub fn queue() -> (Self, mpsc::Receiver<Signal>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (Transport::Queue(tx), rx)
    }

    pub fn send(&self, signal: Signal) {
        if let Transport::Queue(tx) = self {
            if tx.try_send(signal).is_err() {
                metrics::counter!(m::SIGNALS_DROPPED).increment(1);
            }
        }
    }
}

/// Where a publisher sends and a listener hears.
#[derive(Clone)]
pub enum Backend {
    Postgres(PgPool),
    /// The client, and the `--bus` URL it was opened with (cluster mode
    /// opens its own client from it).
    Redis(Box<redis::Client>, String),
}

impl Backend {
    fn name(&self) -> &'static str {
        match self {
            Backend::Postgres(_) => "postgres",
            Backend::Redis(..) => "redis",
        }
    }
}

/// Waits for a signal, then [`COALESCE`] for more, and sends them all.
pub async fn publish(
    backend: Backend,
    replica: String,
    mut queue: mpsc::Receiver<Signal>,
    shutdown: CancellationToken,
) {
    let mut redis: Option<RedisPublishing> = None;
    let mut batch = Vec::with_capacity(64);
    loop {
        let first = tokio::select! {
            _ = shutdown.cancelled() => return,
            signal = queue.recv() => match signal {
                Some(signal) => signal,
                None => return,
            },
        };
        batch.push(first);
        tokio::time::sleep(COALESCE).await;
        while batch.len() < BATCH {
            match queue.try_recv() {
                Ok(signal) => batch.push(signal),
                Err(_) => break,
            }
        }
        let payloads = wire::encode(&replica, &batch);
        let sent = match &backend {
            Backend::Postgres(pool) => {
                sqlx::query("SELECT pg_notify($1, p) FROM unnest($2::text[]) p")
                    .bind(PG_CHANNEL)
                    .bind(&payloads)
                    .execute(pool)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
            Backend::Redis(client, url) => publish_redis(client, url, &mut redis, &payloads).await,
        };
        match sent {
            Ok(()) => {
                metrics::counter!(m::SIGNAL_PAYLOADS, "transport" => backend.name())
                    .increment(payloads.len() as u64);
                metrics::counter!(m::SIGNALS_SENT, "transport" => backend.name())
                    .increment(batch.len() as u64);
            }
            Err(error) => {
                metrics::counter!(m::SIGNALS_DROPPED).increment(batch.len() as u64);
                tracing::warn!(%error, signals = batch.len(), "presence: could not send signals");
            }
        }
        batch.clear();
        if batch.capacity() > 256 {
            batch.shrink_to(64);
        }
    }
}

/// The publishing connection: one node, or the cluster.
enum RedisPublishing {
    Single(redis::aio::MultiplexedConnection),
    Cluster(redis::cluster_async::ClusterConnection),
}

fn redis_config() -> redis::AsyncConnectionConfig {
    redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(3)))
        .set_response_timeout(Some(Duration::from_secs(3)))
}

async fn publish_redis(
    client: &redis::Client,
    url: &str,
    conn: &mut Option<RedisPublishing>,
    payloads: &[String],
) -> Result<(), String> {
    if conn.is_none() {
        let mut single = client
            .get_multiplexed_async_connection_with_config(&redis_config())
            .await
            .map_err(|e| e.to_string())?;
        *conn = Some(
            if crate::bus::redis::cluster::enabled(&mut single)
                .await
                .map_err(|e| e.to_string())?
            {
                let (cluster, _) = crate::bus::redis::cluster::connect(url, None)
                    .await
                    .map_err(|e| e.to_string())?;
                RedisPublishing::Cluster(cluster)
            } else {
                RedisPublishing::Single(single)
            },
        );
    }
    let mut pipe = redis::pipe();
    let sent: Result<(), redis::RedisError> = match conn.as_mut() {
        Some(RedisPublishing::Single(c)) => {
            for payload in payloads {
                pipe.cmd("PUBLISH").arg(REDIS_CHANNEL).arg(payload).ignore();
            }
            pipe.query_async(c).await
        }
        Some(RedisPublishing::Cluster(c)) => {
            for payload in payloads {
                pipe.cmd("SPUBLISH")
                    .arg(REDIS_CHANNEL)
                    .arg(payload)
                    .ignore();
            }
            pipe.query_async(c).await
        }
        None => return Err("no connection".into()),
    };
    sent.map_err(|e| {
        *conn = None;
        e.to_string()
    })
}

/// Hears the other processes' signals until shutdown, reconnecting.
pub async fn listen(backend: Backend, signals: Weak<Signals>, shutdown: CancellationToken) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let heard = match &backend {
            Backend::Postgres(pool) => listen_pg(pool, &signals, &shutdown).await,
            Backend::Redis(client, url) => listen_redis(client, url, &signals, &shutdown).await,
        };
        if shutdown.is_cancelled() || signals.upgrade().is_none() {
            return;
        }
        if let Err(error) = heard {
            tracing::warn!(%error, "presence: signal listener lost its connection; reconnecting");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

fn apply(signals: &Weak<Signals>, payload: &str) -> bool {
    let Some(signals) = signals.upgrade() else {
        return false;
    };
    match wire::decode(payload) {
        Some((from, heard)) => signals.heard(&from, heard),
        None => metrics::counter!(m::BUS_PAYLOADS_REJECTED).increment(1),
    }
    true
}

fn hello(signals: &Weak<Signals>) {
    if let Some(signals) = signals.upgrade() {
        signals.transport.send(Signal::Hello);
    }
}

async fn listen_pg(
    pool: &PgPool,
    signals: &Weak<Signals>,
    shutdown: &CancellationToken,
) -> Result<(), String> {
    let mut listener = PgListener::connect_with(pool)
        .await
        .map_err(|e| e.to_string())?;
    listener
        .listen(PG_CHANNEL)
        .await
        .map_err(|e| e.to_string())?;
    hello(signals);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            heard = listener.try_recv() => match heard {
                Ok(Some(notification)) => {
                    if !apply(signals, notification.payload()) {
                        return Ok(());
                    }
                }
                Ok(None) => return Err("connection closed".into()),
                Err(error) => return Err(error.to_string()),
            },
        }
    }
}

async fn listen_redis(
    client: &redis::Client,
    url: &str,
    signals: &Weak<Signals>,
    shutdown: &CancellationToken,
) -> Result<(), String> {
    let mut probe = client
        .get_multiplexed_async_connection_with_config(&redis_config())
        .await
        .map_err(|e| e.to_string())?;
    if crate::bus::redis::cluster::enabled(&mut probe)
        .await
        .map_err(|e| e.to_string())?
    {
        return listen_redis_cluster(url, signals, shutdown).await;
    }
    drop(probe);
    let mut pubsub = client.get_async_pubsub().await.map_err(|e| e.to_string())?;
    pubsub
        .subscribe(REDIS_CHANNEL)
        .await
        .map_err(|e| e.to_string())?;
    hello(signals);
    let mut messages = pubsub.on_message();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            heard = messages.next() => match heard {
                Some(message) => {
                    let payload: String = message.get_payload().unwrap_or_default();
                    if !apply(signals, &payload) {
                        return Ok(());
                    }
                }
                None => return Err("connection closed".into()),
            },
        }
    }
}

/// `SSUBSCRIBE` on the shard that owns [`REDIS_CHANNEL`]'s slot.
async fn listen_redis_cluster(
    url: &str,
    signals: &Weak<Signals>,
    shutdown: &CancellationToken,
) -> Result<(), String> {
    let overflowed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (conn, pushes) = crate::bus::redis::cluster::connect(url, Some(overflowed))
        .await
        .map_err(|e| e.to_string())?;
    let Some(mut pushes) = pushes else {
        return Err("no push channel".into());
    };
    let failed = crate::bus::redis::cluster::ssubscribe(&conn, &[REDIS_CHANNEL.to_owned()]).await;
    if !failed.is_empty() {
        return Err("SSUBSCRIBE not confirmed".into());
    }
    hello(signals);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            push = pushes.recv() => match push {
                Some(push) => match push.kind {
                    redis::PushKind::SMessage => {
                        if let Some(message) = redis::Msg::from_push_info(push) {
                            let payload: String = message.get_payload().unwrap_or_default();
                            if !apply(signals, &payload) {
                                return Ok(());
                            }
                        }
                    }
                    redis::PushKind::Disconnection | redis::PushKind::SUnsubscribe => {
                        return Err("a node's connection dropped or the slot moved".into());
                    }
                    _ => {}
                },
                None => return Err("connection closed".into()),
            },
        }
    }
}

/// Starts the publisher and the listener for `signals` on `tasks`.
pub fn start(
    backend: Backend,
    signals: &Arc<Signals>,
    queue: mpsc::Receiver<Signal>,
    tasks: &tokio_util::task::TaskTracker,
    shutdown: CancellationToken,
) {
    tasks.spawn(publish(
        backend.clone(),
        signals.replica().to_owned(),
        queue,
        shutdown.clone(),
    ));
    tasks.spawn(listen(backend, Arc::downgrade(signals), shutdown));
}
