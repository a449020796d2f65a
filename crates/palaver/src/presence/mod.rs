//! Presence and typing (DESIGN §5e): ephemeral signals on the multiplexed
//! stream. They take no seq and are never stored; they reach every replica
//! through the bus's signal transport ([`transport`]), coalesced per process.
//!
//! - **Typing**: a client's `typing` frame for a room it follows goes to the
//!   room's other subscribers, here through the [`Hub`] (as
//!   [`crate::bus::Event::Typing`]) and on every other replica through the
//!   transport. At most one per user and room every [`TYPING_EVERY`]: the
//!   same throttle runs where a signal is made and where it is heard, so two
//!   tabs of one person on two replicas still deliver one.
//! - **Presence**: a user is online while any stream of theirs is open on any
//!   replica. Each process counts its own streams per user and tells the
//!   others when a user's first stream opens here and its last closes
//!   (`online` / `gone`), and every [`BEAT_EVERY`] it repeats the list of
//!   users it holds (`beat`). What a process heard from another is a claim
//!   that expires [`CLAIM_TTL`] after the last beat, so a replica that dies
//!   (its `gone` never sent) leaves no record that only it could clear: its
//!   users turn offline within [`CLAIM_TTL`] + [`SWEEP_EVERY`] (50 s) on every
//!   other replica. A process that starts asks the others to beat at once
//!   (`hello`), so its answers are right from its first seconds.
//!
//! Bounds (owners and caps): the typing throttle ([`TYPING_CAP`] keys, swept
//! of keys older than [`TYPING_EVERY`]), the presence table (online users
//! only: an entry is removed when its user goes offline; at most
//! [`MAX_TRACKED_USERS`], beyond which claims of new users from other
//! replicas are ignored), the last-seen times ([`MAX_LAST_SEEN`], least
//! recently seen evicted) and the member sets used to address presence
//! frames ([`MEMBER_IDS_CAP`] ids in all) are owned here, per process, as is
//! the index of who hears whose presence ([`audience`]: rooms followed by
//! streams here, their members, [`MEMBER_IDS_CAP`] pairs at most). Per
//! connection: a [`Listening`] (the rooms it registered, at most
//! `--max-subscriptions`, and an inbox of [`INBOX`] frames).
//!
//! A presence change reaches only the streams that share a room with its
//! user, each once, through their inboxes ([`audience`]): its cost follows
//! the streams that hear it, not the streams of the process.

pub mod audience;
pub mod transport;
pub mod wire;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::bus::Hub;
use crate::domain::RoomName;
use crate::identity::User;
use crate::store::accounts::AccountStore;
use crate::telemetry::metrics as m;

pub use audience::Members;
use audience::{Audience, Inbox};
pub use transport::Transport;
use wire::Signal;

/// At most one typing signal per user and room this often.
pub const TYPING_EVERY: Duration = Duration::from_secs(2);
/// Keys the typing throttle holds at most; beyond it (after sweeping keys
/// older than [`TYPING_EVERY`]) a new typing signal is dropped.
pub const TYPING_CAP: usize = 100_000;
/// How often a process repeats the users it holds streams for.
pub const BEAT_EVERY: Duration = Duration::from_secs(15);
/// How long another replica's claim holds without a beat.
pub const CLAIM_TTL: Duration = Duration::from_secs(45);
/// How often expired claims and throttle keys are swept.
pub const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// Online users one process tracks at most.
pub const MAX_TRACKED_USERS: usize = 1_000_000;
/// Offline users whose last-seen minute a process remembers.
pub const MAX_LAST_SEEN: u64 = 200_000;
/// Member ids cached for addressing presence frames, over all rooms.
pub const MEMBER_IDS_CAP: u64 = 2_000_000;
/// Presence frames waiting for one stream's writer; beyond it a change is
/// dropped for that stream (presence is a hint, `GET /api/v1/presence` the
/// truth) and counted in `palaver_signals_dropped_total`.
pub const INBOX: usize = 64;

/// The user as typing frames name them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Typist {
    pub id: String,
    pub username: String,
    pub display_name: String,
}

impl Typist {
    pub fn of(user: &User) -> Self {
        Self {
            id: user.id.as_str().to_owned(),
            username: user.username.as_str().to_owned(),
            display_name: user.display_name.clone(),
        }
    }
}

/// A typing signal as delivered to a room's subscribers: the frame is
/// serialised once for all of them.
#[derive(Debug, PartialEq)]
pub struct Typing {
    pub room: RoomName,
    pub user_id: String,
    pub frame: Utf8Bytes,
}

impl Typing {
    fn new(room: RoomName, user: &Typist) -> Self {
        #[derive(Serialize)]
        struct Frame<'a> {
            r#type: &'static str,
            room: &'a str,
            user: &'a Typist,
        }
        let frame = Frame {
            r#type: "typing",
            room: room.as_str(),
            user,
        };
        Self {
            frame: serde_json::to_string(&frame).unwrap_or_default().into(),
            room,
            user_id: user.id.clone(),
        }
    }
}

/// A user came online or went offline, as this process sees it.
#[derive(Debug)]
pub struct Change {
    pub user_id: Arc<str>,
    pub online: bool,
    pub frame: Utf8Bytes,
}

impl Change {
    fn new(user_id: Arc<str>, online: bool) -> Self {
        #[derive(Serialize)]
        struct Frame<'a> {
            r#type: &'static str,
            user_id: &'a str,
            status: &'static str,
        }
        let frame = Frame {
            r#type: "presence",
            user_id: &user_id,
            status: if online { "online" } else { "offline" },
        };
        Self {
            frame: serde_json::to_string(&frame).unwrap_or_default().into(),
            user_id,
            online,
        }
    }
}

/// One user's presence as `GET /api/v1/presence` answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub online: bool,
    /// To the minute; `None` when this process never saw the user.
    pub last_seen: Option<OffsetDateTime>,
}

/// An online user: streams here, and claims heard from other replicas.
#[derive(Debug, Default)]
struct Entry {
    local: u32,
    remote: HashMap<Arc<str>, Instant>,
}

impl Entry {
    fn online(&self) -> bool {
        self.local > 0 || !self.remote.is_empty()
    }
}

/// This process's view of presence and typing.
pub struct Signals {
    replica: Arc<str>,
    hub: Arc<Hub>,
    transport: Transport,
    typing: Mutex<HashMap<(RoomName, String), Instant>>,
    table: Mutex<HashMap<Arc<str>, Entry>>,
    last_seen: moka::sync::Cache<Arc<str>, OffsetDateTime>,
    members: moka::sync::Cache<RoomName, Members>,
    audience: Mutex<Audience>,
    next_stream: AtomicU64,
}

impl Signals {
    pub fn new(hub: Arc<Hub>, transport: Transport) -> Arc<Self> {
        let replica: Arc<str> = uuid::Uuid::new_v4().simple().to_string().into();
        Arc::new(Self {
            replica,
            hub,
            transport,
            typing: Mutex::new(HashMap::new()),
            table: Mutex::new(HashMap::new()),
            last_seen: moka::sync::Cache::new(MAX_LAST_SEEN),
            members: moka::sync::Cache::builder()
                .max_capacity(MEMBER_IDS_CAP)
                .weigher(|_, members: &Members| {
                    members.ids.len().clamp(1, u32::MAX as usize) as u32
                })
                .time_to_live(Duration::from_secs(30))
                .build(),
            audience: Mutex::new(Audience::default()),
            next_stream: AtomicU64::new(0),
        })
    }

    /// This process's id on the transport.
    pub fn replica(&self) -> &str {
        &self.replica
    }

    /// A multiplexed stream of `user` that will follow rooms: the handle
    /// that registers them, and the inbox of its presence frames.
    pub fn listen(self: &Arc<Self>, user: &User) -> (Listening, mpsc::Receiver<Utf8Bytes>) {
        let (tx, rx) = mpsc::channel(INBOX);
        let listening = Listening {
            signals: self.clone(),
            id: self.next_stream.fetch_add(1, Ordering::Relaxed),
            inbox: Inbox {
                user_id: user.id.as_str().into(),
                tx,
            },
            rooms: HashSet::new(),
        };
        (listening, rx)
    }

    // -- typing ------------------------------------------------------------

    /// A client of this process types in `room` (which it follows): `false`
    /// when the throttle dropped it.
    pub fn typing(&self, room: &RoomName, user: &User) -> bool {
        let typist = Typist::of(user);
        if !self.admit_typing(room, &typist.id) {
            metrics::counter!(m::TYPING_DROPPED).increment(1);
            return false;
        }
        self.hub
            .signal(room, Arc::new(Typing::new(room.clone(), &typist)));
        self.transport.send(Signal::Typing {
            room: room.clone(),
            user: typist,
        });
        true
    }

    fn admit_typing(&self, room: &RoomName, user_id: &str) -> bool {
        let now = Instant::now();
        let mut typing = lock(&self.typing);
        let key = (room.clone(), user_id.to_owned());
        if let Some(last) = typing.get(&key) {
            if now.duration_since(*last) < TYPING_EVERY {
                return false;
            }
        } else if typing.len() >= TYPING_CAP {
            typing.retain(|_, last| now.duration_since(*last) < TYPING_EVERY);
            if typing.len() >= TYPING_CAP {
                return false;
            }
        }
        typing.insert(key, now);
        true
    }

    // -- presence ----------------------------------------------------------

    /// A stream of `user` opened here; presence holds while the guard lives.
    pub fn stream_opened(self: &Arc<Self>, user: &User) -> Online {
        let user_id: Arc<str> = user.id.as_str().into();
        let came_online = {
            let mut table = lock(&self.table);
            let entry = table.entry(user_id.clone()).or_default();
            let was = entry.online();
            entry.local += 1;
            !was
        };
        if came_online {
            self.transport.send(Signal::Online {
                user: user_id.to_string(),
            });
            self.changed(user_id.clone(), true);
        }
        Online {
            signals: self.clone(),
            user_id,
        }
    }

    fn stream_closed(&self, user_id: &Arc<str>) {
        let went_offline = {
            let mut table = lock(&self.table);
            let Some(entry) = table.get_mut(user_id) else {
                return;
            };
            entry.local = entry.local.saturating_sub(1);
            if entry.local > 0 {
                return;
            }
            self.transport.send(Signal::Gone {
                user: user_id.to_string(),
            });
            if entry.online() {
                false
            } else {
                table.remove(user_id);
                true
            }
        };
        self.last_seen.insert(user_id.clone(), minute(now()));
        if went_offline {
            self.changed(user_id.clone(), false);
        }
    }

    /// The users with a stream here (for the beat).
    fn local_users(&self) -> Vec<String> {
        lock(&self.table)
            .iter()
            .filter(|(_, e)| e.local > 0)
            .map(|(id, _)| id.to_string())
            .collect()
    }

    /// Presence of each user id.
    pub fn status(&self, user_id: &str) -> Status {
        let online = lock(&self.table).get(user_id).is_some_and(Entry::online);
        Status {
            online,
            last_seen: if online {
                Some(minute(now()))
            } else {
                self.last_seen.get(user_id)
            },
        }
    }

    /// Online users this process tracks (the gauge).
    pub fn online_count(&self) -> usize {
        lock(&self.table).len()
    }

    fn changed(&self, user_id: Arc<str>, online: bool) {
        metrics::counter!(m::PRESENCE_CHANGES, "status" => if online { "online" } else { "offline" })
            .increment(1);
        let inboxes = lock(&self.audience).of(&user_id);
        if inboxes.is_empty() {
            return;
        }
        let change = Change::new(user_id, online);
        for inbox in inboxes {
            if inbox.tx.try_send(change.frame.clone()).is_err() {
                metrics::counter!(m::SIGNALS_DROPPED).increment(1);
            }
        }
    }

    /// Applies signals another replica sent.
    pub fn heard(&self, from: &str, signals: Vec<Signal>) {
        if from == &*self.replica {
            return;
        }
        let from: Arc<str> = from.into();
        let now = Instant::now();
        for signal in signals {
            match signal {
                Signal::Typing { room, user } => {
                    if self.admit_typing(&room, &user.id) {
                        self.hub
                            .signal(&room, Arc::new(Typing::new(room.clone(), &user)));
                    }
                }
                Signal::Online { user } => self.claim(&from, user, now),
                Signal::Beat { users } => {
                    for user in users {
                        self.claim(&from, user, now);
                    }
                }
                Signal::Gone { user } => self.unclaim(&from, &user),
                Signal::Hello => self.beat(),
            }
        }
    }

    fn claim(&self, from: &Arc<str>, user: String, now: Instant) {
        let user_id: Arc<str> = user.into();
        let came_online = {
            let mut table = lock(&self.table);
            if !table.contains_key(&user_id) && table.len() >= MAX_TRACKED_USERS {
                return;
            }
            let entry = table.entry(user_id.clone()).or_default();
            let was = entry.online();
            entry.remote.insert(from.clone(), now);
            !was
        };
        if came_online {
            self.changed(user_id, true);
        }
    }

    fn unclaim(&self, from: &Arc<str>, user: &str) {
        let went_offline = {
            let mut table = lock(&self.table);
            let Some(entry) = table.get_mut(user) else {
                return;
            };
            if entry.remote.remove(from).is_none() || entry.online() {
                return;
            }
            table.remove(user);
            true
        };
        if went_offline {
            let user_id: Arc<str> = user.into();
            self.last_seen.insert(user_id.clone(), minute(now()));
            self.changed(user_id, false);
        }
    }

    /// Drops claims without a beat for [`CLAIM_TTL`] and stale throttle keys.
    fn sweep(&self) {
        let now = Instant::now();
        let gone: Vec<(Arc<str>, Instant)> = {
            let mut table = lock(&self.table);
            let mut gone = Vec::new();
            table.retain(|user, entry| {
                let newest = entry.remote.values().max().copied();
                entry
                    .remote
                    .retain(|_, beat| now.duration_since(*beat) < CLAIM_TTL);
                if entry.online() {
                    true
                } else {
                    gone.push((user.clone(), newest.unwrap_or(now)));
                    false
                }
            });
            if table.capacity() > 1024 && table.capacity() > 4 * table.len() {
                table.shrink_to_fit();
            }
            gone
        };
        let wall = now_instant_to_wall(now);
        for (user, last_beat) in gone {
            let seen = wall - (now.duration_since(last_beat));
            self.last_seen.insert(user.clone(), minute(seen));
            self.changed(user, false);
        }
        let mut typing = lock(&self.typing);
        typing.retain(|_, last| now.duration_since(*last) < TYPING_EVERY);
        if typing.capacity() > 1024 && typing.capacity() > 4 * typing.len() {
            typing.shrink_to_fit();
        }
    }

    /// Tells the others which users hold a stream here.
    fn beat(&self) {
        let users = self.local_users();
        for chunk in users.chunks(wire::BEAT_CHUNK) {
            self.transport.send(Signal::Beat {
                users: chunk.to_vec(),
            });
        }
    }

    /// The member ids of `room`, cached for [`MEMBER_IDS_CAP`] ids in all
    /// and 30 s; read again when the cached set was read before `since`
    /// (a membership change heard then), so the streams that hear one change
    /// together share one read.
    pub async fn members(
        &self,
        accounts: &Arc<dyn AccountStore>,
        room: &RoomName,
        since: Option<Instant>,
    ) -> Option<Members> {
        if let Some(members) = self.members.get(room) {
            if since.is_none_or(|since| members.read_at >= since) {
                return Some(members);
            }
        }
        let read_at = Instant::now();
        let members = accounts.members(room).await.ok()?;
        let members = Members {
            ids: Arc::new(members.into_iter().map(|u| u.id.as_str().into()).collect()),
            read_at,
        };
        self.members.insert(room.clone(), members.clone());
        Some(members)
    }

    /// Runs the beat and the sweep until shutdown; says hello first.
    pub async fn run(self: Arc<Self>, shutdown: tokio_util::sync::CancellationToken) {
        self.transport.send(Signal::Hello);
        let mut beat = tokio::time::interval(BEAT_EVERY);
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = beat.tick() => self.beat(),
                _ = sweep.tick() => {
                    self.sweep();
                    metrics::gauge!(m::PRESENCE_ONLINE).set(self.online_count() as f64);
                }
            }
        }
    }
}

/// One multiplexed stream's place in the presence audience: the rooms it
/// follows (at most the stream's `--max-subscriptions`), removed when it
/// drops.
pub struct Listening {
    signals: Arc<Signals>,
    id: u64,
    inbox: Inbox,
    rooms: HashSet<RoomName>,
}

impl Listening {
    /// The stream follows `room`, whose members are `members` (`None` when
    /// they could not be read: no presence frames for that room).
    pub fn follow(&mut self, room: &RoomName, members: Option<Members>) {
        lock(&self.signals.audience).follow(self.id, &self.inbox, room, members);
        self.rooms.insert(room.clone());
    }

    /// The members of a followed room were read again.
    pub fn offer(&self, room: &RoomName, members: Members) {
        if self.rooms.contains(room) {
            lock(&self.signals.audience).offer(room, members);
        }
    }

    /// The stream no longer follows `room`.
    pub fn unfollow(&mut self, room: &RoomName) {
        if self.rooms.remove(room) {
            lock(&self.signals.audience).unfollow(self.id, room);
        }
        if self.rooms.capacity() > 64 && self.rooms.capacity() > 4 * self.rooms.len() {
            self.rooms.shrink_to_fit();
        }
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        let mut audience = lock(&self.signals.audience);
        for room in self.rooms.drain() {
            audience.unfollow(self.id, &room);
        }
    }
}

/// Holds a user online while a stream of theirs is open here.
pub struct Online {
    signals: Arc<Signals>,
    user_id: Arc<str>,
}

impl Drop for Online {
    fn drop(&mut self) {
        self.signals.stream_closed(&self.user_id);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain maps behind: keep going.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

/// The wall-clock time of `instant` (a moment at or before now).
fn now_instant_to_wall(instant: Instant) -> OffsetDateTime {
    now() - Instant::now().duration_since(instant)
}

/// A time truncated to the minute.
pub fn minute(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_second(0)
        .and_then(|t| t.replace_nanosecond(0))
        .unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{Role, UserId, Username};

    fn user(name: &str) -> User {
        User {
            id: UserId::from_stored(format!("id-{name}")),
            username: Username::parse(name).unwrap(),
            display_name: name.to_uppercase(),
            role: Role::Member,
            suspended: false,
        }
    }

    fn signals() -> Arc<Signals> {
        Signals::new(Arc::new(Hub::new(16)), Transport::Local)
    }

    #[tokio::test]
    async fn typing_is_throttled_per_user_and_room() {
        let s = signals();
        let room = RoomName::parse("r").unwrap();
        let other = RoomName::parse("s").unwrap();
        let ada = user("ada");
        assert!(s.typing(&room, &ada));
        assert!(!s.typing(&room, &ada), "again within 2 s");
        assert!(s.typing(&other, &ada), "another room");
        assert!(s.typing(&room, &user("grace")), "another user");
        // Heard from another replica: the same throttle.
        s.heard(
            "elsewhere",
            vec![Signal::Typing {
                room: room.clone(),
                user: Typist::of(&user("joan")),
            }],
        );
        assert!(
            !s.typing(&room, &user("joan")),
            "joan typed elsewhere just now"
        );
    }

    fn members(ids: &[&str]) -> Members {
        Members {
            ids: Arc::new(ids.iter().map(|id| Arc::from(*id)).collect()),
            read_at: Instant::now(),
        }
    }

    fn frames(inbox: &mut mpsc::Receiver<Utf8Bytes>) -> Vec<String> {
        std::iter::from_fn(|| inbox.try_recv().ok())
            .map(|f| f.as_str().to_owned())
            .collect()
    }

    fn presence(user_id: &str, status: &str) -> String {
        format!(r#"{{"type":"presence","user_id":"{user_id}","status":"{status}"}}"#)
    }

    #[tokio::test]
    async fn presence_follows_local_streams_and_remote_claims() {
        let s = signals();
        let (mut grace, mut changes) = s.listen(&user("grace"));
        grace.follow(
            &RoomName::parse("r").unwrap(),
            Some(members(&["id-ada", "id-grace"])),
        );
        let ada = user("ada");
        let first = s.stream_opened(&ada);
        let second = s.stream_opened(&ada);
        assert!(s.status("id-ada").online);
        assert_eq!(frames(&mut changes), [presence("id-ada", "online")]);
        drop(first);
        assert!(s.status("id-ada").online, "one stream still open");
        drop(second);
        let status = s.status("id-ada");
        assert!(!status.online);
        assert_eq!(status.last_seen, Some(minute(now())));
        assert_eq!(frames(&mut changes), [presence("id-ada", "offline")]);
        assert_eq!(s.online_count(), 0, "offline users leave the table");

        // Another replica's claim, then its withdrawal.
        s.heard(
            "b",
            vec![Signal::Online {
                user: "id-grace".into(),
            }],
        );
        assert!(s.status("id-grace").online);
        s.heard(
            "c",
            vec![Signal::Beat {
                users: vec!["id-grace".into()],
            }],
        );
        s.heard(
            "b",
            vec![Signal::Gone {
                user: "id-grace".into(),
            }],
        );
        assert!(s.status("id-grace").online, "replica c still holds her");
        s.heard(
            "c",
            vec![Signal::Gone {
                user: "id-grace".into(),
            }],
        );
        assert!(!s.status("id-grace").online);
        // Our own signals heard back change nothing.
        let me = s.replica().to_owned();
        s.heard(
            &me,
            vec![Signal::Online {
                user: "id-joan".into(),
            }],
        );
        assert!(!s.status("id-joan").online);
    }

    #[tokio::test]
    async fn a_change_reaches_each_stream_sharing_a_room_once_and_no_other() {
        let s = signals();
        let [r1, r2, r3, lone] = ["r1", "r2", "r3", "lone"].map(|r| RoomName::parse(r).unwrap());
        let shared = members(&["id-ada", "id-grace", "id-joan"]);
        // Grace follows three rooms Ada is in, and one she is not in.
        let (mut grace, mut grace_inbox) = s.listen(&user("grace"));
        for room in [&r1, &r2, &r3] {
            grace.follow(room, Some(shared.clone()));
        }
        grace.follow(&lone, Some(members(&["id-grace", "id-kim"])));
        // Kim follows only the room Ada is not in; Ada follows r1 herself.
        let (mut kim, mut kim_inbox) = s.listen(&user("kim"));
        kim.follow(&lone, Some(members(&["id-grace", "id-kim"])));
        let (mut ada_stream, mut ada_inbox) = s.listen(&user("ada"));
        ada_stream.follow(&r1, Some(shared.clone()));

        let online = s.stream_opened(&user("ada"));
        assert_eq!(frames(&mut grace_inbox), [presence("id-ada", "online")]);
        assert!(frames(&mut kim_inbox).is_empty(), "kim shares no room");
        assert!(frames(&mut ada_inbox).is_empty(), "not to her own streams");
        drop(online);
        assert_eq!(frames(&mut grace_inbox), [presence("id-ada", "offline")]);

        // A newer read of r1 without Ada: she is still in r2 and r3.
        let mut unfollowed = grace;
        unfollowed.offer(&r1, members(&["id-grace", "id-joan"]));
        unfollowed.unfollow(&r2);
        drop(s.stream_opened(&user("ada")));
        assert_eq!(
            frames(&mut grace_inbox).len(),
            2,
            "online and offline, via r3"
        );
        unfollowed.unfollow(&r3);
        drop(s.stream_opened(&user("ada")));
        assert!(frames(&mut grace_inbox).is_empty(), "no shared room left");

        // Nothing is left once the streams are gone.
        drop((unfollowed, kim, ada_stream));
        assert_eq!(lock(&s.audience).sizes(), (0, 0, 0));
    }

    #[tokio::test]
    async fn a_full_inbox_drops_presence_frames() {
        let s = signals();
        let (mut grace, mut inbox) = s.listen(&user("grace"));
        let room = RoomName::parse("r").unwrap();
        let ids: Vec<String> = (0..2 * INBOX).map(|i| format!("id-u{i}")).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        grace.follow(&room, Some(members(&ids)));
        let streams: Vec<Online> = (0..2 * INBOX)
            .map(|i| s.stream_opened(&user(&format!("u{i}"))))
            .collect();
        assert_eq!(frames(&mut inbox).len(), INBOX, "the rest were dropped");
        drop(streams);
        assert_eq!(frames(&mut inbox).len(), INBOX);
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_replicas_claims_expire() {
        let s = signals();
        s.heard(
            "dead",
            vec![Signal::Beat {
                users: vec!["id-ada".into()],
            }],
        );
        assert!(s.status("id-ada").online);
        tokio::time::advance(CLAIM_TTL - Duration::from_secs(1)).await;
        s.sweep();
        assert!(s.status("id-ada").online, "not yet");
        tokio::time::advance(Duration::from_secs(2)).await;
        s.sweep();
        assert!(!s.status("id-ada").online);
        assert_eq!(s.online_count(), 0);
    }
}
