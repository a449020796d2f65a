//! Live streams of a room over WebSocket or Server-Sent Events.
//!
//! Both transports share [`subscription::Subscription`] (replay, then live,
//! no gap, no duplicate) and differ only in framing.

pub mod sse;
pub mod subscription;
pub mod ws;

use std::sync::Arc;

use axum::extract::ws::{rejection::WebSocketUpgradeRejection, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::StreamExt;
use serde::Deserialize;
use tokio::sync::OwnedSemaphorePermit;
use utoipa::IntoParams;

pub use subscription::{CloseReason, Outbound, Subscription};

use crate::api::error::ApiError;
use crate::api::extract::{Path, Query};
use crate::auth::extract::CurrentUser;
use crate::domain::{Message, RoomName};
use crate::telemetry::metrics as m;
use crate::AppState;

/// WebSocket buffers: tungstenite's defaults are 128 KiB each way per
/// connection; our frames are small, and memory per idle connection counts.
const WS_READ_BUFFER: usize = 4 * 1024;
const WS_WRITE_BUFFER: usize = 4 * 1024;
/// Clients only send control frames; anything bigger is refused.
const WS_MAX_MESSAGE: usize = 4 * 1024;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/rooms/{room}/stream", get(stream))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct StreamParams {
    /// Resume after this seq: every stored message with a greater seq is sent
    /// first, then the live stream. Omitted: only new messages.
    #[param(minimum = 0)]
    since: Option<i64>,
}

/// Stream a room: WebSocket upgrade, or SSE with `Accept: text/event-stream`.
#[utoipa::path(
    get,
    path = "/api/v1/rooms/{room}/stream",
    tag = "streams",
    security(("session" = []), ("bearer" = [])),
    params(("room" = String, Path, description = "Room name", pattern = "^[a-z0-9][a-z0-9_-]{0,63}$"), StreamParams,
           ("Last-Event-ID" = Option<String>, Header, description = "SSE resume point (seq)")),
    responses(
        (status = 101, description = "WebSocket: frames `{\"type\":\"message\",\"message\":{...}}` and `{\"type\":\"caught_up\",\"seq\":N}`"),
        (status = 200, description = "SSE: `id: <seq>`, `event: message`, `data: <message JSON>`", content_type = "text/event-stream", body = String),
        (status = 400, description = "Invalid room, since, or neither a WebSocket upgrade nor an SSE request", body = crate::api::error::ErrorBody),
        (status = 401, description = "Not signed in", body = crate::api::error::ErrorBody),
        (status = 403, description = "Suspended, or a cookie-authenticated WebSocket upgrade from another site", body = crate::api::error::ErrorBody),
        (status = 404, description = "A private room you are not in", body = crate::api::error::ErrorBody),
        (status = 503, description = "Too many streams, shutting down, or database unavailable", body = crate::api::error::ErrorBody),
    )
)]
async fn stream(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(room): Path<String>,
    Query(params): Query<StreamParams>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let room = RoomName::parse(&room)?;
    crate::api::rooms::visible(&state, &room, &current).await?;
    let wants_sse = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    let since = match (params.since, last_event_id(&headers)?) {
        (Some(since), _) | (None, Some(since)) => Some(since),
        (None, None) => None,
    };
    if since.is_some_and(|s| s < 0) {
        return Err(ApiError::bad_request(
            "invalid_since",
            "since must be 0 or greater",
        ));
    }
    if !wants_sse && upgrade.is_err() {
        return Err(ApiError::bad_request(
            "not_a_stream_request",
            "expected a WebSocket upgrade or Accept: text/event-stream",
        ));
    }
    if state.shutdown.is_cancelled() {
        return Err(ApiError::ShuttingDown);
    }
    let permit = state
        .stream_slots
        .clone()
        .try_acquire_owned()
        .map_err(|_| ApiError::TooManyStreams)?;
    let subscription = Subscription::start(&state.hub, state.store.clone(), room, since).await?;

    match upgrade {
        Ok(upgrade) if !wants_sse => {
            let timing = ws::Timing {
                heartbeat: state.limits.heartbeat,
                write_timeout: state.limits.stream_write_timeout,
            };
            let shutdown = state.shutdown.clone();
            let tasks = state.tasks.clone();
            Ok(upgrade
                .read_buffer_size(WS_READ_BUFFER)
                .write_buffer_size(WS_WRITE_BUFFER)
                .max_write_buffer_size(WS_WRITE_BUFFER * 64)
                .max_message_size(WS_MAX_MESSAGE)
                .max_frame_size(WS_MAX_MESSAGE)
                .on_upgrade(move |socket| {
                    tasks.track_future(async move {
                        let mut guard = StreamGuard::open("websocket", permit);
                        let (sink, incoming) = socket.split();
                        let reason = ws::pump(sink, incoming, subscription, timing, shutdown).await;
                        guard.close(reason);
                    })
                }))
        }
        _ => {
            let guard = StreamGuard::open("sse", permit);
            let sse = sse::respond(
                subscription,
                guard,
                state.limits.heartbeat,
                state.shutdown.clone(),
            );
            // Proxies must not buffer the event stream.
            Ok(([("x-accel-buffering", "no")], sse).into_response())
        }
    }
}

/// The SSE resume point a browser sends on reconnect.
fn last_event_id(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    match headers.get("last-event-id") {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<i64>().ok())
            .map(Some)
            .ok_or_else(|| {
                ApiError::bad_request("invalid_last_event_id", "Last-Event-ID must be a seq")
            }),
    }
}

/// Holds a stream slot and keeps the open-streams gauge right, however the
/// stream ends.
pub struct StreamGuard {
    transport: &'static str,
    reason: &'static str,
    _permit: OwnedSemaphorePermit,
}

impl StreamGuard {
    fn open(transport: &'static str, permit: OwnedSemaphorePermit) -> Self {
        metrics::gauge!(m::STREAMS_OPEN, "transport" => transport).increment(1.0);
        Self {
            transport,
            reason: "client_closed",
            _permit: permit,
        }
    }

    /// Records why the stream ended (reported when the guard drops).
    pub fn close(&mut self, reason: &'static str) {
        self.reason = reason;
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        metrics::gauge!(m::STREAMS_OPEN, "transport" => self.transport).decrement(1.0);
        metrics::counter!(m::STREAMS_CLOSED, "reason" => self.reason).increment(1);
    }
}

/// Records commit-to-delivery latency for one delivered message.
fn record_delivery(message: &Arc<Message>) {
    let lag = time::OffsetDateTime::now_utc() - message.sent_at;
    metrics::histogram!(m::FANOUT_LAG).record(lag.as_seconds_f64().max(0.0));
}
