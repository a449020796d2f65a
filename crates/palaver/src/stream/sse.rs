//! The Server-Sent-Events transport: `id: <seq>`, `event: message`,
//! `data: <message JSON>`; comment lines as heartbeats. Browsers reconnect by
//! themselves and send `Last-Event-ID`, which resumes the stream.

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use tokio_util::sync::CancellationToken;

use super::subscription::{Outbound, Subscription};
use super::{record_delivery, StreamGuard};

/// Turns a subscription into an SSE response body. The stream ends with an
/// `event: close` naming the reason (lagging, shutting_down, unavailable).
pub fn respond(
    subscription: Subscription,
    guard: StreamGuard,
    heartbeat: Duration,
    shutdown: CancellationToken,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    struct State {
        subscription: Subscription,
        guard: StreamGuard,
        shutdown: CancellationToken,
        done: bool,
    }
    let state = State {
        subscription,
        guard,
        shutdown,
        done: false,
    };
    let events = futures::stream::unfold(state, |mut state| async move {
        if state.done {
            return None;
        }
        let next = tokio::select! {
            _ = state.shutdown.cancelled() => Outbound::Close(super::CloseReason::ShuttingDown),
            next = state.subscription.next() => next,
        };
        let event = match next {
            Outbound::Message(message) => {
                record_delivery(&message);
                Event::default()
                    .id(message.seq.to_string())
                    .event("message")
                    .json_data(&*message)
                    .unwrap_or_default()
            }
            Outbound::CaughtUp(seq) => Event::default()
                .event("caught_up")
                .data(format!("{{\"seq\":{seq}}}")),
            Outbound::Close(reason) => {
                state.done = true;
                state.guard.close(reason.as_str());
                // `retry` tells the browser to reconnect (with
                // Last-Event-ID) after a second.
                Event::default()
                    .event("close")
                    .retry(Duration::from_secs(1))
                    .data(format!("{{\"reason\":\"{}\"}}", reason.as_str()))
            }
        };
        Some((Ok(event), state))
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(heartbeat))
}
