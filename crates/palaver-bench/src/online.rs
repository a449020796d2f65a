//! `online`: many people online at once, then flapping (DESIGN §5e). Opens
//! one multiplexed stream for each of `--users` users whose sessions exist
//! already (cookie `palaver_session=<--token-prefix><i>`, created by the
//! bench script straight in the database: registering 10,000 accounts would
//! spend minutes hashing passwords), holds them `--hold` seconds, then for
//! `--flap` seconds closes and reopens every stream, round after round, so
//! every user goes offline and online again as fast as the machine allows.
//! The script reads the servers' RSS and signal counters around it.

use std::time::Duration;

use anyhow::Context;
use futures::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message as WsMessage;

use crate::cli::OnlineArgs;
use crate::target::{Target, Ws};

#[derive(Debug, Serialize)]
pub struct OnlineSummary {
    pub command: &'static str,
    pub users: usize,
    pub connected: usize,
    pub connect_s: f64,
    pub hold_s: f64,
    /// Rounds of closing and reopening every stream.
    pub flap_rounds: u64,
    /// Offline-online transitions per second over the flapping phase.
    pub flaps_per_s: f64,
    pub flap_errors: u64,
}

async fn open(target: &Target, token: String) -> anyhow::Result<Ws> {
    target
        .with_cookie(&format!("palaver_session={token}"))
        .connect_ws("/api/v1/stream")
        .await
}

async fn open_all(target: &Target, args: &OnlineArgs) -> (Vec<Ws>, u64) {
    let opened: Vec<anyhow::Result<Ws>> = futures::stream::iter(0..args.users)
        .map(|i| open(target, format!("{}{i}", args.token_prefix)))
        .buffer_unordered(args.connect_concurrency)
        .collect()
        .await;
    let mut errors = 0;
    let mut streams = Vec::with_capacity(opened.len());
    for ws in opened {
        match ws {
            Ok(ws) => streams.push(ws),
            Err(_) => errors += 1,
        }
    }
    (streams, errors)
}

async fn close_all(streams: Vec<Ws>) {
    futures::stream::iter(streams)
        .for_each_concurrent(512, |mut ws| async move {
            let _ =
                tokio::time::timeout(Duration::from_secs(2), ws.send(WsMessage::Close(None))).await;
        })
        .await;
}

pub async fn run(args: OnlineArgs) -> anyhow::Result<OnlineSummary> {
    let target = Target::new(&args.base_url)?;
    let started = Instant::now();
    let (streams, errors) = open_all(&target, &args).await;
    let connect_s = started.elapsed().as_secs_f64();
    let connected = streams.len();
    eprintln!("online: {connected} streams open ({errors} failed) in {connect_s:.1} s");
    if connected == 0 {
        anyhow::bail!("no stream opened");
    }
    tokio::time::sleep(Duration::from_secs_f64(args.hold)).await;
    let mut streams = Some(streams);
    let flap_started = Instant::now();
    let mut rounds = 0;
    let mut flap_errors = 0;
    while flap_started.elapsed().as_secs_f64() < args.flap {
        close_all(streams.take().context("streams")?).await;
        let (again, errors) = open_all(&target, &args).await;
        flap_errors += errors;
        streams = Some(again);
        rounds += 1;
    }
    let flap_s = flap_started.elapsed().as_secs_f64();
    if let Some(streams) = streams {
        close_all(streams).await;
    }
    Ok(OnlineSummary {
        command: "online",
        users: args.users,
        connected,
        connect_s,
        hold_s: args.hold,
        flap_rounds: rounds,
        flaps_per_s: if flap_s > 0.0 {
            (rounds as f64 * connected as f64) / flap_s
        } else {
            0.0
        },
        flap_errors,
    })
}
