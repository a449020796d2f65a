//! `GET /api/v1/stream`: one WebSocket for many rooms (DESIGN §5c).
//!
//! The client subscribes and unsubscribes rooms with small JSON frames.
//! Each subscribed room runs its own [`Subscription`] (replay from `since`,
//! then live, no gap, no duplicate) in a task that forwards its frames to
//! the connection's writer through one bounded channel; unsubscribing (or
//! closing) aborts the task, which frees the room's hub channel with its
//! last subscriber. The writer also sends the user's own frames: `read`
//! when a marker moved in another session, `rooms_changed` when the user
//! was added to or removed from a room (or given a direct room), on every
//! replica through the access events.
//!
//! Presence and typing (DESIGN §5e, [`crate::presence`]): the stream holds
//! its user online while it is open; a `typing` frame for a followed room
//! goes to the room's other subscribers; `presence` frames tell of users
//! who are members of a followed room, once per change however many
//! followed rooms hold them: the stream registers its rooms with the
//! process's presence audience ([`crate::presence::Listening`]), which puts
//! the frames of only the changes it should hear in its inbox.
//!
//! Bounds: at most `--max-subscriptions` rooms per stream (a map owned by
//! the connection, emptied when it closes); the channel to the writer holds
//! [`QUEUE`] frames, and a room that cannot hand its frames over before its
//! own buffer in the hub overflows ends the stream with `lagging`, as a
//! per-room stream would.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use utoipa::ToSchema;

use super::error::ApiError;
use super::extract::{ClientIp, Credential, CurrentUser};
use crate::auth::access::RoomAccess;
use crate::auth::events::AccessEvent;
use crate::domain::RoomName;
use crate::presence::Listening;
use crate::stream::{CloseReason, Frame, Outbound, StreamGuard, Subscription};
use crate::AppState;

/// Frames waiting for the writer, from all rooms of one stream.
const QUEUE: usize = 256;
/// Client frames are small JSON objects; anything up to this (a frame naming
/// 10,000 rooms of 64 characters fits) is read and answered with an `error`
/// frame, beyond it the connection closes (1009, message too big). Memory
/// is spent only while such a frame is read: the read buffer stays small.
const MAX_CLIENT_FRAME: usize = 1024 * 1024;
const WS_BUFFER: usize = 4 * 1024;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/stream", get(multiplexed))
}

/// A frame the client sends.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientFrame {
    /// Follow a room: with `since`, replay every event after it first.
    Subscribe {
        room: String,
        #[serde(default)]
        since: Option<i64>,
    },
    /// Stop following a room.
    Unsubscribe { room: String },
    /// The user types in a room this stream follows (DESIGN §5e): the
    /// room's other subscribers hear it, at most once per user and room
    /// every 2 s (extra frames are dropped).
    Typing { room: String },
}

/// Frames this module writes besides room events.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum UserFrame<'a> {
    Error {
        #[serde(skip_serializing_if = "Option::is_none")]
        room: Option<&'a str>,
        code: &'static str,
    },
    Read {
        room: &'a str,
        read_seq: i64,
    },
    RoomsChanged,
}

impl UserFrame<'_> {
    fn text(&self) -> Utf8Bytes {
        // Serialising our own plain enum cannot fail.
        serde_json::to_string(self).unwrap_or_default().into()
    }
}

/// Open one stream for many rooms (WebSocket).
#[utoipa::path(
    get,
    path = "/api/v1/stream",
    tag = "streams",
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 101, description = "WebSocket. Client frames: `{\"type\":\"subscribe\",\"room\":\"…\",\"since\":S?}` (answered by `{\"type\":\"caught_up\",\"room\",\"seq\"}` once live), `{\"type\":\"unsubscribe\",\"room\":\"…\"}` and `{\"type\":\"typing\",\"room\":\"…\"}` (a followed room; at most one per user and room every 2 s reaches the others, extra frames are dropped). Server frames: the room frames of DESIGN §5b with `room` (`message`, `edit`, `delete`, `reaction`, `caught_up`), `{\"type\":\"typing\",\"room\",\"user\":{\"id\",\"username\",\"display_name\"}}` (others typing in a followed room), `{\"type\":\"presence\",\"user_id\",\"status\":\"online\"|\"offline\"}` (members of a followed room), `{\"type\":\"read\",\"room\",\"read_seq\"}`, `{\"type\":\"rooms_changed\"}`, and `{\"type\":\"error\",\"room\"?,\"code\"}` for a refused frame (codes `invalid_frame`, `invalid_room`, `not_found`, `not_subscribed`, `too_many_subscriptions`, `removed`, `unavailable`); the stream stays open after an error frame. A close frame's reason says why the stream ended (`lagging`, `timeout`, `shutting_down`, `suspended`, `signed_out`)."),
        (status = 400, description = "Not a WebSocket upgrade", body = crate::api::error::ErrorBody),
        (status = 401, description = "Not signed in", body = crate::api::error::ErrorBody),
        (status = 403, description = "Suspended, or a cookie-authenticated upgrade from another site", body = crate::api::error::ErrorBody),
        (status = 429, description = "This user opens streams too fast or has as many open as it may (see Retry-After)", body = crate::api::error::ErrorBody),
        (status = 503, description = "Too many streams, or shutting down", body = crate::api::error::ErrorBody),
    )
)]
pub async fn multiplexed(
    State(state): State<AppState>,
    current: CurrentUser,
    ClientIp(ip): ClientIp,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let Ok(upgrade) = upgrade else {
        return Err(ApiError::bad_request(
            "not_a_stream_request",
            "expected a WebSocket upgrade",
        ));
    };
    if state.shutdown.is_cancelled() {
        return Err(ApiError::ShuttingDown);
    }
    let permit = super::stream::admit(&state, &current, ip)?;
    // Listen for access changes before anything is subscribed.
    let feed = state.auth.feed();
    let tasks = state.tasks.clone();
    Ok(upgrade
        .read_buffer_size(super::stream::WS_READ_BUFFER)
        .write_buffer_size(WS_BUFFER)
        .max_write_buffer_size(WS_BUFFER * 64)
        .max_message_size(MAX_CLIENT_FRAME)
        .max_frame_size(MAX_CLIENT_FRAME)
        .on_upgrade(move |socket| {
            tasks.track_future(async move {
                let online = state.signals.stream_opened(&current.user);
                let mut guard = StreamGuard::open("multiplexed", permit).holding(online);
                let reason = Connection::new(state, current).run(socket, feed).await;
                guard.close(reason);
            })
        }))
}

/// A frame from a room's task to the writer.
enum Forward {
    Frame(Utf8Bytes),
    /// The room's subscription ended: `Lagging` and `ShuttingDown` end the
    /// stream; losing access or the database only ends the room.
    Ended(RoomName, CloseReason),
}

struct Connection {
    state: AppState,
    current: CurrentUser,
    /// The rooms followed, each with its task; at most
    /// `limits.max_subscriptions`, emptied (tasks aborted) on close.
    rooms: HashMap<RoomName, JoinHandle<()>>,
    /// The same rooms in the presence audience (removed when it drops).
    presence: Listening,
    inbox: mpsc::Receiver<Utf8Bytes>,
    tx: mpsc::Sender<Forward>,
    rx: mpsc::Receiver<Forward>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        for (_, task) in self.rooms.drain() {
            task.abort();
        }
    }
}

impl Connection {
    fn new(state: AppState, current: CurrentUser) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        let (presence, inbox) = state.signals.listen(&current.user);
        Self {
            state,
            current,
            rooms: HashMap::new(),
            presence,
            inbox,
            tx,
            rx,
        }
    }

    async fn run(mut self, socket: WebSocket, mut feed: crate::auth::AccessFeed) -> CloseReason {
        let (mut sink, mut incoming) = socket.split();
        let limits = self.state.limits;
        let shutdown = self.state.shutdown.clone();
        let mut heartbeat = tokio::time::interval(limits.heartbeat);
        heartbeat.tick().await;
        let mut heard = Instant::now();
        let reason = loop {
            let out: Option<Utf8Bytes> = tokio::select! {
                _ = shutdown.cancelled() => break CloseReason::ShuttingDown,
                _ = heartbeat.tick() => {
                    if heard.elapsed() > limits.heartbeat + limits.pong_timeout {
                        break CloseReason::Timeout;
                    }
                    match send(&mut sink, WsMessage::Ping(Default::default()), limits.stream_write_timeout).await {
                        Ok(()) => None,
                        Err(reason) => break reason,
                    }
                }
                frame = incoming.next() => match frame {
                    Some(Ok(WsMessage::Text(text))) => {
                        heard = Instant::now();
                        self.client_frame(text.as_str()).await
                    }
                    Some(Ok(WsMessage::Binary(_))) => {
                        heard = Instant::now();
                        Some(UserFrame::Error { room: None, code: "invalid_frame" }.text())
                    }
                    Some(Ok(WsMessage::Close(_))) | None => break CloseReason::ClientClosed,
                    Some(Ok(_)) => {
                        heard = Instant::now();
                        None
                    }
                    Some(Err(_)) => break CloseReason::ClientClosed,
                },
                forward = self.rx.recv() => match forward {
                    Some(Forward::Frame(text)) => Some(text),
                    Some(Forward::Ended(room, reason)) => match reason {
                        CloseReason::Lagging | CloseReason::ShuttingDown => break reason,
                        other => {
                            self.forget(&room);
                            let code = match other {
                                CloseReason::Removed => "removed",
                                _ => "unavailable",
                            };
                            Some(UserFrame::Error { room: Some(room.as_str()), code }.text())
                        }
                    },
                    None => break CloseReason::ShuttingDown,
                },
                event = feed.recv() => match self.access_event(event).await {
                    Ok(frame) => frame,
                    Err(reason) => break reason,
                },
                // The presence frames this stream should hear (the sender
                // lives in `self.presence`, so the inbox stays open).
                Some(frame) = self.inbox.recv() => Some(frame),
            };
            if let Some(text) = out {
                if let Err(reason) = send(
                    &mut sink,
                    WsMessage::Text(text),
                    limits.stream_write_timeout,
                )
                .await
                {
                    break reason;
                }
            }
        };
        for (_, task) in self.rooms.drain() {
            task.abort();
        }
        let close = WsMessage::Close(Some(CloseFrame {
            code: reason.ws_code(),
            reason: Utf8Bytes::from_static(reason.as_str()),
        }));
        let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(close)).await;
        reason
    }

    /// Answers one client frame: `None` when it needs no answer now (a
    /// subscription answers `caught_up` itself once live).
    async fn client_frame(&mut self, text: &str) -> Option<Utf8Bytes> {
        let error = |room: Option<&str>, code| Some(UserFrame::Error { room, code }.text());
        let Ok(frame) = serde_json::from_str::<ClientFrame>(text) else {
            return error(None, "invalid_frame");
        };
        match frame {
            ClientFrame::Subscribe { room, since } => {
                let Ok(name) = RoomName::parse(&room) else {
                    return error(Some(&room), "invalid_room");
                };
                if since.is_some_and(|s| s < 0) {
                    return error(Some(&room), "invalid_since");
                }
                if !self.rooms.contains_key(&name)
                    && self.rooms.len() >= self.state.limits.max_subscriptions
                {
                    return error(Some(&room), "too_many_subscriptions");
                }
                match self.subscribe(name, since).await {
                    Ok(()) => None,
                    Err(code) => error(Some(&room), code),
                }
            }
            ClientFrame::Unsubscribe { room } => {
                if let Ok(name) = RoomName::parse(&room) {
                    self.forget(&name);
                }
                None
            }
            ClientFrame::Typing { room } => {
                let Ok(name) = RoomName::parse(&room) else {
                    return error(Some(&room), "invalid_room");
                };
                if !self.rooms.contains_key(&name) {
                    return error(Some(&room), "not_subscribed");
                }
                // Throttled frames are dropped: nothing to answer.
                self.state.signals.typing(&name, &self.current.user);
                None
            }
        }
    }

    /// Reads a followed room's members again (someone joined or left).
    async fn refresh_members(&mut self, room: &RoomName) {
        if !self.rooms.contains_key(room) {
            return;
        }
        let heard = Instant::now();
        let members = self
            .state
            .signals
            .members(&self.state.auth.accounts, room, Some(heard))
            .await;
        if let Some(members) = members {
            self.presence.offer(room, members);
        }
    }

    async fn subscribe(&mut self, room: RoomName, since: Option<i64>) -> Result<(), &'static str> {
        let user = &self.current.user;
        match self.state.auth.room_access(&room, user).await {
            Ok(RoomAccess::Allowed(_)) => {}
            Ok(RoomAccess::Missing | RoomAccess::Hidden(_)) => return Err("not_found"),
            Err(_) => return Err("unavailable"),
        }
        let subscription = Subscription::start(
            &self.state.hub,
            self.state.store.clone(),
            room.clone(),
            since,
        )
        .await
        .map_err(|_| "unavailable")?
        .seen_by(user.id.as_str())
        .with_signals();
        let members = self
            .state
            .signals
            .members(&self.state.auth.accounts, &room, None)
            .await;
        self.forget(&room);
        let task = tokio::spawn(forward(subscription, self.tx.clone()));
        self.presence.follow(&room, members);
        self.rooms.insert(room, task);
        Ok(())
    }

    fn forget(&mut self, room: &RoomName) {
        if let Some(task) = self.rooms.remove(room) {
            task.abort();
        }
        self.presence.unfollow(room);
        if self.rooms.capacity() > 64 && self.rooms.capacity() > 4 * self.rooms.len() {
            self.rooms.shrink_to_fit();
        }
    }

    /// The user's own frames from an access event; `Err` ends the stream.
    async fn access_event(
        &mut self,
        event: Result<AccessEvent, tokio::sync::broadcast::error::RecvError>,
    ) -> Result<Option<Utf8Bytes>, CloseReason> {
        use tokio::sync::broadcast::error::RecvError;
        let user = self.current.user.clone();
        match event {
            Ok(AccessEvent::ReadMoved {
                user_id,
                room,
                read_seq,
            }) if user_id == user.id.as_str() => Ok(Some(
                UserFrame::Read {
                    room: &room,
                    read_seq,
                }
                .text(),
            )),
            Ok(AccessEvent::MemberChanged { room, user_id }) => {
                let Ok(room) = RoomName::parse(&room) else {
                    return Ok(None);
                };
                if user_id != user.id.as_str() {
                    self.refresh_members(&room).await;
                    return Ok(None);
                }
                self.recheck(&room).await;
                self.refresh_members(&room).await;
                Ok(Some(UserFrame::RoomsChanged.text()))
            }
            Ok(AccessEvent::UserChanged {
                user_id,
                suspended: true,
            }) if user_id == user.id.as_str() => Err(CloseReason::Suspended),
            Ok(AccessEvent::SessionRevoked { session_id })
                if self.current.credential
                    == Credential::Session(crate::auth::session::SessionId::from_event(
                        session_id.clone(),
                    )) =>
            {
                Err(CloseReason::SignedOut)
            }
            Err(RecvError::Lagged(_)) => {
                // Events were missed: look at every room again.
                let rooms: Vec<RoomName> = self.rooms.keys().cloned().collect();
                for room in rooms {
                    self.recheck(&room).await;
                }
                Ok(Some(UserFrame::RoomsChanged.text()))
            }
            Err(RecvError::Closed) => Err(CloseReason::ShuttingDown),
            Ok(_) => Ok(None),
        }
    }

    /// Drops `room` when the user may no longer read it, telling the client.
    async fn recheck(&mut self, room: &RoomName) {
        if !self.rooms.contains_key(room) {
            return;
        }
        if let Ok(RoomAccess::Hidden(_)) =
            self.state.auth.room_access(room, &self.current.user).await
        {
            self.forget(room);
            let frame = UserFrame::Error {
                room: Some(room.as_str()),
                code: "removed",
            };
            let _ = self.tx.try_send(Forward::Frame(frame.text()));
        }
    }
}

/// Runs one room's subscription, handing its frames to the writer.
async fn forward(mut subscription: Subscription, tx: mpsc::Sender<Forward>) {
    let room = subscription.room().clone();
    loop {
        let forward = match subscription.next().await {
            Outbound::Event(event) => Forward::Frame(Frame::event(&event)),
            Outbound::CaughtUp(seq) => Forward::Frame(
                Frame::CaughtUp {
                    room: Some(room.as_str()),
                    seq,
                }
                .to_text(),
            ),
            Outbound::Typing(typing) => Forward::Frame(typing.frame.clone()),
            Outbound::Close(reason) => {
                let _ = tx.send(Forward::Ended(room, reason)).await;
                return;
            }
        };
        if tx.send(forward).await.is_err() {
            return;
        }
    }
}

async fn send(
    sink: &mut futures::stream::SplitSink<WebSocket, WsMessage>,
    message: WsMessage,
    timeout: Duration,
) -> Result<(), CloseReason> {
    match tokio::time::timeout(timeout, sink.send(message)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(CloseReason::WriteFailed),
        Err(_) => Err(CloseReason::Lagging),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_frames_parse_strictly() {
        assert!(matches!(
            serde_json::from_str::<ClientFrame>(r#"{"type":"subscribe","room":"a","since":3}"#),
            Ok(ClientFrame::Subscribe { since: Some(3), .. })
        ));
        assert!(matches!(
            serde_json::from_str::<ClientFrame>(r#"{"type":"unsubscribe","room":"a"}"#),
            Ok(ClientFrame::Unsubscribe { .. })
        ));
        for bad in [
            "not json",
            r#"{"type":"subscribe"}"#,
            r#"{"type":"subscribe","room":["a","b"]}"#,
            r#"{"type":"dance","room":"a"}"#,
            r#"{"type":"subscribe","room":"a","extra":1}"#,
        ] {
            assert!(serde_json::from_str::<ClientFrame>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn user_frames_have_the_documented_shapes() {
        let error = UserFrame::Error {
            room: Some("a"),
            code: "not_found",
        };
        assert_eq!(
            error.text().as_str(),
            r#"{"type":"error","room":"a","code":"not_found"}"#
        );
        assert_eq!(
            UserFrame::RoomsChanged.text().as_str(),
            r#"{"type":"rooms_changed"}"#
        );
        let read = UserFrame::Read {
            room: "a",
            read_seq: 4,
        };
        assert_eq!(
            read.text().as_str(),
            r#"{"type":"read","room":"a","read_seq":4}"#
        );
    }
}
