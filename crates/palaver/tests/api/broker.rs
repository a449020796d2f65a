//! Test harness for the Redis bus: a real `redis-server` (Debian's package)
//! on a free loopback port, without persistence, killed by PID; a real
//! three-primary Redis Cluster of such servers; and `palaver serve`
//! processes pointed at them.

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

/// A throwaway Redis Cluster: three primaries, no replicas, each node a
/// `redis-server --cluster-enabled yes` on free loopback ports (its client
/// port and its cluster bus port), joined with `redis-cli --cluster create`
/// (as `scripts/redis-cluster.sh` does). Every node is SIGKILLed on drop.
pub struct RedisCluster {
    nodes: Vec<ClusterNode>,
    _dir: tempfile::TempDir,
}

struct ClusterNode {
    child: Option<Child>,
    port: u16,
    bus_port: u16,
    dir: std::path::PathBuf,
}

impl ClusterNode {
    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--cluster-port", &self.bus_port.to_string()])
            .args(["--cluster-enabled", "yes", "--cluster-config-file"])
            .arg(self.dir.join("nodes.conf"))
            // The other shards keep serving while one is down, as on
            // ElastiCache while a shard fails over.
            .args(["--cluster-require-full-coverage", "no"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--loglevel", "warning"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn redis-server (scripts/install-tools.sh redis)");
        self.child = Some(child);
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("redis-server did not listen on {}", self.port);
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl RedisCluster {
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("palaver-redis-cluster-")
            .tempdir()
            .expect("temp dir");
        let mut nodes: Vec<ClusterNode> = (0..3)
            .map(|i| {
                let node_dir = dir.path().join(i.to_string());
                std::fs::create_dir_all(&node_dir).expect("node dir");
                ClusterNode {
                    child: None,
                    port: free_port(),
                    bus_port: free_port(),
                    dir: node_dir,
                }
            })
            .collect();
        for node in &mut nodes {
            node.spawn();
        }
        let addresses: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        let created = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .status()
            .expect("run redis-cli --cluster create");
        assert!(created.success(), "redis-cli --cluster create failed");
        let cluster = RedisCluster { nodes, _dir: dir };
        cluster.wait_ok();
        cluster
    }

    /// Waits until every running node says `cluster_state:ok`.
    fn wait_ok(&self) {
        for _ in 0..400 {
            let ok = self.nodes.iter().filter(|n| n.child.is_some()).all(|n| {
                Command::new("redis-cli")
                    .args(["-p", &n.port.to_string(), "cluster", "info"])
                    .output()
                    .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("cluster_state:ok"))
            });
            if ok {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the Redis cluster did not reach cluster_state:ok");
    }

    /// The bus URL: the first node (the client discovers the others).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.nodes[0].port)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// SIGKILLs node `i`, as a shard's crash; returns once it has exited.
    pub fn kill(&mut self, i: usize) {
        self.nodes[i].kill();
    }

    /// Starts node `i` again on its ports with its cluster configuration
    /// (its identity and slots), and waits for `cluster_state:ok`.
    pub fn restart(&mut self, i: usize) {
        self.nodes[i].kill();
        self.nodes[i].spawn();
        self.wait_ok();
    }

    /// A plain (non-cluster) connection to node `i`, for inspecting it.
    pub async fn node(&self, i: usize) -> redis::aio::MultiplexedConnection {
        redis::Client::open(format!("redis://127.0.0.1:{}", self.nodes[i].port))
            .expect("redis url")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to a cluster node")
    }

    /// The index of the node that owns `channel`'s slot.
    pub async fn owner(&self, channel: &str) -> usize {
        let mut conn = self.node(0).await;
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(channel)
            .query_async(&mut conn)
            .await
            .expect("CLUSTER KEYSLOT");
        // [[start, end, [host, port, id], ...], ...]
        let ranges: Vec<redis::Value> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query_async(&mut conn)
            .await
            .expect("CLUSTER SLOTS");
        for range in ranges {
            let (start, end, primary): (u16, u16, redis::Value) = match range {
                redis::Value::Array(items) if items.len() >= 3 => (
                    redis::from_redis_value_ref(&items[0]).expect("start"),
                    redis::from_redis_value_ref(&items[1]).expect("end"),
                    items[2].clone(),
                ),
                other => panic!("unexpected CLUSTER SLOTS entry {other:?}"),
            };
            if (start..=end).contains(&slot) {
                let (_host, port): (String, u16) = match primary {
                    redis::Value::Array(p) => (
                        redis::from_redis_value_ref(&p[0]).expect("host"),
                        redis::from_redis_value_ref(&p[1]).expect("port"),
                    ),
                    other => panic!("unexpected primary {other:?}"),
                };
                return self
                    .nodes
                    .iter()
                    .position(|n| n.port == port)
                    .expect("a primary of this cluster");
            }
        }
        panic!("slot {slot} has no owner");
    }

    /// Moves the slot of `channel` to node `to` (it holds no keys, so no
    /// data migrates): `CLUSTER SETSLOT … NODE` on the new owner first, then
    /// on the others, as `redis-cli --cluster reshard` finishes a move.
    pub async fn move_slot(&self, channel: &str, to: usize) {
        let mut target = self.node(to).await;
        let slot: u16 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(channel)
            .query_async(&mut target)
            .await
            .expect("CLUSTER KEYSLOT");
        let id: String = redis::cmd("CLUSTER")
            .arg("MYID")
            .query_async(&mut target)
            .await
            .expect("CLUSTER MYID");
        let order = std::iter::once(to).chain((0..self.len()).filter(|i| *i != to));
        for i in order {
            let mut conn = self.node(i).await;
            let _: () = redis::cmd("CLUSTER")
                .arg("SETSLOT")
                .arg(slot)
                .arg("NODE")
                .arg(&id)
                .query_async(&mut conn)
                .await
                .expect("CLUSTER SETSLOT NODE");
        }
        self.wait_ok();
    }

    /// `PUBSUB SHARDCHANNELS palaver:room:*` on node `i`: the room channels
    /// someone holds a shard subscription to there.
    pub async fn shard_channels(&self, i: usize) -> Vec<String> {
        let mut conn = self.node(i).await;
        redis::cmd("PUBSUB")
            .arg("SHARDCHANNELS")
            .arg("palaver:room:*")
            .query_async(&mut conn)
            .await
            .unwrap_or_default()
    }

    /// `PUBSUB SHARDNUMSUB channel` on the channel's owner.
    pub async fn shard_subscribers(&self, channel: &str) -> i64 {
        let owner = self.owner(channel).await;
        let mut conn = self.node(owner).await;
        let counts: Vec<(String, i64)> = redis::cmd("PUBSUB")
            .arg("SHARDNUMSUB")
            .arg(channel)
            .query_async(&mut conn)
            .await
            .unwrap_or_default();
        counts.first().map_or(0, |(_, n)| *n)
    }

    /// How often node `i` ran `command` (`INFO commandstats`).
    pub async fn calls(&self, i: usize, command: &str) -> u64 {
        let mut conn = self.node(i).await;
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut conn)
            .await
            .expect("INFO commandstats");
        let prefix = format!("cmdstat_{command}:calls=");
        info.lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .and_then(|rest| rest.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
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
