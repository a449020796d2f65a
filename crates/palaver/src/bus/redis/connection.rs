//! Connecting to the broker: the one-node connection that also asks whether
//! the endpoint is a cluster (see [`super::cluster`] for the cluster
//! client), the timeouts every command runs under, reconnect backoff and
//! the advice logged when a connection fails.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, RedisError};
use tokio_util::sync::CancellationToken;

use super::cluster;

/// How long connecting, a command, or a repair query may take.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
pub(super) const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);
/// Idle connections are pinged this often, so a dead broker is noticed.
pub(super) const PING_EVERY: Duration = Duration::from_secs(5);

/// A log line's worth of advice for a connection error.
pub(super) fn hint(error: &RedisError) -> &'static str {
    if error.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(error.code(), Some("WRONGPASS" | "NOAUTH" | "NOPERM"))
    {
        "authentication failed: check the password (or user) in --bus"
    } else if error.is_connection_refusal() {
        "connection refused: is the broker running at that address and port?"
    } else if error.is_timeout() {
        "no answer in time: network, security group, or TLS mismatch"
    } else if error.kind() == redis::ErrorKind::Io {
        "connection failed: network, or TLS mismatch (rediss:// needs a TLS port, redis:// a plain one)"
    } else {
        "the broker refused the connection"
    }
}

/// Waits out `backoff`, then doubles it (up to 5 s); false when the process
/// shuts down first.
pub(super) async fn backoff_or_stop(backoff: &mut Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => return false,
        _ = tokio::time::sleep(*backoff) => {}
    }
    *backoff = (*backoff * 2).min(Duration::from_secs(5));
    true
}

/// Connects, and asks the server whether it is a cluster (see [`cluster`]).
pub(super) async fn connect_single(
    client: &redis::Client,
) -> Result<(MultiplexedConnection, bool), RedisError> {
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    // The handshake authenticates; a PING proves the connection serves.
    redis::cmd("PING").query_async::<()>(&mut conn).await?;
    let cluster = cluster::enabled(&mut conn).await?;
    Ok((conn, cluster))
}

/// Runs a command with the response timeout.
pub(super) async fn timed<T>(
    command: impl std::future::Future<Output = Result<T, RedisError>>,
) -> Result<T, RedisError> {
    tokio::time::timeout(RESPONSE_TIMEOUT, command)
        .await
        .map_err(|_| RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut)))?
}

pub(super) fn reset() -> RedisError {
    std::io::Error::from(std::io::ErrorKind::ConnectionReset).into()
}
