//! Test harness: a real server on port 0 over a fresh database per test.
//!
//! SQLite: a file in a temporary folder. PostgreSQL: a new database on the
//! cluster named by `DATABASE_URL`, or, when it is unset, on a throwaway
//! cluster this harness starts with `initdb`/`pg_ctl` on a free loopback port.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use futures::StreamExt;
use palaver::config::Config;
use palaver::Application;
use serde_json::{json, Value};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates `sqlite` and `postgres` tests in a module named after a test
/// function taking a [`Backend`].
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::helpers::Backend::Postgres).await
                }
            }
        )*
    };
}

fn init_logging() {
    if std::env::var_os("TEST_LOG").is_some() {
        palaver::telemetry::init_logging(Some(palaver::config::LogFormat::Pretty), "info");
    }
}

/// A database for one test; keeps what must live as long as the test.
pub struct TestDb {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    _cluster: Option<PgCluster>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}/palaver.db", dir.path().display());
                TestDb {
                    url,
                    _dir: Some(dir),
                    _cluster: None,
                }
            }
            Backend::Postgres => {
                let (admin, cluster) = match std::env::var("DATABASE_URL") {
                    Ok(url) if url.starts_with("postgres") => (url, None),
                    _ => {
                        let cluster = PgCluster::start();
                        (cluster.url("postgres"), Some(cluster))
                    }
                };
                let url = create_database(&admin).await;
                TestDb {
                    url,
                    _dir: None,
                    _cluster: cluster,
                }
            }
        }
    }

    /// A database on a private cluster the test may stop and start.
    pub async fn private_postgres() -> (Self, PgClusterHandle) {
        let cluster = PgCluster::start();
        let url = create_database(&cluster.url("postgres")).await;
        let handle = cluster.handle();
        (
            TestDb {
                url,
                _dir: None,
                _cluster: Some(cluster),
            },
            handle,
        )
    }
}

/// Creates a uniquely named database and returns its URL.
async fn create_database(admin_url: &str) -> String {
    use sqlx::Connection;
    let name = format!("palaver_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .expect("connect to the PostgreSQL cluster");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let (base, _) = admin_url
        .rsplit_once('/')
        .expect("DATABASE_URL ends in /dbname");
    format!("{base}/{name}")
}

// ---------------------------------------------------------------------------
// Accounts: every test server gets a signed-in default user, so tests of
// other concerns talk to it as before.

/// The default user's username, display name and password.
pub const DEFAULT_USER: &str = "tester";
pub const TEST_PASSWORD: &str = "test-password-123";

/// Session cookies (`palaver_session=...`) of the default user, by server
/// port and by database URL (replicas on one database share the user).
static BY_PORT: Mutex<Option<HashMap<u16, String>>> = Mutex::new(None);
static BY_DB: Mutex<Option<HashMap<String, String>>> = Mutex::new(None);
/// Servers started on a database before its default user could be made
/// there (a gateway-only replica serves no sign-up): they get the cookie
/// once another replica makes it.
static WAITING: Mutex<Vec<(String, u16)>> = Mutex::new(Vec::new());

fn remember(map: &Mutex<Option<HashMap<String, String>>>, key: &str, cookie: &str) {
    map.lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .insert(key.to_owned(), cookie.to_owned());
}

fn remember_port(port: u16, cookie: &str) {
    BY_PORT
        .lock()
        .unwrap()
        .get_or_insert_with(HashMap::new)
        .insert(port, cookie.to_owned());
}

/// The default user's cookie for the server on `port`.
pub fn cookie_for_port(port: u16) -> Option<String> {
    BY_PORT.lock().unwrap().as_ref()?.get(&port).cloned()
}

/// `palaver_session=<token>` from a response's Set-Cookie.
pub fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("palaver_session="))
        .and_then(|v| v.split(';').next())
        .map(str::to_owned)
}

/// Registers `username` on the server at `base` (or, when taken, signs in)
/// and returns its session cookie.
pub async fn sign_up(base: &str, username: &str, display_name: &str) -> String {
    try_sign_up(base, username, display_name)
        .await
        .expect("this server serves sign-up")
}

/// [`sign_up`], or `None` when the server does not serve the accounts API.
pub async fn try_sign_up(base: &str, username: &str, display_name: &str) -> Option<String> {
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{base}/api/v1/auth/register"))
        .json(
            &json!({"username": username, "password": TEST_PASSWORD, "display_name": display_name}),
        )
        .send()
        .await
        .expect("register");
    if response.status() == 404 {
        return None;
    }
    let response = if response.status() == 409 {
        client
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"username": username, "password": TEST_PASSWORD}))
            .send()
            .await
            .expect("login")
    } else {
        response
    };
    assert!(
        response.status().is_success(),
        "sign up {username}: {}",
        response.status()
    );
    Some(session_cookie(&response).expect("a session cookie"))
}

/// A client that sends `cookie` on every request.
pub fn client_with_cookie(cookie: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::COOKIE,
        reqwest::header::HeaderValue::from_str(cookie).expect("cookie header"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("client")
}

/// The default user's cookie on the server at `base`, whose database is
/// `db_url`: reused across replicas of one database.
pub async fn default_cookie(base: &str, port: u16, db_url: &str) -> Option<String> {
    let known = BY_DB
        .lock()
        .unwrap()
        .as_ref()
        .and_then(|m| m.get(db_url).cloned());
    let cookie = match known {
        Some(cookie) => cookie,
        None => match try_sign_up(base, DEFAULT_USER, DEFAULT_USER).await {
            Some(cookie) => {
                remember(&BY_DB, db_url, &cookie);
                cookie
            }
            None => {
                WAITING.lock().unwrap().push((db_url.to_owned(), port));
                return None;
            }
        },
    };
    remember_port(port, &cookie);
    for (db, waiting) in WAITING.lock().unwrap().iter() {
        if db == db_url {
            remember_port(*waiting, &cookie);
        }
    }
    Some(cookie)
}

/// A running test server.
pub struct TestApp {
    pub address: String,
    pub port: u16,
    /// Signed in as [`DEFAULT_USER`] (unless spawned bare).
    pub client: reqwest::Client,
    /// The default user's `palaver_session=...`.
    pub cookie: Option<String>,
    /// Sends no cookie.
    pub anonymous: reqwest::Client,
    pub db_url: String,
    /// Kept so the database outlives the server.
    _db: TestDb,
    shutdown: CancellationToken,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{}", self.port, path)
    }

    pub async fn post_message(&self, room: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/api/v1/rooms/{room}/messages")))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// Sends `text` as the default user and asserts it was stored.
    pub async fn send(&self, room: &str, text: &str) -> Value {
        let response = self.post_message(room, &json!({"text": text})).await;
        assert_eq!(response.status(), 201, "send to {room}");
        response.json().await.expect("json")
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(self.url(path))
            .send()
            .await
            .expect("request");
        status_and_json(response).await
    }

    /// (status, JSON body or null) of `method path` sent with `cookie`.
    pub async fn call(
        &self,
        cookie: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let client = client_with_cookie(cookie);
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut request = client.request(method, self.url(path));
        if let Some(body) = body {
            request = request.json(&body);
        }
        status_and_json(request.send().await.expect("request")).await
    }

    /// Another user of this server, signed up (display name = `username`).
    pub async fn person(&self, username: &str) -> Person {
        person_on(&self.address, username, username).await
    }

    /// Every message of a room, oldest first, by paging with `after`.
    pub async fn all_messages(&self, room: &str) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let (status, page) = self
                .get_json(&format!(
                    "/api/v1/rooms/{room}/messages?after={after}&limit=200"
                ))
                .await;
            assert_eq!(status, 200);
            let messages = page["messages"].as_array().expect("messages").clone();
            if let Some(last) = messages.last() {
                after = last["seq"].as_i64().expect("seq");
            }
            out.extend(messages);
            if !page["has_more"].as_bool().expect("has_more") {
                return out;
            }
        }
    }
}

/// Extra flags on top of the test defaults.
pub async fn spawn_app_with(backend: Backend, extra: &[&str]) -> TestApp {
    let db = TestDb::new(backend).await;
    spawn_app_on(db, extra).await
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, &[]).await
}

pub async fn spawn_app_on(db: TestDb, extra: &[&str]) -> TestApp {
    let mut app = spawn_bare_app_on(db, extra).await;
    if let Some(cookie) = default_cookie(&app.address, app.port, &app.db_url).await {
        app.client = client_with_cookie(&cookie);
        app.cookie = Some(cookie);
    }
    app
}

/// A server with no account yet (the next registration becomes admin).
pub async fn spawn_bare_app(backend: Backend, extra: &[&str]) -> TestApp {
    spawn_bare_app_on(TestDb::new(backend).await, extra).await
}

pub async fn spawn_bare_app_on(db: TestDb, extra: &[&str]) -> TestApp {
    init_logging();
    let mut args = vec![
        "palaver",
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        &db.url,
        "--rate-limit",
        "0",
        "--stream-open-rate",
        "0",
        "--max-streams-per-ip",
        "0",
        "--shutdown-grace",
        "5",
    ];
    args.extend_from_slice(extra);
    let config = Config::from_args(args).expect("config");
    let app = Application::build(config).await.expect("build app");
    let port = app.port();
    let shutdown = app.shutdown_token();
    let server = tokio::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        client: reqwest::Client::new(),
        cookie: None,
        anonymous: reqwest::Client::new(),
        db_url: db.url.clone(),
        _db: db,
        shutdown,
        server: Some(server),
    }
}

// ---------------------------------------------------------------------------
// Streams

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

fn port_of(url: &str) -> u16 {
    url.split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|authority| authority.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .expect("a ws://host:port/ URL")
}

/// Opens a WebSocket as the default user of the server `url` points at.
pub async fn connect_ws(url: &str) -> Ws {
    try_connect_ws(url, cookie_for_port(port_of(url)).as_deref(), None)
        .await
        .expect("websocket connect")
}

/// A WebSocket handshake request for `url` carrying the default user's
/// cookie, for tests that bring their own socket.
pub fn ws_request(url: &str) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = url.into_client_request().expect("ws request");
    if let Some(cookie) = cookie_for_port(port_of(url)) {
        request
            .headers_mut()
            .insert("cookie", cookie.parse().expect("cookie header"));
    }
    request
}

/// Opens a WebSocket with the given cookie and Origin.
pub async fn try_connect_ws(
    url: &str,
    cookie: Option<&str>,
    origin: Option<&str>,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut request = url.into_client_request()?;
    if let Some(cookie) = cookie {
        request
            .headers_mut()
            .insert("cookie", cookie.parse().expect("cookie header"));
    }
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", origin.parse().expect("origin header"));
    }
    let (ws, _) = tokio_tungstenite::connect_async(request).await?;
    Ok(ws)
}

/// The HTTP status a refused WebSocket upgrade got (`None` when it was
/// not refused).
pub fn refused_status(error: &Option<tokio_tungstenite::tungstenite::Error>) -> Option<u16> {
    match error {
        Some(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Some(response.status().as_u16())
        }
        _ => None,
    }
}

/// The next JSON frame (skipping pings), within 10 s.
pub async fn next_frame(ws: &mut Ws) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a frame within 10 s")
            .expect("stream open")
            .expect("frame");
        match message {
            WsMessage::Text(text) => return serde_json::from_str(&text).expect("json frame"),
            WsMessage::Close(frame) => panic!("stream closed: {frame:?}"),
            _ => continue,
        }
    }
}

/// Reads frames until `caught_up`, returning the messages' seqs.
pub async fn read_until_caught_up(ws: &mut Ws) -> (Vec<i64>, i64) {
    let mut seqs = Vec::new();
    loop {
        let frame = next_frame(ws).await;
        match frame["type"].as_str() {
            Some("message") => seqs.push(frame["message"]["seq"].as_i64().expect("seq")),
            Some("caught_up") => return (seqs, frame["seq"].as_i64().expect("seq")),
            other => panic!("unexpected frame type {other:?}"),
        }
    }
}

/// Reads `n` message frames, returning their (seq, text).
pub async fn read_messages(ws: &mut Ws, n: usize) -> Vec<(i64, String)> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let frame = next_frame(ws).await;
        if frame["type"] == "message" {
            out.push((
                frame["message"]["seq"].as_i64().expect("seq"),
                frame["message"]["text"].as_str().expect("text").to_owned(),
            ));
        }
    }
    out
}

pub async fn close_ws(mut ws: Ws) {
    let _ = ws.close(None).await;
}

/// A minimal SSE reader over a reqwest response.
pub struct Sse {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

#[derive(Debug, Default, Clone)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
}

impl Sse {
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            body: response.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    /// The next event (comments skipped), within 10 s.
    pub async fn next_event(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent::default();
                let mut has_field = false;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        event.id = Some(v.trim().to_owned());
                        has_field = true;
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event.event = Some(v.trim().to_owned());
                        has_field = true;
                    } else if let Some(v) = line.strip_prefix("data:") {
                        event.data.push_str(v.trim_start());
                        has_field = true;
                    }
                }
                if has_field {
                    return Some(event);
                }
                continue;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.body.next())
                .await
                .expect("an SSE chunk within 10 s")?;
            self.buffer
                .push_str(&String::from_utf8_lossy(&chunk.expect("chunk")));
        }
    }
}

// ---------------------------------------------------------------------------
// PostgreSQL clusters and server processes

/// A throwaway PostgreSQL cluster on a free loopback port, stopped on drop.
pub struct PgCluster {
    dir: tempfile::TempDir,
    port: u16,
}

/// What a test needs to stop and start a [`PgCluster`] it does not own.
#[derive(Clone)]
pub struct PgClusterHandle {
    data: PathBuf,
    socket_dir: PathBuf,
    port: u16,
}

fn running_as_root() -> bool {
    static ROOT: OnceLock<bool> = OnceLock::new();
    *ROOT.get_or_init(|| {
        Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false)
    })
}

/// Runs a PostgreSQL tool, as the `postgres` user when we are root (initdb
/// refuses root).
fn pg_tool(tool: &str) -> Command {
    if running_as_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--", tool]);
        command
    } else {
        Command::new(tool)
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl PgCluster {
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("palaver-pg-")
            .tempdir()
            .expect("temp dir");
        if running_as_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown");
            assert!(status.success(), "chown the cluster folder to postgres");
        }
        let data = dir.path().join("data");
        let out = pg_tool("initdb")
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&data)
            .output()
            .expect("run initdb (PostgreSQL server binaries on PATH?)");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let cluster = PgCluster {
            port: free_port(),
            dir,
        };
        cluster.handle().start();
        cluster
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    pub fn handle(&self) -> PgClusterHandle {
        PgClusterHandle {
            data: self.dir.path().join("data"),
            socket_dir: self.dir.path().to_owned(),
            port: self.port,
        }
    }
}

impl PgClusterHandle {
    pub fn start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300",
            self.port,
            self.socket_dir.display()
        );
        let out = pg_tool("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-o", &options, "-l"])
            .arg(self.data.join("server.log"))
            .args(["-w", "-t", "30", "start"])
            .output()
            .expect("pg_ctl start");
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn stop(&self) {
        let _ = pg_tool("pg_ctl")
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let handle = self.handle();
        let _ = pg_tool("pg_ctl")
            .arg("-D")
            .arg(&handle.data)
            .args(["-m", "immediate", "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A `palaver serve` child process, killed on drop.
pub struct ServerProcess {
    pub child: Child,
    pub port: u16,
    /// Signed in as [`DEFAULT_USER`] (shared by replicas of one database),
    /// unless the server serves no sign-up (a gateway-only replica started
    /// before any api replica).
    pub client: reqwest::Client,
    pub cookie: Option<String>,
}

impl ServerProcess {
    /// Starts a server, waits for `/readyz` and signs in the default user.
    pub async fn start(database_url: &str, extra: &[&str]) -> Self {
        let mut server = Self::spawn(database_url, extra);
        server.wait_ready().await;
        let base = server.url("");
        server.cookie = default_cookie(&base, server.port, database_url).await;
        if let Some(cookie) = &server.cookie {
            server.client = client_with_cookie(cookie);
        }
        server
    }

    /// Starts a server and returns at once: no request has reached it yet
    /// (for tests that must not call `/readyz`, or wait on it their way).
    pub fn spawn(database_url: &str, extra: &[&str]) -> Self {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_palaver"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args([
                "--database-url",
                database_url,
                "--rate-limit",
                "0",
                "--stream-open-rate",
                "0",
                "--max-streams-per-ip",
                "0",
                "--log-format",
                "json",
            ])
            .args(extra)
            .stdout(if std::env::var_os("TEST_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn palaver");
        ServerProcess {
            child,
            port,
            client: reqwest::Client::new(),
            cookie: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://127.0.0.1:{}{}", self.port, path)
    }

    async fn wait_ready(&self) {
        let client = reqwest::Client::new();
        for _ in 0..200 {
            if let Ok(r) = client.get(self.url("/readyz")).send().await {
                if r.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("palaver on port {} did not become ready", self.port);
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits for exit, up to `limit`; returns the exit code.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<i32> {
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A JSON body as the v1 send endpoint takes it (`author` is ignored by
/// the server: the author is the signed-in user).
pub fn message(author: &str, text: &str, client_id: Option<&str>) -> Value {
    json!({"author": author, "text": text, "client_id": client_id})
}

impl PgClusterHandle {
    /// SIGKILLs the postmaster and every process it started, as a crash of
    /// the database host would; [`start`](Self::start) then runs crash
    /// recovery. Returns once they have all exited.
    pub fn kill(&self) {
        let pid_file = std::fs::read_to_string(self.data.join("postmaster.pid"))
            .expect("postmaster.pid (is the cluster running?)");
        let postmaster: u32 = pid_file
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .expect("a pid on the first line of postmaster.pid");
        let mut pids = vec![postmaster];
        for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            // /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces.
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|p| p.parse::<u32>().ok());
            if ppid == Some(postmaster) {
                pids.push(pid);
            }
        }
        let ids: Vec<String> = pids.iter().map(u32::to_string).collect();
        let _ = Command::new("kill")
            .arg("-KILL")
            .args(&ids)
            .stderr(Stdio::null())
            .status();
        // Wait until they are reaped, not merely dead: a new postmaster
        // refuses to start while the old one's pid exists, even as a zombie.
        for _ in 0..400 {
            if pids
                .iter()
                .all(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("PostgreSQL processes {ids:?} survived SIGKILL");
    }
}

/// Whether `page` (a `/metrics` scrape) has a series of `name` with
/// `label` whose value is above 0: counters are registered at 0 from
/// start-up, so their presence alone says nothing.
pub fn counted(page: &str, name: &str, label: &str) -> bool {
    page.lines().any(|l| {
        l.starts_with(name)
            && l.contains(label)
            && l.rsplit(' ')
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .is_some_and(|v| v > 0.0)
    })
}

/// Another user of a server, signed up and signed in.
pub struct Person {
    pub client: reqwest::Client,
    pub cookie: String,
    pub id: String,
}

/// Signs `username` up on the server at `base` (display name `display`).
pub async fn person_on(base: &str, username: &str, display: &str) -> Person {
    let cookie = sign_up(base, username, display).await;
    let client = client_with_cookie(&cookie);
    let me: Value = client
        .get(format!("{base}/api/v1/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Person {
        client,
        cookie,
        id: me["user"]["id"].as_str().unwrap().to_owned(),
    }
}

/// (status, JSON body or null) of an answer.
pub async fn status_and_json(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// The status `request` answers.
pub async fn status(request: reqwest::RequestBuilder) -> u16 {
    request.send().await.expect("request").status().as_u16()
}

/// Sends `request` for its effect, which the test checks otherwise.
pub async fn send_only(request: reqwest::RequestBuilder) {
    request.send().await.expect("request");
}

/// `POST /api/v1/rooms` with `body`, as `client`, on the server at `base`.
pub async fn create_room(client: &reqwest::Client, base: &str, body: &Value) -> reqwest::Response {
    client
        .post(format!("{base}/api/v1/rooms"))
        .json(body)
        .send()
        .await
        .expect("request")
}

/// Sends `request()` until it answers `expected`, for up to 5 s (another
/// replica hears of a change through the database).
pub async fn until_status(expected: u16, request: impl Fn() -> reqwest::RequestBuilder) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let status = status(request()).await;
        if status == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still {status}, not {expected}, after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
