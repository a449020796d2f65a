//! The chat domain: validated values and the stored message.
//!
//! Parse, don't validate: `RoomName::parse`, `Author::parse`,
//! `MessageText::parse` and `ClientId::parse` are the only way in, so the rest
//! of the crate only ever holds valid values.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize, Serializer};
use time::{format_description::BorrowedFormatItem, macros::format_description, OffsetDateTime};
use utoipa::ToSchema;

/// Why a value was refused; the message is safe to show to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidInput {
    /// Machine-readable error code, e.g. `invalid_room`.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
}

impl InvalidInput {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// A room name: `^[a-z0-9][a-z0-9_-]{0,63}$`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomName(Arc<str>);

impl RoomName {
    pub const MAX_LEN: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        let bytes = raw.as_bytes();
        let valid = !bytes.is_empty()
            && bytes.len() <= Self::MAX_LEN
            && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-');
        if valid {
            Ok(Self(Arc::from(raw)))
        } else {
            Err(InvalidInput::new(
                "invalid_room",
                "room names are 1-64 characters of a-z, 0-9, '_' and '-', starting with a letter or digit",
            ))
        }
    }

    /// The room the seed-compatible `/chat` endpoint reads and writes.
    pub fn general() -> Self {
        Self(Arc::from("general"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for RoomName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Trims `raw` and checks its length in characters and that it holds no
/// control characters other than newline and tab (when `multiline`).
fn parse_text(
    raw: &str,
    max_chars: usize,
    multiline: bool,
    code: &'static str,
    what: &str,
) -> Result<String, InvalidInput> {
    let trimmed = raw.trim();
    let chars = trimmed.chars().count();
    if chars == 0 {
        return Err(InvalidInput::new(code, format!("{what} is required")));
    }
    if chars > max_chars {
        return Err(InvalidInput::new(
            code,
            format!("{what} is longer than {max_chars} characters"),
        ));
    }
    let allowed = |c: char| !c.is_control() || (multiline && (c == '\n' || c == '\t'));
    if !trimmed.chars().all(allowed) {
        return Err(InvalidInput::new(
            code,
            format!("{what} contains control characters"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// A display name: 1-64 characters after trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Author(String);

impl Author {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        parse_text(raw, Self::MAX_CHARS, false, "invalid_author", "author").map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Message text: 1 to `max_chars` characters after trimming; newline and tab
/// are the only control characters allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageText(String);

impl MessageText {
    /// The default and upper bound of the configurable length limit.
    pub const MAX_CHARS: usize = 4000;

    pub fn parse(raw: &str, max_chars: usize) -> Result<Self, InvalidInput> {
        parse_text(raw, max_chars, true, "invalid_text", "text").map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An idempotency key chosen by the client: 1-64 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientId(String);

impl ClientId {
    pub const MAX_LEN: usize = 64;

    pub fn parse(raw: &str) -> Result<Self, InvalidInput> {
        if !raw.is_empty()
            && raw.len() <= Self::MAX_LEN
            && raw.bytes().all(|b| b.is_ascii_graphic())
        {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidInput::new(
                "invalid_client_id",
                "client_id is 1-64 visible ASCII characters",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A message accepted for storage, before it has a sequence number.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub author: Author,
    /// The signed-in sender; `None` for anonymous seed-API messages.
    pub author_id: Option<String>,
    pub text: MessageText,
    pub client_id: Option<ClientId>,
    pub client_ip: String,
    /// The message this one answers (a message of the same room, not
    /// deleted: the API checks it before the send is queued).
    pub reply_to: Option<i64>,
    /// User ids the text mentions, resolved before the send is queued.
    pub mentions: Vec<String>,
    /// Files attached to the message (§5d).
    pub files: Vec<FileRef>,
}

/// A stored message, as every API and stream returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Message {
    /// Room the message belongs to.
    #[schema(value_type = String, example = "general")]
    pub room: RoomName,
    /// Per-room sequence number: gapless, strictly increasing from 1.
    #[schema(example = 42, minimum = 1)]
    pub seq: i64,
    /// The sender's display name at sending time.
    #[schema(example = "Ada")]
    pub author: String,
    /// The sender's user id; null for anonymous seed-API messages.
    #[schema(example = "7b0c6f5e-2f55-4a4c-9c43-1f0c8a3e2d11")]
    pub author_id: Option<String>,
    #[schema(example = "hi")]
    pub text: String,
    /// When the message was stored (UTC, RFC 3339 with milliseconds).
    #[serde(serialize_with = "serialize_timestamp")]
    #[schema(value_type = String, format = DateTime, example = "2026-11-25T10:00:00.123Z")]
    pub sent_at: OffsetDateTime,
    /// The idempotency key the sender gave, if any.
    pub client_id: Option<String>,
    /// When the text was last edited; null when never.
    #[serde(serialize_with = "serialize_optional_timestamp")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub edited_at: Option<OffsetDateTime>,
    /// A deleted message stays as a tombstone with an empty text.
    pub deleted: bool,
    /// The seq of the message this one answers.
    pub reply_to: Option<i64>,
    /// Reactions, one entry per emoji, in the order they were first given.
    pub reactions: Vec<Reaction>,
    /// User ids the text mentions.
    pub mentions: Vec<String>,
    /// Attached files.
    pub files: Vec<FileRef>,
    /// The room seq this state is as of: it includes every event of this
    /// message up to this seq and none after. A client that also receives the
    /// message's events (a replay after a page, DESIGN §5b) applies only
    /// those with a greater seq, so a reaction is never counted twice.
    #[schema(example = 42, minimum = 1)]
    pub as_of: i64,
    /// Client address; kept for moderation, never sent on the v1 API.
    #[serde(skip)]
    pub client_ip: String,
    /// The message's WebSocket frame, serialised once and shared by every
    /// subscriber it is delivered to.
    #[serde(skip)]
    pub frame: FrameCache,
}

/// One emoji's reactions on a message. `count` and `me` are what clients
/// see; `users` (who reacted) stays on the server, so that `me` can be set
/// for each reader ([`Message::seen_by`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Reaction {
    #[schema(example = "👍")]
    pub emoji: String,
    pub count: u32,
    /// Whether the reader is among those who reacted.
    pub me: bool,
    #[serde(skip)]
    pub users: Vec<String>,
}

/// An attached file, as messages carry it (DESIGN §5d).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FileRef {
    pub id: String,
    pub name: String,
    pub size: i64,
    pub content_type: String,
    /// Pixel size of an image, so that a client can reserve its space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
}

impl Message {
    /// The message as `user` sees it: `me` set on each reaction. Borrows
    /// when there is nothing to set.
    pub fn seen_by(self: &Arc<Self>, user: Option<&str>) -> Arc<Self> {
        let Some(user) = user else {
            return self.clone();
        };
        if !self
            .reactions
            .iter()
            .any(|r| r.users.iter().any(|u| u == user))
        {
            return self.clone();
        }
        let mut seen = Message::clone(self);
        seen.frame = FrameCache::default();
        for reaction in &mut seen.reactions {
            reaction.me = reaction.users.iter().any(|u| u == user);
        }
        Arc::new(seen)
    }

    /// Applies a later event of this message's room to it; an event for
    /// another message, or one at or before [`Message::as_of`] (applied
    /// already), changes nothing. Applying the same event twice gives the
    /// same message as applying it once.
    pub fn apply(&mut self, event: &RoomEvent) -> bool {
        if event.seq() <= self.as_of {
            return false;
        }
        match event {
            RoomEvent::Edit(edit) if edit.target == self.seq && !self.deleted => {
                self.text = edit.text.clone();
                self.edited_at = Some(edit.edited_at);
                self.mentions = edit.mentions.clone();
            }
            RoomEvent::Delete(delete) if delete.target == self.seq => {
                self.deleted = true;
                self.text.clear();
                self.mentions.clear();
                self.files.clear();
                self.reactions.clear();
            }
            RoomEvent::Reaction(r) if r.target == self.seq && !self.deleted => {
                let at = self.reactions.iter().position(|x| x.emoji == r.emoji);
                match (at, r.on) {
                    (Some(i), true) => {
                        let entry = &mut self.reactions[i];
                        if entry.users.contains(&r.user_id) {
                            return false;
                        }
                        entry.users.push(r.user_id.clone());
                        entry.count = entry.users.len() as u32;
                    }
                    (None, true) => self.reactions.push(Reaction {
                        emoji: r.emoji.clone(),
                        count: 1,
                        me: false,
                        users: vec![r.user_id.clone()],
                    }),
                    (Some(i), false) => {
                        let entry = &mut self.reactions[i];
                        let before = entry.users.len();
                        entry.users.retain(|u| u != &r.user_id);
                        if entry.users.len() == before {
                            return false;
                        }
                        entry.count = entry.users.len() as u32;
                        if entry.users.is_empty() {
                            self.reactions.remove(i);
                        }
                    }
                    (None, false) => return false,
                }
            }
            _ => return false,
        }
        self.as_of = event.seq();
        self.frame = FrameCache::default();
        true
    }
}

/// A lazily filled, shareable encoding of a message. It is not part of the
/// message's value: clones carry it along and comparisons ignore it.
#[derive(Clone, Default)]
pub struct FrameCache(std::sync::OnceLock<bytes::Bytes>);

impl FrameCache {
    /// The cached bytes, computed by `encode` on first use.
    pub fn get_or_init(&self, encode: impl FnOnce() -> bytes::Bytes) -> bytes::Bytes {
        self.0.get_or_init(encode).clone()
    }
}

impl PartialEq for FrameCache {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for FrameCache {}

impl fmt::Debug for FrameCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FrameCache")
    }
}

const TIMESTAMP: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// Formats a UTC timestamp as `2026-11-25T10:00:00.123Z`.
pub fn format_timestamp(at: OffsetDateTime) -> String {
    at.to_offset(time::UtcOffset::UTC)
        .format(TIMESTAMP)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

fn serialize_timestamp<S: Serializer>(at: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_timestamp(*at))
}

pub(crate) fn serialize_optional_timestamp<S: Serializer>(
    at: &Option<OffsetDateTime>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => s.serialize_str(&format_timestamp(*at)),
        None => s.serialize_none(),
    }
}

/// Now, truncated to milliseconds so that what is stored and what is
/// returned are the same instant.
pub fn now_millis() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    let nanos = now.nanosecond();
    now.replace_nanosecond(nanos - nanos % 1_000_000)
        .unwrap_or(now)
}

mod event;
pub use event::{Change, DeleteEvent, EditEvent, Emoji, ReactionEvent, RoomEvent};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names_follow_the_documented_pattern() {
        for ok in ["general", "a", "0", "a-b_c", &"x".repeat(64)] {
            assert!(RoomName::parse(ok).is_ok(), "{ok} should be valid");
        }
        for bad in [
            "",
            "-a",
            "_a",
            "General",
            "a b",
            "a/b",
            "é",
            &"x".repeat(65),
            "a\0",
        ] {
            assert!(RoomName::parse(bad).is_err(), "{bad:?} should be invalid");
        }
    }

    #[test]
    fn author_is_trimmed_and_bounded_in_characters() {
        assert_eq!(Author::parse("  ada ").unwrap().as_str(), "ada");
        assert!(Author::parse("   ").is_err());
        assert!(Author::parse(&"é".repeat(64)).is_ok());
        assert!(Author::parse(&"é".repeat(65)).is_err());
        assert!(Author::parse("a\nb").is_err(), "no newline in a name");
    }

    #[test]
    fn text_allows_newline_and_tab_but_no_other_control_characters() {
        assert!(MessageText::parse("line\n\tindented", 4000).is_ok());
        assert!(MessageText::parse("nul\0", 4000).is_err());
        assert!(MessageText::parse("bell\u{7}", 4000).is_err());
        assert!(MessageText::parse("esc\u{1b}[31m", 4000).is_err());
        assert!(MessageText::parse("next\u{85}line", 4000).is_err());
    }

    #[test]
    fn text_length_is_counted_after_trimming() {
        let exactly = "x".repeat(4000);
        assert!(MessageText::parse(&format!("  {exactly}\n"), 4000).is_ok());
        assert!(MessageText::parse(&"x".repeat(4001), 4000).is_err());
        assert!(MessageText::parse(" \n\t ", 4000).is_err());
        assert!(MessageText::parse("abc", 2).is_err());
    }

    #[test]
    fn client_ids_are_short_visible_ascii() {
        assert!(ClientId::parse("5f0c-1").is_ok());
        assert!(ClientId::parse("").is_err());
        assert!(ClientId::parse("has space").is_err());
        assert!(ClientId::parse(&"k".repeat(65)).is_err());
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_milliseconds() {
        let at = time::macros::datetime!(2026-11-25 10:00:00.123456 UTC);
        assert_eq!(format_timestamp(at), "2026-11-25T10:00:00.123Z");
        let at = time::macros::datetime!(2026-11-25 12:00:00 +2);
        assert_eq!(format_timestamp(at), "2026-11-25T10:00:00.000Z");
    }

    #[test]
    fn now_is_truncated_to_milliseconds() {
        assert_eq!(now_millis().nanosecond() % 1_000_000, 0);
    }
}
