//! The Server-Sent-Events transport: `id: <seq>`, `event: message`,
//! `data: <message JSON>`; comment lines as heartbeats. Browsers reconnect by
//! themselves and send `Last-Event-ID`, which resumes the stream.
//!
//! A message's data is a slice of its WebSocket [`Frame`], serialised once
//! per message. Writes are bounded like WebSocket writes: every connection's
//! socket writes time out after `--stream-write-timeout` (see
//! [`crate::startup`]), which ends a stalled SSE response; a stream dropped
//! while its last event was still waiting to be written counts as `lagging`.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use tokio_util::sync::CancellationToken;

use super::subscription::{Outbound, Subscription};
use super::{record_delivery, CloseReason, Frame, StreamGuard};

/// Turns a subscription into an SSE response body. The stream ends with an
/// `event: close` naming the reason (lagging, shutting_down, unavailable).
pub fn respond(
    subscription: Subscription,
    guard: StreamGuard,
    heartbeat: Duration,
    shutdown: CancellationToken,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    Sse::new(Body::new(subscription, guard, shutdown))
        .keep_alive(KeepAlive::new().interval(heartbeat))
}

/// The events of one subscription, with the stream's guard.
struct Body {
    events: Pin<Box<dyn Stream<Item = (Event, Option<CloseReason>)> + Send>>,
    guard: StreamGuard,
    /// An event was handed to the server and it has not come back for the
    /// next one: its write is still pending.
    writing: bool,
}

impl Body {
    fn new(subscription: Subscription, guard: StreamGuard, shutdown: CancellationToken) -> Self {
        let events = futures::stream::unfold(
            (subscription, shutdown, false),
            |(mut subscription, shutdown, done)| async move {
                if done {
                    return None;
                }
                let next = tokio::select! {
                    _ = shutdown.cancelled() => Outbound::Close(CloseReason::ShuttingDown),
                    next = subscription.next() => next,
                };
                let (event, close) = event(next);
                Some(((event, close), (subscription, shutdown, close.is_some())))
            },
        );
        Self {
            events: Box::pin(events),
            guard,
            writing: false,
        }
    }
}

/// The SSE event for what the subscription sends next, and the close reason
/// if it ends the stream.
fn event(next: Outbound) -> (Event, Option<CloseReason>) {
    match next {
        Outbound::Event(room_event) => {
            record_delivery(&room_event);
            let json = Frame::event_data(&room_event);
            let event = Event::default()
                .id(room_event.seq().to_string())
                .event(room_event.kind());
            // The frame is JSON we encoded: always UTF-8.
            let event = event.data(std::str::from_utf8(&json).unwrap_or_default());
            (event, None)
        }
        Outbound::CaughtUp(seq) => (
            Event::default()
                .event("caught_up")
                .data(format!("{{\"seq\":{seq}}}")),
            None,
        ),
        // Only multiplexed subscriptions pass typing on; written as SSE
        // would carry it.
        Outbound::Typing(typing) => (
            Event::default().event("typing").data(typing.frame.as_str()),
            None,
        ),
        Outbound::Close(reason) => (
            // `retry` tells the browser to reconnect (with Last-Event-ID)
            // after a second.
            Event::default()
                .event("close")
                .retry(Duration::from_secs(1))
                .data(format!("{{\"reason\":\"{}\"}}", reason.as_str())),
            Some(reason),
        ),
    }
}

impl Stream for Body {
    type Item = Result<Event, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Polled again: the previous event was taken by the connection.
        self.writing = false;
        match self.events.as_mut().poll_next(cx) {
            Poll::Ready(Some((event, close))) => {
                if let Some(reason) = close {
                    self.guard.close(reason);
                }
                self.writing = true;
                Poll::Ready(Some(Ok(event)))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        // Dropped while an event waited to be written: the connection ended
        // because the client stopped reading (the write timed out).
        if self.writing && self.guard.reason == CloseReason::ClientClosed {
            self.guard.close(CloseReason::Lagging);
        }
    }
}
