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
use crate::domain::{Message, RoomName};
use crate::store::{Cursor, MessageStore, StoreError};

/// Rows read per replay query.
const REPLAY_PAGE: u32 = 200;

/// What a stream sends next.
#[derive(Debug, Clone, PartialEq)]
pub enum Outbound {
    Message(Arc<Message>),
    /// The replay is done; `seq` is the last message sent so far.
    CaughtUp(i64),
    /// The stream ends, for this reason; the client resumes with `since`.
    Close(CloseReason),
}

pub struct Subscription {
    room: RoomName,
    store: Arc<dyn MessageStore>,
    live: RoomReceiver,
    last_sent: i64,
    backlog: VecDeque<Arc<Message>>,
    replaying: bool,
    caught_up_pending: bool,
    caught_up_sent: bool,
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
            replaying: true,
            caught_up_pending: false,
            caught_up_sent: false,
        })
    }

    /// The next thing to send. Cancel-safe: dropping the future loses nothing.
    pub async fn next(&mut self) -> Outbound {
        loop {
            if let Some(message) = self.backlog.pop_front() {
                self.last_sent = message.seq;
                return Outbound::Message(message);
            }
            if self.caught_up_pending {
                self.caught_up_pending = false;
                self.caught_up_sent = true;
                return Outbound::CaughtUp(self.last_sent);
            }
            if self.replaying {
                let page = self
                    .store
                    .page(&self.room, Cursor::After(self.last_sent), REPLAY_PAGE)
                    .await;
                match page {
                    Ok(page) => {
                        let (messages, has_more) =
                            page.map(|p| (p.messages, p.has_more)).unwrap_or_default();
                        self.backlog.extend(messages.into_iter().map(Arc::new));
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
                Ok(Event::Message(message)) => {
                    if message.seq <= self.last_sent {
                        continue; // already sent by the replay
                    }
                    if message.seq == self.last_sent + 1 {
                        self.last_sent = message.seq;
                        return Outbound::Message(message);
                    }
                    // A gap: something was missed; read it from the table.
                    self.replaying = true;
                }
                Ok(Event::Resync) => self.replaying = true,
                Err(RecvError::Lagged(_)) => return Outbound::Close(CloseReason::Lagging),
                Err(RecvError::Closed) => return Outbound::Close(CloseReason::ShuttingDown),
            }
        }
    }
}
