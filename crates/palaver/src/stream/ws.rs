//! The WebSocket transport: JSON text frames out, pings as heartbeats that
//! must be answered, a close frame whose reason says why the stream ended.
//!
//! [`pump`] is generic over `Sink`/`Stream` so it is tested without a socket.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes};
use futures::{Sink, SinkExt, Stream, StreamExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::subscription::{Outbound, Subscription};
use super::{record_delivery, CloseReason, Frame};

/// Timing of one connection.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Between pings.
    pub heartbeat: Duration,
    /// Longest a frame write may block before the subscriber counts as
    /// lagging.
    pub write_timeout: Duration,
    /// Longest the client may take to answer a ping (any frame from it
    /// counts) before the stream closes with `timeout`.
    pub pong_timeout: Duration,
}

/// Runs one WebSocket stream until the client leaves, the subscription ends,
/// the client stops answering pings or `shutdown` fires. The reader half
/// notes every frame the client sends (pongs above all; tungstenite answers
/// the client's pings itself) and watches for its close; the writer half
/// sends the subscription and the pings, and closes the stream when a ping
/// goes unanswered for `pong_timeout`. Returns why the stream ended.
pub async fn pump<S, R, E>(
    mut sink: S,
    mut incoming: R,
    mut subscription: Subscription,
    timing: Timing,
    shutdown: CancellationToken,
) -> CloseReason
where
    S: Sink<WsMessage> + Unpin,
    R: Stream<Item = Result<WsMessage, E>> + Unpin,
{
    // Frames heard from the client; the writer compares it with the count
    // at its last ping.
    let heard = AtomicU64::new(0);
    let reader = async {
        while let Some(Ok(message)) = incoming.next().await {
            if matches!(message, WsMessage::Close(_)) {
                break;
            }
            heard.fetch_add(1, Ordering::Relaxed);
        }
    };

    let writer = async {
        let mut heartbeat = tokio::time::interval(timing.heartbeat);
        heartbeat.tick().await; // the first tick is immediate
                                // When the oldest unanswered ping expires, and what had been heard
                                // when it was sent.
        let mut awaiting: Option<(Instant, u64)> = None;
        loop {
            let pong_deadline = async {
                match awaiting {
                    Some((deadline, _)) => tokio::time::sleep_until(deadline).await,
                    None => std::future::pending().await,
                }
            };
            let frame = tokio::select! {
                _ = shutdown.cancelled() => Outbound::Close(CloseReason::ShuttingDown),
                _ = pong_deadline => {
                    let heard_then = awaiting.map_or(0, |(_, n)| n);
                    if heard.load(Ordering::Relaxed) == heard_then {
                        Outbound::Close(CloseReason::Timeout)
                    } else {
                        awaiting = None;
                        continue;
                    }
                }
                _ = heartbeat.tick() => {
                    if let Some((_, heard_then)) = awaiting {
                        if heard.load(Ordering::Relaxed) != heard_then {
                            awaiting = None;
                        }
                    }
                    if awaiting.is_none() {
                        awaiting = Some((Instant::now() + timing.pong_timeout, heard.load(Ordering::Relaxed)));
                    }
                    match send(&mut sink, WsMessage::Ping(Default::default()), timing).await {
                        Ok(()) => continue,
                        Err(SendError::TimedOut) => Outbound::Close(CloseReason::Lagging),
                        Err(SendError::Failed) => return CloseReason::WriteFailed,
                    }
                }
                next = subscription.next() => next,
            };
            let text = match &frame {
                Outbound::Event(event) => Frame::event(event),
                Outbound::CaughtUp(seq) => Frame::CaughtUp {
                    room: None,
                    seq: *seq,
                }
                .to_text(),
                Outbound::Typing(typing) => typing.frame.clone(),
                Outbound::Close(reason) => {
                    let close = WsMessage::Close(Some(CloseFrame {
                        code: reason.ws_code(),
                        reason: Utf8Bytes::from_static(reason.as_str()),
                    }));
                    // The peer may not be reading (lagging, timeout): try
                    // briefly, then drop the connection anyway.
                    let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(close)).await;
                    return *reason;
                }
            };
            match send(&mut sink, WsMessage::Text(text), timing).await {
                Ok(()) => {
                    if let Outbound::Event(event) = &frame {
                        record_delivery(event);
                    }
                }
                Err(SendError::TimedOut) => {
                    // The client stopped reading: its socket buffer is full.
                    let close = WsMessage::Close(Some(CloseFrame {
                        code: CloseReason::Lagging.ws_code(),
                        reason: Utf8Bytes::from_static(CloseReason::Lagging.as_str()),
                    }));
                    let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(close)).await;
                    return CloseReason::Lagging;
                }
                Err(SendError::Failed) => return CloseReason::WriteFailed,
            }
        }
    };

    tokio::select! {
        _ = reader => CloseReason::ClientClosed,
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
                reply_to: None,
                mentions: Vec::new(),
                files: Vec::new(),
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
        pong_timeout: Duration::from_secs(10),
    };

    #[tokio::test]
    async fn pump_replays_then_says_caught_up_then_goes_live() {
        let room = RoomName::parse("r").unwrap();
        let store = store_with(&room, 3).await;
        let hub = Arc::new(Hub::new(16));
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
                    reply_to: None,
                    mentions: Vec::new(),
                    files: Vec::new(),
                }],
                now_millis(),
            )
            .await
            .unwrap();
        let live: Vec<_> = live
            .into_iter()
            .map(|a| Arc::new(crate::domain::RoomEvent::Message(a.message)))
            .collect();
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
        assert_eq!(task.await.unwrap(), CloseReason::ShuttingDown);
    }

    #[tokio::test]
    async fn pump_closes_a_lagging_subscriber_with_the_reason() {
        let room = RoomName::parse("r").unwrap();
        let store = store_with(&room, 0).await;
        let hub = Arc::new(Hub::new(4));
        let subscription = Subscription::start(&hub, store, room.clone(), None)
            .await
            .unwrap();
        let (sink, mut out) = mpsc::channel::<WsMessage>(64);
        let incoming = futures::stream::pending::<Result<WsMessage, ()>>();
        // More than the hub holds, before the pump reads any of it.
        let messages: Vec<_> = (1..=10)
            .map(|seq| {
                Arc::new(crate::domain::RoomEvent::Message(Arc::new(
                    crate::domain::Message {
                        room: room.clone(),
                        seq,
                        author: "a".into(),
                        author_id: None,
                        text: "t".into(),
                        sent_at: now_millis(),
                        client_id: None,
                        client_ip: "127.0.0.1".into(),
                        edited_at: None,
                        deleted: false,
                        reply_to: None,
                        reactions: Vec::new(),
                        mentions: Vec::new(),
                        files: Vec::new(),
                        as_of: seq,
                        frame: Default::default(),
                    },
                )))
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
        assert_eq!(reason, CloseReason::Lagging);
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
        let hub = Arc::new(Hub::new(16));
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
        assert_eq!(task.await.unwrap(), CloseReason::ClientClosed);
    }

    async fn live_pump(
        incoming: mpsc::UnboundedReceiver<Result<WsMessage, ()>>,
    ) -> (
        mpsc::Receiver<WsMessage>,
        tokio::task::JoinHandle<CloseReason>,
    ) {
        let room = RoomName::parse("r").unwrap();
        let store = store_with(&room, 0).await;
        let hub = Arc::new(Hub::new(16));
        let subscription = Subscription::start(&hub, store, room, None).await.unwrap();
        let (sink, mut out) = mpsc::channel::<WsMessage>(16);
        let task = tokio::spawn(pump(
            sink,
            incoming,
            subscription,
            TIMING,
            CancellationToken::new(),
        ));
        assert_eq!(text(out.next().await.unwrap())["type"], "caught_up");
        (out, task)
    }

    #[tokio::test]
    async fn a_ping_unanswered_within_the_deadline_closes_the_stream_with_timeout() {
        // The client's end stays open but it never sends a frame.
        let (_client, incoming) = mpsc::unbounded::<Result<WsMessage, ()>>();
        let (mut out, task) = live_pump(incoming).await;
        tokio::time::pause();
        tokio::time::advance(TIMING.heartbeat).await;
        assert!(matches!(out.next().await.unwrap(), WsMessage::Ping(_)));
        tokio::time::advance(TIMING.pong_timeout - Duration::from_millis(10)).await;
        tokio::task::yield_now().await;
        assert!(!task.is_finished(), "still within the deadline");
        tokio::time::advance(Duration::from_millis(20)).await;
        match out.next().await.unwrap() {
            WsMessage::Close(Some(frame)) => {
                assert_eq!(frame.reason.as_str(), "timeout");
                assert_eq!(frame.code, 1013);
            }
            other => panic!("expected a close frame, got {other:?}"),
        }
        assert_eq!(task.await.unwrap(), CloseReason::Timeout);
    }

    #[tokio::test]
    async fn a_client_that_answers_pings_stays_connected() {
        let (client, incoming) = mpsc::unbounded::<Result<WsMessage, ()>>();
        let (mut out, task) = live_pump(incoming).await;
        tokio::time::pause();
        let past_deadline = TIMING.pong_timeout + Duration::from_secs(1);
        tokio::time::advance(TIMING.heartbeat).await;
        for _ in 0..5 {
            assert!(matches!(out.next().await.unwrap(), WsMessage::Ping(_)));
            client
                .unbounded_send(Ok(WsMessage::Pong(Default::default())))
                .unwrap();
            tokio::task::yield_now().await;
            tokio::time::advance(past_deadline).await;
            tokio::task::yield_now().await;
            assert!(!task.is_finished(), "answered pings keep the stream open");
            // On to the next heartbeat.
            tokio::time::advance(TIMING.heartbeat - past_deadline).await;
        }
        client.unbounded_send(Ok(WsMessage::Close(None))).unwrap();
        assert_eq!(task.await.unwrap(), CloseReason::ClientClosed);
    }

    /// A sink whose writes never complete, as a socket whose peer stopped
    /// reading; it says when the first write was attempted.
    struct Stuck(Arc<tokio::sync::Notify>);

    impl futures::Sink<WsMessage> for Stuck {
        type Error = ();
        fn poll_ready(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), ()>> {
            self.0.notify_one();
            std::task::Poll::Pending
        }
        fn start_send(self: std::pin::Pin<&mut Self>, _: WsMessage) -> Result<(), ()> {
            Ok(())
        }
        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), ()>> {
            std::task::Poll::Pending
        }
        fn poll_close(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Result<(), ()>> {
            std::task::Poll::Pending
        }
    }

    #[tokio::test]
    async fn a_write_blocked_past_the_write_timeout_closes_the_stream_as_lagging() {
        let room = RoomName::parse("r").unwrap();
        let store = store_with(&room, 0).await;
        let hub = Arc::new(Hub::new(16));
        let subscription = Subscription::start(&hub, store, room, None).await.unwrap();
        let attempted = Arc::new(tokio::sync::Notify::new());
        let incoming = futures::stream::pending::<Result<WsMessage, ()>>();
        let task = tokio::spawn(pump(
            Stuck(attempted.clone()),
            incoming,
            subscription,
            TIMING,
            CancellationToken::new(),
        ));
        // The replay is done and `caught_up` is being written.
        attempted.notified().await;
        tokio::time::pause();
        tokio::time::advance(TIMING.write_timeout - Duration::from_millis(10)).await;
        tokio::task::yield_now().await;
        assert!(!task.is_finished(), "still within the write timeout");
        // Past it; the close frame then gets a second of its own.
        tokio::time::advance(Duration::from_millis(20)).await;
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(task.await.unwrap(), CloseReason::Lagging);
    }
}
