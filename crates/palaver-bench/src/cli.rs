//! The subcommands and their flags; `palaver-bench help <command>` is the
//! reference.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Load generator and end-to-end smoke suite for Palaver.
#[derive(Debug, Parser)]
#[command(name = "palaver-bench", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// POST messages (v1) into one or more fresh rooms; prints throughput,
    /// latency percentiles, errors, and how many acknowledged sends are stored.
    Send(SendArgs),
    /// The room-event mix of issue 17 as a signed-in user: 80% sends, 10%
    /// reactions, 5% edits, 5% read markers into fresh rooms (or sends only,
    /// for the side-by-side figure); per-kind throughput and latency.
    Mixed(MixedArgs),
    /// GET a path (e.g. `/chat?size=50`) closed-loop or at a rate.
    Read(ReadArgs),
    /// M WebSocket subscribers spread over rooms while messages are posted at
    /// a rate: commit-to-delivery latency and per-subscriber delivery counts.
    Fanout(FanoutArgs),
    /// Time from exec to `/readyz` answering 200, and idle RSS, of a server
    /// binary (median of several runs).
    Startup(StartupArgs),
    /// Serve a fixed body from a minimal axum handler (the HTTP ceiling that
    /// read figures are compared with) until interrupted.
    Ceiling(CeilingArgs),
    /// Check a deployed instance end to end; exits non-zero on any failure.
    Smoke(SmokeArgs),
    /// One user types in many rooms on one replica while another follows
    /// them on a second: typing delivery latency across the bus.
    Typing(TypingArgs),
    /// Many users online at once (existing sessions), then flapping.
    Online(OnlineArgs),
    /// Run a SQL script against a SQLite database with the server's own
    /// bundled SQLite (fills for bench-scale.sh).
    Sql(SqlArgs),
}

/// How long a load runs and how hard it pushes.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Base URL of the server, e.g. http://127.0.0.1:8080.
    #[arg(
        long,
        env = "PALAVER_BENCH_BASE_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub base_url: String,
    /// Concurrent clients (closed loop: each sends its next request when the
    /// previous one is answered). With --rate, the most requests in flight.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Open loop: requests per second in total instead of a closed loop.
    /// Latency is then measured from each request's scheduled time.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Seconds measured.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of load before measuring starts (not counted).
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
}

#[derive(Debug, Clone, Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub load: LoadArgs,
    /// Rooms the clients send into (client i sends to room i mod N).
    #[arg(long, default_value_t = 1)]
    pub rooms: usize,
    /// Characters of text per message.
    #[arg(long, default_value_t = 64)]
    pub text_chars: usize,
    /// Give every send a fresh client_id (idempotency key).
    #[arg(long)]
    pub client_ids: bool,
}

#[derive(Debug, Clone, Args)]
pub struct MixedArgs {
    #[command(flatten)]
    pub load: LoadArgs,
    /// Rooms the clients write into (client i into room i mod N).
    #[arg(long, default_value_t = 100)]
    pub rooms: usize,
    /// Characters of text per message.
    #[arg(long, default_value_t = 64)]
    pub text_chars: usize,
    /// Sends only (the same client, rooms and pacing without the events).
    #[arg(long)]
    pub sends_only: bool,
    /// Rooms are `<prefix>-0`..; default: fresh ones named after this run
    /// (give the same prefix twice to write into rooms an earlier run left).
    #[arg(long)]
    pub room_prefix: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ReadArgs {
    #[command(flatten)]
    pub load: LoadArgs,
    /// Path and query to GET.
    #[arg(long, default_value = "/chat?size=50")]
    pub path: String,
    /// Messages to post into --prefill-room before the run (so pages are full).
    #[arg(long, default_value_t = 0)]
    pub prefill: usize,
    /// Room the prefill goes to (`general` is the room `/chat` reads).
    #[arg(long, default_value = "general")]
    pub prefill_room: String,
}

#[derive(Debug, Clone, Args)]
pub struct FanoutArgs {
    /// Base URL of the gateway the subscribers connect to, or a comma list
    /// of gateways: each room's subscribers are then spread over all of them.
    #[arg(
        long,
        env = "PALAVER_BENCH_BASE_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub base_url: String,
    /// Base URL messages are posted to (default: --base-url).
    #[arg(long)]
    pub post_url: Option<String>,
    /// WebSocket subscribers in total, spread evenly over the rooms.
    #[arg(long, default_value_t = 1000)]
    pub subscribers: usize,
    /// Rooms (fresh ones, named after this run).
    #[arg(long, default_value_t = 1)]
    pub rooms: usize,
    /// Messages posted per second in total (round robin over the rooms);
    /// 0 posts closed-loop from --post-clients clients (send throughput).
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Concurrent posters: with --rate 0 each posts its next message when
    /// the last is answered; otherwise the most posts in flight.
    #[arg(long, default_value_t = 256)]
    pub post_clients: usize,
    /// Shell command run once every subscriber is caught up, before posting
    /// (e.g. resetting database statistics so they count deliveries only).
    #[arg(long)]
    pub before_posting: Option<String>,
    /// Seconds of posting.
    #[arg(long, default_value_t = 20.0)]
    pub duration: f64,
    /// Subscribers connecting at the same time.
    #[arg(long, default_value_t = 200)]
    pub connect_concurrency: usize,
    /// Seconds to wait after the last post for every subscriber to have
    /// every acknowledged message.
    #[arg(long, default_value_t = 15.0)]
    pub drain_timeout: f64,
    /// PID of the server process on this machine: its VmRSS is read before
    /// the subscribers connect and once they are all live.
    #[arg(long)]
    pub server_pid: Option<u32>,
}

#[derive(Debug, Clone, Args)]
pub struct StartupArgs {
    /// The server binary.
    #[arg(long, default_value = "target/release/palaver")]
    pub bin: PathBuf,
    /// Runs (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Seconds to let the server idle before reading its RSS.
    #[arg(long, default_value_t = 1.0)]
    pub settle: f64,
    /// Arguments after `serve --listen 127.0.0.1:<free port>`, e.g.
    /// `-- --database-url sqlite:///tmp/p.db`.
    #[arg(last = true)]
    pub server_args: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct CeilingArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,
    /// Size of the fixed JSON body in bytes.
    #[arg(long, default_value_t = 8192)]
    pub body_bytes: usize,
}

#[derive(Debug, Clone, Args)]
pub struct SmokeArgs {
    /// Base URL of the deployment, e.g. https://staging.example.org.
    #[arg(long, env = "PALAVER_SMOKE_BASE_URL")]
    pub base_url: String,
    /// Seconds any one step may take.
    #[arg(long, default_value_t = 15.0)]
    pub timeout: f64,
    /// Room to use; default: a fresh `smoke-<random>` room per run.
    #[arg(long)]
    pub room: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct TypingArgs {
    /// Gateway the typist's streams connect to.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub typist_url: String,
    /// Gateway the watcher's streams connect to (another replica).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub watcher_url: String,
    /// Rooms typed in (one typing frame per room every 2.05 s).
    #[arg(long, default_value_t = 50)]
    pub rooms: usize,
    /// Seconds of typing.
    #[arg(long, default_value_t = 20.0)]
    pub duration: f64,
}

#[derive(Debug, Clone, Args)]
pub struct OnlineArgs {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub base_url: String,
    /// Users (user i's session cookie is `<token-prefix><i>`).
    #[arg(long, default_value_t = 10_000)]
    pub users: usize,
    #[arg(long, default_value = "bench-online-")]
    pub token_prefix: String,
    /// Seconds to hold every stream open before flapping.
    #[arg(long, default_value_t = 60.0)]
    pub hold: f64,
    /// Seconds of closing and reopening every stream.
    #[arg(long, default_value_t = 60.0)]
    pub flap: f64,
    /// Streams opening at the same time.
    #[arg(long, default_value_t = 200)]
    pub connect_concurrency: usize,
}

#[derive(Debug, Clone, Args)]
pub struct SqlArgs {
    /// e.g. sqlite:///tmp/scale.db
    #[arg(long)]
    pub database_url: String,
    /// The script.
    #[arg(long)]
    pub file: PathBuf,
    /// `name=integer`: `:name` in the script becomes the integer.
    #[arg(long)]
    pub set: Vec<String>,
}
