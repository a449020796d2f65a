//! Command line and environment configuration.
//!
//! Every flag has a `PALAVER_*` environment variable behind it; the doc
//! comments below are what `palaver --help` prints, so they are the reference.

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};
use ipnet::IpNet;

/// Palaver: a self-hosted chat server that scales out.
#[derive(Debug, Parser)]
#[command(name = "palaver", version, about, long_about = None, args_override_self = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub config: Config,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Run the server (the default when no command is given).
    Serve,
    /// Apply the embedded database migrations and exit.
    Migrate,
    /// Exit 0 when `/healthz` of the server on `--listen` answers 200 (for
    /// container health checks without curl).
    Healthcheck,
    /// Manage local accounts (on the database of --database-url).
    #[command(subcommand)]
    User(UserCommand),
}

/// `palaver user ...`: passwords are read from standard input (the first
/// line), never from arguments, so they stay out of shell history and `ps`.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum UserCommand {
    /// Create an account; prints its JSON.
    Add {
        username: String,
        /// Shown on messages. Default: the username.
        #[arg(long)]
        display_name: Option<String>,
        /// Make the account an admin (default: member).
        #[arg(long)]
        admin: bool,
    },
    /// Make an account `admin` or `member`.
    SetRole {
        username: String,
        /// `admin` or `member`.
        #[arg(id = "new_role", value_name = "ROLE")]
        role: crate::identity::Role,
    },
    /// Set a new password and sign the account out everywhere.
    ResetPassword { username: String },
}

/// The longest valid send body, in bytes: 4000 characters that each take
/// the longest JSON spelling of a character, an astral one escaped as a
/// surrogate pair (`\ud83d\ude00`, 12 bytes), and a 64-character `client_id`
/// escaped (`\u0041`, 6 bytes each), with the keys and punctuation of
/// `{"text":"…","client_id":"…"}`: 48,409 bytes. `--max-body-bytes`
/// defaults above it (a message at the maximum length is accepted in any
/// script and any encoding a client may use); the WAF's body rule
/// (infra/terraform, `max_body_bytes`) follows the default.
pub const LONGEST_VALID_SEND_BYTES: usize = 4000 * 12
    + 64 * 6
    // Up to 10 attached file ids (36-character UUIDs), each escaped.
    + 10 * (36 * 6 + 3)
    + r#"{"text":"","client_id":"","reply_to":9223372036854775807,"files":[]}"#.len();

/// Everything the server reads at start-up.
#[derive(Clone, clap::Args)]
pub struct Config {
    /// Address to listen on. Default: 127.0.0.1:8080.
    #[arg(
        long,
        env = "PALAVER_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen: SocketAddr,

    /// Database URL: `sqlite://path/to/file.db` or `postgres://user@host/db`.
    /// Falls back to DATABASE_URL, then to sqlite://data/palaver.db (folder
    /// and file created on first run).
    #[arg(
        long,
        env = "PALAVER_DATABASE_URL",
        hide_env_values = true,
        global = true
    )]
    pub database_url: Option<DatabaseUrl>,

    /// Roles this process serves: `all`, or a comma list of `api`, `gateway`,
    /// `web`. Default: all.
    #[arg(
        long,
        env = "PALAVER_ROLE",
        value_delimiter = ',',
        default_value = "all",
        global = true
    )]
    pub role: Vec<RoleArg>,

    /// Comma list of proxy networks (CIDR or address) whose
    /// `X-Forwarded-For` is believed. Default: none (the socket address is
    /// the client).
    #[arg(
        long,
        env = "PALAVER_TRUSTED_PROXIES",
        value_delimiter = ',',
        global = true
    )]
    pub trusted_proxies: Vec<IpNet>,

    /// Log format: `json` (one object per line) or `pretty`. Default: pretty
    /// on a terminal, json otherwise.
    #[arg(long, env = "PALAVER_LOG_FORMAT", global = true)]
    pub log_format: Option<LogFormat>,

    /// Log filter in `tracing` syntax, e.g. `info,palaver=debug`. Default: info.
    #[arg(long, env = "PALAVER_LOG", default_value = "info", global = true)]
    pub log: String,

    /// Longest message text accepted, in characters (after trimming), at most
    /// 4000. Default: 4000.
    #[arg(long, env = "PALAVER_MAX_MESSAGE_CHARS", default_value_t = 4000,
          value_parser = clap::value_parser!(u16).range(1..=4000), global = true)]
    pub max_message_chars: u16,

    /// Largest request body accepted, in bytes; larger bodies get 413.
    /// Default: 65536 (the longest valid send, 4000 astral characters
    /// JSON-escaped, is 48,409 bytes).
    #[arg(long, env = "PALAVER_MAX_BODY_BYTES", default_value_t = 64 * 1024, global = true)]
    pub max_body_bytes: usize,

    /// Sends allowed per second (sustained), per user when signed in, per
    /// client IP otherwise; 0 turns rate limiting off. Default: 20.
    #[arg(long, env = "PALAVER_RATE_LIMIT", default_value_t = 20, global = true)]
    pub rate_limit: u32,

    /// Sends a client (user when signed in, else IP) may make in a burst
    /// above the sustained rate.
    /// Default: 100.
    #[arg(
        long,
        env = "PALAVER_RATE_LIMIT_BURST",
        default_value_t = 100,
        global = true
    )]
    pub rate_limit_burst: u32,

    /// Messages a stream subscriber may fall behind before its stream is
    /// closed with the reason `lagging` (the client then resumes). Default: 1024.
    #[arg(long, env = "PALAVER_STREAM_BUFFER", default_value_t = 1024,
          value_parser = clap::value_parser!(u32).range(16..=1_000_000), global = true)]
    pub stream_buffer: u32,

    /// Most concurrent streams (WebSocket and SSE) this process serves; more
    /// get 503. Default: 20000.
    #[arg(
        long,
        env = "PALAVER_MAX_STREAMS",
        default_value_t = 20_000,
        global = true
    )]
    pub max_streams: u32,

    /// Most concurrent streams one client may hold: per user when signed in,
    /// per client IP otherwise (IPv6 by its /64); more get 429. 0 turns the
    /// cap off. Default: 100.
    #[arg(
        long,
        env = "PALAVER_MAX_STREAMS_PER_IP",
        default_value_t = 100,
        global = true
    )]
    pub max_streams_per_ip: u32,

    /// Most rooms one multiplexed stream (`GET /api/v1/stream`) may follow
    /// at once; a subscribe beyond it answers an `error` frame with code
    /// `too_many_subscriptions`. Default: 500.
    #[arg(
        long,
        env = "PALAVER_MAX_SUBSCRIPTIONS",
        default_value_t = 500,
        value_parser = clap::value_parser!(u32).range(1..=100_000),
        global = true
    )]
    pub max_subscriptions: u32,

    /// Streams one client may open per second (sustained), per user when
    /// signed in, per client IP otherwise; faster opens get 429 with
    /// Retry-After. 0 turns the rate off. Default: 5.
    #[arg(
        long,
        env = "PALAVER_STREAM_OPEN_RATE",
        default_value_t = 5,
        global = true
    )]
    pub stream_open_rate: u32,

    /// Streams one client (user when signed in, else IP) may open in a burst
    /// above the sustained rate. Default: 50.
    #[arg(
        long,
        env = "PALAVER_STREAM_OPEN_BURST",
        default_value_t = 50,
        global = true
    )]
    pub stream_open_burst: u32,

    /// File descriptors kept back from streams for the REST API, health
    /// checks, the database pool and logs: the effective stream cap is the
    /// smaller of --max-streams and the open-files limit minus this.
    /// Default: 256.
    #[arg(
        long,
        env = "PALAVER_RESERVED_FDS",
        default_value_t = 256,
        global = true
    )]
    pub reserved_fds: u32,

    /// Seconds between stream heartbeats (WebSocket ping, SSE comment); keep
    /// it below the load balancer's idle timeout. Default: 20.
    #[arg(long, env = "PALAVER_HEARTBEAT_INTERVAL", default_value_t = 20,
          value_parser = clap::value_parser!(u64).range(1..=3600), global = true)]
    pub heartbeat_interval: u64,

    /// Seconds a stream write may block before the subscriber counts as
    /// lagging and is disconnected. Default: 10.
    #[arg(long, env = "PALAVER_STREAM_WRITE_TIMEOUT", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600), global = true)]
    pub stream_write_timeout: u64,

    /// Seconds a WebSocket client may take to answer a ping (any frame
    /// counts) before its stream is closed with the reason `timeout`.
    /// Default: 10.
    #[arg(long, env = "PALAVER_STREAM_PONG_TIMEOUT", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600), global = true)]
    pub stream_pong_timeout: u64,

    /// Seconds to drain after SIGTERM/SIGINT: in-flight requests finish,
    /// streams are closed with a reconnect hint, then the process exits 0.
    /// Default: 20.
    #[arg(
        long,
        env = "PALAVER_SHUTDOWN_GRACE",
        default_value_t = 20,
        global = true
    )]
    pub shutdown_grace: u64,

    /// Seconds a request may take before it is answered 408. Default: 30.
    #[arg(long, env = "PALAVER_REQUEST_TIMEOUT", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600), global = true)]
    pub request_timeout: u64,

    /// Most messages stored in one group-commit transaction. Default: 256.
    #[arg(long, env = "PALAVER_BATCH_MAX", default_value_t = 256,
          value_parser = clap::value_parser!(u32).range(1..=10_000), global = true)]
    pub batch_max: u32,

    /// Microseconds a group commit waits for more sends (to any room) after
    /// the first; 0 stores what is queued at once. Default: 500.
    #[arg(long, env = "PALAVER_BATCH_WINDOW_US", default_value_t = 500,
          value_parser = clap::value_parser!(u64).range(0..=1_000_000), global = true)]
    pub batch_window_us: u64,

    /// Most group-commit transactions in flight at once (PostgreSQL; SQLite
    /// always commits one at a time): the next batch forms while these
    /// commit. Default: 2.
    #[arg(long, env = "PALAVER_BATCH_CONCURRENCY", default_value_t = 2,
          value_parser = clap::value_parser!(u32).range(1..=64), global = true)]
    pub batch_concurrency: u32,

    /// Messages of each room's newest page kept in memory, so that newest-page
    /// reads (`GET /chat?size=N`, `GET …/messages?limit=N` without a cursor,
    /// N up to this) need no database; 0 turns the read cache off.
    /// Default: 200.
    #[arg(long, env = "PALAVER_READ_CACHE_MESSAGES", default_value_t = 200,
          value_parser = clap::value_parser!(u32).range(0..=1000), global = true)]
    pub read_cache_messages: u32,

    /// Most bytes the read cache holds in all (an estimate of the messages'
    /// heap size and memoised page bodies); the least recently read rooms
    /// are evicted beyond it. Default: 67108864 (64 MiB).
    #[arg(long, env = "PALAVER_READ_CACHE_BYTES", default_value_t = 64 << 20, global = true)]
    pub read_cache_bytes: usize,

    /// Most database connections in the pool (PostgreSQL). Default: 10.
    #[arg(long, env = "PALAVER_DB_MAX_CONNECTIONS", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=1000), global = true)]
    pub db_max_connections: u32,

    /// Seconds to wait for a database connection before answering 503.
    /// Default: 3.
    #[arg(long, env = "PALAVER_DB_ACQUIRE_TIMEOUT", default_value_t = 3,
          value_parser = clap::value_parser!(u64).range(1..=600), global = true)]
    pub db_acquire_timeout: u64,

    /// Fan-out bus: `postgres` (LISTEN/NOTIFY, the default on PostgreSQL) or
    /// a Redis/Valkey URL, `redis://[:password@]host:port` or `rediss://…`
    /// for TLS. A broker needs PostgreSQL (SQLite fans out within its one
    /// process). Never logged with its password.
    #[arg(long, env = "PALAVER_BUS", hide_env_values = true, global = true)]
    pub bus: Option<BusUrl>,

    /// Milliseconds between the checks a Redis-bus gateway makes of its
    /// rooms' newest seq in PostgreSQL, to deliver what a publish missed; a
    /// message never published reaches subscribers within two intervals.
    /// Default: 1000.
    #[arg(long, env = "PALAVER_BUS_REPAIR_INTERVAL_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(50..=60_000), global = true)]
    pub bus_repair_interval_ms: u64,
    /// Whether anyone may create a local account (`open`) or only operators
    /// with `palaver user add` (`closed`: register answers 403). The first
    /// account becomes admin. Default: open.
    #[arg(long, env = "PALAVER_REGISTRATION", value_enum, default_value_t = Registration::Open, global = true)]
    pub registration: Registration,

    /// Failed sign-ins (wrong username or password) one client address
    /// (IPv6 by its /64) may make in a minute; sign-ins still being checked
    /// count too. Past it, sign-ins from the address get 429 with
    /// Retry-After until the minute ends. Correct sign-ins are not counted,
    /// so any number of people behind one address sign in. 0 turns the
    /// per-address limit off (the per-username one stays). Default: 20.
    #[arg(
        long,
        env = "PALAVER_LOGIN_FAILURES_PER_IP",
        default_value_t = 20,
        global = true
    )]
    pub login_failures_per_ip: u32,

    /// Accounts one client address (IPv6 by its /64) may register in a
    /// burst; past it, register answers 429 with Retry-After. Default: 10.
    #[arg(long, env = "PALAVER_REGISTRATIONS_PER_IP_BURST", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000), global = true)]
    pub registrations_per_ip_burst: u32,

    /// Accounts one client address may register per hour once its burst is
    /// spent. Default: 5.
    #[arg(long, env = "PALAVER_REGISTRATIONS_PER_IP_PER_HOUR", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..=3600), global = true)]
    pub registrations_per_ip_per_hour: u32,

    /// Local accounts (username and password, with register, login and
    /// logout): `on`, or `off` to sign in through OIDC only. Default: on.
    #[arg(long, env = "PALAVER_LOCAL_ACCOUNTS", value_enum, default_value_t = Switch::On, global = true)]
    pub local_accounts: Switch,

    /// The anonymous seed-compatible API (`PUT/GET /chat`): `on`, or `off` to
    /// remove it (404). Default: on.
    #[arg(long, env = "PALAVER_SEED_API", value_enum, default_value_t = Switch::On, global = true)]
    pub seed_api: Switch,

    /// OIDC issuer URL (e.g. a Cognito user pool's): turns on
    /// `Authorization: Bearer <JWT>` verified against the issuer's JWKS
    /// (found through `<issuer>/.well-known/openid-configuration`).
    /// Default: off.
    #[arg(long, env = "PALAVER_OIDC_ISSUER", global = true)]
    pub oidc_issuer: Option<String>,

    /// The audience a bearer token must name in `aud` (or, for Cognito
    /// access tokens, `client_id`); required with --oidc-issuer.
    #[arg(long, env = "PALAVER_OIDC_AUDIENCE", global = true)]
    pub oidc_audience: Option<String>,

    /// Where uploaded files are kept: `file://<directory>` (relative to the
    /// working directory unless absolute) or `s3://<bucket>/<prefix>`, which
    /// takes `AWS_REGION`, `AWS_ENDPOINT_URL` (any S3-compatible endpoint)
    /// and credentials from the environment or the pod's identity.
    /// Default: file://data/files.
    #[arg(
        long,
        env = "PALAVER_FILE_STORE",
        default_value = "file://data/files",
        global = true
    )]
    pub file_store: String,

    /// Largest uploaded file, in bytes (the upload route's own limit, not
    /// --max-body-bytes); larger uploads get 413. Default: 26214400 (25 MiB).
    #[arg(long, env = "PALAVER_MAX_FILE_BYTES", default_value_t = 25 * 1024 * 1024,
          value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub max_file_bytes: u64,

    /// Uploads this process streams at once; one more gets 429 with
    /// Retry-After. Default: 8.
    #[arg(long, env = "PALAVER_MAX_CONCURRENT_UPLOADS", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..=1024), global = true)]
    pub max_concurrent_uploads: u32,
}

/// `--registration`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Registration {
    Open,
    Closed,
}

/// An on/off flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    On,
    Off,
}

impl Switch {
    pub fn is_on(self) -> bool {
        self == Switch::On
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Spelled out so that a new field is a compile error here, not a leak.
        let Config {
            listen,
            database_url,
            role,
            trusted_proxies,
            log_format,
            log,
            max_message_chars,
            max_body_bytes,
            rate_limit,
            rate_limit_burst,
            stream_buffer,
            max_streams,
            max_streams_per_ip,
            max_subscriptions,
            stream_open_rate,
            stream_open_burst,
            reserved_fds,
            heartbeat_interval,
            stream_write_timeout,
            stream_pong_timeout,
            shutdown_grace,
            request_timeout,
            batch_max,
            batch_window_us,
            batch_concurrency,
            read_cache_messages,
            read_cache_bytes,
            db_max_connections,
            db_acquire_timeout,
            bus,
            bus_repair_interval_ms,
            registration,
            login_failures_per_ip,
            registrations_per_ip_burst,
            registrations_per_ip_per_hour,
            local_accounts,
            seed_api,
            oidc_issuer,
            oidc_audience,
            file_store,
            max_file_bytes,
            max_concurrent_uploads,
        } = self;
        f.debug_struct("Config")
            .field("listen", listen)
            .field("database_url", database_url)
            .field("role", role)
            .field("trusted_proxies", trusted_proxies)
            .field("log_format", log_format)
            .field("log", log)
            .field("max_message_chars", max_message_chars)
            .field("max_body_bytes", max_body_bytes)
            .field("rate_limit", rate_limit)
            .field("rate_limit_burst", rate_limit_burst)
            .field("stream_buffer", stream_buffer)
            .field("max_streams", max_streams)
            .field("max_streams_per_ip", max_streams_per_ip)
            .field("max_subscriptions", max_subscriptions)
            .field("stream_open_rate", stream_open_rate)
            .field("stream_open_burst", stream_open_burst)
            .field("reserved_fds", reserved_fds)
            .field("heartbeat_interval", heartbeat_interval)
            .field("stream_write_timeout", stream_write_timeout)
            .field("stream_pong_timeout", stream_pong_timeout)
            .field("shutdown_grace", shutdown_grace)
            .field("request_timeout", request_timeout)
            .field("batch_max", batch_max)
            .field("batch_window_us", batch_window_us)
            .field("batch_concurrency", batch_concurrency)
            .field("read_cache_messages", read_cache_messages)
            .field("read_cache_bytes", read_cache_bytes)
            .field("db_max_connections", db_max_connections)
            .field("db_acquire_timeout", db_acquire_timeout)
            .field("bus", bus)
            .field("bus_repair_interval_ms", bus_repair_interval_ms)
            .field("registration", registration)
            .field("login_failures_per_ip", login_failures_per_ip)
            .field("registrations_per_ip_burst", registrations_per_ip_burst)
            .field(
                "registrations_per_ip_per_hour",
                registrations_per_ip_per_hour,
            )
            .field("local_accounts", local_accounts)
            .field("seed_api", seed_api)
            .field("oidc_issuer", oidc_issuer)
            .field("oidc_audience", oidc_audience)
            .field("file_store", file_store)
            .field("max_file_bytes", max_file_bytes)
            .field("max_concurrent_uploads", max_concurrent_uploads)
            .finish()
    }
}

impl Config {
    /// Parses the configuration from flags and environment, as the binary does.
    pub fn from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Cli::try_parse_from(args).map(|cli| cli.config)
    }

    /// The database URL: the flag or `PALAVER_DATABASE_URL`, else
    /// `DATABASE_URL`, else the default SQLite file.
    pub fn database_url(&self) -> DatabaseUrl {
        self.database_url.clone().unwrap_or_else(|| {
            std::env::var("DATABASE_URL")
                .ok()
                .filter(|v| !v.is_empty())
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| DatabaseUrl("sqlite://data/palaver.db".into()))
        })
    }

    pub fn roles(&self) -> Roles {
        Roles::from_args(&self.role)
    }

    pub fn heartbeat(&self) -> Duration {
        Duration::from_secs(self.heartbeat_interval)
    }

    pub fn grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace)
    }

    /// The Redis/Valkey URL when `--bus` names a broker.
    pub fn redis_bus(&self) -> Option<&BusUrl> {
        self.bus.as_ref().filter(|b| b.is_redis())
    }
}

/// The value of `--bus`: `postgres`, or a Redis URL whose `Debug` and
/// `Display` hide the password.
#[derive(Clone, PartialEq, Eq)]
pub struct BusUrl(String);

impl BusUrl {
    /// The URL with its secret, for the client only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_redis(&self) -> bool {
        self.0.starts_with("redis://") || self.0.starts_with("rediss://")
    }

    pub fn is_postgres(&self) -> bool {
        self.0 == "postgres"
    }

    /// The URL with its password replaced by `***`.
    pub fn redacted(&self) -> String {
        DatabaseUrl(self.0.clone()).redacted()
    }
}

impl FromStr for BusUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bus = BusUrl(s.trim().to_owned());
        if bus.is_postgres() || bus.is_redis() {
            Ok(bus)
        } else {
            Err("expected `postgres`, or a redis:// or rediss:// URL".into())
        }
    }
}

impl fmt::Debug for BusUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BusUrl({})", self.redacted())
    }
}

impl fmt::Display for BusUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

/// A database URL. Its `Debug` and `Display` hide any password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// The URL with its secret, for the driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_postgres(&self) -> bool {
        self.0.starts_with("postgres://") || self.0.starts_with("postgresql://")
    }

    pub fn is_sqlite(&self) -> bool {
        self.0.starts_with("sqlite:")
    }

    /// The URL with the password (if any) replaced by `***`.
    pub fn redacted(&self) -> String {
        // Query parameters may carry a password too; drop the whole query then.
        let url = match self.0.split_once('?') {
            Some((base, query)) if query.contains("password") => format!("{base}?***"),
            _ => self.0.clone(),
        };
        let Some((scheme, rest)) = url.split_once("://") else {
            return url;
        };
        let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
        match authority.rsplit_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo.split(':').next().unwrap_or_default();
                format!("{scheme}://{user}:***@{host}{tail}")
            }
            None => url.clone(),
        }
    }
}

impl FromStr for DatabaseUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let url = DatabaseUrl(s.to_owned());
        if url.is_postgres() || url.is_sqlite() {
            Ok(url)
        } else {
            Err("expected a sqlite:// or postgres:// URL".into())
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Json,
    Pretty,
}

/// One value of `--role`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum RoleArg {
    All,
    Api,
    Gateway,
    Web,
}

/// The roles one process serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    pub api: bool,
    pub gateway: bool,
    pub web: bool,
}

impl Roles {
    pub const ALL: Roles = Roles {
        api: true,
        gateway: true,
        web: true,
    };

    pub fn from_args(args: &[RoleArg]) -> Self {
        let set: BTreeSet<_> = args.iter().copied().collect();
        if set.is_empty() || set.contains(&RoleArg::All) {
            return Self::ALL;
        }
        Roles {
            api: set.contains(&RoleArg::Api),
            gateway: set.contains(&RoleArg::Gateway),
            web: set.contains(&RoleArg::Web),
        }
    }
}

impl fmt::Display for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = [
            (self.api, "api"),
            (self.gateway, "gateway"),
            (self.web, "web"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect();
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_documented_contract() {
        let config = Config::from_args(["palaver"]).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.roles(), Roles::ALL);
        assert_eq!(config.max_body_bytes, 64 * 1024);
        assert_eq!(LONGEST_VALID_SEND_BYTES, 50_642);
        assert!(config.max_body_bytes >= LONGEST_VALID_SEND_BYTES);
        assert_eq!(config.max_message_chars, 4000);
    }

    #[test]
    fn roles_are_a_comma_list() {
        let config = Config::from_args(["palaver", "--role", "api,web"]).unwrap();
        assert_eq!(
            config.roles(),
            Roles {
                api: true,
                gateway: false,
                web: true
            }
        );
        assert!(Config::from_args(["palaver", "--role", "api,bogus"]).is_err());
    }

    #[test]
    fn flags_work_after_the_subcommand_too() {
        let cli = Cli::try_parse_from(["palaver", "serve", "--listen", "0.0.0.0:9000"]).unwrap();
        assert_eq!(cli.command, Some(Command::Serve));
        assert_eq!(cli.config.listen.port(), 9000);
    }

    #[test]
    fn trusted_proxies_accept_networks_and_reject_garbage() {
        let config =
            Config::from_args(["palaver", "--trusted-proxies", "10.0.0.0/8,::1/128"]).unwrap();
        assert_eq!(config.trusted_proxies.len(), 2);
        assert!(Config::from_args(["palaver", "--trusted-proxies", "nope"]).is_err());
    }

    #[test]
    fn database_url_never_shows_its_password() {
        let url: DatabaseUrl = "postgres://palaver:s3cret@db:5432/palaver".parse().unwrap();
        assert_eq!(url.redacted(), "postgres://palaver:***@db:5432/palaver");
        assert!(!format!("{url:?}").contains("s3cret"));
        let url: DatabaseUrl = "postgres://db/palaver?password=s3cret".parse().unwrap();
        assert!(!url.redacted().contains("s3cret"));
        let config =
            Config::from_args(["palaver", "--database-url", "postgres://u:hunter2@h/d"]).unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
        assert!("mysql://x".parse::<DatabaseUrl>().is_err());
    }

    #[test]
    fn bus_is_postgres_or_a_redis_url_and_never_shows_its_password() {
        let config = Config::from_args(["palaver"]).unwrap();
        assert!(config.bus.is_none() && config.redis_bus().is_none());
        let config = Config::from_args(["palaver", "--bus", "postgres"]).unwrap();
        assert!(config.bus.as_ref().unwrap().is_postgres());
        assert!(config.redis_bus().is_none());
        let config =
            Config::from_args(["palaver", "--bus", "rediss://:t0ken@cache:6379/0"]).unwrap();
        let bus = config.redis_bus().unwrap();
        assert_eq!(bus.redacted(), "rediss://:***@cache:6379/0");
        assert_eq!(bus.expose(), "rediss://:t0ken@cache:6379/0");
        assert!(!format!("{config:?}").contains("t0ken"));
        assert!(!bus.to_string().contains("t0ken"));
        assert!(Config::from_args(["palaver", "--bus", "nats://x"]).is_err());
        assert!(Config::from_args(["palaver", "--bus", "redis-ish"]).is_err());
    }
}
