//! Repair, because PostgreSQL stays the truth: the subscriber remembers the
//! last seq it delivered per room, reads the heads of its rooms every
//! `--bus-repair-interval-ms` (and at once after a reconnect), and delivers
//! from the table what a lost or overtaken publish did not.

use std::collections::HashMap;
use std::sync::Arc;

use super::connection::RESPONSE_TIMEOUT;
use super::subscribe::Subscriber;
use crate::domain::{RoomEvent, RoomName};
use crate::telemetry::metrics as m;

/// Rows a repair reads at most for one room; a longer gap sends the room's
/// subscribers to the table themselves (they page through it).
const REPAIR_MAX_ROWS: i64 = 256;

impl Subscriber {
    /// Rooms' newest seqs in one query; `None` when the database does not
    /// answer (the next check tries again).
    pub(super) async fn heads(&self, rooms: &[RoomName]) -> Option<HashMap<RoomName, i64>> {
        match tokio::time::timeout(RESPONSE_TIMEOUT, self.history.heads(rooms)).await {
            Ok(Ok(heads)) => Some(heads),
            Ok(Err(error)) => {
                tracing::warn!(%error, "bus: cannot read room heads");
                None
            }
            Err(_) => {
                tracing::warn!("bus: reading room heads timed out");
                None
            }
        }
    }

    /// [`Subscriber::check_rooms`] for every subscribed room.
    pub(super) async fn check_heads(&mut self, now: bool) {
        let rooms: Vec<RoomName> = self.rooms.keys().cloned().collect();
        self.check_rooms(rooms, now).await;
    }

    /// Compares `rooms`' heads with what was delivered and reads back what
    /// a publish missed: at once after a reconnect (`now`), otherwise once
    /// the same shortfall is seen at two checks in a row (a publish in
    /// flight is not a loss).
    pub(super) async fn check_rooms(&mut self, rooms: Vec<RoomName>, now: bool) {
        if rooms.is_empty() {
            return;
        }
        let Some(heads) = self.heads(&rooms).await else {
            return;
        };
        for room in rooms {
            let head = heads.get(&room).copied().unwrap_or(0);
            let Some(state) = self.rooms.get_mut(&room) else {
                continue;
            };
            let upto = if head <= state.delivered {
                state.suspect = None;
                None
            } else if now {
                Some(head)
            } else {
                match state.suspect {
                    // Still short of what the last check saw: lost.
                    Some(seen) if seen > state.delivered => Some(seen),
                    _ => {
                        state.suspect = Some(head);
                        None
                    }
                }
            };
            if let Some(upto) = upto {
                self.repair(&room, upto).await;
            }
        }
    }

    /// Delivers `room`'s messages after the last delivered one up to `upto`
    /// from the table, once for all of this process's subscribers.
    pub(super) async fn repair(&mut self, room: &RoomName, upto: i64) {
        let Some(state) = self.rooms.get(room).copied() else {
            return;
        };
        if upto <= state.delivered {
            return;
        }
        metrics::counter!(m::BUS_REPAIRS).increment(1);
        let from = state.delivered + 1;
        if upto - from >= REPAIR_MAX_ROWS {
            self.hub.resync(room);
            self.observer.forget(room);
            self.mark(room, upto);
            return;
        }
        match tokio::time::timeout(RESPONSE_TIMEOUT, self.history.range(room, from, upto)).await {
            Ok(Ok(rows)) => {
                let rows: Vec<Arc<RoomEvent>> = rows.into_iter().map(Arc::new).collect();
                self.hub.publish(room, &rows);
                self.observer.committed(&rows);
            }
            _ => {
                tracing::warn!(room = %room, "bus: cannot read missed rows; subscribers re-read");
                self.hub.resync(room);
                self.observer.forget(room);
            }
        }
        self.mark(room, upto);
    }

    pub(super) fn mark(&mut self, room: &RoomName, delivered: i64) {
        if let Some(state) = self.rooms.get_mut(room) {
            state.delivered = state.delivered.max(delivered);
            state.suspect = None;
        }
    }
}
