//! The write path: group commit, then publish. It sits above [`crate::store`]
//! and [`crate::bus`], which know nothing of each other or of it.
//!
//! Concurrent sends to one room share a transaction.
//!
//! Each room with pending sends has one writer task. It takes the first send,
//! then whatever else arrives within the batch window (up to the batch size),
//! stores the lot in one transaction and answers each sender. While one batch
//! commits the next queues up, so throughput is not one commit per message.
//! A writer with nothing to do for a while exits; the next send starts a new one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::bus::Bus;
use crate::bus::History;
use crate::domain::{now_millis, Message, NewMessage, RoomName};
use crate::store::{Appended, MessageStore, StoreError};
use crate::telemetry::metrics as m;

/// How many sends may wait for one room's writer before senders wait too.
const QUEUE: usize = 4096;
/// How long an idle room writer lingers before it exits.
const IDLE: Duration = Duration::from_secs(30);

struct Pending {
    message: NewMessage,
    reply: oneshot::Sender<Result<Appended, Arc<StoreError>>>,
}

/// Limits of one batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    pub max_messages: usize,
    pub window: Duration,
}

/// The write path: hands each send to its room's writer task.
#[derive(Clone)]
pub struct GroupCommit {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn MessageStore>,
    bus: Arc<dyn Bus>,
    limits: BatchLimits,
    writers: Mutex<HashMap<RoomName, mpsc::Sender<Pending>>>,
}

impl GroupCommit {
    pub fn new(store: Arc<dyn MessageStore>, bus: Arc<dyn Bus>, limits: BatchLimits) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                bus,
                limits,
                writers: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Stores one message (or finds the copy stored under its `client_id`).
    pub async fn send(
        &self,
        room: &RoomName,
        message: NewMessage,
    ) -> Result<Appended, Arc<StoreError>> {
        let (reply, answer) = oneshot::channel();
        let mut pending = Pending { message, reply };
        // A writer may exit between our lookup and our send; then we get the
        // message back and start a new writer.
        loop {
            let writer = self.writer(room);
            match writer.send(pending).await {
                Ok(()) => break,
                Err(mpsc::error::SendError(back)) => pending = back,
            }
        }
        answer
            .await
            .unwrap_or_else(|_| Err(Arc::new(StoreError::WriterGone)))
    }

    fn writer(&self, room: &RoomName) -> mpsc::Sender<Pending> {
        let mut writers = self.inner.lock();
        if let Some(tx) = writers.get(room) {
            if !tx.is_closed() {
                return tx.clone();
            }
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        writers.insert(room.clone(), tx.clone());
        tokio::spawn(run_writer(self.inner.clone(), room.clone(), tx.clone(), rx));
        tx
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RoomName, mpsc::Sender<Pending>>> {
        // Held only for map operations, never across an await.
        self.writers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

async fn run_writer(
    inner: Arc<Inner>,
    room: RoomName,
    me: mpsc::Sender<Pending>,
    mut rx: mpsc::Receiver<Pending>,
) {
    let limits = inner.limits;
    let mut batch: Vec<Pending> = Vec::with_capacity(limits.max_messages.min(64));
    loop {
        let first = match tokio::time::timeout(IDLE, rx.recv()).await {
            Ok(Some(first)) => first,
            Ok(None) => return,
            Err(_idle) => {
                if retire(&inner, &room, &me, &mut rx) {
                    // Senders that still held a clone got their message in
                    // before the close; store those, then stop.
                    while let Ok(pending) = rx.try_recv() {
                        batch.push(pending);
                    }
                    if !batch.is_empty() {
                        commit(&inner, &room, &mut batch).await;
                    }
                    return;
                }
                continue;
            }
        };
        batch.push(first);
        let deadline = Instant::now() + limits.window;
        while batch.len() < limits.max_messages {
            match rx.try_recv() {
                Ok(pending) => batch.push(pending),
                Err(_) if limits.window.is_zero() => break,
                Err(_) => match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(pending)) => batch.push(pending),
                    _ => break,
                },
            }
        }
        commit(&inner, &room, &mut batch).await;
    }
}

/// Unregisters an idle writer and closes its queue, unless sends arrived.
/// Later senders find no writer (or a closed one) and start a new one.
fn retire(
    inner: &Inner,
    room: &RoomName,
    me: &mpsc::Sender<Pending>,
    rx: &mut mpsc::Receiver<Pending>,
) -> bool {
    let mut writers = inner.lock();
    if !rx.is_empty() {
        return false;
    }
    if writers.get(room).is_some_and(|tx| tx.same_channel(me)) {
        writers.remove(room);
    }
    rx.close();
    true
}

/// Stores `batch` (emptying it), publishes what is new and answers senders.
async fn commit(inner: &Inner, room: &RoomName, batch: &mut Vec<Pending>) {
    let messages: Vec<NewMessage> = batch.iter().map(|p| p.message.clone()).collect();
    metrics::histogram!(m::BATCH_SIZE).record(messages.len() as f64);
    let notify = |created: &[Arc<Message>]| inner.bus.notify_in_transaction(created);
    let mut result = inner
        .store
        .append_notifying(room, &messages, now_millis(), &notify)
        .await;
    if matches!(&result, Err(e) if e.is_unique_violation()) {
        // Another writer got there first; the retry finds its rows.
        result = inner
            .store
            .append_notifying(room, &messages, now_millis(), &notify)
            .await;
    }
    match result {
        Ok(appended) => {
            let created: Vec<_> = appended
                .iter()
                .filter(|a| a.created)
                .map(|a| a.message.clone())
                .collect();
            metrics::counter!(m::MESSAGES_STORED).increment(created.len() as u64);
            if !created.is_empty() {
                inner.bus.committed(&created);
            }
            for (pending, appended) in batch.drain(..).zip(appended) {
                let _ = pending.reply.send(Ok(appended));
            }
        }
        Err(error) => {
            let error = Arc::new(error);
            for pending in batch.drain(..) {
                let _ = pending.reply.send(Err(error.clone()));
            }
        }
    }
}

/// The store as the history a bus reads announced rows from.
pub struct StoredHistory(pub Arc<dyn MessageStore>);

#[async_trait::async_trait]
impl History for StoredHistory {
    async fn range(
        &self,
        room: &RoomName,
        first: i64,
        last: i64,
    ) -> Result<Vec<Message>, Box<dyn std::error::Error + Send + Sync>> {
        Ok(self.0.range(room, first, last).await?)
    }

    async fn heads(
        &self,
        rooms: &[RoomName],
    ) -> Result<std::collections::HashMap<RoomName, i64>, Box<dyn std::error::Error + Send + Sync>>
    {
        if let Some(pg) = self.0.postgres() {
            return Ok(pg.last_seqs(rooms).await?);
        }
        let mut heads = std::collections::HashMap::with_capacity(rooms.len());
        for room in rooms {
            heads.insert(room.clone(), self.0.last_seq(room).await?);
        }
        Ok(heads)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use time::OffsetDateTime;

    use super::*;
    use crate::bus::{Hub, LocalBus};
    use crate::config::Config;
    use crate::domain::{Author, ClientId, MessageText};
    use crate::store::{Cursor, Page, PoolStats, RoomSummary, SqliteStore};

    /// A real SQLite store that counts its transactions.
    struct Counting {
        inner: SqliteStore,
        appends: AtomicUsize,
    }

    #[async_trait]
    impl MessageStore for Counting {
        async fn append_notifying(
            &self,
            room: &RoomName,
            batch: &[NewMessage],
            sent_at: OffsetDateTime,
            notify: crate::store::Notify<'_>,
        ) -> Result<Vec<Appended>, StoreError> {
            self.appends.fetch_add(1, Ordering::SeqCst);
            self.inner
                .append_notifying(room, batch, sent_at, notify)
                .await
        }
        async fn page(&self, r: &RoomName, c: Cursor, l: u32) -> Result<Option<Page>, StoreError> {
            self.inner.page(r, c, l).await
        }
        async fn range(
            &self,
            r: &RoomName,
            f: i64,
            l: i64,
        ) -> Result<Vec<crate::domain::Message>, StoreError> {
            self.inner.range(r, f, l).await
        }
        async fn last_seq(&self, r: &RoomName) -> Result<i64, StoreError> {
            self.inner.last_seq(r).await
        }
        async fn rooms(&self) -> Result<Vec<RoomSummary>, StoreError> {
            self.inner.rooms().await
        }
        async fn ping(&self) -> Result<(), StoreError> {
            self.inner.ping().await
        }
        fn pool_stats(&self) -> PoolStats {
            self.inner.pool_stats()
        }
    }

    fn new_message(i: usize, client_id: Option<&str>) -> NewMessage {
        NewMessage {
            author: Author::parse("ada").unwrap(),
            text: MessageText::parse(&format!("m{i}"), 4000).unwrap(),
            client_id: client_id.map(|c| ClientId::parse(c).unwrap()),
            client_ip: "127.0.0.1".into(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_sends_share_transactions_and_get_gapless_seqs() {
        let config = Config::from_args(["palaver"]).unwrap();
        let url = "sqlite::memory:".parse().unwrap();
        let store = Arc::new(Counting {
            inner: SqliteStore::connect(&url, &config).await.unwrap(),
            appends: AtomicUsize::new(0),
        });
        let hub = Arc::new(Hub::new(64));
        let writer = GroupCommit::new(
            store.clone(),
            Arc::new(LocalBus::new(hub.clone())),
            BatchLimits {
                max_messages: 8,
                window: Duration::from_millis(50),
            },
        );
        let room = RoomName::parse("busy").unwrap();
        let mut live = hub.subscribe(&room);
        // 40 sends, two of them repeating a client id within the burst.
        let sends = (0..40).map(|i| {
            let writer = writer.clone();
            let room = room.clone();
            let id = match i {
                0 | 1 => Some("same".to_owned()),
                _ => None,
            };
            async move {
                writer
                    .send(&room, new_message(i, id.as_deref()))
                    .await
                    .unwrap()
            }
        });
        let results = futures::future::join_all(sends).await;

        let mut seqs: Vec<i64> = results
            .iter()
            .filter(|a| a.created)
            .map(|a| a.message.seq)
            .collect();
        seqs.sort();
        assert_eq!(
            seqs,
            (1..=39).collect::<Vec<_>>(),
            "39 new messages, gapless"
        );
        let repeated = results.iter().filter(|a| !a.created).count();
        assert_eq!(repeated, 1, "the repeated client id stored once");
        let transactions = store.appends.load(Ordering::SeqCst);
        assert!(
            (5..40).contains(&transactions),
            "batches of at most 8 and fewer than one per send: {transactions}"
        );
        // Every new message was published once, in seq order.
        for seq in 1..=39 {
            match live.recv().await.unwrap() {
                crate::bus::Event::Message(m) => assert_eq!(m.seq, seq),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}
