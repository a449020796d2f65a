//! `send`: POST messages into fresh rooms, then check that every
//! acknowledged send is stored (each room's `last_seq` equals its 201s).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::cli::{LoadArgs, SendArgs};
use crate::stats::{LoadSummary, Tally};
use crate::target::{run_id, Target};

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok { bytes: u64 },
    Status(u16),
    Transport,
}

impl Outcome {
    fn add_to(self, tally: &mut Tally, latency: Duration) {
        match self {
            Outcome::Ok { bytes } => {
                tally.ok += 1;
                tally.bytes += bytes;
                tally.latency.record(latency);
            }
            Outcome::Status(code) => tally.error(code.to_string()),
            Outcome::Transport => tally.error("transport"),
        }
    }
}

/// Runs `request(worker)` under `load` — closed loop with `clients` workers,
/// or open loop at `rate` — and tallies the requests started in the measured
/// window. Returns the tally and the measured window's length.
pub async fn drive<F, Fut>(load: &LoadArgs, request: F) -> (Tally, Duration)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send + 'static,
{
    let request = Arc::new(request);
    let measure_from = Instant::now() + Duration::from_secs_f64(load.warmup.max(0.0));
    let until = measure_from + Duration::from_secs_f64(load.duration.max(0.0));
    let clients = load.clients.max(1);
    let mut tally = Tally::default();
    match load.rate {
        None => {
            let mut workers = JoinSet::new();
            for worker in 0..clients {
                let request = request.clone();
                workers.spawn(async move {
                    let mut tally = Tally::default();
                    loop {
                        let started = Instant::now();
                        if started >= until {
                            return tally;
                        }
                        let outcome = request(worker).await;
                        if started >= measure_from {
                            outcome.add_to(&mut tally, started.elapsed());
                        }
                    }
                });
            }
            while let Some(done) = workers.join_next().await {
                if let Ok(part) = done {
                    tally.merge(&part);
                }
            }
        }
        Some(rate) => {
            // Latency counts from each request's scheduled time, so a server
            // that falls behind is not hidden by requests sent late.
            let period = Duration::from_secs_f64(1.0 / rate.max(0.001));
            let in_flight = Arc::new(Semaphore::new(clients));
            let mut requests = JoinSet::new();
            let start = Instant::now();
            let mut n: u32 = 0;
            loop {
                let scheduled = start + period * n;
                if scheduled >= until {
                    break;
                }
                n = n.saturating_add(1);
                tokio::time::sleep_until(scheduled).await;
                let Ok(permit) = in_flight.clone().acquire_owned().await else {
                    break;
                };
                let request = request.clone();
                let worker = n as usize % clients;
                requests.spawn(async move {
                    let outcome = request(worker).await;
                    drop(permit);
                    (scheduled, outcome, scheduled.elapsed())
                });
                while let Some(Ok((scheduled, outcome, latency))) = requests.try_join_next() {
                    if scheduled >= measure_from {
                        outcome.add_to(&mut tally, latency);
                    }
                }
            }
            while let Some(done) = requests.join_next().await {
                if let Ok((scheduled, outcome, latency)) = done {
                    if scheduled >= measure_from {
                        outcome.add_to(&mut tally, latency);
                    }
                }
            }
        }
    }
    (tally, until - measure_from)
}

/// The JSON summary of `send`.
#[derive(Debug, Serialize)]
pub struct SendSummary {
    #[serde(flatten)]
    pub load: LoadSummary,
    pub rooms: usize,
    /// 201 answers over the whole run (warm-up included).
    pub acknowledged: u64,
    /// Messages stored in the run's rooms afterwards.
    pub stored: u64,
    /// True when stored == acknowledged: nothing acknowledged was lost and
    /// nothing was stored twice.
    pub consistent: bool,
}

pub async fn run(args: SendArgs) -> anyhow::Result<SendSummary> {
    let target = Target::new(&args.load.base_url)?.signed_in().await?;
    let client = target.http(args.load.clients, Duration::from_secs(30))?;
    let prefix = run_id("bench");
    let rooms: Arc<[String]> = (0..args.rooms.max(1))
        .map(|i| format!("{prefix}-{i}"))
        .collect();
    let urls: Arc<[reqwest::Url]> = rooms
        .iter()
        .map(|room| target.url(&format!("/api/v1/rooms/{room}/messages")))
        .collect::<anyhow::Result<_>>()?;
    let text: Arc<str> = "x".repeat(args.text_chars.max(1)).into();
    let acknowledged = Arc::new(AtomicU64::new(0));
    let counter = Arc::new(AtomicU64::new(0));
    let with_ids = args.client_ids;
    eprintln!(
        "send: {} clients into {} room(s) {prefix}-*, {}s (+{}s warm-up)",
        args.load.clients,
        rooms.len(),
        args.load.duration,
        args.load.warmup
    );
    let (tally, window) = {
        let (client, urls, text, acknowledged) =
            (client.clone(), urls.clone(), text, acknowledged.clone());
        drive(&args.load, move |worker| {
            let url = urls[worker % urls.len()].clone();
            let n = counter.fetch_add(1, Ordering::Relaxed);
            let body = json!({
                "author": "bench",
                "text": &*text,
                "client_id": with_ids.then(|| format!("bench-{n}")),
            });
            let request = client.post(url).json(&body).send();
            let acknowledged = acknowledged.clone();
            async move {
                match request.await {
                    Ok(response) if response.status().as_u16() == 201 => {
                        acknowledged.fetch_add(1, Ordering::Relaxed);
                        // Read the body so the connection is reused.
                        let bytes = response.bytes().await.map(|b| b.len()).unwrap_or(0);
                        Outcome::Ok {
                            bytes: bytes as u64,
                        }
                    }
                    Ok(response) => Outcome::Status(response.status().as_u16()),
                    Err(_) => Outcome::Transport,
                }
            }
        })
        .await
    };
    let stored = stored_in(&target, &client, &rooms).await?;
    let acknowledged = acknowledged.load(Ordering::Relaxed);
    let summary = LoadSummary::new(
        "send",
        format!(
            "POST {}",
            target.url(&format!("/api/v1/rooms/{prefix}-N/messages"))?
        ),
        args.load.clients,
        args.load.rate,
        window,
        &tally,
    );
    Ok(SendSummary {
        load: summary,
        rooms: rooms.len(),
        acknowledged,
        stored,
        consistent: stored == acknowledged,
    })
}

/// Messages stored in `rooms`: the sum of their `last_seq` (seqs are gapless).
pub async fn stored_in(
    target: &Target,
    client: &reqwest::Client,
    rooms: &[String],
) -> anyhow::Result<u64> {
    let last = last_seqs(target, client).await?;
    Ok(rooms.iter().filter_map(|r| last.get(r)).sum())
}

/// Every room's `last_seq`, from `GET /api/v1/rooms`.
pub async fn last_seqs(
    target: &Target,
    client: &reqwest::Client,
) -> anyhow::Result<BTreeMap<String, u64>> {
    #[derive(serde::Deserialize)]
    struct Room {
        name: String,
        last_seq: u64,
    }
    #[derive(serde::Deserialize)]
    struct Rooms {
        rooms: Vec<Room>,
    }
    let listed: Rooms = client
        .get(target.url("/api/v1/rooms")?)
        .send()
        .await
        .context("listing rooms")?
        .error_for_status()
        .context("listing rooms")?
        .json()
        .await
        .context("listing rooms")?;
    Ok(listed
        .rooms
        .into_iter()
        .map(|r| (r.name, r.last_seq))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn closed_loop_counts_only_the_measured_window() {
        let load = LoadArgs {
            base_url: String::new(),
            clients: 2,
            rate: None,
            duration: 1.0,
            warmup: 1.0,
        };
        let (tally, window) = drive(&load, |_| async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Outcome::Ok { bytes: 1 }
        })
        .await;
        assert_eq!(window, Duration::from_secs(1));
        // 2 workers x 10 requests of 100 ms started in the second second.
        assert_eq!(tally.ok, 20);
        assert_eq!(tally.latency.len(), 20);
    }

    #[tokio::test(start_paused = true)]
    async fn open_loop_sends_at_the_rate_and_tallies_errors() {
        let load = LoadArgs {
            base_url: String::new(),
            clients: 100,
            rate: Some(50.0),
            duration: 2.0,
            warmup: 0.0,
        };
        let (tally, _) = drive(&load, |worker| async move {
            if worker % 10 == 0 {
                Outcome::Status(503)
            } else {
                Outcome::Ok { bytes: 0 }
            }
        })
        .await;
        assert_eq!(tally.ok + tally.error_count(), 100);
        assert_eq!(tally.errors["503"], 10);
    }
}
