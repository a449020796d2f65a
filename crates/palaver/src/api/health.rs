//! Health, readiness and metrics: served by every role.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use crate::store::StoreError;
use crate::telemetry::{self, metrics as m};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Status {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = Status)))]
async fn healthz() -> axum::Json<Status> {
    axum::Json(Status { status: "ok" })
}

/// Readiness: the database and the fan-out bus are reachable.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Status),
        (status = 503, description = "Database or bus unavailable, or shutting down", body = ErrorBody),
    ))]
async fn readyz(State(state): State<AppState>) -> Result<axum::Json<Status>, ApiError> {
    if state.shutdown.is_cancelled() {
        return Err(ApiError::ShuttingDown);
    }
    let ping = tokio::time::timeout(state.limits.readiness_timeout, state.store.ping()).await;
    let db_up = matches!(ping, Ok(Ok(())));
    ::metrics::gauge!(m::DB_UP).set(if db_up { 1.0 } else { 0.0 });
    match ping {
        Ok(Ok(())) => {}
        Ok(Err(error)) => return Err(error.into()),
        Err(_elapsed) => return Err(StoreError::Database(sqlx::Error::PoolTimedOut).into()),
    }
    if !state.bus.is_ready() {
        return Err(ApiError::BusUnavailable);
    }
    Ok(axum::Json(Status { status: "ready" }))
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    let pool = state.store.pool_stats();
    let in_use = pool.size.saturating_sub(pool.idle);
    ::metrics::gauge!(m::DB_POOL, "state" => "idle").set(f64::from(pool.idle));
    ::metrics::gauge!(m::DB_POOL, "state" => "in_use").set(f64::from(in_use));
    ::metrics::gauge!(m::DB_POOL_MAX).set(f64::from(pool.max));
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        telemetry::prometheus().render(),
    )
}
