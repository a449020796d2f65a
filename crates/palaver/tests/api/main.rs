//! Integration tests: the HTTP contract against real servers over SQLite and
//! PostgreSQL. Logs are silent unless `TEST_LOG=1`.

mod helpers;

mod concurrency;
mod health;
mod resilience;
mod rooms;
mod seed;
mod streams;
