//! Wiring: the shared state, the middleware stack, binding and shutdown.

use std::future::IntoFuture;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::error_handling::HandleErrorLayer;
use axum::http::{header, HeaderName, HeaderValue};
use axum::response::IntoResponse;
use axum::serve::ListenerExt;
use axum::Router;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::timeout::TimeoutLayer;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tower_http::LatencyUnit;
use tracing::Level;

use crate::api::error::ApiError;
use crate::auth::events::Transport;
use crate::auth::Auth;
use crate::bus::{self, Bus, Hub, LocalBus, NotifyBus};
use crate::cache::ReadCache;
use crate::config::{Config, Registration, Roles};
use crate::store::{self, MessageStore};
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
    pub fn check_rate(&self, key: impl Into<RateKey>) -> Result<(), ApiError> {
        let Some(limiter) = &self.rate_limiter else {
            return Ok(());
        };
        limiter.check_key(&key.into()).map_err(|not_until| {
            ::metrics::counter!(telemetry::metrics::RATE_LIMITED).increment(1);
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::RateLimited {
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

/// A TCP listener whose connections fail a socket write that stays blocked
/// longer than the write timeout, so a client that stops reading cannot
/// hold a response (an SSE stream above all) and its buffers for ever.
/// WebSocket streams time their frame writes themselves, a little earlier
/// (see [`crate::stream::ws`]), and close with `lagging`.
pub struct TimedListener {
    inner: TcpListener,
    write_timeout: Duration,
}

impl axum::serve::Listener for TimedListener {
    type Io = std::pin::Pin<Box<tokio_io_timeout::TimeoutStream<tokio::net::TcpStream>>>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (stream, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        let mut stream = tokio_io_timeout::TimeoutStream::new(stream);
        stream.set_write_timeout(Some(self.write_timeout));
        (Box::pin(stream), addr)
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// The whole service for `roles`, with its middleware, without binding a port.
pub fn app(state: AppState, roles: Roles, config: &Config) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    let middleware = ServiceBuilder::new()
        .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &axum::http::Request<_>| {
                let id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                tracing::info_span!("request", method = %request.method(), uri = %request.uri().path(), request_id = %id)
            })
            .on_response(DefaultOnResponse::new().level(Level::INFO).latency_unit(LatencyUnit::Micros)),
        )
        .layer(PropagateRequestIdLayer::new(request_id))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal("handler panicked".into()).into_response()
        }))
        .layer(security_header(header::CONTENT_SECURITY_POLICY, CSP))
        .layer(security_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(security_header(header::X_FRAME_OPTIONS, "DENY"))
        .layer(security_header(header::REFERRER_POLICY, "no-referrer"))
        .layer(security_header(
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        ))
        .layer(security_header(
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ))
        // A request over its time answers 408 in the JSON error shape.
        .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
            ApiError::Timeout
        }))
        .layer(TimeoutLayer::new(Duration::from_secs(config.request_timeout)))
        .layer(axum::extract::DefaultBodyLimit::max(config.max_body_bytes));

    let settings = state.auth.settings;
    crate::api::routes(roles, settings)
        .route_layer(axum::middleware::from_fn(telemetry::track_requests))
        .layer(middleware)
        .with_state(state)
}

/// No inline script or style anywhere: the UI loads its code from files.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
                   frame-ancestors 'none'";

fn security_header(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value))
}

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    router: Router,
    state: AppState,
    grace: Duration,
    write_timeout: Duration,
}

impl Application {
    /// Opens the store (running migrations), builds the state and binds.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let store = store::connect(&config)
            .await
            .with_context(|| format!("opening {}", config.database_url()))?;
        Self::build_with_store(config, store).await
    }

    pub async fn build_with_store(
        config: Config,
        store: Arc<dyn MessageStore>,
    ) -> anyhow::Result<Self> {
        telemetry::prometheus();
        if config.oidc_issuer.is_some() != config.oidc_audience.is_some() {
            anyhow::bail!("--oidc-issuer and --oidc-audience go together: give both or neither");
        }
        if let Some(issuer) = &config.oidc_issuer {
            if !(issuer.starts_with("https://")
                || issuer.starts_with("http://127.0.0.1")
                || issuer.starts_with("http://localhost"))
            {
                anyhow::bail!("--oidc-issuer must be an https:// URL (http only on loopback)");
            }
        }
        if store.postgres().is_none() && config.roles() != Roles::ALL {
            tracing::warn!(
                "SQLite fans out within one process only: run every role in one process, \
                 or use PostgreSQL to split roles across processes"
            );
        }
        let open_files = raise_open_files_limit();
        let cap = stream_cap(&config, open_files);
        if cap.limited_by_descriptors {
            tracing::warn!(
                streams = cap.cap,
                max_streams = config.max_streams,
                open_files = ?cap.open_files,
                reserved_fds = config.reserved_fds,
                "the open-files limit caps streams below --max-streams; raise `ulimit -n` (the hard limit) to serve more"
            );
        } else {
            tracing::info!(streams = cap.cap, open_files = ?cap.open_files, "stream cap");
        }
        let state = AppState::new(&config, store)?;
        // Start serving once the bus listens (PostgreSQL, Redis), so that the first
        // /readyz already answers 200; give up waiting after a few seconds
        // and let /readyz report it instead.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !state.bus.is_ready() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let router = app(state.clone(), config.roles(), &config);
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        tracing::info!(
            listen = %listener.local_addr()?,
            database = %config.database_url(),
            bus = %config.bus.as_ref().map_or_else(|| "default".to_owned(), |b| b.redacted()),
            roles = %config.roles(),
            "palaver ready"
        );
        Ok(Self {
            listener,
            router,
            state,
            grace: config.grace(),
            // A second after the stream's own write timeout, so WebSocket
            // streams close themselves first, with their reason.
            write_timeout: Duration::from_secs(config.stream_write_timeout + 1),
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// A token that stops the server like SIGTERM does.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.state.shutdown.clone()
    }

    /// Serves until SIGTERM/SIGINT (or the shutdown token), then drains:
    /// stops accepting, lets in-flight requests finish, closes streams with a
    /// reconnect hint, and returns within the grace period.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Application {
            listener,
            router,
            state,
            grace,
            write_timeout,
        } = self;
        // `tap_io` adds nothing but gives the listener axum's ConnectInfo.
        let listener = TimedListener {
            inner: listener,
            write_timeout,
        }
        .tap_io(|_| {});
        let shutdown = state.shutdown.clone();
        tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                tokio::select! {
                    _ = signal() => tracing::info!("shutdown signal received; draining"),
                    _ = shutdown.cancelled() => {}
                }
                shutdown.cancel();
            }
        });
        let server = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown.clone().cancelled_owned());
        let server = tokio::spawn(server.into_future());

        shutdown.cancelled().await;
        state.tasks.close();
        let drained = tokio::time::timeout(grace, async {
            let served = server.await;
            state.tasks.wait().await;
            served
        })
        .await;
        match drained {
            Ok(Ok(Ok(()))) => tracing::info!("drained; bye"),
            Ok(Ok(Err(error))) => return Err(error.into()),
            Ok(Err(join)) => return Err(join.into()),
            Err(_) => tracing::warn!(?grace, "grace period over; exiting with work in flight"),
        }
        Ok(())
    }
}

async fn signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

/// `palaver healthcheck`: GET /healthz on the local port; exit 0 on 200.
pub async fn healthcheck(listen: SocketAddr) -> ExitCode {
    let host = if listen.ip().is_unspecified() {
        match listen {
            SocketAddr::V4(_) => IpAddr::from([127, 0, 0, 1]),
            SocketAddr::V6(_) => IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
        }
    } else {
        listen.ip()
    };
    let target = SocketAddr::new(host, listen.port());
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(target).await?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await?;
        Ok::<_, std::io::Error>(head.starts_with(b"HTTP/1.1 200"))
    };
    match tokio::time::timeout(Duration::from_secs(3), probe).await {
        Ok(Ok(true)) => ExitCode::SUCCESS,
        _ => {
            eprintln!("palaver healthcheck: http://{target}/healthz did not answer 200");
            ExitCode::FAILURE
        }
    }
}
