//! Wiring: the middleware stack, binding and shutdown.

use std::future::IntoFuture;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::error_handling::HandleErrorLayer;
use axum::http::{header, HeaderName, HeaderValue};
use axum::serve::ListenerExt;
use axum::Router;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::timeout::TimeoutLayer;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tower_http::LatencyUnit;
use tracing::Level;

use crate::api;
use crate::config::{Config, Roles};
use crate::state::{raise_open_files_limit, stream_cap, AppState};
use crate::store::{self, MessageStore};
use crate::telemetry;

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
        .layer(CatchPanicLayer::custom(api::panicked))
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
        .layer(HandleErrorLayer::new(api::timed_out))
        .layer(TimeoutLayer::new(Duration::from_secs(config.request_timeout)))
        .layer(axum::extract::DefaultBodyLimit::max(config.max_body_bytes));

    let settings = state.auth.settings;
    api::routes(roles, settings)
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
