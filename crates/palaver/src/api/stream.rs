//! `GET /api/v1/rooms/{room}/stream`: opens a WebSocket or SSE stream of a
//! room (the transports are in [`crate::stream`]).

use axum::extract::ws::{rejection::WebSocketUpgradeRejection, WebSocketUpgrade};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures::StreamExt;
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::ApiError;
use super::extract::{ClientIp, CurrentUser, Path, Query};
use crate::domain::RoomName;
use crate::stream::limits::{ClientKey, Refusal};
use crate::stream::{sse, ws, CloseReason, StreamGuard, Subscription};
use crate::telemetry::metrics as m;
use crate::AppState;

/// WebSocket buffers: tungstenite's defaults are 128 KiB each way per
/// connection; our frames are small, and memory per idle connection counts.
/// The read buffer is allocated when the connection opens and held for its
/// life, so it is kept to what a client's frames need (pongs, a close, a
/// subscribe); a larger frame grows it while it is read. A heap profile of
/// 2,000 idle subscribers put 4 KiB of each one's 8.5 KiB here when it was
/// 4 KiB (BENCHMARKS "Idle memory").
pub(super) const WS_READ_BUFFER: usize = 512;
const WS_WRITE_BUFFER: usize = 4 * 1024;
/// Clients only send control frames; anything bigger is refused.
const WS_MAX_MESSAGE: usize = 4 * 1024;
/// `Retry-After` for a client at its concurrent-stream cap: a stream of its
/// own has to close first, which the server cannot foresee.
const CLIENT_CAP_RETRY_SECS: u64 = 5;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/rooms/{room}/stream", get(stream))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct StreamParams {
    /// Resume after this seq: every stored message with a greater seq is sent
    /// first, then the live stream. Omitted: only new messages.
    #[param(value_type = Option<i64>, minimum = 0)]
    since: Option<String>,
}

/// Where a stream resumes: every stored message after this seq is replayed.
/// Parsed once, from `since` or else `Last-Event-ID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResumeAfter(i64);

impl ResumeAfter {
    /// A seq: decimal digits, 0 or greater.
    pub fn parse(value: &str) -> Result<Self, ApiError> {
        let value = value.trim();
        match value.parse::<i64>() {
            Ok(seq) if seq >= 0 => Ok(Self(seq)),
            Ok(_) => Err(ApiError::bad_request(
                "invalid_since",
                "since must be 0 or greater",
            )),
            Err(_) => Err(ApiError::bad_request(
                "invalid_since",
                "since must be a seq (an integer, 0 or greater)",
            )),
        }
    }

    /// `since` wins over `Last-Event-ID`; an empty `Last-Event-ID` (which
    /// the SSE standard allows) is no resume point.
    pub fn from_request(
        since: Option<&str>,
        headers: &HeaderMap,
    ) -> Result<Option<Self>, ApiError> {
        if let Some(since) = since {
            return Self::parse(since).map(Some);
        }
        let Some(value) = headers.get("last-event-id") else {
            return Ok(None);
        };
        let value = value.to_str().map_err(|_| {
            ApiError::bad_request("invalid_last_event_id", "Last-Event-ID must be a seq")
        })?;
        if value.trim().is_empty() {
            return Ok(None);
        }
        if value.trim().parse::<i64>().is_err() {
            return Err(ApiError::bad_request(
                "invalid_last_event_id",
                "Last-Event-ID must be a seq",
            ));
        }
        Self::parse(value).map(Some)
    }

    pub fn seq(self) -> i64 {
        self.0
    }
}

/// Stream a room: WebSocket upgrade, or SSE with `Accept: text/event-stream`.
#[utoipa::path(
    get,
    path = "/api/v1/rooms/{room}/stream",
    tag = "streams",
    security(("session" = []), ("bearer" = [])),
    params(("room" = String, Path, description = "Room name", pattern = "^[a-z0-9][a-z0-9_-]{0,63}$"), StreamParams,
           ("Last-Event-ID" = Option<String>, Header, description = "SSE resume point (seq); empty: none")),
    responses(
        (status = 101, description = "WebSocket: frames `{\"type\":\"message\",\"message\":{...}}` and `{\"type\":\"caught_up\",\"seq\":N}`; a close frame's reason says why the stream ended (`lagging`, `timeout`, `shutting_down`)"),
        (status = 200, description = "SSE: `id: <seq>`, `event: message`, `data: <message JSON>`; `event: close` with `{\"reason\"}` when the server ends it", content_type = "text/event-stream", body = String),
        (status = 400, description = "Invalid room, since, or neither a WebSocket upgrade nor an SSE request", body = crate::api::error::ErrorBody),
        (status = 401, description = "Not signed in", body = crate::api::error::ErrorBody),
        (status = 403, description = "Suspended, or a cookie-authenticated WebSocket upgrade from another site", body = crate::api::error::ErrorBody),
        (status = 404, description = "A private room you are not in", body = crate::api::error::ErrorBody),
        (status = 429, description = "This user opens streams too fast or has as many open as it may (see Retry-After)", body = crate::api::error::ErrorBody),
        (status = 503, description = "Too many streams, shutting down, or database unavailable", body = crate::api::error::ErrorBody),
    )
)]
pub async fn stream(
    State(state): State<AppState>,
    current: CurrentUser,
    Path(room): Path<String>,
    Query(params): Query<StreamParams>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let room = RoomName::parse(&room)?;
    // Listen for access changes before checking access, so none is missed.
    let feed = state.auth.feed();
    super::rooms::visible(&state, &room, &current).await?;
    let wants_sse = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    let since = ResumeAfter::from_request(params.since.as_deref(), &headers)?;
    if !wants_sse && upgrade.is_err() {
        return Err(ApiError::bad_request(
            "not_a_stream_request",
            "expected a WebSocket upgrade or Accept: text/event-stream",
        ));
    }
    if state.shutdown.is_cancelled() {
        return Err(ApiError::ShuttingDown);
    }
    // Limited as the signed-in user (every v1 stream has one), so users
    // behind one address each get their own allowance.
    let permit = admit(&state, &current, ip)?;
    let online = state.signals.stream_opened(&current.user);
    let (revoke, revoked) = tokio::sync::oneshot::channel();
    let subscription = Subscription::start(
        &state.hub,
        state.store.clone(),
        room.clone(),
        since.map(ResumeAfter::seq),
    )
    .await?
    .seen_by(current.user.id.as_str())
    .revoke_on(revoked);
    tokio::spawn(watch_access(
        state.auth.clone(),
        feed,
        room,
        current,
        revoke,
    ));

    match upgrade {
        Ok(upgrade) if !wants_sse => {
            let timing = ws::Timing {
                heartbeat: state.limits.heartbeat,
                write_timeout: state.limits.stream_write_timeout,
                pong_timeout: state.limits.pong_timeout,
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
                        let mut guard = StreamGuard::open("websocket", permit).holding(online);
                        let (sink, incoming) = socket.split();
                        let reason = ws::pump(sink, incoming, subscription, timing, shutdown).await;
                        guard.close(reason);
                    })
                }))
        }
        _ => {
            let guard = StreamGuard::open("sse", permit).holding(online);
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

/// Admits one more stream for the signed-in user (limited per user, so
/// users behind one address each get their own allowance), or answers the
/// refusal, counted by reason. Shared by the per-room and the multiplexed
/// streams.
pub fn admit(
    state: &AppState,
    current: &CurrentUser,
    ip: std::net::IpAddr,
) -> Result<crate::stream::StreamPermit, ApiError> {
    let client = ClientKey::of(Some(&current.user.id), ip);
    state.stream_limits.admit(client).map_err(|refusal| {
        let (label, error) = match refusal {
            Refusal::OpeningTooFast { retry_after } => (
                "opening_too_fast",
                ApiError::RateLimited {
                    retry_after_secs: retry_after.as_secs_f64().ceil().max(1.0) as u64,
                },
            ),
            Refusal::TooManyForClient => (
                "client_cap",
                ApiError::TooManyClientStreams {
                    retry_after_secs: CLIENT_CAP_RETRY_SECS,
                },
            ),
            Refusal::TooManyStreams => ("process_cap", ApiError::TooManyStreams),
        };
        metrics::counter!(m::STREAMS_REFUSED, "reason" => label).increment(1);
        error
    })
}

/// Ends a stream (through `revoke`) when its user loses access: removed from
/// the room, suspended, or signed out of the session the stream was opened
/// with. Returns when the stream ends (`revoke` is dropped) or fires.
async fn watch_access(
    auth: std::sync::Arc<crate::auth::Auth>,
    mut feed: crate::auth::AccessFeed,
    room: RoomName,
    current: CurrentUser,
    revoke: tokio::sync::oneshot::Sender<CloseReason>,
) {
    use crate::api::extract::Credential;
    use crate::auth::access::RoomAccess;
    use crate::auth::events::AccessEvent;
    use tokio::sync::broadcast::error::RecvError;
    let mut revoke = revoke;
    let user = &current.user;
    loop {
        let event = tokio::select! {
            _ = revoke.closed() => return,
            event = feed.recv() => event,
        };
        let recheck_room = match &event {
            Ok(AccessEvent::MemberChanged { room: r, user_id }) => {
                r == room.as_str() && user_id == user.id.as_str()
            }
            // Events were missed: look again.
            Err(RecvError::Lagged(_)) => true,
            _ => false,
        };
        let reason = match &event {
            Ok(AccessEvent::UserChanged {
                user_id,
                suspended: true,
            }) if user_id == user.id.as_str() => Some(CloseReason::Suspended),
            Ok(AccessEvent::SessionRevoked { session_id })
                if current.credential
                    == Credential::Session(crate::auth::session::SessionId::from_event(
                        session_id.clone(),
                    )) =>
            {
                Some(CloseReason::SignedOut)
            }
            Err(RecvError::Closed) => return,
            _ if recheck_room => match auth.room_access(&room, user).await {
                Ok(RoomAccess::Hidden(_)) => Some(CloseReason::Removed),
                _ => None,
            },
            _ => None,
        };
        if let Some(reason) = reason {
            let _ = revoke.send(reason);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(last_event_id: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(value) = last_event_id {
            headers.insert("last-event-id", HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    fn resume(
        since: Option<&str>,
        last_event_id: Option<&str>,
    ) -> Result<Option<i64>, &'static str> {
        ResumeAfter::from_request(since, &headers(last_event_id))
            .map(|r| r.map(ResumeAfter::seq))
            .map_err(|e| match e {
                ApiError::BadRequest { code, .. } => code,
                _ => "other",
            })
    }

    #[test]
    fn since_wins_over_last_event_id() {
        assert_eq!(resume(Some("5"), Some("9")), Ok(Some(5)));
        assert_eq!(resume(None, Some(" 9 ")), Ok(Some(9)));
        assert_eq!(resume(None, None), Ok(None));
    }

    #[test]
    fn an_empty_last_event_id_is_no_resume_point() {
        assert_eq!(resume(None, Some("")), Ok(None));
        assert_eq!(resume(None, Some("  ")), Ok(None));
    }

    #[test]
    fn negative_or_non_numeric_resume_points_are_refused() {
        assert_eq!(resume(Some("-1"), None), Err("invalid_since"));
        assert_eq!(resume(Some(""), None), Err("invalid_since"));
        assert_eq!(resume(Some("1e3"), None), Err("invalid_since"));
        assert_eq!(resume(None, Some("-3")), Err("invalid_since"));
        assert_eq!(resume(None, Some("abc")), Err("invalid_last_event_id"));
        assert_eq!(
            resume(None, Some("99999999999999999999")),
            Err("invalid_last_event_id")
        );
    }
}
