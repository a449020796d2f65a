//! The read cache: the newest messages of recently read rooms, in memory, so
//! that the hot read (a client opening a room asks for its newest page)
//! needs no database.
//!
//! Coherence: the write path applies every batch it commits before it
//! answers the senders (read-your-writes on the replica that answered the
//! 201), and the bus applies what other replicas commit (within the bus
//! delay). A batch that does not follow on from what a room's entry holds,
//! a resync of the bus, or a failed write drops the entry; the next read
//! fills it from the table. A fill races with writes: each shard has a
//! generation that every write bumps, and a fill whose shard moved on while
//! it read the table is served but not kept. Only committed messages ever
//! enter the cache: the write path applies a batch after its commit
//! returned.
//!
//! Gated entries (a broker bus, which hears only the rooms it subscribes
//! to): a room the cache holds is subscribed too, and its entry is served
//! only once the bus confirms the subscription and reports the room's head
//! read after it ([`ReadCache::subscribed`]); an entry that holds that head
//! is live, one behind it becomes live once the bus brings it there (or a
//! later fill replaces it). What the bus missed (a gap, a reconnect) drops
//! entries as above.
//!
//! Bounds: an entry holds at most `per_room` messages (older pages come
//! from the table), and all entries together at most `max_bytes` (an
//! estimate of their heap size, memoised page bodies included); at the
//! bound the least recently read rooms are evicted.

use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use hashlink::LruCache;

use crate::domain::{Message, RoomEvent, RoomName};
use crate::telemetry::metrics as m;

const SHARDS: usize = 16;
/// Page bodies memoised per room (different shapes or sizes); an append
/// clears them.
const BODIES: usize = 4;
/// Bookkeeping per message beyond its strings.
const MESSAGE_OVERHEAD: usize = 160;

/// What a memoised body is: a response shape and a page size.
pub type BodyKey = (&'static str, usize);

/// The newest messages of a room, oldest first, as they are after every
/// event up to `head`.
struct Entry {
    messages: VecDeque<Arc<Message>>,
    /// The room's last event seq the entry has applied.
    head: i64,
    /// Whether the room has messages older than `messages.front()`.
    has_older: bool,
    bytes: usize,
    bodies: Vec<(BodyKey, Body)>,
    /// Whether the entry may be served (always, unless the cache is gated).
    live: bool,
    /// Gated: the head the bus read after subscribing, which the entry
    /// must reach to become live.
    live_at: Option<i64>,
}

impl Entry {
    fn last_seq(&self) -> i64 {
        self.head
    }

    /// Applies a change to the message it targets, if the entry holds it.
    fn apply(&mut self, event: &RoomEvent) {
        let Some(target) = event.target() else { return };
        let Ok(i) = self.messages.binary_search_by_key(&target, |m| m.seq) else {
            return;
        };
        let before = message_bytes(&self.messages[i]);
        let mut changed = Message::clone(&self.messages[i]);
        if changed.apply(event) {
            self.bytes = self.bytes + message_bytes(&changed) - before;
            self.messages[i] = Arc::new(changed);
        }
    }

    fn weight(&self) -> usize {
        self.bytes + self.bodies.iter().map(|(_, b)| b.weight()).sum::<usize>() + 128
    }

    /// Becomes live once it holds the head it waits for.
    fn catch_up(&mut self) {
        if !self.live && self.live_at.is_some_and(|head| self.last_seq() >= head) {
            self.live = true;
        }
    }
}

fn message_bytes(m: &Message) -> usize {
    MESSAGE_OVERHEAD
        + m.author.len()
        + m.text.len()
        + m.client_ip.len()
        + m.client_id.as_ref().map_or(0, |c| c.len())
        + m.mentions.iter().map(|u| u.len() + 24).sum::<usize>()
        + m.files
            .iter()
            .map(|f| f.name.len() + f.id.len() + 64)
            .sum::<usize>()
        + m.reactions
            .iter()
            .map(|r| r.emoji.len() + 48 + r.users.iter().map(|u| u.len() + 24).sum::<usize>())
            .sum::<usize>()
}

/// A memoised page body: rendered for no reader (every reaction's `me`
/// false), with where each of those flags is, so that a reader's own
/// reactions are set in a copy without rendering the page again.
struct Body {
    bytes: Bytes,
    /// Offset of each reaction's `false`, in the order of `reactors`.
    flags: Vec<u32>,
    /// Who reacted, per reaction on the page in body order (shared with the
    /// entry's messages).
    reactors: Vec<(Arc<Message>, u8)>,
}

/// A reaction's flag as serde writes it for no reader.
const FLAG: &[u8] = b"\"me\":false";

impl Body {
    /// `bytes` rendered for no reader from `messages`, or `None` when its
    /// flags do not match the messages' reactions one for one, in order
    /// (another shape, or a flag set already).
    fn new(bytes: Bytes, messages: &[Arc<Message>]) -> Option<Self> {
        let mut flags = Vec::new();
        let mut reactors = Vec::new();
        let mut from = 0;
        for message in messages {
            for (i, reaction) in message.reactions.iter().enumerate() {
                // `{"emoji":"…","count":N,"me":false`: the emoji is
                // validated, so serde writes it the same way every time.
                let emoji = serde_json::to_string(&reaction.emoji).ok()?;
                let head = format!("{{\"emoji\":{emoji},\"count\":{},", reaction.count);
                let at = from + find(&bytes[from..], FLAG)?;
                if !bytes[..at].ends_with(head.as_bytes()) {
                    return None;
                }
                flags.push(u32::try_from(at + FLAG.len() - b"false".len()).ok()?);
                reactors.push((message.clone(), u8::try_from(i).ok()?));
                from = at + FLAG.len();
            }
        }
        if find(&bytes[from..], FLAG).is_some() || find(&bytes, b"\"me\":true").is_some() {
            return None;
        }
        Some(Self {
            bytes,
            flags,
            reactors,
        })
    }

    /// The body as `viewer` reads it: shared when they reacted to nothing
    /// on the page, else a copy with their reactions' flags set.
    fn for_reader(&self, viewer: Option<&str>) -> Bytes {
        let Some(viewer) = viewer else {
            return self.bytes.clone();
        };
        let mine = |(message, i): &(Arc<Message>, u8)| {
            message.reactions[usize::from(*i)]
                .users
                .iter()
                .any(|u| u == viewer)
        };
        if !self.reactors.iter().any(mine) {
            return self.bytes.clone();
        }
        let mut out = Vec::with_capacity(self.bytes.len());
        let mut from = 0;
        for (at, reactor) in self.flags.iter().zip(&self.reactors) {
            if mine(reactor) {
                let at = *at as usize;
                out.extend_from_slice(&self.bytes[from..at]);
                out.extend_from_slice(b"true");
                from = at + b"false".len();
            }
        }
        out.extend_from_slice(&self.bytes[from..]);
        Bytes::from(out)
    }

    fn weight(&self) -> usize {
        self.bytes.len() + self.flags.len() * 4 + self.reactors.len() * 16
    }
}

/// Where `needle` first occurs in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

struct Shard {
    rooms: LruCache<RoomName, Entry>,
    bytes: usize,
    generation: u64,
}

/// The cache; share it behind an `Arc`.
pub struct ReadCache {
    shards: Vec<Mutex<Shard>>,
    hasher: std::collections::hash_map::RandomState,
    per_room: usize,
    shard_bytes: usize,
    /// Whether entries wait for [`ReadCache::subscribed`] before they are
    /// served.
    gated: bool,
    /// Woken when a room is added or dropped (a broker bus follows them).
    changed: tokio::sync::Notify,
}

/// A fill ticket: the shard generation seen before reading the table.
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

impl ReadCache {
    /// At most `per_room` messages per room (0: the cache is off) and
    /// `max_bytes` in all (split evenly over the shards).
    pub fn new(per_room: usize, max_bytes: usize) -> Self {
        Self {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        rooms: LruCache::new_unbounded(),
                        bytes: 0,
                        generation: 0,
                    })
                })
                .collect(),
            hasher: Default::default(),
            per_room,
            shard_bytes: max_bytes / SHARDS,
            gated: false,
            changed: tokio::sync::Notify::new(),
        }
    }

    /// Like [`ReadCache::new`], for a process on a broker bus: an entry is
    /// served only once its room's subscription is confirmed and current.
    pub fn gated(per_room: usize, max_bytes: usize) -> Self {
        Self {
            gated: true,
            ..Self::new(per_room, max_bytes)
        }
    }

    /// Most messages an entry holds: larger pages always go to the table.
    pub fn per_room(&self) -> usize {
        self.per_room
    }

    fn shard(&self, room: &RoomName) -> MutexGuard<'_, Shard> {
        let i = (self.hasher.hash_one(room) as usize) % SHARDS;
        // Held for map operations only, never across an await.
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The newest `limit` messages of `room` as `viewer` reads them, in a
    /// body built by `render` (given the messages newest first, whether
    /// more exist, and the reader); `None` when the cache cannot answer
    /// (the caller reads the table and calls [`ReadCache::fill`]).
    ///
    /// The body is memoised under `key` as rendered for no reader, with
    /// where each reaction's `"me":false` is: a reader's own reactions are
    /// then set in a copy of it (see [`Body`]), so a page with reactions is
    /// rendered once per change, not once per reader. `render` must write
    /// the messages in the order given and each reaction as serde does; a
    /// body where the flags cannot be matched to the reactions is rendered
    /// per reader and not memoised.
    pub fn newest(
        &self,
        room: &RoomName,
        limit: usize,
        key: &'static str,
        viewer: Option<&str>,
        mut render: impl FnMut(&[Arc<Message>], bool, Option<&str>) -> Bytes,
    ) -> Option<Bytes> {
        if limit > self.per_room {
            return None;
        }
        let mut shard = self.shard(room);
        let shard = &mut *shard;
        let hit = shard.rooms.get_mut(room).and_then(|entry| {
            if !entry.live || (entry.messages.len() < limit && entry.has_older) {
                return None;
            }
            if let Some((_, body)) = entry.bodies.iter().find(|(k, _)| *k == (key, limit)) {
                return Some((body.for_reader(viewer), 0, 0));
            }
            let newest: Vec<Arc<Message>> =
                entry.messages.iter().rev().take(limit).cloned().collect();
            let has_more = entry.messages.len() > limit || entry.has_older;
            let Some(body) = Body::new(render(&newest, has_more, None), &newest) else {
                return Some((render(&newest, has_more, viewer), 0, 0));
            };
            let served = body.for_reader(viewer);
            let before = entry.weight();
            if entry.bodies.len() >= BODIES {
                entry.bodies.remove(0);
            }
            entry.bodies.push(((key, limit), body));
            Some((served, before, entry.weight()))
        });
        match hit {
            Some((body, before, after)) => {
                shard.bytes = shard.bytes + after - before;
                self.evict(shard);
                metrics::counter!(m::CACHE_HITS).increment(1);
                Some(body)
            }
            None => {
                metrics::counter!(m::CACHE_MISSES).increment(1);
                None
            }
        }
    }

    /// Whether `room` is held with messages older than `last`: rows up to
    /// `last` are then worth reading for it.
    pub fn behind(&self, room: &RoomName, last: i64) -> bool {
        self.shard(room)
            .rooms
            .peek(room)
            .is_some_and(|entry| entry.last_seq() < last)
    }

    /// Call before reading the table for [`ReadCache::fill`].
    pub fn ticket(&self, room: &RoomName) -> Ticket {
        Ticket(self.shard(room).generation)
    }

    /// Keeps what the table answered for `room` (its newest messages, newest
    /// first, whether older ones exist, and the room's last event seq when
    /// it was read), unless a write reached the room's shard since `ticket`
    /// was taken.
    pub fn fill(
        &self,
        room: &RoomName,
        ticket: Ticket,
        newest: &[Message],
        has_older: bool,
        head: i64,
    ) {
        let mut shard = self.shard(room);
        if shard.generation != ticket.0 || self.per_room == 0 {
            return;
        }
        let take = newest.len().min(self.per_room);
        let messages: VecDeque<Arc<Message>> = newest[..take]
            .iter()
            .rev()
            .map(|m| Arc::new(m.clone()))
            .collect();
        // A replaced entry passes on its liveness: no write or subscription
        // change reached the shard since the ticket, so the room was as
        // live before the table was read as it is now.
        let (live, live_at) = shard
            .rooms
            .peek(room)
            .map_or((!self.gated, None), |old| (old.live, old.live_at));
        let mut entry = Entry {
            bytes: messages.iter().map(|m| message_bytes(m)).sum(),
            has_older: has_older || newest.len() > take,
            messages,
            head,
            bodies: Vec::new(),
            live,
            live_at,
        };
        entry.catch_up();
        let shard = &mut *shard;
        shard.bytes += entry.weight();
        match shard.rooms.insert(room.clone(), entry) {
            Some(old) => shard.bytes -= old.weight(),
            None => self.changed.notify_one(),
        }
        self.evict(shard);
    }

    /// Gated: `room`'s subscription is confirmed and `head` is its newest
    /// seq read after that. An entry holding `head` turns live; one behind
    /// it turns live once the bus brings it there. Fills that read the table
    /// before now are not kept.
    pub fn subscribed(&self, room: &RoomName, head: i64) {
        let mut shard = self.shard(room);
        shard.generation += 1;
        if let Some(entry) = shard.rooms.peek_mut(room) {
            entry.live_at = Some(head);
            entry.catch_up();
        }
    }

    /// Gated: the rooms held, each with whether it still waits for
    /// [`ReadCache::subscribed`]; the set a broker bus subscribes to besides
    /// its streams' rooms (bounded with the cache).
    pub fn rooms(&self) -> Vec<(RoomName, bool)> {
        let mut rooms = Vec::new();
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            rooms.extend(
                shard
                    .rooms
                    .iter()
                    .map(|(room, e)| (room.clone(), !e.live && e.live_at.is_none())),
            );
        }
        rooms
    }

    /// Completes once a room was added or dropped since the last call (one
    /// waiter: the broker bus).
    pub async fn rooms_changed(&self) {
        self.changed.notified().await
    }

    /// Applies committed events (ordered by room, then seq): an entry they
    /// follow on from takes new messages and applies changes to the
    /// messages it holds; one they skip ahead of is dropped.
    pub fn committed(&self, events: &[Arc<RoomEvent>]) {
        for batch in events.chunk_by(|a, b| a.room() == b.room()) {
            let room = batch[0].room();
            let mut shard = self.shard(room);
            let shard = &mut *shard;
            shard.generation += 1;
            let Some(entry) = shard.rooms.peek_mut(room) else {
                continue;
            };
            let last = entry.last_seq();
            let newest = batch[batch.len() - 1].seq();
            if newest <= last {
                continue; // already applied (our own batch, heard back from the bus)
            }
            let before = entry.weight();
            let fresh = batch.iter().filter(|e| e.seq() > last);
            let mut contiguous = true;
            for (expected, event) in (last + 1..).zip(fresh) {
                if event.seq() != expected {
                    contiguous = false;
                    break;
                }
                match event.as_ref() {
                    RoomEvent::Message(message) => {
                        entry.bytes += message_bytes(message);
                        entry.messages.push_back(message.clone());
                    }
                    change => entry.apply(change),
                }
                entry.head = event.seq();
            }
            if !contiguous {
                shard.bytes -= before;
                shard.rooms.remove(room);
                self.changed.notify_one();
                continue;
            }
            entry.catch_up();
            while entry.messages.len() > self.per_room {
                if let Some(old) = entry.messages.pop_front() {
                    entry.bytes -= message_bytes(&old);
                    entry.has_older = true;
                }
            }
            entry.bodies.clear();
            let after = entry.weight();
            shard.bytes = shard.bytes + after - before;
            self.evict(shard);
        }
    }

    /// Notes that `room` changed without dropping an entry that is current:
    /// a fill that read the table before the change is not kept.
    pub fn touch(&self, room: &RoomName) {
        self.shard(room).generation += 1;
    }

    /// Drops `room`: it may have missed messages.
    pub fn forget(&self, room: &RoomName) {
        let mut shard = self.shard(room);
        shard.generation += 1;
        if let Some(old) = shard.rooms.remove(room) {
            shard.bytes -= old.weight();
            self.changed.notify_one();
        }
    }

    /// Drops every room: the bus may have missed messages.
    pub fn clear(&self) {
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            shard.generation += 1;
            shard.rooms.clear();
            shard.bytes = 0;
        }
        self.changed.notify_one();
    }

    /// Rooms held and their estimated bytes.
    pub fn usage(&self) -> (usize, usize) {
        self.shards.iter().fold((0, 0), |(rooms, bytes), shard| {
            let shard = shard.lock().unwrap_or_else(|e| e.into_inner());
            (rooms + shard.rooms.len(), bytes + shard.bytes)
        })
    }

    fn evict(&self, shard: &mut Shard) {
        while shard.bytes > self.shard_bytes {
            match shard.rooms.remove_lru() {
                Some((_, old)) => {
                    shard.bytes -= old.weight();
                    self.changed.notify_one();
                    metrics::counter!(m::CACHE_EVICTIONS).increment(1);
                }
                None => {
                    shard.bytes = 0;
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::now_millis;

    fn message(room: &RoomName, seq: i64, text: &str) -> Message {
        Message {
            room: room.clone(),
            seq,
            author: "a".into(),
            author_id: None,
            text: text.into(),
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
        }
    }

    fn ev(message: Message) -> Arc<RoomEvent> {
        Arc::new(RoomEvent::Message(Arc::new(message)))
    }

    fn seqs(cache: &ReadCache, room: &RoomName, limit: usize) -> Option<(Vec<i64>, bool)> {
        let mut seen = None;
        cache.newest(room, limit, "test", None, |m, more, _| {
            seen = Some((m.iter().map(|m| m.seq).collect(), more));
            Bytes::new()
        })?;
        // A memoised body does not call `render`: render once per change.
        seen.or(Some((Vec::new(), false)))
    }

    /// Newest first, as the table answers a `Latest` page.
    fn newest_first(room: &RoomName, seqs: std::ops::RangeInclusive<i64>) -> Vec<Message> {
        seqs.rev().map(|s| message(room, s, "x")).collect()
    }

    #[test]
    fn a_room_is_served_after_a_fill_and_grows_with_commits() {
        let cache = ReadCache::new(10, 1 << 20);
        let room = RoomName::parse("r").unwrap();
        assert!(seqs(&cache, &room, 5).is_none(), "a miss before any fill");
        let ticket = cache.ticket(&room);
        cache.fill(&room, ticket, &newest_first(&room, 1..=3), false, 3);
        assert_eq!(seqs(&cache, &room, 5), Some((vec![3, 2, 1], false)));
        cache.committed(&[ev(message(&room, 4, "x"))]);
        assert_eq!(seqs(&cache, &room, 2), Some((vec![4, 3], true)));
    }

    #[test]
    fn an_entry_keeps_at_most_per_room_messages_and_refuses_larger_pages() {
        let cache = ReadCache::new(10, 1 << 20);
        let room = RoomName::parse("r").unwrap();
        let ticket = cache.ticket(&room);
        cache.fill(&room, ticket, &newest_first(&room, 1..=3), false, 3);
        let more: Vec<_> = (4..=30).map(|s| ev(message(&room, s, "x"))).collect();
        cache.committed(&more);
        assert_eq!(
            seqs(&cache, &room, 10),
            Some(((21..=30).rev().collect(), true))
        );
        assert!(
            seqs(&cache, &room, 11).is_none(),
            "older than the entry holds"
        );
    }

    #[test]
    fn edits_reactions_and_deletions_are_applied_to_the_held_messages() {
        use crate::domain::{DeleteEvent, EditEvent, ReactionEvent};
        let cache = ReadCache::new(10, 1 << 20);
        let room = RoomName::parse("r").unwrap();
        let ticket = cache.ticket(&room);
        cache.fill(&room, ticket, &newest_first(&room, 1..=3), false, 3);
        let at = now_millis();
        let edit = Arc::new(RoomEvent::Edit(EditEvent {
            room: room.clone(),
            seq: 4,
            target: 2,
            text: "fixed".into(),
            edited_at: at,
            mentions: vec![],
            user_id: "u".into(),
            frame: Default::default(),
        }));
        let react = Arc::new(RoomEvent::Reaction(ReactionEvent {
            room: room.clone(),
            seq: 5,
            target: 3,
            emoji: "👍".into(),
            user_id: "u".into(),
            on: true,
            at,
            frame: Default::default(),
        }));
        cache.committed(&[edit.clone(), react.clone()]);
        // Heard again from the bus: nothing changes twice.
        cache.committed(&[edit, react]);
        let mut page = Vec::new();
        cache.newest(&room, 3, "test", None, |m, _, _| {
            page = m.to_vec();
            Bytes::new()
        });
        assert_eq!(page[1].text, "fixed");
        assert_eq!(page[1].edited_at, Some(at));
        assert_eq!(page[0].reactions.len(), 1);
        assert_eq!(page[0].reactions[0].count, 1);
        let delete = Arc::new(RoomEvent::Delete(DeleteEvent {
            room: room.clone(),
            seq: 6,
            target: 2,
            at,
            user_id: "u".into(),
            frame: Default::default(),
        }));
        cache.committed(&[delete]);
        cache.newest(&room, 3, "test", None, |m, _, _| {
            page = m.to_vec();
            Bytes::new()
        });
        assert!(page[1].deleted && page[1].text.is_empty());
        // A new message after the changes follows on from the head.
        cache.committed(&[ev(message(&room, 7, "x"))]);
        assert_eq!(seqs(&cache, &room, 4), Some((vec![7, 3, 2, 1], false)));
    }

    #[test]
    fn a_commit_that_skips_ahead_drops_the_room() {
        let cache = ReadCache::new(10, 1 << 20);
        let room = RoomName::parse("r").unwrap();
        let ticket = cache.ticket(&room);
        cache.fill(&room, ticket, &newest_first(&room, 1..=3), false, 3);
        cache.committed(&[ev(message(&room, 5, "x"))]);
        assert!(seqs(&cache, &room, 1).is_none());
    }

    #[test]
    fn a_fill_that_raced_a_write_is_not_kept() {
        let cache = ReadCache::new(10, 1 << 20);
        let room = RoomName::parse("r").unwrap();
        let ticket = cache.ticket(&room);
        // The table was read (seqs 1-3), then seq 4 committed before the fill.
        cache.committed(&[ev(message(&room, 4, "x"))]);
        cache.fill(&room, ticket, &newest_first(&room, 1..=3), false, 3);
        assert!(seqs(&cache, &room, 3).is_none(), "stale fill refused");
    }

    #[test]
    fn a_gated_entry_is_served_only_once_subscribed_and_current() {
        let cache = ReadCache::gated(10, 1 << 20);
        let room = RoomName::parse("r").unwrap();
        let ticket = cache.ticket(&room);
        cache.fill(&room, ticket, &newest_first(&room, 1..=3), false, 3);
        assert!(
            seqs(&cache, &room, 3).is_none(),
            "not served before subscribed"
        );
        assert_eq!(
            cache.rooms(),
            vec![(room.clone(), true)],
            "waits for the bus"
        );
        // Subscribed, but seq 4 was committed before: not served until the
        // bus brings the entry to the head.
        cache.subscribed(&room, 4);
        assert_eq!(cache.rooms(), vec![(room.clone(), false)]);
        assert!(seqs(&cache, &room, 3).is_none(), "behind the head");
        cache.committed(&[ev(message(&room, 4, "x"))]);
        assert_eq!(seqs(&cache, &room, 3), Some((vec![4, 3, 2], true)));
        // A refill of a live room stays live.
        let ticket = cache.ticket(&room);
        cache.fill(&room, ticket, &newest_first(&room, 1..=4), false, 4);
        assert_eq!(seqs(&cache, &room, 3), Some((vec![4, 3, 2], true)));
        // Dropped (a reconnect): a new fill waits for the bus again.
        cache.clear();
        let ticket = cache.ticket(&room);
        cache.fill(&room, ticket, &newest_first(&room, 1..=4), false, 4);
        assert!(seqs(&cache, &room, 3).is_none());
    }

    #[test]
    fn a_gated_fill_that_read_the_table_before_the_subscription_is_not_kept() {
        let cache = ReadCache::gated(10, 1 << 20);
        let room = RoomName::parse("r").unwrap();
        let ticket = cache.ticket(&room);
        cache.fill(&room, ticket, &newest_first(&room, 1..=2), false, 2);
        // A second read starts, then the subscription is confirmed (head 2),
        // then the read's fill arrives: it may predate the subscription.
        let late = cache.ticket(&room);
        cache.subscribed(&room, 2);
        cache.fill(&room, late, &newest_first(&room, 1..=2), false, 2);
        assert_eq!(seqs(&cache, &room, 2), Some((vec![2, 1], false)));
        // A skipped-ahead batch (a publish lost) drops the live entry.
        cache.committed(&[ev(message(&room, 4, "x"))]);
        assert!(seqs(&cache, &room, 1).is_none());
        assert!(
            cache.rooms().is_empty(),
            "the room left the subscription set"
        );
    }

    /// A v1-like body: the messages as `viewer` sees them.
    fn as_seen(messages: &[Arc<Message>], _more: bool, viewer: Option<&str>) -> Bytes {
        let seen: Vec<Arc<Message>> = messages.iter().map(|m| m.seen_by(viewer)).collect();
        Bytes::from(serde_json::to_vec(&seen).unwrap())
    }

    fn reaction(
        room: &RoomName,
        seq: i64,
        target: i64,
        emoji: &str,
        user: &str,
        on: bool,
    ) -> Arc<RoomEvent> {
        Arc::new(RoomEvent::Reaction(crate::domain::ReactionEvent {
            room: room.clone(),
            seq,
            target,
            emoji: emoji.into(),
            user_id: user.into(),
            on,
            at: now_millis(),
            frame: Default::default(),
        }))
    }

    #[test]
    fn readers_of_one_memoised_page_each_see_their_own_reactions() {
        let cache = ReadCache::new(10, 1 << 20);
        let room = RoomName::parse("r").unwrap();
        let ticket = cache.ticket(&room);
        // A text that looks like a flag stays text.
        let tricky = message(&room, 3, r#"{"emoji":"👍","count":1,"me":false}"#);
        cache.fill(
            &room,
            ticket,
            &[tricky, message(&room, 2, "x"), message(&room, 1, "y")],
            false,
            3,
        );
        cache.committed(&[
            reaction(&room, 4, 1, "👍", "ada", true),
            reaction(&room, 5, 1, "👍", "bob", true),
            reaction(&room, 6, 1, "🎉", "bob", true),
            reaction(&room, 7, 3, "👀", "carol", true),
        ]);
        let renders = std::cell::Cell::new(0);
        let read = |viewer: Option<&str>| {
            let mut table = None;
            let body = cache
                .newest(&room, 3, "v1", viewer, |m, more, v| {
                    renders.set(renders.get() + 1);
                    table = Some(m.to_vec());
                    as_seen(m, more, v)
                })
                .expect("held");
            (body, table)
        };
        let (first, held) = read(None);
        let held = held.expect("rendered once");
        let expected = |viewer| as_seen(&held, false, viewer);
        assert_eq!(first, expected(None));
        for viewer in ["ada", "bob", "carol", "dan"] {
            let (body, _) = read(Some(viewer));
            assert_eq!(body, expected(Some(viewer)), "{viewer}");
        }
        assert_eq!(renders.get(), 1, "one render for every reader");
        let me = |body: &Bytes| -> Vec<bool> {
            let v: serde_json::Value = serde_json::from_slice(body).unwrap();
            v.as_array()
                .unwrap()
                .iter()
                .flat_map(|m| {
                    m["reactions"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| r["me"].as_bool().unwrap())
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        // Newest first: 👀 on 3, then 👍 and 🎉 on 1.
        assert_eq!(me(&read(Some("bob")).0), vec![false, true, true]);
        assert_eq!(me(&read(Some("ada")).0), vec![false, true, false]);
        assert_eq!(me(&read(Some("carol")).0), vec![true, false, false]);
        // A reaction taken back: the memoised body is rendered again.
        cache.committed(&[reaction(&room, 8, 1, "👍", "ada", false)]);
        assert_eq!(me(&read(Some("ada")).0), vec![false, false, false]);
        assert_eq!(me(&read(Some("bob")).0), vec![false, true, true]);
        assert_eq!(renders.get(), 2);
        let (_, bytes) = cache.usage();
        assert!(bytes > read(None).0.len(), "the memoised body is counted");
    }

    #[test]
    fn a_body_whose_flags_do_not_match_its_reactions_is_rendered_per_reader() {
        let cache = ReadCache::new(10, 1 << 20);
        let room = RoomName::parse("r").unwrap();
        let ticket = cache.ticket(&room);
        cache.fill(&room, ticket, &[message(&room, 1, "x")], false, 1);
        cache.committed(&[reaction(&room, 2, 1, "👍", "ada", true)]);
        let renders = std::cell::Cell::new(0);
        // A shape without `me` (like the seed API's).
        let plain = |_: &[Arc<Message>], _: bool, v: Option<&str>| {
            renders.set(renders.get() + 1);
            Bytes::from(v.unwrap_or("none").to_owned())
        };
        for viewer in ["ada", "bob"] {
            let body = cache
                .newest(&room, 1, "plain", Some(viewer), plain)
                .unwrap();
            assert_eq!(body, viewer.as_bytes());
        }
        assert_eq!(
            renders.get(),
            4,
            "rendered for no reader, then for the reader, each time"
        );
    }

    #[test]
    fn the_total_bound_evicts_the_least_recently_read_rooms() {
        // 16 shards x 4 KiB: each room below weighs about 2.5 KiB.
        let cache = ReadCache::new(10, 16 * 4096);
        let rooms: Vec<RoomName> = (0..200)
            .map(|i| RoomName::parse(&format!("room{i}")).unwrap())
            .collect();
        for room in &rooms {
            let ticket = cache.ticket(room);
            let messages: Vec<Message> = (1..=10)
                .rev()
                .map(|s| message(room, s, &"y".repeat(100)))
                .collect();
            cache.fill(room, ticket, &messages, false, 10);
            let (_, bytes) = cache.usage();
            assert!(bytes <= 16 * 4096, "{bytes} bytes over the bound");
        }
        let (held, _) = cache.usage();
        assert!(held > 0 && held < 200, "{held} rooms held");
        assert!(
            seqs(&cache, &rooms[199], 1).is_some(),
            "the newest fill is held"
        );
        cache.clear();
        assert_eq!(cache.usage(), (0, 0));
    }
}
