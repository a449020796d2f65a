//! `typing`: presence and typing under load (DESIGN §5e). One person (the
//! typist, on `--typist-url`) types in `--rooms` rooms, one typing frame per
//! room every 2.05 s (just over the server's 2 s throttle), spread evenly
//! over time; another (the watcher, on `--watcher-url`, another replica)
//! follows the same rooms and times each typing frame from its send to its
//! arrival. With the typist's and watcher's streams on two replicas, every
//! frame crosses the bus (`NOTIFY` or Redis `PUBLISH`, coalesced by the
//! sender's process).
//!
//! `--rooms 2000` is the load of 2,000 people typing at once (one typing
//! frame per 2 s each), run beside `palaver-bench send` for the sends
//! figure. The throttle is per user and room, so one typist in 2,000 rooms
//! costs the server what 2,000 typists in one room each would; only the
//! number of streams differs (one per 500 rooms here, `--max-subscriptions`).
//! Both clocks are this machine's: run it on the servers' machine.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use futures::{SinkExt, StreamExt};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::cli::TypingArgs;
use crate::stats::{Latency, Recorder};
use crate::target::{run_id, Target, Ws};

/// Rooms per stream (the server's default `--max-subscriptions`).
const ROOMS_PER_STREAM: usize = 500;
/// Each room's typing frames are this far apart.
const EVERY: Duration = Duration::from_millis(2050);

#[derive(Debug, Serialize)]
pub struct TypingSummary {
    pub command: &'static str,
    pub rooms: usize,
    pub duration_s: f64,
    pub typing_sent: u64,
    pub typing_received: u64,
    /// From the typist's send to the watcher's receipt.
    pub delivery_latency: Latency,
    pub typing_per_s: f64,
}

pub async fn run(args: TypingArgs) -> anyhow::Result<TypingSummary> {
    let typist = Target::new(&args.typist_url)?
        .signed_in_as("bench-typist")
        .await?;
    let watcher = Target::new(&args.watcher_url)?
        .signed_in_as("bench-watcher")
        .await?;
    let prefix = run_id("typing");
    let rooms: Arc<[String]> = (0..args.rooms.max(1))
        .map(|i| format!("{prefix}-{i}"))
        .collect();

    // Both post once in every room: posting creates a room and joins it.
    eprintln!("typing: preparing {} rooms {prefix}-*", rooms.len());
    for target in [&typist, &watcher] {
        let client = target.http(32, Duration::from_secs(30))?;
        let posted = futures::stream::iter(rooms.iter().cloned())
            .map(|room| {
                let client = client.clone();
                let url = target.url(&format!("/api/v1/rooms/{room}/messages"));
                async move {
                    let response = client
                        .post(url?)
                        .json(&json!({"text": "here"}))
                        .send()
                        .await?;
                    if !response.status().is_success() {
                        bail!("posting in {room}: HTTP {}", response.status());
                    }
                    Ok(())
                }
            })
            .buffer_unordered(32)
            .collect::<Vec<anyhow::Result<()>>>()
            .await;
        posted.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    }

    let mut watching = Vec::new();
    let mut typing = Vec::new();
    for chunk in rooms.chunks(ROOMS_PER_STREAM) {
        watching.push(follow(&watcher, chunk).await?);
        typing.push((follow(&typist, chunk).await?, chunk.to_vec()));
    }

    let sent_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let latency = Arc::new(Mutex::new(Recorder::new()));
    let received = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stop = Instant::now() + Duration::from_secs_f64(args.duration);
    let mut readers = Vec::new();
    for mut ws in watching {
        let (sent_at, latency, received) = (sent_at.clone(), latency.clone(), received.clone());
        readers.push(tokio::spawn(async move {
            let grace = stop + Duration::from_secs(2);
            while let Ok(Some(Ok(message))) = tokio::time::timeout_at(grace, ws.next()).await {
                let WsMessage::Text(text) = message else {
                    continue;
                };
                let Ok(frame) = serde_json::from_str::<Value>(&text) else {
                    continue;
                };
                if frame["type"] != "typing" {
                    continue;
                }
                let room = frame["room"].as_str().unwrap_or_default();
                let at = sent_at.lock().ok().and_then(|m| m.get(room).copied());
                if let Some(at) = at {
                    received.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if let Ok(mut l) = latency.lock() {
                        l.record(at.elapsed());
                    }
                }
            }
        }));
    }

    // Each stream's rooms take turns, so that every room types every EVERY.
    // bench-presence.sh waits for this line before it starts its sends.
    eprintln!("typing: typing now in {} rooms", rooms.len());
    let started = Instant::now();
    let mut writers = Vec::new();
    for (mut ws, rooms) in typing {
        let sent_at = sent_at.clone();
        writers.push(tokio::spawn(async move {
            let gap = EVERY / rooms.len().max(1) as u32;
            let mut tick = tokio::time::interval(gap);
            let mut sent = 0u64;
            let mut i = 0;
            while Instant::now() < stop {
                tick.tick().await;
                let room = &rooms[i % rooms.len()];
                i += 1;
                if let Ok(mut m) = sent_at.lock() {
                    m.insert(room.clone(), Instant::now());
                }
                let frame = json!({"type": "typing", "room": room}).to_string();
                if ws.send(WsMessage::Text(frame.into())).await.is_err() {
                    break;
                }
                sent += 1;
            }
            // Keep the stream open while the last frames are delivered.
            tokio::time::sleep(Duration::from_secs(2)).await;
            sent
        }));
    }
    let mut typing_sent = 0;
    for writer in writers {
        typing_sent += writer.await.context("typist task")?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    for reader in readers {
        let _ = reader.await;
    }
    let summary = latency
        .lock()
        .map(|l| l.summary())
        .map_err(|_| anyhow::anyhow!("latency recorder poisoned"))?;
    Ok(TypingSummary {
        command: "typing",
        rooms: rooms.len(),
        duration_s: elapsed,
        typing_sent,
        typing_received: received.load(std::sync::atomic::Ordering::Relaxed),
        delivery_latency: summary,
        typing_per_s: typing_sent as f64 / elapsed.max(0.001),
    })
}

/// One multiplexed stream following `rooms`, each caught up.
async fn follow(target: &Target, rooms: &[String]) -> anyhow::Result<Ws> {
    let mut ws = target.connect_ws("/api/v1/stream").await?;
    for room in rooms {
        let frame = json!({"type": "subscribe", "room": room}).to_string();
        ws.send(WsMessage::Text(frame.into())).await?;
    }
    let mut caught_up = 0;
    while caught_up < rooms.len() {
        let message = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .context("waiting for caught_up")?
            .context("stream closed before caught_up")??;
        let WsMessage::Text(text) = message else {
            continue;
        };
        let frame: Value = serde_json::from_str(&text)?;
        match frame["type"].as_str() {
            Some("caught_up") => caught_up += 1,
            Some("error") => bail!("subscribe refused: {frame}"),
            _ => {}
        }
    }
    Ok(ws)
}
