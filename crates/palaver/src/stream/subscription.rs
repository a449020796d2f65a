//! One subscriber's view of a room: replay from a seq, then live, with no
//! gap and no duplicate.
//!
//! The subscription joins the room's broadcast *before* it reads the table,
//! so a message is either in the replay or arrives live (or both: duplicates
//! are dropped by seq). A live message that skips ahead of the last one sent,
//! or a `Resync` from the bus, sends the subscription back to the table.

use std::collections::VecDeque;
use std::sync::Arc;

use tokio::sync::broadcast::error::RecvError;

use super::CloseReason;
use crate::bus::{Event, Hub, RoomReceiver};
use crate::domain::{RoomEvent, RoomName};
use crate::store::{MessageStore, StoreError};

/// Events read per replay query.
const REPLAY_PAGE: i64 = 200;

/// What a stream sends next.
#[derive(Debug, Clone, PartialEq)]
pub enum Outbound {
    /// A room event (a message as its reader sees it, or a change).
    Event(Arc<RoomEvent>),
    /// The replay is done; `seq` is the last event sent so far.
    CaughtUp(i64),
    /// The stream ends, for this reason; the client resumes with `since`.
    Close(CloseReason),
    /// Someone else types in the room (only with [`Subscription::with_signals`]).
    Typing(Arc<crate::presence::Typing>),
}

pub struct Subscription {
    room: RoomName,
    store: Arc<dyn MessageStore>,
    live: RoomReceiver,
    last_sent: i64,
    backlog: VecDeque<Arc<RoomEvent>>,
    /// The subscriber: replayed messages carry `me` on their reactions.
    viewer: Option<String>,
    replaying: bool,
    /// Whether typing signals are passed on (the multiplexed stream).
    signals: bool,
    caught_up_pending: bool,
    caught_up_sent: bool,
    /// Fires when the subscriber loses access (removed, suspended, signed
    /// out): the stream then closes with that reason.
    revoked: Option<tokio::sync::oneshot::Receiver<CloseReason>>,
}

impl Subscription {
    /// Starts after `since`, or after the newest message when `since` is `None`.
    pub async fn start(
        hub: &Arc<Hub>,
        store: Arc<dyn MessageStore>,
        room: RoomName,
        since: Option<i64>,
    ) -> Result<Self, StoreError> {
        let live = hub.subscribe(&room);
        let last_sent = match since {
            Some(seq) => seq,
            None => store.last_seq(&room).await?,
        };
        Ok(Self {
            room,
            store,
            live,
            last_sent,
            backlog: VecDeque::new(),
            viewer: None,
            replaying: true,
            signals: false,
            caught_up_pending: false,
            caught_up_sent: false,
            revoked: None,
        })
    }

    /// Frames replayed messages as `user` sees them.
    pub fn seen_by(mut self, user: &str) -> Self {
        self.viewer = Some(user.to_owned());
        self
    }

    /// Passes on typing signals of others than the viewer.
    pub fn with_signals(mut self) -> Self {
        self.signals = true;
        self
    }

    /// The room this subscription follows.
    pub fn room(&self) -> &RoomName {
        &self.room
    }

    /// Closes the stream with the reason `revoked` delivers.
    pub fn revoke_on(mut self, revoked: tokio::sync::oneshot::Receiver<CloseReason>) -> Self {
        self.revoked = Some(revoked);
        self
    }

    /// The next thing to send. Cancel-safe: dropping the future loses nothing.
    pub async fn next(&mut self) -> Outbound {
        let Some(mut revoked) = self.revoked.take() else {
            return self.next_unrevoked().await;
        };
        tokio::select! {
            biased;
            reason = &mut revoked => match reason {
                Ok(reason) => Outbound::Close(reason),
                // Nobody watches any more: carry on unwatched.
                Err(_) => self.next_unrevoked().await,
            },
            next = self.next_unrevoked() => {
                self.revoked = Some(revoked);
                next
            }
        }
    }

    async fn next_unrevoked(&mut self) -> Outbound {
        loop {
            if let Some(event) = self.backlog.pop_front() {
                self.last_sent = event.seq();
                return Outbound::Event(event);
            }
            if self.caught_up_pending {
                self.caught_up_pending = false;
                self.caught_up_sent = true;
                return Outbound::CaughtUp(self.last_sent);
            }
            if self.replaying {
                let first = self.last_sent + 1;
                let events = self
                    .store
                    .range(&self.room, first, first + REPLAY_PAGE - 1)
                    .await;
                match events {
                    Ok(events) => {
                        // Seqs are gapless: a short window reached the head.
                        let has_more = events.len() as i64 == REPLAY_PAGE;
                        let viewer = self.viewer.as_deref();
                        self.backlog.extend(events.into_iter().map(|e| match e {
                            RoomEvent::Message(m) => {
                                Arc::new(RoomEvent::Message(m.seen_by(viewer)))
                            }
                            change => Arc::new(change),
                        }));
                        if !has_more {
                            self.replaying = false;
                            self.caught_up_pending = !self.caught_up_sent;
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, room = %self.room, "stream: replay failed");
                        return Outbound::Close(CloseReason::Unavailable);
                    }
                }
                continue;
            }
            match self.live.recv().await {
                Ok(Event::Room(event)) => {
                    if event.seq() <= self.last_sent {
                        continue; // already sent by the replay
                    }
                    if event.seq() == self.last_sent + 1 {
                        self.last_sent = event.seq();
                        return Outbound::Event(event);
                    }
                    // A gap: something was missed; read it from the table.
                    self.replaying = true;
                }
                Ok(Event::Resync) => self.replaying = true,
                Ok(Event::Typing(typing)) => {
                    if self.signals && self.viewer.as_deref() != Some(typing.user_id.as_str()) {
                        return Outbound::Typing(typing);
                    }
                }
                Err(RecvError::Lagged(_)) => return Outbound::Close(CloseReason::Lagging),
                Err(RecvError::Closed) => return Outbound::Close(CloseReason::ShuttingDown),
            }
        }
    }
}
