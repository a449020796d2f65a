//! Fan-out: how a committed message reaches every stream subscriber.
//!
//! Each process keeps a [`Hub`]: one bounded broadcast channel per room that
//! has local subscribers. A [`Bus`] feeds the hub:
//! - [`LocalBus`] (SQLite, one process) publishes straight after commit;
//! - [`postgres`] (`LISTEN/NOTIFY`): the writing transaction notifies, and a
//!   listener in every gateway reads the new rows once per notification. When
//!   the listening connection drops, the listener reconnects and tells every
//!   room to resynchronise from the table, so no subscriber misses a message.
//!
//! - [`redis`] (Redis/Valkey pub/sub, `--bus redis://…`): the writer
//!   publishes the committed messages themselves, gateways subscribe to the
//!   rooms they serve (and those their read cache holds) and deliver without
//!   a database read, and repair from the table what the broker missed.

pub mod postgres;
pub mod redis;

pub use postgres::NotifyBus;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use crate::domain::{RoomEvent, RoomName};
use crate::telemetry::metrics as m;

/// What a room's channel carries.
#[derive(Debug, Clone)]
pub enum Event {
    /// A committed room event (a message or a change to one), in seq order.
    Room(Arc<RoomEvent>),
    /// Messages may have been missed (the bus reconnected): subscribers read
    /// the table from their last seq.
    Resync,
    /// Someone types in the room (DESIGN §5e): no seq, for the multiplexed
    /// streams only.
    Typing(Arc<crate::presence::Typing>),
}

/// Local subscribers, per room.
///
/// The map is keyed by a name the client chooses, so it holds only rooms
/// that have a subscriber right now: the last [`RoomReceiver`] of a room
/// removes the room's channel when it drops. Its size is therefore at most
/// the number of open streams (itself capped by the effective stream cap),
/// and each entry costs one broadcast channel of `capacity` slots; opening
/// and closing streams on ever new room names leaves nothing behind.
pub struct Hub {
    rooms: Mutex<HashMap<RoomName, broadcast::Sender<Event>>>,
    capacity: usize,
    /// Woken when a room gains its first local subscriber or loses its last,
    /// so a broker bus subscribes or unsubscribes at once.
    changed: tokio::sync::Notify,
}

impl Hub {
    /// `capacity` is how many events a subscriber may fall behind before it
    /// sees `Lagged` and is disconnected.
    pub fn new(capacity: usize) -> Self {
        Self {
            rooms: Mutex::new(HashMap::new()),
            capacity,
            changed: tokio::sync::Notify::new(),
        }
    }

    /// Joins `room`'s channel, creating it for the first subscriber.
    pub fn subscribe(self: &Arc<Self>, room: &RoomName) -> RoomReceiver {
        let mut rooms = self.lock();
        let rx = match rooms.get(room) {
            Some(tx) => tx.subscribe(),
            None => {
                let (tx, rx) = broadcast::channel(self.capacity);
                rooms.insert(room.clone(), tx);
                self.changed.notify_one();
                rx
            }
        };
        RoomReceiver {
            rx: Some(rx),
            hub: self.clone(),
            room: room.clone(),
        }
    }

    /// Whether anyone in this process listens to `room`.
    pub fn has_subscribers(&self, room: &RoomName) -> bool {
        self.lock()
            .get(room)
            .is_some_and(|tx| tx.receiver_count() > 0)
    }

    /// Rooms with a local subscriber (the size of the map).
    pub fn rooms(&self) -> usize {
        self.lock().len()
    }

    /// The rooms with a local subscriber now.
    pub fn active_rooms(&self) -> Vec<RoomName> {
        self.lock()
            .iter()
            .filter(|(_, tx)| tx.receiver_count() > 0)
            .map(|(room, _)| room.clone())
            .collect()
    }

    /// Completes once a room has gained its first subscriber or lost its
    /// last since the previous call (one waiter: the broker bus).
    pub async fn rooms_changed(&self) {
        self.changed.notified().await
    }

    pub fn publish<'a>(
        &self,
        room: &RoomName,
        events: impl IntoIterator<Item = &'a Arc<RoomEvent>>,
    ) {
        self.send(room, events.into_iter().map(|e| Event::Room(e.clone())));
    }

    /// Tells every room's subscribers to read the table from their last seq;
    /// returns how many rooms were told.
    pub fn resync_all(&self) -> usize {
        let rooms: Vec<RoomName> = self.lock().keys().cloned().collect();
        for room in &rooms {
            self.send(room, std::iter::once(Event::Resync));
        }
        rooms.len()
    }

    /// Hands a typing signal to the room's local subscribers, if any.
    pub fn signal(&self, room: &RoomName, typing: Arc<crate::presence::Typing>) {
        self.send(room, std::iter::once(Event::Typing(typing)));
    }

    pub fn resync(&self, room: &RoomName) {
        self.send(room, std::iter::once(Event::Resync));
    }

    fn send(&self, room: &RoomName, events: impl Iterator<Item = Event>) {
        let mut rooms = self.lock();
        let Some(tx) = rooms.get(room) else { return };
        for event in events {
            if tx.send(event).is_err() {
                // Nobody listens any more: forget the room.
                rooms.remove(room);
                self.changed.notify_one();
                return;
            }
        }
    }

    /// Called by a dropping receiver: frees the room's channel when that was
    /// its last subscriber, and gives back the map's memory after a burst.
    fn leave(&self, room: &RoomName, rx: broadcast::Receiver<Event>) {
        let mut rooms = self.lock();
        // Dropped under the lock, so a concurrent `subscribe` either joined
        // before (the count stays above 0) or creates a fresh channel after.
        drop(rx);
        if rooms.get(room).is_some_and(|tx| tx.receiver_count() == 0) {
            rooms.remove(room);
            self.changed.notify_one();
            if rooms.capacity() > 1024 && rooms.capacity() > 4 * rooms.len() {
                let keep = rooms.len() * 2;
                rooms.shrink_to(keep);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RoomName, broadcast::Sender<Event>>> {
        // A std mutex: it is held for a map lookup and a few non-blocking
        // sends, never across an await. Poisoning cannot leave the map
        // inconsistent, so recover from it.
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One subscriber's end of a room's channel; the room's channel is freed
/// when the last one drops.
pub struct RoomReceiver {
    rx: Option<broadcast::Receiver<Event>>,
    hub: Arc<Hub>,
    room: RoomName,
}

impl RoomReceiver {
    /// The next event; `Lagged` when this subscriber fell `capacity` behind.
    pub async fn recv(&mut self) -> Result<Event, broadcast::error::RecvError> {
        match &mut self.rx {
            Some(rx) => rx.recv().await,
            None => Err(broadcast::error::RecvError::Closed),
        }
    }

    pub fn try_recv(&mut self) -> Result<Event, broadcast::error::TryRecvError> {
        match &mut self.rx {
            Some(rx) => rx.try_recv(),
            None => Err(broadcast::error::TryRecvError::Closed),
        }
    }
}

impl Drop for RoomReceiver {
    fn drop(&mut self) {
        if let Some(rx) = self.rx.take() {
            self.hub.leave(&self.room, rx);
        }
    }
}

/// A notification the storing statement itself sends: `pg_notify(channel,
/// payload)` for each row of `payloads`, a SQL `SELECT` over the relation
/// `announced(room text, first bigint, last bigint)` (the seqs the batch
/// created, a row per room) with one text column `payload`. The bus says
/// what the payload is; the store runs it without knowing.
#[derive(Debug, Clone, Copy)]
pub struct InStatementNotify {
    pub channel: &'static str,
    pub payloads: &'static str,
}

/// Sets `palaver_bus_up`: whether this process's bus can deliver now.
pub fn report_up(up: bool) {
    metrics::gauge!(m::BUS_UP).set(if up { 1.0 } else { 0.0 });
}

/// Feeds committed messages to the hubs of every process.
///
/// The write path calls it around each commit: [`Bus::notify_in_transaction`]
/// while the batch is being stored, [`Bus::committed`] once it is durable. A
/// broker bus publishes the committed messages themselves in `committed`; the
/// PostgreSQL bus notifies inside the transaction instead.
pub trait Bus: Send + Sync + 'static {
    /// The `NOTIFY` that must ride in the statement that stores a batch, for
    /// a bus built on the database's own notifications.
    fn notify_in_transaction(&self) -> Option<InStatementNotify> {
        None
    }
    /// Called by the write path after a batch commits, with the events it
    /// created: possibly of several rooms, each room's in seq order.
    fn committed(&self, events: &[Arc<RoomEvent>]);
    /// Whether the bus can currently deliver (for `/readyz`).
    fn is_ready(&self) -> bool;
}

/// Where a bus that announces rows (rather than carrying them) reads them:
/// the store, as the write path wires it. A trait here so that the bus does
/// not depend on the store.
#[async_trait::async_trait]
pub trait History: Send + Sync + 'static {
    /// Events of `room` with `first <= seq <= last`, oldest first.
    async fn range(
        &self,
        room: &RoomName,
        first: i64,
        last: i64,
    ) -> Result<Vec<RoomEvent>, Box<dyn std::error::Error + Send + Sync>>;

    /// The newest seq of each of `rooms` that exists (one query on
    /// PostgreSQL): how a broker bus finds what its publishes missed.
    async fn heads(
        &self,
        rooms: &[RoomName],
    ) -> Result<HashMap<RoomName, i64>, Box<dyn std::error::Error + Send + Sync>>;
}

/// What, besides the hub, wants the messages a bus brings from other
/// processes: the read cache, as the write path wires it.
pub trait Observer: Send + Sync + 'static {
    /// Whether the rows of `room` up to `last` are wanted; if not, only
    /// [`Observer::announced`] hears of them.
    fn wants(&self, room: &RoomName, last: i64) -> bool;
    /// Rows of `room` were committed elsewhere and not read for the observer.
    fn announced(&self, room: &RoomName);
    /// Committed events, ordered by room, then seq.
    fn committed(&self, events: &[Arc<RoomEvent>]);
    /// `room` changed in a way this process did not see.
    fn forget(&self, room: &RoomName);
    /// Anything may have changed (the bus reconnected).
    fn forget_all(&self);

    /// For a bus that hears only the rooms it subscribes to: the rooms the
    /// observer holds, each with whether it waits for
    /// [`Observer::subscribed`]. The bus subscribes to them besides the
    /// rooms with local subscribers.
    fn held(&self) -> Vec<(RoomName, bool)> {
        Vec::new()
    }
    /// Completes once [`Observer::held`] gained or lost a room.
    fn held_changed(&self) -> futures::future::BoxFuture<'_, ()> {
        Box::pin(std::future::pending())
    }
    /// `room`'s subscription is confirmed, and `head` is its newest seq read
    /// after that: what the observer holds of it up to `head` is current.
    fn subscribed(&self, _room: &RoomName, _head: i64) {}
}

/// In-process fan-out for a single process (SQLite).
pub struct LocalBus {
    hub: Arc<Hub>,
}

impl LocalBus {
    pub fn new(hub: Arc<Hub>) -> Self {
        report_up(true);
        Self { hub }
    }
}

impl Bus for LocalBus {
    fn committed(&self, events: &[Arc<RoomEvent>]) {
        for room in events.chunk_by(|a, b| a.room() == b.room()) {
            self.hub.publish(room[0].room(), room);
        }
    }

    fn is_ready(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::now_millis;

    fn message(room: &RoomName, seq: i64) -> Arc<RoomEvent> {
        Arc::new(RoomEvent::Message(Arc::new(crate::domain::Message {
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
        })))
    }

    #[tokio::test]
    async fn a_room_reaches_only_its_own_subscribers() {
        let hub = Arc::new(Hub::new(16));
        let a = RoomName::parse("a").unwrap();
        let b = RoomName::parse("b").unwrap();
        let mut rx_a = hub.subscribe(&a);
        let mut rx_b = hub.subscribe(&b);
        hub.publish(&a, &[message(&a, 1)]);
        assert!(matches!(rx_a.recv().await, Ok(Event::Room(m)) if m.seq() == 1));
        assert!(rx_b.try_recv().is_err());
    }

    #[test]
    fn a_room_is_freed_when_its_last_subscriber_leaves() {
        let hub = Arc::new(Hub::new(16));
        let a = RoomName::parse("a").unwrap();
        let first = hub.subscribe(&a);
        let mut second = hub.subscribe(&a);
        drop(first);
        assert_eq!(hub.rooms(), 1, "one subscriber is left");
        hub.publish(&a, &[message(&a, 1)]);
        assert!(matches!(second.try_recv(), Ok(Event::Room(m)) if m.seq() == 1));
        drop(second);
        assert_eq!(hub.rooms(), 0);
        assert!(!hub.has_subscribers(&a));
        // A room joined again after that starts a fresh channel.
        let mut again = hub.subscribe(&a);
        hub.publish(&a, &[message(&a, 2)]);
        assert!(matches!(again.try_recv(), Ok(Event::Room(m)) if m.seq() == 2));
    }

    /// The bound of the map: rooms with a subscriber now, whatever names
    /// were ever streamed; its memory is given back after a burst.
    #[test]
    fn streaming_many_room_names_leaves_nothing_behind() {
        let hub = Arc::new(Hub::new(1024));
        let names: Vec<RoomName> = (0..5000)
            .map(|i| RoomName::parse(&format!("room-{i}")).unwrap())
            .collect();
        let receivers: Vec<_> = names.iter().map(|n| hub.subscribe(n)).collect();
        assert_eq!(hub.rooms(), 5000);
        drop(receivers);
        assert_eq!(hub.rooms(), 0);
        assert!(hub.lock().capacity() <= 1024, "the map shrank back");
        for name in &names {
            drop(hub.subscribe(name));
        }
        assert_eq!(hub.rooms(), 0);
    }

    #[test]
    fn a_subscriber_that_falls_behind_the_capacity_sees_lagged() {
        let hub = Arc::new(Hub::new(16));
        let a = RoomName::parse("a").unwrap();
        let mut rx = hub.subscribe(&a);
        let messages: Vec<_> = (1..=20).map(|seq| message(&a, seq)).collect();
        hub.publish(&a, &messages);
        assert!(matches!(
            rx.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(_))
        ));
    }
}
