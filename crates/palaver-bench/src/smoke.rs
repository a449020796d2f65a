//! `smoke`: checks a deployed instance end to end — health, readiness, the
//! OpenAPI document, send (and its idempotent repeat), read back, a WebSocket
//! stream's replay, `caught_up` and live delivery, resume with `since`, SSE
//! with `Last-Event-ID`, the seed endpoint and error answers — in a fresh
//! room, and reports each check. Any failed check makes the run fail.
//!
//! It sends five messages in total (well under the default rate limit) and
//! writes nothing to room `general`.

use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context};
use futures::StreamExt;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::cli::SmokeArgs;
use crate::target::{next_frame, run_id, Frame, Next, Target, Ws};

#[derive(Debug, Serialize)]
pub struct SmokeReport {
    pub command: &'static str,
    pub base_url: String,
    pub room: String,
    pub passed: bool,
    pub checks: Vec<Check>,
}

#[derive(Debug, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// State carried from one check to the next.
struct Smoke {
    target: Target,
    client: reqwest::Client,
    room: String,
    timeout: Duration,
    /// Seqs of the messages this run stored, in order.
    seqs: Vec<i64>,
    client_id: String,
}

pub async fn run(args: SmokeArgs) -> anyhow::Result<SmokeReport> {
    let target = Target::new(&args.base_url)?.signed_in().await?;
    let timeout = Duration::from_secs_f64(args.timeout.max(1.0));
    let mut smoke = Smoke {
        client: target.http(4, timeout)?,
        target,
        room: args.room.clone().unwrap_or_else(|| run_id("smoke")),
        timeout,
        seqs: Vec::new(),
        client_id: run_id("smoke-client"),
    };
    let mut checks = Vec::new();
    macro_rules! check {
        ($name:literal, $method:ident) => {{
            let started = Instant::now();
            let result = match tokio::time::timeout(smoke.timeout * 2, smoke.$method()).await {
                Ok(result) => result,
                Err(_) => Err(anyhow!("timed out after {:?}", smoke.timeout * 2)),
            };
            let check = Check {
                name: $name,
                ok: result.is_ok(),
                ms: (started.elapsed().as_secs_f64() * 10_000.0).round() / 10.0,
                error: result.err().map(|e| format!("{e:#}")),
            };
            eprintln!(
                "smoke: {} {}{}",
                if check.ok { "ok  " } else { "FAIL" },
                check.name,
                check
                    .error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            );
            checks.push(check);
        }};
    }
    check!("healthz", healthz);
    check!("readyz", readyz);
    check!("openapi", openapi);
    check!("send", send);
    check!("send_is_idempotent", send_again);
    check!("read_back", read_back);
    check!("rooms_list", rooms_list);
    check!("websocket_replay_caught_up_and_live", websocket_live);
    check!("websocket_resume_with_since", websocket_resume);
    check!("sse_resume_and_live", sse);
    check!("history_has_every_message_once", history);
    check!("seed_chat_read", seed_read);
    check!("seed_chat_rejects_empty_message", seed_empty);
    check!("errors_are_json_4xx", errors);
    let passed = checks.iter().all(|c| c.ok);
    Ok(SmokeReport {
        command: "smoke",
        base_url: args.base_url,
        room: smoke.room,
        passed,
        checks,
    })
}

impl Smoke {
    async fn get(&self, path: &str) -> anyhow::Result<(u16, reqwest::header::HeaderMap, String)> {
        let response = self
            .client
            .get(self.target.url(path)?)
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response
            .text()
            .await
            .with_context(|| format!("GET {path}"))?;
        Ok((status, headers, body))
    }

    async fn get_json(&self, path: &str, want: u16) -> anyhow::Result<Value> {
        let (status, _, body) = self.get(path).await?;
        ensure!(status == want, "GET {path}: {status} (want {want}): {body}");
        serde_json::from_str(&body).with_context(|| format!("GET {path}: not JSON: {body}"))
    }

    /// Posts `text` to the run's room; returns (status, headers, JSON body).
    async fn post(
        &self,
        text: &str,
        client_id: Option<&str>,
    ) -> anyhow::Result<(u16, reqwest::header::HeaderMap, Value)> {
        let path = format!("/api/v1/rooms/{}/messages", self.room);
        let response = self
            .client
            .post(self.target.url(&path)?)
            .json(&json!({"author": "smoke", "text": text, "client_id": client_id}))
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.context("reading the answer")?;
        let json = serde_json::from_str(&body)
            .with_context(|| format!("POST {path}: {status}, not JSON: {body}"))?;
        Ok((status, headers, json))
    }

    /// Posts and expects 201 with the stored message; records its seq.
    async fn post_new(&mut self, text: &str) -> anyhow::Result<i64> {
        let (status, _, message) = self.post(text, None).await?;
        ensure!(status == 201, "send: {status}: {message}");
        let seq = message["seq"].as_i64().context("no seq in the answer")?;
        ensure!(message["text"] == text, "stored text differs: {message}");
        self.seqs.push(seq);
        Ok(seq)
    }

    fn last_seq(&self) -> anyhow::Result<i64> {
        self.seqs
            .last()
            .copied()
            .context("no message was stored by an earlier check")
    }

    async fn healthz(&mut self) -> anyhow::Result<()> {
        let body = self.get_json("/healthz", 200).await?;
        ensure!(body["status"] == "ok", "unexpected body {body}");
        Ok(())
    }

    async fn readyz(&mut self) -> anyhow::Result<()> {
        let body = self.get_json("/readyz", 200).await?;
        ensure!(body["status"] == "ready", "unexpected body {body}");
        Ok(())
    }

    async fn openapi(&mut self) -> anyhow::Result<()> {
        let doc = self.get_json("/api/v1/openapi.json", 200).await?;
        for path in [
            "/api/v1/rooms/{room}/messages",
            "/api/v1/rooms/{room}/stream",
            "/chat",
        ] {
            ensure!(doc["paths"].get(path).is_some(), "{path} is not documented");
        }
        Ok(())
    }

    async fn send(&mut self) -> anyhow::Result<()> {
        let id = self.client_id.clone();
        let (status, _, message) = self.post("smoke: first", Some(&id)).await?;
        ensure!(status == 201, "send: {status}: {message}");
        ensure!(message["room"] == self.room.as_str(), "room: {message}");
        ensure!(message["author_id"].is_string(), "author_id: {message}");
        ensure!(message["client_id"] == id.as_str(), "client_id: {message}");
        let sent_at = message["sent_at"].as_str().context("no sent_at")?;
        time::OffsetDateTime::parse(sent_at, &time::format_description::well_known::Rfc3339)
            .with_context(|| format!("sent_at {sent_at:?} is not RFC 3339"))?;
        let seq = message["seq"].as_i64().context("no seq")?;
        ensure!(seq == 1, "a fresh room's first seq is {seq}, not 1");
        self.seqs.push(seq);
        Ok(())
    }

    async fn send_again(&mut self) -> anyhow::Result<()> {
        let id = self.client_id.clone();
        let first = *self.seqs.first().context("the first send failed")?;
        let (status, headers, message) = self.post("smoke: first", Some(&id)).await?;
        ensure!(status == 201, "repeat: {status}: {message}");
        ensure!(
            message["seq"] == first,
            "the repeat stored a copy: {message}"
        );
        ensure!(
            headers
                .get("idempotent-replayed")
                .is_some_and(|v| v == "true"),
            "no Idempotent-Replayed: true header"
        );
        Ok(())
    }

    async fn read_back(&mut self) -> anyhow::Result<()> {
        let seq = self.last_seq()?;
        let page = self
            .get_json(
                &format!("/api/v1/rooms/{}/messages?limit=10", self.room),
                200,
            )
            .await?;
        let messages = page["messages"].as_array().context("no messages array")?;
        ensure!(messages.len() == 1, "want 1 message, got {page}");
        ensure!(messages[0]["seq"] == seq, "seq differs: {page}");
        ensure!(
            messages[0]["text"] == "smoke: first",
            "text differs: {page}"
        );
        ensure!(page["has_more"] == false, "has_more: {page}");
        Ok(())
    }

    async fn rooms_list(&mut self) -> anyhow::Result<()> {
        let seq = self.last_seq()?;
        let rooms = self.get_json("/api/v1/rooms", 200).await?;
        let listed = rooms["rooms"]
            .as_array()
            .context("no rooms array")?
            .iter()
            .find(|r| r["name"] == self.room.as_str())
            .with_context(|| format!("{} is not listed", self.room))?;
        ensure!(listed["last_seq"] == seq, "last_seq: {listed}");
        Ok(())
    }

    async fn open_ws(&self, since: i64) -> anyhow::Result<Ws> {
        self.target
            .connect_ws(&format!("/api/v1/rooms/{}/stream?since={since}", self.room))
            .await
    }

    /// Reads a stream up to its `caught_up`: (replayed seqs, caught-up seq).
    async fn until_caught_up(&self, ws: &mut Ws) -> anyhow::Result<(Vec<i64>, i64)> {
        let mut seqs = Vec::new();
        loop {
            match tokio::time::timeout(self.timeout, next_frame(ws)).await {
                Err(_) => bail!("no caught_up within {:?} (after {seqs:?})", self.timeout),
                Ok(next) => match next? {
                    Next::Frame(Frame::Message { message }) => seqs.push(message.seq),
                    Next::Frame(Frame::CaughtUp { seq }) => return Ok((seqs, seq)),
                    Next::Closed(reason) => bail!("stream closed: {reason:?}"),
                },
            }
        }
    }

    async fn next_message(&self, ws: &mut Ws) -> anyhow::Result<(i64, String)> {
        match tokio::time::timeout(self.timeout, next_frame(ws)).await {
            Err(_) => bail!("no live message within {:?}", self.timeout),
            Ok(next) => match next? {
                Next::Frame(Frame::Message { message }) => Ok((message.seq, message.text)),
                Next::Frame(Frame::CaughtUp { seq }) => bail!("a second caught_up ({seq})"),
                Next::Closed(reason) => bail!("stream closed: {reason:?}"),
            },
        }
    }

    async fn websocket_live(&mut self) -> anyhow::Result<()> {
        let first = self.last_seq()?;
        let mut ws = self.open_ws(0).await?;
        let (replayed, caught_up) = self.until_caught_up(&mut ws).await?;
        ensure!(replayed == [first], "replay from 0: {replayed:?}");
        ensure!(caught_up == first, "caught_up {caught_up}, want {first}");
        let seq = self.post_new("smoke: live over websocket").await?;
        let (got, text) = self.next_message(&mut ws).await?;
        ensure!(
            got == seq && text == "smoke: live over websocket",
            "live: got seq {got} {text:?}, want {seq}"
        );
        let _ = ws.close(None).await;
        Ok(())
    }

    async fn websocket_resume(&mut self) -> anyhow::Result<()> {
        let since = self.last_seq()?;
        let missed = self.post_new("smoke: missed while away").await?;
        let mut ws = self.open_ws(since).await?;
        let (replayed, caught_up) = self.until_caught_up(&mut ws).await?;
        ensure!(
            replayed == [missed],
            "resume since {since}: replayed {replayed:?}, want [{missed}]"
        );
        ensure!(caught_up == missed, "caught_up {caught_up}, want {missed}");
        let _ = ws.close(None).await;
        Ok(())
    }

    async fn sse(&mut self) -> anyhow::Result<()> {
        let first = *self.seqs.first().context("the first send failed")?;
        let after_first: Vec<i64> = self.seqs.iter().copied().filter(|&s| s > first).collect();
        let path = format!("/api/v1/rooms/{}/stream", self.room);
        let response = self
            .client
            .get(self.target.url(&path)?)
            .header("accept", "text/event-stream")
            .header("last-event-id", first.to_string())
            // The stream never ends by itself: no overall request timeout.
            .timeout(Duration::from_secs(3600))
            .send()
            .await
            .context("SSE request")?;
        ensure!(response.status() == 200, "SSE: {}", response.status());
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        ensure!(
            content_type.starts_with("text/event-stream"),
            "content type {content_type:?}"
        );
        let mut sse = SseReader::new(response);
        let mut replayed = Vec::new();
        loop {
            let event = sse.next(self.timeout).await?;
            match event.event.as_deref() {
                Some("message") => replayed.push(
                    event
                        .id
                        .as_deref()
                        .and_then(|id| id.parse::<i64>().ok())
                        .with_context(|| format!("message event without a seq id: {event:?}"))?,
                ),
                Some("caught_up") => break,
                other => bail!("unexpected SSE event {other:?}"),
            }
        }
        ensure!(
            replayed == after_first,
            "SSE resume after {first}: {replayed:?}, want {after_first:?}"
        );
        let seq = self.post_new("smoke: live over sse").await?;
        let event = sse.next(self.timeout).await?;
        ensure!(
            event.event.as_deref() == Some("message") && event.id == Some(seq.to_string()),
            "live SSE event {event:?}, want message {seq}"
        );
        let message: Value = serde_json::from_str(&event.data).context("SSE data")?;
        ensure!(message["text"] == "smoke: live over sse", "data {message}");
        Ok(())
    }

    async fn history(&mut self) -> anyhow::Result<()> {
        ensure!(!self.seqs.is_empty(), "nothing was stored");
        let page = self
            .get_json(
                &format!("/api/v1/rooms/{}/messages?after=0&limit=200", self.room),
                200,
            )
            .await?;
        let seqs: Vec<i64> = page["messages"]
            .as_array()
            .context("no messages array")?
            .iter()
            .filter_map(|m| m["seq"].as_i64())
            .collect();
        let want: Vec<i64> = (1..=self.last_seq()?).collect();
        ensure!(seqs == want, "history {seqs:?}, want {want:?}");
        ensure!(
            self.seqs == want,
            "acknowledged {:?}, want {want:?}",
            self.seqs
        );
        Ok(())
    }

    async fn seed_read(&mut self) -> anyhow::Result<()> {
        let list = self.get_json("/chat?size=1", 200).await?;
        let list = list.as_array().context("GET /chat is not an array")?;
        ensure!(list.len() <= 1, "size=1 gave {} messages", list.len());
        for item in list {
            for field in ["ip", "datetime", "message"] {
                ensure!(item[field].is_string(), "{field} missing in {item}");
            }
        }
        Ok(())
    }

    async fn seed_empty(&mut self) -> anyhow::Result<()> {
        let response = self
            .client
            .put(self.target.url("/chat")?)
            .json(&json!({"message": ""}))
            .send()
            .await
            .context("PUT /chat")?;
        let status = response.status().as_u16();
        let body = response.text().await.context("PUT /chat body")?;
        ensure!(
            status == 400 && body == "Message is required",
            "PUT /chat with an empty message: {status} {body:?}"
        );
        Ok(())
    }

    async fn errors(&mut self) -> anyhow::Result<()> {
        let body = self
            .get_json(
                &format!("/api/v1/rooms/{}-missing/messages", self.room),
                404,
            )
            .await?;
        ensure!(body["error"]["code"] == "not_found", "{body}");
        let body = self
            .get_json("/api/v1/rooms/Not%20A%20Room/messages", 400)
            .await?;
        ensure!(body["error"]["code"] == "invalid_room", "{body}");
        let body = self
            .get_json(
                &format!("/api/v1/rooms/{}/messages?limit=100000", self.room),
                400,
            )
            .await?;
        ensure!(body["error"]["code"].is_string(), "{body}");
        Ok(())
    }
}

/// One Server-Sent Event.
#[derive(Debug, Default)]
struct SseEvent {
    id: Option<String>,
    event: Option<String>,
    data: String,
}

/// A minimal SSE reader: events separated by blank lines, comments skipped.
struct SseReader {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

impl SseReader {
    fn new(response: reqwest::Response) -> Self {
        Self {
            body: response.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    async fn next(&mut self, timeout: Duration) -> anyhow::Result<SseEvent> {
        loop {
            if let Some(event) = take_event(&mut self.buffer) {
                return Ok(event);
            }
            let chunk = tokio::time::timeout(timeout, self.body.next())
                .await
                .map_err(|_| anyhow!("no SSE event within {timeout:?}"))?
                .context("the SSE stream ended")?
                .context("reading the SSE stream")?;
            self.buffer.push_str(&String::from_utf8_lossy(&chunk));
        }
    }
}

/// Removes and parses the first complete event in `buffer`.
fn take_event(buffer: &mut String) -> Option<SseEvent> {
    loop {
        let normalized = buffer.replace("\r\n", "\n");
        if normalized.len() != buffer.len() {
            *buffer = normalized;
        }
        let end = buffer.find("\n\n")?;
        let block: String = buffer.drain(..end + 2).collect();
        let mut event = SseEvent::default();
        let mut has_field = false;
        for line in block.lines() {
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "id" => event.id = Some(value.to_owned()),
                "event" => event.event = Some(value.to_owned()),
                "data" => {
                    if !event.data.is_empty() {
                        event.data.push('\n');
                    }
                    event.data.push_str(value);
                }
                _ => continue, // comments (empty field) and unknown fields
            }
            has_field = true;
        }
        if has_field {
            return Some(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::take_event;

    #[test]
    fn sse_events_parse_and_comments_are_skipped() {
        let mut buffer = String::from(
            ":heartbeat\n\nid: 7\nevent: message\ndata: {\"a\":1}\n\nevent: caught_up\r\ndata: x\r\n\r\nid: 9",
        );
        let event = take_event(&mut buffer).unwrap();
        assert_eq!(event.id.as_deref(), Some("7"));
        assert_eq!(event.event.as_deref(), Some("message"));
        assert_eq!(event.data, "{\"a\":1}");
        let event = take_event(&mut buffer).unwrap();
        assert_eq!(event.event.as_deref(), Some("caught_up"));
        assert!(take_event(&mut buffer).is_none(), "incomplete event stays");
        assert_eq!(buffer, "id: 9");
    }
}
