//! Test harness for the Redis bus: a real `redis-server` (Debian's package)
//! on a free loopback port, without persistence, killed by PID; and
//! `palaver serve` processes pointed at it.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::helpers::{client_with_cookie, default_cookie, free_port, ServerProcess};

/// A throwaway `redis-server`, SIGKILLed on drop.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    password: Option<String>,
    dir: tempfile::TempDir,
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_on(free_port(), None)
    }

    /// A server that requires `password` (`requirepass`).
    pub fn with_password(password: &str) -> Self {
        Self::start_on(free_port(), Some(password.to_owned()))
    }

    /// A server on `port` (which may have had one before).
    pub fn start_on(port: u16, password: Option<String>) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("palaver-redis-")
            .tempdir()
            .expect("temp dir");
        let mut server = RedisServer {
            child: None,
            port,
            password,
            dir,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--loglevel", "warning"]);
        if let Some(password) = &self.password {
            command.args(["--requirepass", password]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn redis-server (scripts/install-tools.sh redis)");
        self.child = Some(child);
        self.wait_listening();
    }

    fn wait_listening(&self) {
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("redis-server did not listen on {}", self.port);
    }

    /// `redis://127.0.0.1:PORT` with the password, if any.
    pub fn url(&self) -> String {
        match &self.password {
            Some(password) => format!("redis://:{password}@127.0.0.1:{}", self.port),
            None => format!("redis://127.0.0.1:{}", self.port),
        }
    }

    /// SIGKILL, as a broker crash; returns once the process has exited.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port (empty: nothing persisted).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// A client for the test itself (e.g. to publish foreign payloads).
    pub async fn client(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .expect("redis url")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to redis-server")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts `palaver serve` over `database_url` with `extra` flags and `env`,
/// and waits until `/healthz` answers (not `/readyz`: some tests expect a
/// process that is alive but not ready).
pub async fn spawn_alive(
    database_url: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> ServerProcess {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_palaver"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--database-url", database_url, "--rate-limit", "0"])
        .args(["--log-format", "json"])
        .args(extra)
        .envs(env.iter().copied())
        .stdout(if std::env::var_os("TEST_LOG").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn palaver");
    let mut server = ServerProcess {
        child,
        port,
        client: reqwest::Client::new(),
        cookie: None,
    };
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(r) = client.get(server.url("/healthz")).send().await {
            if r.status() == 200 {
                // Signed in as the default user, like ServerProcess::start.
                server.cookie = default_cookie(&server.url(""), port, database_url).await;
                if let Some(cookie) = &server.cookie {
                    server.client = client_with_cookie(cookie);
                }
                return server;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("palaver on port {port} did not come up");
}

/// Like [`spawn_alive`], then waits for `/readyz` to answer 200.
pub async fn spawn_ready(
    database_url: &str,
    extra: &[&str],
    env: &[(&str, &str)],
) -> ServerProcess {
    let server = spawn_alive(database_url, extra, env).await;
    wait_readyz(&server, 200).await;
    server
}

/// Waits (up to 15 s) until `/readyz` answers `status`.
pub async fn wait_readyz(server: &ServerProcess, status: u16) {
    let client = reqwest::Client::new();
    crate::fault_helpers::wait_until(
        &format!("/readyz {status} on port {}", server.port),
        Duration::from_secs(15),
        || async {
            client
                .get(server.url("/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().as_u16() == status)
        },
    )
    .await;
}

/// A metric of a server process (the sum of its series), 0 when absent.
pub async fn metric(server: &ServerProcess, name: &str) -> f64 {
    let base = server.url("");
    let page = crate::fault_helpers::metrics(&reqwest::Client::new(), &base).await;
    crate::fault_helpers::metric_sum(&page, name).unwrap_or(0.0)
}
