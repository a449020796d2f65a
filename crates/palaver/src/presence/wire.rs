//! The signal payloads processes exchange: versioned JSON,
//! `{"v": 1, "from": "<replica>", "s": [signal, …]}`, each at most
//! [`MAX_PAYLOAD`] bytes (under PostgreSQL's 8,000-byte `NOTIFY` limit), so
//! one batch of signals becomes as few payloads as fit.
//!
//! Anything else heard — another version, a malformed or out-of-bounds
//! signal — is ignored and counted in `palaver_bus_payloads_rejected_total`.

use serde::{Deserialize, Serialize};

use super::Typist;
use crate::domain::RoomName;
use crate::identity::Username;

pub const VERSION: u32 = 1;
/// Largest payload written; larger ones heard are refused.
pub const MAX_PAYLOAD: usize = 7_900;
/// User ids per `beat` signal (ids are 36-character UUIDs: a full beat is
/// about 6 KB).
pub const BEAT_CHUNK: usize = 150;
/// Longest user or replica id accepted.
const MAX_ID: usize = 64;

/// One signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// `user` types in `room`.
    Typing { room: RoomName, user: Typist },
    /// `user`'s first stream on the sender opened.
    Online { user: String },
    /// `user`'s last stream on the sender closed.
    Gone { user: String },
    /// The sender holds streams of these users.
    Beat { users: Vec<String> },
    /// The sender started (or reconnected): everyone beats now.
    Hello,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
enum Wire {
    Typing { room: String, user: Typist },
    Online { user: String },
    Gone { user: String },
    Beat { users: Vec<String> },
    Hello,
}

#[derive(Serialize)]
struct PayloadOut<'a> {
    v: u32,
    from: &'a str,
    s: &'a [Wire],
}

#[derive(Deserialize)]
struct PayloadIn {
    v: u32,
    from: String,
    s: Vec<Wire>,
}

impl Signal {
    fn to_wire(&self) -> Wire {
        match self {
            Signal::Typing { room, user } => Wire::Typing {
                room: room.as_str().to_owned(),
                user: user.clone(),
            },
            Signal::Online { user } => Wire::Online { user: user.clone() },
            Signal::Gone { user } => Wire::Gone { user: user.clone() },
            Signal::Beat { users } => Wire::Beat {
                users: users.clone(),
            },
            Signal::Hello => Wire::Hello,
        }
    }
}

fn id_ok(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID && id.bytes().all(|b| b.is_ascii_graphic())
}

impl Wire {
    fn into_signal(self) -> Option<Signal> {
        Some(match self {
            Wire::Typing { room, user } => {
                let name_ok = !user.display_name.is_empty()
                    && user.display_name.chars().count() <= 64
                    && !user.display_name.chars().any(char::is_control);
                if !(id_ok(&user.id)
                    && name_ok
                    && Username::parse(&user.username).is_ok_and(|u| u.as_str() == user.username))
                {
                    return None;
                }
                Signal::Typing {
                    room: RoomName::parse(&room).ok()?,
                    user,
                }
            }
            Wire::Online { user } if id_ok(&user) => Signal::Online { user },
            Wire::Gone { user } if id_ok(&user) => Signal::Gone { user },
            Wire::Beat { users } if users.len() <= BEAT_CHUNK && users.iter().all(|u| id_ok(u)) => {
                Signal::Beat { users }
            }
            Wire::Hello => Signal::Hello,
            _ => return None,
        })
    }
}

/// Packs signals into as few payloads as fit [`MAX_PAYLOAD`] each.
pub fn encode(from: &str, signals: &[Signal]) -> Vec<String> {
    let mut payloads = Vec::new();
    let mut batch: Vec<Wire> = Vec::new();
    let mut size = 0;
    // The envelope's own bytes, with room to spare.
    let envelope = 32 + from.len();
    for signal in signals {
        let wire = signal.to_wire();
        let len = serde_json::to_string(&wire).map_or(0, |s| s.len()) + 1;
        if len + envelope > MAX_PAYLOAD {
            continue; // cannot happen with the bounds above; never sent
        }
        if size + len + envelope > MAX_PAYLOAD && !batch.is_empty() {
            payloads.extend(seal(from, &batch));
            batch.clear();
            size = 0;
        }
        size += len;
        batch.push(wire);
    }
    if !batch.is_empty() {
        payloads.extend(seal(from, &batch));
    }
    payloads
}

fn seal(from: &str, batch: &[Wire]) -> Option<String> {
    serde_json::to_string(&PayloadOut {
        v: VERSION,
        from,
        s: batch,
    })
    .ok()
}

/// The sender and its signals, or `None` for a payload to ignore. A
/// payload is all or nothing: one bad signal refuses it.
pub fn decode(payload: &str) -> Option<(String, Vec<Signal>)> {
    if payload.len() > MAX_PAYLOAD * 2 {
        return None;
    }
    let parsed: PayloadIn = serde_json::from_str(payload).ok()?;
    if parsed.v != VERSION || !id_ok(&parsed.from) || parsed.s.len() > MAX_PAYLOAD / 8 {
        return None;
    }
    let signals = parsed
        .s
        .into_iter()
        .map(Wire::into_signal)
        .collect::<Option<Vec<_>>>()?;
    Some((parsed.from, signals))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typist(name: &str) -> Typist {
        Typist {
            id: format!("id-{name}"),
            username: name.to_owned(),
            display_name: name.to_uppercase(),
        }
    }

    #[test]
    fn signals_round_trip_in_payloads_that_fit_a_notify() {
        let mut signals = vec![Signal::Hello];
        for i in 0..400 {
            signals.push(Signal::Typing {
                room: RoomName::parse("general").unwrap(),
                user: typist(&format!("user{i}")),
            });
        }
        signals.push(Signal::Beat {
            users: (0..BEAT_CHUNK).map(|i| format!("{:036}", i)).collect(),
        });
        signals.push(Signal::Gone {
            user: "id-ada".into(),
        });
        let payloads = encode("replica-1", &signals);
        assert!(payloads.len() > 1, "split into several payloads");
        let mut heard = Vec::new();
        for p in &payloads {
            assert!(p.len() <= MAX_PAYLOAD, "{}", p.len());
            let (from, s) = decode(p).unwrap();
            assert_eq!(from, "replica-1");
            heard.extend(s);
        }
        assert_eq!(heard, signals);
    }

    #[test]
    fn malformed_or_foreign_payloads_are_refused() {
        for bad in [
            "not json",
            r#"{"v":2,"from":"a","s":[]}"#,
            r#"{"v":1,"from":"","s":[]}"#,
            r#"{"v":1,"from":"a","s":[{"k":"dance"}]}"#,
            r#"{"v":1,"from":"a","s":[{"k":"online","user":""}]}"#,
            r#"{"v":1,"from":"a","s":[{"k":"typing","room":"Bad Room","user":{"id":"i","username":"ada","display_name":"Ada"}}]}"#,
            r#"{"v":1,"from":"a","s":[{"k":"typing","room":"r","user":{"id":"i","username":"Ada!","display_name":"Ada"}}]}"#,
            r#"{"v":1,"from":"a","s":[{"k":"typing","room":"r","user":{"id":"i","username":"ada","display_name":"A\u0000"}}]}"#,
        ] {
            assert!(decode(bad).is_none(), "{bad}");
        }
        let too_many = format!(
            r#"{{"v":1,"from":"a","s":[{{"k":"beat","users":[{}]}}]}}"#,
            vec!["\"x\""; BEAT_CHUNK + 1].join(",")
        );
        assert!(decode(&too_many).is_none());
        assert!(decode(r#"{"v":1,"from":"a","s":[{"k":"hello"}]}"#).is_some());
    }
}
