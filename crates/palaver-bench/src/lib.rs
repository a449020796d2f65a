//! palaver-bench: load generator and end-to-end smoke suite for Palaver.
//!
//! A guided tour, in the order a reader should meet the modules:
//! - [`cli`]: the subcommands and their flags;
//! - [`stats`]: latency histograms (hdrhistogram) and the JSON summaries;
//! - [`target`]: the server under test: URLs, HTTP and WebSocket clients
//!   (TLS through rustls), the frames a stream sends, process RSS;
//! - [`send`] and [`read`]: HTTP sends and reads, closed-loop with N clients
//!   or open-loop at a target rate;
//! - [`mixed`]: the room-event mix of issue 17 (sends, reactions, edits,
//!   read markers) over HTTP;
//! - [`fanout`]: M WebSocket subscribers per room, commit-to-delivery latency
//!   and messages expected versus received per subscriber;
//! - [`startup`]: time from exec to `/readyz` and idle RSS of a server binary;
//! - [`ceiling`]: a minimal axum server returning a fixed body, the HTTP
//!   ceiling the read figures are compared with;
//! - [`sql`]: runs a fill script with the server's bundled SQLite;
//! - [`smoke`]: checks a deployed instance end to end and fails loudly;
//! - [`typing`]: typing frames between two replicas: delivery latency, and
//!   the load of many people typing beside a send run.
//!
//! Every command prints one JSON object on stdout; progress goes to stderr.

pub mod ceiling;
pub mod cli;
pub mod fanout;
pub mod mixed;
pub mod online;
pub mod read;
pub mod send;
pub mod smoke;
pub mod sql;
pub mod startup;
pub mod stats;
pub mod target;
pub mod typing;

/// Installs rustls' ring provider as the process default, once; both the
/// HTTP client and the WebSocket client build their TLS configs from it.
pub fn init_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
