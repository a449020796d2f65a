//! The payload format: one room's committed events as versioned JSON on
//! the room's channel, and the checks a payload heard from the broker must
//! pass before anything is delivered.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::{
    Author, ClientId, DeleteEvent, EditEvent, Emoji, FileRef, Message, MessageText, ReactionEvent,
    RoomEvent, RoomName,
};

/// Channel names are this prefix and the room name (`[a-z0-9_-]`, so no
/// `{…}` hash tag can sneak in).
pub const CHANNEL_PREFIX: &str = "palaver:room:";
/// The payload format this build writes and reads.
pub const PAYLOAD_VERSION: u32 = 2;
/// Largest payload accepted from the broker (a full batch of 256 messages of
/// 4,000 characters is about 4 MiB of JSON).
const MAX_PAYLOAD_BYTES: usize = 8 << 20;
/// Most messages one payload may carry.
const MAX_PAYLOAD_MESSAGES: usize = 10_000;

pub fn channel(room: &RoomName) -> String {
    format!("{CHANNEL_PREFIX}{room}")
}

pub(super) fn room_of(channel: &str) -> Option<RoomName> {
    RoomName::parse(channel.strip_prefix(CHANNEL_PREFIX)?).ok()
}

#[derive(Serialize)]
struct PayloadOut<'a> {
    v: u32,
    room: &'a str,
    events: Vec<WireOut<'a>>,
}

/// One event on the wire: the fields of its kind, with times in
/// milliseconds since the epoch.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum WireOut<'a> {
    Message {
        seq: i64,
        author: &'a str,
        author_id: Option<&'a str>,
        text: &'a str,
        sent_at_ms: i64,
        client_id: Option<&'a str>,
        client_ip: &'a str,
        reply_to: Option<i64>,
        mentions: &'a [String],
        files: &'a [FileRef],
    },
    Edit {
        seq: i64,
        target: i64,
        text: &'a str,
        at_ms: i64,
        mentions: &'a [String],
        user_id: &'a str,
    },
    Delete {
        seq: i64,
        target: i64,
        at_ms: i64,
        user_id: &'a str,
    },
    Reaction {
        seq: i64,
        target: i64,
        emoji: &'a str,
        user_id: &'a str,
        on: bool,
        at_ms: i64,
    },
}

#[derive(Deserialize)]
struct PayloadIn {
    v: u32,
    room: String,
    events: Vec<WireIn>,
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum WireIn {
    Message {
        seq: i64,
        author: String,
        #[serde(default)]
        author_id: Option<String>,
        text: String,
        sent_at_ms: i64,
        client_id: Option<String>,
        client_ip: String,
        #[serde(default)]
        reply_to: Option<i64>,
        #[serde(default)]
        mentions: Vec<String>,
        #[serde(default)]
        files: Vec<FileRef>,
    },
    Edit {
        seq: i64,
        target: i64,
        text: String,
        at_ms: i64,
        mentions: Vec<String>,
        user_id: String,
    },
    Delete {
        seq: i64,
        target: i64,
        at_ms: i64,
        user_id: String,
    },
    Reaction {
        seq: i64,
        target: i64,
        emoji: String,
        user_id: String,
        on: bool,
        at_ms: i64,
    },
}

impl WireIn {
    fn seq(&self) -> i64 {
        match self {
            WireIn::Message { seq, .. }
            | WireIn::Edit { seq, .. }
            | WireIn::Delete { seq, .. }
            | WireIn::Reaction { seq, .. } => *seq,
        }
    }
}

fn millis(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

fn from_millis(ms: i64) -> Result<OffsetDateTime, Rejected> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|_| Rejected::BadField)
}

/// Encodes one room's committed events (in seq order) as one payload.
pub fn encode(room: &RoomName, events: &[Arc<RoomEvent>]) -> Vec<u8> {
    let payload = PayloadOut {
        v: PAYLOAD_VERSION,
        room: room.as_str(),
        events: events
            .iter()
            .map(|e| match e.as_ref() {
                RoomEvent::Message(m) => WireOut::Message {
                    seq: m.seq,
                    author: &m.author,
                    author_id: m.author_id.as_deref(),
                    text: &m.text,
                    sent_at_ms: millis(m.sent_at),
                    client_id: m.client_id.as_deref(),
                    client_ip: &m.client_ip,
                    reply_to: m.reply_to,
                    mentions: &m.mentions,
                    files: &m.files,
                },
                RoomEvent::Edit(e) => WireOut::Edit {
                    seq: e.seq,
                    target: e.target,
                    text: &e.text,
                    at_ms: millis(e.edited_at),
                    mentions: &e.mentions,
                    user_id: &e.user_id,
                },
                RoomEvent::Delete(e) => WireOut::Delete {
                    seq: e.seq,
                    target: e.target,
                    at_ms: millis(e.at),
                    user_id: &e.user_id,
                },
                RoomEvent::Reaction(e) => WireOut::Reaction {
                    seq: e.seq,
                    target: e.target,
                    emoji: &e.emoji,
                    user_id: &e.user_id,
                    on: e.on,
                    at_ms: millis(e.at),
                },
            })
            .collect(),
    };
    // Serialising our own plain structs cannot fail.
    serde_json::to_vec(&payload).unwrap_or_default()
}

/// Why a broker payload was ignored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    #[error("payload of {0} bytes is over the limit")]
    TooLarge(usize),
    #[error("not a palaver payload")]
    Malformed,
    #[error("payload version {0} is not {PAYLOAD_VERSION}")]
    Version(u32),
    #[error("payload names another room than its channel")]
    WrongRoom,
    #[error("payload seqs are empty, too many, or not consecutive from 1 up")]
    BadSeqs,
    #[error("an event field is out of bounds")]
    BadField,
}

/// Most user ids in a mention list, and most files on a message, accepted
/// from the broker.
const MAX_LIST: usize = 1000;

fn id_ok(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64
}

/// Decodes and checks a payload heard on `room`'s channel: the events must
/// be that room's, consecutive, and every field within the bounds the API
/// itself enforces. Anything else is rejected whole.
pub fn decode(room: &RoomName, bytes: &[u8]) -> Result<Vec<RoomEvent>, Rejected> {
    if bytes.len() > MAX_PAYLOAD_BYTES {
        return Err(Rejected::TooLarge(bytes.len()));
    }
    let payload: PayloadIn = serde_json::from_slice(bytes).map_err(|_| Rejected::Malformed)?;
    if payload.v != PAYLOAD_VERSION {
        return Err(Rejected::Version(payload.v));
    }
    if payload.room != room.as_str() {
        return Err(Rejected::WrongRoom);
    }
    let first = payload.events.first().map(WireIn::seq).unwrap_or(0);
    let consecutive = payload
        .events
        .iter()
        .zip(first..)
        .all(|(e, seq)| e.seq() == seq);
    if first < 1 || !consecutive || payload.events.len() > MAX_PAYLOAD_MESSAGES {
        return Err(Rejected::BadSeqs);
    }
    let text_ok = |text: &str| {
        MessageText::parse(text, MessageText::MAX_CHARS).is_ok_and(|t| t.as_str() == text)
    };
    let list_ok = |ids: &[String]| ids.len() <= MAX_LIST && ids.iter().all(|i| id_ok(i));
    payload
        .events
        .into_iter()
        .map(|e| match e {
            WireIn::Message {
                seq,
                author,
                author_id,
                text,
                sent_at_ms,
                client_id,
                client_ip,
                reply_to,
                mentions,
                files,
            } => {
                let valid = Author::parse(&author).is_ok_and(|a| a.as_str() == author)
                    && text_ok(&text)
                    && client_id
                        .as_deref()
                        .is_none_or(|c| ClientId::parse(c).is_ok())
                    && author_id.as_deref().is_none_or(id_ok)
                    && client_ip.len() <= 64
                    && reply_to.is_none_or(|r| (1..seq).contains(&r))
                    && list_ok(&mentions)
                    && files.len() <= MAX_LIST;
                if !valid {
                    return Err(Rejected::BadField);
                }
                Ok(RoomEvent::Message(Arc::new(Message {
                    room: room.clone(),
                    seq,
                    author,
                    author_id,
                    text,
                    sent_at: from_millis(sent_at_ms)?,
                    client_id,
                    client_ip,
                    edited_at: None,
                    deleted: false,
                    reply_to,
                    reactions: Vec::new(),
                    mentions,
                    files,
                    as_of: seq,
                    frame: Default::default(),
                })))
            }
            WireIn::Edit {
                seq,
                target,
                text,
                at_ms,
                mentions,
                user_id,
            } => {
                // A replayed edit of a deleted message has an empty text.
                if !(1..seq).contains(&target)
                    || !(text.is_empty() || text_ok(&text))
                    || !list_ok(&mentions)
                    || !id_ok(&user_id)
                {
                    return Err(Rejected::BadField);
                }
                Ok(RoomEvent::Edit(EditEvent {
                    room: room.clone(),
                    seq,
                    target,
                    text,
                    edited_at: from_millis(at_ms)?,
                    mentions,
                    user_id,
                    frame: Default::default(),
                }))
            }
            WireIn::Delete {
                seq,
                target,
                at_ms,
                user_id,
            } => {
                if !(1..seq).contains(&target) || !id_ok(&user_id) {
                    return Err(Rejected::BadField);
                }
                Ok(RoomEvent::Delete(DeleteEvent {
                    room: room.clone(),
                    seq,
                    target,
                    at: from_millis(at_ms)?,
                    user_id,
                    frame: Default::default(),
                }))
            }
            WireIn::Reaction {
                seq,
                target,
                emoji,
                user_id,
                on,
                at_ms,
            } => {
                if !(1..seq).contains(&target) || Emoji::parse(&emoji).is_err() || !id_ok(&user_id)
                {
                    return Err(Rejected::BadField);
                }
                Ok(RoomEvent::Reaction(ReactionEvent {
                    room: room.clone(),
                    seq,
                    target,
                    emoji,
                    user_id,
                    on,
                    at: from_millis(at_ms)?,
                    frame: Default::default(),
                }))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::now_millis;

    fn room() -> RoomName {
        RoomName::parse("general").unwrap()
    }

    fn message(seq: i64, text: &str) -> Arc<RoomEvent> {
        Arc::new(RoomEvent::Message(Arc::new(Message {
            room: room(),
            seq,
            author: "ada".into(),
            author_id: (seq % 3 == 0).then(|| format!("user-{seq}")),
            text: text.into(),
            sent_at: now_millis(),
            client_id: (seq % 2 == 0).then(|| format!("c{seq}")),
            client_ip: "10.0.0.1".into(),
            edited_at: None,
            deleted: false,
            reply_to: None,
            reactions: Vec::new(),
            mentions: Vec::new(),
            files: Vec::new(),
            as_of: seq,
            frame: Default::default(),
        })))
    }

    #[test]
    fn a_batch_survives_the_round_trip() {
        let at = now_millis();
        let batch = vec![
            message(7, "hi"),
            message(8, "line\nbreak \"quoted\""),
            Arc::new(RoomEvent::Edit(EditEvent {
                room: room(),
                seq: 9,
                target: 7,
                text: "hello".into(),
                edited_at: at,
                mentions: vec!["u1".into()],
                user_id: "u0".into(),
                frame: Default::default(),
            })),
            Arc::new(RoomEvent::Reaction(ReactionEvent {
                room: room(),
                seq: 10,
                target: 8,
                emoji: "👍".into(),
                user_id: "u1".into(),
                on: true,
                at,
                frame: Default::default(),
            })),
            Arc::new(RoomEvent::Delete(DeleteEvent {
                room: room(),
                seq: 11,
                target: 7,
                at,
                user_id: "u0".into(),
                frame: Default::default(),
            })),
        ];
        let decoded = decode(&room(), &encode(&room(), &batch)).unwrap();
        let expected: Vec<RoomEvent> = batch.iter().map(|e| (**e).clone()).collect();
        assert_eq!(decoded, expected);
        assert!(matches!(&decoded[1], RoomEvent::Message(m) if m.client_ip == "10.0.0.1"));
    }

    #[test]
    fn foreign_and_malformed_payloads_are_rejected_with_a_reason() {
        let good = encode(&room(), &[message(1, "x")]);
        let other = RoomName::parse("other").unwrap();
        assert_eq!(decode(&other, &good), Err(Rejected::WrongRoom));
        assert_eq!(decode(&room(), b"hello"), Err(Rejected::Malformed));
        assert_eq!(decode(&room(), b"{\"v\":2}"), Err(Rejected::Malformed));
        let v3 = String::from_utf8(good.clone())
            .unwrap()
            .replace("\"v\":2", "\"v\":3");
        assert_eq!(decode(&room(), v3.as_bytes()), Err(Rejected::Version(3)));
        let empty = br#"{"v":2,"room":"general","events":[]}"#;
        assert_eq!(decode(&room(), empty), Err(Rejected::BadSeqs));
        let gap = encode(&room(), &[message(1, "a"), message(3, "b")]);
        assert_eq!(decode(&room(), &gap), Err(Rejected::BadSeqs));
        let zero = encode(&room(), &[message(0, "a")]);
        assert_eq!(decode(&room(), &zero), Err(Rejected::BadSeqs));
        let control = encode(&room(), &[message(1, "bell\u{7}")]);
        assert_eq!(decode(&room(), &control), Err(Rejected::BadField));
        let long = encode(&room(), &[message(1, &"x".repeat(4001))]);
        assert_eq!(decode(&room(), &long), Err(Rejected::BadField));
        let bad_emoji = br#"{"v":2,"room":"general","events":[{"kind":"reaction","seq":2,"target":1,"emoji":"ok","user_id":"u","on":true,"at_ms":0}]}"#;
        assert_eq!(decode(&room(), bad_emoji), Err(Rejected::BadField));
        let future_target = br#"{"v":2,"room":"general","events":[{"kind":"delete","seq":2,"target":2,"user_id":"u","at_ms":0}]}"#;
        assert_eq!(decode(&room(), future_target), Err(Rejected::BadField));
        let huge = vec![b' '; MAX_PAYLOAD_BYTES + 1];
        assert!(matches!(decode(&room(), &huge), Err(Rejected::TooLarge(_))));
    }

    #[test]
    fn channels_name_their_room_and_nothing_else_parses() {
        assert_eq!(channel(&room()), "palaver:room:general");
        assert_eq!(room_of("palaver:room:general"), Some(room()));
        assert_eq!(room_of("palaver:room:Not A Room"), None);
        assert_eq!(room_of("other:general"), None);
    }
}
