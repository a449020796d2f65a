//! Who hears a user's presence changes on this process: an index from each
//! member of a room that a multiplexed stream here follows to those rooms,
//! and from each room to the streams following it. A change of one user
//! costs a lookup of that user, then work for the rooms here that hold them
//! and their streams, each stream counted once however many of those rooms
//! it follows; a change of a user in no followed room costs one lookup.
//!
//! Bounds (owner: [`super::Signals`]): a room is here while a stream here
//! follows it (a stream follows at most `--max-subscriptions` rooms and
//! removes its rooms when it closes, [`Listening`]'s `Drop`); the index
//! holds at most [`MEMBER_IDS_CAP`] (user, room) pairs, beyond which a
//! newly followed room is kept without its members (its streams get no
//! presence frames for it, as when its members cannot be read); a user is
//! in the index only while a followed room holds them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::domain::RoomName;

/// (user, room) pairs the index holds at most.
pub const MEMBER_IDS_CAP: usize = super::MEMBER_IDS_CAP as usize;

/// A room's member ids as read at one moment (shared with the cache).
#[derive(Debug, Clone)]
pub struct Members {
    pub ids: Arc<HashSet<Arc<str>>>,
    pub read_at: Instant,
}

/// Where one stream's presence frames go.
#[derive(Debug, Clone)]
pub(super) struct Inbox {
    pub user_id: Arc<str>,
    pub tx: mpsc::Sender<Utf8Bytes>,
}

#[derive(Debug, Default)]
struct Room {
    /// The members indexed for this room; `None` when they could not be
    /// read or did not fit under the cap.
    members: Option<Members>,
    /// The streams here following the room, by stream id.
    streams: HashMap<u64, Inbox>,
}

/// The index (see the module's documentation).
#[derive(Debug, Default)]
pub(super) struct Audience {
    rooms: HashMap<RoomName, Room>,
    by_user: HashMap<Arc<str>, Vec<RoomName>>,
    indexed: usize,
}

impl Audience {
    /// Stream `id` follows `room`; `members`, when newer than the set
    /// indexed for the room, replaces it.
    pub fn follow(&mut self, id: u64, inbox: &Inbox, room: &RoomName, members: Option<Members>) {
        self.rooms
            .entry(room.clone())
            .or_default()
            .streams
            .insert(id, inbox.clone());
        if let Some(members) = members {
            self.offer(room, members);
        }
    }

    /// Replaces the members indexed for a followed room when `members` were
    /// read later than them.
    pub fn offer(&mut self, room: &RoomName, members: Members) {
        let Some(current) = self.rooms.get(room) else {
            return;
        };
        if let Some(old) = &current.members {
            if Arc::ptr_eq(&old.ids, &members.ids) || old.read_at > members.read_at {
                return;
            }
        }
        self.unindex(room);
        let fits = self.indexed + members.ids.len() <= MEMBER_IDS_CAP;
        if fits {
            for id in members.ids.iter() {
                self.by_user
                    .entry(id.clone())
                    .or_default()
                    .push(room.clone());
            }
            self.indexed += members.ids.len();
        }
        if let Some(current) = self.rooms.get_mut(room) {
            current.members = fits.then_some(members);
        }
    }

    /// Stream `id` no longer follows `room`; the room leaves with its last
    /// stream.
    pub fn unfollow(&mut self, id: u64, room: &RoomName) {
        let Some(current) = self.rooms.get_mut(room) else {
            return;
        };
        current.streams.remove(&id);
        if current.streams.is_empty() {
            self.unindex(room);
            self.rooms.remove(room);
            shrink(&mut self.rooms);
        }
    }

    fn unindex(&mut self, room: &RoomName) {
        let Some(members) = self.rooms.get_mut(room).and_then(|r| r.members.take()) else {
            return;
        };
        for id in members.ids.iter() {
            if let Some(rooms) = self.by_user.get_mut(id) {
                rooms.retain(|r| r != room);
                if rooms.is_empty() {
                    self.by_user.remove(id);
                }
            }
        }
        self.indexed -= members.ids.len();
        shrink(&mut self.by_user);
    }

    /// The inboxes of the streams that should hear of `user_id`: following a
    /// room that holds them, not their own, each once.
    pub fn of(&self, user_id: &str) -> Vec<Inbox> {
        let Some(rooms) = self.by_user.get(user_id) else {
            return Vec::new();
        };
        let mut seen = HashSet::new();
        let mut inboxes = Vec::new();
        for room in rooms {
            let Some(room) = self.rooms.get(room) else {
                continue;
            };
            for (id, inbox) in &room.streams {
                if *inbox.user_id != *user_id && seen.insert(*id) {
                    inboxes.push(inbox.clone());
                }
            }
        }
        inboxes
    }

    /// (rooms followed here, users indexed, (user, room) pairs), for tests.
    #[cfg(test)]
    pub fn sizes(&self) -> (usize, usize, usize) {
        (self.rooms.len(), self.by_user.len(), self.indexed)
    }
}

fn shrink<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>) {
    if map.capacity() > 1024 && map.capacity() > 4 * map.len() {
        map.shrink_to_fit();
    }
}
