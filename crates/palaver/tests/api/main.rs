//! Integration tests: the HTTP contract against real servers over SQLite and
//! PostgreSQL. Logs are silent unless `TEST_LOG=1`.

mod broker;
mod fault_helpers;
mod helpers;

mod access;
mod accounts;
mod body_limit;
mod cache;
mod concurrency;
mod faults;
mod health;
mod limits;
mod notify;
mod oidc;
mod profile;
mod redis_bus;
mod redis_cluster;
mod resilience;
mod rooms;
mod seed;
mod streams;
