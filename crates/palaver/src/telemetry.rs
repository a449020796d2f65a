//! Logs and metrics.
//!
//! Logs are one JSON object per line (or pretty on a terminal), each request
//! in a span carrying its request id. Metrics go to a Prometheus recorder
//! rendered at `/metrics`; their names live in [`metrics`] so dashboards and
//! alerts have one list to check against.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::{fmt, EnvFilter};

use crate::config::LogFormat;

/// Metric names.
pub mod metrics {
    /// Counter: HTTP requests, by `method`, `route` and `status`.
    pub const HTTP_REQUESTS: &str = "palaver_http_requests_total";
    /// Histogram: HTTP request duration in seconds, by `method` and `route`.
    pub const HTTP_DURATION: &str = "palaver_http_request_duration_seconds";
    /// Gauge: open streams, by `transport` (`websocket`, `sse`).
    pub const STREAMS_OPEN: &str = "palaver_stream_connections";
    /// Counter: streams closed, by `reason`.
    pub const STREAMS_CLOSED: &str = "palaver_stream_closed_total";
    /// Counter: messages stored (new rows, not idempotent repeats).
    pub const MESSAGES_STORED: &str = "palaver_messages_stored_total";
    /// Histogram: messages per group-commit transaction.
    pub const BATCH_SIZE: &str = "palaver_group_commit_batch_size";
    /// Histogram: seconds of each phase of a group-commit batch, by `phase`:
    /// `gather` (its first send taken to its transaction started: the
    /// window and the wait for a transaction slot), `store` (the store's
    /// transaction, retries included: plan, execute, WAL flush, round
    /// trips) and `answer` (publishing and answering the senders).
    pub const BATCH_PHASE: &str = "palaver_group_commit_phase_seconds";
    /// Histogram: seconds from commit to delivery to a subscriber.
    pub const FANOUT_LAG: &str = "palaver_fanout_lag_seconds";
    /// Gauge: database connections in the pool, by `state` (`idle`, `in_use`).
    pub const DB_POOL: &str = "palaver_db_pool_connections";
    /// Gauge: the pool's maximum size.
    pub const DB_POOL_MAX: &str = "palaver_db_pool_max_connections";
    /// Counter: times the fan-out bus lost its connection (the PostgreSQL
    /// listener, or a Redis publishing or subscribing connection).
    pub const BUS_RECONNECTS: &str = "palaver_bus_reconnects_total";
    /// Gauge: 1 when this process's bus can deliver, else 0 (every bus kind).
    pub const BUS_UP: &str = "palaver_bus_up";
    /// Counter: gaps repaired by reading the table (a missed or reordered
    /// publish, a reconnect, a room head ahead of what the bus delivered).
    pub const BUS_REPAIRS: &str = "palaver_bus_repairs_total";
    /// Counter: broker or NOTIFY payloads ignored as malformed or foreign.
    pub const BUS_PAYLOADS_REJECTED: &str = "palaver_bus_payloads_rejected_total";
    /// Counter: committed batches not published because the broker was
    /// down or the publish queue full (the subscribers' repair delivers them).
    pub const BUS_PUBLISHES_DROPPED: &str = "palaver_bus_publishes_dropped_total";
    /// Counter: sends refused by the rate limiter.
    pub const RATE_LIMITED: &str = "palaver_rate_limited_total";
    /// Gauge: 1 when the database answers, else 0 (probed every 5 s and by
    /// `/readyz`).
    pub const DB_UP: &str = "palaver_db_up";
    /// Counter: stream opens refused, by `reason` (`opening_too_fast`,
    /// `client_cap`, `process_cap`).
    pub const STREAMS_REFUSED: &str = "palaver_stream_refused_total";
    /// Gauge: the effective stream cap of this process (`--max-streams`, or
    /// less when the open-files limit is lower).
    pub const STREAMS_MAX: &str = "palaver_stream_max_connections";
    /// Counter: newest-page reads answered from the read cache.
    pub const CACHE_HITS: &str = "palaver_read_cache_hits_total";
    /// Counter: newest-page reads the read cache could not answer.
    pub const CACHE_MISSES: &str = "palaver_read_cache_misses_total";
    /// Counter: rooms evicted from the read cache at its byte bound.
    pub const CACHE_EVICTIONS: &str = "palaver_read_cache_evictions_total";
    /// Counter: typing frames the per-user-and-room throttle dropped.
    pub const TYPING_DROPPED: &str = "palaver_typing_dropped_total";
    /// Counter: users coming online or going offline, as this process saw
    /// it (label `status`).
    pub const PRESENCE_CHANGES: &str = "palaver_presence_changes_total";
    /// Gauge: users online, as this process sees it.
    pub const PRESENCE_ONLINE: &str = "palaver_presence_online_users";
    /// Counter: signals sent to the other processes (label `transport`).
    pub const SIGNALS_SENT: &str = "palaver_signals_sent_total";
    /// Counter: notifications or broker messages carrying them (label
    /// `transport`): the cost of presence and typing on the bus.
    pub const SIGNAL_PAYLOADS: &str = "palaver_signal_payloads_total";
    /// Counter: signals dropped (queue full, or the bus failed).
    pub const SIGNALS_DROPPED: &str = "palaver_signals_dropped_total";
}

/// Installs the global log subscriber. Safe to call more than once (later
/// calls do nothing), which tests rely on.
pub fn init_logging(format: Option<LogFormat>, filter: &str) {
    let mut filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // The Redis cluster client warns on every failed attempt to reach a node
    // that is down (many a second); the bus logs the loss and the recovery
    // once. A filter that names redis itself decides instead.
    if !filter.to_string().contains("redis") {
        if let Ok(quiet) = "redis::cluster_handling=error".parse() {
            filter = filter.add_directive(quiet);
        }
    }
    let format = format.unwrap_or(if std::io::stdout().is_terminal() {
        LogFormat::Pretty
    } else {
        LogFormat::Json
    });
    let builder = fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}

/// The process-wide Prometheus recorder, installed on first use.
pub fn prometheus() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let latency = [
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        let batch = [
            1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
        ];
        let phase = [
            0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064,
            0.128, 0.256, 1.0,
        ];
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(metrics::HTTP_DURATION.into()), &latency)
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full(metrics::FANOUT_LAG.into()), &latency)
            })
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full(metrics::BATCH_SIZE.into()), &batch)
            })
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full(metrics::BATCH_PHASE.into()), &phase)
            })
            .map(|b| b.build_recorder())
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        spawn_upkeep(handle.clone());
        // Fails only when another recorder is installed already, in which case
        // our metrics go there instead.
        let _ = ::metrics::set_global_recorder(recorder);
        describe();
        handle
    })
}

/// How often the recorder drains histogram observations into its summaries.
/// Without upkeep every observation is kept until a scrape renders it, so a
/// process nobody scrapes grows with every request and delivery.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Runs the recorder's upkeep on a timer, whether or not anything scrapes.
/// A plain thread, not a task: the recorder is process-wide and outlives any
/// one runtime (tests build several).
fn spawn_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("metrics-upkeep".into())
        .spawn(move || loop {
            std::thread::sleep(UPKEEP_INTERVAL);
            handle.run_upkeep();
        });
    if let Err(error) = spawned {
        tracing::error!(%error, "cannot start the metrics upkeep thread; histograms drain only when scraped");
    }
}

fn describe() {
    use ::metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    use metrics::*;
    describe_counter!(HTTP_REQUESTS, "HTTP requests by method, route and status");
    describe_histogram!(HTTP_DURATION, Unit::Seconds, "HTTP request duration");
    describe_gauge!(STREAMS_OPEN, "Open WebSocket and SSE streams");
    describe_counter!(STREAMS_CLOSED, "Streams closed, by reason");
    describe_counter!(MESSAGES_STORED, "Messages stored");
    describe_histogram!(BATCH_SIZE, "Messages per group-commit transaction");
    describe_histogram!(
        BATCH_PHASE,
        Unit::Seconds,
        "Group-commit batch phases: gather, store, answer"
    );
    describe_histogram!(FANOUT_LAG, Unit::Seconds, "Commit-to-delivery latency");
    describe_gauge!(DB_POOL, "Database pool connections by state");
    describe_gauge!(DB_POOL_MAX, "Database pool maximum size");
    describe_counter!(BUS_RECONNECTS, "Fan-out bus reconnects");
    describe_gauge!(BUS_UP, "1 when this process's fan-out bus can deliver");
    describe_counter!(BUS_REPAIRS, "Fan-out gaps repaired from the table");
    describe_counter!(
        BUS_PAYLOADS_REJECTED,
        "Malformed or foreign bus payloads ignored"
    );
    describe_counter!(
        BUS_PUBLISHES_DROPPED,
        "Committed batches not published to the broker"
    );
    describe_counter!(RATE_LIMITED, "Sends refused by the rate limiter");
    describe_counter!(STREAMS_REFUSED, "Stream opens refused, by reason");
    describe_gauge!(STREAMS_MAX, "Effective cap of concurrent streams");
    describe_gauge!(
        DB_UP,
        "1 when the database answered the last readiness check"
    );
    describe_counter!(CACHE_HITS, "Newest-page reads answered from the read cache");
    describe_counter!(
        CACHE_MISSES,
        "Newest-page reads the read cache could not answer"
    );
    describe_counter!(
        CACHE_EVICTIONS,
        "Rooms evicted from the read cache at its byte bound"
    );
    describe_counter!(TYPING_DROPPED, "Typing frames dropped by the throttle");
    describe_counter!(PRESENCE_CHANGES, "Users coming online or going offline");
    describe_gauge!(PRESENCE_ONLINE, "Users online, as this process sees it");
    describe_counter!(
        SIGNALS_SENT,
        "Presence and typing signals sent to other processes"
    );
    describe_counter!(
        SIGNAL_PAYLOADS,
        "Notifications or broker messages carrying presence and typing signals"
    );
    describe_counter!(SIGNALS_DROPPED, "Presence and typing signals dropped");
    register_at_zero();
}

/// The `reason` values of [`metrics::STREAMS_REFUSED`] (api/stream.rs).
pub const STREAM_REFUSAL_REASONS: [&str; 3] = ["opening_too_fast", "client_cap", "process_cap"];

/// Creates, at 0, every counter and gauge that the rules and dashboards of
/// deploy/observability name, with each label value known in advance: a
/// series that appears only with its first event hides that event from
/// `rate()` and `increase()`, and an absent series cannot tell "never
/// happened" from "not scraped". The observability suite scrapes a freshly
/// started server and fails on any watched series missing.
///
/// The two unlabelled histograms are registered too (rendered with empty
/// buckets). Not here: the HTTP request counter and duration histogram,
/// labelled by the route and status of requests answered (none yet). The
/// gauges start at 0 and their owners set them as soon as they know:
/// `palaver_db_up` by the first database probe, `palaver_bus_up` by the
/// bus, the stream cap at start-up, the pool gauges at every scrape.
fn register_at_zero() {
    use crate::stream::CloseReason;
    use ::metrics::{counter, gauge, histogram};
    use metrics::*;
    for name in [FANOUT_LAG, BATCH_SIZE] {
        let _registered = histogram!(name);
    }
    for phase in ["gather", "store", "answer"] {
        let _registered = histogram!(BATCH_PHASE, "phase" => phase);
    }
    for transport in ["websocket", "sse"] {
        gauge!(STREAMS_OPEN, "transport" => transport).set(0.0);
    }
    for reason in CloseReason::ALL {
        counter!(STREAMS_CLOSED, "reason" => reason.as_str()).increment(0);
    }
    for reason in STREAM_REFUSAL_REASONS {
        counter!(STREAMS_REFUSED, "reason" => reason).increment(0);
    }
    for state in ["idle", "in_use"] {
        gauge!(DB_POOL, "state" => state).set(0.0);
    }
    for status in ["online", "offline"] {
        counter!(PRESENCE_CHANGES, "status" => status).increment(0);
    }
    for transport in ["postgres", "redis"] {
        counter!(SIGNALS_SENT, "transport" => transport).increment(0);
        counter!(SIGNAL_PAYLOADS, "transport" => transport).increment(0);
    }
    for name in [DB_POOL_MAX, STREAMS_MAX, DB_UP, BUS_UP, PRESENCE_ONLINE] {
        gauge!(name).set(0.0);
    }
    for name in [
        MESSAGES_STORED,
        BUS_RECONNECTS,
        BUS_REPAIRS,
        BUS_PAYLOADS_REJECTED,
        BUS_PUBLISHES_DROPPED,
        RATE_LIMITED,
        CACHE_HITS,
        CACHE_MISSES,
        CACHE_EVICTIONS,
        TYPING_DROPPED,
        SIGNALS_DROPPED,
    ] {
        counter!(name).increment(0);
    }
}

/// Middleware: counts and times every request by its route pattern (not its
/// path, so room names do not explode the label set).
pub async fn track_requests(request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    ::metrics::counter!(metrics::HTTP_REQUESTS, "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    ::metrics::histogram!(metrics::HTTP_DURATION, "method" => method, "route" => route)
        .record(start.elapsed().as_secs_f64());
    response
}
