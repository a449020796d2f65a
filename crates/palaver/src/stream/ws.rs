//! The WebSocket transport: JSON text frames out, pings as heartbeats, a
//! close frame whose reason says why the stream ended.
//!
//! [`pump`] is generic over `Sink`/`Stream` so it is tested without a socket.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes};
use futures::{Sink, SinkExt, Stream, StreamExt};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::record_delivery;
use super::subscription::{CloseReason, Outbound, Subscription};
use crate::domain::Message;

/// A server-to-client frame.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Frame<'a> {
    Message { message: &'a Message },
    CaughtUp { seq: i64 },
}

/// Close codes: 1001 (going away) on shutdown, 1013 (try again later) when
/// the subscriber lags or the database cannot be read.
fn close_code(reason: CloseReason) -> u16 {
    match reason {
        CloseReason::ShuttingDown => 1001,
        CloseReason::Lagging | CloseReason::Unavailable => 1013,
    }
}

/// Timing of one connection.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub heartbeat: Duration,
    pub write_timeout: Duration,
}

/// Runs one WebSocket stream until the client leaves, the subscription ends
/// or `shutdown` fires. The reader half only watches for the client closing
/// (tungstenite answers pings itself); the writer half sends the
/// subscription and heartbeats. Returns why the stream ended.
pub async fn pump<S, R, E>(
    mut sink: S,
    mut incoming: R,
    mut subscription: Subscription,
    timing: Timing,
    shutdown: CancellationToken,
) -> &'static str
where
    S: Sink<WsMessage> + Unpin,
    R: Stream<Item = Result<WsMessage, E>> + Unpin,
{
    let reader = async {
        while let Some(Ok(message)) = incoming.next().await {
            if matches!(message, WsMessage::Close(_)) {
                break;
            }
        }
    };

    let writer = async {
        let mut heartbeat = tokio::time::interval(timing.heartbeat);
        heartbeat.tick().await; // the first tick is immediate
        loop {
            let frame = tokio::select! {
                _ = shutdown.cancelled() => Outbound::Close(CloseReason::ShuttingDown),
                _ = heartbeat.tick() => {
                    if send(&mut sink, WsMessage::Ping(Default::default()), timing).await.is_err() {
                        return "write_failed";
                    }
                    continue;
                }
                next = subscription.next() => next,
            };
            let text = match &frame {
                Outbound::Message(message) => to_text(&Frame::Message { message }),
                Outbound::CaughtUp(seq) => to_text(&Frame::CaughtUp { seq: *seq }),
                Outbound::Close(reason) => {
                    let close = WsMessage::Close(Some(CloseFrame {
                        code: close_code(*reason),
                        reason: Utf8Bytes::from_static(reason.as_str()),
                    }));
                    let _ = send(&mut sink, close, timing).await;
                    return reason.as_str();
                }
            };
            match send(&mut sink, WsMessage::Text(text), timing).await {
                Ok(()) => {
                    if let Outbound::Message(message) = &frame {
                        record_delivery(message);
                    }
                }
                Err(SendError::TimedOut) => {
                    // The client stopped reading: its socket buffer is full.
                    let close = WsMessage::Close(Some(CloseFrame {
                        code: close_code(CloseReason::Lagging),
                        reason: Utf8Bytes::from_static("lagging"),
                    }));
                    let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(close)).await;
                    return CloseReason::Lagging.as_str();
                }
                Err(SendError::Failed) => return "write_failed",
            }
        }
    };

    tokio::select! {
        _ = reader => "client_closed",
        reason = writer => reason,
    }
}

enum SendError {
    TimedOut,
    Failed,
}

async fn send<S: Sink<WsMessage> + Unpin>(
    sink: &mut S,
    message: WsMessage,
    timing: Timing,
) -> Result<(), SendError> {
    match tokio::time::timeout(timing.write_timeout, sink.send(message)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err(SendError::Failed),
        Err(_) => Err(SendError::TimedOut),
    }
}

fn to_text(frame: &Frame<'_>) -> Utf8Bytes {
    // Serialising our own plain structs cannot fail.
    serde_json::to_string(frame).unwrap_or_default().into()
}
