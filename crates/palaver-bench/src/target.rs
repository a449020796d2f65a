//! The server under test: its URLs, HTTP and WebSocket clients, the frames
//! its streams send, and the memory of a local server process.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use futures::StreamExt;
use reqwest::Url;
use serde::Deserialize;
use time::OffsetDateTime;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// A server's base URL, and clients for it.
#[derive(Clone)]
pub struct Target {
    base: Url,
    tls: Arc<rustls::ClientConfig>,
    /// `palaver_session=...` once signed in ([`Target::signed_in`]).
    cookie: Option<String>,
}

/// The account the bench signs in as: `PALAVER_BENCH_USER` /
/// `PALAVER_BENCH_PASSWORD`, registered on first use.
const DEFAULT_USER: &str = "palaver-bench";
const DEFAULT_PASSWORD: &str = "palaver-bench-password";

impl Target {
    pub fn new(base_url: &str) -> anyhow::Result<Self> {
        let mut base = Url::parse(base_url).with_context(|| format!("base URL {base_url:?}"))?;
        if !matches!(base.scheme(), "http" | "https") {
            bail!("base URL must be http:// or https://, not {base_url:?}");
        }
        // Paths are joined onto the base, so it must end in a slash.
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        crate::init_tls();
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let tls = rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self {
            base,
            tls: Arc::new(tls),
            cookie: None,
        })
    }

    /// Signs in as the bench user (registering it when it does not exist),
    /// so v1 sends, reads and streams carry its session cookie. A server
    /// without local accounts (404) is used unsigned.
    pub async fn signed_in(self) -> anyhow::Result<Self> {
        let username = std::env::var("PALAVER_BENCH_USER").unwrap_or_else(|_| DEFAULT_USER.into());
        self.signed_in_as(&username).await
    }

    /// Signs in as `username` (with the bench password), registering it
    /// when it does not exist.
    pub async fn signed_in_as(mut self, username: &str) -> anyhow::Result<Self> {
        let password =
            std::env::var("PALAVER_BENCH_PASSWORD").unwrap_or_else(|_| DEFAULT_PASSWORD.into());
        let client = self.http(1, Duration::from_secs(30))?;
        let body = serde_json::json!({"username": username, "password": password, "display_name": "bench"});
        let register = client
            .post(self.url("/api/v1/auth/register")?)
            .json(&body)
            .send()
            .await
            .context("registering the bench user")?;
        let response = match register.status().as_u16() {
            404 => return Ok(self),
            409 | 403 => client
                .post(self.url("/api/v1/auth/login")?)
                .json(&body)
                .send()
                .await
                .context("signing in the bench user")?,
            _ => register,
        };
        if !response.status().is_success() {
            bail!("signing in as {username}: HTTP {}", response.status());
        }
        self.cookie = response
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("palaver_session="))
            .and_then(|v| v.split(';').next())
            .map(str::to_owned);
        if self.cookie.is_none() {
            bail!("signing in as {username}: no session cookie");
        }
        Ok(self)
    }

    /// The same target with this `Cookie` header instead of its own session.
    pub fn with_cookie(&self, cookie: &str) -> Self {
        Self {
            base: self.base.clone(),
            tls: self.tls.clone(),
            cookie: Some(cookie.to_owned()),
        }
    }

    /// `path` (with its query) under the base URL.
    pub fn url(&self, path: &str) -> anyhow::Result<Url> {
        self.base
            .join(path.trim_start_matches('/'))
            .with_context(|| format!("joining {path:?} onto {}", self.base))
    }

    /// The `ws://` or `wss://` URL of `path`.
    pub fn ws_url(&self, path: &str) -> anyhow::Result<Url> {
        let mut url = self.url(path)?;
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        url.set_scheme(scheme)
            .map_err(|()| anyhow::anyhow!("cannot make a WebSocket URL of {url}"))?;
        Ok(url)
    }

    pub fn is_tls(&self) -> bool {
        self.base.scheme() == "https"
    }

    /// An HTTP client for up to `connections` concurrent requests.
    pub fn http(&self, connections: usize, timeout: Duration) -> anyhow::Result<reqwest::Client> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(cookie) = &self.cookie {
            headers.insert(
                reqwest::header::COOKIE,
                reqwest::header::HeaderValue::from_str(cookie).context("session cookie")?,
            );
        }
        reqwest::Client::builder()
            .default_headers(headers)
            .pool_max_idle_per_host(connections)
            .timeout(timeout)
            .connect_timeout(timeout)
            .tcp_nodelay(true)
            .user_agent(concat!("palaver-bench/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("building the HTTP client")
    }

    /// Opens a WebSocket to `path` with small buffers (thousands of these
    /// may be open at once).
    pub async fn connect_ws(&self, path: &str) -> anyhow::Result<Ws> {
        let url = self.ws_url(path)?;
        let config = WebSocketConfig::default()
            .read_buffer_size(16 * 1024)
            .write_buffer_size(0)
            .max_message_size(Some(1 << 20))
            .max_frame_size(Some(1 << 20));
        let connector = self.is_tls().then(|| Connector::Rustls(self.tls.clone()));
        let mut request =
            tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
                url.as_str(),
            )?;
        if let Some(cookie) = &self.cookie {
            request.headers_mut().insert("cookie", cookie.parse()?);
        }
        let (ws, _) = tokio_tungstenite::connect_async_tls_with_config(
            request,
            Some(config),
            true,
            connector,
        )
        .await
        .with_context(|| format!("WebSocket connect to {url}"))?;
        Ok(ws)
    }
}

/// A frame a stream sends, as far as the bench reads it.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Frame {
    Message { message: StreamedMessage },
    CaughtUp { seq: i64 },
}

#[derive(Debug, Clone, Deserialize)]
pub struct StreamedMessage {
    pub seq: i64,
    pub text: String,
    pub author: String,
    pub room: String,
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
    pub client_id: Option<String>,
}

/// What reading a stream produced next.
#[derive(Debug)]
pub enum Next {
    Frame(Frame),
    /// The server closed the stream, with this reason (empty if none).
    Closed(String),
}

/// The next JSON frame of a WebSocket stream, skipping control frames.
pub async fn next_frame(ws: &mut Ws) -> anyhow::Result<Next> {
    loop {
        let Some(message) = ws.next().await else {
            return Ok(Next::Closed(String::new()));
        };
        match message.context("reading the stream")? {
            WsMessage::Text(text) => {
                let frame = serde_json::from_str(text.as_str())
                    .with_context(|| format!("unexpected frame {text}"))?;
                return Ok(Next::Frame(frame));
            }
            WsMessage::Close(frame) => {
                return Ok(Next::Closed(
                    frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                ))
            }
            _ => continue,
        }
    }
}

/// Resident memory of a local process, in KiB, from `/proc/PID/status`.
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS in /proc/{pid}/status"))
}

/// Microseconds since the Unix epoch (for timestamps embedded in texts).
pub fn now_micros() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1000) as i64
}

/// A fresh name for a run's rooms: `<prefix>-<8 hex>`.
pub fn run_id(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_join_under_the_base_and_switch_to_ws_schemes() {
        let t = Target::new("https://chat.example.org/prefix").unwrap();
        assert_eq!(
            t.url("/healthz").unwrap().as_str(),
            "https://chat.example.org/prefix/healthz"
        );
        assert_eq!(
            t.ws_url("/api/v1/rooms/a/stream?since=3").unwrap().as_str(),
            "wss://chat.example.org/prefix/api/v1/rooms/a/stream?since=3"
        );
        let t = Target::new("http://127.0.0.1:8080").unwrap();
        assert_eq!(t.ws_url("/x").unwrap().as_str(), "ws://127.0.0.1:8080/x");
        assert!(Target::new("ftp://x").is_err());
    }

    #[test]
    fn frames_parse_as_the_server_sends_them() {
        let m: Frame = serde_json::from_str(
            r#"{"type":"message","message":{"room":"a","seq":4,"author":"x","text":"hi",
                "sent_at":"2026-11-25T10:00:00.123Z","client_id":null}}"#,
        )
        .unwrap();
        assert!(matches!(m, Frame::Message { message } if message.seq == 4));
        let c: Frame = serde_json::from_str(r#"{"type":"caught_up","seq":9}"#).unwrap();
        assert!(matches!(c, Frame::CaughtUp { seq: 9 }));
    }

    #[test]
    fn this_process_has_a_resident_set() {
        assert!(rss_kib(std::process::id()).unwrap() > 0);
    }
}
