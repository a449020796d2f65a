//! Helpers of the fault suite (and of every test that reads metrics): a
//! server process's memory, file descriptors and metrics, and waiting on
//! conditions instead of sleeping.

use std::future::Future;
use std::time::Duration;

/// Resident memory of a process in KiB (`VmRSS` of `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Open sockets of a process: its file descriptors that are sockets.
pub fn open_sockets(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("proc fd")
        .flatten()
        .filter(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"))
        })
        .count()
}

/// The sum of every series of `name` in a Prometheus text page, or `None`
/// when the page has no such series.
pub fn metric_sum(page: &str, name: &str) -> Option<f64> {
    let mut found = None;
    for line in page.lines().filter(|l| !l.starts_with('#')) {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue; // a longer name with this prefix
        }
        if let Some(value) = rest.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) {
            *found.get_or_insert(0.0) += value;
        }
    }
    found
}

/// `GET /metrics` of the server at `base` (e.g. `http://127.0.0.1:PORT`).
pub async fn metrics(client: &reqwest::Client, base: &str) -> String {
    client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text")
}

/// Polls `condition` every 50 ms until it holds; panics with `what` after
/// `limit`. Faults are timed by conditions, never by fixed sleeps.
pub async fn wait_until<F, Fut>(what: &str, limit: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if condition().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn metric_sums_add_every_labelled_series_of_exactly_that_name() {
    let page = "# TYPE palaver_stream_connections gauge\n\
                palaver_stream_connections{transport=\"websocket\"} 3\n\
                palaver_stream_connections{transport=\"sse\"} 2\n\
                palaver_stream_connections_extra 9\n";
    assert_eq!(metric_sum(page, "palaver_stream_connections"), Some(5.0));
    assert_eq!(metric_sum(page, "palaver_missing"), None);
}

/// An HTTP/1.1 answer read off a raw socket.
#[derive(Debug)]
pub struct RawAnswer {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

/// Sends `method path` with a body over a raw socket, writing the body while
/// reading the answer (as curl does), so an early answer — a 413 sent before
/// the body is all read — is seen even when the server then resets the
/// connection under the rest of the upload.
pub async fn raw_request(
    port: u16,
    method: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> RawAnswer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let (mut read, mut write) = stream.into_split();
    // Signed in as the server's default user, like the test clients.
    let cookie = crate::helpers::cookie_for_port(port)
        .map(|c| format!("Cookie: {c}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n\
         {cookie}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let writer = tokio::spawn(async move {
        if write.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        for chunk in body.chunks(16 * 1024) {
            if write.write_all(chunk).await.is_err() {
                return; // the server stopped reading: expected
            }
        }
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), read.read(&mut buf)).await {
            Ok(Ok(0)) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            Ok(Err(error)) if answer.is_empty() => panic!("no answer: {error}"),
            Ok(Err(_)) => break, // reset after the answer
            Err(_) => panic!("no answer within 10 s"),
        }
    }
    writer.abort();
    let text = String::from_utf8_lossy(&answer).into_owned();
    // Skip a `100 Continue` interim answer if one came first.
    let text = text
        .strip_prefix("HTTP/1.1 100 Continue\r\n\r\n")
        .unwrap_or(&text);
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let content_type = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_owned())
        })
        .unwrap_or_default();
    RawAnswer {
        status,
        content_type,
        body: body.to_owned(),
    }
}
