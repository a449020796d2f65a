//! `startup`: how long a server binary takes from exec to `/readyz` = 200,
//! and its resident memory once idle.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::cli::StartupArgs;
use crate::target::rss_kib;

#[derive(Debug, Serialize)]
pub struct StartupSummary {
    pub command: &'static str,
    pub bin: String,
    pub args: Vec<String>,
    pub runs: usize,
    pub ready_ms: Vec<f64>,
    pub idle_rss_kib: Vec<u64>,
    pub median_ready_ms: f64,
    pub median_idle_rss_kib: u64,
}

pub async fn run(args: StartupArgs) -> anyhow::Result<StartupSummary> {
    let mut ready_ms = Vec::new();
    let mut rss = Vec::new();
    for run in 0..args.runs.max(1) {
        let (ms, kib) = once(&args)
            .await
            .with_context(|| format!("run {}", run + 1))?;
        eprintln!(
            "startup: run {}: ready in {ms:.1} ms, idle RSS {kib} KiB",
            run + 1
        );
        ready_ms.push(ms);
        rss.push(kib);
    }
    Ok(StartupSummary {
        command: "startup",
        bin: args.bin.display().to_string(),
        args: args.server_args.clone(),
        runs: ready_ms.len(),
        median_ready_ms: median(&ready_ms),
        median_idle_rss_kib: median(&rss.iter().map(|&k| k as f64).collect::<Vec<_>>()) as u64,
        ready_ms,
        idle_rss_kib: rss,
    })
}

/// One start: returns (ms to ready, idle RSS in KiB); stops the server.
async fn once(args: &StartupArgs) -> anyhow::Result<(f64, u64)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let started = Instant::now();
    let mut child = tokio::process::Command::new(&args.bin)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(&args.server_args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting {}", args.bin.display()))?;
    let pid = child.id().context("the server exited at once")?;
    let deadline = started + Duration::from_secs(30);
    let ready = loop {
        if ready(port).await {
            break started.elapsed();
        }
        if Instant::now() > deadline {
            bail!("not ready within 30 s");
        }
        if let Some(status) = child.try_wait()? {
            bail!("the server exited with {status} before it was ready");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    tokio::time::sleep(Duration::from_secs_f64(args.settle.max(0.0))).await;
    let kib = rss_kib(pid)?;
    // SIGTERM through kill(1) by pid, then wait; kill_on_drop is the backstop.
    let _ = tokio::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await;
    let _ = tokio::time::timeout(Duration::from_secs(30), child.wait()).await;
    Ok((ready.as_secs_f64() * 1000.0, kib))
}

/// A bare HTTP/1.1 `GET /readyz`: true on a 200.
async fn ready(port: u16) -> bool {
    let probe = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        stream
            .write_all(b"GET /readyz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await?;
        Ok::<_, std::io::Error>(head.starts_with(b"HTTP/1.1 200"))
    };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), probe).await,
        Ok(Ok(true))
    )
}

pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.total_cmp(b));
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }
}
