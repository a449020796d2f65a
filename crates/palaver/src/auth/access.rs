//! Who may see a room: visibility and membership, cached.
//!
//! Both caches are bounded: at most [`ROOMS_CAPACITY`] rooms and
//! [`MEMBERS_CAPACITY`] (room, user) answers, each kept at most
//! [`ROOMS_TTL`] / [`MEMBERS_TTL`]. Visibility never changes once a room
//! exists, so only existing rooms are cached; a membership answer is dropped
//! locally when the member is added or removed and on other replicas by the
//! access events, the TTL bounding a lost event.

use std::time::Duration;

use moka::sync::Cache;

use crate::domain::RoomName;
use crate::identity::UserId;
use crate::store::accounts::RoomInfo;

pub const ROOMS_CAPACITY: u64 = 50_000;
pub const ROOMS_TTL: Duration = Duration::from_secs(300);
pub const MEMBERS_CAPACITY: u64 = 200_000;
pub const MEMBERS_TTL: Duration = Duration::from_secs(30);

/// What a user may do with a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomAccess {
    /// No such room (a send creates it, public).
    Missing,
    /// The room exists and the user may read and post.
    Allowed(RoomInfo),
    /// A private room the user is not a member of: answer as if missing.
    Hidden(RoomInfo),
}

#[derive(Clone)]
pub struct AccessCache {
    rooms: Cache<RoomName, RoomInfo>,
    members: Cache<(RoomName, UserId), bool>,
}

impl Default for AccessCache {
    fn default() -> Self {
        Self::with_bounds(ROOMS_CAPACITY, MEMBERS_CAPACITY, MEMBERS_TTL)
    }
}

impl AccessCache {
    pub fn with_bounds(rooms: u64, members: u64, members_ttl: Duration) -> Self {
        Self {
            rooms: Cache::builder()
                .max_capacity(rooms)
                .time_to_live(ROOMS_TTL)
                .build(),
            members: Cache::builder()
                .max_capacity(members)
                .time_to_live(members_ttl)
                .build(),
        }
    }

    pub fn room(&self, room: &RoomName) -> Option<RoomInfo> {
        self.rooms.get(room)
    }

    pub fn put_room(&self, room: RoomName, info: RoomInfo) {
        self.rooms.insert(room, info);
    }

    pub fn member(&self, room: &RoomName, user: &UserId) -> Option<bool> {
        self.members.get(&(room.clone(), user.clone()))
    }

    pub fn put_member(&self, room: RoomName, user: UserId, is_member: bool) {
        self.members.insert((room, user), is_member);
    }

    pub fn forget_member(&self, room: &RoomName, user: &UserId) {
        self.members.invalidate(&(room.clone(), user.clone()));
    }

    pub fn clear(&self) {
        self.rooms.invalidate_all();
        self.members.invalidate_all();
    }

    /// Membership answers held, after pending maintenance.
    pub fn member_entries(&self) -> u64 {
        self.members.run_pending_tasks();
        self.members.entry_count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Visibility;

    #[test]
    fn membership_answers_are_bounded_and_forgotten_on_demand() {
        let cache = AccessCache::with_bounds(10, 100, Duration::from_secs(60));
        let room = RoomName::parse("r").unwrap();
        for i in 0..1_000 {
            cache.put_member(room.clone(), UserId::from_stored(format!("u{i}")), true);
        }
        assert!(cache.member_entries() <= 100);
        let ada = UserId::from_stored("ada".into());
        cache.put_member(room.clone(), ada.clone(), true);
        assert_eq!(cache.member(&room, &ada), Some(true));
        cache.forget_member(&room, &ada);
        assert_eq!(cache.member(&room, &ada), None);
    }

    #[test]
    fn membership_answers_expire() {
        let cache = AccessCache::with_bounds(10, 100, Duration::from_millis(50));
        let room = RoomName::parse("r").unwrap();
        let ada = UserId::from_stored("ada".into());
        cache.put_member(room.clone(), ada.clone(), false);
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(cache.member(&room, &ada), None);
        let info = RoomInfo {
            visibility: Visibility::Private,
            owner_id: None,
        };
        cache.put_room(room.clone(), info.clone());
        assert_eq!(cache.room(&room), Some(info));
    }
}
