//! `read`: GET one path (a history page) under load.

use std::time::Duration;

use anyhow::{bail, Context};
use futures::StreamExt;
use serde_json::json;

use crate::cli::ReadArgs;
use crate::send::{drive, Outcome};
use crate::stats::LoadSummary;
use crate::target::Target;

pub async fn run(args: ReadArgs) -> anyhow::Result<LoadSummary> {
    let target = Target::new(&args.load.base_url)?.signed_in().await?;
    let client = target.http(args.load.clients, Duration::from_secs(30))?;
    if args.prefill > 0 {
        prefill(&target, &client, &args.prefill_room, args.prefill).await?;
    }
    let url = target.url(&args.path)?;
    eprintln!(
        "read: {} clients GET {url}, {}s (+{}s warm-up)",
        args.load.clients, args.load.duration, args.load.warmup
    );
    let (tally, window) = {
        let (client, url) = (client.clone(), url.clone());
        drive(&args.load, move |_| {
            let request = client.get(url.clone()).send();
            async move {
                match request.await {
                    Ok(response) if response.status().is_success() => {
                        match response.bytes().await {
                            Ok(body) => Outcome::Ok {
                                bytes: body.len() as u64,
                            },
                            Err(_) => Outcome::Transport,
                        }
                    }
                    Ok(response) => Outcome::Status(response.status().as_u16()),
                    Err(_) => Outcome::Transport,
                }
            }
        })
        .await
    };
    let mut summary = LoadSummary::new(
        "read",
        format!("GET {url}"),
        args.load.clients,
        args.load.rate,
        window,
        &tally,
    );
    summary.mean_body_bytes = tally.bytes.checked_div(tally.ok);
    Ok(summary)
}

/// Posts `n` messages into `room`, 32 at a time.
async fn prefill(
    target: &Target,
    client: &reqwest::Client,
    room: &str,
    n: usize,
) -> anyhow::Result<()> {
    eprintln!("read: posting {n} messages into {room}");
    let url = target.url(&format!("/api/v1/rooms/{room}/messages"))?;
    let failures = futures::stream::iter(0..n)
        .map(|i| {
            let request = client
                .post(url.clone())
                .json(&json!({"author": "bench", "text": format!("prefill message {i} of {n}")}))
                .send();
            async move {
                match request.await {
                    Ok(r) if r.status().as_u16() == 201 => 0,
                    _ => 1,
                }
            }
        })
        .buffer_unordered(32)
        .fold(0usize, |acc, failed| async move { acc + failed })
        .await;
    if failures > 0 {
        bail!("{failures} of {n} prefill sends to {room} failed (is --rate-limit 0 set?)");
    }
    // One read so the page is warm and the room certainly exists.
    client
        .get(url)
        .send()
        .await
        .and_then(|r| r.error_for_status())
        .context("reading back the prefilled room")?;
    Ok(())
}
