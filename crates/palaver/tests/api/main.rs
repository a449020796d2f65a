//! Integration tests: the HTTP contract against real servers over SQLite and
//! PostgreSQL. Logs are silent unless `TEST_LOG=1`.

mod broker;
mod fault_helpers;
mod helpers;

mod access;
mod accounts;
mod batch;
mod body_limit;
mod cache;
mod concurrency;
mod dms;
mod events;
mod faults;
mod files;
mod health;
mod limits;
mod notify;
mod oidc;
mod people;
mod presence;
mod profile;
mod redis_bus;
mod redis_cluster;
mod resilience;
mod rooms;
mod search;
mod seed;
mod signin;
mod streams;
