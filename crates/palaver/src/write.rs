//! The write path: group commit, then publish. It sits above [`crate::store`]
//! and [`crate::bus`], which know nothing of each other or of it.
//!
//! Group commit is keyed by the writer, not the room: one batcher per
//! process takes the first pending send, then whatever else is queued for
//! any room (up to the batch size, waiting up to the batch window for more,
//! and for as long as every transaction slot is taken), and hands the lot to
//! the store as one transaction. Up to `concurrency` batches commit at once,
//! so the next batch forms while one commits; a send for a room whose batch
//! is still committing waits for the next batch after it, so batches never
//! queue on each other's room locks and a busy room's sends gather into one
//! batch per commit. That next batch starts as soon as the commit ends, with
//! no window of its own: the commit it waited for was its window. A batch is published as soon as it has committed,
//! under one lock, and only then are its senders answered. Batches into one
//! room commit one after the other, so they publish in seq order; should
//! two ever publish out of order (two replicas), subscribers and the read
//! cache see the gap and read the table.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::bus::{Bus, History, Observer};
use crate::cache::ReadCache;
use crate::domain::{now_millis, Change, NewMessage, RoomEvent, RoomName};
use crate::store::{Appended, Applied, Entry, MessageStore, NotifySql, Outcome, StoreError};
use crate::telemetry::metrics as m;

/// How many sends may wait for the batcher before senders wait too.
const QUEUE: usize = 16 * 1024;
/// How often a batch is run again when a concurrent writer got in its way
/// (a `client_id` stored meanwhile, a deadlock broken by PostgreSQL).
const ATTEMPTS: usize = 3;

type Reply = oneshot::Sender<Result<Outcome, Arc<StoreError>>>;

struct Pending {
    room: RoomName,
    change: Change,
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
        let (done_tx, done) = mpsc::unbounded_channel();
        let batcher = Batcher {
            inner,
            limits,
            rx,
            busy: HashMap::new(),
            deferred: VecDeque::new(),
            done,
            done_tx,
            in_flight: 0,
        };
        tokio::spawn(batcher.run());
        Self { queue }
    }

    /// Stores one message (or finds the copy stored under its `client_id`).
    pub async fn send(
        &self,
        room: &RoomName,
        message: NewMessage,
    ) -> Result<Appended, Arc<StoreError>> {
        match self.change(room, Change::Send(message)).await? {
            Ok(Applied::Sent(appended)) => Ok(appended),
            _ => Err(Arc::new(StoreError::Inconsistent)),
        }
    }

    /// Stores one change of a room (a send, an edit, a deletion or a
    /// reaction) with the next batch, and answers what became of it.
    pub async fn change(
        &self,
        room: &RoomName,
        change: Change,
    ) -> Result<Outcome, Arc<StoreError>> {
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            room: room.clone(),
            change,
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

/// Forms batches: sends for rooms with no batch in flight go into the next
/// batch; sends for a room whose batch is still committing wait aside (in
/// arrival order) and join the first batch formed after it commits. So a
/// batch never queues behind another on a room's row lock, and a busy room's
/// sends gather into one batch per commit rather than being split over the
/// batches in flight.
struct Batcher {
    inner: Arc<Inner>,
    limits: BatchLimits,
    rx: mpsc::Receiver<Pending>,
    /// Rooms with a batch in flight, and how many batches.
    busy: HashMap<RoomName, usize>,
    /// Sends for busy rooms, oldest first; at most [`QUEUE`].
    deferred: VecDeque<Pending>,
    /// Committed batches hand their rooms back here.
    done: mpsc::UnboundedReceiver<Vec<RoomName>>,
    done_tx: mpsc::UnboundedSender<Vec<RoomName>>,
    in_flight: usize,
}

impl Batcher {
    async fn run(mut self) {
        let permits = Arc::new(Semaphore::new(self.limits.concurrency.max(1)));
        let max = self.limits.max_messages.max(1);
        let mut open = true;
        loop {
            while let Ok(rooms) = self.done.try_recv() {
                self.release(rooms);
            }
            let mut batch = Vec::with_capacity(max.min(256));
            self.take_deferred(&mut batch, max);
            // Sends that waited aside for their room's commit had that
            // commit as their window: their batch starts without another.
            let waited = !batch.is_empty();
            if batch.is_empty() {
                if !open && self.deferred.is_empty() && self.in_flight == 0 {
                    return;
                }
                let room_to_defer = open && self.deferred.len() < QUEUE;
                tokio::select! {
                    received = self.rx.recv(), if room_to_defer => match received {
                        Some(pending) => self.place(pending, &mut batch),
                        None => open = false,
                    },
                    Some(rooms) = self.done.recv() => self.release(rooms),
                }
                if batch.is_empty() {
                    continue;
                }
            }
            // The batch has its first send: gather more until the window
            // closes (none when it is zero) and a transaction may start.
            let started = Instant::now();
            let deadline = if waited {
                started
            } else {
                started + self.limits.window
            };
            let permit = loop {
                while batch.len() < max && open {
                    match self.rx.try_recv() {
                        Ok(pending) => self.place(pending, &mut batch),
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => open = false,
                    }
                }
                let gathering = batch.len() < max && open && Instant::now() < deadline;
                let waiting = permits.clone().try_acquire_owned().ok();
                match waiting {
                    Some(permit) if !gathering => break permit,
                    Some(permit) => {
                        // Free to commit: only the window is left to wait for.
                        tokio::select! {
                            received = self.rx.recv() => match received {
                                Some(pending) => self.place(pending, &mut batch),
                                None => open = false,
                            },
                            _ = tokio::time::sleep_until(deadline) => {}
                        }
                        drop(permit);
                    }
                    None => {
                        // Every transaction slot is taken: keep gathering
                        // while one commits.
                        let more = batch.len() < max && open && self.deferred.len() < QUEUE;
                        tokio::select! {
                            permit = permits.clone().acquire_owned() => match permit {
                                Ok(permit) if !gathering => break permit,
                                Ok(permit) => drop(permit),
                                Err(_) => return,
                            },
                            received = self.rx.recv(), if more => match received {
                                Some(pending) => self.place(pending, &mut batch),
                                None => open = false,
                            },
                            Some(rooms) = self.done.recv() => {
                                self.release(rooms);
                                self.take_deferred(&mut batch, max);
                            }
                        }
                    }
                }
            };
            let mut rooms: Vec<RoomName> = batch.iter().map(|p| p.room.clone()).collect();
            rooms.sort();
            rooms.dedup();
            for room in &rooms {
                *self.busy.entry(room.clone()).or_default() += 1;
            }
            self.in_flight += 1;
            metrics::histogram!(m::BATCH_PHASE, "phase" => "gather")
                .record(started.elapsed().as_secs_f64());
            let (inner, done) = (self.inner.clone(), self.done_tx.clone());
            tokio::spawn(async move {
                commit(inner, batch, permit).await;
                let _ = done.send(rooms);
            });
        }
    }

    /// Puts a received send into `batch`, or aside when its room is busy.
    fn place(&mut self, pending: Pending, batch: &mut Vec<Pending>) {
        if self.busy.contains_key(&pending.room) {
            self.deferred.push_back(pending);
        } else {
            batch.push(pending);
        }
    }

    /// Moves waiting sends whose rooms are no longer busy into `batch`, in
    /// order. What stays behind is for busy rooms (or did not fit), so a
    /// later send for a room never overtakes an earlier one.
    fn take_deferred(&mut self, batch: &mut Vec<Pending>, max: usize) {
        if self.deferred.is_empty() {
            return;
        }
        let mut kept = VecDeque::with_capacity(self.deferred.len());
        let mut full = false;
        for pending in self.deferred.drain(..) {
            full = full || batch.len() >= max;
            if full || self.busy.contains_key(&pending.room) {
                kept.push_back(pending);
            } else {
                batch.push(pending);
            }
        }
        self.deferred = kept;
    }

    fn release(&mut self, rooms: Vec<RoomName>) {
        self.in_flight = self.in_flight.saturating_sub(1);
        for room in rooms {
            if let Some(count) = self.busy.get_mut(&room) {
                *count -= 1;
                if *count == 0 {
                    self.busy.remove(&room);
                }
            }
        }
    }
}

/// Stores `batch`, then publishes what is new and answers the senders.
async fn commit(inner: Arc<Inner>, batch: Vec<Pending>, permit: OwnedSemaphorePermit) {
    let (entries, replies): (Vec<Entry>, Vec<Reply>) = batch
        .into_iter()
        .map(|p| ((p.room, p.change), p.reply))
        .unzip();
    metrics::histogram!(m::BATCH_SIZE).record(entries.len() as f64);
    let notify = inner.bus.notify_in_transaction().map(|n| NotifySql {
        channel: n.channel,
        payloads: n.payloads,
    });
    let storing = Instant::now();
    let mut result = inner
        .store
        .append_batch(&entries, now_millis(), notify)
        .await;
    for _ in 1..ATTEMPTS {
        match &result {
            // A concurrent writer got there first; the retry finds its rows.
            Err(e) if e.is_retryable() => {
                result = inner
                    .store
                    .append_batch(&entries, now_millis(), notify)
                    .await;
            }
            _ => break,
        }
    }
    drop(permit);
    let answering = Instant::now();
    metrics::histogram!(m::BATCH_PHASE, "phase" => "store")
        .record((answering - storing).as_secs_f64());
    // Never held across an await: publishing and answering are synchronous.
    let publishing = inner.publish.lock().unwrap_or_else(|e| e.into_inner());
    match result {
        Ok(outcomes) => {
            let mut created: Vec<Arc<RoomEvent>> = outcomes
                .iter()
                .filter_map(|outcome| match outcome {
                    Ok(Applied::Sent(a)) if a.created => {
                        Some(Arc::new(RoomEvent::Message(a.message.clone())))
                    }
                    Ok(Applied::Changed(Some(event))) => Some(event.clone()),
                    _ => None,
                })
                .collect();
            created.sort_by(|a, b| (a.room(), a.seq()).cmp(&(b.room(), b.seq())));
            let messages = created.iter().filter(|e| e.as_message().is_some()).count();
            metrics::counter!(m::MESSAGES_STORED).increment(messages as u64);
            if !created.is_empty() {
                // Before the answers: a writer's next read sees its change.
                inner.cache.committed(&created);
                inner.bus.committed(&created);
            }
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
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
    drop(publishing);
    metrics::histogram!(m::BATCH_PHASE, "phase" => "answer")
        .record(answering.elapsed().as_secs_f64());
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
    ) -> Result<Vec<RoomEvent>, Box<dyn std::error::Error + Send + Sync>> {
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

    fn committed(&self, events: &[Arc<RoomEvent>]) {
        ReadCache::committed(self, events);
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

    /// A real SQLite store that counts its transactions and records the
    /// rooms of each; with `gate`, each transaction first waits for a permit.
    struct Counting {
        inner: SqliteStore,
        appends: AtomicUsize,
        batches: std::sync::Mutex<Vec<Vec<String>>>,
        gate: Option<Semaphore>,
    }

    #[async_trait]
    impl MessageStore for Counting {
        async fn append_batch(
            &self,
            batch: &[Entry],
            sent_at: OffsetDateTime,
            notify: crate::store::Notify,
        ) -> Result<Vec<Outcome>, StoreError> {
            self.appends.fetch_add(1, Ordering::SeqCst);
            let rooms = batch.iter().map(|(r, _)| r.as_str().to_owned()).collect();
            self.batches.lock().unwrap().push(rooms);
            if let Some(gate) = &self.gate {
                gate.acquire().await.unwrap().forget();
            }
            self.inner.append_batch(batch, sent_at, notify).await
        }
        async fn page(&self, r: &RoomName, c: Cursor, l: u32) -> Result<Option<Page>, StoreError> {
            self.inner.page(r, c, l).await
        }
        async fn range(&self, r: &RoomName, f: i64, l: i64) -> Result<Vec<RoomEvent>, StoreError> {
            self.inner.range(r, f, l).await
        }
        async fn set_read(
            &self,
            u: &str,
            r: &RoomName,
            s: i64,
            e: bool,
        ) -> Result<Option<i64>, StoreError> {
            self.inner.set_read(u, r, s, e).await
        }
        async fn mentionable(&self, r: &RoomName, u: &[String]) -> Result<Vec<String>, StoreError> {
            self.inner.mentionable(r, u).await
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
            reply_to: None,
            mentions: Vec::new(),
            files: Vec::new(),
        }
    }

    /// A write path over in-memory SQLite that counts its transactions,
    /// publishing to a local hub; one transaction in flight at a time.
    async fn counting_writer(
        max_messages: usize,
        window: Duration,
    ) -> (Arc<Counting>, Arc<Hub>, GroupCommit) {
        gated_writer(max_messages, window, 1, None).await
    }

    async fn gated_writer(
        max_messages: usize,
        window: Duration,
        concurrency: usize,
        gate: Option<Semaphore>,
    ) -> (Arc<Counting>, Arc<Hub>, GroupCommit) {
        let config = Config::from_args(["palaver"]).unwrap();
        let url = "sqlite::memory:".parse().unwrap();
        let store = Arc::new(Counting {
            inner: SqliteStore::connect(&url, &config).await.unwrap(),
            appends: AtomicUsize::new(0),
            batches: Default::default(),
            gate,
        });
        let hub = Arc::new(Hub::new(64));
        let writer = GroupCommit::new(
            store.clone(),
            Arc::new(LocalBus::new(hub.clone())),
            Arc::new(ReadCache::new(0, 0)),
            BatchLimits {
                max_messages,
                window,
                concurrency,
            },
        );
        (store, hub, writer)
    }

    async fn until_batches(store: &Counting, n: usize) {
        tokio::time::timeout(Duration::from_secs(10), async {
            while store.batches.lock().unwrap().len() < n {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("batches started");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sends_for_a_committing_room_wait_for_the_next_batch_other_rooms_do_not() {
        let (store, _hub, writer) =
            gated_writer(100, Duration::from_millis(20), 2, Some(Semaphore::new(0))).await;
        let (busy, other) = (
            RoomName::parse("busy").unwrap(),
            RoomName::parse("other").unwrap(),
        );
        let send = |room: &RoomName, i: usize| {
            let (writer, room) = (writer.clone(), room.clone());
            tokio::spawn(async move { writer.send(&room, new_message(i, None)).await.unwrap() })
        };
        let first = send(&busy, 0);
        until_batches(&store, 1).await;
        let mut later: Vec<_> = (1..=5).map(|i| send(&busy, i)).collect();
        tokio::time::sleep(Duration::from_millis(5)).await;
        later.push(send(&other, 9));
        // The second slot takes `other` alone: `busy` is still committing.
        until_batches(&store, 2).await;
        store.gate.as_ref().unwrap().add_permits(100);
        let mut seqs = vec![first.await.unwrap().message.seq];
        for handle in later {
            let appended = handle.await.unwrap();
            if appended.message.room == busy {
                seqs.push(appended.message.seq);
            }
        }
        seqs.sort();
        assert_eq!(seqs, vec![1, 2, 3, 4, 5, 6]);
        let batches = store.batches.lock().unwrap().clone();
        assert_eq!(
            batches,
            vec![
                vec!["busy".to_owned()],
                vec!["other".to_owned()],
                vec!["busy".to_owned(); 5],
            ],
            "the busy room's five sends gathered into one batch after its commit"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sends_that_waited_for_their_rooms_commit_take_no_second_window() {
        // A window far longer than the test may take: only a batch that
        // skips it can answer in time.
        let (store, _hub, writer) =
            gated_writer(3, Duration::from_secs(60), 1, Some(Semaphore::new(0))).await;
        let send = |room: &str, i: usize| {
            let (writer, room) = (writer.clone(), RoomName::parse(room).unwrap());
            tokio::spawn(async move { writer.send(&room, new_message(i, None)).await.unwrap() })
        };
        // Three rooms fill the first batch (no window: it is full).
        let first: Vec<_> = ["a", "b", "c"]
            .iter()
            .enumerate()
            .map(|(i, room)| send(room, i))
            .collect();
        until_batches(&store, 1).await;
        let later: Vec<_> = (1..=2).map(|i| send("a", 10 + i)).collect();
        tokio::time::sleep(Duration::from_millis(20)).await;
        store.gate.as_ref().unwrap().add_permits(100);
        let answered = tokio::time::timeout(Duration::from_secs(10), async {
            for handle in first.into_iter().chain(later) {
                handle.await.unwrap();
            }
        })
        .await;
        assert!(
            answered.is_ok(),
            "the waiting sends were stored without a window"
        );
        assert_eq!(
            store.batches.lock().unwrap()[1],
            vec!["a".to_owned(); 2],
            "room a's two waiting sends formed the second batch"
        );
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
                crate::bus::Event::Room(e) => assert_eq!(e.seq(), seq),
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
