//! Room events (DESIGN §5b): a new message, or a change made to one. Every
//! event takes the room's next seq; this one type is what is stored,
//! numbered, published, cached and framed, whatever its kind.

use std::sync::Arc;

use serde::Serialize;
use time::OffsetDateTime;
use unicode_segmentation::UnicodeSegmentation;
use utoipa::ToSchema;

use super::{
    serialize_timestamp, FrameCache, InvalidInput, Message, MessageText, NewMessage, RoomName,
};

/// A reaction's emoji: one extended grapheme cluster of at most 32 bytes
/// that is an emoji (skin tones, ZWJ sequences and flags included).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Emoji(String);

impl Emoji {
    pub const MAX_BYTES: usize = 32;

    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let one_cluster = raw.graphemes(true).count() == 1;
        if raw.len() <= Self::MAX_BYTES && one_cluster && is_emoji(raw) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidInput::new(
                "invalid_emoji",
                "a reaction is one emoji of at most 32 bytes",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `cluster` (one grapheme) is an emoji: a known emoji, with or
/// without a skin tone or a presentation selector, or a pictograph of the
/// emoji blocks (U+1F000–U+1FAFF, U+2600–U+27BF: Unicode's
/// Extended_Pictographic there), so that emoji newer than the table count.
fn is_emoji(cluster: &str) -> bool {
    if emojis::get(cluster).is_some() {
        return true;
    }
    let base: String = cluster
        .chars()
        .filter(|c| !matches!(*c as u32, 0x1F3FB..=0x1F3FF | 0xFE0E | 0xFE0F))
        .collect();
    if !base.is_empty()
        && (emojis::get(&base).is_some() || emojis::get(&format!("{base}\u{FE0F}")).is_some())
    {
        return true;
    }
    // A skin tone alone (U+1F3FB-1F3FF) is an emoji too: it shows as its
    // swatch.
    base.chars()
        .next()
        .or_else(|| cluster.chars().next())
        .is_some_and(|c| matches!(c as u32, 0x1F000..=0x1FAFF | 0x2600..=0x27BF))
}

/// A change the write path stores: a send, or a change to a message, by a
/// signed-in user whose access to the room the API has checked.
#[derive(Debug, Clone)]
pub enum Change {
    Send(NewMessage),
    Edit {
        target: i64,
        user_id: String,
        text: MessageText,
        mentions: Vec<String>,
    },
    Delete {
        target: i64,
        user_id: String,
        /// The room's owner or an admin may delete anyone's message.
        moderator: bool,
    },
    React {
        target: i64,
        user_id: String,
        emoji: Emoji,
        on: bool,
    },
}

/// A stored room event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomEvent {
    Message(Arc<Message>),
    Edit(EditEvent),
    Delete(DeleteEvent),
    Reaction(ReactionEvent),
}

/// A message's text was changed by its author.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct EditEvent {
    #[serde(skip)]
    pub room: RoomName,
    pub seq: i64,
    /// The edited message's seq.
    pub target: i64,
    /// The new text; empty once the message has been deleted.
    pub text: String,
    #[serde(serialize_with = "serialize_timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub edited_at: OffsetDateTime,
    pub mentions: Vec<String>,
    #[serde(skip)]
    pub user_id: String,
    #[serde(skip)]
    pub frame: FrameCache,
}

/// A message was deleted: a tombstone stays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DeleteEvent {
    #[serde(skip)]
    pub room: RoomName,
    pub seq: i64,
    pub target: i64,
    #[serde(skip)]
    pub at: OffsetDateTime,
    #[serde(skip)]
    pub user_id: String,
    #[serde(skip)]
    pub frame: FrameCache,
}

/// A user added (`on`) or took back a reaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ReactionEvent {
    #[serde(skip)]
    pub room: RoomName,
    pub seq: i64,
    pub target: i64,
    #[schema(example = "👍")]
    pub emoji: String,
    pub user_id: String,
    pub on: bool,
    #[serde(skip)]
    pub at: OffsetDateTime,
    #[serde(skip)]
    pub frame: FrameCache,
}

impl RoomEvent {
    pub fn room(&self) -> &RoomName {
        match self {
            RoomEvent::Message(m) => &m.room,
            RoomEvent::Edit(e) => &e.room,
            RoomEvent::Delete(e) => &e.room,
            RoomEvent::Reaction(e) => &e.room,
        }
    }

    pub fn seq(&self) -> i64 {
        match self {
            RoomEvent::Message(m) => m.seq,
            RoomEvent::Edit(e) => e.seq,
            RoomEvent::Delete(e) => e.seq,
            RoomEvent::Reaction(e) => e.seq,
        }
    }

    /// When the event was stored.
    pub fn at(&self) -> OffsetDateTime {
        match self {
            RoomEvent::Message(m) => m.sent_at,
            RoomEvent::Edit(e) => e.edited_at,
            RoomEvent::Delete(e) => e.at,
            RoomEvent::Reaction(e) => e.at,
        }
    }

    /// The message a change applies to; `None` for a new message.
    pub fn target(&self) -> Option<i64> {
        match self {
            RoomEvent::Message(_) => None,
            RoomEvent::Edit(e) => Some(e.target),
            RoomEvent::Delete(e) => Some(e.target),
            RoomEvent::Reaction(e) => Some(e.target),
        }
    }

    /// The frame's `type`, the SSE event name.
    pub fn kind(&self) -> &'static str {
        match self {
            RoomEvent::Message(_) => "message",
            RoomEvent::Edit(_) => "edit",
            RoomEvent::Delete(_) => "delete",
            RoomEvent::Reaction(_) => "reaction",
        }
    }

    /// The encoding shared by every subscriber the event reaches.
    pub fn frame(&self) -> &FrameCache {
        match self {
            RoomEvent::Message(m) => &m.frame,
            RoomEvent::Edit(e) => &e.frame,
            RoomEvent::Delete(e) => &e.frame,
            RoomEvent::Reaction(e) => &e.frame,
        }
    }

    pub fn as_message(&self) -> Option<&Arc<Message>> {
        match self {
            RoomEvent::Message(m) => Some(m),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emoji_is_one_known_emoji_cluster_of_at_most_32_bytes() {
        for ok in [
            "👍",
            "❤️",
            "❤",
            "👍🏽",
            "🇫🇷",
            "👩‍💻",
            "🎉",
            "1️⃣",
            "🌡",
            "\u{1F5FF}",
            "\u{1FAF8}",
        ] {
            assert!(Emoji::parse(ok).is_ok(), "{ok} should be an emoji");
        }
        let long = "x".repeat(1000);
        for bad in [
            "",
            "a",
            "ok",
            "👍👍",
            "+1",
            ":thumbsup:",
            "\u{200d}",
            long.as_str(),
        ] {
            assert!(Emoji::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
