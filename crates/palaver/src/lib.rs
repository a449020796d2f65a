//! Palaver: a self-hosted chat server that scales out.
//!
//! A guided tour, in the order a reader should meet the modules:
//! - [`config`]: flags and `PALAVER_*` environment variables;
//! - [`domain`]: validated room names, authors, texts and the stored message;
//! - [`store`]: the message store trait and its SQLite and PostgreSQL
//!   implementations;
//! - [`bus`]: fan-out of committed messages to every process's subscribers
//!   (in-process, PostgreSQL `LISTEN/NOTIFY`, or Redis/Valkey pub/sub);
//! - [`cache`]: the newest messages of recently read rooms, kept coherent by
//!   the write path and the bus;
//! - [`write`]: the write path above both: group commit, then publish;
//! - [`stream`]: WebSocket and SSE streams that replay from a seq and go live
//!   without gap or duplicate;
//! - [`presence`]: who is online and who is typing, never stored: per-process
//!   counts and typing throttles, coalesced across replicas by the bus;
//! - [`identity`]: usernames, passwords, roles, users, room visibility;
//! - [`auth`]: sessions, passwords, room access, where a request comes from;
//! - [`files`]: uploaded files: the file store (disk or S3), type sniffing,
//!   attachment and erasure;
//! - [`state`]: [`AppState`], what every handler sees, built from the
//!   configuration;
//! - [`api`]: the HTTP routes, their extractors and the one error type;
//! - [`web`]: the embedded UI;
//! - [`telemetry`]: logs and metrics;
//! - [`startup`]: [`app`] builds the router, [`Application`] binds and runs it
//!   until a shutdown signal.

pub mod api;
pub mod auth;
pub mod bus;
pub mod cache;
pub mod config;
pub mod domain;
pub mod files;
pub mod identity;
pub mod presence;
pub mod startup;
pub mod state;
pub mod store;
pub mod stream;
pub mod telemetry;
pub mod web;
pub mod write;

pub use startup::{app, Application};
pub use state::AppState;
