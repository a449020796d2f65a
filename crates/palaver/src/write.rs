//! The write path: group commit, then publish. It sits above [`crate::store`]
//! and [`crate::bus`], which know nothing of each other or of it.
//!
//! Group commit is keyed by the writer, not the room: one batcher per
//! process takes the first pending send, then whatever else is queued for
//! any room (up to the batch size, waiting up to the batch window for more),
//! and hands the lot to the store as one transaction. Up to `concurrency`
//! batches commit at once, so the next batch forms while one commits.
//! A batch is published as soon as it has committed, under one lock, and
//! only then are its senders answered. Batches into one room commit one
//! after the other (the room's row lock), so they publish in seq order;
//! should two ever publish out of order, subscribers and the read cache see
//! the gap and read the table.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::bus::{Bus, History, Observer};
use crate::cache::ReadCache;
use crate::domain::{now_millis, Message, NewMessage, RoomName};
use crate::store::{Appended, Entry, MessageStore, StoreError};
use crate::telemetry::metrics as m;

/// How many sends may wait for the batcher before senders wait too.
const QUEUE: usize = 16 * 1024;
/// How often a batch is run again when a concurrent writer got in its way
/// (a `client_id` stored meanwhile, a deadlock broken by PostgreSQL).
const ATTEMPTS: usize = 3;

type Reply = oneshot::Sender<Result<Appended, Arc<StoreError>>>;

struct Pending {
    room: RoomName,
    message: NewMessage,
    reply: Reply,
}

/// Limits of group commit.
#[derive(Debug, Clone, Copy)]
pub struct BatchLimits {
    /// Most sends in one transaction.
    pub max_messages: usize,
    /// How long a batch waits for more sends after its first.
    pub window: Duration,
    /// Most transactions in flight at once (at least 1).
    pub concurrency: usize,
}

/// The write path: queues each send for the process's batcher.
#[derive(Clone)]
pub struct GroupCommit {
    queue: mpsc::Sender<Pending>,
}

struct Inner {
    store: Arc<dyn MessageStore>,
    bus: Arc<dyn Bus>,
    cache: Arc<ReadCache>,
    /// Held while a committed batch is published and answered.
    publish: std::sync::Mutex<()>,
}

impl GroupCommit {
    /// Starts the batcher; it stops when the last clone of the returned
    /// handle is dropped, after storing what was queued.
    pub fn new(
        store: Arc<dyn MessageStore>,
        bus: Arc<dyn Bus>,
        cache: Arc<ReadCache>,
        limits: BatchLimits,
    ) -> Self {
        let (queue, rx) = mpsc::channel(QUEUE);
        let inner = Arc::new(Inner {
            store,
            bus,
            cache,
            publish: std::sync::Mutex::new(()),
        });
        tokio::spawn(run_batcher(inner, limits, rx));
        Self { queue }
    }

    /// Stores one message (or finds the copy stored under its `client_id`).
    pub async fn send(
        &self,
        room: &RoomName,
        message: NewMessage,
    ) -> Result<Appended, Arc<StoreError>> {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            room: room.clone(),
            message,
            reply,
        };
        if self.queue.send(pending).await.is_err() {
            return Err(Arc::new(StoreError::WriterGone));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(Arc::new(StoreError::WriterGone)))
    }
}

async fn run_batcher(inner: Arc<Inner>, limits: BatchLimits, mut rx: mpsc::Receiver<Pending>) {
    let permits = Arc::new(Semaphore::new(limits.concurrency.max(1)));
    let max = limits.max_messages.max(1);
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = rx.recv().await else {
            return;
        };
        let mut batch = Vec::with_capacity(max.min(256));
        batch.push(first);
        let deadline = Instant::now() + limits.window;
        while batch.len() < max {
            match rx.try_recv() {
                Ok(pending) => batch.push(pending),
                Err(_) if limits.window.is_zero() => break,
                Err(_) => match tokio::time::timeout_at(deadline, rx.recv()).await {
                    Ok(Some(pending)) => batch.push(pending),
                    _ => break,
                },
            }
        }
        tokio::spawn(commit(inner.clone(), batch, permit));
    }
}

/// Stores `batch`, then publishes what is new and answers the senders.
async fn commit(inner: Arc<Inner>, batch: Vec<Pending>, permit: OwnedSemaphorePermit) {
    let (entries, replies): (Vec<Entry>, Vec<Reply>) = batch
        .into_iter()
        .map(|p| ((p.room, p.message), p.reply))
        .unzip();
    metrics::histogram!(m::BATCH_SIZE).record(entries.len() as f64);
    let notify = |created: &[Arc<Message>]| inner.bus.notify_in_transaction(created);
    let mut result = inner
        .store
        .append_batch(&entries, now_millis(), &notify)
        .await;
    for _ in 1..ATTEMPTS {
        match &result {
            // A concurrent writer got there first; the retry finds its rows.
            Err(e) if e.is_retryable() => {
                result = inner
                    .store
                    .append_batch(&entries, now_millis(), &notify)
                    .await;
            }
            _ => break,
        }
    }
    drop(permit);
    // Never held across an await: publishing and answering are synchronous.
    let _publishing = inner.publish.lock().unwrap_or_else(|e| e.into_inner());
    match result {
        Ok(appended) => {
            let mut created: Vec<Arc<Message>> = appended
                .iter()
                .filter(|a| a.created)
                .map(|a| a.message.clone())
                .collect();
            created.sort_by(|a, b| (&a.room, a.seq).cmp(&(&b.room, b.seq)));
            metrics::counter!(m::MESSAGES_STORED).increment(created.len() as u64);
            if !created.is_empty() {
                // Before the 201s: a sender's next read sees its message.
                inner.cache.committed(&created);
                inner.bus.committed(&created);
            }
            for (reply, appended) in replies.into_iter().zip(appended) {
                let _ = reply.send(Ok(appended));
            }
        }
        Err(error) => {
            // A failed commit may still have committed (the answer to COMMIT
            // was lost): the rooms' entries cannot be trusted.
            for (room, _) in &entries {
                inner.cache.forget(room);
            }
            let error = Arc::new(error);
            for reply in replies {
                let _ = reply.send(Err(error.clone()));
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

/// The read cache hears what other processes commit through the bus.
impl Observer for ReadCache {
    fn wants(&self, room: &RoomName, last: i64) -> bool {
        self.behind(room, last)
    }

    fn announced(&self, room: &RoomName) {
        self.touch(room);
    }

    fn committed(&self, messages: &[Arc<Message>]) {
        ReadCache::committed(self, messages);
    }

    fn forget(&self, room: &RoomName) {
        ReadCache::forget(self, room);
    }

    fn forget_all(&self) {
        self.clear();
    }

    fn held(&self) -> Vec<(RoomName, bool)> {
        self.rooms()
    }

    fn held_changed(&self) -> futures::future::BoxFuture<'_, ()> {
        Box::pin(self.rooms_changed())
    }

    fn subscribed(&self, room: &RoomName, head: i64) {
        ReadCache::subscribed(self, room, head);
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
        async fn append_batch(
            &self,
            batch: &[Entry],
            sent_at: OffsetDateTime,
            notify: crate::store::Notify<'_>,
        ) -> Result<Vec<Appended>, StoreError> {
            self.appends.fetch_add(1, Ordering::SeqCst);
            self.inner.append_batch(batch, sent_at, notify).await
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
            author_id: None,
            text: MessageText::parse(&format!("m{i}"), 4000).unwrap(),
            client_id: client_id.map(|c| ClientId::parse(c).unwrap()),
            client_ip: "127.0.0.1".into(),
        }
    }

    /// A write path over in-memory SQLite that counts its transactions,
    /// publishing to a local hub; one transaction in flight at a time.
    async fn counting_writer(
        max_messages: usize,
        window: Duration,
    ) -> (Arc<Counting>, Arc<Hub>, GroupCommit) {
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
            Arc::new(ReadCache::new(0, 0)),
            BatchLimits {
                max_messages,
                window,
                concurrency: 1,
            },
        );
        (store, hub, writer)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_sends_share_transactions_and_get_gapless_seqs() {
        let (store, hub, writer) = counting_writer(8, Duration::from_millis(50)).await;
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sends_to_many_rooms_in_one_window_share_one_transaction() {
        let (store, _hub, writer) = counting_writer(1000, Duration::from_millis(500)).await;
        let rooms: Vec<RoomName> = (0..10)
            .map(|r| RoomName::parse(&format!("r{r}")).unwrap())
            .collect();
        // 10 rooms x 5 sends; the same client id in every room is a
        // different message in each, and repeats once within room r0.
        let mut sends = Vec::new();
        for (r, room) in rooms.iter().enumerate() {
            for i in 0..5 {
                let id = (i == 0).then(|| "k".to_owned());
                sends.push((room.clone(), new_message(r * 10 + i, id.as_deref())));
            }
        }
        sends.push((rooms[0].clone(), new_message(99, Some("k"))));
        let results = futures::future::join_all(sends.into_iter().map(|(room, m)| {
            let writer = writer.clone();
            async move { writer.send(&room, m).await.unwrap() }
        }))
        .await;
        assert_eq!(store.appends.load(Ordering::SeqCst), 1, "one transaction");
        for room in &rooms {
            let mut seqs: Vec<i64> = results
                .iter()
                .filter(|a| a.created && a.message.room == *room)
                .map(|a| a.message.seq)
                .collect();
            seqs.sort();
            assert_eq!(seqs, vec![1, 2, 3, 4, 5], "room {room} gapless");
            let page = store.page(room, Cursor::Latest, 10).await.unwrap().unwrap();
            assert_eq!(page.messages.len(), 5);
        }
        let repeat = results.last().unwrap();
        assert!(!repeat.created);
        assert_eq!(repeat.message.text, "m0", "answered with the first copy");
    }
}
