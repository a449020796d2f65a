//! The shared state every handler sees, and how it is built from the
//! configuration: the store, the write path, the bus, the caches, accounts,
//! stream admission, files and presence.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::events::Transport;
use crate::auth::Auth;
use crate::bus::{self, Bus, Hub, LocalBus, NotifyBus};
use crate::cache::ReadCache;
use crate::config::{Config, Registration};
use crate::store::MessageStore;
use crate::stream::limits::LimitSettings;
use crate::stream::StreamLimits;
use crate::telemetry;
use crate::write::{BatchLimits, GroupCommit, StoredHistory};

/// Limits the handlers apply.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_message_chars: usize,
    pub heartbeat: Duration,
    pub stream_write_timeout: Duration,
    pub pong_timeout: Duration,
    pub readiness_timeout: Duration,
    /// Rooms one multiplexed stream may follow.
    pub max_subscriptions: usize,
}

/// Whom a limit counts: the signed-in user, else the client address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RateKey {
    User(crate::identity::UserId),
    Ip(IpAddr),
}

impl From<IpAddr> for RateKey {
    fn from(ip: IpAddr) -> Self {
        RateKey::Ip(ip)
    }
}

/// A send over its rate: the API answers 429 with `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimited {
    pub retry_after_secs: u64,
}

/// Everything a handler may need; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn MessageStore>,
    pub writer: GroupCommit,
    /// Newest pages of recently read rooms; trusted only while the bus is
    /// ready (else it may have missed another replica's writes).
    pub cache: Arc<ReadCache>,
    pub hub: Arc<Hub>,
    pub bus: Arc<dyn Bus>,
    pub limits: Limits,
    pub rate_limiter: Option<Arc<DefaultKeyedRateLimiter<RateKey>>>,
    /// Accounts, sessions and room access.
    pub auth: Arc<Auth>,
    pub trusted_proxies: Arc<[IpNet]>,
    /// Admission of streams: the effective cap, and per client (the user
    /// when signed in, else the IP) a concurrent cap and an open rate.
    pub stream_limits: Arc<StreamLimits>,
    /// Fires when the process starts draining; every stream listens.
    pub shutdown: CancellationToken,
    /// Stream tasks, awaited (up to the grace period) before exit.
    pub tasks: TaskTracker,
    /// Uploaded files (§5d): the file store and the upload bounds.
    pub files: Arc<crate::files::Files>,
    /// Presence and typing (§5e).
    pub signals: Arc<crate::presence::Signals>,
}

/// Presence and typing for a process that serves streams or the API: on
/// the Redis bus through the broker, else on PostgreSQL through
/// `NOTIFY`, else (SQLite) within the process.
fn start_signals(
    config: &Config,
    store: &Arc<dyn MessageStore>,
    hub: &Arc<Hub>,
    roles: crate::config::Roles,
    tasks: &TaskTracker,
    shutdown: &CancellationToken,
) -> anyhow::Result<Arc<crate::presence::Signals>> {
    use crate::presence::{transport, Signals, Transport as SignalTransport};
    let backend = match (store.postgres(), config.redis_bus()) {
        _ if !roles.api && !roles.gateway => None,
        (Some(_), Some(url)) => Some(transport::Backend::Redis(
            Box::new(redis::Client::open(url.expose()).with_context(|| format!("--bus {url}"))?),
            url.expose().to_owned(),
        )),
        (Some(pg), None) => Some(transport::Backend::Postgres(pg.pool().clone())),
        (None, _) => None,
    };
    let signals = match backend {
        Some(backend) => {
            let (queue, outgoing) = SignalTransport::queue();
            let signals = Signals::new(hub.clone(), queue);
            transport::start(backend, &signals, outgoing, tasks, shutdown.clone());
            signals
        }
        None => Signals::new(hub.clone(), SignalTransport::Local),
    };
    tasks.spawn(signals.clone().run(shutdown.clone()));
    Ok(signals)
}

impl AppState {
    /// Builds the state over an open store and starts the bus: with
    /// PostgreSQL and the gateway role the `LISTEN` task, with `--bus
    /// redis://…` the publisher (api role) and subscriber (gateway role),
    /// spawned on `tasks`. Fails on a bus that cannot work with this store.
    pub fn new(config: &Config, store: Arc<dyn MessageStore>) -> anyhow::Result<Self> {
        let roles = config.roles();
        let hub = Arc::new(Hub::new(config.stream_buffer as usize));
        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        // On the Redis bus a process hears only the rooms it subscribes to:
        // its cache subscribes to the rooms it holds and serves an entry only
        // once that subscription is confirmed and current.
        let cache_messages = config.read_cache_messages as usize;
        let cache = Arc::new(if config.redis_bus().is_some() {
            ReadCache::gated(cache_messages, config.read_cache_bytes)
        } else {
            ReadCache::new(cache_messages, config.read_cache_bytes)
        });
        let bus: Arc<dyn Bus> = match (store.postgres(), config.redis_bus()) {
            (None, None) if config.bus.is_none() => Arc::new(LocalBus::new(hub.clone())),
            (None, _) => anyhow::bail!(
                "--bus {} needs PostgreSQL: SQLite fans out within its one process; \
                 leave --bus unset",
                config
                    .bus
                    .as_ref()
                    .map(|b| b.redacted())
                    .unwrap_or_default()
            ),
            (Some(_), Some(url)) => Arc::new(
                bus::redis::start(
                    url,
                    bus::redis::Sides {
                        publish: roles.api,
                        streams: roles.gateway,
                        cache: roles.api && cache_messages > 0,
                    },
                    Arc::new(StoredHistory(store.clone())),
                    hub.clone(),
                    cache.clone(),
                    Duration::from_millis(config.bus_repair_interval_ms),
                    &tasks,
                    shutdown.clone(),
                )
                .with_context(|| format!("--bus {url}"))?,
            ),
            // On PostgreSQL a gateway listens for its subscribers, and the API
            // listens so that its read cache hears other replicas' writes.
            (Some(_), None) if !roles.gateway && !roles.api => Arc::new(NotifyBus::writer_only()),
            (Some(_), None) => {
                let (bus, ready) = NotifyBus::listening();
                let (store, hub, shutdown) = (store.clone(), hub.clone(), shutdown.clone());
                let observer = cache.clone();
                tasks.spawn(async move {
                    if let Some(pg) = store.postgres() {
                        let history = Arc::new(StoredHistory(store.clone()));
                        bus::postgres::listen(pg.pool(), history, hub, observer, ready, shutdown)
                            .await;
                    }
                });
                Arc::new(bus)
            }
        };
        let writer = GroupCommit::new(
            store.clone(),
            bus.clone(),
            cache.clone(),
            BatchLimits {
                max_messages: config.batch_max as usize,
                window: Duration::from_micros(config.batch_window_us),
                // SQLite has one writer connection: a second batch in
                // flight would only wait for it.
                concurrency: match store.postgres() {
                    Some(_) => config.batch_concurrency as usize,
                    None => 1,
                },
            },
        );
        let rate_limiter = NonZeroU32::new(config.rate_limit).map(|rate| {
            let burst =
                NonZeroU32::new(config.rate_limit_burst.max(config.rate_limit)).unwrap_or(rate);
            Arc::new(RateLimiter::keyed(
                Quota::per_second(rate).allow_burst(burst),
            ))
        });
        tasks.spawn(probe_database(store.clone(), shutdown.clone()));
        if let Some(limiter) = &rate_limiter {
            tasks.spawn(forget_idle_clients(limiter.clone(), shutdown.clone()));
        }
        let accounts = store
            .clone()
            .accounts()
            .expect("SQLite and PostgreSQL stores hold accounts");
        let transport = match store.postgres() {
            Some(pg) => Transport::Postgres(pg.pool().clone()),
            None => Transport::Local,
        };
        let auth = Arc::new(Auth::new(
            accounts,
            transport.clone(),
            crate::auth::Settings {
                registration_open: config.registration == Registration::Open,
                local_accounts: config.local_accounts.is_on(),
                seed_api: config.seed_api.is_on(),
                limits: crate::auth::throttle::Limits {
                    login_failures_per_ip: config.login_failures_per_ip,
                    registrations_per_ip_burst: config.registrations_per_ip_burst,
                    registrations_per_ip_per_hour: config.registrations_per_ip_per_hour,
                },
            },
            match (&config.oidc_issuer, &config.oidc_audience) {
                (Some(issuer), Some(audience)) => {
                    Some(crate::auth::oidc::Oidc::new(issuer, audience))
                }
                _ => None,
            },
        ));
        tasks.spawn(auth.clone().housekeeping(shutdown.clone()));
        if let Transport::Postgres(pool) = transport {
            tasks.spawn(crate::auth::events::listen(
                pool,
                Arc::downgrade(&auth),
                shutdown.clone(),
            ));
        }
        let stream_limits = Arc::new(StreamLimits::new(LimitSettings {
            cap: stream_cap(config, open_files_limit()).cap,
            per_client: NonZeroU32::new(config.max_streams_per_ip),
            open_rate: NonZeroU32::new(config.stream_open_rate).map(|rate| {
                let burst = NonZeroU32::new(config.stream_open_burst).unwrap_or(rate);
                Quota::per_second(rate).allow_burst(burst.max(rate))
            }),
        }));
        ::metrics::gauge!(telemetry::metrics::STREAMS_MAX).set(stream_limits.cap() as f64);
        tasks.spawn(forget_idle_stream_clients(
            stream_limits.clone(),
            shutdown.clone(),
        ));
        let files = Arc::new(crate::files::Files::new(
            &config.file_store,
            config.max_file_bytes,
            config.max_concurrent_uploads,
            store
                .clone()
                .search()
                .expect("SQLite and PostgreSQL stores hold file rows"),
        )?);
        if roles.api {
            tasks.spawn(files.clone().sweep(shutdown.clone()));
        }
        let signals = start_signals(config, &store, &hub, roles, &tasks, &shutdown)?;
        Ok(AppState {
            signals,
            files,
            store,
            writer,
            cache,
            hub,
            bus,
            limits: Limits {
                max_message_chars: usize::from(config.max_message_chars),
                heartbeat: config.heartbeat(),
                stream_write_timeout: Duration::from_secs(config.stream_write_timeout),
                pong_timeout: Duration::from_secs(config.stream_pong_timeout),
                readiness_timeout: Duration::from_secs(2),
                max_subscriptions: config.max_subscriptions as usize,
            },
            rate_limiter,
            auth,
            trusted_proxies: config.trusted_proxies.clone().into(),
            stream_limits,
            shutdown,
            tasks,
        })
    }

    /// Refuses a send from `key` (a user, or a client IP) when it is over
    /// its rate.
    pub fn check_rate(&self, key: impl Into<RateKey>) -> Result<(), RateLimited> {
        let Some(limiter) = &self.rate_limiter else {
            return Ok(());
        };
        limiter.check_key(&key.into()).map_err(|not_until| {
            ::metrics::counter!(telemetry::metrics::RATE_LIMITED).increment(1);
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            RateLimited {
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            }
        })
    }
}

/// Keeps `palaver_db_up` current whether or not anything calls `/readyz`:
/// pings the database every few seconds.
async fn probe_database(store: Arc<dyn MessageStore>, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {
                let ping = tokio::time::timeout(Duration::from_secs(2), store.ping()).await;
                let up = matches!(ping, Ok(Ok(())));
                ::metrics::gauge!(telemetry::metrics::DB_UP).set(if up { 1.0 } else { 0.0 });
            }
        }
    }
}

/// Drops rate-limiter state of clients that have been quiet long enough to be
/// back at a full burst, so the limiter does not grow with every address seen.
async fn forget_idle_clients(
    limiter: Arc<DefaultKeyedRateLimiter<RateKey>>,
    shutdown: CancellationToken,
) {
    let mut every = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        }
    }
}

/// Drops the stream-open rate state of clients back at a full burst.
async fn forget_idle_stream_clients(limits: Arc<StreamLimits>, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => limits.forget_idle(),
        }
    }
}

/// The effective stream cap and what it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamCap {
    pub cap: usize,
    /// The soft open-files limit, when it could be read.
    pub open_files: Option<u64>,
    /// Whether the descriptor budget, not `--max-streams`, set the cap.
    pub limited_by_descriptors: bool,
}

/// Streams this process serves at once: `--max-streams`, or fewer when the
/// open-files limit minus `--reserved-fds` is lower (each stream holds one
/// descriptor, and the REST API, health checks, the database pool and logs
/// need the reserve). At least one stream, so a tiny limit is visible as
/// 503s on streams rather than a gateway that serves none.
pub fn stream_cap(config: &Config, open_files: Option<u64>) -> StreamCap {
    let wanted = config.max_streams as usize;
    let budget = open_files.map(|limit| {
        usize::try_from(limit.saturating_sub(u64::from(config.reserved_fds)))
            .unwrap_or(usize::MAX)
            .max(1)
    });
    match budget {
        Some(budget) if budget < wanted => StreamCap {
            cap: budget,
            open_files,
            limited_by_descriptors: true,
        },
        _ => StreamCap {
            cap: wanted,
            open_files,
            limited_by_descriptors: false,
        },
    }
}

/// The soft open-files limit (RLIMIT_NOFILE), when the platform has one.
fn open_files_limit() -> Option<u64> {
    rlimit::Resource::NOFILE
        .get()
        .ok()
        .map(|(soft, _hard)| soft)
        .filter(|&soft| soft != rlimit::INFINITY)
}

/// Raises the soft open-files limit to the hard one (systemd and many
/// laptops start processes at 1,024, which a gateway outgrows long before
/// `--max-streams`). Returns the soft limit now in force.
pub fn raise_open_files_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(error) => {
            tracing::warn!(%error, "cannot raise the open-files limit");
            open_files_limit()
        }
    }
}
