//! `mixed`: the room-event load of issue 17 over HTTP as a signed-in user:
//! of every 20 requests 16 are sends, 2 reactions, 1 edit and 1 read marker
//! (80/10/5/5 %), into fresh rooms; reactions, edits and markers name the
//! user's own recent messages of the same room.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use tokio::time::Instant;

use crate::cli::MixedArgs;
use crate::send::{drive, stored_in, Outcome};
use crate::stats::{Latency, LoadSummary, Tally};
use crate::target::{run_id, Target};

/// What one request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Send,
    Reaction,
    Edit,
    Read,
}

impl Kind {
    /// The kind of request `n` (0-based): 16 sends, then 2 reactions, an
    /// edit and a read marker, in every 20; with `sends_only`, all sends.
    pub fn of(n: u64, sends_only: bool) -> Kind {
        if sends_only {
            return Kind::Send;
        }
        match n % 20 {
            0..=15 => Kind::Send,
            16 | 17 => Kind::Reaction,
            18 => Kind::Edit,
            _ => Kind::Read,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Send => "send",
            Kind::Reaction => "reaction",
            Kind::Edit => "edit",
            Kind::Read => "read_marker",
        }
    }
}

/// Emoji the reactions cycle through (percent-encoded for the path).
const EMOJI: [&str; 8] = [
    "%F0%9F%91%8D",
    "%F0%9F%8E%89",
    "%E2%9D%A4%EF%B8%8F",
    "%F0%9F%98%82",
    "%F0%9F%9A%80",
    "%F0%9F%91%80",
    "%F0%9F%99%8F",
    "%F0%9F%94%A5",
];

/// The newest seqs of the user's own messages in one room.
#[derive(Debug, Default)]
struct Recent(VecDeque<i64>);

impl Recent {
    const KEEP: usize = 32;

    fn push(&mut self, seq: i64) {
        if self.0.len() == Self::KEEP {
            self.0.pop_front();
        }
        self.0.push_back(seq);
    }

    /// One of the recent seqs, chosen by `n`.
    fn pick(&self, n: u64) -> Option<i64> {
        let len = self.0.len() as u64;
        (len > 0).then(|| self.0[((n / 20) % len) as usize])
    }

    fn newest(&self) -> Option<i64> {
        self.0.back().copied()
    }
}

/// Figures of one kind of request in the measured window.
#[derive(Debug, Serialize)]
pub struct KindSummary {
    pub ok: u64,
    pub per_s: f64,
    pub errors: BTreeMap<String, u64>,
    pub latency: Latency,
}

/// The JSON summary of `mixed`.
#[derive(Debug, Serialize)]
pub struct MixedSummary {
    /// Every request (all kinds) in the measured window.
    #[serde(flatten)]
    pub load: LoadSummary,
    pub rooms: usize,
    pub sends_only: bool,
    /// Sends per second in the measured window: the "messages/s" figure.
    pub messages_per_s: f64,
    pub by_kind: BTreeMap<&'static str, KindSummary>,
    /// Sum of the rooms' `last_seq` afterwards: messages and events stored.
    pub stored_seqs: u64,
}

pub async fn run(args: MixedArgs) -> anyhow::Result<MixedSummary> {
    let target = Target::new(&args.load.base_url)?.signed_in().await?;
    let client = target.http(args.load.clients, Duration::from_secs(30))?;
    let prefix = args.room_prefix.clone().unwrap_or_else(|| run_id("mixed"));
    let rooms: Arc<[String]> = (0..args.rooms.max(1))
        .map(|i| format!("{prefix}-{i}"))
        .collect();
    let bases: Arc<[String]> = rooms
        .iter()
        .map(|room| {
            target
                .url(&format!("/api/v1/rooms/{room}"))
                .map(|u| u.to_string())
        })
        .collect::<anyhow::Result<_>>()?;
    let recent: Arc<[Mutex<Recent>]> = rooms.iter().map(|_| Mutex::default()).collect();
    let text: Arc<str> = "x".repeat(args.text_chars.max(1)).into();
    let counter = Arc::new(AtomicU64::new(0));
    let kinds: Arc<Mutex<BTreeMap<Kind, Tally>>> = Arc::default();
    let measure_from = Instant::now() + Duration::from_secs_f64(args.load.warmup.max(0.0));
    let sends_only = args.sends_only;
    eprintln!(
        "mixed: {} clients into {} room(s) {prefix}-*, {}, {}s (+{}s warm-up)",
        args.load.clients,
        rooms.len(),
        if sends_only {
            "sends only"
        } else {
            "80% sends, 10% reactions, 5% edits, 5% read markers"
        },
        args.load.duration,
        args.load.warmup
    );
    let (tally, window) = {
        let (client, kinds) = (client.clone(), kinds.clone());
        drive(&args.load, move |worker| {
            let room = worker % bases.len();
            let n = counter.fetch_add(1, Ordering::Relaxed);
            let (pick, newest) = match recent[room].lock() {
                Ok(r) => (r.pick(n), r.newest()),
                Err(_) => (None, None),
            };
            // A room without a message of the user's yet gets a send.
            let kind = match (Kind::of(n, sends_only), pick) {
                (_, None) => Kind::Send,
                (kind, Some(_)) => kind,
            };
            let base = &bases[room];
            let request = match (kind, pick.or(newest).unwrap_or(1)) {
                (Kind::Send, _) => client
                    .post(format!("{base}/messages"))
                    .json(&json!({"author": "bench", "text": &*text})),
                (Kind::Reaction, seq) => client.put(format!(
                    "{base}/messages/{seq}/reactions/{}",
                    EMOJI[(n / 20 % EMOJI.len() as u64) as usize]
                )),
                (Kind::Edit, seq) => client
                    .patch(format!("{base}/messages/{seq}"))
                    .json(&json!({"text": format!("{} edited {n}", &*text)})),
                (Kind::Read, _) => client
                    .put(format!("{base}/read"))
                    .json(&json!({"seq": newest.unwrap_or(0)})),
            };
            let request = request.send();
            let (recent, kinds) = (recent.clone(), kinds.clone());
            async move {
                let started = Instant::now();
                let outcome = match request.await {
                    Ok(response) if response.status().is_success() => {
                        let body = response.bytes().await.unwrap_or_default();
                        if kind == Kind::Send {
                            let seq = serde_json::from_slice::<serde_json::Value>(&body)
                                .ok()
                                .and_then(|m| m["seq"].as_i64());
                            if let (Some(seq), Ok(mut r)) = (seq, recent[room].lock()) {
                                r.push(seq);
                            }
                        }
                        Outcome::Ok {
                            bytes: body.len() as u64,
                        }
                    }
                    Ok(response) => Outcome::Status(response.status().as_u16()),
                    Err(_) => Outcome::Transport,
                };
                if started >= measure_from {
                    if let Ok(mut kinds) = kinds.lock() {
                        let tally = kinds.entry(kind).or_default();
                        match outcome {
                            Outcome::Ok { .. } => {
                                tally.ok += 1;
                                tally.latency.record(started.elapsed());
                            }
                            Outcome::Status(code) => tally.error(code.to_string()),
                            Outcome::Transport => tally.error("transport"),
                        }
                    }
                }
                outcome
            }
        })
        .await
    };
    let stored_seqs = stored_in(&target, &client, &rooms).await?;
    let secs = window.as_secs_f64().max(1e-9);
    let by_kind: BTreeMap<&'static str, KindSummary> = kinds
        .lock()
        .map(|k| k.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|(kind, t)| {
            (
                kind.name(),
                KindSummary {
                    ok: t.ok,
                    per_s: (t.ok as f64 / secs).round(),
                    errors: t.errors.clone(),
                    latency: t.latency.summary(),
                },
            )
        })
        .collect();
    let messages_per_s = by_kind.get("send").map(|k| k.per_s).unwrap_or(0.0);
    let load = LoadSummary::new(
        "mixed",
        format!("{} /api/v1/rooms/{prefix}-N/...", target.url("/")?),
        args.load.clients,
        args.load.rate,
        window,
        &tally,
    );
    Ok(MixedSummary {
        load,
        rooms: rooms.len(),
        sends_only,
        messages_per_s,
        by_kind,
        stored_seqs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_twenty_requests_hold_the_issue_mix() {
        let mut counts: BTreeMap<Kind, u32> = BTreeMap::new();
        for n in 0..2000 {
            *counts.entry(Kind::of(n, false)).or_default() += 1;
        }
        assert_eq!(counts[&Kind::Send], 1600);
        assert_eq!(counts[&Kind::Reaction], 200);
        assert_eq!(counts[&Kind::Edit], 100);
        assert_eq!(counts[&Kind::Read], 100);
        assert!((0..100).all(|n| Kind::of(n, true) == Kind::Send));
    }

    #[test]
    fn recent_seqs_keep_the_newest_and_pick_within_them() {
        let mut r = Recent::default();
        assert_eq!(r.pick(7), None);
        for seq in 1..=40 {
            r.push(seq);
        }
        assert_eq!(r.0.len(), Recent::KEEP);
        assert_eq!(r.newest(), Some(40));
        assert!((0..1000).all(|n| r.pick(n).is_some_and(|s| (9..=40).contains(&s))));
    }
}
