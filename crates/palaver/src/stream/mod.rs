//! Live streams of a room over WebSocket or Server-Sent Events.
//!
//! Both transports share [`subscription::Subscription`] (replay, then live,
//! no gap, no duplicate), the [`Frame`] a message is serialised into (once
//! per message, however many subscribers it reaches), the [`CloseReason`]
//! a stream ends with, and the per-client admission of [`limits`]. They
//! differ only in framing. The HTTP handler that opens a stream lives with
//! the other routes in [`crate::api::stream`].

pub mod limits;
pub mod sse;
pub mod subscription;
pub mod ws;

use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use bytes::Bytes;
use serde::Serialize;

pub use limits::{StreamLimits, StreamPermit};
pub use subscription::{Outbound, Subscription};

use crate::domain::RoomEvent;
use crate::telemetry::metrics as m;

/// Why a stream ended: the WebSocket close frame's reason, the SSE `close`
/// event's `reason`, and the `reason` label of `palaver_stream_closed_total`.
/// A new reason is a new variant here; the compiler then asks for its name
/// and its WebSocket close code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The client closed the stream or its connection.
    ClientClosed,
    /// Writing to the client failed (the connection broke).
    WriteFailed,
    /// The subscriber fell further behind than its buffer allows, or a write
    /// to it blocked longer than `--stream-write-timeout`.
    Lagging,
    /// A WebSocket ping was not answered within `--stream-pong-timeout`.
    Timeout,
    /// The server is draining.
    ShuttingDown,
    /// The database could not be read for the replay.
    Unavailable,
    /// The user was removed from the (private) room.
    Removed,
    /// The user was suspended.
    Suspended,
    /// The session the stream was opened with was signed out.
    SignedOut,
}

impl CloseReason {
    /// Every reason, for pre-registering metric series.
    pub const ALL: [CloseReason; 9] = [
        CloseReason::ClientClosed,
        CloseReason::WriteFailed,
        CloseReason::Lagging,
        CloseReason::Timeout,
        CloseReason::ShuttingDown,
        CloseReason::Unavailable,
        CloseReason::Removed,
        CloseReason::Suspended,
        CloseReason::SignedOut,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::ClientClosed => "client_closed",
            CloseReason::WriteFailed => "write_failed",
            CloseReason::Lagging => "lagging",
            CloseReason::Timeout => "timeout",
            CloseReason::ShuttingDown => "shutting_down",
            CloseReason::Unavailable => "unavailable",
            CloseReason::Removed => "removed",
            CloseReason::Suspended => "suspended",
            CloseReason::SignedOut => "signed_out",
        }
    }

    /// WebSocket close codes: 1001 (going away) on shutdown, 1013 (try
    /// again later) when the subscriber lags, does not answer pings or the
    /// database cannot be read; 1000 otherwise.
    pub fn ws_code(self) -> u16 {
        match self {
            CloseReason::ShuttingDown => 1001,
            CloseReason::Lagging | CloseReason::Timeout | CloseReason::Unavailable => 1013,
            CloseReason::ClientClosed | CloseReason::WriteFailed => 1000,
            // Policy: access was withdrawn; resuming will not help.
            CloseReason::Removed | CloseReason::Suspended | CloseReason::SignedOut => 1008,
        }
    }
}

/// A server-to-client frame other than a room event: the WebSocket text
/// frame's JSON; SSE sends the same JSON's inner value as an event's data
/// (see [`sse`]). Room events are framed by [`Frame::event`].
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Frame<'a> {
    CaughtUp {
        #[serde(skip_serializing_if = "Option::is_none")]
        room: Option<&'a str>,
        seq: i64,
    },
    Close {
        reason: &'static str,
    },
}

impl Frame<'_> {
    /// The frame as JSON text.
    pub fn to_text(&self) -> Utf8Bytes {
        // Serialising our own plain structs cannot fail.
        serde_json::to_string(self).unwrap_or_default().into()
    }

    /// A room event's frame (DESIGN §5b: `{"type": …, "room": …, …}`),
    /// serialised once however many subscribers (on any transport) it
    /// reaches. One serializer for every kind of event.
    pub fn event(event: &RoomEvent) -> Utf8Bytes {
        let bytes = event.frame().get_or_init(|| encode(event));
        // The cache only ever holds the UTF-8 JSON encoded below.
        Utf8Bytes::try_from(bytes).unwrap_or_else(|_| Utf8Bytes::from(String::new()))
    }

    /// An event's SSE data: a message's own JSON (a slice of its cached
    /// frame, no copy), or the whole frame of a change.
    pub fn event_data(event: &RoomEvent) -> Bytes {
        let frame = event.frame().get_or_init(|| encode(event));
        let RoomEvent::Message(message) = event else {
            return frame;
        };
        let prefix = message_prefix(message.room.as_str()).len();
        if frame.len() > prefix && frame.ends_with(b"}") {
            frame.slice(prefix..frame.len() - 1)
        } else {
            Bytes::from(serde_json::to_vec(message.as_ref()).unwrap_or_default())
        }
    }
}

/// What precedes the message JSON in a message frame (room names need no
/// escaping: `[a-z0-9_-]`).
fn message_prefix(room: &str) -> String {
    format!(r#"{{"type":"message","room":"{room}","message":"#)
}

fn encode(event: &RoomEvent) -> Bytes {
    let change = match event {
        RoomEvent::Message(message) => {
            let mut out = message_prefix(message.room.as_str()).into_bytes();
            // Serialising our own plain structs cannot fail.
            let _ = serde_json::to_writer(&mut out, message.as_ref());
            out.push(b'}');
            return Bytes::from(out);
        }
        RoomEvent::Edit(e) => serde_json::to_value(e),
        RoomEvent::Delete(e) => serde_json::to_value(e),
        RoomEvent::Reaction(e) => serde_json::to_value(e),
    };
    let mut frame = serde_json::Map::new();
    frame.insert("type".into(), event.kind().into());
    frame.insert("room".into(), event.room().as_str().into());
    if let Ok(serde_json::Value::Object(fields)) = change {
        frame.extend(fields);
    }
    Bytes::from(serde_json::to_vec(&frame).unwrap_or_default())
}

/// Holds a stream's admission (global and per-client slots) and keeps the
/// open-streams gauge right, however the stream ends.
pub struct StreamGuard {
    transport: &'static str,
    pub(crate) reason: CloseReason,
    _permit: StreamPermit,
    /// Holds the stream's user online (DESIGN §5e) while it is open.
    _online: Option<crate::presence::Online>,
}

impl StreamGuard {
    pub fn open(transport: &'static str, permit: StreamPermit) -> Self {
        metrics::gauge!(m::STREAMS_OPEN, "transport" => transport).increment(1.0);
        Self {
            transport,
            reason: CloseReason::ClientClosed,
            _permit: permit,
            _online: None,
        }
    }

    /// Keeps `online` (the user's presence) for as long as the stream.
    pub fn holding(mut self, online: crate::presence::Online) -> Self {
        self._online = Some(online);
        self
    }

    /// Records why the stream ended (reported when the guard drops).
    pub fn close(&mut self, reason: CloseReason) {
        self.reason = reason;
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        metrics::gauge!(m::STREAMS_OPEN, "transport" => self.transport).decrement(1.0);
        metrics::counter!(m::STREAMS_CLOSED, "reason" => self.reason.as_str()).increment(1);
    }
}

/// Records commit-to-delivery latency for one delivered event.
fn record_delivery(event: &Arc<RoomEvent>) {
    let lag = time::OffsetDateTime::now_utc() - event.at();
    metrics::histogram!(m::FANOUT_LAG).record(lag.as_seconds_f64().max(0.0));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{now_millis, RoomName};

    fn message() -> RoomEvent {
        RoomEvent::Message(std::sync::Arc::new(crate::domain::Message {
            room: RoomName::parse("r").unwrap(),
            seq: 7,
            author: "a".into(),
            author_id: None,
            text: "t\"quoted\" }".into(),
            sent_at: now_millis(),
            client_id: Some("c-1".into()),
            client_ip: "127.0.0.1".into(),
            edited_at: None,
            deleted: false,
            reply_to: None,
            reactions: Vec::new(),
            mentions: Vec::new(),
            files: Vec::new(),
            as_of: 7,
            frame: Default::default(),
        }))
    }

    #[test]
    fn a_message_frame_is_serialised_once_and_shared() {
        let message = message();
        let first = Frame::event(&message);
        let second = Frame::event(&message);
        assert_eq!(
            first.as_ptr(),
            second.as_ptr(),
            "the same bytes, not a copy"
        );
        let parsed: serde_json::Value = serde_json::from_str(&first).unwrap();
        assert_eq!(parsed["type"], "message");
        assert_eq!(parsed["room"], "r");
        assert_eq!(parsed["message"]["text"], "t\"quoted\" }");
        assert_eq!(parsed["message"]["seq"], 7);
    }

    #[test]
    fn the_sse_payload_is_the_message_json_sliced_from_the_same_frame() {
        let message = message();
        let frame = Frame::event(&message);
        let json = Frame::event_data(&message);
        let RoomEvent::Message(inner) = &message else {
            unreachable!()
        };
        assert_eq!(
            json,
            serde_json::to_string(inner.as_ref()).unwrap().as_bytes()
        );
        let inside =
            frame.as_str().as_ptr() as usize..frame.as_str().as_ptr() as usize + frame.len();
        assert!(
            inside.contains(&(json.as_ptr() as usize)),
            "a slice of the frame, not a copy"
        );
    }

    #[test]
    fn a_change_frame_carries_its_type_room_and_fields() {
        let edit = RoomEvent::Edit(crate::domain::EditEvent {
            room: RoomName::parse("r").unwrap(),
            seq: 9,
            target: 7,
            text: "new".into(),
            edited_at: now_millis(),
            mentions: vec!["u1".into()],
            user_id: "u0".into(),
            frame: Default::default(),
        });
        let parsed: serde_json::Value = serde_json::from_str(&Frame::event(&edit)).unwrap();
        assert_eq!(parsed["type"], "edit");
        assert_eq!(parsed["room"], "r");
        assert_eq!(
            (parsed["seq"].as_i64(), parsed["target"].as_i64()),
            (Some(9), Some(7))
        );
        assert_eq!(parsed["text"], "new");
        assert_eq!(parsed["mentions"][0], "u1");
        assert!(parsed["edited_at"].is_string());
        assert!(parsed.get("user_id").is_none(), "who edited is the author");
        assert_eq!(
            Frame::event_data(&edit).as_ref(),
            Frame::event(&edit).as_bytes()
        );
    }

    #[test]
    fn close_reasons_have_distinct_names() {
        let names: std::collections::BTreeSet<_> =
            CloseReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(names.len(), CloseReason::ALL.len());
        assert!(
            names.contains("lagging")
                && names.contains("timeout")
                && names.contains("shutting_down")
        );
    }
}
