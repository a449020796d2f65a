//! The WebSocket transport: JSON text frames out, pings as heartbeats, a
//! close frame whose reason says why the stream ended.
//!
//! [`pump`] is generic over `Sink`/`Stream` so it is tested without a socket.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes};
use bytes::Bytes;
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
                Outbound::Message(message) => message_frame(message),
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

/// A message's frame, serialised once however many subscribers it reaches.
fn message_frame(message: &Message) -> Utf8Bytes {
    let bytes = message
        .frame
        .get_or_init(|| Bytes::from(to_text(&Frame::Message { message })));
    // The cache only ever holds the UTF-8 JSON encoded just above.
    Utf8Bytes::try_from(bytes).unwrap_or_else(|_| to_text(&Frame::Message { message }))
}

fn to_text(frame: &Frame<'_>) -> Utf8Bytes {
    // Serialising our own plain structs cannot fail.
    serde_json::to_string(frame).unwrap_or_default().into()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures::channel::mpsc;
    use futures::StreamExt;

    use super::*;
    use crate::bus::Hub;
    use crate::config::Config;
    use crate::domain::{now_millis, Author, MessageText, NewMessage, RoomName};
    use crate::store::{MessageStore, SqliteStore};

    async fn store_with(room: &RoomName, count: usize) -> Arc<dyn MessageStore> {
        let config = Config::from_args(["palaver"]).unwrap();
        let url = "sqlite::memory:".parse().unwrap();
        let store = SqliteStore::connect(&url, &config).await.unwrap();
        let batch: Vec<_> = (0..count)
            .map(|i| NewMessage {
                author: Author::parse("ada").unwrap(),
                author_id: None,
                text: MessageText::parse(&format!("m{i}"), 4000).unwrap(),
                client_id: None,
                client_ip: "127.0.0.1".into(),
            })
            .collect();
        if !batch.is_empty() {
            store.append(room, &batch, now_millis()).await.unwrap();
        }
        Arc::new(store)
    }

    fn text(message: WsMessage) -> serde_json::Value {
        match message {
            WsMessage::Text(t) => serde_json::from_str(&t).unwrap(),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    const TIMING: Timing = Timing {
        heartbeat: Duration::from_secs(20),
        write_timeout: Duration::from_secs(5),
    };

    #[tokio::test]
    async fn pump_replays_then_says_caught_up_then_goes_live() {
        let room = RoomName::parse("r").unwrap();
        let store = store_with(&room, 3).await;
        let hub = Hub::new(16);
        let subscription = Subscription::start(&hub, store.clone(), room.clone(), Some(1))
            .await
            .unwrap();
        let (sink, mut out) = mpsc::channel::<WsMessage>(16);
        let incoming = futures::stream::pending::<Result<WsMessage, ()>>();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(pump(sink, incoming, subscription, TIMING, shutdown.clone()));

        for seq in [2, 3] {
            let frame = text(out.next().await.unwrap());
            assert_eq!(frame["type"], "message");
            assert_eq!(frame["message"]["seq"], seq);
        }
        assert_eq!(
            text(out.next().await.unwrap()),
            serde_json::json!({"type": "caught_up", "seq": 3})
        );

        let live = store
            .append(
                &room,
                &[NewMessage {
                    author: Author::parse("bob").unwrap(),
                    author_id: None,
                    text: MessageText::parse("live", 4000).unwrap(),
                    client_id: None,
                    client_ip: "127.0.0.1".into(),
                }],
                now_millis(),
            )
            .await
            .unwrap();
        let live: Vec<_> = live.into_iter().map(|a| a.message).collect();
        // Published twice (as after a bus resync): delivered once.
        hub.publish(&room, &live);
        hub.publish(&room, &live);
        let frame = text(out.next().await.unwrap());
        assert_eq!(frame["message"]["seq"], 4);

        shutdown.cancel();
        match out.next().await.unwrap() {
            WsMessage::Close(Some(frame)) => {
                assert_eq!(frame.code, 1001);
                assert_eq!(frame.reason.as_str(), "shutting_down");
            }
            other => panic!("expected a close frame, got {other:?}"),
        }
        assert_eq!(task.await.unwrap(), "shutting_down");
    }

    #[test]
    fn a_message_frame_is_serialised_once_and_shared() {
        let message = crate::domain::Message {
            room: RoomName::parse("r").unwrap(),
            seq: 7,
            author: "a".into(),
            author_id: None,
            text: "t\"quoted\"".into(),
            sent_at: now_millis(),
            client_id: None,
            client_ip: "127.0.0.1".into(),
            frame: Default::default(),
        };
        let first = message_frame(&message);
        let second = message_frame(&message);
        assert_eq!(
            first.as_ptr(),
            second.as_ptr(),
            "the same bytes, not a copy"
        );
        let parsed: serde_json::Value = serde_json::from_str(&first).unwrap();
        assert_eq!(parsed["type"], "message");
        assert_eq!(parsed["message"]["text"], "t\"quoted\"");
        assert_eq!(parsed["message"]["seq"], 7);
    }

    #[tokio::test]
    async fn pump_closes_a_lagging_subscriber_with_the_reason() {
        let room = RoomName::parse("r").unwrap();
        let store = store_with(&room, 0).await;
        let hub = Hub::new(4);
        let subscription = Subscription::start(&hub, store, room.clone(), None)
            .await
            .unwrap();
        let (sink, mut out) = mpsc::channel::<WsMessage>(64);
        let incoming = futures::stream::pending::<Result<WsMessage, ()>>();
        // More than the hub holds, before the pump reads any of it.
        let messages: Vec<_> = (1..=10)
            .map(|seq| {
                Arc::new(crate::domain::Message {
                    room: room.clone(),
                    seq,
                    author: "a".into(),
                    author_id: None,
                    text: "t".into(),
                    sent_at: now_millis(),
                    client_id: None,
                    client_ip: "127.0.0.1".into(),
                    frame: Default::default(),
                })
            })
            .collect();
        hub.publish(&room, &messages);
        let reason = pump(
            sink,
            incoming,
            subscription,
            TIMING,
            CancellationToken::new(),
        )
        .await;
        assert_eq!(reason, "lagging");
        let mut last = None;
        while let Ok(frame) = out.try_recv() {
            last = Some(frame);
        }
        match last {
            Some(WsMessage::Close(Some(frame))) => {
                assert_eq!(frame.code, 1013);
                assert_eq!(frame.reason.as_str(), "lagging");
            }
            other => panic!("expected a close frame last, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn pump_sends_heartbeat_pings_and_stops_when_the_client_closes() {
        let room = RoomName::parse("r").unwrap();
        let store = store_with(&room, 0).await;
        let hub = Hub::new(16);
        let subscription = Subscription::start(&hub, store, room, None).await.unwrap();
        let (sink, mut out) = mpsc::channel::<WsMessage>(16);
        let (client, incoming) = mpsc::unbounded::<Result<WsMessage, ()>>();
        let task = tokio::spawn(pump(
            sink,
            incoming,
            subscription,
            TIMING,
            CancellationToken::new(),
        ));
        assert_eq!(text(out.next().await.unwrap())["type"], "caught_up");

        tokio::time::pause();
        tokio::time::advance(TIMING.heartbeat).await;
        assert!(matches!(out.next().await.unwrap(), WsMessage::Ping(_)));
        tokio::time::resume();

        client.unbounded_send(Ok(WsMessage::Close(None))).unwrap();
        assert_eq!(task.await.unwrap(), "client_closed");
    }
}
