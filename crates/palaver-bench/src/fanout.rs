//! `fanout`: M WebSocket subscribers spread over fresh rooms, messages posted
//! at a rate, and for every subscriber the messages expected (what the room
//! stored) against those received, with commit-to-delivery latency.
//!
//! Latency is measured two ways: from the message's `sent_at` (the commit
//! time the server stamps, millisecond precision, so up to 1 ms high) and
//! from a microsecond timestamp the poster embeds in the text (the whole
//! path: HTTP send, group commit, fan-out, delivery). Both clocks are this
//! machine's, so the bench must run on the server's machine.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use futures::StreamExt;
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::cli::{FanoutArgs, LoadArgs};
use crate::send::{drive, last_seqs, Outcome};
use crate::stats::{Latency, Recorder};
use crate::target::{
    next_frame, now_micros, rss_kib, run_id, Frame, Next, StreamedMessage, Target, Ws,
};

#[derive(Debug, Serialize)]
pub struct FanoutSummary {
    pub command: &'static str,
    pub subscribers: usize,
    pub rooms: usize,
    pub rate: f64,
    pub duration_s: f64,
    /// Seconds to open every subscriber and see its `caught_up`.
    pub connect_s: f64,
    pub connect_failed: usize,
    pub posted_ok: u64,
    pub post_errors: BTreeMap<String, u64>,
    pub post_latency: Latency,
    /// Acknowledged posts per second over the posting phase.
    pub posts_per_s: f64,
    /// From `sent_at` (commit) to receipt, over every delivery.
    pub delivery_latency: Latency,
    /// From the poster's send to receipt, over every delivery.
    pub end_to_end_latency: Latency,
    pub delivery: Delivery,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_rss: Option<ServerRss>,
}

/// Messages expected against received, over all subscribers.
#[derive(Debug, Default, Serialize)]
pub struct Delivery {
    /// Sum over subscribers of the messages their room stored.
    pub expected: u64,
    pub received: u64,
    /// Subscribers that received exactly seqs 1..=stored of their room.
    pub subscribers_complete: usize,
    pub missing: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// Streams that ended before the end of the run, by close reason; each
    /// such subscriber resumed with `since` = the last seq it had, as a
    /// client should.
    pub closed_early: BTreeMap<String, u64>,
    /// Resumptions after such a close.
    pub resumed: u64,
}

/// Server memory, from `/proc/PID/status`.
#[derive(Debug, Serialize)]
pub struct ServerRss {
    pub before_kib: u64,
    /// With every subscriber connected and caught up, before posting.
    pub connected_kib: u64,
    pub after_run_kib: u64,
    /// (connected - before) / subscribers.
    pub per_connection_kib: f64,
}

/// What one subscriber saw.
#[derive(Debug, Default)]
struct Seen {
    room: usize,
    last_seq: i64,
    received: u64,
    duplicates: u64,
    out_of_order: u64,
    delivery_us: Vec<u32>,
    end_to_end_us: Vec<u32>,
    /// Why the stream ended early, each time it did.
    closed: Vec<String>,
    /// The reason it gave up, if it did.
    gave_up: Option<String>,
}

pub async fn run(args: FanoutArgs) -> anyhow::Result<FanoutSummary> {
    let mut gateways: Vec<Target> = Vec::new();
    for url in args.base_url.split(',') {
        gateways.push(Target::new(url.trim())?.signed_in().await?);
    }
    let first_gateway = args.base_url.split(',').next().unwrap_or_default().trim();
    let poster = Target::new(args.post_url.as_deref().unwrap_or(first_gateway))?
        .signed_in()
        .await?;
    let client = poster.http(256, Duration::from_secs(30))?;
    let prefix = run_id("fanout");
    let rooms: Arc<[String]> = (0..args.rooms.max(1))
        .map(|i| format!("{prefix}-{i}"))
        .collect();
    let rss_before = args.server_pid.map(rss_kib).transpose()?;

    // 1. Connect every subscriber and wait for its caught_up.
    eprintln!(
        "fanout: connecting {} subscribers to {} room(s) {prefix}-*",
        args.subscribers,
        rooms.len()
    );
    let started = Instant::now();
    let opened = futures::stream::iter(0..args.subscribers)
        .map(|i| {
            // Subscriber i is in room i mod R, on gateway (i div R) mod G, so
            // every room has subscribers on every gateway once M >= R x G.
            let room = i % rooms.len();
            let gateway = (i / rooms.len()) % gateways.len();
            let target = gateways[gateway].clone();
            let path = format!("/api/v1/rooms/{}/stream", rooms[room]);
            async move {
                let connect = async {
                    let mut ws = target.connect_ws(&path).await?;
                    loop {
                        match next_frame(&mut ws).await? {
                            Next::Frame(Frame::CaughtUp { .. }) => return Ok((room, gateway, ws)),
                            Next::Frame(Frame::Message { .. }) => continue,
                            Next::Closed(reason) => bail!("closed before caught_up: {reason}"),
                        }
                    }
                };
                tokio::time::timeout(Duration::from_secs(60), connect)
                    .await
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("no caught_up within 60 s")))
            }
        })
        .buffer_unordered(args.connect_concurrency.max(1))
        .collect::<Vec<anyhow::Result<(usize, usize, Ws)>>>()
        .await;
    let connect_s = started.elapsed().as_secs_f64();
    let mut sockets = Vec::with_capacity(opened.len());
    let mut connect_failed = 0;
    for result in opened {
        match result {
            Ok(socket) => sockets.push(socket),
            Err(error) => {
                if connect_failed == 0 {
                    eprintln!("fanout: first connect failure: {error:#}");
                }
                connect_failed += 1;
            }
        }
    }
    if sockets.is_empty() {
        bail!("no subscriber could connect");
    }
    eprintln!(
        "fanout: {} connected in {connect_s:.1}s ({connect_failed} failed)",
        sockets.len()
    );
    let connected = sockets.len();
    let rss_connected = match args.server_pid {
        Some(pid) => {
            tokio::time::sleep(Duration::from_secs(2)).await;
            Some(rss_kib(pid)?)
        }
        None => None,
    };

    // 2. Subscribers read until they have what their room stored, or the
    //    drain deadline passes.
    let (targets_tx, targets_rx) = watch::channel::<Option<Arc<Vec<i64>>>>(None);
    let mut readers = tokio::task::JoinSet::new();
    for (room, gateway, ws) in sockets {
        let path = format!("/api/v1/rooms/{}/stream", rooms[room]);
        readers.spawn(subscribe(
            gateways[gateway].clone(),
            path,
            room,
            ws,
            targets_rx.clone(),
        ));
    }

    // 3. Post at the rate, round robin over the rooms.
    if let Some(command) = &args.before_posting {
        let status = tokio::process::Command::new("sh")
            .args(["-c", command])
            .status()
            .await
            .context("--before-posting")?;
        if !status.success() {
            bail!("--before-posting exited with {status}");
        }
    }
    let closed_loop = args.rate <= 0.0;
    if closed_loop {
        eprintln!(
            "fanout: posting closed-loop from {} clients for {}s",
            args.post_clients, args.duration
        );
    } else {
        eprintln!("fanout: posting {} msg/s for {}s", args.rate, args.duration);
    }
    let load = LoadArgs {
        base_url: args.base_url.clone(),
        clients: args.post_clients.max(1),
        rate: (!closed_loop).then_some(args.rate),
        duration: args.duration,
        warmup: 0.0,
    };
    let urls: Arc<[reqwest::Url]> = rooms
        .iter()
        .map(|room| poster.url(&format!("/api/v1/rooms/{room}/messages")))
        .collect::<anyhow::Result<_>>()?;
    let next_room = Arc::new(AtomicUsize::new(0));
    let posted = Arc::new(AtomicU64::new(0));
    let (posts, _) = {
        let (client, urls, posted) = (client.clone(), urls.clone(), posted.clone());
        drive(&load, move |_| {
            let url = urls[next_room.fetch_add(1, Ordering::Relaxed) % urls.len()].clone();
            let body = json!({"author": "bench", "text": format!("t={} fanout", now_micros())});
            let request = client.post(url).json(&body).send();
            let posted = posted.clone();
            async move {
                match request.await {
                    Ok(r) if r.status().as_u16() == 201 => {
                        posted.fetch_add(1, Ordering::Relaxed);
                        Outcome::Ok { bytes: 0 }
                    }
                    Ok(r) => Outcome::Status(r.status().as_u16()),
                    Err(_) => Outcome::Transport,
                }
            }
        })
        .await
    };

    // 4. Tell the subscribers what each room stored; wait for them.
    let stored = last_seqs(&poster, &client).await?;
    let targets: Arc<Vec<i64>> = Arc::new(
        rooms
            .iter()
            .map(|r| stored.get(r).copied().unwrap_or(0) as i64)
            .collect(),
    );
    let _ = targets_tx.send(Some(targets.clone()));
    let drain = Duration::from_secs_f64(args.drain_timeout.max(0.0));
    let mut seen = Vec::with_capacity(connected);
    let collected = tokio::time::timeout(drain, async {
        while let Some(done) = readers.join_next().await {
            if let Ok(one) = done {
                seen.push(one);
            }
        }
    })
    .await;
    if collected.is_err() {
        eprintln!(
            "fanout: {} subscribers still short after {drain:?}",
            readers.len()
        );
        readers.abort_all();
        // Aborted subscribers count as having received nothing we can see;
        // count them as missing everything in their (unknown) room.
    }
    let unfinished = connected - seen.len();
    let rss_after_run = args.server_pid.map(rss_kib).transpose()?;
    drop(targets_rx);

    // 5. Summarise.
    let mut delivery = Delivery::default();
    let mut delivery_latency = Recorder::new();
    let mut end_to_end = Recorder::new();
    for s in &seen {
        let expected = targets[s.room].max(0) as u64;
        delivery.expected += expected;
        delivery.received += s.received;
        delivery.duplicates += s.duplicates;
        delivery.out_of_order += s.out_of_order;
        let unique = s.received - s.duplicates;
        delivery.missing += expected.saturating_sub(unique);
        if s.last_seq == expected as i64 && s.duplicates == 0 && s.out_of_order == 0 {
            delivery.subscribers_complete += 1;
        }
        for reason in s.closed.iter().chain(&s.gave_up) {
            *delivery.closed_early.entry(reason.clone()).or_default() += 1;
        }
        delivery.resumed += s.closed.len() as u64;
        for &us in &s.delivery_us {
            delivery_latency.record_micros(u64::from(us));
        }
        for &us in &s.end_to_end_us {
            end_to_end.record_micros(u64::from(us));
        }
    }
    if unfinished > 0 {
        let mean_expected = targets.iter().sum::<i64>().max(0) as u64 / targets.len() as u64;
        delivery.expected += mean_expected * unfinished as u64;
        delivery.missing += mean_expected * unfinished as u64;
        *delivery
            .closed_early
            .entry("unfinished_at_drain_timeout".into())
            .or_default() += unfinished as u64;
    }
    let server_rss = match (rss_before, rss_connected, rss_after_run) {
        (Some(before), Some(connected_kib), Some(after)) => Some(ServerRss {
            before_kib: before,
            connected_kib,
            after_run_kib: after,
            per_connection_kib: ((connected_kib as f64 - before as f64) / connected as f64 * 100.0)
                .round()
                / 100.0,
        }),
        _ => None,
    };
    Ok(FanoutSummary {
        command: "fanout",
        subscribers: args.subscribers,
        rooms: rooms.len(),
        rate: args.rate,
        duration_s: args.duration,
        connect_s: (connect_s * 10.0).round() / 10.0,
        connect_failed,
        posted_ok: posted.load(Ordering::Relaxed),
        post_errors: posts.errors.clone(),
        post_latency: posts.latency.summary(),
        posts_per_s: (posted.load(Ordering::Relaxed) as f64 / args.duration.max(f64::EPSILON)
            * 10.0)
            .round()
            / 10.0,
        delivery_latency: delivery_latency.summary(),
        end_to_end_latency: end_to_end.summary(),
        delivery,
        server_rss,
    })
    .and_then(|summary| {
        if summary.posted_ok == 0 {
            Err(anyhow::anyhow!(
                "no message could be posted: {:?}",
                summary.post_errors
            ))
            .context("fanout")
        } else {
            Ok(summary)
        }
    })
}

/// Reads one subscriber's stream until it has seq `targets[room]` (once the
/// targets are known). A stream the server closes (e.g. `lagging`) is resumed
/// with `since` = the last seq received, up to ten times.
async fn subscribe(
    target: Target,
    path: String,
    room: usize,
    mut ws: Ws,
    mut targets: watch::Receiver<Option<Arc<Vec<i64>>>>,
) -> Seen {
    let mut seen = Seen {
        room,
        ..Seen::default()
    };
    let reached = |seen: &Seen, targets: &watch::Receiver<Option<Arc<Vec<i64>>>>| {
        targets
            .borrow()
            .as_ref()
            .is_some_and(|t| seen.last_seq >= t[room])
    };
    loop {
        if reached(&seen, &targets) {
            break;
        }
        let next = tokio::select! {
            changed = targets.changed() => {
                if changed.is_err() {
                    break;
                }
                continue;
            }
            next = next_frame(&mut ws) => next,
        };
        let ended = match next {
            Ok(Next::Frame(Frame::Message { message })) => {
                seen.record(&message);
                continue;
            }
            Ok(Next::Frame(Frame::CaughtUp { .. })) => continue,
            Ok(Next::Closed(reason)) if reason.is_empty() => "closed".to_owned(),
            Ok(Next::Closed(reason)) => reason,
            Err(error) => format!("error: {error:#}"),
        };
        seen.closed.push(ended);
        if seen.closed.len() > 10 {
            seen.gave_up = Some("gave_up_after_10_resumes".into());
            break;
        }
        let resume = format!("{path}?since={}", seen.last_seq);
        match target.connect_ws(&resume).await {
            Ok(socket) => ws = socket,
            Err(error) => {
                seen.gave_up = Some(format!("resume failed: {error:#}"));
                break;
            }
        }
    }
    let _ = ws.close(None).await;
    seen
}

impl Seen {
    /// Counts one delivered message and its latencies.
    fn record(&mut self, message: &StreamedMessage) {
        let now = OffsetDateTime::now_utc();
        self.received += 1;
        if message.seq <= self.last_seq {
            self.duplicates += 1;
            return;
        }
        if message.seq != self.last_seq + 1 {
            self.out_of_order += 1;
        }
        self.last_seq = message.seq;
        let lag = (now - message.sent_at).whole_microseconds().max(0);
        self.delivery_us
            .push(u32::try_from(lag).unwrap_or(u32::MAX));
        if let Some(sent) = message
            .text
            .strip_prefix("t=")
            .and_then(|t| t.split(' ').next())
            .and_then(|t| t.parse::<i64>().ok())
        {
            let lag = (now.unix_timestamp_nanos() / 1000) as i64 - sent;
            self.end_to_end_us
                .push(u32::try_from(lag.max(0)).unwrap_or(u32::MAX));
        }
    }
}
